/* SPDX-License-Identifier: MIT */
/* sandbox/sandbox.c: the Lua sandbox (see sandbox.h): a capped allocator
 * that also watches the clock, a count hook whose budget cannot be
 * caught, protected calls, and the standard libraries with every function
 * that works in C bounded. */
#include "config.h"

#include "sandbox.h"

#include "pattern.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Instructions between two runs of the count hook. */
#define HOOK_STEP 1000
/* Allocations of at least this many bytes charge their size and check the
 * clock; smaller ones do so every CLOCK_EVERY allocations. */
#define BIG_ALLOC 4096
#define CLOCK_EVERY 64
/* Bytes the owner may allocate past the cap between calls. */
#define OWNER_SLACK ((size_t)64 << 10)
/* Bytes copied or scanned per work unit. */
#define BYTES_PER_UNIT 64

struct strata__sandbox {
  lua_State *L;
  strata_alloc_fn alloc;
  void *alloc_ud;
  size_t used, memory;
  uint64_t budget, steps; /* steps: instructions and work this call */
  uint64_t deadline_ns, ends_at;
  size_t string_max;
  int depth; /* calls in progress (nesting) */
  unsigned allocs;
  strata__sandbox_trip_t trip; /* the limit hit by the running call */
  bool cap_refused;            /* the cap refused a request this call */
  strata__sandbox_report_fn report;
  void *report_ud;
  char name[64];
};

/* The clock of the deadlines: a coarse one where there is one (a few ms
 * of resolution against limits of tens of ms, at a fraction of the cost:
 * every call reads it once). */
#ifdef CLOCK_MONOTONIC_COARSE
#define DEADLINE_CLOCK CLOCK_MONOTONIC_COARSE
#else
#define DEADLINE_CLOCK CLOCK_MONOTONIC
#endif

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(DEADLINE_CLOCK, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void *strata__sandbox_libc_alloc(void *ud, void *ptr, size_t osize,
                                 size_t nsize) {
  (void)ud;
  (void)osize;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  return realloc(ptr, nsize);
}

/* {=== Limits ===} */

static void on_hook(lua_State *L, lua_Debug *ar);

/* Note that a limit was hit: from now on every instruction raises, until
 * the call is back in C. Safe from the allocator (lua_sethook only sets
 * fields). */
static void trip(strata__sandbox_t *sb, strata__sandbox_trip_t why) {
  if (sb->trip)
    return;
  sb->trip = why;
  lua_sethook(sb->L, on_hook, LUA_MASKCOUNT, 1);
}

/* Check the budget and the clock after `units` more work. The clock
 * starts at the first check, not at the call: most hook calls end before
 * any check (under HOOK_STEP instructions, no big allocation), and so
 * never read the clock; a call's time is counted from its first thousand
 * instructions or its first costly library call, whichever comes first. */
static bool over(strata__sandbox_t *sb, uint64_t units) {
  sb->steps = units > UINT64_MAX - sb->steps ? UINT64_MAX : sb->steps + units;
  if (sb->steps > sb->budget) {
    trip(sb, STRATA__SANDBOX_INSTRUCTIONS_HIT);
  } else {
    uint64_t now = now_ns();
    if (!sb->ends_at)
      sb->ends_at = now + sb->deadline_ns;
    else if (now > sb->ends_at)
      trip(sb, STRATA__SANDBOX_DEADLINE_HIT);
  }
  return sb->trip != STRATA__SANDBOX_RAN;
}

/* Raise the error of the limit hit, naming the line of the function at
 * `level` (0 from the hook: the function running; 1 from a C function:
 * the Lua function that called it). */
/* Push the words of the limit hit. */
static void push_trip(lua_State *L, const strata__sandbox_t *sb) {
  if (sb->trip == STRATA__SANDBOX_DEADLINE_HIT)
    lua_pushfstring(L, "time limit (%d ms) exceeded",
                    (int)(sb->deadline_ns / 1000000u));
  else
    lua_pushfstring(L, "instruction budget (%I) exceeded",
                    (lua_Integer)sb->budget);
}

static int raise_trip(lua_State *L, strata__sandbox_t *sb, int level) {
  luaL_where(L, level);
  push_trip(L, sb);
  lua_concat(L, 2);
  return lua_error(L);
}

static strata__sandbox_t *of(lua_State *L);

static void on_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  strata__sandbox_t *sb = of(L);
  if (!sb || !sb->depth)
    return;
  if (sb->trip || over(sb, HOOK_STEP))
    raise_trip(L, sb, 0);
}

