-- SPDX-License-Identifier: MIT
-- tests/machines/numa-range.lua: a NUMA node index past any machine
return {
  devices = {
    { class = "cpu", name = "host", mem_bandwidth = 50 * GB,
      fp64 = 1 * TFLOPS, fp32 = 2 * TFLOPS, numa = 70000 },
  },
}
