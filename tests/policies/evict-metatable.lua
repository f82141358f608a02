-- expect: fallback
-- log: not a tier name
function place(task, m) return "gddr" end
function evict(buffer, node, m)
  return setmetatable({}, { __tostring = function() while true do end end })
end
