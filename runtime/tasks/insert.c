/* SPDX-License-Identifier: MIT */
/* runtime/tasks/insert.c: strata_task_insert, the one-call form of creating,
 * describing and submitting a task. It is built on the step-by-step calls
 * (so both forms mean the same) and undoes everything when one step fails:
 * the task, created here and never seen by the caller, is released before
 * it is submitted, which drops every reference it took and never runs its
 * callback. */
#include "config.h"

#include "runtime.h"

#define COMP "graph"

/* Copy the caller's description into d (a struct of this library's size,
 * zero where the caller's is shorter), refusing sizes from before the
 * first version and fields this library does not know that are set. */
static int read_desc(strata_runtime_t *rt, const strata_task_desc_t *in,
                     strata_task_desc_t *d) {
  if (in->struct_size < STRATA_TASK_DESC_SIZE_V1) {
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
               "strata_task_insert: struct_size %zu is below the first "
               "version's %zu",
               in->struct_size, (size_t)STRATA_TASK_DESC_SIZE_V1);
    return STRATA_EINVAL;
  }
  const unsigned char *bytes = (const unsigned char *)in;
  for (size_t i = sizeof *d; i < in->struct_size; i++)
    if (bytes[i]) {
      STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
                 "strata_task_insert: the description sets fields this "
                 "library does not know (struct_size %zu, known %zu)",
                 in->struct_size, sizeof *d);
      return STRATA_EINVAL;
    }
  memset(d, 0, sizeof *d);
  memcpy(d, in, STRATA_MIN(in->struct_size, sizeof *d));
  const char *bad = d->naccesses && !d->accesses ? "accesses"
                    : d->nattrs && !d->attrs     ? "attrs"
                    : d->ndeps && !d->deps       ? "deps"
                    : d->args_size && !d->args   ? "args"
                                                 : NULL;
  if (bad) {
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
               "strata_task_insert: %s is NULL with a non-zero count", bad);
    return STRATA_EINVAL;
  }
  return STRATA_OK;
}

/* Apply d to the created task t, in the struct's order. On failure,
 * *field names what failed (and *index which element, or -1). */
static int describe(strata_runtime_t *rt, strata_task_t t,
                    const strata_task_desc_t *d, const char **field,
                    long *index) {
  int rc = STRATA_OK;
  *index = -1;
  *field = "accesses";
  for (size_t i = 0; i < d->naccesses; i++)
    if ((rc = strata_task_access(rt, t, d->accesses[i].buffer,
                                 d->accesses[i].mode))) {
      *index = (long)i;
      return rc;
    }
  *field = "args";
  if (d->args_size && (rc = strata_task_set_args(rt, t, d->args, d->args_size)))
    return rc;
  *field = "name";
  if (d->name && (rc = strata_task_set_attr(rt, t, "name", d->name)))
    return rc;
  *field = "attrs";
  for (size_t i = 0; i < d->nattrs; i++) {
    const strata_attr_desc_t *a = &d->attrs[i];
    rc = a->value ? strata_task_set_attr(rt, t, a->key, a->value)
                  : strata_task_set_attr_number(rt, t, a->key, a->number);
    if (rc) {
      *index = (long)i;
      return rc;
    }
  }
  *field = "priority";
  if (d->priority && (rc = strata_task_set_priority(rt, t, d->priority)))
    return rc;
  *field = "job";
  if (d->job.id && (rc = strata_task_set_job(rt, t, d->job)))
    return rc;
  *field = "deps";
  for (size_t i = 0; i < d->ndeps; i++)
    if ((rc = strata_task_depend(rt, t, d->deps[i]))) {
      *index = (long)i;
      return rc;
    }
  *field = "callback";
  if (d->callback &&
      (rc = strata_task_set_callback(rt, t, d->callback, d->callback_arg)))
    return rc;
  *field = "watch";
  if (d->watch && (rc = strata_task_watch(rt, t)))
    return rc;
  *field = "submit";
  return strata_task_submit(rt, t);
}

int strata_task_insert(strata_runtime_t *rt, const strata_task_desc_t *desc,
                       strata_task_t *out) {
  if (!rt || !desc)
    return STRATA_EINVAL;
  strata_task_desc_t d;
  int rc = read_desc(rt, desc, &d);
  if (rc)
    return rc;
  strata_task_t t;
  if ((rc = strata_task_create(rt, d.kernel, &t))) {
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
               "strata_task_insert: kernel %#llx: %s",
               (unsigned long long)d.kernel.id, strata_strerror(rc));
    return rc;
  }
  const char *field;
  long index;
  if ((rc = describe(rt, t, &d, &field, &index))) {
    /* Never submitted, never handed out: releasing it undoes every step
     * (buffer and job references, edges wait on a discarded task). */
    (void)strata_task_release(rt, t);
    if (index >= 0)
      STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
                 "strata_task_insert: %s[%ld]: %s; nothing submitted", field,
                 index, strata_strerror(rc));
    else
      STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
                 "strata_task_insert: %s: %s; nothing submitted", field,
                 strata_strerror(rc));
    return rc;
  }
  if (out)
    *out = t;
  else
    (void)strata_task_release(rt, t); /* it runs all the same */
  return STRATA_OK;
}
