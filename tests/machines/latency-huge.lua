-- SPDX-License-Identifier: MIT
-- tests/machines/latency-huge.lua: a host link latency of 1e300 s
return {
  devices = {
    { class = "hbm", name = "H", memory = 80 * GiB, mem_bandwidth = 3 * TB,
      link_bandwidth = 64 * GB, link_latency = 1e300,
      fp64 = 34 * TFLOPS, fp32 = 67 * TFLOPS },
  },
}
