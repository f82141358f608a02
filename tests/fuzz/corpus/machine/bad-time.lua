-- SPDX-License-Identifier: MIT
-- tests/machines/bad-time.lua: a time mode that does not exist
return {
  time = "fast",
  devices = {
    { class = "cpu", name = "host", mem_bandwidth = 50 * GB,
      fp64 = 1 * TFLOPS, fp32 = 2 * TFLOPS },
  },
}
