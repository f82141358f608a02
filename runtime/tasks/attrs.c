/* SPDX-License-Identifier: MIT */
/* runtime/tasks/attrs.c: task and job attributes. */
#include "config.h"

#include "attrs.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

void strata__attrs_init(strata__attrs_t *at) {
  memset(at, 0, sizeof *at);
  at->flops = -1.0;
}

void strata__attrs_free(strata__attrs_t *at, const strata__allocator_t *a) {
  strata__strfree(a, at->name);
  strata__strfree(a, at->tier);
  strata__strfree(a, at->precision);
  strata__strfree(a, at->owner);
  for (size_t i = 0; i < at->ntags; i++) {
    strata__strfree(a, at->tags[i].key);
    strata__strfree(a, at->tags[i].value);
  }
  strata__free(a, at->tags, at->cap * sizeof *at->tags);
  strata__attrs_init(at);
}

static int parse_int(const char *s, int *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (end == s || *end || errno || v < INT_MIN || v > INT_MAX)
    return STRATA_EINVAL;
  *out = (int)v;
  return STRATA_OK;
}

static int parse_flops(const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || *end || errno || !isfinite(v) || v < 0)
    return STRATA_EINVAL;
  *out = v;
  return STRATA_OK;
}

/* Replace the string in *slot with a copy of value. */
static int set_string(char **slot, const strata__allocator_t *a,
                      const char *value) {
  char *copy = strata__strdup(a, value);
  if (!copy)
    return STRATA_ENOMEM;
  strata__strfree(a, *slot);
  *slot = copy;
  return STRATA_OK;
}

/* Set user tag key to value; a number tag (number non-NULL) keeps the
 * number beside its text. */
static int set_tag(strata__attrs_t *at, const strata__allocator_t *a,
                   const char *key, const char *value, const double *number) {
  strata__tag_t *t = NULL;
  for (size_t i = 0; i < at->ntags && !t; i++)
    if (!strcmp(at->tags[i].key, key))
      t = &at->tags[i];
  if (t) {
    int rc = set_string(&t->value, a, value);
    if (rc == STRATA_OK) {
      t->is_number = number != NULL;
      t->number = number ? *number : 0;
    }
    return rc;
  }
  int rc = strata__grow(a, (void **)&at->tags, &at->cap, at->ntags + 1,
                        sizeof *at->tags);
  if (rc)
    return rc;
  strata__tag_t nt = {strata__strdup(a, key), strata__strdup(a, value),
                      number ? *number : 0, number != NULL};
  if (!nt.key || !nt.value) {
    strata__strfree(a, nt.key);
    strata__strfree(a, nt.value);
    return STRATA_ENOMEM;
  }
  at->tags[at->ntags++] = nt;
  return STRATA_OK;
}

/* Keys whose values are strings; they refuse numbers. */
static bool is_string_key(const char *key) {
  return !strcmp(key, "name") || !strcmp(key, "tier") ||
         !strcmp(key, "precision") || !strcmp(key, "owner");
}

int strata__attrs_set(strata__attrs_t *at, const strata__allocator_t *a,
                      const char *key, const char *value) {
  if (!key || !*key || !value)
    return STRATA_EINVAL;
  if (!strcmp(key, "priority")) {
    int p;
    int rc = parse_int(value, &p);
    if (rc == STRATA_OK) {
      at->priority = p;
      at->has_priority = true;
    }
    return rc;
  }
  if (!strcmp(key, "flops"))
    return parse_flops(value, &at->flops);
  if (!strcmp(key, "name"))
    return set_string(&at->name, a, value);
  if (!strcmp(key, "tier"))
    return set_string(&at->tier, a, value);
  if (!strcmp(key, "precision"))
    return set_string(&at->precision, a, value);
  if (!strcmp(key, "owner"))
    return set_string(&at->owner, a, value);
  return set_tag(at, a, key, value, NULL);
}

int strata__attrs_set_number(strata__attrs_t *at, const strata__allocator_t *a,
                             const char *key, double value) {
  if (!key || !*key || is_string_key(key) || !isfinite(value))
    return STRATA_EINVAL;
  if (!strcmp(key, "priority")) {
    if (value != floor(value) || value < INT_MIN || value > INT_MAX)
      return STRATA_EINVAL;
    at->priority = (int)value;
    at->has_priority = true;
    return STRATA_OK;
  }
  if (!strcmp(key, "flops")) {
    if (value < 0)
      return STRATA_EINVAL;
    at->flops = value;
    return STRATA_OK;
  }
  /* %.17g reads back as the same double: the text is exact. */
  char text[32];
  snprintf(text, sizeof text, "%.17g", value);
  return set_tag(at, a, key, text, &value);
}

const char *strata__attrs_tag(const strata__attrs_t *at, const char *key) {
  for (size_t i = 0; i < at->ntags; i++)
    if (!strcmp(at->tags[i].key, key))
      return at->tags[i].value;
  return NULL;
}
