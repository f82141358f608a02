/* SPDX-License-Identifier: MIT */
/* sandbox/pattern.c: Lua 5.4 pattern matching for sandboxed scripts, a
 * backtracking matcher like Lua's (same results, same errors, same
 * recursion limit) that counts its steps and charges them to the budget
 * of the call, so that its cost is bounded by the work it does rather
 * than by the length of the subject. See pattern.h for the contract. */
#include "config.h"

#include "pattern.h"
#include "sandbox.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

enum {
  MAX_CAPTURES = 32, /* Lua's LUA_MAXCAPTURES */
  MAX_DEPTH = 200,   /* Lua's MAXCCALLS for the matcher */
  CHARGE_EVERY = 256 /* units gathered before each charge */
};

/* Capture lengths that are not lengths. */
#define CAP_OPEN ((ptrdiff_t)-1) /* "(" seen, ")" not yet */
#define CAP_POS ((ptrdiff_t)-2)  /* "()": a position */

typedef struct capture {
  const char *at;
  ptrdiff_t len; /* bytes, or CAP_OPEN, CAP_POS */
} capture_t;

/* One matching run over one subject and one pattern. */
typedef struct matcher {
  lua_State *L;
  const char *subj, *subj_end;
  const char *pat, *pat_end;
  int depth_left; /* nested do_match calls still allowed */
  int ncap;       /* captures opened so far */
  uint64_t units; /* work not yet charged */
  capture_t cap[MAX_CAPTURES];
} matcher_t;

/* {=== Charging ===} */

static void flush(matcher_t *m) {
  if (m->units) {
    uint64_t u = m->units;
    m->units = 0;
    strata__sandbox_charge(m->L, u);
  }
}

static void work(matcher_t *m, uint64_t units) {
  m->units += units;
  if (m->units >= CHARGE_EVERY)
    flush(m);
}

static void prepare(matcher_t *m, lua_State *L, const char *s, size_t ls,
                    const char *p, size_t lp) {
  m->L = L;
  m->subj = s;
  m->subj_end = s + ls;
  m->pat = p;
  m->pat_end = p + lp;
  m->units = 0;
  m->depth_left = MAX_DEPTH;
  m->ncap = 0;
}

/* Before each attempt at a new start position. */
static void restart(matcher_t *m) {
  m->depth_left = MAX_DEPTH;
  m->ncap = 0;
}

/* {=== Single items ===}
 * Lua reads the NUL that ends every Lua string past the end of both
 * pattern and subject; these two give that byte without reading past. */

static int pat_at(const matcher_t *m, const char *p) {
  return p < m->pat_end ? (unsigned char)*p : 0;
}

static int subj_at(const matcher_t *m, const char *s) {
  return s < m->subj_end ? (unsigned char)*s : 0;
}

/* Whether c is in class cl (the letter after '%'); an upper-case class
 * letter is the complement, any other byte stands for itself. */
static bool in_class(int c, int cl) {
  bool r;
  switch (tolower(cl)) {
  case 'a':
    r = isalpha(c);
    break;
  case 'c':
    r = iscntrl(c);
    break;
  case 'd':
    r = isdigit(c);
    break;
  case 'g':
    r = isgraph(c);
    break;
  case 'l':
    r = islower(c);
    break;
  case 'p':
    r = ispunct(c);
    break;
  case 's':
    r = isspace(c);
    break;
  case 'u':
    r = isupper(c);
    break;
  case 'w':
    r = isalnum(c);
    break;
  case 'x':
    r = isxdigit(c);
    break;
  case 'z':
    r = c == 0;
    break; /* deprecated in 5.2, still in 5.4 */
  default:
    return cl == c;
  }
  return isupper(cl) ? !r : r;
}

/* Whether c is in the set that opens at p ('[') and closes at close
 * (its ']'). */
