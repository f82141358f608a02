-- SPDX-License-Identifier: MIT
-- lua/policies/dataset-cache.lua: the consumer cards as a cache for the
-- dataset. Buffers tagged "dataset" (strata_buffer_set_tag) are kept on
-- the GDDR cards and prefetched there ahead of the tasks that read them;
-- tasks that read a dataset buffer run on those cards (the data is
-- already there); everything else follows the tiers of tiered.lua: FP64
-- and training on HBM, preprocessing on the CPUs.

local function cards(task, machine, class)
  local out = {}
  for _, d in ipairs(machine.by_class(class)) do
    if machine.can_run(task, d) then out[#out + 1] = d end
  end
  if #out > 0 then return out end
  return nil
end

local function reads_dataset(task)
  for _, b in ipairs(task.buffers) do
    if b.tag == "dataset" and b.mode ~= "w" then return true end
  end
  return false
end

function place(task, machine)
  if reads_dataset(task) then
    return cards(task, machine, "gddr") or cards(task, machine, "hbm")
  end
  if task.tier == "train" or task.precision == "fp64" then
    return cards(task, machine, "hbm") or cards(task, machine, "gddr")
  elseif task.tier == "preprocess" then
    return cards(task, machine, "cpu")
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