/* The state's allocator: the owner's, under the cap; big requests count
 * as work, and the clock is read now and then, so that a script building
 * strings with `..` (one instruction, any length) still meets its limits.
 * Once a limit is hit, later big requests are refused: the C function
 * making them ends with a memory error instead of finishing its work. */
static void *sandbox_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  strata__sandbox_t *sb = ud;
  if (!ptr)
    osize = 0; /* Lua passes the type of a new object there */
  if (nsize == 0) {
    if (ptr)
      sb->alloc(sb->alloc_ud, ptr, osize, 0);
    sb->used -= osize;
    return NULL;
  }
  if (nsize > osize) {
    size_t more = nsize - osize;
    /* Between calls the owner pushes arguments and messages, which must
     * not raise outside a protected call: it may go a little past the
     * cap the script filled. */
    size_t limit = sb->depth ? sb->memory : sb->memory + OWNER_SLACK;
    if (sb->used > limit || more > limit - sb->used) {
      sb->cap_refused = true;
      return NULL;
    }
    /* The request that hits a limit is served (the next instruction
     * raises, naming its line); big ones after it are refused. */
    if (sb->depth && (more >= BIG_ALLOC || ++sb->allocs % CLOCK_EVERY == 0)) {
      if (sb->trip && more >= BIG_ALLOC)
        return NULL;
      over(sb, more / BYTES_PER_UNIT);
    }
  }
  void *p = sb->alloc(sb->alloc_ud, ptr, osize, nsize);
  if (p)
    sb->used = sb->used - osize + nsize;
  return p;
}

static strata__sandbox_t *of(lua_State *L) {
  void *ud;
  if (lua_getallocf(L, &ud) != sandbox_alloc)
    return NULL;
  return ud;
}

void strata__sandbox_charge(lua_State *L, uint64_t units) {
  strata__sandbox_t *sb = of(L);
  if (!sb || !sb->depth)
    return;
  if (sb->trip || over(sb, units))
    raise_trip(L, sb, 1);
}

size_t strata__sandbox_string_max(lua_State *L) {
  strata__sandbox_t *sb = of(L);
  return sb ? sb->string_max : STRATA__SANDBOX_STRING_MAX;
}

/* Arm the limits for an outermost call. */
static void arm(strata__sandbox_t *sb) {
  sb->steps = 0;
  sb->allocs = 0;
  sb->trip = STRATA__SANDBOX_RAN;
  sb->cap_refused = false;
  sb->ends_at = 0; /* set at the first check */
  lua_sethook(sb->L, on_hook, LUA_MASKCOUNT,
              sb->budget < HOOK_STEP ? (int)sb->budget + 1 : HOOK_STEP);
}

/* {=== Protected calls ===} */

/* The message handler: a traceback, never calling the error object's
 * metamethods (a __tostring that loops would run here). */
