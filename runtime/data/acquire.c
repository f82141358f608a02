/* SPDX-License-Identifier: MIT */
/* runtime/data/acquire.c: a task's data on its device's node. Admission
 * (a node's reservation by staged and running tasks' working sets),
 * acquiring every buffer of a task (with or without copies, waiting or
 * not), release after the task ran (results become modified there, or
 * with eager write-back are committed home first), and the application's
 * access to a buffer's host replica, which also brings a buffer home when
 * it is unregistered (strata__memory_buffer_flush; coherence.c, below
 * this file, owns the replica slots it frees).
 *
 * Owns: a node's reserved bytes. Locking: buffers one at a time under
 * their mu; the node's mu for the reservation and waiting for room; no
 * lock across a copy. */
#include "config.h"

#include "memory_impl.h"

#include <string.h>
#include <time.h>

/* How long a task waits for room before looking again (eviction can fail
 * transiently while another thread holds a victim). */
#define ROOM_WAIT_NS 1000000

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
  struct timespec ts = strata__deadline_in(ROOM_WAIT_NS);
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
    strata__coherence_unhold(rt, b, node, mode);
    pthread_mutex_unlock(&b->mu);
  }
}

/* {=== Acquiring a task's buffers, its copies issued together ===} */

/* Copies of one pass in flight at once at most: beyond, the pass waits
 * for those before it issues more (a bound on what one task holds busy). */
#define BATCH_MAX 32

/* The copies a pass has issued and not yet settled, all counted on one
 * fence: the task's copies overlap each other, and the thread waits once
 * for all of them instead of once per buffer. */
typedef struct batch {
  strata__fence_t f;
  size_t n;
  struct {
    size_t i; /* index in t->access */
    int src;  /* the node copied from */
  } op[BATCH_MAX];
} batch_t;

/* Is buffer b's replica on `node` (b->mu held, no copy on it) filled by
 * one direct copy from another node, which a pass can issue without
 * waiting? Returns that node, or -1 when not (valid already, written
 * only, lost, a memcpy between host-like nodes, or its fill hops through
 * host memory or a spill file:
 * strata__coherence_make_valid then fills it as before). */
static int direct_source(strata_runtime_t *rt, const strata__buffer_t *b,
                         int node, strata_access_mode_t mode) {
  const strata__replica_t *r = &b->rep[node];
  if (r->state != STRATA__INVALID || !(mode & STRATA_R) || b->lost)
    return -1;
  int src = strata__coherence_pick_source(rt, b, node);
  /* Between two host-like nodes a fill is a memcpy: nothing to overlap. */
  if (src < 0 ||
      (host_like(node_of(rt, node)) && host_like(node_of(rt, src))) ||
      strata__coherence_stage_in_host(rt, b, node, src) ||
      !strata__move_is_direct(rt, node, src))
    return -1;
  return src;
}

/* Issue the copy filling b's allocated replica on `node` from `src`
 * (b->mu held on entry, dropped on return). Both replicas are marked
 * busy until batch_settle: neither is evicted, refilled or written
 * meanwhile, and nobody waits for the copy holding a lock. */
static void batch_issue(strata_runtime_t *rt, batch_t *q, size_t i,
                        strata__buffer_t *b, int node, int src) {
  strata__replica_t *rd = &b->rep[node], *rs = &b->rep[src];
  rd->busy++;
  rs->busy++;
  void *dst = rd->ptr;
  const void *from = rs->ptr;
  pthread_mutex_unlock(&b->mu);
  q->op[q->n].i = i;
  q->op[q->n].src = src;
  q->n++;
  strata__fence_add(&q->f, 1);
  strata__copy_issue(rt, node_of(rt, node), dst, node_of(rt, src), from,
                     b->size, &q->f);
}

/* Wait for the batch's copies, then settle each: with every copy (and the
 * pass so far, `ok`) good, its replica becomes shared and is held for t;
 * else it stays invalid, its memory stale cache (the fence keeps only
 * the first failure, so one failure drops the whole batch: the next
 * pass copies again). The batch's entries stay listed (for the undo).
 * @return 0; the first copy error */
static int batch_settle(strata_runtime_t *rt, strata__task_t *t, int node,
                        batch_t *q, bool ok) {
  int rc = q->n ? strata__fence_wait(&q->f) : STRATA_OK;
  strata__mnode_t *n = node_of(rt, node);
  for (size_t k = 0; k < q->n; k++) {
    size_t i = q->op[k].i;
    strata__buffer_t *b = t->access[i].buf;
    strata__replica_t *rd = &b->rep[node], *rs = &b->rep[q->op[k].src];
    pthread_mutex_lock(&b->mu);
    rd->busy--;
    rs->busy--;
    pthread_cond_broadcast(&b->cv);
    if (rc == STRATA_OK && ok) {
      rd->state = STRATA__SHARED;
      if (rs->state == STRATA__MODIFIED)
        rs->state = STRATA__SHARED;
      atomic_fetch_add(&n->misses, 1);
      strata__move_count(rt, q->op[k].src, node, b->size);
      strata__coherence_hold(rt, b, node, strata__task_access_mode(t, i));
    } else {
      strata__lru_park_stale(rt, b, node);
    }
    pthread_mutex_unlock(&b->mu);
  }
  return rc;
}

