-- SPDX-License-Identifier: MIT
-- lua/policies/tiered.lua: the three tiers of a mixed machine, the default
-- policy (built into the library).
--
--  * Training, and anything in FP64, runs on the HBM cards (server GPUs:
--    strong FP64, ECC). FP64 stays off the GDDR cards, whose FP64 rate is
--    a fraction of their FP32 rate, unless the machine has no HBM card.
--  * Validation, and FP32/FP16/BF16 inference, runs on the GDDR cards
--    (consumer GPUs: fast FP32), else on the HBM cards.
--  * Preprocessing runs on the CPUs.
--  * A card that crossed a health threshold (alert) gets no new work until
--    every alert it raised has cleared (or the policy is reloaded); its
--    tier falls back to the next class meanwhile.
--  * Anything else: no opinion, the runtime's least-loaded placement.
--  * When a card is full, its evicted data goes to pinned host memory
--    (to host memory without a pinned tier), never to disk.
-- Answers depend only on (kernel, tier, precision) and the alerts, so they
-- are marked cacheable: repeated shapes skip Lua (an alert clears the
-- cache).

local drained = {}  -- device name -> { metric = true } while alerts stand

local function usable(task, machine, class)
  local out = {}
  for _, d in ipairs(machine.by_class(class)) do
    if not drained[d.name] and machine.can_run(task, d) then
      out[#out + 1] = d
    end
  end
  if #out > 0 then return out end
  return nil
end

local function first_usable(task, machine, classes)
  for _, class in ipairs(classes) do
    local set = usable(task, machine, class)
    if set then return set end
  end
  return nil
end

function place(task, machine)
  local tier, precision = task.tier, task.precision
  -- The tier decides before the precision, except that FP64 always wants
  -- an HBM card: FP32 preprocessing stays on the CPUs.
  if tier == "train" or precision == "fp64" then
    return first_usable(task, machine, { "hbm", "gddr", "cpu" }), true
  elseif tier == "preprocess" then
    return first_usable(task, machine, { "cpu" }), true
  elseif tier == "validate" or tier == "inference" or precision == "fp32"
      or precision == "fp16" or precision == "bf16" then
    return first_usable(task, machine, { "gddr", "hbm", "cpu" }), true
  end
  return nil, true
end

function alert(device, metric, value)
  if device.class ~= "cpu" then
    drained[device.name] = drained[device.name] or {}
    drained[device.name][metric] = true
  end
end

function alert_cleared(device, metric, value)
  local d = drained[device.name]
  if d then
    d[metric] = nil
    if next(d) == nil then drained[device.name] = nil end
  end
end

local pinned  -- is there a pinned tier? (looked up once)

function evict(buffer, node, machine)
  if node.kind ~= "device" then
    return nil  -- host memory: the runtime's tiers
  end
  if pinned == nil then
    pinned = false
    for _, n in ipairs(machine.nodes) do
      if n.kind == "pinned" then pinned = true end
    end
  end
  return pinned and "pinned" or "host"
end
