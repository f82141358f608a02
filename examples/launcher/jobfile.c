/* SPDX-License-Identifier: MIT */
/* jobfile.c: loading a job file into a plan (see jobfile.h), and running
 * its check. The script's calls are C functions of this file, each an
 * upvalue-holding closure over the loader; each reads its table argument
 * with the shared schema readers, so that messages look alike across
 * Strata's files, with the script's file and line in front. */
#include "config.h"

#include "jobfile.h"

#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox.h"
#include "schema.h"

/* Limits of the script: loading a big plan takes many instructions (a
 * 100,000-task loop is about 10 million), a runaway one stops here. */
#define LOAD_INSTRUCTIONS 200000000u
#define LOAD_DEADLINE_NS 20000000000u /* 20 s */
#define STATE_MEMORY ((size_t)256 << 20)
#define CHECK_DEADLINE_NS 600000000000u /* 10 min: the check's C work */
#define JOB_FILE_MAX ((size_t)1 << 20)

#define BUFFER_MT "strata.buffer"
#define JOB_MT "strata.job"
#define ARRAY_MT "strata.array"

/* A scratch array of the check (r.array, r.copy): malloc'd, freed with
 * the job file. */
typedef struct jf_array {
  strata_elem_t type;
  size_t count;
  void *data;
} jf_array_t;

struct jobfile {
  const char *path;
  const jf_context_t *ctx;
  strata__sandbox_t *sb;
  lua_State *L;
  jf_plan_t plan;
  size_t cap_buffers, cap_jobs, cap_tasks;
  /* Buffer names to plan index + 1 (0: empty slot), open addressing:
   * declaring and naming buffers stays linear in their number. */
  uint32_t *names;
  size_t names_cap; /* a power of two, or 0 */
  bool params_done;
  bool loading; /* the job API answers only while the file loads */
  bool busy;    /* an API call is running (its table's code may not call
                   another: a pointer into the plan would go stale) */
  char first_error[1024]; /* the first API error: it fails the load even
                             when the script caught it (pcall) */
  char params[1024];      /* "n=512, tile=128" */
  char policy[4096];      /* policy "file": resolved; "" none */
  int check_ref;          /* LUA_NOREF: none */
  /* The check's view of the data. */
  void *const *data;
  jf_array_t *arrays;
  size_t narrays, cap_arrays;
  uint64_t array_bytes;
  char where[1200]; /* "PATH:LINE" of the call being read */
  char err[1024];
};

/* {=== Messages ===} */

/* The loader, an upvalue of every API function. */
static jobfile_t *self(lua_State *L) {
  return lua_touserdata(L, lua_upvalueindex(1));
}

/* "PATH:LINE" of the script's line that called the API function. */
static const char *where(lua_State *L, jobfile_t *jf) {
  lua_Debug ar;
  int line = -1;
  if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "l", &ar))
    line = ar.currentline;
  if (line > 0)
    snprintf(jf->where, sizeof jf->where, "%s:%d", jf->path, line);
  else
    snprintf(jf->where, sizeof jf->where, "%s", jf->path);
  return jf->where;
}

static int line_of(lua_State *L) {
  lua_Debug ar;
  return lua_getstack(L, 1, &ar) && lua_getinfo(L, "l", &ar) ? ar.currentline
                                                             : -1;
}

/* Raise "PATH:LINE: message" as the script's error. */
STRATA_PRINTF(2, 3)
static int fail(lua_State *L, const char *fmt, ...) {
  jobfile_t *jf = self(L);
  char msg[900];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  lua_pushfstring(L, "%s: %s", where(L, jf), msg);
  if (!jf->first_error[0])
    snprintf(jf->first_error, sizeof jf->first_error, "%s",
             lua_tostring(L, -1));
  return lua_error(L);
}

/* Raise the schema reader's message (it already names file and line). */
static int schema_failed(lua_State *L, jobfile_t *jf) {
  if (!jf->first_error[0])
    snprintf(jf->first_error, sizeof jf->first_error, "%s", jf->err);
  lua_pushstring(L, jf->err);
  return lua_error(L);
}

/* t[key], read raw: no metamethod of the script's runs in the middle of
 * a declaration. Pushes the value; returns its type. */
static int raw_field(lua_State *L, int t, const char *key) {
  t = lua_absindex(L, t);
  lua_pushstring(L, key);
  return lua_rawget(L, t);
}

/* The start of every job API function: only while the file loads, never
 * from inside another call, and not after an error (which already fails
 * the load). */
static jobfile_t *enter(lua_State *L) {
  jobfile_t *jf = self(L);
  if (jf->first_error[0]) {
    lua_pushstring(L, jf->first_error);
    lua_error(L);
  }
  if (!jf->loading)
    fail(L, "the job API (params, buffer, job, task, check, policy) is "
            "only there while the file loads");
  if (jf->busy)
    fail(L, "a declaration called from inside another (through a "
            "metamethod)");
  jf->busy = true;
  return jf;
}

/* The end of a job API function that returns normally. */
static int leave(jobfile_t *jf, int results) {
  jf->busy = false;
  return results;
}

/* A schema context whose messages start with "PATH:LINE". */
static strata__schema_t schema(lua_State *L, jobfile_t *jf) {
  return (strata__schema_t){
      .L = L, .file = where(L, jf), .err = jf->err, .errlen = sizeof jf->err};
}

/* Raises (never returns) when the read fails. */
#define TRY_SCHEMA(L, jf, call)                                                \
  do {                                                                         \
    if ((call))                                                                \
      (void)schema_failed(L, jf);                                              \
  } while (0)

/* The start of every declaration: one table argument, whose keys must be
 * among `keys`; returns the schema context for its fields. */
static strata__schema_t begin_declaration(lua_State *L, jobfile_t *jf,
                                          const char *what,
                                          const char *const *keys) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  strata__schema_t sc = schema(L, jf);
  TRY_SCHEMA(L, jf,
             strata__schema_keys(&sc, 1, what, keys, STRATA__SCHEMA_REFUSE));
  return sc;
}

/* {=== Growing the plan ===} */

/* Room for one more of `n` items of `size` bytes, up to max. */
static void *grow(lua_State *L, void *items, size_t n, size_t *cap, size_t size,
                  size_t max, const char *what) {
  if (n < *cap)
    return items;
  if (n >= max)
    fail(L,
         "more than %zu %s: the plan is too large (a loop that does not "
         "end?)",
         max, what);
  size_t c = *cap ? *cap * 2 : 16;
  c = c > max ? max : c;
  void *p = realloc(items, c * size);
  if (!p)
    fail(L, "not enough memory");
  *cap = c;
  return p;
}

