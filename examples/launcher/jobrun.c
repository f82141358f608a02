/* SPDX-License-Identifier: MIT */
/* jobrun.c: a plan on a runtime (see jobrun.h). */
#include "config.h"

#include "jobrun.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUFFER_ALIGN 64 /* cache lines, which BLAS likes */

struct jobrun {
  strata_runtime_t *rt;
  const jf_plan_t *plan;
  void **data;
  strata_buffer_t *bufs;
  size_t nregistered;
  jr_job_t *jobs;
  size_t njobs_made;
  jr_task_t *tasks;
  size_t nsubmitted;
  atomic_uint_fast64_t done;
  uint64_t t0;
};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* {=== Set-up ===} */

/* The contents the plan asks for, written on the host before the buffer
 * is registered. */
static int fill_buffer(const jf_buffer_t *b, void *data, char *err,
                       size_t errlen) {
  if (!b->init)
    return STRATA_OK;
  size_t size = b->count * kernlib_elem_size(b->type);
  uint8_t mode = STRATA_W;
  int rc =
      kernlib_run_host(b->init, b->type, &data, &size, &mode, 1, b->init_args);
  if (rc)
    snprintf(err, errlen, "buffer '%s': %s failed (%d)", b->name,
             b->init->k->name, rc);
  return rc ? STRATA_EKERNEL : STRATA_OK;
}

static int make_buffers(jobrun_t *jr, char *err, size_t errlen) {
  const jf_plan_t *p = jr->plan;
  for (size_t i = 0; i < p->nbuffers; i++) {
    const jf_buffer_t *b = &p->buffers[i];
    size_t size = b->count * kernlib_elem_size(b->type);
    size_t rounded = (size + BUFFER_ALIGN - 1) / BUFFER_ALIGN * BUFFER_ALIGN;
    if (!(jr->data[i] = aligned_alloc(BUFFER_ALIGN, rounded))) {
      snprintf(err, errlen, "buffer '%s': cannot allocate %zu bytes", b->name,
               size);
      return STRATA_ENOMEM;
    }
    memset(jr->data[i], 0, rounded);
    int rc = fill_buffer(b, jr->data[i], err, errlen);
    if (!rc &&
        (rc = strata_buffer_register(jr->rt, jr->data[i], size, &jr->bufs[i])))
      snprintf(err, errlen, "buffer '%s': cannot register it: %s", b->name,
               strata_strerror(rc));
    if (rc)
      return rc;
    jr->nregistered = i + 1;
    if (b->tag[0] &&
        (rc = strata_buffer_set_tag(jr->rt, jr->bufs[i], b->tag))) {
      snprintf(err, errlen, "buffer '%s': cannot tag it '%s': %s", b->name,
               b->tag, strata_strerror(rc));
      return rc;
    }
  }
  return STRATA_OK;
}

static int make_jobs(jobrun_t *jr, char *err, size_t errlen) {
  const jf_plan_t *p = jr->plan;
  for (size_t i = 0; i < p->njobs; i++) {
    const jf_job_t *j = &p->jobs[i];
    jr_job_t *r = &jr->jobs[i];
    int rc = strata_job_create(jr->rt, &r->handle);
    if (!rc)
      jr->njobs_made = i + 1;
    if (!rc)
      rc = strata_job_set_attr(jr->rt, r->handle, "name", j->name);
    if (!rc && j->tier[0])
      rc = strata_job_set_attr(jr->rt, r->handle, "tier", j->tier);
    if (!rc && j->has_priority)
      rc = strata_job_set_attr_number(jr->rt, r->handle, "priority",
                                      j->priority);
    if (rc) {
      snprintf(err, errlen, "job '%s': %s", j->name, strata_strerror(rc));
      return rc;
    }
    r->flops = 0;
  }
  return STRATA_OK;
}

