/* SPDX-License-Identifier: MIT */
/* runtime/observe/metrics.c: the metrics registry (metrics.h): its own
 * counters, and the exposition, family by family, read from the modules
 * that count (the public readers, strata__jobs_each, the policy engine's
 * alert and decision-time readers), and strata_metrics_format and
 * strata_metrics_write. */
#include "config.h"

#include "runtime.h"

#include <stddef.h>
#include <string.h>

#define COMP "metrics"

/* {=== The registry's own counters ===} */

void strata__metrics_init(strata_runtime_t *rt) {
  strata__metrics_t *m = &rt->metrics;
  memset(m, 0, sizeof *m);
  pthread_mutex_init(&m->tiers_mu, NULL);
  pthread_mutex_init(&m->export_mu, NULL);
  strcpy(m->tiers[0], "none");
  atomic_init(&m->ntiers, 1);
}

/* "hbm0", "gddr1", "cpu0": the class and the device's rank within it. */
static void device_id(strata_runtime_t *rt, size_t d, char *out, size_t n) {
  strata_device_class_t c = rt->devices[d]->desc.device_class;
  unsigned rank = 0;
  for (size_t e = 0; e < d; e++)
    rank += rt->devices[e]->desc.device_class == c;
  snprintf(out, n, "%s%u", strata_device_class_name(c), rank);
}

int strata__metrics_size(strata_runtime_t *rt) {
  strata__metrics_t *m = &rt->metrics;
  m->dev = strata__zalloc(&rt->alloc, rt->ndevices * sizeof *m->dev);
  if (!m->dev)
    return STRATA_ENOMEM;
  m->ndev = rt->ndevices;
  for (size_t d = 0; d < m->ndev; d++) {
    strata__metrics_device_t *md = &m->dev[d];
    unsigned w =
        rt->devices[d]->desc.nworkers ? rt->devices[d]->desc.nworkers : 1;
    /* One line more, to start the counters on a line of their own. */
    md->block_bytes = w * sizeof *md->workers + 64;
    md->block = strata__zalloc(&rt->alloc, md->block_bytes);
    if (!md->block)
      return STRATA_ENOMEM;
    md->workers = (strata__metrics_worker_t *)(((uintptr_t)md->block + 63) &
                                               ~(uintptr_t)63);
    md->nworkers = w;
    device_id(rt, d, md->id, sizeof md->id);
  }
  return STRATA_OK;
}

void strata__metrics_fini(strata_runtime_t *rt) {
  strata__metrics_t *m = &rt->metrics;
  for (size_t d = 0; m->dev && d < m->ndev; d++)
    strata__free(&rt->alloc, m->dev[d].block, m->dev[d].block_bytes);
  strata__free(&rt->alloc, m->dev, m->ndev * sizeof *m->dev);
  pthread_mutex_destroy(&m->export_mu);
  pthread_mutex_destroy(&m->tiers_mu);
  m->dev = NULL;
  m->ndev = 0;
}

/* The index of tier `name` in the table, adding it when there is room; the
 * last index ("other") when there is none or the name is too long.
 * Lock-free once a tier is in. */
static unsigned tier_index(strata_runtime_t *rt, const char *name) {
  strata__metrics_t *m = &rt->metrics;
  const unsigned other = STRATA__METRICS_TIERS - 1;
  if (!name)
    return 0;
  unsigned n = atomic_load_explicit(&m->ntiers, memory_order_acquire);
  for (unsigned t = 1; t < n; t++)
    if (!strcmp(m->tiers[t], name))
      return t;
  if (strlen(name) >= STRATA__METRICS_TIER_NAME)
    return other;
  pthread_mutex_lock(&m->tiers_mu);
  n = atomic_load_explicit(&m->ntiers, memory_order_relaxed);
  unsigned found = other;
  for (unsigned t = 1; t < n && found == other; t++)
    if (!strcmp(m->tiers[t], name))
      found = t;
  if (found == other && n < other) {
    strcpy(m->tiers[n], name);
    atomic_store_explicit(&m->ntiers, n + 1, memory_order_release);
    found = n;
  }
  pthread_mutex_unlock(&m->tiers_mu);
  return found;
}

