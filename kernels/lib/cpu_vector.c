/* SPDX-License-Identifier: MIT */
/* kernels/lib/cpu_vector.c: the vector and batch kernels on CPUs (fill,
 * copy, axpy, scale, checksum, normalise, spin) in floats and doubles, and
 * the helpers every kernel of the library unpacks its call with. */
#include "config.h"

#include "kernels.h"

#include <math.h>
#include <string.h>

/* {=== Unpacking a call ===} */

const double *sk_args(const strata_kernel_call_t *call, uint32_t nargs) {
  if (nargs == 0)
    return call->args_size == 0 ? (const double *)"" : NULL;
  if (!call->args || call->args_size != (size_t)nargs * sizeof(double))
    return NULL;
  return call->args;
}

size_t sk_count(const strata_kernel_call_t *call, uint32_t i, size_t elem) {
  if (i >= call->nbuffers || call->sizes[i] % elem)
    return 0;
  return call->sizes[i] / elem;
}

int64_t sk_whole(double v, int64_t lo, int64_t hi) {
  if (!(v >= (double)lo && v <= (double)hi) || v != floor(v))
    return -1;
  return (int64_t)v;
}

/* splitmix64 of (seed, index): a counter-based generator, so element i
 * has the same value however the buffer is split into tasks. */
double sk_random(uint64_t seed, uint64_t index) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ULL + index + 1;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  return (double)(z >> 11) * 0x1.0p-53 - 0.5;
}

size_t sk_square_order(size_t n) {
  size_t r = (size_t)sqrt((double)n);
  while (r * r > n)
    r--;
  while ((r + 1) * (r + 1) <= n)
    r++;
  return r * r == n ? r : 0;
}

/* {=== fill ===}
 * X = value, or, with a non-zero seed, value + uniform [-0.5, 0.5); then,
 * on a square buffer, `symmetric` mirrors the lower triangle onto the upper
 * and `diagonal` is added to each diagonal element (a symmetric fill with a
 * diagonal above the order is positive definite: diagonally dominant). */
#define FILL(NAME, T)                                                          \
  int NAME(const strata_kernel_call_t *call) {                                 \
    const double *a = sk_args(call, FILL_NARGS);                               \
    size_t n = sk_count(call, 0, sizeof(T));                                   \
    int64_t seed = a ? sk_whole(a[FILL_SEED], 0, INT64_MAX / 2) : -1;          \
    if (!a || call->nbuffers != 1 || !n || seed < 0)                           \
      return STRATA_EINVAL;                                                    \
    size_t order = sk_square_order(n);                                         \
    int shaped = a[FILL_SYMMETRIC] != 0 || a[FILL_DIAGONAL] != 0;              \
    if (shaped && !order)                                                      \
      return STRATA_EINVAL;                                                    \
    T *x = call->buffers[0];                                                   \
    for (size_t i = 0; i < n; i++)                                             \
      x[i] = (T)(a[FILL_VALUE] + (seed ? sk_random((uint64_t)seed, i) : 0));   \
    if (a[FILL_SYMMETRIC] != 0)                                                \
      for (size_t j = 0; j < order; j++)                                       \
        for (size_t i = j + 1; i < order; i++)                                 \
          x[j + i * order] = x[i + j * order];                                 \
    if (a[FILL_DIAGONAL] != 0)                                                 \
      for (size_t j = 0; j < order; j++)                                       \
        x[j + j * order] += (T)a[FILL_DIAGONAL];                               \
    return STRATA_OK;                                                          \
  }
FILL(sk_fill_f, float)
FILL(sk_fill_d, double)

/* {=== copy ===}
 * Y = X (same size); with `lower`, X is square and Y gets its lower
 * triangle, zeros above (the factor L of a Cholesky tile). */
#define COPY(NAME, T)                                                          \
  int NAME(const strata_kernel_call_t *call) {                                 \
    const double *a = sk_args(call, COPY_NARGS);                               \
    size_t n = sk_count(call, 0, sizeof(T));                                   \
    if (!a || call->nbuffers != 2 || !n || sk_count(call, 1, sizeof(T)) != n)  \
      return STRATA_EINVAL;                                                    \
    T *y = call->buffers[0];                                                   \
    const T *x = call->buffers[1];                                             \
    if (a[COPY_LOWER] == 0) {                                                  \
      memmove(y, x, n * sizeof(T));                                            \
      return STRATA_OK;                                                        \
    }                                                                          \
    size_t order = sk_square_order(n);                                         \
    if (!order)                                                                \
      return STRATA_EINVAL;                                                    \
    for (size_t j = 0; j < order; j++)                                         \
      for (size_t i = 0; i < order; i++)                                       \
        y[i + j * order] = i >= j ? x[i + j * order] : (T)0;                   \
    return STRATA_OK;                                                          \
  }
COPY(sk_copy_f, float)
COPY(sk_copy_d, double)

/* {=== convert ===}
 * Y = X in Y's type; X holds the other one (the same count). */
#define CONVERT(NAME, T, FROM)                                                 \
  int NAME(const strata_kernel_call_t *call) {                                 \
    size_t n = sk_count(call, 0, sizeof(T));                                   \
    if (!sk_args(call, CONVERT_NARGS) || call->nbuffers != 2 || !n ||          \
        sk_count(call, 1, sizeof(FROM)) != n)                                  \
      return STRATA_EINVAL;                                                    \
    T *y = call->buffers[0];                                                   \
    const FROM *x = call->buffers[1];                                          \
    for (size_t i = 0; i < n; i++)                                             \
      y[i] = (T)x[i];                                                          \
    return STRATA_OK;                                                          \
  }
