-- SPDX-License-Identifier: MIT
-- tests/machines/bandwidth-huge.lua: a device memory bandwidth of 1e300 B/s
return {
  devices = {
    { class = "cpu", name = "host", mem_bandwidth = 1e300,
      fp64 = 1 * TFLOPS, fp32 = 2 * TFLOPS },
  },
}
