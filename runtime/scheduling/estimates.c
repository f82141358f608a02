/* SPDX-License-Identifier: MIT */
/* runtime/scheduling/estimates.c: the run-time history and its file (see
 * estimates.h). */
#include "config.h"

#include "runtime.h"

int strata__estimates_init(strata_runtime_t *rt,
                           const strata_runtime_opts_t *opts) {
  strata__estimates_t *e = &rt->estimates;
  strata__perf_init(&e->history);
  e->ready = true;
  e->ndevices = rt->ndevices;
  e->modelled = strata__zalloc(&rt->alloc, (e->ndevices ? e->ndevices : 1) *
                                               sizeof *e->modelled);
  if (!e->modelled ||
      (opts->perf_models &&
       !(e->path = strata__strdup(&rt->alloc, opts->perf_models))))
    return STRATA_ENOMEM;
  for (size_t d = 0; d < e->ndevices; d++) {
    strata_device_model_t m = {.struct_size = sizeof m};
    e->modelled[d] = strata_device_model(rt, (int)d, &m) == STRATA_OK;
    e->any_modelled |= e->modelled[d];
  }
  /* A file that cannot be read is logged by the loader and ignored: the
   * history starts empty. */
  if (e->path && strata__perf_load(&e->history, &rt->alloc, e->path,
                                   &rt->log) == STRATA_ENOMEM)
    return STRATA_ENOMEM;
  return STRATA_OK;
}

void strata__estimates_track(strata_runtime_t *rt, bool on) {
  /* Read first: once on, the first question of every script call would
   * otherwise write a line every submitter reads. */
  if (atomic_load_explicit(&rt->track_estimates, memory_order_relaxed) != on)
    atomic_store(&rt->track_estimates, on);
}

void strata__estimates_fini(strata_runtime_t *rt) {
  strata__estimates_t *e = &rt->estimates;
  if (!e->ready)
    return;
  if (e->path && e->modelled)
    (void)strata__perf_save(&e->history, e->path, &rt->log);
  strata__perf_fini(&e->history, &rt->alloc);
  strata__free(&rt->alloc, e->modelled,
               (e->ndevices ? e->ndevices : 1) * sizeof *e->modelled);
  strata__strfree(&rt->alloc, e->path);
  *e = (strata__estimates_t){0};
}

void strata__estimates_task_ran(strata_runtime_t *rt, const strata__task_t *t,
                                int d, uint64_t ns) {
  strata__estimates_t *e = &rt->estimates;
  /* A device whose time is modelled: its real run times say nothing, and
   * the rated estimate is what the model charges anyway. */
  if (!e->modelled || (size_t)d >= e->ndevices || e->modelled[d])
    return;
  strata__perf_record(&e->history, &rt->alloc, t->kernel->name,
                      strata__device_model_name(rt->devices[d]), t->working_set,
                      (double)ns * 1e-9);
}

double strata__estimates_run_time(strata_runtime_t *rt, const strata__task_t *t,
                                  int d) {
  return strata__perf_estimate(&rt->estimates.history, rt->devices[d], t);
}
