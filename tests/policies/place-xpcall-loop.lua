-- expect: fallback
-- log: exceeded
local function spin() while true do end end
function place(task, m)
  while true do xpcall(spin, spin) end
end
