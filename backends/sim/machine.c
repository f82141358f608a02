/* SPDX-License-Identifier: MIT */
/* backends/sim/machine.c: load a sim machine description (a Lua file that
 * returns a table) in an empty sandbox (sandbox/sandbox.h: capped memory,
 * an instruction budget and a time limit it cannot escape) and check every
 * field through the shared typed reader (sandbox/schema.h), so that each
 * message names the file and the field. */
#include "config.h"

#include "machine.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sandbox.h"
#include "schema.h"

#include <lauxlib.h>
#include <lua.h>

/* A description is a few dozen lines of data: these limits are far above
 * any real one and low enough that a runaway file costs milliseconds. */
#define TEXT_MAX ((size_t)1 << 20)   /* bytes of source text */
#define STATE_MAX ((size_t)16 << 20) /* bytes the Lua state may hold */
#define STEPS_MAX 1000000            /* VM instructions for the chunk */
#define TIME_MAX_NS 250000000u       /* wall clock for the chunk: 250 ms */

#define NEST_MAX 32 /* levels of tables in the result */

#define DEFAULT_LINK_LATENCY 5e-6
#define DEFAULT_TEMPERATURE 40.0

/* The range each figure of a description may take: far wider than any
 * real machine's (a factor of a thousand or more past today's largest),
 * and narrow enough that the time model's sums and quotients stay
 * finite: the quickest copy of the largest memory at the slowest link
 * is 2^50 / 1e3 s, not infinity. The text is how messages quote it. */
typedef strata__schema_range_t figure_t;

static const figure_t RATE = {1e3, 1e18, "flop/s", "1e3 to 1e18"};
static const figure_t BANDWIDTH = {1e3, 1e15, "B/s", "1e3 to 1e15"};
static const figure_t LATENCY = {0, 10, "s", "0 to 10"};
static const figure_t MEMORY = {1, 0x1p50, "bytes", "1 to 2^50"};
static const figure_t TEMPERATURE = {-50, 200, "degrees C", "-50 to 200"};
static const figure_t POWER = {0, 1e6, "W", "0 to 1e6"};
static const figure_t WORKERS = {1, 64, "workers", "1 to 64"};
static const figure_t NUMA = {0, 65535, "", "0 to 65535"}; /* an index */
static const figure_t COPIES = {1, 1e12, "copies", "1 to 1e12"};
static const figure_t FAIL_COUNT = {1, 1e9, "copies", "1 to 1e9"};
static const figure_t TASKS = {1, 1e12, "tasks", "1 to 1e12"};
/* The device facts, within what the core accepts (runtime/hardware/
 * device.c): a real bus is 64 to 8192 bits wide. */
static const figure_t BUS_WIDTH = {1, 65536, "bits", "1 to 65536"};
static const figure_t PCIE_GEN = {1, 7, "", "1 to 7"};
static const figure_t PCIE_WIDTH = {1, 32, "lanes", "1 to 32"};

/* {=== Load state ===} */

typedef struct load {
  const char *path;
  strata_alloc_fn alloc;
  void *ud;
  char *err;
  size_t errlen;
  char *text; /* file contents, NUL-terminated: len + 1 bytes */
  size_t len;
  strata__sandbox_t *sb;
  lua_State *L;
  strata__schema_t sc; /* the typed reader: file, state, message buffer */
  int status;          /* result of the checks run inside the protected call */
  sim_machine_t m;     /* being built; freed by sim_machine_load on failure */
} load_t;

#define TRY(expr)                                                              \
  do {                                                                         \
    int try_rc_ = (expr);                                                      \
    if (try_rc_ != 0)                                                          \
      return try_rc_;                                                          \
  } while (0)

/* {=== Error messages ===} */

STRATA_PRINTF(2, 3)
static void say(load_t *ld, const char *fmt, ...) {
  if (!ld->err || ld->errlen == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ld->err, ld->errlen, fmt, ap);
  va_end(ap);
}

static int out_of_memory(load_t *ld) {
  say(ld, "%s: out of memory", ld->path);
  return STRATA_ENOMEM;
}

/* {=== Reading the file ===} */

/* Through the shared reader: a FIFO, a device or a directory is refused
 * before a byte is read (a FIFO nobody writes to would block forever). */
static int read_file(load_t *ld) {
  return strata__read_text_file(ld->path, TEXT_MAX, ld->alloc, ld->ud,
                                &ld->text, &ld->len, ld->err, ld->errlen);
}

