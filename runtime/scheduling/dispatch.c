/* SPDX-License-Identifier: MIT */
/* runtime/scheduling/dispatch.c: ready tasks into device queues, and the
 * worker-side services (next, complete, device_failed, bind) that backends
 * call: around each task, the memory manager brings its data to the device and
 * takes note of what it wrote; a device that fails has its work run
 * elsewhere. */
#include "config.h"

#include "runtime.h"
#include "dispatch.h"

#define COMP "sched"

/* Thrashing is judged over windows of this many tasks of a device: as many
 * evictions as tasks in a window means its working sets do not fit. */
#define THRASH_WINDOW 128

static void run_elsewhere(strata_runtime_t *rt, strata__task_t *t);

/* {=== Queues ===} */

/* Re-place every task queued on a failed device. */
static void drain_failed(strata_runtime_t *rt, strata__device_t *d) {
  bool stopped;
  strata__qnode_t *n;
  while ((n = strata__queue_pop(&d->queue, 0, &stopped)))
    run_elsewhere(rt, STRATA_CONTAINER_OF(n, strata__task_t, qnode));
}

/* Queue t on its device, ready to run. */
static void queue(strata_runtime_t *rt, strata__task_t *t) {
  strata__device_t *d = rt->devices[t->device];
  strata__queue_push(&d->queue, &t->qnode);
  /* The device may have failed after the task was placed on it: its
   * workers take nothing any more, so move what is queued. */
  if (STRATA_UNLIKELY(atomic_load(&d->failed)))
    drain_failed(rt, d);
}

void strata__dispatch_enqueue(strata_runtime_t *rt, strata__task_t *t) {
  if (t->host) { /* the application, waiting for this in host_begin */
    atomic_store(&t->state, STRATA_TASK_READY);
    strata__waits_notify(&rt->waits);
    return;
  }
  atomic_store_explicit(&t->state, STRATA_TASK_READY, memory_order_release);
  /* With data to move, the transfer engine stages t first and queues it
   * through strata__dispatch_staged: workers take only tasks whose data is
   * in place. Without, nothing moves and t is queued at once. */
  if (strata__memory_active(&rt->mem)) {
    t->staged = false;
    strata__transfer_stage(rt, t);
    return;
  }
  queue(rt, t);
}

/* Staging t on dev failed with rc: move t (dev failed) or end it. */
static void stage_failed(strata_runtime_t *rt, strata__device_t *dev,
                         strata__task_t *t, int rc) {
  if (rc == STRATA_EDEVICE) {
    strata__dispatch_fail_device(rt, dev, "copies to or from it keep failing");
    run_elsewhere(rt, t);
  } else {
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
               "task '%s' cannot run on %s: its data: %s", strata__task_name(t),
               dev->desc.name, strata_strerror(rc));
    strata__graph_task_ran(rt, t, rc, NULL);
  }
}

void strata__dispatch_staged(strata_runtime_t *rt, strata__task_t *t,
                             int status) {
  if (status == STRATA_OK) {
    t->staged = true;
    queue(rt, t);
    return;
  }
  stage_failed(rt, rt->devices[t->device], t, status);
}

/* The memory manager releases what t held on device d (see
 * strata__memory_release for `wrote` and the status); then the engine
 * retries the tasks parked for lack of room, which may fit now (help: the
 * caller is d's worker with nothing queued, which may stage one of them
 * itself, see strata__transfer_released). */
static int release_data(strata_runtime_t *rt, strata__task_t *t, int d,
                        bool wrote, bool help) {
  int rc = strata__memory_release(rt, t, d, wrote);
  strata__transfer_released(rt, help ? rt->devices[d]->node : -1);
  return rc;
}

/* Give back what staging holds for t on its device (t does not run there
 * after all). */
static void unstage(strata_runtime_t *rt, strata__task_t *t) {
  if (!t->staged)
    return;
  t->staged = false;
  (void)release_data(rt, t, t->device, false, false);
}

