-- expect: fallback
-- log: metatable
-- A length of 2^62 with an __index that always answers: read through the
-- metamethods, this would never end.
function place(task, m)
  local d = m.devices[1]
  return setmetatable({}, { __len = function() return 1 << 62 end,
                            __index = function() return d end })
end
