-- SPDX-License-Identifier: MIT
-- tests/machines/peer-bandwidth-range.lua: a peer bandwidth of 1 B/s
return {
  devices = {
    { class = "hbm", name = "H", memory = 80 * GiB, mem_bandwidth = 3 * TB,
      link_bandwidth = 64 * GB, fp64 = 34 * TFLOPS, fp32 = 67 * TFLOPS,
      peers = { "H2" }, peer_bandwidth = 1 },
    { class = "hbm", name = "H2", memory = 80 * GiB, mem_bandwidth = 3 * TB,
      link_bandwidth = 64 * GB, fp64 = 34 * TFLOPS, fp32 = 67 * TFLOPS },
  },
}
