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
#define STRATA_BACKEND_ABI_MAJOR 3
#define STRATA_BACKEND_ABI_MINOR 0

/* The exported symbol of backend "cuda-hbm" is
 * strata_backend_cuda_hbm_component: "strata_backend_" + the plugin file
 * name with '-' mapped to '_' + "_component". */
#define STRATA_BACKEND_EXPORT __attribute__((visibility("default")))

/* Limits on what probe may report. The core checks every field of every
 * device before using any (see strata_backend_device_t) and refuses the
 * whole backend, with a WARN naming the plugin, the device and the field,
 * when one is out of bounds. */
#define STRATA_BACKEND_DEVICES_MAX 64
/* Workers per device: as many as the cpu backend accepts for a machine
 * of one NUMA node. */
#define STRATA_BACKEND_WORKERS_MAX 4096
/* Entries of one device's peers list (machine-wide, all backends). */
#define STRATA_BACKEND_PEERS_MAX 256

/* Device numbers in a copy (strata_backend_copy_t) that are not one of
 * the backend's own devices. */
#define STRATA_BACKEND_HOST (-1)    /* host memory */
#define STRATA_BACKEND_FOREIGN (-2) /* a device of another backend */
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

/** Kinds of memory a device with its own memory offers (bits of
 *  strata_backend_device_t.memory_kinds). */
typedef enum strata_memory_kind {
  STRATA_MEMORY_DEVICE = 1,  /* mem_alloc: device memory, reached by copies */
  STRATA_MEMORY_MANAGED = 2, /* managed_alloc: one allocation visible to the
                                host and the device, moved by
                                managed_prefetch */
} strata_memory_kind_t;

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

/** One copy the core asks a backend to make (copy or copy_async). Owned
 *  by the core; valid until copy returns, or for copy_async until the
 *  backend has called copy_done for it. Later minors append fields. */
typedef struct strata_backend_copy {
  /* Index of a device of this backend (probe's list), or
   * STRATA_BACKEND_HOST. The destination is never foreign. */
  int32_t dst_dev;
  /* Same, or STRATA_BACKEND_FOREIGN: another backend's device, named by
   * src_busid, that this device listed as a peer (see peers) and that
   * listed this one: a direct copy between devices of two backends is
   * always made by the destination's backend. */
  int32_t src_dev;
  void *dst;
  const void *src; /* for a foreign source: its backend's pointer */
  size_t size;
  char src_busid[16]; /* src_dev FOREIGN: the source's pci_busid; else "" */
} strata_backend_copy_t;

/** A device that a probed device can reach directly (peer to peer),
 *  machine-wide: a device of this backend or of another one. */
typedef struct strata_backend_peer {
  char busid[16];   /* its pci_busid, NUL-terminated, not empty */
  double bandwidth; /* bytes/s of a direct copy; 0 unknown (taken as the
                       slower host link of the two) */
} strata_backend_peer_t;

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
   *          may change between calls only when it holds nothing (every
   *          work taken for that index has been completed: complete()
   *          returned) */
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

  /** Report that an operation started with copy_async or managed_prefetch
   *  ended: status 0, or a STRATA_E* code (the core retries a failed copy
   *  a few times, then gives up on it). Exactly once per started
   *  operation, in any order; the token is dead afterwards. May be called
   *  from inside copy_async or managed_prefetch, before they return.
   *  @own    token: the core's, borrowed until this call
   *  @thread any (a backend's completion thread: it must not hold a lock
   *          that copy_async takes, since the core may start its retry, or
   *          the next copy of the same request, from inside this call) */
  void (*copy_done)(strata_core_t *core, void *token, int status);

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
 *  same struct_size, which is the size of one published layout (3.0). The
 *  strings are NUL-terminated within their arrays. Pointers are the
 *  backend's, valid until its fini. */
