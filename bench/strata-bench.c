/* SPDX-License-Identifier: MIT */
/* bench/strata-bench.c: runtime-overhead benchmarks (overhead, chain, dag,
 * wake) that print one JSON line per measurement and never judge time. */
#include "config.h"

#include "common.h" /* what starpu/overhead.c shares */

#include <strata.h>

#ifndef STRATA_BUILD_BACKENDS
#define STRATA_BUILD_BACKENDS NULL /* the library's configured path */
#endif

#define PROG "strata-bench"
#include "strata-helpers.h"

#define SLOT 64 /* bytes per buffer: one cache line, no false sharing */

/* Everything a run needs; kernels see it through their user_data. */
typedef struct bench {
  options_t opt;
  const char *backend_path; /* --backend-path */
  const char *policy;       /* --policy: a file, "none", or NULL (tiered) */
  strata_runtime_t *rt;
  unsigned workers; /* CPU worker threads the runtime really started */
  uint64_t spin_ns;
  strata_kernel_t k_empty, k_chain, k_dag, k_stamp;
  unsigned char *mem; /* nbuf slots of SLOT bytes */
  uint64_t *shadow;   /* dag: the values a sequential run would produce */
  strata_buffer_t *bufs;
  size_t nbuf;
  uint32_t *dag; /* 3 buffer indices per task: read, read, write */
} bench_t;

/* {=== Small helpers ===} */

static void usage(FILE *f) {
  fprintf(f,
          "usage: " PROG " overhead|chain|dag|wake [options]\n"
          "  -n, --tasks N       tasks (samples for wake); default 1e6 for\n"
          "                      overhead/chain, 2e5 for dag, 2e4 with\n"
          "                      --task-us, 200 for wake\n"
          "  --workers W         CPU worker threads (default: one per core)\n"
          "  --task-us U         each task busy-waits U microseconds\n"
          "  --buffers B         dag: buffers the DAG spans (default 256)\n"
          "  --repeat R          print R measurements (default 1)\n"
          "  --seed S            dag: random seed (default 1)\n"
          "  --sleep-us U        wake: idle time before each sample "
          "(default 2000)\n"
          "  --backend-path P    backend plugin directory\n"
          "  --policy FILE       Lua policy (default: the library's, "
          "tiered.lua;\n"
          "                      'none': the built-in placement)\n"
          "Prints one JSON line per measurement on stdout.\n");
}

/* {=== Kernels (each registered once) ===} */

static int k_empty(const strata_kernel_call_t *c) {
  const bench_t *b = c->user_data;
  spin_for(b->spin_ns);
  return 0;
}

static int k_chain(const strata_kernel_call_t *c) {
  const bench_t *b = c->user_data;
  ++*(uint64_t *)c->buffers[0]; /* lets the run be checked afterwards */
  spin_for(b->spin_ns);
  return 0;
}

/* Reads two buffers, writes one: out = a + b + 1, which makes any
 * misordering visible in the final values. */
static int k_dag(const strata_kernel_call_t *c) {
  const bench_t *b = c->user_data;
  uint64_t x = *(const uint64_t *)c->buffers[0];
  uint64_t y = *(const uint64_t *)c->buffers[1];
  *(uint64_t *)c->buffers[2] = x + y + 1;
  spin_for(b->spin_ns);
  return 0;
}

static int k_stamp(const strata_kernel_call_t *c) {
  *(uint64_t *)c->buffers[0] = now_ns();
  return 0;
}

static int register_kernels(bench_t *b) {
  int rc;
  if ((rc = register_cpu_kernel(b->rt, "bench.empty", k_empty, b,
                                &b->k_empty)) ||
      (rc = register_cpu_kernel(b->rt, "bench.chain", k_chain, b,
                                &b->k_chain)) ||
      (rc = register_cpu_kernel(b->rt, "bench.dag", k_dag, b, &b->k_dag)) ||
      (rc = register_cpu_kernel(b->rt, "bench.stamp", k_stamp, b, &b->k_stamp)))
    return rc;
  return 0;
}

/* {=== Setup and teardown ===} */

/* Worker threads of all CPU devices, as the runtime really started them. */
static unsigned count_cpu_workers(strata_runtime_t *rt) {
  unsigned n = 0;
  for (int i = 0; i < strata_device_count(rt); i++) {
    strata_device_info_t info = {.struct_size = sizeof info};
    if (strata_device_info(rt, i, &info) == 0 &&
        info.device_class == STRATA_CLASS_CPU)
      n += info.workers;
  }
  return n;
}

