/* SPDX-License-Identifier: MIT */
/* runtime/queue.c: priority ready queue with sleeping workers. */
#include "config.h"

#include "queue.h"

#include <errno.h>
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
  if (pthread_mutex_init(&q->mu, NULL)) {
    pthread_cond_destroy(&q->cv);
    return STRATA_ENOMEM;
  }
  q->spin_ns = spin_ns;
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

int strata__queue_reserve(strata__queue_t *q, const strata__allocator_t *a,
                          int priority) {
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
out:
  pthread_mutex_unlock(&q->mu);
  return rc;
}

void strata__queue_push(strata__queue_t *q, strata__qnode_t *n) {
  bool found;
  n->next = NULL;
  pthread_mutex_lock(&q->mu);
  strata__qlevel_t *l = &q->levels[find_level(q, n->priority, &found)];
  if (STRATA_UNLIKELY(!found))
    STRATA_ABORT("ready queue push at an unreserved priority");
  if (l->tail)
    l->tail->next = n;
  else
    l->head = n;
  l->tail = n;
  atomic_fetch_add_explicit(&q->size, 1, memory_order_relaxed);
  if (q->sleepers)
    pthread_cond_signal(&q->cv);
  pthread_mutex_unlock(&q->mu);
}

/* Called with the lock held. */
static strata__qnode_t *take(strata__queue_t *q) {
  if (!atomic_load_explicit(&q->size, memory_order_relaxed))
    return NULL;
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
  if (!q->spin_ns)
    return;
  uint64_t until = strata__now_ns() + q->spin_ns;
  for (unsigned i = 1;; i++) {
    if (atomic_load_explicit(&q->size, memory_order_relaxed))
      return;
    strata__cpu_relax();
    if (!(i & 63) && strata__now_ns() >= until)
      return;
  }
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
    q->sleepers++;
    int rc = timeout_ns < 0 ? pthread_cond_wait(&q->cv, &q->mu)
                            : pthread_cond_timedwait(&q->cv, &q->mu, &until);
    q->sleepers--;
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
