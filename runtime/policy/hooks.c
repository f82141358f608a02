/* SPDX-License-Identifier: MIT */
/* runtime/policy/hooks.c: the four hooks as the runtime asks them: place
 * (with the shape cache that lets a cacheable answer skip Lua), evict,
 * cache and alert (from the health thread), and the plan entry of each
 * placed task. Each call goes through the engine's state (state.c): its
 * lock, limits, error reports and probation. Called by policy.c (the
 * interfaces it registers, the cache hook of strata_buffer_set_tag);
 * calls only down, into state.c and policy_views.c. */
#include "config.h"

#include "policy_impl.h"

#include <stdio.h>
#include <string.h>

#define COMP "policy"

/* {=== place ===} */

void strata__policy_clear_shapes(strata__policy_t *P) {
  memset(P->shapes, 0, sizeof P->shapes);
}

static uint64_t shape_hash(const strata__kernel_t *k, const char *tier,
                           const char *prec) {
  uint64_t h = (uint64_t)(uintptr_t)k * 0x9e3779b97f4a7c15ULL;
  h = strata__fnv1a_str(h, tier ? tier : "") ^ 0xff;
  return strata__fnv1a_str(h, prec ? prec : "");
}

/* The cached answer for t's shape (P->mu held). */
static strata__shape_t *shape_slot(strata__policy_t *P,
                                   const strata__task_t *t) {
  uint64_t h =
      shape_hash(t->kernel, strata__task_tier(t), strata__task_precision(t));
  return &P->shapes[h % STRATA__SHAPES];
}

static bool shape_matches(const strata__shape_t *s, const strata__task_t *t) {
  const char *tier = strata__task_tier(t), *prec = strata__task_precision(t);
  return s->kernel == t->kernel && !strcmp(s->tier, tier ? tier : "") &&
         !strcmp(s->precision, prec ? prec : "");
}

/* Remember the answer for t's shape when every part of the shape fits. */
static void shape_store(strata__policy_t *P, const strata__task_t *t,
                        uint64_t mask) {
  const char *tier = strata__task_tier(t), *prec = strata__task_precision(t);
  if ((tier && strlen(tier) >= sizeof P->shapes[0].tier) ||
      (prec && strlen(prec) >= sizeof P->shapes[0].precision))
    return;
  strata__shape_t *s = shape_slot(P, t);
  s->kernel = t->kernel;
  s->mask = mask;
  strata__strlcpy(s->tier, tier ? tier : "", sizeof s->tier);
  strata__strlcpy(s->precision, prec ? prec : "", sizeof s->precision);
}

static uint64_t candidates(const strata_runtime_t *rt,
                           const strata__task_t *t) {
  uint64_t m = 0;
  for (size_t i = 0; i < rt->ndevices && i < 64; i++)
    if (strata__placement_eligible(rt, t, (int)i))
      m |= UINT64_C(1) << i;
  return m;
}

static void record(strata__policy_t *P, strata__task_t *t, uint64_t answer,
                   bool cached, bool fallback, const char *why) {
  if (!P->record)
    return;
  if (!t->decision &&
      !(t->decision = strata__zalloc(&P->rt->alloc, sizeof *t->decision)))
    return; /* out of memory: the task goes unrecorded */
  strata__decision_t *d = t->decision;
  d->candidates = candidates(P->rt, t);
  d->answer = answer;
  d->from_cache = cached;
  d->fallback = fallback;
  strata__strlcpy(d->why, why ? why : "", sizeof d->why);
}

/* Reading an answer: in a protected call of its own, within the limits,
 * so that nothing the script made can raise outside one. */
typedef struct answer {
  strata__policy_t *P;
  uint64_t mask;
  const char *why; /* static */
} answer_t;

/* (answer_t *, the answer) */
static int read_answer(lua_State *L) {
  answer_t *a = lua_touserdata(L, 1);
  a->why = strata__pviews_mask(a->P, L, 2, &a->mask);
  return 0;
}

/* The devices the value at idx names. A device view, a class name or nil
 * is read in place: reading them runs no metamethod and allocates
 * nothing, so nothing can raise. A table is read in a protected call.
 * @return NULL, or why not */
static const char *answer_mask(strata__policy_t *P, int idx, uint64_t *mask) {
  lua_State *L = P->s.L;
  if (lua_type(L, idx) != LUA_TTABLE)
    return strata__pviews_mask(P, L, idx, mask);
  answer_t a = {P, 0, NULL};
  idx = lua_absindex(L, idx);
  if (!lua_checkstack(L, 3))
    return "could not be read (stack overflow)";
  lua_pushcfunction(L, read_answer);
  lua_pushlightuserdata(L, &a);
  lua_pushvalue(L, idx);
  if (strata__sandbox_call(P->s.sb, 2, 0) != LUA_OK) {
    lua_pop(L, 1);
    return "could not be read within the limits";
  }
  *mask = a.mask;
  return a.why;
}

