/* SPDX-License-Identifier: MIT */
/* sandbox/optlist.h: the one parser of Strata's option strings: lists
 * ("cpu,sim"), maps ("k=v,k=v") and sections ("name:k=v,k=v;name2:k=v").
 * Used by the runtime (backends, required_backends, backend_options,
 * backend_path, device_tiers), the sim backend (classes=hbm+gddr) and
 * whoever reads such strings next; it lives here, in the convenience
 * library every one of them links, so that no backend reaches into
 * libstrata for it.
 *
 * The rules, the same for every option:
 *   - nothing is trimmed: " sim" is not "sim", and a name, key or list
 *     item holding a space or a control character is refused (paths may
 *     hold spaces: see strata__optfmt_t.path);
 *   - an empty item (",a", "a,,b", "a,") is a stray separator, refused;
 *     an empty string is an empty list;
 *   - a map item needs '=' and a non-empty key; a section needs ':', a
 *     non-empty name and at least one setting; the first '=' or ':'
 *     splits, so a value may hold '=' and ':' but never a separator of
 *     its own level (',' in maps and sections, ';' between sections):
 *     there are no escapes;
 *   - a list item, map key or section name given twice is refused;
 *   - every message names the option and the position (1-based, in the
 *     whole string) and quotes the offending part:
 *     "backend_options: position 5: 'workers' has no '=' (expected
 *     key=value)".
 *
 * Nothing here allocates; spans point into the caller's string.
 * @thread any (no state) */
#ifndef STRATA_OPTLIST_H
#define STRATA_OPTLIST_H

#include <stdbool.h>
#include <stddef.h>

/** What kind of string an option holds. */
typedef enum strata__optkind {
  STRATA__OPT_LIST,    /* "a,b,c" */
  STRATA__OPT_MAP,     /* "k=v,k=v" */
  STRATA__OPT_SECTIONS /* "name:k=v,k=v;name2:k=v" */
} strata__optkind_t;

/** How one option is written. */
typedef struct strata__optfmt {
  const char *option; /* its name in messages: "backend_options" */
  strata__optkind_t kind;
  char sep;  /* between items; 0: ',' (lists, maps), ';' (sections, whose
                settings are always separated by ',') */
  bool path; /* lists only: a search path ("dir:dir"), where items may
                hold spaces, empty items are skipped ("a::b", a trailing
                ':') and a repeated one is accepted (the first wins); a
                control character is still refused */
} strata__optfmt_t;

/** A piece of an option string; not NUL-terminated. */
typedef struct strata__optspan {
  const char *s; /* NULL: absent (a map item without '=') */
  size_t len;
  size_t pos; /* 1-based position of s[0] in the whole option string */
} strata__optspan_t;

/** One item. */
typedef struct strata__optitem {
  strata__optspan_t key;   /* list: the item; map: the key; sections: the
                              name */
  strata__optspan_t value; /* map: after '='; sections: the settings after
                              ':', a map whose positions stay those of the
                              whole string; list: absent */
} strata__optitem_t;

/** The whole of `text` (NULL: the empty string) as a span at position 1. */
strata__optspan_t strata__opt_span(const char *text);

/** Check `text` against every rule above.
 *  @return 0; STRATA_EINVAL with "OPTION: position N: reason" in err
 *  (errlen bytes; err may be NULL) */
int strata__opt_check(const strata__optfmt_t *fmt, strata__optspan_t text,
                      char *err, size_t errlen);

/** The next item of `text` from *cursor (start at 0), split but not
 *  checked (empty items come out empty; a map item without '=' has an
 *  absent value). Skips empty items of a path.
 *  @return false at the end */
bool strata__opt_next(const strata__optfmt_t *fmt, strata__optspan_t text,
                      size_t *cursor, strata__optitem_t *out);

/** The first item whose key (list item, map key, section name) is `key`.
 *  @return false when there is none (*out untouched) */
bool strata__opt_find(const strata__optfmt_t *fmt, strata__optspan_t text,
                      const char *key, strata__optitem_t *out);

/** Whether the span is exactly `word`. */
bool strata__opt_is(strata__optspan_t s, const char *word);

/** The span quoted for a message: "'text'", cut to 40 bytes with "...",
 *  bytes that are not printable ASCII shown as '?'. @return buf */
const char *strata__opt_quote(strata__optspan_t s, char *buf, size_t len);

#endif /* STRATA_OPTLIST_H */
