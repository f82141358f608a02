/* SPDX-License-Identifier: MIT */
/* jobfile.h: job files, the Lua scripts strata-run runs
 * (examples/jobs/README.md is the format's reference). Loading runs the
 * script once in the runtime's shared sandbox (no io, os or package;
 * bounded instructions, time and memory) with the job API in its globals:
 * params, buffer, job, task, check and policy. What it declares is recorded in
 * a plan, every call checked as it is made (an unknown kernel, a buffer not
 * declared yet, a mode the kernel does not allow, a precision no device
 * runs, a malformed shape...), so that a bad file fails before anything
 * runs, with its file and line. The sandbox stays open for the check,
 * which runs after the jobs.
 * @thread the launcher's main thread */
#ifndef STRATA_RUN_JOBFILE_H
#define STRATA_RUN_JOBFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernlib.h"

/* What a plan may hold: generous for real jobs, finite for a runaway
 * loop in a script. */
#define JF_MAX_TASKS 1000000u
#define JF_MAX_BUFFERS 100000u
#define JF_MAX_JOBS 1000u
#define JF_MAX_SETS 64u
#define JF_MAX_PARAMS 256u
#define JF_MAX_ACCESSES 64u /* buffers of one task */

typedef struct jf_buffer {
  char name[64];
  strata_elem_t type;
  size_t count;           /* elements */
  int line;               /* where it was declared */
  char tag[64];           /* "" none */
  kernlib_kernel_t *init; /* writes its contents on the host; NULL: zeros */
  double *init_args;      /* init's arguments (defaults filled in) */
} jf_buffer_t;

typedef struct jf_job {
  char name[64], tier[64], precision[16];
  int priority;
  bool has_priority;
  int line;
} jf_job_t;

typedef struct jf_task {
  kernlib_kernel_t *kernel;
  strata_elem_t type;
  uint32_t nbuffers;
  uint32_t *buffers; /* indexes into the plan's buffers */
  uint8_t *modes;    /* strata_access_mode_t */
  double *args;      /* kernel->k->nargs, defaults filled in */
  uint32_t job;
  char *name, *tier, *precision; /* NULL: none of its own */
  double flops;                  /* < 0: unknown */
  int priority;
  bool has_priority;
  int line;
} jf_task_t;

/** One --set key=value. */
typedef struct jf_set {
  const char *key, *value; /* borrowed from argv */
  bool used;
} jf_set_t;

typedef struct jf_plan {
  jf_buffer_t *buffers;
  size_t nbuffers;
  jf_job_t *jobs;
  size_t njobs;
  jf_task_t *tasks;
  size_t ntasks;
  uint64_t buffer_bytes; /* all buffers together */
  bool has_check;
} jf_plan_t;

typedef struct jobfile jobfile_t;

/** What the loader needs to know of the machine and the user. */
typedef struct jf_context {
  kernlib_t *kernels;
  jf_set_t *sets; /* --set pairs; the loader marks those used */
  size_t nsets;
  uint64_t memory_limit; /* the most all buffers together may take */
} jf_context_t;

/** Load and run the script `path` (as the user named it) to build its
 *  plan. On failure writes one message, "PATH:LINE: reason" where a line
 *  is known, into err.
 *  @return 0; STRATA_EINVAL (any error of the file), STRATA_ENOENT,
 *          STRATA_EIO, STRATA_ENOMEM
 *  @own *out: the caller's, jobfile_free */
int jobfile_load(const char *path, const jf_context_t *ctx, jobfile_t **out,
                 char *err, size_t errlen);

/** The plan. @own borrowed from jf */
const jf_plan_t *jobfile_plan(const jobfile_t *jf);

/** The value the script ended up with for each parameter, as
 *  "k=v, k=v" (for the report). @own borrowed */
const char *jobfile_params(const jobfile_t *jf);

/** The policy the file names (policy "file.lua", resolved against the
 *  file's directory and checked to be a readable file), or NULL.
 *  @own borrowed */
const char *jobfile_policy(const jobfile_t *jf);

/** Run the script's check on the buffers' final contents (`data[i]`,
 *  plan buffer i, in host memory). *passed tells the verdict; the
 *  check's message (or the error that ended it) goes to msg.
 *  @return 0 (the check ran); STRATA_EINVAL (it raised, or answered
 *          something else than a boolean and a string: *passed false);
 *          STRATA_ENOENT (the file has no check) */
int jobfile_check(jobfile_t *jf, void *const *data, bool *passed, char *msg,
                  size_t msglen);

void jobfile_free(jobfile_t *jf);

#endif /* STRATA_RUN_JOBFILE_H */
