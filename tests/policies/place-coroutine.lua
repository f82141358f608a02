-- expect: fallback
-- log: global 'coroutine'
function place(task, m)
  return coroutine.wrap(function() end)()
end
