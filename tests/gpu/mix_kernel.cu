// SPDX-License-Identifier: MIT
// tests/gpu/mix_kernel.cu: the test DAGs' "mix" kernel (tests/dag.c) as
// device code, so that the coherence DAGs run on real cards with real
// kernels: the same hash chain, one thread, over the device copies of the
// task's buffers. Its results must equal the CPU's bit for bit.
#include <cuda_runtime.h>
#include <stdint.h>

#include "gpu_mix.h"

namespace {

__device__ uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  return x ^ (x >> 33);
}

__global__ void mix_kernel(gpu_mix_launch_t l) {
  uint64_t h = mix64(l.id + 1);
  for (uint32_t i = 0; i < l.n; i++)
    if (l.mode[i] & GPU_MIX_R)
      for (uint32_t w = 0; w < l.words; w++)
        h = mix64(h ^ l.bufs[i][w]);
  for (uint32_t i = 0; i < l.n; i++) {
    if (!(l.mode[i] & GPU_MIX_W))
      continue;
    for (uint32_t w = 0; w < l.words; w++) {
      uint64_t v = mix64(h + i * 31 + (uint64_t)w);
      l.bufs[i][w] = (l.mode[i] & GPU_MIX_R) ? l.bufs[i][w] ^ v : v;
    }
  }
}

// Writes where no allocation is: the illegal address a buggy kernel
// makes, which leaves the card's context unusable (a sticky error).
__global__ void fault_kernel(uint64_t *p) { p[(size_t)1 << 40] = 1; }

} // namespace

extern "C" int gpu_mix_launch(const gpu_mix_launch_t *l, void *stream) {
  mix_kernel<<<1, 1, 0, (cudaStream_t)stream>>>(*l);
  return (int)cudaPeekAtLastError();
}

extern "C" int gpu_fault_launch(void *p, void *stream) {
  fault_kernel<<<1, 1, 0, (cudaStream_t)stream>>>((uint64_t *)p);
  return (int)cudaPeekAtLastError();
}
