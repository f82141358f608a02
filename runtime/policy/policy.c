/* SPDX-License-Identifier: MIT */
/* runtime/policy/policy.c: the policy engine (see policy.h): the Lua state
 * in its sandbox, calling hooks within their limits, probation of hooks
 * that keep failing, loading and reloading a script, setup and the public
 * policy API. What the hooks answer and how it is checked is in hooks.c;
 * the views a script reads are in policy_views.c. */
#include "config.h"

#include "policy_impl.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define COMP "policy"

#define DEFAULT_TIME_MS 50            /* wall clock per hook call */
#define LOAD_TIME_NS 1000000000u      /* wall clock for the main chunk */
#define DEFAULT_TEMPERATURE 85.0      /* degrees C */
#define DEFAULT_POWER 300.0           /* W */
#define CALL_SAMPLE 8                 /* hook calls per timed one (call_ns) */
#define SCRIPT_MAX (1u << 20)         /* bytes of policy source */
#define SEEN_MAX 1024                 /* distinct errors remembered */
#define PRINT_MAX 1024                /* bytes of one print() line */
#define PROBATION_AFTER 3             /* consecutive failures */
#define PROBATION_FIRST_NS 10000000u  /* 10 ms */
#define PROBATION_MAX_NS 10000000000u /* 10 s */

extern const char strata__policy_tiered[];
extern const size_t strata__policy_tiered_size;

/* {=== The state: a sandbox (sandbox/sandbox.h) ===} */

static void report_panic(void *ud, const char *msg) {
  strata__policy_t *P = ud;
  STRATA_LOG(&P->rt->log, STRATA_LOG_ERROR, COMP, "%s", msg);
}

static void close_state(strata__pstate_t *ps) {
  strata__sandbox_free(ps->sb);
  ps->sb = NULL;
  ps->L = NULL;
}

/* print() goes to the runtime's log, at INFO, one line of at most
 * PRINT_MAX bytes (the log is no place for megabytes). */
static int policy_print(lua_State *L) {
  strata__policy_t *P = lua_touserdata(L, lua_upvalueindex(1));
  char line[PRINT_MAX];
  size_t n = 0;
  for (int i = 1; i <= lua_gettop(L) && n < sizeof line - 1; i++) {
    size_t len;
    const char *s = luaL_tolstring(L, i, &len);
    if (i > 1)
      line[n++] = '\t';
    if (len > sizeof line - 1 - n)
      len = sizeof line - 1 - n;
    memcpy(line + n, s, len);
    n += len;
    lua_pop(L, 1);
  }
  line[n] = '\0';
  STRATA_LOG(&P->rt->log, STRATA_LOG_INFO, COMP, "%s: %s", P->name, line);
  return 0;
}

static int install_print(lua_State *L) {
  lua_pushvalue(L, 1); /* the engine, as a light userdata */
  lua_pushcclosure(L, policy_print, 1);
  lua_setglobal(L, "print");
  return 0;
}

/* {=== Calling into Lua ===} */

/* Call the function under its `nargs` arguments on the stack of L within
 * the limits; on error the message (with its traceback) replaces them.
 * P->mu held. @return a LUA_* status */
static int pcall_in(strata__policy_t *P, strata__sandbox_t *sb, int nargs,
                    int nresults) {
  /* Two clock reads cost a fifth of a short hook call on some machines:
   * time one call in CALL_SAMPLE and count it for all of them. */
  uint64_t n = atomic_fetch_add_explicit(&P->calls, 1, memory_order_relaxed);
  bool timed = n % CALL_SAMPLE == 0;
  uint64_t t0 = timed ? strata__now_ns() : 0;
  int st = strata__sandbox_call(sb, nargs, nresults);
  if (timed)
    atomic_fetch_add_explicit(&P->call_ns,
                              (strata__now_ns() - t0) * CALL_SAMPLE,
                              memory_order_relaxed);
  return st;
}

/* The same in the running script's sandbox. */
int strata__policy_pcall(strata__policy_t *P, int nargs, int nresults) {
  return pcall_in(P, P->s.sb, nargs, nresults);
}

static uint64_t hash_text(const char *s) {
  return strata__fnv1a(STRATA__FNV_BASIS, s, strcspn(s, "\n"));
}

/* Has this message (its first line) been logged before? Remembers it.
 * P->mu held. */
static bool seen_before(strata__policy_t *P, const char *msg) {
  uint64_t h = hash_text(msg);
  for (size_t i = 0; i < P->nseen; i++)
    if (P->seen[i] == h)
      return true;
  if (P->nseen < SEEN_MAX &&
      strata__grow(&P->rt->alloc, (void **)&P->seen, &P->cap_seen, P->nseen + 1,
                   sizeof *P->seen) == STRATA_OK)
    P->seen[P->nseen++] = h;
  return false;
}

/* A hook failed or answered badly: count it, log it the first time.
 * P->mu held. */
