/* SPDX-License-Identifier: MIT */
/* runtime/tasks/graph.h: tasks and the dependency graph. Submission links a
 * task behind the tasks it must follow (from buffer access order and
 * explicit edges) under the runtime's graph lock; an ending task releases
 * its successors without any lock (its successor list is closed by one
 * atomic operation, counters are atomic), so workers never serialize on
 * the submitting threads. */
#ifndef STRATA_GRAPH_H
#define STRATA_GRAPH_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "attrs.h"
#include "data.h"
#include "job.h"
#include "kernel.h"
#include "notify.h"
#include "queue.h"

#include <strata/backend.h>

struct strata_runtime;

#define STRATA__INLINE_ACCESSES 4
#define STRATA__INLINE_ARGS 64

typedef struct strata__access {
  strata__buffer_t *buf; /* a buffer reference until submitted; after
                            that, valid until the task ends */
  strata_access_mode_t mode;
} strata__access_t;

/* A successor: `task` waits for the task that holds this slot. */
typedef struct strata__succ {
  struct strata__task *task; /* holds a task reference */
  bool consumes; /* the successor reads what the predecessor produced: if
                    the predecessor does not succeed, it does not run */
} strata__succ_t;

/* Successor slots beyond a task's inline ones; blocks never move. */
typedef struct strata__succ_block {
  struct strata__succ_block *next;
  uint32_t cap;
  strata__succ_t slot[];
} strata__succ_block_t;

#define STRATA__INLINE_SUCCS 6

/* Set in a task's successor count once it has ended: no slot can be
 * added any more, a would-be successor reads the task's status instead. */
#define STRATA__SUCCS_CLOSED (UINT32_C(1) << 31)

typedef struct strata__decision {
  bool from_cache, fallback;
  uint64_t candidates, answer; /* device bit masks */
  char why[128];
} strata__decision_t;

/* A shared description (runtime/README.md, "Who owns what"): every
 * module reads a task; tasks/ writes its fields, except those a comment
 * gives another writer: `device` (scheduling/placement at submit),
 * `qnode` (the link of whichever list holds the ready task: a device
 * queue, the transfer engine's stage and park lists; its priority set by
 * graph when the task becomes ready), the staging and run fields
 * (data/transfer, scheduling/dispatch) as they say.
 * Field order follows who touches what: a task's ending thread visits
 * each successor's first cache line, so everything the release of a
 * successor reads or writes sits in the first 64 bytes; the successor
 * slots a task owns follow, read by its own ending thread. */
typedef struct strata__task {
  /* {=== Line 0: read and written when a predecessor ends ===} */
  _Atomic uint32_t refs;
  _Atomic int state; /* strata_task_state_t */
  /* Predecessors that have not ended, plus one until submitted. */
  _Atomic int npending;
  int device;         /* placement; -1 before submit */
  int status;         /* final status, written before state DONE */
  atomic_bool waited; /* someone sleeps in strata_task_wait */
  /* The first consumed predecessor that did not succeed, or the task
   * whose failure it inherited: the cause reported to the user. Holds a
   * reference. Set once, by compare-and-swap. */
  _Atomic(struct strata__task *) doom;
  strata__job_t *job;    /* holds a job reference, or NULL */
  strata__qnode_t qnode; /* ready-queue link and priority */

  /* {=== Successors ===}
   * Slots are filled under graph_mu, each published by a compare-and-swap
   * on nsucc; the ending thread closes nsucc (STRATA__SUCCS_CLOSED) and
   * reads the slots published before. */
  _Atomic uint32_t nsucc;
  uint32_t succ_cap;      /* inline + block slots (graph_mu) */
  uint32_t succ_promised; /* slots the current submission reserved
                             (graph_mu; back to 0 after linking) */
  bool last_consumes;     /* whether the edge to last_pred consumes */
  strata__succ_block_t *succ_blocks, *succ_tail;
  const struct strata__task *last_pred; /* merges repeated edges to one
                                           predecessor (graph_mu) */

  /* Every field up to the inline arrays is written when the task is made
   * (new_task, field by field): kept together, they fill as few cache
   * lines as they can, which a submitter running ahead of the workers
   * pays for in fresh lines. The inline arrays, touched only as far as a
   * task uses them, come last. */
  /* Why it runs where it runs (strata_task_decision): allocated when the
   * runtime records decisions, else NULL. */
  strata__decision_t *decision;
  /* What its end tells the embedder (set while CREATED, read once it has
   * ended): a callback run on the notifier thread, and whether to signal
   * the event fd (`watched`, below: after the callback, when there is
   * one). */
  strata_task_done_fn done_cb;
  void *done_arg;

  strata_work_t work; /* what a backend worker receives */
  struct strata_runtime *rt;
  uint64_t id;    /* the caller's handle (dead once released) */
  uint32_t hslot; /* handle-table slot this object keeps across
                     lives in the pool; 0: none yet */
  int kernel_status;
  bool submitted; /* accepted by strata_task_submit */
  /* The application's access to a buffer (strata_buffer_acquire): never
   * queued, ends at strata_buffer_release. */
  bool host;
  /* Its data is in place on its device and held for it (the transfer
   * engine staged it); the worker that takes it owns the hold. */
  bool staged;
  bool watched;         /* see done_cb */
  uint64_t working_set; /* bytes of distinct buffers, set at submit */
  /* Of those, the bytes of shared managed buffers, which take no room on
   * a device that uses them in place (set at submit). */
  uint64_t managed_set;
  uint64_t seq;         /* submission order */
  uint64_t start_ns;
  strata__kernel_t *kernel;
  strata__attrs_t attrs;
  void *user_data;

  strata__access_t *access;
  size_t naccess, cap_access;
  void **ptrs; /* the kernel's buffer arguments */
  size_t *sizes;
  uint8_t *modes;
  unsigned char *args;
  size_t args_size, args_cap;

  struct strata__task *resolve_next; /* worklist or free-list link */
  uint64_t visit;                    /* cycle-search epoch (graph lock) */
  strata__notice_t notice;           /* its end, queued for the notifier */

  strata__succ_t succ_inline[STRATA__INLINE_SUCCS];
  strata__access_t access_inline[STRATA__INLINE_ACCESSES];
  void *ptrs_inline[STRATA__INLINE_ACCESSES];
  size_t sizes_inline[STRATA__INLINE_ACCESSES];
  uint8_t modes_inline[STRATA__INLINE_ACCESSES];

  /* Aligned as malloc's memory is: kernels cast it to their own struct. */
  _Alignas(max_align_t) unsigned char args_inline[STRATA__INLINE_ARGS];
} strata__task_t;

