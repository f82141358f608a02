-- SPDX-License-Identifier: MIT
-- tests/machines/workers-range.lua: more workers than a device may have
return {
  devices = {
    { class = "cpu", name = "host", mem_bandwidth = 50 * GB,
      fp64 = 1 * TFLOPS, fp32 = 2 * TFLOPS, workers = 65 },
  },
}
