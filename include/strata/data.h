/* SPDX-License-Identifier: MIT */
/* strata/data.h: buffers, the unit of data that tasks access and that
 * dependencies are derived from, and the memory nodes their copies live
 * on. */
#ifndef STRATA_DATA_H
#define STRATA_DATA_H

#include <strata/common.h>
#include <strata/runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Register `size` bytes at `ptr` as a buffer tasks can access. The caller
 *  keeps owning the memory; it must stay valid, and must not be touched by
 *  the application while tasks that access it are pending, until the
 *  buffer is unregistered.
 *  @return 0; STRATA_EINVAL (ptr NULL or size 0); STRATA_EOVERLAP (the
 *          range overlaps a registered buffer); STRATA_ESHUTDOWN
 *  @own    *out: caller, until strata_buffer_unregister
 *  @thread any */
STRATA_API int strata_buffer_register(strata_runtime_t *rt, void *ptr,
                                      size_t size,
                                      strata_buffer_t *out) STRATA_WARN_UNUSED;

/** Unregister a buffer. New submissions that access it fail from now on;
 *  the call blocks until every submitted task that accesses it has ended
 *  and brings its latest data home, so the caller's memory holds the
 *  final data on a 0 return. Tasks created but not yet submitted that
 *  access it fail at submit with STRATA_ENOENT.
 *  @return 0; STRATA_EINVAL (rt NULL); STRATA_ENOENT (already
 *          unregistered); STRATA_EBUSY (acquired: release it first; the
 *          buffer stays registered); STRATA_EDEVICE, STRATA_EIO or
 *          STRATA_ELOST (the latest data could not be brought home: the
 *          buffer is unregistered anyway, and the error logged)
 *  @own    the handle is dead on return (but after STRATA_EBUSY)
 *  @thread any, not from a kernel  @blocks until the buffer's tasks end */
STRATA_API int strata_buffer_unregister(strata_runtime_t *rt,
                                        strata_buffer_t buf);

/** The registered address and size. The memory holds the buffer's latest
 *  data only while it is acquired (or after it is unregistered): tasks on
 *  devices with their own memory leave their results there.
 *  @return 0; STRATA_ENOENT
 *  @thread any */
STRATA_API int strata_buffer_get(const strata_runtime_t *rt,
                                 strata_buffer_t buf, void **ptr, size_t *size);

/** Create a zero-filled buffer of `size` bytes in memory the runtime owns
 *  (it may spill to disk under strata_runtime_opts_t.host_bytes). Read or
 *  write it from the application through strata_buffer_acquire.
 *  @return 0; STRATA_EINVAL (size 0); STRATA_ENOMEM (also when making room
 *          under host_bytes needed a spill that failed: logged);
 *          STRATA_ESHUTDOWN
 *  @own    *out: caller, until strata_buffer_unregister (which frees it)
 *  @thread any */
STRATA_API int strata_buffer_create(strata_runtime_t *rt, size_t size,
                                    strata_buffer_t *out) STRATA_WARN_UNUSED;

/** Create a zero-filled buffer of `size` bytes in managed (unified)
 *  memory: one allocation, from the backend of the first device that
 *  offers managed memory (the CUDA backends: cudaMallocManaged), seen at
 *  the same address by the host and by every device that offers managed
 *  memory. Tasks on those devices use it in place: the runtime makes no
 *  copy of it, and moves it ahead of a task to the device the task runs
 *  on (a prefetch), and back to the host before the host reads it. Other
 *  devices get copies, as of host memory. It counts once, against host
 *  memory, and never spills. Read or write it from the application
 *  through strata_buffer_acquire.
 *  @return 0; STRATA_EINVAL (size 0); STRATA_ENOTSUP (no device offers
 *          managed memory: logged); STRATA_ENOMEM; STRATA_ESHUTDOWN
 *  @own    *out: caller, until strata_buffer_unregister (which frees it)
 *  @thread any */
