-- SPDX-License-Identifier: MIT
-- tests/machines/too-many-devices.lua: 65 devices, one over the limit
local devices = {}
for i = 1, 65 do
  devices[i] = { class = "cpu", name = "cpu" .. i, mem_bandwidth = 50 * GB,
                 fp64 = 1 * TFLOPS, fp32 = 2 * TFLOPS }
end
return { devices = devices }
