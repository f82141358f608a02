/* SPDX-License-Identifier: MIT */
/* runtime/policy/policy.h: the Lua policy engine. A policy script defines
 * hooks, each optional: place(task, machine) at submit time, cache(buffer,
 * machine) when a tagged buffer is first read, evict(buffer, node,
 * machine) when a replica must leave a full node, and alert(device,
 * metric, value) when a health reading crosses its threshold. The engine
 * plugs into the placement interface (placement.h) and the tier routing of
 * the memory manager (strata__memory_tier).
 *
 * One Lua state per runtime, guarded by the engine's mutex: hooks are
 * short, and one state keeps the script's own tables (a drained device, a
 * counter) consistent across hooks. The views it hands to the script read
 * the runtime without taking any runtime lock (atomics only), because
 * evict runs in a worker that holds memory-node and buffer locks: the
 * engine's mutex comes after those in the lock order, and nothing called
 * under it may take them.
 *
 * The state is a sandbox (sandbox/sandbox.h): an instruction budget the
 * script cannot catch, a wall-clock limit per call that covers work in C,
 * a memory cap, bounded library functions, no finalizers. A hook that
 * raises, hits a limit or answers something invalid is logged (once per
 * distinct message, with a traceback), counted, and overridden by the
 * built-in behaviour; one that keeps failing is put on probation (not
 * called for a period that grows). A thread waits for the engine at most
 * one call's time limit. A policy bug never loses, stalls or crashes
 * work. */
#ifndef STRATA_POLICY_INTERNAL_H
#define STRATA_POLICY_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <strata/runtime.h>

struct strata_runtime;
struct strata__task;
struct strata__buffer;
struct strata__policy;

/* {=== Health alerts ===} */

/* The readings that raise alerts: 0 temperature, 1 power. */
#define STRATA__ALERT_METRICS 2
/** "temperature", "power". @thread any */
const char *strata__alert_metric_name(int metric);

typedef struct strata__alert_state {
  uint64_t raised, cleared; /* since creation */
  bool active;              /* raised and not cleared */
  double threshold;         /* the device's class's */
} strata__alert_state_t;

/** Device d's alert for `metric`.
 *  @return 0; STRATA_ERANGE (no such device or metric); STRATA_ENOENT (no
 *          policy engine)  @thread any  @blocks no */
int strata__policy_alert_state(const struct strata_runtime *rt, int d,
                               int metric, strata__alert_state_t *out);

/* {=== Decision times ===} */

/* The histogram of timed hook calls (one in eight): upper bounds. */
#define STRATA__DECISION_BUCKETS 12
extern const uint64_t strata__decision_bounds_ns[STRATA__DECISION_BUCKETS];

/** Copy the histogram: per bucket (not cumulative; a call above the last
 *  bound is in none), the count and the sum of the timed calls.
 *  @return 0; STRATA_ENOENT (no policy engine)  @thread any */
int strata__policy_decision_times(const struct strata_runtime *rt,
                                  uint64_t buckets[STRATA__DECISION_BUCKETS],
                                  uint64_t *count, uint64_t *sum_ns);

/** Load the policy the options name (tiered.lua, built in, when none;
 *  none at all for ""), install it as the placer, start the health
 *  monitor. @return 0; STRATA_EPOLICY (the script does not load: logged);
 *  STRATA_ENOMEM @thread owner (runtime creation) */
int strata__policy_init(struct strata_runtime *rt,
                        const strata_runtime_opts_t *opts);
/** Stop the monitor, save the performance models, free the state.
 *  @thread owner (teardown, after every task ended) */
void strata__policy_fini(struct strata_runtime *rt);

#endif /* STRATA_POLICY_INTERNAL_H */
