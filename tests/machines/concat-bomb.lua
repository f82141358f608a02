-- SPDX-License-Identifier: MIT
-- tests/machines/concat-bomb.lua: strings of megabytes built with `..`,
-- one instruction each: the allocator counts their bytes as work (and the
-- clock), so this ends in milliseconds, not minutes.
local s = "xxxxxxxxxxxxxxxx"
for i = 1, 18 do s = s .. s end -- 4 MiB
while true do local t = s .. s end
