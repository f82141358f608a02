-- expect: fallback
-- log: exceeded
-- `..` is one instruction whatever the length of its operands.
local s = string.rep("x", 1 << 20)
function place(task, m)
  while true do local t = s .. s .. s end
end
