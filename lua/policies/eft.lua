-- SPDX-License-Identifier: MIT
-- lua/policies/eft.lua: earliest finish time, HEFT-like. Each task goes to
-- the device where it would end first: the work queued there, the time to
-- copy its inputs over the device's link, and its run time from the
-- performance models (measured history of this kernel on this model of
-- device at this size, else the device's rated FP64/FP32 rate and memory
-- bandwidth). machine.eft does the arithmetic in C.

function place(task, machine)
  return (machine.eft(task))
end
