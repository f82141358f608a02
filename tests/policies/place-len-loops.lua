-- expect: fallback
-- log: metatable
function place(task, m)
  return setmetatable({}, { __len = function() while true do end end })
end
