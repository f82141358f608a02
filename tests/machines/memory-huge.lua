-- SPDX-License-Identifier: MIT
-- tests/machines/memory-huge.lua: 2^60 bytes of device memory
return {
  devices = {
    { class = "hbm", name = "H", memory = 1 << 60, mem_bandwidth = 3 * TB,
      link_bandwidth = 64 * GB, fp64 = 34 * TFLOPS, fp32 = 67 * TFLOPS },
  },
}
