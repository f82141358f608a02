/* SPDX-License-Identifier: MIT */
/* sandbox/schema.c: typed reads of Lua tables with messages that name the
 * file and the field (see schema.h for the rules). */
#include "config.h"

#include "schema.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#define SHOW_MAX 40 /* bytes of a string value quoted in a message */

/* {=== Messages ===} */

/* FIELD: obj and key joined with a dot, or without one before an index
 * ("[3]") or when either is empty. */
static void vfail(const strata__schema_t *sc, const char *obj, const char *key,
                  const char *fmt, va_list ap) {
  if (!sc->err || !sc->errlen)
    return;
  char reason[256];
  vsnprintf(reason, sizeof reason, fmt, ap);
  obj = obj ? obj : "";
  const char *dot = *obj && key && key[0] != '[' ? "." : "";
  snprintf(sc->err, sc->errlen, "%s: %s%s%s: %s", sc->file ? sc->file : "?",
           obj, dot, key ? key : "", reason);
}

int strata__schema_fail(const strata__schema_t *sc, const char *obj,
                        const char *key, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfail(sc, obj, key, fmt, ap);
  va_end(ap);
  return STRATA_EINVAL;
}

const char *strata__schema_show(lua_State *L, int idx, char *buf, size_t n) {
  switch (lua_type(L, idx)) {
  case LUA_TNUMBER:
    if (isnan(lua_tonumber(L, idx)))
      return "nan"; /* printf may say "-nan" */
    if (lua_isinteger(L, idx))
      snprintf(buf, n, "%lld", (long long)lua_tointeger(L, idx));
    else
      snprintf(buf, n, "%.14g", (double)lua_tonumber(L, idx));
    return buf;
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    snprintf(buf, n, "'%.*s%s'", len > SHOW_MAX ? SHOW_MAX : (int)len, s,
             len > SHOW_MAX ? "..." : "");
    return buf;
  }
  case LUA_TBOOLEAN:
    return lua_toboolean(L, idx) ? "true" : "false";
  default:
    return luaL_typename(L, idx);
  }
}

int strata__schema_wrong_type(const strata__schema_t *sc, const char *obj,
                              const char *key, const char *what) {
  char got[64];
  return strata__schema_fail(sc, obj, key, "must be %s (got %s)", what,
                             strata__schema_show(sc->L, -1, got, sizeof got));
}

int strata__schema_out_of_range(const strata__schema_t *sc, const char *obj,
                                const char *key, const strata__schema_num_t *v,
                                const strata__schema_range_t *r) {
  const char *sp = *r->unit ? " " : "";
  return strata__schema_fail(sc, obj, key, "%s%s%s is out of range (%s%s%s)",
                             v->got, sp, r->unit, r->text, sp, r->unit);
}

/* {=== Scalars ===} */

/* Fields are read raw: a data file's tables have no metatables, and raw
 * access runs no code of the file's while C reads it. */
static int push_field(lua_State *L, int t, const char *key) {
  lua_pushstring(L, key);
  return lua_rawget(L, t);
}

/* Pops the absent field; "missing" when it was required. */
static int absent(const strata__schema_t *sc, const char *obj, const char *key,
                  int flags) {
  lua_pop(sc->L, 1);
  return flags & STRATA__SCHEMA_REQUIRED
             ? strata__schema_fail(sc, obj, key, "missing")
             : 0;
}

int strata__schema_get_number(const strata__schema_t *sc, int t,
                              const char *obj, const char *key, int flags,
                              strata__schema_num_t *v) {
  lua_State *L = sc->L;
  t = lua_absindex(L, t);
  memset(v, 0, sizeof *v);
  int ty = push_field(L, t, key);
  if (ty == LUA_TNIL)
    return absent(sc, obj, key, flags);
  if (ty != LUA_TNUMBER) {
    int rc = strata__schema_wrong_type(sc, obj, key, "a number");
    lua_pop(L, 1);
    return rc;
  }
  v->present = true;
  v->isint = lua_isinteger(L, -1);
  v->i = v->isint ? lua_tointeger(L, -1) : 0;
  v->d = (double)lua_tonumber(L, -1);
  char buf[sizeof v->got];
  snprintf(v->got, sizeof v->got, "%s",
           strata__schema_show(L, -1, buf, sizeof buf));
  lua_pop(L, 1);
  return 0;
}