static int start_runtime(bench_t *b) {
  strata_runtime_opts_t o;
  strata_runtime_opts_init(&o);
  o.log = log_stderr;
  o.backend_path = b->backend_path;
  /* The workloads measure CPU workers; other backends would only add
   * devices the default placement could spread tasks over. */
  o.backends = "cpu";
  o.required_backends = "cpu";
  o.cpu_workers = b->opt.workers;
  o.policy = b->policy && !strcmp(b->policy, "none") ? "" : b->policy;
  int rc = strata_runtime_create(&o, &b->rt);
  if (rc)
    return report("strata_runtime_create", rc);
  b->workers = count_cpu_workers(b->rt);
  return register_kernels(b);
}

/* Cache-line slots, each its own buffer: registration rejects overlap and
 * separate lines keep workers from sharing them by accident. b->nbuf counts
 * only the buffers registered, which cleanup() unregisters. */
static int register_buffers(bench_t *b, size_t n) {
  size_t alloc = n ? n : 1; /* aligned_alloc(.., 0) may return NULL */
  b->mem = aligned_alloc(SLOT, alloc * SLOT);
  b->bufs = calloc(alloc, sizeof *b->bufs);
  if (!b->mem || !b->bufs)
    return report("allocating buffers", STRATA_ENOMEM);
  memset(b->mem, 0, alloc * SLOT);
  for (; b->nbuf < n; b->nbuf++) {
    int rc = strata_buffer_register(b->rt, b->mem + b->nbuf * SLOT, SLOT,
                                    &b->bufs[b->nbuf]);
    if (rc)
      return report("strata_buffer_register", rc);
  }
  return 0;
}

static uint64_t *slot(const bench_t *b, size_t i) {
  return (uint64_t *)(void *)(b->mem + i * SLOT);
}

/* Draw the DAG before timing so that only the runtime is measured. */
static int build_dag(bench_t *b) {
  b->dag = malloc(b->opt.tasks * 3 * sizeof *b->dag);
  b->shadow = calloc(b->nbuf, sizeof *b->shadow);
  if (!b->dag || !b->shadow)
    return report("allocating the DAG", STRATA_ENOMEM);
  draw_dag(b->dag, b->opt.tasks, b->nbuf, b->opt.seed);
  return 0;
}

static void cleanup(bench_t *b) {
  for (size_t i = 0; i < b->nbuf; i++) {
    int rc = strata_buffer_unregister(b->rt, b->bufs[i]);
    if (rc)
      report("strata_buffer_unregister", rc);
  }
  if (b->rt) {
    int rc = strata_runtime_destroy(b->rt);
    if (rc)
      report("strata_runtime_destroy", rc);
  }
  free(b->dag);
  free(b->shadow);
  free(b->bufs);
  free(b->mem);
}

/* {=== Submission: the pattern every workload uses ===} */

/* create, access..., submit, release: one task, as an application would
 * submit it. */
static int submit(bench_t *b, strata_kernel_t k, const uint32_t *bufs,
                  const strata_access_mode_t *modes, size_t n) {
  strata_task_t t;
  int rc = strata_task_create(b->rt, k, &t);
  if (rc)
    return report("strata_task_create", rc);
  for (size_t i = 0; i < n && rc == 0; i++)
    if ((rc = strata_task_access(b->rt, t, b->bufs[bufs[i]], modes[i])))
      report("strata_task_access", rc);
  if (rc == 0 && (rc = strata_task_submit(b->rt, t)))
    report("strata_task_submit", rc);
  int rrc = strata_task_release(b->rt, t);
  if (rrc && !rc)
    rc = report("strata_task_release", rrc);
  return rc;
}

static int submit_overhead(bench_t *b) {
  for (uint64_t i = 0; i < b->opt.tasks; i++) {
    int rc = submit(b, b->k_empty, NULL, NULL, 0);
    if (rc)
      return rc;
  }
  return 0;
}

static int submit_chain(bench_t *b) {
  static const uint32_t buf[] = {0};
  static const strata_access_mode_t mode[] = {STRATA_RW};
  for (uint64_t i = 0; i < b->opt.tasks; i++) {
    int rc = submit(b, b->k_chain, buf, mode, 1);
    if (rc)
      return rc;
  }
  return 0;
}

static int submit_dag(bench_t *b) {
  static const strata_access_mode_t modes[] = {STRATA_R, STRATA_R, STRATA_W};
  for (uint64_t i = 0; i < b->opt.tasks; i++) {
    int rc = submit(b, b->k_dag, &b->dag[3 * i], modes, 3);
    if (rc)
      return rc;
  }
  return 0;
}

/* {=== Checking results (a wrong answer is an error, a slow one never) ===}
 */

/* Replay the DAG sequentially on the shadow copy and compare. */
static int check_dag(bench_t *b) {
  replay_dag(b->dag, b->opt.tasks, b->shadow);
  for (size_t i = 0; i < b->nbuf; i++)
    if (check_dag_buffer(PROG, i, *slot(b, i), b->shadow[i]))
      return 1;
  return 0;
}

