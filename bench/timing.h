/* SPDX-License-Identifier: MIT */
/* bench/timing.h: the clock and the median's sort of the small standalone
 * benchmarks (gemm-rate, tile-bound), which do not link the runtime. */
#ifndef STRATA_BENCH_TIMING_H
#define STRATA_BENCH_TIMING_H

#include <time.h>

/* CLOCK_MONOTONIC in seconds. */
static inline double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* qsort order for doubles. */
static inline int bench_by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

#endif /* STRATA_BENCH_TIMING_H */
