/* SPDX-License-Identifier: MIT */
/* runtime/data/evict.c: making room on a node. Clean replicas (another
 * valid copy exists, or stale) are evicted under the node's lock with no
 * copy; a replica that is the only valid copy is first written back to
 * the tier the policy's evict hook or the default tiers name
 * (strata__memory_tier), with no lock held (strata__memory_clean). Also
 * allocation on a node (for a task, or for a prefetch, which evicts only
 * clean data nobody needs soon) and the retry of spill failures.
 *
 * Owns: the routing decision of eviction, the evictions and writebacks
 * counters. Locking: make_room runs with the node's mu held and takes
 * victims' buffer mutexes only with trylock; write-back holds no lock
 * across the copy or the policy call (the victim is marked busy). */
#include "config.h"

#include "memory_impl.h"

#include <errno.h>
#include <time.h>

/* An operation that needs the spill directory tries this many times when
 * writing or reading there fails, pausing 1, 4, 16 ms between tries (room
 * may free up, a device may recover); then it fails with the error. */
#define SPILL_TRIES 4
#define SPILL_PAUSE_NS 1000000

int strata__memory_tier(strata_runtime_t *rt, const strata__buffer_t *b,
                        int node, bool overrule_keep) {
  strata__memory_t *m = &rt->mem;
  strata__mnode_t *n = node_of(rt, node);
  int told = m->evict_advice ? m->evict_advice(rt, b, node) : -2;
  if (told >= 0 || (told == -1 && !overrule_keep))
    return told; /* the policy's tier, or -1: keep it here */
  if (told == -1 && !atomic_exchange(&m->keep_overruled, true))
    STRATA_LOG(&rt->log, STRATA_LOG_WARN, STRATA__MEMORY_COMP,
               "%s is full and the policy's evict hook keeps every replica "
               "that could leave it: the default tiers decide for those "
               "(logged once)",
               n->name);
  if (n->kind == STRATA__NODE_DEVICE) {
    for (size_t i = 0; i < m->ndevice_tiers; i++) {
      strata__mnode_t *t = node_of(rt, m->device_tiers[i]);
      if (!t->capacity || b->size <= t->capacity)
        return t->index;
    }
    return m->host;
  }
  if (n->kind == STRATA__NODE_PINNED)
    return m->host;
  if (n->kind == STRATA__NODE_HOST && b->owned)
    return m->spill;
  return -1;
}

void strata__evict_free_replica(strata_runtime_t *rt, strata__mnode_t *n,
                                strata__replica_t *r) {
  strata__lru_remove(n, r);
  if (replica_aliased(n, r)) {
    /* The shared managed allocation: nothing of n's to give back. */
  } else if (n->kind == STRATA__NODE_SPILL) {
    if (r->ptr) {
      strata__spill_remove(&rt->mem.files, (uintptr_t)r->ptr);
      n->used -= r->buf->size; /* n->mu held */
    }
  } else if (r->ptr) {
    strata__blockcache_put(rt, n, r->ptr, r->buf->size);
  }
  r->ptr = NULL;
  r->state = STRATA__INVALID;
  r->prefetched = false;
}

/* After a try that failed with rc: should the operation try again? When
 * it should, first pause (with no lock held: the caller dropped them),
 * longer each time: tries is the count of tries so far. */
bool strata__evict_retry_spill(int rc, unsigned *tries) {
  if (!spill_error(rc) || ++*tries >= SPILL_TRIES)
    return false;
  uint64_t ns = (uint64_t)SPILL_PAUSE_NS << (2 * (*tries - 1));
  struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
  return true;
}

/* Evict replica r from node n (n->mu and r's buffer mutex held) when that
 * needs no copy: it is stale, or another valid copy exists. A replica

 * that is the only valid copy is left to strata__memory_clean, which
 * writes it elsewhere first with no lock held.
 * @return 0; STRATA_EAGAIN (it must be written back first) */
static int evict(strata_runtime_t *rt, strata__mnode_t *n,
                 strata__replica_t *r) {
  if (r->state != STRATA__INVALID && !other_valid(rt, r->buf, n->index))
    return STRATA_EAGAIN;
  strata__evict_free_replica(rt, n, r);
  atomic_fetch_add(&n->evictions, 1);
  return STRATA_OK;
}

