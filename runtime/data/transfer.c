/* SPDX-License-Identifier: MIT */
/* runtime/data/transfer.c: the transfer engine (see transfer.h): the staging
 * and prefetch request queues and the threads that serve them. What makes
 * a copy safe, and the copies themselves, are the memory manager's
 * (strata__memory_try_acquire, strata__memory_prefetch); this file only
 * decides when and on which thread they run, and where a task waits. */
#include "config.h"

#include "runtime.h"

#include <sched.h>
#include <time.h>

#define COMP "transfer"

/* Queued prefetch requests at most; beyond, requests are dropped. */
#define RING_CAP 4096
/* Threads at most. One per device node, plus one for host-side work (CPU
 * tasks, spill reads), so that one card's slow copies do not hold another
 * card's staging; no more, or they take cores from the workers (and with
 * asynchronous copies a thread only waits for a fence, it does not copy). */
#define MAX_THREADS 3
/* Parked tasks are tried again at least this often: room can also come
 * back without a release (a victim that was busy, a spill that recovered). */
#define PARK_RETRY_NS 1000000
/* With tasks parked, an idle engine thread polls this long for the release
 * that gives them room before it sleeps: behind a full card a release
 * comes with every task that ends, and a sleeping thread's wake-up (tens
 * of microseconds on a virtual machine) would delay each task's staging
 * by that much. One thread polls at a time, yielding its core between
 * looks to any thread that wants it, and only while releases come (the
 * last within RELEASE_RECENT_NS): parked tasks that no release frees (a
 * full spill directory) cost no polling. */
#define RELEASE_POLL_NS 200000
#define RELEASE_RECENT_NS 1000000

/* {=== Queues (x->mu held) ===} */

static strata__task_t *link_of(strata__task_t *t) {
  return t->qnode.next
             ? STRATA_CONTAINER_OF(t->qnode.next, strata__task_t, qnode)
             : NULL;
}

static void append(strata__task_t **head, strata__task_t **tail,
                   strata__task_t *t) {
  t->qnode.next = NULL;
  if (*tail)
    (*tail)->qnode.next = &t->qnode;
  else
    *head = t;
  *tail = t;
}

static strata__task_t *take_first(strata__task_t **head,
                                  strata__task_t **tail) {
  strata__task_t *t = *head;
  if (t && !(*head = link_of(t)))
    *tail = NULL;
  if (t)
    t->qnode.next = NULL;
  return t;
}

static const strata__xlist_t empty_list = {NULL, NULL, 0, UINT64_MAX};

static void list_append(strata__xlist_t *l, strata__task_t *t) {
  append(&l->head, &l->tail, t);
  l->n++;
  if (t->working_set < l->min_ws)
    l->min_ws = t->working_set;
}

static strata__task_t *list_take(strata__xlist_t *l) {
  strata__task_t *t = take_first(&l->head, &l->tail);
  if (t)
    l->n--;
  if (!l->head)
    l->min_ws = UINT64_MAX;
  return t;
}

/* Move all of `from` to the end of `to`, in order. */
static void list_splice(strata__xlist_t *to, strata__xlist_t *from) {
  if (!from->head)
    return;
  if (to->tail)
    to->tail->qnode.next = &from->head->qnode;
  else
    to->head = from->head;
  to->tail = from->tail;
  to->n += from->n;
  if (from->min_ws < to->min_ws)
    to->min_ws = from->min_ws;
  *from = empty_list;
}

/* Move all of `from` to the front of `to`: it comes first again. */
static void list_splice_front(strata__xlist_t *to, strata__xlist_t *from) {
  if (!from->head)
    return;
  strata__xlist_t rest = *to;
  *to = *from;
  *from = empty_list;
  list_splice(to, &rest);
}

/* Give every parked task back for a retry: room may have come back on
 * any node. */
static void unpark(strata__transfer_t *x) {
  for (size_t i = 0; i < x->nnodes; i++) {
    strata__xnode_t *xn = &x->nodes[i];
    xn->no_room = 0;
    x->nretry += xn->parked.n;
    x->nwaiting -= xn->parked.n;
    list_splice(&xn->retry, &xn->parked);
  }
}

/* The memory node t stages on. */
static int node_of_task(const strata_runtime_t *rt, const strata__task_t *t) {
  return rt->devices[t->device]->node;
}

