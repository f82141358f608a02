/* SPDX-License-Identifier: MIT */
/* runtime/queue.c: priority ready queue with sleeping workers. */
#include "config.h"

#include "queue.h"

#include <errno.h>
#include <sched.h>
#include <string.h>

int strata__queue_init(strata__queue_t *q, uint64_t spin_ns) {
  memset(q, 0, sizeof *q);
  pthread_condattr_t ca;
  if (pthread_condattr_init(&ca))
    return STRATA_ENOMEM;
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  int rc = pthread_cond_init(&q->cv, &ca);
  pthread_condattr_destroy(&ca);
  if (rc)
    return STRATA_ENOMEM;
  if (strata__mutex_init_hot(&q->mu)) {
    pthread_cond_destroy(&q->cv);
    return STRATA_ENOMEM;
  }
  q->spin_ns = spin_ns;
  atomic_init(&q->inbox, NULL);
  atomic_init(&q->size, 0);
  atomic_init(&q->top_priority, 0);
  atomic_init(&q->spinners, 0);
  atomic_init(&q->sleepers, 0);
  for (size_t i = 0; i < sizeof q->reserved / sizeof *q->reserved; i++)
    atomic_init(&q->reserved[i], false);
  return STRATA_OK;
}

void strata__queue_destroy(strata__queue_t *q, const strata__allocator_t *a) {
  strata__free(a, q->levels, q->cap * sizeof *q->levels);
  pthread_cond_destroy(&q->cv);
  pthread_mutex_destroy(&q->mu);
}

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

void strata__queue_push(strata__queue_t *q, strata__qnode_t *n) {
  strata__qnode_t *head = atomic_load_explicit(&q->inbox, memory_order_relaxed);
  do
    n->next = head;
  while (!atomic_compare_exchange_weak(&q->inbox, &head, n));
  size_t size = atomic_fetch_add(&q->size, 1) + 1;
  /* Pairs with the sleeper's increment before its last look at the inbox
   * (both sequentially consistent): either it sees this node, or this
   * sees it and signals under the lock it holds until it sleeps. Wake only
   * for work the polling workers will not take: a poller that misses the
   * node looks again under the lock before sleeping. */
  if (atomic_load(&q->sleepers) && size > atomic_load(&q->spinners)) {
    pthread_mutex_lock(&q->mu);
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
  }
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

/* Poll the size for up to spin_ns before going to sleep: waking a sleeping
 * thread costs a few microseconds of system calls, while a worker that has
 * just finished a task very often finds the next one within that time. */
static void spin_briefly(strata__queue_t *q) {
  /* One poller per queue is enough to catch the next task; more would
   * only take cores from the threads producing work. */
  if (!q->spin_ns || atomic_fetch_add(&q->spinners, 1) > 0) {
    if (q->spin_ns)
      atomic_fetch_sub(&q->spinners, 1);
    return;
  }
  uint64_t until = strata__now_ns() + q->spin_ns;
  for (unsigned i = 1;; i++) {
    if (atomic_load_explicit(&q->size, memory_order_relaxed))
      break;
    sched_yield();
    if (!(i & 3) && strata__now_ns() >= until)
      break;
  }
  atomic_fetch_sub(&q->spinners, 1);
}

static struct timespec deadline_after(int64_t ns) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  ts.tv_sec += ns / 1000000000;
  ts.tv_nsec += ns % 1000000000;
  if (ts.tv_nsec >= 1000000000) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000;
  }
  return ts;
}

strata__qnode_t *strata__queue_pop(strata__queue_t *q, int64_t timeout_ns,
                                   bool *stopped) {
  strata__qnode_t *n;
  *stopped = false;
  if (timeout_ns != 0 && !strata__queue_size(q))
    spin_briefly(q);
  struct timespec until;
  if (timeout_ns > 0)
    until = deadline_after(timeout_ns);
  pthread_mutex_lock(&q->mu);
  while (!(n = take(q))) {
    if (q->stopping) {
      *stopped = true;
      break;
    }
    if (timeout_ns == 0)
      break;
    /* Announce the sleep, then look once more (see strata__queue_push). */
    atomic_fetch_add(&q->sleepers, 1);
    if ((n = take(q))) {
      atomic_fetch_sub(&q->sleepers, 1);
      break;
    }
    int rc = timeout_ns < 0 ? pthread_cond_wait(&q->cv, &q->mu)
                            : pthread_cond_timedwait(&q->cv, &q->mu, &until);
    atomic_fetch_sub(&q->sleepers, 1);
    if (rc == ETIMEDOUT) {
      n = take(q);
      break;
    }
  }
  pthread_mutex_unlock(&q->mu);
  return n;
}

void strata__queue_stop(strata__queue_t *q) {
  pthread_mutex_lock(&q->mu);
  q->stopping = true;
  pthread_cond_broadcast(&q->cv);
  pthread_mutex_unlock(&q->mu);
}
