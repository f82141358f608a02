-- SPDX-License-Identifier: MIT
-- tests/machines/memory-bomb.lua: a table that grows without bound,
-- stopped by the memory cap. string.rep is absent; nested empty tables
-- cost one instruction each, so the cap trips long before the
-- instruction limit.
local t = {}
while true do
  t[#t + 1] = { {}, {}, {}, {}, {}, {}, {}, {} }
end
