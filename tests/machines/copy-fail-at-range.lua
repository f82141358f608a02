-- SPDX-License-Identifier: MIT
-- tests/machines/copy-fail-at-range.lua: copy_fail_at 0 (counts start at 1)
return {
  devices = {
    { class = "cpu", name = "host", mem_bandwidth = 50 * GB,
      fp64 = 1 * TFLOPS, fp32 = 2 * TFLOPS, faults = { copy_fail_at = 0 } },
  },
}
