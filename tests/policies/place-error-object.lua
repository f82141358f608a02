-- expect: fallback
-- log: error object is a table
-- The message handler must not call __tostring.
function place(task, m)
  error(setmetatable({}, { __tostring = function() while true do end end }))
end
