-- SPDX-License-Identifier: MIT
-- tests/machines/no-return.lua: forgets to return the table
local machine = {
  devices = {
    { class = "cpu", name = "host", mem_bandwidth = 50 * GB,
      fp64 = 1 * TFLOPS, fp32 = 2 * TFLOPS },
  },
}
