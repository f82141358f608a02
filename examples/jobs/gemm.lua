-- SPDX-License-Identifier: MIT
-- examples/jobs/gemm.lua: tiled matrix multiplication, C = A B, checked
-- against the same product computed on the host one tile after another.
--   strata-run gemm.lua --set n=2048 --set tile=512 --set precision=float
local p = params { n = 512, tile = 128, precision = "double" }

assert(p.n % p.tile == 0, "n must be a multiple of tile")
local T, b = p.n // p.tile, p.tile
local fp = p.precision == "double" and "fp64" or "fp32"

-- One buffer per tile, each filled from its own seed.
local function matrix(name, seed)
  local m = {}
  for i = 0, T - 1 do
    m[i] = {}
    for j = 0, T - 1 do
      m[i][j] = buffer { name = name .. i .. "_" .. j, type = p.precision,
                         rows = b, cols = b,
                         fill = seed and { seed = seed + i * T + j } or 0 }
    end
  end
  return m
end
local A, B, C = matrix("A", 1), matrix("B", 100000), matrix("C", nil)

local mm = job { name = "gemm", precision = fp }
for i = 0, T - 1 do
  for j = 0, T - 1 do
    for k = 0, T - 1 do
      task { job = mm, kernel = "gemm", name = "gemm " .. i .. j .. k,
             access = { C[i][j], A[i][k], B[k][j] },
             args = { m = b, n = b, k = b } }
    end
  end
end

local tolerance = p.precision == "double" and 1e-12 or 1e-5
check(function(r)
  local worst = 0
  for i = 0, T - 1 do
    for j = 0, T - 1 do
      local ref = r.array(p.precision, b * b)
      for k = 0, T - 1 do
        r.run("gemm", { ref, A[i][k], B[k][j] }, { m = b, n = b, k = b })
      end
      local d = r.rel_diff(C[i][j], ref)
      if not (d <= tolerance) then
        return false, string.format("tile (%d,%d) differs from the host's "
          .. "product: relative difference %.2e", i, j, d)
      end
      worst = math.max(worst, d)
    end
  end
  return true, string.format("C matches the host's product (largest "
    .. "relative difference %.1e, tolerance %.0e)", worst, tolerance)
end)