static bool in_set(int c, const char *p, const char *close) {
  bool in = true;
  const char *q = p + 1;
  if (*q == '^') {
    in = false;
    q++;
  }
  while (q < close) {
    if (*q == '%') {
      if (in_class(c, (unsigned char)q[1]))
        return in;
      q += 2;
    } else if (q[1] == '-' && q + 2 < close) {
      if ((unsigned char)q[0] <= c && c <= (unsigned char)q[2])
        return in;
      q += 3;
    } else {
      if ((unsigned char)*q == c)
        return in;
      q++;
    }
  }
  return !in;
}

/* The end of the single item at p (where its quantifier would be).
 * Raises on a pattern ending in '%' or a set without its ']'. The first
 * byte of a set belongs to it, so "[]]" and "[^]]" are sets of ']'. */
static const char *item_end(matcher_t *m, const char *p) {
  const char *start = p;
  int c = (unsigned char)*p++;
  if (c == '%') {
    if (p == m->pat_end)
      luaL_error(m->L, "malformed pattern (ends with '%%')");
    return p + 1;
  }
  if (c != '[')
    return p;
  if (pat_at(m, p) == '^')
    p++;
  do {
    if (p == m->pat_end)
      luaL_error(m->L, "malformed pattern (missing ']')");
    c = (unsigned char)*p++;
    if (c == '%' && p < m->pat_end)
      p++;
  } while (pat_at(m, p) != ']');
  work(m, (uint64_t)(p - start) >> 4);
  return p + 1;
}

/* Whether the item p..ep matches the byte at s. */
static bool single(matcher_t *m, const char *s, const char *p, const char *ep) {
  work(m, 1);
  if (s >= m->subj_end)
    return false;
  int c = (unsigned char)*s;
  switch (*p) {
  case '.':
    return true;
  case '%':
    return in_class(c, (unsigned char)p[1]);
  case '[':
    work(m, (uint64_t)(ep - p) >> 4); /* a long set is a long scan */
    return in_set(c, p, ep - 1);
  default:
    return (unsigned char)*p == c;
  }
}

/* {=== Special items: %b, %f, back-references ===} */

/* %bxy at s, p pointing at x: the end of the balanced run, or NULL. */
static const char *balance(matcher_t *m, const char *s, const char *p) {
  if (m->pat_end - p < 2)
    luaL_error(m->L, "malformed pattern (missing arguments to '%%b')");
  if (s >= m->subj_end || *s != *p)
    return NULL;
  char open = p[0], close = p[1];
  size_t depth = 1;
  while (++s < m->subj_end) {
    work(m, 1);
    if (*s == close) {
      if (--depth == 0)
        return s + 1;
    } else if (*s == open) {
      depth++;
    }
  }
  return NULL;
}

/* %f[set] at s, *pp pointing at '%': on a frontier, moves *pp past the
 * set and returns true. */
static bool frontier(matcher_t *m, const char *s, const char **pp) {
  const char *p = *pp + 2;
  if (pat_at(m, p) != '[')
    luaL_error(m->L, "missing '[' after '%%f' in pattern");
  const char *ep = item_end(m, p);
  int before = s == m->subj ? 0 : (unsigned char)s[-1];
  work(m, 2 + ((uint64_t)(ep - p) >> 3));
  if (in_set(before, p, ep - 1) || !in_set(subj_at(m, s), p, ep - 1))
    return false;
  *pp = ep;
  return true;
}

/* %1-%9 (digit d) at s: past the repeated text, or NULL. */
static const char *backref(matcher_t *m, const char *s, int d) {
  int i = d - '1';
  if (i < 0 || i >= m->ncap || m->cap[i].len == CAP_OPEN)
    luaL_error(m->L, "invalid capture index %%%d", i + 1);
  ptrdiff_t len = m->cap[i].len;
  if (len == CAP_POS) /* a position never repeats as text */
    return NULL;
  work(m, 1 + ((uint64_t)len >> 4));
  if ((size_t)(m->subj_end - s) < (size_t)len ||
      memcmp(m->cap[i].at, s, (size_t)len) != 0)
    return NULL;
  return s + len;
}

