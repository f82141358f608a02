/* SPDX-License-Identifier: MIT */
/* runtime/graph.h: tasks and the dependency graph. Submission links a
 * task behind the tasks it must follow (from buffer access order and
 * explicit edges) under the runtime's graph lock; completion releases its
 * successors without that lock, through per-task locks and atomic
 * counters, so workers never serialize on the submitting threads. */
#ifndef STRATA_GRAPH_H
#define STRATA_GRAPH_H

#include <pthread.h>
#include <stdint.h>

#include "attrs.h"
#include "data.h"
#include "job.h"
#include "kernel.h"
#include "queue.h"

#include <strata/backend.h>

struct strata_runtime;

#define STRATA__INLINE_ACCESSES 4
#define STRATA__INLINE_ARGS 64

typedef struct strata__access {
  strata__buffer_t *buf; /* holds a buffer reference */
  strata_access_mode_t mode;
} strata__access_t;

/* A dependency edge: `task` waits for the task whose successor list the
 * edge is linked into. Edges are allocated by the successor (with it, never
 * moved) and pushed lock-free onto the predecessor's list. */
typedef struct strata__edge {
  struct strata__edge *next;
  struct strata__task *task; /* the successor; holds a task reference */
  bool consumes; /* the successor reads what the predecessor produced: if
                    the predecessor does not succeed, it does not run */
} strata__edge_t;

/* Edge storage beyond a task's inline edges. */
typedef struct strata__edge_block {
  struct strata__edge_block *next;
  size_t used, cap;
  strata__edge_t edges[];
} strata__edge_block_t;

#define STRATA__INLINE_EDGES 8

/* Marks the successor list of a task that has ended: edges can no longer
 * be added, the successor must look at the task's status instead. */
#define STRATA__ENDED ((strata__edge_t *)(uintptr_t)1)

typedef struct strata__task {
  strata_work_t work;      /* what a backend worker receives */
  strata__qnode_t qnode;   /* ready-queue link and priority */
  struct strata_runtime *rt;
  uint64_t id;             /* the caller's handle (dead once released) */
  _Atomic uint32_t refs;
  _Atomic int state;       /* strata_task_state_t */
  /* Predecessors that have not ended, plus one until submitted. */
  _Atomic int npending;
  /* The first consumed predecessor that did not succeed, or the task
   * whose failure it inherited: the cause reported to the user. Holds a
   * reference. Set once, by compare-and-swap. */
  _Atomic(struct strata__task *) doom;
  atomic_bool waited;      /* someone sleeps in strata_task_wait */
  int status;              /* final status, written before state DONE */
  int kernel_status;
  int device;              /* placement; -1 before submit */
  uint64_t seq;            /* submission order */
  uint64_t start_ns;
  strata__kernel_t *kernel;
  strata__job_t *job;      /* holds a job reference, or NULL */
  strata__attrs_t attrs;
  void *user_data;

  strata__access_t *access;
  size_t naccess, cap_access;
  void **ptrs;             /* the kernel's buffer arguments */
  size_t *sizes;
  unsigned char *args;
  size_t args_size, args_cap;

  /* Edges of the tasks waiting for this one (LIFO), STRATA__ENDED once it
   * ended. Pushed under graph_mu, taken once by the ending thread. */
  _Atomic(strata__edge_t *) succs;
  /* Edge nodes this task owns as a successor. */
  size_t inline_edges_used;
  strata__edge_block_t *edge_blocks;
  const struct strata__task *last_pred; /* merges repeated edges to one
                                           predecessor (graph_mu) */
  bool last_consumes;

  struct strata__task *resolve_next; /* worklist or free-list link */
  uint64_t visit;          /* cycle-search epoch (graph lock) */

  strata__access_t access_inline[STRATA__INLINE_ACCESSES];
  void *ptrs_inline[STRATA__INLINE_ACCESSES];
  size_t sizes_inline[STRATA__INLINE_ACCESSES];
  unsigned char args_inline[STRATA__INLINE_ARGS];
  strata__edge_t edges_inline[STRATA__INLINE_EDGES];
} strata__task_t;

/* Task objects are recycled: submitting threads take them, ending threads
 * (workers) give them back without a lock. */
typedef struct strata__task_pool {
  pthread_mutex_t mu;
  strata__task_t *free;                /* guarded by mu */
  _Atomic(strata__task_t *) returned;  /* pushed by any thread */
  _Atomic size_t cached;
} strata__task_pool_t;

void strata__task_pool_init(strata__task_pool_t *pool);
/** Free every cached task object. @thread owner, at destroy */
void strata__task_pool_drain(strata__task_pool_t *pool,
                             const strata__allocator_t *a);

static inline int strata__task_state(const strata__task_t *t) {
  return atomic_load_explicit(&t->state, memory_order_acquire);
}

/** The task named by a handle, or NULL. @thread any */
strata__task_t *strata__task_get(struct strata_runtime *rt, strata_task_t h);
void strata__task_ref(strata__task_t *t);
void strata__task_unref(strata__task_t *t);

/** The name shown to users: the "name" attribute, else the kernel's. */
const char *strata__task_name(const strata__task_t *t);

/** A worker ran the task's kernel: status 0 or STRATA_EKERNEL. Releases
 *  successors, settles accounting and drops the runtime's reference. When
 *  `next` is not NULL, one successor that became ready on the same device
 *  and may run before everything queued there is handed back in *next
 *  instead of being queued (the worker runs it at once).
 *  @thread any (the worker) */
void strata__graph_task_ran(struct strata_runtime *rt, strata__task_t *t,
                            int status, strata__task_t **next);

/** End a ready task without running it (its job was canceled after it
 *  was queued). @thread any */
void strata__graph_task_cancel(struct strata_runtime *rt, strata__task_t *t);

/** Discard every task created but never submitted (runtime destroy): they
 *  end STRATA_ECANCELED, and so do the tasks that consume them.
 *  @thread owner, with submissions already refused */
void strata__graph_discard_unsubmitted(struct strata_runtime *rt);

#endif /* STRATA_GRAPH_H */
