/* SPDX-License-Identifier: MIT */
/* runtime/scheduling/watchdog.c: fail the devices whose workers never
 * start (see watchdog.h). */
#include "config.h"

#include "runtime.h"

#include "dispatch.h"

#include <time.h>

#define COMP "device"

#define WATCH_DEFAULT_MS 5000
/* How often the watchdog looks whether every device has a worker by now:
 * it ends as soon as they have, which is the usual case. */
#define WATCH_POLL_NS 10000000

static bool all_have_workers(const strata_runtime_t *rt) {
  for (size_t i = 0; i < rt->ndevices; i++)
    if (!atomic_load(&rt->devices[i]->worker_seen) &&
        !atomic_load(&rt->devices[i]->failed))
      return false;
  return true;
}

/* Fail each device still without a worker. No lock is held: failing runs
 * its tasks elsewhere, through placement and the graph. */
static void fail_stalled(strata_runtime_t *rt, uint64_t bound_ns) {
  for (size_t i = 0; i < rt->ndevices; i++) {
    strata__device_t *d = rt->devices[i];
    if (atomic_load(&d->worker_seen) || atomic_load(&d->failed))
      continue;
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
               "backend '%s': device %s: no worker started within %.1f s; "
               "device failed",
               d->backend->name, d->desc.name, (double)bound_ns / 1e9);
    strata__dispatch_fail_device(rt, d, "its backend started no worker for it");
  }
}

static void *watch(void *arg) {
  strata_runtime_t *rt = arg;
  strata__watchdog_t *w = &rt->watchdog;
  uint64_t deadline = strata__now_ns() + w->bound_ns;
  pthread_mutex_lock(&w->mu);
  for (;;) {
    if (w->stop || all_have_workers(rt))
      break;
    uint64_t now = strata__now_ns();
    if (now >= deadline)
      break;
    struct timespec until =
        strata__timespec_at(STRATA_MIN(deadline, now + WATCH_POLL_NS));
    pthread_cond_timedwait(&w->cv, &w->mu, &until);
  }
  bool stop = w->stop;
  pthread_mutex_unlock(&w->mu);
  if (!stop)
    fail_stalled(rt, w->bound_ns);
  return NULL;
}

void strata__watchdog_start(strata_runtime_t *rt, int timeout_ms) {
  strata__watchdog_t *w = &rt->watchdog;
  if (timeout_ms < 0 || all_have_workers(rt))
    return;
  w->bound_ns =
      (uint64_t)(timeout_ms ? timeout_ms : WATCH_DEFAULT_MS) * 1000000u;
  w->stop = false;
  pthread_mutex_init(&w->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&w->cv, &ca);
  pthread_condattr_destroy(&ca);
  if (pthread_create(&w->thread, NULL, watch, rt)) {
    STRATA_LOG(&rt->log, STRATA_LOG_WARN, COMP,
               "cannot start the worker watchdog: a device whose backend never "
               "runs its workers will keep its tasks waiting");
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    return;
  }
  w->running = true;
}

void strata__watchdog_stop(strata_runtime_t *rt) {
  strata__watchdog_t *w = &rt->watchdog;
  if (!w->running)
    return;
  pthread_mutex_lock(&w->mu);
  w->stop = true;
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->thread, NULL);
  pthread_cond_destroy(&w->cv);
  pthread_mutex_destroy(&w->mu);
  w->running = false;
}
