/* SPDX-License-Identifier: MIT */
/* runtime/policy/policy_views.c: what a policy script sees: read-only views of
 * the task being placed, of buffers, devices and memory nodes, and the
 * machine with its helpers (devices by class, least loaded, room, the
 * performance-model estimate, earliest finish time). Views read the
 * runtime through atomics only (policy.h says why); the task and buffer
 * views are single userdata reused for every call, pointed at their
 * subject for its duration. Every C function here gets the engine as its
 * first upvalue. */
#include "config.h"

#include "policy_impl.h"

#include <math.h>
#include <string.h>

#define TASK_MT "strata.task"
#define DEVICE_MT "strata.device"
#define BUFFER_MT "strata.buffer"
/* Most entries a list answer may have (a device may appear more than
 * once, so this is above the device count). */
#define ANSWER_LIST_MAX 1024

static strata__policy_t *engine(lua_State *L) {
  return lua_touserdata(L, lua_upvalueindex(1));
}

static int read_only(lua_State *L) {
  return luaL_error(L, "policy views are read-only (tried to set '%s')",
                    lua_tostring(L, 2) ? lua_tostring(L, 2) : "?");
}

/* Register fn as a closure over the engine under `name` in the table on
 * top of the stack. */
static void set_fn(strata__policy_t *P, const char *name, lua_CFunction fn) {
  lua_pushlightuserdata(P->s.L, P);
  lua_pushcclosure(P->s.L, fn, 1);
  lua_setfield(P->s.L, -2, name);
}

static int proxy_len(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)luaL_len(L, lua_upvalueindex(1)));
  return 1;
}

static int proxy_pairs(lua_State *L) {
  lua_getglobal(L, "next");
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushnil(L);
  return 3;
}

/* Replace the table on top of the stack by a read-only proxy of it. */
static void make_read_only(strata__policy_t *P, lua_State *L) {
  int t = lua_gettop(L);
  lua_newtable(L); /* the proxy */
  lua_newtable(L); /* its metatable */
  lua_pushvalue(L, t);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, read_only);
  lua_setfield(L, -2, "__newindex");
  lua_pushvalue(L, t);
  lua_pushcclosure(L, proxy_len, 1);
  lua_setfield(L, -2, "__len");
  lua_pushvalue(L, t);
  lua_pushcclosure(L, proxy_pairs, 1);
  lua_setfield(L, -2, "__pairs");
  lua_pushliteral(L, "read-only");
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  /* Remember proxy -> table, so that an answer that is one of these
   * lists (machine.devices) is read raw from the table behind it. */
  lua_rawgeti(L, LUA_REGISTRYINDEX, P->s.ref_proxies);
  lua_pushvalue(L, -2);
  lua_pushvalue(L, t);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  lua_replace(L, t);
}

/* {=== Small readers ===} */

/* Bytes free on device d's memory; its total memory when uncapped. */
static uint64_t free_bytes(const strata_runtime_t *rt, int d) {
  size_t n = (size_t)rt->devices[d]->node;
  uint64_t capacity = strata__memory_node_capacity(&rt->mem, n);
  if (!capacity)
    return rt->devices[d]->desc.memory_bytes;
  uint64_t used = strata__memory_node_used(&rt->mem, n);
  return used >= capacity ? 0 : capacity - used;
}

static void push_or_nil(lua_State *L, const char *s) {
  if (s)
    lua_pushstring(L, s);
  else
    lua_pushnil(L);
}

/* {=== Task view ===} */

/* Is the value at idx a userdata with the metatable `ref` names? Cheaper
 * than luaL_testudata, which looks the metatable up by name. */
static bool has_mt(lua_State *L, int idx, int ref) {
  if (lua_type(L, idx) != LUA_TUSERDATA || !lua_getmetatable(L, idx))
    return false;
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  bool same = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return same;
}

static const strata__task_t *check_task(lua_State *L, int idx) {
  if (!has_mt(L, idx, engine(L)->s.ref_task_mt))
    luaL_typeerror(L, idx, "task view");
  const strata__task_t *t = engine(L)->task;
  if (!t)
    luaL_error(L, "a task view can only be read during the hook call that "
                  "was given it");
  return t;
}

