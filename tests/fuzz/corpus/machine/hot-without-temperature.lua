-- SPDX-License-Identifier: MIT
-- tests/machines/hot-without-temperature.lua: hot_after without hot_temperature
return {
  devices = {
    { class = "cpu", name = "host", mem_bandwidth = 50 * GB,
      fp64 = 1 * TFLOPS, fp32 = 2 * TFLOPS, faults = { hot_after = 5 } },
  },
}