/* {=== The sandbox ===} */

/* What a description sees: unit constants and nothing else. */
static const struct {
  const char *name;
  lua_Integer i; /* integers stay exact: 80 * GiB is a whole byte count */
  double d;      /* used when i is 0 */
} constants[] = {
    {"KiB", INT64_C(1) << 10, 0},
    {"MiB", INT64_C(1) << 20, 0},
    {"GiB", INT64_C(1) << 30, 0},
    {"TiB", INT64_C(1) << 40, 0},
    {"KB", INT64_C(1000), 0},
    {"MB", INT64_C(1000000), 0},
    {"GB", INT64_C(1000000000), 0},
    {"TB", INT64_C(1000000000000), 0},
    {"us", 0, 1e-6},
    {"ms", 0, 1e-3},
    {"GFLOPS", INT64_C(1000000000), 0},
    {"TFLOPS", INT64_C(1000000000000), 0},
};

static const char *global_name(lua_State *L) {
  return lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?";
}

/* __index of the environment: a typo in a constant or a forgotten local
 * would otherwise read as nil and vanish from the table silently. */
static int env_index(lua_State *L) {
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) == LUA_TNIL)
    return luaL_error(L, "unknown name '%s' (only the unit constants exist)",
                      global_name(L));
  return 1;
}

/* __newindex: the environment is an empty proxy, so this catches every
 * global assignment, including one to a constant. */
static int env_newindex(lua_State *L) {
  return luaL_error(L,
                    "cannot assign global '%s' (the constants are read-only; "
                    "use local)",
                    global_name(L));
}