int jobrun_setup(strata_runtime_t *rt, const jf_plan_t *plan, jobrun_t **out,
                 char *err, size_t errlen) {
  jobrun_t *jr = calloc(1, sizeof *jr);
  if (!jr) {
    snprintf(err, errlen, "not enough memory");
    return STRATA_ENOMEM;
  }
  jr->rt = rt;
  jr->plan = plan;
  jr->data = calloc(plan->nbuffers + 1, sizeof *jr->data);
  jr->bufs = calloc(plan->nbuffers + 1, sizeof *jr->bufs);
  jr->jobs = calloc(plan->njobs + 1, sizeof *jr->jobs);
  jr->tasks = calloc(plan->ntasks + 1, sizeof *jr->tasks);
  int rc =
      jr->data && jr->bufs && jr->jobs && jr->tasks ? STRATA_OK : STRATA_ENOMEM;
  if (rc)
    snprintf(err, errlen, "not enough memory for %zu tasks", plan->ntasks);
  for (size_t i = 0; !rc && i < plan->ntasks; i++) {
    jf_task_t *t = &plan->tasks[i];
    strata_kernel_t k;
    if ((rc = kernlib_handle(rt, t->kernel, t->type, &k)))
      snprintf(err, errlen, "kernel %s.%s: cannot register it: %s",
               t->kernel->k->name, kernlib_elem_name(t->type),
               strata_strerror(rc));
    jr->tasks[i] = (jr_task_t){.device = -1};
  }
  if (!rc)
    rc = make_buffers(jr, err, errlen);
  if (!rc)
    rc = make_jobs(jr, err, errlen);
  if (rc) {
    jobrun_free(jr);
    return rc;
  }
  *out = jr;
  return STRATA_OK;
}

/* {=== Submission ===} */

/* On the callback thread, once per task. */
static void task_ended(strata_runtime_t *rt, strata_task_t task, int status,
                       void *arg) {
  (void)rt, (void)task;
  jr_task_t *r = arg;
  r->status = status;
  r->end_ns = now_ns();
  /* Release: the end time is visible to whoever reads the count. */
  atomic_fetch_add_explicit(&((jobrun_t *)strata_runtime_get_data(rt))->done, 1,
                            memory_order_release);
}

static int submit_one(jobrun_t *jr, size_t i) {
  const jf_task_t *t = &jr->plan->tasks[i];
  strata_access_desc_t acc[JF_MAX_ACCESSES]; /* the loader's bound */
  for (uint32_t b = 0; b < t->nbuffers; b++)
    acc[b] = (strata_access_desc_t){jr->bufs[t->buffers[b]],
                                    (strata_access_mode_t)t->modes[b]};
  strata_attr_desc_t attrs[4];
  size_t na = 0;
  if (t->tier)
    attrs[na++] = (strata_attr_desc_t){"tier", t->tier, 0};
  if (t->precision)
    attrs[na++] = (strata_attr_desc_t){"precision", t->precision, 0};
  if (t->flops >= 0)
    attrs[na++] = (strata_attr_desc_t){"flops", NULL, t->flops};
  if (t->has_priority)
    attrs[na++] = (strata_attr_desc_t){"priority", NULL, t->priority};
  strata_task_desc_t d = {
      .struct_size = sizeof d,
      .kernel = t->kernel->handle[t->type],
      .accesses = acc,
      .naccesses = t->nbuffers,
      .args = t->args,
      .args_size = t->kernel->k->nargs * sizeof(double),
      .attrs = attrs,
      .nattrs = na,
      .name = t->name,
      .job = jr->jobs[t->job].handle,
      .callback = task_ended,
      .callback_arg = &jr->tasks[i],
  };
  return strata_task_insert(jr->rt, &d, &jr->tasks[i].handle);
}

int jobrun_submit(jobrun_t *jr, char *err, size_t errlen) {
  strata_runtime_set_data(jr->rt, jr);
  jr->t0 = now_ns();
  for (size_t i = 0; i < jr->plan->ntasks; i++) {
    int rc = submit_one(jr, i);
    if (rc) {
      const jf_task_t *t = &jr->plan->tasks[i];
      snprintf(err, errlen, "task %zu (%s, line %d): cannot submit it: %s",
               i + 1, t->name ? t->name : t->kernel->k->name, t->line,
               strata_strerror(rc));
      for (size_t j = 0; j < jr->njobs_made; j++)
        (void)strata_job_cancel(jr->rt, jr->jobs[j].handle);
      return rc;
    }
    jr->nsubmitted = i + 1;
  }
  return STRATA_OK;
}

