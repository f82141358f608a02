-- expect: fallback
-- log: exceeded
-- Hooks are looked up raw: the metatable of _G does not run at load.
setmetatable(_G, { __index = function() while true do end end })
function place(task, m)
  return undefined_name
end
