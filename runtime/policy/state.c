/* SPDX-License-Identifier: MIT */
/* runtime/policy/state.c: the engine's Lua state and the calls into it
 * (see policy_impl.h): a script's sandbox, built and swapped in when the
 * script loads; calling a hook within the limits; logging a hook's errors
 * once; probation of hooks that keep failing; the engine's lock. The
 * bottom of the policy engine: hooks.c asks its hooks through these
 * functions, and policy.c (setup, reload, the public API) loads scripts
 * with them; this file calls neither.
 *
 * Owns: P->s (the running script), the error log (P->seen) and the
 * probation records. Locking: everything here runs with P->mu held, but
 * strata__policy_lock, which takes it. */
#include "config.h"

#include "policy_impl.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define COMP "policy"

#define LOAD_TIME_NS 1000000000u      /* wall clock for the main chunk */
#define SEEN_MAX 1024                 /* distinct errors remembered */
#define PRINT_MAX 1024                /* bytes of one print() line */
#define PROBATION_AFTER 3             /* consecutive failures */
#define PROBATION_FIRST_NS 10000000u  /* 10 ms */
#define PROBATION_MAX_NS 10000000000u /* 10 s */

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

const uint64_t strata__decision_bounds_ns[STRATA__DECISION_BUCKETS] = {
    1000,   2500,   5000,   10000,   25000,    50000,
    100000, 250000, 500000, 1000000, 10000000, 100000000};

/* One timed hook call of ns nanoseconds, in the decision-time histogram
 * (and so in call_ns, which is its sum scaled by the sampling). */
static void count_decision(strata__policy_t *P, uint64_t ns) {
  for (int b = 0; b < STRATA__DECISION_BUCKETS; b++)
    if (ns <= strata__decision_bounds_ns[b]) {
      atomic_fetch_add_explicit(&P->decision_le[b], 1, memory_order_relaxed);
      break;
    }
  atomic_fetch_add_explicit(&P->decision_sum_ns, ns, memory_order_relaxed);
  atomic_fetch_add_explicit(&P->decision_count, 1, memory_order_relaxed);
}

/* Call the function under its `nargs` arguments on the stack of L within
 * the limits; on error the message (with its traceback) replaces them.
 * P->mu held. @return a LUA_* status */
static int pcall_in(strata__policy_t *P, strata__sandbox_t *sb, int nargs,
                    int nresults) {
  uint64_t n = atomic_fetch_add_explicit(&P->calls, 1, memory_order_relaxed);
  bool timed = n % STRATA__POLICY_CALL_SAMPLE == 0;
  uint64_t t0 = timed ? strata__now_ns() : 0;
  int st = strata__sandbox_call(sb, nargs, nresults);
  if (timed)
    count_decision(P, strata__now_ns() - t0);
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

void strata__policy_forget_failures(strata__policy_t *P) {
  memset(P->probation, 0, sizeof P->probation);
  P->nseen = 0;
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
  h->ps->ref_alert_cleared = hook_ref(L, "alert_cleared", &h->bad);
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

int strata__policy_load_text(strata__policy_t *P, const char *text, size_t len,
                             const char *chunkname) {
  strata__pstate_t ps = {0};
  ps.ref_place = ps.ref_cache = ps.ref_evict = ps.ref_alert = LUA_NOREF;
  ps.ref_alert_cleared = LUA_NOREF;
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

void strata__policy_unload(strata__policy_t *P) { close_state(&P->s); }