static void push_env(lua_State *L) {
  lua_newtable(L);
  lua_createtable(L, 0, 2);
  lua_createtable(L, 0, (int)(sizeof constants / sizeof constants[0]));
  for (size_t i = 0; i < sizeof constants / sizeof constants[0]; i++) {
    if (constants[i].i)
      lua_pushinteger(L, constants[i].i);
    else
      lua_pushnumber(L, constants[i].d);
    lua_setfield(L, -2, constants[i].name);
  }
  lua_pushcclosure(L, env_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, env_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_setmetatable(L, -2);
}

/* {=== Field access (sandbox/schema.h) ===}
 * Absent optional fields leave the output untouched: the caller set the
 * default beforehand. */

#define REQ STRATA__SCHEMA_REQUIRED
#define OPT STRATA__SCHEMA_OPTIONAL

/* A whole figure (workers, a count) within its range; the ranges are all
 * non-negative. */
static int get_int(load_t *ld, int t, const char *obj, const char *key,
                   const figure_t *f, bool *present, uint64_t *out) {
  int64_t v = 0;
  bool here;
  TRY(strata__schema_integer(&ld->sc, t, obj, key, OPT, f, &v, &here));
  if (present)
    *present = here;
  if (here)
    *out = (uint64_t)v;
  return 0;
}

/* Names are copied into 64-byte fields and shown in logs. */
static int get_name(load_t *ld, int t, const char *obj, const char *key,
                    int flags, char out[64]) {
  return strata__schema_string(&ld->sc, t, obj, key, flags, 63, out);
}

/* {=== Devices ===} */

static const char *const device_keys[] = {"class",
                                          "name",
                                          "model",
                                          "memory",
                                          "mem_bandwidth",
                                          "link_bandwidth",
                                          "link_latency",
                                          "fp64",
                                          "fp32",
                                          "ecc",
                                          "numa",
                                          "workers",
                                          "peers",
                                          "peer_bandwidth",
                                          "health",
                                          "faults",
                                          "uuid",
                                          "compute_capability",
                                          "memory_bus_width",
                                          "pcie",
                                          NULL};
static const char *const health_keys[] = {"temperature", "power", NULL};
static const char *const pcie_keys[] = {"gen", "width", NULL};
static const char *const fault_keys[] = {"copy_fail_at",    "copy_fail_count",
                                         "die_after",       "hot_after",
                                         "hot_temperature", NULL};

static int get_class(load_t *ld, int t, const char *obj,
                     strata_device_class_t *out) {
  static const char *const names[] = {"cpu", "hbm", "gddr", NULL};
  int c = 0;
  TRY(strata__schema_enum(&ld->sc, t, obj, "class", REQ, names, &c));
  *out = (strata_device_class_t)c;
  return 0;
}

/* Device memory: a whole, positive byte count on a card; absent (or 0) on
 * a cpu device, which works on host memory. */
static int get_memory(load_t *ld, int t, const char *obj,
                      sim_device_spec_t *d) {
  bool cpu = d->device_class == STRATA_CLASS_CPU;
  strata__schema_num_t v;
  TRY(strata__schema_get_number(&ld->sc, t, obj, "memory", cpu ? OPT : REQ,
                                &v));
  if (!v.present)
    return 0;
  if (cpu) {
    if (v.d != 0)
      return strata__schema_fail(
          &ld->sc, obj, "memory",
          "a cpu device works on host memory: leave memory out "
          "(got %s)",
          v.got);
    return 0;
  }
  /* 2^50 is exact as a double, so comparing v.d is exact for integers
   * too, and the conversions below cannot overflow. */
  if (!strata__schema_in_range(&v, &MEMORY))
    return strata__schema_out_of_range(&ld->sc, obj, "memory", &v, &MEMORY);
  if (!strata__schema_whole(&v))
    return strata__schema_fail(&ld->sc, obj, "memory",
                               "must be a whole number of bytes (got %s)",
                               v.got);
  d->memory = v.isint ? (uint64_t)v.i : (uint64_t)v.d;
  return 0;
}

static int get_link(load_t *ld, int t, const char *obj, sim_device_spec_t *d) {
  if (d->device_class != STRATA_CLASS_CPU)
    return strata__schema_number(&ld->sc, t, obj, "link_bandwidth", REQ,
                                 &BANDWIDTH, &d->link_bandwidth);
  strata__schema_num_t v;
  TRY(strata__schema_get_number(&ld->sc, t, obj, "link_bandwidth", OPT, &v));
  if (v.present && v.d != 0)
    return strata__schema_fail(
        &ld->sc, obj, "link_bandwidth",
        "a cpu device has no host link: leave link_bandwidth out "
        "(got %s)",
        v.got);
  return 0;
}

static int check_health(load_t *ld, int t, const char *obj,
                        sim_device_spec_t *d) {
  TRY(strata__schema_keys(&ld->sc, t, obj, health_keys, STRATA__SCHEMA_REFUSE));
  TRY(strata__schema_number(&ld->sc, t, obj, "temperature", OPT, &TEMPERATURE,
                            &d->temperature));
  return strata__schema_number(&ld->sc, t, obj, "power", OPT, &POWER,
                               &d->power);
}

static int check_faults(load_t *ld, int t, const char *obj,
                        sim_device_spec_t *d) {
  sim_faults_t *f = &d->faults;
  bool copy_at, count, hot, hot_temp;
  uint64_t n = f->copy_fail_count;
  TRY(strata__schema_keys(&ld->sc, t, obj, fault_keys, STRATA__SCHEMA_REFUSE));
  TRY(get_int(ld, t, obj, "copy_fail_at", &COPIES, &copy_at, &f->copy_fail_at));
  TRY(get_int(ld, t, obj, "copy_fail_count", &FAIL_COUNT, &count, &n));
  if (count && !copy_at)
    return strata__schema_fail(&ld->sc, obj, "copy_fail_count",
                               "needs copy_fail_at");
  f->copy_fail_count = (uint32_t)n; /* at most 1e9 */
  TRY(get_int(ld, t, obj, "die_after", &TASKS, NULL, &f->die_after));
  TRY(get_int(ld, t, obj, "hot_after", &TASKS, &hot, &f->hot_after));
  strata__schema_num_t v;
  TRY(strata__schema_get_number(&ld->sc, t, obj, "hot_temperature", OPT, &v));
  hot_temp = v.present;
  if (hot_temp && !hot)
    return strata__schema_fail(&ld->sc, obj, "hot_temperature",
                               "needs hot_after");
  if (hot && !hot_temp)
    return strata__schema_fail(&ld->sc, obj, "hot_temperature",
                               "missing (needed by hot_after)");
  return strata__schema_number(&ld->sc, t, obj, "hot_temperature", OPT,
                               &TEMPERATURE, &f->hot_temperature);
}

/* {=== Device facts ===} */

/* Compute capability as CUDA writes it: "9.0" (a string, so that 8.9 and
 * 8.90 cannot be confused): major 1 to 99, minor one digit. */
static int get_cc(load_t *ld, int t, const char *obj, sim_device_spec_t *d) {
  static const char *const key = "compute_capability";
  lua_State *L = ld->L;
  lua_pushstring(L, key);
  int ty = lua_rawget(L, t);
  if (ty == LUA_TNUMBER) { /* 9.0 written as a number */
    int rc =
        strata__schema_wrong_type(&ld->sc, obj, key, "a string such as '9.0'");
    lua_pop(L, 1);
    return rc;
  }
  lua_pop(L, 1);
  char cc[16] = "";
  TRY(strata__schema_string(&ld->sc, t, obj, key, OPT, sizeof cc - 1, cc));
  if (!cc[0])
    return 0;
  const char *p = cc;
  int major = 0;
  for (int n = 0; n < 2 && *p >= '0' && *p <= '9'; n++)
    major = major * 10 + (*p++ - '0');
  bool ok = p != cc && major >= 1 && p[0] == '.' && p[1] >= '0' &&
            p[1] <= '9' && p[2] == '\0';
  if (!ok)
    return strata__schema_fail(&ld->sc, obj, key,
                               "must be 'MAJOR.MINOR' with major 1 to 99 and "
                               "minor 0 to 9, such as '9.0' (got '%s')",
                               cc);
  d->cc_major = major;
  d->cc_minor = p[1] - '0';
  return 0;
}

/* pcie = { gen = 5, width = 16 }: both, with the lane counts the core
 * accepts. */
static int check_pcie(load_t *ld, int t, const char *obj,
                      sim_device_spec_t *d) {
  int64_t gen = 0, width = 0;
  TRY(strata__schema_keys(&ld->sc, t, obj, pcie_keys, STRATA__SCHEMA_REFUSE));
  TRY(strata__schema_integer(&ld->sc, t, obj, "gen", REQ, &PCIE_GEN, &gen,
                             NULL));
  TRY(strata__schema_integer(&ld->sc, t, obj, "width", REQ, &PCIE_WIDTH, &width,
                             NULL));
  if (width != 1 && width != 2 && width != 4 && width != 8 && width != 12 &&
      width != 16 && width != 32)
    return strata__schema_fail(&ld->sc, obj, "width",
                               "must be 1, 2, 4, 8, 12, 16 or 32 lanes (got "
                               "%" PRId64 ")",
                               width);
  d->pcie_gen = (uint32_t)gen;
  d->pcie_width = (uint32_t)width;
  return 0;
}

/* A cpu device works on host memory over no host link: the card facts
 * do not apply to it. */
static int card_facts_only(load_t *ld, int t, const char *obj,
                           const sim_device_spec_t *d) {
  static const char *const keys[] = {"compute_capability", "memory_bus_width",
                                     "pcie"};
  if (d->device_class != STRATA_CLASS_CPU)
    return 0;
  for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
    lua_pushstring(ld->L, keys[k]);
    int ty = lua_rawget(ld->L, t);
    lua_pop(ld->L, 1);
    if (ty != LUA_TNIL)
      return strata__schema_fail(&ld->sc, obj, keys[k],
                                 "a cpu device has none (only hbm and gddr "
                                 "devices do): leave it out");
  }
  return 0;
}