void strata__metrics_task_ran(strata_runtime_t *rt, int d, unsigned worker,
                              const char *tier, bool failed) {
  strata__metrics_t *m = &rt->metrics;
  if (STRATA_UNLIKELY(!m->dev || (size_t)d >= m->ndev))
    return;
  strata__metrics_device_t *md = &m->dev[d];
  unsigned t = tier_index(rt, tier);
  atomic_fetch_add_explicit(&md->workers[worker % md->nworkers].ran[t][failed],
                            1, memory_order_relaxed);
}

/* {=== The exposition, family by family ===} */

/* What every device family is labelled with. */
typedef struct device_view {
  strata_device_info_t info;
  strata_device_stats_t stats;
  strata_health_t health;
  bool has_health;
  const char *class_name;
} device_view_t;

typedef struct collect {
  strata_runtime_t *rt;
  strata__expo_t *x;
  device_view_t *dev;
  size_t ndev;
} collect_t;

static strata__labels_t device_labels(const collect_t *c, size_t d) {
  strata__labels_t l = {0};
  strata__labels_add(&l, "device", c->rt->metrics.dev[d].id);
  strata__labels_add(&l, "class", c->dev[d].class_name);
  strata__labels_add(&l, "model",
                     c->dev[d].info.model[0] ? c->dev[d].info.model
                                             : c->dev[d].info.name);
  return l;
}

static void read_devices(collect_t *c) {
  for (size_t d = 0; d < c->ndev; d++) {
    device_view_t *v = &c->dev[d];
    v->info.struct_size = sizeof v->info;
    v->stats.struct_size = sizeof v->stats;
    v->health.struct_size = sizeof v->health;
    (void)strata_device_info(c->rt, (int)d, &v->info);
    (void)strata_device_stats(c->rt, (int)d, &v->stats);
    v->has_health = strata_device_health(c->rt, (int)d, &v->health) == 0;
    v->class_name = strata_device_class_name(v->info.device_class);
  }
}

static void device_info_family(collect_t *c) {
  strata__expo_family(c->x, "strata_device_info", STRATA__GAUGE,
                      "A device the runtime drives (value 1): its full name "
                      "and backend");
  for (size_t d = 0; d < c->ndev; d++) {
    strata__labels_t l = device_labels(c, d);
    strata__labels_add(&l, "name", c->dev[d].info.name);
    strata__labels_add(&l, "backend", c->dev[d].info.backend);
    strata__expo_sample_u64(c->x, "", &l, NULL, 1);
  }
}

/* Tasks by tier and status, summed over the device's workers. */
static void device_tasks_family(collect_t *c) {
  strata__metrics_t *m = &c->rt->metrics;
  strata__expo_family(c->x, "strata_device_tasks_total", STRATA__COUNTER,
                      "Tasks that ran on the device, by tier (none: no tier "
                      "attribute) and status (ok, failed)");
  unsigned ntiers = atomic_load_explicit(&m->ntiers, memory_order_acquire);
  for (size_t d = 0; d < c->ndev; d++) {
    strata__metrics_device_t *md = &m->dev[d];
    for (unsigned t = 0; t < STRATA__METRICS_TIERS; t++) {
      if (t >= ntiers && t != STRATA__METRICS_TIERS - 1)
        continue;
      for (int f = 0; f < 2; f++) {
        uint64_t n = 0;
        for (unsigned w = 0; w < md->nworkers; w++)
          n += atomic_load_explicit(&md->workers[w].ran[t][f],
                                    memory_order_relaxed);
        if (!n && (t || f)) /* "none"/"ok" is always there */
          continue;
        strata__labels_t l = device_labels(c, d);
        strata__labels_add(
            &l, "tier", t == STRATA__METRICS_TIERS - 1 ? "other" : m->tiers[t]);
        strata__labels_add(&l, "status", f ? "failed" : "ok");
        strata__expo_sample_u64(c->x, "", &l, NULL, n);
      }
    }
  }
}

/* A gauge or counter with one sample per device, from a reader; a reader
 * answering false leaves the device out (its backend cannot tell). */
typedef bool (*device_reader_t)(const device_view_t *v, double *out);

static void device_family(collect_t *c, const char *name,
                          strata__metric_type_t type, const char *help,
                          device_reader_t read) {
  bool opened = false;
  for (size_t d = 0; d < c->ndev; d++) {
    double value;
    if (!read(&c->dev[d], &value))
      continue;
    if (!opened)
      strata__expo_family(c->x, name, type, help);
    opened = true;
    strata__labels_t l = device_labels(c, d);
    strata__expo_sample(c->x, "", &l, NULL, value);
  }
}

