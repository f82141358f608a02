-- expect: fallback
-- log: metatable
function place(task, m)
  return setmetatable({}, { __len = function() return 2.5 end })
end
