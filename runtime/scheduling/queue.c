/* SPDX-License-Identifier: MIT */
/* runtime/scheduling/queue.c: priority ready queue; idle workers poll it
 * briefly, then park on a futex of their own until a push or a stop unparks
 * them. */
#include "config.h"

#include "queue.h"

#include <errno.h>
#include <sched.h>
#include <string.h>

/* Where the futex is missing (or a test asks for it), waiters block on a
 * condition variable of the queue's instead: the same protocol, with a
 * broadcast in place of a wake-up aimed at one thread. */
#if defined(__linux__) && !defined(STRATA_QUEUE_NO_FUTEX)
#define USE_FUTEX 1
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#else
#define USE_FUTEX 0
#endif

/* Each thread parks on its own waiter. It lives as long as the thread, so
 * that a wake-up issued just after its owner stopped waiting (the waker
 * sets the word, then calls FUTEX_WAKE) lands on memory that is still the
 * thread's: at worst a spurious return from a later wait, which every wait
 * loop here tolerates. */
static _Thread_local strata__qwaiter_t self_waiter;

/* {=== Setup ===} */

int strata__queue_init(strata__queue_t *q, uint64_t spin_ns) {
  memset(q, 0, sizeof *q);
  if (strata__mutex_init_hot(&q->mu))
    return STRATA_ENOMEM;
  if (strata__mutex_init_hot(&q->park_mu)) {
    pthread_mutex_destroy(&q->mu);
    return STRATA_ENOMEM;
  }
#if !USE_FUTEX
  pthread_condattr_t ca;
  int rc = pthread_condattr_init(&ca);
  if (!rc) {
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    rc = pthread_cond_init(&q->park_cv, &ca);
    pthread_condattr_destroy(&ca);
  }
  if (rc) {
    pthread_mutex_destroy(&q->park_mu);
    pthread_mutex_destroy(&q->mu);
    return STRATA_ENOMEM;
  }
#endif
  strata__queue_set_spin(q, STRATA__QUEUE_SPIN_FLOOR_NS,
                         STRATA__QUEUE_SPIN_START_NS, spin_ns);
  atomic_init(&q->task_ns, UINT64_MAX);
  atomic_init(&q->nappers, 0);
  q->consumers = 0;
  atomic_init(&q->inbox, NULL);
  atomic_init(&q->size, 0);
  atomic_init(&q->top_priority, 0);
  atomic_init(&q->spinners, 0);
  atomic_init(&q->parked, 0);
  atomic_init(&q->stopping, false);
  atomic_init(&q->n_spins, 0);
  atomic_init(&q->n_spin_hits, 0);
  atomic_init(&q->n_parks, 0);
  atomic_init(&q->n_unparks, 0);
  for (size_t i = 0; i < sizeof q->reserved / sizeof *q->reserved; i++)
    atomic_init(&q->reserved[i], false);
  return STRATA_OK;
}

void strata__queue_set_spin(strata__queue_t *q, uint64_t floor_ns,
                            uint64_t start_ns, uint64_t max_ns) {
  q->spin_ns = max_ns;
  q->spin_floor_ns = floor_ns < max_ns ? floor_ns : max_ns;
  /* The average whose budget is start_ns: the first polls bridge a pause
   * that long, until the queue has seen what its gaps are. */
  if (start_ns > max_ns)
    start_ns = max_ns;
  atomic_store_explicit(&q->hit_wait_ns, start_ns / STRATA__QUEUE_SPIN_FACTOR,
                        memory_order_relaxed);
}

void strata__queue_set_consumers(strata__queue_t *q, unsigned n) {
  q->consumers = n;
}

void strata__queue_destroy(strata__queue_t *q, const strata__allocator_t *a) {
  strata__free(a, q->levels, q->cap * sizeof *q->levels);
#if !USE_FUTEX
  pthread_cond_destroy(&q->park_cv);
#endif
  pthread_mutex_destroy(&q->park_mu);
  pthread_mutex_destroy(&q->mu);
}

