-- SPDX-License-Identifier: MIT
-- tests/machines/power-range.lua: a power reading of 1e300 W
return {
  devices = {
    { class = "cpu", name = "host", mem_bandwidth = 50 * GB,
      fp64 = 1 * TFLOPS, fp32 = 2 * TFLOPS, health = { power = 1e300 } },
  },
}