static void push_buffers(lua_State *L, const strata__task_t *t) {
  lua_createtable(L, (int)t->naccess, 0);
  int n = 0;
  for (size_t i = 0; i < t->naccess; i++) {
    strata_access_mode_t m = strata__task_access_mode(t, i);
    if (!m)
      continue;
    const strata__buffer_t *b = t->access[i].buf;
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, (lua_Integer)b->size);
    lua_setfield(L, -2, "size");
    lua_pushstring(L, m == STRATA_RW ? "rw" : m == STRATA_R ? "r" : "w");
    lua_setfield(L, -2, "mode");
    if (b->tag[0]) {
      lua_pushstring(L, b->tag);
      lua_setfield(L, -2, "tag");
    }
    lua_rawseti(L, -2, ++n);
  }
}

static void push_tags(lua_State *L, const strata__attrs_t *a) {
  lua_createtable(L, 0, (int)a->ntags);
  for (size_t i = 0; i < a->ntags; i++) {
    if (a->tags[i].is_number) /* set with a number: Lua sees a number */
      lua_pushnumber(L, a->tags[i].number);
    else
      lua_pushstring(L, a->tags[i].value);
    lua_setfield(L, -2, a->tags[i].key);
  }
}

/* The job's attributes, copied under its lock first: a Lua error while
 * the lock is held would leave it held. */
#define JOB_TAGS_MAX 16
typedef struct job_copy {
  char name[64], tier[64], precision[64], owner[64];
  int priority;
  bool has_priority;
  size_t ntags;
  char keys[JOB_TAGS_MAX][64], values[JOB_TAGS_MAX][64];
  double numbers[JOB_TAGS_MAX];
  bool is_number[JOB_TAGS_MAX];
} job_copy_t;

/* Called under the job's mu (strata__job_read_attrs). */
static void copy_attrs(const strata__attrs_t *a, void *arg) {
  job_copy_t *c = arg;
  strata__strlcpy(c->name, a->name ? a->name : "", sizeof c->name);
  strata__strlcpy(c->tier, a->tier ? a->tier : "", sizeof c->tier);
  strata__strlcpy(c->precision, a->precision ? a->precision : "",
                  sizeof c->precision);
  strata__strlcpy(c->owner, a->owner ? a->owner : "", sizeof c->owner);
  c->priority = a->priority;
  c->has_priority = a->has_priority;
  for (size_t i = 0; i < a->ntags && c->ntags < JOB_TAGS_MAX; i++, c->ntags++) {
    strata__strlcpy(c->keys[c->ntags], a->tags[i].key, 64);
    strata__strlcpy(c->values[c->ntags], a->tags[i].value, 64);
    c->numbers[c->ntags] = a->tags[i].number;
    c->is_number[c->ntags] = a->tags[i].is_number;
  }
}

static void copy_job(strata__job_t *job, job_copy_t *c) {
  memset(c, 0, sizeof *c);
  strata__job_read_attrs(job, copy_attrs, c);
}

static void push_job(lua_State *L, strata__job_t *job) {
  if (!job) {
    lua_pushnil(L);
    return;
  }
  job_copy_t c;
  copy_job(job, &c);
  lua_createtable(L, 0, 6);
  const char *const names[] = {"name", "tier", "precision", "owner"};
  const char *const values[] = {c.name, c.tier, c.precision, c.owner};
  for (int i = 0; i < 4; i++)
    if (*values[i]) {
      lua_pushstring(L, values[i]);
      lua_setfield(L, -2, names[i]);
    }
  lua_pushinteger(L, c.has_priority ? c.priority : 0);
  lua_setfield(L, -2, "priority");
  lua_createtable(L, 0, (int)c.ntags);
  for (size_t i = 0; i < c.ntags; i++) {
    if (c.is_number[i])
      lua_pushnumber(L, c.numbers[i]);
    else
      lua_pushstring(L, c.values[i]);
    lua_setfield(L, -2, c.keys[i]);
  }
  lua_setfield(L, -2, "tags");
}