static int traceback(lua_State *L) {
  const char *msg = lua_type(L, 1) == LUA_TSTRING ? lua_tostring(L, 1) : NULL;
  if (!msg)
    msg =
        lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* The message handler of outermost calls lives at the bottom of the
 * stack (index 1), pushed at creation: a call from the owner then costs
 * no stack rotation. Nested calls (from a C function, whose frame has its
 * own index 1) put a handler below their function. */
#define HANDLER 1

int strata__sandbox_call(strata__sandbox_t *sb, int nargs, int nresults) {
  lua_State *L = sb->L;
  bool outer = sb->depth == 0;
  int base = lua_gettop(L) - nargs; /* the function */
  if (!outer) {
    if (!lua_checkstack(L, 1)) {
      lua_pop(L, nargs + 1);
      lua_pushliteral(L, "stack overflow");
      return LUA_ERRMEM;
    }
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    base++;
  }
  sb->depth++;
  if (outer)
    arm(sb);
  int st = lua_pcall(L, nargs, nresults, outer ? HANDLER : base - 1);
  if (outer) {
    /* The hook stays set: between calls no script code runs, and on_hook
     * returns at once outside a call; the next call arms it afresh. */
    if (sb->trip && (st == LUA_OK || st == LUA_ERRMEM)) {
      /* The script caught the error and returned straight to C (a tail
       * call of pcall), or the call ended on a request refused because
       * of the limit: the limit ends the call, and says so. */
      lua_settop(L, base - 1);
      push_trip(L, sb);
      st = LUA_ERRRUN;
    }
    if (st == LUA_ERRMEM && !sb->trip && sb->cap_refused)
      sb->trip = STRATA__SANDBOX_MEMORY_HIT;
  }
  sb->depth--;
  if (!outer)
    lua_remove(L, base - 1);
  return st;
}

int strata__sandbox_cpcall(strata__sandbox_t *sb, lua_CFunction fn, void *ud,
                           int nresults) {
  lua_State *L = sb->L;
  if (!lua_checkstack(L, 3)) {
    lua_pushliteral(L, "stack overflow");
    return LUA_ERRMEM;
  }
  lua_pushcfunction(L, fn);
  lua_pushlightuserdata(L, ud);
  return strata__sandbox_call(sb, 1, nresults);
}

void strata__sandbox_set_deadline(strata__sandbox_t *sb, uint64_t ns) {
  sb->deadline_ns = ns ? ns : STRATA__SANDBOX_DEADLINE_NS;
}

strata__sandbox_trip_t strata__sandbox_tripped(const strata__sandbox_t *sb) {
  return sb->trip;
}

size_t strata__sandbox_memory_used(const strata__sandbox_t *sb) {
  return sb->used;
}

lua_State *strata__sandbox_state(strata__sandbox_t *sb) { return sb->L; }

/* {=== Loading text ===} */

typedef struct chunk {
  const char *text;
  size_t len;
  const char *name;
} chunk_t;

/* The name a chunk's messages start with: "@file" -> "file". */
static const char *shown_name(const char *chunkname) {
  return chunkname[0] == '@' || chunkname[0] == '=' ? chunkname + 1 : chunkname;
}

/* Compile the chunk; its status and the function or the message are the
 * results (lua_load catches its own errors). Parser messages name the
 * chunk ("file:3: ..."); the few that do not (a C stack overflow of deep
 * nesting, out of memory) get the name in front. */
static int load_chunk(lua_State *L) {
  const chunk_t *c = lua_touserdata(L, 1);
  int st = luaL_loadbufferx(L, c->text, c->len, c->name, "t");
  if (st != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    const char *name = shown_name(c->name);
    if (!msg || strncmp(msg, name, strlen(name))) {
      lua_pushfstring(L, "%s: %s", name, msg ? msg : "error");
      lua_remove(L, -2);
    }
  }
  lua_pushinteger(L, st);
  lua_insert(L, -2);
  return 2;
}

int strata__sandbox_load(strata__sandbox_t *sb, const char *text, size_t len,
                         const char *chunkname) {
  chunk_t c = {text, len, chunkname};
  int st = strata__sandbox_cpcall(sb, load_chunk, &c, 2);
  if (st != LUA_OK)
    return st; /* out of memory pushing the results */
  st = (int)lua_tointeger(sb->L, -2);
  lua_remove(sb->L, -2);
  return st;
}

/* {=== Bounded libraries ===} */

/* Upvalue 1 of every wrapper: the library's own function. Calls it with
 * the wrapper's arguments and returns what it returns. */
static int call_original(lua_State *L) {
  int n = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n, LUA_MULTRET);
  return lua_gettop(L);
}

static void too_big(lua_State *L, const char *fn, size_t n, const char *what) {
  luaL_error(L, "%s: %s of %I over the sandbox's limit (%I)", fn, what,
             (lua_Integer)n, (lua_Integer)strata__sandbox_string_max(L));
}

/* Charge the bytes of the string arguments (read) and of the string
 * results (built), refusing results over the limit. For functions whose
 * work is proportional to what they read and write. */
static int charged(lua_State *L) {
  uint64_t units = 1;
  for (int i = 1; i <= lua_gettop(L); i++)
    if (lua_type(L, i) == LUA_TSTRING)
      units += lua_rawlen(L, i) / BYTES_PER_UNIT;
  strata__sandbox_charge(L, units);
  int n = call_original(L);
  size_t max = strata__sandbox_string_max(L);
  units = (uint64_t)n;
  for (int i = 1; i <= n; i++)
    if (lua_type(L, i) == LUA_TSTRING) {
      size_t len = lua_rawlen(L, i);
      if (len > max)
        too_big(L, lua_tostring(L, lua_upvalueindex(2)), len, "a result");
      units += len / BYTES_PER_UNIT;
    }
  strata__sandbox_charge(L, units);
  return n;
}

/* Check that `count` items (or bytes) stay under the limit, and charge
 * them, before the library function does the work. */
static void precharge(lua_State *L, const char *fn, lua_Integer first,
                      lua_Integer last, const char *what) {
  if (last < first)
    return;
  lua_Unsigned count = (lua_Unsigned)last - (lua_Unsigned)first + 1;
  if (count > strata__sandbox_string_max(L))
    too_big(L, fn, (size_t)count, what);
  strata__sandbox_charge(L, count);
}