/* {=== The matcher ===}
 * do_match recurses where it must remember a choice (?, *, -, +) or a
 * capture to undo, as Lua's does, so that the depth limit and its error
 * fall where Lua's do; anything else loops. */

static const char *do_match(matcher_t *m, const char *s, const char *p);

static const char *greedy(matcher_t *m, const char *s, const char *p,
                          const char *ep) {
  size_t n = 0;
  while (single(m, s + n, p, ep))
    n++;
  for (;;) {
    const char *r = do_match(m, s + n, ep + 1);
    if (r || n == 0)
      return r;
    n--;
  }
}

static const char *lazy(matcher_t *m, const char *s, const char *p,
                        const char *ep) {
  for (;;) {
    const char *r = do_match(m, s, ep + 1);
    if (r)
      return r;
    if (!single(m, s, p, ep))
      return NULL;
    s++;
  }
}

/* "(" or "()" at p. */
static const char *open_capture(matcher_t *m, const char *s, const char *p) {
  ptrdiff_t what = CAP_OPEN;
  const char *next = p + 1;
  if (pat_at(m, next) == ')') {
    what = CAP_POS;
    next++;
  }
  if (m->ncap >= MAX_CAPTURES)
    luaL_error(m->L, "too many captures");
  m->cap[m->ncap].at = s;
  m->cap[m->ncap].len = what;
  m->ncap++;
  const char *r = do_match(m, s, next);
  if (!r)
    m->ncap--;
  return r;
}

/* ")" just before next: closes the innermost open capture. */
static const char *close_capture(matcher_t *m, const char *s,
                                 const char *next) {
  int i = m->ncap - 1;
  while (i >= 0 && m->cap[i].len != CAP_OPEN)
    i--;
  if (i < 0)
    luaL_error(m->L, "invalid pattern capture");
  m->cap[i].len = s - m->cap[i].at;
  const char *r = do_match(m, s, next);
  if (!r)
    m->cap[i].len = CAP_OPEN;
  return r;
}

/* Match the pattern from p against the subject from s: the end of the
 * match, or NULL. */
static const char *do_match(matcher_t *m, const char *s, const char *p) {
  if (m->depth_left-- == 0)
    luaL_error(m->L, "pattern too complex");
  while (s && p != m->pat_end) {
    work(m, 1);
    int c = (unsigned char)*p;
    if (c == '(') {
      s = open_capture(m, s, p);
      break;
    }
    if (c == ')') {
      s = close_capture(m, s, p + 1);
      break;
    }
    if (c == '$' && p + 1 == m->pat_end) {
      if (s != m->subj_end)
        s = NULL;
      break;
    }
    if (c == '%') {
      int d = pat_at(m, p + 1);
      if (d == 'b') {
        s = balance(m, s, p + 2);
        p += 4;
        continue;
      }
      if (d == 'f') {
        if (!frontier(m, s, &p))
          s = NULL;
        continue;
      }
      if (d >= '0' && d <= '9') {
        s = backref(m, s, d);
        p += 2;
        continue;
      }
    }
    const char *ep = item_end(m, p);
    int q = pat_at(m, ep);
    if (!single(m, s, p, ep)) {
      if (q == '*' || q == '?' || q == '-') {
        p = ep + 1; /* zero repetitions will do */
        continue;
      }
      s = NULL;
      break;
    }
    if (q == '?') {
      const char *r = do_match(m, s + 1, ep + 1);
      if (r) {
        s = r;
        break;
      }
      p = ep + 1;
      continue;
    }
    if (q == '*' || q == '+') {
      s = greedy(m, q == '+' ? s + 1 : s, p, ep);
      break;
    }
    if (q == '-') {
      s = lazy(m, s, p, ep);
      break;
    }
    s++;
    p = ep;
  }
  m->depth_left++;
  return s;
}

/* {=== Captures as values ===} */

