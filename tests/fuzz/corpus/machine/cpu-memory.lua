-- SPDX-License-Identifier: MIT
-- tests/machines/cpu-memory.lua: a cpu device with a memory size of its own
return {
  devices = {
    { class = "cpu", name = "host", memory = 64 * GiB, mem_bandwidth = 50 * GB,
      fp64 = 1 * TFLOPS, fp32 = 2 * TFLOPS },
  },
}