static int bounded_rep(lua_State *L) {
  size_t len, seplen = 0;
  luaL_checklstring(L, 1, &len);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_optlstring(L, 3, "", &seplen);
  if (n > 0) {
    size_t max = strata__sandbox_string_max(L);
    /* len * n + seplen * (n - 1), refused before it can overflow. */
    if ((lua_Unsigned)n > max || (len && (lua_Unsigned)n > max / len) ||
        (seplen && (lua_Unsigned)(n - 1) > max / seplen) ||
        len * (size_t)n + seplen * (size_t)(n - 1) > max)
      too_big(L, "string.rep", (size_t)n, "a repetition count");
    strata__sandbox_charge(L, (len + seplen) * (size_t)n / BYTES_PER_UNIT + 1);
  }
  return call_original(L);
}

/* The range [i, j] of a list function whose i is argument `at` (default
 * 1) and j the next one (default: the length of argument 1), checked and
 * charged. */
static void precharge_range(lua_State *L, const char *fn, int at) {
  lua_Integer first = luaL_optinteger(L, at, 1);
  lua_Integer last = lua_isnoneornil(L, at + 1) ? luaL_len(L, 1)
                                                : luaL_checkinteger(L, at + 1);
  precharge(L, fn, first, last, "a range");
}

static int bounded_concat(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  precharge_range(L, "table.concat", 3);
  return charged(L);
}

static int bounded_move(lua_State *L) {
  lua_Integer f = luaL_checkinteger(L, 2), e = luaL_checkinteger(L, 3);
  precharge(L, "table.move", f, e, "a range");
  return call_original(L);
}

static int bounded_unpack(lua_State *L) {
  precharge_range(L, "table.unpack", 2);
  return call_original(L);
}

/* insert and remove shift the elements above the position: as many as
 * the length says, which __len can make anything. */
static int bounded_shift(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  precharge(L, lua_tostring(L, lua_upvalueindex(2)), 1, luaL_len(L, 1),
            "a length");
  return call_original(L);
}

static int bounded_sort(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 1);
  precharge(L, "table.sort", 1, n, "a length");
  uint64_t logn = 1;
  while (n >> logn)
    logn++;
  strata__sandbox_charge(L, (uint64_t)(n > 0 ? n : 0) * logn);
  return call_original(L);
}

/* __gc would run with the count hook off (Lua disables hooks while a
 * finalizer runs), outside any call's limits. */
static int no_finalizers(lua_State *L) {
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, 2) != LUA_TNIL)
      return luaL_error(L, "setmetatable: __gc (finalizers) is not allowed "
                           "in a sandbox");
    lua_pop(L, 1);
  }
  return call_original(L);
}

/* xpcall's message handler runs where the error was raised; an error the
 * count hook raised leaves hooks off until the stack unwinds, so a Lua
 * handler would run without any limit. Each handler is wrapped: once a
 * limit was hit it is not called at all (the error goes on unchanged). */
static int guarded_handler(lua_State *L) {
  strata__sandbox_t *sb = of(L);
  if (sb && sb->trip)
    return 1; /* the message as it is */
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

static int guarded_xpcall(lua_State *L) {
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, guarded_handler, 1);
  lua_replace(L, 2);
  return call_original(L);
}

/* Replace field `name` of the table on top of the stack by fn closed over
 * the original and the function's full name. */