static char *dup_string(lua_State *L, const char *s) {
  char *d = s ? strdup(s) : NULL;
  if (s && !d)
    fail(L, "not enough memory");
  return d;
}

/* {=== The buffers' names ===} */

static size_t name_hash(const char *s) {
  size_t h = 1469598103934665603u; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211u;
  return h;
}

/* The plan index of the buffer called `name`, or -1. */
static long find_name(const jobfile_t *jf, const char *name) {
  if (!jf->names_cap)
    return -1;
  for (size_t i = name_hash(name) & (jf->names_cap - 1);;
       i = (i + 1) & (jf->names_cap - 1)) {
    uint32_t slot = jf->names[i];
    if (!slot)
      return -1;
    if (!strcmp(jf->plan.buffers[slot - 1].name, name))
      return (long)slot - 1;
  }
}

static void put_name(jobfile_t *jf, uint32_t index) {
  const char *name = jf->plan.buffers[index].name;
  size_t i = name_hash(name) & (jf->names_cap - 1);
  while (jf->names[i])
    i = (i + 1) & (jf->names_cap - 1);
  jf->names[i] = index + 1;
}

/* Record buffer `index`'s name, the table kept at most half full. */
static void add_name(lua_State *L, jobfile_t *jf, uint32_t index) {
  if ((index + 1) * 2 > jf->names_cap) {
    size_t cap = jf->names_cap ? jf->names_cap * 2 : 64;
    uint32_t *t = calloc(cap, sizeof *t);
    if (!t)
      fail(L, "not enough memory");
    free(jf->names);
    jf->names = t;
    jf->names_cap = cap;
    for (uint32_t i = 0; i < index; i++)
      put_name(jf, i);
  }
  put_name(jf, index);
}

/* {=== params ===} */

/* Convert one --set value to the type of the parameter's default, and
 * push it. */
static void push_set(lua_State *L, const char *key, const char *value,
                     int deftype) {
  if (deftype == LUA_TSTRING) {
    lua_pushstring(L, value);
    return;
  }
  if (deftype == LUA_TBOOLEAN) {
    if (strcmp(value, "true") && strcmp(value, "false"))
      fail(L, "--set %s=%s: %s is a boolean: expected true or false", key,
           value, key);
    lua_pushboolean(L, !strcmp(value, "true"));
    return;
  }
  if (!lua_stringtonumber(L, value))
    fail(L, "--set %s=%s: %s is a number: '%s' is not one", key, value, key,
         value);
}

/* Append "key=value" to the report's parameter line. */
static void note_param(jobfile_t *jf, lua_State *L, const char *key, int v) {
  size_t len = strlen(jf->params);
  char shown[80];
  strata__schema_show(L, v, shown, sizeof shown);
  snprintf(jf->params + len, sizeof jf->params - len, "%s%s=%s",
           len ? ", " : "", key, shown);
}

