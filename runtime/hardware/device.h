/* SPDX-License-Identifier: MIT */
/* runtime/hardware/device.h: the devices backends reported, each with its ready
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

/* What one worker of a device owns: two cache lines, so that workers
 * never write to each other's lines, and the threads that complete its
 * works off its thread (an event or callback thread) write the second. */
typedef union strata__worker_slot {
  struct {
    /* A successor its last task made ready, to run next without going
     * through the queue. Touched only by this worker's thread: complete()
     * hands one over only when it runs on the thread that last took work
     * for this worker (strata__dispatch_complete). */
    struct strata__task *next_task;
    /* The work holding this worker's own place in the device's depth
     * (see strata__depth_t), NULL when free: set by the worker in next(),
     * cleared by whoever completes that work. */
    _Atomic(struct strata__task *) own;
    /* When a work of it last completed (a hint: completions on two
     * threads at once may keep either time). */
    _Atomic uint64_t last_end_ns;
    /* Works completed on the worker's own thread: written by it alone
     * (plain adds, published atomically); read by strata_device_stats.
     * busy_ns sums each work's time from next(), or from the end of the
     * worker's work before it, to complete(). */
    _Atomic uint64_t tasks_run, tasks_failed, busy_ns;
    /* The thread that last took work for this worker (an address unique
     * to it, set in next()): complete() on that thread, and on no other,
     * is the worker's own (backend.h: one thread per worker index at a
     * time), even after the index moved to another thread. */
    _Atomic(const void *) server;
    char pad[8];
    /* Works completed on any other thread: atomic adds. */
    _Atomic uint64_t far_run, far_failed, far_busy_ns;
  } w;
  char line[128];
} strata__worker_slot_t;
_Static_assert(sizeof(strata__worker_slot_t) == 128,
               "a worker slot is two cache lines");
_Static_assert(offsetof(strata__worker_slot_t, w.far_run) == 64,
               "other threads write the second line only");

/* How many works a device may hold at once (inflight_depth), counted
 * without a shared write per work where the depth allows it: when the
 * depth is at least the worker count, each worker has one place of its own
 * (its slot's `own`, touched only by it and the completer of that work),
 * and the rest are shared places counted in `shared_used`; otherwise every
 * place is shared. A synchronous backend with one work per worker thus
 * never writes a line another worker writes. Beyond the depth, next()
 * sleeps on cv until a place is given back. */
typedef struct strata__depth {
  uint32_t depth;      /* inflight_depth, 0 read as nworkers */
  bool own_places;     /* depth >= nworkers */
  uint32_t shared_cap; /* places that are not a worker's own */
  char pad0[64];
  _Atomic uint32_t shared_used;
  _Atomic uint32_t waiters; /* threads sleeping (or about to) on cv */
  char pad1[64];
  pthread_mutex_t mu; /* cv, stopping */
  pthread_cond_t cv;  /* CLOCK_MONOTONIC */
  bool stopping;      /* the device stops: waiters return */
} strata__depth_t;

/* A shared description (runtime/README.md, "Who owns what"): every
 * module reads a device. hardware/device writes index, bindex, node (with
 * data/memory at set-up), desc, backend, rt and the worker slots' block
 * at creation; after that: `failed` scheduling/dispatch (a failure),
 * `worker_seen` dispatch and read by scheduling/watchdog, `thrash_*`
 * dispatch, `queue` and `depth` scheduling (queue, dispatch),
 * `submitted` and `ended` tasks/graph (at submit, at the end) and
 * scheduling/dispatch (failover moves a task to another device). */
