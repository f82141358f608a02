/* SPDX-License-Identifier: MIT */
/* runtime/data/copy.h: the one door through which the core moves bytes with a
 * backend. Everything that copies to, from or between devices (staging,
 * prefetch, eviction, write-back) goes through strata__copy_issue, and
 * learns that a copy ended through a fence, so that the callers can issue
 * several copies and wait once, and the backend may complete them from
 * any of its threads. Retries and failure counts live here too. */
#ifndef STRATA_COPY_H
#define STRATA_COPY_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct strata_runtime;
struct strata__mnode;

/* Counts outstanding operations and keeps the first failure. Embedded by
 * its owner (a stack frame, a staging request); it must outlive every
 * operation it counts. */
typedef struct strata__fence {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  unsigned pending; /* operations added and not yet signalled */
  int status;       /* 0, or the first non-zero status signalled */
  /* Called (on the signalling thread, without mu) when pending drops to
   * zero; NULL: waiters use strata__fence_wait. */
  void (*done)(struct strata__fence *f, void *arg);
  void *arg;
} strata__fence_t;

/** Set up an empty fence. @return 0; STRATA_ENOMEM  @thread owner of f */
int strata__fence_init(strata__fence_t *f);
/** @thread owner of f, once nothing is pending */
void strata__fence_fini(strata__fence_t *f);
/** Count n more operations before they are issued. @thread any */
void strata__fence_add(strata__fence_t *f, unsigned n);
/** One counted operation ended with `status`. @thread any */
void strata__fence_signal(strata__fence_t *f, int status);
/** Wait until nothing is pending. @return the first failure, or 0
 *  @thread any but the ones that will signal it  @blocks yes */
int strata__fence_wait(strata__fence_t *f);

/** Can bytes move directly from node sn to node dn (both device nodes,
 *  of one backend or two), without going through host memory? Answers
 *  from the machine-wide peer matrix (peers.h). @thread any */
bool strata__copy_direct(const struct strata_runtime *rt,
                         const struct strata__mnode *dn,
                         const struct strata__mnode *sn);

/** Start copying `size` bytes between a device node and a host-memory
 *  node, or between two device nodes for which strata__copy_direct holds
 *  (made by the destination's backend, which is told a source of another
 *  backend is foreign: its bus id and pointer). Through the backend's
 *  copy_async when it has one, else its blocking copy on this thread. A
 *  copy into a managed device node from host memory is a memcpy followed
 *  by the backend's managed_prefetch. The caller has counted the copy on f
 *  (strata__fence_add); f is signalled exactly once, possibly before this
 *  returns and possibly on a backend thread, with 0, STRATA_EDEVICE (the
 *  backend failed every retry; each failure is logged and counted on the
 *  link) or STRATA_ENOMEM (no memory to describe the copy). dst and src
 *  must stay valid until then.
 *  @thread any  @blocks no longer than the backend takes to start it (or,
 *          for a blocking-only backend, to make it) */
void strata__copy_issue(struct strata_runtime *rt, struct strata__mnode *dn,
                        void *dst, struct strata__mnode *sn, const void *src,
                        size_t size, strata__fence_t *f);

/** The services' copy_done: the attempt `token` (a copy or a prefetch
 *  started by strata__copy_issue) ended; retried or signalled on its
 *  fence. @thread any (a backend's completion thread) */
void strata__copy_done(void *token, int status);

/** strata__copy_issue, waited for.
 *  @return 0; STRATA_EDEVICE; STRATA_ENOMEM
 *  @thread any  @blocks yes */
int strata__copy_sync(struct strata_runtime *rt, struct strata__mnode *dn,
                      void *dst, struct strata__mnode *sn, const void *src,
                      size_t size);

#endif /* STRATA_COPY_H */
