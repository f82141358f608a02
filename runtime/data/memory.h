/* SPDX-License-Identifier: MIT */
/* runtime/data/memory.h: memory nodes and buffer replicas. Every place data can
 * live is a memory node: host memory (the home of every buffer), an
 * optional pinned-host tier, an optional spill directory, and the memory
 * of each device that has its own. A buffer has one replica slot per node,
 * in one of three states (MSI): invalid, shared (valid, others may be too)
 * or modified (the only valid copy). Reads make a replica valid by copying
 * from the cheapest valid one; a write leaves its replica the only valid
 * one. When a node is full, the least recently used replicas that no
 * running task holds are evicted: dropped when another valid copy exists,
 * else first written to the next tier (strata__memory_tier), so a modified
 * copy is never lost.
 *
 * Locking: a buffer's replicas are guarded by the buffer's mutex; a node's
 * accounts and LRU list by the node's mutex. A thread may take a node's
 * mutex while holding a buffer's; it takes another buffer's mutex (an
 * eviction victim) only with trylock; and nodes are locked in tier order
 * (device, pinned, host, spill), the order write-backs go in. */
#ifndef STRATA_MEMORY_H
#define STRATA_MEMORY_H

#include <pthread.h>

#include "alloc.h"
#include "spill.h"

struct strata_runtime;
struct strata__buffer;
struct strata__task;
struct strata_device_handle;

typedef enum strata__node_kind {
  STRATA__NODE_DEVICE = 0, /* tier order: lower values evict to higher */
  STRATA__NODE_PINNED,
  STRATA__NODE_HOST,
  STRATA__NODE_SPILL
} strata__node_kind_t;

typedef enum strata__rstate {
  STRATA__INVALID = 0,
  STRATA__SHARED,
  STRATA__MODIFIED
} strata__rstate_t;

typedef struct strata__replica {
  struct strata__buffer *buf;
  void *ptr;             /* memory on the node (NULL: none); host: see below */
  uint64_t checksum;     /* spill node: of the file's content */
  _Atomic uint8_t state; /* strata__rstate_t; written under the buffer's
                            mu, read without it by policy views */
  uint16_t busy;         /* copies into or out of it in flight: a replica
                            can be the source of several at once */
  bool in_lru;
  bool prefetched; /* filled ahead of a task that has not used it yet:
                      another prefetch does not evict it */
  uint32_t pins;   /* running tasks using it: not evictable */
  struct strata__replica *lru_prev, *lru_next;
} strata__replica_t;

/* A cached free block of device or pinned memory. */
typedef struct strata__block {
  void *ptr;
  size_t size;
} strata__block_t;

typedef struct strata__mnode {
  int index;
  strata__node_kind_t kind;
  struct strata_device_handle *dev; /* DEVICE nodes: the device */
  char name[64];
  uint64_t capacity; /* bytes; 0: unlimited */
  /* DEVICE nodes: replicas are managed memory (managed_alloc), filled
   * from the host by the CPU and moved with managed_prefetch. */
  bool managed;

  pthread_mutex_t mu;
  pthread_cond_t freed;  /* memory was released or unpinned */
  _Atomic uint64_t used; /* replicas and cached blocks; written under mu,
                           read without it by policy views */
  uint64_t reserved;     /* admitted running tasks' working sets */
  strata__replica_t *lru_head, *lru_tail; /* unpinned, allocated */
  strata__block_t *cache;                 /* freed blocks for reuse */
  size_t ncache, cap_cache;
  uint64_t cached_bytes;

  _Atomic uint64_t evictions, writebacks, hits, misses, prefetches;
} strata__mnode_t;

/* Bytes and copies per (source, destination) node pair. */
typedef struct strata__link {
  _Atomic uint64_t bytes, copies, failures;
} strata__link_t;