void strata__policy_hook_error(strata__policy_t *P, const char *hook,
                               const char *msg, bool raised) {
  if (raised)
    atomic_fetch_add(&P->errors, 1);
  char line[512];
  snprintf(line, sizeof line, "%s: %s", hook, msg);
  if (!seen_before(P, line))
    STRATA_LOG(&P->rt->log, STRATA_LOG_WARN, COMP,
               "%s: hook %s; the default decides instead (logged once)",
               P->name, line);
}

/* Push the hook's function. @return false when the script has no such
 * hook (nothing pushed). P->mu held. */
bool strata__policy_push_hook(strata__policy_t *P, int ref) {
  if (!P->s.L || ref == LUA_NOREF)
    return false;
  lua_rawgeti(P->s.L, LUA_REGISTRYINDEX, ref);
  return true;
}

/* {=== Failing hooks: probation ===} */

static const char *const hook_names[STRATA__HOOKS] = {"place", "cache", "evict",
                                                      "alert"};

/* Is hook h on probation now? Counts the decision it leaves to the
 * default. A hook whose period has run out is called again: on trial.
 * P->mu held. */
bool strata__policy_on_probation(strata__policy_t *P, strata__hook_t h) {
  strata__probation_t *pr = &P->probation[h];
  if (!pr->until_ns || strata__now_ns() >= pr->until_ns)
    return false;
  atomic_fetch_add_explicit(&P->skipped, 1, memory_order_relaxed);
  return true;
}

void strata__policy_hook_succeeded(strata__policy_t *P, strata__hook_t h) {
  strata__probation_t *pr = &P->probation[h];
  if (pr->failures || pr->until_ns)
    *pr = (strata__probation_t){0};
}

/* Hook h failed (raised, hit a limit, or answered something invalid): on
 * its PROBATION_AFTER-th failure in a row, or on a failed trial, put it
 * on probation for a period that doubles each time. P->mu held. */
void strata__policy_hook_failed(strata__policy_t *P, strata__hook_t h) {
  strata__probation_t *pr = &P->probation[h];
  pr->failures++;
  if (!pr->until_ns && pr->failures < PROBATION_AFTER)
    return;
  uint64_t period = PROBATION_FIRST_NS;
  for (unsigned i = 0; i < pr->level && period < PROBATION_MAX_NS; i++)
    period *= 2;
  if (period > PROBATION_MAX_NS)
    period = PROBATION_MAX_NS;
  pr->level++;
  pr->until_ns = strata__now_ns() + period;
  atomic_fetch_add(&P->probations, 1);
  char key[64];
  snprintf(key, sizeof key, "probation of %s", hook_names[h]);
  if (!seen_before(P, key))
    STRATA_LOG(&P->rt->log, STRATA_LOG_WARN, COMP,
               "%s: hook %s failed %u times in a row: the default decides "
               "without calling it for %.0f ms, longer each time it fails "
               "again (logged once)",
               P->name, hook_names[h], pr->failures, (double)period * 1e-6);
}

/* Take the engine's lock, waiting at most one hook call's time limit: a
 * thread whose hook stalls must not stop the others for longer. @return
 * false when the wait ran out (the default decides; counted) */
bool strata__policy_lock(strata__policy_t *P) {
  if (!pthread_mutex_trylock(&P->mu))
    return true;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t ns = (uint64_t)ts.tv_nsec + P->wait_ns;
  ts.tv_sec += (time_t)(ns / 1000000000u);
  ts.tv_nsec = (long)(ns % 1000000000u);
  if (!pthread_mutex_timedlock(&P->mu, &ts))
    return true;
  atomic_fetch_add(&P->busy, 1);
  return false;
}

/* {=== Loading a script ===} */

/* The globals a script defines as hooks, read raw (the script may have
 * given _G a metatable) in a protected call. */
typedef struct hooks_found {
  strata__pstate_t *ps;
  const char *bad; /* a hook name bound to something not a function */
} hooks_found_t;

static int hook_ref(lua_State *L, const char *name, const char **bad) {
  lua_pushglobaltable(L);
  lua_pushstring(L, name);
  int ty = lua_rawget(L, -2);
  lua_remove(L, -2);
  if (ty == LUA_TFUNCTION)
    return luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1);
  if (ty != LUA_TNIL)
    *bad = name;
  return LUA_NOREF;
}

static int take_hooks(lua_State *L) {
  hooks_found_t *h = lua_touserdata(L, 1);
  h->ps->ref_place = hook_ref(L, "place", &h->bad);
  h->ps->ref_cache = hook_ref(L, "cache", &h->bad);
  h->ps->ref_evict = hook_ref(L, "evict", &h->bad);
  h->ps->ref_alert = hook_ref(L, "alert", &h->bad);
  return 0;
}

/* Log why a script did not load. Lua's own messages start with
 * "FILE:LINE:"; others get the file. */
static void load_failed(strata__policy_t *P, const char *chunkname,
                        const char *why) {
  const char *file = chunkname + 1;
  if (!strncmp(why, file, strlen(file)))
    STRATA_LOG(&P->rt->log, STRATA_LOG_ERROR, COMP, "%s", why);
  else
    STRATA_LOG(&P->rt->log, STRATA_LOG_ERROR, COMP, "%s: %s", file, why);
}

