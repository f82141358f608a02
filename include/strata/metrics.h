/* SPDX-License-Identifier: MIT */
/* strata/metrics.h: the runtime's metrics in the Prometheus text format
 * (version 0.0.4): per device (tasks by tier and status, busy time,
 * utilisation, queue depth, memory, temperature, power, throttling, ECC
 * errors, alerts), per link, per memory node, per job and for the policy
 * engine. The families are listed in lua/README.md's "Metrics" and in
 * examples/monitoring/README.md. Three ways out: a call that writes the
 * text, an opt-in HTTP endpoint (GET /metrics) and node_exporter's textfile
 * mode. Counting is always on and costs a task one uncontended atomic add;
 * the exporters cost nothing until started. */
#ifndef STRATA_METRICS_H
#define STRATA_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <strata/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct strata_runtime;

/** Write the metrics to `out` (a snapshot per counter, not of the whole:
 *  each value is read atomically as the text is made). `out` is borrowed:
 *  written, not flushed or closed.
 *  @return 0; STRATA_EINVAL (rt or out NULL); STRATA_ENOMEM; STRATA_EIO
 *          (the write failed)
 *  @thread any */
STRATA_API int strata_metrics_write(struct strata_runtime *rt, FILE *out);

/** Write the metrics into buf (size bytes, the caller's; NUL-terminated).
 * *length (may be NULL) gets the text's length without the NUL, also when it
 * did not fit: call again with length + 1 bytes.
 *  @return 0; STRATA_ERANGE (did not fit: buf holds nothing useful);
 *          STRATA_EINVAL (rt NULL, or buf NULL with size > 0);
 *          STRATA_ENOMEM
 *  @thread any */
STRATA_API int strata_metrics_format(struct strata_runtime *rt, char *buf,
                                     size_t size, size_t *length);

/** Serve GET /metrics over HTTP on `addr` (copied), "HOST:PORT" (an IPv4
 * address, or "localhost"); ":PORT" or "PORT" alone binds 127.0.0.1: another
 *  interface only when given explicitly. PORT 0 picks a free port
 *  (strata_metrics_port tells which). Other paths answer 404, other
 *  methods 405. A client cannot hold the endpoint: requests are bounded
 *  (8 KiB), a connection lives at most 5 s, and at most 16 connections
 *  are served at once (more are refused). The endpoint runs on its own
 *  thread until strata_metrics_stop or the runtime's destruction.
 *  @return 0; STRATA_EINVAL (rt NULL, addr malformed); STRATA_EBUSY
 *          (already listening); STRATA_EIO (the address cannot be bound:
 *          in use, not local); STRATA_ENOTSUP (built without
 *          libmicrohttpd, or libmicrohttpd.so.12 cannot be loaded: it is
 *          loaded at the first call)
 *  @thread any */
STRATA_API int strata_metrics_listen(struct strata_runtime *rt,
                                     const char *addr);

/** @return the endpoint's port; 0 when not listening  @thread any */
STRATA_API int strata_metrics_port(struct strata_runtime *rt);

/** Write the metrics to DIR/strata.prom (dir is copied) for
 *  node_exporter's textfile collector now, then every interval_ms (0:
 *  15000) on a thread, and a
 *  last time at strata_metrics_stop or destruction. Each write goes to a
 *  temporary file in DIR, renamed over strata.prom, so the collector
 *  never reads half a file. A failing write (disk full) is logged and
 *  counted (strata_metrics_textfile_failures_total); the previous file
 *  stays.
 *  @return 0; STRATA_EINVAL (rt or dir NULL, interval negative);
 *          STRATA_EBUSY (already writing); STRATA_EIO (the first write
 *          failed: DIR missing or not writable; nothing started);
 *          STRATA_ENOMEM
 *  @thread any */
STRATA_API int strata_metrics_textfile(struct strata_runtime *rt,
                                       const char *dir, int interval_ms);

/** What the exporters did, and the alerts, since the runtime started. */
typedef struct strata_metrics_stats {
  size_t struct_size;
  uint64_t scrapes;                       /* GET /metrics answered */
  uint64_t textfile_writes;               /* strata.prom written */
  uint64_t textfile_failures;             /* writes that failed */
  uint64_t alerts_raised, alerts_cleared; /* over every device and metric */
  int port;                               /* the endpoint's; 0 none */
} strata_metrics_stats_t;

/** Fill *out (the caller's; set struct_size first: an older, smaller
 *  struct gets the fields it has).
 *  @return 0; STRATA_EINVAL (rt or out NULL, struct_size holds no field)
 *  @thread any */
STRATA_API int strata_metrics_stats(struct strata_runtime *rt,
                                    strata_metrics_stats_t *out);

/** Stop the endpoint and the textfile writer (which writes its last file
 *  first). Counting goes on; either can be started again.
 *  @return 0; STRATA_EINVAL  @thread any but an endpoint's or a
 *  callback's  @blocks until the exporters' threads have ended */
STRATA_API int strata_metrics_stop(struct strata_runtime *rt);

#ifdef __cplusplus
}
#endif

#endif /* STRATA_METRICS_H */
