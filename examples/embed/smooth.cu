// SPDX-License-Identifier: MIT
// examples/embed/smooth.cu: host.c's smoothing filter on a CUDA device,
// launched on the worker's stream (the runtime waits for it there).
#include <cuda_runtime.h>

#include "smooth.h"

namespace {

__global__ void smooth_kernel(double *y, const double *x, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x) {
    double l = x[i ? i - 1 : 0], r = x[i + 1 < n ? i + 1 : i];
    y[i] = (l + x[i] + r) / 3.0;
  }
}

} // namespace

extern "C" int smooth_cuda(const strata_kernel_call_t *call) {
  if (call->nbuffers != 2 || call->sizes[0] != call->sizes[1])
    return STRATA_EINVAL;
  size_t n = call->sizes[0] / sizeof(double);
  unsigned blocks = (unsigned)((n + 255) / 256 < 4096 ? (n + 255) / 256 : 4096);
  smooth_kernel<<<blocks ? blocks : 1, 256, 0, (cudaStream_t)call->stream>>>(
      (double *)call->buffers[0], (const double *)call->buffers[1], n);
  return cudaPeekAtLastError() == cudaSuccess ? STRATA_OK : STRATA_EBACKEND;
}
