/* SPDX-License-Identifier: MIT */
/* backends/sim/machine.h: machine descriptions for the sim backend. A
 * description is a Lua file that returns a table (see
 * lua/machines/README.md for the fields); it is evaluated in an empty,
 * sandboxed Lua state and checked field by field, so that a bad file is
 * rejected with the file, the field and the reason. */
#ifndef STRATA_SIM_MACHINE_H
#define STRATA_SIM_MACHINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <strata/common.h>

#define SIM_MAX_DEVICES 64

/* Faults injected into one device, counted from the start of the run. */
typedef struct sim_faults {
  uint64_t copy_fail_at;   /* 0: never; N: the N-th copy to or from the
                              device fails ... */
  uint32_t copy_fail_count; /* ... and the copy_fail_count - 1 after it
                               too (default 1) */
  uint64_t die_after;      /* 0: never; N: the device fails when it starts
                              its (N+1)-th task */
  uint64_t hot_after;      /* 0: never; N: after N tasks the device reports
                              hot_temperature */
  double hot_temperature;  /* degrees Celsius */
} sim_faults_t;

typedef struct sim_device_spec {
  strata_device_class_t device_class; /* "cpu", "hbm", "gddr" */
  char name[64];
  char model[64];         /* identical devices share it; default: name */
  uint64_t memory;        /* bytes; 0 for a cpu device (host memory) */
  double mem_bandwidth;   /* device memory, bytes/s */
  double link_bandwidth;  /* host link, bytes/s (0 for cpu devices) */
  double link_latency;    /* seconds; default 5e-6 */
  double fp64, fp32;      /* flop/s */
  bool ecc;
  int numa;               /* OS index of the closest NUMA node; default 0 */
  unsigned workers;       /* default 1 */
  uint64_t peers;         /* bit i: direct copies with devices[i] */
  double peer_bandwidth;  /* bytes/s of those copies; default the smaller
                             of the two link bandwidths */
  double temperature;     /* reported health: degrees Celsius, default 40 */
  double power;           /* watts, default 0 (unknown) */
  sim_faults_t faults;

  /* Facts strata_device_info shows; 0 (or "") unknown. uuid defaults to
   * "SIM-<machine>-<N>" for devices[N] when it is a card. */
  char uuid[64];
  int cc_major, cc_minor; /* compute capability */
  uint32_t memory_bus_width; /* bits */
  uint32_t pcie_gen, pcie_width; /* host link */
} sim_device_spec_t;

typedef struct sim_machine {
  char name[64];
  bool modelled;      /* time = "modelled" (else "real") */
  bool skip_kernels;  /* modelled only: do not run the kernels */
  size_t ndevices;
  sim_device_spec_t *devices;
} sim_machine_t;

/** Load and check a machine description.
 *  @param alloc, ud  allocator for the result and for the Lua state
 *  @param err        receives "FILE: FIELD: REASON" (or Lua's own
 *                    "FILE:LINE: message" for a syntax error) on failure
 *  @return 0; STRATA_EINVAL (bad description, or not a regular file:
 *          a directory, a FIFO, a device; err says why); STRATA_ENOENT
 *          (no such file); STRATA_EIO (cannot be opened or read:
 *          permission denied...); STRATA_ENOMEM
 *  The file is opened without blocking and never read unless it is a
 *  regular file, so a FIFO cannot hang the caller.
 *  @own    out: caller, free with sim_machine_free */
int sim_machine_load(const char *path, strata_alloc_fn alloc, void *ud,
                     sim_machine_t *out, char *err, size_t errlen);

void sim_machine_free(sim_machine_t *m, strata_alloc_fn alloc, void *ud);

/* {=== Arithmetic of the time model ===}
 * Modelled times are seconds in doubles. Even within the figures' ranges,
 * a task's flops (an attribute the application sets) over the slowest
 * rate, or a long run's sum of them, has no bound: every time the model
 * computes goes through these, which saturate at SIM_TIME_MAX instead of
 * reaching infinity, and never give NaN or a negative time. The ceiling
 * (about three years) is far past any study, and small enough that the
 * nanoseconds of all SIM_MAX_DEVICES devices' clocks sum within int64.
 * Pure functions: thread-safe. */
#define SIM_TIME_MAX 1e8

/** The time x in [0, SIM_TIME_MAX]: NaN and negatives are 0. */
static inline double sim_time_clamp(double x) {
  if (!(x > 0))
    return 0;
  return x < SIM_TIME_MAX ? x : SIM_TIME_MAX;
}

/** a + b, saturating (both taken as times, so clamped first). */
static inline double sim_time_add(double a, double b) {
  return sim_time_clamp(sim_time_clamp(a) + sim_time_clamp(b));
}

/** The time `amount` (bytes, flops) takes at `rate` per second: 0 when
 *  either is not positive (or NaN), SIM_TIME_MAX when it would exceed it
 *  (a huge amount, a tiny rate, infinity). */
static inline double sim_time_div(double amount, double rate) {
  if (!(amount > 0) || !(rate > 0))
    return 0;
  if (amount / SIM_TIME_MAX >= rate) /* the quotient saturates */
    return SIM_TIME_MAX;
  return sim_time_clamp(amount / rate);
}

/** The time s (seconds) in whole nanoseconds, rounded, saturating. */
static inline uint64_t sim_time_ns(double s) {
  return (uint64_t)(sim_time_clamp(s) * 1e9 + 0.5);
}

#endif /* STRATA_SIM_MACHINE_H */
