/* SPDX-License-Identifier: MIT */
/* tests/test_pattern.c: the bounded pattern functions (sandbox/pattern.c)
 * against Lua 5.4's own: the same results and errors on hand-written and
 * generated cases, a budget error after bounded work on patterns that
 * backtrack without end, linear matches on a 1 MiB subject, gsub's size
 * limit and every malformed-pattern message. The sandbox's charge and
 * string limit are defined here, counting what the matcher charges. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "pattern.h"
#include "sandbox.h"

/* {=== The sandbox's side, counted ===} */

#define BUDGET_MSG "work budget exceeded"

static uint64_t charged;      /* units charged since the last reset */
static uint64_t charge_limit; /* raise once charged goes above */
static uint64_t largest;      /* largest single charge */
static size_t string_max = (size_t)1 << 20;

void strata__sandbox_charge(lua_State *L, uint64_t units) {
  charged += units;
  if (units > largest)
    largest = units;
  if (charged > charge_limit)
    luaL_error(L, BUDGET_MSG);
}

size_t strata__sandbox_string_max(lua_State *L) {
  (void)L;
  return string_max;
}

static void reset_meter(uint64_t limit, size_t smax) {
  charged = 0;
  largest = 0;
  charge_limit = limit;
  string_max = smax;
}

/* {=== Fixture: one state with both implementations ===}
 * `real` keeps Lua's functions; the string table gets ours, so method
 * calls on strings reach them. The driver runs one case with each and
 * returns ok1, result1, ok2, result2, results serialised to a string. */

static const char driver_src[] =
    "local real, mine = ...\n"
    "local pk = table.pack\n"
    "local T = {a = '[A]', b = false, ab = 1, [1] = 'one', [2] = 2.5,\n"
    "  x = {}, ['('] = 'P'}\n"
    "local function F(...)\n"
    "  local n = select('#', ...)\n"
    "  if n == 0 then return '()' end\n"
    "  local a = ...\n"
    "  if a == 'b' then return nil end\n"
    "  if a == 'x' then return {} end\n"
    "  if a == 'ab' then return false end\n"
    "  if a == '1' then return 7 end\n"
    "  return '<' .. table.concat(pk(...), ',', 1, n) .. '>'\n"
    "end\n"
    "local function collect(it)\n"
    "  local out = {}\n"
    "  for k = 1, 60 do\n"
    "    local t = pk(it())\n"
    "    if t[1] == nil then break end\n"
    "    out[k] = t\n"
    "  end\n"
    "  return out\n"
    "end\n"
    "local function ser(v)\n"
    "  local ty = type(v)\n"
    "  if ty == 'string' then return string.format('%q', v) end\n"
    "  if ty == 'number' then return math.type(v) .. ':' .. tostring(v) end\n"
    "  if ty ~= 'table' then return tostring(v) end\n"
    "  local out = {}\n"
    "  for i = 1, (v.n or #v) do out[i] = ser(v[i]) end\n"
    "  return '{' .. table.concat(out, ' ') .. '}'\n"
    "end\n"
    "local function call(S, op, s, p, init, repl)\n"
    "  if op == 'find' then return pk(S.find(s, p, init)) end\n"
    "  if op == 'findp' then return pk(S.find(s, p, init, true)) end\n"
    "  if op == 'match' then return pk(S.match(s, p, init)) end\n"
    "  if op == 'gmatch' then return pk(collect(S.gmatch(s, p, init))) end\n"
    "  if op == 'gsub' then return pk(S.gsub(s, p, repl, init)) end\n"
    "  if op == 'gsubt' then return pk(S.gsub(s, p, T, init)) end\n"
    "  if op == 'gsubf' then return pk(S.gsub(s, p, F, init)) end\n"
    "  error('unknown op ' .. op)\n"
    "end\n"
    "local function both(f)\n"
    "  local ok1, r1 = pcall(f, real)\n"
    "  local ok2, r2 = pcall(f, mine)\n"
    "  if ok1 then r1 = ser(r1) else r1 = tostring(r1) end\n"
    "  if ok2 then r2 = ser(r2) else r2 = tostring(r2) end\n"
    "  return ok1, r1, ok2, r2\n"
    "end\n"
    "return function(kind, a, ...)\n"
    "  if kind == 'expr' then\n"
    "    local f = assert(load('local S, collect, T, F, pk = ...; '\n"
    "      .. 'return pk(' .. a .. ')', '=case'))\n"
    "    return both(function(S) return f(S, collect, T, F, pk) end)\n"
    "  end\n"
    "  local args = pk(a, ...)\n"
    "  return both(function(S)\n"
    "    return call(S, args[1], args[2], args[3], args[4], args[5])\n"
    "  end)\n"
    "end\n";

