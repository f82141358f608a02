/* SPDX-License-Identifier: MIT */
/* kernels/lib/cuda.c: the kernel library's CUDA entries (kernels_cuda.h):
 * each checks its call as the CPU code does (kernels.h), then queues the
 * work on the worker's stream: dense linear algebra through cuBLAS and
 * cuSOLVER (kernels/cuda/blas.c, loaded at the first call), the rest
 * through the launches of cuda_vector.cu. */
#include "config.h"

#include "kernels.h"
#include "kernels_cuda.h"
#include "scuk.h"

#include <math.h>

#define MAX_DIM ((int64_t)1 << 30)

static size_t elem_of(int dbl) { return dbl ? sizeof(double) : sizeof(float); }

static int holds(const strata_kernel_call_t *call, uint32_t i, int64_t m,
                 int64_t n, int dbl) {
  return sk_count(call, i, elem_of(dbl)) == (size_t)m * (size_t)n;
}

static int launch_status(int cuda_error) {
  return cuda_error ? STRATA_EBACKEND : STRATA_OK;
}

/* {=== Dense linear algebra ===} */

static int gemm(const strata_kernel_call_t *call, int dbl) {
  const double *a = sk_args(call, GEMM_NARGS);
  if (!a || call->nbuffers != 3)
    return STRATA_EINVAL;
  int64_t m = sk_whole(a[GEMM_M], 1, MAX_DIM);
  int64_t n = sk_whole(a[GEMM_N], 1, MAX_DIM);
  int64_t k = sk_whole(a[GEMM_K], 1, MAX_DIM);
  if (m < 0 || n < 0 || k < 0 || !holds(call, 0, m, n, dbl) ||
      !holds(call, 1, m, k, dbl) || !holds(call, 2, k, n, dbl))
    return STRATA_EINVAL;
  int ta = a[GEMM_TRANSA] != 0, tb = a[GEMM_TRANSB] != 0;
  return scuk_gemm(dbl ? SCUK_DOUBLE : SCUK_FLOAT, call->stream, ta, tb, (int)m,
                   (int)n, (int)k, a[GEMM_ALPHA], call->buffers[1],
                   ta ? (int)k : (int)m, call->buffers[2], tb ? (int)n : (int)k,
                   a[GEMM_BETA], call->buffers[0], (int)m);
}
int skc_gemm_f(const strata_kernel_call_t *call) { return gemm(call, 0); }
int skc_gemm_d(const strata_kernel_call_t *call) { return gemm(call, 1); }

static int syrk(const strata_kernel_call_t *call, int dbl) {
  const double *a = sk_args(call, SYRK_NARGS);
  if (!a || call->nbuffers != 2)
    return STRATA_EINVAL;
  int64_t n = sk_whole(a[SYRK_N], 1, MAX_DIM);
  int64_t k = sk_whole(a[SYRK_K], 1, MAX_DIM);
  if (n < 0 || k < 0 || !holds(call, 0, n, n, dbl) ||
      !holds(call, 1, n, k, dbl))
    return STRATA_EINVAL;
  return scuk_syrk(dbl ? SCUK_DOUBLE : SCUK_FLOAT, call->stream, (int)n, (int)k,
                   a[SYRK_ALPHA], call->buffers[1], (int)n, a[SYRK_BETA],
                   call->buffers[0], (int)n);
}
int skc_syrk_f(const strata_kernel_call_t *call) { return syrk(call, 0); }
int skc_syrk_d(const strata_kernel_call_t *call) { return syrk(call, 1); }

static int trsm(const strata_kernel_call_t *call, int dbl) {
  const double *a = sk_args(call, TRSM_NARGS);
  if (!a || call->nbuffers != 2)
    return STRATA_EINVAL;
  int64_t m = sk_whole(a[TRSM_M], 1, MAX_DIM);
  int64_t n = sk_whole(a[TRSM_N], 1, MAX_DIM);
  if (m < 0 || n < 0 || !holds(call, 0, m, n, dbl) ||
      !holds(call, 1, n, n, dbl))
    return STRATA_EINVAL;
  return scuk_trsm_rlt(dbl ? SCUK_DOUBLE : SCUK_FLOAT, call->stream, (int)m,
                       (int)n, a[TRSM_ALPHA], call->buffers[1], (int)n,
                       call->buffers[0], (int)m);
}
int skc_trsm_f(const strata_kernel_call_t *call) { return trsm(call, 0); }
int skc_trsm_d(const strata_kernel_call_t *call) { return trsm(call, 1); }

static int potrf(const strata_kernel_call_t *call, int dbl) {
  const double *a = sk_args(call, POTRF_NARGS);
  if (!a || call->nbuffers != 1)
    return STRATA_EINVAL;
  int64_t n = sk_whole(a[POTRF_N], 1, MAX_DIM);
  if (n < 0 || !holds(call, 0, n, n, dbl))
    return STRATA_EINVAL;
  return scuk_potrf_lower(dbl ? SCUK_DOUBLE : SCUK_FLOAT, call->stream, (int)n,
                          call->buffers[0], (int)n);
}
int skc_potrf_f(const strata_kernel_call_t *call) { return potrf(call, 0); }
int skc_potrf_d(const strata_kernel_call_t *call) { return potrf(call, 1); }

/* {=== Vectors and batches ===} */

