-- SPDX-License-Identifier: MIT
-- examples/jobs/pipeline.lua: the three-tier flow of a mixed machine, and
-- strata-run's default job.
--
--  * preprocess (CPUs): each raw batch is normalised (every feature to
--    mean 0, deviation 1) and labelled from a known linear model; the
--    held-out batches the same, in floats.
--  * train (HBM cards, FP64): gradient descent on the weights W of a
--    linear model, three GEMM-based tasks a step: R = X W, R = R - Y,
--    W = W - lr/s X^T R, over every batch for several epochs.
--  * validate (GDDR cards, FP32): W converted to floats, then inference
--    over the held-out batches, tagged "dataset" so that a caching policy
--    (lua/policies/dataset-cache.lua) keeps them on the consumer card,
--    and the error of each prediction.
--
-- The check replays the training on the host, one step after another, and
-- compares the weights; and it asks the validation error to be small.
--   strata-run pipeline.lua --set epochs=8 --set batches=32
local p = params {
  batches = 12,   -- training batches
  holdout = 4,    -- validation batches
  samples = 512,  -- rows of a batch
  features = 128, -- columns of a batch, rows of W
  outputs = 32,   -- columns of W
  epochs = 3,
  lr = 0.5,       -- learning rate
}
local s, f, o = p.samples, p.features, p.outputs

local prep = job { name = "preprocess", tier = "preprocess" }
local train = job { name = "train", tier = "train", precision = "fp64" }
local valid = job { name = "validate", tier = "validate", precision = "fp32" }

-- The model the labels come from, in both precisions.
local W_true = buffer { name = "W_true", type = "double", rows = f, cols = o,
                        fill = { seed = 7 } }
local W_true32 = buffer { name = "W_true32", type = "float", rows = f, cols = o }
task { job = prep, kernel = "convert", access = { W_true32, W_true } }

-- A batch, normalised and labelled: the preprocessing of one batch.
local function batch(name, type, seed, tag)
  local X = buffer { name = "X_" .. name, type = type, rows = s, cols = f,
                     fill = { seed = seed }, tag = tag }
  local Y = buffer { name = "Y_" .. name, type = type, rows = s, cols = o }
  task { job = prep, kernel = "normalise", name = "normalise " .. name,
         access = { X }, args = { rows = s } }
  task { job = prep, kernel = "gemm", name = "label " .. name,
         access = { Y, X, type == "double" and W_true or W_true32 },
         args = { m = s, n = o, k = f, beta = 0 } }
  return X, Y
end

local X, Y = {}, {}
for b = 1, p.batches do
  X[b], Y[b] = batch("train" .. b, "double", 100 + b)
end
local Xv, Yv = {}, {}
for h = 1, p.holdout do
  Xv[h], Yv[h] = batch("valid" .. h, "float", 1000 + h, "dataset")
end

-- Training: W starts at zero.
local W = buffer { name = "W", type = "double", rows = f, cols = o }
local R = buffer { name = "R", type = "double", rows = s, cols = o }
for e = 1, p.epochs do
  for b = 1, p.batches do
    local step = " e" .. e .. " b" .. b
    task { job = train, kernel = "gemm", name = "forward" .. step,
           access = { R, X[b], W }, args = { m = s, n = o, k = f, beta = 0 } }
    task { job = train, kernel = "axpy", name = "residual" .. step,
           access = { R, Y[b] }, args = { alpha = -1 } }
    task { job = train, kernel = "gemm", name = "update" .. step,
           access = { W, X[b], R },
           args = { m = f, n = o, k = s, transa = true, alpha = -p.lr / s } }
  end
end

-- Validation: the trained weights in floats, a prediction per held-out
-- batch, and its error against the labels.
local W32 = buffer { name = "W32", type = "float", rows = f, cols = o }
task { job = valid, kernel = "convert", access = { W32, W } }
local E = {}
for h = 1, p.holdout do
  E[h] = buffer { name = "E" .. h, type = "float", rows = s, cols = o }
  task { job = valid, kernel = "gemm", name = "predict " .. h,
         access = { E[h], Xv[h], W32 }, args = { m = s, n = o, k = f, beta = 0 } }
  task { job = valid, kernel = "axpy", name = "error " .. h,
         access = { E[h], Yv[h] }, args = { alpha = -1 } }
end

check(function(r)
  -- The training replayed on the host, in the order the job gave.
  local Wref, Rref = r.array("double", f * o), r.array("double", s * o)
  for e = 1, p.epochs do
    for b = 1, p.batches do
      r.run("gemm", { Rref, X[b], Wref }, { m = s, n = o, k = f, beta = 0 })
      r.run("axpy", { Rref, Y[b] }, { alpha = -1 })
      r.run("gemm", { Wref, X[b], Rref },
            { m = f, n = o, k = s, transa = true, alpha = -p.lr / s })
    end
  end
  local dw = r.rel_diff(W, Wref)
  if not (dw <= 1e-10) then
    return false, string.format("the trained weights differ from the "
      .. "sequential computation's (relative difference %.2e)", dw)
  end
  -- The validation error, relative to the labels.
  local num, den = 0, 0
  for h = 1, p.holdout do
    num = num + r.norm(E[h]) ^ 2
    den = den + r.norm(Yv[h]) ^ 2
  end
  local err = math.sqrt(num / den)
  local limit = 0.5 ^ p.epochs -- what the descent should reach at least
  if not (err <= limit) then
    return false, string.format("validation error %.3g is above %.3g",
      err, limit)
  end
  return true, string.format("weights match the sequential training "
    .. "(relative difference %.1e); validation error %.2e", dw, err)
end)
