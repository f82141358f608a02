-- expect: fallback
-- log: exceeded
getmetatable("").__index = function() while true do end end
function place(task, m)
  return ("x"):upper()
end
