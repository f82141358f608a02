-- SPDX-License-Identifier: MIT
-- examples/embed/policy.lua: host.c's placement: its filters on the GPUs
-- (the consumer cards first: the filter is memory-bound, FP64 is light),
-- its reductions on the CPUs; anything else as the runtime sees fit.
-- Answers depend on the tier only, so they are cacheable.
local function able(task, machine, class)
  local out = {}
  for _, d in ipairs(machine.by_class(class)) do
    if machine.can_run(task, d) then out[#out + 1] = d end
  end
  return #out > 0 and out or nil
end

function place(task, machine)
  if task.tier == "filter" then
    return able(task, machine, "gddr") or able(task, machine, "hbm")
        or able(task, machine, "cpu"), true
  elseif task.tier == "reduce" then
    return able(task, machine, "cpu"), true
  end
  return nil, true
end