STRATA_API int
strata_buffer_create_managed(strata_runtime_t *rt, size_t size,
                             strata_buffer_t *out) STRATA_WARN_UNUSED;

/** Take the buffer into the application's hands: wait for the tasks
 *  submitted before that write it (mode R) or access it (mode W or RW),
 *  bring its latest data into host memory and return where it is. Tasks
 *  submitted afterwards that access it wait for strata_buffer_release.
 *  @param[out] ptr  the host address (valid until release)
 *  @return 0; STRATA_ENOENT; STRATA_EINVAL (rt or ptr NULL, bad mode);
 *          STRATA_EBUSY (already acquired); STRATA_ENOMEM; STRATA_ELOST
 *          (its only copy was on a failed device); STRATA_EDEVICE or
 *          STRATA_EIO (the copy home failed; EIO also: the spill directory
 *          fails); STRATA_ENOSPC (making room in host memory needed a
 *          spill and the spill directory is full; nothing was lost);
 *          STRATA_ESHUTDOWN
 *  @own    *ptr: the runtime's memory, lent until strata_buffer_release
 *  @thread any, not from a kernel (it would wait for itself)
 *  @blocks until those tasks end */
STRATA_API int strata_buffer_acquire(strata_runtime_t *rt, strata_buffer_t buf,
                                     strata_access_mode_t mode, void **ptr);

/** Give an acquired buffer back to the runtime; the pointer acquire gave
 *  must not be used after.
 *  @return 0; STRATA_EINVAL (rt NULL); STRATA_ENOENT; STRATA_ESTATE (not
 *          acquired)
 *  @thread any */
STRATA_API int strata_buffer_release(strata_runtime_t *rt, strata_buffer_t buf);

/* {=== Memory nodes ===}
 * Every place data can live: host memory (node 0, the home of every
 * buffer), the pinned-host tier and the spill directory when configured,
 * and the memory of each device that has its own. The spill directory is
 * a private subdirectory the runtime makes in spill_dir and removes at
 * destroy (see strata_runtime_opts_t.spill_dir for who owns what, and the
 * STRATA_ENOSPC and STRATA_EIO a task fails with when it is full or
 * failing). */

typedef enum strata_node_kind {
  STRATA_NODE_DEVICE = 0,
  STRATA_NODE_PINNED,
  STRATA_NODE_HOST,
  STRATA_NODE_SPILL
} strata_node_kind_t;

typedef struct strata_memory_node_info {
  size_t struct_size;
  int index;
  strata_node_kind_t kind;
  int device; /* the device it belongs to; -1 for the others */
  char name[64];
  uint64_t capacity; /* bytes; 0: unlimited */
  uint64_t used;     /* bytes held: replicas and blocks cached for reuse */
  uint64_t cached;   /* of which free blocks kept for reuse */
  uint64_t evictions, writebacks; /* replicas evicted; of which first
                                     written to the next tier */
  uint64_t hits, misses; /* a task found its data there / had to copy */
  uint64_t prefetches;   /* replicas copied there ahead of their task */
} strata_memory_node_info_t;

/** @return the number of memory nodes (>= 1)  @thread any */
STRATA_API int strata_memory_node_count(const strata_runtime_t *rt);

/** @return 0; STRATA_ERANGE; STRATA_EINVAL (struct_size holds no field)
 *  @thread any */
STRATA_API int strata_memory_node_info(const strata_runtime_t *rt, int node,
                                       strata_memory_node_info_t *out);

/** Traffic from one memory node to another since the runtime started
 *  (copies staged through host memory count on both hops). */
typedef struct strata_link_stats {
  size_t struct_size;
  uint64_t bytes, copies;
  uint64_t failures; /* copies that failed (and were retried) */
} strata_link_stats_t;

/** @return 0; STRATA_ERANGE; STRATA_EINVAL
 *  @thread any */
STRATA_API int strata_link_stats(const strata_runtime_t *rt, int src, int dst,
                                 strata_link_stats_t *out);

#ifdef __cplusplus
}
#endif

#endif /* STRATA_DATA_H */
