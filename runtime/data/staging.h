/* SPDX-License-Identifier: MIT */
/* runtime/data/staging.h: host memory from the backends. One backend provides
 * page-locked host memory for the whole runtime (the first, by name, with
 * host_alloc; else the first with host_register, over memory of the
 * embedder's allocator; else none, and plain memory stands in). The
 * pinned tier's blocks come from it, and so does a pool of fixed-size
 * staging buffers through which copies between two devices without a
 * direct path go, a chunk at a time: buffers are taken and given back,
 * never allocated per copy. Where pinned memory runs out or cannot be
 * registered (a locked-memory limit), a staging buffer is plain memory
 * instead (copies through it are slower, none fails for it; WARN once),
 * and the pinned tier is full (data falls to the next tier). */
#ifndef STRATA_STAGING_H
#define STRATA_STAGING_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strata_runtime;
struct strata_core;

/* Bytes of one staging buffer, and how many the pool may hold: enough
 * for the copies of a few threads at once, small next to a card. */
#define STRATA__STAGING_BYTES ((size_t)1 << 20)
#define STRATA__STAGING_MAX 8

typedef struct strata__staging {
  struct strata_core *provider; /* NULL: the embedder's allocator */
  bool registers;               /* provider pins with host_register */
  pthread_mutex_t mu;           /* the pool */
  pthread_cond_t given;         /* a buffer came back */
  void *free[STRATA__STAGING_MAX];
  unsigned nfree, nbuf;             /* free now; allocated in all */
  void *plain[STRATA__STAGING_MAX]; /* buffers that are not pinned */
  unsigned nplain;
  bool warned_plain;      /* the WARN about them was logged */
  bool ready;             /* mu and given are set up */
  _Atomic uint64_t takes; /* buffers taken, for the statistics */
} strata__staging_t;

/** Choose the provider of pinned memory among the loaded backends and set
 *  the pool up (empty: buffers are allocated on first use). Logged at
 *  INFO. @thread owner (creation, after the backends are loaded) */
void strata__staging_init(struct strata_runtime *rt);
/** Give the pool's buffers back. @thread owner (destruction, once no copy
 *  runs, while the backends are loaded) */
void strata__staging_fini(struct strata_runtime *rt);

/** Pinned host memory, from the provider.
 *  @return 0; STRATA_ENOMEM  @thread any */
int strata__hostmem_alloc(struct strata_runtime *rt, size_t size, void **ptr);
/** Give back a block strata__hostmem_alloc returned. @thread any */
void strata__hostmem_free(struct strata_runtime *rt, void *ptr, size_t size);

/** Take a staging buffer of STRATA__STAGING_BYTES, waiting for one to be
 *  given back when all STRATA__STAGING_MAX are taken. Hold it for one
 *  copy at a time (never two: the pool is small).
 *  @return 0; STRATA_ENOMEM (none could be allocated and none is out)
 *  @thread any  @blocks while every buffer is taken */
int strata__staging_take(struct strata_runtime *rt, void **buf);
/** @thread any */
void strata__staging_give(struct strata_runtime *rt, void *buf);

#endif /* STRATA_STAGING_H */
