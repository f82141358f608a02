-- expect: fallback
-- log: larger than
local s = string.rep("a", 1000)
local b = string.rep("b", 10000)
function place(task, m)
  return (string.gsub(s, "a", b))
end
