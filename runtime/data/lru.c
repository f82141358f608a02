/* SPDX-License-Identifier: MIT */
/* runtime/data/lru.c: each node's list of evictable replicas, most
 * recently used at the head; stale replicas (invalid, holding memory) go
 * to the tail, where eviction looks first. Every allocated replica that
 * no task pins is in its node's list, but for a shared managed buffer's
 * aliases, which hold none of the node's memory.
 *
 * Owns: a node's lru_head and lru_tail, a replica's lru links and in_lru.
 * Locking: the node's mu (taken by strata__lru_put and park_stale; held
 * by the callers of insert and remove). */
#include "config.h"

#include "memory_impl.h"

/* {=== LRU (n->mu held) ===} */

void strata__lru_remove(strata__mnode_t *n, strata__replica_t *r) {
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
void strata__lru_insert(strata__mnode_t *n, strata__replica_t *r, bool stale) {
  strata__lru_remove(n, r);
  /* A shared managed buffer's memory itself: nothing of n's to evict. */
  if (replica_aliased(n, r))
    return;
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

/* strata__lru_insert under the node's lock. */
void strata__lru_put(strata__mnode_t *n, strata__replica_t *r, bool stale) {
  pthread_mutex_lock(&n->mu);
  strata__lru_insert(n, r, stale);
  pthread_mutex_unlock(&n->mu);
}

/* A replica whose fill failed keeps its memory as stale cache, where
 * eviction can take it back (b->mu held). */
void strata__lru_park_stale(strata_runtime_t *rt, strata__buffer_t *b,
                            int node) {
  strata__replica_t *r = &b->rep[node];
  if (!r->ptr || r->pins || fixed_host(b, node, rt))
    return;
  strata__lru_put(node_of(rt, node), r, true);
}