/* Is access i among the batch's (not held: settled as failed)? */
static bool in_batch(const batch_t *q, size_t i) {
  for (size_t k = 0; k < q->n; k++)
    if (q->op[k].i == i)
      return true;
  return false;
}

/* Undo a pass that failed at access `upto`: unhold what it held (every
 * distinct buffer before it but the failed batch's). */
static void undo_pass(strata_runtime_t *rt, strata__task_t *t, int node,
                      size_t upto, const batch_t *q) {
  for (size_t i = 0; i < upto; i++) {
    strata_access_mode_t mode = strata__task_access_mode(t, i);
    if (!mode || in_batch(q, i))
      continue;
    strata__buffer_t *b = t->access[i].buf;
    pthread_mutex_lock(&b->mu);
    strata__coherence_unhold(rt, b, node, mode);
    pthread_mutex_unlock(&b->mu);
  }
}

/* Make one buffer of t valid on node for the pass: held at once when no
 * copy is needed or its fill is not a direct copy (made here, waited
 * for), else its copy issued into the batch. @return 0; the errors of
 * strata__coherence_make_valid */
static int pass_one(strata_runtime_t *rt, strata__task_t *t, size_t i, int node,
                    batch_t *q) {
  strata_access_mode_t mode = strata__task_access_mode(t, i);
  strata__buffer_t *b = t->access[i].buf;
  pthread_mutex_lock(&b->mu);
  strata__coherence_wait_for_copy(b, &b->rep[node]);
  if (direct_source(rt, b, node, mode) >= 0 &&
      strata__evict_alloc_on(rt, b, node) == STRATA_OK) {
    /* alloc_on keeps b->mu: the source it was picked with still holds. */
    batch_issue(rt, q, i, b, node, direct_source(rt, b, node, mode));
    return STRATA_OK;
  }
  int rc = strata__coherence_make_valid(rt, b, node, mode);
  if (rc == STRATA_OK)
    strata__coherence_hold(rt, b, node, mode);
  pthread_mutex_unlock(&b->mu);
  return rc;
}

/* One pass over t's buffers. The direct copies it needs are issued
 * together (up to BATCH_MAX at once) and waited for once, so that they
 * overlap and may complete in any order, on any thread; fills that hop
 * through host memory or read a spill file are made one at a time as
 * before. @return 0; STRATA_EAGAIN (no room: all was undone); other
 * errors (all was undone) */
static int acquire_pass(strata_runtime_t *rt, strata__task_t *t, int node) {
  batch_t q;
  if (strata__fence_init(&q.f))
    return STRATA_ENOMEM;
  q.n = 0;
  int rc = STRATA_OK;
  bool pending = true; /* q holds copies not settled yet */
  size_t i;
  for (i = 0; i < t->naccess; i++) {
    if (!strata__task_access_mode(t, i))
      continue;
    if (q.n == BATCH_MAX) {
      if ((rc = batch_settle(rt, t, node, &q, true))) {
        pending = false;
        break;
      }
      q.n = 0;
    }
    if ((rc = pass_one(rt, t, i, node, &q)))
      break; /* access i was not held */
  }
  if (pending) {
    int copied = batch_settle(rt, t, node, &q, rc == STRATA_OK);
    if (rc == STRATA_OK)
      rc = copied;
  }
  if (rc) /* the batch's entries were settled as failed: not held */
    undo_pass(rt, t, node, i, &q);
  strata__fence_fini(&q.f);
  return rc;
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
              strata__coherence_make_valid(rt, b, node, mode) == STRATA_OK;
    if (ok)
      strata__coherence_hold(rt, b, node, mode);
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
  uint64_t room = strata__memory_task_room(rt, t, node);
  if (!try_admit(n, room))
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
      int crc = strata__memory_clean(rt, node, room);
      if (crc == STRATA_OK)
        continue;
      if (crc == STRATA_EAGAIN)
        break;
      rc = crc; /* the spill directory fails: retried, then returned */
      if (!strata__evict_retry_spill(crc, &tries))
        break;
      continue;
    }
    if (!strata__evict_retry_spill(rc, &tries))
      break;
  }
  if (rc) {
    unadmit(n, room);
    return rc;
  }
  fill_ptrs(t, node);
  return STRATA_OK;
}

