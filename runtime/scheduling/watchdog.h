/* SPDX-License-Identifier: MIT */
/* runtime/scheduling/watchdog.h: devices whose workers never start. A
 * backend whose start() succeeded but that never runs a device's workers
 * would leave the tasks placed there waiting forever: once the bound has
 * passed, every device none of whose workers has called next() is failed,
 * so that its tasks run elsewhere or end STRATA_EDEVICE
 * (through scheduling/dispatch.c's failover). */
#ifndef STRATA_WATCHDOG_H
#define STRATA_WATCHDOG_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct strata_runtime;

typedef struct strata__watchdog {
  pthread_mutex_t mu;
  pthread_cond_t cv; /* CLOCK_MONOTONIC; signalled to stop */
  pthread_t thread;
  uint64_t bound_ns;
  bool running; /* the thread was started and is not joined yet */
  bool stop;    /* under mu */
} strata__watchdog_t;

/** Watch the devices for `timeout_ms` from now (0: the default, 5 s;
 *  negative: do not watch). No thread is started when every device already
 *  has a worker; a thread that cannot be started is logged at WARN and the
 *  devices go unwatched.
 *  @thread owner (creation, once the devices and memory are set up) */
void strata__watchdog_start(struct strata_runtime *rt, int timeout_ms);
/** Stop the watchdog and wait for it; a no-op when it never started.
 *  @thread owner (destruction, before devices and memory go) */
void strata__watchdog_stop(struct strata_runtime *rt);

#endif /* STRATA_WATCHDOG_H */