bool strata__schema_in_range(const strata__schema_num_t *v,
                             const strata__schema_range_t *r) {
  return v->d >= r->lo && v->d <= r->hi; /* false for NaN */
}

bool strata__schema_whole(const strata__schema_num_t *v) {
  return v->isint || v->d == floor(v->d); /* false for NaN, infinities */
}

int strata__schema_number(const strata__schema_t *sc, int t, const char *obj,
                          const char *key, int flags,
                          const strata__schema_range_t *r, double *out) {
  strata__schema_num_t v;
  int rc = strata__schema_get_number(sc, t, obj, key, flags, &v);
  if (rc || !v.present)
    return rc;
  if (r ? !strata__schema_in_range(&v, r) : isnan(v.d)) {
    static const strata__schema_range_t any = {-INFINITY, INFINITY, "",
                                               "not NaN"};
    return strata__schema_out_of_range(sc, obj, key, &v, r ? r : &any);
  }
  *out = v.d;
  return 0;
}

int strata__schema_integer(const strata__schema_t *sc, int t, const char *obj,
                           const char *key, int flags,
                           const strata__schema_range_t *r, int64_t *out,
                           bool *present) {
  strata__schema_num_t v;
  int rc = strata__schema_get_number(sc, t, obj, key, flags, &v);
  if (present)
    *present = v.present;
  if (rc || !v.present)
    return rc;
  if (!strata__schema_whole(&v))
    return strata__schema_fail(sc, obj, key, "must be a whole number (got %s)",
                               v.got);
  /* An integer beyond 2^53 rounds as a double: compare it exactly. The
   * bounds are whole and within 2^53, so they convert exactly. */
  if (v.isint ? v.i < (lua_Integer)r->lo || v.i > (lua_Integer)r->hi
              : !strata__schema_in_range(&v, r))
    return strata__schema_out_of_range(sc, obj, key, &v, r);
  *out = v.isint ? (int64_t)v.i : (int64_t)v.d;
  return 0;
}

int strata__schema_bool(const strata__schema_t *sc, int t, const char *obj,
                        const char *key, int flags, bool *out) {
  lua_State *L = sc->L;
  int ty = push_field(L, lua_absindex(L, t), key);
  if (ty == LUA_TNIL)
    return absent(sc, obj, key, flags);
  int rc = 0;
  if (ty != LUA_TBOOLEAN)
    rc = strata__schema_wrong_type(sc, obj, key, "a boolean");
  else
    *out = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return rc;
}

/* Pushes t[key] when it is a string; pushes nothing otherwise (absent, or
 * the failure). *present tells which. */
static int push_string(const strata__schema_t *sc, int t, const char *obj,
                       const char *key, int flags, bool *present) {
  lua_State *L = sc->L;
  int ty = push_field(L, lua_absindex(L, t), key);
  *present = false;
  if (ty == LUA_TNIL)
    return absent(sc, obj, key, flags);
  if (ty != LUA_TSTRING) {
    int rc = strata__schema_wrong_type(sc, obj, key, "a string");
    lua_pop(L, 1);
    return rc;
  }
  *present = true;
  return 0;
}

int strata__schema_string(const strata__schema_t *sc, int t, const char *obj,
                          const char *key, int flags, size_t max, char *out) {
  lua_State *L = sc->L;
  bool present;
  int rc = push_string(sc, t, obj, key, flags, &present);
  if (rc || !present)
    return rc;
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  if (len == 0 || len > max || strlen(s) != len) {
    char what[80];
    snprintf(what, sizeof what,
             "a non-empty string of at most %zu bytes without NUL", max);
    rc = strata__schema_wrong_type(sc, obj, key, what);
  } else {
    memcpy(out, s, len + 1);
  }
  lua_pop(L, 1);
  return rc;
}

