/* SPDX-License-Identifier: MIT */
/* bench/strata-bench.c: runtime-overhead benchmarks (overhead, chain, dag,
 * wake) that print one JSON line per measurement and never judge time.
 * wake also measures, in the same run, the machine's own floor (a bare
 * condition variable and futex ping-pong, bench/pingpong.h) and the CPU an
 * idle runtime uses. */
#include "config.h"

#include "common.h" /* what starpu/overhead.c shares */

#include <strata.h>

#ifdef __linux__
#include <sys/prctl.h>
#endif

#ifndef STRATA_BUILD_BACKENDS
#define STRATA_BUILD_BACKENDS NULL /* the library's configured path */
#endif

#define PROG "strata-bench"
#include "pingpong.h"
#include "strata-helpers.h"

#define SLOT 64 /* bytes per buffer: one cache line, no false sharing */

/* Everything a run needs; kernels see it through their user_data. */
typedef struct bench {
  options_t opt;
  const char *backend_path; /* --backend-path */
  const char *policy;       /* --policy: a file, "none", or NULL (tiered) */
  const char *metrics;      /* --metrics-listen: serve /metrics there */
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
          "(default:\n"
          "                      200, 2000 and 20000, alternated)\n"
          "  --backend-path P    backend plugin directory\n"
          "  --policy FILE       Lua policy (default: the library's, "
          "tiered.lua;\n"
          "                      'none': the built-in placement)\n"
          "  --metrics-listen A  serve Prometheus metrics on A "
          "([HOST]:PORT) while\n"
          "                      it runs (the port goes to stderr)\n"
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

/* Idle times of a wake run, in µs: --sleep-us alone, else these three,
 * alternated sample by sample. */
static const uint64_t default_idles_us[] = {200, 2000, 20000};
#define MAX_IDLES (sizeof default_idles_us / sizeof *default_idles_us)

/* The steady state of a long idle: CPU used between these two times after
 * the runtime ran out of work, sampled every CPU_EVERY-th round. */
#define CPU_FROM_MS 10
#define CPU_TO_MS 60
#define CPU_EVERY 10

/* What the runtime's threads (every thread but this one) used, in ns:
 * signed, since the two clocks are read one after the other. */
static int64_t runtime_cpu_ns(void) {
  int64_t all = (int64_t)clock_ns(CLOCK_PROCESS_CPUTIME_ID);
  return all - (int64_t)thread_cpu_ns();
}

/* The floors measured beside Strata. */
typedef struct floor_kind {
  pp_kind_t kind;
  bool cross;
  const char *name;
} floor_kind_t;

static const floor_kind_t floors[] = {{PP_CONDVAR, false, "condvar"},
                                      {PP_FUTEX, false, "futex"},
                                      {PP_FUTEX, true, "futex-cross"}};
#define NFLOOR (sizeof floors / sizeof *floors)

/* Samples of one subject (Strata or a floor) at one idle time. */
typedef struct wake_series {
  uint64_t *lat;    /* submit-to-start, ns */
  uint64_t idle_ns; /* sum of the idles as they really were */
  int64_t cpu_ns;   /* Strata: what its threads used over those idles */
} wake_series_t;

/* Run one stamp task and wait for it. @return its kernel's start stamp
 * minus t0 (when it is given) in *lat_ns. */
static int stamp_task(bench_t *b, uint64_t *lat_ns, bool timed) {
  static const strata_access_mode_t mode = STRATA_W;
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
  if (timed)
    *lat_ns = *slot(b, 0) - t0;
  return 0;
}

/* Submit-to-start latency of one task submitted to a runtime that has been
 * idle for about idle_us: a task runs first, so that the idle starts when
 * it does (the workers had work just before, as they would in an
 * application that pauses), then the program sleeps, then the timed task.
 * Also adds the real idle (from the first task's start) and the CPU the
 * runtime's threads used meanwhile to s. */
static int wake_sample(bench_t *b, uint64_t idle_us, wake_series_t *s,
                       uint64_t i) {
  int rc = stamp_task(b, NULL, false);
  if (rc)
    return rc;
  uint64_t idle_from = *slot(b, 0);
  int64_t cpu0 = runtime_cpu_ns();
  sleep_us(idle_us);
  int64_t cpu1 = runtime_cpu_ns();
  uint64_t idle_to = now_ns();
  if ((rc = stamp_task(b, &s->lat[i], true)))
    return rc;
  s->idle_ns += idle_to - idle_from;
  s->cpu_ns += cpu1 - cpu0;
  return 0;
}

/* The CPU the runtime's threads use from CPU_FROM_MS to CPU_TO_MS after it
 * ran out of work, as a percentage of one core. */
static int idle_cpu_sample(bench_t *b, double *pct) {
  int rc = stamp_task(b, NULL, false);
  if (rc)
    return rc;
  sleep_us(CPU_FROM_MS * 1000);
  int64_t c0 = runtime_cpu_ns();
  uint64_t t0 = now_ns();
  sleep_us((CPU_TO_MS - CPU_FROM_MS) * 1000);
  int64_t c1 = runtime_cpu_ns();
  uint64_t t1 = now_ns();
  *pct = 100.0 * (double)(c1 - c0) / (double)(t1 - t0);
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* One line per subject and idle: the latency statistics (common.h's wake
 * line, with the idle measured and, for Strata, the CPU it used). */
static void print_series(const char *runtime, const char *wait,
                         unsigned workers, uint64_t idle_us, wake_series_t *s,
                         uint64_t n) {
  print_head(runtime, NULL);
  if (wait)
    printf(",\"wait\":\"%s\"", wait);
  printf(",\"workload\":\"wake\",\"workers\":%u,\"samples\":%" PRIu64
         ",\"sleep_us\":%" PRIu64 ",\"idle_us\":%.1f",
         workers, n, idle_us, (double)s->idle_ns * 1e-3 / (double)n);
  print_latencies(s->lat, n);
  if (!wait)
    printf(",\"idle_cpu_pct\":%.2f",
           s->idle_ns ? 100.0 * (double)s->cpu_ns / (double)s->idle_ns : 0.0);
  printf("}\n");
  fflush(stdout);
}

static void print_idle_cpu(unsigned workers, double *pct, uint64_t n) {
  qsort(pct, n, sizeof *pct, cmp_double);
  printf("{\"runtime\":\"strata\",\"workload\":\"wake-idle-cpu\","
         "\"workers\":%u,\"samples\":%" PRIu64 ",\"from_ms\":%d,"
         "\"to_ms\":%d,\"median_pct\":%.3f,\"max_pct\":%.3f}\n",
         workers, n, CPU_FROM_MS, CPU_TO_MS, pct[n / 2], pct[n - 1]);
  fflush(stdout);
}

/* Everything a wake run keeps: per idle, Strata's series and the floors'. */
typedef struct wake_run {
  uint64_t idles[MAX_IDLES];
  size_t nidle;
  wake_series_t strata[MAX_IDLES], floor[NFLOOR][MAX_IDLES];
  pingpong_t pp[NFLOOR];
  bool pp_up[NFLOOR];
  double *cpu_pct;
  uint64_t ncpu;
} wake_run_t;

/* One round: every idle time, Strata then each floor, so that drift in
 * the machine's state touches all of them alike. */
static int wake_round(bench_t *b, wake_run_t *w, uint64_t i) {
  for (size_t j = 0; j < w->nidle; j++) {
    int rc = wake_sample(b, w->idles[j], &w->strata[j], i);
    if (rc)
      return rc;
    for (size_t k = 0; k < NFLOOR; k++)
      if (w->pp_up[k])
        w->floor[k][j].lat[i] =
            pp_sample(&w->pp[k], w->idles[j], &w->floor[k][j].idle_ns);
  }
  if (i % CPU_EVERY == 0)
    return idle_cpu_sample(b, &w->cpu_pct[w->ncpu++]);
  return 0;
}

static void wake_print(const bench_t *b, wake_run_t *w, uint64_t n) {
  for (size_t j = 0; j < w->nidle; j++) {
    print_series("strata", NULL, b->workers, w->idles[j], &w->strata[j], n);
    for (size_t k = 0; k < NFLOOR; k++)
      if (w->pp_up[k])
        print_series("floor", floors[k].name, 1, w->idles[j], &w->floor[k][j],
                     n);
  }
  print_idle_cpu(b->workers, w->cpu_pct, w->ncpu);
}

static int run_wake(bench_t *b) {
  uint64_t n = b->opt.tasks;
  wake_run_t w = {.nidle = b->opt.sleep_given ? 1 : MAX_IDLES};
  if (b->opt.sleep_given)
    w.idles[0] = b->opt.sleep_us;
  else
    memcpy(w.idles, default_idles_us, sizeof default_idles_us);
  int rc = 0;
#ifdef __linux__
  /* Sleep as long as asked: the default slack (50 µs) would stretch the
   * short idle by a quarter. */
  (void)prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
#endif
  w.cpu_pct = malloc((n / CPU_EVERY + 1) * sizeof *w.cpu_pct);
  bool ok = w.cpu_pct != NULL;
  for (size_t j = 0; j < w.nidle; j++) {
    ok &= (w.strata[j].lat = malloc(n * sizeof(uint64_t))) != NULL;
    for (size_t k = 0; k < NFLOOR; k++)
      ok &= (w.floor[k][j].lat = malloc(n * sizeof(uint64_t))) != NULL;
  }
  if (!ok)
    rc = report("allocating samples", STRATA_ENOMEM);
  for (size_t k = 0; k < NFLOOR && rc == 0; k++)
    w.pp_up[k] = pp_init(&w.pp[k], floors[k].kind, floors[k].cross) == 0;
  for (uint64_t i = 0; i < n && rc == 0; i++)
    rc = wake_round(b, &w, i);
  if (rc == 0)
    wake_print(b, &w, n);
  for (size_t k = 0; k < NFLOOR; k++)
    if (w.pp_up[k])
      pp_fini(&w.pp[k]);
  for (size_t j = 0; j < w.nidle; j++) {
    free(w.strata[j].lat);
    for (size_t k = 0; k < NFLOOR; k++)
      free(w.floor[k][j].lat);
  }
  free(w.cpu_pct);
  return rc;
}

/* {=== main ===} */

static int run(bench_t *b) {
  const options_t *o = &b->opt;
  int rc = start_runtime(b);
  if (rc)
    return rc;
  if (b->metrics) {
    if ((rc = strata_metrics_listen(b->rt, b->metrics))) {
      fprintf(stderr, PROG ": --metrics-listen %s: %s\n", b->metrics,
              strata_strerror(rc));
      return rc;
    }
    fprintf(stderr, PROG ": metrics: http://127.0.0.1:%d/metrics\n",
            strata_metrics_port(b->rt));
  }
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
                              {"--policy", &b.policy},
                              {"--metrics-listen", &b.metrics}};
  const program_t prog = {PROG, usage, own, sizeof own / sizeof *own};
  b.opt = parse_args(&prog, argc, argv);
  int rc = run(&b);
  cleanup(&b);
  return rc ? 1 : 0;
}
