-- SPDX-License-Identifier: MIT
-- tests/machines/cc-not-a-version.lua: a compute capability that is not MAJOR.MINOR
return {
  devices = {
    { class = "hbm", name = "H100", memory = 80 * GiB,
      mem_bandwidth = 3 * TB, link_bandwidth = 64 * GB,
      fp64 = 34 * TFLOPS, fp32 = 67 * TFLOPS,
      compute_capability = "x.y" },
  },
}