/* Evict least recently used clean replicas until `size` more bytes fit on
 * n or, with `reuse`, a cached block of that size can be taken (n->mu
 * held). No copy and no policy call happen here. Victims in use, or whose
 * buffer is locked, are skipped. With `spare_kept`, replicas the policy
 * keeps here (its cache hook) are never taken (a prefetch's room);
 * without, they go last. @return 0; STRATA_EAGAIN */
int strata__evict_make_room(strata_runtime_t *rt, strata__mnode_t *n,
                            size_t size, bool reuse, bool spare_kept) {
  strata__blockcache_shrink(rt, n, size, reuse);
  for (int pass = 0; pass < (spare_kept ? 1 : 2); pass++) {
    strata__replica_t *r = n->lru_tail;
    while (!(reuse ? strata__blockcache_has_room(n, size) : fits(n, size)) &&
           r) {
      strata__replica_t *prev = r->lru_prev;
      strata__buffer_t *b = r->buf;
      bool kept =
          n->index < 64 &&
          (atomic_load_explicit(&b->keep, memory_order_relaxed) >> n->index) &
              1;
      if ((pass || !kept) && pthread_mutex_trylock(&b->mu) == 0) {
        /* A prefetch also spares what other prefetches brought for tasks
         * still to come (evicting it would only move it again). */
        bool spare = spare_kept && r->prefetched && r->state != STRATA__INVALID;
        /* The victim's block joins the cache: reused when it has the size
         * asked for, else given back by strata__blockcache_shrink. */
        if (!spare && !r->pins && !r->busy && evict(rt, n, r) == STRATA_OK)
          strata__blockcache_shrink(rt, n, size, reuse);
        pthread_mutex_unlock(&b->mu);
      }
      r = prev;
    }
  }
  return (reuse ? strata__blockcache_has_room(n, size) : fits(n, size))
             ? STRATA_OK
             : STRATA_EAGAIN;
}

/* {=== Writing back: making room where only copies can ===} */

/* Take the least recently used replica on n that is the only valid copy
 * of its buffer and that nobody uses, marking it busy (so that it is
 * neither written, evicted nor dropped while it is copied), skipping
 * `skip` of them. @return it, or NULL */
static strata__replica_t *pick_dirty(strata_runtime_t *rt, strata__mnode_t *n,
                                     unsigned skip) {
  strata__replica_t *found = NULL;
  pthread_mutex_lock(&n->mu);
  for (strata__replica_t *r = n->lru_tail; r && !found; r = r->lru_prev) {
    strata__buffer_t *b = r->buf;
    if (pthread_mutex_trylock(&b->mu))
      continue;
    if (!r->pins && !r->busy && r->state != STRATA__INVALID &&
        !other_valid(rt, b, n->index) && skip-- == 0) {
      r->busy++;
      found = r;
    }
    pthread_mutex_unlock(&b->mu);
  }
  pthread_mutex_unlock(&n->mu);
  return found;
}

/* The tier below `node` for b's data when `node` refuses memory it has
 * room for (pinned memory the backend cannot allocate or register): host
 * memory below the pinned tier, the spill directory below host memory for
 * buffers the runtime owns. @return it, or -1 */
static int lower_tier(strata_runtime_t *rt, const strata__buffer_t *b,
                      int node) {
  const strata__memory_t *m = &rt->mem;
  strata__node_kind_t kind = node_of(rt, node)->kind;
  if (kind == STRATA__NODE_PINNED)
    return m->host;
  if (kind == STRATA__NODE_HOST && b->owned)
    return m->spill;
  return -1;
}

/* Would writing to `node` write a shared managed buffer's memory that a
 * task uses through another of its aliases (b->mu held)? Host memory and
 * every aliasing device replica are the same bytes: old data written
 * there would land under a running task. */
static bool alias_in_use(strata_runtime_t *rt, const strata__buffer_t *b,
                         int node) {
  if (!b->managed_by || (node != rt->mem.host &&
                         !strata__memory_aliases_managed(node_of(rt, node))))
    return false;
  if (b->writers)
    return true;
  for (size_t i = 0; i < rt->mem.nnodes; i++) {
    const strata__replica_t *r = &b->rep[i];
    if ((int)i != node && r->ptr == b->ptr && (r->pins || r->busy))
      return true;
  }
  return false;
}

/* Memory for b's write-back on `*dest`, or on the tiers below it while
 * one refuses memory (STRATA_ENOMEM: waiting for room there would wait
 * forever); *dest is where memory was found (b->mu held). @return as
 * strata__evict_alloc_on, STRATA_EAGAIN also when dest is in use */
