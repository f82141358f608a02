-- SPDX-License-Identifier: MIT
-- examples/jobs/render.lua: a render farm's split of a mixed machine
-- (placed by render-policy.lua, which this file names):
--  * final frames (every `final_every`-th): each tile shaded in many FP32
--    passes (a GEMM with the scene's shading matrix per pass) on the HBM
--    cards;
--  * the frames between: a preview, one pass and a denoise (normalise),
--    on the GDDR cards;
--  * assembly on the CPUs: a checksum per tile, summed into one per
--    frame.
-- The check renders every frame again on the host and compares the
-- checksums.
--   strata-run render.lua --set frames=24 --set passes=16
local p = params { frames = 8, tiles = 4, pixels = 256, passes = 8,
                   final_every = 4 }
policy "render-policy.lua"

local px = p.pixels
local square = { m = px, n = px, k = px, beta = 0 }
local shading = buffer { name = "shading", type = "float", rows = px,
                         cols = px, fill = { seed = 3 } }
-- Scale the shading matrix so that repeated passes stay in range.
local shade = job { name = "scene", tier = "assemble" }
task { job = shade, kernel = "scale", access = { shading },
       args = { alpha = 1 / px } }

local final = job { name = "final", tier = "final", precision = "fp32" }
local preview = job { name = "preview", tier = "preview", precision = "fp32" }
local assemble = job { name = "assemble", tier = "assemble" }

local function is_final(f) return f % p.final_every == 0 end

local frame_sum, tile_in = {}, {}
for f = 0, p.frames - 1 do
  frame_sum[f] = buffer { name = "frame" .. f, type = "float", count = 1 }
  tile_in[f] = {}
  for t = 0, p.tiles - 1 do
    local seed = 1 + f * p.tiles + t
    local a = buffer { name = "tile" .. f .. "_" .. t, type = "float",
                       rows = px, cols = px, fill = { seed = seed } }
    local b = buffer { name = "work" .. f .. "_" .. t, type = "float",
                       rows = px, cols = px }
    tile_in[f][t] = seed
    local out
    if is_final(f) then
      for pass = 1, p.passes do
        local src, dst = pass % 2 == 1 and a or b, pass % 2 == 1 and b or a
        task { job = final, kernel = "gemm", access = { dst, src, shading },
               args = square, name = "shade " .. f .. "." .. t .. "." .. pass }
        out = dst
      end
    else
      task { job = preview, kernel = "gemm", access = { b, a, shading },
             args = square, name = "preview " .. f .. "." .. t }
      task { job = preview, kernel = "normalise", access = { b },
             args = { rows = px }, name = "denoise " .. f .. "." .. t }
      out = b
    end
    local s = buffer { name = "sum" .. f .. "_" .. t, type = "float",
                       count = 1 }
    task { job = assemble, kernel = "checksum", access = { out, s },
           name = "checksum " .. f .. "." .. t }
    task { job = assemble, kernel = "axpy", access = { frame_sum[f], s },
           args = { alpha = 1 }, name = "assemble " .. f }
  end
end

check(function(r)
  local S = r.array("float", px * px)
  r.run("fill", { S }, { seed = 3 })
  r.run("scale", { S }, { alpha = 1 / px })
  local worst = 0
  for f = 0, p.frames - 1 do
    local total = 0
    for t = 0, p.tiles - 1 do
      local a, b = r.array("float", px * px), r.array("float", px * px)
      r.run("fill", { a }, { seed = tile_in[f][t] })
      local out = a
      local passes = is_final(f) and p.passes or 1
      for pass = 1, passes do
        local src, dst = pass % 2 == 1 and a or b, pass % 2 == 1 and b or a
        r.run("gemm", { dst, src, S }, square)
        out = dst
      end
      if not is_final(f) then r.run("normalise", { out }, { rows = px }) end
      total = total + r.sum(out)
    end
    local got = r.get(frame_sum[f], 1)
    local d = math.abs(got - total) / math.max(1, math.abs(total))
    if not (d <= 1e-3) then
      return false, string.format("frame %d: checksum %.6g, the host's "
        .. "%.6g", f, got, total)
    end
    worst = math.max(worst, d)
  end
  return true, string.format("%d frame checksums match the host's "
    .. "(largest relative difference %.1e)", p.frames, worst)
end)
