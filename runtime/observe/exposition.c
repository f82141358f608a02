/* SPDX-License-Identifier: MIT */
/* runtime/observe/exposition.c: the Prometheus text format writer
 * (exposition.h). */
#include "exposition.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void strata__expo_init(strata__expo_t *x, const strata__allocator_t *alloc) {
  *x = (strata__expo_t){.alloc = alloc};
}

void strata__expo_fini(strata__expo_t *x) {
  strata__free(x->alloc, x->buf, x->cap);
  x->buf = NULL;
  x->len = x->cap = 0;
}

/* Room for n more bytes and the terminating NUL. */
static bool reserve(strata__expo_t *x, size_t n) {
  if (x->failed)
    return false;
  if (x->len + n + 1 <= x->cap)
    return true;
  size_t cap = x->cap ? x->cap : 4096;
  while (cap < x->len + n + 1)
    cap *= 2;
  char *b = strata__realloc(x->alloc, x->buf, x->cap, cap);
  if (!b) {
    x->failed = true;
    return false;
  }
  x->buf = b;
  x->cap = cap;
  return true;
}

static void put(strata__expo_t *x, const char *s, size_t n) {
  if (!reserve(x, n))
    return;
  memcpy(x->buf + x->len, s, n);
  x->len += n;
  x->buf[x->len] = '\0';
}

static void puts_(strata__expo_t *x, const char *s) { put(x, s, strlen(s)); }

/* s with backslash and newline escaped, and, in a label value, the double
 * quote (HELP text keeps its quotes, as the format says). */
static void put_escaped(strata__expo_t *x, const char *s, bool quote) {
  for (const char *p = s; *p; p++) {
    if (*p == '\\')
      put(x, "\\\\", 2);
    else if (*p == '\n')
      put(x, "\\n", 2);
    else if (*p == '"' && quote)
      put(x, "\\\"", 2);
    else
      put(x, p, 1);
  }
}

static const char *const type_names[] = {"counter", "gauge", "histogram"};

void strata__expo_family(strata__expo_t *x, const char *name,
                         strata__metric_type_t type, const char *help) {
  snprintf(x->family, sizeof x->family, "%s", name);
  x->nfamilies++;
  puts_(x, "# HELP ");
  puts_(x, name);
  put(x, " ", 1);
  put_escaped(x, help, false);
  puts_(x, "\n# TYPE ");
  puts_(x, name);
  put(x, " ", 1);
  puts_(x, type_names[type]);
  put(x, "\n", 1);
}

void strata__labels_add(strata__labels_t *l, const char *name,
                        const char *value) {
  if (l->n >= STRATA__EXPO_LABELS)
    return;
  l->name[l->n] = name;
  l->value[l->n] = value ? value : "";
  l->n++;
}

static void put_label(strata__expo_t *x, bool *first, const char *name,
                      const char *value) {
  put(x, *first ? "{" : ",", 1);
  *first = false;
  puts_(x, name);
  put(x, "=\"", 2);
  put_escaped(x, value, true);
  put(x, "\"", 1);
}

static void sample_head(strata__expo_t *x, const char *suffix,
                        const strata__labels_t *l, const char *le) {
  puts_(x, x->family);
  puts_(x, suffix);
  bool first = true;
  for (unsigned i = 0; l && i < l->n; i++)
    put_label(x, &first, l->name[i], l->value[i]);
  if (le)
    put_label(x, &first, "le", le);
  if (!first)
    put(x, "}", 1);
  put(x, " ", 1);
}

void strata__expo_sample(strata__expo_t *x, const char *suffix,
                         const strata__labels_t *l, const char *le,
                         double value) {
  char v[40];
  if (isnan(value))
    snprintf(v, sizeof v, "NaN");
  else if (isinf(value))
    snprintf(v, sizeof v, "%s", value > 0 ? "+Inf" : "-Inf");
  else if (value == floor(value) && fabs(value) < 1e15)
    snprintf(v, sizeof v, "%.0f", value);
  else
    snprintf(v, sizeof v, "%.17g", value);
  sample_head(x, suffix, l, le);
  puts_(x, v);
  put(x, "\n", 1);
}

void strata__expo_sample_u64(strata__expo_t *x, const char *suffix,
                             const strata__labels_t *l, const char *le,
                             uint64_t value) {
  char v[24];
  snprintf(v, sizeof v, "%llu", (unsigned long long)value);
  sample_head(x, suffix, l, le);
  puts_(x, v);
  put(x, "\n", 1);
}
