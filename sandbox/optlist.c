/* SPDX-License-Identifier: MIT */
/* sandbox/optlist.c: splitting and checking option strings (lists, maps,
 * sections) by one set of rules, with messages that say where. */
#include "config.h"

#include "optlist.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <strata/common.h>

#define QUOTE_MAX 40 /* bytes of a part quoted in a message */

/* {=== Splitting ===} */

strata__optspan_t strata__opt_span(const char *text) {
  return (strata__optspan_t){text ? text : "", text ? strlen(text) : 0, 1};
}

static char item_sep(const strata__optfmt_t *fmt) {
  return fmt->sep ? fmt->sep : fmt->kind == STRATA__OPT_SECTIONS ? ';' : ',';
}

static strata__optspan_t sub(strata__optspan_t t, size_t from, size_t len) {
  return (strata__optspan_t){t.s + from, len, t.pos + from};
}

/* Split an item at its first `mark` ('=' or ':') into key and value; no
 * mark: the whole item is the key and the value is absent. */
static void split(strata__optspan_t item, char mark, strata__optitem_t *out) {
  const char *m = memchr(item.s, mark, item.len);
  if (!m) {
    out->key = item;
    out->value = (strata__optspan_t){NULL, 0, item.pos + item.len};
    return;
  }
  size_t k = (size_t)(m - item.s);
  out->key = sub(item, 0, k);
  out->value = sub(item, k + 1, item.len - k - 1);
}

/* The next raw item, empty ones included. */
static bool next_raw(char sep, strata__optspan_t t, size_t *cursor,
                     strata__optspan_t *out) {
  if (t.len == 0 || *cursor > t.len)
    return false;
  const char *end = memchr(t.s + *cursor, sep, t.len - *cursor);
  size_t stop = end ? (size_t)(end - t.s) : t.len;
  *out = sub(t, *cursor, stop - *cursor);
  *cursor = stop + 1; /* past the end after the last item */
  return true;
}

bool strata__opt_next(const strata__optfmt_t *fmt, strata__optspan_t text,
                      size_t *cursor, strata__optitem_t *out) {
  strata__optspan_t item;
  do {
    if (!next_raw(item_sep(fmt), text, cursor, &item))
      return false;
  } while (fmt->path && fmt->kind == STRATA__OPT_LIST && item.len == 0);
  if (fmt->kind == STRATA__OPT_LIST) {
    out->key = item;
    out->value = (strata__optspan_t){NULL, 0, item.pos + item.len};
  } else {
    split(item, fmt->kind == STRATA__OPT_MAP ? '=' : ':', out);
  }
  return true;
}

bool strata__opt_is(strata__optspan_t s, const char *word) {
  return s.s && strlen(word) == s.len && !memcmp(s.s, word, s.len);
}

static bool same(strata__optspan_t a, strata__optspan_t b) {
  return a.len == b.len && !memcmp(a.s, b.s, a.len);
}

bool strata__opt_find(const strata__optfmt_t *fmt, strata__optspan_t text,
                      const char *key, strata__optitem_t *out) {
  strata__optitem_t it;
  for (size_t c = 0; strata__opt_next(fmt, text, &c, &it);)
    if (strata__opt_is(it.key, key)) {
      *out = it;
      return true;
    }
  return false;
}

/* {=== Messages ===} */

