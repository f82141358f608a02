/* SPDX-License-Identifier: MIT */
/* runtime/data/blockcache.c: the raw memory of a node (its backend's, the
 * pinned provider's, or the embedder's allocator) and the cache of freed
 * device and pinned blocks kept for reuse, because allocation calls on a
 * GPU are slow. A backend that declares its own pool (memory_pool) gets
 * every block back at once: it caches better than we can.
 *
 * Owns: each node's cache, ncache, cap_cache and cached_bytes. Locking:
 * every function but the raw calls and fini runs with the node's mu held;
 * raw allocation may call a backend under that lock (as before: a block's
 * allocation is not a copy). */
#include "config.h"

#include "memory_impl.h"

/* Freed device and pinned blocks kept for reuse; beyond this many, blocks
 * are given back. */
#define CACHE_MAX 256

/* {=== Raw memory of a node ===} */

/* Device nodes allocate from their backend (managed memory when the node
 * is managed); the pinned tier from the backend that provides pinned host
 * memory (staging.h); the others from the embedder's allocator. */
int strata__blockcache_raw_alloc(strata_runtime_t *rt, strata__mnode_t *n,
                                 size_t size, void **ptr) {
  if (n->kind == STRATA__NODE_DEVICE) {
    const strata_backend_component_t *c = n->dev->backend->comp;
    void *st = n->dev->backend->state;
    return n->managed ? c->managed_alloc(st, n->dev->bindex, size, ptr)
                      : c->mem_alloc(st, n->dev->bindex, size, ptr);
  }
  if (n->kind == STRATA__NODE_PINNED)
    return strata__hostmem_alloc(rt, size, ptr);
  *ptr = strata__alloc(&rt->alloc, size);
  return *ptr ? STRATA_OK : STRATA_ENOMEM;
}

void strata__blockcache_raw_free(strata_runtime_t *rt, strata__mnode_t *n,
                                 void *ptr, size_t size) {
  if (!ptr)
    return;
  if (n->kind == STRATA__NODE_DEVICE) {
    const strata_backend_component_t *c = n->dev->backend->comp;
    void *st = n->dev->backend->state;
    if (n->managed)
      c->managed_free(st, n->dev->bindex, ptr, size);
    else
      c->mem_free(st, n->dev->bindex, ptr, size);
  } else if (n->kind == STRATA__NODE_PINNED) {
    strata__hostmem_free(rt, ptr, size);
  } else {
    strata__free(&rt->alloc, ptr, size);
  }
}

static bool has_cached(const strata__mnode_t *n, size_t size) {
  for (size_t i = 0; i < n->ncache; i++)
    if (n->cache[i].size == size)
      return true;
  return false;
}

/* Is there room for a block of `size` bytes: free capacity, or a cached
 * block of that size to reuse (n->mu held)? */
bool strata__blockcache_has_room(const strata__mnode_t *n, size_t size) {
  return fits(n, size) || has_cached(n, size);
}

/* Give cached blocks back until `need` more bytes fit (n->mu held). With
 * `keep`, a block of exactly `need` bytes stays: it is the allocation,
 * taken next. */
void strata__blockcache_shrink(strata_runtime_t *rt, strata__mnode_t *n,
                               uint64_t need, bool keep) {
  for (size_t i = n->ncache; i-- > 0 && !fits(n, need);) {
    strata__block_t blk = n->cache[i];
    if (keep && blk.size == need)
      return;
    n->cache[i] = n->cache[--n->ncache];
    strata__blockcache_raw_free(rt, n, blk.ptr, blk.size);
    n->used -= blk.size;
    n->cached_bytes -= blk.size;
  }
}

void strata__blockcache_drop(strata_runtime_t *rt, strata__mnode_t *n) {
  while (n->ncache) {
    strata__block_t blk = n->cache[--n->ncache];
    strata__blockcache_raw_free(rt, n, blk.ptr, blk.size);
    n->used -= blk.size;
    n->cached_bytes -= blk.size;
  }
}

/* A cached block of exactly `size` bytes, or NULL (n->mu held). */
void *strata__blockcache_take(strata__mnode_t *n, size_t size) {
  for (size_t i = n->ncache; i-- > 0;)
    if (n->cache[i].size == size) {
      void *p = n->cache[i].ptr;
      n->cache[i] = n->cache[--n->ncache];
      n->cached_bytes -= size;
      return p;
    }
  return NULL;
}

/* Keep a freed block for reuse, or give it back (n->mu held). */
void strata__blockcache_put(strata_runtime_t *rt, strata__mnode_t *n, void *ptr,
                            size_t size) {
  /* A backend with its own pool caches better than we can (stream-ordered
   * reuse): it gets every block back at once. */
  bool pooled = n->kind == STRATA__NODE_DEVICE && n->dev->desc.memory_pool;
  if (!pooled && n->ncache < CACHE_MAX &&
      strata__grow(&rt->alloc, (void **)&n->cache, &n->cap_cache, n->ncache + 1,
                   sizeof *n->cache) == STRATA_OK) {
    n->cache[n->ncache++] = (strata__block_t){ptr, size};
    n->cached_bytes += size;
    return;
  }
  strata__blockcache_raw_free(rt, n, ptr, size);
  n->used -= size;
}

void strata__blockcache_fini(strata_runtime_t *rt, strata__mnode_t *n) {
  for (size_t c = 0; c < n->ncache; c++)
    strata__blockcache_raw_free(rt, n, n->cache[c].ptr, n->cache[c].size);
  strata__free(&rt->alloc, n->cache, n->cap_cache * sizeof *n->cache);
  n->cache = NULL;
  n->ncache = n->cap_cache = 0;
}
