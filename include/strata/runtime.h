/* SPDX-License-Identifier: MIT */
/* strata/runtime.h: runtime lifecycle, options, devices and the machine
 * view. */
#ifndef STRATA_RUNTIME_H
#define STRATA_RUNTIME_H

#include <stdbool.h>
#include <strata/common.h>
#include <strata/machine.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Threading: a runtime is safe to use from several threads at once only
 * through functions tagged `@thread any`. Functions tagged `@thread owner`
 * must not run concurrently with any other call on the same runtime. */

typedef struct strata_runtime strata_runtime_t;

/** Options for strata_runtime_create. Plain data: always start from
 *  strata_runtime_opts_init(), then change the fields you need, so that a
 *  program compiled against this header keeps working with a newer
 *  library. Strings are copied during strata_runtime_create. */
typedef struct strata_runtime_opts {
  size_t struct_size; /* sizeof(strata_runtime_opts_t), set by _init */

  strata_alloc_fn alloc; /* NULL: the C library's realloc and free */
  void *alloc_ud;

  strata_log_fn log; /* NULL: messages are dropped */
  void *log_ud;
  strata_log_level_t log_level; /* messages above this level are not even
                                   formatted; default STRATA_LOG_WARN */

  /* Option strings: lists ("a,b"), and backend_options' sections. Nothing
   * in them is trimmed; an empty item (a stray separator), a name holding
   * a space, a repeated name or key, a setting without '=' or a section
   * without ':' makes strata_runtime_create fail with STRATA_EINVAL and
   * an ERROR that names the option and the position. */
  /* Colon-separated directories searched for backend plugins (empty
   * entries are skipped). NULL: the directory configured at build time
   * (--with-backend-path, by default $(pkglibdir)). */
  const char *backend_path;
  /* Comma-separated backend names to load ("cpu,cuda-hbm"). NULL: every
   * backend found in the path. */
  const char *backends;
  /* Comma-separated backend names that must load, probe and start, or
   * creation fails with STRATA_EBACKEND. NULL: none. */
  const char *required_backends;
  /* Per-backend settings: "name:key=value,key=value;name2:key=value".
   * A value may hold '=' and ':' but not ',' or ';'. A section naming a
   * backend that no directory of the path holds is refused
   * (STRATA_EINVAL); one for a backend that is there but not loaded is
   * not. A key the backend does not know is the backend's to judge: the
   * shipped ones ignore keys they do not read. */
  const char *backend_options;

  /* Worker threads of the CPU backend in total (one per core, spread over
   * NUMA nodes in core order). 0: one per core. */
  unsigned cpu_workers;

  /* An hwloc XML file describing the machine instead of discovering this
   * one (testing, what-if studies). Threads are not bound then. */
  const char *topology_xml;

  /* {=== Memory (see strata/data.h) ===} */
  /* A pinned host-memory tier of this many bytes, where data evicted from
   * device memory goes first. 0: none. */
  uint64_t pinned_bytes;
  /* Cap on the host memory held by buffers the runtime allocates
   * (strata_buffer_create); beyond it they spill. 0: no cap. Registered
   * buffers live in the caller's memory and never count. */
  uint64_t host_bytes;
  /* Directory for the last tier: data that fits nowhere else is written
   * there (with checksums) and read back. NULL: none. The directory stays
   * the caller's: strata_runtime_create makes a private subdirectory in
   * it (strata-XXXXXX, mode 0700, checked to be this user's) and
   * strata_runtime_destroy removes it with everything in it. Files there
   * are created anew (never opened through a link or over an existing
   * file), mode 0600, under unpredictable names, and removed as soon as
   * their copy is no longer valid. When the directory is full (ENOSPC,
   * EDQUOT, EFBIG) or fails (EIO...), an operation that needs it tries a
   * few times over some 20 ms, then fails with STRATA_ENOSPC or
   * STRATA_EIO: a task ends with that status (its job reports it), and
   * the data it would have moved stays where it was. Each kind of
   * failure is logged once, and counted; the counts are logged at
   * destroy. */
  const char *spill_dir;
  /* Where data evicted from device memory goes, in order of preference:
   * a comma-separated list of "pinned", "host", "spill". NULL: "pinned,
   * host" when there is a pinned tier, else "host". */
  const char *device_tiers;
  /* Cap on each device's memory, below what it has (tests, sharing a card
   * with others). 0: all of it. */
  uint64_t device_bytes;
  /* Copy every buffer a task wrote on a device back to host memory before
   * the task counts as done, so that a device failure loses no data (at
   * the cost of host-link traffic). 0: write back only on eviction and
   * when the application takes the data back. */
  int eager_writeback;
  /* Start copying a task's inputs to its device as soon as it is ready
   * and placed, so the copies overlap other tasks' compute. A prefetch
   * takes free room, or room made by evicting clean replicas (another
   * valid copy exists) that no staged or running task holds and the
   * policy does not keep there; it never writes data back, so it never
   * evicts modified data. Default 1; 0: copy when the task is staged. */
  int prefetch;

  /* {=== Policy (see strata/policy.h and lua/README.md) ===} */

  /* The policy script. NULL: tiered.lua, built into the library; "": no
   * policy (the built-in least-loaded placement, default tiers). */
  const char *policy;
  /* Lua VM instructions one hook call may run. 0: 200000. */
  uint64_t policy_budget;
  /* Bytes the policy's Lua state may hold. 0: 16 MiB. */
  uint64_t policy_memory;
  /* Health readings that call the alert hook. 0: 85 degrees C, 300 W. */
  double alert_temperature, alert_power;
  /* How often the runtime reads device health (milliseconds). 0: 1000;
   * negative: never (strata_health_check still works). */
  int health_period_ms;
  /* Keep, per task, why it was placed where it was
   * (strata_task_decision). */
  int record_decisions;
  /* A file where performance models are loaded from at creation and saved
   * to at destruction. NULL: kept in memory only. */
  const char *perf_models;
  /* Wall-clock time one policy hook call may take, time in C functions
   * included (milliseconds); a call past it fails as one past its
   * instruction budget does. Also the longest a thread waits for the
   * policy engine while another thread's hook runs, before the default
   * decides for it. 0: 50. */
  uint32_t policy_time_ms;

  /* {=== Backends that stall ===} */
  /* How long after creation a device may go without any of its workers
   * asking for work (milliseconds). A backend whose start succeeded but
   * that never runs a device's workers would leave the tasks placed there
   * waiting forever: such a device is failed instead (logged at ERROR), so
   * that its tasks run elsewhere or end STRATA_EDEVICE. 0: 5000;
   * negative: never. */
  int worker_start_timeout_ms;

  /* {=== Managed memory ===} */
  /* Devices whose replicas live in managed memory (one allocation the
   * host and the device both see, moved ahead of each task with the
   * backend's prefetch) instead of device memory: a comma-separated list
   * of device names, or "all". A device named here whose backend does not
   * offer managed memory keeps device memory (logged at INFO). A device
   * that offers only managed memory uses it anyway. NULL: none. */
  const char *managed_devices;

  /* {=== Idle workers ===} */
  /* The longest the first idle worker of a device polls for new work
   * before it sleeps (microseconds). A task submitted while a worker polls
   * starts within a few microseconds; one submitted to a sleeping worker
   * waits for a wake-up, the machine's cost of waking a thread on another
   * core (a few microseconds on bare metal, tens on a virtual machine).
   * The poll adapts to the pauses the device sees between tasks: a few
   * times the recent ones, from 20 us up to this (it starts at 500 us, or
   * this if smaller), so that a stream of tasks fed one at a time leaves
   * no core polling. One worker per device polls (yielding its core to
   * any other thread that wants it); after the poll, workers sleep until
   * work arrives (those of a device whose tasks are short look at its
   * queue now and then: well under 1% of a core). 0: 4000, so that a
   * runtime idle for longer than 10 ms no longer polls; negative: never
   * poll. */
  int idle_poll_us;

  /* {=== Health alerts (appended; see alert_temperature) ===} */
  /* Thresholds per device class, over alert_temperature and alert_power
   * for that class: sections "CLASS:temperature=C,power=W", e.g.
   * "hbm:power=700;gddr:temperature=80". NULL: every class has the
   * global ones. A malformed string fails creation (STRATA_EINVAL,
   * logged). */
  const char *alert_thresholds;
  /* How far below its threshold a reading must fall before its alert
   * clears (the policy's alert_cleared hook), so that a reading hovering
   * at the threshold raises it once. 0: 5 degrees C and 25 W. */
  double alert_clear_temperature, alert_clear_power;
} strata_runtime_opts_t;