typedef struct fixture {
  lua_State *L;
  int driver;           /* registry ref of the driver function */
  int compared, errors; /* cases compared, of which both raised */
} fixture_t;

static int setup(void **state) {
  fixture_t *fx = calloc(1, sizeof *fx);
  if (!fx)
    return -1;
  lua_State *L = luaL_newstate();
  if (!L) {
    free(fx);
    return -1;
  }
  luaL_openlibs(L);
  if (luaL_loadbufferx(L, driver_src, sizeof driver_src - 1, "=driver", "t") !=
      LUA_OK) {
    fprintf(stderr, "driver: %s\n", lua_tostring(L, -1));
    lua_close(L);
    free(fx);
    return -1;
  }
  /* real: a copy of the four functions before ours replace them */
  lua_newtable(L);
  lua_getglobal(L, "string");
  static const char *const names[] = {"find", "match", "gmatch", "gsub"};
  for (int i = 0; i < 4; i++) {
    lua_getfield(L, -1, names[i]);
    lua_setfield(L, -3, names[i]);
  }
  strata__pattern_open(L); /* string table on top */
  lua_newtable(L);         /* mine */
  for (int i = 0; i < 4; i++) {
    lua_getfield(L, -2, names[i]);
    lua_setfield(L, -2, names[i]);
  }
  lua_remove(L, -2); /* the string table */
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
    fprintf(stderr, "driver: %s\n", lua_tostring(L, -1));
    lua_close(L);
    free(fx);
    return -1;
  }
  fx->driver = luaL_ref(L, LUA_REGISTRYINDEX);
  fx->L = L;
  reset_meter(UINT64_MAX, (size_t)1 << 20);
  *state = fx;
  return 0;
}

static int teardown(void **state) {
  fixture_t *fx = *state;
  lua_close(fx->L);
  free(fx);
  return 0;
}

/* An error message without its "chunk:line: " prefix. */
static const char *unprefixed(const char *msg) {
  const char *colon = strchr(msg, ':'), *nl = strchr(msg, '\n');
  if (!colon || (nl && nl < colon))
    return msg;
  const char *q = colon + 1;
  if (*q < '0' || *q > '9')
    return msg;
  while (*q >= '0' && *q <= '9')
    q++;
  return q[0] == ':' && q[1] == ' ' ? q + 2 : msg;
}

/* Run the driver on the nargs arguments already pushed above it and
 * compare; `what` names the case in a failure. */
static void compare_pushed(fixture_t *fx, int nargs, const char *what) {
  lua_State *L = fx->L;
  reset_meter(UINT64_MAX, (size_t)1 << 20);
  if (lua_pcall(L, nargs, 4, 0) != LUA_OK)
    fail_msg("%s: driver failed: %s", what, lua_tostring(L, -1));
  bool ok1 = lua_toboolean(L, -4), ok2 = lua_toboolean(L, -2);
  const char *r1 = lua_tostring(L, -3), *r2 = lua_tostring(L, -1);
  if (ok1 != ok2 || (ok1 && strcmp(r1, r2) != 0) ||
      (!ok1 && strcmp(unprefixed(r1), unprefixed(r2)) != 0))
    fail_msg("%s:\n  lua:  %s %s\n  ours: %s %s", what, ok1 ? "ok" : "error",
             r1, ok2 ? "ok" : "error", r2);
  if (!ok1)
    fx->errors++;
  lua_pop(L, 4);
  fx->compared++;
}