/* The made-up identity of a card without a uuid: stable for the file,
 * and plainly not a real card's ("GPU-..."). */
static void default_uuid(const sim_machine_t *m, size_t i,
                         sim_device_spec_t *d) {
  if (!d->uuid[0] && d->device_class != STRATA_CLASS_CPU)
    snprintf(d->uuid, sizeof d->uuid, "SIM-%.48s-%u", m->name,
             (unsigned)(i + 1) % 100u);
}

static int check_uuids(load_t *ld) {
  for (size_t i = 0; i < ld->m.ndevices; i++)
    for (size_t j = 0; j < i && ld->m.devices[i].uuid[0]; j++)
      if (strcmp(ld->m.devices[i].uuid, ld->m.devices[j].uuid) == 0) {
        char obj[32];
        snprintf(obj, sizeof obj, "devices[%zu]", i + 1);
        return strata__schema_fail(&ld->sc, obj, "uuid",
                                   "duplicate uuid '%s' (also devices[%zu])",
                                   ld->m.devices[i].uuid, j + 1);
      }
  return 0;
}

static int check_facts(load_t *ld, int t, const char *obj,
                       sim_device_spec_t *d) {
  uint64_t bus = 0;
  TRY(card_facts_only(ld, t, obj, d));
  TRY(strata__schema_string(&ld->sc, t, obj, "uuid", OPT, sizeof d->uuid - 1,
                            d->uuid));
  TRY(get_cc(ld, t, obj, d));
  TRY(get_int(ld, t, obj, "memory_bus_width", &BUS_WIDTH, NULL, &bus));
  d->memory_bus_width = (uint32_t)bus;
  return 0;
}

