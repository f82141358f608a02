-- expect: fallback
-- log: __gc
function place(task, m)
  setmetatable({}, { __gc = function() while true do end end })
  return "cpu"
end