static void compare_expr(fixture_t *fx, const char *expr) {
  lua_rawgeti(fx->L, LUA_REGISTRYINDEX, fx->driver);
  lua_pushliteral(fx->L, "expr");
  lua_pushstring(fx->L, expr);
  compare_pushed(fx, 2, expr);
}

#define NO_INIT INT32_MIN

static void compare_call(fixture_t *fx, const char *op, const char *s,
                         const char *p, int32_t init, const char *repl) {
  lua_State *L = fx->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, fx->driver);
  lua_pushliteral(L, "call");
  lua_pushstring(L, op);
  lua_pushstring(L, s);
  lua_pushstring(L, p);
  if (init == NO_INIT)
    lua_pushnil(L);
  else
    lua_pushinteger(L, init);
  if (repl)
    lua_pushstring(L, repl);
  else
    lua_pushnil(L);
  char what[256];
  snprintf(what, sizeof what, "%s(\"%s\", \"%s\", %d, \"%s\")", op, s, p,
           (int)init, repl ? repl : "nil");
  compare_pushed(fx, 6, what);
}

/* {=== Differential: hand-written cases ===} */

static const char *const hand_cases[] = {
    /* plain find and its init */
    "S.find('hello world', 'o w')", "S.find('hello', '')",
    "S.find('hello', '', 6)", "S.find('hello', '', 7)",
    "S.find('hello', 'l', -2)", "S.find('hello', 'l', -100)",
    "S.find('hello', 'l', 0)", "S.find('a.b', '.', 1, true)",
    "S.find('a+b', '+', 1, true)", "S.find('a]b', ']')", "S.find('a)b', ')')",
    "S.find('abc', 'c', 10)", "S.find('a\\0b', '\\0')",
    "S.find('a\\0b', '\\0b', 1, true)", "S.find('aaab', 'aab')",
    "S.find('', '')", "S.find('', 'a')", "S.find('abc', 'abcd')",
    "S.find('abc', 'b', 2, false)", "S.find('abc', 'b', 2.0)", "S.find(123, 2)",
    /* classes and their complements */
    "S.find('x1 y\\t!', '%d')", "S.find('abc1', '%D+')",
    "S.match('  ab12', '%s*(%a+)(%d+)')", "S.match('ABcd', '%u+')",
    "S.match('ABcd', '%l+')", "S.match('a!,b', '%p+')",
    "S.match('\\1\\2a', '%c+')", "S.match('ab_1 ', '%w+')",
    "S.match('0xfF', '0x(%x+)')", "S.match(' a b', '%g')",
    "S.match('a b', '%S+')", "S.match('abc', '%A')", "S.match('a', '%C')",
    "S.match('1a', '%W')", "S.match('zZ', '%U')", "S.match('zZ', '%L')",
    "S.match('%z', '%z')", "S.match('a.b', '%.')", "S.match('a%b', '%%')",
    "S.match('\\200\\255x', '[\\128-\\255]+')", "S.match('\\0', '%c')",
    "S.match('\\0a', '.')", "S.match('ab', '%G')", "S.match('a', '%X')",
    /* sets */
    "S.match('abc]d', '[]]')", "S.match('abc]d', '[^]]+')",
    "S.match('a-b', '[a-]+')", "S.match('a-b', '[-a]+')",
    "S.match('abcxyz', '[a-cx]+')", "S.match('a1_', '[%a%d_]+')",
    "S.match('a%b', '[%%]')", "S.match('a^b', '[b^]')",
    "S.match('a^b', '[%^]')", "S.match('z-', '[%a-z]+')",
    "S.match('abc', '[^a]')", "S.match('abc', '[c-a]')", "S.match(']', '[]')",
    "S.match('^', '[^]')", "S.match('a', '[a')", "S.match('a', '[a%')",
    "S.match('a', '[a%]')", "S.match('a', '[^')", "S.match('a', '[')",
    "S.match('a', '[]')", "S.match('a]', '[%]]')", "S.match('-', '[a-]')",
    "S.match('b', '[a-]')",
    /* quantifiers */
    "S.match('aaa', 'a*')", "S.match('aaa', 'a-')", "S.match('aaa', 'a-$')",
    "S.match('aaa', 'a+')", "S.match('', 'a+')", "S.match('ab', 'a?b')",
    "S.match('b', 'a?b')", "S.match('aab', 'a?ab')",
    "S.match('<a><b>', '<(.-)>')", "S.match('<a><b>', '<(.*)>')",
    "S.match('x', 'x*?')", "S.match('a*', 'a%*')", "S.match('++', '+')",
    "S.match('a', '*')", "S.match('a', 'a**')", "S.match('aa', '.-.-$')",
    "S.match('ab', '.?.?.?b')",
    /* anchors */
    "S.find('aab', '^b')", "S.find('aab', '^a')", "S.find('aab', 'b$')",
    "S.find('ab$', 'b$')", "S.find('a$b', '$b')", "S.find('ab', '^')",
    "S.find('ab', '$')", "S.find('ab', '^$')", "S.find('', '^$')",
    "S.find('a^b', 'a^')", "S.match('aab', '^a', 2)", "S.find('b', '^a*$')",
    "S.find('abc', '^abc$', 1)",
    /* captures and positions */
    "S.match('hello world', '(h)(e)(l)(l)(o)')", "S.find('abc', '(b)')",
    "S.find('abc', '()b()')", "S.match('abc', '()')",
    "S.match('abc', '(a)()(b)')", "S.match('abc', '((a)(b))')",
    "S.match('abc', '(a')", "S.find('abc', '(a')", "S.match('abc', 'a)')",
    "S.match('abc', '(()')", "S.match('abc', '(')", "S.match('abc', ')')",
    "S.match('abc', '(()())')", "S.match('', '()')", "S.find('', '()')",
    "S.match('a', ('(a)'):rep(32))", "S.match('a', ('(a)'):rep(33))",
    "S.match(('a'):rep(32), ('(a)'):rep(32))",
    "S.match(('a'):rep(33), ('(a)'):rep(33))", "S.match('a', ('('):rep(33))",
    /* back-references */
    "S.match('abab', '(ab)%1')", "S.match('abba', '(a)(b)%2%1')",
    "S.match('xaax', '(.)%1')", "S.find('abab', '(a)%1')", "S.match('a', '%1')",
    "S.match('a', '(a%1)')", "S.match('a', '%0')", "S.match('aa', '(a)%2')",
    "S.match('aa', '()%1')", "S.match('a\"b\"c', '([\"\\'])(.-)%1')",
    "S.match('==a==', '(=+)a%1')", "S.match('a', '(a)%9')",
    /* %b */
    "S.match('f(a(b)c)d', '%b()')", "S.match('f(a(b)c', '%b()')",
    "S.match('\"ab\"', '%b\"\"')", "S.match('x', '%b')", "S.match('x', '%bx')",
    "S.match('xy', '%bxy')", "S.match('[[]]]', '%b[]')",
    "S.find('((x)', '%b()')", "S.match('', '%b()')", "S.match(')(', '%b)(')",
    /* %f */
    "S.match('THE (quick) fox', '%f[%a]%a+')",
    "S.gsub('THE (quick) fox', '%f[%a]%w+', '[%0]')", "S.find('abc', '%f[%z]')",
    "S.find('abc', '%f[%Z]')", "S.find('abc', '%f[^%z]')",
    "S.find('a b', '%f[%s]')", "S.match('a', '%f')", "S.match('a', '%fa')",
    "S.match('a', '%f[a')", "S.find('', '%f[%z]')", "S.find('abc', '%f[c]')",
    "S.find('a\\0b', '%f[%z]')",
    /* errors in the pattern itself */
    "S.match('a', '%')", "S.match('a', 'a%')", "S.match('b', 'a%')",
    "S.find('', '[a')", "S.find('', '%')", "S.match('a', '(%1)')",
    "S.find(('a'):rep(300), ('a?'):rep(300))",
    "S.find(('a'):rep(150), ('a?'):rep(150))",
    "S.find(('a'):rep(199), ('a?'):rep(199))",
    "S.find(('a'):rep(200), ('a?'):rep(200))",
    "S.find(('a'):rep(50), ('(a)?'):rep(50))", "S.find('x', ('(a)?'):rep(250))",
    "S.match(('a'):rep(300), ('a*'):rep(300))",
    /* gmatch */
    "collect(S.gmatch('hello world from Lua', '%a+'))",
    "collect(S.gmatch('k1=v1, k2=v2', '(%w+)=(%w+)'))",
    "collect(S.gmatch('abc', ''))", "collect(S.gmatch('abc', '.-'))",
    "collect(S.gmatch('abc', 'x*'))", "collect(S.gmatch('abc', '()'))",
    "collect(S.gmatch('abc', '^a'))", "collect(S.gmatch('^a^a', '^a'))",
    "collect(S.gmatch('abcabc', 'b', 3))",
    "collect(S.gmatch('abcabc', 'b', -2))", "collect(S.gmatch('abc', '', 4))",
    "collect(S.gmatch('abc', '', 5))", "collect(S.gmatch('abc', '', 100))",
    "collect(S.gmatch('abc', '', -100))", "collect(S.gmatch('abc', '(a'))",
    "collect(S.gmatch('abc', '[a'))", "collect(S.gmatch('a,b,,c', '([^,]*)'))",
    "collect(S.gmatch('aaa', 'a-b'))", "collect(S.gmatch('', ''))",
    "collect(S.gmatch(12345, 3))",
    /* gsub: strings */
    "S.gsub('hello world', 'o', '0')", "S.gsub('hello', '', '-')",
    "S.gsub('hello world', '(%w+)', '<%1>')",
    "S.gsub('hello world', '%w+', '%0 %0', 1)", "S.gsub('abc', '%w', '%%')",
    "S.gsub('abc', '%w', '%')", "S.gsub('abc', '%w', '%x')",
    "S.gsub('abc', '%w', '%2')", "S.gsub('abc', '(%w)', '%2')",
    "S.gsub('abc', '(%w)', '%1%0%1')", "S.gsub('abc', '()', '%1')",
    "S.gsub('abc', '(b)()', '%2')", "S.gsub('abc', '(', 'x')",
    "S.gsub('abc', '(', '%1')", "S.gsub('abc', '^a', 'x')",
    "S.gsub('abc', '^', 'x')", "S.gsub('abc', '$', 'x')",
    "S.gsub('abc', '^b', 'x')", "S.gsub('abc', 'b*', '-')",
    "S.gsub('abc', '.', 'x', 0)", "S.gsub('abc', '.', 'x', -1)",
    "S.gsub('abc', '.', 'x', 2)", "S.gsub('abc', '.', 'x', 2.0)",
    "S.gsub('abc', '.', 'x', 2.5)", "S.gsub('abc', '.', 'x', '2')",
    "S.gsub('abc', 'b', 5)", "S.gsub('abc', 'b', 1.5)",
    "S.gsub('abc', 'x', 'y')", "S.gsub('abc', 'b', '%1')",
    "S.gsub('a\\0c', '%z', 'Z')", "S.gsub('a\\0c', '\\0', '%%0')",
    "S.gsub('abc', 'b', 'x\\0y')", "S.gsub('abc', 'b', '%\\0')",
    "S.gsub('', '', '')", "S.gsub('', 'x*', 'y')", "S.gsub('abc', '', '', 2)",
    /* gsub: tables and functions */
    "S.gsub('a b ab x (', '%S+', T)", "S.gsub('a b ab', '(%w+)', T)",
    "S.gsub('abc', '()', T)", "S.gsub('abc', '()b', T)", "S.gsub('x', 'x', T)",
    "S.gsub('abc', '(a', T)", "S.gsub('a b ab q', '%w+', F)",
    "S.gsub('a=1, b=2', '(%w+)=(%w+)', F)", "S.gsub('abc', '()', F)",
    "S.gsub('x', 'x', F)", "S.gsub('1 2', '%d', F)", "S.gsub('abc', '(a', F)",
    "S.gsub('abc', '%w', function() return true end)",
    "S.gsub('abc', '%w', function() error('boom') end)",
    "S.gsub('abc', '%w', function(c) return S.gsub(c, '.', '%0%0') end)",
    "S.gsub('abc', '%w', setmetatable({}, {__index = function(_, k) "
    "return k:upper() end}))",
    /* argument errors */
    "S.gsub('abc', 'b')", "S.gsub('abc', 'b', true)", "S.gsub('abc')",
    "S.gsub('abc', 'b', 'x', 'y')", "S.gsub('abc', 'b', nil, 'y')", "S.find()",
    "S.find('a')", "S.find('a', {})", "S.find('a', 'a', 'x')",
    "S.find('a', 'a', 1.5)", "S.match('a', 'a', {})", "S.gmatch()",
    "S.gmatch('a', 'a', 'x')", "S.find({}, 'a')",
    /* methods on strings reach the string table */
    "('hello'):find('l')", "('hello'):gsub('l', 'L')",
    "('x=1'):match('(%w)=(%d)')", NULL};

