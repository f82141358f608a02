/* SPDX-License-Identifier: MIT */
/* runtime/placement.c: the placement interface and the built-in placer. */
#include "config.h"

#include "runtime.h"

#define COMP "placement"

bool strata__placement_eligible(const strata_runtime_t *rt,
                                const strata__task_t *t, int d) {
  return d >= 0 && (size_t)d < rt->ndevices &&
         t->kernel->impl[rt->devices[d]->desc.impl_class] != NULL;
}

/* The eligible device with the least queued work per worker; ties go to
 * the lowest index. Loads are compared as cross products to stay in
 * integers. */
static int default_place(void *state, strata_runtime_t *rt,
                         const strata__task_t *t, int *device) {
  (void)state;
  int best = -1, eligible = 0;
  for (size_t i = 0; i < rt->ndevices && eligible < 2; i++)
    if (strata__placement_eligible(rt, t, (int)i)) {
      best = (int)i;
      eligible++;
    }
  if (eligible < 2) { /* no choice to make: skip reading the loads */
    *device = best;
    return best < 0 ? STRATA_ENODEV : STRATA_OK;
  }
  best = -1;
  uint64_t best_load = 0, best_workers = 1;
  for (size_t i = 0; i < rt->ndevices; i++) {
    if (!strata__placement_eligible(rt, t, (int)i))
      continue;
    const strata__device_t *d = rt->devices[i];
    uint64_t load = strata__device_load(d);
    uint64_t workers = d->desc.nworkers;
    if (best < 0 || load * best_workers < best_load * workers) {
      best = (int)i;
      best_load = load;
      best_workers = workers;
    }
  }
  if (best < 0)
    return STRATA_ENODEV;
  *device = best;
  return STRATA_OK;
}

const strata__placer_t strata__placer_default = {.name = "default",
                                                 .place = default_place};

int strata__placement_choose(strata_runtime_t *rt, const strata__task_t *t,
                             int *device) {
  atomic_fetch_add_explicit(&rt->placement.calls, 1, memory_order_relaxed);
  if (rt->placer.place != default_place) {
    int d = -1;
    int rc = rt->placer.place(rt->placer.state, rt, t, &d);
    if (rc == STRATA_OK && strata__placement_eligible(rt, t, d)) {
      *device = d;
      return STRATA_OK;
    }
    atomic_fetch_add_explicit(&rt->placement.fallbacks, 1,
                              memory_order_relaxed);
    STRATA_LOG(&rt->log, STRATA_LOG_WARN, COMP,
               "placer '%s' %s for task '%s'; using the default placement",
               rt->placer.name,
               rc ? strata_strerror(rc) : "chose an ineligible device",
               strata__task_name(t));
  }
  int rc = default_place(NULL, rt, t, device);
  if (rc == STRATA_ENODEV)
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
               "task '%s': no device has an implementation of kernel '%s'",
               strata__task_name(t), t->kernel->name);
  return rc;
}
