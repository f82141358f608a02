-- SPDX-License-Identifier: MIT
-- tests/machines/unknown-class.lua: a class the sim backend does not know
return {
  devices = {
    { class = "tpu", name = "T", memory = 16 * GiB, mem_bandwidth = 1 * TB,
      link_bandwidth = 32 * GB, fp64 = 1 * TFLOPS, fp32 = 2 * TFLOPS },
  },
}