static void test_pattern_hand_written(void **state) {
  fixture_t *fx = *state;
  for (int i = 0; hand_cases[i]; i++)
    compare_expr(fx, hand_cases[i]);
  assert_true(fx->compared > 250);
  assert_true(fx->errors > 40);
}

/* {=== Differential: generated cases ===} */

static uint32_t rng_state;

static uint32_t rnd(uint32_t n) {
  rng_state = rng_state * 1103515245u + 12345u;
  return (rng_state >> 16) % n;
}

static void gen_pattern(char *out, size_t cap) {
  static const char *const atoms[] = {
      "a",     "b",    ".",     "%a",     "%d", "%A", "[ab]", "[^a]",
      "[a-c]", "%%",   "%(",    "(",      ")",  "()", "%1",   "%2",
      "%b()",  "%bab", "%f[a]", "%f[^a]", "$",  "^",  "(a)",  "(.-)",
      "[%a]",  "1",    "(",     "[",      "%",  "%f", "[]a]", "%s"};
  static const char *const quants[] = {"", "", "", "*", "+", "-", "?"};
  size_t len = 0;
  out[0] = '\0';
  if (rnd(4) == 0)
    out[len++] = '^';
  int n = 1 + (int)rnd(5);
  for (int i = 0; i < n; i++) {
    const char *a = atoms[rnd(sizeof atoms / sizeof *atoms)];
    const char *q = quants[rnd(sizeof quants / sizeof *quants)];
    if (len + strlen(a) + strlen(q) + 1 >= cap)
      break;
    memcpy(out + len, a, strlen(a));
    len += strlen(a);
    memcpy(out + len, q, strlen(q));
    len += strlen(q);
  }
  out[len] = '\0';
}

