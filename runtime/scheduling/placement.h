/* SPDX-License-Identifier: MIT */
/* runtime/scheduling/placement.h: where a task runs is decided once, at submit
 * time, by a placer: one call per submitted task, given the task (kernel,
 * attributes, accesses) and the devices with their current load. The
 * built-in placer picks an eligible device with the least queued work per
 * worker; a policy engine plugs in by installing another placer. A placer
 * that errs or answers with a device that cannot run the task is logged and
 * overridden by the built-in one, so a placement bug never loses a task. */
#ifndef STRATA_PLACEMENT_H
#define STRATA_PLACEMENT_H

#include "graph.h"

struct strata_runtime;

typedef struct strata__placer {
  const char *name;
  void *state;
  /** Choose a device for t (which it may annotate: the decision record).
   *  @return 0 with *device set; STRATA_ENOENT (no opinion); another
   *  STRATA_E* code (a failure, already logged). In both cases the
   *  built-in placer decides. @thread any submitter */
  int (*place)(void *state, struct strata_runtime *rt, strata__task_t *t,
               int *device);
  /** t was placed on device d (by this placer or the built-in one): enter
   *  it in whatever estimates the placer keeps. NULL: none. Called only
   *  once estimates are tracked (rt->track_estimates). @thread any
   *  submitter */
  void (*placed)(void *state, struct strata_runtime *rt,
                 const strata__task_t *t, int d);
  void (*destroy)(void *state, struct strata_runtime *rt);
} strata__placer_t;

typedef struct strata__placement_stats {
  _Atomic uint64_t calls, fallbacks;
} strata__placement_stats_t;

/** Whether device i is in a device mask (bit i: device i; UINT64_MAX:
 *  all devices, those past 63 included). */
static inline bool strata__placement_in_mask(uint64_t mask, size_t i) {
  return i >= 64 ? mask == UINT64_MAX : (mask >> i & 1) != 0;
}

/** True when device d can take t: it has an implementation of t's
 *  kernel, has not failed, and t's working set fits its memory. */
bool strata__placement_eligible(const struct strata_runtime *rt,
                                const strata__task_t *t, int d);

/** Decide where t runs. @return 0 with *device set; STRATA_ENODEV (no
 *  device can run the kernel). @thread any */
int strata__placement_choose(struct strata_runtime *rt, strata__task_t *t,
                             int *device);

/** Among the devices in `mask` (bit d: device d; UINT64_MAX: all) that
 *  can run t, the one with the least queued work per worker.
 *  @return 0; STRATA_ENODEV (none) @thread any */
int strata__placement_least_loaded(const struct strata_runtime *rt,
                                   const strata__task_t *t, uint64_t mask,
                                   int *device);

/** The built-in placer. */
extern const strata__placer_t strata__placer_default;

/** Make p (copied) the placer, in place of the one before, which is not
 *  destroyed (its owner does that). Submitters read the placer without a
 *  lock: set it only when none runs.
 *  @thread owner (creation, destruction) */
void strata__placer_set(struct strata_runtime *rt, const strata__placer_t *p);
/** Go back to the built-in placer (the one before is not destroyed).
 *  @thread owner (creation, destruction) */
void strata__placer_reset(struct strata_runtime *rt);
/** Destroy the placer (its destroy callback, when it has one) and go back
 *  to the built-in one. @thread owner (destruction) */
void strata__placer_fini(struct strata_runtime *rt);

#endif /* STRATA_PLACEMENT_H */