static int alloc_dest(strata_runtime_t *rt, strata__buffer_t *b, int *dest) {
  for (;;) {
    strata__replica_t *rd = &b->rep[*dest];
    int rc = rd->pins || rd->busy || alias_in_use(rt, b, *dest)
                 ? STRATA_EAGAIN
                 : strata__evict_alloc_on(rt, b, *dest);
    int lower = rc == STRATA_ENOMEM ? lower_tier(rt, b, *dest) : -1;
    if (lower < 0)
      return rc;
    if (!atomic_exchange(&rt->mem.tier_refused, true))
      STRATA_LOG(&rt->log, STRATA_LOG_WARN, STRATA__MEMORY_COMP,
                 "%s could not allocate %zu bytes it has room for: evicted "
                 "data goes to %s instead (logged once)",
                 node_of(rt, *dest)->name, b->size, node_of(rt, lower)->name);
    *dest = lower;
  }
}

/* Write back replica r (busy, picked by pick_dirty) from node n to
 * `dest`, then evict it when nobody took it meanwhile. No lock is held
 * during the copy. @return 0; STRATA_EAGAIN (no room at dest, or dest is
 * in use); copy and spill errors (the replica stays, the only copy) */
static int write_back(strata_runtime_t *rt, strata__mnode_t *n,
                      strata__replica_t *r, int dest) {
  strata__buffer_t *b = r->buf;
  pthread_mutex_lock(&b->mu);
  /* A task running there holds that memory (a write-only task writes into
   * it in place): writing the old data over it would corrupt its result.
   * Its release will supersede this copy anyway. */
  int rc = alloc_dest(rt, b, &dest);
  strata__replica_t *rd = &b->rep[dest];
  if (rc == STRATA_EAGAIN && !rd->pins && !rd->busy) {
    /* dest is full of data that must be written further first (a tier
     * down: device, host, spill). */
    pthread_mutex_unlock(&b->mu);
    (void)strata__memory_clean(rt, dest, b->size);
    pthread_mutex_lock(&b->mu);
    rc = alloc_dest(rt, b, &dest);
    rd = &b->rep[dest];
  }
  if (rc == STRATA_OK) {
    rd->busy++;
    pthread_mutex_unlock(&b->mu);
    rc = strata__move_between(rt, dest, rd, n->index, r, b->size);
    pthread_mutex_lock(&b->mu);
    rd->busy--;
  }
  r->busy--;
  if (rc == STRATA_OK) {
    rd->state = STRATA__SHARED;
    r->state = STRATA__SHARED;
    if (!fixed_host(b, dest, rt) && !rd->pins)
      strata__lru_put(node_of(rt, dest), rd, false);
    pthread_mutex_lock(&n->mu);
    if (!r->pins && !r->busy) {
      strata__evict_free_replica(rt, n, r);
      atomic_fetch_add(&n->evictions, 1);
      atomic_fetch_add(&n->writebacks, 1);
      pthread_cond_broadcast(&n->freed);
    }
    pthread_mutex_unlock(&n->mu);
  } else if (!rd->pins && !rd->busy && rd->state == STRATA__INVALID) {
    strata__lru_park_stale(rt, b, dest);
  }
  pthread_cond_broadcast(&b->cv);
  pthread_mutex_unlock(&b->mu);
  if (rc && !spill_error(rc))
    rc = STRATA_EAGAIN;
  return rc;
}

/* The most replicas one call of strata__memory_clean looks at: each costs
 * a policy call and maybe a copy. */
#define CLEAN_MAX 64

int strata__memory_clean(strata_runtime_t *rt, int node, uint64_t need) {
  strata__mnode_t *n = node_of(rt, node);
  uint64_t made = 0;
  unsigned kept = 0, looked = 0;
  int failed = STRATA_OK;
  bool overrule = false;
  while (made < need && looked++ < CLEAN_MAX) {
    strata__replica_t *r = pick_dirty(rt, n, kept);
    if (!r && kept && !overrule) {
      /* The evict hook kept every replica that could leave: a policy must
       * not stall work, so after one round the default tiers decide. */
      overrule = true;
      kept = 0;
      continue;
    }
    if (!r)
      break;
    /* The policy decides with no runtime lock held (r is busy: stable).
     * Once written back, r is no longer busy and its buffer may go at
     * any time: its size is read before. */
    size_t size = r->buf->size;
    int dest = strata__memory_tier(rt, r->buf, node, overrule);
    int rc = dest < 0 ? STRATA_EAGAIN : write_back(rt, n, r, dest);
    if (dest < 0) {
      strata__buffer_t *b = r->buf;
      pthread_mutex_lock(&b->mu);
      r->busy--;
      pthread_cond_broadcast(&b->cv);
      pthread_mutex_unlock(&b->mu);
      kept++;
      continue;
    }
    if (rc == STRATA_OK) {
      made += size;
      continue;
    }
    if (spill_error(rc) && !failed)
      failed = rc;
    kept++; /* it stays: try the next one */
  }
  return made ? (int)STRATA_OK : failed ? failed : STRATA_EAGAIN;
}