/* Runs `check` on the table t[key] when present, as FIELD obj.key. */
static int check_sub(load_t *ld, int t, const char *obj, const char *key,
                     sim_device_spec_t *d,
                     int (*check)(load_t *, int, const char *,
                                  sim_device_spec_t *)) {
  bool present;
  char sub[64];
  TRY(strata__schema_table(&ld->sc, t, obj, key, OPT, &present));
  if (!present)
    return 0;
  snprintf(sub, sizeof sub, "%s.%s", obj, key);
  TRY(check(ld, lua_gettop(ld->L), sub, d));
  lua_pop(ld->L, 1);
  return 0;
}

static int check_unique(load_t *ld, const char *obj, size_t i) {
  for (size_t j = 0; j < i; j++)
    if (strcmp(ld->m.devices[j].name, ld->m.devices[i].name) == 0)
      return strata__schema_fail(&ld->sc, obj, "name",
                                 "duplicate name '%s' (also devices[%zu])",
                                 ld->m.devices[i].name, j + 1);
  return 0;
}

/* Everything about devices[i] but its peers, which need all the names. */
static int check_device(load_t *ld, int t, size_t i) {
  sim_device_spec_t *d = &ld->m.devices[i];
  char obj[32];
  uint64_t numa = 0, workers = 1;
  snprintf(obj, sizeof obj, "devices[%zu]", i + 1);
  d->link_latency = DEFAULT_LINK_LATENCY;
  d->temperature = DEFAULT_TEMPERATURE;
  d->faults.copy_fail_count = 1;
  TRY(strata__schema_keys(&ld->sc, t, obj, device_keys, STRATA__SCHEMA_REFUSE));
  TRY(get_class(ld, t, obj, &d->device_class));
  TRY(get_name(ld, t, obj, "name", REQ, d->name));
  TRY(check_unique(ld, obj, i));
  memcpy(d->model, d->name, sizeof d->model);
  TRY(get_name(ld, t, obj, "model", OPT, d->model));
  TRY(get_memory(ld, t, obj, d));
  TRY(strata__schema_number(&ld->sc, t, obj, "mem_bandwidth", REQ, &BANDWIDTH,
                            &d->mem_bandwidth));
  TRY(get_link(ld, t, obj, d));
  TRY(strata__schema_number(&ld->sc, t, obj, "link_latency", OPT, &LATENCY,
                            &d->link_latency));
  TRY(strata__schema_number(&ld->sc, t, obj, "fp64", REQ, &RATE, &d->fp64));
  TRY(strata__schema_number(&ld->sc, t, obj, "fp32", REQ, &RATE, &d->fp32));
  TRY(strata__schema_bool(&ld->sc, t, obj, "ecc", OPT, &d->ecc));
  TRY(get_int(ld, t, obj, "numa", &NUMA, NULL, &numa));
  TRY(get_int(ld, t, obj, "workers", &WORKERS, NULL, &workers));
  d->numa = (int)numa;
  d->workers = (unsigned)workers;
  TRY(strata__schema_number(&ld->sc, t, obj, "peer_bandwidth", OPT, &BANDWIDTH,
                            &d->peer_bandwidth));
  TRY(check_facts(ld, t, obj, d));
  TRY(check_sub(ld, t, obj, "pcie", d, check_pcie));
  TRY(check_sub(ld, t, obj, "health", d, check_health));
  return check_sub(ld, t, obj, "faults", d, check_faults);
}

static size_t find_device(const sim_machine_t *m, const char *name) {
  for (size_t j = 0; j < m->ndevices; j++)
    if (strcmp(m->devices[j].name, name) == 0)
      return j;
  return SIZE_MAX;
}

/* One entry of devices[i].peers, the string on top of the stack. */
static int add_peer(load_t *ld, const char *obj, size_t i, size_t k) {
  lua_State *L = ld->L;
  sim_device_spec_t *dev = ld->m.devices;
  char key[32];
  snprintf(key, sizeof key, "peers[%zu]", k);
  if (lua_type(L, -1) != LUA_TSTRING)
    return strata__schema_wrong_type(&ld->sc, obj, key, "a device name");
  const char *name = lua_tostring(L, -1);
  size_t j = find_device(&ld->m, name);
  if (j == SIZE_MAX)
    return strata__schema_fail(&ld->sc, obj, key, "no device named '%.63s'",
                               name);
  if (j == i)
    return strata__schema_fail(&ld->sc, obj, key,
                               "a device cannot be its own peer");
  if (dev[j].device_class == STRATA_CLASS_CPU)
    return strata__schema_fail(
        &ld->sc, obj, key,
        "'%s' is a cpu device (only hbm and gddr devices have peers)",
        dev[j].name);
  /* Direct copies work both ways: one mention is enough. */
  dev[i].peers |= UINT64_C(1) << j;
  dev[j].peers |= UINT64_C(1) << i;
  lua_pop(L, 1);
  return 0;
}

