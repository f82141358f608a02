/* SPDX-License-Identifier: MIT */
/* kernels/lib/library.c: the table of Strata's kernel library (the module
 * strata-kernels, loaded by strata-run and by host programs through
 * <strata/kernel_library.h>): each kernel's buffers, arguments, element
 * types, code per device kind, shape check and flop count.
 *
 * Where the library is built with CUDA, the CUDA entries are the code of
 * kernels/lib/cuda.c (cuBLAS, cuSOLVER and nvcc kernels). Without CUDA no
 * NVIDIA card can be driven, and the CPU code stands as the CUDA entry, so
 * that simulated GPUs (which take kernels that have CUDA code and run
 * their CPU code) are candidates all the same. */
#include "config.h"

#include "kernels.h"

#include <math.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>

#ifdef STRATA_KERNELS_CUDA
#include "kernels_cuda.h"
#define CUDA_CODE(cuda, cpu) cuda
#else
#define CUDA_CODE(cuda, cpu) cpu
#endif

STRATA_PRINTF(3, 4)
static int refuse(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (err && errlen)
    vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return STRATA_EINVAL;
}

static size_t elem_size(strata_elem_t t) {
  return t == STRATA_ELEM_FLOAT ? sizeof(float) : sizeof(double);
}

/* Elements of buffer i (0 when not a whole number of them). */
static double elems(const size_t *sizes, uint32_t i, strata_elem_t t) {
  size_t e = elem_size(t);
  return sizes[i] % e ? 0 : (double)(sizes[i] / e);
}

/* Buffer `name` (index i) must hold want elements. */
static int shape(const size_t *sizes, uint32_t i, const char *name,
                 strata_elem_t t, double want, const char *what, char *err,
                 size_t errlen) {
  double have = elems(sizes, i, t);
  if (have == want)
    return STRATA_OK;
  return refuse(err, errlen, "%s holds %.0f elements, %s is %.0f", name, have,
                what, want);
}

/* Arguments that are dimensions: whole and at least 1. */
static int dims(const double *args, const char *const *names, const int *which,
                int n, char *err, size_t errlen) {
  for (int i = 0; i < n; i++) {
    double v = args[which[i]];
    if (!(v >= 1 && v <= (double)(1 << 30)) || v != floor(v))
      return refuse(err, errlen,
                    "%s must be a whole number from 1 to 2^30 "
                    "(got %g)",
                    names[i], v);
  }
  return STRATA_OK;
}

/* {=== gemm ===} */

static int gemm_check(const double *a, uint32_t nb, const size_t *s,
                      strata_elem_t t, char *err, size_t errlen) {
  (void)nb;
  static const char *const names[] = {"m", "n", "k"};
  static const int which[] = {GEMM_M, GEMM_N, GEMM_K};
  int rc = dims(a, names, which, 3, err, errlen);
  if (!rc)
    rc = shape(s, 0, "C", t, a[GEMM_M] * a[GEMM_N], "m*n", err, errlen);
  if (!rc)
    rc = shape(s, 1, "A", t, a[GEMM_M] * a[GEMM_K], "m*k", err, errlen);
  if (!rc)
    rc = shape(s, 2, "B", t, a[GEMM_K] * a[GEMM_N], "k*n", err, errlen);
  return rc;
}

static double gemm_flops(const double *a, uint32_t nb, const size_t *s,
                         strata_elem_t t) {
  (void)nb, (void)s, (void)t;
  return 2 * a[GEMM_M] * a[GEMM_N] * a[GEMM_K];
}

/* {=== syrk ===} */

static int syrk_check(const double *a, uint32_t nb, const size_t *s,
                      strata_elem_t t, char *err, size_t errlen) {
  (void)nb;
  static const char *const names[] = {"n", "k"};
  static const int which[] = {SYRK_N, SYRK_K};
  int rc = dims(a, names, which, 2, err, errlen);
  if (!rc)
    rc = shape(s, 0, "C", t, a[SYRK_N] * a[SYRK_N], "n*n", err, errlen);
  if (!rc)
    rc = shape(s, 1, "A", t, a[SYRK_N] * a[SYRK_K], "n*k", err, errlen);
  return rc;
}

static double syrk_flops(const double *a, uint32_t nb, const size_t *s,
                         strata_elem_t t) {
  (void)nb, (void)s, (void)t;
  return a[SYRK_N] * (a[SYRK_N] + 1) * a[SYRK_K];
}

/* {=== trsm ===} */

