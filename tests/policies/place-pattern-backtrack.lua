-- expect: fallback
-- log: exceeded
-- Backtracking on a subject under the old 4 KiB guard: bounded by the
-- steps the matcher takes, not by the length of the subject.
local s = string.rep("a", 4000)
function place(task, m)
  return string.find(s, ".-.-.-.-b")
end
