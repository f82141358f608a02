/* SPDX-License-Identifier: MIT */
/* runtime/data/transfer.h: the transfer engine. When memory is active (any
 * node but plain host memory, or a host cap), every ready task passes
 * through it before it reaches its device's queue: the engine makes the
 * task's buffers valid on the device's memory node (staging), so a worker
 * only ever takes tasks whose data is in place and never waits on a copy.
 * Staging runs on the engine's own threads, except when every buffer is
 * already in place (then the thread that made the task ready stages it at
 * once, with no copy), or when a worker that ran dry stages the next task
 * of its own device (strata__transfer_released). A task whose data cannot
 * fit now (the node is reserved by staged and running tasks, or everything
 * there is pinned) waits in its node's parked list, holding no thread, and
 * is tried again when a task releases its data (or after a millisecond;
 * while releases come, an idle engine thread polls for the next one).
 * Staged tasks hold their working set's reservation on the node, so a
 * card's depth of staged tasks is bounded by its memory.
 *
 * The engine also serves prefetch requests (copies made ahead of a task,
 * into free room, e.g. where the policy's cache hook keeps a buffer):
 * staging requests go first; a full request queue drops prefetches (a
 * prefetch is a hint). With memory inactive the engine starts nothing and
 * costs a task nothing. */
#ifndef STRATA_TRANSFER_H
#define STRATA_TRANSFER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strata_runtime;
struct strata__buffer;
struct strata__task;

/* Staging's completion, given to the engine at start (the scheduler's
 * strata__dispatch_staged): t's data is in place and held on its device's
 * node (status 0: queue it), or could not be made so (STRATA_EDEVICE: the
 * device fails and t moves; other errors end t). Takes t back. Called on
 * an engine thread, or on the thread that made t ready. */
typedef void strata__staged_fn(struct strata_runtime *rt,
                               struct strata__task *t, int status);

typedef struct strata__prefetch_req {
  struct strata__buffer *buf;
  int node;
} strata__prefetch_req_t;

/* A list of tasks linked through their qnode, FIFO, and the smallest
 * working set in it (a bound: UINT64_MAX when empty, and it may stay
 * below the true smallest after the head leaves). */
typedef struct strata__xlist {
  struct strata__task *head, *tail;
  size_t n;
  uint64_t min_ws;
} strata__xlist_t;

/* What the engine keeps for one memory node (x->mu). */
typedef struct strata__xnode {
  strata__xlist_t parked; /* found no room here, waiting for a release */
  strata__xlist_t retry;  /* given back by a release, tried again in order */
  /* The smallest working set that found no room here since the last
   * release (0: none): a retried task needing as much parks again
   * untried, and when no retried task needs less, they all do at once. */
  uint64_t no_room;
} strata__xnode_t;

typedef struct strata__transfer {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  /* Tasks to stage, FIFO, linked through their qnode (a task is in no
   * device queue while the engine has it). */
  struct strata__task *stage_head, *stage_tail;
  strata__xnode_t *nodes; /* nnodes entries */
  size_t nnodes;
  size_t next_node; /* where the look for a retry starts (round robin) */
  size_t nretry;    /* tasks in the retry lists */
  size_t nwaiting;  /* tasks in the parked lists */
  /* Tasks parked or given back for a retry; written under mu, read
   * without it by strata__transfer_released (a release that misses a
   * task parking at that moment is made up for by the retry a
   * millisecond later). */
  _Atomic size_t nparked;
  strata__prefetch_req_t *ring; /* cap entries, n queued from head */
  size_t cap, head, n;
  pthread_t *threads; /* cap_threads, of which nthreads started */
  size_t nthreads, cap_threads;
  strata__staged_fn *staged; /* where staged tasks go (set at start) */
  bool prefetch;             /* prefetch requests are served */
  bool polling;              /* a thread polls for a release (mu) */
  uint64_t last_release_ns;  /* when a release last gave tasks back (mu) */
  bool stop;
  bool ready; /* mu and cv initialised */
} strata__transfer_t;

/** Start the engine's threads when memory is active; serve prefetch
 *  requests when `prefetch` (runtime options) and some device has its own
 *  memory. Every staged task is handed to `staged` (the engine sits below
 *  the scheduler and never calls it directly). @return 0; STRATA_ENOMEM;
 *  STRATA_ESYSTEM (no thread at all)
 *  @thread owner (runtime creation, after strata__memory_init) */
int strata__transfer_start(struct strata_runtime *rt, bool prefetch,
                           strata__staged_fn *staged);
/** Stop the threads and drop the request queue. Every task has ended and
 *  every buffer was flushed (which waits for the requests naming it).
 *  @thread owner (runtime teardown) */
void strata__transfer_stop(struct strata_runtime *rt);

/** Stage ready task t (memory active): its data is made valid on its
 *  device's node, then the `staged` completion given at start takes it
 *  back with the status. Takes ownership of t until then.
 *  @thread any (the thread that makes t ready; no runtime lock held) */
void strata__transfer_stage(struct strata_runtime *rt, struct strata__task *t);
/** A task released its data on some node: parked tasks may fit now.
 *  Cheap when none is parked. help_node >= 0: the calling thread is a
 *  worker of the device whose memory node that is, with nothing queued to
 *  run: it stages the first task given back itself when that task is for
 *  help_node (its copies are issued, and for a backend whose copies
 *  block, made, on this thread, which would otherwise wait for the
 *  engine's; meanwhile that worker takes no other work, which its
 *  device's other workers can), and the engine's threads are woken only
 *  for the others.
 *  -1: any thread, the engine's threads stage everything. @thread any */
void strata__transfer_released(struct strata_runtime *rt, int help_node);

/** Queue b for copying to memory node `node` (a device's), e.g. where the
 *  policy keeps it. @thread any */
void strata__prefetch_buffer(struct strata_runtime *rt,
                             struct strata__buffer *b, int node);
/** Queue b for every node the policy keeps it on (b->keep), but `skip`
 *  (-1: none). @thread any */
void strata__prefetch_kept(struct strata_runtime *rt, struct strata__buffer *b,
                           int skip);

#endif /* STRATA_TRANSFER_H */
