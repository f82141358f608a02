/* SPDX-License-Identifier: MIT */
/* tests/test_sandbox.c: the Lua sandbox on its own (sandbox/sandbox.h):
 * text only, limits a script cannot catch or outrun in C, no finalizers,
 * the panic report, allocation failures at creation, and the file reader
 * that refuses FIFOs, devices and directories without blocking. */
#include "config.h"

#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <lauxlib.h>
#include <lualib.h>

static char tmpdir[] = "/tmp/strata-test-sandbox-XXXXXX";

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* An allocator that counts live bytes and can fail its k-th call. */
typedef struct counting {
  size_t live;
  long fail_at; /* < 0: never */
} counting_t;

static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  counting_t *c = ud;
  if (nsize == 0) {
    free(ptr);
    c->live -= ptr ? osize : 0;
    return NULL;
  }
  if (c->fail_at >= 0 && c->fail_at-- == 0)
    return NULL;
  void *p = realloc(ptr, nsize);
  if (p)
    c->live += nsize - (ptr ? osize : 0);
  return p;
}

static strata__sandbox_t *sandbox(const strata__sandbox_limits_t *l) {
  strata__sandbox_t *sb;
  assert_int_equal(strata__sandbox_new(NULL, NULL, l, STRATA__SANDBOX_LIBS,
                                       "test", NULL, NULL, &sb),
                   0);
  return sb;
}

/* Load and call `src`; returns the status, the message (or first
 * result, as a string) copied into msg. */
static int run(strata__sandbox_t *sb, const char *src, char *msg, size_t n) {
  lua_State *L = strata__sandbox_state(sb);
  int top = lua_gettop(L);
  int st = strata__sandbox_load(sb, src, strlen(src), "=chunk");
  if (st == LUA_OK)
    st = strata__sandbox_call(sb, 0, 1);
  const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
  snprintf(msg, n, "%s", s);
  lua_settop(L, top);
  return st;
}

static void expect_error(strata__sandbox_t *sb, const char *src,
                         const char *needle) {
  char msg[4096];
  int st = run(sb, src, msg, sizeof msg);
  if (st == LUA_OK || !strstr(msg, needle))
    fail_msg("'%s': status %d, message '%s', expected '%s'", src, st, msg,
             needle);
}

/* {=== Loading ===} */

static int writer(lua_State *L, const void *p, size_t sz, void *ud) {
  (void)L;
  luaL_addlstring(ud, p, sz);
  return 0;
}

static void test_sandbox_text_only(void **state) {
  (void)state;
  /* Real bytecode, from a plain state. */
  lua_State *plain = luaL_newstate();
  assert_int_equal(luaL_loadstring(plain, "return 1"), LUA_OK);
  luaL_Buffer b;
  luaL_buffinit(plain, &b);
  lua_pushvalue(plain, -2);
  assert_int_equal(lua_dump(plain, writer, &b, 0), 0);
  lua_pop(plain, 1);
  luaL_pushresult(&b);
  size_t len;
  const char *code = lua_tolstring(plain, -1, &len);
  strata__sandbox_t *sb = sandbox(NULL);
  lua_State *L = strata__sandbox_state(sb);
  assert_int_not_equal(strata__sandbox_load(sb, code, len, "@bytecode.lua"),
                       LUA_OK);
  assert_non_null(strstr(lua_tostring(L, -1), "binary chunk"));
  assert_non_null(strstr(lua_tostring(L, -1), "bytecode.lua"));
  lua_pop(L, 1);
  lua_close(plain);
  char msg[256];
  assert_int_equal(run(sb, "return tostring(string.dump)", msg, sizeof msg),
                   LUA_OK);
  assert_string_equal(msg, "nil");
  strata__sandbox_free(sb);
}

static void test_sandbox_deep_nesting_names_the_file(void **state) {
  (void)state;
  strata__sandbox_t *sb = sandbox(NULL);
  lua_State *L = strata__sandbox_state(sb);
  for (size_t depth = 200; depth <= 100000; depth *= 500) {
    size_t n = 7 + depth;
    char *src = malloc(n + 1);
    memcpy(src, "return ", 7);
    memset(src + 7, '{', depth);
    src[n] = '\0';
    assert_int_not_equal(strata__sandbox_load(sb, src, n, "@deep.lua"), LUA_OK);
    const char *msg = lua_tostring(L, -1);
    if (strncmp(msg, "deep.lua", 8))
      fail_msg("depth %zu: '%s' does not name the file", depth, msg);
    lua_pop(L, 1);
    free(src);
  }
  strata__sandbox_free(sb);
}