typedef struct strata__memory {
  strata__mnode_t **nodes;
  size_t nnodes;
  int host, pinned, spill;    /* node indexes; -1: absent */
  strata__link_t *links;      /* nnodes * nnodes, [src * nnodes + dst] */
  strata__spill_t files;      /* the spill node's files (spill.h) */
  int device_tiers[3];        /* where device evictions go, in order */
  atomic_bool keep_overruled; /* said once: the evict hook kept too much */
  atomic_bool tier_refused;   /* said once: a tier refused memory */
  size_t ndevice_tiers;
  bool eager_writeback;
  /* Where the only valid copy of b should go when it must leave `node`:
   * a node index, -1 keep it here, -2 no opinion (the default tiers
   * decide). Set by the policy engine while it exists (it is the evict
   * hook); NULL: no advice. Memory asks, it does not know who answers. */
  int (*evict_advice)(struct strata_runtime *rt, const struct strata__buffer *b,
                      int node);
  /* Anything but host memory (or a cap on it): tasks must stage their
   * data. Off, tasks use the registered host memory directly. */
  bool active;
  unsigned copy_retries;
} strata__memory_t;

/* {=== What other modules read ===}
 * The structs above are the memory manager's (runtime/data/): other
 * folders read them only through these accessors, and pass &rt->mem. */

/** Whether tasks must stage their data (anything but uncapped host
 *  memory). Fixed at creation. @thread any */
static inline bool strata__memory_active(const strata__memory_t *m) {
  return m->active;
}
/** The number of memory nodes (fixed at creation). @thread any */
static inline size_t strata__memory_nnodes(const strata__memory_t *m) {
  return m->nnodes;
}
/** The index of the pinned, host or spill node, -1 when absent
 *  (STRATA__NODE_DEVICE: -1, a device's node is its `node`). @thread any */
static inline int strata__memory_tier_node(const strata__memory_t *m,
                                           strata__node_kind_t kind) {
  return kind == STRATA__NODE_PINNED  ? m->pinned
         : kind == STRATA__NODE_HOST  ? m->host
         : kind == STRATA__NODE_SPILL ? m->spill
                                      : -1;
}
/** Node i's facts, fixed at creation (i < strata__memory_nnodes).
 *  @thread any */
static inline strata__node_kind_t
strata__memory_node_kind(const strata__memory_t *m, size_t i) {
  return m->nodes[i]->kind;
}
static inline const char *strata__memory_node_name(const strata__memory_t *m,
                                                   size_t i) {
  return m->nodes[i]->name;
}
/** Bytes; 0: unlimited. */
static inline uint64_t strata__memory_node_capacity(const strata__memory_t *m,
                                                    size_t i) {
  return m->nodes[i]->capacity;
}
/** DEVICE nodes: the device; others: NULL. */
static inline struct strata_device_handle *
strata__memory_node_device(const strata__memory_t *m, size_t i) {
  return m->nodes[i]->dev;
}
/** Whether node i's replicas are managed memory. */
static inline bool strata__memory_node_managed(const strata__memory_t *m,
                                               size_t i) {
  return m->nodes[i]->managed;
}
/** Node i's counters, read without its lock (a hint). @thread any */
static inline uint64_t strata__memory_node_used(const strata__memory_t *m,
                                                size_t i) {
  return atomic_load_explicit(&m->nodes[i]->used, memory_order_relaxed);
}
static inline uint64_t strata__memory_node_evictions(const strata__memory_t *m,
                                                     size_t i) {
  return atomic_load_explicit(&m->nodes[i]->evictions, memory_order_relaxed);
}
/** Whether a replica (&b->rep[node]) holds valid data, read without the
 *  buffer's lock (a hint: it may change right after). @thread any */
static inline bool strata__replica_valid(const strata__replica_t *r) {
  return atomic_load_explicit(&r->state, memory_order_relaxed) !=
         STRATA__INVALID;
}
/** Install (or, with NULL, remove) the evict hook's advice: see
 *  evict_advice above. @thread owner (creation, destruction: no task runs) */
static inline void strata__memory_set_evict_advice(
    strata__memory_t *m,
    int (*advice)(struct strata_runtime *rt, const struct strata__buffer *b,
                  int node)) {
  m->evict_advice = advice;
}