bool strata__dispatch_may_run_next(strata_runtime_t *rt,
                                   const strata__task_t *t) {
  const strata__queue_t *q = &rt->devices[t->device]->queue;
  return !strata__queue_size(q) ||
         t->qnode.priority >= strata__queue_top_priority(q);
}

/* {=== Failed devices ===} */

/* Place a task again, away from failed devices, and queue it; when no
 * working device can run it, it ends STRATA_EDEVICE. */
static void run_elsewhere(strata_runtime_t *rt, strata__task_t *t) {
  unstage(rt, t);
  strata__device_t *old = rt->devices[t->device];
  int d;
  int rc = strata__placement_choose(rt, t, &d);
  if (rc == STRATA_OK)
    rc = strata__queue_reserve(&rt->devices[d]->queue, &rt->alloc,
                               t->qnode.priority);
  if (rc) {
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
               "task '%s' cannot run: %s failed and no other device can "
               "take it",
               strata__task_name(t), old->desc.name);
    strata__graph_task_ran(rt, t, STRATA_EDEVICE, NULL);
    return;
  }
  strata__device_t *nd = rt->devices[d];
  STRATA_LOG(&rt->log, STRATA_LOG_INFO, COMP, "task '%s' moves from %s to %s",
             strata__task_name(t), old->desc.name, nd->desc.name);
  atomic_fetch_add(&nd->submitted, 1);
  atomic_fetch_add(&old->ended, 1);
  strata__graph_retarget(rt, t, d);
  strata__dispatch_enqueue(rt, t);
}

void strata__dispatch_fail_device(strata_runtime_t *rt, strata__device_t *d,
                                  const char *why) {
  if (atomic_exchange(&d->failed, true))
    return;
  size_t lost = strata__memory_device_lost(rt, d->index);
  STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
             "%s failed (%s): its tasks run elsewhere%s", d->desc.name, why,
             lost ? "; data whose only copy it held is lost" : "");
  if (lost)
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
               "%zu buffer(s) lost with %s: tasks that read them end "
               "STRATA_ELOST (eager_writeback keeps copies at home)",
               lost, d->desc.name);
  strata__queue_stop(&d->queue);
  strata__depth_stop(d);
  drain_failed(rt, d);
}

static void give_place(strata__device_t *d, strata__task_t *t);

void strata__dispatch_device_failed(strata_core_t *core,
                                    strata_device_handle_t *dev,
                                    strata_work_t *work, const char *why) {
  strata_runtime_t *rt = core->rt;
  if (work) {
    strata__task_t *t = STRATA_CONTAINER_OF(work, strata__task_t, work);
    give_place(dev, t);
    if (strata__memory_active(&rt->mem))
      (void)release_data(rt, t, dev->index, false, false);
    strata__dispatch_fail_device(rt, dev,
                                 why ? why : "reported by its backend");
    run_elsewhere(rt, t);
    return;
  }
  strata__dispatch_fail_device(rt, dev, why ? why : "reported by its backend");
}

/* {=== Workers ===} */

/* The worker slot whose work this thread took last (set by next()): a
 * completion on this thread may hand a successor over to that worker only,
 * since only that worker is sure to call next() again soon. */
static _Thread_local strata__worker_slot_t *serving
    __attribute__((tls_model("initial-exec")));

/* The task a worker should run next: its handed-over successor, else the
 * best of its device's queue. */
static strata__task_t *take(strata__device_t *dev, unsigned worker,
                            int64_t timeout_ns, bool *stopped) {
  strata__task_t *t = dev->workers[worker].w.next_task;
  if (t) {
    dev->workers[worker].w.next_task = NULL;
    *stopped = false;
    return t;
  }
  strata__qnode_t *n = strata__queue_pop(&dev->queue, timeout_ns, stopped);
  return n ? STRATA_CONTAINER_OF(n, strata__task_t, qnode) : NULL;
}

