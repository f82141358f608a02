-- SPDX-License-Identifier: MIT
-- lua/policies/eft.lua: earliest finish time, HEFT-like. Each task goes to
-- the device where it would end first in the plan of the work placed so
-- far: after the work planned there, its inputs' writers, the copies of
-- its inputs over the host links they cross (busy with the copies already
-- planned), and its run time from the performance models (measured
-- history of this kernel on this model of device at this size, else the
-- device's rated FP64/FP32 rate and memory bandwidth). machine.eft does
-- the arithmetic in C.

-- The copies a task needs are counted once more in the choice (weight 1,
-- as StarPU's dmda does): they stand for the copies its successors will
-- make to bring the results back, which a choice made one task at a time
-- cannot see. Without it, eft sends work to a slow device whenever it
-- would end a little sooner there, and pays for it later.
function place(task, machine)
  return (machine.eft(task, nil, 1))
end