int strata__memory_acquire(strata_runtime_t *rt, strata__task_t *t, int d) {
  int node = rt->devices[d]->node;
  strata__mnode_t *n = node_of(rt, node);
  uint64_t room = strata__memory_task_room(rt, t, node);
  admit(n, room);
  int rc;
  unsigned tries = 0;
  for (;;) {
    rc = acquire_pass(rt, t, node);
    if (rc == STRATA_EAGAIN) {
      rc = strata__memory_clean(rt, node, room);
      if (rc == STRATA_EAGAIN)
        wait_for_room(n); /* running tasks hold the room: they will end */
      else if (rc && !strata__evict_retry_spill(rc, &tries))
        break;
    } else if (!strata__evict_retry_spill(rc, &tries)) {
      break;
    }
  }
  if (rc) {
    unadmit(n, room);
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
    rc = strata__move_between(rt, h, &tmp, node, r, b->size);
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
      strata__coherence_wait_no_copy(rt, b);
      if (b->rep[node].state != STRATA__INVALID && !other_valid(rt, b, node))
        b->lost = true; /* an earlier result kept there for lack of room */
      b->rep[node].state = STRATA__INVALID;
      strata__lru_park_stale(rt, b, node);
    } else {
      strata__coherence_make_sole(rt, b, node);
      strata__replica_t *rh = &b->rep[h];
      if (rc == STRATA_OK && strata__evict_alloc_on(rt, b, h) == STRATA_OK) {
        memcpy(rh->ptr, stage[i], b->size);
        rh->state = b->rep[node].state = STRATA__SHARED;
        if (!fixed_host(b, h, rt) && !rh->pins)
          strata__lru_put(node_of(rt, h), rh, false);
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
      strata__coherence_make_sole(rt, b, node);
    strata__coherence_unhold(rt, b, node, mode);
    pthread_mutex_unlock(&b->mu);
  }
  unadmit(node_of(rt, node), strata__memory_task_room(rt, t, node));
  return status;
}

int strata__memory_to_host(strata_runtime_t *rt, strata__buffer_t *b,
                           bool will_write, bool pinned) {
  int h = rt->mem.host;
  pthread_mutex_lock(&b->mu);
  int rc;
  unsigned tries = 0;
  for (;;) {
    rc = strata__coherence_make_valid(rt, b, h, STRATA_RW);
    if (rc != STRATA_EAGAIN && !spill_error(rc))
      break;
    pthread_mutex_unlock(&b->mu);
    if (rc == STRATA_EAGAIN &&
        (rc = strata__memory_clean(rt, h, b->size)) == STRATA_EAGAIN)
      wait_for_room(node_of(rt, h));
    bool again = rc == STRATA_EAGAIN || rc == STRATA_OK ||
                 strata__evict_retry_spill(rc, &tries);
    pthread_mutex_lock(&b->mu);
    if (!again)
      break;
  }
  if (rc == STRATA_OK && will_write)
    strata__coherence_make_sole(rt, b, h);
  if (rc == STRATA_OK && pinned)
    strata__coherence_hold(rt, b, h, will_write ? STRATA_W : STRATA_R);
  pthread_mutex_unlock(&b->mu);
  return rc;
}

/* Unregistering: the latest data goes home (strata__memory_to_host, as for
 * the application's access), then every replica but the host's is freed
 * once no prefetch request or copy names b. */
int strata__memory_buffer_flush(strata_runtime_t *rt, strata__buffer_t *b) {
  int rc = b->lost ? STRATA_ELOST : strata__memory_to_host(rt, b, false, false);
  pthread_mutex_lock(&b->mu);
  while (b->prefetches) /* queued requests still name b */
    pthread_cond_wait(&b->cv, &b->mu);
  strata__coherence_wait_no_copy(rt, b);
  for (size_t i = 0; i < rt->mem.nnodes; i++) {
    if ((int)i == rt->mem.host)
      continue;
    strata__mnode_t *n = node_of(rt, (int)i);
    pthread_mutex_lock(&n->mu);
    strata__evict_free_replica(rt, n, &b->rep[i]);
    pthread_cond_broadcast(&n->freed);
    pthread_mutex_unlock(&n->mu);
  }
  pthread_mutex_unlock(&b->mu);
  return rc;
}

void strata__memory_unpin_host(strata_runtime_t *rt, strata__buffer_t *b,
                               bool wrote) {
  pthread_mutex_lock(&b->mu);
  strata__coherence_unhold(rt, b, rt->mem.host, wrote ? STRATA_W : STRATA_R);
  pthread_mutex_unlock(&b->mu);
}

void *strata__memory_host_ptr(strata__buffer_t *b, const strata_runtime_t *rt) {
  return b->rep[rt->mem.host].ptr;
}
