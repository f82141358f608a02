-- SPDX-License-Identifier: MIT
-- tests/machines/nested-deep.lua: tables built 100 levels deep
local t = {}
for i = 1, 100 do t = { t } end
return { devices = t }