_Static_assert(offsetof(strata__task_t, qnode) + sizeof(strata__qnode_t) <= 64,
               "a successor's release fields must fit its first line");

/* Task objects are recycled: submitting threads take them, ending threads
 * (workers) give them back without a lock. */
typedef struct strata__task_pool {
  pthread_mutex_t mu;
  strata__task_t *free;               /* guarded by mu */
  _Atomic(strata__task_t *) returned; /* pushed by any thread */
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

/** Point a submitted, not yet running task at device d (its previous
 *  device failed). Accounting is the caller's. */
void strata__graph_retarget(struct strata_runtime *rt, strata__task_t *t,
                            int d);

/** The name shown to users: the "name" attribute, else the kernel's.
 *  Inline: every module that logs about a task reads it, and none of them
 *  should depend on the graph for that. @thread any */
static inline const char *strata__task_name(const strata__task_t *t) {
  return t->attrs.name ? t->attrs.name : t->kernel->name;
}

/* A task's tier and precision: its own attribute, else its job's. (The
 * job's attributes are set before its tasks are submitted.) */
static inline const char *strata__task_tier(const strata__task_t *t) {
  return t->attrs.tier ? t->attrs.tier : t->job ? t->job->attrs.tier : NULL;
}

/* The name of a task's job (NULL: none, or unnamed). */
static inline const char *strata__task_job_name(const strata__task_t *t) {
  return t->job ? t->job->attrs.name : NULL;
}

static inline const char *strata__task_precision(const strata__task_t *t) {
  return t->attrs.precision ? t->attrs.precision
         : t->job           ? t->job->attrs.precision
                            : NULL;
}

/** The union of the modes t uses the buffer of access i with, when access
 *  i is that buffer's first in t; 0 otherwise (so callers visit each
 *  buffer once). Inline: every submission calls it for every access, in
 *  several passes. */
static inline strata_access_mode_t
strata__task_access_mode(const strata__task_t *t, size_t i) {
  const strata__buffer_t *b = t->access[i].buf;
  for (size_t j = 0; j < i; j++)
    if (t->access[j].buf == b)
      return (strata_access_mode_t)0;
  unsigned mode = 0;
  for (size_t j = i; j < t->naccess; j++)
    if (t->access[j].buf == b)
      mode |= t->access[j].mode;
  return (strata_access_mode_t)mode;
}

/** Link an application access to buffer b into the graph, as a task
 *  submitted now, and wait until the tasks it must follow have ended.
 *  @return 0 with *out set; STRATA_ESHUTDOWN; STRATA_ENOENT (b
 *  unregistered); STRATA_EBUSY (b already acquired); STRATA_ENOMEM
 *  @thread any  @blocks yes */
int strata__graph_host_begin(struct strata_runtime *rt, strata__buffer_t *b,
                             strata_access_mode_t mode, strata__task_t **out);
/** End an application access: the tasks after it may run. */
void strata__graph_host_end(struct strata_runtime *rt, strata__task_t *t);

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
