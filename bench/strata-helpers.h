/* SPDX-License-Identifier: MIT */
/* bench/strata-helpers.h: what the two Strata benchmark programs
 * (strata-bench.c, strata-membench.c) share on the Strata side: reporting
 * a failed call, a log sink on stderr, registering a CPU kernel.
 * (bench/common.h is the runtime-independent half strata-bench shares
 * with the StarPU counterpart.) Every function is static; the including
 * file defines PROG, its name, first. */
#ifndef BENCH_STRATA_HELPERS_H
#define BENCH_STRATA_HELPERS_H

#include <stdio.h>

#include <strata.h>

#ifndef PROG
#error "define PROG (the program's name) before including strata-helpers.h"
#endif

/* A runtime call failed: say which and why. @return rc, or STRATA_EINVAL
 * when rc is 0 (the caller fails either way). */
static int report(const char *what, int rc) {
  fprintf(stderr, PROG ": %s: %s (%s)\n", what, strata_strerror(rc),
          strata_err_name(rc));
  return rc ? rc : STRATA_EINVAL;
}

/* The runtime's log, on stderr. */
static void log_stderr(void *ud, strata_log_level_t level,
                       const char *component, const char *msg) {
  (void)ud;
  static const char *const names[] = {"error", "warn", "info", "debug",
                                      "trace"};
  fprintf(stderr, PROG ": [%s] %s: %s\n", names[level], component, msg);
}

/* Register fn as the CPU implementation of kernel `name`, with user_data
 * ud. It is given as the CUDA implementation too, so that simulated GPUs
 * are candidates: they run the CPU code and never call the CUDA entry. */
static inline int register_cpu_kernel(strata_runtime_t *rt, const char *name,
                                      strata_kernel_fn fn, void *ud,
                                      strata_kernel_t *out) {
  const strata_kernel_impl_t impls[] = {{STRATA_IMPL_CPU, fn},
                                        {STRATA_IMPL_CUDA, fn}};
  strata_kernel_desc_t d = {.struct_size = sizeof d,
                            .name = name,
                            .impls = impls,
                            .nimpls = 2,
                            .user_data = ud};
  int rc = strata_kernel_register(rt, &d, out);
  return rc ? report("strata_kernel_register", rc) : 0;
}

#endif /* BENCH_STRATA_HELPERS_H */
