/* SPDX-License-Identifier: MIT */
/* tests/test_schema.c: the typed reader of Lua tables (sandbox/schema.h):
 * each reader's refusals with their exact messages (file, field path,
 * reason, the value as written), defaults kept for absent optional
 * fields, exact integer bounds, unknown keys refused or warned, and the
 * stack left as it was found. */
#include "config.h"

#include "schema.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <lauxlib.h>
#include <lualib.h>

typedef struct fixture {
  lua_State *L;
  strata__schema_t sc;
  char err[512];
  char warned[1024];
  int nwarned;
} fixture_t;

static void collect(void *ud, const char *msg) {
  fixture_t *f = ud;
  size_t o = strlen(f->warned);
  snprintf(f->warned + o, sizeof f->warned - o, "%s\n", msg);
  f->nwarned++;
}

static int setup(void **state) {
  static fixture_t f;
  memset(&f, 0, sizeof f);
  f.L = luaL_newstate();
  if (!f.L)
    return -1;
  luaL_openlibs(f.L);
  f.sc = (strata__schema_t){.L = f.L,
                            .file = "m.lua",
                            .err = f.err,
                            .errlen = sizeof f.err,
                            .warn = collect,
                            .warn_ud = &f};
  *state = &f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  lua_close(f->L);
  return 0;
}

/* Push the table the expression `expr` makes. @return its index */
static int table(fixture_t *f, const char *expr) {
  char chunk[1024];
  snprintf(chunk, sizeof chunk, "return %s", expr);
  if (luaL_dostring(f->L, chunk) != LUA_OK)
    fail_msg("%s: %s", expr, lua_tostring(f->L, -1));
  return lua_gettop(f->L);
}

/* The read returned EINVAL with exactly `message`, and left the stack
 * as it was. */
#define REFUSED(f, call, message)                                              \
  do {                                                                         \
    int top_ = lua_gettop((f)->L);                                             \
    (f)->err[0] = '\0';                                                        \
    int rc_ = (call);                                                          \
    assert_int_equal(rc_, STRATA_EINVAL);                                      \
    assert_string_equal((f)->err, message);                                    \
    assert_int_equal(lua_gettop((f)->L), top_);                                \
  } while (0)

#define ACCEPTED(f, call)                                                      \
  do {                                                                         \
    int top_ = lua_gettop((f)->L);                                             \
    int rc_ = (call);                                                          \
    if (rc_)                                                                   \
      fail_msg("refused: %s", (f)->err);                                       \
    assert_int_equal(lua_gettop((f)->L), top_);                                \
  } while (0)

static const strata__schema_range_t WATTS = {0, 1, "W", "0 to 1"};
static const strata__schema_range_t BIG = {0, 0x1p53, "", "0 to 2^53"};
static const strata__schema_range_t WORKERS = {1, 64, "workers", "1 to 64"};

/* {=== Numbers ===} */

static void test_schema_number(void **state) {
  fixture_t *f = *state;
  int t = table(f, "{ a = 0.5, s = 'abc', big = 5, n = 0/0, inf = 1/0 }");
  double d = -1;
  ACCEPTED(f, strata__schema_number(&f->sc, t, "", "a", STRATA__SCHEMA_REQUIRED,
                                    &WATTS, &d));
  assert_true(d == 0.5);
  d = 42; /* the default stays when the field is absent */
  ACCEPTED(f, strata__schema_number(&f->sc, t, "", "none",
                                    STRATA__SCHEMA_OPTIONAL, &WATTS, &d));
  assert_true(d == 42);
  REFUSED(f,
          strata__schema_number(&f->sc, t, "", "none", STRATA__SCHEMA_REQUIRED,
                                &WATTS, &d),
          "m.lua: none: missing");
  REFUSED(f,
          strata__schema_number(&f->sc, t, "devices[2]", "s",
                                STRATA__SCHEMA_OPTIONAL, &WATTS, &d),
          "m.lua: devices[2].s: must be a number (got 'abc')");
  REFUSED(f,
          strata__schema_number(&f->sc, t, "", "big", STRATA__SCHEMA_OPTIONAL,
                                &WATTS, &d),
          "m.lua: big: 5 W is out of range (0 to 1 W)");
  REFUSED(f,
          strata__schema_number(&f->sc, t, "", "n", STRATA__SCHEMA_OPTIONAL,
                                &WATTS, &d),
          "m.lua: n: nan W is out of range (0 to 1 W)");
  /* No range: anything but NaN. */
  ACCEPTED(f, strata__schema_number(&f->sc, t, "", "inf",
                                    STRATA__SCHEMA_OPTIONAL, NULL, &d));
  assert_true(isinf(d));
  REFUSED(f,
          strata__schema_number(&f->sc, t, "", "n", STRATA__SCHEMA_OPTIONAL,
                                NULL, &d),
          "m.lua: n: nan is out of range (not NaN)");
}

