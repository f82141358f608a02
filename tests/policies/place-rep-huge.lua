-- expect: fallback
-- log: over the sandbox
function place(task, m)
  return string.rep("x", 1 << 40)
end