/* {=== Waiting, and what became of each task ===} */

static void read_job(jobrun_t *jr, size_t i) {
  jr_job_t *j = &jr->jobs[i];
  strata_job_info_t info = {.struct_size = sizeof info};
  if (strata_job_info(jr->rt, j->handle, &info) == STRATA_OK) {
    j->tasks = info.submitted;
    j->succeeded = info.succeeded;
    j->failed = info.failed;
    j->dep_failed = info.dep_failed;
    j->canceled = info.canceled;
    snprintf(j->first_failed, sizeof j->first_failed, "%s",
             info.first_failed_name);
  }
}

int jobrun_wait(jobrun_t *jr) {
  int first = STRATA_OK;
  for (size_t i = 0; i < jr->njobs_made; i++) {
    jr->jobs[i].status = strata_job_wait(jr->rt, jr->jobs[i].handle);
    if (!first)
      first = jr->jobs[i].status;
    read_job(jr, i);
  }
  /* Every callback has run once its task's job is waited for? Not quite:
   * a callback runs after the status is visible. Wait for the count. */
  while (jobrun_done(jr) < jr->nsubmitted) {
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  for (size_t i = 0; i < jr->nregistered; i++) {
    int rc = strata_buffer_unregister(jr->rt, jr->bufs[i]);
    if (rc && !first)
      first = rc;
  }
  jr->nregistered = 0;
  for (size_t i = 0; i < jr->nsubmitted; i++) {
    jr_task_t *t = &jr->tasks[i];
    strata_task_info_t info = {.struct_size = sizeof info};
    if (strata_task_info(jr->rt, t->handle, &info) == STRATA_OK)
      t->device = info.device;
    jr_job_t *j = &jr->jobs[jr->plan->tasks[i].job];
    double end = (double)(t->end_ns - jr->t0) * 1e-9;
    j->wall_s = end > j->wall_s ? end : j->wall_s;
    double f = jr->plan->tasks[i].flops;
    if (f < 0)
      j->flops = -1;
    else if (j->flops >= 0 && t->status == STRATA_OK)
      j->flops += f;
  }
  return first;
}

uint64_t jobrun_done(const jobrun_t *jr) {
  return atomic_load_explicit(&((jobrun_t *)jr)->done, memory_order_acquire);
}

void *const *jobrun_data(const jobrun_t *jr) { return jr->data; }
const jr_task_t *jobrun_tasks(const jobrun_t *jr) { return jr->tasks; }
const jr_job_t *jobrun_jobs(const jobrun_t *jr) { return jr->jobs; }

double jobrun_wall(const jobrun_t *jr) {
  uint64_t end = jr->t0;
  for (size_t i = 0; i < jr->nsubmitted; i++)
    end = jr->tasks[i].end_ns > end ? jr->tasks[i].end_ns : end;
  return (double)(end - jr->t0) * 1e-9;
}

void jobrun_free(jobrun_t *jr) {
  if (!jr)
    return;
  for (size_t i = 0; i < jr->nregistered; i++)
    (void)strata_buffer_unregister(jr->rt, jr->bufs[i]);
  for (size_t i = 0; i < jr->nsubmitted; i++)
    (void)strata_task_release(jr->rt, jr->tasks[i].handle);
  for (size_t i = 0; i < jr->njobs_made; i++)
    (void)strata_job_release(jr->rt, jr->jobs[i].handle);
  if (jr->data)
    for (size_t i = 0; i < jr->plan->nbuffers; i++)
      free(jr->data[i]);
  free(jr->data);
  free(jr->bufs);
  free(jr->jobs);
  free(jr->tasks);
  free(jr);
}
