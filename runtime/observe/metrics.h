/* SPDX-License-Identifier: MIT */
/* runtime/observe/metrics.h: the metrics registry behind strata/metrics.h.
 * Most of what it exports is counted already by the module that owns it
 * (device stats, the health cache, memory nodes, links, jobs, the policy
 * engine's calls, alerts and decision times): the registry reads those
 * when it is asked for the text, through their readers, and counts only
 * what nobody else does: the tasks per device by tier and status. Those
 * are relaxed atomic adds on a line of the worker's own, so counting costs
 * a task one uncontended add and no lock (a tier's first task takes a
 * leaf lock once, to copy the tier's name in; nothing is allocated).
 *
 * Three modules: this one (the counters and the text), and the exporters
 * that read it, metrics_export.c (the public calls that start and stop
 * them), metrics_http.c (the endpoint) and metrics_textfile.c (the
 * textfile writer). */
#ifndef STRATA_METRICS_INTERNAL_H
#define STRATA_METRICS_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <strata/metrics.h>

#include "exposition.h"

struct strata_runtime;

/* Tier names the registry tells apart; the first is "none" (no tier), the
 * last "other" (tiers past the table). */
#define STRATA__METRICS_TIERS 16

/* One worker's task counters: [tier][0 ok, 1 failed], on lines of their
 * own. */
typedef struct strata__metrics_worker {
  _Alignas(64) _Atomic uint64_t ran[STRATA__METRICS_TIERS][2];
} strata__metrics_worker_t;

typedef struct strata__metrics_device {
  void *block; /* what workers lies in */
  size_t block_bytes;
  strata__metrics_worker_t *workers;
  unsigned nworkers;
  char id[32]; /* the device label: class and ordinal, "hbm0" */
} strata__metrics_device_t;

struct strata__metrics_http;     /* metrics_http.c's */
struct strata__metrics_textfile; /* metrics_textfile.c's */

/* The longest tier name told apart (longer ones count as "other"). */
#define STRATA__METRICS_TIER_NAME 32

typedef struct strata__metrics {
  /* Tier names, in place: a task's end never allocates. Entry t is
   * written once, under tiers_mu, before ntiers (released) covers it. */
  pthread_mutex_t tiers_mu; /* adding a tier (a leaf) */
  char tiers[STRATA__METRICS_TIERS][STRATA__METRICS_TIER_NAME];
  atomic_uint ntiers;
  strata__metrics_device_t *dev;
  size_t ndev;
  /* The exporters' (metrics_export.c and the two it starts). */
  pthread_mutex_t export_mu; /* starting and stopping them */
  _Atomic uint64_t scrapes, textfile_writes, textfile_failures;
  struct strata__metrics_http *http;
  struct strata__metrics_textfile *textfile;
  _Atomic int http_port; /* 0: not listening */
} strata__metrics_t;

/** Empty registry. @thread owner (creation, before the devices exist) */
void strata__metrics_init(struct strata_runtime *rt);
/** Counters for every device and worker; call once the devices exist.
 *  @return 0; STRATA_ENOMEM  @thread owner (creation) */
int strata__metrics_size(struct strata_runtime *rt);
/** Free (the exporters must be stopped). @thread owner (teardown, after
 *  every thread that counts) */
void strata__metrics_fini(struct strata_runtime *rt);

/** A task of `tier` (NULL: none) ended on worker `worker` of device d,
 *  failed or not. @thread any; lock-free once the tier is known */
void strata__metrics_task_ran(struct strata_runtime *rt, int d, unsigned worker,
                              const char *tier, bool failed);

/** Append the whole exposition to x (x->failed when memory ran out).
 *  @thread any  @blocks no (leaf locks, briefly) */
void strata__metrics_collect(struct strata_runtime *rt, strata__expo_t *x);

/* {=== Exporters ===} */

/** Stop the endpoint and the textfile writer (a last write first). Safe
 *  to call twice. @thread owner or any caller of strata_metrics_stop */
void strata__metrics_export_stop(struct strata_runtime *rt);

/** metrics_http.c, under export_mu.
 *  @return 0; STRATA_EINVAL (malformed address); STRATA_EBUSY; STRATA_EIO
 *          (cannot bind); STRATA_ENOMEM; STRATA_ENOTSUP (no libmicrohttpd) */
int strata__metrics_http_start(struct strata_runtime *rt, const char *addr);
void strata__metrics_http_stop(struct strata_runtime *rt);

/** metrics_textfile.c, under export_mu.
 *  @return 0; STRATA_EBUSY; STRATA_EIO (the first write failed, logged);
 *          STRATA_ENOMEM */
int strata__metrics_textfile_start(struct strata_runtime *rt, const char *dir,
                                   int interval_ms);
void strata__metrics_textfile_stop(struct strata_runtime *rt);

#endif /* STRATA_METRICS_INTERNAL_H */
