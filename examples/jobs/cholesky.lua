-- SPDX-License-Identifier: MIT
-- examples/jobs/cholesky.lua: tiled Cholesky factorisation A = L L^T of a
-- symmetric positive definite matrix, right-looking, one task per tile
-- update (potrf, trsm, syrk, gemm); the runtime derives the dependencies
-- from the tiles each task reads and writes. The check computes the
-- relative residual ||A - L L^T||_F / ||A||_F on the host.
--   strata-run cholesky.lua --set n=8192 --set tile=512 --set precision=float
local p = params { n = 2304, tile = 192, precision = "double" }

assert(p.n % p.tile == 0, "n must be a multiple of tile")
local T, b = p.n // p.tile, p.tile
local fp = p.precision == "double" and "fp64" or "fp32"

-- The lower triangle's tiles. A is symmetric with entries in [-0.5, 0.5)
-- and n added to its diagonal: diagonally dominant, hence positive
-- definite and well conditioned. Each tile is made from its own seed, so
-- the check can make it again.
local function contents(i, j)
  return { seed = 1 + i * T + j, symmetric = i == j,
           diagonal = i == j and p.n or 0 }
end
local L = {}
for i = 0, T - 1 do
  L[i] = {}
  for j = 0, i do
    L[i][j] = buffer { name = "L" .. i .. "_" .. j, type = p.precision,
                       rows = b, cols = b, fill = contents(i, j) }
  end
end

-- Priorities favour the tasks nearest the next panel (the critical
-- path): the earlier the step k and the nearer the tile to the diagonal,
-- the higher (2T - 2k - i - j, the usual heuristic for tiled Cholesky).
local chol = job { name = "cholesky", precision = fp }
for k = 0, T - 1 do
  task { job = chol, kernel = "potrf", name = "potrf " .. k,
         access = { L[k][k] }, args = { n = b }, priority = 2 * T - 2 * k }
  for i = k + 1, T - 1 do
    task { job = chol, kernel = "trsm", name = "trsm " .. i .. "," .. k,
           access = { L[i][k], L[k][k] }, args = { m = b, n = b },
           priority = 2 * T - 2 * k - i }
  end
  for i = k + 1, T - 1 do
    task { job = chol, kernel = "syrk", name = "syrk " .. i .. "," .. k,
           access = { L[i][i], L[i][k] },
           args = { n = b, k = b, alpha = -1 },
           priority = 2 * T - 2 * k - 2 * i }
    for j = k + 1, i - 1 do
      task { job = chol, kernel = "gemm",
             name = "gemm " .. i .. "," .. j .. "," .. k,
             access = { L[i][j], L[i][k], L[j][k] },
             args = { m = b, n = b, k = b, alpha = -1, transb = true },
             priority = 2 * T - 2 * k - i - j }
    end
  end
end

local limit = p.precision == "double" and 1e-10 or 1e-4
check(function(r)
  -- The factor's diagonal tiles hold A's upper triangle above L's.
  local low = {}
  for k = 0, T - 1 do
    low[k] = r.array(p.precision, b * b)
    r.run("copy", { low[k], L[k][k] }, { lower = true })
  end
  local function factor(i, k) return i == k and low[k] or L[i][k] end
  local num, den = 0, 0
  for i = 0, T - 1 do
    for j = 0, i do
      local tile = r.array(p.precision, b * b)
      r.run("fill", { tile }, contents(i, j))
      local weight = i == j and 1 or 2 -- the upper triangle's mirror
      den = den + weight * r.norm(tile) ^ 2
      for k = 0, j do
        r.run("gemm", { tile, factor(i, k), factor(j, k) },
              { m = b, n = b, k = b, alpha = -1, transb = true })
      end
      num = num + weight * r.norm(tile) ^ 2
    end
  end
  local residual = math.sqrt(num / den)
  return residual <= limit, string.format("relative residual %.1e (limit "
    .. "%.0e)", residual, limit)
end)