/* Turn the place hook's results (answer, cacheable) on the stack into a
 * device. @return 0; STRATA_ENOENT (no opinion); STRATA_EPOLICY (*why
 * set) */
static int take_answer(strata__policy_t *P, strata__task_t *t, int *device,
                       uint64_t *mask, const char **why) {
  lua_State *L = P->s.L;
  bool cacheable = lua_toboolean(L, -1);
  *mask = 0;
  if (lua_isnil(L, -2)) {
    if (cacheable)
      shape_store(P, t, 0);
    return STRATA_ENOENT;
  }
  if ((*why = answer_mask(P, -2, mask)))
    return STRATA_EPOLICY;
  if (strata__placement_least_loaded(P->rt, t, *mask, device)) {
    *why = "none of the devices it named can run the task (kernel, "
           "memory or a failed device)";
    return STRATA_EPOLICY;
  }
  if (cacheable)
    shape_store(P, t, *mask);
  return STRATA_OK;
}

static int call_place(strata__policy_t *P, strata__task_t *t, int *device) {
  lua_State *L = P->s.L;
  int top = lua_gettop(L);
  strata__policy_push_hook(P, P->s.ref_place);
  lua_rawgeti(L, LUA_REGISTRYINDEX, P->s.ref_task);
  lua_rawgeti(L, LUA_REGISTRYINDEX, P->s.ref_machine);
  P->task = t;
  strata__plan_forget();
  int st = strata__policy_pcall(P, 2, 2);
  P->task = NULL;
  uint64_t mask = 0;
  const char *why = NULL;
  int rc;
  if (st != LUA_OK) {
    strata__policy_hook_error(P, "place", lua_tostring(L, -1), true);
    why = lua_tostring(L, -1);
    rc = STRATA_EPOLICY;
  } else if ((rc = take_answer(P, t, device, &mask, &why)) == STRATA_EPOLICY) {
    char msg[256];
    snprintf(msg, sizeof msg, "returned %s: %s", luaL_typename(L, -2), why);
    strata__policy_hook_error(P, "place", msg, false);
  }
  if (rc == STRATA_EPOLICY) {
    atomic_fetch_add(&P->fallbacks, 1);
    strata__policy_hook_failed(P, STRATA__HOOK_PLACE);
  } else {
    strata__policy_hook_succeeded(P, STRATA__HOOK_PLACE);
  }
  record(P, t, mask, false, rc != STRATA_OK, why);
  lua_settop(L, top);
  return rc;
}

int strata__policy_place(void *state, strata_runtime_t *rt, strata__task_t *t,
                         int *device) {
  (void)rt;
  strata__policy_t *P = state;
  /* Without a script (policy ""), placing costs nothing but this load. */
  if (!atomic_load_explicit(&P->has_place, memory_order_acquire) ||
      !strata__policy_lock(P))
    return STRATA_ENOENT;
  int rc;
  strata__shape_t *s = shape_slot(P, t);
  if (s->kernel && shape_matches(s, t)) {
    atomic_fetch_add_explicit(&P->cached, 1, memory_order_relaxed);
    rc = !s->mask ? STRATA_ENOENT
         : strata__placement_least_loaded(P->rt, t, s->mask, device)
             ? STRATA_ENOENT /* the devices it named cannot take it now */
             : STRATA_OK;
    if (P->record) /* the cached path stays a few instructions long */
      record(P, t, s->mask, true, rc != STRATA_OK, NULL);
  } else if (P->s.L && P->s.ref_place != LUA_NOREF &&
             !strata__policy_on_probation(P, STRATA__HOOK_PLACE)) {
    rc = call_place(P, t, device);
  } else {
    rc = STRATA_ENOENT;
  }
  pthread_mutex_unlock(&P->mu);
  return rc;
}

/* {=== evict ===} */

/* The node a string names: "pinned", "host", "spill" (when configured). */
static int tier_node(const strata_runtime_t *rt, const char *s) {
  if (!strcmp(s, "host"))
    return strata__memory_tier_node(&rt->mem, STRATA__NODE_HOST);
  if (!strcmp(s, "pinned"))
    return strata__memory_tier_node(&rt->mem, STRATA__NODE_PINNED);
  if (!strcmp(s, "spill"))
    return strata__memory_tier_node(&rt->mem, STRATA__NODE_SPILL);
  return -2;
}

