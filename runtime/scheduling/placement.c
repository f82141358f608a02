/* SPDX-License-Identifier: MIT */
/* runtime/scheduling/placement.c: the placement interface and the built-in
 * placer. */
#include "config.h"

#include "runtime.h"

#define COMP "placement"

/* Is device d a candidate for t's kernel (it has the kinds of code the
 * device asks for), and is it alive? */
static bool can_run(const strata_runtime_t *rt, const strata__task_t *t,
                    int d) {
  return d >= 0 && (size_t)d < rt->ndevices &&
         !atomic_load(&rt->devices[d]->failed) &&
         strata__kernel_impl_for(t->kernel, &rt->devices[d]->desc) != NULL;
}

bool strata__placement_eligible(const strata_runtime_t *rt,
                                const strata__task_t *t, int d) {
  /* Without device memory (or a host cap) everything fits. */
  return can_run(rt, t, d) &&
         (!strata__memory_active(&rt->mem) ||
          strata__memory_fits((strata_runtime_t *)rt, d, t));
}

int strata__placement_least_loaded(const strata_runtime_t *rt,
                                   const strata__task_t *t, uint64_t mask,
                                   int *device) {
  /* Loads compare as fractions (work / workers) by cross products. They
   * are read only once a second eligible device makes a choice: a
   * device's counters are written by its workers. */
  int best = -1;
  bool read = false;
  uint64_t best_load = 0, best_workers = 1;
  for (size_t i = 0; i < rt->ndevices; i++) {
    if (!strata__placement_in_mask(mask, i) ||
        !strata__placement_eligible(rt, t, (int)i))
      continue;
    if (best < 0) {
      best = (int)i;
      continue;
    }
    if (!read) {
      best_load = strata__device_load(rt->devices[best]);
      best_workers = rt->devices[best]->desc.nworkers;
      read = true;
    }
    const strata__device_t *d = rt->devices[i];
    uint64_t load = strata__device_load(d), workers = d->desc.nworkers;
    if (load * best_workers < best_load * workers) {
      best = (int)i;
      best_load = load;
      best_workers = workers;
    }
  }
  *device = best;
  return best < 0 ? STRATA_ENODEV : STRATA_OK;
}

/* The eligible device with the least queued work per worker; ties go to
 * the lowest index. */
static int default_place(void *state, strata_runtime_t *rt, strata__task_t *t,
                         int *device) {
  (void)state;
  return strata__placement_least_loaded(rt, t, UINT64_MAX, device);
}

const strata__placer_t strata__placer_default = {.name = "default",
                                                 .place = default_place};

void strata__placer_set(strata_runtime_t *rt, const strata__placer_t *p) {
  rt->placer = *p;
}

void strata__placer_reset(strata_runtime_t *rt) {
  rt->placer = strata__placer_default;
}

void strata__placer_fini(strata_runtime_t *rt) {
  if (rt->placer.destroy)
    rt->placer.destroy(rt->placer.state, rt);
  strata__placer_reset(rt);
}

/* No device can take t: say why, and tell a task too big for every
 * device that could run its kernel from one no device can run. */
static int explain_no_device(strata_runtime_t *rt, const strata__task_t *t) {
  uint64_t largest = 0;
  bool runnable = false;
  for (size_t i = 0; i < rt->ndevices; i++)
    if (can_run(rt, t, (int)i)) {
      runnable = true;
      strata_memory_node_info_t n = {.struct_size = sizeof n};
      if (strata_memory_node_info(rt, rt->devices[i]->node, &n) == 0 &&
          n.capacity > largest)
        largest = n.capacity;
    }
  if (runnable) {
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
               "task '%s' needs %llu bytes at once; the largest memory of a "
               "device that can run kernel '%s' holds %llu",
               strata__task_name(t), (unsigned long long)t->working_set,
               t->kernel->name, (unsigned long long)largest);
    return STRATA_ENOSPC;
  }
  STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
             "task '%s': no working device has an implementation of kernel "
             "'%s'",
             strata__task_name(t), t->kernel->name);
  return STRATA_ENODEV;
}

static int choose(strata_runtime_t *rt, strata__task_t *t, int *device) {
  atomic_fetch_add_explicit(&rt->placement.calls, 1, memory_order_relaxed);
  if (rt->placer.place != default_place) {
    int d = -1;
    int rc = rt->placer.place(rt->placer.state, rt, t, &d);
    if (rc == STRATA_OK && strata__placement_eligible(rt, t, d)) {
      *device = d;
      return STRATA_OK;
    }
    /* STRATA_ENOENT: the placer has no opinion. Otherwise the placer has
     * logged why (a policy logs each distinct error once, not per task). */
    if (rc != STRATA_ENOENT) {
      atomic_fetch_add_explicit(&rt->placement.fallbacks, 1,
                                memory_order_relaxed);
      STRATA_LOG(&rt->log, STRATA_LOG_DEBUG, COMP,
                 "placer '%s' %s for task '%s'; using the default placement",
                 rt->placer.name,
                 rc ? strata_strerror(rc) : "chose an ineligible device",
                 strata__task_name(t));
    }
  }
  int rc = default_place(NULL, rt, t, device);
  if (rc == STRATA_ENODEV)
    rc = explain_no_device(rt, t);
  return rc;
}

int strata__placement_choose(strata_runtime_t *rt, strata__task_t *t,
                             int *device) {
  int rc = choose(rt, t, device);
  if (rc == STRATA_OK && rt->placer.placed &&
      atomic_load_explicit(&rt->track_estimates, memory_order_relaxed))
    rt->placer.placed(rt->placer.state, rt, t, *device);
  return rc;
}
