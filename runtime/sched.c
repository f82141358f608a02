/* SPDX-License-Identifier: MIT */
/* runtime/sched.c: ready tasks into device queues, and the worker-side
 * services (next, complete, bind) that backends call. */
#include "config.h"

#include "runtime.h"
#include "sched.h"

#define COMP "sched"

void strata__sched_enqueue(strata_runtime_t *rt, strata__task_t *t) {
  atomic_store_explicit(&t->state, STRATA_TASK_READY, memory_order_release);
  strata__queue_push(&rt->devices[t->device]->queue, &t->qnode);
}

bool strata__sched_may_run_next(strata_runtime_t *rt, const strata__task_t *t) {
  const strata__queue_t *q = &rt->devices[t->device]->queue;
  return !strata__queue_size(q) ||
         t->qnode.priority >= strata__queue_top_priority(q);
}

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

int strata__sched_next(strata_core_t *core, strata_device_handle_t *dev,
                       unsigned worker, int64_t timeout_ns,
                       strata_work_t **out) {
  strata_runtime_t *rt = core->rt;
  if (worker >= dev->desc.nworkers) {
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
               "backend '%s' asked work for worker %u of %s, which has %u",
               core->name, worker, dev->desc.name, dev->desc.nworkers);
    return STRATA_EINVAL;
  }
  for (;;) {
    bool stopped;
    strata__task_t *t = take(dev, worker, timeout_ns, &stopped);
    if (!t)
      return stopped ? STRATA_ESHUTDOWN : STRATA_EAGAIN;
    if (t->job && atomic_load(&t->job->canceled)) {
      /* Canceled after it was queued: end it here instead of running. */
      strata__graph_task_cancel(rt, t);
      continue;
    }
    atomic_store_explicit(&t->state, STRATA_TASK_RUNNING, memory_order_relaxed);
    t->work.call.worker = worker;
    t->start_ns = strata__now_ns();
    *out = &t->work;
    return STRATA_OK;
  }
}

void strata__sched_complete(strata_core_t *core, strata_work_t *work,
                            int status) {
  strata_runtime_t *rt = core->rt;
  strata__task_t *t = STRATA_CONTAINER_OF(work, strata__task_t, work);
  strata__device_t *d = rt->devices[t->device];
  strata__worker_slot_t *slot = &d->workers[t->work.call.worker];
  /* Only this worker writes its slot: plain adds, published atomically. */
  atomic_store_explicit(
      &slot->w.busy_ns,
      atomic_load_explicit(&slot->w.busy_ns, memory_order_relaxed) +
          (strata__now_ns() - t->start_ns),
      memory_order_relaxed);
  atomic_store_explicit(
      &slot->w.tasks_run,
      atomic_load_explicit(&slot->w.tasks_run, memory_order_relaxed) + 1,
      memory_order_relaxed);
  if (status != STRATA_OK) {
    atomic_fetch_add_explicit(&slot->w.tasks_failed, 1, memory_order_relaxed);
    t->kernel_status = status;
    STRATA_LOG(&rt->log, STRATA_LOG_WARN, COMP,
               "task '%s' failed on %s: kernel '%s' returned %d; tasks that "
               "consume its results will not run",
               strata__task_name(t), d->desc.name, t->kernel->name, status);
    status = STRATA_EKERNEL;
  }
  /* A successor this task makes ready on this device runs next on this
   * worker: no queue round trip, no wake-up, its inputs still in cache. */
  strata__task_t *next = NULL;
  strata__graph_task_ran(rt, t, status, &next);
  if (next) {
    atomic_store_explicit(&next->state, STRATA_TASK_READY,
                          memory_order_release);
    slot->w.next_task = next;
  }
}

int strata__sched_bind_worker(strata_core_t *core, strata_device_handle_t *dev,
                              unsigned worker) {
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
