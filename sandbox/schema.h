/* SPDX-License-Identifier: MIT */
/* sandbox/schema.h: typed reads of the Lua tables a data file returns
 * (sim machine descriptions today; policy settings and job files next),
 * each failure a message that names the file and the field:
 *
 *   "machine.lua: devices[2].memory: must be a number (got '64 GiB')"
 *   "machine.lua: devices[1].memroy: unknown field"
 *   "machine.lua: devices[3].fp64: 1e+300 flop/s is out of range (1e3 to
 *    1e18 flop/s)"
 *
 * A field is named by the table it is in (`obj`: "" for the top level,
 * "devices[2]", "devices[2].health") and its key ("memory"; an index
 * "[3]"; NULL for obj itself): obj and key are joined with a dot, except
 * before an index.
 *
 * Rules, the same for every reader:
 *   - fields are read raw (no metamethod runs);
 *   - a required field that is absent (nil) is "missing"; an optional one
 *     leaves *out untouched, so the caller sets the default first;
 *   - a value of the wrong type is "must be a number (got 'x')", the
 *     value shown as written (numbers as Lua prints them, strings quoted
 *     and cut to 40 bytes, other values by their type);
 *   - a number out of its range is "VALUE UNIT is out of range (LO to HI
 *     UNIT)"; NaN is out of every range; integers are compared exactly
 *     (2^53 + 1 is not 2^53);
 *   - unknown keys are refused ("unknown field"), or passed to a warning
 *     callback where the caller asks for that.
 *
 * Every reader may raise a Lua memory error: call them inside a protected
 * call (strata__sandbox_cpcall). Each leaves the stack as it found it,
 * except where it says it pushes. The first failure is kept in the
 * context's message buffer; readers return at once, so a chain of
 * `if ((rc = ...))` stops at the first.
 * @thread the thread that owns the lua_State */
#ifndef STRATA_SCHEMA_H
#define STRATA_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lua.h>
#include <strata/common.h>

/** Where messages go, and which file they name. */
typedef struct strata__schema {
  lua_State *L;
  const char *file; /* "machine.lua" (as the user named it) */
  char *err;        /* "FILE: FIELD: reason"; may be NULL */
  size_t errlen;
  /* Unknown keys met by strata__schema_keys in STRATA__SCHEMA_WARN mode,
   * one "FILE: FIELD: unknown field (ignored)" per call; NULL: dropped. */
  void (*warn)(void *ud, const char *msg);
  void *warn_ud;
} strata__schema_t;

/** Flags of a read. */
enum {
  STRATA__SCHEMA_OPTIONAL = 0,
  STRATA__SCHEMA_REQUIRED = 1 /* absent: "missing" */
};

/** What to do with keys a table should not have. */
typedef enum strata__schema_unknown {
  STRATA__SCHEMA_REFUSE, /* the first one fails the read */
  STRATA__SCHEMA_WARN    /* each one goes to the warning callback */
} strata__schema_unknown_t;

/** The range a figure may take, and how messages write it. */
typedef struct strata__schema_range {
  double lo, hi;
  const char *unit; /* after the value: "flop/s"; "" for none */
  const char *text; /* the range as messages quote it: "1e3 to 1e18" */
} strata__schema_range_t;

/** A number as read, for checks of the caller's own. */
typedef struct strata__schema_num {
  bool present, isint;
  lua_Integer i; /* when isint */
  double d;      /* always (rounded for big integers) */
  char got[48];  /* the value as written, for messages */
} strata__schema_num_t;

/* {=== Messages ===} */

/** Fail the read of FIELD (obj, key) with a reason of the caller's: the
 *  message is "FILE: FIELD: reason". @return STRATA_EINVAL */
int strata__schema_fail(const strata__schema_t *sc, const char *obj,
                        const char *key, const char *fmt, ...)
    STRATA_PRINTF(4, 5);

