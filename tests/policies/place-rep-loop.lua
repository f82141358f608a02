-- expect: fallback
-- log: exceeded
-- Each string.rep is one instruction and a megabyte of work.
function place(task, m)
  for i = 1, 1e9 do local s = string.rep("x", 1 << 20) end
end
