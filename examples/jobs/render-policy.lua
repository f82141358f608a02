-- SPDX-License-Identifier: MIT
-- examples/jobs/render-policy.lua: the placement of render.lua, a render
-- farm's split of a mixed machine: final frames (heavy FP32 tiles) on the
-- HBM cards, previews of the frames between on the GDDR cards, assembly
-- on the CPUs; each falls back to the next class when its own has no
-- device that can run it. Answers depend on the tier only: cacheable.
local routes = {
  final = { "hbm", "gddr", "cpu" },
  preview = { "gddr", "hbm", "cpu" },
  assemble = { "cpu" },
}

function place(task, machine)
  local route = routes[task.tier]
  if not route then return nil, true end
  for _, class in ipairs(route) do
    local able = {}
    for _, d in ipairs(machine.by_class(class)) do
      if machine.can_run(task, d) then able[#able + 1] = d end
    end
    if #able > 0 then return able, true end
  end
  return nil, true
end
