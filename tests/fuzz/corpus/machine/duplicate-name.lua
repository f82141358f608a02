-- SPDX-License-Identifier: MIT
-- tests/machines/duplicate-name.lua: two devices with one name
return {
  devices = {
    { class = "hbm", name = "A", memory = 80 * GiB, mem_bandwidth = 3 * TB,
      link_bandwidth = 64 * GB, fp64 = 34 * TFLOPS, fp32 = 67 * TFLOPS },
    { class = "hbm", name = "A", memory = 80 * GiB, mem_bandwidth = 3 * TB,
      link_bandwidth = 64 * GB, fp64 = 34 * TFLOPS, fp32 = 67 * TFLOPS },
  },
}
