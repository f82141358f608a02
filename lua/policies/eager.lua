-- SPDX-License-Identifier: MIT
-- lua/policies/eager.lua: the first free device. Each task goes to the
-- first device, in machine order, that can run it and has nothing queued;
-- when every device is busy, to the least loaded one. No tiers, no
-- speeds: the baseline the other policies are measured against.

function place(task, machine)
  return machine.first_idle(task) or machine.least_loaded()
end