/* Would retried task t find no room for certain? Since the last release
 * the room on a node only shrinks (staging reserves and holds; only a
 * release gives back), so a task needing at least what one that parked
 * there needed would park again: trying it would cost a pass over its
 * buffers (and prefetch checks) for nothing, and with many tasks parked
 * behind a full card every release would try them all. */
static bool surely_no_room(const strata__xnode_t *xn, uint64_t working_set) {
  return xn->no_room && working_set >= xn->no_room;
}

/* {=== Staging ===} */

/* Copy t's inputs into free room ahead of the task when it will wait in
 * its device's queue (counted as prefetches, as they were before staging
 * moved here), and queue copies to where the policy keeps them. */
static void prefetch_inputs(strata_runtime_t *rt, strata__task_t *t, int node) {
  for (size_t i = 0; i < t->naccess; i++) {
    if (!(strata__task_access_mode(t, i) & STRATA_R))
      continue;
    strata__buffer_t *b = t->access[i].buf;
    if (strata__memory_prefetch_wanted(rt, b, node))
      strata__memory_prefetch(rt, b, node);
    strata__prefetch_kept(rt, b, node);
  }
}

/* Park t, which found no room on its node (x->mu held). */
static void park_locked(strata_runtime_t *rt, strata__transfer_t *x,
                        strata__task_t *t) {
  strata__xnode_t *xn = &x->nodes[node_of_task(rt, t)];
  if (!xn->no_room || t->working_set < xn->no_room)
    xn->no_room = t->working_set ? t->working_set : 1;
  list_append(&xn->parked, t);
  x->nwaiting++;
  x->nparked++;
}

static void park(strata_runtime_t *rt, strata__transfer_t *x,
                 strata__task_t *t) {
  pthread_mutex_lock(&x->mu);
  park_locked(rt, x, t);
  pthread_mutex_unlock(&x->mu);
}

/* Stage t on an engine thread: copies may run (and block this thread, not
 * a worker). */
static void stage(strata_runtime_t *rt, strata__task_t *t) {
  strata__transfer_t *x = &rt->xfer;
  strata__device_t *d = rt->devices[t->device];
  int node = d->node;
  if (x->prefetch && rt->mem.nodes[node]->kind == STRATA__NODE_DEVICE &&
      !strata__queue_has_idle_worker(&d->queue))
    prefetch_inputs(rt, t, node);
  int rc = strata__memory_try_acquire(rt, t, t->device, true);
  if (rc == STRATA_EAGAIN)
    park(rt, x, t); /* no thread waits: a release brings it back */
  else
    x->staged(rt, t, rc);
}

void strata__transfer_stage(strata_runtime_t *rt, strata__task_t *t) {
  strata__transfer_t *x = &rt->xfer;
  if (!x->nthreads) { /* no engine thread: stage here, blocking */
    x->staged(rt, t, strata__memory_acquire(rt, t, t->device));
    return;
  }
  /* Everything in place already: no copy to wait for, no thread hop. */
  if (strata__memory_try_acquire(rt, t, t->device, false) == STRATA_OK) {
    x->staged(rt, t, STRATA_OK);
    return;
  }
  pthread_mutex_lock(&x->mu);
  append(&x->stage_head, &x->stage_tail, t);
  pthread_cond_signal(&x->cv);
  pthread_mutex_unlock(&x->mu);
}

/* The next task given back for a retry on `node` that may find room
 * there (x->mu held), in order: when the first would surely find none and
 * no retried task there needs less, they all go back to wait for the
 * next release at once, untried, ahead of those parked since (they came
 * first). NULL: none to try. */
static strata__task_t *take_retry(strata__transfer_t *x, size_t node) {
  strata__xnode_t *xn = &x->nodes[node];
  while (xn->retry.head) {
    if (surely_no_room(xn, xn->retry.min_ws)) {
      x->nretry -= xn->retry.n;
      x->nwaiting += xn->retry.n;
      list_splice_front(&xn->parked, &xn->retry);
      return NULL;
    }
    strata__task_t *t = list_take(&xn->retry);
    x->nretry--;
    if (!surely_no_room(xn, t->working_set)) {
      x->nparked--;
      return t;
    }
    list_append(&xn->parked, t); /* a larger one, behind smaller ones */
    x->nwaiting++;
  }
  return NULL;
}

