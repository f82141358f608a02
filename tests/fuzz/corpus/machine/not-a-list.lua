-- SPDX-License-Identifier: MIT
-- tests/machines/not-a-list.lua: a device without its own braces
return {
  devices = { class = "cpu", name = "host", mem_bandwidth = 50 * GB,
              fp64 = 1 * TFLOPS, fp32 = 2 * TFLOPS },
}