static bool read_workers(const device_view_t *v, double *out) {
  *out = v->info.workers;
  return true;
}
static bool read_busy(const device_view_t *v, double *out) {
  *out = (double)v->stats.busy_ns * 1e-9;
  return true;
}
static bool read_queue(const device_view_t *v, double *out) {
  *out = (double)v->stats.load;
  return true;
}
static bool read_failed(const device_view_t *v, double *out) {
  *out = v->info.failed != 0;
  return true;
}
static bool read_total_memory(const device_view_t *v, double *out) {
  *out = (double)v->info.memory_bytes;
  return v->info.memory_bytes > 0;
}
static bool read_used_memory(const device_view_t *v, double *out) {
  *out = (double)v->health.memory_used_bytes;
  return v->has_health && v->health.memory_used_bytes >= 0;
}
static bool read_utilisation(const device_view_t *v, double *out) {
  *out = v->health.utilisation;
  return v->has_health && v->health.utilisation >= 0;
}
static bool read_temperature(const device_view_t *v, double *out) {
  *out = v->health.temperature_c;
  return v->has_health && v->health.temperature_c >= -273;
}
static bool read_power(const device_view_t *v, double *out) {
  *out = v->health.power_w;
  return v->has_health && v->health.power_w >= 0;
}
static bool read_throttled(const device_view_t *v, double *out) {
  *out = v->health.throttled;
  return v->has_health && v->health.throttled >= 0;
}

static void device_families(collect_t *c) {
  device_info_family(c);
  device_family(c, "strata_device_workers", STRATA__GAUGE,
                "Threads that run the device's tasks", read_workers);
  device_tasks_family(c);
  device_family(c, "strata_device_busy_seconds_total", STRATA__COUNTER,
                "Time the device's workers spent in kernels, summed over "
                "workers",
                read_busy);
  device_family(c, "strata_device_utilisation_ratio", STRATA__GAUGE,
                "Utilisation over the backend's last sample period (0..1), "
                "where the backend reads it",
                read_utilisation);
  device_family(c, "strata_device_queue_depth", STRATA__GAUGE,
                "Tasks placed on the device that have not ended (queued, "
                "staging or running)",
                read_queue);
  device_family(c, "strata_device_memory_total_bytes", STRATA__GAUGE,
                "The device's memory", read_total_memory);
  device_family(c, "strata_device_memory_used_bytes", STRATA__GAUGE,
                "Device memory in use by any process, as the driver tells",
                read_used_memory);
  device_family(c, "strata_device_temperature_celsius", STRATA__GAUGE,
                "The device's temperature", read_temperature);
  device_family(c, "strata_device_power_watts", STRATA__GAUGE,
                "The board's power draw", read_power);
  device_family(c, "strata_device_throttled", STRATA__GAUGE,
                "1 when clocks are held down by something other than "
                "idleness or the application",
                read_throttled);
  device_family(c, "strata_device_failed", STRATA__GAUGE,
                "1 once the device failed: it runs nothing more", read_failed);
}

static void ecc_family(collect_t *c) {
  bool opened = false;
  for (size_t d = 0; d < c->ndev; d++) {
    const strata_health_t *h = &c->dev[d].health;
    if (!c->dev[d].has_health || h->ecc_corrected < 0)
      continue;
    if (!opened)
      strata__expo_family(c->x, "strata_device_ecc_errors_total",
                          STRATA__COUNTER,
                          "Volatile ECC errors since the driver loaded, by "
                          "type (corrected, uncorrected)");
    opened = true;
    const char *type[] = {"corrected", "uncorrected"};
    int64_t n[] = {h->ecc_corrected, h->ecc_uncorrected};
    for (int k = 0; k < 2; k++) {
      if (n[k] < 0)
        continue;
      strata__labels_t l = device_labels(c, d);
      strata__labels_add(&l, "type", type[k]);
      strata__expo_sample_u64(c->x, "", &l, NULL, (uint64_t)n[k]);
    }
  }
}

