-- SPDX-License-Identifier: MIT
-- tests/machines/missing-memory.lua: a card without its memory size
return {
  devices = {
    { class = "hbm", name = "A", mem_bandwidth = 3 * TB,
      link_bandwidth = 64 * GB, fp64 = 34 * TFLOPS, fp32 = 67 * TFLOPS },
  },
}
