-- SPDX-License-Identifier: MIT
-- tests/machines/global-assign.lua: assigns a global (descriptions use locals)
H100 = { class = "hbm", name = "A", memory = 80 * GiB, mem_bandwidth = 3 * TB,
         link_bandwidth = 64 * GB, fp64 = 34 * TFLOPS, fp32 = 67 * TFLOPS }
return { devices = { H100 } }
