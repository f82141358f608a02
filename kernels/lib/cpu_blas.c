/* SPDX-License-Identifier: MIT */
/* kernels/lib/cpu_blas.c: the dense linear algebra kernels on CPUs,
 * through OpenBLAS (CBLAS) and LAPACKE, column-major, in floats and
 * doubles. Each body is written once, as a macro over the element type
 * and the BLAS prefix. The shapes are checked here again (library.c's
 * check functions tell the user; these keep BLAS in bounds). */
#include "config.h"

#include "kernels.h"

#include <cblas.h>
#include <lapacke.h>

#include "trsm_split.h"

/* The largest order a kernel takes (BLAS takes int dimensions). */
#define MAX_DIM ((int64_t)1 << 30)

/* m x n elements of `elem` bytes in buffer i. */
static int holds(const strata_kernel_call_t *call, uint32_t i, int64_t m,
                 int64_t n, size_t elem) {
  return sk_count(call, i, elem) == (size_t)m * (size_t)n;
}

static CBLAS_TRANSPOSE op(double flag) {
  return flag != 0 ? CblasTrans : CblasNoTrans;
}

/* C (m x n) = alpha op(A) op(B) + beta C; op(A) is m x k, op(B) k x n. */
#define GEMM(NAME, T, PREFIX)                                                  \
  int NAME(const strata_kernel_call_t *call) {                                 \
    const double *a = sk_args(call, GEMM_NARGS);                               \
    if (!a || call->nbuffers != 3)                                             \
      return STRATA_EINVAL;                                                    \
    int64_t m = sk_whole(a[GEMM_M], 1, MAX_DIM);                               \
    int64_t n = sk_whole(a[GEMM_N], 1, MAX_DIM);                               \
    int64_t k = sk_whole(a[GEMM_K], 1, MAX_DIM);                               \
    if (m < 0 || n < 0 || k < 0 || !holds(call, 0, m, n, sizeof(T)) ||         \
        !holds(call, 1, m, k, sizeof(T)) || !holds(call, 2, k, n, sizeof(T)))  \
      return STRATA_EINVAL;                                                    \
    int lda = a[GEMM_TRANSA] != 0 ? (int)k : (int)m;                           \
    int ldb = a[GEMM_TRANSB] != 0 ? (int)n : (int)k;                           \
    cblas_##PREFIX##gemm(                                                      \
        CblasColMajor, op(a[GEMM_TRANSA]), op(a[GEMM_TRANSB]), (int)m, (int)n, \
        (int)k, (T)a[GEMM_ALPHA], call->buffers[1], lda, call->buffers[2],     \
        ldb, (T)a[GEMM_BETA], call->buffers[0], (int)m);                       \
    return STRATA_OK;                                                          \
  }
GEMM(sk_gemm_f, float, s)
GEMM(sk_gemm_d, double, d)

/* C (n x n, lower) = alpha A A^T + beta C; A is n x k. */
#define SYRK(NAME, T, PREFIX)                                                  \
  int NAME(const strata_kernel_call_t *call) {                                 \
    const double *a = sk_args(call, SYRK_NARGS);                               \
    if (!a || call->nbuffers != 2)                                             \
      return STRATA_EINVAL;                                                    \
    int64_t n = sk_whole(a[SYRK_N], 1, MAX_DIM);                               \
    int64_t k = sk_whole(a[SYRK_K], 1, MAX_DIM);                               \
    if (n < 0 || k < 0 || !holds(call, 0, n, n, sizeof(T)) ||                  \
        !holds(call, 1, n, k, sizeof(T)))                                      \
      return STRATA_EINVAL;                                                    \
    cblas_##PREFIX##syrk(CblasColMajor, CblasLower, CblasNoTrans, (int)n,      \
                         (int)k, (T)a[SYRK_ALPHA], call->buffers[1], (int)n,   \
                         (T)a[SYRK_BETA], call->buffers[0], (int)n);           \
    return STRATA_OK;                                                          \
  }
SYRK(sk_syrk_f, float, s)
SYRK(sk_syrk_d, double, d)

/* B (m x n) = alpha B A^-T, A n x n lower triangular: the panel update
 * of a Cholesky factorisation, split so that most of it is a GEMM
 * (trsm_split.h). */
#define TRSM(NAME, T, PREFIX)                                                  \
  int NAME(const strata_kernel_call_t *call) {                                 \
    const double *a = sk_args(call, TRSM_NARGS);                               \
    if (!a || call->nbuffers != 2)                                             \
      return STRATA_EINVAL;                                                    \
    int64_t m = sk_whole(a[TRSM_M], 1, MAX_DIM);                               \
    int64_t n = sk_whole(a[TRSM_N], 1, MAX_DIM);                               \
    if (m < 0 || n < 0 || !holds(call, 0, m, n, sizeof(T)) ||                  \
        !holds(call, 1, n, n, sizeof(T)))                                      \
      return STRATA_EINVAL;                                                    \
    trsm_split_##PREFIX((int)m, (int)n, (T)a[TRSM_ALPHA], call->buffers[1],    \
                        (int)n, call->buffers[0], (int)m);                     \
    return STRATA_OK;                                                          \
  }
TRSM(sk_trsm_f, float, s)
TRSM(sk_trsm_d, double, d)

/* A (n x n) = L L^T, lower. LAPACK's positive info (the leading minor of
 * that order is not positive definite) fails the task as the kernel's
 * status. */
#define POTRF(NAME, T, PREFIX)                                                 \
  int NAME(const strata_kernel_call_t *call) {                                 \
    const double *a = sk_args(call, POTRF_NARGS);                              \
    if (!a || call->nbuffers != 1)                                             \
      return STRATA_EINVAL;                                                    \
    int64_t n = sk_whole(a[POTRF_N], 1, MAX_DIM);                              \
    if (n < 0 || !holds(call, 0, n, n, sizeof(T)))                             \
      return STRATA_EINVAL;                                                    \
    return LAPACKE_##PREFIX##potrf_work(LAPACK_COL_MAJOR, 'L', (int)n,         \
                                        call->buffers[0], (int)n);             \
  }
POTRF(sk_potrf_f, float, s)
POTRF(sk_potrf_d, double, d)
