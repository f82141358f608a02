-- SPDX-License-Identifier: MIT
-- tests/machines/fractional-workers.lua: one and a half workers
return {
  devices = {
    { class = "cpu", name = "host", mem_bandwidth = 50 * GB,
      fp64 = 1 * TFLOPS, fp32 = 2 * TFLOPS, workers = 1.5 },
  },
}
