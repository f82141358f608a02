/* SPDX-License-Identifier: MIT */
/* runtime/policy/policy.c: the policy engine (see policy.h): setup (its
 * limits, the script the options name, the interfaces it registers with
 * the runtime: the placer, evict advice, the health round) and teardown,
 * reloading a script, and the public policy API. The top of the engine:
 * the Lua state and calls into it are in state.c, what the hooks answer
 * and how it is checked in hooks.c, the views a script reads in
 * policy_views.c. */
#include "config.h"

#include "policy_impl.h"

#include "optlist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMP "policy"

#define DEFAULT_TIME_MS 50       /* wall clock per hook call */
#define DEFAULT_TEMPERATURE 85.0 /* degrees C */
#define DEFAULT_POWER 300.0      /* W */
#define SCRIPT_MAX (1u << 20)    /* bytes of policy source */

extern const char strata__policy_tiered[];
extern const size_t strata__policy_tiered_size;

/* {=== Which script ===} */

/* Load P->path, or the built-in tiered.lua (strata__policy_load_text).
 * P->mu held. @return 0; STRATA_EPOLICY (logged); STRATA_ENOMEM */
static int load(strata__policy_t *P, const char *path) {
  char chunk[300];
  if (!path) {
    snprintf(chunk, sizeof chunk, "=tiered.lua (built in)");
    int rc = strata__policy_load_text(P, strata__policy_tiered,
                                      strata__policy_tiered_size, chunk);
    if (rc == STRATA_OK)
      strata__strlcpy(P->name, chunk + 1, sizeof P->name);
    return rc;
  }
  char *text, err[512];
  size_t len;
  int rc = strata__read_text_file(path, SCRIPT_MAX, strata__alloc_via,
                                  (void *)&P->rt->alloc, &text, &len, err,
                                  sizeof err);
  if (rc) {
    STRATA_LOG(&P->rt->log, STRATA_LOG_ERROR, COMP, "%s", err);
    return rc == STRATA_ENOMEM ? rc : STRATA_EPOLICY;
  }
  snprintf(chunk, sizeof chunk, "@%s", path);
  rc = strata__policy_load_text(P, text, len, chunk);
  strata__free_text_file(strata__alloc_via, (void *)&P->rt->alloc, text, len);
  if (rc == STRATA_OK) {
    const char *base = strrchr(path, '/');
    strata__strlcpy(P->name, base ? base + 1 : path, sizeof P->name);
  }
  return rc;
}

/* {=== Setup and teardown ===} */

static void set_limits(strata__policy_t *P, const strata_runtime_opts_t *o) {
  uint64_t ms = o->policy_time_ms ? o->policy_time_ms : DEFAULT_TIME_MS;
  P->limits = (strata__sandbox_limits_t){
      /* 0: the sandbox's defaults, 200000 instructions and 16 MiB */
      .instructions = o->policy_budget,
      .memory = (size_t)o->policy_memory,
      .deadline_ns = ms * 1000000u};
  P->wait_ns = P->limits.deadline_ns;
  P->record = o->record_decisions != 0;
}

/* {=== Alert thresholds ===} */

#define DEFAULT_CLEAR_TEMPERATURE 5.0 /* degrees C below the threshold */
#define DEFAULT_CLEAR_POWER 25.0      /* W below */

/* One "CLASS:temperature=C,power=W" section of alert_thresholds. */
static int class_limits(strata__policy_t *P, const strata__optitem_t *sec) {
  static const strata__optfmt_t map = {.option = "alert_thresholds",
                                       .kind = STRATA__OPT_MAP};
  char q[64];
  int c = 0;
  while (c < STRATA_CLASS_COUNT &&
         !strata__opt_is(sec->key, strata_device_class_name(c)))
    c++;
  if (c == STRATA_CLASS_COUNT) {
    STRATA_LOG(&P->rt->log, STRATA_LOG_ERROR, COMP,
               "alert_thresholds: position %zu: %s is not a device class "
               "(cpu, hbm, gddr)",
               sec->key.pos, strata__opt_quote(sec->key, q, sizeof q));
    return STRATA_EINVAL;
  }
  strata__optitem_t kv;
  for (size_t cur = 0; strata__opt_next(&map, sec->value, &cur, &kv);) {
    int m = strata__opt_is(kv.key, "temperature") ? 0
            : strata__opt_is(kv.key, "power")     ? 1
                                                  : -1;
    char num[32] = "", *end = NULL;
    if (kv.value.s && kv.value.len < sizeof num)
      memcpy(num, kv.value.s, kv.value.len);
    double v = strtod(num, &end);
    if (m < 0 || !num[0] || *end || !(v > 0) || v > 1e6) {
      STRATA_LOG(&P->rt->log, STRATA_LOG_ERROR, COMP,
                 "alert_thresholds: position %zu: %s: expected "
                 "temperature=C or power=W with a positive number",
                 kv.key.pos, strata__opt_quote(kv.key, q, sizeof q));
      return STRATA_EINVAL;
    }
    P->limit[c][m] = v;
  }
  return STRATA_OK;
}

/* The global thresholds for every class, then alert_thresholds' per
 * class; the distances at which alerts clear. */