/* The next task to retry on any node, looking at the nodes in turn so
 * that one card's queue of parked tasks does not hold the others'. */
static strata__task_t *take_any_retry(strata__transfer_t *x) {
  for (size_t k = 0; k < x->nnodes && x->nretry; k++) {
    size_t node = (x->next_node + k) % x->nnodes;
    strata__task_t *t = take_retry(x, node);
    if (t) {
      x->next_node = (node + 1) % x->nnodes;
      return t;
    }
  }
  return NULL;
}

void strata__transfer_released(strata_runtime_t *rt, int help_node) {
  strata__transfer_t *x = &rt->xfer;
  if (!x->ready)
    return;
  /* Every completion passes here: no lock unless someone is parked. */
  if (!atomic_load_explicit(&x->nparked, memory_order_relaxed))
    return;
  strata__task_t *own = NULL; /* staged here, by the helping worker */
  pthread_mutex_lock(&x->mu);
  if (x->nparked) {
    unpark(x);
    x->last_release_ns = strata__now_ns();
    /* A worker about to run dry stages the next task of its own device
     * here: on a full card, where each task waits for the room the one
     * before gives back, handing it to an engine thread would put two
     * wake-ups (the engine's, then the worker's) between every two tasks. */
    if (help_node >= 0 && x->nthreads)
      own = take_retry(x, (size_t)help_node);
    if (x->nretry)
      pthread_cond_broadcast(&x->cv);
  }
  pthread_mutex_unlock(&x->mu);
  if (own)
    stage(rt, own);
}

/* {=== Threads ===} */

/* Poll for work for up to RELEASE_POLL_NS (x->mu held on entry and on
 * return, dropped between looks). @return whether there is some */
static bool poll_for_release(strata__transfer_t *x) {
  x->polling = true;
  uint64_t until = strata__now_ns() + RELEASE_POLL_NS;
  bool found = false;
  while (!found && strata__now_ns() < until) {
    pthread_mutex_unlock(&x->mu);
    sched_yield();
    pthread_mutex_lock(&x->mu);
    found = x->nretry || x->stage_head || x->n || x->stop;
  }
  x->polling = false;
  return found;
}

static void *serve(void *arg) {
  strata_runtime_t *rt = arg;
  strata__transfer_t *x = &rt->xfer;
  pthread_mutex_lock(&x->mu);
  for (;;) {
    strata__task_t *t = take_first(&x->stage_head, &x->stage_tail);
    if (t) {
      pthread_mutex_unlock(&x->mu);
      stage(rt, t);
      pthread_mutex_lock(&x->mu);
      continue;
    }
    if ((t = take_any_retry(x))) {
      pthread_mutex_unlock(&x->mu);
      stage(rt, t);
      pthread_mutex_lock(&x->mu);
      continue;
    }
    if (x->n) {
      strata__prefetch_req_t req = x->ring[x->head];
      x->head = (x->head + 1) % x->cap;
      x->n--;
      pthread_mutex_unlock(&x->mu);
      strata__memory_prefetch(rt, req.buf, req.node);
      pthread_mutex_lock(&x->mu);
      continue;
    }
    if (x->stop)
      break;
    if (x->nwaiting && !x->polling &&
        strata__now_ns() - x->last_release_ns < RELEASE_RECENT_NS &&
        poll_for_release(x))
      continue;
    if (x->nwaiting) {
      struct timespec ts = strata__deadline_in(PARK_RETRY_NS);
      if (pthread_cond_timedwait(&x->cv, &x->mu, &ts))
        unpark(x);
    } else {
      pthread_cond_wait(&x->cv, &x->mu);
    }
  }
  pthread_mutex_unlock(&x->mu);
  return NULL;
}

static size_t device_nodes(const strata_runtime_t *rt) {
  size_t n = 0;
  for (size_t i = 0; i < rt->mem.nnodes; i++)
    n += rt->mem.nodes[i]->kind == STRATA__NODE_DEVICE;
  return n;
}

