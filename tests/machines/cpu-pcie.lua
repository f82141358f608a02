-- SPDX-License-Identifier: MIT
-- tests/machines/cpu-pcie.lua: a host link on a cpu device, which has none
return {
  devices = {
    { class = "cpu", name = "host", mem_bandwidth = 50 * GB,
      fp64 = 1 * TFLOPS, fp32 = 2 * TFLOPS, pcie = { gen = 5, width = 16 } },
  },
}