/* Hand a failed device's work on: what this worker still holds. */
static int stop_worker(strata_runtime_t *rt, strata__device_t *dev,
                       unsigned worker) {
  strata__task_t *t = dev->workers[worker].w.next_task;
  dev->workers[worker].w.next_task = NULL;
  if (t)
    run_elsewhere(rt, t);
  return STRATA_ESHUTDOWN;
}

/* Give back the place in dev's depth that t held (see strata__depth_t). */
static void give_place(strata__device_t *d, strata__task_t *t) {
  strata__worker_slot_t *slot = &d->workers[t->work.call.worker];
  if (atomic_load_explicit(&slot->w.own, memory_order_relaxed) == t) {
    atomic_store(&slot->w.own, NULL); /* seq_cst: see strata__depth_take */
    strata__depth_gave_own(d);
  } else {
    strata__depth_give_shared(d);
  }
}

/* Take the next task for a worker that holds a place (own: its own one):
 * on success the place is t's; otherwise the caller gives it back. */
static int take_runnable(strata_runtime_t *rt, strata__device_t *dev,
                         unsigned worker, int64_t timeout_ns,
                         strata__task_t **out) {
  for (;;) {
    if (STRATA_UNLIKELY(
            atomic_load_explicit(&dev->failed, memory_order_relaxed)))
      return stop_worker(rt, dev, worker);
    bool stopped;
    strata__task_t *t = take(dev, worker, timeout_ns, &stopped);
    if (!t)
      return stopped ? STRATA_ESHUTDOWN : STRATA_EAGAIN;
    if (t->job && strata__job_canceled(t->job)) {
      /* Canceled after it was queued: end it here instead of running. */
      unstage(rt, t);
      strata__graph_task_cancel(rt, t);
      continue;
    }
    /* With memory active, only strata__dispatch_staged queues tasks (and
     * no successor is handed over): the hold on t's data passes to the
     * running task. */
    STRATA_ASSERT(!strata__memory_active(&rt->mem) || t->staged);
    t->staged = false;
    *out = t;
    return STRATA_OK;
  }
}

int strata__dispatch_next(strata_core_t *core, strata_device_handle_t *dev,
                          unsigned worker, int64_t timeout_ns,
                          strata_work_t **out) {
  strata_runtime_t *rt = core->rt;
  if (worker >= dev->desc.nworkers) {
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
               "backend '%s' asked work for worker %u of %s, which has %u",
               core->name, worker, dev->desc.name, dev->desc.nworkers);
    serving = NULL;
    return STRATA_EINVAL;
  }
  /* The watchdog fails devices none of whose workers ever gets here. */
  if (STRATA_UNLIKELY(
          !atomic_load_explicit(&dev->worker_seen, memory_order_relaxed)))
    atomic_store_explicit(&dev->worker_seen, true, memory_order_relaxed);
  strata__worker_slot_t *slot = &dev->workers[worker];
  /* A place in the device's depth first, so that a task is never taken
   * and then held waiting for one. */
  int own = strata__depth_take(dev, worker, timeout_ns);
  if (STRATA_UNLIKELY(own < 0)) {
    if (own == STRATA_ESHUTDOWN) {
      serving = NULL;
      if (atomic_load_explicit(&dev->failed, memory_order_relaxed))
        return stop_worker(rt, dev, worker);
    }
    return own;
  }
  strata__task_t *t;
  int rc = take_runnable(rt, dev, worker, timeout_ns, &t);
  if (STRATA_UNLIKELY(rc)) {
    if (!own)
      strata__depth_give_shared(dev);
    /* After ESHUTDOWN this worker may never call again: completions on
     * this thread must not hand it successors. */
    if (rc == STRATA_ESHUTDOWN)
      serving = NULL;
    return rc;
  }
  if (own)
    atomic_store_explicit(&slot->w.own, t, memory_order_relaxed);
  atomic_store_explicit(&t->state, STRATA_TASK_RUNNING, memory_order_relaxed);
  t->work.call.worker = worker;
  t->start_ns = strata__now_ns();
  serving = slot;
  atomic_store_explicit(&slot->w.server, &serving, memory_order_relaxed);
  *out = &t->work;
  return STRATA_OK;
}

