-- SPDX-License-Identifier: MIT
-- lua/policies/eager.lua: the first free device. Each task goes to the
-- first device, in machine order, that can run it and has nothing queued;
-- when every device is busy, to the least loaded one. No tiers, no
-- speeds: the baseline the other policies are measured against.

function place(task, machine)
  for _, d in ipairs(machine.devices) do
    if d.queue == 0 and machine.can_run(task, d) then
      return d
    end
  end
  return machine.least_loaded()
end