static void gen_subject(char *out) {
  static const char alphabet[] = "aab()1 ";
  int n = (int)rnd(9);
  for (int i = 0; i < n; i++)
    out[i] = alphabet[rnd(sizeof alphabet - 1)];
  out[n] = '\0';
}

static void test_pattern_generated(void **state) {
  fixture_t *fx = *state;
  static const char *const repls[] = {"x",  "%0%0", "<%1>", "%%",
                                      "%2", "%",    "",     "[%1|%0]"};
  rng_state = 20240601u;
  for (int i = 0; i < 500; i++) {
    char p[64], s[16];
    gen_pattern(p, sizeof p);
    gen_subject(s);
    int32_t init = rnd(3) == 0 ? (int32_t)rnd(13) - 4 : NO_INIT;
    compare_call(fx, "find", s, p, init, NULL);
    compare_call(fx, "match", s, p, init, NULL);
    compare_call(fx, "gmatch", s, p, init, NULL);
    int32_t max_n = rnd(3) == 0 ? (int32_t)rnd(5) - 1 : NO_INIT;
    compare_call(fx, "gsub", s, p, max_n,
                 repls[rnd(sizeof repls / sizeof *repls)]);
    if (i % 4 == 0) {
      compare_call(fx, "gsubt", s, p, max_n, NULL);
      compare_call(fx, "gsubf", s, p, max_n, NULL);
    }
    if (i % 8 == 0) /* the pattern as a literal string */
      compare_call(fx, "findp", s, p, init, NULL);
  }
  assert_true(fx->compared >= 2000);
  assert_true(fx->errors > 100 && fx->errors < fx->compared / 2);
}

