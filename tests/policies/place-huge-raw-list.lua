-- expect: fallback
-- log: more than 1024
function place(task, m)
  local t = {}
  for i = 1, 5000 do t[i] = "cpu" end
  return t
end
