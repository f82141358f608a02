/* SPDX-License-Identifier: MIT */
/* runtime/data/move.c: moving a replica's bytes from one node to another:
 * a direct backend copy (through copy.h), a memcpy between host-like
 * nodes, the staged hop through host memory when neither end can reach
 * the other, and spill files written and read; bytes, copies and
 * failures per link.
 *
 * Owns: the link counters (rt->mem.links; copy.c counts failed attempts
 * there too) and the spill node's used bytes. Locking: no lock is held
 * across a copy; strata__move_unlocked drops the buffer's mu for it, its
 * replicas marked busy instead. */
#include "config.h"

#include "memory_impl.h"

#include <string.h>

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

void strata__move_count(strata_runtime_t *rt, int src, int dst, size_t bytes) {
  count(rt, src, dst, bytes, true);
}

bool strata__move_is_direct(strata_runtime_t *rt, int dst, int src) {
  strata__mnode_t *dn = node_of(rt, dst), *sn = node_of(rt, src);
  return (host_like(dn) && host_like(sn)) ||
         (host_like(dn) && sn->kind == STRATA__NODE_DEVICE) ||
         (dn->kind == STRATA__NODE_DEVICE && host_like(sn)) ||
         strata__copy_direct(rt, dn, sn);
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
    rc = strata__move_between(rt, h, &stage, src, &from, n);
    if (rc == STRATA_OK)
      rc = strata__move_between(rt, dst, &to, h, &stage, n);
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

int strata__move_between(strata_runtime_t *rt, int dst, strata__replica_t *rd,
                         int src, strata__replica_t *rs, size_t size) {
  strata__mnode_t *dn = node_of(rt, dst), *sn = node_of(rt, src);
  int rc;
  if (rd->ptr && rd->ptr == rs->ptr && dn->kind != STRATA__NODE_SPILL &&
      sn->kind != STRATA__NODE_SPILL) {
    /* A shared managed buffer: the same memory at both ends (no bytes
     * cross a link: a prefetch at most). */
    return strata__copy_sync(rt, dn, rd->ptr, sn, rs->ptr, size);
  }
  if (strata__move_is_direct(rt, dst, src)) {
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

/* Copy b's replica on src into its replica on dst with b->mu dropped
 * meanwhile (held on entry and return): both are marked busy, so neither
 * is evicted, refilled or written under the copy. */
int strata__move_unlocked(strata_runtime_t *rt, strata__buffer_t *b, int dst,
                          int src) {
  strata__replica_t *rd = &b->rep[dst], *rs = &b->rep[src];
  rd->busy++;
  rs->busy++;
  pthread_mutex_unlock(&b->mu);
  int rc = strata__move_between(rt, dst, rd, src, rs, b->size);
  pthread_mutex_lock(&b->mu);
  rd->busy--;
  rs->busy--;
  pthread_cond_broadcast(&b->cv);
  return rc;
}
