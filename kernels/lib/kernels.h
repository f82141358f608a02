/* SPDX-License-Identifier: MIT */
/* kernels/lib/kernels.h: what the files of the kernel library share: the
 * CPU code of each kernel, for floats and doubles, and the helpers that
 * unpack a call. The table that names them is library.c's; the ABI is
 * <strata/kernel_library.h>.
 *
 * Every kernel takes its by-value arguments as an array of doubles (the
 * order of its table entry) and checks the block's size, the buffer count
 * and the buffer sizes before it touches memory: STRATA_EINVAL otherwise.
 * @thread any (no state) */
#ifndef STRATA_KERNELS_LIB_H
#define STRATA_KERNELS_LIB_H

#include <stddef.h>
#include <stdint.h>

#include <strata/kernel_library.h>

/* The arguments of each kernel, by position (library.c names them). */
enum {
  GEMM_M,
  GEMM_N,
  GEMM_K,
  GEMM_ALPHA,
  GEMM_BETA,
  GEMM_TRANSA,
  GEMM_TRANSB,
  GEMM_NARGS
};
enum { SYRK_N, SYRK_K, SYRK_ALPHA, SYRK_BETA, SYRK_NARGS };
enum { TRSM_M, TRSM_N, TRSM_ALPHA, TRSM_NARGS };
enum { POTRF_N, POTRF_NARGS };
enum { FILL_VALUE, FILL_SEED, FILL_DIAGONAL, FILL_SYMMETRIC, FILL_NARGS };
enum { COPY_LOWER, COPY_NARGS };
enum { CONVERT_NARGS };
enum { AXPY_ALPHA, AXPY_NARGS };
enum { SCALE_ALPHA, SCALE_NARGS };
enum { CHECKSUM_NARGS };
enum { NORMALISE_ROWS, NORMALISE_NARGS };
enum { SPIN_FLOPS, SPIN_NARGS };

/* The argument block of a call holding `nargs` doubles, else NULL. */
const double *sk_args(const strata_kernel_call_t *call, uint32_t nargs);

/* Elements of buffer i of a call, in units of `elem` bytes; 0 when the
 * size is not a whole number of them. */
size_t sk_count(const strata_kernel_call_t *call, uint32_t i, size_t elem);

/* The order of a square buffer of n elements, else 0. */
size_t sk_square_order(size_t n);

/* A whole number in [lo, hi] held in a double argument, else -1. */
int64_t sk_whole(double v, int64_t lo, int64_t hi);

/* Dense linear algebra (kernels/lib/cpu_blas.c): OpenBLAS and LAPACKE. */
int sk_gemm_f(const strata_kernel_call_t *call);
int sk_gemm_d(const strata_kernel_call_t *call);
int sk_syrk_f(const strata_kernel_call_t *call);
int sk_syrk_d(const strata_kernel_call_t *call);
int sk_trsm_f(const strata_kernel_call_t *call);
int sk_trsm_d(const strata_kernel_call_t *call);
int sk_potrf_f(const strata_kernel_call_t *call);
int sk_potrf_d(const strata_kernel_call_t *call);

/* Vectors and batches (kernels/lib/cpu_vector.c). */
int sk_fill_f(const strata_kernel_call_t *call);
int sk_fill_d(const strata_kernel_call_t *call);
int sk_copy_f(const strata_kernel_call_t *call);
int sk_copy_d(const strata_kernel_call_t *call);
int sk_convert_f(const strata_kernel_call_t *call);
int sk_convert_d(const strata_kernel_call_t *call);
int sk_axpy_f(const strata_kernel_call_t *call);
int sk_axpy_d(const strata_kernel_call_t *call);
int sk_scale_f(const strata_kernel_call_t *call);
int sk_scale_d(const strata_kernel_call_t *call);
int sk_checksum_f(const strata_kernel_call_t *call);
int sk_checksum_d(const strata_kernel_call_t *call);
int sk_normalise_f(const strata_kernel_call_t *call);
int sk_normalise_d(const strata_kernel_call_t *call);
int sk_spin(const strata_kernel_call_t *call);

/* The value fill writes at element `index` for a non-zero seed: uniform in
 * [-0.5, 0.5), a function of (seed, index) only, so any part of a buffer
 * can be made again on its own. */
double sk_random(uint64_t seed, uint64_t index);

#endif /* STRATA_KERNELS_LIB_H */
