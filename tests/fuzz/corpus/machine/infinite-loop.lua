-- SPDX-License-Identifier: MIT
-- tests/machines/infinite-loop.lua: never returns (instruction limit)
local n = 0
while true do
  n = n + 1
end
