-- SPDX-License-Identifier: MIT
-- tests/machines/fractional-memory.lua: a memory size in fractional bytes
return {
  devices = {
    { class = "hbm", name = "A", memory = 1.5, mem_bandwidth = 3 * TB,
      link_bandwidth = 64 * GB, fp64 = 34 * TFLOPS, fp32 = 67 * TFLOPS },
  },
}