CONVERT(sk_convert_f, float, double)
CONVERT(sk_convert_d, double, float)

/* {=== axpy, scale ===} */
#define AXPY(NAME, T)                                                          \
  int NAME(const strata_kernel_call_t *call) {                                 \
    const double *a = sk_args(call, AXPY_NARGS);                               \
    size_t n = sk_count(call, 0, sizeof(T));                                   \
    if (!a || call->nbuffers != 2 || !n || sk_count(call, 1, sizeof(T)) != n)  \
      return STRATA_EINVAL;                                                    \
    T *y = call->buffers[0], alpha = (T)a[AXPY_ALPHA];                         \
    const T *x = call->buffers[1];                                             \
    for (size_t i = 0; i < n; i++)                                             \
      y[i] += alpha * x[i];                                                    \
    return STRATA_OK;                                                          \
  }
AXPY(sk_axpy_f, float)
AXPY(sk_axpy_d, double)

#define SCALE(NAME, T)                                                         \
  int NAME(const strata_kernel_call_t *call) {                                 \
    const double *a = sk_args(call, SCALE_NARGS);                              \
    size_t n = sk_count(call, 0, sizeof(T));                                   \
    if (!a || call->nbuffers != 1 || !n)                                       \
      return STRATA_EINVAL;                                                    \
    T *x = call->buffers[0], alpha = (T)a[SCALE_ALPHA];                        \
    for (size_t i = 0; i < n; i++)                                             \
      x[i] *= alpha;                                                           \
    return STRATA_OK;                                                          \
  }
SCALE(sk_scale_f, float)
SCALE(sk_scale_d, double)

/* {=== checksum ===}
 * S (one element) = the sum of X, added in index order in double
 * precision: the same on every device and every run. */
#define CHECKSUM(NAME, T)                                                      \
  int NAME(const strata_kernel_call_t *call) {                                 \
    size_t n = sk_count(call, 0, sizeof(T));                                   \
    if (!sk_args(call, CHECKSUM_NARGS) || call->nbuffers != 2 || !n ||         \
        sk_count(call, 1, sizeof(T)) != 1)                                     \
      return STRATA_EINVAL;                                                    \
    const T *x = call->buffers[0];                                             \
    double s = 0;                                                              \
    for (size_t i = 0; i < n; i++)                                             \
      s += (double)x[i];                                                       \
    *(T *)call->buffers[1] = (T)s;                                             \
    return STRATA_OK;                                                          \
  }
CHECKSUM(sk_checksum_f, float)
CHECKSUM(sk_checksum_d, double)

/* {=== normalise ===}
 * X is rows x cols, column-major (a batch of `rows` samples, a column per
 * feature): each column is shifted to mean 0 and scaled to standard
 * deviation 1 (a constant column becomes 0). */
#define NORMALISE(NAME, T)                                                     \
  int NAME(const strata_kernel_call_t *call) {                                 \
    const double *a = sk_args(call, NORMALISE_NARGS);                          \
    size_t n = sk_count(call, 0, sizeof(T));                                   \
    int64_t rows = a ? sk_whole(a[NORMALISE_ROWS], 1, INT64_MAX / 2) : -1;     \
    if (!a || call->nbuffers != 1 || !n || rows < 1 || n % (size_t)rows)       \
      return STRATA_EINVAL;                                                    \
    size_t r = (size_t)rows;                                                   \
    for (T *col = call->buffers[0], *end = col + n; col < end; col += r) {     \
      double mean = 0, var = 0;                                                \
      for (size_t i = 0; i < r; i++)                                           \
        mean += col[i];                                                        \
      mean /= (double)r;                                                       \
      for (size_t i = 0; i < r; i++)                                           \
        var += (col[i] - mean) * (col[i] - mean);                              \
      double sd = sqrt(var / (double)r);                                       \
      for (size_t i = 0; i < r; i++)                                           \
        col[i] = (T)(sd > 0 ? (col[i] - mean) / sd : 0.0);                     \
    }                                                                          \
    return STRATA_OK;                                                          \
  }
NORMALISE(sk_normalise_f, float)
NORMALISE(sk_normalise_d, double)

/* {=== spin ===}
 * Does `flops` floating-point operations (multiply-adds on registers) and
 * nothing else: a task of known cost for studies of placement and of the
 * time model. Its buffers are only read (by the runtime, which moves them
 * where the task runs). */
int sk_spin(const strata_kernel_call_t *call) {
  const double *a = sk_args(call, SPIN_NARGS);
  int64_t flops = a ? sk_whole(a[SPIN_FLOPS], 0, (int64_t)1 << 52) : -1;
  if (flops < 0)
    return STRATA_EINVAL;
  /* Four independent chains keep the FMA units busy; volatile keeps the
   * compiler from folding the loop away. */
  double x0 = 1, x1 = 1, x2 = 1, x3 = 1;
  const double m = 0.999999, c = 1e-6;
  for (int64_t i = 0; i < flops / 8; i++) {
    x0 = x0 * m + c;
    x1 = x1 * m + c;
    x2 = x2 * m + c;
    x3 = x3 * m + c;
  }
  volatile double sink = x0 + x1 + x2 + x3;
  (void)sink;
  return STRATA_OK;
}
