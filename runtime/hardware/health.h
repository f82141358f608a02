/* SPDX-License-Identifier: MIT */
/* runtime/hardware/health.h: the health cache. One core thread calls every
 * backend's health() (a driver call that may be slow: NVML) every
 * health_period_ms, without any runtime lock, and keeps the readings;
 * strata_device_health, placement and the policy's views read the cache,
 * never the backend. After each round the thread calls the hook a module
 * registered (the policy's alert check), so alerts still come from one
 * thread, as before. */
#ifndef STRATA_HEALTH_H
#define STRATA_HEALTH_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <strata/runtime.h>

struct strata_runtime;

typedef struct strata__health_reading {
  int rc;            /* 0; STRATA_EAGAIN (not read yet); the backend's */
  strata_health_t h; /* valid when rc is 0 */
} strata__health_reading_t;

typedef struct strata__health {
  pthread_mutex_t mu;  /* everything below */
  pthread_cond_t wake; /* CLOCK_MONOTONIC: a request, stop */
  pthread_cond_t done; /* a round ended */
  pthread_t thread;
  bool running; /* the thread was started and is not joined yet */
  bool stop;
  int period_ms;   /* <= 0: rounds only when asked */
  uint64_t asked;  /* rounds requested (each waiter's ticket) */
  uint64_t rounds; /* the highest ticket a finished round served */
  size_t n;        /* readings: one per device */
  strata__health_reading_t *readings;
  /* Called on the thread after each round, without mu. Set before
   * strata__health_start. */
  void (*after)(struct strata_runtime *rt);
} strata__health_t;

/** Start the thread (when a device's backend has health()): it reads
 *  every device at once, then every period_ms (0: 1000; negative: only
 *  when strata__health_refresh asks). Waits a little (100 ms at most)
 *  for the first round, so that readings exist right after creation
 *  unless a backend is slow. A thread that cannot be started is logged at
 *  WARN: readings then stay unknown.
 *  @return 0; STRATA_ENOMEM
 *  @thread owner (creation, after the policy registered its hook) */
int strata__health_start(struct strata_runtime *rt, int period_ms);
/** Have the thread call after(rt) after each round (NULL: nothing): the
 *  policy's alerts. @thread owner (creation, before strata__health_start) */
static inline void
strata__health_set_round_hook(strata__health_t *h,
                              void (*after)(struct strata_runtime *rt)) {
  h->after = after;
}
/** Stop and join the thread; free the cache. A no-op when never started.
 *  @thread owner (destruction, before the policy goes) */
void strata__health_stop(struct strata_runtime *rt);

/** Have the thread make a round now (readings and the after hook) and
 *  wait for it. @return 0; STRATA_ENOTSUP (no thread: no device has a
 *  health readout)  @thread any but the health thread  @blocks yes */
int strata__health_refresh(struct strata_runtime *rt);

/** The cached reading of device d.
 *  @return 0 (*out set); STRATA_ENOTSUP (its backend cannot tell);
 *          STRATA_EAGAIN (not read yet); the backend's error at the last
 *          reading
 *  @thread any  @blocks no (a short lock) */
int strata__health_read(const struct strata_runtime *rt, int d,
                        strata_health_t *out);

#endif /* STRATA_HEALTH_H */
