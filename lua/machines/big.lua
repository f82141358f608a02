-- SPDX-License-Identifier: MIT
-- lua/machines/big.lua: a two-socket GPU server for what-if studies on a
-- small machine: on each of 2 NUMA nodes, the socket's CPUs, 2 H100-class
-- HBM cards joined by NVLink, and 2 RTX 4090-class GDDR cards.
--
-- Where the figures come from (rounded; vendor data sheets, not
-- measurements):
--  * one server socket: 8 channels of DDR5-4800 give about 300 GB/s;
--    a few dozen cores with two 512-bit FMA units each give about
--    3 TFLOP/s FP64, twice that in FP32. Each sim worker is a host
--    thread, so 16 workers stand for the socket's cores: enough
--    concurrency for the scheduler without hundreds of threads.
--  * H100 SXM and RTX 4090: the same figures as in mixed.lua (HBM3 at
--    3.35 TB/s, 34 / 67 TFLOP/s, PCIe 5.0 x16; GDDR6X at 1.0 TB/s,
--    1.3 / 82.6 TFLOP/s, PCIe 4.0 x16), and their facts: compute
--    capability 9.0 and a 5120-bit HBM3 bus; 8.9 and a 384-bit GDDR6X
--    bus. Each card's uuid is the made-up "SIM-big-<N>" for devices[N].
--  * the two H100s of a node are NVLink peers: NVLink 4 carries 900 GB/s
--    in both directions together, about 450 GB/s each way. Cards on
--    different nodes, and the consumer cards, copy through host memory.
-- Time is modelled (transfer = bytes / bandwidth, compute = flops / rate)
-- because this machine is bigger than any the simulator runs on; set
-- skip_kernels = true to study schedules without running the kernels.
local function cpu(node)
  return {
    class = "cpu",
    name = "node" .. node .. " CPUs",
    model = "server socket (simulated)",
    mem_bandwidth = 300 * GB,
    fp64 = 3 * TFLOPS,
    fp32 = 6 * TFLOPS,
    numa = node,
    workers = 16,
  }
end

-- Peers are symmetric: the first card of a node names the second, and the
-- loader links both ways.
local function h100(node, i)
  local card = {
    class = "hbm",
    name = "node" .. node .. " H100 #" .. i .. " (simulated)",
    model = "H100 SXM (simulated)",
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
    numa = node,
    peer_bandwidth = 450 * GB,
  }
  if i == 0 then
    card.peers = { "node" .. node .. " H100 #1 (simulated)" }
  end
  return card
end

local function rtx4090(node, i)
  return {
    class = "gddr",
    name = "node" .. node .. " RTX 4090 #" .. i .. " (simulated)",
    model = "RTX 4090 (simulated)",
    memory = 24 * GiB,
    mem_bandwidth = 1.008 * TB,
    link_bandwidth = 32 * GB,
    link_latency = 5 * us,
    fp64 = 1.3 * TFLOPS,
    fp32 = 82.6 * TFLOPS,
    compute_capability = "8.9",
    memory_bus_width = 384,
    pcie = { gen = 4, width = 16 },
    numa = node,
  }
end

local devices = {}
for node = 0, 1 do
  devices[#devices + 1] = cpu(node)
  devices[#devices + 1] = h100(node, 0)
  devices[#devices + 1] = h100(node, 1)
  devices[#devices + 1] = rtx4090(node, 0)
  devices[#devices + 1] = rtx4090(node, 1)
end

return {
  name = "big",
  time = "modelled",
  skip_kernels = false,
  devices = devices,
}
