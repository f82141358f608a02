-- SPDX-License-Identifier: MIT
-- tests/machines/rate-tiny.lua: an FP64 rate of 1e-300 flop/s (finite, absurd)
return {
  devices = {
    { class = "cpu", name = "host", mem_bandwidth = 50 * GB,
      fp64 = 1e-300, fp32 = 2 * TFLOPS },
  },
}
