/* SPDX-License-Identifier: MIT */
/* runtime/kernel.h: the kernel registry (name -> implementations). Kernels
 * are immutable once registered and live until the runtime is destroyed,
 * so workers read them without locks. */
#ifndef STRATA_KERNEL_INTERNAL_H
#define STRATA_KERNEL_INTERNAL_H

#include "internal.h"

typedef struct strata__kernel {
  uint64_t id;
  char *name;
  strata_kernel_fn impl[STRATA_CLASS_COUNT];
  void *user_data;
} strata__kernel_t;

struct strata_runtime;

/** @return the kernel, or NULL for a stale/zero handle. @thread any */
strata__kernel_t *strata__kernel_get(struct strata_runtime *rt,
                                     strata_kernel_t k);

/** Free every kernel (runtime destroy). */
void strata__kernels_free(struct strata_runtime *rt);

#endif /* STRATA_KERNEL_INTERNAL_H */
