/* SPDX-License-Identifier: MIT */
/* runtime/scheduling/estimates.h: how long tasks take, kept outside the
 * Lua engine so that placement, the plan, the policy's views (and the
 * metrics and traces to come) all read one history. It owns the
 * performance-model history (perfmodel.h), the file it is loaded from at
 * creation and saved to at destruction (strata_runtime_opts_t.perf_models),
 * and which devices have modelled time (their real run times say nothing).
 * Recording is lock-free for readers as perfmodel.h says. */
#ifndef STRATA_ESTIMATES_H
#define STRATA_ESTIMATES_H

#include <stdbool.h>
#include <stdint.h>

#include <strata/runtime.h>

#include "perfmodel.h"

struct strata_runtime;
struct strata__task;

typedef struct strata__estimates {
  strata__perfmodel_t history;
  char *path;     /* perf_models, NULL: kept in memory only */
  bool *modelled; /* per device: its time is modelled (no history) */
  size_t ndevices;
  bool any_modelled;
  bool ready; /* init ran: fini has something to free */
} strata__estimates_t;

/** Keep run-time estimates from now on (on), or stop (off: the policy
 *  went). Until a script asks for one, a submission pays nothing for
 *  them. @thread owner (on, off), any (on: a script's first question) */
void strata__estimates_track(struct strata_runtime *rt, bool on);

/** Whether some device's times are modelled (it has no history): fixed by
 *  strata__estimates_init. @thread any */
static inline bool
strata__estimates_any_modelled(const strata__estimates_t *e) {
  return e->any_modelled;
}
/** The perf-model file (opts->perf_models), NULL: kept in memory only.
 *  @thread any */
static inline const char *strata__estimates_path(const strata__estimates_t *e) {
  return e->path;
}

/** Set up the history for the runtime's devices (after they are known) and
 *  load opts->perf_models when given (a missing or bad file is logged and
 *  ignored).
 *  @return 0; STRATA_ENOMEM  @thread owner (creation) */
int strata__estimates_init(struct strata_runtime *rt,
                           const strata_runtime_opts_t *opts);
/** Save the history to its file (when there is one) and free it. Tolerates
 *  a failed or missing init. @thread owner (destruction) */
void strata__estimates_fini(struct strata_runtime *rt);

/** Task t ran for `ns` on device d: remember it for its kernel, the
 *  device's model and its working-set size (not on modelled devices).
 *  @thread any */
void strata__estimates_task_ran(struct strata_runtime *rt,
                                const struct strata__task *t, int d,
                                uint64_t ns);

/** Seconds t would run on device d (strata__perf_estimate over this
 *  history). @thread any */
double strata__estimates_run_time(struct strata_runtime *rt,
                                  const struct strata__task *t, int d);

#endif /* STRATA_ESTIMATES_H */