static int check_peers(load_t *ld, int t, size_t i) {
  lua_State *L = ld->L;
  char obj[32];
  bool present;
  size_t n;
  snprintf(obj, sizeof obj, "devices[%zu]", i + 1);
  TRY(strata__schema_table(&ld->sc, t, obj, "peers", OPT, &present));
  if (!present)
    return 0;
  int p = lua_gettop(L);
  TRY(strata__schema_array(&ld->sc, p, obj, "peers", &n));
  if (n && ld->m.devices[i].device_class == STRATA_CLASS_CPU)
    return strata__schema_fail(
        &ld->sc, obj, "peers",
        "a cpu device has no peers (only hbm and gddr devices do)");
  for (size_t k = 1; k <= n; k++) {
    lua_rawgeti(L, p, (lua_Integer)k);
    TRY(add_peer(ld, obj, i, k));
  }
  lua_pop(L, 1);
  return 0;
}

/* A device that did not set peer_bandwidth copies to its peers no faster
 * than the slowest host link among them. */
static void default_peer_bandwidth(sim_machine_t *m) {
  for (size_t i = 0; i < m->ndevices; i++) {
    sim_device_spec_t *d = &m->devices[i];
    if (d->peer_bandwidth > 0 || !d->peers)
      continue;
    double bw = d->link_bandwidth;
    for (size_t j = 0; j < m->ndevices; j++)
      if ((d->peers >> j & 1) && m->devices[j].link_bandwidth < bw)
        bw = m->devices[j].link_bandwidth;
    d->peer_bandwidth = bw;
  }
}

static int check_devices(load_t *ld, int t) {
  lua_State *L = ld->L;
  size_t n;
  bool present;
  TRY(strata__schema_table(&ld->sc, t, "", "devices", OPT, &present));
  if (!present)
    return strata__schema_fail(&ld->sc, "", "devices", "missing");
  int devs = lua_gettop(L);
  TRY(strata__schema_array(&ld->sc, devs, "", "devices", &n));
  if (n == 0)
    return strata__schema_fail(&ld->sc, "", "devices", "must not be empty");
  if (n > SIM_MAX_DEVICES)
    return strata__schema_fail(&ld->sc, "", "devices",
                               "too many devices (%zu; at most %d)", n,
                               SIM_MAX_DEVICES);
  /* Owned by ld, not by this frame: a Lua error unwinding through here
   * leaves it to sim_machine_load to free. */
  ld->m.devices = ld->alloc(ld->ud, NULL, 0, n * sizeof *ld->m.devices);
  if (!ld->m.devices)
    return out_of_memory(ld);
  memset(ld->m.devices, 0, n * sizeof *ld->m.devices);
  ld->m.ndevices = n;
  for (size_t i = 0; i < n; i++) {
    char obj[32];
    snprintf(obj, sizeof obj, "devices[%zu]", i + 1);
    if (lua_rawgeti(L, devs, (lua_Integer)i + 1) != LUA_TTABLE)
      return strata__schema_wrong_type(&ld->sc, obj, NULL, "a table");
    TRY(check_device(ld, lua_gettop(L), i));
    lua_pop(L, 1);
  }
  for (size_t i = 0; i < n; i++)
    default_uuid(&ld->m, i, &ld->m.devices[i]);
  TRY(check_uuids(ld));
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, devs, (lua_Integer)i + 1);
    TRY(check_peers(ld, lua_gettop(L), i));
    lua_pop(L, 1);
  }
  default_peer_bandwidth(&ld->m);
  lua_pop(L, 1);
  return 0;
}

/* {=== The machine ===} */

static const char *const machine_keys[] = {"name", "time", "skip_kernels",
                                           "devices", NULL};

/* The file name without directory and ".lua", cut to fit. */
static void default_name(const char *path, char out[64]) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  size_t len = strlen(base);
  if (len > 4 && strcmp(base + len - 4, ".lua") == 0)
    len -= 4;
  if (len > 63)
    len = 63;
  memcpy(out, base, len);
  out[len] = '\0';
}