/* Capture i of the match s..e (capture 0 is the whole match when the
 * pattern has none): sets *at and *len and returns false, or returns
 * true and sets *pos for a position capture. */
static bool capture_of(matcher_t *m, int i, const char *s, const char *e,
                       const char **at, size_t *len, lua_Integer *pos) {
  if (i >= m->ncap) {
    if (i != 0)
      luaL_error(m->L, "invalid capture index %%%d", i + 1);
    *at = s;
    *len = (size_t)(e - s);
    return false;
  }
  const capture_t *c = &m->cap[i];
  if (c->len == CAP_OPEN)
    luaL_error(m->L, "unfinished capture");
  if (c->len == CAP_POS) {
    *pos = (lua_Integer)(c->at - m->subj) + 1;
    return true;
  }
  *at = c->at;
  *len = (size_t)c->len;
  return false;
}

static void push_capture(matcher_t *m, int i, const char *s, const char *e) {
  const char *at;
  size_t len;
  lua_Integer pos;
  if (capture_of(m, i, s, e, &at, &len, &pos)) {
    lua_pushinteger(m->L, pos);
  } else {
    work(m, len >> 6);
    lua_pushlstring(m->L, at, len);
  }
}

/* Push every capture (or the whole match s..e if there is none and s is
 * not NULL); returns how many. */
static int push_captures(matcher_t *m, const char *s, const char *e) {
  int n = (m->ncap == 0 && s) ? 1 : m->ncap;
  luaL_checkstack(m->L, n, "too many captures");
  for (int i = 0; i < n; i++)
    push_capture(m, i, s, e);
  return n;
}

/* {=== find and match ===} */

/* Lua's rule for a start position: negative counts from the end, and
 * anything before the start clips to 1. The result is 1-based. */
static size_t start_pos(lua_Integer pos, size_t len) {
  if (pos > 0)
    return (size_t)pos;
  if (pos == 0 || pos < -(lua_Integer)len)
    return 1;
  return len + (size_t)pos + 1;
}

static bool has_specials(const char *p, size_t lp) {
  static const char specials[] = "^$*+?.([%-";
  for (size_t i = 0; i < lp; i++)
    if (memchr(specials, p[i], sizeof specials - 1))
      return true;
  return false;
}

/* The first occurrence of n (nl bytes) in h (hl bytes), or NULL. Charged
 * by the bytes it scans and compares: a needle that keeps almost
 * matching costs what it costs, not a hang. */
static const char *plain_find(matcher_t *m, const char *h, size_t hl,
                              const char *n, size_t nl) {
  if (nl == 0)
    return h;
  if (nl > hl)
    return NULL;
  const char *at = h, *last = h + (hl - nl);
  while (at <= last) {
    const char *hit = memchr(at, *n, (size_t)(last - at) + 1);
    if (!hit) {
      work(m, (uint64_t)(last - at) >> 4);
      return NULL;
    }
    work(m, 1 + ((uint64_t)(hit - at) >> 4) + (nl >> 4));
    if (memcmp(hit + 1, n + 1, nl - 1) == 0)
      return hit;
    at = hit + 1;
  }
  return NULL;
}

static int find_or_match(lua_State *L, bool find) {
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  size_t init = start_pos(luaL_optinteger(L, 3, 1), ls) - 1;
  if (init > ls) {
    luaL_pushfail(L);
    return 1;
  }
  matcher_t m;
  prepare(&m, L, s, ls, p, lp);
  work(&m, lp >> 6);
  if (find && (lua_toboolean(L, 4) || !has_specials(p, lp))) {
    const char *hit = plain_find(&m, s + init, ls - init, p, lp);
    flush(&m);
    if (!hit) {
      luaL_pushfail(L);
      return 1;
    }
    lua_pushinteger(L, (lua_Integer)(hit - s) + 1);
    lua_pushinteger(L, (lua_Integer)(hit - s + lp));
    return 2;
  }
  bool anchored = lp > 0 && *p == '^';
  if (anchored)
    m.pat++;
  for (const char *at = s + init;; at++) {
    restart(&m);
    const char *e = do_match(&m, at, m.pat);
    if (e) {
      int n;
      if (find) {
        lua_pushinteger(L, (lua_Integer)(at - s) + 1);
        lua_pushinteger(L, (lua_Integer)(e - s));
        n = push_captures(&m, NULL, NULL) + 2;
      } else {
        n = push_captures(&m, at, e);
      }
      flush(&m);
      return n;
    }
    if (anchored || at >= m.subj_end)
      break;
  }
  flush(&m);
  luaL_pushfail(L);
  return 1;
}

