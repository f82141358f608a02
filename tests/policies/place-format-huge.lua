-- expect: fallback
-- log: over the sandbox
local s = string.rep("x", 600000)
function place(task, m)
  return string.format("%s%s", s, s)
end
