/* SPDX-License-Identifier: MIT */
/* strata/backend.h: the plugin ABI. A backend is a libtool module that
 * exports exactly one symbol, a const strata_backend_component_t, and
 * reaches the core only through the services table it is given. */
#ifndef STRATA_BACKEND_H
#define STRATA_BACKEND_H

#include <strata/common.h>
#include <strata/kernel.h>
#include <strata/machine.h>
#include <strata/runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bump the major for any change of layout or meaning: the loader rejects a
 * plugin whose major differs from its own. Bump the minor when fields are
 * appended (to the component, taken from `reserved`; to a probed device,
 * whose entries the core reads with the plugin's struct_size and zero-fills
 * past it): the loader accepts plugins whose minor is not newer than its
 * own. */
#define STRATA_BACKEND_ABI_MAJOR 2
#define STRATA_BACKEND_ABI_MINOR 2

/* The exported symbol of backend "cuda-hbm" is
 * strata_backend_cuda_hbm_component: "strata_backend_" + the plugin file
 * name with '-' mapped to '_' + "_component". */
#define STRATA_BACKEND_EXPORT __attribute__((visibility("default")))

/* Limits on what probe may report. The core checks every field of every
 * device before using any (see strata_backend_device_t) and refuses the
 * whole backend, with a WARN naming the plugin, the device and the field,
 * when one is out of bounds.
 * Devices per backend: `peers` can name no more. */
#define STRATA_BACKEND_DEVICES_MAX 64
/* Workers per device: as many as the cpu backend accepts for a machine
 * of one NUMA node. */
#define STRATA_BACKEND_WORKERS_MAX 4096
/* Works in flight per device (inflight_depth). */
#define STRATA_BACKEND_INFLIGHT_MAX 65536

/** The core as seen by one backend (opaque). */
typedef struct strata_core strata_core_t;
/** One of the core's devices (opaque), handed to the backend at start. */
typedef struct strata_device_handle strata_device_handle_t;

/** Arithmetic precision a task declared (its "precision" attribute). */
typedef enum strata_precision {
  STRATA_PRECISION_UNKNOWN = 0,
  STRATA_PRECISION_FP64,
  STRATA_PRECISION_FP32,
  STRATA_PRECISION_FP16,
  STRATA_PRECISION_BF16,
  STRATA_PRECISION_INT8,
  STRATA_PRECISION_OTHER
} strata_precision_t;

/** One unit of work handed to a backend worker: call fn(&call) (on the
 *  worker or wherever the device runs it), then report the result with
 *  services->complete. Valid from next() until complete(). */
typedef struct strata_work {
  strata_kernel_fn fn;       /* the device's run_impl implementation */
  strata_kernel_call_t call; /* its arguments; buffers already valid on
                                the device */
  double flops;              /* the task's "flops" attribute; < 0 unknown */
  strata_precision_t precision;
} strata_work_t;

