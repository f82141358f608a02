-- SPDX-License-Identifier: MIT
-- tests/machines/temperature-range.lua: a health temperature out of range
return {
  devices = {
    { class = "cpu", name = "host", mem_bandwidth = 50 * GB,
      fp64 = 1 * TFLOPS, fp32 = 2 * TFLOPS, health = { temperature = 5000 } },
  },
}