static int set_alert_limits(strata__policy_t *P,
                            const strata_runtime_opts_t *o) {
  static const strata__optfmt_t fmt = {.option = "alert_thresholds",
                                       .kind = STRATA__OPT_SECTIONS};
  for (int c = 0; c < STRATA_CLASS_COUNT; c++) {
    P->limit[c][0] =
        o->alert_temperature > 0 ? o->alert_temperature : DEFAULT_TEMPERATURE;
    P->limit[c][1] = o->alert_power > 0 ? o->alert_power : DEFAULT_POWER;
  }
  P->clear_below[0] = o->alert_clear_temperature > 0
                          ? o->alert_clear_temperature
                          : DEFAULT_CLEAR_TEMPERATURE;
  P->clear_below[1] =
      o->alert_clear_power > 0 ? o->alert_clear_power : DEFAULT_CLEAR_POWER;
  strata__optspan_t text = strata__opt_span(o->alert_thresholds);
  char err[256];
  if (strata__opt_check(&fmt, text, err, sizeof err)) {
    STRATA_LOG(&P->rt->log, STRATA_LOG_ERROR, COMP, "%s", err);
    return STRATA_EINVAL;
  }
  strata__optitem_t sec;
  for (size_t cur = 0; strata__opt_next(&fmt, text, &cur, &sec);) {
    int rc = class_limits(P, &sec);
    if (rc)
      return rc;
  }
  return STRATA_OK;
}

static void free_policy(strata_runtime_t *rt, strata__policy_t *P) {
  strata__policy_unload(P);
  strata__plan_fini(&P->plan, rt);
  strata__free(&rt->alloc, P->seen, P->cap_seen * sizeof *P->seen);
  strata__free(&rt->alloc, P->over, rt->ndevices ? rt->ndevices : 1);
  strata__free(&rt->alloc, P->alert_counts,
               (rt->ndevices ? rt->ndevices : 1) * sizeof *P->alert_counts);
  strata__strfree(&rt->alloc, P->path);
  pthread_mutex_destroy(&P->mu);
  strata__free(&rt->alloc, P, sizeof *P);
}

int strata__policy_init(strata_runtime_t *rt,
                        const strata_runtime_opts_t *opts) {
  strata__policy_t *P = strata__zalloc(&rt->alloc, sizeof *P);
  if (!P)
    return STRATA_ENOMEM;
  P->rt = rt;
  pthread_mutex_init(&P->mu, NULL);
  set_limits(P, opts);
  P->s.ref_place = P->s.ref_cache = P->s.ref_evict = P->s.ref_alert = LUA_NOREF;
  P->s.ref_alert_cleared = LUA_NOREF;
  P->over = strata__zalloc(&rt->alloc, rt->ndevices ? rt->ndevices : 1);
  P->alert_counts = strata__zalloc(
      &rt->alloc, (rt->ndevices ? rt->ndevices : 1) * sizeof *P->alert_counts);
  bool script = !opts->policy || opts->policy[0];
  if (!P->over || !P->alert_counts ||
      (opts->policy && opts->policy[0] &&
       !(P->path = strata__strdup(&rt->alloc, opts->policy)))) {
    free_policy(rt, P);
    return STRATA_ENOMEM;
  }
  int rc = set_alert_limits(P, opts);
  if (!rc && script)
    rc = load(P, P->path);
  if (rc) {
    free_policy(rt, P);
    return rc;
  }
  if (strata__plan_init(&P->plan, rt,
                        strata__estimates_any_modelled(&rt->estimates))) {
    free_policy(rt, P);
    return STRATA_ENOMEM;
  }
  rt->policy = P;
  /* Estimates are kept from a script's first question on; a perf-model
   * file means someone wants the history anyway. */
  strata__estimates_track(rt, strata__estimates_path(&rt->estimates) != NULL);
  /* The engine is the placer from now on, also without a script: a reload
   * may bring one, and the placer must not change under submitters. */
  atomic_store(&P->has_place, P->s.L && P->s.ref_place != LUA_NOREF);
  strata__placer_set(rt, &(strata__placer_t){.name = "policy",
                                             .state = P,
                                             .place = strata__policy_place,
                                             .placed = strata__policy_placed});
  strata__memory_set_evict_advice(&rt->mem, strata__policy_evict);
  if (P->s.L)
    STRATA_LOG(&rt->log, STRATA_LOG_INFO, COMP, "policy %s loaded", P->name);
  /* before the health thread starts */
  strata__health_set_round_hook(&rt->health, strata__policy_health_round);
  return STRATA_OK;
}

void strata__policy_fini(strata_runtime_t *rt) {
  strata__policy_t *P = rt->policy;
  if (!P)
    return;
  strata__memory_set_evict_advice(&rt->mem, NULL);
  rt->policy = NULL;
  strata__estimates_track(rt, false);
  strata__placer_reset(rt);
  free_policy(rt, P);
}

/* {=== Public API ===} */