typedef struct strata_device_handle {
  int index;
  unsigned bindex;    /* its index in the backend's probe list */
  int node;           /* memory node its tasks' data lives on */
  atomic_bool failed; /* the backend reported it failed: no more work */
  /* One of its workers has called next(): the watchdog leaves it alone. */
  atomic_bool worker_seen;
  /* Its node's evictions at the last look (by a completer of a worker 0
   * work whose count closes a window: atomics, since those may run on
   * different threads). */
  _Atomic uint64_t thrash_mark;
  atomic_bool thrash_warned;
  strata_backend_device_t desc; /* as probed; worker_cores stays the
                                   backend's, valid until its fini */
  struct strata_core *backend;
  struct strata_runtime *rt;
  strata__queue_t queue;
  strata__worker_slot_t *workers; /* desc.nworkers, 64-byte aligned */
  strata__depth_t depth;
  void *workers_block; /* the allocation they live in */
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
/** The longest poll of each device queue added from now on, from
 *  strata_runtime_opts_t.idle_poll_us (0: the default; negative: none).
 *  @thread owner (creation, before any device is added) */
void strata__devices_set_idle_poll(struct strata_runtime *rt, int idle_poll_us);
/** Append the devices a backend probed (checked with
 *  strata__devices_check first); each copies its description.
 *  @return 0; STRATA_ENOMEM (none appended)  @thread owner (creation) */
int strata__devices_add(struct strata_runtime *rt, struct strata_core *be,
                        const strata_backend_device_t *descs, size_t n);
/** Remove the last n devices (a backend that failed to start).
 *  @thread owner (creation) */
void strata__devices_drop_last(struct strata_runtime *rt, size_t n);
/** Stop every device queue of a backend: next() answers ESHUTDOWN.
 *  @thread owner (destruction, or a backend that failed to start) */
void strata__devices_stop(struct strata_runtime *rt, struct strata_core *be);
/** Free every device (their backends stopped). @thread owner (destruction) */
void strata__devices_free(struct strata_runtime *rt);

/* {=== In-flight depth ===} */

/** Wait until worker `worker` of d may take one more work: its own place
 *  is free or a shared place can be taken (which this takes). Sleeps up to
 *  timeout_ns (< 0: without limit; 0: not at all).
 *  @return 1 (its own place is free: the caller takes it by setting the
 *          slot's `own`); 0 (a shared place taken); STRATA_EAGAIN (timed
 *          out); STRATA_ESHUTDOWN (the device stops)
 *  @thread the worker's own thread */
int strata__depth_take_slow(strata__device_t *d, unsigned worker,
                            int64_t timeout_ns);
static inline int strata__depth_take(strata__device_t *d, unsigned worker,
                                     int64_t timeout_ns) {
  /* Only this worker sets its own place, so a stale look errs one way: a
   * place just freed is taken as busy, and the slow path looks again. */
  if (STRATA_LIKELY(d->depth.own_places &&
                    !atomic_load_explicit(&d->workers[worker].w.own,
                                          memory_order_relaxed)))
    return 1;
  return strata__depth_take_slow(d, worker, timeout_ns);
}
/** Give back a shared place (0 from strata__depth_take) and wake a sleeper.
 *  @thread any */
void strata__depth_give_shared(strata__device_t *d);
/** Wake the threads sleeping in strata__depth_take. @thread any */
void strata__depth_wake(strata__device_t *d);
/** A worker's own place was cleared (with a sequentially consistent
 *  store): wake a sleeper if there is one. @thread any */
static inline void strata__depth_gave_own(strata__device_t *d) {
  if (STRATA_UNLIKELY(atomic_load(&d->depth.waiters)))
    strata__depth_wake(d);
}
/** Wake every sleeper for good: the device stops or failed.
 *  @thread any */
void strata__depth_stop(strata__device_t *d);

/** Should d's replicas live in managed memory? Yes when d offers only
 *  managed memory, or offers it and `wanted` (strata_runtime_opts_t.
 *  managed_devices: names, or "all") names d; a name d cannot honour is
 *  logged at INFO. @thread owner (creation) */
bool strata__device_managed(const struct strata_runtime *rt,
                            const strata__device_t *d, const char *wanted);

/** The device's model (its name when the backend gave none); valid as
 *  long as the device. @thread any */
const char *strata__device_model_name(const strata__device_t *d);

#endif /* STRATA_DEVICE_H */
