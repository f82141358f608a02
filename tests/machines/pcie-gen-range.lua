-- SPDX-License-Identifier: MIT
-- tests/machines/pcie-gen-range.lua: a PCIe generation past the last one (7)
return {
  devices = {
    { class = "hbm", name = "H100", memory = 80 * GiB,
      mem_bandwidth = 3 * TB, link_bandwidth = 64 * GB,
      fp64 = 34 * TFLOPS, fp32 = 67 * TFLOPS,
      pcie = { gen = 9, width = 16 } },
  },
}