/** What the core offers a backend. Valid from init until fini returns. */
typedef struct strata_core_services {
  uint16_t abi_major, abi_minor;
  uint32_t struct_size;
  strata_core_t *core; /* pass back as the first argument */

  /** Log through the embedder's callback, tagged with the backend name.
   *  @thread any */
  void (*log)(strata_core_t *core, strata_log_level_t level, const char *fmt,
              ...) STRATA_PRINTF(3, 4);

  /** Copy the value of this backend's option `key` (from the runtime's
   *  backend_options) into buf.
   *  @return 0; STRATA_ENOENT (not set); STRATA_ERANGE (buf too small)
   *  @thread any */
  int (*option)(strata_core_t *core, const char *key, char *buf, size_t len);

  /** Take the next task for `worker` of `dev`. Idle callers sleep (no
   *  spinning beyond a few microseconds) and wake when work arrives.
   *  A backend may take several works before it completes the first, up
   *  to the device's inflight_depth outstanding (all its workers
   *  together); beyond that, next() waits (within timeout_ns) until a
   *  complete() of this device frees a place, so a backend's thread may
   *  simply call next() again and be held back. The thread that would
   *  complete the device's works must therefore not be the one waiting
   *  here for them.
   *  @param timeout_ns  0: do not wait; < 0: wait without limit
   *  @return 0 (*out set); STRATA_EAGAIN (timed out: no work, or the
   *          device holds inflight_depth works); STRATA_ESHUTDOWN (the
   *          device is stopping: the worker must return, and complete
   *          what it holds); STRATA_EINVAL (no such worker)
   *  @thread the worker's own thread: one thread per worker index, which
   *          may change between calls only when it holds nothing */
  int (*next)(strata_core_t *core, strata_device_handle_t *dev, unsigned worker,
              int64_t timeout_ns, strata_work_t **out);

  /** Report that work taken with next() ended: status 0, or the kernel's
   *  non-zero return. Exactly once per work, in any order (works of one
   *  device may end in another order than they were taken), from any
   *  thread: the worker that took it, an event or callback thread. The
   *  work pointer is dead afterwards. When the worker that took it calls
   *  it, a successor it makes ready on the device may be kept for that
   *  worker's next call of next() (no queue round trip); from any other
   *  thread, successors go through the device's queue.
   *  @thread any */
  void (*complete)(strata_core_t *core, strata_work_t *work, int status);

  /** Allocate through the embedder's allocator, strata_alloc_fn style
   *  (nsize 0 frees ptr of osize bytes). Backends use it for their state
   *  so that the embedder sees, caps and checks every allocation.
   *  @thread any */
  void *(*alloc)(strata_core_t *core, void *ptr, size_t osize, size_t nsize);

  /** Report that device `dev` failed (stopped answering, lost its
   *  memory). The core stops placing work on it, runs the tasks queued for
   *  it elsewhere, and makes next() answer STRATA_ESHUTDOWN to its
   *  workers. `work`, when not NULL, is work the device took with next()
   *  and could not finish: it is run elsewhere too (do not complete it).
   *  @thread any */
  void (*device_failed)(strata_core_t *core, strata_device_handle_t *dev,
                        strata_work_t *work, const char *why);

  /** Bind the calling thread where worker `worker` of `dev` belongs (its
   *  core, or its NUMA node). A no-op returning STRATA_ENOTSUP when the
   *  machine was loaded from XML.
   *  @return 0; STRATA_ENOTSUP; STRATA_EBACKEND (hwloc refused)
   *  @thread the thread to bind */
  int (*bind_worker)(strata_core_t *core, strata_device_handle_t *dev,
                     unsigned worker);

  void *reserved[8];
} strata_core_services_t;

/** Configuration given to init. */
typedef struct strata_backend_config {
  uint32_t struct_size;
  const strata_machine_t *machine; /* valid until fini */
} strata_backend_config_t;

/** A device a backend drives, as reported by probe. Rates and sizes are
 *  in base units (bytes, bytes/s, flop/s, seconds); 0 means unknown; they
 *  must be finite and not negative. Every entry of probe's array has the
 *  same struct_size, which is the size of one published layout (2.0, 2.1
 *  or 2.2). The strings are NUL-terminated within their arrays. */
typedef struct strata_backend_device {
  uint32_t struct_size; /* sizeof(strata_backend_device_t) as compiled:
                           the core steps through probe's array with it */
  strata_device_class_t device_class;
  /* Kernel implementations, by what runs them (strata/kernel.h): the
   * device is a candidate for a kernel that has code of candidate_impl
   * (and of run_impl), and calls the run_impl code. CPU: CPU/CPU; a CUDA
   * card: CUDA/CUDA; a simulated GPU: CUDA/CPU (placed only where a real
   * card could run the kernel, running its CPU code as the stand-in). */
  strata_impl_kind_t candidate_impl;
  strata_impl_kind_t run_impl;
  char name[64];
  uint64_t memory_bytes;
  /* OS index; -1 unknown. A node the machine lacks is accepted (a
   * simulated machine may describe more nodes than its host has): its
   * workers are then bound to the whole machine. */
  int32_t numa_node;
  /* Threads that will call next() for it: 1 to STRATA_BACKEND_WORKERS_MAX.
   * One of them must call next() soon after start returns: a device none
   * of whose workers has called it within the runtime's
   * worker_start_timeout_ms is failed (see device_failed). */
  uint32_t nworkers;
  /* Works the device may hold at once, taken with next() and not yet
   * completed, all its workers together: 1 to
   * STRATA_BACKEND_INFLIGHT_MAX; 0 means nworkers (one per worker). */
  uint32_t inflight_depth;
  /* Logical core index (strata_machine_t.cores) each worker is bound to;
   * NULL: workers are bound to the NUMA node. Owned by the backend. */
  const uint32_t *worker_cores;
  char pci_busid[16];
  /* 1: tasks work on device memory that the core manages through the
   * component's mem_alloc, mem_free and copy; 0: on host memory (CPU). */
  int32_t own_memory;
  double link_bandwidth; /* host link */
  double link_latency;
  double mem_bandwidth;
  double fp64_flops, fp32_flops;
  int32_t ecc; /* 1 yes, 0 no, -1 unknown */
  /* Bit i: copy() works directly between this device and device i of the
   * same probe list (peer to peer); else copies go through host memory.
   * Bits past the end of the list are refused. */
  uint64_t peers;
  /* {=== ABI 2.1 ===} */
  /* The kind of device, the same for identical cards (performance models
   * are kept per model, not per device): "NVIDIA H100 80GB HBM3".
   * "": the name. */
  char model[64];
  /* {=== ABI 2.2 ===} */
  /* Bytes/s of a direct copy to a peer (0: unknown, taken as the host
   * link's): what the placement estimates charge for one. */
  double peer_bandwidth;
} strata_backend_device_t;

