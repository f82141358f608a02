/* SPDX-License-Identifier: MIT */
/* runtime/data/memory.c: memory nodes, replicas, copies, eviction and tiers
 * (see memory.h for the model and the locking rules). */
#include "config.h"

#include "runtime.h"

#include "optlist.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define COMP "memory"

/* Freed device and pinned blocks kept for reuse (allocation calls on a
 * GPU are slow); beyond this many, blocks are given back. */
#define CACHE_MAX 256
/* How long a task waits for room before looking again (eviction can fail
 * transiently while another thread holds a victim). */
#define ROOM_WAIT_NS 1000000
/* Looks at a replica being copied before sleeping until the copy ends
 * (each some 64 pause instructions apart: about 200 microseconds). */
#define COPY_POLLS 100
/* An operation that needs the spill directory tries this many times when
 * writing or reading there fails, pausing 1, 4, 16 ms between tries (room
 * may free up, a device may recover); then it fails with the error. */
#define SPILL_TRIES 4
#define SPILL_PAUSE_NS 1000000

/* {=== Nodes ===} */

static strata__mnode_t *node_of(strata_runtime_t *rt, int i) {
  return rt->mem.nodes[i];
}

static bool host_like(const strata__mnode_t *n) {
  return n->kind == STRATA__NODE_HOST || n->kind == STRATA__NODE_PINNED;
}

static int add_node(strata_runtime_t *rt, strata__node_kind_t kind,
                    strata__device_t *dev, const char *name,
                    uint64_t capacity) {
  strata__mnode_t *n = strata__zalloc(&rt->alloc, sizeof *n);
  if (!n)
    return -1;
  n->index = (int)rt->mem.nnodes;
  n->kind = kind;
  n->dev = dev;
  n->capacity = capacity;
  strata__strlcpy(n->name, name, sizeof n->name);
  pthread_mutex_init(&n->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&n->freed, &ca);
  pthread_condattr_destroy(&ca);
  rt->mem.nodes[rt->mem.nnodes++] = n;
  return n->index;
}

/* Parse "pinned,host" into the list of tiers device evictions go to. */
static int parse_tiers(strata_runtime_t *rt, const char *list) {
  static const strata__optfmt_t fmt = {.option = "device_tiers",
                                       .kind = STRATA__OPT_LIST};
  strata__memory_t *m = &rt->mem;
  char err[256], q[64];
  m->ndevice_tiers = 0;
  if (strata__opt_check(&fmt, strata__opt_span(list), err, sizeof err)) {
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP, "%s", err);
    return STRATA_EINVAL;
  }
  strata__optitem_t it;
  for (size_t c = 0; strata__opt_next(&fmt, strata__opt_span(list), &c, &it);) {
    int node = strata__opt_is(it.key, "pinned")  ? m->pinned
               : strata__opt_is(it.key, "host")  ? m->host
               : strata__opt_is(it.key, "spill") ? m->spill
                                                 : -1;
    if (node < 0 || m->ndevice_tiers == 3) {
      STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
                 "device_tiers '%s': %s is not an available tier "
                 "(pinned needs pinned_bytes, spill needs spill_dir)",
                 list, strata__opt_quote(it.key, q, sizeof q));
      return STRATA_EINVAL;
    }
    m->device_tiers[m->ndevice_tiers++] = node;
  }
  return STRATA_OK;
}

int strata__memory_init(strata_runtime_t *rt,
                        const strata_runtime_opts_t *opts) {
  strata__memory_t *m = &rt->mem;
  size_t max = 3 + rt->ndevices;
  m->nodes = strata__zalloc(&rt->alloc, max * sizeof *m->nodes);
  if (!m->nodes)
    return STRATA_ENOMEM;
  m->pinned = m->spill = -1;
  strata__spill_init(&m->files);
  m->copy_retries = 3;
  m->eager_writeback = opts->eager_writeback;
  if ((m->host =
           add_node(rt, STRATA__NODE_HOST, NULL, "host", opts->host_bytes)) < 0)
    return STRATA_ENOMEM;
  if (opts->pinned_bytes &&
      (m->pinned = add_node(rt, STRATA__NODE_PINNED, NULL, "pinned host",
                            opts->pinned_bytes)) < 0)
    return STRATA_ENOMEM;
  if (opts->spill_dir) {
    int rc =
        strata__spill_open(&m->files, opts->spill_dir, &rt->alloc, &rt->log);
    if (rc)
      return rc;
    if ((m->spill = add_node(rt, STRATA__NODE_SPILL, NULL, "spill", 0)) < 0)
      return STRATA_ENOMEM;
  }
  for (size_t i = 0; i < rt->ndevices; i++) {
    strata__device_t *d = rt->devices[i];
    if (!d->desc.own_memory) {
      d->node = m->host;
      continue;
    }
    uint64_t cap = d->desc.memory_bytes;
    if (opts->device_bytes && (!cap || opts->device_bytes < cap))
      cap = opts->device_bytes;
    if ((d->node = add_node(rt, STRATA__NODE_DEVICE, d, d->desc.name, cap)) < 0)
      return STRATA_ENOMEM;
    m->nodes[d->node]->managed =
        strata__device_managed(rt, d, opts->managed_devices);
  }
  m->active = m->nnodes > 1 || opts->host_bytes;
  m->links =
      strata__zalloc(&rt->alloc, m->nnodes * m->nnodes * sizeof *m->links);
  if (!m->links)
    return STRATA_ENOMEM;
  return parse_tiers(rt, opts->device_tiers ? opts->device_tiers
                         : m->pinned >= 0   ? "pinned,host"
                                            : "host");
}

static void raw_free(strata_runtime_t *rt, strata__mnode_t *n, void *ptr,
                     size_t size);