typedef struct strata_backend_device {
  uint32_t struct_size; /* sizeof(strata_backend_device_t) as compiled:
                           the core steps through probe's array with it */
  strata_device_class_t device_class;
  char name[64];
  /* The kind of device, the same for identical cards (performance models
   * are kept per model, not per device): "NVIDIA H100 80GB HBM3".
   * "": the name. */
  char model[64];
  /* The card's own identity, stable across reboots and bus renumbering:
   * "GPU-5f3c0c6e-...". "": unknown (a CPU, a simulated card without one). */
  char uuid[64];
  /* "0000:17:00.0"; "": none (then no other device can list it as a
   * peer). Unique machine-wide: a bus id two devices share is refused. */
  char pci_busid[16];
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
  /* Logical core index (strata_machine_t.cores) each worker is bound to;
   * NULL: workers are bound to the NUMA node. */
  const uint32_t *worker_cores;

  /* {=== Memory ===} */
  /* 1: tasks work on device memory that the core manages through the
   * component's mem_alloc (or managed_alloc), mem_free and copy or
   * copy_async; 0: on host memory (CPU). */
  int32_t own_memory;
  /* own_memory 1: the STRATA_MEMORY_* kinds it offers (0: DEVICE alone);
   * MANAGED needs managed_alloc, managed_free and managed_prefetch. The
   * core uses managed memory for the device's replicas only when the
   * embedder asks for it (strata_runtime_opts_t.managed_devices) or when
   * it is the only kind offered. own_memory 0: must be 0. */
  uint32_t memory_kinds;
  /* Who caches freed device blocks: 0: the core keeps them for reuse (an
   * exact-size cache, as allocation on a GPU is slow); 1: the backend has
   * its own pool (stream-ordered allocation), so the core gives every
   * block back with mem_free at once. 1 needs own_memory. */
  int32_t memory_pool;

  /* {=== Rates ===} */
  double link_bandwidth; /* host link */
  double link_latency;
  double mem_bandwidth;
  double fp64_flops, fp32_flops;

  /* {=== Facts (strata_device_info_t shows them) ===} */
  int32_t ecc; /* 1 yes, 0 no, -1 unknown */
  /* Compute capability (CUDA: 9.0 for an H100); 0.0: unknown or not a
   * CUDA device. major 0 to 99, minor 0 to 9. */
  int32_t cc_major, cc_minor;
  uint32_t memory_bus_width; /* bits (5120 for HBM3, 384 for GDDR6X); 0
                                unknown; at most 65536 */
  /* Host link: PCIe generation (1 to 7) and lanes (1, 2, 4, 8, 12, 16
   * or 32); 0: unknown or not PCIe. */
  uint32_t pcie_gen, pcie_width;

  /* {=== Peers ===} */
  /* Devices, of this backend or any other, that this one can copy from
   * directly (npeers entries, at most STRATA_BACKEND_PEERS_MAX; NULL when
   * 0). A path exists only where both ends list each other; the core
   * builds one matrix over every device of every backend from these
   * lists. Needs own_memory and a pci_busid; a device cannot list itself. */
  const strata_backend_peer_t *peers;
  uint32_t npeers;

  /* {=== Execution ===} */
  /* Kernel implementations, by what runs them (strata/kernel.h): the
   * device is a candidate for a kernel that has code of candidate_impl
   * (and of run_impl), and calls the run_impl code. CPU: CPU/CPU; a CUDA
   * card: CUDA/CUDA; a simulated GPU: CUDA/CPU (placed only where a real
   * card could run the kernel, running its CPU code as the stand-in). */
  strata_impl_kind_t candidate_impl;
  strata_impl_kind_t run_impl;
  /* Works the device may hold at once, taken with next() and not yet
   * completed, all its workers together: 1 to
   * STRATA_BACKEND_INFLIGHT_MAX; 0 means nworkers (one per worker). */
  uint32_t inflight_depth;
} strata_backend_device_t;

