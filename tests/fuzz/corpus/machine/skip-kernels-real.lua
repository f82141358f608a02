-- SPDX-License-Identifier: MIT
-- tests/machines/skip-kernels-real.lua: skip_kernels in real time
return {
  skip_kernels = true,
  devices = {
    { class = "cpu", name = "host", mem_bandwidth = 50 * GB,
      fp64 = 1 * TFLOPS, fp32 = 2 * TFLOPS },
  },
}
