-- SPDX-License-Identifier: MIT
-- tests/machines/count-without-at.lua: copy_fail_count without copy_fail_at
return {
  devices = {
    { class = "cpu", name = "host", mem_bandwidth = 50 * GB,
      fp64 = 1 * TFLOPS, fp32 = 2 * TFLOPS, faults = { copy_fail_count = 2 } },
  },
}