void strata__queue_stats(const strata__queue_t *q, strata__queue_stats_t *out) {
  out->spins = atomic_load_explicit(&q->n_spins, memory_order_relaxed);
  out->spin_hits = atomic_load_explicit(&q->n_spin_hits, memory_order_relaxed);
  out->parks = atomic_load_explicit(&q->n_parks, memory_order_relaxed);
  out->unparks = atomic_load_explicit(&q->n_unparks, memory_order_relaxed);
}

void strata__queue_device_stats(const strata__queue_t *q,
                                strata_device_stats_t *out) {
  strata__queue_stats_t s;
  strata__queue_stats(q, &s);
  out->idle_polls = s.spins;
  out->idle_poll_hits = s.spin_hits;
  out->sleeps = s.parks;
  out->wakeups = s.unparks;
}

static void count(_Atomic uint64_t *c) {
  atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* {=== Priority levels ===} */

/* Index of the level for `priority`, or where it would be inserted. */
static size_t find_level(const strata__queue_t *q, int priority, bool *found) {
  size_t lo = 0, hi = q->nlevels;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (q->levels[mid].priority == priority) {
      *found = true;
      return mid;
    }
    if (q->levels[mid].priority > priority)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = false;
  return lo;
}

static atomic_bool *fast_flag(strata__queue_t *q, int priority) {
  if (priority < STRATA__QFAST_MIN || priority > STRATA__QFAST_MAX)
    return NULL;
  return &q->reserved[priority - STRATA__QFAST_MIN];
}

int strata__queue_reserve(strata__queue_t *q, const strata__allocator_t *a,
                          int priority) {
  /* Every submission reserves its level: skip the lock (contended by the
   * workers) once a common priority's level exists. */
  atomic_bool *flag = fast_flag(q, priority);
  if (flag && atomic_load_explicit(flag, memory_order_acquire))
    return STRATA_OK;
  int rc = STRATA_OK;
  bool found;
  pthread_mutex_lock(&q->mu);
  size_t at = find_level(q, priority, &found);
  if (found)
    goto out;
  rc = strata__grow(a, (void **)&q->levels, &q->cap, q->nlevels + 1,
                    sizeof *q->levels);
  if (rc)
    goto out;
  memmove(&q->levels[at + 1], &q->levels[at],
          (q->nlevels - at) * sizeof *q->levels);
  q->levels[at] = (strata__qlevel_t){.priority = priority};
  q->nlevels++;
  atomic_store_explicit(&q->top_priority, q->levels[0].priority,
                        memory_order_relaxed);
out:
  if (rc == STRATA_OK && flag)
    atomic_store_explicit(flag, true, memory_order_release);
  pthread_mutex_unlock(&q->mu);
  return rc;
}

/* Move the inbox into the priority levels, oldest first. Called with the
 * lock held. */
static void drain_inbox(strata__queue_t *q) {
  strata__qnode_t *n = atomic_exchange(&q->inbox, NULL), *fifo = NULL;
  while (n) { /* the inbox is LIFO */
    strata__qnode_t *next = n->next;
    n->next = fifo;
    fifo = n;
    n = next;
  }
  for (bool found; fifo;) {
    n = fifo;
    fifo = n->next;
    n->next = NULL;
    strata__qlevel_t *l = &q->levels[find_level(q, n->priority, &found)];
    if (STRATA_UNLIKELY(!found))
      STRATA_ABORT("ready queue push at an unreserved priority");
    if (l->tail)
      l->tail->next = n;
    else
      l->head = n;
    l->tail = n;
  }
}

/* Called with the lock held. */
static strata__qnode_t *take(strata__queue_t *q) {
  if (!atomic_load(&q->size))
    return NULL;
  if (atomic_load_explicit(&q->inbox, memory_order_relaxed))
    drain_inbox(q);
  for (size_t i = 0; i < q->nlevels; i++) {
    strata__qlevel_t *l = &q->levels[i];
    strata__qnode_t *n = l->head;
    if (!n)
      continue;
    l->head = n->next;
    if (!l->head)
      l->tail = NULL;
    atomic_fetch_sub_explicit(&q->size, 1, memory_order_relaxed);
    return n;
  }
  return NULL;
}

/* The best node, without taking the lock when nothing is queued. */
static strata__qnode_t *try_take(strata__queue_t *q) {
  if (!atomic_load_explicit(&q->size, memory_order_relaxed))
    return NULL;
  pthread_mutex_lock(&q->mu);
  strata__qnode_t *n = take(q);
  pthread_mutex_unlock(&q->mu);
  return n;
}

/* {=== Parking: block on a waiter's word until it is set ===} */

/* Block while w->word is 0, until at most the absolute CLOCK_MONOTONIC
 * time *until (NULL: no limit). May return early (a signal, a spurious
 * wake-up): the caller looks at the word and the clock again. */
static void park_wait(strata__queue_t *q, strata__qwaiter_t *w,
                      const struct timespec *until) {
#if USE_FUTEX
  (void)q;
  /* The bitset form takes an absolute CLOCK_MONOTONIC time, so an early
   * return needs no recomputation of what is left. */
  syscall(SYS_futex, (uint32_t *)&w->word,
          FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, 0, until, NULL,
          FUTEX_BITSET_MATCH_ANY);
#else
  pthread_mutex_lock(&q->park_mu);
  if (!atomic_load_explicit(&w->word, memory_order_relaxed)) {
    if (until)
      pthread_cond_timedwait(&q->park_cv, &q->park_mu, until);
    else
      pthread_cond_wait(&q->park_cv, &q->park_mu);
  }
  pthread_mutex_unlock(&q->park_mu);
#endif
}

/* Wake w, whose word was set under park_mu. */
static void park_wake(strata__queue_t *q, strata__qwaiter_t *w) {
  count(&q->n_unparks);
#if USE_FUTEX
  syscall(SYS_futex, (uint32_t *)&w->word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1,
          NULL, NULL, 0);
#else
  (void)w;
  pthread_cond_broadcast(&q->park_cv);
#endif
}

/* Take w off the list. Called with park_mu held. */
static void unlink_waiter(strata__queue_t *q, strata__qwaiter_t *w) {
  if (w->prev)
    w->prev->next = w->next;
  else
    q->waiters = w->next;
  if (w->next)
    w->next->prev = w->prev;
  else
    q->oldest = w->prev;
  w->prev = w->next = NULL;
  atomic_fetch_sub_explicit(&q->parked, 1, memory_order_relaxed);
}

/* Take w off the list and mark it woken: its word tells its owner that it
 * is no longer listed. Called with park_mu held. */
static void claim(strata__queue_t *q, strata__qwaiter_t *w) {
  unlink_waiter(q, w);
  atomic_store_explicit(&w->word, 1, memory_order_release);
}

/* Unpark the worker parked longest, if any. (Waking the most recent one
 * instead, whose caches are warmer, measured slower on a 2-vCPU machine:
 * there it is usually the worker that has just run the last task, on the
 * other core than the thread that was waiting for that task and now
 * submits, while the one parked longest often shares that thread's core
 * and runs as soon as it blocks.) */
static void unpark_one(strata__queue_t *q) {
  pthread_mutex_lock(&q->park_mu);
  strata__qwaiter_t *w = q->oldest;
  if (w)
    claim(q, w);
  pthread_mutex_unlock(&q->park_mu);
  /* Outside the lock: other pushers need not wait for the system call. */
  if (w)
    park_wake(q, w);
}

/* Block the calling worker until a push or a stop unparks it, or until the
 * absolute time `until` (UINT64_MAX: none). @return whether a push or a
 * stop unparked it. */
static bool park(strata__queue_t *q, uint64_t until) {
  strata__qwaiter_t *w = &self_waiter;
  atomic_store_explicit(&w->word, 0, memory_order_relaxed);
  pthread_mutex_lock(&q->park_mu);
  w->prev = NULL;
  w->next = q->waiters;
  if (w->next)
    w->next->prev = w;
  else
    q->oldest = w;
  q->waiters = w;
  /* Pairs with strata__queue_push's increment of size and look at parked
   * (all sequentially consistent): either this sees the node below, or
   * the push sees this waiter and unparks it. */
  atomic_fetch_add(&q->parked, 1);
  pthread_mutex_unlock(&q->park_mu);
  if (!atomic_load(&q->size) && !atomic_load(&q->stopping)) {
    count(&q->n_parks);
    struct timespec ts = strata__timespec_at(until);
    const struct timespec *limit = until == UINT64_MAX ? NULL : &ts;
    while (!atomic_load_explicit(&w->word, memory_order_acquire)) {
      park_wait(q, w, limit);
      if (limit && strata__now_ns() >= until)
        break;
    }
  }
  if (atomic_load_explicit(&w->word, memory_order_acquire))
    return true; /* claimed: whoever did took it off the list */
  pthread_mutex_lock(&q->park_mu);
  bool claimed = atomic_load_explicit(&w->word, memory_order_relaxed);
  if (!claimed)
    unlink_waiter(q, w); /* not claimed: leave as if never parked */
  pthread_mutex_unlock(&q->park_mu);
  return claimed;
}

/* {=== Polling ===} */

typedef enum { SPIN_NONE, SPIN_FOUND, SPIN_EXPIRED } spin_result_t;

/* A gap between pushes of `gap_ns` that polling could have bridged enters
 * the average the budget follows (a longer one, an idle period, would
 * only keep a core polling in vain). Written by the poller and by a worker
 * that polled, then parked: two writers at once lose one sample, which a
 * running average can spare. */
static void learn_gap(strata__queue_t *q, uint64_t gap_ns) {
  if (gap_ns > q->spin_ns ||
      atomic_load_explicit(&q->stopping, memory_order_relaxed))
    return;
  uint64_t avg = atomic_load_explicit(&q->hit_wait_ns, memory_order_relaxed);
  atomic_store_explicit(&q->hit_wait_ns, strata__queue_learn(avg, gap_ns),
                        memory_order_relaxed);
}

/* Poll for up to the queue's budget (and no later than until) from `start`,
 * when no other worker of the queue polls: a worker that has just run out of
 * work very often finds more within that time, and a parked one costs a wake-up
 * of several microseconds, tens on a virtual machine. Each look is
 * followed by a yield, which hands the core to a thread that wants it (on
 * a small machine, the submitter) and keeps the poller off the queue's
 * cache line: a loop of pause hints instead, reading the line every half
 * microsecond, made overhead and chain about 20% slower on 2 vCPUs.
 * @return SPIN_FOUND (something to take, or the queue stops);
 * SPIN_EXPIRED (the budget ran out); SPIN_NONE (another worker polls). */
static spin_result_t spin(strata__queue_t *q, uint64_t start, uint64_t until) {
  unsigned none = 0;
  if (!q->spin_ns || !atomic_compare_exchange_strong(&q->spinners, &none, 1))
    return SPIN_NONE; /* one poller per queue catches the next task */
  count(&q->n_spins);
  uint64_t budget = strata__queue_budget(
      atomic_load_explicit(&q->hit_wait_ns, memory_order_relaxed),
      q->spin_floor_ns, q->spin_ns);
  if (start + budget < until)
    until = start + budget;
  bool found = false;
  for (unsigned i = 1;; i++) {
    if (atomic_load_explicit(&q->size, memory_order_relaxed) ||
        atomic_load_explicit(&q->stopping, memory_order_relaxed)) {
      found = true;
      break;
    }
    sched_yield();
    if (!(i & 3) && strata__now_ns() >= until)
      break;
  }
  /* Before taking anything (see strata__queue_push): a push that still
   * counts this poller wakes nobody, and this poller will see its node. */
  if (found) {
    learn_gap(q, strata__now_ns() - start);
    count(&q->n_spin_hits);
  }
  atomic_fetch_sub(&q->spinners, 1);
  return found ? SPIN_FOUND : SPIN_EXPIRED;
}

/* {=== Push, pop, stop ===} */

/* May a push leave its node to the awake workers (see queue.h)? */
static bool defers_wakes(const strata__queue_t *q) {
  return q->consumers > 1 &&
         atomic_load_explicit(&q->task_ns, memory_order_relaxed) <
             STRATA__QUEUE_SHORT_TASK_NS;
}

void strata__queue_push(strata__queue_t *q, strata__qnode_t *n) {
  strata__qnode_t *head = atomic_load_explicit(&q->inbox, memory_order_relaxed);
  do
    n->next = head;
  while (!atomic_compare_exchange_weak(&q->inbox, &head, n));
  size_t size = atomic_fetch_add(&q->size, 1) + 1;
  /* Unpark only for work the pollers will not take: a poller that stops
   * polling looks at the size again before it parks. Nor for work the
   * awake workers take sooner (see queue.h): each pops again when its
   * task ends, or is polling, and looks at the size before it parks; and
   * a napper looks within STRATA__QUEUE_NAP_MAX_NS. The loads pair with a
   * parker's increment and a napper's decrement before it looks at the
   * size (all sequentially consistent). */
  unsigned parked = atomic_load(&q->parked);
  if (!parked)
    return;
  if (strata__queue_should_wake(
          size, parked, atomic_load(&q->nappers), atomic_load(&q->spinners),
          q->consumers,
          atomic_load_explicit(&q->task_ns, memory_order_relaxed)))
    unpark_one(q);
}

strata__qnode_t *strata__queue_pop(strata__queue_t *q, int64_t timeout_ns,
                                   bool *stopped) {
  *stopped = false;
  strata__qnode_t *n = try_take(q);
  if (n)
    return n;
  if (timeout_ns == 0) {
    *stopped = atomic_load(&q->stopping);
    return NULL;
  }
  uint64_t start = strata__now_ns();
  uint64_t until = timeout_ns < 0 ? UINT64_MAX : start + (uint64_t)timeout_ns;
  spin_result_t polled = SPIN_NONE;
  uint64_t nap = STRATA__QUEUE_NAP_NS;
  for (bool first = true;; first = false) {
    if ((n = try_take(q)))
      return n;
    if (atomic_load(&q->stopping)) {
      *stopped = true;
      return NULL;
    }
    if (until != UINT64_MAX && strata__now_ns() >= until)
      return NULL;
    if (first && (polled = spin(q, start, until)) == SPIN_FOUND)
      continue;
    /* Where pushes may leave work to the awake workers, one of those may
     * be held by a task much longer than the average: a parked worker
     * looks again now and then (after 1 ms, doubling up to every 64 ms),
     * so that such work waits a millisecond or so, not for that task; and
     * only while one naps may a push leave work unwoken, so that nothing
     * waits longer than a nap whatever the awake workers do. */
    uint64_t wake_at = until;
    bool napping = defers_wakes(q);
    if (napping) {
      uint64_t t = strata__now_ns() + nap;
      wake_at = t < until ? t : until;
      if (nap < STRATA__QUEUE_NAP_MAX_NS)
        nap *= 2;
      atomic_fetch_add(&q->nappers, 1);
    }
    bool claimed = park(q, wake_at);
    if (napping)
      atomic_fetch_sub(&q->nappers, 1);
    /* A worker that polled in vain and is woken by a push has measured a
     * gap longer than its budget: the next polls may bridge such gaps. */
    if (claimed && polled == SPIN_EXPIRED) {
      learn_gap(q, strata__now_ns() - start);
      polled = SPIN_NONE; /* one gap, one sample */
    }
  }
}

void strata__queue_stop(strata__queue_t *q) {
  atomic_store(&q->stopping, true);
  /* A waiter that parks after this sweep sees stopping (it links itself
   * under the same lock) and does not block. */
  pthread_mutex_lock(&q->park_mu);
  while (q->waiters) {
    strata__qwaiter_t *w = q->waiters;
    claim(q, w);
#if USE_FUTEX
    park_wake(q, w); /* w stays valid: it is its thread's */
#endif
  }
  pthread_mutex_unlock(&q->park_mu);
#if !USE_FUTEX
  park_wake(q, NULL);
#endif
}