static int trsm_check(const double *a, uint32_t nb, const size_t *s,
                      strata_elem_t t, char *err, size_t errlen) {
  (void)nb;
  static const char *const names[] = {"m", "n"};
  static const int which[] = {TRSM_M, TRSM_N};
  int rc = dims(a, names, which, 2, err, errlen);
  if (!rc)
    rc = shape(s, 0, "B", t, a[TRSM_M] * a[TRSM_N], "m*n", err, errlen);
  if (!rc)
    rc = shape(s, 1, "A", t, a[TRSM_N] * a[TRSM_N], "n*n", err, errlen);
  return rc;
}

static double trsm_flops(const double *a, uint32_t nb, const size_t *s,
                         strata_elem_t t) {
  (void)nb, (void)s, (void)t;
  return a[TRSM_M] * a[TRSM_N] * a[TRSM_N];
}

/* {=== potrf ===} */

static int potrf_check(const double *a, uint32_t nb, const size_t *s,
                       strata_elem_t t, char *err, size_t errlen) {
  (void)nb;
  static const char *const names[] = {"n"};
  static const int which[] = {POTRF_N};
  int rc = dims(a, names, which, 1, err, errlen);
  if (!rc)
    rc = shape(s, 0, "A", t, a[POTRF_N] * a[POTRF_N], "n*n", err, errlen);
  return rc;
}

static double potrf_flops(const double *a, uint32_t nb, const size_t *s,
                          strata_elem_t t) {
  (void)nb, (void)s, (void)t;
  return a[POTRF_N] * a[POTRF_N] * a[POTRF_N] / 3;
}

/* {=== Vector kernels ===} */

static bool is_square(double n) {
  double r = floor(sqrt(n) + 0.5);
  return r * r == n;
}

static int fill_check(const double *a, uint32_t nb, const size_t *s,
                      strata_elem_t t, char *err, size_t errlen) {
  (void)nb;
  double n = elems(s, 0, t);
  double seed = a[FILL_SEED];
  if (!(seed >= 0 && seed <= 4503599627370496.0) || seed != floor(seed))
    return refuse(err, errlen,
                  "seed must be a whole number from 0 to 2^52 (got %g)", seed);
  if ((a[FILL_SYMMETRIC] != 0 || a[FILL_DIAGONAL] != 0) && !is_square(n))
    return refuse(err, errlen,
                  "symmetric and diagonal need a square buffer (X holds %.0f "
                  "elements)",
                  n);
  return STRATA_OK;
}

static int same_size(const double *a, uint32_t nb, const size_t *s,
                     strata_elem_t t, char *err, size_t errlen) {
  (void)a, (void)nb;
  if (s[0] != s[1])
    return refuse(err, errlen,
                  "the two buffers differ in size (%.0f and "
                  "%.0f elements)",
                  elems(s, 0, t), elems(s, 1, t));
  return STRATA_OK;
}

static int copy_check(const double *a, uint32_t nb, const size_t *s,
                      strata_elem_t t, char *err, size_t errlen) {
  int rc = same_size(a, nb, s, t, err, errlen);
  if (!rc && a[COPY_LOWER] != 0 && !is_square(elems(s, 0, t)))
    rc = refuse(err, errlen, "lower needs a square buffer");
  return rc;
}

static int convert_check(const double *a, uint32_t nb, const size_t *s,
                         strata_elem_t t, char *err, size_t errlen) {
  (void)a, (void)nb;
  strata_elem_t other =
      t == STRATA_ELEM_FLOAT ? STRATA_ELEM_DOUBLE : STRATA_ELEM_FLOAT;
  if (elems(s, 0, t) != elems(s, 1, other))
    return refuse(err, errlen, "Y holds %.0f elements, X %.0f", elems(s, 0, t),
                  elems(s, 1, other));
  return STRATA_OK;
}

static int checksum_check(const double *a, uint32_t nb, const size_t *s,
                          strata_elem_t t, char *err, size_t errlen) {
  (void)a, (void)nb;
  return shape(s, 1, "S", t, 1, "one element", err, errlen);
}

static int normalise_check(const double *a, uint32_t nb, const size_t *s,
                           strata_elem_t t, char *err, size_t errlen) {
  (void)nb;
  double n = elems(s, 0, t), rows = a[NORMALISE_ROWS];
  if (!(rows >= 1) || rows != floor(rows) || fmod(n, rows) != 0)
    return refuse(err, errlen,
                  "rows must be a whole number that divides the %.0f "
                  "elements of X (got %g)",
                  n, rows);
  return STRATA_OK;
}

