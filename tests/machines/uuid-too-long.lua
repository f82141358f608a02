-- SPDX-License-Identifier: MIT
-- tests/machines/uuid-too-long.lua: a uuid of 64 bytes, one too many
return {
  devices = {
    { class = "hbm", name = "H100", memory = 80 * GiB,
      mem_bandwidth = 3 * TB, link_bandwidth = 64 * GB,
      fp64 = 34 * TFLOPS, fp32 = 67 * TFLOPS,
      uuid = "GPU-0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab" },
  },
}
