/* SPDX-License-Identifier: MIT */
/* runtime/data/memory_impl.h: what the files of the memory manager share.
 * memory.h is the manager's face to other modules (and states the model
 * and the locking rules); this header is for its own files only:
 *   memory.c      nodes, init/fini, the working-set queries, public queries
 *   blockcache.c  raw memory of a node and its cache of freed blocks
 *   lru.c         each node's list of evictable replicas
 *   move.c        bytes between two nodes: direct, staged through host
 *                 memory, to and from spill files; link counts
 *   evict.c       eviction, making room, write-back, tiers
 *   coherence.c   replica states (MSI), filling a replica, buffers'
 *                 replica slots, prefetch, a failed device's replicas
 *   acquire.c     admitting and acquiring a task's data, release and
 *                 eager write-back, the application's host access and
 *                 flushing a buffer home (calls coherence.c, never the
 *                 other way)
 * Other modules use memory.h. */
#ifndef STRATA_MEMORY_IMPL_H
#define STRATA_MEMORY_IMPL_H

#include "runtime.h"

/* The component name of every message the manager logs. */
#define STRATA__MEMORY_COMP "memory"

/* {=== Small facts, inline ===} */

static inline strata__mnode_t *node_of(strata_runtime_t *rt, int i) {
  return rt->mem.nodes[i];
}

static inline bool host_like(const strata__mnode_t *n) {
  return n->kind == STRATA__NODE_HOST || n->kind == STRATA__NODE_PINNED;
}

/* Do `need` more bytes fit under n's capacity (n->mu held)? */
static inline bool fits(const strata__mnode_t *n, uint64_t need) {
  return !n->capacity || n->used + need <= n->capacity;
}

/* Registered host memory: the host replica of a buffer the embedder owns
 * is its memory, never allocated, freed or evicted by the runtime. */
static inline bool fixed_host(const strata__buffer_t *b, int node,
                              const strata_runtime_t *rt) {
  return node == rt->mem.host && !b->owned;
}

/** Does node n use a shared managed buffer in place (a device offering
 *  managed memory)? */
bool strata__memory_aliases_managed(const strata__mnode_t *n);

/* Is r, on node n, a shared managed buffer's memory itself (no block of
 * n's, never counted, evicted or freed there)? */
static inline bool replica_aliased(const strata__mnode_t *n,
                                   const strata__replica_t *r) {
  return r->buf->managed_by && n->kind == STRATA__NODE_DEVICE &&
         r->ptr == r->buf->ptr;
}

/* Is a replica of b other than the one on `node` valid (b->mu held)? */
static inline bool other_valid(const strata_runtime_t *rt,
                               const strata__buffer_t *b, int node) {
  for (size_t i = 0; i < rt->mem.nnodes; i++)
    if ((int)i != node && b->rep[i].state != STRATA__INVALID)
      return true;
  return false;
}

/* Is rc a failure of the spill directory (which waiting for room does not
 * cure)? */
static inline bool spill_error(int rc) {
  return rc == STRATA_ENOSPC || rc == STRATA_EIO;
}

/* {=== blockcache.c (n->mu held by the caller, unless said) ===} */

/** Allocate `size` bytes on node n, from its backend (device: managed
 *  memory when the node is managed), the pinned provider, or the
 *  embedder's allocator. Not counted in n->used: the caller counts it.
 *  @return 0; STRATA_ENOMEM or the backend's error  @thread any */
int strata__blockcache_raw_alloc(strata_runtime_t *rt, strata__mnode_t *n,
                                 size_t size, void **ptr);
/** Give back memory strata__blockcache_raw_alloc returned (NULL: none).
 *  @thread any */
void strata__blockcache_raw_free(strata_runtime_t *rt, strata__mnode_t *n,
                                 void *ptr, size_t size);
/** Free capacity for `size` bytes, or a cached block of that size? */
bool strata__blockcache_has_room(const strata__mnode_t *n, size_t size);
/** Give cached blocks back until `need` more bytes fit; with `keep`, a
 *  block of exactly `need` bytes stays (it is about to be taken). */
void strata__blockcache_shrink(strata_runtime_t *rt, strata__mnode_t *n,
                               uint64_t need, bool keep);
/** Give every cached block back (n->mu held). */
void strata__blockcache_drop(strata_runtime_t *rt, strata__mnode_t *n);
/** A cached block of exactly `size` bytes, taken from the cache (still
 *  counted in n->used), or NULL. */
void *strata__blockcache_take(strata__mnode_t *n, size_t size);
/** Keep a freed block for reuse, or give it back (a backend with its own
 *  pool, a full cache) and uncount it. */
void strata__blockcache_put(strata_runtime_t *rt, strata__mnode_t *n, void *ptr,
                            size_t size);
/** Give every cached block back and free the cache. @thread owner
 *  (teardown, no lock needed) */
void strata__blockcache_fini(strata_runtime_t *rt, strata__mnode_t *n);

/* {=== lru.c ===} */

/** Take r out of n's LRU, if it is there (n->mu held). */
void strata__lru_remove(strata__mnode_t *n, strata__replica_t *r);
/** Put r at the head of n's LRU (most recently used), or with `stale` at
 *  the tail, where eviction looks first (n->mu held). */
