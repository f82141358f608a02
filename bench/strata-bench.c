/* SPDX-License-Identifier: MIT */
/* bench/strata-bench.c: runtime-overhead benchmarks (overhead, chain, dag,
 * wake) that print one JSON line per measurement and never judge time. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <strata.h>

#ifndef STRATA_BUILD_BACKENDS
#define STRATA_BUILD_BACKENDS NULL /* the library's configured path */
#endif

#define PROG "strata-bench"
#define SLOT 64 /* bytes per buffer: one cache line, no false sharing */

typedef enum { W_OVERHEAD, W_CHAIN, W_DAG, W_WAKE } workload_t;

static const char *const workload_names[] = {"overhead", "chain", "dag",
                                             "wake"};

typedef struct options {
  workload_t workload;
  uint64_t tasks;    /* 0: the workload's default */
  unsigned workers;  /* 0: one per core */
  uint64_t task_us;  /* busy-wait per task, 0: empty tasks */
  uint64_t buffers;  /* dag only */
  uint64_t repeat;
  uint64_t seed;
  uint64_t sleep_us; /* wake only: idle time before each sample */
  const char *backend_path;
} options_t;

/* Everything a run needs; kernels see it through their user_data. */
typedef struct bench {
  options_t opt;
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

static uint64_t clock_ns(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

/* Busy-wait rather than sleep: a sleeping kernel would hand its core back
 * and hide the runtime's own cost from the efficiency figure. */
static void spin_for(uint64_t ns) {
  if (!ns)
    return;
  uint64_t until = now_ns() + ns;
  while (now_ns() < until)
    ;
}

/* splitmix64: tiny, seedable, and written identically in
 * bench/starpu/overhead.c so that both runtimes get the same DAG. */
static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

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
          "Prints one JSON line per measurement on stdout.\n");
}

/* A bad command line: one line on stderr, exit status 2. */
static void usage_error(const char *fmt, ...) STRATA_PRINTF(1, 2);
static void usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs(PROG ": ", stderr);
  vfprintf(stderr, fmt, ap);
  fputs(" (try --help)\n", stderr);
  va_end(ap);
  exit(2);
}

/* A runtime call failed: say which and why. */
static int report(const char *what, int rc) {
  fprintf(stderr, PROG ": %s: %s (%s)\n", what, strata_strerror(rc),
          strata_err_name(rc));
  return rc;
}

static void log_stderr(void *ud, strata_log_level_t level,
                       const char *component, const char *msg) {
  (void)ud;
  static const char *const names[] = {"error", "warn", "info", "debug",
                                      "trace"};
  fprintf(stderr, PROG ": [%s] %s: %s\n", names[level], component, msg);
}

/* {=== Command line ===} */

/* Counts accept plain integers and whole numbers written as 1e6 or 2.5e4. */
static uint64_t parse_count(const char *opt, const char *s, uint64_t min,
                            uint64_t max) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (*s && *s != '-' && (*end == '.' || *end == 'e' || *end == 'E')) {
    double d = strtod(s, &end);
    if (*end || d < 0 || d > 1e18 || d != (double)(unsigned long long)d)
      usage_error("%s: '%s' is not a whole number", opt, s);
    v = (unsigned long long)d;
  } else if (!*s || *s == '-' || *end || errno) {
    usage_error("%s: '%s' is not a whole number", opt, s);
  }
  if (v < min || v > max)
    usage_error("%s: %s is out of range [%" PRIu64 ", %" PRIu64 "]", opt, s,
                min, max);
  return v;
}

/* The value of an option given as "--opt V" or "--opt=V". */
static const char *option_value(int argc, char **argv, int *i,
                                const char *inline_value) {
  if (inline_value)
    return inline_value;
  if (*i + 1 >= argc)
    usage_error("%s needs a value", argv[*i]);
  return argv[++*i];
}

static workload_t parse_workload(const char *s) {
  for (size_t w = 0; w < sizeof workload_names / sizeof *workload_names; w++)
    if (!strcmp(s, workload_names[w]))
      return (workload_t)w;
  usage_error("unknown workload '%s'", s);
  return W_OVERHEAD; /* not reached */
}

