/* SPDX-License-Identifier: MIT */
/* runtime/tasks/job.c: job accounting, waits and cancellation. */
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

/* {=== The list of live jobs ===} */

static void read_info(strata__job_t *job, strata_job_info_t *info);

static void link_live(strata_runtime_t *rt, strata__job_t *job) {
  pthread_mutex_lock(&rt->jobs_mu);
  job->live_prev = rt->last_job;
  if (rt->last_job)
    rt->last_job->live_next = job;
  else
    rt->first_job = job;
  rt->last_job = job;
  pthread_mutex_unlock(&rt->jobs_mu);
}

static void unlink_live(strata_runtime_t *rt, strata__job_t *job) {
  pthread_mutex_lock(&rt->jobs_mu);
  if (job->live_prev)
    job->live_prev->live_next = job->live_next;
  else
    rt->first_job = job->live_next;
  if (job->live_next)
    job->live_next->live_prev = job->live_prev;
  else
    rt->last_job = job->live_prev;
  pthread_mutex_unlock(&rt->jobs_mu);
}

void strata__jobs_each(strata_runtime_t *rt,
                       void (*fn)(strata_job_t job, const char *name,
                                  const strata_job_info_t *info, void *ud),
                       void *ud) {
  pthread_mutex_lock(&rt->jobs_mu);
  for (strata__job_t *job = rt->first_job; job; job = job->live_next) {
    strata_job_info_t info;
    read_info(job, &info);
    char name[64];
    pthread_mutex_lock(&job->mu);
    snprintf(name, sizeof name, "%s", job->attrs.name ? job->attrs.name : "");
    pthread_mutex_unlock(&job->mu);
    fn((strata_job_t){job->id}, name, &info, ud);
  }
  pthread_mutex_unlock(&rt->jobs_mu);
}

void strata__job_unref(strata_runtime_t *rt, strata__job_t *job) {
  if (atomic_fetch_sub_explicit(&job->refs, 1, memory_order_acq_rel) != 1)
    return;
  if (job->linked)
    unlink_live(rt, job);
  strata__attrs_free(&job->attrs, &rt->alloc);
  pthread_mutex_destroy(&job->mu);
  strata__free(&rt->alloc, job, sizeof *job);
}

/* The status strata_job_wait reports: that of the first task to end
 * non-zero. */
static int job_status(strata__job_t *job) {
  pthread_mutex_lock(&job->mu);
  int st = job->has_failure ? job->first_failed_status : STRATA_OK;
  pthread_mutex_unlock(&job->mu);
  return st;
}

/* {=== Telling the embedder: callbacks and watches ===} */

/* On the notifier thread: the job's callback, then its watch. The callback
 * is disarmed first, so that it may arm the next one. */
static void deliver_idle(strata_runtime_t *rt, strata__notice_t *n) {
  strata__job_t *job = STRATA_CONTAINER_OF(n, strata__job_t, notice);
  pthread_mutex_lock(&job->mu);
  strata_job_done_fn fn = job->done_cb;
  void *arg = job->done_arg;
  bool watch = job->notice_watch;
  job->done_cb = NULL;
  job->done_arg = NULL;
  job->notice_queued = job->notice_watch = false;
  pthread_mutex_unlock(&job->mu);
  fn(rt, (strata_job_t){job->id}, job_status(job), arg);
  if (watch)
    strata__evfd_signal(&rt->notify.ev);
  strata__job_unref(rt, job);
}

/* What the job being idle now fires. Called with job->mu held; the notice
 * is posted (a leaf lock) or the fd signalled, no embedder code runs. */
static void fire_locked(strata_runtime_t *rt, strata__job_t *job) {
  bool post = job->done_cb && !job->notice_queued;
  if (post) {
    job->notice_queued = true;
    job->notice_watch = job->watch_armed; /* signalled after the callback */
    strata__job_ref(job);                 /* until delivered */
    job->notice.deliver = deliver_idle;
    strata__notify_post(rt, &job->notice);
  } else if (job->watch_armed) {
    strata__evfd_signal(&rt->notify.ev);
  }
  job->watch_armed = false;
}

/* The job's last pending task ended. The lock orders this against an arm
 * that read `pending` before the decrement (it then armed in time). */
static void went_idle(strata_runtime_t *rt, strata__job_t *job) {
  pthread_mutex_lock(&job->mu);
  if (atomic_load(&job->pending) == 0)
    fire_locked(rt, job);
  pthread_mutex_unlock(&job->mu);
}

/* The counter of `failed` a task's own failure adds to. */
static _Atomic uint64_t *failure_counter(strata__job_t *job, int status) {
  switch (status) {
  case STRATA_EKERNEL:
    return &job->kernel_failed;
  case STRATA_EDEVICE:
    return &job->device_failed;
  case STRATA_ELOST:
    return &job->data_lost;
  case STRATA_EIO:
  case STRATA_ENOSPC:
    return &job->data_failed;
  case STRATA_ENOMEM:
    return &job->no_memory;
  default:
    return &job->other_failed;
  }
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
    atomic_fetch_add(failure_counter(job, status), 1);
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
  if (atomic_fetch_sub(&job->pending, 1) == 1) {
    went_idle(rt, job);
    strata__waits_notify(&rt->waits);
  }
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
  link_live(rt, job);
  job->linked = true;
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

int strata_job_set_attr_number(strata_runtime_t *rt, strata_job_t j,
                               const char *key, double value) {
  if (!rt)
    return STRATA_EINVAL;
  strata__job_t *job = strata__job_get(rt, j);
  if (!job)
    return strata__htable_miss(&rt->jobs, j.id);
  pthread_mutex_lock(&job->mu);
  int rc = strata__attrs_set_number(&job->attrs, &rt->alloc, key, value);
  pthread_mutex_unlock(&job->mu);
  if (rc == STRATA_EINVAL)
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
               "job numeric attribute '%s'=%g rejected", key ? key : "(null)",
               value);
  return rc;
}

