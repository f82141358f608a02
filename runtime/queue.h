/* SPDX-License-Identifier: MIT */
/* runtime/queue.h: a device's ready queue. Tasks are ordered by priority
 * (highest first), FIFO within a priority; idle workers sleep on it and are
 * woken by pushes.
 *
 * Pushing is lock-free: nodes go onto an atomic inbox that the consumers
 * drain into the priority levels under the queue's lock, so a submitting
 * thread never waits for a worker (on a busy machine, a thread that blocks
 * on a lock costs a wake-up of several, sometimes tens of, microseconds).
 * Nodes are intrusive, so pushing never allocates: the only allocation is a
 * new priority level, made in advance by strata__queue_reserve at submit
 * time where an error can be returned. */
#ifndef STRATA_QUEUE_H
#define STRATA_QUEUE_H

#include <pthread.h>

#include "alloc.h"

typedef struct strata__qnode {
  struct strata__qnode *next;
  int priority;
} strata__qnode_t;

typedef struct strata__qlevel {
  int priority;
  strata__qnode_t *head, *tail;
} strata__qlevel_t;

/* Priorities whose level is known to exist without taking the lock. */
#define STRATA__QFAST_MIN (-64)
#define STRATA__QFAST_MAX 63

typedef struct strata__queue {
  _Atomic(strata__qnode_t *) inbox; /* pushed, not yet sorted (LIFO) */
  _Atomic size_t size;              /* queued nodes, inbox included */
  _Atomic unsigned spinners;        /* idle workers polling before they sleep */
  _Atomic unsigned sleepers;        /* idle workers blocked on cv */
  _Atomic int top_priority;         /* the highest level's priority */

  pthread_mutex_t mu; /* consumers: levels, stopping, cv */
  pthread_cond_t cv;
  strata__qlevel_t *levels; /* sorted by priority, highest first; levels
                               are never removed */
  size_t nlevels, cap;
  bool stopping;
  uint64_t spin_ns; /* how long an idle worker polls before sleeping */
  atomic_bool reserved[STRATA__QFAST_MAX - STRATA__QFAST_MIN + 1];
} strata__queue_t;

int strata__queue_init(strata__queue_t *q, uint64_t spin_ns);
void strata__queue_destroy(strata__queue_t *q, const strata__allocator_t *a);

/** Make sure pushing at `priority` will not need memory.
 *  @return 0; STRATA_ENOMEM  @thread any */
int strata__queue_reserve(strata__queue_t *q, const strata__allocator_t *a,
                          int priority);

/** Append n at n->priority (reserved before) and wake a sleeper if no
 *  polling worker will take it. Lock-free unless a wake-up is needed.
 *  @thread any */
void strata__queue_push(strata__queue_t *q, strata__qnode_t *n);

/** Take the best node, waiting up to timeout_ns (< 0: forever; 0: not at
 *  all). @return the node, or NULL on timeout or once the queue is
 *  stopping (*stopped tells which). @thread any */
strata__qnode_t *strata__queue_pop(strata__queue_t *q, int64_t timeout_ns,
                                   bool *stopped);

/** Make every pop, present and future, return NULL with *stopped set. */
void strata__queue_stop(strata__queue_t *q);

/** Number of queued nodes (a hint when read concurrently). */
static inline size_t strata__queue_size(const strata__queue_t *q) {
  return atomic_load_explicit(&q->size, memory_order_relaxed);
}

/** Will a node pushed now be taken at once: nothing queued and a worker
 *  idle? (A hint when read concurrently.) */
static inline bool strata__queue_has_idle_worker(const strata__queue_t *q) {
  return !strata__queue_size(q) &&
         (atomic_load_explicit(&q->spinners, memory_order_relaxed) ||
          atomic_load_explicit(&q->sleepers, memory_order_relaxed));
}

/** The highest priority ever reserved (a hint when read concurrently). */
static inline int strata__queue_top_priority(const strata__queue_t *q) {
  return atomic_load_explicit(&q->top_priority, memory_order_relaxed);
}

#endif /* STRATA_QUEUE_H */
