-- SPDX-License-Identifier: MIT
-- tests/machines/runtime-error.lua: arithmetic on a table at run time
local card = {}
return {
  devices = {
    { class = "cpu", name = "host", mem_bandwidth = card * 2 },
  },
}
