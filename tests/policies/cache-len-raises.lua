-- expect: fallback
-- log: metatable
function cache(buffer, m)
  return setmetatable({}, { __len = function() error("len") end })
end
