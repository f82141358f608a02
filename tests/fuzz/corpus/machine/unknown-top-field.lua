-- SPDX-License-Identifier: MIT
-- tests/machines/unknown-top-field.lua: a typo in a top-level key
return {
  nmae = "typo",
  devices = {
    { class = "cpu", name = "host", mem_bandwidth = 50 * GB,
      fp64 = 1 * TFLOPS, fp32 = 2 * TFLOPS },
  },
}
