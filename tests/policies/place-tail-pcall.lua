-- expect: fallback
-- log: budget
-- A tail call of pcall returns straight to C: no instruction runs after
-- the error is caught, and the call must still fail.
function place(task, m)
  return pcall(function() while true do end end)
end
