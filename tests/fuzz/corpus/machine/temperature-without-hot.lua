-- SPDX-License-Identifier: MIT
-- tests/machines/temperature-without-hot.lua: hot_temperature without hot_after
return {
  devices = {
    { class = "cpu", name = "host", mem_bandwidth = 50 * GB,
      fp64 = 1 * TFLOPS, fp32 = 2 * TFLOPS, faults = { hot_temperature = 90 } },
  },
}
