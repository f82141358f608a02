/* SPDX-License-Identifier: MIT */
/* bench/gemm-rate.c: the rate of one OpenBLAS GEMM call, C = A B on n x n
 * matrices, with a given number of threads: the ceiling a tiled
 * factorisation on the same cores is measured against
 * (bench/compare-cholesky). One untimed call first (OpenBLAS starts its
 * threads, the pages are touched), then the median of `repeat` calls.
 * Usage: gemm-rate float|double N THREADS [REPEAT]
 * Prints one JSON line: {"bench":"gemm","precision":...,"gflops":...}. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timing.h"

int main(int argc, char **argv) {
  if (argc < 4 || argc > 5 ||
      (strcmp(argv[1], "float") && strcmp(argv[1], "double"))) {
    fprintf(stderr, "usage: gemm-rate float|double N THREADS [REPEAT]\n");
    return 2;
  }
  int dbl = !strcmp(argv[1], "double");
  int n = atoi(argv[2]), threads = atoi(argv[3]);
  int repeat = argc == 5 ? atoi(argv[4]) : 3;
  if (n < 1 || n > 65536 || threads < 1 || repeat < 1 || repeat > 99) {
    fprintf(stderr, "gemm-rate: bad N, THREADS or REPEAT\n");
    return 2;
  }
  size_t elem = dbl ? sizeof(double) : sizeof(float), nn = (size_t)n * n;
  void *a = malloc(nn * elem), *b = malloc(nn * elem), *c = malloc(nn * elem);
  if (!a || !b || !c) {
    fprintf(stderr, "gemm-rate: out of memory\n");
    return 1;
  }
  for (size_t i = 0; i < nn; i++) {
    double v = (double)((i * 2654435761u) % 1000) / 1000.0 - 0.5;
    if (dbl) {
      ((double *)a)[i] = v;
      ((double *)b)[i] = -v;
    } else {
      ((float *)a)[i] = (float)v;
      ((float *)b)[i] = (float)-v;
    }
  }
  openblas_set_num_threads(threads);
  double t[100];
  for (int r = -1; r < repeat; r++) {
    double t0 = bench_now();
    if (dbl)
      cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, a, n,
                  b, n, 0.0, c, n);
    else
      cblas_sgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a,
                  n, b, n, 0.0f, c, n);
    if (r >= 0)
      t[r] = bench_now() - t0;
  }
  qsort(t, (size_t)repeat, sizeof *t, bench_by_value);
  double median = t[repeat / 2];
  printf("{\"bench\":\"gemm\",\"precision\":\"%s\",\"n\":%d,\"threads\":%d,"
         "\"seconds\":%.6f,\"gflops\":%.2f}\n",
         argv[1], n, threads, median, 2.0 * n * n * (double)n / median * 1e-9);
  free(a);
  free(b);
  free(c);
  return 0;
}