/* params { name = default, ... } -> the values, --set applied. */
static int by_name(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int api_params(lua_State *L) {
  jobfile_t *jf = enter(L);
  if (jf->params_done)
    return fail(L, "params: called twice (declare every parameter in one "
                   "call)");
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  jf->params_done = true;
  /* The names, sorted in C (the report's line is stable, and no code of
   * the script runs here); the strings stay alive as keys of table 1. */
  const char *names[JF_MAX_PARAMS];
  size_t n = 0;
  for (lua_pushnil(L); lua_next(L, 1); lua_pop(L, 1)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      return fail(L, "params: every parameter needs a name (a string key)");
    int t = lua_type(L, -1);
    if (t != LUA_TNUMBER && t != LUA_TSTRING && t != LUA_TBOOLEAN)
      return fail(L,
                  "params: %s: a default must be a number, a string or a "
                  "boolean (got a %s)",
                  lua_tostring(L, -2), lua_typename(L, t));
    if (n == JF_MAX_PARAMS)
      return fail(L, "params: more than %u parameters", JF_MAX_PARAMS);
    names[n++] = lua_tostring(L, -2);
  }
  qsort(names, n, sizeof *names, by_name);
  lua_newtable(L); /* 2: the values */
  for (size_t i = 0; i < n; i++) {
    const char *key = names[i];
    lua_pushstring(L, key);
    lua_pushvalue(L, -1);
    lua_rawget(L, 1); /* the default */
    int deftype = lua_type(L, -1);
    for (size_t s = 0; s < jf->ctx->nsets; s++)
      if (!strcmp(jf->ctx->sets[s].key, key)) {
        jf->ctx->sets[s].used = true;
        lua_pop(L, 1);
        push_set(L, key, jf->ctx->sets[s].value, deftype);
        break;
      }
    note_param(jf, L, key, -1);
    lua_rawset(L, 2); /* values[key] = value */
  }
  return leave(jf, 1);
}

/* {=== Buffers and jobs as script values ===} */

static void push_handle(lua_State *L, const char *mt, uint32_t index) {
  uint32_t *u = lua_newuserdatauv(L, sizeof *u, 0);
  *u = index;
  luaL_setmetatable(L, mt);
}

/* The plan's buffer at idx (a handle, or a declared name), else -1 with
 * the reason in why. */
static long buffer_at(lua_State *L, jobfile_t *jf, int idx, char *why,
                      size_t n) {
  uint32_t *u = luaL_testudata(L, idx, BUFFER_MT);
  if (u)
    return *u < jf->plan.nbuffers ? (long)*u : -1;
  if (lua_type(L, idx) == LUA_TSTRING) {
    const char *name = lua_tostring(L, idx);
    long i = find_name(jf, name);
    if (i >= 0)
      return i;
    snprintf(why, n,
             "no buffer '%s' is declared (yet): declare it with "
             "buffer{} before the tasks that use it",
             name);
    return -1;
  }
  if (lua_isnil(L, idx))
    snprintf(why, n, "is nil: a buffer used before it is declared?");
  else {
    char shown[64];
    snprintf(why, n, "must be a buffer (got %s)",
             strata__schema_show(L, idx, shown, sizeof shown));
  }
  return -1;
}

/* buffer.name, .count, .type, .bytes */
static int buffer_index(lua_State *L) {
  jobfile_t *jf = self(L);
  uint32_t *u = luaL_checkudata(L, 1, BUFFER_MT);
  const jf_buffer_t *b = &jf->plan.buffers[*u];
  const char *k = luaL_checkstring(L, 2);
  if (!strcmp(k, "name"))
    lua_pushstring(L, b->name);
  else if (!strcmp(k, "count"))
    lua_pushinteger(L, (lua_Integer)b->count);
  else if (!strcmp(k, "type"))
    lua_pushstring(L, kernlib_elem_name(b->type));
  else
    lua_pushnil(L);
  return 1;
}

static int buffer_tostring(lua_State *L) {
  jobfile_t *jf = self(L);
  uint32_t *u = luaL_checkudata(L, 1, BUFFER_MT);
  lua_pushfstring(L, "buffer '%s'", jf->plan.buffers[*u].name);
  return 1;
}

static const char *const buffer_keys[] = {
    "name", "type", "count", "rows", "cols", "fill", "init", "tag", NULL};
static const char *const elem_names[] = {"float", "double", NULL};

/* count, or rows * cols, checked against the memory limit. */
static size_t read_count(lua_State *L, jobfile_t *jf, strata__schema_t *sc,
                         const char *obj, size_t elem) {
  static const strata__schema_range_t range = {1, 1e15, "", "1 to 1e15"};
  int64_t count = 0, rows = 0, cols = 0;
  bool has_count = false, has_rows = false, has_cols = false;
  TRY_SCHEMA(L, jf,
             strata__schema_integer(sc, 1, obj, "count", 0, &range, &count,
                                    &has_count));
  TRY_SCHEMA(
      L, jf,
      strata__schema_integer(sc, 1, obj, "rows", 0, &range, &rows, &has_rows));
  TRY_SCHEMA(
      L, jf,
      strata__schema_integer(sc, 1, obj, "cols", 0, &range, &cols, &has_cols));
  if (has_count == (has_rows || has_cols) || has_rows != has_cols)
    fail(L, "%s: give count, or rows and cols", obj);
  double elems = has_count ? (double)count : (double)rows * (double)cols;
  double bytes = elems * (double)elem;
  double total = (double)jf->plan.buffer_bytes + bytes;
  if (total > (double)jf->ctx->memory_limit)
    fail(L,
         "%s: the job's buffers would take %.3g GiB, more than the %.3g "
         "GiB this machine allows (half its memory)",
         obj, total / (1 << 30), (double)jf->ctx->memory_limit / (1 << 30));
  return (size_t)elems;
}

static void read_init_args(lua_State *L, jobfile_t *jf, int t,
                           const kernlib_kernel_t *k, double *args,
                           const char *obj);

/* fill = number | { value=, seed=, diagonal=, symmetric= }, or
 * init = { kernel = NAME, args = {...} }: what writes the contents. */
static void read_init(lua_State *L, jobfile_t *jf, jf_buffer_t *b) {
  raw_field(L, 1, "fill");
  raw_field(L, 1, "init");
  bool has_fill = !lua_isnil(L, -2), has_init = !lua_isnil(L, -1);
  if (has_fill && has_init)
    fail(L, "buffer '%s': give fill or init, not both", b->name);
  if (!has_fill && !has_init) {
    lua_pop(L, 2);
    return;
  }
  kernlib_kernel_t *k = NULL;
  if (has_fill) {
    k = kernlib_find(jf->ctx->kernels, "fill");
    if (!k)
      fail(L,
           "buffer '%s': fill needs the kernel 'fill', which no loaded "
           "kernel library has",
           b->name);
    lua_pop(L, 1); /* init */
  } else {
    lua_remove(L, -2); /* fill */
    if (!lua_istable(L, -1))
      fail(L,
           "buffer '%s': init must be a table { kernel = NAME, args = "
           "{...} }",
           b->name);
    raw_field(L, -1, "kernel");
    const char *name = lua_tostring(L, -1);
    if (!name || !(k = kernlib_find(jf->ctx->kernels, name)))
      fail(L, "buffer '%s': init: unknown kernel '%s'", b->name,
           name ? name : "?");
    lua_pop(L, 1);
    if (strcmp(k->k->modes, "w"))
      fail(L,
           "buffer '%s': init: kernel '%s' does not write a single "
           "buffer",
           b->name, name);
    raw_field(L, -1, "args");
    lua_remove(L, -2);
  }
  if (!(k->k->types >> b->type & 1u))
    fail(L, "buffer '%s': %s has no code for %s buffers", b->name, k->k->name,
         kernlib_elem_name(b->type));
  double *args = calloc(k->k->nargs ? k->k->nargs : 1, sizeof *args);
  if (!args)
    fail(L, "not enough memory");
  b->init = k;
  b->init_args = args;
  if (lua_type(L, -1) == LUA_TNUMBER) { /* fill = 0.5: the value */
    for (uint32_t i = 0; i < k->k->nargs; i++)
      args[i] = k->k->args[i].fallback;
    args[0] = lua_tonumber(L, -1);
    if (!isfinite(args[0]))
      fail(L, "buffer '%s'.fill: must be a finite number (got %g)", b->name,
           args[0]);
  } else {
    char obj[96];
    snprintf(obj, sizeof obj, "buffer '%s'.%s", b->name,
             has_fill ? "fill" : "init.args");
    read_init_args(L, jf, lua_gettop(L), k, args, obj);
  }
  lua_pop(L, 1);
  size_t size = b->count * kernlib_elem_size(b->type);
  if (k->k->check &&
      k->k->check(args, 1, &size, b->type, jf->err, sizeof jf->err))
    fail(L, "buffer '%s': %s: %s", b->name, k->k->name, jf->err);
}

/* buffer { name =, type =, count = | rows =, cols =, fill =, init =,
 * tag = } -> a handle */
static int api_buffer(lua_State *L) {
  jobfile_t *jf = enter(L);
  strata__schema_t sc = begin_declaration(L, jf, "buffer", buffer_keys);
  jf_plan_t *p = &jf->plan;
  p->buffers = grow(L, p->buffers, p->nbuffers, &jf->cap_buffers,
                    sizeof *p->buffers, JF_MAX_BUFFERS, "buffers");
  jf_buffer_t b = {.line = line_of(L), .type = STRATA_ELEM_DOUBLE};
  TRY_SCHEMA(L, jf,
             strata__schema_string(&sc, 1, "buffer", "name",
                                   STRATA__SCHEMA_REQUIRED, sizeof b.name - 1,
                                   b.name));
  long twice = find_name(jf, b.name);
  if (twice >= 0)
    return fail(L, "buffer '%s' is declared twice (first at line %d)", b.name,
                p->buffers[twice].line);
  int type = 1;
  TRY_SCHEMA(
      L, jf,
      strata__schema_enum(&sc, 1, "buffer", "type", 0, elem_names, &type));
  b.type = type == 0 ? STRATA_ELEM_FLOAT : STRATA_ELEM_DOUBLE;
  char obj[96];
  snprintf(obj, sizeof obj, "buffer '%s'", b.name);
  b.count = read_count(L, jf, &sc, obj, kernlib_elem_size(b.type));
  TRY_SCHEMA(
      L, jf,
      strata__schema_string(&sc, 1, obj, "tag", 0, sizeof b.tag - 1, b.tag));
  /* Recorded before init is read, so that a failure there frees it. */
  p->buffers[p->nbuffers++] = b;
  add_name(L, jf, (uint32_t)(p->nbuffers - 1));
  read_init(L, jf, &p->buffers[p->nbuffers - 1]);
  p->buffer_bytes += b.count * kernlib_elem_size(b.type);
  push_handle(L, BUFFER_MT, (uint32_t)(p->nbuffers - 1));
  return leave(jf, 1);
}

/* {=== Attributes shared by jobs and tasks ===} */

static const char *const precision_names[] = {"fp64", "fp32", "fp16",
                                              "bf16", "int8", NULL};

/* precision = "fp64" | "fp32": the labels devices report rates for. */
static void read_precision(lua_State *L, jobfile_t *jf, strata__schema_t *sc,
                           const char *obj, char *out, size_t n) {
  int which = -1;
  TRY_SCHEMA(
      L, jf,
      strata__schema_enum(sc, 1, obj, "precision", 0, precision_names, &which));
  if (which < 0)
    return;
  if (which > 1)
    fail(L,
         "%s: precision '%s': no device Strata drives runs %s kernels "
         "(devices run fp64 and fp32)",
         obj, precision_names[which], precision_names[which]);
  snprintf(out, n, "%s", precision_names[which]);
}

static void read_priority(lua_State *L, jobfile_t *jf, strata__schema_t *sc,
                          const char *obj, int *out, bool *present) {
  static const strata__schema_range_t r = {-1000000, 1000000, "",
                                           "-1e6 to 1e6"};
  int64_t v = 0;
  TRY_SCHEMA(
      L, jf,
      strata__schema_integer(sc, 1, obj, "priority", 0, &r, &v, present));
  *out = (int)v;
}

/* {=== job ===} */

static const char *const job_keys[] = {"name", "tier", "precision", "priority",
                                       NULL};

/* job { name =, tier =, precision =, priority = } -> a handle */
static int api_job(lua_State *L) {
  jobfile_t *jf = enter(L);
  strata__schema_t sc = begin_declaration(L, jf, "job", job_keys);
  jf_plan_t *p = &jf->plan;
  p->jobs = grow(L, p->jobs, p->njobs, &jf->cap_jobs, sizeof *p->jobs,
                 JF_MAX_JOBS, "jobs");
  jf_job_t j = {.line = line_of(L)};
  TRY_SCHEMA(L, jf,
             strata__schema_string(&sc, 1, "job", "name",
                                   STRATA__SCHEMA_REQUIRED, sizeof j.name - 1,
                                   j.name));
  for (size_t i = 0; i < p->njobs; i++)
    if (!strcmp(p->jobs[i].name, j.name))
      return fail(L, "job '%s' is declared twice (first at line %d)", j.name,
                  p->jobs[i].line);
  char obj[96];
  snprintf(obj, sizeof obj, "job '%s'", j.name);
  TRY_SCHEMA(
      L, jf,
      strata__schema_string(&sc, 1, obj, "tier", 0, sizeof j.tier - 1, j.tier));
  read_precision(L, jf, &sc, obj, j.precision, sizeof j.precision);
  read_priority(L, jf, &sc, obj, &j.priority, &j.has_priority);
  p->jobs[p->njobs++] = j;
  push_handle(L, JOB_MT, (uint32_t)(p->njobs - 1));
  return leave(jf, 1);
}

/* {=== task ===} */

static const char *const task_keys[] = {
    "kernel",    "job",   "access",   "args", "tier",
    "precision", "flops", "priority", "name", NULL};

/* The arguments table at t into args (one per kernel argument, defaults
 * filled in); booleans count as 1 and 0. */
static void read_init_args(lua_State *L, jobfile_t *jf, int t,
                           const kernlib_kernel_t *k, double *args,
                           const char *obj) {
  const strata_library_kernel_t *K = k->k;
  for (uint32_t i = 0; i < K->nargs; i++)
    args[i] = K->args[i].fallback;
  if (lua_isnil(L, t)) {
    for (uint32_t i = 0; i < K->nargs; i++)
      if (K->args[i].required)
        fail(L, "%s: %s needs the argument '%s'", obj, K->name,
             K->args[i].name);
    return;
  }
  if (!lua_istable(L, t))
    fail(L, "%s: must be a table of named arguments", obj);
  for (lua_pushnil(L); lua_next(L, t); lua_pop(L, 1)) {
    const char *key =
        lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    uint32_t i = 0;
    while (key && i < K->nargs && strcmp(K->args[i].name, key))
      i++;
    if (!key || i == K->nargs) {
      char known[256] = "";
      for (uint32_t a = 0; a < K->nargs; a++)
        snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s",
                 a ? ", " : "", K->args[a].name);
      char shown[64];
      fail(L, "%s: %s takes no argument %s (its arguments: %s)", obj, K->name,
           key ? key : strata__schema_show(L, -2, shown, sizeof shown),
           K->nargs ? known : "none");
    }
    if (lua_type(L, -1) == LUA_TBOOLEAN)
      args[i] = lua_toboolean(L, -1) ? 1 : 0;
    else if (lua_type(L, -1) == LUA_TNUMBER && isfinite(lua_tonumber(L, -1)))
      args[i] = lua_tonumber(L, -1);
    else {
      char shown[64];
      fail(L, "%s.%s: must be a finite number (got %s)", obj, key,
           strata__schema_show(L, -1, shown, sizeof shown));
    }
  }
  for (uint32_t i = 0; i < K->nargs; i++)
    if (K->args[i].required) {
      raw_field(L, t, K->args[i].name);
      bool missing = lua_isnil(L, -1);
      lua_pop(L, 1);
      if (missing)
        fail(L, "%s: %s needs the argument '%s'", obj, K->name,
             K->args[i].name);
    }
}

