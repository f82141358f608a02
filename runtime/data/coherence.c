/* SPDX-License-Identifier: MIT */
/* runtime/data/coherence.c: the MSI states of a buffer's replicas. A read
 * makes a replica valid by filling it from the best valid one; a write
 * makes its replica the only valid one (make_sole). Also the replica
 * slots of a buffer (created, freed), holding a replica for
 * a task (pins and writers), prefetch, and forgetting a failed device's
 * replicas (marking buffers whose only copy was there lost).
 *
 * Owns: replica states, busy, pins, prefetched; a buffer's writers, lost
 * and prefetches. Locking: the buffer's mu guards all of these; a node's
 * mu is taken under it (LRU, cache); fills drop the buffer's mu during
 * the copy with both replicas marked busy. */
#include "config.h"

#include "memory_impl.h"

/* Looks at a replica being copied before sleeping until the copy ends
 * (each some 64 pause instructions apart: about 200 microseconds). */
#define COPY_POLLS 100

/* The valid replica to copy from when making one valid on `dst`: a peer
 * device, then host memory, then any device, then the spill file. */
int strata__coherence_pick_source(strata_runtime_t *rt,
                                  const strata__buffer_t *b, int dst) {
  int best = -1, best_rank = 99;
  strata__mnode_t *dn = node_of(rt, dst);
  for (size_t i = 0; i < rt->mem.nnodes; i++) {
    const strata__replica_t *r = &b->rep[i];
    if ((int)i == dst || r->state == STRATA__INVALID)
      continue;
    strata__mnode_t *n = node_of(rt, (int)i);
    int rank = n->kind == STRATA__NODE_PINNED   ? 1
               : n->kind == STRATA__NODE_HOST   ? 2
               : n->kind == STRATA__NODE_SPILL  ? 5
               : strata__copy_direct(rt, dn, n) ? 0
                                                : 3;
    if (rank < best_rank) {
      best = (int)i;
      best_rank = rank;
    }
  }
  return best;
}

/* {=== Buffers ===} */

int strata__memory_buffer_init(strata_runtime_t *rt, strata__buffer_t *b,
                               void *host) {
  b->rep = strata__zalloc(&rt->alloc, rt->mem.nnodes * sizeof *b->rep);
  if (!b->rep)
    return STRATA_ENOMEM;
  for (size_t i = 0; i < rt->mem.nnodes; i++)
    b->rep[i].buf = b;
  strata__replica_t *h = &b->rep[rt->mem.host];
  h->ptr = host;
  h->state = STRATA__MODIFIED;
  pthread_mutex_init(&b->mu, NULL);
  pthread_cond_init(&b->cv, NULL);
  if (b->owned) {
    /* Runtime-allocated memory counts against the host cap: older
     * buffers spill to make room. */
    strata__mnode_t *n = node_of(rt, rt->mem.host);
    int rc;
    unsigned tries = 0;
    for (;;) {
      pthread_mutex_lock(&n->mu);
      rc = strata__evict_make_room(rt, n, b->size, false, false);
      if (rc == STRATA_OK) {
        n->used += b->size;
        strata__lru_insert(n, h, false);
      }
      pthread_mutex_unlock(&n->mu);
      if (rc == STRATA_EAGAIN) /* spill some, with no lock held */
        rc = strata__memory_clean(rt, rt->mem.host, b->size);
      else
        break;
      if (rc != STRATA_OK && !strata__evict_retry_spill(rc, &tries))
        break;
    }
    if (rc) {
      if (spill_error(rc))
        STRATA_LOG(&rt->log, STRATA_LOG_ERROR, STRATA__MEMORY_COMP,
                   "no room for %zu more bytes under the host memory cap of "
                   "%llu bytes: spilling other buffers failed: %s",
                   b->size, (unsigned long long)n->capacity,
                   strata_strerror(rc));
      else
        STRATA_LOG(&rt->log, STRATA_LOG_ERROR, STRATA__MEMORY_COMP,
                   "no room for %zu more bytes under the host memory cap of "
                   "%llu bytes, and nothing can spill (spill_dir not set, or "
                   "every buffer is in use)",
                   b->size, (unsigned long long)n->capacity);
      strata__free(&rt->alloc, b->rep, rt->mem.nnodes * sizeof *b->rep);
      b->rep = NULL;
      pthread_cond_destroy(&b->cv);
      pthread_mutex_destroy(&b->mu);
      return spill_error(rc) ? rc : STRATA_ENOMEM;
    }
  }
  return STRATA_OK;
}

