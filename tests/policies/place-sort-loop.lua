-- expect: fallback
-- log: exceeded
local t = {}
for i = 1, 20000 do t[i] = -i end
function place(task, m)
  while true do table.sort(t) end
end
