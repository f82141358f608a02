-- SPDX-License-Identifier: MIT
-- tests/machines/count-too-large.lua: copy_fail_count past 32 bits
return {
  devices = {
    { class = "cpu", name = "host", mem_bandwidth = 50 * GB,
      fp64 = 1 * TFLOPS, fp32 = 2 * TFLOPS, faults = { copy_fail_at = 1, copy_fail_count = 2^33 } },
  },
}
