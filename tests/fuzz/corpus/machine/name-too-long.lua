-- SPDX-License-Identifier: MIT
-- tests/machines/name-too-long.lua: a device name of 64 bytes, one too many
return {
  devices = {
    { class = "cpu",
      name = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
      mem_bandwidth = 50 * GB, fp64 = 1 * TFLOPS, fp32 = 2 * TFLOPS },
  },
}
