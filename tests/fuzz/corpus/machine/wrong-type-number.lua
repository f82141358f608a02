-- SPDX-License-Identifier: MIT
-- tests/machines/wrong-type-number.lua: a rate written as a string
return {
  devices = {
    { class = "cpu", name = "host", mem_bandwidth = 50 * GB,
      fp64 = 1 * TFLOPS, fp32 = "67" },
  },
}