/** Fill `opts` with the defaults described above.
 *  @thread any */
STRATA_API void strata_runtime_opts_init(strata_runtime_opts_t *opts);

/** Map the machine, load and start the backends, and return a runtime.
 *  Backend plugins that fail to load are logged at WARN and skipped.
 *  @param[in]  opts  options (NULL: defaults)
 *  @param[out] out   the new runtime
 *  @return 0; STRATA_EINVAL (bad option, a malformed option string, or
 *          no private directory can be
 *          made in spill_dir: missing, not a directory, not writable),
 *          STRATA_ENOSPC or STRATA_EIO (the same, for lack of room or an
 *          I/O error), STRATA_ETOPOLOGY (hwloc failed or the XML file
 *          is unreadable), STRATA_EBACKEND (a required backend did not
 *          load), STRATA_ENODEV (no backend provided any device)
 *  @own    *out: caller, destroy with strata_runtime_destroy
 *  @thread any  @blocks while backends start */
STRATA_API int strata_runtime_create(const strata_runtime_opts_t *opts,
                                     strata_runtime_t **out) STRATA_WARN_UNUSED;

/** Shut the runtime down. From the moment this is called, submissions
 *  from any thread fail with STRATA_ESHUTDOWN; tasks created but never
 *  submitted are discarded (their dependents end STRATA_ECANCELED); every
 *  submitted task runs to completion (nothing already submitted is lost),
 *  and every completion callback due runs (strata/task.h); then workers
 *  stop, backends unload, the event fd is closed and every handle is
 *  released.
 *  @return 0; STRATA_EINVAL (rt is NULL); STRATA_EBUSY (called from a
 *          completion callback: nothing was done)
 *  @own    rt: freed; the pointer and all handles of rt are dead on return
 *  @thread owner (other threads may still be inside `any` calls, which
 *          then fail with STRATA_ESHUTDOWN) @blocks until drained */