static void test_sandbox_environment(void **state) {
  (void)state;
  strata__sandbox_t *sb = sandbox(NULL);
  static const char *const absent[] = {
      "io",     "os",    "debug", "package",  "require",        "load",
      "dofile", "print", "warn",  "loadfile", "collectgarbage", "coroutine"};
  for (size_t i = 0; i < sizeof absent / sizeof *absent; i++) {
    char src[64], msg[64];
    snprintf(src, sizeof src, "return type(%s)", absent[i]);
    assert_int_equal(run(sb, src, msg, sizeof msg), LUA_OK);
    if (strcmp(msg, "nil"))
      fail_msg("%s is %s in the sandbox", absent[i], msg);
  }
  strata__sandbox_free(sb);
  /* An empty one has nothing at all. */
  assert_int_equal(strata__sandbox_new(NULL, NULL, NULL, STRATA__SANDBOX_EMPTY,
                                       "empty", NULL, NULL, &sb),
                   0);
  expect_error(sb, "return string.rep('x', 2)", "string");
  strata__sandbox_free(sb);
}

/* {=== Limits ===} */

static void test_sandbox_budget_cannot_be_caught(void **state) {
  (void)state;
  strata__sandbox_t *sb = sandbox(NULL);
  static const char *const catchers[] = {
      "while true do pcall(function() while true do end end) end",
      "local function spin() while true do end end\n"
      "while true do xpcall(spin, spin) end",
      "while true do pcall(error, 'x') end",
      "return pcall(function() while true do end end)",
      "local t <close> = setmetatable({}, {__close = function()\n"
      "  while true do end end})\nwhile true do end",
      "local ok, e = pcall(function() while true do end end)\n"
      "while true do local ok2 = pcall(error, e) end",
  };
  for (size_t i = 0; i < sizeof catchers / sizeof *catchers; i++) {
    double t0 = now_s();
    expect_error(sb, catchers[i], "exceeded");
    assert_int_equal(strata__sandbox_tripped(sb),
                     STRATA__SANDBOX_INSTRUCTIONS_HIT);
    assert_true(now_s() - t0 < 2.0);
    /* The next call has its own, fresh limits. */
    char msg[64];
    assert_int_equal(run(sb,
                         "local n = 0 for i = 1, 1000 do n = n + i end "
                         "return tostring(n)",
                         msg, sizeof msg),
                     LUA_OK);
    assert_string_equal(msg, "500500");
    assert_int_equal(strata__sandbox_tripped(sb), STRATA__SANDBOX_RAN);
  }
  strata__sandbox_free(sb);
}

static void test_sandbox_deadline_covers_c_work(void **state) {
  (void)state;
  /* A budget no script reaches: only the clock can end these. */
  strata__sandbox_limits_t l = {.instructions = UINT64_C(1) << 60,
                                .deadline_ns = 30000000};
  strata__sandbox_t *sb = sandbox(&l);
  static const char *const stalls[] = {
      "local s = string.rep('x', 1 << 19) while true do local t = s .. s end",
      "while true do local s = string.rep('x', 1 << 19) end",
      "local t = {} for i = 1, 1000 do t[i] = string.rep('y', 1000) end\n"
      "while true do local s = table.concat(t) end",
      "local s = string.rep('a', 4000)\n"
      "while true do string.find(s, '.-.-.-.-b') end",
  };
  for (size_t i = 0; i < sizeof stalls / sizeof *stalls; i++) {
    double t0 = now_s();
    expect_error(sb, stalls[i], "time limit");
    assert_int_equal(strata__sandbox_tripped(sb), STRATA__SANDBOX_DEADLINE_HIT);
    double took = now_s() - t0;
    if (took > 1.0)
      fail_msg("'%s' ran %.2f s past a 30 ms limit", stalls[i], took);
  }
  strata__sandbox_free(sb);
}

static void test_sandbox_memory_cap(void **state) {
  (void)state;
  counting_t c = {0, -1};
  strata__sandbox_limits_t l = {.memory = 256 << 10,
                                .instructions = UINT64_C(1) << 40};
  strata__sandbox_t *sb;
  assert_int_equal(strata__sandbox_new(counting_alloc, &c, &l,
                                       STRATA__SANDBOX_LIBS, "capped", NULL,
                                       NULL, &sb),
                   0);
  expect_error(sb, "local t = {} for i = 1, 1e8 do t[i] = {} end",
               "not enough memory");
  assert_int_equal(strata__sandbox_tripped(sb), STRATA__SANDBOX_MEMORY_HIT);
  assert_true(strata__sandbox_memory_used(sb) <= 256 << 10);
  strata__sandbox_free(sb);
  assert_int_equal(c.live, 0);
}

