-- SPDX-License-Identifier: MIT
-- tests/machines/fault-count-range.lua: a die_after count of 1e300 tasks
return {
  devices = {
    { class = "cpu", name = "host", mem_bandwidth = 50 * GB,
      fp64 = 1 * TFLOPS, fp32 = 2 * TFLOPS, faults = { die_after = 1e300 } },
  },
}
