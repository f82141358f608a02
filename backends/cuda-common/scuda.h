/* SPDX-License-Identifier: MIT */
/* backends/cuda-common/scuda.h: the CUDA code shared by the cuda-hbm and
 * cuda-gddr backends (a convenience library linked into both modules, never
 * into libstrata). One scuda_backend_t is one loaded plugin: the GPUs of
 * its memory class (or those an override gives it), each with worker
 * threads that launch kernels on their own streams, and lanes that
 * complete work in stream order.
 *
 * Modules: discover.c (enumeration, classification, facts), exec.c (workers
 * and lanes), memory.c (device, pinned and managed memory, copies),
 * staging.c (large copies to or from pageable memory),
 * error.c (CUDA errors to STRATA_E*), nvml.c (health), component.c (the
 * ABI entry points). CUDA error codes never leave this library: every one
 * is logged with its name and string and mapped to a STRATA_E* code.
 *
 * Threads: the core's (init, probe, start, stop, fini on the owner; copies
 * and allocations from any thread), the workers (next() and launches) and
 * one completion thread per lane. CUDA's current device is per thread, so
 * every entry point that touches a card sets it first; those the core
 * calls on its own or the embedder's threads (memory, copies, prefetches)
 * put the caller's back before they return. */
#ifndef STRATA_SCUDA_H
#define STRATA_SCUDA_H

#include <cuda_runtime_api.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <strata/backend.h>

#include "nvml.h"

/* Worker threads per GPU, and works each may have in flight. */
#define SCUDA_WORKERS_DEFAULT 2
#define SCUDA_WORKERS_MAX 16
#define SCUDA_DEPTH_DEFAULT 4
#define SCUDA_DEPTH_MAX 64
#define SCUDA_DEVICES_MAX STRATA_BACKEND_DEVICES_MAX

/* Copies to or from pageable host memory of at least SCUDA_STAGE_MIN
 * bytes go through the card's stager, SCUDA_STAGE_CHUNK at a time. */
#define SCUDA_STAGE_MIN ((size_t)1 << 20)
#define SCUDA_STAGE_CHUNK ((size_t)4 << 20)

typedef struct scuda_backend scuda_backend_t;
typedef struct scuda_device scuda_device_t;

/** What a lane completes: a work a kernel was launched for, or a copy (or
 *  managed prefetch) the core started. */
typedef enum scuda_item_kind {
  SCUDA_ITEM_WORK,
  SCUDA_ITEM_COPY
} scuda_item_kind_t;

typedef struct scuda_item {
  struct scuda_item *next;
  scuda_item_kind_t kind;
  void *what; /* strata_work_t * or the core's copy token */
  cudaEvent_t ev;
} scuda_item_t;

/** A stream and the thread that waits for what was queued on it, in
 *  order, and reports it to the core. */
typedef struct scuda_lane {
  scuda_device_t *dev;
  cudaStream_t stream;
  pthread_t thread;
  bool started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  scuda_item_t *head, *tail; /* queued, oldest first */
  scuda_item_t *spare;       /* items with their events, for reuse */
  bool stop;
} scuda_lane_t;

typedef struct scuda_worker {
  scuda_device_t *dev;
  unsigned index;
  pthread_t thread;
  bool started;
  scuda_lane_t lane; /* its compute stream */
} scuda_worker_t;

typedef struct scuda_stage_job {
  struct scuda_stage_job *next;
  strata_backend_copy_t op;
  void *token; /* the core's, for copy_done */
} scuda_stage_job_t;

/** A card's thread for copies to or from pageable memory (staging.c). */
typedef struct scuda_stager {
  scuda_device_t *dev;
  pthread_t thread;
  bool started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  scuda_stage_job_t *head, *tail; /* oldest first */
  bool stop;
  cudaStream_t stream;
  cudaEvent_t ev[2]; /* the last chunk through each buffer */
  void *pin[2];      /* SCUDA_STAGE_CHUNK pinned bytes each, made on use */
} scuda_stager_t;

