/* SPDX-License-Identifier: MIT */
/* examples/readme.c: README.md's embedding example, word for word. */
/* clang-format off */
#include <stdio.h>
#include <strata.h>

static int scale(const strata_kernel_call_t *call) {
  double factor = *(const double *)call->args;
  double *x = call->buffers[0];
  for (size_t i = 0; i < call->sizes[0] / sizeof *x; i++)
    x[i] *= factor;
  return 0;                       /* non-zero: the task ends STRATA_EKERNEL */
}

static int failed(const char *what, int rc) {
  fprintf(stderr, "%s: %s\n", what, strata_strerror(rc));
  return rc;
}

int main(void) {
  strata_runtime_opts_t opts;
  strata_runtime_opts_init(&opts);
  strata_runtime_t *rt;
  int rc = strata_runtime_create(&opts, &rt);
  if (rc)
    return failed("create", rc), 1;

  const strata_kernel_impl_t impls[] = {{STRATA_IMPL_CPU, scale}};
  strata_kernel_desc_t desc = {.struct_size = sizeof desc, .name = "scale",
                               .impls = impls, .nimpls = 1};
  strata_kernel_t kernel;
  static double x[1 << 20];
  strata_buffer_t buf;
  if ((rc = strata_kernel_register(rt, &desc, &kernel)))
    failed("kernel", rc);
  else if ((rc = strata_buffer_register(rt, x, sizeof x, &buf)))
    failed("buffer", rc);
  else {
    double factor = 2.0;
    strata_task_desc_t t = {            /* create, describe, submit: one call */
        .struct_size = sizeof t,
        .kernel = kernel,
        .accesses = &(strata_access_desc_t){buf, STRATA_RW},
        .naccesses = 1,
        .args = &factor,
        .args_size = sizeof factor};
    strata_task_t task;
    if ((rc = strata_task_insert(rt, &t, &task)))  /* on failure: nothing */
      failed("insert", rc);                        /* was submitted       */
    else {
      if ((rc = strata_task_wait(rt, task)))       /* the task's status */
        failed("task", rc);
      int r = strata_task_release(rt, task);
      rc = rc ? rc : r;
    }
    int u = strata_buffer_unregister(rt, buf);     /* brings the data home */
    rc = rc ? rc : (u ? failed("unregister", u) : 0);
  }
  int d = strata_runtime_destroy(rt);  /* drains everything still submitted */
  rc = rc ? rc : (d ? failed("destroy", d) : 0);
  return rc ? 1 : 0;
}
