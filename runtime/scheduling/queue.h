/* SPDX-License-Identifier: MIT */
/* runtime/scheduling/queue.h: a device's ready queue. Tasks are ordered by
 * priority (highest first), FIFO within a priority; idle workers wait on it and
 * are woken by pushes.
 *
 * Pushing is lock-free: nodes go onto an atomic inbox that the consumers
 * drain into the priority levels under the queue's lock, so a submitting
 * thread never waits for a worker (on a busy machine, a thread that blocks
 * on a lock costs a wake-up of several, sometimes tens of, microseconds).
 * Nodes are intrusive, so pushing never allocates: the only allocation is a
 * new priority level, made in advance by strata__queue_reserve at submit
 * time where an error can be returned.
 *
 * How an idle worker waits: the first one to find the queue empty polls it
 * (yielding the core between looks) for up to its polling budget, so that a
 * task pushed soon after starts within a microsecond or two; past that
 * budget, and for
 * every other idle worker at once, it parks: it puts a waiter of its own on the
 * queue's list and blocks on that waiter's word (a futex on Linux). A push
 * unparks one waiter only when no poller will take its node, and takes it
 * off the list itself, so that two pushes never spend two wake-ups on one
 * worker; a push to a queue with no parked worker makes no system call. A
 * long idle thus costs no CPU, and a wake-up after it costs one FUTEX_WAKE,
 * this machine's own price for waking a blocked thread.
 *
 * The budget adapts to the gaps the queue sees (strata__queue_budget): it
 * is a few times the average wait of recent polls that found work, between
 * a floor and the queue's spin_ns. A producer that feeds work one task at
 * a time (a chain, a stream of small tasks) makes polls that end within a
 * microsecond, and its workers park after the floor when it pauses, rather
 * than keep a core polling for the full budget, which on a small machine
 * takes that core from the producer: on 2 vCPUs a fixed 500 us budget made
 * `strata-bench chain` about 25% slower than a 20 us one. An application
 * that pauses a few hundred microseconds between submissions makes polls
 * that end after that long, and the budget grows to bridge its pauses.
 *
 * Nor does a push wake a parked worker for work that the awake ones
 * (running a task: not parked, not polling) will have taken before a
 * woken one could start: when the device's tasks are short (they run in
 * less than STRATA__QUEUE_SHORT_TASK_NS) and the queued nodes, at their
 * average run time plus a worker's own cost per task, amount to no more
 * than a wake-up's time (STRATA__QUEUE_WAKE_NS) per awake worker. Waking
 * another then only costs the pushing thread a system call and, on a
 * small machine, its core: on 2 vCPUs, `strata-bench overhead` woke its
 * second worker some 20000 times per million tasks, and the submitting
 * thread, sharing its core with it, ran 40-60% slower. A longer backlog,
 * or tasks of unknown or longer duration, wake a worker as before. An
 * awake worker may still be held by a task far longer than the average:
 * parked workers of such a queue nap (STRATA__QUEUE_NAP_NS), a push
 * leaves work unwoken only while one naps, and what was left waits a
 * millisecond or so, never more than STRATA__QUEUE_NAP_MAX_NS. */
#ifndef STRATA_QUEUE_H
#define STRATA_QUEUE_H

#include <pthread.h>

#include "alloc.h"
#include <strata/runtime.h> /* strata_device_stats_t */

typedef struct strata__qnode {
  struct strata__qnode *next;
  int priority;
} strata__qnode_t;

typedef struct strata__qlevel {
  int priority;
  strata__qnode_t *head, *tail;
} strata__qlevel_t;

/* A parked worker: one per thread (thread-local), on at most one queue's
 * list at a time. */
typedef struct strata__qwaiter {
  _Atomic uint32_t word; /* 0 while parked; set to 1 by whoever unparks */
  struct strata__qwaiter *prev, *next;
} strata__qwaiter_t;

/* The longest the first idle worker of a queue polls before it parks (the
 * default of strata_runtime_opts_t.idle_poll_us): long enough to bridge
 * an application's pauses of a few milliseconds, where a wake-up costs
 * tens of microseconds on a virtual machine; well short of the 10 ms after
 * which a runtime counts as idle and must go quiet. A queue polls that long
 * only after it has seen pauses that long: it costs one core for that
 * time per idle period, and nothing after. */
#define STRATA__QUEUE_SPIN_NS 4000000
/* Where the budget starts, before the queue has seen its gaps: a pause of
 * a few hundred microseconds is bridged at once, and a runtime whose
 * pauses are all long never polls longer than this. */
#define STRATA__QUEUE_SPIN_START_NS 500000
/* The least an adapted budget falls to: past a wake-up's cost on a
 * virtual machine (tens of microseconds), so that a worker never parks
 * where it would be woken sooner than the wake-up takes. */
