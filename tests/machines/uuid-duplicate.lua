-- SPDX-License-Identifier: MIT
-- tests/machines/uuid-duplicate.lua: two cards that claim the same identity
return {
  devices = {
    { class = "hbm", name = "A", memory = 80 * GiB, mem_bandwidth = 3 * TB,
      link_bandwidth = 64 * GB, fp64 = 34 * TFLOPS, fp32 = 67 * TFLOPS,
      uuid = "GPU-same" },
    { class = "hbm", name = "B", memory = 80 * GiB, mem_bandwidth = 3 * TB,
      link_bandwidth = 64 * GB, fp64 = 34 * TFLOPS, fp32 = 67 * TFLOPS,
      uuid = "GPU-same" },
  },
}