static int spin_check(const double *a, uint32_t nb, const size_t *s,
                      strata_elem_t t, char *err, size_t errlen) {
  (void)nb, (void)s, (void)t;
  double f = a[SPIN_FLOPS];
  if (!(f >= 0 && f <= 4503599627370496.0) || f != floor(f))
    return refuse(err, errlen,
                  "flops must be a whole number from 0 to 2^52 (got %g)", f);
  return STRATA_OK;
}

/* Flops per element of buffer 0. */
static double per_elem(const size_t *s, strata_elem_t t, double k) {
  return k * elems(s, 0, t);
}
static double axpy_flops(const double *a, uint32_t nb, const size_t *s,
                         strata_elem_t t) {
  (void)a, (void)nb;
  return per_elem(s, t, 2);
}
static double one_flop(const double *a, uint32_t nb, const size_t *s,
                       strata_elem_t t) {
  (void)a, (void)nb;
  return per_elem(s, t, 1);
}
static double normalise_flops(const double *a, uint32_t nb, const size_t *s,
                              strata_elem_t t) {
  (void)a, (void)nb;
  return per_elem(s, t, 5);
}
/* Kernels that move or make data: no floating-point work. */
static double no_flops(const double *a, uint32_t nb, const size_t *s,
                       strata_elem_t t) {
  (void)a, (void)nb, (void)s, (void)t;
  return 0;
}
static double spin_flops(const double *a, uint32_t nb, const size_t *s,
                         strata_elem_t t) {
  (void)nb, (void)s, (void)t;
  return a[SPIN_FLOPS];
}

/* {=== The table ===} */

#define TYPED (1u << STRATA_ELEM_FLOAT | 1u << STRATA_ELEM_DOUBLE)
#define BOTH(f, d)                                                             \
  { NULL, f, d }
#define CUDA_BOTH(cf, cd, f, d)                                                \
  { NULL, CUDA_CODE(cf, f), CUDA_CODE(cd, d) }

static const char *const b_cab[] = {"C", "A", "B", NULL};
static const char *const b_ca[] = {"C", "A", NULL};
static const char *const b_ba[] = {"B", "A", NULL};
static const char *const b_a[] = {"A", NULL};
static const char *const b_x[] = {"X", NULL};
static const char *const b_yx[] = {"Y", "X", NULL};
static const char *const b_xs[] = {"X", "S", NULL};
static const char *const b_any[] = {NULL};

static const strata_library_arg_t a_gemm[] = {
    {"m", 0, 1},    {"n", 0, 1},      {"k", 0, 1},     {"alpha", 1, 0},
    {"beta", 1, 0}, {"transa", 0, 0}, {"transb", 0, 0}};
static const strata_library_arg_t a_syrk[] = {
    {"n", 0, 1}, {"k", 0, 1}, {"alpha", 1, 0}, {"beta", 1, 0}};
static const strata_library_arg_t a_trsm[] = {
    {"m", 0, 1}, {"n", 0, 1}, {"alpha", 1, 0}};
static const strata_library_arg_t a_potrf[] = {{"n", 0, 1}};
static const strata_library_arg_t a_fill[] = {
    {"value", 0, 0}, {"seed", 0, 0}, {"diagonal", 0, 0}, {"symmetric", 0, 0}};
static const strata_library_arg_t a_copy[] = {{"lower", 0, 0}};
static const strata_library_arg_t a_alpha[] = {{"alpha", 0, 1}};
static const strata_library_arg_t a_normalise[] = {{"rows", 0, 1}};
static const strata_library_arg_t a_spin[] = {{"flops", 0, 1}};

_Static_assert(sizeof a_gemm / sizeof *a_gemm == GEMM_NARGS, "gemm");
_Static_assert(sizeof a_syrk / sizeof *a_syrk == SYRK_NARGS, "syrk");
_Static_assert(sizeof a_trsm / sizeof *a_trsm == TRSM_NARGS, "trsm");
_Static_assert(sizeof a_fill / sizeof *a_fill == FILL_NARGS, "fill");

#define NARGS(a) (uint32_t)(sizeof a / sizeof *a)