static void test_schema_integer(void **state) {
  fixture_t *f = *state;
  int t = table(f, "{ w = 4, e = 1e1, half = 1.5, zero = 0, "
                   "huge = 9007199254740993, edge = 9007199254740992 }");
  int64_t v = -1;
  bool present = false;
  ACCEPTED(
      f, strata__schema_integer(&f->sc, t, "", "w", 0, &WORKERS, &v, &present));
  assert_true(present);
  assert_int_equal(v, 4);
  ACCEPTED(f,
           strata__schema_integer(&f->sc, t, "", "e", 0, &WORKERS, &v, NULL));
  assert_int_equal(v, 10); /* an integral float is a whole number */
  v = 7;
  ACCEPTED(f, strata__schema_integer(&f->sc, t, "", "none", 0, &WORKERS, &v,
                                     &present));
  assert_false(present);
  assert_int_equal(v, 7);
  REFUSED(f,
          strata__schema_integer(&f->sc, t, "d", "half", 0, &WORKERS, &v, NULL),
          "m.lua: d.half: must be a whole number (got 1.5)");
  REFUSED(f,
          strata__schema_integer(&f->sc, t, "d", "zero", 0, &WORKERS, &v, NULL),
          "m.lua: d.zero: 0 workers is out of range (1 to 64 workers)");
  /* 2^53 + 1 would round to 2^53 as a double: compared exactly. */
  ACCEPTED(f, strata__schema_integer(&f->sc, t, "", "edge", 0, &BIG, &v, NULL));
  assert_true(v == INT64_C(9007199254740992));
  REFUSED(f, strata__schema_integer(&f->sc, t, "", "huge", 0, &BIG, &v, NULL),
          "m.lua: huge: 9007199254740993 is out of range (0 to 2^53)");
}

/* {=== Booleans, strings, enums ===} */

static void test_schema_bool(void **state) {
  fixture_t *f = *state;
  int t = table(f, "{ ecc = true, off = false, yes = 'yes' }");
  bool b = false;
  ACCEPTED(f, strata__schema_bool(&f->sc, t, "", "ecc", 0, &b));
  assert_true(b);
  ACCEPTED(f, strata__schema_bool(&f->sc, t, "", "off", 0, &b));
  assert_false(b);
  b = true;
  ACCEPTED(f, strata__schema_bool(&f->sc, t, "", "none", 0, &b));
  assert_true(b);
  REFUSED(f, strata__schema_bool(&f->sc, t, "x", "yes", 0, &b),
          "m.lua: x.yes: must be a boolean (got 'yes')");
  REFUSED(
      f,
      strata__schema_bool(&f->sc, t, "x", "none", STRATA__SCHEMA_REQUIRED, &b),
      "m.lua: x.none: missing");
}

static void test_schema_string(void **state) {
  fixture_t *f = *state;
  int t = table(f, "{ ok = 'H100', long = '123456789', empty = '', "
                   "nul = 'a\\0b', num = 5 }");
  char out[9] = "default";
  ACCEPTED(f, strata__schema_string(&f->sc, t, "", "none", 0, 8, out));
  assert_string_equal(out, "default");
  ACCEPTED(f, strata__schema_string(&f->sc, t, "", "ok", 0, 8, out));
  assert_string_equal(out, "H100");
  REFUSED(f, strata__schema_string(&f->sc, t, "", "long", 0, 8, out),
          "m.lua: long: must be a non-empty string of at most 8 bytes "
          "without NUL (got '123456789')");
  REFUSED(f, strata__schema_string(&f->sc, t, "", "empty", 0, 8, out),
          "m.lua: empty: must be a non-empty string of at most 8 bytes "
          "without NUL (got '')");
  REFUSED(f, strata__schema_string(&f->sc, t, "", "nul", 0, 8, out),
          "m.lua: nul: must be a non-empty string of at most 8 bytes "
          "without NUL (got 'a')"); /* %.*s stops at the NUL */
  REFUSED(f, strata__schema_string(&f->sc, t, "", "num", 0, 8, out),
          "m.lua: num: must be a string (got 5)");
  REFUSED(f,
          strata__schema_string(&f->sc, t, "", "none", STRATA__SCHEMA_REQUIRED,
                                8, out),
          "m.lua: none: missing");
  assert_string_equal(out, "H100");
}