static int task_index(lua_State *L) {
  /* Only ever called on the task view (its metatable is hidden). */
  const strata__task_t *t = engine(L)->task;
  if (!t)
    return luaL_error(L, "a task view can only be read during the hook "
                         "call that was given it");
  const char *k = luaL_checkstring(L, 2);
  if (!strcmp(k, "kernel"))
    lua_pushstring(L, t->kernel->name);
  else if (!strcmp(k, "name"))
    lua_pushstring(L, strata__task_name(t));
  else if (!strcmp(k, "tier"))
    push_or_nil(L, strata__task_tier(t));
  else if (!strcmp(k, "precision"))
    push_or_nil(L, strata__task_precision(t));
  else if (!strcmp(k, "flops")) {
    if (t->attrs.flops >= 0)
      lua_pushnumber(L, t->attrs.flops);
    else
      lua_pushnil(L);
  } else if (!strcmp(k, "priority"))
    lua_pushinteger(L, t->attrs.has_priority ? t->attrs.priority
                       : t->job              ? strata__job_priority(t->job)
                                             : 0);
  else if (!strcmp(k, "working_set"))
    lua_pushinteger(L, (lua_Integer)t->working_set);
  else if (!strcmp(k, "buffers"))
    push_buffers(L, t);
  else if (!strcmp(k, "tags"))
    push_tags(L, &t->attrs);
  else if (!strcmp(k, "job"))
    push_job(L, t->job);
  else
    lua_pushnil(L);
  return 1;
}

static int task_tostring(lua_State *L) {
  const strata__task_t *t = engine(L)->task;
  lua_pushfstring(L, "task '%s'", t ? strata__task_name(t) : "(gone)");
  return 1;
}

/* {=== Device view ===} */

int strata__pviews_to_device(strata__policy_t *P, lua_State *L, int idx) {
  return has_mt(L, idx, P->s.ref_device_mt)
             ? *(const int *)lua_touserdata(L, idx)
             : -1;
}

static int check_device(lua_State *L, int idx) {
  int d = strata__pviews_to_device(engine(L), L, idx);
  if (d < 0)
    luaL_typeerror(L, idx, "device view");
  return d;
}

void strata__pviews_push_device(strata__policy_t *P, int d) {
  lua_State *L = P->s.L;
  lua_getfield(L, LUA_REGISTRYINDEX, "strata.devices");
  lua_rawgeti(L, -1, d + 1);
  lua_remove(L, -2);
}

static const char *mem_class(const strata__device_t *d) {
  return !d->desc.own_memory                        ? "host"
         : d->desc.device_class == STRATA_CLASS_HBM ? "hbm"
                                                    : "gddr";
}

/* The health fields a device view has, in the order push_health reads
 * them. */
typedef enum {
  H_TEMPERATURE,
  H_POWER,
  H_THROTTLED,
  H_UTILISATION,
  H_MEMORY_USED,
  H_ECC_ERRORS,
  H_COUNT
} health_key_t;

static const char *const health_keys[H_COUNT] = {"temperature", "power",
                                                 "throttled",   "utilisation",
                                                 "memory_used", "ecc_errors"};

/* k's index in health_keys, or H_COUNT. */
static health_key_t health_key(const char *k) {
  health_key_t i = 0;
  while (i < H_COUNT && strcmp(k, health_keys[i]))
    i++;
  return i;
}

/* Health field `key`, read from the backend (nil when it cannot tell). */
static void push_health(lua_State *L, const strata_runtime_t *rt, int d,
                        health_key_t key) {
  strata_health_t h = {.struct_size = sizeof h};
  bool ok = strata_device_health(rt, d, &h) == STRATA_OK;
  if (ok && key == H_TEMPERATURE && h.temperature_c > -273)
    lua_pushnumber(L, h.temperature_c);
  else if (ok && key == H_POWER && h.power_w >= 0)
    lua_pushnumber(L, h.power_w);
  else if (ok && key == H_THROTTLED && h.throttled >= 0)
    lua_pushboolean(L, h.throttled);
  else if (ok && key == H_UTILISATION && h.utilisation >= 0)
    lua_pushnumber(L, h.utilisation);
  else if (ok && key == H_MEMORY_USED && h.memory_used_bytes >= 0)
    lua_pushinteger(L, (lua_Integer)h.memory_used_bytes);
  else if (ok && key == H_ECC_ERRORS && h.ecc_uncorrected >= 0)
    lua_pushinteger(L, (lua_Integer)h.ecc_uncorrected);
  else
    lua_pushnil(L);
}

