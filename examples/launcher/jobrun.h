/* SPDX-License-Identifier: MIT */
/* jobrun.h: running a job file's plan on a runtime: the buffers made and
 * filled on the host, registered and tagged; the kernels registered; the
 * jobs created and every task submitted in the plan's order (the runtime
 * derives the dependencies from the accesses); then waited for, with each
 * task's device, status and end time recorded for the report, and the
 * buffers brought home for the check.
 * The task callbacks find the run through strata_runtime_get_data: the
 * runtime's user data is the run's while it runs.
 * @thread the launcher's main thread; jobrun_done may be read from any */
#ifndef STRATA_RUN_JOBRUN_H
#define STRATA_RUN_JOBRUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jobfile.h"

/** What became of one task. */
typedef struct jr_task {
  strata_task_t handle;
  int device; /* -1: never placed */
  int status;
  uint64_t end_ns; /* monotonic clock; 0: not ended */
} jr_task_t;

/** What became of one job. */
typedef struct jr_job {
  strata_job_t handle;
  uint64_t tasks, succeeded, failed, dep_failed, canceled;
  int status;    /* strata_job_wait's */
  double wall_s; /* from the first submission to its last task's end */
  double flops;  /* of its tasks that succeeded; < 0: unknown */
  char first_failed[64];
} jr_job_t;

typedef struct jobrun jobrun_t;

/** Make the buffers (filled on the host), register them, register the
 *  kernels and create the jobs.
 *  @return 0; STRATA_ENOMEM, or what the runtime answered; "what: why"
 *          in err
 *  @own *out: the caller's, jobrun_free */
int jobrun_setup(strata_runtime_t *rt, const jf_plan_t *plan, jobrun_t **out,
                 char *err, size_t errlen);

/** Submit every task, in order. On a failure the jobs are canceled (what
 *  was submitted ends) and the task is named in err. @return 0 or the
 *  runtime's status */
int jobrun_submit(jobrun_t *jr, char *err, size_t errlen);

/** Wait for every job, then unregister the buffers (their final data is
 *  then in host memory, jobrun_data) and read where each task ran.
 *  @return 0 when every task succeeded; else the first failing status */
int jobrun_wait(jobrun_t *jr);

/** Tasks ended so far (for a progress line). @thread any */
uint64_t jobrun_done(const jobrun_t *jr);

/** The plan's buffers' host memory, by plan index. @own borrowed */
void *const *jobrun_data(const jobrun_t *jr);

const jr_task_t *jobrun_tasks(const jobrun_t *jr);
const jr_job_t *jobrun_jobs(const jobrun_t *jr);
/** Seconds from the first submission to the last task's end. */
double jobrun_wall(const jobrun_t *jr);

/** Unregister what is still registered (waiting for its tasks), release
 *  the handles and free the memory. NULL is a no-op. */
void jobrun_free(jobrun_t *jr);

#endif /* STRATA_RUN_JOBRUN_H */