static const strata_library_kernel_t kernels[] = {
    {"gemm",
     "C = alpha op(A) op(B) + beta C; C m x n, op(A) m x k, op(B) k x n "
     "(column-major; transa, transb: 1 transposes)",
     b_cab, "xrr", a_gemm, NARGS(a_gemm), TYPED, BOTH(sk_gemm_f, sk_gemm_d),
     CUDA_BOTH(skc_gemm_f, skc_gemm_d, sk_gemm_f, sk_gemm_d), gemm_check,
     gemm_flops, 0},
    {"syrk", "C = alpha A A^T + beta C (lower triangle); C n x n, A n x k",
     b_ca, "xr", a_syrk, NARGS(a_syrk), TYPED, BOTH(sk_syrk_f, sk_syrk_d),
     CUDA_BOTH(skc_syrk_f, skc_syrk_d, sk_syrk_f, sk_syrk_d), syrk_check,
     syrk_flops, 0},
    {"trsm",
     "B = alpha B A^-T; B m x n, A n x n lower triangular (a Cholesky panel)",
     b_ba, "xr", a_trsm, NARGS(a_trsm), TYPED, BOTH(sk_trsm_f, sk_trsm_d),
     CUDA_BOTH(skc_trsm_f, skc_trsm_d, sk_trsm_f, sk_trsm_d), trsm_check,
     trsm_flops, 0},
    {"potrf",
     "A = L L^T, L lower (n x n); fails when A is not positive definite", b_a,
     "x", a_potrf, NARGS(a_potrf), TYPED, BOTH(sk_potrf_f, sk_potrf_d),
     CUDA_BOTH(skc_potrf_f, skc_potrf_d, sk_potrf_f, sk_potrf_d), potrf_check,
     potrf_flops, 0},
    {"fill",
     "X = value, + uniform [-0.5, 0.5) from seed when seed > 0; square X: "
     "symmetric = 1 mirrors the lower triangle, diagonal is added",
     b_x, "w", a_fill, NARGS(a_fill), TYPED, BOTH(sk_fill_f, sk_fill_d),
     CUDA_BOTH(skc_fill_f, skc_fill_d, sk_fill_f, sk_fill_d), fill_check, NULL,
     0},
    {"copy", "Y = X; lower = 1: the lower triangle of square X, zeros above",
     b_yx, "wr", a_copy, NARGS(a_copy), TYPED, BOTH(sk_copy_f, sk_copy_d),
     CUDA_BOTH(skc_copy_f, skc_copy_d, sk_copy_f, sk_copy_d), copy_check, NULL,
     0},
    {"convert",
     "Y = X in Y's element type; X holds the other one (float, double)", b_yx,
     "wr", NULL, 0, TYPED, BOTH(sk_convert_f, sk_convert_d),
     CUDA_BOTH(skc_convert_f, skc_convert_d, sk_convert_f, sk_convert_d),
     convert_check, no_flops, STRATA_LIBRARY_CONVERTS},
    {"axpy", "Y = Y + alpha X", b_yx, "xr", a_alpha, NARGS(a_alpha), TYPED,
     BOTH(sk_axpy_f, sk_axpy_d),
     CUDA_BOTH(skc_axpy_f, skc_axpy_d, sk_axpy_f, sk_axpy_d), same_size,
     axpy_flops, 0},
    {"scale", "X = alpha X", b_x, "x", a_alpha, NARGS(a_alpha), TYPED,
     BOTH(sk_scale_f, sk_scale_d),
     CUDA_BOTH(skc_scale_f, skc_scale_d, sk_scale_f, sk_scale_d), NULL,
     one_flop, 0},
    {"checksum",
     "S (one element) = the sum of X, in a fixed order per device kind (CPU: "
     "index order; CUDA: a fixed tree): the same on every run",
     b_xs, "rw", NULL, 0, TYPED, BOTH(sk_checksum_f, sk_checksum_d),
     CUDA_BOTH(skc_checksum_f, skc_checksum_d, sk_checksum_f, sk_checksum_d),
     checksum_check, one_flop, 0},
    {"normalise",
     "X (rows x cols, column-major): each column to mean 0, deviation 1", b_x,
     "x", a_normalise, NARGS(a_normalise), TYPED,
     BOTH(sk_normalise_f, sk_normalise_d),
     CUDA_BOTH(skc_normalise_f, skc_normalise_d, sk_normalise_f,
               sk_normalise_d),
     normalise_check, normalise_flops, 0},
    {"spin",
     "does `flops` floating-point operations; its buffers are only read",
     b_any,
     "*",
     a_spin,
     NARGS(a_spin),
     1u << STRATA_ELEM_NONE,
     {sk_spin, NULL, NULL},
     {CUDA_CODE(skc_spin, sk_spin), NULL, NULL},
     spin_check,
     spin_flops,
     0},
};

static const strata_kernel_library_t library = {
    .abi = STRATA_KERNEL_LIBRARY_ABI,
    .struct_size = sizeof library,
    .name = "strata-kernels",
    .version = PACKAGE_VERSION,
    .kernels = kernels,
    .nkernels = sizeof kernels / sizeof *kernels,
};

/* The module's one export. */
STRATA_API const strata_kernel_library_t *strata_kernel_library_v1(void);
const strata_kernel_library_t *strata_kernel_library_v1(void) {
  return &library;
}