struct scuda_device {
  scuda_backend_t *b;
  int ordinal;    /* CUDA's device number */
  unsigned index; /* in the backend's probe list */
  strata_device_handle_t *handle;
  bool forced; /* claimed through the class override */
  int nvml;    /* index in the NVML handle; -1 none */
  atomic_bool failed;
  char fail_why[256];    /* what failed it, for the report */
  pthread_t reporter;    /* reports the failure (see scuda_fail_device) */
  atomic_bool reporting; /* reporter started, not joined */
  scuda_worker_t workers[SCUDA_WORKERS_MAX];
  unsigned nworkers;
  scuda_lane_t h2d, d2h;     /* copy lanes (device to device: h2d) */
  scuda_stager_t stager;     /* copies to or from pageable memory */
  bool stream_pool;          /* device memory from CUDA's stream-ordered pool */
  cudaStream_t alloc_stream; /* its allocations and frees (stream_pool) */
  strata_backend_peer_t peers[SCUDA_DEVICES_MAX];
};

struct scuda_backend {
  const strata_core_services_t *core;
  const strata_machine_t *machine;
  const char *name;            /* "cuda-hbm" */
  strata_device_class_t klass; /* what this plugin claims */
  unsigned nworkers, depth;    /* options */
  bool stream_pool;            /* option pool=stream */
  scuda_nvml_t *nvml;          /* NULL: health unknown */
  strata_backend_device_t facts[SCUDA_DEVICES_MAX];
  scuda_device_t devs[SCUDA_DEVICES_MAX];
  size_t ndevs;
};

/* {=== error.c ===} */

/** Map a CUDA error to a STRATA_E* code, logging it (name and string)
 *  with `what` when it is an error. cudaErrorMemoryAllocation is logged
 *  at DEBUG: the core evicts and retries.
 *  @return 0 for cudaSuccess; STRATA_ENOMEM; STRATA_EINVAL; STRATA_ENOTSUP;
 *          STRATA_ENODEV (no driver or device); STRATA_EDEVICE (a sticky
 *          error: the card is lost to this process); STRATA_EBACKEND
 *  @thread any */
int scuda_status(scuda_backend_t *b, cudaError_t e, const char *what);
/** Whether e leaves the card unusable for this process. @thread any */
bool scuda_sticky(cudaError_t e);
/** Report device d failed, once. With `work`, the core takes it back
 *  (run elsewhere) and the call reports at once, on this thread, which
 *  must hold no copy in flight. Without, a thread of its own reports it,
 *  as the core waits for the card's copies in flight to be reported, and
 *  the caller may be the lane that reports them, or hold a node's lock.
 *  @thread any */
void scuda_fail_device(scuda_device_t *d, strata_work_t *work, cudaError_t e,
                       const char *what);
/** Wait for d's failure report to be done. @thread owner (stop) */
void scuda_fail_device_join(scuda_device_t *d);
/** Log through the core. @thread any */
void scuda_log(scuda_backend_t *b, strata_log_level_t level, const char *fmt,
               ...) STRATA_PRINTF(3, 4);

/* {=== discover.c ===} */

/** Find the GPUs this plugin claims, read their facts into b->facts.
 *  @return 0 (possibly no device: one INFO line says why); STRATA_EINVAL
 *          (a malformed option); STRATA_ENOMEM
 *  @thread owner */
int scuda_discover(scuda_backend_t *b);

/* {=== exec.c ===} */

/** Set up d's stream-ordered pool (pool=stream): its allocation stream,
 *  and a release threshold that keeps freed memory in the pool.
 *  @return 0; STRATA_E*  @thread owner */
int scuda_pool_start(scuda_device_t *d);
/** Give d's pool stream back. @thread owner */
void scuda_pool_stop(scuda_device_t *d);

/** Start a lane on device d's current stream setup. @return 0; STRATA_E*
 *  @thread owner */
int scuda_lane_start(scuda_lane_t *l, scuda_device_t *d, const char *what);
/** Queue `what` behind everything on the lane's stream so far; the lane
 *  reports it when the stream reaches it (complete or copy_done, or
 *  device_failed on a sticky error).
 *  @return 0; STRATA_E* (nothing queued; the caller reports)
 *  @thread any (CUDA's current device must be the lane's) */
int scuda_lane_push(scuda_lane_t *l, scuda_item_kind_t kind, void *what);
/** Wait for what is queued, stop the thread, free the stream.
 *  @thread owner */
void scuda_lane_stop(scuda_lane_t *l);
/** Start the workers of every device. @return 0; STRATA_EBACKEND
 *  @thread owner */
