-- expect: fallback
-- log: exceeded
-- Deep recursion: the budget (or the stack limit, or the memory cap)
-- ends it; whichever comes first, the call fails cleanly.
local function f() return 1 + f() end
function place(task, m) return f() end