const char *strata__opt_quote(strata__optspan_t s, char *buf, size_t len) {
  if (!len)
    return buf;
  size_t n = s.len > QUOTE_MAX ? QUOTE_MAX : s.len, o = 0;
  if (o + 1 < len)
    buf[o++] = '\'';
  for (size_t i = 0; i < n && o + 1 < len; i++) {
    unsigned char c = (unsigned char)s.s[i];
    buf[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
  }
  const char *tail = s.len > QUOTE_MAX ? "...'" : "'";
  for (; *tail && o + 1 < len; tail++)
    buf[o++] = *tail;
  buf[o] = '\0';
  return buf;
}

typedef struct check {
  const strata__optfmt_t *fmt;
  char *err;
  size_t errlen;
} check_t;

/* "OPTION: position N: reason". @return STRATA_EINVAL */
STRATA_PRINTF(3, 4)
static int bad(const check_t *c, size_t pos, const char *fmt, ...) {
  if (c->err && c->errlen) {
    int n = snprintf(c->err, c->errlen, "%s: position %zu: ",
                     c->fmt->option ? c->fmt->option : "option", pos);
    if (n >= 0 && (size_t)n < c->errlen) {
      va_list ap;
      va_start(ap, fmt);
      vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
      va_end(ap);
    }
  }
  return STRATA_EINVAL;
}

/* {=== Checking ===} */

/* An item that is empty: the stray separator is the one at its position,
 * or, for the last item, the one before it. */
static int empty_item(const check_t *c, strata__optspan_t whole,
                      strata__optspan_t item, char sep) {
  size_t pos = item.pos - whole.pos == whole.len ? item.pos - 1 : item.pos;
  return bad(c, pos, "empty item (a stray '%c')", sep);
}

/* Names, keys and list items hold no whitespace or control character
 * (paths may hold spaces); nothing is trimmed, so " sim" would silently
 * match nothing. */
static int check_word(const check_t *c, strata__optspan_t w, bool spaces,
                      const char *what) {
  char q[QUOTE_MAX + 8];
  for (size_t i = 0; i < w.len; i++) {
    unsigned char ch = (unsigned char)w.s[i];
    if (ch == ' ' && !spaces)
      return bad(c, w.pos + i, "%s %s holds a space (nothing is trimmed)", what,
                 strata__opt_quote(w, q, sizeof q));
    if (ch < 0x20 || ch == 0x7f)
      return bad(c, w.pos + i, "%s %s holds a control character (0x%02x)", what,
                 strata__opt_quote(w, q, sizeof q), ch);
  }
  return 0;
}

/* The key of item i must not be the key of an earlier one. */
static int check_unique(const check_t *c, const strata__optfmt_t *fmt,
                        strata__optspan_t t, const strata__optitem_t *it,
                        const char *what, const char *twice) {
  strata__optitem_t prev;
  char q[QUOTE_MAX + 8];
  for (size_t cur = 0; strata__opt_next(fmt, t, &cur, &prev);) {
    if (prev.key.pos >= it->key.pos)
      return 0;
    if (same(prev.key, it->key))
      return bad(c, it->key.pos, "%s %s %s (first at position %zu)", what,
                 strata__opt_quote(it->key, q, sizeof q), twice, prev.key.pos);
  }
  return 0;
}

static int check_list(const check_t *c, strata__optspan_t t) {
  const strata__optfmt_t *fmt = c->fmt;
  char sep = item_sep(fmt);
  strata__optitem_t it;
  for (size_t cur = 0; strata__opt_next(fmt, t, &cur, &it);) {
    if (it.key.len == 0)
      return empty_item(c, t, it.key, sep);
    int rc = check_word(c, it.key, fmt->path, "item");
    if (!rc && !fmt->path)
      rc = check_unique(c, fmt, t, &it, "item", "is listed twice");
    if (rc)
      return rc;
  }
  return 0;
}

/* A map: the whole option, or the settings of one section. */
static int check_map(const check_t *c, strata__optspan_t t, char sep) {
  const strata__optfmt_t fmt = {.kind = STRATA__OPT_MAP, .sep = sep};
  char q[QUOTE_MAX + 8];
  strata__optitem_t it;
  for (size_t cur = 0; strata__opt_next(&fmt, t, &cur, &it);) {
    strata__optspan_t item = {
        it.key.s, it.key.len + (it.value.s ? 1 : 0) + it.value.len, it.key.pos};
    if (item.len == 0)
      return empty_item(c, t, item, sep);
    if (!it.value.s)
      return bad(c, item.pos, "%s has no '=' (expected key=value)",
                 strata__opt_quote(item, q, sizeof q));
    if (it.key.len == 0)
      return bad(c, item.pos, "%s has an empty key",
                 strata__opt_quote(item, q, sizeof q));
    int rc = check_word(c, it.key, false, "key");
    if (!rc)
      rc = check_unique(c, &fmt, t, &it, "key", "is set twice");
    if (rc)
      return rc;
  }
  return 0;
}

static int check_sections(const check_t *c, strata__optspan_t t) {
  const strata__optfmt_t *fmt = c->fmt;
  char sep = item_sep(fmt), q[QUOTE_MAX + 8];
  strata__optitem_t it;
  for (size_t cur = 0; strata__opt_next(fmt, t, &cur, &it);) {
    strata__optspan_t item = {
        it.key.s, it.key.len + (it.value.s ? 1 : 0) + it.value.len, it.key.pos};
    if (item.len == 0)
      return empty_item(c, t, item, sep);
    if (!it.value.s)
      return bad(c, item.pos,
                 "%s has no ':' (expected name:key=value,key=value)",
                 strata__opt_quote(item, q, sizeof q));
    if (it.key.len == 0)
      return bad(c, item.pos, "%s has an empty name",
                 strata__opt_quote(item, q, sizeof q));
    if (it.value.len == 0)
      return bad(c, item.pos, "%s has no settings after ':'",
                 strata__opt_quote(item, q, sizeof q));
    int rc = check_word(c, it.key, false, "name");
    if (!rc)
      rc = check_unique(c, fmt, t, &it, "section", "appears twice");
    if (!rc)
      rc = check_map(c, it.value, ',');
    if (rc)
      return rc;
  }
  return 0;
}

int strata__opt_check(const strata__optfmt_t *fmt, strata__optspan_t text,
                      char *err, size_t errlen) {
  check_t c = {fmt, err, errlen};
  if (err && errlen)
    err[0] = '\0';
  switch (fmt->kind) {
  case STRATA__OPT_LIST:
    return check_list(&c, text);
  case STRATA__OPT_MAP:
    return check_map(&c, text, item_sep(fmt));
  case STRATA__OPT_SECTIONS:
    return check_sections(&c, text);
  }
  return bad(&c, 1, "unknown kind of option");
}
