/* SPDX-License-Identifier: MIT */
/* examples/embed/minimal.c: the smallest useful embedding of Strata (the
 * README's example): scale a vector in blocks, one task per block, on every
 * core, checking every result the library hands back. make check builds and
 * runs it (tests/embed.test), so it stays true; examples/embed/host.c goes
 * further. Build against an installed Strata: cc -std=c11 minimal.c
 * $(pkg-config --cflags --libs strata) Usage: embed [BACKEND_DIR]   (default:
 * the installed backends) */
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
  return 0; /* non-zero marks the task failed (STRATA_EKERNEL) */
}

static void log_to_stderr(void *ud, strata_log_level_t level,
                          const char *component, const char *msg) {
  (void)ud, (void)level;
  fprintf(stderr, "strata: %s: %s\n", component, msg);
}

/* Say which call failed and how; returns rc so that callers can chain. */
static int failed(const char *what, int rc) {
  fprintf(stderr, "embed: %s: %s (%s)\n", what, strata_strerror(rc),
          strata_err_name(rc));
  return rc;
}

static double x[N];

/* Submit both passes as one job and wait for it. */
static int run(strata_runtime_t *rt, strata_kernel_t kernel,
               const strata_buffer_t *block) {
  strata_job_t job;
  int rc = strata_job_create(rt, &job);
  if (rc)
    return failed("strata_job_create", rc);
  /* Two passes: the second depends on the first through the data. */
  static const double factors[2] = {3.0, 0.5};
  for (int pass = 0; pass < 2 && !rc; pass++)
    for (int b = 0; b < BLOCKS && !rc; b++) {
      strata_task_desc_t t = {
          .struct_size = sizeof t,
          .kernel = kernel,
          .accesses = &(strata_access_desc_t){block[b], STRATA_RW},
          .naccesses = 1,
          .args = &factors[pass],
          .args_size = sizeof factors[pass],
          .job = job,
      };
      /* No handle kept (NULL): the job tells how its tasks ended. */
      if ((rc = strata_task_insert(rt, &t, NULL)))
        failed("strata_task_insert", rc);
    }
  /* Wait even after a failed insert: what was submitted still runs. */
  int st = strata_job_wait(rt, job);
  if (st) {
    strata_job_info_t ji = {.struct_size = sizeof ji};
    if (strata_job_info(rt, job, &ji) == 0)
      fprintf(stderr, "embed: %llu of %llu task(s) failed, first '%s'\n",
              (unsigned long long)ji.failed, (unsigned long long)ji.submitted,
              ji.first_failed_name);
    failed("strata_job_wait", st);
    rc = rc ? rc : st;
  }
  int rel = strata_job_release(rt, job);
  if (rel)
    rc = rc ? rc : failed("strata_job_release", rel);
  return rc;
}

int main(int argc, char **argv) {
  strata_runtime_opts_t opts;
  strata_runtime_opts_init(&opts);
  opts.log = log_to_stderr;
  if (argc > 1)
    opts.backend_path = argv[1];

  strata_runtime_t *rt;
  int rc = strata_runtime_create(&opts, &rt);
  if (rc)
    return failed("strata_runtime_create", rc), 1;

  const strata_kernel_impl_t impls[] = {{STRATA_IMPL_CPU, scale}};
  strata_kernel_desc_t desc = {
      .struct_size = sizeof desc, .name = "scale", .impls = impls, .nimpls = 1};
  strata_kernel_t kernel;
  if ((rc = strata_kernel_register(rt, &desc, &kernel)))
    failed("strata_kernel_register", rc);

  for (size_t i = 0; i < N; i++)
    x[i] = 1.0;
  strata_buffer_t block[BLOCKS];
  int registered = 0;
  for (; registered < BLOCKS && !rc; registered++)
    if ((rc = strata_buffer_register(rt, &x[registered * (N / BLOCKS)],
                                     (N / BLOCKS) * sizeof *x,
                                     &block[registered]))) {
      failed("strata_buffer_register", rc);
      break;
    }

  if (!rc)
    rc = run(rt, kernel, block);
  /* Unregistering brings each block's latest data home and says whether
   * it could. */
  for (int b = 0; b < registered; b++) {
    int u = strata_buffer_unregister(rt, block[b]);
    if (u)
      rc = rc ? rc : failed("strata_buffer_unregister", u);
  }
  if (!rc && (x[0] != 1.5 || x[N - 1] != 1.5)) {
    fprintf(stderr, "embed: wrong result %g\n", x[0]);
    rc = 1;
  }
  if (!rc)
    printf("embed: %d tasks on %d device(s): ok\n", 2 * BLOCKS,
           strata_device_count(rt));
  int d = strata_runtime_destroy(rt); /* drains everything still submitted */
  if (d)
    rc = rc ? rc : failed("strata_runtime_destroy", d);
  return rc ? 1 : 0;
}
