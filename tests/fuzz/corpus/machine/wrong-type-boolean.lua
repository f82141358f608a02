-- SPDX-License-Identifier: MIT
-- tests/machines/wrong-type-boolean.lua: ecc written as a string
return {
  devices = {
    { class = "hbm", name = "A", memory = 80 * GiB, mem_bandwidth = 3 * TB,
      link_bandwidth = 64 * GB, fp64 = 34 * TFLOPS, fp32 = 67 * TFLOPS,
      ecc = "yes" },
  },
}