static int get_time(load_t *ld, int t) {
  static const char *const names[] = {"real", "modelled", NULL};
  int i = 0;
  TRY(strata__schema_enum(&ld->sc, t, "", "time", OPT, names, &i));
  ld->m.modelled = i == 1;
  return 0;
}

static int check_machine(load_t *ld, int t) {
  if (!lua_istable(ld->L, t)) {
    say(ld, "%s: the file must return a table (got %s)", ld->path,
        luaL_typename(ld->L, t));
    return STRATA_EINVAL;
  }
  TRY(strata__schema_keys(&ld->sc, t, "", machine_keys, STRATA__SCHEMA_REFUSE));
  default_name(ld->path, ld->m.name);
  TRY(get_name(ld, t, "", "name", OPT, ld->m.name));
  TRY(get_time(ld, t));
  TRY(strata__schema_bool(&ld->sc, t, "", "skip_kernels", OPT,
                          &ld->m.skip_kernels));
  if (ld->m.skip_kernels && !ld->m.modelled)
    return strata__schema_fail(&ld->sc, "", "skip_kernels",
                               "needs time = 'modelled'");
  return check_devices(ld, t);
}

/* {=== Nesting ===} */

/* The height of the table at index t (1: it holds no table), or -1 once
 * a table lies deeper than NEST_MAX from the returned one (t itself is at
 * `depth`). Keys and values both count. Each table is measured once and
 * its height kept in the table at index memo, so a table shared by many
 * others (a common `health`) costs one walk, not one per path; a table
 * still being measured is marked false there: meeting it again is a cycle,
 * which is nested without end. The recursion stops at NEST_MAX + 1 levels,
 * so the C stack it takes is bounded whatever the file builds. */
static int height(lua_State *L, int memo, int t, int depth) {
  if (depth > NEST_MAX)
    return -1;
  luaL_checkstack(L, 4, "nesting check");
  lua_pushvalue(L, t);
  if (lua_rawget(L, memo) != LUA_TNIL) {
    int h = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : NEST_MAX + 1;
    lua_pop(L, 1);
    return depth - 1 + h > NEST_MAX ? -1 : h;
  }
  lua_pop(L, 1);
  lua_pushvalue(L, t);
  lua_pushboolean(L, 0);
  lua_rawset(L, memo);
  int h = 1;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    for (int i = -2; i <= -1; i++) { /* the key, then the value */
      if (lua_type(L, i) != LUA_TTABLE)
        continue;
      int c = height(L, memo, lua_absindex(L, i), depth + 1);
      if (c < 0) {
        lua_pop(L, 2);
        return -1;
      }
      if (c + 1 > h)
        h = c + 1;
    }
    lua_pop(L, 1);
  }
  lua_pushvalue(L, t);
  lua_pushinteger(L, h);
  lua_rawset(L, memo);
  return h;
}

/* A description is a few levels deep (machine, devices, a device, its
 * health): refuse far deeper ones before anything walks them. */
static int check_nesting(load_t *ld, int t) {
  lua_State *L = ld->L;
  if (!lua_istable(L, t))
    return 0; /* check_machine says what is wrong */
  lua_newtable(L);
  int h = height(L, lua_gettop(L), t, 1);
  lua_pop(L, 1);
  if (h >= 0)
    return 0;
  say(ld, "%s: tables nested deeper than %d levels", ld->path, NEST_MAX);
  return STRATA_EINVAL;
}

/* {=== Running the chunk ===} */

/* (chunk): give the chunk the constants as its only globals. */
static int with_env(lua_State *L) {
  push_env(L);
  lua_setupvalue(L, 1, 1); /* a main chunk's only upvalue is _ENV */
  return 1;
}

/* (load_t *, the result): check it; reading can raise memory errors. */
static int check_protected(lua_State *L) {
  load_t *ld = lua_touserdata(L, 1);
  ld->status = check_nesting(ld, 2);
  if (ld->status == 0)
    ld->status = check_machine(ld, 2);
  return 0;
}

/* Whether Lua's message msg begins with the chunk's name, as Lua writes
 * it: the path, or "..." and its end when the path is too long. Errors Lua
 * raises outside any Lua function (the parser's "C stack overflow") carry
 * no position, and so no name. */
