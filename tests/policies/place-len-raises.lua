-- expect: fallback
-- log: metatable
-- A list answer whose __len raises: answers are read raw, so its metatable
-- makes it refused without running __len.
function place(task, m)
  return setmetatable({}, { __len = function() error("len") end })
end
