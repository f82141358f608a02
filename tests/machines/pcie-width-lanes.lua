-- SPDX-License-Identifier: MIT
-- tests/machines/pcie-width-lanes.lua: a PCIe link of 3 lanes, a width no slot has
return {
  devices = {
    { class = "hbm", name = "H100", memory = 80 * GiB,
      mem_bandwidth = 3 * TB, link_bandwidth = 64 * GB,
      fp64 = 34 * TFLOPS, fp32 = 67 * TFLOPS,
      pcie = { gen = 5, width = 3 } },
  },
}
