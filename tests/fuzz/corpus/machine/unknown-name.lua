-- SPDX-License-Identifier: MIT
-- tests/machines/unknown-name.lua: a misspelt unit constant
return {
  devices = {
    { class = "cpu", name = "host", mem_bandwidth = 50 * GB,
      fp64 = 1 * TFLOP, fp32 = 2 * TFLOPS },
  },
}