/* Allocate `size` bytes on n (n->mu held). A card can answer
 * STRATA_ENOMEM below the capacity the core counts (another process, the
 * driver's own use, fragmentation): then the node's cached blocks go back
 * to the backend and it tries once more. Counts the block in n->used. */
static int raw_alloc_making_room(strata_runtime_t *rt, strata__mnode_t *n,
                                 size_t size, void **p) {
  int rc = strata__blockcache_raw_alloc(rt, n, size, p);
  if (rc == STRATA_ENOMEM && n->kind == STRATA__NODE_DEVICE && n->ncache) {
    strata__blockcache_drop(rt, n);
    rc = strata__blockcache_raw_alloc(rt, n, size, p);
  }
  if (rc == STRATA_OK)
    n->used += size;
  return rc;
}

/* A shared managed buffer on a device that uses it in place: its replica
 * there is the allocation itself, outside the node's accounts and LRU
 * (b->mu held). @return whether r is now that */
static bool alias_managed(strata__buffer_t *b, strata__mnode_t *n,
                          strata__replica_t *r) {
  if (!b->managed_by || !strata__memory_aliases_managed(n))
    return false;
  r->ptr = b->ptr;
  return true;
}

/* Give b memory on `node` if its replica there has none (b->mu held).
 * @return 0; STRATA_EAGAIN (no room now); STRATA_ENOMEM; STRATA_ENOSPC,
 *         STRATA_EIO (no room: spilling failed) */
int strata__evict_alloc_on(strata_runtime_t *rt, strata__buffer_t *b,
                           int node) {
  strata__replica_t *r = &b->rep[node];
  strata__mnode_t *n = node_of(rt, node);
  if (r->ptr || fixed_host(b, node, rt) || n->kind == STRATA__NODE_SPILL)
    return STRATA_OK;
  if (alias_managed(b, n, r))
    return STRATA_OK;
  pthread_mutex_lock(&n->mu);
  void *p = strata__blockcache_take(n, b->size);
  int rc = p ? STRATA_OK : strata__evict_make_room(rt, n, b->size, true, false);
  if (!p && rc == STRATA_OK && !(p = strata__blockcache_take(n, b->size)))
    rc = raw_alloc_making_room(rt, n, b->size, &p);
  if (rc == STRATA_OK) {
    r->ptr = p;
    /* Every allocated replica that no task pins is in its node's LRU,
     * stale until filled: memory allocated for a write-back or a hop
     * through host memory must stay evictable, or it holds the node's
     * room for good (a capped host node then starves every task). */
    if (!r->pins)
      strata__lru_insert(n, r, true);
  }
  pthread_mutex_unlock(&n->mu);
  return rc;
}

/* Like strata__evict_alloc_on, for a prefetch: into free room, or room made by
 * evicting clean replicas (another valid copy exists, or stale) that no staged
 * or running task pins and that the policy does not keep here. A prefetch never
 * writes anything back, so it never evicts modified data, and never takes data
 * a staged task holds. @return 0; STRATA_EAGAIN */
int strata__evict_alloc_prefetch(strata_runtime_t *rt, strata__buffer_t *b,
                                 int node) {
  strata__replica_t *r = &b->rep[node];
  strata__mnode_t *n = node_of(rt, node);
  if (r->ptr || alias_managed(b, n, r))
    return STRATA_OK;
  pthread_mutex_lock(&n->mu);
  void *p = strata__blockcache_take(n, b->size);
  if (!p) {
    if (strata__evict_make_room(rt, n, b->size, true, true) == STRATA_OK &&
        !(p = strata__blockcache_take(n, b->size)) &&
        strata__blockcache_raw_alloc(rt, n, b->size, &p) == STRATA_OK)
      n->used += b->size;
  }
  r->ptr = p;
  if (p && !r->pins)
    strata__lru_insert(n, r, true);
  pthread_mutex_unlock(&n->mu);
  return p ? STRATA_OK : STRATA_EAGAIN;
}