static void alert_families(collect_t *c) {
  static const char *const names[] = {
      "strata_alerts_raised_total", "strata_alerts_cleared_total",
      "strata_alert_active", "strata_alert_threshold"};
  static const char *const helps[] = {
      "Health alerts raised (a reading went above its threshold)",
      "Health alerts cleared (the reading fell below the threshold minus "
      "the hysteresis)",
      "1 while the alert is raised",
      "The reading above which the alert is raised (celsius, watts)"};
  for (int k = 0; k < 4; k++) {
    bool opened = false; /* without a policy engine there are no alerts */
    for (size_t d = 0; d < c->ndev; d++)
      for (int a = 0; a < STRATA__ALERT_METRICS; a++) {
        strata__alert_state_t st;
        if (strata__policy_alert_state(c->rt, (int)d, a, &st))
          continue;
        if (!opened)
          strata__expo_family(c->x, names[k],
                              k < 2 ? STRATA__COUNTER : STRATA__GAUGE,
                              helps[k]);
        opened = true;
        strata__labels_t l = device_labels(c, d);
        strata__labels_add(&l, "metric", strata__alert_metric_name(a));
        if (k == 3)
          strata__expo_sample(c->x, "", &l, NULL, st.threshold);
        else
          strata__expo_sample_u64(c->x, "", &l, NULL,
                                  k == 0   ? st.raised
                                  : k == 1 ? st.cleared
                                           : st.active);
      }
  }
}

/* {=== Links and memory nodes ===} */

static void node_name(strata_runtime_t *rt, int node, char *out, size_t n) {
  strata_memory_node_info_t mi = {.struct_size = sizeof mi};
  if (strata_memory_node_info(rt, node, &mi) == 0 && mi.device >= 0 &&
      (size_t)mi.device < rt->metrics.ndev)
    snprintf(out, n, "%s", rt->metrics.dev[mi.device].id);
  else if (strata_memory_node_info(rt, node, &mi) == 0)
    snprintf(out, n, "%s",
             mi.kind == STRATA_NODE_PINNED  ? "pinned"
             : mi.kind == STRATA_NODE_SPILL ? "spill"
                                            : "host");
  else
    snprintf(out, n, "node%d", node);
}

static void link_families(collect_t *c) {
  int nodes = strata_memory_node_count(c->rt);
  static const char *const names[] = {"strata_link_bytes_total",
                                      "strata_link_copies_total",
                                      "strata_link_failures_total"};
  static const char *const helps[] = {
      "Bytes copied from memory node src to dst",
      "Copies from memory node src to dst",
      "Copies from src to dst that failed (and were retried)"};
  for (int k = 0; k < 3; k++) {
    bool opened = false; /* a family with no link used yet is left out */
    for (int s = 0; s < nodes; s++)
      for (int t = 0; t < nodes; t++) {
        strata_link_stats_t ls = {.struct_size = sizeof ls};
        if (s == t || strata_link_stats(c->rt, s, t, &ls) || !ls.copies)
          continue;
        if (!opened)
          strata__expo_family(c->x, names[k], STRATA__COUNTER, helps[k]);
        opened = true;
        char src[32], dst[32];
        node_name(c->rt, s, src, sizeof src);
        node_name(c->rt, t, dst, sizeof dst);
        strata__labels_t l = {0};
        strata__labels_add(&l, "src", src);
        strata__labels_add(&l, "dst", dst);
        uint64_t v = k == 0 ? ls.bytes : k == 1 ? ls.copies : ls.failures;
        strata__expo_sample_u64(c->x, "", &l, NULL, v);
      }
  }
}

static const char *node_kind_name(strata_node_kind_t k) {
  switch (k) {
  case STRATA_NODE_DEVICE:
    return "device";
  case STRATA_NODE_PINNED:
    return "pinned";
  case STRATA_NODE_SPILL:
    return "spill";
  default:
    return "host";
  }
}

#define NODE_FIELD(f) offsetof(strata_memory_node_info_t, f)