static void wrap(lua_State *L, const char *lib, const char *name,
                 lua_CFunction fn) {
  if (lua_getfield(L, -1, name) == LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  lua_pushfstring(L, "%s%s%s", lib, *lib ? "." : "", name);
  lua_pushcclosure(L, fn, 2);
  lua_setfield(L, -2, name);
}

static void wrap_all(lua_State *L, const char *lib, const char *const *names,
                     lua_CFunction fn) {
  for (; *names; names++)
    wrap(L, lib, *names, fn);
}

static void bound_string(lua_State *L) {
  static const char *const work[] = {"upper", "lower",  "reverse", "sub",
                                     "char",  "format", "pack",    "unpack",
                                     "byte",  NULL};
  lua_getglobal(L, LUA_STRLIBNAME);
  wrap_all(L, "string", work, charged);
  wrap(L, "string", "rep", bounded_rep);
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  strata__pattern_open(L);
  lua_pop(L, 1);
}

static void bound_table(lua_State *L) {
  static const char *const shift[] = {"insert", "remove", NULL};
  lua_getglobal(L, LUA_TABLIBNAME);
  wrap(L, "table", "concat", bounded_concat);
  wrap(L, "table", "move", bounded_move);
  wrap(L, "table", "unpack", bounded_unpack);
  wrap(L, "table", "sort", bounded_sort);
  wrap_all(L, "table", shift, bounded_shift);
  lua_pop(L, 1);
}

static void bound_base(lua_State *L) {
  static const char *const removed[] = {
      "load",           "loadfile", "dofile", "require",
      "collectgarbage", "print",    "warn",   NULL};
  static const char *const work[] = {"tostring", "tonumber", NULL};
  for (const char *const *r = removed; *r; r++) {
    lua_pushnil(L);
    lua_setglobal(L, *r);
  }
  lua_pushglobaltable(L);
  wrap_all(L, "", work, charged);
  wrap(L, "", "setmetatable", no_finalizers);
  wrap(L, "", "xpcall", guarded_xpcall);
  lua_pop(L, 1);
  static const char *const utf8_work[] = {"char", "codepoint", "len", "offset",
                                          NULL};
  lua_getglobal(L, LUA_UTF8LIBNAME);
  wrap_all(L, "utf8", utf8_work, charged);
  lua_pop(L, 1);
}

static int open_libs(lua_State *L) {
  static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},
                                  {LUA_TABLIBNAME, luaopen_table},
                                  {LUA_STRLIBNAME, luaopen_string},
                                  {LUA_MATHLIBNAME, luaopen_math},
                                  {LUA_UTF8LIBNAME, luaopen_utf8}};
  for (size_t i = 0; i < sizeof libs / sizeof *libs; i++) {
    luaL_requiref(L, libs[i].name, libs[i].func, 1);
    lua_pop(L, 1);
  }
  bound_base(L);
  bound_string(L);
  bound_table(L);
  return 0;
}

/* {=== Life cycle ===} */

/* An error outside any protected call: never expected (every entry is
 * protected); say so before Lua ends the process. */
static int panic(lua_State *L) {
  strata__sandbox_t *sb = of(L);
  const char *msg =
      lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(not a string)";
  if (sb && sb->report) {
    char line[512];
    snprintf(line, sizeof line, "%s: unprotected Lua error: %s", sb->name, msg);
    sb->report(sb->report_ud, line);
  }
  return 0;
}

static void set_limits(strata__sandbox_t *sb,
                       const strata__sandbox_limits_t *l) {
  strata__sandbox_limits_t none = {0};
  if (!l)
    l = &none;
  sb->budget = l->instructions ? l->instructions : STRATA__SANDBOX_INSTRUCTIONS;
  sb->memory = l->memory ? l->memory : STRATA__SANDBOX_MEMORY;
  sb->deadline_ns =
      l->deadline_ns ? l->deadline_ns : STRATA__SANDBOX_DEADLINE_NS;
  sb->string_max = l->string_max ? l->string_max : STRATA__SANDBOX_STRING_MAX;
}

int strata__sandbox_new(strata_alloc_fn alloc, void *alloc_ud,
                        const strata__sandbox_limits_t *limits,
                        strata__sandbox_env_t env, const char *name,
                        strata__sandbox_report_fn report, void *report_ud,
                        strata__sandbox_t **out) {
  *out = NULL;
  if (!alloc)
    alloc = strata__sandbox_libc_alloc;
  strata__sandbox_t *sb = alloc(alloc_ud, NULL, 0, sizeof *sb);
  if (!sb)
    return STRATA_ENOMEM;
  memset(sb, 0, sizeof *sb);
  sb->alloc = alloc;
  sb->alloc_ud = alloc_ud;
  sb->report = report;
  sb->report_ud = report_ud;
  snprintf(sb->name, sizeof sb->name, "%s", name ? name : "script");
  set_limits(sb, limits);
  sb->L = lua_newstate(sandbox_alloc, sb);
  if (!sb->L) {
    alloc(alloc_ud, sb, sizeof *sb, 0);
    return STRATA_ENOMEM;
  }
  lua_atpanic(sb->L, panic);
  lua_pushcfunction(sb->L, traceback); /* HANDLER: allocates nothing */
  if (env == STRATA__SANDBOX_LIBS &&
      strata__sandbox_cpcall(sb, open_libs, NULL, 0) != LUA_OK) {
    strata__sandbox_free(sb);
    return STRATA_ENOMEM;
  }
  *out = sb;
  return STRATA_OK;
}

void strata__sandbox_free(strata__sandbox_t *sb) {
  if (!sb)
    return;
  lua_close(sb->L);
  sb->alloc(sb->alloc_ud, sb, sizeof *sb, 0);
}
