/* SPDX-License-Identifier: MIT */
/* runtime/data.h: registered buffers. Besides address and size, a buffer
 * carries the access history that dependencies are derived from (the last
 * writer and the readers since), which graph.c reads and updates under the
 * runtime's graph lock. */
#ifndef STRATA_DATA_INTERNAL_H
#define STRATA_DATA_INTERNAL_H

#include "internal.h"

struct strata_runtime;
struct strata__task;

typedef struct strata__buffer {
  uint64_t id;
  _Atomic uint32_t refs; /* the handle + one per task access */
  void *ptr;
  size_t size;
  _Atomic uint64_t pending; /* accesses of submitted tasks not ended */
  atomic_bool waited;       /* an unregister waits for pending == 0 */
  /* Guarded by the graph lock: */
  bool dead; /* unregistered: no new submissions */
  struct strata__task *last_writer;  /* holds a task reference */
  struct strata__task **readers;     /* since last_writer; references */
  size_t nreaders, cap_readers;
} strata__buffer_t;

/** @return the buffer, or NULL for a stale handle. @thread any */
strata__buffer_t *strata__buffer_get(const struct strata_runtime *rt,
                                     strata_buffer_t b);
void strata__buffer_ref(strata__buffer_t *b);
void strata__buffer_unref(struct strata_runtime *rt, strata__buffer_t *b);

/** Drop every buffer at runtime destroy (all tasks have ended). */
void strata__buffers_free(struct strata_runtime *rt);

#endif /* STRATA_DATA_INTERNAL_H */
