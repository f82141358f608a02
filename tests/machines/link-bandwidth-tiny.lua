-- SPDX-License-Identifier: MIT
-- tests/machines/link-bandwidth-tiny.lua: a host link bandwidth of 1e-300 B/s
return {
  devices = {
    { class = "cpu", name = "host", mem_bandwidth = 50 * GB,
      fp64 = 1 * TFLOPS, fp32 = 2 * TFLOPS },
    { class = "hbm", name = "H", memory = 80 * GiB, mem_bandwidth = 3 * TB,
      link_bandwidth = 1e-300, fp64 = 34 * TFLOPS, fp32 = 67 * TFLOPS },
  },
}