/* Wait (b->mu held) until no copy touches b's replicas. */
void strata__coherence_wait_no_copy(strata_runtime_t *rt, strata__buffer_t *b) {
  for (;;) {
    bool busy = false;
    for (size_t i = 0; i < rt->mem.nnodes && !busy; i++)
      busy = b->rep[i].busy != 0;
    if (!busy)
      return;
    pthread_cond_wait(&b->cv, &b->mu);
  }
}

void strata__memory_buffer_fini(strata_runtime_t *rt, strata__buffer_t *b) {
  if (!b->rep)
    return;
  strata__replica_t *h = &b->rep[rt->mem.host];
  if (b->owned) {
    strata__mnode_t *n = node_of(rt, rt->mem.host);
    pthread_mutex_lock(&n->mu);
    strata__lru_remove(n, h);
    if (h->ptr) {
      strata__free(&rt->alloc, h->ptr, b->size);
      n->used -= b->size;
    }
    pthread_mutex_unlock(&n->mu);
  } else if (b->managed_by) {
    strata__memory_managed_free(rt, b->managed_by, b->ptr, b->size);
  }
  strata__free(&rt->alloc, b->rep, rt->mem.nnodes * sizeof *b->rep);
  b->rep = NULL;
  pthread_cond_destroy(&b->cv);
  pthread_mutex_destroy(&b->mu);
}

/* {=== Making a replica valid ===} */

/* Wait (b->mu held) until no copy fills or reads r: typically a prefetch
 * that is about to end. Poll a little first: a thread blocked on a
 * condition variable takes far longer to wake (tens of microseconds on a
 * virtual machine) than a copy of a few hundred kilobytes lasts. */
void strata__coherence_wait_for_copy(strata__buffer_t *b,
                                     const strata__replica_t *r) {
  for (unsigned i = 0; r->busy && i < COPY_POLLS; i++) {
    pthread_mutex_unlock(&b->mu);
    for (int k = 0; k < 64; k++)
      strata__cpu_relax();
    pthread_mutex_lock(&b->mu);
  }
  while (r->busy)
    pthread_cond_wait(&b->cv, &b->mu);
}

/* A copy between two cards that are not peers crosses host memory
 * anyway. When the buffer's host replica has its memory and nobody uses
 * it, land the data there (it becomes valid) rather than in a transient
 * block: the next card to read the buffer copies it once, not twice
 * through the first card's link again. (b->mu held.) */
bool strata__coherence_stage_in_host(strata_runtime_t *rt,
                                     const strata__buffer_t *b, int node,
                                     int src) {
  const strata__mnode_t *dn = node_of(rt, node), *sn = node_of(rt, src);
  const strata__replica_t *rh = &b->rep[rt->mem.host];
  return dn->kind == STRATA__NODE_DEVICE && sn->kind == STRATA__NODE_DEVICE &&
         !strata__copy_direct(rt, dn, sn) && rh->ptr &&
         rh->state == STRATA__INVALID && !rh->busy && !rh->pins;
}

/* Copy b's best valid replica into its allocated, invalid replica on
 * `node`, which becomes shared. Called with b->mu held; drops it during
 * the copy. @return 0; STRATA_ELOST; copy errors */
