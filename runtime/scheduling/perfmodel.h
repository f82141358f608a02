/* SPDX-License-Identifier: MIT */
/* runtime/scheduling/perfmodel.h: how long a kernel runs on a kind of device.
 * One entry per (kernel name, device model, size bucket), the bucket being the
 * power of two of the task's working set, holds the mean of the measured
 * run times (an exponential average once it has enough samples, so the
 * model follows a device that slows down). Until an entry has history,
 * estimates come from the device's rated FLOP/s and memory bandwidth.
 * Models are saved to and loaded from a text file, one entry a line:
 *   strata-perfmodel 1
 *   <count> <mean seconds> <bucket> <kernel>\t<model>
 * Thread-safety: every function takes the model's own mutex (a leaf),
 * except a lookup that finds its answer in the memo: a small direct-mapped
 * table, keyed by the callers' string pointers, read without the lock
 * (a sequence count per slot) and written under it. Callers pass the
 * same pointers for the same kernel and model (the kernel's and the
 * device's own strings) to lookups and records, or the memo may keep an
 * old answer for pointers that no record names. */
#ifndef STRATA_PERFMODEL_H
#define STRATA_PERFMODEL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "alloc.h"
#include "log.h"

typedef struct strata__perf_entry {
  char *kernel, *model; /* NULL: a free slot */
  uint32_t bucket;
  uint64_t count;
  double mean; /* seconds */
} strata__perf_entry_t;

/* A memo slot: the last answer for one (kernel, model, bucket). */
typedef struct strata__perf_memo {
  _Atomic uint32_t seq; /* odd while being written */
  _Atomic(const char *) kernel, model;
  _Atomic uint32_t bucket;
  _Atomic uint64_t count, mean_bits; /* mean: a double's bits */
} strata__perf_memo_t;

#define STRATA__PERF_MEMO 256

typedef struct strata__perfmodel {
  pthread_mutex_t mu;
  strata__perf_entry_t *slots; /* open addressing, power-of-two size */
  size_t cap, n;
  strata__perf_memo_t memo[STRATA__PERF_MEMO];
} strata__perfmodel_t;

void strata__perf_init(strata__perfmodel_t *pm);
void strata__perf_fini(strata__perfmodel_t *pm, const strata__allocator_t *a);

/** Add one measured run. Allocation failures drop the sample. */
void strata__perf_record(strata__perfmodel_t *pm, const strata__allocator_t *a,
                         const char *kernel, const char *model, uint64_t bytes,
                         double seconds);

/** The measured mean for this shape, if there is history (*count > 0). */
bool strata__perf_lookup(strata__perfmodel_t *pm, const char *kernel,
                         const char *model, uint64_t bytes, double *seconds,
                         uint64_t *count);

/** Load entries from a file written by strata__perf_save (a missing file
 *  is not an error). @return 0; STRATA_EIO (unreadable or malformed:
 *  logged, what was read is kept); STRATA_ENOMEM */
int strata__perf_load(strata__perfmodel_t *pm, const strata__allocator_t *a,
                      const char *path, const strata__logger_t *log);
/** @return 0; STRATA_EIO (logged) */
int strata__perf_save(strata__perfmodel_t *pm, const char *path,
                      const strata__logger_t *log);

struct strata_device_handle;
struct strata__task;

/** Seconds task t would run on device dev: its kernel's measured history
 *  on that model of device for working sets like t's, else its flops over
 *  the device's rated speed per worker (FP64 only for "fp64" tasks), or
 *  its bytes over memory bandwidth, whichever is longer. Placement, the
 *  plan and the policy's views all estimate through this one function.
 *  @thread any */
double strata__perf_estimate(strata__perfmodel_t *perf,
                             const struct strata_device_handle *dev,
                             const struct strata__task *t);

#endif /* STRATA_PERFMODEL_H */