/* The fields that never change, set once in each device view's table
 * (its user value): reading one costs a table lookup, not a C call's
 * string comparisons. (The view is at the top of the stack.) */
static void set_static_fields(lua_State *L, const strata__device_t *dev) {
  const strata_backend_device_t *ds = &dev->desc;
  lua_createtable(L, 0, 16);
  lua_pushinteger(L, dev->index);
  lua_setfield(L, -2, "index");
  lua_pushstring(L, strata_device_class_name(ds->device_class));
  lua_setfield(L, -2, "class");
  lua_pushstring(L, ds->name);
  lua_setfield(L, -2, "name");
  lua_pushstring(L, strata__device_model_name(dev));
  lua_setfield(L, -2, "model");
  lua_pushstring(L, dev->backend->name);
  lua_setfield(L, -2, "backend");
  lua_pushstring(L, mem_class(dev));
  lua_setfield(L, -2, "mem_class");
  const struct {
    const char *name;
    double value;
  } numbers[] = {{"memory", (double)ds->memory_bytes},
                 {"mem_bandwidth", ds->mem_bandwidth},
                 {"link_bandwidth", ds->link_bandwidth},
                 {"fp64", ds->fp64_flops},
                 {"fp32", ds->fp32_flops}};
  for (size_t i = 0; i < sizeof numbers / sizeof *numbers; i++) {
    lua_pushnumber(L, numbers[i].value);
    lua_setfield(L, -2, numbers[i].name);
  }
  if (ds->ecc >= 0) {
    lua_pushboolean(L, ds->ecc);
    lua_setfield(L, -2, "ecc");
  }
  lua_pushinteger(L, ds->numa_node);
  lua_setfield(L, -2, "numa");
  lua_pushinteger(L, ds->nworkers);
  lua_setfield(L, -2, "workers");
  lua_pushinteger(L, dev->node);
  lua_setfield(L, -2, "node");
  lua_setiuservalue(L, -2, 1);
}

/* __index of device views: only ever called on one (the metatable is
 * hidden from scripts), so no type check. Static fields from the view's
 * table; live ones read now. */
static int device_index(lua_State *L) {
  int d = *(const int *)lua_touserdata(L, 1);
  lua_getiuservalue(L, 1, 1);
  lua_pushvalue(L, 2);
  if (lua_rawget(L, -2) != LUA_TNIL)
    return 1;
  const strata_runtime_t *rt = engine(L)->rt;
  const strata__device_t *dev = rt->devices[d];
  const char *k = lua_tostring(L, 2);
  health_key_t hk = k ? health_key(k) : H_COUNT;
  if (!k)
    lua_pushnil(L);
  else if (!strcmp(k, "queue"))
    lua_pushinteger(L, (lua_Integer)strata__device_load(dev));
  else if (!strcmp(k, "free"))
    lua_pushinteger(L, (lua_Integer)free_bytes(rt, d));
  else if (!strcmp(k, "failed"))
    lua_pushboolean(L, atomic_load(&dev->failed));
  else if (hk < H_COUNT)
    push_health(L, rt, d, hk);
  else
    lua_pushnil(L);
  return 1;
}

static int device_tostring(lua_State *L) {
  int d = check_device(L, 1);
  lua_pushstring(L, engine(L)->rt->devices[d]->desc.name);
  return 1;
}

/* {=== Buffer view ===} */

