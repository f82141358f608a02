/* SPDX-License-Identifier: MIT */
/* kernels/lib/trsm_split.h: the Cholesky panel solve B = B L^-T (B m x n,
 * L n x n lower, column-major) as a recursion that hands most of its
 * flops to GEMM. OpenBLAS's own right-side trsm on a 512 tile runs at
 * about 60% of its GEMM on one core; splitting L in halves,
 *
 *   X1 = B1 L11^-T,  B2 -= X1 L21^T,  X2 = B2 L22^-T,
 *
 * down to TRSM_SPLIT_BASE columns makes most of the work a GEMM: in
 * double the solve runs about a quarter faster; in float it is neither
 * faster nor slower within the noise (bench/tile-bound, "Tiled
 * Cholesky" in bench/README.md). The result is the same solve in
 * another order: rounding differs from the plain call in the last bits.
 * Header-only, so that bench/tile-bound times exactly what the kernel
 * library runs. Needs <cblas.h>. */
#ifndef STRATA_KERNELS_TRSM_SPLIT_H
#define STRATA_KERNELS_TRSM_SPLIT_H

#include <stddef.h>

/* Below this many columns the plain call is as fast as splitting again
 * (64 was the fastest of 32, 64, 128 and 256 on 512 tiles in double).
 * Overridable at build time: bench/README.md builds the library with a
 * base wider than any tile to measure the plain call side by side. */
#ifndef TRSM_SPLIT_BASE
#define TRSM_SPLIT_BASE 64
#endif

#define TRSM_SPLIT(NAME, T, PREFIX)                                            \
  static inline void NAME(int m, int n, T alpha, const T *l, int ldl, T *b,    \
                          int ldb) {                                           \
    if (n <= TRSM_SPLIT_BASE) {                                                \
      cblas_##PREFIX##trsm(CblasColMajor, CblasRight, CblasLower, CblasTrans,  \
                           CblasNonUnit, m, n, alpha, l, ldl, b, ldb);         \
      return;                                                                  \
    }                                                                          \
    int n1 = n / 2, n2 = n - n1;                                               \
    T *b2 = b + (size_t)n1 * (size_t)ldb;                                      \
    NAME(m, n1, alpha, l, ldl, b, ldb);                                        \
    /* B2 = alpha B2 - X1 L21^T; X2's solve then takes alpha 1. */             \
    cblas_##PREFIX##gemm(CblasColMajor, CblasNoTrans, CblasTrans, m, n2, n1,   \
                         (T)-1, b, ldb, l + n1, ldl, alpha, b2, ldb);          \
    NAME(m, n2, (T)1, l + n1 + (size_t)n1 * (size_t)ldl, ldl, b2, ldb);        \
  }
TRSM_SPLIT(trsm_split_s, float, s)
TRSM_SPLIT(trsm_split_d, double, d)
#undef TRSM_SPLIT

#endif /* STRATA_KERNELS_TRSM_SPLIT_H */