static int evict_answer(strata__policy_t *P, int node, const char **why) {
  lua_State *L = P->s.L;
  if (lua_isnil(L, -1))
    return -2;
  if (lua_type(L, -1) != LUA_TSTRING) {
    *why = "not a tier name";
    return -2;
  }
  const char *s = lua_tostring(L, -1);
  if (!strcmp(s, "keep"))
    return -1;
  int dest = tier_node(P->rt, s);
  if (dest == -2)
    *why = "not 'pinned', 'host', 'spill' or 'keep'";
  else if (dest < 0)
    *why = "a tier this runtime does not have";
  else if (dest == node ||
           strata__memory_node_kind(&P->rt->mem, (size_t)dest) <=
               strata__memory_node_kind(&P->rt->mem, (size_t)node))
    *why = "not a tier below the victim's node";
  else
    return dest;
  return -2;
}

int strata__policy_evict(strata_runtime_t *rt, const strata__buffer_t *b,
                         int node) {
  strata__policy_t *P = rt->policy;
  if (!P)
    return -2;
  /* The hook is looked up under the lock: a reload swaps the script. */
  if (!strata__policy_lock(P))
    return -2;
  lua_State *L = P->s.L;
  int top = L ? lua_gettop(L) : 0;
  if (strata__policy_on_probation(P, STRATA__HOOK_EVICT) ||
      !strata__policy_push_hook(P, P->s.ref_evict)) {
    pthread_mutex_unlock(&P->mu);
    return -2;
  }
  int dest = -2;
  lua_rawgeti(L, LUA_REGISTRYINDEX, P->s.ref_buffer);
  lua_rawgeti(L, LUA_REGISTRYINDEX, P->s.ref_nodes);
  lua_rawgeti(L, -1, node + 1);
  lua_remove(L, -2);
  lua_rawgeti(L, LUA_REGISTRYINDEX, P->s.ref_machine);
  P->buffer = b;
  int st = strata__policy_pcall(P, 3, 1);
  P->buffer = NULL;
  const char *why = NULL;
  if (st != LUA_OK) {
    strata__policy_hook_error(P, "evict", lua_tostring(L, -1), true);
  } else {
    dest = evict_answer(P, node, &why);
    if (why) {
      char msg[256];
      snprintf(msg, sizeof msg, "returned '%s': %s",
               lua_tostring(L, -1) ? lua_tostring(L, -1) : luaL_typename(L, -1),
               why);
      strata__policy_hook_error(P, "evict", msg, false);
    }
  }
  if (st != LUA_OK || why) {
    atomic_fetch_add(&P->fallbacks, 1);
    strata__policy_hook_failed(P, STRATA__HOOK_EVICT);
  } else {
    strata__policy_hook_succeeded(P, STRATA__HOOK_EVICT);
  }
  lua_settop(L, top);
  pthread_mutex_unlock(&P->mu);
  return dest;
}

/* {=== cache ===} */

/* Call the cache hook for b (just tagged), if the script has one: the
 * nodes it names keep b and get it prefetched. P->mu held.
 * @return false when there is no cache hook */
bool strata__policy_call_cache(strata__policy_t *P, strata__buffer_t *b) {
  lua_State *L = P->s.L;
  int top = L ? lua_gettop(L) : 0;
  if (strata__policy_on_probation(P, STRATA__HOOK_CACHE) ||
      !strata__policy_push_hook(P, P->s.ref_cache))
    return false;
  lua_rawgeti(L, LUA_REGISTRYINDEX, P->s.ref_buffer);
  lua_rawgeti(L, LUA_REGISTRYINDEX, P->s.ref_machine);
  P->buffer = b;
  int st = strata__policy_pcall(P, 2, 1);
  P->buffer = NULL;
  uint64_t devices = 0, nodes = 0;
  const char *why = NULL;
  if (st != LUA_OK)
    strata__policy_hook_error(P, "cache", lua_tostring(L, -1), true);
  else if (!lua_isnil(L, -1) && (why = answer_mask(P, -1, &devices)))
    strata__policy_hook_error(P, "cache", why, false);
  if (st != LUA_OK || why) {
    devices = 0;
    atomic_fetch_add(&P->fallbacks, 1);
    strata__policy_hook_failed(P, STRATA__HOOK_CACHE);
  } else {
    strata__policy_hook_succeeded(P, STRATA__HOOK_CACHE);
  }
  for (size_t d = 0; d < P->rt->ndevices && d < 64; d++)
    if ((devices >> d & 1) && P->rt->devices[d]->desc.own_memory &&
        P->rt->devices[d]->node < 64)
      nodes |= UINT64_C(1) << P->rt->devices[d]->node;
  atomic_store(&b->keep, nodes);
  lua_settop(L, top);
  return true;
}

/* {=== alert, from the health thread ===} */

const char *strata__alert_metric_name(int metric) {
  return metric == 0 ? "temperature" : metric == 1 ? "power" : "?";
}

/* Call the alert hook (raised) or the alert_cleared hook with the
 * device, the metric and the reading; both share the alert hook's
 * probation record. */