void strata__memory_fini(strata_runtime_t *rt) {
  strata__memory_t *m = &rt->mem;
  for (size_t i = 0; i < m->nnodes; i++) {
    strata__mnode_t *n = m->nodes[i];
    for (size_t c = 0; c < n->ncache; c++)
      raw_free(rt, n, n->cache[c].ptr, n->cache[c].size);
    strata__free(&rt->alloc, n->cache, n->cap_cache * sizeof *n->cache);
    pthread_cond_destroy(&n->freed);
    pthread_mutex_destroy(&n->mu);
    strata__free(&rt->alloc, n, sizeof *n);
  }
  strata__free(&rt->alloc, m->links, m->nnodes * m->nnodes * sizeof *m->links);
  strata__free(&rt->alloc, m->nodes, (3 + rt->ndevices) * sizeof *m->nodes);
  strata__spill_fini(&m->files, &rt->alloc, &rt->log);
  memset(m, 0, sizeof *m);
}

/* {=== Raw memory of a node ===} */

/* Device nodes allocate from their backend (managed memory when the node
 * is managed); the pinned tier from the backend that provides pinned host
 * memory (staging.h); the others from the embedder's allocator. */
static int raw_alloc(strata_runtime_t *rt, strata__mnode_t *n, size_t size,
                     void **ptr) {
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

static void raw_free(strata_runtime_t *rt, strata__mnode_t *n, void *ptr,
                     size_t size) {
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

static bool fits(const strata__mnode_t *n, uint64_t need) {
  return !n->capacity || n->used + need <= n->capacity;
}

static bool has_cached(const strata__mnode_t *n, size_t size) {
  for (size_t i = 0; i < n->ncache; i++)
    if (n->cache[i].size == size)
      return true;
  return false;
}

/* Is there room for a block of `size` bytes: free capacity, or a cached
 * block of that size to reuse (n->mu held)? */
static bool has_room(const strata__mnode_t *n, size_t size) {
  return fits(n, size) || has_cached(n, size);
}

/* Give cached blocks back until `need` more bytes fit (n->mu held). With
 * `keep`, a block of exactly `need` bytes stays: it is the allocation,
 * taken next. */
static void shrink_cache(strata_runtime_t *rt, strata__mnode_t *n,
                         uint64_t need, bool keep) {
  for (size_t i = n->ncache; i-- > 0 && !fits(n, need);) {
    strata__block_t blk = n->cache[i];
    if (keep && blk.size == need)
      return;
    n->cache[i] = n->cache[--n->ncache];
    raw_free(rt, n, blk.ptr, blk.size);
    n->used -= blk.size;
    n->cached_bytes -= blk.size;
  }
}

/* A cached block of exactly `size` bytes, or NULL (n->mu held). */
static void *take_cached(strata__mnode_t *n, size_t size) {
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
static void put_cached(strata_runtime_t *rt, strata__mnode_t *n, void *ptr,
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
  raw_free(rt, n, ptr, size);
  n->used -= size;
}

/* {=== LRU (n->mu held) ===} */

static void lru_remove(strata__mnode_t *n, strata__replica_t *r) {
  if (!r->in_lru)
    return;
  if (r->lru_prev)
    r->lru_prev->lru_next = r->lru_next;
  else
    n->lru_head = r->lru_next;
  if (r->lru_next)
    r->lru_next->lru_prev = r->lru_prev;
  else
    n->lru_tail = r->lru_prev;
  r->lru_prev = r->lru_next = NULL;
  r->in_lru = false;
}

/* Most recently used at the head; `stale` replicas go to the tail, where
 * eviction looks first. */
static void lru_insert(strata__mnode_t *n, strata__replica_t *r, bool stale) {
  lru_remove(n, r);
  r->in_lru = true;
  if (stale) {
    r->lru_prev = n->lru_tail;
    r->lru_next = NULL;
    if (n->lru_tail)
      n->lru_tail->lru_next = r;
    else
      n->lru_head = r;
    n->lru_tail = r;
  } else {
    r->lru_next = n->lru_head;
    r->lru_prev = NULL;
    if (n->lru_head)
      n->lru_head->lru_prev = r;
    else
      n->lru_tail = r;
    n->lru_head = r;
  }
}

/* lru_insert under the node's lock. */
static void lru_put(strata__mnode_t *n, strata__replica_t *r, bool stale) {
  pthread_mutex_lock(&n->mu);
  lru_insert(n, r, stale);
  pthread_mutex_unlock(&n->mu);
}

/* {=== Copies ===} */

static void count(strata_runtime_t *rt, int src, int dst, size_t bytes,
                  bool ok) {
  strata__link_t *l = &rt->mem.links[src * (int)rt->mem.nnodes + dst];
  if (ok) {
    atomic_fetch_add(&l->bytes, bytes);
    atomic_fetch_add(&l->copies, 1);
  } else {
    atomic_fetch_add(&l->failures, 1);
  }
}

/* The spill node's used bytes: a file of `size` bytes came or went. */
static void spill_account(strata__mnode_t *n, size_t size, bool added) {
  pthread_mutex_lock(&n->mu);
  if (added)
    n->used += size;
  else
    n->used -= size;
  pthread_mutex_unlock(&n->mu);
}

/* Copy a replica's bytes between two nodes, staging through host memory
 * when the two cannot copy directly. Counts bytes per link. */
static int copy_between(strata_runtime_t *rt, int dst, strata__replica_t *rd,
                        int src, strata__replica_t *rs, size_t size);

/* Through host memory, when neither end can reach the other: the host
 * node stands for the middle hop in the link counts. Between two devices
 * the bytes go a staging buffer (pinned, from the pool) at a time; a
 * spill file is read or written whole (its checksum covers all of it), so
 * with a spill end a larger copy takes a block of its own. */
static int copy_staged(strata_runtime_t *rt, int dst, strata__replica_t *rd,
                       int src, strata__replica_t *rs, size_t size) {
  bool spill = node_of(rt, dst)->kind == STRATA__NODE_SPILL ||
               node_of(rt, src)->kind == STRATA__NODE_SPILL;
  bool pooled = !spill || size <= STRATA__STAGING_BYTES;
  int h = rt->mem.host, rc;
  strata__replica_t stage = {.buf = rs->buf};
  if (pooled ? strata__staging_take(rt, &stage.ptr)
             : !(stage.ptr = strata__alloc(&rt->alloc, size)))
    return STRATA_ENOMEM;
  size_t step = pooled ? STRATA__STAGING_BYTES : size, off = 0;
  do {
    size_t n = STRATA_MIN(step, size - off);
    strata__replica_t from = {.buf = rs->buf,
                              .ptr = spill ? rs->ptr : (char *)rs->ptr + off,
                              .checksum = rs->checksum};
    strata__replica_t to = {.buf = rd->buf,
                            .ptr = spill ? rd->ptr : (char *)rd->ptr + off,
                            .checksum = rd->checksum};
    rc = copy_between(rt, h, &stage, src, &from, n);
    if (rc == STRATA_OK)
      rc = copy_between(rt, dst, &to, h, &stage, n);
    if (spill) { /* a spill write gives the file's number and checksum */
      rd->ptr = to.ptr;
      rd->checksum = to.checksum;
    }
    off += n;
  } while (rc == STRATA_OK && off < size);
  if (pooled)
    strata__staging_give(rt, stage.ptr);
  else
    strata__free(&rt->alloc, stage.ptr, size);
  return rc;
}

static int copy_between(strata_runtime_t *rt, int dst, strata__replica_t *rd,
                        int src, strata__replica_t *rs, size_t size) {
  strata__mnode_t *dn = node_of(rt, dst), *sn = node_of(rt, src);
  int rc;
  bool direct = (host_like(dn) && host_like(sn)) ||
                (host_like(dn) && sn->kind == STRATA__NODE_DEVICE) ||
                (dn->kind == STRATA__NODE_DEVICE && host_like(sn)) ||
                strata__copy_direct(rt, dn, sn);
  if (direct) {
    if (host_like(dn) && host_like(sn)) {
      memcpy(rd->ptr, rs->ptr, size);
      rc = STRATA_OK;
    } else {
      rc = strata__copy_sync(rt, dn, rd->ptr, sn, rs->ptr, size);
    }
    if (rc == STRATA_OK)
      count(rt, src, dst, size, true);
    return rc;
  }
  if (dn->kind == STRATA__NODE_SPILL && host_like(sn)) {
    /* A spilled replica's ptr holds its file's number (it has no memory).
     * The write replaces any file it had, or leaves none on failure: the
     * node's used bytes follow whether a file is held. */
    uintptr_t id = (uintptr_t)rd->ptr;
    bool had = id != 0;
    rc = strata__spill_write(&rt->mem.files, &rt->log, &id, &rd->checksum,
                             rs->ptr, size);
    rd->ptr = (void *)id;
    if (had != (id != 0))
      spill_account(dn, size, id != 0);
    if (rc == STRATA_OK)
      count(rt, src, dst, size, true);
    return rc;
  }
  if (sn->kind == STRATA__NODE_SPILL && host_like(dn)) {
    rc = strata__spill_read(&rt->mem.files, &rt->log, (uintptr_t)rs->ptr,
                            rs->checksum, rd->ptr, size);
    if (rc == STRATA_OK)
      count(rt, src, dst, size, true);
    return rc;
  }
  return copy_staged(rt, dst, rd, src, rs, size);
}

/* {=== Making room ===} */

static bool fixed_host(const strata__buffer_t *b, int node,
                       const strata_runtime_t *rt) {
  return node == rt->mem.host && !b->owned;
}

/* The valid replica to copy from when making one valid on `dst`: a peer
 * device, then host memory, then any device, then the spill file. */
static int pick_source(strata_runtime_t *rt, const strata__buffer_t *b,
                       int dst) {
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

static bool other_valid(const strata_runtime_t *rt, const strata__buffer_t *b,
                        int node) {
  for (size_t i = 0; i < rt->mem.nnodes; i++)
    if ((int)i != node && b->rep[i].state != STRATA__INVALID)
      return true;
  return false;
}

int strata__memory_tier(strata_runtime_t *rt, const strata__buffer_t *b,
                        int node, bool overrule_keep) {
  strata__memory_t *m = &rt->mem;
  strata__mnode_t *n = node_of(rt, node);
  int told = rt->policy ? strata__policy_evict(rt, b, node) : -2;
  if (told >= 0 || (told == -1 && !overrule_keep))
    return told; /* the policy's tier, or -1: keep it here */
  if (told == -1 && !atomic_exchange(&m->keep_overruled, true))
    STRATA_LOG(&rt->log, STRATA_LOG_WARN, COMP,
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

static int alloc_on(strata_runtime_t *rt, strata__buffer_t *b, int node);
static void park_stale(strata_runtime_t *rt, strata__buffer_t *b, int node);

static void free_replica(strata_runtime_t *rt, strata__mnode_t *n,
                         strata__replica_t *r) {
  lru_remove(n, r);
  if (n->kind == STRATA__NODE_SPILL) {
    if (r->ptr) {
      strata__spill_remove(&rt->mem.files, (uintptr_t)r->ptr);
      n->used -= r->buf->size; /* n->mu held */
    }
  } else if (r->ptr) {
    put_cached(rt, n, r->ptr, r->buf->size);
  }
  r->ptr = NULL;
  r->state = STRATA__INVALID;
  r->prefetched = false;
}

/* Is rc a failure of the spill directory (which waiting for room does not
 * cure)? */
static bool spill_error(int rc) {
  return rc == STRATA_ENOSPC || rc == STRATA_EIO;
}

/* After a try that failed with rc: should the operation try again? When
 * it should, first pause (with no lock held: the caller dropped them),
 * longer each time: tries is the count of tries so far. */
static bool spill_retry(int rc, unsigned *tries) {
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
  free_replica(rt, n, r);
  atomic_fetch_add(&n->evictions, 1);
  return STRATA_OK;
}

/* Evict least recently used clean replicas until `size` more bytes fit on
 * n or, with `reuse`, a cached block of that size can be taken (n->mu
 * held). No copy and no policy call happen here. Victims in use, or whose
 * buffer is locked, are skipped. With `spare_kept`, replicas the policy
 * keeps here (its cache hook) are never taken (a prefetch's room);
 * without, they go last. @return 0; STRATA_EAGAIN */
static int make_room(strata_runtime_t *rt, strata__mnode_t *n, size_t size,
                     bool reuse, bool spare_kept) {
  shrink_cache(rt, n, size, reuse);
  for (int pass = 0; pass < (spare_kept ? 1 : 2); pass++) {
    strata__replica_t *r = n->lru_tail;
    while (!(reuse ? has_room(n, size) : fits(n, size)) && r) {
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
         * asked for, else given back by shrink_cache. */
        if (!spare && !r->pins && !r->busy && evict(rt, n, r) == STRATA_OK)
          shrink_cache(rt, n, size, reuse);
        pthread_mutex_unlock(&b->mu);
      }
      r = prev;
    }
  }
  return (reuse ? has_room(n, size) : fits(n, size)) ? STRATA_OK
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

/* Write back replica r (busy, picked by pick_dirty) from node n to
 * `dest`, then evict it when nobody took it meanwhile. No lock is held
 * during the copy. @return 0; STRATA_EAGAIN (no room at dest, or dest is
 * in use); copy and spill errors (the replica stays, the only copy) */
static int write_back(strata_runtime_t *rt, strata__mnode_t *n,
                      strata__replica_t *r, int dest) {
  strata__buffer_t *b = r->buf;
  strata__replica_t *rd = &b->rep[dest];
  pthread_mutex_lock(&b->mu);
  /* A task running there holds that memory (a write-only task writes into
   * it in place): writing the old data over it would corrupt its result.
   * Its release will supersede this copy anyway. */
  int rc = rd->pins || rd->busy ? STRATA_EAGAIN : alloc_on(rt, b, dest);
  if (rc == STRATA_EAGAIN && !rd->pins && !rd->busy) {
    /* dest is full of data that must be written further first (a tier
     * down: device, host, spill). */
    pthread_mutex_unlock(&b->mu);
    (void)strata__memory_clean(rt, dest, b->size);
    pthread_mutex_lock(&b->mu);
    rc = rd->pins || rd->busy ? STRATA_EAGAIN : alloc_on(rt, b, dest);
  }
  if (rc == STRATA_OK) {
    rd->busy++;
    pthread_mutex_unlock(&b->mu);
    rc = copy_between(rt, dest, rd, n->index, r, b->size);
    pthread_mutex_lock(&b->mu);
    rd->busy--;
  }
  r->busy--;
  if (rc == STRATA_OK) {
    rd->state = STRATA__SHARED;
    r->state = STRATA__SHARED;
    if (!fixed_host(b, dest, rt) && !rd->pins)
      lru_put(node_of(rt, dest), rd, false);
    pthread_mutex_lock(&n->mu);
    if (!r->pins && !r->busy) {
      free_replica(rt, n, r);
      atomic_fetch_add(&n->evictions, 1);
      atomic_fetch_add(&n->writebacks, 1);
      pthread_cond_broadcast(&n->freed);
    }
    pthread_mutex_unlock(&n->mu);
  } else if (!rd->pins && !rd->busy && rd->state == STRATA__INVALID) {
    park_stale(rt, b, dest);
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
    /* The policy decides with no runtime lock held (r is busy: stable). */
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
      made += r->buf->size;
      continue;
    }
    if (spill_error(rc) && !failed)
      failed = rc;
    kept++; /* it stays: try the next one */
  }
  return made ? (int)STRATA_OK : failed ? failed : STRATA_EAGAIN;
}

/* Give b memory on `node` if its replica there has none (b->mu held).
 * @return 0; STRATA_EAGAIN (no room now); STRATA_ENOMEM; STRATA_ENOSPC,
 *         STRATA_EIO (no room: spilling failed) */
static int alloc_on(strata_runtime_t *rt, strata__buffer_t *b, int node) {
  strata__replica_t *r = &b->rep[node];
  strata__mnode_t *n = node_of(rt, node);
  if (r->ptr || fixed_host(b, node, rt) || n->kind == STRATA__NODE_SPILL)
    return STRATA_OK;
  pthread_mutex_lock(&n->mu);
  void *p = take_cached(n, b->size);
  int rc = p ? STRATA_OK : make_room(rt, n, b->size, true, false);
  if (!p && rc == STRATA_OK && !(p = take_cached(n, b->size)) &&
      (rc = raw_alloc(rt, n, b->size, &p)) == STRATA_OK)
    n->used += b->size;
  if (rc == STRATA_OK) {
    r->ptr = p;
    /* Every allocated replica that no task pins is in its node's LRU,
     * stale until filled: memory allocated for a write-back or a hop
     * through host memory must stay evictable, or it holds the node's
     * room for good (a capped host node then starves every task). */
    if (!r->pins)
      lru_insert(n, r, true);
  }
  pthread_mutex_unlock(&n->mu);
  return rc;
}

/* Like alloc_on, for a prefetch: into free room, or room made by evicting
 * clean replicas (another valid copy exists, or stale) that no staged or
 * running task pins and that the policy does not keep here. A prefetch
 * never writes anything back, so it never evicts modified data, and never
 * takes data a staged task holds. @return 0; STRATA_EAGAIN */
static int alloc_in_free_room(strata_runtime_t *rt, strata__buffer_t *b,
                              int node) {
  strata__replica_t *r = &b->rep[node];
  strata__mnode_t *n = node_of(rt, node);
  if (r->ptr)
    return STRATA_OK;
  pthread_mutex_lock(&n->mu);
  void *p = take_cached(n, b->size);
  if (!p) {
    if (make_room(rt, n, b->size, true, true) == STRATA_OK &&
        !(p = take_cached(n, b->size)) &&
        raw_alloc(rt, n, b->size, &p) == STRATA_OK)
      n->used += b->size;
  }
  r->ptr = p;
  if (p && !r->pins)
    lru_insert(n, r, true);
  pthread_mutex_unlock(&n->mu);
  return p ? STRATA_OK : STRATA_EAGAIN;
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
      rc = make_room(rt, n, b->size, false, false);
      if (rc == STRATA_OK) {
        n->used += b->size;
        lru_insert(n, h, false);
      }
      pthread_mutex_unlock(&n->mu);
      if (rc == STRATA_EAGAIN) /* spill some, with no lock held */
        rc = strata__memory_clean(rt, rt->mem.host, b->size);
      else
        break;
      if (rc != STRATA_OK && !spill_retry(rc, &tries))
        break;
    }
    if (rc) {
      if (spill_error(rc))
        STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
                   "no room for %zu more bytes under the host memory cap of "
                   "%llu bytes: spilling other buffers failed: %s",
                   b->size, (unsigned long long)n->capacity,
                   strata_strerror(rc));
      else
        STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
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
static void wait_no_copy(strata_runtime_t *rt, strata__buffer_t *b) {
  for (;;) {
    bool busy = false;
    for (size_t i = 0; i < rt->mem.nnodes && !busy; i++)
      busy = b->rep[i].busy != 0;
    if (!busy)
      return;
    pthread_cond_wait(&b->cv, &b->mu);
  }
}

int strata__memory_buffer_flush(strata_runtime_t *rt, strata__buffer_t *b) {
  int rc = b->lost ? STRATA_ELOST : strata__memory_to_host(rt, b, false, false);
  pthread_mutex_lock(&b->mu);
  while (b->prefetches) /* queued requests still name b */
    pthread_cond_wait(&b->cv, &b->mu);
  wait_no_copy(rt, b);
  for (size_t i = 0; i < rt->mem.nnodes; i++) {
    if ((int)i == rt->mem.host)
      continue;
    strata__mnode_t *n = node_of(rt, (int)i);
    pthread_mutex_lock(&n->mu);
    free_replica(rt, n, &b->rep[i]);
    pthread_cond_broadcast(&n->freed);
    pthread_mutex_unlock(&n->mu);
  }
  pthread_mutex_unlock(&b->mu);
  return rc;
}

void strata__memory_buffer_fini(strata_runtime_t *rt, strata__buffer_t *b) {
  if (!b->rep)
    return;
  strata__replica_t *h = &b->rep[rt->mem.host];
  if (b->owned) {
    strata__mnode_t *n = node_of(rt, rt->mem.host);
    pthread_mutex_lock(&n->mu);
    lru_remove(n, h);
    if (h->ptr) {
      strata__free(&rt->alloc, h->ptr, b->size);
      n->used -= b->size;
    }
    pthread_mutex_unlock(&n->mu);
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
static void wait_for_copy(strata__buffer_t *b, const strata__replica_t *r) {
  for (unsigned i = 0; r->busy && i < COPY_POLLS; i++) {
    pthread_mutex_unlock(&b->mu);
    for (int k = 0; k < 64; k++)
      strata__cpu_relax();
    pthread_mutex_lock(&b->mu);
  }
  while (r->busy)
    pthread_cond_wait(&b->cv, &b->mu);
}

/* A replica whose fill failed keeps its memory as stale cache, where
 * eviction can take it back (b->mu held). */
static void park_stale(strata_runtime_t *rt, strata__buffer_t *b, int node) {
  strata__replica_t *r = &b->rep[node];
  if (!r->ptr || r->pins || fixed_host(b, node, rt))
    return;
  lru_put(node_of(rt, node), r, true);
}

/* Copy b's replica on src into its replica on dst with b->mu dropped
 * meanwhile (held on entry and return): both are marked busy, so neither
 * is evicted, refilled or written under the copy. */
static int copy_unlocked(strata_runtime_t *rt, strata__buffer_t *b, int dst,
                         int src) {
  strata__replica_t *rd = &b->rep[dst], *rs = &b->rep[src];
  rd->busy++;
  rs->busy++;
  pthread_mutex_unlock(&b->mu);
  int rc = copy_between(rt, dst, rd, src, rs, b->size);
  pthread_mutex_lock(&b->mu);
  rd->busy--;
  rs->busy--;
  pthread_cond_broadcast(&b->cv);
  return rc;
}

/* A copy between two cards that are not peers crosses host memory
 * anyway. When the buffer's host replica has its memory and nobody uses
 * it, land the data there (it becomes valid) rather than in a transient
 * block: the next card to read the buffer copies it once, not twice
 * through the first card's link again. (b->mu held.) */
static bool stage_in_host(strata_runtime_t *rt, const strata__buffer_t *b,
                          int node, int src) {
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
  int src = pick_source(rt, b, node);
  if (src >= 0 && stage_in_host(rt, b, node, src)) {
    r->busy++; /* ours while b->mu is dropped: not evicted, not refilled */
    int staged = fill(rt, b, rt->mem.host);
    r->busy--;
    if (staged == STRATA_OK)
      src = pick_source(rt, b, node); /* host, unless it changed meanwhile */
  }
  if (src < 0)
    return STRATA_ELOST;
  strata__replica_t *rs = &b->rep[src];
  int rc = copy_unlocked(rt, b, node, src);
  if (rc) {
    park_stale(rt, b, node);
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
static int make_valid(strata_runtime_t *rt, strata__buffer_t *b, int node,
                      strata_access_mode_t mode) {
  strata__replica_t *r = &b->rep[node];
  strata__mnode_t *n = node_of(rt, node);
  wait_for_copy(b, r);
  if (r->state != STRATA__INVALID) {
    atomic_fetch_add(&n->hits, 1);
    return STRATA_OK;
  }
  if ((mode & STRATA_R) && b->lost)
    return STRATA_ELOST;
  int rc = alloc_on(rt, b, node);
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
    lru_remove(n, r);
    pthread_mutex_unlock(&n->mu);
  }
}

static void unpin(strata_runtime_t *rt, strata__buffer_t *b, int node) {
  strata__replica_t *r = &b->rep[node];
  if (--r->pins || fixed_host(b, node, rt) || !r->ptr)
    return;
  strata__mnode_t *n = node_of(rt, node);
  pthread_mutex_lock(&n->mu);
  lru_insert(n, r, r->state == STRATA__INVALID);
  pthread_cond_broadcast(&n->freed);
  pthread_mutex_unlock(&n->mu);
}

/* A task (or the application) starts using b's replica on node: pinned,
 * and counted as a writer when it writes, so no prefetch copies from a
 * replica while it changes (b->mu held). */
static void hold(strata_runtime_t *rt, strata__buffer_t *b, int node,
                 strata_access_mode_t mode) {
  pin(rt, b, node);
  b->rep[node].prefetched = false;
  if (mode & STRATA_W)
    b->writers++;
}

static void unhold(strata_runtime_t *rt, strata__buffer_t *b, int node,
                   strata_access_mode_t mode) {
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
      free_replica(rt, n, r);
      pthread_mutex_unlock(&n->mu);
    } else if (r->in_lru) {
      lru_put(n, r, true);
    }
  }
}

/* Make b's replica on node its only valid copy, being written (b->mu
 * held): copies from it end first. */
static void make_sole(strata_runtime_t *rt, strata__buffer_t *b, int node) {
  wait_no_copy(rt, b);
  b->rep[node].state = STRATA__MODIFIED;
  invalidate_others(rt, b, node);
  b->lost = false;
}

uint64_t strata__memory_working_set(const strata__task_t *t) {
  uint64_t bytes = 0;
  for (size_t i = 0; i < t->naccess; i++)
    if (strata__task_access_mode(t, i))
      bytes += t->access[i].buf->size;
  return bytes;
}

bool strata__memory_fits(strata_runtime_t *rt, int d, uint64_t bytes) {
  strata__mnode_t *n = node_of(rt, rt->devices[d]->node);
  return !n->capacity || bytes <= n->capacity;
}

/* Admit a task's working set on node n, waiting while the tasks running
 * there hold too much of it. */
static void admit(strata__mnode_t *n, uint64_t ws) {
  if (!n->capacity)
    return;
  pthread_mutex_lock(&n->mu);
  while (n->reserved && n->reserved + ws > n->capacity)
    pthread_cond_wait(&n->freed, &n->mu);
  n->reserved += ws;
  pthread_mutex_unlock(&n->mu);
}

/* Admit without waiting. @return whether the working set was admitted */
static bool try_admit(strata__mnode_t *n, uint64_t ws) {
  if (!n->capacity)
    return true;
  pthread_mutex_lock(&n->mu);
  bool ok = !n->reserved || n->reserved + ws <= n->capacity;
  if (ok)
    n->reserved += ws;
  pthread_mutex_unlock(&n->mu);
  return ok;
}

static void unadmit(strata__mnode_t *n, uint64_t ws) {
  if (!n->capacity)
    return;
  pthread_mutex_lock(&n->mu);
  n->reserved -= ws;
  pthread_cond_broadcast(&n->freed);
  pthread_mutex_unlock(&n->mu);
}

static void wait_for_room(strata__mnode_t *n) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  ts.tv_nsec += ROOM_WAIT_NS;
  if (ts.tv_nsec >= 1000000000) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000;
  }
  pthread_mutex_lock(&n->mu);
  pthread_cond_timedwait(&n->freed, &n->mu, &ts);
  pthread_mutex_unlock(&n->mu);
}

/* Unpin the first `upto` distinct buffers of t on node. */
static void unpin_upto(strata_runtime_t *rt, strata__task_t *t, int node,
                       size_t upto) {
  for (size_t i = 0; i < upto; i++) {
    strata_access_mode_t mode = strata__task_access_mode(t, i);
    if (!mode)
      continue;
    strata__buffer_t *b = t->access[i].buf;
    pthread_mutex_lock(&b->mu);
    unhold(rt, b, node, mode);
    pthread_mutex_unlock(&b->mu);
  }
}

/* One pass over t's buffers. @return 0; STRATA_EAGAIN (no room: all was
 * undone); other errors (all was undone) */
static int acquire_pass(strata_runtime_t *rt, strata__task_t *t, int node) {
  for (size_t i = 0; i < t->naccess; i++) {
    strata_access_mode_t mode = strata__task_access_mode(t, i);
    if (!mode)
      continue;
    strata__buffer_t *b = t->access[i].buf;
    pthread_mutex_lock(&b->mu);
    int rc = make_valid(rt, b, node, mode);
    if (rc == STRATA_OK)
      hold(rt, b, node, mode);
    pthread_mutex_unlock(&b->mu);
    if (rc) {
      unpin_upto(rt, t, node, i);
      return rc;
    }
  }
  return STRATA_OK;
}

/* The kernel's pointers (sizes were set at submit), read under each
 * buffer's lock: a failed device's replicas are dropped concurrently. */
static void fill_ptrs(strata__task_t *t, int node) {
  for (size_t i = 0; i < t->naccess; i++) {
    strata__buffer_t *b = t->access[i].buf;
    pthread_mutex_lock(&b->mu);
    t->ptrs[i] = b->rep[node].ptr;
    pthread_mutex_unlock(&b->mu);
  }
}

/* Is b usable on `node` for `mode` with no copy and no allocation: valid
 * and not being copied (or, to be written only, holding memory)? */
static bool in_place(const strata_runtime_t *rt, const strata__buffer_t *b,
                     int node, strata_access_mode_t mode) {
  const strata__replica_t *r = &b->rep[node];
  if (r->busy)
    return false;
  if (r->state != STRATA__INVALID)
    return true;
  return !(mode & STRATA_R) && (r->ptr || fixed_host(b, node, rt));
}

/* acquire_pass, but only over buffers already in place. @return 0;
 * STRATA_EAGAIN (one needs a copy or room: all was undone) */
static int cached_pass(strata_runtime_t *rt, strata__task_t *t, int node) {
  for (size_t i = 0; i < t->naccess; i++) {
    strata_access_mode_t mode = strata__task_access_mode(t, i);
    if (!mode)
      continue;
    strata__buffer_t *b = t->access[i].buf;
    pthread_mutex_lock(&b->mu);
    bool ok = in_place(rt, b, node, mode) &&
              make_valid(rt, b, node, mode) == STRATA_OK;
    if (ok)
      hold(rt, b, node, mode);
    pthread_mutex_unlock(&b->mu);
    if (!ok) {
      unpin_upto(rt, t, node, i);
      return STRATA_EAGAIN;
    }
  }
  return STRATA_OK;
}

int strata__memory_try_acquire(strata_runtime_t *rt, strata__task_t *t, int d,
                               bool may_copy) {
  int node = rt->devices[d]->node;
  strata__mnode_t *n = node_of(rt, node);
  if (!try_admit(n, t->working_set))
    return STRATA_EAGAIN;
  int rc;
  unsigned tries = 0;
  for (;;) {
    rc = may_copy ? acquire_pass(rt, t, node) : cached_pass(rt, t, node);
    if (!may_copy)
      break;
    if (rc == STRATA_EAGAIN) {
      /* Write modified data elsewhere (no lock held), then try again;
       * nothing to write: the caller parks t. */
      int crc = strata__memory_clean(rt, node, t->working_set);
      if (crc == STRATA_OK)
        continue;
      if (crc == STRATA_EAGAIN)
        break;
      rc = crc; /* the spill directory fails: retried, then returned */
      if (!spill_retry(crc, &tries))
        break;
      continue;
    }
    if (!spill_retry(rc, &tries))
      break;
  }
  if (rc) {
    unadmit(n, t->working_set);
    return rc;
  }
  fill_ptrs(t, node);
  return STRATA_OK;
}

int strata__memory_acquire(strata_runtime_t *rt, strata__task_t *t, int d) {
  int node = rt->devices[d]->node;
  strata__mnode_t *n = node_of(rt, node);
  admit(n, t->working_set); /* computed at submit */
  int rc;
  unsigned tries = 0;
  for (;;) {
    rc = acquire_pass(rt, t, node);
    if (rc == STRATA_EAGAIN) {
      rc = strata__memory_clean(rt, node, t->working_set);
      if (rc == STRATA_EAGAIN)
        wait_for_room(n); /* running tasks hold the room: they will end */
      else if (rc && !spill_retry(rc, &tries))
        break;
    } else if (!spill_retry(rc, &tries)) {
      break;
    }
  }
  if (rc) {
    unadmit(n, t->working_set);
    return rc;
  }
  fill_ptrs(t, node);
  return STRATA_OK;
}

/* Eager write-back of what t wrote on `node`, in two steps so that a
 * failure changes nothing: every written replica is first copied into a
 * staging block of host memory, with every other replica left as it was
 * before t ran; only when all copies succeeded are the results committed
 * (host replicas updated, others invalidated). When one copy fails, the
 * written replicas on node are dropped instead: t's inputs are still valid
 * where they were, so t can run again elsewhere. These copies are not
 * evictions: they do not count as the node's writebacks.
 * @return 0; STRATA_ENOMEM (no staging block: the results stay on node as
 *         their only copy, as without eager write-back); STRATA_EDEVICE
 *         (a copy kept failing: nothing was committed) */
static int write_home(strata_runtime_t *rt, strata__task_t *t, int node) {
  int h = rt->mem.host, rc = STRATA_OK;
  void **stage = strata__zalloc(&rt->alloc, t->naccess * sizeof *stage);
  if (!stage)
    return STRATA_ENOMEM;
  for (size_t i = 0; i < t->naccess && rc == STRATA_OK; i++) {
    strata__buffer_t *b = t->access[i].buf;
    if (!(strata__task_access_mode(t, i) & STRATA_W))
      continue;
    strata__replica_t tmp = {.buf = b};
    if (!(tmp.ptr = stage[i] = strata__alloc(&rt->alloc, b->size))) {
      rc = STRATA_ENOMEM;
      break;
    }
    pthread_mutex_lock(&b->mu);
    strata__replica_t *r = &b->rep[node];
    r->busy++;
    pthread_mutex_unlock(&b->mu);
    rc = copy_between(rt, h, &tmp, node, r, b->size);
    pthread_mutex_lock(&b->mu);
    r->busy--;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
  }
  for (size_t i = 0; i < t->naccess; i++) {
    strata__buffer_t *b = t->access[i].buf;
    if (!(strata__task_access_mode(t, i) & STRATA_W))
      continue;
    pthread_mutex_lock(&b->mu);
    if (rc == STRATA_EDEVICE) {
      /* t's output is gone with the card; its inputs stay valid. */
      wait_no_copy(rt, b);
      if (b->rep[node].state != STRATA__INVALID && !other_valid(rt, b, node))
        b->lost = true; /* an earlier result kept there for lack of room */
      b->rep[node].state = STRATA__INVALID;
      park_stale(rt, b, node);
    } else {
      make_sole(rt, b, node);
      strata__replica_t *rh = &b->rep[h];
      if (rc == STRATA_OK && alloc_on(rt, b, h) == STRATA_OK) {
        memcpy(rh->ptr, stage[i], b->size);
        rh->state = b->rep[node].state = STRATA__SHARED;
        if (!fixed_host(b, h, rt) && !rh->pins)
          lru_put(node_of(rt, h), rh, false);
      }
    }
    pthread_mutex_unlock(&b->mu);
  }
  for (size_t i = 0; i < t->naccess; i++)
    if (stage[i])
      strata__free(&rt->alloc, stage[i], t->access[i].buf->size);
  strata__free(&rt->alloc, stage, t->naccess * sizeof *stage);
  return rc == STRATA_EDEVICE ? rc : STRATA_OK;
}

int strata__memory_release(strata_runtime_t *rt, strata__task_t *t, int d,
                           bool wrote) {
  int node = rt->devices[d]->node;
  bool eager = wrote && rt->mem.eager_writeback &&
               node_of(rt, node)->kind == STRATA__NODE_DEVICE;
  int status = eager ? write_home(rt, t, node) : STRATA_OK;
  for (size_t i = 0; i < t->naccess; i++) {
    strata_access_mode_t mode = strata__task_access_mode(t, i);
    if (!mode)
      continue;
    strata__buffer_t *b = t->access[i].buf;
    pthread_mutex_lock(&b->mu);
    if (wrote && !eager && (mode & STRATA_W))
      make_sole(rt, b, node);
    unhold(rt, b, node, mode);
    pthread_mutex_unlock(&b->mu);
  }
  unadmit(node_of(rt, node), t->working_set);
  strata__transfer_released(rt); /* tasks waiting for room may fit now */
  return status;
}

int strata__memory_to_host(strata_runtime_t *rt, strata__buffer_t *b,
                           bool will_write, bool pinned) {
  int h = rt->mem.host;
  pthread_mutex_lock(&b->mu);
  int rc;
  unsigned tries = 0;
  for (;;) {
    rc = make_valid(rt, b, h, STRATA_RW);
    if (rc != STRATA_EAGAIN && !spill_error(rc))
      break;
    pthread_mutex_unlock(&b->mu);
    if (rc == STRATA_EAGAIN &&
        (rc = strata__memory_clean(rt, h, b->size)) == STRATA_EAGAIN)
      wait_for_room(node_of(rt, h));
    bool again =
        rc == STRATA_EAGAIN || rc == STRATA_OK || spill_retry(rc, &tries);
    pthread_mutex_lock(&b->mu);
    if (!again)
      break;
  }
  if (rc == STRATA_OK && will_write)
    make_sole(rt, b, h);
  if (rc == STRATA_OK && pinned)
    hold(rt, b, h, will_write ? STRATA_W : STRATA_R);
  pthread_mutex_unlock(&b->mu);
  return rc;
}

void strata__memory_unpin_host(strata_runtime_t *rt, strata__buffer_t *b,
                               bool wrote) {
  pthread_mutex_lock(&b->mu);
  unhold(rt, b, rt->mem.host, wrote ? STRATA_W : STRATA_R);
  pthread_mutex_unlock(&b->mu);
}

void *strata__memory_host_ptr(strata__buffer_t *b, const strata_runtime_t *rt) {
  return b->rep[rt->mem.host].ptr;
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
      alloc_in_free_room(rt, b, node) == STRATA_OK) {
    int rc = fill(rt, b, node);
    if (rc == STRATA_OK && !r->pins)
      lru_put(n, r, false);
    if (rc == STRATA_OK) {
      r->prefetched = true;
      atomic_fetch_add(&n->prefetches, 1);
    } else
      STRATA_LOG(&rt->log, STRATA_LOG_DEBUG, COMP,
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
  wait_no_copy(c->rt, b);
  strata__replica_t *r = &b->rep[c->node];
  if (r->state != STRATA__INVALID && !other_valid(c->rt, b, c->node)) {
    b->lost = true;
    c->lost++;
  }
  pthread_mutex_lock(&n->mu);
  free_replica(c->rt, n, r);
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

/* {=== Public queries ===} */

int strata_memory_node_count(const strata_runtime_t *rt) {
  return rt ? (int)rt->mem.nnodes : STRATA_EINVAL;
}

int strata_memory_node_info(const strata_runtime_t *rt, int node,
                            strata_memory_node_info_t *out) {
  if (!rt || !out || out->struct_size <= sizeof(size_t))
    return STRATA_EINVAL;
  if (node < 0 || (size_t)node >= rt->mem.nnodes)
    return STRATA_ERANGE;
  strata__mnode_t *n = rt->mem.nodes[node];
  strata_memory_node_info_t info = {.struct_size = sizeof info};
  info.index = node;
  info.kind = (strata_node_kind_t)n->kind;
  info.device = n->dev ? n->dev->index : -1;
  memcpy(info.name, n->name, sizeof info.name);
  info.capacity = n->capacity;
  pthread_mutex_lock(&n->mu);
  info.used = n->used;
  info.cached = n->cached_bytes;
  pthread_mutex_unlock(&n->mu);
  info.evictions = atomic_load(&n->evictions);
  info.writebacks = atomic_load(&n->writebacks);
  info.hits = atomic_load(&n->hits);
  info.misses = atomic_load(&n->misses);
  info.prefetches = atomic_load(&n->prefetches);
  return strata__copy_out(out, &info, sizeof info);
}

int strata_link_stats(const strata_runtime_t *rt, int src, int dst,
                      strata_link_stats_t *out) {
  if (!rt || !out || out->struct_size <= sizeof(size_t))
    return STRATA_EINVAL;
  int n = (int)rt->mem.nnodes;
  if (src < 0 || src >= n || dst < 0 || dst >= n)
    return STRATA_ERANGE;
  const strata__link_t *l = &rt->mem.links[src * n + dst];
  strata_link_stats_t st = {.struct_size = sizeof st};
  st.bytes = atomic_load(&l->bytes);
  st.copies = atomic_load(&l->copies);
  st.failures = atomic_load(&l->failures);
  return strata__copy_out(out, &st, sizeof st);
}