static int str_find(lua_State *L) { return find_or_match(L, true); }

static int str_match(lua_State *L) { return find_or_match(L, false); }

/* {=== gmatch ===} */

typedef struct gmatch_state {
  matcher_t m;
  size_t pos;       /* where the next search starts; > length: done */
  const char *last; /* end of the previous match: no empty match there */
} gmatch_state_t;

static int gmatch_next(lua_State *L) {
  gmatch_state_t *g = lua_touserdata(L, lua_upvalueindex(3));
  matcher_t *m = &g->m;
  m->L = L;
  size_t len = (size_t)(m->subj_end - m->subj);
  for (; g->pos <= len; g->pos++) {
    const char *at = m->subj + g->pos;
    restart(m);
    const char *e = do_match(m, at, m->pat);
    if (e && e != g->last) {
      g->pos = (size_t)(e - m->subj);
      g->last = e;
      int n = push_captures(m, at, e);
      flush(m);
      return n;
    }
  }
  flush(m);
  return 0;
}

static int str_gmatch(lua_State *L) {
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  size_t init = start_pos(luaL_optinteger(L, 3, 1), ls) - 1;
  lua_settop(L, 2); /* the closure keeps both strings alive */
  gmatch_state_t *g = lua_newuserdatauv(L, sizeof *g, 0);
  prepare(&g->m, L, s, ls, p, lp);
  g->pos = init > ls ? ls + 1 : init;
  g->last = NULL;
  lua_pushcclosure(L, gmatch_next, 3);
  return 1;
}

/* {=== gsub ===}
 * The result grows in a userdata at a fixed stack slot rather than a
 * luaL_Buffer, so that text can be appended while a replacement value
 * sits on top of the stack, and so that its size is checked before it
 * grows. Unreplaced text is appended lazily: a gsub that changes nothing
 * builds nothing. */

typedef struct output {
  matcher_t *m;
  int slot;   /* stack index of the userdata holding data */
  char *data; /* NULL until the first byte */
  size_t len, cap, max;
} output_t;

static void emit(output_t *o, const char *s, size_t n) {
  lua_State *L = o->m->L;
  if (n > o->max - o->len)
    luaL_error(L, "result of string.gsub larger than %I bytes",
               (lua_Integer)o->max);
  work(o->m, n >> 6);
  if (n > o->cap - o->len) {
    size_t cap = o->cap ? o->cap : 64;
    while (cap - o->len < n)
      cap = cap > o->max / 2 ? o->max : cap * 2;
    char *data = lua_newuserdatauv(L, cap, 0);
    if (o->len)
      memcpy(data, o->data, o->len);
    lua_replace(L, o->slot);
    o->data = data;
    o->cap = cap;
  }
  if (n)
    memcpy(o->data + o->len, s, n);
  o->len += n;
}

/* Append the replacement string r (rl bytes) for the match s..e,
 * expanding %0-%9 and %%. */