static uint8_t mode_of_letter(char c) {
  return c == 'r' ? STRATA_R : c == 'w' ? STRATA_W : STRATA_RW;
}

static const char *mode_name(uint8_t m) {
  return m == STRATA_R ? "r" : m == STRATA_W ? "w" : "rw";
}

/* One access entry at idx: a buffer, or { buffer, "mode" }; the mode
 * must be the one the kernel declares for that position. */
static void read_access(lua_State *L, jobfile_t *jf, jf_task_t *t, uint32_t i,
                        const char *obj) {
  const strata_library_kernel_t *K = t->kernel->k;
  bool any = !strcmp(K->modes, "*");
  uint8_t want = any ? STRATA_R : mode_of_letter(K->modes[i]);
  const char *bname = any ? "" : K->buffers[i];
  int base = lua_gettop(L) - 1, entry = lua_gettop(L), given = -1;
  if (lua_istable(L, entry)) {
    lua_rawgeti(L, entry, 1);
    lua_rawgeti(L, entry, 2);
    const char *m = lua_tostring(L, -1);
    given = !m                 ? -2
            : !strcmp(m, "r")  ? STRATA_R
            : !strcmp(m, "w")  ? STRATA_W
            : !strcmp(m, "rw") ? STRATA_RW
                               : -2;
    if (given == -2)
      fail(L, "%s.access[%u]: the mode must be 'r', 'w' or 'rw' (got %s)", obj,
           i + 1, m ? m : "none");
    lua_pop(L, 1);
    entry = lua_gettop(L);
  }
  char why[200] = "";
  long b = buffer_at(L, jf, entry, why, sizeof why);
  if (b < 0)
    fail(L, "%s.access[%u]%s%s%s: %s", obj, i + 1, *bname ? " (" : "", bname,
         *bname ? ")" : "", why);
  if (given >= 0 && given != want)
    fail(L, "%s.access[%u]: %s %s %s: the mode must be '%s' (got '%s')", obj,
         i + 1, K->name,
         want == STRATA_R   ? "reads"
         : want == STRATA_W ? "writes"
                            : "reads and writes",
         *bname ? bname : "its buffers", mode_name(want),
         mode_name((uint8_t)given));
  t->buffers[i] = (uint32_t)b;
  t->modes[i] = want;
  lua_settop(L, base);
}

