-- expect: fallback
-- log: exceeded
-- Keeps what it allocates: every call fills the state. Big allocations
-- count as work, so the budget ends each call before the 16 MiB cap does.
local keep = {}
function place(task, m)
  while true do keep[#keep + 1] = string.rep("x", 1 << 16) .. #keep end
end