int strata_policy_stats(const strata_runtime_t *rt,
                        strata_policy_stats_t *out) {
  if (!rt || !out || out->struct_size <= sizeof(size_t))
    return STRATA_EINVAL;
  strata_policy_stats_t s = {.struct_size = sizeof s};
  strata__policy_t *P = rt->policy;
  if (P) {
    pthread_mutex_lock(&P->mu);
    if (P->s.L)
      strata__strlcpy(s.name, P->name, sizeof s.name);
    pthread_mutex_unlock(&P->mu);
    s.calls = atomic_load(&P->calls);
    s.cached = atomic_load(&P->cached);
    s.fallbacks = atomic_load(&P->fallbacks);
    s.errors = atomic_load(&P->errors);
    s.alerts = atomic_load(&P->alerts);
    s.reloads = atomic_load(&P->reloads);
    s.reload_failures = atomic_load(&P->reload_failures);
    s.call_ns = atomic_load(&P->decision_sum_ns) * STRATA__POLICY_CALL_SAMPLE;
    s.probations = atomic_load(&P->probations);
    s.skipped = atomic_load(&P->skipped);
    s.busy = atomic_load(&P->busy);
  }
  return strata__copy_out(out, &s, sizeof s);
}

int strata_policy_reload(strata_runtime_t *rt, const char *path) {
  if (!rt || !rt->policy)
    return STRATA_EINVAL;
  strata__policy_t *P = rt->policy;
  pthread_mutex_lock(&P->mu);
  int rc;
  if (!path && !P->path && !P->s.L) {
    rc = STRATA_ENOENT;
  } else {
    rc = load(P, path ? path : P->path);
    if (rc == STRATA_OK && path && (!P->path || strcmp(path, P->path))) {
      char *copy = strata__strdup(&rt->alloc, path);
      if (copy) {
        strata__strfree(&rt->alloc, P->path);
        P->path = copy;
      }
    }
  }
  if (rc == STRATA_OK) {
    strata__policy_clear_shapes(P);
    strata__policy_forget_failures(P); /* a new script's errors are news */
    strata__policy_announce_alerts(P); /* and it must drain what stays hot */
    atomic_fetch_add(&P->reloads, 1);
    atomic_store(&P->has_place, P->s.ref_place != LUA_NOREF);
    STRATA_LOG(&rt->log, STRATA_LOG_INFO, COMP, "policy %s reloaded", P->name);
  } else if (rc != STRATA_ENOENT) {
    atomic_fetch_add(&P->reload_failures, 1);
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
               "reload failed: %s stays in force",
               P->s.L ? P->name : "the default placement");
    rc = STRATA_EPOLICY;
  }
  pthread_mutex_unlock(&P->mu);
  return rc;
}

int strata_health_check(strata_runtime_t *rt) {
  if (!rt)
    return STRATA_EINVAL;
  /* The health thread reads the backends and calls the alert hook; with
   * no device that can tell, there is nothing to read. */
  (void)strata__health_refresh(rt);
  return STRATA_OK;
}

int strata_buffer_set_tag(strata_runtime_t *rt, strata_buffer_t buf,
                          const char *tag) {
  if (!rt || !tag || strlen(tag) >= 64)
    return STRATA_EINVAL;
  strata__buffer_t *b = strata__buffer_get(rt, buf);
  if (!b)
    return strata__htable_miss(&rt->buffers, buf.id);
  strata__strlcpy(b->tag, tag, sizeof b->tag);
  strata__policy_t *P = rt->policy;
  if (!P)
    return STRATA_OK;
  if (!strata__policy_lock(P)) /* a reload swaps the script */
    return STRATA_OK;
  bool called = strata__policy_call_cache(P, b);
  pthread_mutex_unlock(&P->mu);
  if (called)
    strata__prefetch_kept(rt, b, -1);
  return STRATA_OK;
}

/* {=== Alerts and decision times, for the metrics ===} */

int strata__policy_alert_state(const strata_runtime_t *rt, int d, int metric,
                               strata__alert_state_t *out) {
  const strata__policy_t *P = rt->policy;
  if (!P)
    return STRATA_ENOENT;
  if (d < 0 || (size_t)d >= rt->ndevices || metric < 0 ||
      metric >= STRATA__ALERT_METRICS)
    return STRATA_ERANGE;
  const struct strata__alert_counts *c = &P->alert_counts[d][metric];
  /* Cleared is read first: an alert raised in between shows as active,
   * never cleared more often than raised. */
  out->cleared = atomic_load(&c->cleared);
  out->raised = atomic_load(&c->raised);
  out->active = out->raised > out->cleared;
  out->threshold = P->limit[rt->devices[d]->desc.device_class][metric];
  return STRATA_OK;
}

int strata__policy_decision_times(const strata_runtime_t *rt,
                                  uint64_t buckets[STRATA__DECISION_BUCKETS],
                                  uint64_t *count, uint64_t *sum_ns) {
  const strata__policy_t *P = rt->policy;
  if (!P)
    return STRATA_ENOENT;
  for (int b = 0; b < STRATA__DECISION_BUCKETS; b++)
    buckets[b] = atomic_load(&P->decision_le[b]);
  *sum_ns = atomic_load(&P->decision_sum_ns);
  *count = atomic_load(&P->decision_count);
  return STRATA_OK;
}