/* access = { ... }: one entry per buffer of the kernel (any number for
 * "*"); all of one element type, which picks the kernel's code. */
static void read_accesses(lua_State *L, jobfile_t *jf, jf_task_t *t,
                          const char *obj) {
  const strata_library_kernel_t *K = t->kernel->k;
  bool any = !strcmp(K->modes, "*");
  raw_field(L, 1, "access");
  int acc = lua_gettop(L);
  if (!lua_isnil(L, acc) && !lua_istable(L, acc))
    fail(L, "%s.access: must be a list of buffers", obj);
  size_t len = lua_istable(L, acc) ? lua_rawlen(L, acc) : 0;
  size_t want = any ? len : strlen(K->modes);
  if (len > want)
    fail(L, "%s.access: %s takes %zu buffer(s), %zu given", obj, K->name, want,
         len);
  if (want > JF_MAX_ACCESSES)
    fail(L, "%s.access: more than %u buffers", obj, JF_MAX_ACCESSES);
  t->nbuffers = (uint32_t)want;
  t->buffers = calloc(want ? want : 1, sizeof *t->buffers);
  t->modes = calloc(want ? want : 1, 1);
  if (!t->buffers || !t->modes)
    fail(L, "not enough memory");
  for (uint32_t i = 0; i < want; i++) {
    if (lua_istable(L, acc))
      lua_rawgeti(L, acc, (lua_Integer)i + 1);
    else
      lua_pushnil(L);
    read_access(L, jf, t, i, obj);
  }
  lua_pop(L, 1);
  t->type = STRATA_ELEM_NONE;
  if (K->types == 1u << STRATA_ELEM_NONE)
    return;
  bool converts = K->flags & STRATA_LIBRARY_CONVERTS;
  for (uint32_t i = 0; i < t->nbuffers; i++) {
    strata_elem_t bt = jf->plan.buffers[t->buffers[i]].type;
    bool same = converts && i == 1 ? bt != t->type : bt == t->type;
    if (i && !same)
      fail(L, "%s: %s's buffers must hold %s (%s is %s, %s is %s)", obj,
           K->name, converts ? "the two element types" : "one element type",
           jf->plan.buffers[t->buffers[0]].name, kernlib_elem_name(t->type),
           jf->plan.buffers[t->buffers[i]].name, kernlib_elem_name(bt));
    if (!i)
      t->type = bt;
  }
  if (!(K->types >> t->type & 1u))
    fail(L, "%s: %s has no code for %s buffers", obj, K->name,
         kernlib_elem_name(t->type));
}

/* The task carries the precision the policy reads: its own, else its
 * job's. (The element type is not a claim of precision: preprocessing in
 * doubles is not FP64 compute.) */
static void inherit_precision(lua_State *L, jobfile_t *jf, jf_task_t *t) {
  const char *p = jf->plan.jobs[t->job].precision;
  if (!t->precision && p[0])
    t->precision = dup_string(L, p);
}

static void read_task_attrs(lua_State *L, jobfile_t *jf, strata__schema_t *sc,
                            jf_task_t *t, const char *obj) {
  char s[64] = "";
  TRY_SCHEMA(L, jf,
             strata__schema_string(sc, 1, obj, "name", 0, sizeof s - 1, s));
  t->name = *s ? dup_string(L, s) : NULL;
  *s = '\0';
  TRY_SCHEMA(L, jf,
             strata__schema_string(sc, 1, obj, "tier", 0, sizeof s - 1, s));
  t->tier = *s ? dup_string(L, s) : NULL;
  *s = '\0';
  read_precision(L, jf, sc, obj, s, sizeof s);
  t->precision = *s ? dup_string(L, s) : NULL;
  read_priority(L, jf, sc, obj, &t->priority, &t->has_priority);
  static const strata__schema_range_t fr = {0, 1e21, "flop", "0 to 1e21"};
  double flops = -1;
  TRY_SCHEMA(L, jf, strata__schema_number(sc, 1, obj, "flops", 0, &fr, &flops));
  t->flops = flops;
}

/* Free what a task holds (not the task itself). */
static void task_clear(jf_task_t *t) {
  free(t->buffers);
  free(t->modes);
  free(t->args);
  free(t->name);
  free(t->tier);
  free(t->precision);
  memset(t, 0, sizeof *t);
}

/* task { kernel =, job =, access =, args =, tier =, precision =, flops =,
 * priority =, name = } */
