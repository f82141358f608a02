/* SPDX-License-Identifier: MIT */
/* runtime/observe/metrics_export.c: the public calls that start and stop
 * the exporters (the endpoint, metrics_http.c; the textfile writer,
 * metrics_textfile.c) under the registry's export_mu, and what they did
 * (strata_metrics_stats). */
#include "config.h"

#include "runtime.h"

int strata_metrics_listen(strata_runtime_t *rt, const char *addr) {
  if (!rt || !addr)
    return STRATA_EINVAL;
  pthread_mutex_lock(&rt->metrics.export_mu);
  int rc = strata__metrics_http_start(rt, addr);
  pthread_mutex_unlock(&rt->metrics.export_mu);
  return rc;
}

int strata_metrics_port(strata_runtime_t *rt) {
  return rt ? atomic_load(&rt->metrics.http_port) : 0;
}

int strata_metrics_textfile(strata_runtime_t *rt, const char *dir,
                            int interval_ms) {
  if (!rt || !dir || !*dir || interval_ms < 0)
    return STRATA_EINVAL;
  pthread_mutex_lock(&rt->metrics.export_mu);
  int rc = strata__metrics_textfile_start(rt, dir, interval_ms);
  pthread_mutex_unlock(&rt->metrics.export_mu);
  return rc;
}

void strata__metrics_export_stop(strata_runtime_t *rt) {
  pthread_mutex_lock(&rt->metrics.export_mu);
  strata__metrics_http_stop(rt);
  strata__metrics_textfile_stop(rt);
  pthread_mutex_unlock(&rt->metrics.export_mu);
}

int strata_metrics_stop(strata_runtime_t *rt) {
  if (!rt)
    return STRATA_EINVAL;
  strata__metrics_export_stop(rt);
  return STRATA_OK;
}

int strata_metrics_stats(strata_runtime_t *rt, strata_metrics_stats_t *out) {
  if (!rt || !out)
    return STRATA_EINVAL;
  strata__metrics_t *m = &rt->metrics;
  strata_metrics_stats_t s = {.struct_size = sizeof s};
  s.scrapes = atomic_load(&m->scrapes);
  s.textfile_writes = atomic_load(&m->textfile_writes);
  s.textfile_failures = atomic_load(&m->textfile_failures);
  for (size_t d = 0; d < rt->ndevices; d++)
    for (int a = 0; a < STRATA__ALERT_METRICS; a++) {
      strata__alert_state_t st;
      if (strata__policy_alert_state(rt, (int)d, a, &st))
        continue;
      s.alerts_raised += st.raised;
      s.alerts_cleared += st.cleared;
    }
  s.port = atomic_load(&m->http_port);
  return strata__copy_out(out, &s, sizeof s);
}