static bool job_idle(void *arg) {
  strata__job_t *job = arg;
  return atomic_load(&job->pending) == 0;
}

int strata_job_wait(strata_runtime_t *rt, strata_job_t j) {
  if (!rt)
    return STRATA_EINVAL;
  strata__job_t *job = strata__job_get(rt, j);
  if (!job)
    return strata__htable_miss(&rt->jobs, j.id);
  /* Hold a reference: another thread may release the handle meanwhile. */
  strata__job_ref(job);
  strata__waits_until(&rt->waits, job_idle, job);
  int st = job_status(job);
  strata__job_unref(rt, job);
  return st;
}

int strata_job_set_callback(strata_runtime_t *rt, strata_job_t j,
                            strata_job_done_fn fn, void *arg) {
  if (!rt || !fn)
    return STRATA_EINVAL;
  strata__job_t *job = strata__job_get(rt, j);
  if (!job)
    return strata__htable_miss(&rt->jobs, j.id);
  int rc = strata__notify_start(rt);
  if (rc)
    return rc;
  pthread_mutex_lock(&job->mu);
  if (job->done_cb) {
    rc = STRATA_EBUSY;
  } else {
    job->done_cb = fn;
    job->done_arg = arg;
    if (atomic_load(&job->pending) == 0)
      fire_locked(rt, job);
  }
  pthread_mutex_unlock(&job->mu);
  return rc;
}

int strata_job_watch(strata_runtime_t *rt, strata_job_t j) {
  if (!rt)
    return STRATA_EINVAL;
  strata__job_t *job = strata__job_get(rt, j);
  if (!job)
    return strata__htable_miss(&rt->jobs, j.id);
  pthread_mutex_lock(&job->mu);
  if (atomic_load(&job->pending) != 0) {
    job->watch_armed = true; /* for the next idle moment */
  } else if (job->notice_queued) {
    job->notice_watch = true; /* idle now: after its queued callback */
  } else {
    job->watch_armed = true;
    fire_locked(rt, job);
  }
  pthread_mutex_unlock(&job->mu);
  return STRATA_OK;
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

/* What strata_job_info tells of a job, read counter by counter. */
static void read_info(strata__job_t *job, strata_job_info_t *info) {
  *info = (strata_job_info_t){.struct_size = sizeof *info};
  info->submitted = atomic_load(&job->submitted);
  info->pending = atomic_load(&job->pending);
  info->succeeded = atomic_load(&job->succeeded);
  info->failed = atomic_load(&job->failed);
  info->dep_failed = atomic_load(&job->dep_failed);
  info->canceled = atomic_load(&job->ncanceled);
  info->canceled_flag = atomic_load(&job->canceled);
  info->kernel_failed = atomic_load(&job->kernel_failed);
  info->device_failed = atomic_load(&job->device_failed);
  info->data_lost = atomic_load(&job->data_lost);
  info->data_failed = atomic_load(&job->data_failed);
  info->no_memory = atomic_load(&job->no_memory);
  info->other_failed = atomic_load(&job->other_failed);
  info->ended =
      info->succeeded + info->failed + info->dep_failed + info->canceled;
  pthread_mutex_lock(&job->mu);
  if (job->has_failure) {
    info->status = job->first_failed_status;
    info->first_failed.id = job->first_failed_id;
    memcpy(info->first_failed_name, job->first_failed_name,
           sizeof info->first_failed_name);
  }
  pthread_mutex_unlock(&job->mu);
}

int strata_job_info(strata_runtime_t *rt, strata_job_t j,
                    strata_job_info_t *out) {
  if (!rt || !out || out->struct_size <= sizeof(size_t))
    return STRATA_EINVAL;
  strata__job_t *job = strata__job_get(rt, j);
  if (!job)
    return strata__htable_miss(&rt->jobs, j.id);
  strata_job_info_t info;
  read_info(job, &info);
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

int strata__job_priority(strata__job_t *job) {
  pthread_mutex_lock(&job->mu);
  int p = job->attrs.has_priority ? job->attrs.priority : 0;
  pthread_mutex_unlock(&job->mu);
  return p;
}

void strata__job_read_attrs(strata__job_t *job,
                            void (*read)(const strata__attrs_t *a, void *arg),
                            void *arg) {
  pthread_mutex_lock(&job->mu);
  read(&job->attrs, arg);
  pthread_mutex_unlock(&job->mu);
}

void strata__jobs_release_all(strata_runtime_t *rt) {
  strata__htable_foreach(&rt->jobs, release_job, rt);
}