static int api_task(lua_State *L) {
  jobfile_t *jf = enter(L);
  strata__schema_t sc = begin_declaration(L, jf, "task", task_keys);
  jf_plan_t *p = &jf->plan;
  p->tasks = grow(L, p->tasks, p->ntasks, &jf->cap_tasks, sizeof *p->tasks,
                  JF_MAX_TASKS, "tasks");
  /* The slot is the plan's from here: a failure below leaves it for
   * jobfile_free, counted. */
  jf_task_t *t = &p->tasks[p->ntasks++];
  *t = (jf_task_t){.line = line_of(L), .flops = -1};
  char kname[64];
  TRY_SCHEMA(L, jf,
             strata__schema_string(&sc, 1, "task", "kernel",
                                   STRATA__SCHEMA_REQUIRED, sizeof kname - 1,
                                   kname));
  if (!(t->kernel = kernlib_find(jf->ctx->kernels, kname)))
    return fail(L,
                "task: unknown kernel '%s' (strata-run --list-kernels "
                "lists them)",
                kname);
  char obj[128];
  snprintf(obj, sizeof obj, "task %zu (%s)", p->ntasks, kname);
  raw_field(L, 1, "job");
  uint32_t *j = luaL_testudata(L, -1, JOB_MT);
  if (!j)
    return fail(L, "%s: job must be a job (made with job{})", obj);
  t->job = *j;
  lua_pop(L, 1);
  read_accesses(L, jf, t, obj);
  const strata_library_kernel_t *K = t->kernel->k;
  t->args = calloc(K->nargs ? K->nargs : 1, sizeof *t->args);
  if (!t->args)
    return fail(L, "not enough memory");
  raw_field(L, 1, "args");
  char aobj[160];
  snprintf(aobj, sizeof aobj, "%s.args", obj);
  read_init_args(L, jf, lua_gettop(L), t->kernel, t->args, aobj);
  lua_pop(L, 1);
  size_t sizes[JF_MAX_ACCESSES];
  for (uint32_t i = 0; i < t->nbuffers; i++) {
    const jf_buffer_t *b = &p->buffers[t->buffers[i]];
    sizes[i] = b->count * kernlib_elem_size(b->type);
  }
  if (K->check &&
      K->check(t->args, t->nbuffers, sizes, t->type, jf->err, sizeof jf->err))
    return fail(L, "%s: %s", obj, jf->err);
  read_task_attrs(L, jf, &sc, t, obj);
  inherit_precision(L, jf, t);
  if (t->flops < 0 && K->flops)
    t->flops = K->flops(t->args, t->nbuffers, sizes, t->type);
  return leave(jf, 0);
}

/* policy "file.lua": the placement policy the job wants (relative to the
 * job file's directory), used unless the user names one. */
static int api_policy(lua_State *L) {
  jobfile_t *jf = enter(L);
  const char *name = luaL_checkstring(L, 1);
  if (jf->policy[0])
    return fail(L, "policy: given twice");
  const char *slash = strrchr(jf->path, '/');
  if (name[0] == '/' || !slash)
    snprintf(jf->policy, sizeof jf->policy, "%s", name);
  else
    snprintf(jf->policy, sizeof jf->policy, "%.*s/%s", (int)(slash - jf->path),
             jf->path, name);
  char why[4200];
  if (strata__check_text_file(jf->policy, JOB_FILE_MAX, why, sizeof why))
    return fail(L, "policy: %s", why);
  return leave(jf, 0);
}

/* check(function(r) ... return ok, message end) */
static int api_check(lua_State *L) {
  jobfile_t *jf = enter(L);
  luaL_checktype(L, 1, LUA_TFUNCTION);
  if (jf->check_ref != LUA_NOREF)
    return fail(L, "check: given twice");
  lua_settop(L, 1);
  jf->check_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  jf->plan.has_check = true;
  return leave(jf, 0);
}

/* {=== The check's view of the results ===} */

/* A data source of the check: a buffer (its final contents, read only)
 * or a scratch array. */
typedef struct source {
  strata_elem_t type;
  size_t count;
  void *data;
  bool writable;
} source_t;

static source_t source_at(lua_State *L, jobfile_t *jf, int idx) {
  uint32_t *a = luaL_testudata(L, idx, ARRAY_MT);
  if (a) {
    jf_array_t *x = &jf->arrays[*a];
    return (source_t){x->type, x->count, x->data, true};
  }
  char why[200];
  long b = buffer_at(L, jf, idx, why, sizeof why);
  if (b < 0)
    fail(L, "check: argument %d %s", idx, why);
  const jf_buffer_t *buf = &jf->plan.buffers[b];
  return (source_t){buf->type, buf->count, jf->data[b], false};
}

static double elem(const source_t *s, size_t i) {
  return s->type == STRATA_ELEM_FLOAT ? (double)((const float *)s->data)[i]
                                      : ((const double *)s->data)[i];
}

/* r.get(x, i): element i (from 1). */
static int r_get(lua_State *L) {
  source_t s = source_at(L, self(L), 1);
  lua_Integer i = luaL_checkinteger(L, 2);
  if (i < 1 || (lua_Unsigned)i > s.count)
    return fail(L, "r.get: index %lld is outside 1..%zu", (long long)i,
                s.count);
  lua_pushnumber(L, elem(&s, (size_t)i - 1));
  return 1;
}

/* r.count(x) */
static int r_count(lua_State *L) {
  source_t s = source_at(L, self(L), 1);
  lua_pushinteger(L, (lua_Integer)s.count);
  return 1;
}

/* r.sum(x), in index order. */
static int r_sum(lua_State *L) {
  source_t s = source_at(L, self(L), 1);
  double sum = 0;
  for (size_t i = 0; i < s.count; i++)
    sum += elem(&s, i);
  lua_pushnumber(L, sum);
  return 1;
}

/* r.norm(x): the 2-norm (Frobenius for matrices). */
static int r_norm(lua_State *L) {
  source_t s = source_at(L, self(L), 1);
  double sum = 0;
  for (size_t i = 0; i < s.count; i++)
    sum += elem(&s, i) * elem(&s, i);
  lua_pushnumber(L, sqrt(sum));
  return 1;
}

/* r.diff(x, y): max |x - y|; r.rel_diff(x, y): ||x - y|| / ||y||. A NaN
 * anywhere makes the answer NaN, which no tolerance accepts. */
static int diff(lua_State *L, bool relative) {
  jobfile_t *jf = self(L);
  source_t x = source_at(L, jf, 1), y = source_at(L, jf, 2);
  if (x.count != y.count)
    return fail(L, "r.%s: the two hold %zu and %zu elements",
                relative ? "rel_diff" : "diff", x.count, y.count);
  double worst = 0, num = 0, den = 0;
  bool nan = false;
  for (size_t i = 0; i < x.count; i++) {
    double a = elem(&x, i), b = elem(&y, i), d = fabs(a - b);
    nan |= isnan(d);
    worst = d > worst ? d : worst;
    num += d * d;
    den += b * b;
  }
  double v = relative ? (den > 0 ? sqrt(num / den) : sqrt(num)) : worst;
  lua_pushnumber(L, nan ? NAN : v);
  return 1;
}
static int r_diff(lua_State *L) { return diff(L, false); }
static int r_rel_diff(lua_State *L) { return diff(L, true); }

