-- expect: fallback
-- log: table.move
-- Moving 2^62 nils runs in C without a single instruction.
function place(task, m)
  table.move({}, 1, 1 << 62, 2)
end