static uint64_t tasks_run(strata_runtime_t *rt) {
  uint64_t n = 0;
  for (int i = 0; i < strata_device_count(rt); i++) {
    strata_device_stats_t st = {.struct_size = sizeof st};
    if (strata_device_stats(rt, i, &st) == 0)
      n += st.tasks_run;
  }
  return n;
}

/* {=== Throughput workloads: overhead, chain, dag ===} */

/* One timed run: first submit to strata_runtime_wait_all returning. */
static int run_throughput(bench_t *b, uint64_t rep) {
  uint64_t before = tasks_run(b->rt);
  uint64_t cpu0 = thread_cpu_ns(), t0 = now_ns();
  int rc = b->opt.workload == W_OVERHEAD ? submit_overhead(b)
           : b->opt.workload == W_CHAIN  ? submit_chain(b)
                                         : submit_dag(b);
  uint64_t ts = now_ns(), cpu1 = thread_cpu_ns();
  /* Wait even after a failed submit: tasks already in flight must end
   * before their buffers go away. */
  int wrc = strata_runtime_wait_all(b->rt);
  timing_t tm = {now_ns() - t0, ts - t0, cpu1 - cpu0};
  if (rc)
    return rc;
  if (wrc)
    return report("strata_runtime_wait_all", wrc);
  if (tasks_run(b->rt) - before != b->opt.tasks) {
    fprintf(stderr, PROG ": %" PRIu64 " tasks ran, %" PRIu64 " submitted\n",
            tasks_run(b->rt) - before, b->opt.tasks);
    return 1;
  }
  if (b->opt.workload == W_CHAIN &&
      check_chain_count(PROG, &b->opt, rep, *slot(b, 0)))
    return 1;
  if (b->opt.workload == W_DAG && check_dag(b))
    return 1;
  /* The "sched" field names the policy that placed the tasks. */
  strata_policy_stats_t ps = {.struct_size = sizeof ps};
  const char *policy =
      strata_policy_stats(b->rt, &ps) == 0 && ps.name[0] ? ps.name : "none";
  print_throughput("strata", policy, &b->opt, b->workers, b->nbuf, &tm);
  return 0;
}

/* {=== Wake-up latency ===} */

/* Submit-to-start latency of one task, after the workers have been idle
 * long enough to stop polling and go to sleep. */
static int wake_sample(bench_t *b, uint64_t *lat_ns) {
  static const strata_access_mode_t mode = STRATA_W;
  sleep_us(b->opt.sleep_us);
  strata_task_t t;
  int rc = strata_task_create(b->rt, b->k_stamp, &t);
  if (rc)
    return report("strata_task_create", rc);
  if ((rc = strata_task_access(b->rt, t, b->bufs[0], mode))) {
    report("strata_task_access", rc);
    (void)strata_task_release(b->rt, t);
    return rc;
  }
  uint64_t t0 = now_ns();
  rc = strata_task_submit(b->rt, t);
  if (rc)
    report("strata_task_submit", rc);
  else if ((rc = strata_task_wait(b->rt, t)))
    report("strata_task_wait", rc);
  int rrc = strata_task_release(b->rt, t);
  if (rc || rrc)
    return rc ? rc : report("strata_task_release", rrc);
  *lat_ns = *slot(b, 0) - t0;
  return 0;
}

static int run_wake(bench_t *b) {
  uint64_t n = b->opt.tasks;
  uint64_t *lat = malloc(n * sizeof *lat);
  if (!lat)
    return report("allocating samples", STRATA_ENOMEM);
  int rc = 0;
  for (uint64_t i = 0; i < n && rc == 0; i++)
    rc = wake_sample(b, &lat[i]);
  if (rc == 0)
    print_wake("strata", NULL, &b->opt, b->workers, lat, n);
  free(lat);
  return rc;
}

/* {=== main ===} */

static int run(bench_t *b) {
  const options_t *o = &b->opt;
  int rc = start_runtime(b);
  if (rc)
    return rc;
  size_t nbuf = o->workload == W_DAG        ? (size_t)o->buffers
                : o->workload == W_OVERHEAD ? 0
                                            : 1;
  if ((rc = register_buffers(b, nbuf)))
    return rc;
  if (o->workload == W_DAG && (rc = build_dag(b)))
    return rc;
  b->spin_ns = o->task_us * 1000;
  for (uint64_t rep = 0; rep < o->repeat && rc == 0; rep++)
    rc = o->workload == W_WAKE ? run_wake(b) : run_throughput(b, rep);
  return rc;
}

int main(int argc, char **argv) {
  bench_t b = {.backend_path = STRATA_BUILD_BACKENDS};
  const own_option_t own[] = {{"--backend-path", &b.backend_path},
                              {"--policy", &b.policy}};
  const program_t prog = {PROG, usage, own, sizeof own / sizeof *own};
  b.opt = parse_args(&prog, argc, argv);
  int rc = run(&b);
  cleanup(&b);
  return rc ? 1 : 0;
}
