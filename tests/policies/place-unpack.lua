-- expect: fallback
-- log: table.unpack
function place(task, m)
  return table.unpack({}, 1, 1e8)
end