/** The one symbol a backend exports. All function pointers except the
 *  reserved ones are required. */
typedef struct strata_backend_component {
  uint16_t abi_major;   /* STRATA_BACKEND_ABI_MAJOR as compiled in */
  uint16_t abi_minor;   /* STRATA_BACKEND_ABI_MINOR as compiled in */
  uint32_t struct_size; /* sizeof(strata_backend_component_t) */
  const char *name;     /* must equal the plugin file name: "cpu" */
  const char *description;

  /** Set the backend up. Must not start threads yet.
   *  @return 0, or a STRATA_E* code (the backend is then unloaded)
   *  @own    *state: backend, until fini
   *  @thread owner */
  int (*init)(const strata_core_services_t *core,
              const strata_backend_config_t *cfg, void **state);

  /** Report the devices this backend drives (possibly none): at most
   *  STRATA_BACKEND_DEVICES_MAX; *devices may be NULL only when there are
   *  none.
   *  @own    *devices: backend, valid until fini
   *  @thread owner */
  int (*probe)(void *state, const strata_backend_device_t **devices,
               size_t *ndevices);

  /** Start the workers of every probed device; handles[i] names device i
   *  of probe's list in calls to next(). A device none of whose workers
   *  ever calls next() is failed after a while (see nworkers), so that
   *  its tasks run elsewhere. If start fails, the core still
   *  makes next() answer STRATA_ESHUTDOWN and calls stop(), then fini(),
   *  so workers already started are joined.
   *  @thread owner */
  int (*start)(void *state, strata_device_handle_t *const *handles,
               size_t nhandles);

  /** Join the workers. Called after the core has made next() answer
   *  STRATA_ESHUTDOWN on every device of this backend.
   *  @thread owner */
  void (*stop)(void *state);

  /** Free everything; state is dead afterwards.
   *  @thread owner */
  void (*fini)(void *state);

  /* {=== Device memory (required when a device has own_memory) ===}
   * `dev` is the index of the device in probe's list. The core keeps the
   * accounts (capacity, eviction, caching of freed blocks): these only
   * move bytes. */

  /** Allocate `size` bytes on device `dev`.
   *  @return 0; STRATA_ENOMEM  @thread any */
  int (*mem_alloc)(void *state, unsigned dev, size_t size, void **ptr);
  /** Free a block mem_alloc returned. @thread any */
  void (*mem_free)(void *state, unsigned dev, void *ptr, size_t size);
  /** Copy `size` bytes. A device of -1 is host memory; otherwise both
   *  are this backend's devices and peers (see strata_backend_device_t).
   *  Blocks until done; the core runs copies on its own threads.
   *  @return 0, or a STRATA_E* code (the core retries, then gives up)
   *  @thread any */
  int (*copy)(void *state, int dst_dev, void *dst, int src_dev, const void *src,
              size_t size);

  /* {=== Optional readouts (NULL when not supported) ===} */

  /** Live health of device `dev`. @thread any */
  int (*health)(void *state, unsigned dev, strata_health_t *out);
  /** Virtual clock of device `dev` (modelled time). @thread any */
  int (*model)(void *state, unsigned dev, strata_device_model_t *out);

  /* {=== ABI 2.1 ===} */

  /** Make device `dev` misbehave, for testing what depends on it (see
   *  strata_device_inject for the faults). NULL: the backend cannot.
   *  @return 0; STRATA_EINVAL (unknown fault, bad value)
   *  @thread any */
  int (*inject)(void *state, unsigned dev, const char *fault, double value);

  void *reserved[7]; /* must be NULL */
} strata_backend_component_t;

#ifdef __cplusplus
}
#endif

#endif /* STRATA_BACKEND_H */
