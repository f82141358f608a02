-- SPDX-License-Identifier: MIT
-- tests/machines/hot-temperature-range.lua: below absolute zero
return {
  devices = {
    { class = "cpu", name = "host", mem_bandwidth = 50 * GB,
      fp64 = 1 * TFLOPS, fp32 = 2 * TFLOPS,
      faults = { hot_after = 1, hot_temperature = -300 } },
  },
}
