-- expect: fallback
-- log: exceeded
function place(task, m)
  local x <close> = setmetatable({}, { __close = function()
    while true do end
  end })
  error("leaving")
end