STRATA_API int strata_runtime_destroy(strata_runtime_t *rt);

/** Wait until every submitted task has ended (ok, failed or canceled).
 *  Tasks submitted concurrently by other threads are waited for too. Their
 *  completion callbacks may still be running or due when it returns.
 *  @return 0
 *  @thread any  @blocks yes */
STRATA_API int strata_runtime_wait_all(strata_runtime_t *rt);

/** Embedder-owned pointer slot; the runtime never looks at it.
 *  @thread any */
STRATA_API void strata_runtime_set_data(strata_runtime_t *rt, void *data);
STRATA_API void *strata_runtime_get_data(const strata_runtime_t *rt);

/** The machine the runtime mapped.
 *  @return a view owned by rt, valid until strata_runtime_destroy
 *  @thread any */
STRATA_API const strata_machine_t *
strata_runtime_machine(const strata_runtime_t *rt);

/* {=== Devices ===} */

/** What a device is.
 *
 *  Output structs (this one, strata_device_stats_t, strata_task_info_t,
 *  strata_job_info_t) start with struct_size: set it to sizeof the struct
 *  before the call. The library fills the fields both it and the caller
 *  know of, so programs built against an older, smaller struct keep
 *  working with a newer library. */
typedef struct strata_device_info {
  size_t struct_size;
  int index; /* 0..strata_device_count()-1 */
  strata_device_class_t device_class;
  char name[64];    /* "cpu0 (AMD EPYC 7B13)", "NVIDIA H100 80GB HBM3" */
  char backend[32]; /* plugin that drives it: "cpu" */
  uint64_t memory_bytes;
  int32_t numa_node;    /* OS index of the closest NUMA node, -1 unknown */
  uint32_t workers;     /* threads that run its tasks */
  uint32_t cores;       /* distinct cores its workers are assigned to (0 for
                           GPUs; binding happens only on this machine) */
  char pci_busid[16];   /* "" for CPU devices */
  float link_gbps;      /* host link in GB/s, 0 unknown or n/a */
  int memory_node;      /* where its tasks' data lives (strata/data.h) */
  double mem_bandwidth; /* bytes/s; 0 unknown */
  double fp64_flops, fp32_flops; /* flop/s; 0 unknown */
  int32_t ecc;                   /* 1 yes, 0 no, -1 unknown */
  int32_t failed;                /* the device failed: it runs nothing */
  char model[64];  /* the kind of device, shared by identical cards */
  float peer_gbps; /* direct copies from its peers, GB/s; 0: no peers */
  char uuid[64];   /* the card's identity ("GPU-5f3c..."); "" unknown */
  int32_t cc_major, cc_minor;    /* compute capability; 0.0 unknown or n/a */
  uint32_t memory_bus_width;     /* bits; 0 unknown */
  uint32_t pcie_gen, pcie_width; /* host link; 0 unknown or not PCIe */
  int32_t managed; /* 1: its tasks' data lives in managed memory */
  uint32_t npeers; /* devices, of any backend, it copies from directly */
} strata_device_info_t;

/** Cumulative counters of a device since the runtime started. */
typedef struct strata_device_stats {
  size_t struct_size;
  uint64_t tasks_run;    /* kernels that ran, successful or not */
  uint64_t tasks_failed; /* kernels that reported failure */
  uint64_t busy_ns;      /* sum over the device's workers of time spent
                            in kernels */
  uint64_t load;         /* tasks placed here that have not ended yet */
  /* How the device's idle workers waited (strata_runtime_opts_t.
   * idle_poll_us): polls begun, polls that found work, times a worker
   * went to sleep, and wake-ups issued to sleeping workers. */
  uint64_t idle_polls, idle_poll_hits, sleeps, wakeups;
} strata_device_stats_t;

/** @return the number of devices (>= 1 for a created runtime)
 *  @thread any */
