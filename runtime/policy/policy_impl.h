/* SPDX-License-Identifier: MIT */
/* runtime/policy/policy_impl.h: what the four parts of the policy engine
 * share. From the top down: policy.c (setup, the interfaces it registers,
 * reload, the public API), hooks.c (asking the place, evict, cache and
 * alert hooks and checking their answers), state.c (the Lua state in its
 * sandbox, loading a script into it, calling hooks within their limits,
 * the error log, probation, the lock) and policy_views.c (the read-only
 * views and helpers a script sees). Each file calls only the ones below
 * it. Not for other modules: they
 * use policy.h (and scheduling/plan.h takes the plan, P->plan, itself). */
#ifndef STRATA_POLICY_IMPL_H
#define STRATA_POLICY_IMPL_H

#include <lauxlib.h>
#include <lua.h>

#include "perfmodel.h"
#include "sandbox.h"
#include "plan.h"
#include "runtime.h"

/* Entries of the shape cache: where tasks of one (kernel, tier,
 * precision) go, when the place hook said its answer holds for all of
 * them. Direct-mapped by a hash of the shape. */
#define STRATA__SHAPES 256

/* Hook calls per timed one: two clock reads cost a fifth of a short hook
 * call on some machines, so one call in this many is timed and stands
 * for the others. */
#define STRATA__POLICY_CALL_SAMPLE 8

typedef struct strata__shape {
  const strata__kernel_t *kernel; /* NULL: empty */
  uint64_t mask;                  /* devices named; 0: "no opinion" */
  char tier[32];
  char precision[16];
} strata__shape_t;

/* A loaded script: its state and the references into its registry. A
 * reload builds a new one beside the running one and swaps. */
typedef struct strata__pstate {
  strata__sandbox_t *sb;                          /* NULL: no script */
  lua_State *L;                                   /* sb's state */
  int ref_place, ref_cache, ref_evict, ref_alert; /* LUA_NOREF: absent */
  int ref_alert_cleared;
  int ref_task, ref_buffer, ref_machine, ref_nodes;
  int ref_proxies;                /* read-only proxy -> the table behind it */
  int ref_task_mt, ref_device_mt; /* to recognise views quickly */
} strata__pstate_t;

/* The hooks, for their failure records. */
typedef enum strata__hook {
  STRATA__HOOK_PLACE,
  STRATA__HOOK_CACHE,
  STRATA__HOOK_EVICT,
  STRATA__HOOK_ALERT,
  STRATA__HOOKS
} strata__hook_t;

/* A hook that keeps failing is put on probation: the default decides
 * without calling it until `until_ns`, for a period that doubles each
 * time the hook fails again after one. */
typedef struct strata__probation {
  unsigned failures; /* consecutive */
  unsigned level;    /* times put on probation in a row */
  uint64_t until_ns; /* 0: not on probation */
} strata__probation_t;

typedef struct strata__policy {
  strata_runtime_t *rt;
  pthread_mutex_t mu; /* the state, the shape cache, the error log */
  strata__pstate_t s;
  atomic_bool has_place; /* the running script has a place hook */
  char name[64];
  char *path; /* NULL: the built-in tiered.lua */
  /* The subjects of the task and buffer views during a hook call; NULL
   * outside one (a view kept by the script then refuses to be read). */
  const strata__task_t *task;
  const strata__buffer_t *buffer;

  /* Limits of a state, and how long a caller waits for the engine. */
  strata__sandbox_limits_t limits;
  uint64_t wait_ns;
  strata__probation_t probation[STRATA__HOOKS];

  /* Distinct error messages already logged (hashes). */
  uint64_t *seen;
  size_t nseen, cap_seen;

  strata__shape_t shapes[STRATA__SHAPES];

  /* Alert state (the health thread calls check_health). Thresholds per
   * class and metric, the distance below one at which an alert clears,
   * and per device whether each metric's alert is raised (bit m of over,
   * the health thread's) and how often it was raised and cleared. */
  double limit[STRATA_CLASS_COUNT][STRATA__ALERT_METRICS];
  double clear_below[STRATA__ALERT_METRICS];
  uint8_t *over;
  struct strata__alert_counts {
    _Atomic uint64_t raised, cleared;
  } (*alert_counts)[STRATA__ALERT_METRICS];
  /* The timed hook calls (one in STRATA__POLICY_CALL_SAMPLE): their
   * histogram, count and sum; strata_policy_stats's call_ns is the sum
   * scaled back to every call. */
  _Atomic uint64_t decision_le[STRATA__DECISION_BUCKETS], decision_count,
      decision_sum_ns;

  strata__plan_t plan; /* placed work, for finish-time estimates */
  bool record;

  _Atomic uint64_t calls, cached, fallbacks, errors, alerts, reloads,
      reload_failures, probations, skipped, busy;
} strata__policy_t;

