-- SPDX-License-Identifier: MIT
-- tests/machines/bus-width-range.lua: a memory bus wider than 65536 bits
return {
  devices = {
    { class = "hbm", name = "H100", memory = 80 * GiB,
      mem_bandwidth = 3 * TB, link_bandwidth = 64 * GB,
      fp64 = 34 * TFLOPS, fp32 = 67 * TFLOPS,
      memory_bus_width = 100000 },
  },
}