/* {=== Bounded work ===} */

/* Run src in the fixture's state under a budget of `limit` units and
 * return whether it succeeded; the message is left in msg. */
static bool run_budget(fixture_t *fx, const char *src, uint64_t limit,
                       size_t smax, char *msg, size_t msglen) {
  lua_State *L = fx->L;
  assert_int_equal(luaL_loadbufferx(L, src, strlen(src), "=budget", "t"),
                   LUA_OK);
  reset_meter(limit, smax);
  int rc = lua_pcall(L, 0, 1, 0);
  snprintf(msg, msglen, "%s",
           lua_tostring(L, -1) ? lua_tostring(L, -1) : "(no message)");
  lua_pop(L, 1);
  charge_limit = UINT64_MAX; /* charged stays for the caller to read */
  string_max = (size_t)1 << 20;
  return rc == LUA_OK;
}

static double cpu_seconds(void) { return (double)clock() / CLOCKS_PER_SEC; }

static void test_pattern_catastrophic(void **state) {
  fixture_t *fx = *state;
  static const char *const bombs[] = {
      "return string.find(string.rep('a', 4000), '.-.-.-.-b')",
      "return string.find(string.rep('a', 4000), '(.-)(.-)(.-)(.-)b')",
      "return string.find(string.rep('a', 4000), 'a*a*a*a*a*b')",
      "return string.find(string.rep('a', 4000), '.-a*.-a*.-b')",
      "return string.match(string.rep('a', 4000), '(a-)(a*)(a-)%1%2b')",
      "return string.find(string.rep('(', 100000), '%b()')",
      "return string.gsub(string.rep('a', 100000), 'a-b', '')",
      "local n = 0; for _ in string.gmatch(string.rep('a', 4000), "
      "'.-.-.-b') do n = n + 1 end; return n",
      "return string.find(string.rep('a', 1 << 20), "
      "string.rep('a', 5000) .. 'b', 1, true)",
      "return string.find(string.rep('ab', 50000), "
      "'[' .. string.rep('c', 3000) .. ']')",
      NULL};
  const uint64_t limit = 2000000;
  for (int i = 0; bombs[i]; i++) {
    char msg[256];
    double t0 = cpu_seconds();
    bool ok = run_budget(fx, bombs[i], limit, (size_t)1 << 20, msg, sizeof msg);
    double dt = cpu_seconds() - t0;
    if (ok || !strstr(msg, BUDGET_MSG))
      fail_msg("%s: expected the budget error, got %s", bombs[i], msg);
    /* the charge that went over came in a chunk of bounded size */
    assert_true(charged <= limit + 4096);
    if (dt > 2.0)
      fail_msg("%s: %.2f s of CPU before the budget error", bombs[i], dt);
  }
}