/* Warn once when a device evicts as many replicas as it runs tasks. */
static void watch_thrashing(strata_runtime_t *rt, strata__device_t *d,
                            uint64_t tasks) {
  const strata__memory_t *m = &rt->mem;
  if (tasks % THRASH_WINDOW ||
      atomic_load_explicit(&d->thrash_warned, memory_order_relaxed) ||
      strata__memory_node_kind(m, (size_t)d->node) != STRATA__NODE_DEVICE)
    return;
  uint64_t now = strata__memory_node_evictions(m, (size_t)d->node);
  uint64_t ev = now - atomic_exchange_explicit(&d->thrash_mark, now,
                                               memory_order_relaxed);
  if (ev >= THRASH_WINDOW && !atomic_exchange_explicit(&d->thrash_warned, true,
                                                       memory_order_relaxed)) {
    STRATA_LOG(
        &rt->log, STRATA_LOG_WARN, COMP,
        "%s is thrashing: %llu evictions in its last %d tasks (the "
        "data its tasks use does not fit its %llu bytes)",
        d->desc.name, (unsigned long long)ev, THRASH_WINDOW,
        (unsigned long long)strata__memory_node_capacity(m, (size_t)d->node));
  }
}

/* Release t's data after it ran on d (help: see release_data). With eager
 * write-back a task is not done until its results are home: when copying
 * them home keeps failing, d is failed and t runs again elsewhere from its
 * inputs, which are still valid where they were. @return false when t was
 * moved. */
static bool results_home(strata_runtime_t *rt, strata__device_t *d,
                         strata__task_t *t, bool help) {
  if (release_data(rt, t, d->index, true, help) != STRATA_EDEVICE)
    return true;
  give_place(d, t); /* t leaves d: so does the place it held there */
  strata__dispatch_fail_device(rt, d, "copying results home keeps failing");
  run_elsewhere(rt, t);
  return false;
}

