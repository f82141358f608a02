/* SPDX-License-Identifier: MIT */
/* runtime/tasks/job.h: jobs, groups of tasks accounted, waited on and canceled
 * together. */
#ifndef STRATA_JOB_INTERNAL_H
#define STRATA_JOB_INTERNAL_H

#include <pthread.h>

#include <strata/task.h>

#include "attrs.h"
#include "notify.h"

struct strata_runtime;
struct strata__task;

typedef struct strata__job {
  uint64_t id;
  _Atomic uint32_t refs; /* the handle + one per task that names it */
  pthread_mutex_t mu;    /* guards attrs and the first_failed_* fields */
  strata__attrs_t attrs;
  atomic_bool canceled;
  _Atomic uint64_t submitted, pending, succeeded, failed, dep_failed, ncanceled;
  /* `failed` by cause (strata_job_info_t says which status goes where). */
  _Atomic uint64_t kernel_failed, device_failed, data_lost, data_failed,
      no_memory, other_failed;
  /* The first task to end non-zero, copied rather than referenced (a
   * reference would form a cycle through the task's own job reference). */
  bool has_failure;
  uint64_t first_failed_id;
  int first_failed_status;
  char first_failed_name[64];
  /* What the job's next idle moment tells the embedder (guarded by mu):
   * a one-shot callback (still set while its notice is queued, so that a
   * second one is refused until it has run) and a one-shot watch. */
  strata_job_done_fn done_cb;
  void *done_arg;
  bool notice_queued, notice_watch, watch_armed;
  strata__notice_t notice;
  /* The runtime's list of jobs not yet freed (jobs_mu), for readers that
   * go through every job (strata__jobs_each). */
  struct strata__job *live_prev, *live_next;
  bool linked; /* on that list (set once, before the handle is out) */
} strata__job_t;

strata__job_t *strata__job_get(struct strata_runtime *rt, strata_job_t j);
void strata__job_ref(strata__job_t *job);
void strata__job_unref(struct strata_runtime *rt, strata__job_t *job);

/** Account for a task of the job that ended with `status`; `task` is
 *  remembered if it is the first to end non-zero. @thread any */
void strata__job_task_ended(struct strata_runtime *rt, strata__job_t *job,
                            struct strata__task *task, int status);

/** Whether the job was canceled (its tasks not yet run end canceled).
 *  @thread any */
static inline bool strata__job_canceled(const strata__job_t *job) {
  return atomic_load(&job->canceled);
}
/** The job's priority attribute, 0 when it has none. @thread any (takes
 *  the job's mu) */
int strata__job_priority(strata__job_t *job);
/** Call read(&job's attrs, arg) under the job's mu, for a reader in
 *  another module to copy what it needs; read must not call back into the
 *  job. @thread any */
void strata__job_read_attrs(strata__job_t *job,
                            void (*read)(const strata__attrs_t *a, void *arg),
                            void *arg);

/** Call fn for each job not yet freed (its handle held, or a task of it
 *  alive), in creation order, with its name ("" none) and what
 *  strata_job_info tells, under the job list's lock: fn must not call
 *  into the jobs. @thread any  @blocks job creation and freeing, briefly */
void strata__jobs_each(struct strata_runtime *rt,
                       void (*fn)(strata_job_t job, const char *name,
                                  const strata_job_info_t *info, void *ud),
                       void *ud);

/** Release every job handle still held (runtime destroy). */
void strata__jobs_release_all(struct strata_runtime *rt);

#endif /* STRATA_JOB_INTERNAL_H */