static void parse_option(options_t *o, int argc, char **argv, int *i) {
  char name[32];
  const char *arg = argv[*i], *eq = strchr(arg, '=');
  size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
  if (len >= sizeof name)
    usage_error("unknown option '%s'", arg);
  memcpy(name, arg, len);
  name[len] = '\0';
  const char *inl = eq ? eq + 1 : NULL;
  if (!strcmp(name, "-n") || !strcmp(name, "--tasks"))
    o->tasks = parse_count(name, option_value(argc, argv, i, inl), 1,
                           UINT64_C(1) << 32);
  else if (!strcmp(name, "--workers"))
    o->workers = (unsigned)parse_count(
        name, option_value(argc, argv, i, inl), 1, 4096);
  else if (!strcmp(name, "--task-us"))
    o->task_us = parse_count(name, option_value(argc, argv, i, inl), 0,
                             1000000);
  else if (!strcmp(name, "--buffers"))
    o->buffers = parse_count(name, option_value(argc, argv, i, inl), 3,
                             UINT64_C(1) << 24);
  else if (!strcmp(name, "--repeat"))
    o->repeat = parse_count(name, option_value(argc, argv, i, inl), 1,
                            100000);
  else if (!strcmp(name, "--seed"))
    o->seed = parse_count(name, option_value(argc, argv, i, inl), 0,
                          UINT64_MAX);
  else if (!strcmp(name, "--sleep-us"))
    o->sleep_us = parse_count(name, option_value(argc, argv, i, inl), 0,
                              1000000);
  else if (!strcmp(name, "--backend-path"))
    o->backend_path = option_value(argc, argv, i, inl);
  else
    usage_error("unknown option '%s'", arg);
}

static uint64_t default_tasks(const options_t *o) {
  if (o->workload == W_WAKE)
    return 200;
  if (o->task_us)
    return 20000;
  return o->workload == W_DAG ? 200000 : 1000000;
}

static options_t parse_args(int argc, char **argv) {
  options_t o = {.buffers = 256, .repeat = 1, .seed = 1, .sleep_us = 2000,
                 .backend_path = STRATA_BUILD_BACKENDS};
  bool have_workload = false, have_buffers = false;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      usage(stdout);
      exit(0);
    }
    if (argv[i][0] != '-') {
      if (have_workload)
        usage_error("more than one workload ('%s')", argv[i]);
      o.workload = parse_workload(argv[i]);
      have_workload = true;
      continue;
    }
    have_buffers |= !strncmp(argv[i], "--buffers", 9);
    parse_option(&o, argc, argv, &i);
  }
  if (!have_workload)
    usage_error("no workload given: overhead, chain, dag or wake");
  if (have_buffers && o.workload != W_DAG)
    usage_error("--buffers applies to dag only");
  if (o.task_us && o.workload == W_WAKE)
    usage_error("--task-us does not apply to wake");
  if (!o.tasks)
    o.tasks = default_tasks(&o);
  return o;
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

static int register_kernel(bench_t *b, const char *name, strata_kernel_fn fn,
                           strata_kernel_t *out) {
  strata_kernel_desc_t d = {.struct_size = sizeof d, .name = name,
                            .user_data = b};
  d.impl[STRATA_CLASS_CPU] = fn;
  int rc = strata_kernel_register(b->rt, &d, out);
  return rc ? report("strata_kernel_register", rc) : 0;
}

static int register_kernels(bench_t *b) {
  int rc;
  if ((rc = register_kernel(b, "bench.empty", k_empty, &b->k_empty)) ||
      (rc = register_kernel(b, "bench.chain", k_chain, &b->k_chain)) ||
      (rc = register_kernel(b, "bench.dag", k_dag, &b->k_dag)) ||
      (rc = register_kernel(b, "bench.stamp", k_stamp, &b->k_stamp)))
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
  o.backend_path = b->opt.backend_path;
  /* The workloads measure CPU workers; other backends would only add
   * devices the default placement could spread tasks over. */
  o.backends = "cpu";
  o.required_backends = "cpu";
  o.cpu_workers = b->opt.workers;
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
  uint64_t n = b->opt.tasks, nb = b->nbuf, s = b->opt.seed;
  b->dag = malloc(n * 3 * sizeof *b->dag);
  b->shadow = calloc(nb, sizeof *b->shadow);
  if (!b->dag || !b->shadow)
    return report("allocating the DAG", STRATA_ENOMEM);
  for (uint64_t t = 0; t < n; t++) {
    uint32_t *e = &b->dag[3 * t];
    e[0] = (uint32_t)(rng_next(&s) % nb);
    do
      e[1] = (uint32_t)(rng_next(&s) % nb);
    while (e[1] == e[0]);
    do
      e[2] = (uint32_t)(rng_next(&s) % nb);
    while (e[2] == e[0] || e[2] == e[1]);
  }
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
  static const strata_access_mode_t modes[] = {STRATA_R, STRATA_R,
                                               STRATA_W};
  for (uint64_t i = 0; i < b->opt.tasks; i++) {
    int rc = submit(b, b->k_dag, &b->dag[3 * i], modes, 3);
    if (rc)
      return rc;
  }
  return 0;
}

/* {=== Checking results (a wrong answer is an error, a slow one never) ===}
 */

static int check_chain(const bench_t *b, uint64_t rep) {
  uint64_t want = b->opt.tasks * (rep + 1), got = *slot(b, 0);
  if (got == want)
    return 0;
  fprintf(stderr, PROG ": chain: counter is %" PRIu64 ", expected %" PRIu64
                  "\n", got, want);
  return 1;
}

