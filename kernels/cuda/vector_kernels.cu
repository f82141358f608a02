// SPDX-License-Identifier: MIT
// kernels/cuda/vector_kernels.cu: the vector kernels' device code and
// their launches (see scuk.h). Grid-stride loops, so one launch shape
// serves any length; the checksum runs as a single block with a fixed
// reduction tree, so its result is the same on every card and every run.
#include <cuda_runtime.h>

#include "scuk.h"

namespace {

constexpr int kThreads = 256;
constexpr size_t kMaxBlocks = 4096;

__global__ void fill_kernel(double *x, size_t n, double v) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x)
    x[i] = v;
}

__global__ void scale_kernel(double *x, size_t n, double v) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x)
    x[i] *= v;
}

__global__ void axpy_kernel(double *y, const double *x, size_t n, double a) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x)
    y[i] += a * x[i];
}

__global__ void checksum_kernel(const double *x, size_t n, double *out) {
  __shared__ double part[kThreads];
  double s = 0.0;
  for (size_t i = threadIdx.x; i < n; i += kThreads)
    s += x[i];
  part[threadIdx.x] = s;
  __syncthreads();
  for (int w = kThreads / 2; w > 0; w /= 2) {
    if (threadIdx.x < w)
      part[threadIdx.x] += part[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0)
    *out = part[0];
}

unsigned blocks_for(size_t n) {
  size_t b = (n + kThreads - 1) / kThreads;
  return (unsigned)(b < 1 ? 1 : b > kMaxBlocks ? kMaxBlocks : b);
}

// Peeked, not taken: the backend reads the launch's error after the
// kernel function returns, to name it and to tell a lost card.
int launched() { return (int)cudaPeekAtLastError(); }

} // namespace

extern "C" int scuk_launch_fill(double *x, size_t n, double v, void *stream) {
  fill_kernel<<<blocks_for(n), kThreads, 0, (cudaStream_t)stream>>>(x, n, v);
  return launched();
}

extern "C" int scuk_launch_scale(double *x, size_t n, double v, void *stream) {
  scale_kernel<<<blocks_for(n), kThreads, 0, (cudaStream_t)stream>>>(x, n, v);
  return launched();
}

extern "C" int scuk_launch_axpy(double *y, const double *x, size_t n, double a,
                                void *stream) {
  axpy_kernel<<<blocks_for(n), kThreads, 0, (cudaStream_t)stream>>>(y, x, n,
                                                                    a);
  return launched();
}

extern "C" int scuk_launch_checksum(const double *x, size_t n, double *out,
                                    void *stream) {
  checksum_kernel<<<1, kThreads, 0, (cudaStream_t)stream>>>(x, n, out);
  return launched();
}
