-- expect: fallback
-- log: exceeded
local t = {}
for i = 1, 1000 do t[i] = string.rep("x", 1000) end
function place(task, m)
  while true do local s = table.concat(t) end
end