/* Replay the DAG sequentially on the shadow copy and compare. */
static int check_dag(bench_t *b) {
  for (uint64_t t = 0; t < b->opt.tasks; t++) {
    const uint32_t *e = &b->dag[3 * t];
    b->shadow[e[2]] = b->shadow[e[0]] + b->shadow[e[1]] + 1;
  }
  for (size_t i = 0; i < b->nbuf; i++)
    if (*slot(b, i) != b->shadow[i]) {
      fprintf(stderr, PROG ": dag: buffer %zu holds %" PRIu64
                      ", a sequential run gives %" PRIu64 "\n",
              i, *slot(b, i), b->shadow[i]);
      return 1;
    }
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

/* Wall time from the first submit to the end of the wait, to the last
 * submit returning (close to the total: the submitting thread is the
 * bottleneck), and the CPU time the submitting thread used meanwhile
 * (less than its wall time: it was preempted or blocked). */
typedef struct timing {
  uint64_t total_ns, submit_ns, submit_cpu_ns;
} timing_t;

static void print_throughput(const bench_t *b, const timing_t *tm) {
  const options_t *o = &b->opt;
  printf("{\"runtime\":\"strata\",\"workload\":\"%s\",\"workers\":%u,"
         "\"tasks\":%" PRIu64, workload_names[o->workload], b->workers,
         o->tasks);
  if (o->workload == W_DAG)
    printf(",\"buffers\":%zu,\"seed\":%" PRIu64, b->nbuf, o->seed);
  double secs = (double)tm->total_ns * 1e-9, n = (double)o->tasks;
  printf(",\"task_us\":%" PRIu64 ",\"seconds\":%.6f,\"ns_per_task\":%.1f"
         ",\"submit_ns_per_task\":%.1f,\"submit_cpu_ns_per_task\":%.1f",
         o->task_us, secs, (double)tm->total_ns / n,
         (double)tm->submit_ns / n, (double)tm->submit_cpu_ns / n);
  if (o->task_us) {
    /* A chain cannot use more than one worker at a time. */
    unsigned par = o->workload == W_CHAIN ? 1 : b->workers;
    double ideal = (double)o->tasks * (double)o->task_us * 1e-6 / par;
    printf(",\"ideal_seconds\":%.6f,\"efficiency\":%.4f", ideal,
           ideal / secs);
  }
  printf("}\n");
  fflush(stdout);
}

/* One timed run: first submit to strata_runtime_wait_all returning. */
static int run_throughput(bench_t *b, uint64_t rep) {
  uint64_t before = tasks_run(b->rt);
  uint64_t cpu0 = clock_ns(CLOCK_THREAD_CPUTIME_ID), t0 = now_ns();
  int rc = b->opt.workload == W_OVERHEAD ? submit_overhead(b)
           : b->opt.workload == W_CHAIN  ? submit_chain(b)
                                         : submit_dag(b);
  uint64_t ts = now_ns(), cpu1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
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
  if (b->opt.workload == W_CHAIN && check_chain(b, rep))
    return 1;
  if (b->opt.workload == W_DAG && check_dag(b))
    return 1;
  print_throughput(b, &tm);
  return 0;
}

/* {=== Wake-up latency ===} */

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

static void sleep_us(uint64_t us) {
  struct timespec ts = {.tv_sec = (time_t)(us / 1000000),
                        .tv_nsec = (long)(us % 1000000) * 1000};
  while (nanosleep(&ts, &ts) && errno == EINTR)
    ;
}

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
  if (rc == 0) {
    qsort(lat, n, sizeof *lat, cmp_u64);
    uint64_t p99 = (n * 99 + 99) / 100 - 1; /* ceil(0.99 n) - 1 */
    printf("{\"runtime\":\"strata\",\"workload\":\"wake\",\"workers\":%u,"
           "\"samples\":%" PRIu64 ",\"sleep_us\":%" PRIu64
           ",\"min_us\":%.2f,\"median_us\":%.2f,\"p99_us\":%.2f,"
           "\"max_us\":%.2f}\n",
           b->workers, n, b->opt.sleep_us, lat[0] * 1e-3, lat[n / 2] * 1e-3,
           lat[p99] * 1e-3, lat[n - 1] * 1e-3);
    fflush(stdout);
  }
  free(lat);
  return rc;
}

/* {=== main ===} */

static int run(bench_t *b) {
  const options_t *o = &b->opt;
  int rc = start_runtime(b);
  if (rc)
    return rc;
  size_t nbuf = o->workload == W_DAG ? (size_t)o->buffers
                : o->workload == W_OVERHEAD ? 0 : 1;
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
  bench_t b = {.opt = parse_args(argc, argv)};
  int rc = run(&b);
  cleanup(&b);
  return rc ? 1 : 0;
}