static void test_schema_enum(void **state) {
  fixture_t *f = *state;
  static const char *const time[] = {"real", "modelled", NULL};
  static const char *const cls[] = {"cpu", "hbm", "gddr", NULL};
  static const char *const one[] = {"only", NULL};
  int t = table(f, "{ time = 'modelled', bad = 'fast', c = 'tpu', "
                   "n = 3, prefix = 'rea' }");
  int i = -1;
  ACCEPTED(f, strata__schema_enum(&f->sc, t, "", "time", 0, time, &i));
  assert_int_equal(i, 1);
  i = 5;
  ACCEPTED(f, strata__schema_enum(&f->sc, t, "", "none", 0, time, &i));
  assert_int_equal(i, 5);
  REFUSED(f, strata__schema_enum(&f->sc, t, "", "bad", 0, time, &i),
          "m.lua: bad: must be 'real' or 'modelled' (got 'fast')");
  REFUSED(f, strata__schema_enum(&f->sc, t, "", "prefix", 0, time, &i),
          "m.lua: prefix: must be 'real' or 'modelled' (got 'rea')");
  REFUSED(f, strata__schema_enum(&f->sc, t, "devices[1]", "c", 0, cls, &i),
          "m.lua: devices[1].c: must be 'cpu', 'hbm' or 'gddr' (got "
          "'tpu')");
  REFUSED(f, strata__schema_enum(&f->sc, t, "", "c", 0, one, &i),
          "m.lua: c: must be 'only' (got 'tpu')");
  REFUSED(f, strata__schema_enum(&f->sc, t, "", "n", 0, time, &i),
          "m.lua: n: must be a string (got 3)");
  REFUSED(f,
          strata__schema_enum(&f->sc, t, "", "none", STRATA__SCHEMA_REQUIRED,
                              time, &i),
          "m.lua: none: missing");
}

/* {=== Tables, lists, keys ===} */

static void test_schema_table(void **state) {
  fixture_t *f = *state;
  int t = table(f, "{ health = { power = 1 }, num = 45 }");
  bool present = false;
  int top = lua_gettop(f->L);
  assert_int_equal(
      strata__schema_table(&f->sc, t, "devices[1]", "health", 0, &present), 0);
  assert_true(present);
  assert_int_equal(lua_gettop(f->L), top + 1); /* pushed */
  assert_true(lua_istable(f->L, -1));
  lua_pop(f->L, 1);
  ACCEPTED(f, strata__schema_table(&f->sc, t, "", "none", 0, &present));
  assert_false(present);
  REFUSED(f, strata__schema_table(&f->sc, t, "devices[1]", "num", 0, &present),
          "m.lua: devices[1].num: must be a table (got 45)");
  REFUSED(f,
          strata__schema_table(&f->sc, t, "", "none", STRATA__SCHEMA_REQUIRED,
                               &present),
          "m.lua: none: missing");
}

static void test_schema_array(void **state) {
  fixture_t *f = *state;
  size_t n = 99;
  int t = table(f, "{ 'a', 'b', 'c' }");
  ACCEPTED(f, strata__schema_array(&f->sc, t, "devices[2]", "peers", &n));
  assert_int_equal(n, 3);
  t = table(f, "{}");
  ACCEPTED(f, strata__schema_array(&f->sc, t, "", "devices", &n));
  assert_int_equal(n, 0);
  t = table(f, "{ 'a', name = 'x' }");
  REFUSED(f, strata__schema_array(&f->sc, t, "", "devices", &n),
          "m.lua: devices: must be a list (found key 'name')");
  t = table(f, "{ 'a', nil, 'c' }");
  REFUSED(f, strata__schema_array(&f->sc, t, "", "devices", &n),
          "m.lua: devices: must be a list without holes");
  t = table(f, "{ [1] = 'a', [3] = 'c' }"); /* the border is 1 here */
  REFUSED(f, strata__schema_array(&f->sc, t, "", "devices", &n),
          "m.lua: devices: must be a list (found key 3)");
  t = table(f, "{ 'a', [1.5] = 'c' }");
  REFUSED(f, strata__schema_array(&f->sc, t, "d", "peers", &n),
          "m.lua: d.peers: must be a list (found key 1.5)");
}