static void emit_template(output_t *o, const char *r, size_t rl, const char *s,
                          const char *e) {
  matcher_t *m = o->m;
  const char *end = r + rl;
  work(m, 1 + (rl >> 6));
  for (;;) {
    const char *esc = memchr(r, '%', (size_t)(end - r));
    if (!esc) {
      emit(o, r, (size_t)(end - r));
      return;
    }
    emit(o, r, (size_t)(esc - r));
    int d = esc + 1 < end ? (unsigned char)esc[1] : 0;
    if (d == '%') {
      emit(o, "%", 1);
    } else if (d == '0') {
      emit(o, s, (size_t)(e - s));
    } else if (d >= '1' && d <= '9') {
      const char *at;
      size_t len;
      lua_Integer pos;
      if (capture_of(m, d - '1', s, e, &at, &len, &pos)) {
        char num[32];
        int k = snprintf(num, sizeof num, LUA_INTEGER_FMT, (LUAI_UACINT)pos);
        emit(o, num, (size_t)k);
      } else {
        emit(o, at, len);
      }
    } else {
      luaL_error(m->L, "invalid use of '%c' in replacement string", '%');
    }
    r = esc + 2;
  }
}

/* The replacement for the match s..e from a table (arg 3, keyed by the
 * first capture) or a function (called with the captures), left on top
 * of the stack; returns false (nothing pushed) to keep the text. */
static bool lookup_value(matcher_t *m, int type, const char *s, const char *e) {
  lua_State *L = m->L;
  flush(m); /* the budget sees this match's work before the callee's */
  if (type == LUA_TFUNCTION) {
    lua_pushvalue(L, 3);
    int n = push_captures(m, s, e);
    lua_call(L, n, 1);
  } else {
    push_capture(m, 0, s, e);
    lua_gettable(L, 3);
  }
  if (!lua_toboolean(L, -1)) {
    lua_pop(L, 1);
    return false;
  }
  if (!lua_isstring(L, -1))
    luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
  return true;
}

static int str_gsub(lua_State *L) {
  size_t ls, lp, rl = 0;
  const char *src = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  int type = lua_type(L, 3);
  lua_Integer max_n = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
  luaL_argexpected(L,
                   type == LUA_TNUMBER || type == LUA_TSTRING ||
                       type == LUA_TFUNCTION || type == LUA_TTABLE,
                   3, "string/function/table");
  const char *repl = NULL;
  if (type == LUA_TNUMBER || type == LUA_TSTRING)
    repl = lua_tolstring(L, 3, &rl);
  lua_settop(L, 4);
  lua_pushnil(L); /* slot 5: the output's storage */
  matcher_t m;
  bool anchored = lp > 0 && *p == '^';
  if (anchored)
    prepare(&m, L, src, ls, p + 1, lp - 1);
  else
    prepare(&m, L, src, ls, p, lp);
  output_t o = {&m, 5, NULL, 0, 0, strata__sandbox_string_max(L)};
  const char *at = src, *last = NULL, *kept = src; /* kept: not emitted */
  bool changed = false;
  lua_Integer n = 0;
  while (n < max_n) {
    restart(&m);
    const char *e = do_match(&m, at, m.pat);
    if (e && e != last) {
      n++;
      if (repl) {
        emit(&o, kept, (size_t)(at - kept));
        emit_template(&o, repl, rl, at, e);
        kept = e;
        changed = true;
      } else if (lookup_value(&m, type, at, e)) {
        size_t vl;
        const char *v = lua_tolstring(L, -1, &vl);
        emit(&o, kept, (size_t)(at - kept));
        emit(&o, v, vl);
        lua_pop(L, 1);
        kept = e;
        changed = true;
      }
      at = last = e;
    } else if (at < m.subj_end) {
      at++;
    } else {
      break;
    }
    if (anchored)
      break;
  }
  if (changed) {
    emit(&o, kept, (size_t)(m.subj_end - kept));
    lua_pushlstring(L, o.data ? o.data : "", o.len);
  } else {
    lua_pushvalue(L, 1);
  }
  flush(&m);
  lua_pushinteger(L, n);
  return 2;
}

/* {=== Installing ===} */

void strata__pattern_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"find", str_find},
                                 {"match", str_match},
                                 {"gmatch", str_gmatch},
                                 {"gsub", str_gsub},
                                 {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
