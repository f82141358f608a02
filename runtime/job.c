/* SPDX-License-Identifier: MIT */
/* runtime/job.c: job accounting, waits and cancellation. */
#include "config.h"

#include "runtime.h"

#include <string.h>

#define COMP "job"

strata__job_t *strata__job_get(strata_runtime_t *rt, strata_job_t j) {
  return strata__htable_get(&rt->jobs, j.id);
}

void strata__job_ref(strata__job_t *job) {
  atomic_fetch_add_explicit(&job->refs, 1, memory_order_relaxed);
}

void strata__job_unref(strata_runtime_t *rt, strata__job_t *job) {
  if (atomic_fetch_sub_explicit(&job->refs, 1, memory_order_acq_rel) != 1)
    return;
  strata__attrs_free(&job->attrs, &rt->alloc);
  pthread_mutex_destroy(&job->mu);
  strata__free(&rt->alloc, job, sizeof *job);
}

void strata__job_task_ended(strata_runtime_t *rt, strata__job_t *job,
                            strata__task_t *task, int status) {
  switch (status) {
  case STRATA_OK:
    atomic_fetch_add(&job->succeeded, 1);
    break;
  case STRATA_EDEPFAILED:
    atomic_fetch_add(&job->dep_failed, 1);
    break;
  case STRATA_ECANCELED:
    atomic_fetch_add(&job->ncanceled, 1);
    break;
  default: /* the kernel, its device or its data failed */
    atomic_fetch_add(&job->failed, 1);
    break;
  }
  if (status != STRATA_OK) {
    pthread_mutex_lock(&job->mu);
    if (!job->has_failure) {
      job->has_failure = true;
      job->first_failed_id = task->id;
      job->first_failed_status = status;
      strata__strlcpy(job->first_failed_name, strata__task_name(task),
                      sizeof job->first_failed_name);
    }
    pthread_mutex_unlock(&job->mu);
  }
  /* The last decrement must come after the counters above, so that a
   * waiter that sees pending == 0 also sees the final counts. */
  if (atomic_fetch_sub(&job->pending, 1) == 1)
    strata__runtime_notify(rt);
}

/* {=== Public API ===} */

int strata_job_create(strata_runtime_t *rt, strata_job_t *out) {
  if (!rt || !out)
    return STRATA_EINVAL;
  strata__job_t *job = strata__zalloc(&rt->alloc, sizeof *job);
  if (!job)
    return STRATA_ENOMEM;
  strata__attrs_init(&job->attrs);
  pthread_mutex_init(&job->mu, NULL);
  atomic_init(&job->refs, 1);
  int rc = strata__htable_add(&rt->jobs, &rt->alloc, job, &job->id);
  if (rc) {
    strata__job_unref(rt, job);
    return rc;
  }
  out->id = job->id;
  return STRATA_OK;
}

int strata_job_set_attr(strata_runtime_t *rt, strata_job_t j, const char *key,
                        const char *value) {
  if (!rt)
    return STRATA_EINVAL;
  strata__job_t *job = strata__job_get(rt, j);
  if (!job)
    return strata__htable_miss(&rt->jobs, j.id);
  pthread_mutex_lock(&job->mu);
  int rc = strata__attrs_set(&job->attrs, &rt->alloc, key, value);
  pthread_mutex_unlock(&job->mu);
  if (rc == STRATA_EINVAL)
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
               "job attribute '%s'='%s' rejected", key ? key : "(null)",
               value ? value : "(null)");
  return rc;
}

static bool job_idle(void *arg) {
  strata__job_t *job = arg;
  return atomic_load(&job->pending) == 0;
}

/* The status strata_job_wait reports: that of the first task to end
 * non-zero. */
static int job_status(strata__job_t *job) {
  pthread_mutex_lock(&job->mu);
  int st = job->has_failure ? job->first_failed_status : STRATA_OK;
  pthread_mutex_unlock(&job->mu);
  return st;
}

int strata_job_wait(strata_runtime_t *rt, strata_job_t j) {
  if (!rt)
    return STRATA_EINVAL;
  strata__job_t *job = strata__job_get(rt, j);
  if (!job)
    return strata__htable_miss(&rt->jobs, j.id);
  /* Hold a reference: another thread may release the handle meanwhile. */
  strata__job_ref(job);
  strata__runtime_wait_until(rt, job_idle, job);
  int st = job_status(job);
  strata__job_unref(rt, job);
  return st;
}

int strata_job_cancel(strata_runtime_t *rt, strata_job_t j) {
  if (!rt)
    return STRATA_EINVAL;
  strata__job_t *job = strata__job_get(rt, j);
  if (!job)
    return strata__htable_miss(&rt->jobs, j.id);
  if (!atomic_exchange(&job->canceled, true))
    STRATA_LOG(&rt->log, STRATA_LOG_INFO, COMP,
               "job '%s' canceled with %llu task(s) pending",
               job->attrs.name ? job->attrs.name : "(unnamed)",
               (unsigned long long)atomic_load(&job->pending));
  return STRATA_OK;
}

int strata_job_info(strata_runtime_t *rt, strata_job_t j,
                    strata_job_info_t *out) {
  if (!rt || !out || out->struct_size <= sizeof(size_t))
    return STRATA_EINVAL;
  strata__job_t *job = strata__job_get(rt, j);
  if (!job)
    return strata__htable_miss(&rt->jobs, j.id);
  strata_job_info_t info = {.struct_size = sizeof info};
  info.submitted = atomic_load(&job->submitted);
  info.pending = atomic_load(&job->pending);
  info.succeeded = atomic_load(&job->succeeded);
  info.failed = atomic_load(&job->failed);
  info.dep_failed = atomic_load(&job->dep_failed);
  info.canceled = atomic_load(&job->ncanceled);
  info.canceled_flag = atomic_load(&job->canceled);
  pthread_mutex_lock(&job->mu);
  if (job->has_failure) {
    info.status = job->first_failed_status;
    info.first_failed.id = job->first_failed_id;
    memcpy(info.first_failed_name, job->first_failed_name,
           sizeof info.first_failed_name);
  }
  pthread_mutex_unlock(&job->mu);
  return strata__copy_out(out, &info, sizeof info);
}

int strata_job_release(strata_runtime_t *rt, strata_job_t j) {
  if (!rt)
    return STRATA_EINVAL;
  strata__job_t *job = strata__htable_remove(&rt->jobs, j.id);
  if (!job)
    return strata__htable_miss(&rt->jobs, j.id);
  strata__job_unref(rt, job);
  return STRATA_OK;
}

static void release_job(uint64_t id, void *obj, void *ud) {
  strata_runtime_t *rt = ud;
  strata__htable_remove(&rt->jobs, id);
  strata__job_unref(rt, obj);
}

void strata__jobs_release_all(strata_runtime_t *rt) {
  strata__htable_foreach(&rt->jobs, release_job, rt);
}
