/* SPDX-License-Identifier: MIT */
/* examples/embed.c: the smallest useful embedding of Strata (the README's
 * example): scale a vector in blocks, one task per block, on every core.
 * Build against an installed Strata:
 *   cc -std=c11 embed.c $(pkg-config --cflags --libs strata) */
#include <stdio.h>
#include <stdlib.h>

#include <strata.h>

#define N 1000000
#define BLOCKS 16

/* The kernel: multiply one block by the factor passed by value. */
static int scale(const strata_kernel_call_t *call) {
  double factor = *(const double *)call->args;
  double *x = call->buffers[0];
  size_t n = call->sizes[0] / sizeof *x;
  for (size_t i = 0; i < n; i++)
    x[i] *= factor;
  return 0;
}

static void log_to_stderr(void *ud, strata_log_level_t level,
                          const char *component, const char *msg) {
  (void)ud, (void)level;
  fprintf(stderr, "strata: %s: %s\n", component, msg);
}

int main(void) {
  strata_runtime_opts_t opts;
  strata_runtime_opts_init(&opts);
  opts.log = log_to_stderr;

  strata_runtime_t *rt;
  int rc = strata_runtime_create(&opts, &rt);
  if (rc) {
    fprintf(stderr, "embed: %s\n", strata_strerror(rc));
    return 1;
  }

  const strata_kernel_impl_t impls[] = {{STRATA_IMPL_CPU, scale}};
  strata_kernel_desc_t desc = {
      .struct_size = sizeof desc, .name = "scale", .impls = impls, .nimpls = 1};
  strata_kernel_t kernel;
  rc = strata_kernel_register(rt, &desc, &kernel);

  static double x[N];
  for (size_t i = 0; i < N; i++)
    x[i] = 1.0;
  strata_buffer_t block[BLOCKS];
  strata_job_t job;
  if (!rc)
    rc = strata_job_create(rt, &job);
  for (int b = 0; b < BLOCKS && !rc; b++)
    rc = strata_buffer_register(rt, &x[b * (N / BLOCKS)],
                                (N / BLOCKS) * sizeof *x, &block[b]);

  /* Two passes: the second one depends on the first through the data. */
  double factors[2] = {3.0, 0.5};
  for (int pass = 0; pass < 2 && !rc; pass++)
    for (int b = 0; b < BLOCKS && !rc; b++) {
      strata_task_t t;
      if ((rc = strata_task_create(rt, kernel, &t)))
        break;
      if (!(rc = strata_task_access(rt, t, block[b], STRATA_RW)) &&
          !(rc = strata_task_set_args(rt, t, &factors[pass], sizeof(double))) &&
          !(rc = strata_task_set_job(rt, t, job)))
        rc = strata_task_submit(rt, t);
      strata_task_release(rt, t);
    }
  if (!rc)
    rc = strata_job_wait(rt, job);
  if (rc)
    fprintf(stderr, "embed: %s\n", strata_strerror(rc));
  else if (x[0] != 1.5 || x[N - 1] != 1.5)
    fprintf(stderr, "embed: wrong result %g\n", x[0]), rc = 1;
  else
    printf("embed: %d tasks on %d device(s): ok\n", 2 * BLOCKS,
           strata_device_count(rt));
  strata_runtime_destroy(rt);
  return rc ? 1 : 0;
}