/** Set up the host, pinned and spill nodes and one node per device with
 *  its own memory (devices must be registered). With a spill_dir, make
 *  the runtime's private directory there (mode 0700).
 *  @return 0; STRATA_ENOMEM; STRATA_EINVAL (bad tier list, or spill_dir
 *          is not a directory this process can make a private one in;
 *          logged); STRATA_ENOSPC, STRATA_EIO (the same, for lack of room
 *          or an I/O error) */
int strata__memory_init(struct strata_runtime *rt,
                        const strata_runtime_opts_t *opts);
/** Free the nodes (every buffer must be gone); remove the private spill
 *  directory with anything left in it, and log how many spill reads and
 *  writes failed, per cause. Tolerates a half-done strata__memory_init. */
void strata__memory_fini(struct strata_runtime *rt);

/** Create a buffer's replica slots: the host one points at `host`
 *  (registered memory, or memory the runtime allocated) and is valid.
 *  @return 0; STRATA_ENOMEM; STRATA_ENOSPC or STRATA_EIO (room under the
 *          host cap needed a spill that kept failing; logged) */
int strata__memory_buffer_init(struct strata_runtime *rt,
                               struct strata__buffer *b, void *host);
/** Drop every replica but the host one, after making the host one valid.
 *  The buffer must have no task left. @return 0; or the copy's error (the
 *  data could not be brought home; replicas are then freed anyway) */
int strata__memory_buffer_flush(struct strata_runtime *rt,
                                struct strata__buffer *b);
/** Free the replica slots (after flush). */
void strata__memory_buffer_fini(struct strata_runtime *rt,
                                struct strata__buffer *b);

/** The working set of a task: bytes of distinct buffers it accesses. */
/** Allocate `size` zeroed bytes of managed memory from the first working
 *  device that offers it, counted against host memory.
 *  @param[out] by  the device whose backend allocated it (for the free)
 *  @return 0; STRATA_ENOTSUP (no such device: logged); STRATA_ENOMEM
 *  @thread any */
int strata__memory_managed_alloc(struct strata_runtime *rt, size_t size,
                                 void **ptr, struct strata_device_handle **by);
/** Free what strata__memory_managed_alloc gave. @thread any */
void strata__memory_managed_free(struct strata_runtime *rt,
                                 struct strata_device_handle *by, void *ptr,
                                 size_t size);

/** The bytes of t's distinct buffers; *managed: those of them in shared
 *  managed buffers. @thread the submitter */
uint64_t strata__memory_working_set(const struct strata__task *t,
                                    uint64_t *managed);
/** The room t's data takes on memory node `node`: its working set, less
 *  its shared managed buffers where the node uses them in place. */
uint64_t strata__memory_task_room(const struct strata_runtime *rt,
                                  const struct strata__task *t, int node);
/** Can device `d`'s memory ever hold t's data? */
bool strata__memory_fits(struct strata_runtime *rt, int d,
                         const struct strata__task *t);

/** Make every buffer of t valid on the memory node of device d, pinned,
 *  and fill t's kernel pointers. Blocks while the node lacks room (and
 *  running tasks may free some); spill failures are retried a few times
 *  with pauses (some 20 ms in all), then returned; nothing is lost (a
 *  replica that could not be written elsewhere stays where it was).
 *  @return 0; STRATA_EDEVICE (copies to or from d keep failing);
 *          STRATA_EIO (a spilled copy cannot be read back or failed its
 *          checksum, or the spill directory fails writes); STRATA_ENOSPC
 *          (the spill directory is full, and room needed a spill);
 *          STRATA_ELOST (a buffer t reads had its only copy on a failed
 *          device); STRATA_ENOMEM
 *  @thread the worker that will run t */
int strata__memory_acquire(struct strata_runtime *rt, struct strata__task *t,
                           int d);
