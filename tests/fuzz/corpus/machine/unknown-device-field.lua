-- SPDX-License-Identifier: MIT
-- tests/machines/unknown-device-field.lua: a typo in a device key
return {
  devices = {
    { class = "hbm", name = "A", memroy = 80 * GiB, mem_bandwidth = 3 * TB,
      link_bandwidth = 64 * GB, fp64 = 34 * TFLOPS, fp32 = 67 * TFLOPS },
  },
}