static void node_families(collect_t *c) {
  static const struct {
    const char *name, *help;
    strata__metric_type_t type;
    size_t field; /* offsetof a uint64_t of strata_memory_node_info_t */
    bool spill_only;
  } fam[] = {
      {"strata_memory_used_bytes",
       "Bytes held on the memory node (replicas, and blocks kept for reuse)",
       STRATA__GAUGE, NODE_FIELD(used), false},
      {"strata_memory_capacity_bytes",
       "What the runtime may hold on the node (0: unlimited)", STRATA__GAUGE,
       NODE_FIELD(capacity), false},
      {"strata_memory_evictions_total", "Replicas evicted from the node",
       STRATA__COUNTER, NODE_FIELD(evictions), false},
      {"strata_memory_writebacks_total",
       "Evicted replicas first written to the next tier", STRATA__COUNTER,
       NODE_FIELD(writebacks), false},
      {"strata_memory_cache_hits_total",
       "Tasks that found their data on the node", STRATA__COUNTER,
       NODE_FIELD(hits), false},
      {"strata_memory_cache_misses_total",
       "Tasks whose data had to be copied to the node", STRATA__COUNTER,
       NODE_FIELD(misses), false},
      {"strata_memory_prefetches_total",
       "Replicas copied to the node ahead of their task", STRATA__COUNTER,
       NODE_FIELD(prefetches), false},
      {"strata_memory_spilled_bytes",
       "Bytes of data spilled to the disk tier now", STRATA__GAUGE,
       NODE_FIELD(used), true},
  };
  int nodes = strata_memory_node_count(c->rt);
  for (size_t f = 0; f < sizeof fam / sizeof *fam; f++) {
    bool opened = false;
    for (int n = 0; n < nodes; n++) {
      strata_memory_node_info_t mi = {.struct_size = sizeof mi};
      if (strata_memory_node_info(c->rt, n, &mi) ||
          (fam[f].spill_only && mi.kind != STRATA_NODE_SPILL))
        continue;
      if (!opened)
        strata__expo_family(c->x, fam[f].name, fam[f].type, fam[f].help);
      opened = true;
      char name[32];
      node_name(c->rt, n, name, sizeof name);
      strata__labels_t l = {0};
      strata__labels_add(&l, "node", name);
      strata__labels_add(&l, "kind", node_kind_name(mi.kind));
      uint64_t v;
      memcpy(&v, (const char *)&mi + fam[f].field, sizeof v);
      strata__expo_sample_u64(c->x, "", &l, NULL, v);
    }
  }
}

#undef NODE_FIELD

/* {=== Jobs and the policy ===} */

typedef struct job_sample {
  collect_t *c;
  int state; /* which of job_states */
} job_sample_t;

static const char *const job_states[] = {"submitted", "pending",  "succeeded",
                                         "failed",    "canceled", "dep_failed"};

static void job_row(strata_job_t job, const char *name,
                    const strata_job_info_t *info, void *ud) {
  job_sample_t *s = ud;
  const uint64_t v[] = {info->submitted, info->pending,  info->succeeded,
                        info->failed,    info->canceled, info->dep_failed};
  char id[24];
  snprintf(id, sizeof id, "%llu", (unsigned long long)job.id);
  strata__labels_t l = {0};
  strata__labels_add(&l, "job", name[0] ? name : id);
  strata__labels_add(&l, "job_id", id);
  strata__labels_add(&l, "state", job_states[s->state]);
  strata__expo_sample_u64(s->c->x, "", &l, NULL, v[s->state]);
}

static void job_families(collect_t *c) {
  strata__expo_family(c->x, "strata_job_tasks", STRATA__GAUGE,
                      "Tasks of a live job by state (submitted, pending, "
                      "succeeded, failed, canceled, dep_failed)");
  for (int s = 0; s < (int)(sizeof job_states / sizeof *job_states); s++) {
    job_sample_t js = {c, s};
    strata__jobs_each(c->rt, job_row, &js);
  }
}