/** The one symbol a backend exports. init, probe, start, stop and fini
 *  are required; the others are optional (NULL) unless a device needs
 *  them, as said below. */
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

  /** Join the workers and any completion thread. Called after the core
   *  has made next() answer STRATA_ESHUTDOWN on every device of this
   *  backend, and once no copy or prefetch it started is outstanding.
   *  @thread owner */
  void (*stop)(void *state);

  /** Free everything; state is dead afterwards.
   *  @thread owner */
  void (*fini)(void *state);

  /* {=== Device memory (required when a device has own_memory) ===}
   * `dev` is the index of the device in probe's list. The core keeps the
   * accounts (capacity, eviction, and the caching of freed blocks unless
   * the device has memory_pool): these only move bytes. A device with
   * own_memory needs mem_alloc and mem_free (when it offers
   * STRATA_MEMORY_DEVICE) and at least one of copy and copy_async. */

  /** Allocate `size` bytes on device `dev`.
   *  @return 0; STRATA_ENOMEM  @thread any */
  int (*mem_alloc)(void *state, unsigned dev, size_t size, void **ptr);
  /** Free a block mem_alloc returned. @thread any */
  void (*mem_free)(void *state, unsigned dev, void *ptr, size_t size);
  /** Make the copy `op` describes and return when it is done: the simple
   *  form, which the core runs on its own threads (it wraps it for
   *  callers that wait on a fence). Used only when copy_async is NULL.
   *  @return 0, or a STRATA_E* code (the core retries a few times, then
   *          gives up; at once on STRATA_EINVAL or STRATA_ENOTSUP, a copy
   *          the backend refuses, and STRATA_EDEVICE, a device gone)
   *  @thread any */
  int (*copy)(void *state, const strata_backend_copy_t *op);
  /** Start the copy `op` describes and return; report its end with the
   *  core's copy_done(token, status), exactly once, from any thread.
   *  Several copies may be outstanding, and they may end in any order.
   *  @return 0 (started: copy_done follows); a STRATA_E* code (not
   *          started: copy_done is never called for this token). A
   *          failure, returned or reported, is retried as copy's are.
   *  @own    op: the core's, valid until copy_done  @thread any, also
   *          from inside copy_done */
  int (*copy_async)(void *state, const strata_backend_copy_t *op, void *token);

  /* {=== Host memory (optional) ===}
   * Page-locked host memory, which a device's DMA engine reaches without a
   * bounce: the core's pinned tier and its staging buffers come from
   * here when the backend offers it. One backend provides it for the whole
   * runtime (the first, by name, that offers host_alloc; else the first
   * that offers host_register, over memory of the embedder's allocator);
   * the memory must be usable by every device of that backend. */

  /** Allocate `size` bytes of pinned host memory.
   *  @return 0; STRATA_ENOMEM  @thread any */
  int (*host_alloc)(void *state, size_t size, void **ptr);
  /** Free a block host_alloc returned. @thread any */
  void (*host_free)(void *state, void *ptr, size_t size);
  /** Pin (page-lock and register) existing host memory.
   *  @return 0; STRATA_ENOMEM; STRATA_EINVAL (the range cannot be)
   *  @thread any */
  int (*host_register)(void *state, void *ptr, size_t size);
  /** Undo host_register on the same range. @thread any */
  void (*host_unregister)(void *state, void *ptr, size_t size);

  /* {=== Managed memory (required when a device offers
   * STRATA_MEMORY_MANAGED) ===} */

  /** Allocate `size` bytes of managed memory for device `dev`: one
   *  pointer valid on the host and on the device.
   *  @return 0; STRATA_ENOMEM  @thread any */
  int (*managed_alloc)(void *state, unsigned dev, size_t size, void **ptr);
  /** Free a block managed_alloc returned. @thread any */
  void (*managed_free)(void *state, unsigned dev, void *ptr, size_t size);
  /** Start moving a managed range to device `dev` (or to host memory:
   *  STRATA_BACKEND_HOST) ahead of its use; report the end with
   *  copy_done(token, status), as copy_async does.
   *  @return 0 (started); a STRATA_E* code (not started, no copy_done)
   *  @thread any */
  int (*managed_prefetch)(void *state, int dev, const void *ptr, size_t size,
                          void *token);

  /* {=== Readouts (optional) ===} */

  /** Health of device `dev`. Called only from the core's health thread,
   *  every health_period_ms (placement and the policy read its cache), so
   *  it may be slow (a driver call) without delaying submission.
   *  @return 0; a STRATA_E* code (the reading is kept as unknown)
   *  @thread the core's health thread */
  int (*health)(void *state, unsigned dev, strata_health_t *out);
  /** Virtual clock of device `dev` (modelled time). @thread any */
  int (*model)(void *state, unsigned dev, strata_device_model_t *out);
  /** Make device `dev` misbehave, for testing what depends on it (see
   *  strata_device_inject for the faults). NULL: the backend cannot.
   *  @return 0; STRATA_EINVAL (unknown fault, bad value)
   *  @thread any */
  int (*inject)(void *state, unsigned dev, const char *fault, double value);

  void *reserved[8]; /* must be NULL */
} strata_backend_component_t;

#ifdef __cplusplus
}
#endif

#endif /* STRATA_BACKEND_H */
