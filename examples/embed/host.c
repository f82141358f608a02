/* SPDX-License-Identifier: MIT */
/* examples/embed/host.c: a host application that embeds Strata the way a
 * real one would: it registers kernels of its own (a smoothing filter with
 * CPU code and, when built with CUDA, GPU code from smooth.cu; a reduction
 * on the CPUs), loads its own placement policy (policy.lua: filters on
 * the GPUs, reductions on the CPUs), submits one job through the C API,
 * waits for it, checks the answer against a sequential computation and
 * prints a report of where the tasks ran. make check builds and runs it
 * (tests/embed.test) on the simulated mixed machine.
 *
 * Usage: host BACKEND_DIR POLICY.lua [MACHINE.lua]
 *   MACHINE.lua: simulate that machine's GPUs beside this one's CPUs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata.h>

#include "smooth.h"

#define BLOCKS 12
#define BLOCK 65536 /* doubles per block */

/* {=== The application's kernels ===} */

/* Y = the three-point moving average of X (edges clamped). */
static int smooth_cpu(const strata_kernel_call_t *call) {
  if (call->nbuffers != 2 || call->sizes[0] != call->sizes[1])
    return STRATA_EINVAL;
  double *y = call->buffers[0];
  const double *x = call->buffers[1];
  size_t n = call->sizes[0] / sizeof *x;
  for (size_t i = 0; i < n; i++) {
    double l = x[i ? i - 1 : 0], r = x[i + 1 < n ? i + 1 : i];
    y[i] = (l + x[i] + r) / 3.0;
  }
  return STRATA_OK;
}

/* S (one double) = the sum of the squares of X. */
static int energy_cpu(const strata_kernel_call_t *call) {
  if (call->nbuffers != 2 || call->sizes[1] != sizeof(double))
    return STRATA_EINVAL;
  const double *x = call->buffers[0];
  double s = 0;
  for (size_t i = 0; i < call->sizes[0] / sizeof *x; i++)
    s += x[i] * x[i];
  *(double *)call->buffers[1] = s;
  return STRATA_OK;
}

/* {=== Helpers ===} */

static int failed(const char *what, int rc) {
  fprintf(stderr, "host: %s: %s (%s)\n", what, strata_strerror(rc),
          strata_err_name(rc));
  return rc;
}

static void log_to_stderr(void *ud, strata_log_level_t level,
                          const char *component, const char *msg) {
  (void)ud, (void)level;
  fprintf(stderr, "strata: %s: %s\n", component, msg);
}

static int register_kernels(strata_runtime_t *rt, strata_kernel_t *smooth,
                            strata_kernel_t *energy) {
  strata_kernel_impl_t smooth_impls[2] = {{STRATA_IMPL_CPU, smooth_cpu}};
  uint32_t n = 1;
#ifdef EMBED_CUDA
  smooth_impls[n++] = (strata_kernel_impl_t){STRATA_IMPL_CUDA, smooth_cuda};
#else
  /* Without CUDA no NVIDIA card can be driven: the CPU code stands as the
   * CUDA entry, so that simulated GPUs (which run CPU code) take it. */
  smooth_impls[n++] = (strata_kernel_impl_t){STRATA_IMPL_CUDA, smooth_cpu};
#endif
  strata_kernel_desc_t d = {.struct_size = sizeof d,
                            .name = "smooth",
                            .impls = smooth_impls,
                            .nimpls = n};
  int rc = strata_kernel_register(rt, &d, smooth);
  if (rc)
    return failed("register smooth", rc);
  const strata_kernel_impl_t energy_impls[] = {{STRATA_IMPL_CPU, energy_cpu}};
  d = (strata_kernel_desc_t){.struct_size = sizeof d,
                             .name = "energy",
                             .impls = energy_impls,
                             .nimpls = 1};
  rc = strata_kernel_register(rt, &d, energy);
  return rc ? failed("register energy", rc) : 0;
}

/* {=== The job ===} */

static double x[BLOCKS][BLOCK], y[BLOCKS][BLOCK], sums[BLOCKS];

/* Per block: smooth it (tier "filter"), then its energy ("reduce"). */
static int submit(strata_runtime_t *rt, strata_job_t job, strata_kernel_t sm,
                  strata_kernel_t en, strata_buffer_t *xb, strata_buffer_t *yb,
                  strata_buffer_t *sb) {
  for (int b = 0; b < BLOCKS; b++) {
    strata_attr_desc_t filter[] = {{"tier", "filter", 0},
                                   {"precision", "fp64", 0},
                                   {"flops", NULL, 3.0 * BLOCK}};
    strata_task_desc_t d = {
        .struct_size = sizeof d,
        .kernel = sm,
        .accesses =
            (strata_access_desc_t[]){{yb[b], STRATA_W}, {xb[b], STRATA_R}},
        .naccesses = 2,
        .attrs = filter,
        .nattrs = 3,
        .name = "smooth",
        .job = job};
    int rc = strata_task_insert(rt, &d, NULL);
    if (rc)
      return failed("submit smooth", rc);
    strata_attr_desc_t reduce[] = {{"tier", "reduce", 0},
                                   {"flops", NULL, 2.0 * BLOCK}};
    d = (strata_task_desc_t){
        .struct_size = sizeof d,
        .kernel = en,
        .accesses =
            (strata_access_desc_t[]){{yb[b], STRATA_R}, {sb[b], STRATA_W}},
        .naccesses = 2,
        .attrs = reduce,
        .nattrs = 2,
        .name = "energy",
        .job = job};
    if ((rc = strata_task_insert(rt, &d, NULL)))
      return failed("submit energy", rc);
  }
  return 0;
}

