-- expect: fallback
-- log: exceeded
local s = string.rep("(", 100000)
function place(task, m)
  while true do string.find(s, "%b()") end
end
