-- expect: refused
-- log: __gc
-- A finalizer runs with the count hook off: none may exist.
setmetatable({}, { __gc = function() while true do end end })
