/* SPDX-License-Identifier: MIT */
/* runtime/core/runtime.h: the runtime object every module hangs its state
 * off: what ties the modules together (runtime/README.md). */
#ifndef STRATA_RUNTIME_INTERNAL_H
#define STRATA_RUNTIME_INTERNAL_H

#include <pthread.h>

#include "alloc.h"
#include "device.h"
#include "estimates.h"
#include "graph.h"
#include "handle.h"
#include "health.h"
#include "loader.h"
#include "log.h"
#include "copy.h"
#include "memory.h"
#include "peers.h"
#include "notify.h"
#include "placement.h"
#include "policy.h"
#include "staging.h"
#include "transfer.h"
#include "wait.h"
#include "watchdog.h"
#include "topology.h"
#include "trace.h"
#include "metrics.h"

/* Who owns what (runtime/README.md): each member is touched by its
 * module's folder only (the table is in scripts/module-reach): topo,
 * backends, devices, idle_poll_ns, peers, health: hardware/; staging, mem,
 * xfer, buffers, ranges, data_mu: data/; watchdog, placer, track_estimates,
 * placement, estimates: scheduling/; policy: policy/; tasks, jobs,
 * kernels, task_pool, notify, graph_mu, jobs_mu, first_job, last_job,
 * next_seq, visit_epoch: tasks/;
 * waits, shutdown: core/ (which also creates and destroys the three
 * locks); trace: observe/. alloc, log and user_data are everyone's; every
 * folder reads the device and backend tables, fixed at creation.
 *
 * Lock order, outermost first: graph_mu, then a queue's mu or the task
 * pool's mu; data_mu, kernels_mu, a job's mu and the waits' mu are leaves;
 * jobs_mu is taken before a job's mu. No runtime lock is held while calling a
 * kernel or a backend; the log callback may be called under graph_mu (it must
 * not re-enter the runtime, as strata/common.h says). */
struct strata_runtime {
  strata__allocator_t alloc;
  strata__logger_t log;
  void *user_data;

  strata__topology_t topo;

  bool ltdl_ready; /* lt_dlinit succeeded; lt_dlexit owed */
  strata__backend_t **backends;
  size_t nbackends, cap_backends;
  strata__device_t **devices;
  size_t ndevices, cap_devices;
  uint64_t idle_poll_ns;       /* each device queue's longest poll (device.h) */
  strata__watchdog_t watchdog; /* devices whose workers never start */
  strata__peers_t peers;       /* direct paths, machine-wide */
  strata__health_t health;     /* cached readings, polled by its thread */
  strata__staging_t staging;   /* pinned host memory and staging buffers */

  strata__memory_t mem;
  strata__transfer_t xfer; /* the transfer engine (transfer.h) */

  strata__placer_t placer;
  struct strata__policy *policy; /* NULL: none */
  /* The script has asked for an estimate (machine.estimate, eft...): from
   * then on, keep run-time estimates per device and task and performance
   * history. Until then a submission pays nothing for them. */
  atomic_bool track_estimates;
  strata__placement_stats_t placement;

  strata__htable_t tasks, jobs, buffers, kernels;
  pthread_mutex_t jobs_mu; /* the jobs not yet freed: first_job..last_job */
  struct strata__job *first_job, *last_job;
  strata__task_pool_t task_pool;

  pthread_mutex_t kernels_mu; /* the name list */
  strata__kernel_t **kernel_list;
  size_t nkernels, cap_kernels;

  pthread_mutex_t data_mu; /* registered ranges, sorted by address */
  strata__buffer_t **ranges;
  size_t nranges, cap_ranges;

  pthread_mutex_t graph_mu; /* dependency linking, shutdown flag */
  atomic_bool shutdown;     /* written under graph_mu */
  uint64_t next_seq;
  uint64_t visit_epoch;

  strata__estimates_t estimates; /* run-time history (estimates.h) */
  strata__waits_t waits; /* every wait of the API sleeps here (wait.h) */

  strata__notifier_t notify; /* callbacks and the event fd (notify.h) */

  strata__trace_t trace;     /* the trace recorder (observe/trace.h) */
  strata__metrics_t metrics; /* the metrics registry (observe/metrics.h) */
};

/** Whether strata_runtime_destroy has begun: new work is refused with
 *  STRATA_ESHUTDOWN. Set once, under graph_mu, by core/runtime.c.
 *  @thread any */
static inline bool strata__runtime_shutting_down(const strata_runtime_t *rt) {
  return atomic_load(&rt->shutdown);
}

#endif /* STRATA_RUNTIME_INTERNAL_H */
