/* SPDX-License-Identifier: MIT */
/* runtime/device.h: the devices backends reported, each with its ready
 * queue and counters. `struct strata_device_handle` is what backends hold
 * as an opaque pointer. */
#ifndef STRATA_DEVICE_H
#define STRATA_DEVICE_H

#include <pthread.h>

#include <strata/backend.h>

#include "queue.h"

struct strata_runtime;
struct strata_core;
struct strata__task;

/* What one worker of a device owns. Slots are cache-line sized and
 * aligned so that workers never write to each other's lines. */
typedef union strata__worker_slot {
  struct {
    /* A successor its last task made ready, to run next without going
     * through the queue. Touched only by this worker. */
    struct strata__task *next_task;
    /* Written by this worker only; read by strata_device_stats. */
    _Atomic uint64_t tasks_run, tasks_failed, busy_ns;
  } w;
  char line[64];
} strata__worker_slot_t;

typedef struct strata_device_handle {
  int index;
  unsigned bindex;    /* its index in the backend's probe list */
  int node;           /* memory node its tasks' data lives on */
  atomic_bool failed; /* the backend reported it failed: no more work */
  /* One of its workers has called next(): the watchdog leaves it alone. */
  atomic_bool worker_seen;
  uint64_t thrash_mark; /* its node's evictions at the last look (worker 0) */
  bool thrash_warned;
  strata_backend_device_t desc; /* as probed; worker_cores stays the
                                   backend's, valid until its fini */
  struct strata_core *backend;
  struct strata_runtime *rt;
  strata__queue_t queue;
  strata__worker_slot_t *workers; /* desc.nworkers, 64-byte aligned */
  void *workers_block;            /* the allocation they live in */
  /* Tasks placed here, and those of them that ended: their difference is
   * the device's load. Two counters on separate cache lines, so that
   * submitting threads and workers do not write to the same line. */
  char pad0[64];
  _Atomic uint64_t submitted;
  char pad1[64];
  _Atomic uint64_t ended;
  char pad2[64];
} strata__device_t;

/** Tasks placed on d that have not ended (a hint when read concurrently;
 *  `ended` is read last, so a task submitted meanwhile is never missed by
 *  a reader that looks for zero). */
static inline uint64_t strata__device_load(const strata__device_t *d) {
  uint64_t s = atomic_load(&d->submitted);
  uint64_t e = atomic_load(&d->ended);
  return s > e ? s - e : 0;
}

/** Check everything probe reported (the list, each device's fields)
 *  before any of it is used: at most STRATA_BACKEND_DEVICES_MAX devices, an
 *  array unless there are none, entries of one published size, fields in
 *  the bounds backend.h gives. On failure, why (len bytes) says which
 *  device and field, for the caller's log line.
 *  @return 0; STRATA_EABI (the list); STRATA_EINVAL (a field)
 *  @thread owner (creation) */
int strata__devices_check(const struct strata_runtime *rt,
                          const struct strata_core *be,
                          const strata_backend_device_t *descs, size_t n,
                          char *why, size_t len);
/** Append the devices a backend probed (checked with
 *  strata__devices_check first). @return 0; STRATA_ENOMEM */
int strata__devices_add(struct strata_runtime *rt, struct strata_core *be,
                        const strata_backend_device_t *descs, size_t n);
/** Remove the last n devices (a backend that failed to start). */
void strata__devices_drop_last(struct strata_runtime *rt, size_t n);
/** Stop every device queue of a backend: next() answers ESHUTDOWN. */
void strata__devices_stop(struct strata_runtime *rt, struct strata_core *be);
void strata__devices_free(struct strata_runtime *rt);

/* {=== Watchdog ===}
 * A backend whose start() succeeded but that never runs a device's workers
 * would leave the tasks placed there waiting forever: once the bound has
 * passed, every device none of whose workers has called next() is failed,
 * so that its tasks run elsewhere or end STRATA_EDEVICE. */
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
void strata__devices_watch_start(struct strata_runtime *rt, int timeout_ms);
/** Stop the watchdog and wait for it; a no-op when it never started.
 *  @thread owner (destruction, before devices and memory go) */
void strata__devices_watch_stop(struct strata_runtime *rt);

/** Should d's replicas live in managed memory? Yes when d offers only
 *  managed memory, or offers it and `wanted` (strata_runtime_opts_t.
 *  managed_devices: names, or "all") names d; a name d cannot honour is
 *  logged at INFO. @thread owner (creation) */
bool strata__device_managed(const struct strata_runtime *rt,
                            const strata__device_t *d, const char *wanted);

/** The device's model (its name when the backend gave none). */
const char *strata__device_model_name(const strata__device_t *d);

#endif /* STRATA_DEVICE_H */
