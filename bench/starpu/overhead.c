/* SPDX-License-Identifier: MIT */
/* bench/starpu/overhead.c: StarPU versions of strata-bench's workloads
 * (overhead, chain, dag, wake), printing the same JSON lines. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <starpu.h>

#define PROG "starpu-overhead"

typedef enum { W_OVERHEAD, W_CHAIN, W_DAG, W_WAKE } workload_t;

static const char *const workload_names[] = {"overhead", "chain", "dag",
                                             "wake"};

typedef struct options {
  workload_t workload;
  uint64_t tasks;   /* 0: the workload's default */
  unsigned workers; /* 0: StarPU's choice (STARPU_NCPU or all cores) */
  uint64_t task_us;
  uint64_t buffers;
  uint64_t repeat;
  uint64_t seed;
  uint64_t sleep_us;
  const char *sched; /* NULL: STARPU_SCHED or StarPU's default */
} options_t;

/* One variable per buffer, each on its own cache line as in strata-bench. */
typedef struct slot {
  _Alignas(64) uint64_t v;
} slot_t;

typedef struct bench {
  options_t opt;
  unsigned workers;
  uint64_t spin_ns; /* read by the kernels through cl_arg */
  slot_t *mem;
  starpu_data_handle_t *handles;
  size_t nbuf;
  uint64_t *shadow;
  uint32_t *dag; /* 3 buffer indices per task: read, read, write */
} bench_t;

/* {=== Small helpers (the same as in strata-bench.c) ===} */

static uint64_t clock_ns(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

/* Busy-wait: a sleeping kernel would hide the runtime's cost. */
static void spin_for(uint64_t ns) {
  if (!ns)
    return;
  uint64_t until = now_ns() + ns;
  while (now_ns() < until)
    ;
}

/* splitmix64, identical to strata-bench's, so both get the same DAG. */
static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: " PROG " overhead|chain|dag|wake [options]\n"
          "  -n, --tasks N   tasks (samples for wake); defaults as "
          "strata-bench\n"
          "  --workers W     CPU workers (sets starpu_conf.ncpus; "
          "STARPU_NCPU wins)\n"
          "  --task-us U     each task busy-waits U microseconds\n"
          "  --buffers B     dag: buffers (default 256)\n"
          "  --repeat R      print R measurements (default 1)\n"
          "  --seed S        dag: random seed (default 1)\n"
          "  --sleep-us U    wake: idle time before each sample "
          "(default 2000)\n"
          "  --sched NAME    scheduling policy (else STARPU_SCHED)\n");
}

/* A bad command line: one line on stderr, exit status 2. */
static void usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static void usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs(PROG ": ", stderr);
  vfprintf(stderr, fmt, ap);
  fputs(" (try --help)\n", stderr);
  va_end(ap);
  exit(2);
}

static int report(const char *what, int rc) {
  fprintf(stderr, PROG ": %s failed: %s\n", what, strerror(rc < 0 ? -rc : rc));
  return 1;
}

/* {=== Command line (the same grammar as strata-bench) ===} */

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
  else if (!strcmp(name, "--sched"))
    o->sched = option_value(argc, argv, i, inl);
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
  options_t o = {.buffers = 256, .repeat = 1, .seed = 1, .sleep_us = 2000};
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

/* {=== Codelets ===} */

static void k_empty(void *buffers[], void *arg) {
  (void)buffers;
  spin_for(((const bench_t *)arg)->spin_ns);
}

static void k_chain(void *buffers[], void *arg) {
  ++*(uint64_t *)STARPU_VARIABLE_GET_PTR(buffers[0]);
  spin_for(((const bench_t *)arg)->spin_ns);
}

static void k_dag(void *buffers[], void *arg) {
  uint64_t x = *(const uint64_t *)STARPU_VARIABLE_GET_PTR(buffers[0]);
  uint64_t y = *(const uint64_t *)STARPU_VARIABLE_GET_PTR(buffers[1]);
  *(uint64_t *)STARPU_VARIABLE_GET_PTR(buffers[2]) = x + y + 1;
  spin_for(((const bench_t *)arg)->spin_ns);
}