static int buffer_index(lua_State *L) {
  strata__policy_t *P = engine(L);
  luaL_checkudata(L, 1, BUFFER_MT);
  const strata__buffer_t *b = P->buffer;
  if (!b)
    return luaL_error(L, "a buffer view can only be read during the hook "
                         "call that was given it");
  const char *k = luaL_checkstring(L, 2);
  if (!strcmp(k, "size"))
    lua_pushinteger(L, (lua_Integer)b->size);
  else if (!strcmp(k, "tag"))
    b->tag[0] ? (void)lua_pushstring(L, b->tag) : lua_pushnil(L);
  else if (!strcmp(k, "owned"))
    lua_pushboolean(L, b->owned);
  else if (!strcmp(k, "valid")) {
    lua_newtable(L);
    int n = 0;
    for (size_t i = 0; i < strata__memory_nnodes(&P->rt->mem); i++)
      if (strata__replica_valid(&b->rep[i])) {
        lua_pushinteger(L, (lua_Integer)i);
        lua_rawseti(L, -2, ++n);
      }
  } else
    lua_pushnil(L);
  return 1;
}

/* {=== Sets of devices: a device, a class name, or a list of those ===} */

/* Add what the value at idx names to *mask. @return NULL, or why not */
static const char *add_to_mask(strata__policy_t *P, lua_State *L, int idx,
                               uint64_t *mask) {
  int d = strata__pviews_to_device(P, L, idx);
  if (d >= 0) {
    if (d >= 64)
      return "device index above 63 (not supported in sets)";
    *mask |= UINT64_C(1) << d;
    return NULL;
  }
  if (lua_type(L, idx) == LUA_TSTRING) {
    const char *c = lua_tostring(L, idx);
    bool known = false, found = false;
    for (int k = 0; k < STRATA_CLASS_COUNT; k++) {
      if (strcmp(c, strata_device_class_name((strata_device_class_t)k)))
        continue;
      known = true;
      for (size_t i = 0; i < P->rt->ndevices && i < 64; i++)
        if ((int)P->rt->devices[i]->desc.device_class == k) {
          *mask |= UINT64_C(1) << i;
          found = true;
        }
    }
    return !known   ? "not a device class (cpu, hbm or gddr)"
           : !found ? "a class with no device on this machine"
                    : NULL;
  }
  return "not a device, a class name or a list of those";
}

/* The table at idx as a list to read raw: itself, the table behind one
 * of the engine's read-only proxies, or none (a metatable of the
 * script's: answers are read without running metamethods). Pushes it.
 * @return false (nothing pushed) for a table with a foreign metatable */
static bool raw_list(strata__policy_t *P, lua_State *L, int idx) {
  if (!lua_getmetatable(L, idx)) {
    lua_pushvalue(L, idx);
    return true;
  }
  lua_pop(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, P->s.ref_proxies);
  lua_pushvalue(L, idx);
  bool ours = lua_rawget(L, -2) == LUA_TTABLE;
  lua_remove(L, -2);
  if (!ours)
    lua_pop(L, 1);
  return ours;
}

const char *strata__pviews_mask(strata__policy_t *P, lua_State *L, int idx,
                                uint64_t *mask) {
  *mask = 0;
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TTABLE)
    return add_to_mask(P, L, idx, mask);
  if (!raw_list(P, L, idx))
    return "a table with a metatable (answers are read without "
           "metamethods)";
  int list = lua_gettop(L);
  lua_Unsigned n = lua_rawlen(L, list);
  const char *why = n < 1                 ? "an empty list"
                    : n > ANSWER_LIST_MAX ? "a list of more than 1024 entries"
                                          : NULL;
  for (lua_Unsigned i = 1; !why && i <= n; i++) {
    lua_rawgeti(L, list, (lua_Integer)i);
    why = add_to_mask(P, L, lua_gettop(L), mask);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return why;
}

/* A set argument of a helper: nil for every device. */
static uint64_t check_set(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx))
    return UINT64_MAX;
  uint64_t mask;
  const char *why = strata__pviews_mask(engine(L), L, idx, &mask);
  if (why)
    luaL_argerror(L, idx, why);
  return mask;
}

/* {=== Estimates ===} */

