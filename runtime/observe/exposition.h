/* SPDX-License-Identifier: MIT */
/* runtime/observe/exposition.h: the Prometheus text format (version
 * 0.0.4), written into a growing buffer. A writer opens a family (its
 * # HELP and # TYPE lines, once), then writes that family's samples; the
 * next family closes it, so families are contiguous by construction.
 * Label values and HELP text are escaped here; values print as Prometheus
 * parses them (integers exactly, NaN, +Inf, -Inf). No timestamps: the
 * scraper stamps samples (node_exporter's textfile collector refuses
 * them). The buffer belongs to the caller; nothing here is shared. */
#ifndef STRATA_EXPOSITION_H
#define STRATA_EXPOSITION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc.h"

typedef enum strata__metric_type {
  STRATA__COUNTER,
  STRATA__GAUGE,
  STRATA__HISTOGRAM
} strata__metric_type_t;

typedef struct strata__expo {
  const strata__allocator_t *alloc;
  char *buf;
  size_t len, cap;
  bool failed;        /* an allocation failed: the text is incomplete */
  char family[96];    /* the open family's name */
  unsigned nfamilies; /* families opened so far */
} strata__expo_t;

/* A sample's labels: name/value pairs, up to STRATA__EXPO_LABELS. */
#define STRATA__EXPO_LABELS 8
typedef struct strata__labels {
  unsigned n;
  const char *name[STRATA__EXPO_LABELS];
  const char *value[STRATA__EXPO_LABELS];
} strata__labels_t;

/** Empty, using `alloc`. @thread owner */
void strata__expo_init(strata__expo_t *x, const strata__allocator_t *alloc);
/** Free the text. @thread owner */
void strata__expo_fini(strata__expo_t *x);

/** Open family `name` (snake_case, base units, counters ending _total)
 *  with its help text. @thread owner */
void strata__expo_family(strata__expo_t *x, const char *name,
                         strata__metric_type_t type, const char *help);

/** Add label name=value to l (a value NULL is written as ""); labels past
 *  STRATA__EXPO_LABELS are dropped. @thread any (l is the caller's) */
void strata__labels_add(strata__labels_t *l, const char *name,
                        const char *value);

/** One sample of the open family: its name plus `suffix` ("" for counters
 *  and gauges; "_bucket", "_sum", "_count" for histograms), labels l
 *  (NULL: none) and, for buckets, le (NULL otherwise). @thread owner */
void strata__expo_sample(strata__expo_t *x, const char *suffix,
                         const strata__labels_t *l, const char *le,
                         double value);
/** The same with an integer value, written exactly. @thread owner */
void strata__expo_sample_u64(strata__expo_t *x, const char *suffix,
                             const strata__labels_t *l, const char *le,
                             uint64_t value);

#endif /* STRATA_EXPOSITION_H */