/* A new zero-filled array of count elements, pushed. */
static jf_array_t *new_array(lua_State *L, jobfile_t *jf, const char *who,
                             strata_elem_t type, size_t count) {
  size_t bytes = count * kernlib_elem_size(type);
  if (!count || jf->array_bytes + bytes > jf->ctx->memory_limit)
    fail(L, "%s: %zu elements: more than the check may hold", who, count);
  if (jf->narrays == jf->cap_arrays) {
    size_t c = jf->cap_arrays ? jf->cap_arrays * 2 : 16;
    jf_array_t *p = realloc(jf->arrays, c * sizeof *p);
    if (!p)
      fail(L, "not enough memory");
    jf->arrays = p;
    jf->cap_arrays = c;
  }
  void *data = calloc(count, kernlib_elem_size(type));
  if (!data)
    fail(L, "not enough memory");
  jf->arrays[jf->narrays] = (jf_array_t){type, count, data};
  jf->array_bytes += bytes;
  push_handle(L, ARRAY_MT, (uint32_t)jf->narrays++);
  return &jf->arrays[jf->narrays - 1];
}

/* r.array(type, count) */
static int r_array(lua_State *L) {
  int type = luaL_checkoption(L, 1, NULL, elem_names);
  lua_Integer n = luaL_checkinteger(L, 2);
  if (n < 1)
    return fail(L, "r.array: count must be at least 1");
  new_array(L, self(L), "r.array",
            type ? STRATA_ELEM_DOUBLE : STRATA_ELEM_FLOAT, (size_t)n);
  return 1;
}

/* r.copy(x): a writable array holding x's elements. */
static int r_copy(lua_State *L) {
  jobfile_t *jf = self(L);
  source_t s = source_at(L, jf, 1);
  jf_array_t *a = new_array(L, jf, "r.copy", s.type, s.count);
  memcpy(a->data, s.data, s.count * kernlib_elem_size(s.type));
  return 1;
}

/* r.run(kernel, { x, y, ... }, args): the kernel's CPU code on the host,
 * now; what it writes must be arrays. Returns the kernel's status. */
static int r_run(lua_State *L) {
  jobfile_t *jf = self(L);
  const char *name = luaL_checkstring(L, 1);
  kernlib_kernel_t *k = kernlib_find(jf->ctx->kernels, name);
  if (!k)
    return fail(L, "r.run: unknown kernel '%s'", name);
  luaL_checktype(L, 2, LUA_TTABLE);
  const strata_library_kernel_t *K = k->k;
  bool any = !strcmp(K->modes, "*");
  size_t n = any ? lua_rawlen(L, 2) : strlen(K->modes);
  if (n > 64 || lua_rawlen(L, 2) != n)
    return fail(L, "r.run: %s takes %zu buffer(s), %zu given", name, n,
                (size_t)lua_rawlen(L, 2));
  void *bufs[64];
  size_t sizes[64];
  uint8_t modes[64];
  strata_elem_t type = STRATA_ELEM_NONE;
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, 2, (lua_Integer)i + 1);
    source_t s = source_at(L, jf, lua_gettop(L));
    lua_pop(L, 1);
    modes[i] = any ? STRATA_R : mode_of_letter(K->modes[i]);
    if (modes[i] != STRATA_R && !s.writable)
      return fail(L,
                  "r.run: %s writes %s: give it an array (r.copy), the "
                  "job's buffers are read only here",
                  name, K->buffers[i]);
    bool converts = K->flags & STRATA_LIBRARY_CONVERTS;
    bool same = converts && i == 1 ? s.type != type : s.type == type;
    if (i && !same)
      return fail(L, "r.run: %s's buffers must hold %s", name,
                  converts ? "the two element types" : "one element type");
    if (!i)
      type = s.type;
    bufs[i] = s.data;
    sizes[i] = s.count * kernlib_elem_size(s.type);
  }
  if (K->types == 1u << STRATA_ELEM_NONE)
    type = STRATA_ELEM_NONE;
  double args[64] = {0};
  if (K->nargs > 64)
    return fail(L, "r.run: %s has too many arguments", name);
  lua_settop(L, 3);
  read_init_args(L, jf, 3, k, args, "r.run");
  if (K->check &&
      K->check(args, (uint32_t)n, sizes, type, jf->err, sizeof jf->err))
    return fail(L, "r.run: %s: %s", name, jf->err);
  lua_pushinteger(
      L, kernlib_run_host(k, type, bufs, sizes, modes, (uint32_t)n, args));
  return 1;
}

static const luaL_Reg result_api[] = {
    {"get", r_get},     {"count", r_count}, {"sum", r_sum},
    {"norm", r_norm},   {"diff", r_diff},   {"rel_diff", r_rel_diff},
    {"array", r_array}, {"copy", r_copy},   {"run", r_run},
    {NULL, NULL}};

/* {=== Setting up the state ===} */

static const luaL_Reg job_api[] = {{"params", api_params},
                                   {"buffer", api_buffer},
                                   {"job", api_job},
                                   {"task", api_task},
                                   {"check", api_check},
                                   {"policy", api_policy},
                                   {NULL, NULL}};