/** "must be WHAT (got VALUE)" for the value on top of the stack (left
 *  there). @return STRATA_EINVAL */
int strata__schema_wrong_type(const strata__schema_t *sc, const char *obj,
                              const char *key, const char *what);

/** "VALUE UNIT is out of range (LO to HI UNIT)". @return STRATA_EINVAL */
int strata__schema_out_of_range(const strata__schema_t *sc, const char *obj,
                                const char *key, const strata__schema_num_t *v,
                                const strata__schema_range_t *r);

/** The value at idx as a message shows it. @return buf, or a static
 *  type name */
const char *strata__schema_show(lua_State *L, int idx, char *buf, size_t n);

/* {=== Scalars ===} */

/** Read t[key] as a number, type checked only (v->present false when
 *  absent and optional). @return 0; STRATA_EINVAL */
int strata__schema_get_number(const strata__schema_t *sc, int t,
                              const char *obj, const char *key, int flags,
                              strata__schema_num_t *v);

/** Whether v lies in r (false for NaN). */
bool strata__schema_in_range(const strata__schema_num_t *v,
                             const strata__schema_range_t *r);

/** Whether v is a whole number (an integer, or an integral float such as
 *  1e3). */
bool strata__schema_whole(const strata__schema_num_t *v);

/** A number within r (NULL: any finite or infinite number, not NaN).
 *  @return 0; STRATA_EINVAL */
int strata__schema_number(const strata__schema_t *sc, int t, const char *obj,
                          const char *key, int flags,
                          const strata__schema_range_t *r, double *out);

/** A whole number ("must be a whole number (got 1.5)") within r, whose
 *  bounds must be whole and within +-2^53. *present (may be NULL) tells
 *  whether the field was there. @return 0; STRATA_EINVAL */
int strata__schema_integer(const strata__schema_t *sc, int t, const char *obj,
                           const char *key, int flags,
                           const strata__schema_range_t *r, int64_t *out,
                           bool *present);

/** A boolean. @return 0; STRATA_EINVAL */
int strata__schema_bool(const strata__schema_t *sc, int t, const char *obj,
                        const char *key, int flags, bool *out);

/** A non-empty string of at most `max` bytes without NUL, copied into out
 *  (max + 1 bytes). @return 0; STRATA_EINVAL */
int strata__schema_string(const strata__schema_t *sc, int t, const char *obj,
                          const char *key, int flags, size_t max, char *out);

/** One of `names` (NULL-terminated): *out is its index. Otherwise "must
 *  be 'a', 'b' or 'c' (got X)". @return 0; STRATA_EINVAL */
int strata__schema_enum(const strata__schema_t *sc, int t, const char *obj,
                        const char *key, int flags, const char *const *names,
                        int *out);

/* {=== Tables ===} */

/** Push the table t[key] and set *present, or push nothing (absent and
 *  optional: *present false). The caller pops it.
 *  @return 0; STRATA_EINVAL (nothing pushed) */
int strata__schema_table(const strata__schema_t *sc, int t, const char *obj,
                         const char *key, int flags, bool *present);

/** The length of the list at t (FIELD obj, key): any key other than
 *  1..n is an error ("must be a list (found key 'x')", "must be a list
 *  without holes"), so a forgotten pair of braces is reported, not
 *  dropped. @return 0; STRATA_EINVAL */
int strata__schema_array(const strata__schema_t *sc, int t, const char *obj,
                         const char *key, size_t *n);

/** Check that every key of the table at t (FIELD obj) is one of `known`
 *  (NULL-terminated): keys that are not strings are never known. Unknown
 *  ones fail ("unknown field") or are warned about, as `mode` says.
 *  @return 0; STRATA_EINVAL */
int strata__schema_keys(const strata__schema_t *sc, int t, const char *obj,
                        const char *const *known,
                        strata__schema_unknown_t mode);

#endif /* STRATA_SCHEMA_H */
