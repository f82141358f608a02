-- SPDX-License-Identifier: MIT
-- tests/machines/nested-cycle.lua: a table that holds itself (nested
-- without end)
local t = {}
t[1] = t
return { devices = t }