/* {=== state.c: the state and calls into it (hooks.c, policy.c) ===} */

/** Build a new sandbox for script `text` (len bytes; chunkname as Lua
 *  wants it: "@file" or "=name"), run its main chunk, take its hooks and
 *  build its views; when all of that works, put it in place of the
 *  running script (closed), else leave the running one as it was.
 *  @return 0; STRATA_EPOLICY (logged); STRATA_ENOMEM
 *  @thread holder of P->mu (or P not yet shared) */
int strata__policy_load_text(strata__policy_t *P, const char *text, size_t len,
                             const char *chunkname);
/** Close the running script's state (teardown). @thread owner */
void strata__policy_unload(strata__policy_t *P);
/** A new script is in force: no hook is on probation, and errors already
 *  logged are logged again. @thread holder of P->mu */
void strata__policy_forget_failures(strata__policy_t *P);

/** Call the function below nargs arguments on the stack within the hook
 *  limits; times one call in a few. @return a lua_pcall status
 *  @thread holder of P->mu */
int strata__policy_pcall(strata__policy_t *P, int nargs, int nresults);
/** Log a hook's error once per distinct message (with a traceback when
 *  `raised`) and count it. @thread holder of P->mu */
void strata__policy_hook_error(strata__policy_t *P, const char *hook,
                               const char *msg, bool raised);
/** Push the hook `ref` names. @return false when there is none */
bool strata__policy_push_hook(strata__policy_t *P, int ref);
/** Is hook h on probation (skipped, the default decides)? */
bool strata__policy_on_probation(strata__policy_t *P, strata__hook_t h);
/** A call of hook h succeeded, or failed: probation bookkeeping. */
void strata__policy_hook_succeeded(strata__policy_t *P, strata__hook_t h);
void strata__policy_hook_failed(strata__policy_t *P, strata__hook_t h);
/** Take P->mu, waiting at most the per-call time limit for another
 *  thread's hook. @return false (counted as busy) when it was not taken */
bool strata__policy_lock(strata__policy_t *P);

/* {=== hooks.c: the hooks as the runtime asks them (policy.c) ===} */

/** Forget every cached placement answer (a reload, an alert). P->mu held. */
void strata__policy_clear_shapes(strata__policy_t *P);

/** The placer the engine installs (placement.h's place). @thread any */
int strata__policy_place(void *state, struct strata_runtime *rt,
                         strata__task_t *t, int *device);
/** Run the cache hook for a tagged buffer. @return whether it ran
 *  @thread holder of P->mu */
bool strata__policy_call_cache(strata__policy_t *P, strata__buffer_t *b);
/** After each round of health readings: alert on devices over a threshold.
 *  @thread the health thread */
void strata__policy_health_round(struct strata_runtime *rt);
/** A script just put in force hears once, through its alert hook, of each
 *  alert that stands, with the device's last reading: it starts knowing
 *  what the script before it was told. Counts no new raise.
 *  @thread holder of P->mu */
void strata__policy_announce_alerts(strata__policy_t *P);

/** The evict hook's answer (the memory manager's evict_advice while the
 *  engine exists) for b's replica on `node`: a node index, -1 for
 *  "keep it here", or -2 when the script has no opinion (no hook, or an
 *  error: the default tiers apply). @thread any (memory locks held) */
int strata__policy_evict(struct strata_runtime *rt,
                         const struct strata__buffer *b, int node);

/** The placer's `placed` (placement.h): t was placed on device d: enter its
 * estimated run in the plan (see plan.h), and note d as where the buffers it
 * writes will be.
 *  @thread the submitter */
void strata__policy_placed(void *state, struct strata_runtime *rt,
                           const strata__task_t *t, int d);

/* {=== policy_views.c ===} */

/** Create the metatables, the device, node and machine views and the
 *  reusable task and buffer views in P->s.L, and keep their references in
 *  P->s. @return 0; STRATA_ENOMEM (a Lua error while building) */
int strata__pviews_open(strata__policy_t *P);

/** Push device d's view. */
void strata__pviews_push_device(strata__policy_t *P, int d);

/** The devices the value at idx names (a device view, a class name, or a
 *  list of those) as a mask (bit d: device d). @return NULL, or why the
 *  value names no device */
const char *strata__pviews_mask(strata__policy_t *P, lua_State *L, int idx,
                                uint64_t *mask);

/** The device a view on the stack names, or -1 when idx is not one. */
int strata__pviews_to_device(strata__policy_t *P, lua_State *L, int idx);

#endif /* STRATA_POLICY_IMPL_H */