static void k_stamp(void *buffers[], void *arg) {
  (void)arg;
  *(uint64_t *)STARPU_VARIABLE_GET_PTR(buffers[0]) = now_ns();
}

/* No performance model: eager and lws do not need one, and a model would
 * make StarPU calibrate (and write files) during the timed runs. */
static struct starpu_codelet cl_empty = {
    .cpu_funcs = {k_empty}, .nbuffers = 0, .name = "bench.empty"};
static struct starpu_codelet cl_chain = {
    .cpu_funcs = {k_chain}, .nbuffers = 1, .modes = {STARPU_RW},
    .name = "bench.chain"};
static struct starpu_codelet cl_dag = {
    .cpu_funcs = {k_dag}, .nbuffers = 3,
    .modes = {STARPU_R, STARPU_R, STARPU_W}, .name = "bench.dag"};
static struct starpu_codelet cl_stamp = {
    .cpu_funcs = {k_stamp}, .nbuffers = 1, .modes = {STARPU_W},
    .name = "bench.stamp"};

/* {=== Setup and teardown ===} */

static int start_starpu(bench_t *b) {
  struct starpu_conf conf;
  int rc = starpu_conf_init(&conf);
  if (rc)
    return report("starpu_conf_init", rc);
  if (b->opt.workers)
    conf.ncpus = (int)b->opt.workers;
  /* CPU workers only, as on the Strata side. */
  conf.ncuda = 0;
  conf.nopencl = 0;
  conf.nmic = 0;
  conf.nmpi_ms = 0;
  if (b->opt.sched)
    conf.sched_policy_name = b->opt.sched;
  if ((rc = starpu_init(&conf)))
    return report("starpu_init", rc);
  b->workers = starpu_cpu_worker_get_count();
  return 0;
}

static int register_buffers(bench_t *b, size_t n) {
  b->mem = aligned_alloc(_Alignof(slot_t), (n ? n : 1) * sizeof *b->mem);
  b->handles = calloc(n ? n : 1, sizeof *b->handles);
  if (!b->mem || !b->handles)
    return report("allocating buffers", ENOMEM);
  memset(b->mem, 0, (n ? n : 1) * sizeof *b->mem);
  for (size_t i = 0; i < n; i++)
    starpu_variable_data_register(&b->handles[i], STARPU_MAIN_RAM,
                                  (uintptr_t)&b->mem[i].v,
                                  sizeof b->mem[i].v);
  b->nbuf = n;
  return 0;
}

