/* SPDX-License-Identifier: MIT */
/* runtime/prefetch.c: the prefetch engine (see prefetch.h). The copies
 * themselves, and every check that makes one safe, are the memory
 * manager's (strata__memory_prefetch); this file only queues and serves
 * the requests. */
#include "config.h"

#include "runtime.h"

#define COMP "prefetch"

/* Queued requests at most; beyond, requests are dropped. */
#define RING_CAP 4096
/* Threads serving the queue at most: copies to different devices overlap,
 * and more would take cores from the workers. */
#define MAX_THREADS 2

static bool pop(strata__prefetcher_t *p, strata__prefetch_req_t *out) {
  pthread_mutex_lock(&p->mu);
  while (!p->n && !p->stop)
    pthread_cond_wait(&p->cv, &p->mu);
  bool got = p->n > 0;
  if (got) {
    *out = p->ring[p->head];
    p->head = (p->head + 1) % p->cap;
    p->n--;
  }
  pthread_mutex_unlock(&p->mu);
  return got;
}

static void *serve(void *arg) {
  strata_runtime_t *rt = arg;
  strata__prefetch_req_t req;
  while (pop(&rt->prefetcher, &req))
    strata__memory_prefetch(rt, req.buf, req.node);
  return NULL;
}

/* Queue a request. @return false when the queue is full or stopping. */
static bool push(strata__prefetcher_t *p, strata__buffer_t *b, int node) {
  pthread_mutex_lock(&p->mu);
  bool ok = p->n < p->cap && !p->stop;
  if (ok) {
    p->ring[(p->head + p->n) % p->cap] = (strata__prefetch_req_t){b, node};
    p->n++;
    pthread_cond_signal(&p->cv);
  }
  pthread_mutex_unlock(&p->mu);
  return ok;
}

static size_t device_nodes(const strata_runtime_t *rt) {
  size_t n = 0;
  for (size_t i = 0; i < rt->mem.nnodes; i++)
    n += rt->mem.nodes[i]->kind == STRATA__NODE_DEVICE;
  return n;
}

int strata__prefetch_start(strata_runtime_t *rt, bool enabled) {
  strata__prefetcher_t *p = &rt->prefetcher;
  size_t want = STRATA_MIN(device_nodes(rt), (size_t)MAX_THREADS);
  if (!enabled || !want)
    return STRATA_OK;
  p->ring = strata__alloc(&rt->alloc, RING_CAP * sizeof *p->ring);
  p->threads = strata__alloc(&rt->alloc, want * sizeof *p->threads);
  if (!p->ring || !p->threads) {
    strata__free(&rt->alloc, p->ring, RING_CAP * sizeof *p->ring);
    strata__free(&rt->alloc, p->threads, want * sizeof *p->threads);
    p->ring = NULL;
    p->threads = NULL;
    return STRATA_ENOMEM;
  }
  p->cap = RING_CAP;
  p->cap_threads = want;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  p->ready = true;
  for (size_t i = 0; i < want; i++) {
    if (pthread_create(&p->threads[i], NULL, serve, rt)) {
      STRATA_LOG(&rt->log, STRATA_LOG_WARN, COMP,
                 "could not start prefetch thread %zu of %zu: copies start "
                 "when a worker takes a task",
                 i + 1, want);
      break;
    }
    p->nthreads++;
  }
  return STRATA_OK;
}

void strata__prefetch_stop(strata_runtime_t *rt) {
  strata__prefetcher_t *p = &rt->prefetcher;
  if (!p->ready)
    return;
  pthread_mutex_lock(&p->mu);
  p->stop = true;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  /* The threads serve what is queued before they leave (pop), so every
   * request is settled; buffers were flushed before, which waited for
   * theirs anyway. */
  for (size_t i = 0; i < p->nthreads; i++)
    pthread_join(p->threads[i], NULL);
  strata__free(&rt->alloc, p->ring, p->cap * sizeof *p->ring);
  strata__free(&rt->alloc, p->threads, p->cap_threads * sizeof *p->threads);
  pthread_cond_destroy(&p->cv);
  pthread_mutex_destroy(&p->mu);
  memset(p, 0, sizeof *p);
}

void strata__prefetch_buffer(strata_runtime_t *rt, strata__buffer_t *b,
                             int node) {
  strata__prefetcher_t *p = &rt->prefetcher;
  if (!p->nthreads || rt->mem.nodes[node]->kind != STRATA__NODE_DEVICE)
    return;
  if (strata__memory_prefetch_wanted(rt, b, node) && !push(p, b, node))
    strata__memory_prefetch_cancel(rt, b);
}

void strata__prefetch_kept(strata_runtime_t *rt, strata__buffer_t *b,
                           int skip) {
  uint64_t keep = atomic_load_explicit(&b->keep, memory_order_relaxed);
  for (int n = 0; n < 64 && keep; n++)
    if ((keep >> n & 1) && n != skip)
      strata__prefetch_buffer(rt, b, n);
}

void strata__prefetch_task(strata_runtime_t *rt, strata__task_t *t) {
  strata__prefetcher_t *p = &rt->prefetcher;
  if (!p->nthreads)
    return;
  int node = rt->devices[t->device]->node;
  if (rt->mem.nodes[node]->kind != STRATA__NODE_DEVICE)
    return;
  for (size_t i = 0; i < t->naccess; i++) {
    if (!(strata__task_access_mode(t, i) & STRATA_R))
      continue;
    strata__buffer_t *b = t->access[i].buf;
    strata__prefetch_buffer(rt, b, node);
    /* The nodes the policy keeps it on get it back too (a write made
     * their copies stale). */
    strata__prefetch_kept(rt, b, node);
  }
}