/* A search of a 1 MiB subject that takes linear work succeeds within a
 * large budget, and is charged linearly, not by its backtracking. */
static void test_pattern_linear_megabyte(void **state) {
  fixture_t *fx = *state;
  static const char *const scans[] = {
      "local s = string.rep('a', 1 << 20) .. 'b'\n"
      "local i, j = s:find('a*b'); assert(i == 1 and j == #s)\n"
      "return 1",
      "local s = string.rep('x', 1 << 20) .. 'needle'\n"
      "assert(s:find('needle', 1, true) == (1 << 20) + 1)\n"
      "assert(s:find('ne+dle') == (1 << 20) + 1)\n"
      "return 1",
      "local s = string.rep('ab ', 1 << 18)\n"
      "local r, n = s:gsub('%a+', '%0')\n"
      "assert(n == 1 << 18 and r == s)\n"
      "return 1",
      "local s = string.rep('k=v;', 1 << 18); local n = 0\n"
      "for k, v in s:gmatch('(%w+)=(%w+)') do n = n + 1 end\n"
      "assert(n == 1 << 18)\n"
      "return 1",
      NULL};
  for (int i = 0; scans[i]; i++) {
    char msg[256];
    if (!run_budget(fx, scans[i], 100000000, (size_t)1 << 21, msg, sizeof msg))
      fail_msg("scan %d: %s", i, msg);
    /* a few units per subject byte, not n^2 */
    assert_true(charged < UINT64_C(16) << 20);
    assert_true(charged > 0);
  }
}

