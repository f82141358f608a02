-- SPDX-License-Identifier: MIT
-- lua/machines/mixed.lua: the development "mixed machine": the host CPUs,
-- one H100-class HBM card and one RTX 4090-class GDDR card, all on NUMA
-- node 0. It is what strata-run simulates when no GPU is present.
--
-- Where the figures come from (rounded; vendor data sheets, not
-- measurements, except where said):
--  * host CPUs: a modest 2-worker development box. About 50 GB/s of DRAM
--    bandwidth (dual-channel DDR5 class) and about 1 TFLOP/s FP64 with
--    FP32 twice that (wide SIMD FMA on a handful of cores). The workers
--    match the 2-core machines the tests run on.
--  * H100 SXM: 80 GiB of HBM3 at 3.35 TB/s, FP64 34 TFLOP/s and FP32
--    67 TFLOP/s without tensor cores, ECC on, reached over a PCIe 5.0 x16
--    host link (about 64 GB/s per direction). Compute capability 9.0,
--    a 5120-bit HBM3 bus.
--  * RTX 4090: 24 GiB of GDDR6X at about 1.0 TB/s (1008 GB/s), FP32
--    82.6 TFLOP/s but FP64 at 1/64 of that (about 1.3 TFLOP/s), no ECC,
--    PCIe 4.0 x16 host link (about 32 GB/s per direction). Compute
--    capability 8.9 (Ada), a 384-bit GDDR6X bus.
-- The cards get made-up uuids ("SIM-mixed-2", "SIM-mixed-3"); the CPUs have
-- none of the card facts.
-- No peers: a consumer card has no peer-to-peer path to a server card, so
-- copies between the two go through host memory.
-- Health figures are plausible readings under moderate load, below the
-- default alert thresholds (85 degrees C, 300 W).
return {
  name = "mixed",
  time = "real",
  devices = {
    {
      class = "cpu",
      name = "host CPUs",
      mem_bandwidth = 50 * GB,
      fp64 = 1 * TFLOPS,
      fp32 = 2 * TFLOPS,
      numa = 0,
      workers = 2,
    },
    {
      class = "hbm",
      name = "H100 SXM (simulated)",
      memory = 80 * GiB,
      mem_bandwidth = 3.35 * TB,
      link_bandwidth = 64 * GB,
      link_latency = 5 * us,
      fp64 = 34 * TFLOPS,
      fp32 = 67 * TFLOPS,
      ecc = true,
      compute_capability = "9.0",
      memory_bus_width = 5120,
      pcie = { gen = 5, width = 16 },
      numa = 0,
      health = { temperature = 45, power = 300 },
    },
    {
      class = "gddr",
      name = "RTX 4090 (simulated)",
      memory = 24 * GiB,
      mem_bandwidth = 1.008 * TB,
      link_bandwidth = 32 * GB,
      link_latency = 5 * us,
      fp64 = 1.3 * TFLOPS,
      fp32 = 82.6 * TFLOPS,
      ecc = false,
      compute_capability = "8.9",
      memory_bus_width = 384,
      pcie = { gen = 4, width = 16 },
      numa = 0,
      health = { temperature = 50, power = 280 },
    },
  },
}
