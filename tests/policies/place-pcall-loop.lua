-- expect: fallback
-- log: exceeded
-- pcall catches the budget error, so a loop around pcall would run forever
-- if the budget were an ordinary error.
function place(task, m)
  while true do pcall(function() while true do end end) end
end
