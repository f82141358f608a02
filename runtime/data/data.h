/* SPDX-License-Identifier: MIT */
/* runtime/data/data.h: registered buffers. Besides address and size, a buffer
 * carries the access history that dependencies are derived from (the last
 * writer and the readers since), which graph.c reads and updates under the
 * runtime's graph lock. The history also tells when a buffer is idle: every
 * earlier access ends before the last writer runs, so the buffer is idle
 * once the last writer and the readers since have ended. */
#ifndef STRATA_DATA_INTERNAL_H
#define STRATA_DATA_INTERNAL_H

#include <pthread.h>

#include "internal.h"

struct strata_runtime;
struct strata__task;

/* A shared description (runtime/README.md, "Who owns what"): other
 * modules read the public part (id, ptr, size, owned, tag); the history
 * fields are the graph's (under graph_mu); `rep` and the fields marked
 * (mu) are the memory manager's, read elsewhere only through memory.h's
 * accessors (strata__replica_valid).
 * Field order: what every submission touches (the handle's checks, the
 * reference count, the access history) shares the first cache line; the
 * memory manager's and the policy's fields follow. */
typedef struct strata__buffer {
  uint64_t id;
  /* The handle + one per access of an unsubmitted task (a submitted task
   * needs none: unregister waits for it to end). */
  _Atomic uint32_t refs;
  /* Guarded by the graph lock: */
  bool dead;                        /* unregistered: no new submissions */
  struct strata__task *acquired;    /* the application's access, or NULL */
  struct strata__task *last_writer; /* holds a task reference */
  struct strata__task **readers;    /* since last_writer; references */
  size_t nreaders, cap_readers;
  void *ptr;
  size_t size;

  /* Replicas (memory.h): one per memory node, guarded by mu; cv signals
   * the end of a copy into or out of one of them. */
  struct strata__replica *rep;
  bool owned; /* the runtime allocated the host memory */
  /* strata_buffer_create_managed: the device whose backend allocated ptr
   * (managed memory, visible to the host and every device that offers
   * managed memory, whose replicas all alias it); else NULL. */
  struct strata_device_handle *managed_by;
  bool lost;           /* its only valid copy was on a failed device (mu) */
  uint32_t prefetches; /* queued prefetch requests naming it (mu) */
  uint32_t writers;    /* running tasks, or the application, writing a
                          replica of it (mu) */
  pthread_mutex_t mu;
  pthread_cond_t cv;

  char tag[64]; /* strata_buffer_set_tag; read by policy views */
  /* Nodes the policy's cache hook keeps it on (bit n: memory node n):
   * prefetched there ahead of its readers. */
  _Atomic uint64_t keep;
  /* The device its last submitted writer was placed on (-1: none yet):
   * where its data will be, for the policy's transfer estimates. */
  _Atomic int writer_device;
  /* When that writer is planned to end (plan.h, ns on its timeline), and
   * when its data is planned to land in host memory on its way to another
   * card (ns + 1; 0: not planned). */
  _Atomic uint64_t plan_ready, plan_host;
  /* Devices the plan has its latest data on (bit d, devices 0-63): its
   * writer's, and those a placed reader copies it to. */
  _Atomic uint64_t plan_valid;
} strata__buffer_t;

/** @return the buffer, or NULL for a stale handle. @thread any */
strata__buffer_t *strata__buffer_get(const struct strata_runtime *rt,
                                     strata_buffer_t b);
void strata__buffer_ref(strata__buffer_t *b);
void strata__buffer_unref(struct strata_runtime *rt, strata__buffer_t *b);

/** The end of unregistering b, once no task uses it (its handle is gone
 *  and its access history was dropped): its latest data goes home, its
 *  range leaves the index, and the handle's reference is dropped (b may
 *  be freed). @return 0; or the flush's error (logged; the replicas are
 *  freed anyway) @thread any, no runtime lock held  @blocks on copies */
int strata__buffer_retire(struct strata_runtime *rt, strata__buffer_t *b);

/** Drop every buffer at runtime destroy (all tasks have ended, and
 *  strata__host_access_fini dropped their access histories). */
void strata__buffers_free(struct strata_runtime *rt);

#endif /* STRATA_DATA_INTERNAL_H */