/* A helper that needs estimates was called: keep them from now on. */
static void want_estimates(strata__policy_t *P) {
  strata__estimates_track(P->rt, true);
}

/* Seconds to bring t's inputs to device d's memory, one copy after the
 * other (see strata__plan_copy for when a buffer needs one). */
static double transfer_time(const strata_runtime_t *rt, const strata__task_t *t,
                            int d) {
  double seconds = 0;
  for (size_t i = 0; i < t->naccess; i++) {
    strata__plan_leg_t legs[2];
    double staged;
    int n = strata__task_access_mode(t, i) & STRATA_R
                ? strata__plan_copy(rt, t->access[i].buf, d, legs, &staged)
                : 0;
    for (int k = 0; k < n; k++)
      seconds += legs[k].seconds;
  }
  return seconds;
}

/* Seconds from `now` until t would end on d if placed now: after the
 * work planned there, its inputs' writers and its copies (plan.h). */
static double finish_time(strata__policy_t *P, const strata__task_t *t, int d,
                          double now) {
  strata__plan_est_t e;
  strata__plan_eval(&P->plan, P->rt, t, d, now, &e);
  return e.finish - now;
}

/* {=== Machine helpers ===} */

static int m_by_class(lua_State *L) {
  strata__policy_t *P = engine(L);
  const char *c = luaL_checkstring(L, 1);
  lua_newtable(L);
  int n = 0;
  for (size_t i = 0; i < P->rt->ndevices; i++)
    if (!strcmp(c, strata_device_class_name(
                       P->rt->devices[i]->desc.device_class))) {
      strata__pviews_push_device(P, (int)i);
      lua_rawseti(L, -2, ++n);
    }
  return 1;
}

/* The first device of the set, in machine order, that can run the task
 * and has nothing placed on it that has not ended; nil if none. One C
 * loop instead of a Lua one that reads two fields and calls can_run per
 * device (eager.lua's whole decision). */
static int m_first_idle(lua_State *L) {
  strata__policy_t *P = engine(L);
  const strata__task_t *t = check_task(L, 1);
  uint64_t mask = check_set(L, 2);
  for (size_t i = 0; i < P->rt->ndevices; i++) {
    const strata__device_t *d = P->rt->devices[i];
    if (strata__placement_in_mask(mask, i) && strata__device_load(d) == 0 &&
        strata__placement_eligible(P->rt, t, (int)i)) {
      strata__pviews_push_device(P, (int)i);
      return 1;
    }
  }
  lua_pushnil(L);
  return 1;
}

static int m_least_loaded(lua_State *L) {
  strata__policy_t *P = engine(L);
  uint64_t mask = check_set(L, 1);
  int best = -1;
  uint64_t best_load = 0, best_workers = 1;
  for (size_t i = 0; i < P->rt->ndevices; i++) {
    const strata__device_t *d = P->rt->devices[i];
    if (!strata__placement_in_mask(mask, i) || atomic_load(&d->failed))
      continue;
    uint64_t load = strata__device_load(d), workers = d->desc.nworkers;
    if (best < 0 || load * best_workers < best_load * workers) {
      best = (int)i;
      best_load = load;
      best_workers = workers;
    }
  }
  if (best < 0)
    lua_pushnil(L);
  else
    strata__pviews_push_device(P, best);
  return 1;
}

static int m_has_room(lua_State *L) {
  strata__policy_t *P = engine(L);
  int d = check_device(L, 1);
  lua_Integer bytes = luaL_checkinteger(L, 2);
  lua_pushboolean(L, bytes >= 0 && (uint64_t)bytes <= free_bytes(P->rt, d));
  return 1;
}

/* can_run(task, set): whether a device of the set (a device, a class, a
 * list) can run the task. */
static int m_can_run(lua_State *L) {
  strata__policy_t *P = engine(L);
  const strata__task_t *t = check_task(L, 1);
  uint64_t mask = check_set(L, 2);
  bool able = false;
  for (size_t i = 0; i < P->rt->ndevices && !able; i++)
    able = strata__placement_in_mask(mask, i) &&
           strata__placement_eligible(P->rt, t, (int)i);
  lua_pushboolean(L, able);
  return 1;
}

