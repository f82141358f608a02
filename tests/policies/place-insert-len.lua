-- expect: fallback
-- log: table.insert
function place(task, m)
  local t = setmetatable({}, { __len = function() return 1 << 62 end })
  table.insert(t, 1, "x")
end