static void test_schema_keys(void **state) {
  fixture_t *f = *state;
  static const char *const known[] = {"memory", "name", NULL};
  int t = table(f, "{ memory = 1, name = 'x' }");
  ACCEPTED(f, strata__schema_keys(&f->sc, t, "devices[2]", known,
                                  STRATA__SCHEMA_REFUSE));
  t = table(f, "{ memroy = 1 }");
  REFUSED(f,
          strata__schema_keys(&f->sc, t, "devices[2]", known,
                              STRATA__SCHEMA_REFUSE),
          "m.lua: devices[2].memroy: unknown field");
  REFUSED(f, strata__schema_keys(&f->sc, t, "", known, STRATA__SCHEMA_REFUSE),
          "m.lua: memroy: unknown field");
  t = table(f, "{ [true] = 1 }");
  REFUSED(
      f, strata__schema_keys(&f->sc, t, "health", known, STRATA__SCHEMA_REFUSE),
      "m.lua: health[true]: unknown field");
  t = table(f, "{ 7 }");
  REFUSED(f, strata__schema_keys(&f->sc, t, "", known, STRATA__SCHEMA_REFUSE),
          "m.lua: [1]: unknown field");
  /* A key holding a NUL is not the known key it begins with. */
  t = table(f, "{ ['name\\0x'] = 1 }");
  REFUSED(f, strata__schema_keys(&f->sc, t, "", known, STRATA__SCHEMA_REFUSE),
          "m.lua: name: unknown field");
  /* Warned, each one, and the read goes on. */
  t = table(f, "{ memory = 1, colour = 'red', [2] = 0 }");
  f->warned[0] = '\0';
  f->nwarned = 0;
  ACCEPTED(f,
           strata__schema_keys(&f->sc, t, "job", known, STRATA__SCHEMA_WARN));
  assert_int_equal(f->nwarned, 2);
  assert_non_null(strstr(f->warned, "m.lua: job.colour: unknown field "
                                    "(ignored)\n"));
  assert_non_null(strstr(f->warned, "m.lua: job[2]: unknown field "
                                    "(ignored)\n"));
  strata__schema_t quiet = f->sc;
  quiet.warn = NULL;
  ACCEPTED(f,
           strata__schema_keys(&quiet, t, "job", known, STRATA__SCHEMA_WARN));
}

/* {=== Messages ===} */

static void test_schema_messages(void **state) {
  fixture_t *f = *state;
  int t = table(f, "{ s = string.rep('x', 50), v = 1 }");
  REFUSED(f, strata__schema_fail(&f->sc, "devices[2]", NULL, "bad %d", 3),
          "m.lua: devices[2]: bad 3");
  REFUSED(f, strata__schema_fail(&f->sc, "devices[2]", "[3]", "r"),
          "m.lua: devices[2][3]: r");
  REFUSED(f, strata__schema_fail(&f->sc, "", "peers[1]", "r"),
          "m.lua: peers[1]: r");
  REFUSED(f, strata__schema_fail(&f->sc, NULL, "k", "r"), "m.lua: k: r");
  REFUSED(f, strata__schema_number(&f->sc, t, "", "s", 0, &WATTS, NULL),
          "m.lua: s: must be a number (got "
          "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...')");
  /* Without a buffer the answer is the same. */
  strata__schema_t mute = f->sc;
  mute.err = NULL;
  assert_int_equal(strata__schema_number(&mute, t, "", "s", 0, &WATTS, NULL),
                   STRATA_EINVAL);
  char buf[16];
  lua_pushboolean(f->L, 1);
  assert_string_equal(strata__schema_show(f->L, -1, buf, sizeof buf), "true");
  lua_pushnumber(f->L, 1e300);
  assert_string_equal(strata__schema_show(f->L, -1, buf, sizeof buf), "1e+300");
  lua_newtable(f->L);
  assert_string_equal(strata__schema_show(f->L, -1, buf, sizeof buf), "table");
  lua_pop(f->L, 3);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_schema_number, setup, teardown),
      cmocka_unit_test_setup_teardown(test_schema_integer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_schema_bool, setup, teardown),
      cmocka_unit_test_setup_teardown(test_schema_string, setup, teardown),
      cmocka_unit_test_setup_teardown(test_schema_enum, setup, teardown),
      cmocka_unit_test_setup_teardown(test_schema_table, setup, teardown),
      cmocka_unit_test_setup_teardown(test_schema_array, setup, teardown),
      cmocka_unit_test_setup_teardown(test_schema_keys, setup, teardown),
      cmocka_unit_test_setup_teardown(test_schema_messages, setup, teardown),
  };
  return cmocka_run_group_tests_name("schema", tests, NULL, NULL);
}