static int fill(strata_runtime_t *rt, strata__buffer_t *b, int node) {
  strata__replica_t *r = &b->rep[node];
  int src = strata__coherence_pick_source(rt, b, node);
  if (src >= 0 && strata__coherence_stage_in_host(rt, b, node, src)) {
    r->busy++; /* ours while b->mu is dropped: not evicted, not refilled */
    int staged = fill(rt, b, rt->mem.host);
    r->busy--;
    if (staged == STRATA_OK)
      src = strata__coherence_pick_source(
          rt, b, node); /* host, unless it changed meanwhile */
  }
  if (src < 0)
    return STRATA_ELOST;
  strata__replica_t *rs = &b->rep[src];
  int rc = strata__move_unlocked(rt, b, node, src);
  if (rc) {
    strata__lru_park_stale(rt, b, node);
    return rc;
  }
  r->state = STRATA__SHARED;
  if (rs->state == STRATA__MODIFIED)
    rs->state = STRATA__SHARED;
  return STRATA_OK;
}

/* Make b valid (for reading) or allocated (for writing only) on `node`,
 * copying from the best valid replica. Called with b->mu held; drops it
 * during the copy. @return 0; STRATA_EAGAIN; STRATA_ELOST; copy errors */
int strata__coherence_make_valid(strata_runtime_t *rt, strata__buffer_t *b,
                                 int node, strata_access_mode_t mode) {
  strata__replica_t *r = &b->rep[node];
  strata__mnode_t *n = node_of(rt, node);
  strata__coherence_wait_for_copy(b, r);
  if (r->state != STRATA__INVALID) {
    atomic_fetch_add(&n->hits, 1);
    return STRATA_OK;
  }
  if ((mode & STRATA_R) && b->lost)
    return STRATA_ELOST;
  int rc = strata__evict_alloc_on(rt, b, node);
  if (rc || !(mode & STRATA_R))
    return rc;
  if ((rc = fill(rt, b, node)) == STRATA_OK)
    atomic_fetch_add(&n->misses, 1);
  return rc;
}

/* Registered host memory is never in the LRU (never evicted), but its
 * pins are counted too: a write-back must not land in memory a running
 * task is writing (see evict). */
static void pin(strata_runtime_t *rt, strata__buffer_t *b, int node) {
  (void)rt;
  strata__replica_t *r = &b->rep[node];
  if (r->pins++ == 0 && r->in_lru) {
    strata__mnode_t *n = node_of(rt, node);
    pthread_mutex_lock(&n->mu);
    strata__lru_remove(n, r);
    pthread_mutex_unlock(&n->mu);
  }
}

static void unpin(strata_runtime_t *rt, strata__buffer_t *b, int node) {
  strata__replica_t *r = &b->rep[node];
  if (--r->pins || fixed_host(b, node, rt) || !r->ptr)
    return;
  strata__mnode_t *n = node_of(rt, node);
  pthread_mutex_lock(&n->mu);
  strata__lru_insert(n, r, r->state == STRATA__INVALID);
  pthread_cond_broadcast(&n->freed);
  pthread_mutex_unlock(&n->mu);
}

/* A task (or the application) starts using b's replica on node: pinned,
 * and counted as a writer when it writes, so no prefetch copies from a
 * replica while it changes (b->mu held). */
void strata__coherence_hold(strata_runtime_t *rt, strata__buffer_t *b, int node,
                            strata_access_mode_t mode) {
  pin(rt, b, node);
  b->rep[node].prefetched = false;
  if (mode & STRATA_W)
    b->writers++;
}

void strata__coherence_unhold(strata_runtime_t *rt, strata__buffer_t *b,
                              int node, strata_access_mode_t mode) {
  unpin(rt, b, node);
  if (mode & STRATA_W)
    b->writers--;
}

/* Invalidate every replica of b but the one on `keep` (b->mu held); their
 * memory stays, as stale cache, until evicted or reused. */
static void invalidate_others(strata_runtime_t *rt, strata__buffer_t *b,
                              int keep) {
  for (size_t i = 0; i < rt->mem.nnodes; i++) {
    strata__replica_t *r = &b->rep[i];
    if ((int)i == keep || r->state == STRATA__INVALID)
      continue;
    r->state = STRATA__INVALID;
    strata__mnode_t *n = node_of(rt, (int)i);
    if (n->kind == STRATA__NODE_SPILL) {
      pthread_mutex_lock(&n->mu);
      strata__evict_free_replica(rt, n, r);
      pthread_mutex_unlock(&n->mu);
    } else if (r->in_lru) {
      strata__lru_put(n, r, true);
    }
  }
}