void strata__lru_insert(strata__mnode_t *n, strata__replica_t *r, bool stale);
/** strata__lru_insert, taking n->mu (b->mu of r's buffer may be held). */
void strata__lru_put(strata__mnode_t *n, strata__replica_t *r, bool stale);
/** A replica whose fill failed keeps its memory as stale cache, where
 *  eviction can take it back (b->mu held). */
void strata__lru_park_stale(strata_runtime_t *rt, strata__buffer_t *b,
                            int node);

/* {=== move.c ===} */

/** Copy `size` bytes of replica rs on node src into rd on node dst,
 *  through host memory (a pooled staging buffer, or a block of its own
 *  for a large spill file) when the two cannot copy directly; to and
 *  from the spill directory (rd->ptr and rd->checksum then name the file
 *  written). Counts bytes per link. No lock may be held: it blocks until
 *  the copy ended. @return 0; STRATA_EDEVICE; STRATA_ENOMEM; the spill
 *  errors (STRATA_ENOSPC, STRATA_EIO)  @thread any  @blocks yes */
int strata__move_between(strata_runtime_t *rt, int dst, strata__replica_t *rd,
                         int src, strata__replica_t *rs, size_t size);
/** Is the copy from node src to node dst one backend copy (or a memcpy
 *  between host-like nodes), with no hop and no spill file? */
bool strata__move_is_direct(strata_runtime_t *rt, int dst, int src);
/** Count a copy of `bytes` that ended well on the link src -> dst (for
 *  copies issued with strata__copy_issue directly, not through
 *  strata__move_between). @thread any */
void strata__move_count(strata_runtime_t *rt, int src, int dst, size_t bytes);
/** Copy b's replica on src into its replica on dst with b->mu dropped
 *  meanwhile (held on entry and return): both are marked busy, so neither
 *  is evicted, refilled or written under the copy.
 *  @return the errors of strata__move_between */
int strata__move_unlocked(strata_runtime_t *rt, strata__buffer_t *b, int dst,
                          int src);

/* {=== evict.c ===} */

/** Free replica r on node n: its memory to the block cache (or its spill
 *  file removed); it becomes invalid (n->mu and r's buffer mutex held). */
void strata__evict_free_replica(strata_runtime_t *rt, strata__mnode_t *n,
                                strata__replica_t *r);
/** After a try that failed with rc: should the operation try again? When
 *  it should, first pause (no lock held), longer each time; `tries`
 *  counts the tries so far. */
bool strata__evict_retry_spill(int rc, unsigned *tries);
/** Evict least recently used clean replicas until `size` more bytes fit
 *  (with `reuse`: or a cached block of that size exists), no copy and no
 *  policy call (n->mu held). With `spare_kept`, replicas the policy keeps
 *  and prefetched ones are spared. @return 0; STRATA_EAGAIN */
int strata__evict_make_room(strata_runtime_t *rt, strata__mnode_t *n,
                            size_t size, bool reuse, bool spare_kept);
/** Give b memory on `node` if its replica there has none (b->mu held).
 *  @return 0; STRATA_EAGAIN (no room now); STRATA_ENOMEM */
int strata__evict_alloc_on(strata_runtime_t *rt, strata__buffer_t *b, int node);
/** strata__evict_alloc_on for a prefetch: free room, or room made by
 *  evicting clean data nobody needs soon (b->mu held).
 *  @return 0; STRATA_EAGAIN */
int strata__evict_alloc_prefetch(strata_runtime_t *rt, strata__buffer_t *b,
                                 int node);

/* {=== coherence.c (b->mu held) ===} */

/** Wait until no copy touches any of b's replicas. */
void strata__coherence_wait_no_copy(strata_runtime_t *rt, strata__buffer_t *b);
/** Wait until no copy fills or reads replica r of b. */
void strata__coherence_wait_for_copy(strata__buffer_t *b,
                                     const strata__replica_t *r);
/** The valid replica to copy from when making one valid on `dst`, or -1. */
int strata__coherence_pick_source(strata_runtime_t *rt,
                                  const strata__buffer_t *b, int dst);
/** Should a fill of `node` from `src` first land in b's host replica? */
bool strata__coherence_stage_in_host(strata_runtime_t *rt,
                                     const strata__buffer_t *b, int node,
                                     int src);
/** Make b valid (for reading) or allocated (for writing only) on `node`;
 *  drops b->mu during a copy. @return 0; STRATA_EAGAIN; STRATA_ELOST;
 *  copy and spill errors */
int strata__coherence_make_valid(strata_runtime_t *rt, strata__buffer_t *b,
                                 int node, strata_access_mode_t mode);
/** A task (or the application) starts using b's replica on node: pinned,
 *  and counted as a writer when it writes. */
void strata__coherence_hold(strata_runtime_t *rt, strata__buffer_t *b, int node,
                            strata_access_mode_t mode);
/** Undo strata__coherence_hold. */
void strata__coherence_unhold(strata_runtime_t *rt, strata__buffer_t *b,
                              int node, strata_access_mode_t mode);
/** Make b's replica on node its only valid copy, being written: copies
 *  from it end first. */
void strata__coherence_make_sole(strata_runtime_t *rt, strata__buffer_t *b,
                                 int node);

#endif /* STRATA_MEMORY_IMPL_H */
