/* SPDX-License-Identifier: MIT */
/* runtime/scheduling/plan.h: the policy engine's plan of placed work, behind
 * the earliest-finish-time helpers (machine.finish_time, machine.eft).
 *
 * Every task placed while estimates are kept gets an estimated start and
 * finish on one timeline, as in HEFT's list scheduling: it starts when a
 * worker slot of its device is free, its inputs' writers have finished,
 * and its copies have crossed the host link, which carries one copy at a
 * time. Counting work at placement (not when it becomes ready) is what
 * lets a DAG submitted in one go spread: the backlog of a device includes
 * the tasks that wait for others. The timeline is real time since the
 * runtime started, or, on a machine whose time is modelled, the furthest
 * modelled clock.
 *
 * Thread safety: any thread; fields are atomics read and written without
 * a lock, so two tasks placed at the same instant may plan the same slot
 * (an estimate, never a correctness question). */
#ifndef STRATA_PLAN_H
#define STRATA_PLAN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strata_runtime;
struct strata__task;
struct strata__buffer;

typedef struct strata__plan {
  _Atomic uint64_t *slot_free; /* per worker slot: free from (plan ns) */
  size_t *first_slot;          /* per device: its first slot */
  /* Per device and direction (STRATA__PLAN_LINK): its host link free from.
   * Links are full duplex: copies in and out do not wait for each other. */
  _Atomic uint64_t *link_free;
  size_t nslots, ndevices;
  bool modelled; /* the timeline follows modelled clocks */
  uint64_t origin;
} strata__plan_t;

/* The index of device d's host link, out of the card or into it. */
#define STRATA__PLAN_LINK(d, out) (2 * (d) + ((out) ? 1 : 0))

/* The links a task's copies cross, at most this many tracked. */
#define STRATA__PLAN_LINKS 8

/* A task's estimated run on one device (seconds on the timeline). */
typedef struct strata__plan_est {
  double now, start, finish;
  double copy_s;   /* its copies' time, one after the other */
  size_t slot;     /* the worker slot it takes */
  double slot_end; /* that slot's booked time after it */
  int nlinks;
  int link[STRATA__PLAN_LINKS];
  double link_end[STRATA__PLAN_LINKS];
  /* Inputs its copies stage in host memory, and when they land there. */
  int nstaged;
  struct strata__buffer *staged[STRATA__PLAN_LINKS];
  double staged_at[STRATA__PLAN_LINKS];
} strata__plan_est_t;

/** Size the plan for rt's devices. @return 0; STRATA_ENOMEM */
int strata__plan_init(strata__plan_t *pl, struct strata_runtime *rt,
                      bool modelled);
void strata__plan_fini(strata__plan_t *pl, struct strata_runtime *rt);

/** Now on the plan's timeline, in seconds. */
double strata__plan_now(const strata__plan_t *pl,
                        const struct strata_runtime *rt);

/* One host link crossing of a copy: which link, how long. */
typedef struct strata__plan_leg {
  int link; /* STRATA__PLAN_LINK */
  double seconds;
  bool to_host; /* out of a card into host memory */
} strata__plan_leg_t;

/** The host link crossings a task on device d needs to read buffer b
 *  (0: none, it is there or will be), filled into legs. A copy the plan
 *  already stages through host memory starts there (*staged: when). */
int strata__plan_copy(const struct strata_runtime *rt,
                      const struct strata__buffer *b, int d,
                      strata__plan_leg_t legs[2], double *staged);

/** Estimate t on device d of rt at time `now` (from strata__plan_now),
 *  against what pl has placed. @thread any (reads pl's atomics) */
void strata__plan_eval(const strata__plan_t *pl, struct strata_runtime *rt,
                       const struct strata__task *t, int d, double now,
                       strata__plan_est_t *e);

/** Keep e, t's estimate on d, for the placement of t that follows on this
 *  thread (eft's choice: placing it then needs no second evaluation). */
void strata__plan_remember(const strata__plan_t *pl,
                           const struct strata__task *t, int d,
                           const strata__plan_est_t *e);
/** The estimate kept for t on d by this thread, if any; forgets it. */
bool strata__plan_recall(const strata__plan_t *pl, const struct strata__task *t,
                         int d, strata__plan_est_t *e);
/** Forget what this thread kept (a new placement starts). */
void strata__plan_forget(void);

/** Enter t, placed on d as e estimated, in the plan; d becomes the device
 *  the buffers t writes will be on. */
void strata__plan_commit(strata__plan_t *pl, const struct strata__task *t,
                         int d, const strata__plan_est_t *e);

#endif /* STRATA_PLAN_H */