static int fill(const strata_kernel_call_t *call, int dbl) {
  const double *a = sk_args(call, FILL_NARGS);
  size_t n = sk_count(call, 0, elem_of(dbl));
  int64_t seed = a ? sk_whole(a[FILL_SEED], 0, INT64_MAX / 2) : -1;
  if (!a || call->nbuffers != 1 || !n || seed < 0)
    return STRATA_EINVAL;
  int symmetric = a[FILL_SYMMETRIC] != 0;
  size_t order = symmetric || a[FILL_DIAGONAL] != 0 ? sk_square_order(n) : 0;
  if ((symmetric || a[FILL_DIAGONAL] != 0) && !order)
    return STRATA_EINVAL;
  return launch_status(skc_launch_fill(
      dbl, call->buffers[0], n, order, a[FILL_VALUE], (unsigned long long)seed,
      a[FILL_DIAGONAL], symmetric, call->stream));
}
int skc_fill_f(const strata_kernel_call_t *call) { return fill(call, 0); }
int skc_fill_d(const strata_kernel_call_t *call) { return fill(call, 1); }

static int copy(const strata_kernel_call_t *call, int dbl) {
  const double *a = sk_args(call, COPY_NARGS);
  size_t n = sk_count(call, 0, elem_of(dbl));
  if (!a || call->nbuffers != 2 || !n || sk_count(call, 1, elem_of(dbl)) != n)
    return STRATA_EINVAL;
  size_t order = a[COPY_LOWER] != 0 ? sk_square_order(n) : 0;
  if (a[COPY_LOWER] != 0 && !order)
    return STRATA_EINVAL;
  return launch_status(skc_launch_copy(dbl, call->buffers[0], call->buffers[1],
                                       n, order, call->stream));
}
int skc_copy_f(const strata_kernel_call_t *call) { return copy(call, 0); }
int skc_copy_d(const strata_kernel_call_t *call) { return copy(call, 1); }

/* dbl: Y holds doubles (and X floats). */
static int convert(const strata_kernel_call_t *call, int dbl) {
  size_t n = sk_count(call, 0, elem_of(dbl));
  if (!sk_args(call, CONVERT_NARGS) || call->nbuffers != 2 || !n ||
      sk_count(call, 1, elem_of(!dbl)) != n)
    return STRATA_EINVAL;
  return launch_status(skc_launch_convert(dbl, call->buffers[0],
                                          call->buffers[1], n, call->stream));
}
int skc_convert_f(const strata_kernel_call_t *call) { return convert(call, 0); }
int skc_convert_d(const strata_kernel_call_t *call) { return convert(call, 1); }

static int axpy(const strata_kernel_call_t *call, int dbl) {
  const double *a = sk_args(call, AXPY_NARGS);
  size_t n = sk_count(call, 0, elem_of(dbl));
  if (!a || call->nbuffers != 2 || !n || sk_count(call, 1, elem_of(dbl)) != n)
    return STRATA_EINVAL;
  return launch_status(skc_launch_axpy(dbl, call->buffers[0], call->buffers[1],
                                       n, a[AXPY_ALPHA], call->stream));
}
int skc_axpy_f(const strata_kernel_call_t *call) { return axpy(call, 0); }
int skc_axpy_d(const strata_kernel_call_t *call) { return axpy(call, 1); }

static int scale(const strata_kernel_call_t *call, int dbl) {
  const double *a = sk_args(call, SCALE_NARGS);
  size_t n = sk_count(call, 0, elem_of(dbl));
  if (!a || call->nbuffers != 1 || !n)
    return STRATA_EINVAL;
  return launch_status(
      skc_launch_scale(dbl, call->buffers[0], n, a[SCALE_ALPHA], call->stream));
}
int skc_scale_f(const strata_kernel_call_t *call) { return scale(call, 0); }
int skc_scale_d(const strata_kernel_call_t *call) { return scale(call, 1); }

static int checksum(const strata_kernel_call_t *call, int dbl) {
  size_t n = sk_count(call, 0, elem_of(dbl));
  if (!sk_args(call, CHECKSUM_NARGS) || call->nbuffers != 2 || !n ||
      sk_count(call, 1, elem_of(dbl)) != 1)
    return STRATA_EINVAL;
  return launch_status(skc_launch_checksum(dbl, call->buffers[0], n,
                                           call->buffers[1], call->stream));
}
int skc_checksum_f(const strata_kernel_call_t *call) {
  return checksum(call, 0);
}
int skc_checksum_d(const strata_kernel_call_t *call) {
  return checksum(call, 1);
}

static int normalise(const strata_kernel_call_t *call, int dbl) {
  const double *a = sk_args(call, NORMALISE_NARGS);
  size_t n = sk_count(call, 0, elem_of(dbl));
  int64_t rows = a ? sk_whole(a[NORMALISE_ROWS], 1, INT64_MAX / 2) : -1;
  if (!a || call->nbuffers != 1 || !n || rows < 1 || n % (size_t)rows)
    return STRATA_EINVAL;
  return launch_status(skc_launch_normalise(dbl, call->buffers[0], (size_t)rows,
                                            n / (size_t)rows, call->stream));
}
int skc_normalise_f(const strata_kernel_call_t *call) {
  return normalise(call, 0);
}
int skc_normalise_d(const strata_kernel_call_t *call) {
  return normalise(call, 1);
}

int skc_spin(const strata_kernel_call_t *call) {
  const double *a = sk_args(call, SPIN_NARGS);
  int64_t flops = a ? sk_whole(a[SPIN_FLOPS], 0, (int64_t)1 << 52) : -1;
  if (flops < 0)
    return STRATA_EINVAL;
  return launch_status(skc_launch_spin(flops / 2, call->stream));
}
