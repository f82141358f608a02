-- SPDX-License-Identifier: MIT
-- tests/machines/cpu-link.lua: a cpu device with a host link
return {
  devices = {
    { class = "cpu", name = "host", mem_bandwidth = 50 * GB,
      fp64 = 1 * TFLOPS, fp32 = 2 * TFLOPS, link_bandwidth = 8 * GB },
  },
}
