-- SPDX-License-Identifier: MIT
-- tests/machines/rate-huge.lua: an FP32 rate far past any device
return {
  devices = {
    { class = "cpu", name = "host", mem_bandwidth = 50 * GB,
      fp64 = 1 * TFLOPS, fp32 = 1e300 },
  },
}
