/* SPDX-License-Identifier: MIT */
/* bench/tile-bound.c: the fastest any runtime can factorise an N x N
 * matrix in tiles of B on W cores with these tile kernels. It times, on
 * one thread, the four calls the kernel library makes for a tiled
 * Cholesky (kernels/lib/cpu_blas.c: gemm C -= A B^T, syrk, trsm
 * B = B L^-T split as kernels/lib/trsm_split.h splits it, potrf), then bounds
 * the factorisation's time from below by the larger of its work over W cores
 * (every kernel's time times its count, with perfect balance and no idle core)
 * and its critical path (potrf, trsm, syrk per step, one after the other).
 * bench/compare-cholesky prints this next to the runtimes and the whole-matrix
 * GEMM: the part of the distance to GEMM that the tile kernels themselves cost.
 * Usage: tile-bound float|double N B W [REPEAT]
 * Prints one JSON line: the kernels' GFLOP/s and the bound's. */
#include <cblas.h>
#include <lapacke.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/lib/trsm_split.h"
#include "timing.h"

enum { GEMM, SYRK, TRSM, POTRF, NKERNELS };
static const char *const kernel_names[NKERNELS] = {"gemm", "syrk", "trsm",
                                                   "potrf"};

/* The tiles one call works on: a, b general, c the target, l a lower
 * triangular factor of a well-conditioned SPD tile, spd that tile. */
typedef struct tiles {
  int dbl, b;
  void *a, *bt, *c, *l, *spd, *work;
} tiles_t;

static void put(const tiles_t *t, void *m, size_t i, double v) {
  if (t->dbl)
    ((double *)m)[i] = v;
  else
    ((float *)m)[i] = (float)v;
}

/* Diagonally dominant, so potrf succeeds and trsm stays finite however
 * often it is repeated on the same tile. */
static void fill_spd(const tiles_t *t, void *m) {
  for (int j = 0; j < t->b; j++)
    for (int i = 0; i < t->b; i++)
      put(t, m, (size_t)j * t->b + i,
          i == j ? (double)t->b : 0.5 / (1.0 + abs(i - j)));
}

static int tiles_init(tiles_t *t, int dbl, int b) {
  size_t bytes = (size_t)b * b * (dbl ? sizeof(double) : sizeof(float));
  *t = (tiles_t){.dbl = dbl, .b = b};
  void **all[] = {&t->a, &t->bt, &t->c, &t->l, &t->spd, &t->work};
  for (size_t k = 0; k < sizeof all / sizeof *all; k++)
    if (!(*all[k] = malloc(bytes)))
      return -1;
  for (size_t i = 0; i < (size_t)b * b; i++) {
    double v = (double)((i * 2654435761u) % 1000) / 1000.0 - 0.5;
    put(t, t->a, i, v);
    put(t, t->bt, i, -v);
    put(t, t->c, i, 0.0);
  }
  fill_spd(t, t->l);
  int bad = dbl ? LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', b, t->l, b)
                : LAPACKE_spotrf(LAPACK_COL_MAJOR, 'L', b, t->l, b);
  return bad ? -1 : 0;
}

static void tiles_free(tiles_t *t) {
  void *all[] = {t->a, t->bt, t->c, t->l, t->spd, t->work};
  for (size_t k = 0; k < sizeof all / sizeof *all; k++)
    free(all[k]);
}

/* One call of KERNEL, timed. potrf and trsm work on fresh copies (the
 * copy is outside the timed part) so every call sees the same numbers. */
static double time_call(const tiles_t *t, int kernel) {
  int b = t->b;
  size_t bytes = (size_t)b * b * (t->dbl ? sizeof(double) : sizeof(float));
  if (kernel == POTRF)
    fill_spd(t, t->spd);
  if (kernel == TRSM)
    memcpy(t->work, t->a, bytes);
  double t0 = bench_now();
  switch (kernel) {
  case GEMM:
    if (t->dbl)
      cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, b, b, b, -1.0, t->a,
                  b, t->bt, b, 1.0, t->c, b);
    else
      cblas_sgemm(CblasColMajor, CblasNoTrans, CblasTrans, b, b, b, -1.0f, t->a,
                  b, t->bt, b, 1.0f, t->c, b);
    break;
  case SYRK:
    if (t->dbl)
      cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, b, b, -1.0, t->a, b,
                  1.0, t->c, b);
    else
      cblas_ssyrk(CblasColMajor, CblasLower, CblasNoTrans, b, b, -1.0f, t->a, b,
                  1.0f, t->c, b);
    break;
  case TRSM:
    if (t->dbl)
      trsm_split_d(b, b, 1.0, t->l, b, t->work, b);
    else
      trsm_split_s(b, b, 1.0f, t->l, b, t->work, b);
    break;
  default:
    if (t->dbl)
      LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'L', b, t->spd, b);
    else
      LAPACKE_spotrf_work(LAPACK_COL_MAJOR, 'L', b, t->spd, b);
  }
  return bench_now() - t0;
}

int main(int argc, char **argv) {
  if (argc < 5 || argc > 6 ||
      (strcmp(argv[1], "float") && strcmp(argv[1], "double"))) {
    fprintf(stderr, "usage: tile-bound float|double N B W [REPEAT]\n");
    return 2;
  }
  int dbl = !strcmp(argv[1], "double");
  int n = atoi(argv[2]), b = atoi(argv[3]), w = atoi(argv[4]);
  int repeat = argc == 6 ? atoi(argv[5]) : 9;
  if (b < 1 || b > 8192 || n < b || n % b || w < 1 || repeat < 1 ||
      repeat > 99) {
    fprintf(stderr, "tile-bound: N a multiple of B, W and REPEAT >= 1\n");
    return 2;
  }
  tiles_t t;
  if (tiles_init(&t, dbl, b)) {
    fprintf(stderr, "tile-bound: out of memory\n");
    tiles_free(&t);
    return 1;
  }
  openblas_set_num_threads(1);
  double b3 = (double)b * b * b;
  const double flops[NKERNELS] = {2 * b3, b3, b3, b3 / 3};
  double seconds[NKERNELS];
  for (int k = 0; k < NKERNELS; k++) {
    double s[100];
    time_call(&t, k); /* warm: OpenBLAS's buffers, the pages */
    for (int r = 0; r < repeat; r++)
      s[r] = time_call(&t, k);
    qsort(s, (size_t)repeat, sizeof *s, bench_by_value);
    seconds[k] = s[repeat / 2];
  }
  tiles_free(&t);

  /* T tiles a side: T potrf, T(T-1)/2 trsm and syrk, T(T-1)(T-2)/6 gemm. */
  double T = (double)(n / b);
  const double count[NKERNELS] = {T * (T - 1) * (T - 2) / 6, T * (T - 1) / 2,
                                  T * (T - 1) / 2, T};
  double work = 0;
  for (int k = 0; k < NKERNELS; k++)
    work += count[k] * seconds[k];
  double path = T * seconds[POTRF] + (T - 1) * (seconds[TRSM] + seconds[SYRK]);
  double bound = work / w > path ? work / w : path;
  printf("{\"bench\":\"tile-bound\",\"precision\":\"%s\",\"n\":%d,\"tile\":%d,"
         "\"workers\":%d",
         argv[1], n, b, w);
  for (int k = 0; k < NKERNELS; k++)
    printf(",\"%s_gflops\":%.2f", kernel_names[k],
           flops[k] / seconds[k] * 1e-9);
  printf(",\"work_s\":%.4f,\"path_s\":%.4f,\"gflops\":%.2f}\n", work, path,
         (double)n * n * n / 3 / bound * 1e-9);
  return 0;
}