int strata__transfer_start(strata_runtime_t *rt, bool prefetch,
                           strata__staged_fn *staged) {
  strata__transfer_t *x = &rt->xfer;
  x->staged = staged;
  if (!rt->mem.active)
    return STRATA_OK;
  size_t want = STRATA_MIN(device_nodes(rt) + 1, (size_t)MAX_THREADS);
  x->ring = strata__alloc(&rt->alloc, RING_CAP * sizeof *x->ring);
  x->threads = strata__alloc(&rt->alloc, want * sizeof *x->threads);
  x->nodes = strata__alloc(&rt->alloc, rt->mem.nnodes * sizeof *x->nodes);
  if (!x->ring || !x->threads || !x->nodes) {
    strata__free(&rt->alloc, x->ring, RING_CAP * sizeof *x->ring);
    strata__free(&rt->alloc, x->threads, want * sizeof *x->threads);
    strata__free(&rt->alloc, x->nodes, rt->mem.nnodes * sizeof *x->nodes);
    x->ring = NULL;
    x->threads = NULL;
    x->nodes = NULL;
    return STRATA_ENOMEM;
  }
  x->nnodes = rt->mem.nnodes;
  for (size_t i = 0; i < x->nnodes; i++)
    x->nodes[i] = (strata__xnode_t){empty_list, empty_list, 0};
  x->cap = RING_CAP;
  x->cap_threads = want;
  x->prefetch = prefetch && device_nodes(rt) > 0;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_mutex_init(&x->mu, NULL);
  pthread_cond_init(&x->cv, &ca);
  pthread_condattr_destroy(&ca);
  x->ready = true;
  for (size_t i = 0; i < want; i++) {
    if (pthread_create(&x->threads[i], NULL, serve, rt)) {
      STRATA_LOG(&rt->log, STRATA_LOG_WARN, COMP,
                 "could not start transfer thread %zu of %zu%s", i + 1, want,
                 i ? "" : ": tasks stage their data when they become ready");
      break;
    }
    x->nthreads++;
  }
  return STRATA_OK;
}

void strata__transfer_stop(strata_runtime_t *rt) {
  strata__transfer_t *x = &rt->xfer;
  if (!x->ready)
    return;
  pthread_mutex_lock(&x->mu);
  x->stop = true;
  pthread_cond_broadcast(&x->cv);
  pthread_mutex_unlock(&x->mu);
  /* The threads serve what is queued before they leave, so every request
   * is settled; every task ended before, so none is staged or parked. */
  for (size_t i = 0; i < x->nthreads; i++)
    pthread_join(x->threads[i], NULL);
  strata__free(&rt->alloc, x->ring, x->cap * sizeof *x->ring);
  strata__free(&rt->alloc, x->threads, x->cap_threads * sizeof *x->threads);
  strata__free(&rt->alloc, x->nodes, x->nnodes * sizeof *x->nodes);
  pthread_cond_destroy(&x->cv);
  pthread_mutex_destroy(&x->mu);
  memset(x, 0, sizeof *x);
}

/* {=== Prefetch requests ===} */

/* Queue a request. @return false when the queue is full or stopping. */
static bool push(strata__transfer_t *x, strata__buffer_t *b, int node) {
  pthread_mutex_lock(&x->mu);
  bool ok = x->n < x->cap && !x->stop;
  if (ok) {
    x->ring[(x->head + x->n) % x->cap] = (strata__prefetch_req_t){b, node};
    x->n++;
    pthread_cond_signal(&x->cv);
  }
  pthread_mutex_unlock(&x->mu);
  return ok;
}

void strata__prefetch_buffer(strata_runtime_t *rt, strata__buffer_t *b,
                             int node) {
  strata__transfer_t *x = &rt->xfer;
  if (!x->prefetch || !x->nthreads ||
      rt->mem.nodes[node]->kind != STRATA__NODE_DEVICE)
    return;
  if (strata__memory_prefetch_wanted(rt, b, node) && !push(x, b, node))
    strata__memory_prefetch_cancel(rt, b);
}

void strata__prefetch_kept(strata_runtime_t *rt, strata__buffer_t *b,
                           int skip) {
  uint64_t keep = atomic_load_explicit(&b->keep, memory_order_relaxed);
  for (int n = 0; n < 64 && keep; n++)
    if ((keep >> n & 1) && n != skip)
      strata__prefetch_buffer(rt, b, n);
}
