-- SPDX-License-Identifier: MIT
-- tests/machines/missing-fp64.lua: the third device lacks its FP64 rate
return {
  devices = {
    { class = "cpu", name = "host", mem_bandwidth = 50 * GB,
      fp64 = 1 * TFLOPS, fp32 = 2 * TFLOPS },
    { class = "hbm", name = "A", memory = 80 * GiB, mem_bandwidth = 3 * TB,
      link_bandwidth = 64 * GB, fp64 = 34 * TFLOPS, fp32 = 67 * TFLOPS },
    { class = "gddr", name = "G", memory = 24 * GiB, mem_bandwidth = 1 * TB,
      link_bandwidth = 32 * GB, fp32 = 80 * TFLOPS },
  },
}
