/* SPDX-License-Identifier: MIT */
/* report.h: what strata-run says of a run, as text for people or as JSON
 * for programs (the keys are documented in examples/jobs/README.md and
 * stay stable): per device (class, name, tasks by tier, busy time,
 * utilisation, bytes in and out of its memory, evictions, cache hits),
 * per job (tasks, failures, wall time, GFLOP/s where the flops are
 * known), the policy (calls, answers from its cache, fallbacks, mean cost
 * of a call), and the check's verdict.
 *
 * The runtime's counters are cumulative: report_begin samples them before
 * the run and report_end after it; the report shows the difference.
 * @thread the launcher's main thread */
#ifndef STRATA_RUN_REPORT_H
#define STRATA_RUN_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "jobrun.h"

typedef struct report report_t;

typedef enum { REPORT_TEXT, REPORT_JSON } report_format_t;

/** Sample the counters before the run.
 *  @return 0; STRATA_ENOMEM; what the runtime answered
 *  @own *out: the caller's, report_free */
int report_begin(strata_runtime_t *rt, report_t **out);

/** Sample them after the run. @return 0, or what the runtime answered */
int report_end(report_t *r);

/** What the report tells beyond the counters. */
typedef struct report_run {
  const char *job_file; /* as the user named it */
  const char *params;   /* "n=512, tile=128" */
  const char *machine;  /* how the machine was chosen, in words */
  const jf_plan_t *plan;
  const jobrun_t *run;
  int status; /* the run's: 0, or the first failure */
  bool has_check;
  bool check_passed;
  const char *check_message;
  const char *metrics_url;  /* the endpoint's, NULL: none */
  const char *metrics_file; /* the textfile's path, NULL: none */
} report_run_t;

/** Write the report to f. @return whether every job completed and its
 *  check passed (the exit status's question) */
bool report_print(const report_t *r, const report_run_t *run,
                  report_format_t format, FILE *f);

void report_free(report_t *r);

#endif /* STRATA_RUN_REPORT_H */
