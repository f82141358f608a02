-- SPDX-License-Identifier: MIT
-- tests/machines/unknown-health-field.lua: a typo in a health key
return {
  devices = {
    { class = "cpu", name = "host", mem_bandwidth = 50 * GB,
      fp64 = 1 * TFLOPS, fp32 = 2 * TFLOPS, health = { temprature = 50 } },
  },
}
