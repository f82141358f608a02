-- SPDX-License-Identifier: MIT
-- tests/machines/negative-memory.lua: a negative memory size
return {
  devices = {
    { class = "cpu", name = "host", mem_bandwidth = 50 * GB,
      fp64 = 1 * TFLOPS, fp32 = 2 * TFLOPS },
    { class = "gddr", name = "G", memory = -5, mem_bandwidth = 1 * TB,
      link_bandwidth = 32 * GB, fp64 = 1 * TFLOPS, fp32 = 80 * TFLOPS },
  },
}