/* reads_tag(task, tag): whether the task reads a buffer tagged `tag`,
 * without building task.buffers. */
static int m_reads_tag(lua_State *L) {
  const strata__task_t *t = check_task(L, 1);
  const char *tag = luaL_checkstring(L, 2);
  bool reads = false;
  for (size_t i = 0; i < t->naccess && !reads; i++)
    reads = (strata__task_access_mode(t, i) & STRATA_R) &&
            !strcmp(t->access[i].buf->tag, tag);
  lua_pushboolean(L, reads);
  return 1;
}

static int m_estimate(lua_State *L) {
  strata__policy_t *P = engine(L);
  want_estimates(P);
  const strata__task_t *t = check_task(L, 1);
  lua_pushnumber(L, strata__estimates_run_time(P->rt, t, check_device(L, 2)));
  return 1;
}

static int m_transfer_time(lua_State *L) {
  strata__policy_t *P = engine(L);
  want_estimates(P);
  const strata__task_t *t = check_task(L, 1);
  lua_pushnumber(L, transfer_time(P->rt, t, check_device(L, 2)));
  return 1;
}

static int m_finish_time(lua_State *L) {
  strata__policy_t *P = engine(L);
  want_estimates(P);
  const strata__task_t *t = check_task(L, 1);
  lua_pushnumber(L, finish_time(P, t, check_device(L, 2),
                                strata__plan_now(&P->plan, P->rt)));
  return 1;
}

/* eft(task, [set], [weight]): the device of the set where the task would
 * end first, its finish time counted with `weight` times its copies
 * again (0 by default: the earliest finish). A weight of 1 is StarPU's
 * dmda choice: a copy the task needs now stands for the copies its
 * successors will need to bring the results back, which a choice made
 * one task at a time does not see. */
static int m_eft(lua_State *L) {
  strata__policy_t *P = engine(L);
  want_estimates(P);
  const strata__task_t *t = check_task(L, 1);
  uint64_t mask = check_set(L, 2);
  double weight = luaL_optnumber(L, 3, 0);
  luaL_argcheck(L, weight >= 0 && weight < HUGE_VAL, 3,
                "must be a number >= 0");
  int best = -1;
  double best_score = HUGE_VAL;
  double now = strata__plan_now(&P->plan, P->rt);
  strata__plan_est_t e, best_e;
  for (size_t i = 0; i < P->rt->ndevices; i++) {
    if (!strata__placement_in_mask(mask, i) ||
        !strata__placement_eligible(P->rt, t, (int)i))
      continue;
    strata__plan_eval(&P->plan, P->rt, t, (int)i, now, &e);
    double score = e.finish + weight * e.copy_s; /* copies again */
    if (score < best_score) {
      best = (int)i;
      best_score = score;
      best_e = e;
    }
  }
  if (best < 0) {
    lua_pushnil(L);
    return 1;
  }
  strata__plan_remember(&P->plan, t, best, &best_e);
  double best_t = best_e.finish - now;
  strata__pviews_push_device(P, best);
  lua_pushnumber(L, best_t);
  return 2;
}

/* {=== Building the views ===} */

/* @return a registry reference to the new metatable */
static int new_metatable(strata__policy_t *P, const char *name,
                         lua_CFunction index, lua_CFunction tostring) {
  luaL_newmetatable(P->s.L, name);
  set_fn(P, "__index", index);
  lua_pushcfunction(P->s.L, read_only);
  lua_setfield(P->s.L, -2, "__newindex");
  set_fn(P, "__tostring", tostring);
  lua_pushliteral(P->s.L, "read-only");
  lua_setfield(P->s.L, -2, "__metatable");
  return luaL_ref(P->s.L, LUA_REGISTRYINDEX);
}

static int buffer_tostring(lua_State *L) {
  const strata__buffer_t *b = engine(L)->buffer;
  lua_pushfstring(L, "buffer of %I bytes", (lua_Integer)(b ? b->size : 0));
  return 1;
}