void strata__dispatch_complete(strata_core_t *core, strata_work_t *work,
                               int status) {
  strata_runtime_t *rt = core->rt;
  strata__task_t *t = STRATA_CONTAINER_OF(work, strata__task_t, work);
  strata__device_t *d = rt->devices[t->device];
  strata__worker_slot_t *slot = &d->workers[t->work.call.worker];
  /* A work taken while the worker's previous one was still running is
   * taken to start when that one ended (a device holding several works
   * runs them one after another on each worker, as far as it tells), so
   * that its queueing inside the backend is not charged as its run time. */
  uint64_t now = strata__now_ns();
  uint64_t prev =
      atomic_load_explicit(&slot->w.last_end_ns, memory_order_relaxed);
  atomic_store_explicit(&slot->w.last_end_ns, now, memory_order_relaxed);
  uint64_t ran_ns = now - STRATA_MAX(t->start_ns, STRATA_MIN(prev, now));
  if (STRATA_UNLIKELY(strata__trace_on(&rt->trace)))
    strata__trace_task(rt, d->index, t->work.call.worker, now - ran_ns, now,
                       status, strata__task_name(t), t->kernel->name,
                       strata__task_tier(t), strata__task_job_name(t));
  /* On the worker's own thread, its counters have one writer: plain adds
   * published atomically. Elsewhere, several threads may add at once. */
  bool mine = serving == slot &&
              atomic_load_explicit(&slot->w.server, memory_order_relaxed) ==
                  (const void *)&serving;
  uint64_t ran;
  if (STRATA_LIKELY(mine)) {
    atomic_store_explicit(
        &slot->w.busy_ns,
        atomic_load_explicit(&slot->w.busy_ns, memory_order_relaxed) + ran_ns,
        memory_order_relaxed);
    ran = atomic_load_explicit(&slot->w.tasks_run, memory_order_relaxed) + 1;
    atomic_store_explicit(&slot->w.tasks_run, ran, memory_order_relaxed);
    strata__queue_task_ran(&d->queue, ran, ran_ns);
  } else {
    atomic_fetch_add_explicit(&slot->w.far_busy_ns, ran_ns,
                              memory_order_relaxed);
    ran = atomic_fetch_add_explicit(&slot->w.far_run, 1, memory_order_relaxed) +
          1;
  }
  strata__metrics_task_ran(rt, d->index, t->work.call.worker,
                           strata__task_tier(t), status != STRATA_OK);
  if (status == STRATA_OK &&
      atomic_load_explicit(&rt->track_estimates, memory_order_relaxed))
    strata__estimates_task_ran(rt, t, d->index, ran_ns);
  if (status != STRATA_OK) {
    atomic_fetch_add_explicit(mine ? &slot->w.tasks_failed
                                   : &slot->w.far_failed,
                              1, memory_order_relaxed);
    t->kernel_status = status;
    STRATA_LOG(&rt->log, STRATA_LOG_WARN, COMP,
               "task '%s' failed on %s: kernel '%s' returned %d; tasks that "
               "consume its results will not run",
               strata__task_name(t), d->desc.name, t->kernel->name, status);
    status = STRATA_EKERNEL;
  }
  if (strata__memory_active(&rt->mem)) {
    if (t->work.call.worker == 0)
      watch_thrashing(rt, d, ran);
    /* On the worker's thread, with nothing queued, it stages the next
     * task waiting for room on d itself. */
    bool help = mine && !strata__queue_size(&d->queue);
    if (STRATA_UNLIKELY(!results_home(rt, d, t, help)))
      return;
  }
  /* t's place goes back before its successors are released: a worker
   * held at the depth can take one of them at once. */
  if (STRATA_LIKELY(mine) &&
      atomic_load_explicit(&slot->w.own, memory_order_relaxed) == t)
    /* Its own place, on the worker's thread: only that thread takes the
     * place, and it is here, not asleep in strata__depth_take, so neither
     * the ordering against a sleeper nor a wake-up is needed. */
    atomic_store_explicit(&slot->w.own, NULL, memory_order_relaxed);
  else
    give_place(d, t);
  /* A successor this task makes ready on this device runs next on this
   * worker: no queue round trip, no wake-up, its inputs still in cache.
   * Only where this thread is that worker's, which calls next() again,
   * and it holds none yet (works complete several per call of next()). */
  strata__task_t *next = NULL;
  /* With memory active, successors are staged like any other task. */
  bool hand_over =
      mine && !slot->w.next_task && !strata__memory_active(&rt->mem);
  strata__graph_task_ran(rt, t, status, hand_over ? &next : NULL);
  if (next) {
    atomic_store_explicit(&next->state, STRATA_TASK_READY,
                          memory_order_release);
    slot->w.next_task = next;
  }
}

int strata__dispatch_bind_worker(strata_core_t *core,
                                 strata_device_handle_t *dev, unsigned worker) {
  strata_runtime_t *rt = core->rt;
  if (worker >= dev->desc.nworkers)
    return STRATA_ERANGE;
  int rc = dev->desc.worker_cores
               ? strata__topology_bind_core(&rt->topo,
                                            dev->desc.worker_cores[worker])
               : strata__topology_bind_numa(&rt->topo, dev->desc.numa_node);
  if (rc == STRATA_ENOTSUP)
    STRATA_LOG(&rt->log, STRATA_LOG_DEBUG, COMP,
               "%s worker %u not bound: the topology is not this machine's",
               dev->desc.name, worker);
  else if (rc)
    STRATA_LOG(&rt->log, STRATA_LOG_WARN, COMP,
               "%s worker %u could not be bound: %s", dev->desc.name, worker,
               strata_strerror(rc));
  return rc;
}