int scuda_start_workers(scuda_backend_t *b);
/** Join the workers, then the lanes. @thread owner */
void scuda_stop_workers(scuda_backend_t *b);

/* {=== staging.c ===} */

/** Should op go through a stager: at least SCUDA_STAGE_MIN bytes between
 *  a card and pageable host memory? @thread any */
bool scuda_stage_wanted(const strata_backend_copy_t *op);
/** Start d's stager (its stream, events and thread; the pinned buffers
 *  come with its first job). @return 0; STRATA_E* @thread owner */
int scuda_stager_start(scuda_stager_t *s, scuda_device_t *d);
/** Queue op; the stager reports its end with copy_done.
 *  @return 0; STRATA_ENOMEM; STRATA_EBACKEND (not started): nothing
 *          queued, the caller reports  @thread any */
int scuda_stage_push(scuda_stager_t *s, const strata_backend_copy_t *op,
                     void *token);
/** Finish the queued jobs, stop the thread, free its resources.
 *  @thread owner */
void scuda_stager_stop(scuda_stager_t *s);

/* {=== memory.c (the component's memory and copy entry points) ===}
 * The contracts are strata/backend.h's (strata_backend_component_t);
 * each puts the calling thread's current CUDA device back as it found it. */

int scuda_mem_alloc(void *state, unsigned dev, size_t size, void **ptr);
void scuda_mem_free(void *state, unsigned dev, void *ptr, size_t size);
int scuda_copy_async(void *state, const strata_backend_copy_t *op, void *token);
int scuda_host_alloc(void *state, size_t size, void **ptr);
void scuda_host_free(void *state, void *ptr, size_t size);
int scuda_host_register(void *state, void *ptr, size_t size);
void scuda_host_unregister(void *state, void *ptr, size_t size);
int scuda_managed_alloc(void *state, unsigned dev, size_t size, void **ptr);
void scuda_managed_free(void *state, unsigned dev, void *ptr, size_t size);
int scuda_managed_prefetch(void *state, int dev, const void *ptr, size_t size,
                           void *token);

/* {=== component.c: the ABI entry points (contracts: strata/backend.h) ===} */

int scuda_init(const strata_core_services_t *core,
               const strata_backend_config_t *cfg, const char *name,
               strata_device_class_t klass, void **state);
int scuda_probe(void *state, const strata_backend_device_t **devices,
                size_t *ndevices);
int scuda_start(void *state, strata_device_handle_t *const *handles,
                size_t nhandles);
void scuda_stop(void *state);
void scuda_fini(void *state);
int scuda_health(void *state, unsigned dev, strata_health_t *out);

/** The component of a CUDA plugin: `sym` is its exported name, `klass`
 *  the memory class it claims. */
#define SCUDA_COMPONENT(sym, plugin, klass, desc)                              \
  static int sym##_init(const strata_core_services_t *core,                    \
                        const strata_backend_config_t *cfg, void **state) {    \
    return scuda_init(core, cfg, plugin, klass, state);                        \
  }                                                                            \
  STRATA_BACKEND_EXPORT const strata_backend_component_t sym = {               \
      .abi_major = STRATA_BACKEND_ABI_MAJOR,                                   \
      .abi_minor = STRATA_BACKEND_ABI_MINOR,                                   \
      .struct_size = sizeof(strata_backend_component_t),                       \
      .name = plugin,                                                          \
      .description = desc,                                                     \
      .init = sym##_init,                                                      \
      .probe = scuda_probe,                                                    \
      .start = scuda_start,                                                    \
      .stop = scuda_stop,                                                      \
      .fini = scuda_fini,                                                      \
      .mem_alloc = scuda_mem_alloc,                                            \
      .mem_free = scuda_mem_free,                                              \
      .copy_async = scuda_copy_async,                                          \
      .host_alloc = scuda_host_alloc,                                          \
      .host_free = scuda_host_free,                                            \
      .host_register = scuda_host_register,                                    \
      .host_unregister = scuda_host_unregister,                                \
      .managed_alloc = scuda_managed_alloc,                                    \
      .managed_free = scuda_managed_free,                                      \
      .managed_prefetch = scuda_managed_prefetch,                              \
      .health = scuda_health,                                                  \
  }

#endif /* STRATA_SCUDA_H */