static void call_alert(strata__policy_t *P, int d, const char *metric,
                       double value, bool raised) {
  int ref = raised ? P->s.ref_alert : P->s.ref_alert_cleared;
  if (!P->s.L || ref == LUA_NOREF ||
      strata__policy_on_probation(P, STRATA__HOOK_ALERT))
    return;
  lua_State *L = P->s.L;
  int top = lua_gettop(L);
  strata__policy_push_hook(P, ref);
  strata__pviews_push_device(P, d);
  lua_pushstring(L, metric);
  lua_pushnumber(L, value);
  if (strata__policy_pcall(P, 3, 0) != LUA_OK) {
    strata__policy_hook_error(P, raised ? "alert" : "alert_cleared",
                              lua_tostring(L, -1), true);
    strata__policy_hook_failed(P, STRATA__HOOK_ALERT);
  } else {
    strata__policy_hook_succeeded(P, STRATA__HOOK_ALERT);
  }
  atomic_fetch_add(&P->alerts, 1);
  lua_settop(L, top);
  strata__policy_clear_shapes(P); /* answers may change now */
}

/* An alert is raised when a reading goes above its class's threshold and
 * cleared only when it falls below the threshold minus clear_below: a
 * reading that hovers at the threshold raises it once (hysteresis).
 * Bit m of P->over[d] remembers "raised". P->mu held. */
static void check_device(strata__policy_t *P, int d) {
  strata_health_t h = {.struct_size = sizeof h};
  if (strata_device_health(P->rt, d, &h))
    return;
  const double value[STRATA__ALERT_METRICS] = {h.temperature_c, h.power_w};
  const bool known[STRATA__ALERT_METRICS] = {h.temperature_c >= -273,
                                             h.power_w >= 0};
  const strata__device_t *dev = P->rt->devices[d];
  for (int m = 0; m < STRATA__ALERT_METRICS; m++) {
    double limit = P->limit[dev->desc.device_class][m];
    bool was = P->over[d] >> m & 1;
    bool raise = !was && known[m] && value[m] > limit;
    bool clear = was && known[m] && value[m] < limit - P->clear_below[m];
    if (!raise && !clear)
      continue;
    P->over[d] = (uint8_t)(P->over[d] ^ (1u << m));
    const char *metric = strata__alert_metric_name(m);
    if (raise)
      STRATA_LOG(&P->rt->log, STRATA_LOG_WARN, COMP,
                 "%s: %s %.1f over %.1f: alert raised", dev->desc.name, metric,
                 value[m], limit);
    else
      STRATA_LOG(&P->rt->log, STRATA_LOG_INFO, COMP,
                 "%s: %s %.1f below %.1f: alert cleared", dev->desc.name,
                 metric, value[m], limit - P->clear_below[m]);
    atomic_fetch_add(raise ? &P->alert_counts[d][m].raised
                           : &P->alert_counts[d][m].cleared,
                     1);
    call_alert(P, d, metric, value[m], raise);
  }
}

/* Read every device's health and call alert for readings over their
 * thresholds and alert_cleared for those back below them (check_device). */
static void check_health(strata_runtime_t *rt) {
  strata__policy_t *P = rt->policy;
  if (!P || !strata__policy_lock(P))
    return;
  for (size_t d = 0; d < rt->ndevices; d++)
    if (!atomic_load(&rt->devices[d]->failed))
      check_device(P, (int)d);
  pthread_mutex_unlock(&P->mu);
}

void strata__policy_announce_alerts(strata__policy_t *P) {
  for (size_t d = 0; d < P->rt->ndevices; d++) {
    strata_health_t h = {.struct_size = sizeof h};
    if (!P->over[d] || atomic_load(&P->rt->devices[d]->failed) ||
        strata_device_health(P->rt, (int)d, &h))
      continue;
    const double value[STRATA__ALERT_METRICS] = {h.temperature_c, h.power_w};
    for (int m = 0; m < STRATA__ALERT_METRICS; m++)
      if (P->over[d] >> m & 1)
        call_alert(P, (int)d, strata__alert_metric_name(m), value[m], true);
  }
}

/* The health thread's hook (health.h), after each round of readings. */
void strata__policy_health_round(strata_runtime_t *rt) { check_health(rt); }

/* {=== Performance models ===} */

void strata__policy_placed(void *state, strata_runtime_t *rt,
                           const strata__task_t *t, int d) {
  strata__policy_t *P = state;
  strata__plan_est_t e;
  /* Before the writer devices change: t reads what it writes from where
   * the data is now. eft may have just evaluated it. */
  if (!strata__plan_recall(&P->plan, t, d, &e))
    strata__plan_eval(&P->plan, rt, t, d, strata__plan_now(&P->plan, rt), &e);
  strata__plan_commit(&P->plan, t, d, &e);
}