/** strata__memory_acquire without waiting: when d's node cannot admit
 *  t's working set now, or (with may_copy) a pass finds no room, or
 *  (without may_copy) a buffer is not already in place, everything is
 *  undone and STRATA_EAGAIN returned. With may_copy, copies run: the
 *  direct ones of a pass issued together on one fence (they overlap and
 *  may end in any order, on any thread), the calling thread waiting once
 *  for them; spill failures are retried as in strata__memory_acquire.
 *  @return 0; STRATA_EAGAIN; the errors of strata__memory_acquire
 *  @thread a transfer thread (may_copy), or any (without) */
int strata__memory_try_acquire(struct strata_runtime *rt,
                               struct strata__task *t, int d, bool may_copy);
/** After t ran on d: its written buffers become modified there (and
 *  invalid elsewhere), everything is unpinned. With eager write-back the
 *  written replicas are also copied home before this returns.
 *  @return 0; STRATA_EDEVICE (an eager write-back kept failing: the copy
 *          on d is the only one, and d should be declared failed)
 *  @thread the worker that ran t */
int strata__memory_release(struct strata_runtime *rt, struct strata__task *t,
                           int d, bool wrote);
/** Bring buffer b's host replica up to date. With `will_write`, other
 *  replicas become invalid; with `pin`, the host replica stays in memory
 *  (not spilled) until strata__memory_unpin_host, which takes the same
 *  will_write. Spill failures are retried as in strata__memory_acquire.
 *  @return 0; STRATA_EDEVICE; STRATA_EIO; STRATA_ENOSPC; STRATA_ELOST */
int strata__memory_to_host(struct strata_runtime *rt, struct strata__buffer *b,
                           bool will_write, bool pin);
void strata__memory_unpin_host(struct strata_runtime *rt,
                               struct strata__buffer *b, bool wrote);
/** Where b's host replica is now (NULL: spilled). */
void *strata__memory_host_ptr(struct strata__buffer *b,
                              const struct strata_runtime *rt);

/** Should b be prefetched to `node` (a device's)? When true, a request
 *  is counted on b (flush waits for it): the caller must pass b to
 *  strata__memory_prefetch exactly once. @thread any */
bool strata__memory_prefetch_wanted(struct strata_runtime *rt,
                                    struct strata__buffer *b, int node);
/** Settle a request counted by strata__memory_prefetch_wanted that will
 *  not be served. @thread any */
void strata__memory_prefetch_cancel(struct strata_runtime *rt,
                                    struct strata__buffer *b);
/** Make b valid on `node` ahead of the task that will read it there, if
 *  the node has free room (a prefetch evicts nothing), and settle the
 *  request counted by strata__memory_prefetch_wanted. Failures are only
 *  logged: the task's own acquire copies again and reports them.
 *  @thread a prefetch thread */
void strata__memory_prefetch(struct strata_runtime *rt,
                             struct strata__buffer *b, int node);

/** Make room on `node` where only a copy can: write the least recently
 *  used replicas there that are the only valid copy of their buffer to
 *  the tier the evict hook (or the default) names, then evict them, until
 *  `need` bytes went or nothing more can. No node or buffer lock is held
 *  across a copy or a policy call: the victim is marked busy instead. An
 *  evict hook that keeps every such replica is overruled after one round
 *  (logged). @return 0 (some room was made); STRATA_EAGAIN (none could
 *  be); STRATA_ENOSPC, STRATA_EIO (writing to the spill directory failed)
 *  @thread any, holding no runtime lock */
int strata__memory_clean(struct strata_runtime *rt, int node, uint64_t need);

/** Forget the replicas on a failed device's node: copies there are gone.
 *  @return the number of buffers whose only valid copy was there */
size_t strata__memory_device_lost(struct strata_runtime *rt, int d);

/** Where a replica evicted from `node` goes: the policy's evict hook
 *  decides when it has an opinion (its "keep" only without
 *  `overrule_keep`); else the next tier. -1: nowhere (it stays). The one
 *  routing decision for eviction. */
int strata__memory_tier(struct strata_runtime *rt,
                        const struct strata__buffer *b, int node,
                        bool overrule_keep);

#endif /* STRATA_MEMORY_H */
