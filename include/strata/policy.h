/* SPDX-License-Identifier: MIT */
/* strata/policy.h: the Lua policy that decides, at submit time, where each
 * task runs, which data stays cached where, which tier evicted data falls
 * to, and what to do when a device runs hot. lua/README.md documents the
 * hooks, the views a script reads and the helpers it can call. */
#ifndef STRATA_POLICY_H
#define STRATA_POLICY_H

#include <strata/common.h>
#include <strata/data.h>
#include <strata/runtime.h>
#include <strata/task.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Counters of the policy engine since the runtime started. */
typedef struct strata_policy_stats {
  size_t struct_size;
  char name[64];      /* the script's file name; "tiered.lua (built in)";
                         "" when no policy is loaded */
  uint64_t calls;     /* hook calls into Lua */
  uint64_t cached;    /* placements answered from the shape cache */
  uint64_t fallbacks; /* decisions made by the built-in default because
                         the hook failed or answered something invalid */
  uint64_t errors;    /* hook errors (raised, budget, memory) */
  uint64_t alerts;    /* alert and alert_cleared hook calls */
  uint64_t reloads, reload_failures;
  uint64_t call_ns; /* time spent in hook calls (timed one call in 8, so
                       that timing does not add to what it measures) */
  /* A hook that fails PROBATION_AFTER times in a row (lua/README.md) is
   * put on probation: the default decides without calling it for a
   * period that doubles each time it fails again, from 10 ms up to 10 s.
   * A reload ends every probation. */
  uint64_t probations; /* times a hook was put on probation */
  uint64_t skipped;    /* decisions made by the default while on it */
  uint64_t busy;       /* decisions made by the default because another
                          thread's hook held the engine past the time
                          limit (policy_time_ms) */
} strata_policy_stats_t;

/** @return 0; STRATA_EINVAL (struct_size holds no field)
 *  @thread any */
STRATA_API int strata_policy_stats(const strata_runtime_t *rt,
                                   strata_policy_stats_t *out);

/** Load the policy script again (path NULL: the same file), e.g. after
 *  editing it. When the new script does not load, the running one stays
 *  and the reason is logged. A successful reload ends every probation.
 *  @return 0; STRATA_EPOLICY (the new script failed: the old one runs on);
 *          STRATA_ENOENT (no policy file in use and path NULL)
 *  @thread any  @blocks while hooks run */
STRATA_API int strata_policy_reload(strata_runtime_t *rt, const char *path);

/** Read every device's health now and call the policy's alert hook for
 *  readings past their thresholds (the runtime also does this every
 *  strata_runtime_opts_t.health_period_ms). When another thread's hook
 *  holds the engine past the time limit, this round is skipped.
 *  @return 0; STRATA_EINVAL (rt NULL)
 *  @thread any  @blocks while hooks run, at most policy_time_ms */
STRATA_API int strata_health_check(strata_runtime_t *rt);

/** Why a task runs where it runs (strata_runtime_opts_t.record_decisions
 *  must be on when it is submitted). */
typedef struct strata_decision {
  size_t struct_size;
  int device;          /* where it was placed */
  uint64_t candidates; /* bit d: device d could run it (kernel, memory) */
  uint64_t answer;     /* bit d: the devices the place hook named */
  int from_cache;      /* the answer came from the shape cache */
  int fallback;        /* the default placement decided (no hook, no
                          opinion, or a bad answer) */
  char why[128];       /* the hook's error when fallback, else "" */
} strata_decision_t;

/** @return 0; STRATA_ENOENT (no record: not submitted, recording off, or a
 *          released task); STRATA_EINVAL
 *  @thread any */
STRATA_API int strata_task_decision(strata_runtime_t *rt, strata_task_t task,
                                    strata_decision_t *out);

/** Give a buffer a tag the policy reads (buffer.tag), such as "dataset",
 *  and ask the policy's cache hook where to keep it (it is prefetched
 *  there now). When the hook fails, is on probation, or another thread's
 *  hook holds the engine past the time limit, the tag is set and the
 *  buffer kept nowhere in particular (the default).
 *  @return 0; STRATA_ENOENT; STRATA_EINVAL (tag NULL or longer than 63
 *          bytes)
 *  @thread any, but not while tasks that access the buffer are being
 *          submitted (their placement reads the tag)
 *  @blocks while hooks run, at most policy_time_ms (longer during a
 *          reload) */
STRATA_API int strata_buffer_set_tag(strata_runtime_t *rt, strata_buffer_t buf,
                                     const char *tag);

#ifdef __cplusplus
}
#endif

#endif /* STRATA_POLICY_H */