/* "'a', 'b' or 'c'", cut short where buf ends. */
static void list_names(const char *const *names, char *buf, size_t n) {
  size_t o = 0, count = 0;
  while (names[count])
    count++;
  buf[0] = '\0';
  for (size_t i = 0; i < count && o < n; i++) {
    const char *sep = i == 0 ? "" : i + 1 == count ? " or " : ", ";
    int w = snprintf(buf + o, n - o, "%s'%s'", sep, names[i]);
    if (w < 0)
      break;
    o += (size_t)w;
  }
}

int strata__schema_enum(const strata__schema_t *sc, int t, const char *obj,
                        const char *key, int flags, const char *const *names,
                        int *out) {
  lua_State *L = sc->L;
  bool present;
  int rc = push_string(sc, t, obj, key, flags, &present);
  if (rc || !present)
    return rc;
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  for (int i = 0; names[i]; i++)
    if (strlen(names[i]) == len && !memcmp(s, names[i], len)) {
      *out = i;
      lua_pop(L, 1);
      return 0;
    }
  char what[200];
  list_names(names, what, sizeof what);
  rc = strata__schema_wrong_type(sc, obj, key, what);
  lua_pop(L, 1);
  return rc;
}

/* {=== Tables ===} */

int strata__schema_table(const strata__schema_t *sc, int t, const char *obj,
                         const char *key, int flags, bool *present) {
  lua_State *L = sc->L;
  int ty = push_field(L, lua_absindex(L, t), key);
  *present = ty == LUA_TTABLE;
  if (ty == LUA_TTABLE)
    return 0;
  if (ty == LUA_TNIL)
    return absent(sc, obj, key, flags);
  int rc = strata__schema_wrong_type(sc, obj, key, "a table");
  lua_pop(L, 1);
  return rc;
}

int strata__schema_array(const strata__schema_t *sc, int t, const char *obj,
                         const char *key, size_t *n) {
  lua_State *L = sc->L;
  t = lua_absindex(L, t);
  lua_Unsigned len = lua_rawlen(L, t), count = 0;
  char buf[64];
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 ||
        (lua_Unsigned)lua_tointeger(L, -1) > len) {
      int rc =
          strata__schema_fail(sc, obj, key, "must be a list (found key %s)",
                              strata__schema_show(L, -1, buf, sizeof buf));
      lua_pop(L, 1);
      return rc;
    }
    count++;
  }
  if (count != len)
    return strata__schema_fail(sc, obj, key, "must be a list without holes");
  *n = (size_t)len;
  return 0;
}

static bool known_key(lua_State *L, const char *const *known) {
  if (lua_type(L, -1) != LUA_TSTRING)
    return false;
  size_t len;
  const char *k = lua_tolstring(L, -1, &len);
  for (size_t i = 0; known[i]; i++)
    if (strlen(known[i]) == len && !memcmp(known[i], k, len))
      return true;
  return false;
}

int strata__schema_keys(const strata__schema_t *sc, int t, const char *obj,
                        const char *const *known,
                        strata__schema_unknown_t mode) {
  lua_State *L = sc->L;
  t = lua_absindex(L, t);
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    if (known_key(L, known))
      continue;
    char buf[64], key[72];
    if (lua_type(L, -1) == LUA_TSTRING)
      snprintf(key, sizeof key, "%.60s", lua_tostring(L, -1));
    else
      snprintf(key, sizeof key, "[%s]",
               strata__schema_show(L, -1, buf, sizeof buf));
    if (mode == STRATA__SCHEMA_REFUSE) {
      lua_pop(L, 1);
      return strata__schema_fail(sc, obj, key, "unknown field");
    }
    if (sc->warn) {
      char msg[512];
      strata__schema_t w = *sc;
      w.err = msg;
      w.errlen = sizeof msg;
      strata__schema_fail(&w, obj, key, "unknown field (ignored)");
      sc->warn(sc->warn_ud, msg);
    }
  }
  return 0;
}
