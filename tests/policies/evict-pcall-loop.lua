-- expect: fallback
-- log: exceeded
function place(task, m) return "gddr" end
function evict(buffer, node, m)
  while true do pcall(function() while true do end end) end
end