/* Results are charged (bytes/64) even when matching is cheap, and gsub
 * refuses to build a result above the string limit. */
static void test_pattern_results(void **state) {
  fixture_t *fx = *state;
  char msg[256];
  assert_true(run_budget(fx,
                         "local r = string.gsub('', '^', "
                         "string.rep('z', 640000)); return #r",
                         UINT64_MAX, (size_t)1 << 20, msg, sizeof msg));
  assert_true(charged >= 10000);

  assert_false(run_budget(fx,
                          "return string.gsub(string.rep('a', 600), "
                          "'a', 'bb')",
                          UINT64_MAX, 1000, msg, sizeof msg));
  assert_non_null(strstr(msg, "result of string.gsub larger than 1000 bytes"));
  assert_false(run_budget(fx,
                          "return string.gsub('abc', '%w', "
                          "function() return string.rep('q', 2000) end)",
                          UINT64_MAX, 1000, msg, sizeof msg));
  assert_non_null(strstr(msg, "result of string.gsub larger than 1000 bytes"));
  /* exactly at the limit, and an unchanged subject above it, pass */
  assert_true(run_budget(fx,
                         "return #string.gsub(string.rep('a', 500), "
                         "'a', 'bb')",
                         UINT64_MAX, 1000, msg, sizeof msg));
  assert_string_equal(msg, "1000");
  assert_true(run_budget(fx,
                         "return #string.gsub(string.rep('a', 5000), "
                         "'a', {})",
                         UINT64_MAX, 1000, msg, sizeof msg));
  assert_string_equal(msg, "5000");
}

/* {=== Errors ===} */

static void expect_error(fixture_t *fx, const char *src, const char *want) {
  char msg[256];
  if (run_budget(fx, src, UINT64_MAX, (size_t)1 << 20, msg, sizeof msg))
    fail_msg("%s: succeeded, expected \"%s\"", src, want);
  if (strcmp(unprefixed(msg), want) != 0)
    fail_msg("%s: got \"%s\", expected \"%s\"", src, unprefixed(msg), want);
}

static void test_pattern_errors(void **state) {
  fixture_t *fx = *state;
  static const char *const cases[][2] = {
      {"string.find('a', 'a%')", "malformed pattern (ends with '%')"},
      {"string.find('a', '[a')", "malformed pattern (missing ']')"},
      {"string.find('a', '[^')", "malformed pattern (missing ']')"},
      {"string.find('a', '%b(')",
       "malformed pattern (missing arguments to '%b')"},
      {"string.find('a', '%fa')", "missing '[' after '%f' in pattern"},
      {"string.find('a', '(a)%2')", "invalid capture index %2"},
      {"string.find('a', '%1')", "invalid capture index %1"},
      {"string.find('a', '(%1)')", "invalid capture index %1"},
      {"string.match('a', 'a)')", "invalid pattern capture"},
      {"string.find('a', '(a')", "unfinished capture"},
      {"string.find('a', string.rep('(', 33))", "too many captures"},
      {"string.find(string.rep('a', 300), string.rep('a?', 300))",
       "pattern too complex"},
      {"string.gsub('a', 'a', '%2')", "invalid capture index %2"},
      {"string.gsub('a', 'a', '%')",
       "invalid use of '%' in replacement string"},
      {"string.gsub('a', 'a', '%y')",
       "invalid use of '%' in replacement string"},
      {"string.gsub('a', 'a', {a = {}})",
       "invalid replacement value (a table)"},
      {"string.gsub('a', 'a', function() return print end)",
       "invalid replacement value (a function)"},
      {"string.gsub('a', 'a')",
       "bad argument #3 to 'gsub' (string/function/table expected, got no "
       "value)"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char src[256];
    snprintf(src, sizeof src, "return (%s)", cases[i][0]);
    expect_error(fx, src, cases[i][1]);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_pattern_hand_written, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_pattern_generated, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pattern_catastrophic, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_pattern_linear_megabyte, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_pattern_results, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pattern_errors, setup, teardown),
  };
  return cmocka_run_group_tests_name("pattern", tests, NULL, NULL);
}
