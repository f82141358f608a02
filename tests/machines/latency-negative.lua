-- SPDX-License-Identifier: MIT
-- tests/machines/latency-negative.lua: a negative host link latency
return {
  devices = {
    { class = "hbm", name = "H", memory = 80 * GiB, mem_bandwidth = 3 * TB,
      link_bandwidth = 64 * GB, link_latency = -5 * us,
      fp64 = 34 * TFLOPS, fp32 = 67 * TFLOPS },
  },
}
