-- SPDX-License-Identifier: MIT
-- tests/machines/wrong-type-table.lua: health given as a bare number
return {
  devices = {
    { class = "cpu", name = "host", mem_bandwidth = 50 * GB,
      fp64 = 1 * TFLOPS, fp32 = 2 * TFLOPS, health = 45 },
  },
}
