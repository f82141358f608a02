/* SPDX-License-Identifier: MIT */
/* tests/test_trsm_split.c: the kernel library's split panel solve
 * (kernels/lib/trsm_split.h) against OpenBLAS's own trsm, in both
 * precisions, on shapes that take every branch: narrower than the base
 * (the plain call), one column over it, odd widths that split unevenly,
 * several levels deep, tall and wide panels, alpha other than 1. Each
 * result must also solve its system: ||X L^T - alpha B|| small. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cblas.h>
#include <cmocka.h>
#include <math.h>

#include "trsm_split.h"

typedef struct shape {
  int m, n;
  double alpha;
} shape_t;

static const shape_t shapes[] = {
    {1, 1, 1.0},     {7, TRSM_SPLIT_BASE, 1.0}, {5, TRSM_SPLIT_BASE + 1, 2.0},
    {64, 129, -0.5}, {200, 131, 1.0},           {33, 300, 3.0},
    {512, 512, 1.0},
};

/* A well-conditioned lower triangular n x n factor, zero above. */
static double l_entry(int n, int i, int j) {
  if (i < j)
    return 0.0;
  return i == j ? 1.0 + (double)n / 8 : 0.25 / (1.0 + i - j);
}

static double b_entry(int i, int j) {
  return (double)((i * 7919 + j * 104729) % 1000) / 500.0 - 1.0;
}

/* One precision's comparison, written once over the element type. */
#define COMPARE(NAME, T, PREFIX, TOL)                                          \
  static void NAME(const shape_t *s) {                                         \
    int m = s->m, n = s->n;                                                    \
    T *l = malloc(sizeof(T) * (size_t)n * n);                                  \
    T *split = malloc(sizeof(T) * (size_t)m * n);                              \
    T *plain = malloc(sizeof(T) * (size_t)m * n);                              \
    assert_non_null(l);                                                        \
    assert_non_null(split);                                                    \
    assert_non_null(plain);                                                    \
    for (int j = 0; j < n; j++)                                                \
      for (int i = 0; i < n; i++)                                              \
        l[(size_t)j * n + i] = (T)l_entry(n, i, j);                            \
    for (int j = 0; j < n; j++)                                                \
      for (int i = 0; i < m; i++)                                              \
        split[(size_t)j * m + i] = plain[(size_t)j * m + i] =                  \
            (T)b_entry(i, j);                                                  \
    trsm_split_##PREFIX(m, n, (T)s->alpha, l, n, split, m);                    \
    cblas_##PREFIX##trsm(CblasColMajor, CblasRight, CblasLower, CblasTrans,    \
                         CblasNonUnit, m, n, (T)s->alpha, l, n, plain, m);     \
    double diff = 0, scale = 0, residual = 0;                                  \
    for (int j = 0; j < n; j++)                                                \
      for (int i = 0; i < m; i++) {                                            \
        double x = split[(size_t)j * m + i];                                   \
        diff = fmax(diff, fabs(x - plain[(size_t)j * m + i]));                 \
        scale = fmax(scale, fabs(x));                                          \
        /* (X L^T)_ij = sum over k <= j of X_ik L_jk. */                       \
        double xlt = 0;                                                        \
        for (int k = 0; k <= j; k++)                                           \
          xlt += (double)split[(size_t)k * m + i] * l_entry(n, j, k);          \
        residual = fmax(residual, fabs(xlt - s->alpha * b_entry(i, j)));       \
      }                                                                        \
    if (!(diff <= TOL * (1 + scale)) || !(residual <= TOL * (1 + scale)))      \
      fail_msg("%s m=%d n=%d alpha=%g: differs from trsm by %.3g, "            \
               "residual %.3g (scale %.3g)",                                   \
               #T, m, n, s->alpha, diff, residual, scale);                     \
    free(l);                                                                   \
    free(split);                                                               \
    free(plain);                                                               \
  }
COMPARE(compare_d, double, d, 1e-12)
COMPARE(compare_s, float, s, 1e-4)

static void test_trsm_split_double(void **state) {
  (void)state;
  for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++)
    compare_d(&shapes[k]);
}

static void test_trsm_split_float(void **state) {
  (void)state;
  for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++)
    compare_s(&shapes[k]);
}

/* The solve works on a panel inside a larger array: ldb and ldl wider
 * than the panel, and nothing outside it written. */
static void test_trsm_split_leading_dimensions(void **state) {
  (void)state;
  enum { M = 90, N = 150, LDB = 97, LDL = 160 };
  double *l = calloc((size_t)LDL * N, sizeof *l);
  double *b = malloc(sizeof *b * (size_t)LDB * N);
  double *ref = malloc(sizeof *ref * (size_t)LDB * N);
  assert_non_null(l);
  assert_non_null(b);
  assert_non_null(ref);
  for (int j = 0; j < N; j++)
    for (int i = 0; i < LDL; i++)
      l[(size_t)j * LDL + i] = i < N ? l_entry(N, i, j) : 1e300;
  for (size_t i = 0; i < (size_t)LDB * N; i++)
    b[i] = ref[i] = (int)(i % LDB) < M ? b_entry((int)(i % LDB), 0) : -7.0;
  trsm_split_d(M, N, 1.5, l, LDL, b, LDB);
  cblas_dtrsm(CblasColMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit,
              M, N, 1.5, l, LDL, ref, LDB);
  for (size_t i = 0; i < (size_t)LDB * N; i++) {
    if ((int)(i % LDB) >= M)
      assert_true(b[i] == -7.0);
    else
      assert_true(fabs(b[i] - ref[i]) <= 1e-12 * (1 + fabs(ref[i])));
  }
  free(l);
  free(b);
  free(ref);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_trsm_split_double),
      cmocka_unit_test(test_trsm_split_float),
      cmocka_unit_test(test_trsm_split_leading_dimensions),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
