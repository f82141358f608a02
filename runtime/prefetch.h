/* SPDX-License-Identifier: MIT */
/* runtime/prefetch.h: the prefetch engine. When a task becomes ready on a
 * device with its own memory, the buffers it reads are final (every
 * earlier writer has ended, every later one waits for it), so copying them
 * to the device can start at once instead of when a worker takes the
 * task: the copies overlap the compute of the tasks ahead of it. Requests
 * go to a bounded queue served by a few threads; a full queue drops the
 * request (a prefetch is a hint: the task's own acquire copies what is
 * still missing). */
#ifndef STRATA_PREFETCH_H
#define STRATA_PREFETCH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct strata_runtime;
struct strata__buffer;
struct strata__task;

typedef struct strata__prefetch_req {
  struct strata__buffer *buf;
  int node;
} strata__prefetch_req_t;

typedef struct strata__prefetcher {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  strata__prefetch_req_t *ring; /* cap entries, n queued from head */
  size_t cap, head, n;
  pthread_t *threads; /* cap_threads, of which nthreads started */
  size_t nthreads, cap_threads;
  bool stop;
  bool ready; /* mu and cv initialised */
} strata__prefetcher_t;

/** Start the engine when the runtime has device memory and prefetching
 *  is on (runtime options). @return 0; STRATA_ENOMEM; STRATA_ESYSTEM
 *  @thread owner (runtime creation) */
int strata__prefetch_start(struct strata_runtime *rt, bool enabled);
/** Stop the threads and drop the queue. Every buffer must have been
 *  flushed (which waits for the requests naming it).
 *  @thread owner (runtime teardown) */
void strata__prefetch_stop(struct strata_runtime *rt);

/** Queue b for copying to memory node `node` (a device's), e.g. where the
 *  policy keeps it. @thread any */
void strata__prefetch_buffer(struct strata_runtime *rt,
                             struct strata__buffer *b, int node);

/** Queue b for every node the policy keeps it on (b->keep), but `skip`
 *  (-1: none). @thread any */
void strata__prefetch_kept(struct strata_runtime *rt, struct strata__buffer *b,
                           int skip);

/** Queue the buffers that ready task t reads for its device's memory;
 *  cheap when the engine is off or the device uses host memory.
 *  @thread any (the thread that makes t ready) */
void strata__prefetch_task(struct strata_runtime *rt, struct strata__task *t);

#endif /* STRATA_PREFETCH_H */