static void policy_families(collect_t *c) {
  strata_policy_stats_t ps = {.struct_size = sizeof ps};
  if (strata_policy_stats(c->rt, &ps))
    return;
  static const char *const names[] = {
      "strata_policy_calls_total",     "strata_policy_errors_total",
      "strata_policy_fallbacks_total", "strata_policy_cache_hits_total",
      "strata_policy_alerts_total",    "strata_policy_probations_total"};
  static const char *const helps[] = {
      "Policy hook calls into Lua",
      "Policy hook errors (raised, over budget, out of memory)",
      "Decisions made by the built-in default because the hook failed or "
      "answered something invalid",
      "Placements answered from the policy's shape cache without Lua",
      "Calls of the policy's alert and alert_cleared hooks",
      "Times a failing hook was put on probation"};
  const uint64_t v[] = {ps.calls,  ps.errors, ps.fallbacks,
                        ps.cached, ps.alerts, ps.probations};
  for (int k = 0; k < 6; k++) {
    strata__expo_family(c->x, names[k], STRATA__COUNTER, helps[k]);
    strata__labels_t l = {0};
    strata__labels_add(&l, "policy", ps.name);
    strata__expo_sample_u64(c->x, "", &l, NULL, v[k]);
  }
  uint64_t buckets[STRATA__DECISION_BUCKETS], count, sum_ns;
  if (strata__policy_decision_times(c->rt, buckets, &count, &sum_ns))
    return;
  strata__expo_family(c->x, "strata_policy_decision_seconds", STRATA__HISTOGRAM,
                      "Time of one policy hook call (one call in eight is "
                      "timed)");
  uint64_t cumulative = 0;
  strata__labels_t l = {0};
  strata__labels_add(&l, "policy", ps.name);
  for (int b = 0; b < STRATA__DECISION_BUCKETS; b++) {
    char le[32];
    snprintf(le, sizeof le, "%g", (double)strata__decision_bounds_ns[b] * 1e-9);
    cumulative += buckets[b];
    strata__expo_sample_u64(c->x, "_bucket", &l, le, cumulative);
  }
  /* Buckets and count are read apart: keep +Inf >= every bucket. */
  if (count < cumulative)
    count = cumulative;
  strata__expo_sample_u64(c->x, "_bucket", &l, "+Inf", count);
  strata__expo_sample(c->x, "_sum", &l, NULL, (double)sum_ns * 1e-9);
  strata__expo_sample_u64(c->x, "_count", &l, NULL, count);
}

static void exporter_families(collect_t *c) {
  strata__metrics_t *m = &c->rt->metrics;
  strata__expo_family(c->x, "strata_metrics_scrapes_total", STRATA__COUNTER,
                      "Requests for /metrics the endpoint answered");
  strata__expo_sample_u64(c->x, "", NULL, NULL, atomic_load(&m->scrapes));
  strata__expo_family(c->x, "strata_metrics_textfile_failures_total",
                      STRATA__COUNTER,
                      "Textfile writes that failed (the previous file stays)");
  strata__expo_sample_u64(c->x, "", NULL, NULL,
                          atomic_load(&m->textfile_failures));
}

void strata__metrics_collect(strata_runtime_t *rt, strata__expo_t *x) {
  collect_t c = {.rt = rt, .x = x, .ndev = rt->metrics.ndev};
  c.dev = strata__zalloc(&rt->alloc, (c.ndev ? c.ndev : 1) * sizeof *c.dev);
  if (!c.dev) {
    x->failed = true;
    return;
  }
  read_devices(&c);
  device_families(&c);
  ecc_family(&c);
  alert_families(&c);
  link_families(&c);
  node_families(&c);
  job_families(&c);
  policy_families(&c);
  exporter_families(&c);
  strata__free(&rt->alloc, c.dev, (c.ndev ? c.ndev : 1) * sizeof *c.dev);
}

/* {=== Public API ===} */

int strata_metrics_format(strata_runtime_t *rt, char *buf, size_t size,
                          size_t *length) {
  if (!rt || (!buf && size))
    return STRATA_EINVAL;
  strata__expo_t x;
  strata__expo_init(&x, &rt->alloc);
  strata__metrics_collect(rt, &x);
  int rc = x.failed ? STRATA_ENOMEM : STRATA_OK;
  if (!rc && length)
    *length = x.len;
  if (!rc && x.len + 1 > size)
    rc = STRATA_ERANGE;
  if (!rc)
    memcpy(buf, x.buf ? x.buf : "", x.len + 1);
  strata__expo_fini(&x);
  return rc;
}

int strata_metrics_write(strata_runtime_t *rt, FILE *out) {
  if (!rt || !out)
    return STRATA_EINVAL;
  strata__expo_t x;
  strata__expo_init(&x, &rt->alloc);
  strata__metrics_collect(rt, &x);
  int rc = x.failed ? STRATA_ENOMEM : STRATA_OK;
  if (!rc && x.len && fwrite(x.buf, 1, x.len, out) != x.len)
    rc = STRATA_EIO;
  strata__expo_fini(&x);
  return rc;
}