static bool names_chunk(const char *msg, const char *path) {
  size_t n = strlen(path);
  if (strncmp(msg, path, n) == 0 && msg[n] == ':')
    return true;
  if (strncmp(msg, "...", 3) != 0)
    return false;
  const char *tail = msg + 3, *colon = strchr(tail, ':');
  size_t k = colon ? (size_t)(colon - tail) : 0;
  return k > 0 && k <= n && strncmp(path + n - k, tail, k) == 0;
}

static int lua_failure(load_t *ld, int status) {
  lua_State *L = ld->L;
  if (strata__sandbox_tripped(ld->sb) == STRATA__SANDBOX_MEMORY_HIT) {
    say(ld,
        "%s: memory limit exceeded (a description may use at most %zu "
        "MiB)",
        ld->path, STATE_MAX >> 20);
    return STRATA_EINVAL;
  }
  if (status == LUA_ERRMEM)
    return out_of_memory(ld);
  if (lua_type(L, -1) == LUA_TSTRING &&
      names_chunk(lua_tostring(L, -1), ld->path))
    say(ld, "%s", lua_tostring(L, -1));
  else if (lua_type(L, -1) == LUA_TSTRING) /* "C stack overflow" */
    say(ld, "%s: %s", ld->path, lua_tostring(L, -1));
  else
    say(ld, "%s: error (a %s value)", ld->path, luaL_typename(L, -1));
  return STRATA_EINVAL;
}

/* Load the chunk, run it with the constants as its globals, check what
 * it returned: each step a protected call within the sandbox's limits. */
static int run_chunk(load_t *ld, const char *chunkname) {
  lua_State *L = ld->L;
  int st = strata__sandbox_load(ld->sb, ld->text, ld->len, chunkname);
  if (st != LUA_OK)
    return st;
  lua_pushcfunction(L, with_env);
  lua_insert(L, -2);
  if ((st = strata__sandbox_call(ld->sb, 1, 1)) != LUA_OK ||
      (st = strata__sandbox_call(ld->sb, 0, 1)) != LUA_OK)
    return st;
  lua_pushcfunction(L, check_protected);
  lua_pushlightuserdata(L, ld);
  lua_pushvalue(L, -3);
  return strata__sandbox_call(ld->sb, 2, 0);
}

static int evaluate(load_t *ld) {
  /* Bytecode can crash the VM; the sandbox refuses it too, but this
   * message says what the file is. */
  if (ld->len > 0 && ld->text[0] == LUA_SIGNATURE[0]) {
    say(ld, "%s: precompiled (binary) chunks are not accepted", ld->path);
    return STRATA_EINVAL;
  }
  strata__sandbox_limits_t limits = {.instructions = STEPS_MAX,
                                     .memory = STATE_MAX,
                                     .deadline_ns = TIME_MAX_NS};
  if (strata__sandbox_new(ld->alloc, ld->ud, &limits, STRATA__SANDBOX_EMPTY,
                          ld->path, NULL, NULL, &ld->sb))
    return out_of_memory(ld);
  ld->L = strata__sandbox_state(ld->sb);
  ld->sc = (strata__schema_t){
      .L = ld->L, .file = ld->path, .err = ld->err, .errlen = ld->errlen};
  char chunkname[1024];
  snprintf(chunkname, sizeof chunkname, "@%s", ld->path);
  int status = run_chunk(ld, chunkname);
  int rc = status == LUA_OK ? ld->status : lua_failure(ld, status);
  strata__sandbox_free(ld->sb);
  ld->sb = NULL;
  ld->L = NULL;
  return rc;
}

int sim_machine_load(const char *path, strata_alloc_fn alloc, void *ud,
                     sim_machine_t *out, char *err, size_t errlen) {
  if (err && errlen)
    err[0] = '\0';
  if (!path || !alloc || !out)
    return STRATA_EINVAL;
  memset(out, 0, sizeof *out);
  load_t ld = {
      .path = path, .alloc = alloc, .ud = ud, .err = err, .errlen = errlen};
  int rc = read_file(&ld);
  if (rc == 0)
    rc = evaluate(&ld);
  strata__free_text_file(alloc, ud, ld.text, ld.len);
  if (rc == 0)
    *out = ld.m;
  else
    sim_machine_free(&ld.m, alloc, ud);
  return rc;
}

void sim_machine_free(sim_machine_t *m, strata_alloc_fn alloc, void *ud) {
  if (!m)
    return;
  if (m->devices)
    alloc(ud, m->devices, m->ndevices * sizeof *m->devices, 0);
  memset(m, 0, sizeof *m);
}