static void test_sandbox_bounded_library(void **state) {
  (void)state;
  strata__sandbox_t *sb = sandbox(NULL);
  expect_error(sb, "return string.rep('x', 1 << 40)", "over the sandbox");
  expect_error(sb, "return string.rep('xy', 1 << 20, ',')", "over the sandbox");
  expect_error(sb, "table.move({}, 1, 1 << 62, 2)", "table.move");
  expect_error(sb, "return table.unpack({}, 1, 1e8)", "table.unpack");
  expect_error(sb, "return table.concat({}, '', 1, 1 << 40)", "table.concat");
  expect_error(sb,
               "local t = setmetatable({}, {__len = function() return 1 << 62 "
               "end}) table.insert(t, 1, 'x')",
               "table.insert");
  expect_error(sb,
               "local t = setmetatable({}, {__len = function() return 1 << 62 "
               "end}) table.remove(t, 1)",
               "table.remove");
  expect_error(sb,
               "local t = setmetatable({}, {__len = function() return 1 << 62 "
               "end}) table.sort(t)",
               "table.sort");
  expect_error(sb,
               "local s = string.rep('x', 600000) "
               "return string.format('%s%s', s, s)",
               "over the sandbox");
  expect_error(sb,
               "return string.gsub(string.rep('a', 1000), 'a', "
               "string.rep('b', 10000))",
               "larger than");
  /* What stays under the limits still works. */
  char msg[64];
  assert_int_equal(run(sb,
                       "local t = {3, 1, 2} table.sort(t) table.insert(t, 4) "
                       "return table.concat(t, ',') .. string.rep('-', 2) .. "
                       "select(2, string.gsub('a.b', '%.', '/'))",
                       msg, sizeof msg),
                   LUA_OK);
  assert_string_equal(msg, "1,2,3,4--1");
  strata__sandbox_free(sb);
}

static void test_sandbox_no_finalizers(void **state) {
  (void)state;
  strata__sandbox_t *sb = sandbox(NULL);
  expect_error(sb,
               "setmetatable({}, {__gc = function() while true do end end})",
               "__gc");
  expect_error(sb, "setmetatable({}, {__gc = false})", "__gc");
  /* Added after setmetatable, __gc is never called (Lua marks objects for
   * finalization when the metatable is set). */
  char msg[64];
  assert_int_equal(run(sb,
                       "local mt = {} local t = setmetatable({}, mt) "
                       "mt.__gc = function() while true do end end "
                       "t = nil return 'ok'",
                       msg, sizeof msg),
                   LUA_OK);
  strata__sandbox_free(sb); /* closing the state calls no finalizer */
}

static void test_sandbox_error_objects(void **state) {
  (void)state;
  strata__sandbox_t *sb = sandbox(NULL);
  expect_error(sb,
               "error(setmetatable({}, {__tostring = function() "
               "while true do end end}))",
               "error object is a table value");
  expect_error(sb, "error('plain')", "plain");
  expect_error(sb, "error('plain')", "stack traceback");
  strata__sandbox_free(sb);
}

/* strata__sandbox_charge on a state of no sandbox charges nothing. */
static void test_sandbox_charge_elsewhere(void **state) {
  (void)state;
  lua_State *L = luaL_newstate();
  strata__sandbox_charge(L, UINT64_MAX);
  assert_int_equal(strata__sandbox_string_max(L), STRATA__SANDBOX_STRING_MAX);
  lua_close(L);
}

/* {=== Creation under memory failures, and the panic report ===} */

static void test_sandbox_new_out_of_memory(void **state) {
  (void)state;
  for (long k = 0;; k++) {
    counting_t c = {0, k};
    strata__sandbox_t *sb;
    int rc = strata__sandbox_new(counting_alloc, &c, NULL, STRATA__SANDBOX_LIBS,
                                 "oom", NULL, NULL, &sb);
    if (rc == STRATA_OK) {
      strata__sandbox_free(sb);
      assert_int_equal(c.live, 0);
      assert_true(k > 10);
      break;
    }
    assert_int_equal(rc, STRATA_ENOMEM);
    assert_null(sb);
    assert_int_equal(c.live, 0);
  }
}

static void report_to_fd(void *ud, const char *msg) {
  int fd = *(int *)ud;
  ssize_t n = write(fd, msg, strlen(msg));
  (void)n;
}