static int build_dag(bench_t *b) {
  uint64_t n = b->opt.tasks, nb = b->nbuf, s = b->opt.seed;
  b->dag = malloc(n * 3 * sizeof *b->dag);
  b->shadow = calloc(nb, sizeof *b->shadow);
  if (!b->dag || !b->shadow)
    return report("allocating the DAG", ENOMEM);
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

/* Unregistering also brings every buffer's latest value home. */
static void cleanup(bench_t *b, bool started) {
  if (started) {
    for (size_t i = 0; i < b->nbuf; i++)
      starpu_data_unregister(b->handles[i]);
    starpu_shutdown();
  }
  free(b->dag);
  free(b->shadow);
  free(b->handles);
  free(b->mem);
}

/* {=== Submission: starpu_task_create + starpu_task_submit ===} */

/* The task frees itself when it ends (destroy is 1 for
 * starpu_task_create), which mirrors strata_task_release right after
 * submitting. */
static int submit(bench_t *b, struct starpu_codelet *cl, const uint32_t *bufs,
                  int n) {
  struct starpu_task *t = starpu_task_create();
  if (!t)
    return report("starpu_task_create", ENOMEM);
  t->cl = cl;
  t->cl_arg = b;
  for (int i = 0; i < n; i++)
    t->handles[i] = b->handles[bufs[i]];
  int rc = starpu_task_submit(t);
  if (rc) {
    t->destroy = 0; /* never submitted: free it here */
    starpu_task_destroy(t);
    return report("starpu_task_submit", rc);
  }
  return 0;
}

static int submit_all(bench_t *b) {
  static const uint32_t first = 0;
  for (uint64_t i = 0; i < b->opt.tasks; i++) {
    int rc = b->opt.workload == W_OVERHEAD ? submit(b, &cl_empty, NULL, 0)
             : b->opt.workload == W_CHAIN ? submit(b, &cl_chain, &first, 1)
                                          : submit(b, &cl_dag,
                                                   &b->dag[3 * i], 3);
    if (rc)
      return rc;
  }
  return 0;
}

/* {=== Checking results ===} */

/* Read a buffer's value where the application may look at it. */
static int read_slot(bench_t *b, size_t i, uint64_t *v) {
  int rc = starpu_data_acquire(b->handles[i], STARPU_R);
  if (rc)
    return report("starpu_data_acquire", rc);
  *v = b->mem[i].v;
  starpu_data_release(b->handles[i]);
  return 0;
}

static int check_chain(bench_t *b, uint64_t rep) {
  uint64_t want = b->opt.tasks * (rep + 1), got;
  if (read_slot(b, 0, &got))
    return 1;
  if (got == want)
    return 0;
  fprintf(stderr, PROG ": chain: counter is %" PRIu64 ", expected %" PRIu64
                  "\n", got, want);
  return 1;
}

static int check_dag(bench_t *b) {
  for (uint64_t t = 0; t < b->opt.tasks; t++) {
    const uint32_t *e = &b->dag[3 * t];
    b->shadow[e[2]] = b->shadow[e[0]] + b->shadow[e[1]] + 1;
  }
  for (size_t i = 0; i < b->nbuf; i++) {
    uint64_t got;
    if (read_slot(b, i, &got))
      return 1;
    if (got != b->shadow[i]) {
      fprintf(stderr, PROG ": dag: buffer %zu holds %" PRIu64
                      ", a sequential run gives %" PRIu64 "\n",
              i, got, b->shadow[i]);
      return 1;
    }
  }
  return 0;
}

/* {=== Throughput workloads ===} */

/* The policy StarPU really runs (context 0 is the one starpu_init makes),
 * since STARPU_SCHED overrides the configuration. */
static const char *sched_name(void) {
  struct starpu_sched_policy *p = starpu_sched_ctx_get_sched_policy(0);
  return p && p->policy_name ? p->policy_name : "?";
}

/* Wall time from the first submit to the end of the wait, to the last
 * submit returning (close to the total: the submitting thread is the
 * bottleneck), and the CPU time the submitting thread used meanwhile
 * (less than its wall time: it was preempted or blocked). */
typedef struct timing {
  uint64_t total_ns, submit_ns, submit_cpu_ns;
} timing_t;

static void print_throughput(const bench_t *b, const timing_t *tm) {
  const options_t *o = &b->opt;
  printf("{\"runtime\":\"starpu\",\"sched\":\"%s\",\"workload\":\"%s\","
         "\"workers\":%u,\"tasks\":%" PRIu64, sched_name(),
         workload_names[o->workload], b->workers, o->tasks);
  if (o->workload == W_DAG)
    printf(",\"buffers\":%zu,\"seed\":%" PRIu64, b->nbuf, o->seed);
  double secs = (double)tm->total_ns * 1e-9, n = (double)o->tasks;
  printf(",\"task_us\":%" PRIu64 ",\"seconds\":%.6f,\"ns_per_task\":%.1f"
         ",\"submit_ns_per_task\":%.1f,\"submit_cpu_ns_per_task\":%.1f",
         o->task_us, secs, (double)tm->total_ns / n,
         (double)tm->submit_ns / n, (double)tm->submit_cpu_ns / n);
  if (o->task_us) {
    unsigned par = o->workload == W_CHAIN ? 1 : b->workers;
    double ideal = (double)o->tasks * (double)o->task_us * 1e-6 / par;
    printf(",\"ideal_seconds\":%.6f,\"efficiency\":%.4f", ideal,
           ideal / secs);
  }
  printf("}\n");
  fflush(stdout);
}

/* First submit to starpu_task_wait_for_all returning, as for Strata. */
static int run_throughput(bench_t *b, uint64_t rep) {
  uint64_t cpu0 = clock_ns(CLOCK_THREAD_CPUTIME_ID), t0 = now_ns();
  int rc = submit_all(b);
  uint64_t ts = now_ns(), cpu1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
  int wrc = starpu_task_wait_for_all();
  timing_t tm = {now_ns() - t0, ts - t0, cpu1 - cpu0};
  if (rc)
    return rc;
  if (wrc)
    return report("starpu_task_wait_for_all", wrc);
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

static int wake_sample(bench_t *b, uint64_t *lat_ns) {
  sleep_us(b->opt.sleep_us);
  struct starpu_task *t = starpu_task_create();
  if (!t)
    return report("starpu_task_create", ENOMEM);
  t->cl = &cl_stamp;
  t->handles[0] = b->handles[0];
  uint64_t t0 = now_ns();
  int rc = starpu_task_submit(t);
  if (rc) {
    t->destroy = 0;
    starpu_task_destroy(t);
    return report("starpu_task_submit", rc);
  }
  if ((rc = starpu_task_wait_for_all()))
    return report("starpu_task_wait_for_all", rc);
  uint64_t stamp;
  if (read_slot(b, 0, &stamp))
    return 1;
  *lat_ns = stamp - t0;
  return 0;
}

static int run_wake(bench_t *b) {
  uint64_t n = b->opt.tasks;
  uint64_t *lat = malloc(n * sizeof *lat);
  if (!lat)
    return report("allocating samples", ENOMEM);
  int rc = 0;
  for (uint64_t i = 0; i < n && rc == 0; i++)
    rc = wake_sample(b, &lat[i]);
  if (rc == 0) {
    qsort(lat, n, sizeof *lat, cmp_u64);
    uint64_t p99 = (n * 99 + 99) / 100 - 1;
    printf("{\"runtime\":\"starpu\",\"sched\":\"%s\",\"workload\":\"wake\","
           "\"workers\":%u,\"samples\":%" PRIu64 ",\"sleep_us\":%" PRIu64
           ",\"min_us\":%.2f,\"median_us\":%.2f,\"p99_us\":%.2f,"
           "\"max_us\":%.2f}\n",
           sched_name(), b->workers, n, b->opt.sleep_us, lat[0] * 1e-3,
           lat[n / 2] * 1e-3, lat[p99] * 1e-3, lat[n - 1] * 1e-3);
    fflush(stdout);
  }
  free(lat);
  return rc;
}

/* {=== main ===} */

static int run(bench_t *b) {
  const options_t *o = &b->opt;
  size_t nbuf = o->workload == W_DAG        ? (size_t)o->buffers
                : o->workload == W_OVERHEAD ? 0
                                            : 1;
  int rc = register_buffers(b, nbuf);
  if (rc == 0 && o->workload == W_DAG)
    rc = build_dag(b);
  b->spin_ns = o->task_us * 1000;
  for (uint64_t rep = 0; rep < o->repeat && rc == 0; rep++)
    rc = o->workload == W_WAKE ? run_wake(b) : run_throughput(b, rep);
  return rc;
}

int main(int argc, char **argv) {
  bench_t b = {.opt = parse_args(argc, argv)};
  int rc = start_starpu(&b);
  bool started = rc == 0;
  if (started)
    rc = run(&b);
  cleanup(&b, started);
  return rc ? 1 : 0;
}