/* Make b's replica on node its only valid copy, being written (b->mu
 * held): copies from it end first. */
void strata__coherence_make_sole(strata_runtime_t *rt, strata__buffer_t *b,
                                 int node) {
  strata__coherence_wait_no_copy(rt, b);
  b->rep[node].state = STRATA__MODIFIED;
  invalidate_others(rt, b, node);
  b->lost = false;
}

/* {=== Prefetch ===} */

bool strata__memory_prefetch_wanted(strata_runtime_t *rt, strata__buffer_t *b,
                                    int node) {
  const strata__replica_t *r = &b->rep[node];
  pthread_mutex_lock(&b->mu);
  bool wanted = r->state == STRATA__INVALID && !r->busy && !r->pins &&
                !b->lost && b->prefetches < UINT32_MAX;
  if (wanted)
    b->prefetches++;
  pthread_mutex_unlock(&b->mu);
  return wanted;
}

void strata__memory_prefetch_cancel(strata_runtime_t *rt, strata__buffer_t *b) {
  (void)rt;
  pthread_mutex_lock(&b->mu);
  b->prefetches--;
  pthread_cond_broadcast(&b->cv);
  pthread_mutex_unlock(&b->mu);
}

void strata__memory_prefetch(strata_runtime_t *rt, strata__buffer_t *b,
                             int node) {
  strata__replica_t *r = &b->rep[node];
  strata__mnode_t *n = node_of(rt, node);
  pthread_mutex_lock(&b->mu);
  /* Skip a replica that became valid, is being filled, or is held by a
   * running task (a write-only task may be writing into it); a buffer that
   * a task or the application is writing (the copy would be torn, and
   * superseded); and a device that failed. */
  if (r->state == STRATA__INVALID && !r->busy && !r->pins && !b->lost &&
      !b->writers && !atomic_load(&n->dev->failed) &&
      strata__evict_alloc_prefetch(rt, b, node) == STRATA_OK) {
    int rc = fill(rt, b, node);
    if (rc == STRATA_OK && !r->pins)
      strata__lru_put(n, r, false);
    if (rc == STRATA_OK) {
      r->prefetched = true;
      atomic_fetch_add(&n->prefetches, 1);
    } else
      STRATA_LOG(&rt->log, STRATA_LOG_DEBUG, STRATA__MEMORY_COMP,
                 "prefetch of %zu bytes to %s failed: %s", b->size, n->name,
                 strata_strerror(rc));
  }
  b->prefetches--;
  pthread_cond_broadcast(&b->cv);
  pthread_mutex_unlock(&b->mu);
}

/* {=== A failed device ===} */

typedef struct lost_ctx {
  strata_runtime_t *rt;
  int node;
  size_t lost;
} lost_ctx_t;

static void forget_on_node(uint64_t id, void *obj, void *ud) {
  (void)id;
  lost_ctx_t *c = ud;
  strata__buffer_t *b = obj;
  strata__mnode_t *n = node_of(c->rt, c->node);
  pthread_mutex_lock(&b->mu);
  strata__coherence_wait_no_copy(c->rt, b);
  strata__replica_t *r = &b->rep[c->node];
  if (r->state != STRATA__INVALID && !other_valid(c->rt, b, c->node)) {
    b->lost = true;
    c->lost++;
  }
  pthread_mutex_lock(&n->mu);
  strata__evict_free_replica(c->rt, n, r);
  pthread_mutex_unlock(&n->mu);
  pthread_mutex_unlock(&b->mu);
}

size_t strata__memory_device_lost(strata_runtime_t *rt, int d) {
  lost_ctx_t c = {rt, rt->devices[d]->node, 0};
  if (node_of(rt, c.node)->kind != STRATA__NODE_DEVICE)
    return 0;
  strata__htable_foreach(&rt->buffers, forget_on_node, &c);
  return c.lost;
}
