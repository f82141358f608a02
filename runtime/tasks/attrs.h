/* SPDX-License-Identifier: MIT */
/* runtime/tasks/attrs.h: key/value attributes of tasks and jobs. Well-known keys
 * are parsed once into typed fields (the placement policy reads them per
 * task); other keys are kept as tags, each a string or a number (a number
 * tag also keeps its shortest exact text, for readers that want strings). */
#ifndef STRATA_ATTRS_H
#define STRATA_ATTRS_H

#include "alloc.h"

typedef struct strata__tag {
  char *key, *value;
  double number; /* when is_number: value is its "%.17g" text */
  bool is_number;
} strata__tag_t;

typedef struct strata__attrs {
  char *name;      /* "name" */
  char *tier;      /* "tier" */
  char *precision; /* "precision" */
  char *owner;     /* "owner" (jobs) */
  double flops;    /* "flops"; < 0 when unset */
  int priority;    /* "priority" */
  bool has_priority;
  strata__tag_t *tags;
  size_t ntags, cap;
} strata__attrs_t;

void strata__attrs_init(strata__attrs_t *at);
void strata__attrs_free(strata__attrs_t *at, const strata__allocator_t *a);

/** Set key to value (replacing an earlier value).
 *  @return 0; STRATA_EINVAL (empty key, NULL value, unparsable number);
 *          STRATA_ENOMEM (at unchanged) */
int strata__attrs_set(strata__attrs_t *at, const strata__allocator_t *a,
                      const char *key, const char *value);

/** Set key to a number: "flops" (finite, >= 0), "priority" (an integer in
 *  int's range) or a user tag; the string keys ("name", "tier",
 *  "precision", "owner") refuse numbers.
 *  @return 0; STRATA_EINVAL (empty key, string key, out of range, not
 *          finite);
 *          STRATA_ENOMEM (at unchanged) */
int strata__attrs_set_number(strata__attrs_t *at, const strata__allocator_t *a,
                             const char *key, double value);

/** Value of a user tag, or NULL. */
const char *strata__attrs_tag(const strata__attrs_t *at, const char *key);

#endif /* STRATA_ATTRS_H */