/* The same computation, sequentially, on the host. */
static int check(void) {
  static double ref[BLOCK];
  strata_kernel_call_t call = {.struct_size = sizeof call, .nbuffers = 2};
  for (int b = 0; b < BLOCKS; b++) {
    void *bufs[2] = {ref, x[b]};
    size_t sizes[2] = {sizeof ref, sizeof x[b]};
    call.buffers = bufs;
    call.sizes = sizes;
    smooth_cpu(&call);
    double want = 0;
    for (int i = 0; i < BLOCK; i++)
      want += ref[i] * ref[i];
    if (fabs(sums[b] - want) > 1e-9 * want) {
      fprintf(stderr, "host: block %d: energy %.17g, expected %.17g\n", b,
              sums[b], want);
      return 1;
    }
  }
  return 0;
}

static void report(strata_runtime_t *rt, strata_job_t job) {
  printf("%-28s %-5s %6s %9s\n", "device", "class", "tasks", "busy(ms)");
  for (int i = 0; i < strata_device_count(rt); i++) {
    strata_device_info_t di = {.struct_size = sizeof di};
    strata_device_stats_t st = {.struct_size = sizeof st};
    if (strata_device_info(rt, i, &di) || strata_device_stats(rt, i, &st))
      continue;
    printf("%-28.28s %-5s %6llu %9.3f\n", di.name,
           strata_device_class_name(di.device_class),
           (unsigned long long)st.tasks_run, (double)st.busy_ns * 1e-6);
  }
  strata_job_info_t ji = {.struct_size = sizeof ji};
  if (!strata_job_info(rt, job, &ji))
    printf("job: %llu tasks, %llu succeeded, %llu failed\n",
           (unsigned long long)ji.submitted, (unsigned long long)ji.succeeded,
           (unsigned long long)ji.failed);
  strata_policy_stats_t ps = {.struct_size = sizeof ps};
  if (!strata_policy_stats(rt, &ps))
    printf("policy: %s, %llu calls, %llu answered from its cache\n", ps.name,
           (unsigned long long)ps.calls, (unsigned long long)ps.cached);
}

/* {=== main ===} */

static int run(strata_runtime_t *rt) {
  strata_kernel_t sm, en;
  strata_buffer_t xb[BLOCKS], yb[BLOCKS], sb[BLOCKS];
  strata_job_t job;
  int rc = register_kernels(rt, &sm, &en);
  for (int b = 0; !rc && b < BLOCKS; b++) {
    for (int i = 0; i < BLOCK; i++)
      x[b][i] = sin(0.001 * (b * BLOCK + i)) + 0.1 * ((i * 7919) % 13);
    if ((rc = strata_buffer_register(rt, x[b], sizeof x[b], &xb[b])) ||
        (rc = strata_buffer_register(rt, y[b], sizeof y[b], &yb[b])) ||
        (rc = strata_buffer_register(rt, &sums[b], sizeof sums[b], &sb[b])))
      return failed("register a buffer", rc);
  }
  if (rc)
    return rc;
  if ((rc = strata_job_create(rt, &job)))
    return failed("create the job", rc);
  rc = submit(rt, job, sm, en, xb, yb, sb);
  int wrc = strata_job_wait(rt, job);
  if (!rc && wrc)
    rc = failed("the job", wrc);
  /* Unregistering brings every buffer's final data home. */
  for (int b = 0; b < BLOCKS; b++) {
    int u = strata_buffer_unregister(rt, xb[b]);
    u = u ? u : strata_buffer_unregister(rt, yb[b]);
    u = u ? u : strata_buffer_unregister(rt, sb[b]);
    if (!rc && u)
      rc = failed("unregister", u);
  }
  report(rt, job);
  (void)strata_job_release(rt, job);
  return rc ? rc : check();
}

int main(int argc, char **argv) {
  if (argc < 3 || argc > 4) {
    fprintf(stderr, "usage: host BACKEND_DIR POLICY.lua [MACHINE.lua]\n");
    return 2;
  }
  char sim[4200];
  strata_runtime_opts_t opts;
  strata_runtime_opts_init(&opts);
  opts.log = log_to_stderr;
  opts.backend_path = argv[1];
  opts.policy = argv[2];
  if (argc == 4) {
    snprintf(sim, sizeof sim, "sim:machine=%s,classes=hbm+gddr", argv[3]);
    opts.backend_options = sim;
  }
  strata_runtime_t *rt;
  int rc = strata_runtime_create(&opts, &rt);
  if (rc)
    return failed("create the runtime", rc) ? 1 : 1;
  rc = run(rt);
  int d = strata_runtime_destroy(rt);
  if (!rc && d)
    rc = failed("destroy", d);
  if (!rc)
    printf("host: ok\n");
  return rc ? 1 : 0;
}
