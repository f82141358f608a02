/* SPDX-License-Identifier: MIT */
/* kernels/lib/kernels_cuda.h: the CUDA code of the kernel library
 * (kernels/lib/cuda.c over cuBLAS and cuSOLVER through kernels/cuda, and
 * the nvcc kernels of kernels/lib/cuda_vector.cu). Same arguments and
 * checks as the CPU code (kernels.h); each queues its work on the call's
 * stream and returns, but potrf, which waits for its answer. A CUDA or
 * library failure returns STRATA_EBACKEND.
 * @thread any worker thread */
#ifndef STRATA_KERNELS_CUDA_H
#define STRATA_KERNELS_CUDA_H

#include <stddef.h>

#include <strata/kernel.h>

#ifdef __cplusplus
extern "C" {
#endif

int skc_gemm_f(const strata_kernel_call_t *call);
int skc_gemm_d(const strata_kernel_call_t *call);
int skc_syrk_f(const strata_kernel_call_t *call);
int skc_syrk_d(const strata_kernel_call_t *call);
int skc_trsm_f(const strata_kernel_call_t *call);
int skc_trsm_d(const strata_kernel_call_t *call);
int skc_potrf_f(const strata_kernel_call_t *call);
int skc_potrf_d(const strata_kernel_call_t *call);
int skc_fill_f(const strata_kernel_call_t *call);
int skc_fill_d(const strata_kernel_call_t *call);
int skc_copy_f(const strata_kernel_call_t *call);
int skc_copy_d(const strata_kernel_call_t *call);
int skc_convert_f(const strata_kernel_call_t *call);
int skc_convert_d(const strata_kernel_call_t *call);
int skc_axpy_f(const strata_kernel_call_t *call);
int skc_axpy_d(const strata_kernel_call_t *call);
int skc_scale_f(const strata_kernel_call_t *call);
int skc_scale_d(const strata_kernel_call_t *call);
int skc_checksum_f(const strata_kernel_call_t *call);
int skc_checksum_d(const strata_kernel_call_t *call);
int skc_normalise_f(const strata_kernel_call_t *call);
int skc_normalise_d(const strata_kernel_call_t *call);
int skc_spin(const strata_kernel_call_t *call);

/* Launches (cuda_vector.cu); `dbl` picks doubles over floats. Each returns
 * a cudaError_t as int: 0, or why the launch failed. */
int skc_launch_fill(int dbl, void *x, size_t n, size_t order, double value,
                    unsigned long long seed, double diagonal, int symmetric,
                    void *stream);
int skc_launch_copy(int dbl, void *y, const void *x, size_t n, size_t order,
                    void *stream);
int skc_launch_convert(int dbl, void *y, const void *x, size_t n, void *stream);
int skc_launch_axpy(int dbl, void *y, const void *x, size_t n, double alpha,
                    void *stream);
int skc_launch_scale(int dbl, void *x, size_t n, double alpha, void *stream);
int skc_launch_checksum(int dbl, const void *x, size_t n, void *out,
                        void *stream);
int skc_launch_normalise(int dbl, void *x, size_t rows, size_t cols,
                         void *stream);
int skc_launch_spin(long long iterations, void *stream);

#ifdef __cplusplus
}
#endif

#endif /* STRATA_KERNELS_CUDA_H */
