-- SPDX-License-Identifier: MIT
-- tests/machines/unknown-peer.lua: a peer that is not in the machine
return {
  devices = {
    { class = "cpu", name = "host", mem_bandwidth = 50 * GB,
      fp64 = 1 * TFLOPS, fp32 = 2 * TFLOPS },
    { class = "hbm", name = "A", memory = 80 * GiB, mem_bandwidth = 3 * TB,
      link_bandwidth = 64 * GB, fp64 = 34 * TFLOPS, fp32 = 67 * TFLOPS,
      peers = { "B200" } },
  },
}
