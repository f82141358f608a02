-- SPDX-License-Identifier: MIT
-- tests/machines/memory-bomb.lua: memory that grows without bound,
-- stopped by the memory cap. string.rep is absent; a string doubled at
-- each step reaches any cap within a few dozen instructions, so the cap
-- trips long before the instruction or time limit, however slow the
-- build (a table growing by small pieces reached the time limit first
-- under ThreadSanitizer).
local s, keep = "0123456789abcdef", {}
while true do
  s = s .. s
  keep[#keep + 1] = s
end