static void test_sandbox_panic_is_reported(void **state) {
  (void)state;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    signal(SIGABRT, SIG_DFL);
    strata__sandbox_t *sb;
    if (strata__sandbox_new(NULL, NULL, NULL, STRATA__SANDBOX_LIBS, "doomed",
                            report_to_fd, &fds[1], &sb))
      _exit(3);
    lua_State *L = strata__sandbox_state(sb);
    lua_pushstring(L, "raised outside any call");
    lua_error(L); /* no protected call: Lua panics */
    _exit(4);
  }
  close(fds[1]);
  char buf[512] = {0};
  size_t got = 0;
  for (ssize_t r; got < sizeof buf - 1 &&
                  (r = read(fds[0], buf + got, sizeof buf - 1 - got)) > 0;)
    got += (size_t)r;
  close(fds[0]);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFSIGNALED(status) || WIFEXITED(status));
  if (!strstr(buf, "doomed: unprotected Lua error: raised outside any call"))
    fail_msg("the panic said '%s'", buf);
}

/* {=== Reading files ===} */

static const char *path_in(const char *name) {
  static char path[512];
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  return path;
}

static int read_file(const char *path, size_t max, char *err, size_t errlen,
                     char **text, size_t *len) {
  return strata__read_text_file(path, max, NULL, NULL, text, len, err, errlen);
}

static void test_sandbox_read_file(void **state) {
  (void)state;
  char err[512], *text, p[512];
  size_t len;
  snprintf(p, sizeof p, "%s", path_in("ok.lua")); /* path_in's is reused */
  FILE *f = fopen(p, "w");
  fputs("return 1\n", f);
  fclose(f);
  assert_int_equal(read_file(p, 100, err, sizeof err, &text, &len), 0);
  assert_int_equal(len, 9);
  assert_string_equal(text, "return 1\n");
  strata__free_text_file(NULL, NULL, text, len);

  assert_int_equal(read_file(p, 4, err, sizeof err, &text, &len),
                   STRATA_EINVAL);
  assert_non_null(strstr(err, "larger than 4 bytes"));
  assert_null(text);

  assert_int_equal(
      read_file(path_in("missing.lua"), 100, err, sizeof err, &text, &len),
      STRATA_ENOENT);
  assert_non_null(strstr(err, "missing.lua: no such file"));

  assert_int_equal(read_file(tmpdir, 100, err, sizeof err, &text, &len),
                   STRATA_EINVAL);
  assert_non_null(strstr(err, "is a directory"));

  assert_int_equal(read_file("/dev/zero", 100, err, sizeof err, &text, &len),
                   STRATA_EINVAL);
  assert_non_null(strstr(err, "character device"));

  /* A FIFO nobody writes to: refused at once, not read (which would
   * block forever). */
  const char *fifo = path_in("fifo.lua");
  assert_int_equal(mkfifo(fifo, 0600), 0);
  double t0 = now_s();
  assert_int_equal(read_file(fifo, 100, err, sizeof err, &text, &len),
                   STRATA_EINVAL);
  assert_true(now_s() - t0 < 1.0);
  assert_non_null(strstr(err, "not a regular file (a FIFO)"));
  /* The same verdicts without reading. */
  err[0] = '\0';
  assert_int_equal(strata__check_text_file(fifo, 100, err, sizeof err),
                   STRATA_EINVAL);
  assert_non_null(strstr(err, "not a regular file (a FIFO)"));
  assert_int_equal(strata__check_text_file(tmpdir, 100, err, sizeof err),
                   STRATA_EINVAL);
  assert_int_equal(strata__check_text_file(p, 100, err, sizeof err), 0);
  assert_int_equal(strata__check_text_file(p, 4, err, sizeof err),
                   STRATA_EINVAL);
  unlink(fifo);
  unlink(p);
}

int main(void) {
  if (!mkdtemp(tmpdir))
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sandbox_text_only),
      cmocka_unit_test(test_sandbox_deep_nesting_names_the_file),
      cmocka_unit_test(test_sandbox_environment),
      cmocka_unit_test(test_sandbox_budget_cannot_be_caught),
      cmocka_unit_test(test_sandbox_deadline_covers_c_work),
      cmocka_unit_test(test_sandbox_memory_cap),
      cmocka_unit_test(test_sandbox_bounded_library),
      cmocka_unit_test(test_sandbox_no_finalizers),
      cmocka_unit_test(test_sandbox_error_objects),
      cmocka_unit_test(test_sandbox_charge_elsewhere),
      cmocka_unit_test(test_sandbox_new_out_of_memory),
      cmocka_unit_test(test_sandbox_panic_is_reported),
      cmocka_unit_test(test_sandbox_read_file),
  };
  int failed = cmocka_run_group_tests_name("sandbox", tests, NULL, NULL);
  rmdir(tmpdir);
  return failed;
}
