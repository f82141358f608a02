/* SPDX-License-Identifier: MIT */
/* kernels/cuda/scuk.h: CUDA implementations of the kernels the tests, the
 * examples and the launcher run on GPUs: vector kernels compiled by nvcc
 * (fill, axpy, scale, checksum) and tile kernels of dense linear algebra
 * through cuBLAS and cuSOLVER (dgemm, dsyrk, dtrsm, dpotrf).
 *
 * Each is a strata_kernel_fn for STRATA_IMPL_CUDA: it queues its work on
 * call->stream (the worker's stream, on the worker's current device) and
 * returns, so the task ends when the stream has done it. Buffers are
 * device (or managed) addresses. A wrong argument block or buffer size
 * returns STRATA_EINVAL without queuing anything; a CUDA or library error
 * returns STRATA_EBACKEND (the task fails; a sticky error is then seen by
 * the backend at the stream's event).
 *
 * cuBLAS and cuSOLVER are loaded at the first tile kernel, by their
 * sonames (libcublas.so.13, libcusolver.so.12): a program that only
 * registers these kernels never maps their ~700 MB, and a machine without
 * them fails those tasks with one error line instead of failing to start.
 * Handles are per thread (each worker has its own stream) and destroyed
 * when the thread exits.
 *
 * Thread-safety: every function may be called from any number of worker
 * threads at once. */
#ifndef STRATA_SCUK_H
#define STRATA_SCUK_H

#include <stddef.h>
#include <stdint.h>

#include <strata/kernel.h>

#ifdef __cplusplus
extern "C" {
#endif

/* {=== Vector kernels (doubles) ===} */

/** fill: buffer 0 (W) = value. Arguments: scuk_scalar_args_t. */
int scuk_fill(const strata_kernel_call_t *call);
/** scale: buffer 0 (RW) *= value. Arguments: scuk_scalar_args_t. */
int scuk_scale(const strata_kernel_call_t *call);
/** axpy: buffer 0 (RW) += value * buffer 1 (R, same size). Arguments:
 *  scuk_scalar_args_t. */
int scuk_axpy(const strata_kernel_call_t *call);
/** checksum: buffer 1 (W, one double) = the sum of buffer 0 (R), the
 *  elements added in a fixed order, so the result does not depend on
 *  the card or the launch. No arguments. */
int scuk_checksum(const strata_kernel_call_t *call);

typedef struct scuk_scalar_args {
  double value;
} scuk_scalar_args_t;

/* {=== Tile kernels (column-major b x b tiles of doubles) ===} */

/** The arguments of a tile task: it writes tile (m, n) at step k of a
 *  factorisation (m, n, k are for the application); b is the order. */
typedef struct scuk_tile_args {
  int32_t m, n, k, b;
} scuk_tile_args_t;

/** dpotrf: A (buffer 0, RW) = L L^T, lower. A matrix that is not
 *  positive definite fails the task: it returns LAPACK's info (> 0, the
 *  order of the leading minor that is not), after waiting for the
 *  stream. */
int scuk_dpotrf(const strata_kernel_call_t *call);
/** dtrsm: A (buffer 0, RW) = A L^-T, L = buffer 1 (R, lower). */
int scuk_dtrsm(const strata_kernel_call_t *call);
/** dsyrk: C (buffer 0, RW) -= A A^T (lower), A = buffer 1 (R). */
int scuk_dsyrk(const strata_kernel_call_t *call);
/** dgemm: C (buffer 0, RW) -= A B^T, A = buffer 1, B = buffer 2 (R). */
int scuk_dgemm(const strata_kernel_call_t *call);

/* {=== General calls (the kernel library's), column-major ===}
 * Each queues its work on `stream` with this thread's handles, and
 * returns 0, or STRATA_EBACKEND (the libraries are missing, a handle
 * could not be made, or cuBLAS refused the call). */

typedef enum scuk_type { SCUK_FLOAT, SCUK_DOUBLE } scuk_type_t;

/** C (m x n) = alpha op(A) op(B) + beta C. */
int scuk_gemm(scuk_type_t t, void *stream, int transa, int transb, int m, int n,
              int k, double alpha, const void *a, int lda, const void *b,
              int ldb, double beta, void *c, int ldc);
/** C (n x n, lower) = alpha A A^T + beta C, A n x k. */
int scuk_syrk(scuk_type_t t, void *stream, int n, int k, double alpha,
              const void *a, int lda, double beta, void *c, int ldc);
/** B (m x n) = alpha B A^-T, A n x n lower triangular. */
int scuk_trsm_rlt(scuk_type_t t, void *stream, int m, int n, double alpha,
                  const void *a, int lda, void *b, int ldb);
/** A (n x n) = L L^T, lower; waits for the stream and returns LAPACK's
 *  info (> 0: not positive definite), or STRATA_EBACKEND. */
int scuk_potrf_lower(scuk_type_t t, void *stream, int n, void *a, int lda);

/** Why the tile kernels cannot run here (cuBLAS or cuSOLVER missing), or
 *  NULL when they can. Loads the libraries on the first call.
 *  @own static */
const char *scuk_blas_error(void);

/* {=== Launches (vector_kernels.cu), for the wrappers above ===} */

/* Each returns a cudaError_t as int: 0, or why the launch failed. */
int scuk_launch_fill(double *x, size_t n, double v, void *stream);
int scuk_launch_scale(double *x, size_t n, double v, void *stream);
int scuk_launch_axpy(double *y, const double *x, size_t n, double a,
                     void *stream);
int scuk_launch_checksum(const double *x, size_t n, double *out, void *stream);

#ifdef __cplusplus
}
#endif

#endif /* STRATA_SCUK_H */
