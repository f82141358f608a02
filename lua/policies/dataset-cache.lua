-- SPDX-License-Identifier: MIT
-- lua/policies/dataset-cache.lua: the consumer cards as a cache for the
-- dataset. Buffers tagged "dataset" (strata_buffer_set_tag) are kept on
-- the GDDR cards and prefetched there ahead of the tasks that read them;
-- tasks that read a dataset buffer run on those cards (the data is
-- already there); everything else follows the tiers of tiered.lua: FP64
-- and training on HBM, preprocessing on the CPUs.

-- The first class with a device that can run the task: the engine takes
-- the least loaded able device of it.
local function class_for(task, machine, first, second)
  if machine.can_run(task, first) then return first end
  if second and machine.can_run(task, second) then return second end
  return nil
end

function place(task, machine)
  if machine.reads_tag(task, "dataset") then
    return class_for(task, machine, "gddr", "hbm")
  end
  if task.tier == "train" or task.precision == "fp64" then
    return class_for(task, machine, "hbm", "gddr")
  elseif task.tier == "preprocess" then
    return class_for(task, machine, "cpu")
  end
  return nil
end

function cache(buffer, machine)
  if buffer.tag == "dataset" then
    local gddr = machine.by_class("gddr")
    if #gddr > 0 then return gddr end
  end
  return nil
end
