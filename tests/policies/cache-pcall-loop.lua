-- expect: fallback
-- log: exceeded
function cache(buffer, m)
  while true do pcall(function() while true do end end) end
end
