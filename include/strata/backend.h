/* SPDX-License-Identifier: MIT */
/* strata/backend.h: the plugin ABI. A backend is a libtool module that
 * exports exactly one symbol, a const strata_backend_component_t, and
 * reaches the core only through the services table it is given. */
#ifndef STRATA_BACKEND_H
#define STRATA_BACKEND_H

#include <strata/common.h>
#include <strata/kernel.h>
#include <strata/machine.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bump the major for any change of layout or meaning: the loader rejects a
 * plugin whose major differs from its own. Bump the minor when fields are
 * appended (taken from `reserved`): the loader accepts plugins whose minor
 * is not newer than its own. */
#define STRATA_BACKEND_ABI_MAJOR 1
#define STRATA_BACKEND_ABI_MINOR 0

/* The exported symbol of backend "cuda-hbm" is
 * strata_backend_cuda_hbm_component: "strata_backend_" + the plugin file
 * name with '-' mapped to '_' + "_component". */
#define STRATA_BACKEND_EXPORT __attribute__((visibility("default")))

/** The core as seen by one backend (opaque). */
typedef struct strata_core strata_core_t;
/** One of the core's devices (opaque), handed to the backend at start. */
typedef struct strata_device_handle strata_device_handle_t;

/** One unit of work handed to a backend worker: call fn(&call), then
 *  report the result with services->complete. */
typedef struct strata_work {
  strata_kernel_fn fn;       /* the implementation for this device */
  strata_kernel_call_t call; /* its arguments; buffers already valid on
                                the device */
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
   *  @param timeout_ns  0: do not wait; < 0: wait without limit
   *  @return 0 (*out set); STRATA_EAGAIN (timed out); STRATA_ESHUTDOWN
   *          (the device is stopping: the worker must return)
   *  @thread the worker's own thread */
  int (*next)(strata_core_t *core, strata_device_handle_t *dev, unsigned worker,
              int64_t timeout_ns, strata_work_t **out);

  /** Report that work taken with next() ended: status 0, or the kernel's
   *  non-zero return. The work pointer is dead afterwards.
   *  @thread the worker that took it */
  void (*complete)(strata_core_t *core, strata_work_t *work, int status);

  /** Allocate through the embedder's allocator, strata_alloc_fn style
   *  (nsize 0 frees ptr of osize bytes). Backends use it for their state
   *  so that the embedder sees, caps and checks every allocation.
   *  @thread any */
  void *(*alloc)(strata_core_t *core, void *ptr, size_t osize, size_t nsize);

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

/** A device a backend drives, as reported by probe. */
typedef struct strata_backend_device {
  strata_device_class_t device_class;
  /* Which kernel implementation it runs: its own class for real devices;
   * a simulated GPU runs the CPU implementation. */
  strata_device_class_t impl_class;
  char name[64];
  uint64_t memory_bytes;
  int32_t numa_node; /* OS index; -1 unknown */
  uint32_t nworkers; /* threads that will call next() for it (>= 1) */
  /* Logical core index (strata_machine_t.cores) each worker is bound to;
   * NULL: workers are bound to the NUMA node. Owned by the backend. */
  const uint32_t *worker_cores;
  char pci_busid[16];
  float link_gbps;
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

  /** Report the devices this backend drives (possibly none).
   *  @own    *devices: backend, valid until fini
   *  @thread owner */
  int (*probe)(void *state, const strata_backend_device_t **devices,
               size_t *ndevices);

  /** Start the workers of every probed device; handles[i] names device i
   *  of probe's list in calls to next(). If start fails, the core still
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

  void *reserved[8]; /* must be NULL */
} strata_backend_component_t;

#ifdef __cplusplus
}
#endif

#endif /* STRATA_BACKEND_H */
