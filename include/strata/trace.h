/* SPDX-License-Identifier: MIT */
/* strata/trace.h: a recording of a run: every task's run on its device's
 * worker, every copy between memory nodes, and each memory node's use, to
 * write as a Chrome trace-event file (it opens in Perfetto) or as an SVG
 * timeline. Off by default; when off it costs one relaxed load where a
 * task ends and where a copy starts. */
#ifndef STRATA_TRACE_H
#define STRATA_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include <strata/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct strata_runtime;

/** Start recording, forgetting an earlier recording.
 *  @param max_events  the most events kept (0: 1,000,000); beyond, they
 *                     are counted as dropped
 *  @return 0; STRATA_EINVAL (rt NULL) (the memory for events is taken as
 *          they come: what cannot be had is counted as dropped)
 *  @thread any */
STRATA_API int strata_trace_start(struct strata_runtime *rt, size_t max_events);

/** Stop recording; what was recorded stays, to be written.
 *  @return 0; STRATA_EINVAL  @thread any */
STRATA_API int strata_trace_stop(struct strata_runtime *rt);

typedef enum strata_trace_format {
  /* Chrome trace-event JSON: a track per device worker (a slice per task:
   * name, kernel, tier, job), a track per link (a slice per copy, with its
   * bytes), a counter per memory node (bytes in use). */
  STRATA_TRACE_CHROME_JSON = 0,
  /* An SVG timeline: a lane per device worker with its tasks coloured by
   * tier, a lane per link with its copies, a legend and a time axis;
   * slices thinner than a pixel are drawn together as one. */
  STRATA_TRACE_SVG = 1
} strata_trace_format_t;

/** Write the recording to `path` (recording may go on meanwhile: what is
 *  written is what was recorded by the call).
 *  @return 0; STRATA_EINVAL (NULL, unknown format); STRATA_ESTATE (nothing
 *          was ever recorded); STRATA_EIO (the file cannot be written:
 *          logged with the reason); STRATA_ENOMEM
 *  @thread any */
STRATA_API int strata_trace_write(struct strata_runtime *rt, const char *path,
                                  strata_trace_format_t format);

/** Events recorded and dropped since the last start.
 *  @return 0; STRATA_EINVAL  @thread any */
STRATA_API int strata_trace_counts(const struct strata_runtime *rt,
                                   uint64_t *events, uint64_t *dropped);

#ifdef __cplusplus
}
#endif

#endif /* STRATA_TRACE_H */