/* A userdata of `size` bytes with metatable `mt`, referenced from the
 * registry. @return the reference */
static int new_view(lua_State *L, size_t size, const char *mt) {
  memset(lua_newuserdatauv(L, size, 0), 0, size);
  luaL_setmetatable(L, mt);
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

/* The device views, in the registry (for push_device) and as a read-only
 * list for the machine table (left on the stack). */
static void build_devices(strata__policy_t *P) {
  lua_State *L = P->s.L;
  lua_createtable(L, (int)P->rt->ndevices, 0);
  for (size_t i = 0; i < P->rt->ndevices; i++) {
    *(int *)lua_newuserdatauv(L, sizeof(int), 1) = (int)i;
    luaL_setmetatable(L, DEVICE_MT);
    set_static_fields(L, P->rt->devices[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, "strata.devices");
  make_read_only(P, L);
}

static const char *node_kind(strata__node_kind_t k) {
  static const char *const names[] = {"device", "pinned", "host", "spill"};
  return names[k];
}

/* The memory nodes as read-only tables {index, kind, name, capacity,
 * device}, as a read-only list (left on the stack). */
static void build_nodes(strata__policy_t *P) {
  lua_State *L = P->s.L;
  const strata__memory_t *m = &P->rt->mem;
  size_t nnodes = strata__memory_nnodes(m);
  lua_createtable(L, (int)nnodes, 0);
  for (size_t i = 0; i < nnodes; i++) {
    const strata__device_t *dev = strata__memory_node_device(m, i);
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, (lua_Integer)i);
    lua_setfield(L, -2, "index");
    lua_pushstring(L, node_kind(strata__memory_node_kind(m, i)));
    lua_setfield(L, -2, "kind");
    lua_pushstring(L, strata__memory_node_name(m, i));
    lua_setfield(L, -2, "name");
    lua_pushinteger(L, (lua_Integer)strata__memory_node_capacity(m, i));
    lua_setfield(L, -2, "capacity");
    if (dev) {
      strata__pviews_push_device(P, dev->index);
      lua_setfield(L, -2, "device");
    }
    make_read_only(P, L);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_pushvalue(L, -1);
  P->s.ref_nodes = luaL_ref(L, LUA_REGISTRYINDEX);
  make_read_only(P, L);
}

static int build(lua_State *L) {
  strata__policy_t *P = lua_touserdata(L, 1);
  lua_newtable(L);
  P->s.ref_proxies = luaL_ref(L, LUA_REGISTRYINDEX);
  P->s.ref_task_mt = new_metatable(P, TASK_MT, task_index, task_tostring);
  P->s.ref_device_mt =
      new_metatable(P, DEVICE_MT, device_index, device_tostring);
  (void)new_metatable(P, BUFFER_MT, buffer_index, buffer_tostring);
  P->s.ref_task = new_view(L, 1, TASK_MT);
  P->s.ref_buffer = new_view(L, 1, BUFFER_MT);
  lua_newtable(L); /* the machine */
  build_devices(P);
  lua_setfield(L, -2, "devices");
  build_nodes(P);
  lua_setfield(L, -2, "nodes");
  set_fn(P, "by_class", m_by_class);
  set_fn(P, "least_loaded", m_least_loaded);
  set_fn(P, "first_idle", m_first_idle);
  set_fn(P, "reads_tag", m_reads_tag);
  set_fn(P, "has_room", m_has_room);
  set_fn(P, "can_run", m_can_run);
  set_fn(P, "estimate", m_estimate);
  set_fn(P, "transfer_time", m_transfer_time);
  set_fn(P, "finish_time", m_finish_time);
  set_fn(P, "eft", m_eft);
  make_read_only(P, L);
  P->s.ref_machine = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

int strata__pviews_open(strata__policy_t *P) {
  if (strata__sandbox_cpcall(P->s.sb, build, P, 0) == LUA_OK)
    return STRATA_OK;
  lua_pop(P->s.L, 1); /* only a memory error can get here */
  return STRATA_ENOMEM;
}