#define STRATA__QUEUE_SPIN_FLOOR_NS 20000
/* The budget is this many times the average wait of successful polls. */
#define STRATA__QUEUE_SPIN_FACTOR 8
/* The short-task rule above: tasks shorter than SHORT count; a wake-up
 * across cores takes some WAKE (5-50 us, the most on virtual machines);
 * a worker spends about COST per task besides the task's own time. */
#define STRATA__QUEUE_SHORT_TASK_NS 10000
#define STRATA__QUEUE_WAKE_NS 20000
#define STRATA__QUEUE_TASK_COST_NS 1000
/* Meanwhile a parked worker naps: it looks at the queue after NAP, then
 * after twice as long, and so on up to every NAP_MAX, for as long as the
 * queue's tasks are short (so that work left to a worker held by an
 * unusually long task waits about a millisecond, and never more than
 * NAP_MAX; an idle runtime's worker then wakes 16 times a second, some
 * microseconds each: well under 0.1% of a core). */
#define STRATA__QUEUE_NAP_NS 1000000
#define STRATA__QUEUE_NAP_MAX_NS 64000000
/* Workers report one task in this many to the queue's running average. */
#define STRATA__QUEUE_TASK_SAMPLE 16

/* Priorities whose level is known to exist without taking the lock. */
#define STRATA__QFAST_MIN (-64)
#define STRATA__QFAST_MAX 63

/* What idle workers did, for tests and diagnostics (relaxed counters). */
typedef struct strata__queue_stats {
  uint64_t spins;     /* polls started by an idle worker */
  uint64_t spin_hits; /* polls that ended with work to take */
  uint64_t parks;     /* times a worker blocked */
  uint64_t unparks;   /* wake-ups a push or stop issued */
} strata__queue_stats_t;

typedef struct strata__queue {
  _Atomic(strata__qnode_t *) inbox; /* pushed, not yet sorted (LIFO) */
  _Atomic size_t size;              /* queued nodes, inbox included */
  _Atomic unsigned spinners;        /* idle workers polling before they park */
  _Atomic unsigned parked;          /* waiters on the list (not yet woken) */
  _Atomic int top_priority;         /* the highest level's priority */
  _Atomic bool stopping;

  pthread_mutex_t mu;       /* consumers: levels */
  strata__qlevel_t *levels; /* sorted by priority, highest first; levels
                               are never removed */
  size_t nlevels, cap;
  uint64_t spin_ns;             /* the longest an idle worker polls */
  uint64_t spin_floor_ns;       /* the shortest budget adaptation may set */
  _Atomic uint64_t hit_wait_ns; /* average wait of polls that found work */
  atomic_bool reserved[STRATA__QFAST_MAX - STRATA__QFAST_MIN + 1];

  /* Written by workers once per STRATA__QUEUE_TASK_SAMPLE tasks, read by
   * every push: a line of its own. */
  char pad_task[64];
  _Atomic uint64_t task_ns; /* average run time; UINT64_MAX: unknown */
  _Atomic unsigned nappers; /* parked workers that will look again */
  unsigned consumers;       /* workers that pop it; 0: unknown */
  char pad_end[64];

  pthread_mutex_t park_mu;    /* the waiters' list */
  strata__qwaiter_t *waiters; /* most recently parked first */
  strata__qwaiter_t *oldest;  /* the list's last: parked longest */
  pthread_cond_t park_cv;     /* where there is no futex, waiters block here */
  _Atomic uint64_t n_spins, n_spin_hits, n_parks, n_unparks;
} strata__queue_t;

/** Set up an empty queue whose idle workers poll for at most spin_ns (0:
 *  never) before they park; the budget adapts between
 *  STRATA__QUEUE_SPIN_FLOOR_NS (or spin_ns if smaller) and spin_ns, and
 *  starts at STRATA__QUEUE_SPIN_START_NS (or spin_ns if smaller).
 *  @return 0; STRATA_ENOMEM  @thread owner */
int strata__queue_init(strata__queue_t *q, uint64_t spin_ns);

/** Change the polling bounds and forget what was learnt: the budget
 *  starts again at start_ns, within [floor_ns, max_ns] (max_ns 0: never
 *  poll). @thread owner (set-up, or a test, while no worker pops) */
void strata__queue_set_spin(strata__queue_t *q, uint64_t floor_ns,
                            uint64_t start_ns, uint64_t max_ns);

/** The queue is popped by n workers (for the short-task rule above; 0,
 *  the default: unknown, every push that no poller takes may wake one).
 *  @thread owner (set-up, before any pop) */
void strata__queue_set_consumers(strata__queue_t *q, unsigned n);

/** A worker's task ran for ran_ns; `count` is that worker's tasks so far
 *  (one in STRATA__QUEUE_TASK_SAMPLE enters the average). @thread the
 *  worker */