STRATA_API int strata_device_count(const strata_runtime_t *rt);

/** Describe device `index`.
 *  @return 0; STRATA_ERANGE (no such index); STRATA_EINVAL (struct_size
 *          holds no field)
 *  @thread any */
STRATA_API int strata_device_info(const strata_runtime_t *rt, int index,
                                  strata_device_info_t *out);

/** Is device src's memory copied straight into device dst's (a peer path:
 *  each lists the other, of the same backend or not), and how fast?
 *  @param[out] bytes_per_s  the path's bandwidth, 0 unknown (may be NULL)
 *  @return 1 direct; 0 not (copies go through host memory); STRATA_EINVAL
 *          (rt NULL); STRATA_ERANGE (no such device)
 *  @thread any */
STRATA_API int strata_device_peer(const strata_runtime_t *rt, int dst, int src,
                                  double *bytes_per_s);

/** Read the counters of device `index` (each one is read atomically; the
 *  set is not a snapshot).
 *  @return 0; STRATA_ERANGE; STRATA_EINVAL (struct_size holds no field)
 *  @thread any */
STRATA_API int strata_device_stats(const strata_runtime_t *rt, int index,
                                   strata_device_stats_t *out);

/** Live health of a device (temperature, power, ...), as far as its
 *  backend can read it; unknown values are negative (temperature below
 *  -273) or empty. Fields are appended, never moved: a backend writes
 *  only those within the struct_size it is handed, and the core starts
 *  every field at "unknown". */
typedef struct strata_health {
  size_t struct_size;
  double temperature_c;
  double power_w;     /* board power draw, watts */
  double utilisation; /* 0..1 of the last sample period */
  int32_t throttled;  /* 1 yes, 0 no, -1 unknown: clocks held down by
                         something other than idleness or the
                         application's own clock settings */
  /* {=== Appended for the GPU backends ===} */
  /* NVIDIA's clock-event reason bits (nvmlClocksEventReasons) as read;
   * 0 none or unknown (see throttled). */
  uint64_t throttle_reasons;
  int64_t memory_used_bytes; /* device memory in use, by anyone */
  int32_t ecc_mode;          /* ECC on now: 1 yes, 0 no, -1 unknown or
                                not supported (consumer cards) */
  /* Volatile ECC error counts (since the driver loaded); -1 unknown. An
   * uncorrected error means the card's memory can no longer be trusted. */
  int64_t ecc_corrected, ecc_uncorrected;
  int32_t pcie_gen, pcie_width; /* the link as it runs now; -1 unknown */
  int32_t persistence_mode;     /* 1 on, 0 off, -1 unknown */
  /* NVML's compute mode: 0 default (shared), 2 prohibited, 3 exclusive
   * process; -1 unknown. */
  int32_t compute_mode;
  char driver_version[32]; /* "580.65.06"; "" unknown */
} strata_health_t;

/** @return 0; STRATA_EINVAL (rt or out NULL, struct_size too small);
 *          STRATA_ERANGE; STRATA_ENOTSUP (the backend cannot tell); or
 *          the backend's error
 *  @thread any */
STRATA_API int strata_device_health(const strata_runtime_t *rt, int index,
                                    strata_health_t *out);

/** Inject a fault into a device, for testing how an application (or a
 *  policy) copes; only backends made for it (sim) support this.
 *  Faults: "copy_fail" (its next `value` copies fail), "die" (it fails
 *  when it next starts a task; value ignored), "temperature" and "power"
 *  (it reports this reading from now on; value < -273 or < 0 goes back to
 *  the real one).
 *  @return 0; STRATA_ERANGE; STRATA_EINVAL (fault NULL, unknown, or a bad
 *          value); STRATA_ENOTSUP (the device's backend cannot)
 *  @thread any */
STRATA_API int strata_device_inject(strata_runtime_t *rt, int index,
                                    const char *fault, double value);

/** A device's virtual clock, for devices whose time is modelled rather
 *  than measured (the sim backend's "modelled" machines). The modelled
 *  makespan of a run is the largest clock_ns. */
typedef struct strata_device_model {
  size_t struct_size;
  uint64_t clock_ns; /* virtual time at which its last task ended */
  uint64_t busy_ns;  /* virtual time spent computing */
  uint64_t copy_ns;  /* virtual time its host link spent copying */
} strata_device_model_t;

/** @return 0; STRATA_EINVAL (rt or out NULL, struct_size too small);
 *          STRATA_ERANGE; STRATA_ENOTSUP (time is not modelled); or the
 *          backend's error
 *  @thread any */
STRATA_API int strata_device_model(const strata_runtime_t *rt, int index,
                                   strata_device_model_t *out);

#ifdef __cplusplus
}
#endif

#endif /* STRATA_RUNTIME_H */
