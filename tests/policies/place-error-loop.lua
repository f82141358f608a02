-- expect: fallback
-- log: exceeded
function place(task, m)
  while true do
    local ok = pcall(error, "again")
  end
end