static inline void strata__queue_task_ran(strata__queue_t *q, uint64_t count,
                                          uint64_t ran_ns) {
  if (count % STRATA__QUEUE_TASK_SAMPLE)
    return;
  uint64_t avg = atomic_load_explicit(&q->task_ns, memory_order_relaxed);
  /* Two workers at once lose one sample: a running average can spare it. */
  atomic_store_explicit(&q->task_ns,
                        avg == UINT64_MAX ? ran_ns : avg - avg / 8 + ran_ns / 8,
                        memory_order_relaxed);
}

/** Should a push that made the queue hold `size` nodes unpark a worker,
 *  with `parked` parked (of which `nappers` napping), `spinners` polling,
 *  `consumers` in all (0: unknown) and tasks of average length task_ns
 *  (UINT64_MAX: unknown)? Not when none is parked, nor for nodes the
 *  pollers take, nor (short tasks, a napper to fall back on) for a
 *  backlog the awake workers clear within a wake-up's time. Pure. */
static inline bool strata__queue_should_wake(size_t size, unsigned parked,
                                             unsigned nappers,
                                             unsigned spinners,
                                             unsigned consumers,
                                             uint64_t task_ns) {
  if (!parked || size <= spinners)
    return false;
  unsigned awake = consumers > parked ? consumers - parked : 0;
  return !(awake && nappers && task_ns < STRATA__QUEUE_SHORT_TASK_NS &&
           size * (task_ns + STRATA__QUEUE_TASK_COST_NS) <=
               awake * (uint64_t)STRATA__QUEUE_WAKE_NS);
}

/** The average wait of successful polls after one more that waited
 *  waited_ns (an exponential average over about eight polls). Pure. */
static inline uint64_t strata__queue_learn(uint64_t avg_ns,
                                           uint64_t waited_ns) {
  return avg_ns - avg_ns / 8 + waited_ns / 8;
}

/** The polling budget for an average wait of avg_ns, within [floor_ns,
 *  max_ns]. Pure. */
static inline uint64_t strata__queue_budget(uint64_t avg_ns, uint64_t floor_ns,
                                            uint64_t max_ns) {
  uint64_t b = avg_ns > max_ns / STRATA__QUEUE_SPIN_FACTOR
                   ? max_ns
                   : avg_ns * STRATA__QUEUE_SPIN_FACTOR;
  return b < floor_ns ? floor_ns : b;
}
/** Free the levels. No worker may be in a pop any more. @thread owner */
void strata__queue_destroy(strata__queue_t *q, const strata__allocator_t *a);

/** Make sure pushing at `priority` will not need memory.
 *  @return 0; STRATA_ENOMEM  @thread any */
int strata__queue_reserve(strata__queue_t *q, const strata__allocator_t *a,
                          int priority);

/** Append n at n->priority (reserved before) and unpark a worker if no
 *  polling worker will take it. Lock-free and free of system calls unless
 *  a worker is parked. @own n: the queue's until popped  @thread any */
void strata__queue_push(strata__queue_t *q, strata__qnode_t *n);

/** Take the best node, waiting up to timeout_ns (< 0: forever; 0: not at
 *  all). @return the node, or NULL on timeout or once the queue is
 *  stopping (*stopped tells which). @thread any (a worker) */
strata__qnode_t *strata__queue_pop(strata__queue_t *q, int64_t timeout_ns,
                                   bool *stopped);

/** Wake every waiting pop; from now on a pop that finds nothing queued
 *  returns NULL with *stopped set at once (nodes still queued are still
 *  handed out, so that they can be moved elsewhere). @thread any */
void strata__queue_stop(strata__queue_t *q);

/** What the queue's idle workers did so far (a snapshot). @thread any */
void strata__queue_stats(const strata__queue_t *q, strata__queue_stats_t *out);
/** The same, into a device's public counters (idle_polls, idle_poll_hits,
 *  sleeps, wakeups). @thread any */
void strata__queue_device_stats(const strata__queue_t *q,
                                strata_device_stats_t *out);

/** Number of queued nodes (a hint when read concurrently). */
static inline size_t strata__queue_size(const strata__queue_t *q) {
  return atomic_load_explicit(&q->size, memory_order_relaxed);
}

/** Will a node pushed now be taken at once: nothing queued and a worker
 *  idle? (A hint when read concurrently.) */
static inline bool strata__queue_has_idle_worker(const strata__queue_t *q) {
  return !strata__queue_size(q) &&
         (atomic_load_explicit(&q->spinners, memory_order_relaxed) ||
          atomic_load_explicit(&q->parked, memory_order_relaxed));
}

/** The highest priority ever reserved (a hint when read concurrently). */
static inline int strata__queue_top_priority(const strata__queue_t *q) {
  return atomic_load_explicit(&q->top_priority, memory_order_relaxed);
}

#endif /* STRATA_QUEUE_H */
