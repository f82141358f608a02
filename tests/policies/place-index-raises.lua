-- expect: fallback
-- log: metatable
function place(task, m)
  return setmetatable({}, { __len = function() return 3 end,
                            __index = function() error("index") end })
end