/* Metatables that scripts can read through but never change. */
static void handle_type(lua_State *L, jobfile_t *jf, const char *name,
                        lua_CFunction index, lua_CFunction tostring) {
  luaL_newmetatable(L, name);
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  if (index) {
    lua_pushlightuserdata(L, jf);
    lua_pushcclosure(L, index, 1);
    lua_setfield(L, -2, "__index");
  }
  if (tostring) {
    lua_pushlightuserdata(L, jf);
    lua_pushcclosure(L, tostring, 1);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
}

static int install_api(lua_State *L) {
  jobfile_t *jf = lua_touserdata(L, 1);
  handle_type(L, jf, BUFFER_MT, buffer_index, buffer_tostring);
  handle_type(L, jf, JOB_MT, NULL, NULL);
  handle_type(L, jf, ARRAY_MT, NULL, NULL);
  for (const luaL_Reg *r = job_api; r->name; r++) {
    lua_pushlightuserdata(L, jf);
    lua_pushcclosure(L, r->func, 1);
    lua_setglobal(L, r->name);
  }
  return 0;
}

/* The sandbox's message, one line: the traceback cut off, the file named
 * when Lua did not (a C stack overflow). */
static void lua_message(jobfile_t *jf, char *err, size_t errlen,
                        const char *when) {
  lua_State *L = jf->L;
  strata__sandbox_trip_t trip = strata__sandbox_tripped(jf->sb);
  if (trip == STRATA__SANDBOX_MEMORY_HIT) {
    snprintf(err, errlen,
             "%s: the script needs more than %zu MiB %s (a "
             "table that grows without end?)",
             jf->path, STATE_MEMORY >> 20, when);
    return;
  }
  const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
  size_t len = strcspn(msg, "\n");
  if (trip == STRATA__SANDBOX_INSTRUCTIONS_HIT ||
      trip == STRATA__SANDBOX_DEADLINE_HIT)
    snprintf(err, errlen,
             "%s: the script ran past its %s %s (a loop that "
             "does not end?): %.*s",
             jf->path,
             trip == STRATA__SANDBOX_DEADLINE_HIT ? "time limit"
                                                  : "instruction budget",
             when, (int)len, msg);
  else if (!strncmp(msg, jf->path, strlen(jf->path)))
    snprintf(err, errlen, "%.*s", (int)len, msg);
  else
    snprintf(err, errlen, "%s: %.*s", jf->path, (int)len, msg);
}

/* After the script: every --set must have named a parameter. */
static int check_sets(jobfile_t *jf, char *err, size_t errlen) {
  for (size_t s = 0; s < jf->ctx->nsets; s++)
    if (!jf->ctx->sets[s].used) {
      snprintf(err, errlen, "--set %s=%s: %s declares no parameter '%s'%s%s%s",
               jf->ctx->sets[s].key, jf->ctx->sets[s].value, jf->path,
               jf->ctx->sets[s].key, jf->params[0] ? " (its parameters: " : "",
               jf->params, jf->params[0] ? ")" : "");
      return STRATA_EINVAL;
    }
  if (!jf->plan.ntasks) {
    snprintf(err, errlen, "%s: the file declares no task", jf->path);
    return STRATA_EINVAL;
  }
  return STRATA_OK;
}

static int run_script(jobfile_t *jf, const char *text, size_t len, char *err,
                      size_t errlen) {
  strata__sandbox_limits_t limits = {.instructions = LOAD_INSTRUCTIONS,
                                     .memory = STATE_MEMORY,
                                     .deadline_ns = LOAD_DEADLINE_NS};
  if (strata__sandbox_new(NULL, NULL, &limits, STRATA__SANDBOX_LIBS, jf->path,
                          NULL, NULL, &jf->sb)) {
    snprintf(err, errlen, "%s: not enough memory for a Lua state", jf->path);
    return STRATA_ENOMEM;
  }
  jf->L = strata__sandbox_state(jf->sb);
  if (strata__sandbox_cpcall(jf->sb, install_api, jf, 0) != LUA_OK) {
    snprintf(err, errlen, "%s: cannot set up the job API", jf->path);
    return STRATA_ENOMEM;
  }
  char chunkname[1100];
  snprintf(chunkname, sizeof chunkname, "@%s", jf->path);
  int top = lua_gettop(jf->L);
  int st = strata__sandbox_load(jf->sb, text, len, chunkname);
  jf->loading = true;
  if (st == LUA_OK)
    st = strata__sandbox_call(jf->sb, 0, 0);
  jf->loading = false;
  if (st != LUA_OK) {
    lua_message(jf, err, errlen, "at load");
    lua_settop(jf->L, top);
    /* The script's memory cap is a fault of the file, not of the host. */
    return st == LUA_ERRMEM &&
                   strata__sandbox_tripped(jf->sb) != STRATA__SANDBOX_MEMORY_HIT
               ? STRATA_ENOMEM
               : STRATA_EINVAL;
  }
  if (jf->first_error[0]) { /* caught by the script: it fails all the same */
    snprintf(err, errlen, "%s", jf->first_error);
    return STRATA_EINVAL;
  }
  return check_sets(jf, err, errlen);
}

int jobfile_load(const char *path, const jf_context_t *ctx, jobfile_t **out,
                 char *err, size_t errlen) {
  jobfile_t *jf = calloc(1, sizeof *jf);
  if (!jf) {
    snprintf(err, errlen, "%s: not enough memory", path);
    return STRATA_ENOMEM;
  }
  jf->path = path;
  jf->ctx = ctx;
  jf->check_ref = LUA_NOREF;
  char *text = NULL;
  size_t len = 0;
  int rc = strata__read_text_file(path, JOB_FILE_MAX, NULL, NULL, &text, &len,
                                  err, errlen);
  if (!rc && len && text[0] == LUA_SIGNATURE[0]) {
    snprintf(err, errlen, "%s: precompiled (binary) chunks are not accepted",
             path);
    rc = STRATA_EINVAL;
  }
  if (!rc)
    rc = run_script(jf, text, len, err, errlen);
  if (text)
    strata__free_text_file(NULL, NULL, text, len);
  if (rc) {
    jobfile_free(jf);
    return rc;
  }
  *out = jf;
  return STRATA_OK;
}

const jf_plan_t *jobfile_plan(const jobfile_t *jf) { return &jf->plan; }

const char *jobfile_params(const jobfile_t *jf) { return jf->params; }

const char *jobfile_policy(const jobfile_t *jf) {
  return jf->policy[0] ? jf->policy : NULL;
}

/* Push the check function and its argument r. */
static int push_check(lua_State *L) {
  jobfile_t *jf = lua_touserdata(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, jf->check_ref);
  lua_newtable(L);
  for (const luaL_Reg *r = result_api; r->name; r++) {
    lua_pushlightuserdata(L, jf);
    lua_pushcclosure(L, r->func, 1);
    lua_setfield(L, -2, r->name);
  }
  return 2;
}

int jobfile_check(jobfile_t *jf, void *const *data, bool *passed, char *msg,
                  size_t msglen) {
  *passed = false;
  if (jf->check_ref == LUA_NOREF)
    return STRATA_ENOENT;
  jf->data = data;
  lua_State *L = jf->L;
  int top = lua_gettop(L);
  strata__sandbox_set_deadline(jf->sb, CHECK_DEADLINE_NS);
  int st = strata__sandbox_cpcall(jf->sb, push_check, jf, 2);
  if (st == LUA_OK)
    st = strata__sandbox_call(jf->sb, 1, 2);
  int rc = STRATA_OK;
  if (st != LUA_OK) {
    lua_message(jf, msg, msglen, "in the check");
    rc = STRATA_EINVAL;
  } else if (lua_type(L, -2) != LUA_TBOOLEAN) {
    snprintf(msg, msglen,
             "%s: the check must return true or false, and a "
             "message",
             jf->path);
    rc = STRATA_EINVAL;
  } else {
    *passed = lua_toboolean(L, -2);
    const char *m = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
    snprintf(msg, msglen, "%s", m);
  }
  lua_settop(L, top);
  jf->data = NULL;
  return rc;
}

void jobfile_free(jobfile_t *jf) {
  if (!jf)
    return;
  strata__sandbox_free(jf->sb);
  for (size_t i = 0; i < jf->plan.nbuffers; i++)
    free(jf->plan.buffers[i].init_args);
  for (size_t i = 0; i < jf->plan.ntasks; i++)
    task_clear(&jf->plan.tasks[i]);
  for (size_t i = 0; i < jf->narrays; i++)
    free(jf->arrays[i].data);
  free(jf->arrays);
  free(jf->names);
  free(jf->plan.buffers);
  free(jf->plan.jobs);
  free(jf->plan.tasks);
  free(jf);
}
