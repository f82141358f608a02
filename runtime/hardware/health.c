/* SPDX-License-Identifier: MIT */
/* runtime/hardware/health.c: the health thread and its cache (see health.h). */
#include "config.h"

#include "runtime.h"

#include <string.h>
#include <time.h>

#define COMP "health"
#define DEFAULT_PERIOD_MS 1000
/* How long creation waits for the first round. */
#define FIRST_ROUND_NS 100000000u

static bool has_health(const strata__device_t *d) {
  return d->backend->comp->health != NULL;
}

/* Read device d from its backend (no lock held: it may be slow) and keep
 * the reading. */
static void poll_device(strata_runtime_t *rt, size_t d) {
  strata__health_t *H = &rt->health;
  strata__device_t *dev = rt->devices[d];
  strata_health_t h = {.struct_size = sizeof h,
                       .temperature_c = -300,
                       .power_w = -1,
                       .utilisation = -1,
                       .throttled = -1,
                       .memory_used_bytes = -1,
                       .ecc_mode = -1,
                       .ecc_corrected = -1,
                       .ecc_uncorrected = -1,
                       .pcie_gen = -1,
                       .pcie_width = -1,
                       .persistence_mode = -1,
                       .compute_mode = -1};
  int rc = dev->backend->comp->health(dev->backend->state, dev->bindex, &h);
  pthread_mutex_lock(&H->mu);
  H->readings[d].rc = rc;
  if (rc == STRATA_OK)
    H->readings[d].h = h;
  pthread_mutex_unlock(&H->mu);
}

/* One round: every live device with a readout, then the hook. */
static void round_once(strata_runtime_t *rt) {
  for (size_t d = 0; d < rt->health.n; d++)
    if (has_health(rt->devices[d]) && !atomic_load(&rt->devices[d]->failed))
      poll_device(rt, d);
  if (rt->health.after)
    rt->health.after(rt);
}

static void *health_main(void *arg) {
  strata_runtime_t *rt = arg;
  strata__health_t *H = &rt->health;
  uint64_t period_ns = H->period_ms > 0 ? (uint64_t)H->period_ms * 1000000u : 0;
  pthread_mutex_lock(&H->mu);
  while (!H->stop) {
    uint64_t ticket = H->asked;
    pthread_mutex_unlock(&H->mu);
    round_once(rt);
    pthread_mutex_lock(&H->mu);
    H->rounds = ticket;
    pthread_cond_broadcast(&H->done);
    struct timespec due = strata__deadline_in(period_ns);
    /* Sleep until the period ends or someone asks for a round. */
    while (!H->stop && H->asked == ticket)
      if (period_ns ? pthread_cond_timedwait(&H->wake, &H->mu, &due)
                    : pthread_cond_wait(&H->wake, &H->mu))
        break; /* timed out: the next periodic round */
  }
  pthread_mutex_unlock(&H->mu);
  return NULL;
}

static int init_cache(strata_runtime_t *rt, int period_ms) {
  strata__health_t *H = &rt->health;
  H->n = rt->ndevices;
  H->readings =
      strata__zalloc(&rt->alloc, (H->n ? H->n : 1) * sizeof *H->readings);
  if (!H->readings)
    return STRATA_ENOMEM;
  for (size_t d = 0; d < H->n; d++)
    H->readings[d].rc =
        has_health(rt->devices[d]) ? STRATA_EAGAIN : STRATA_ENOTSUP;
  H->period_ms = period_ms ? period_ms : DEFAULT_PERIOD_MS;
  pthread_mutex_init(&H->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&H->wake, &ca);
  pthread_cond_init(&H->done, &ca);
  pthread_condattr_destroy(&ca);
  return STRATA_OK;
}

int strata__health_start(strata_runtime_t *rt, int period_ms) {
  strata__health_t *H = &rt->health;
  int rc = init_cache(rt, period_ms);
  if (rc)
    return rc;
  bool any = false;
  for (size_t d = 0; d < H->n; d++)
    any |= has_health(rt->devices[d]);
  if (!any)
    return STRATA_OK;
  H->asked = 1; /* the first round, which creation waits for */
  if (pthread_create(&H->thread, NULL, health_main, rt)) {
    STRATA_LOG(&rt->log, STRATA_LOG_WARN, COMP,
               "cannot start the health thread: device health stays unknown "
               "and no alert is raised");
    return STRATA_OK;
  }
  H->running = true;
  struct timespec until = strata__deadline_in(FIRST_ROUND_NS);
  pthread_mutex_lock(&H->mu);
  while (H->rounds < 1)
    if (pthread_cond_timedwait(&H->done, &H->mu, &until))
      break;
  pthread_mutex_unlock(&H->mu);
  return STRATA_OK;
}

void strata__health_stop(strata_runtime_t *rt) {
  strata__health_t *H = &rt->health;
  if (!H->readings)
    return;
  if (H->running) {
    pthread_mutex_lock(&H->mu);
    H->stop = true;
    pthread_cond_broadcast(&H->wake);
    pthread_mutex_unlock(&H->mu);
    pthread_join(H->thread, NULL);
    H->running = false;
  }
  pthread_cond_destroy(&H->done);
  pthread_cond_destroy(&H->wake);
  pthread_mutex_destroy(&H->mu);
  strata__free(&rt->alloc, H->readings,
               (H->n ? H->n : 1) * sizeof *H->readings);
  *H = (strata__health_t){0};
}

int strata__health_refresh(strata_runtime_t *rt) {
  strata__health_t *H = &rt->health;
  if (!H->running)
    return STRATA_ENOTSUP;
  pthread_mutex_lock(&H->mu);
  uint64_t ticket = ++H->asked;
  pthread_cond_signal(&H->wake);
  while (H->rounds < ticket && !H->stop)
    pthread_cond_wait(&H->done, &H->mu);
  pthread_mutex_unlock(&H->mu);
  return STRATA_OK;
}

int strata__health_read(const strata_runtime_t *rt, int d,
                        strata_health_t *out) {
  strata__health_t *H = (strata__health_t *)&rt->health;
  if (!H->readings || (size_t)d >= H->n) /* before the cache exists */
    return has_health(rt->devices[d]) ? STRATA_EAGAIN : STRATA_ENOTSUP;
  pthread_mutex_lock(&H->mu);
  strata__health_reading_t r = H->readings[d];
  pthread_mutex_unlock(&H->mu);
  if (r.rc == STRATA_OK)
    *out = r.h;
  return r.rc;
}