/* Run the chunk of `text` in the fresh sandbox of ps and take its hooks.
 * P->mu held. @return 0; STRATA_EPOLICY (logged) */
static int run_script(strata__policy_t *P, strata__pstate_t *ps,
                      const char *text, size_t len, const char *chunkname) {
  lua_State *L = ps->L;
  hooks_found_t found = {ps, NULL};
  const char *why = NULL;
  if (strata__sandbox_cpcall(ps->sb, install_print, P, 0) != LUA_OK)
    why = "out of memory opening the libraries";
  else if (strata__sandbox_load(ps->sb, text, len, chunkname) != LUA_OK ||
           pcall_in(P, ps->sb, 0, 0) != LUA_OK ||
           strata__sandbox_cpcall(ps->sb, take_hooks, &found, 0) != LUA_OK)
    why = lua_tostring(L, -1) ? lua_tostring(L, -1) : "error";
  if (why) {
    load_failed(P, chunkname, why);
    return STRATA_EPOLICY;
  }
  if (found.bad) {
    STRATA_LOG(&P->rt->log, STRATA_LOG_ERROR, COMP,
               "%s: '%s' must be a function", chunkname + 1, found.bad);
    return STRATA_EPOLICY;
  }
  return STRATA_OK;
}

/* Build a new sandbox for the script and, when it loads, runs and its
 * views are built, put it in place of the running one. P->mu held (or P
 * not yet shared). @return 0; STRATA_EPOLICY (logged); STRATA_ENOMEM */
static int load_state(strata__policy_t *P, const char *text, size_t len,
                      const char *chunkname) {
  strata__pstate_t ps = {0};
  ps.ref_place = ps.ref_cache = ps.ref_evict = ps.ref_alert = LUA_NOREF;
  if (strata__sandbox_new(strata__alloc_via, (void *)&P->rt->alloc, &P->limits,
                          STRATA__SANDBOX_LIBS, chunkname + 1, report_panic, P,
                          &ps.sb))
    return STRATA_ENOMEM;
  ps.L = strata__sandbox_state(ps.sb);
  /* The main chunk builds the script's tables: it gets more time than a
   * hook call, within the same instruction budget. */
  strata__sandbox_set_deadline(ps.sb, LOAD_TIME_NS > P->limits.deadline_ns
                                          ? LOAD_TIME_NS
                                          : P->limits.deadline_ns);
  int rc = run_script(P, &ps, text, len, chunkname);
  strata__sandbox_set_deadline(ps.sb, P->limits.deadline_ns);
  if (rc == STRATA_OK) {
    /* The views are built into P->s: swap the new state in, and back out
     * if building fails. */
    strata__pstate_t running = P->s;
    P->s = ps;
    if (strata__pviews_open(P) == STRATA_OK) {
      close_state(&running);
      return STRATA_OK;
    }
    P->s = running;
    load_failed(P, chunkname, "out of memory building the views");
    rc = STRATA_EPOLICY;
  }
  close_state(&ps);
  return rc;
}

void strata__policy_clear_shapes(strata__policy_t *P) {
  memset(P->shapes, 0, sizeof P->shapes);
}

/* Load P->path, or the built-in tiered.lua. P->mu held. */
static int load(strata__policy_t *P, const char *path) {
  char chunk[300];
  if (!path) {
    snprintf(chunk, sizeof chunk, "=tiered.lua (built in)");
    int rc =
        load_state(P, strata__policy_tiered, strata__policy_tiered_size, chunk);
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
  rc = load_state(P, text, len, chunk);
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
  P->alert_temperature =
      o->alert_temperature > 0 ? o->alert_temperature : DEFAULT_TEMPERATURE;
  P->alert_power = o->alert_power > 0 ? o->alert_power : DEFAULT_POWER;
  P->record = o->record_decisions != 0;
}

static void free_policy(strata_runtime_t *rt, strata__policy_t *P) {
  close_state(&P->s);
  strata__plan_fini(&P->plan, rt);
  strata__free(&rt->alloc, P->seen, P->cap_seen * sizeof *P->seen);
  strata__free(&rt->alloc, P->over, rt->ndevices ? rt->ndevices : 1);
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
  P->over = strata__zalloc(&rt->alloc, rt->ndevices ? rt->ndevices : 1);
  bool script = !opts->policy || opts->policy[0];
  if (!P->over || (opts->policy && opts->policy[0] &&
                   !(P->path = strata__strdup(&rt->alloc, opts->policy)))) {
    free_policy(rt, P);
    return STRATA_ENOMEM;
  }
  int rc = script ? load(P, P->path) : STRATA_OK;
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
    s.call_ns = atomic_load(&P->call_ns);
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
    memset(P->probation, 0, sizeof P->probation);
    P->nseen = 0; /* a new script's errors are news */
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
