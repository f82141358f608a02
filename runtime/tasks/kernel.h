/* SPDX-License-Identifier: MIT */
/* runtime/tasks/kernel.h: the kernel registry (name -> implementations, indexed
 * by strata_impl_kind_t: NULL where the kernel has none). Kernels
 * are immutable once registered and live until the runtime is destroyed,
 * so workers read them without locks. */
#ifndef STRATA_KERNEL_INTERNAL_H
#define STRATA_KERNEL_INTERNAL_H

#include <strata/backend.h>

#include "internal.h"

typedef struct strata__kernel {
  uint64_t id;
  char *name;
  strata_kernel_fn impl[STRATA_IMPL_COUNT];
  void *user_data;
} strata__kernel_t;

struct strata_runtime;

/** @return the kernel, or NULL for a stale/zero handle. @thread any */
strata__kernel_t *strata__kernel_get(struct strata_runtime *rt,
                                     strata_kernel_t k);

/** The implementation device desc `d` calls for kernel k, or NULL when
 *  the device is not a candidate for it: a device is one only where the
 *  kernel has code of both its candidate_impl and its run_impl kinds (a
 *  simulated GPU needs CUDA code to stand for and CPU code to run).
 *  @thread any */
static inline strata_kernel_fn
strata__kernel_impl_for(const strata__kernel_t *k,
                        const strata_backend_device_t *d) {
  return k->impl[d->candidate_impl] ? k->impl[d->run_impl] : NULL;
}

/** Free every kernel (runtime destroy). */
void strata__kernels_free(struct strata_runtime *rt);

#endif /* STRATA_KERNEL_INTERNAL_H */
