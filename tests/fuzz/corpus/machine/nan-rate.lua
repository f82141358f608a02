-- SPDX-License-Identifier: MIT
-- tests/machines/nan-rate.lua: a rate that is not a number (0/0)
return {
  devices = {
    { class = "cpu", name = "host", mem_bandwidth = 50 * GB,
      fp64 = 0 / 0, fp32 = 2 * TFLOPS },
  },
}
