// SPDX-License-Identifier: MIT
// bench/gpu_kernels.cu: device code of strata-gpubench: an empty kernel
// (the cost of a launch) and one that spins for a number of clock cycles
// (compute of a chosen length, for the copy/compute overlap).
#include <cuda_runtime.h>
#include <stdint.h>

namespace {
__global__ void empty_kernel() {}

__global__ void spin_kernel(long long cycles) {
  long long start = clock64();
  while (clock64() - start < cycles) {
  }
}
} // namespace

extern "C" int bench_empty_launch(void *stream) {
  empty_kernel<<<1, 1, 0, (cudaStream_t)stream>>>();
  return (int)cudaPeekAtLastError();
}

extern "C" int bench_spin_launch(long long cycles, void *stream) {
  spin_kernel<<<1, 1, 0, (cudaStream_t)stream>>>(cycles);
  return (int)cudaPeekAtLastError();
}
