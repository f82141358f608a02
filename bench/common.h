/* SPDX-License-Identifier: MIT */
/* bench/common.h: the runtime-independent half of the benchmarks, shared by
 * bench/strata-bench.c and bench/starpu/overhead.c.
 *
 * Both programs include this header, so that they parse the same command
 * line, draw the same DAG, spin and time tasks the same way and print the
 * same JSON lines; only the calls into each runtime differ. It holds:
 *   - the workloads, the common options, their grammar and defaults
 *     (parse_args; each program adds its own string options and --help);
 *   - the fixed-seed splitmix64 DAG and its sequential replay;
 *   - clocks: clock_ns, now_ns, thread_cpu_ns (the submitting thread's CPU
 *     time), sleep_us, and spin_for, the body of every busy-waiting kernel;
 *   - the JSON lines: print_throughput, and print_wake with the latency
 *     statistics.
 * Every function is static and the header needs only the C library (no
 * strata.h, no starpu.h). It must be included after the feature-test
 * macros (config.h, _POSIX_C_SOURCE) that give clock_gettime. Error
 * messages start with the program name each program passes in. */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__GNUC__)
#define BENCH_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define BENCH_MAYBE_UNUSED __attribute__((unused))
#else
#define BENCH_PRINTF(fmt, args)
#define BENCH_MAYBE_UNUSED
#endif

/* {=== Workloads and options ===} */

typedef enum { W_OVERHEAD, W_CHAIN, W_DAG, W_WAKE } workload_t;

static const char *const workload_names[] = {"overhead", "chain", "dag",
                                             "wake"};

typedef struct options {
  workload_t workload;
  uint64_t tasks;   /* 0 while parsing: the workload's default */
  unsigned workers; /* 0: the runtime's choice (one per core) */
  uint64_t task_us; /* busy-wait per task, 0: empty tasks */
  uint64_t buffers; /* dag only */
  uint64_t repeat;
  uint64_t seed;     /* dag only */
  uint64_t sleep_us; /* wake only: idle time before each sample */
  bool sleep_given;  /* --sleep-us was on the command line */
} options_t;

/* A string-valued option that only one program has ("--sched"). */
typedef struct own_option {
  const char *name;
  const char **value; /* set when the option is given */
} own_option_t;

/* What parse_args needs to know about the program. */
typedef struct program {
  const char *name;        /* prefixes every error message */
  void (*usage)(FILE *f);  /* prints the --help text */
  const own_option_t *own; /* its own options, nown of them */
  size_t nown;
} program_t;

/* {=== Command line ===} */

/* A bad command line: one line on stderr, exit status 2. */
_Noreturn static void usage_error(const char *prog, const char *fmt, ...)
    BENCH_PRINTF(2, 3);
_Noreturn static void usage_error(const char *prog, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: ", prog);
  vfprintf(stderr, fmt, ap);
  fputs(" (try --help)\n", stderr);
  va_end(ap);
  exit(2);
}

/* Counts accept plain integers and whole numbers written as 1e6 or 2.5e4. */
static uint64_t parse_count(const char *prog, const char *opt, const char *s,
                            uint64_t min, uint64_t max) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (*s && *s != '-' && (*end == '.' || *end == 'e' || *end == 'E')) {
    double d = strtod(s, &end);
    if (*end || d < 0 || d > 1e18 || d != (double)(unsigned long long)d)
      usage_error(prog, "%s: '%s' is not a whole number", opt, s);
    v = (unsigned long long)d;
  } else if (!*s || *s == '-' || *end || errno) {
    usage_error(prog, "%s: '%s' is not a whole number", opt, s);
  }
  if (v < min || v > max)
    usage_error(prog, "%s: %s is out of range [%" PRIu64 ", %" PRIu64 "]", opt,
                s, min, max);
  return v;
}

/* The value of an option given as "--opt V" or "--opt=V". */
static const char *option_value(const char *prog, int argc, char **argv, int *i,
                                const char *inline_value) {
  if (inline_value)
    return inline_value;
  if (*i + 1 >= argc)
    usage_error(prog, "%s needs a value", argv[*i]);
  return argv[++*i];
}

static workload_t parse_workload(const char *prog, const char *s) {
  for (size_t w = 0; w < sizeof workload_names / sizeof *workload_names; w++)
    if (!strcmp(s, workload_names[w]))
      return (workload_t)w;
  usage_error(prog, "unknown workload '%s'", s);
  return W_OVERHEAD; /* not reached */
}

static void parse_option(const program_t *p, options_t *o, int argc,
                         char **argv, int *i) {
  const char *prog = p->name;
  char name[32];
  const char *arg = argv[*i], *eq = strchr(arg, '=');
  size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
  if (len >= sizeof name)
    usage_error(prog, "unknown option '%s'", arg);
  memcpy(name, arg, len);
  name[len] = '\0';
  const char *inl = eq ? eq + 1 : NULL;
  if (!strcmp(name, "-n") || !strcmp(name, "--tasks"))
    o->tasks = parse_count(prog, name, option_value(prog, argc, argv, i, inl),
                           1, UINT64_C(1) << 32);
  else if (!strcmp(name, "--workers"))
    o->workers = (unsigned)parse_count(
        prog, name, option_value(prog, argc, argv, i, inl), 1, 4096);
  else if (!strcmp(name, "--task-us"))
    o->task_us = parse_count(prog, name, option_value(prog, argc, argv, i, inl),
                             0, 1000000);
  else if (!strcmp(name, "--buffers"))
    o->buffers = parse_count(prog, name, option_value(prog, argc, argv, i, inl),
                             3, UINT64_C(1) << 24);
  else if (!strcmp(name, "--repeat"))
    o->repeat = parse_count(prog, name, option_value(prog, argc, argv, i, inl),
                            1, 100000);
  else if (!strcmp(name, "--seed"))
    o->seed = parse_count(prog, name, option_value(prog, argc, argv, i, inl), 0,
                          UINT64_MAX);
  else if (!strcmp(name, "--sleep-us")) {
    o->sleep_us = parse_count(
        prog, name, option_value(prog, argc, argv, i, inl), 0, 1000000);
    o->sleep_given = true;
  } else {
    for (size_t k = 0; k < p->nown; k++)
      if (!strcmp(name, p->own[k].name)) {
        *p->own[k].value = option_value(prog, argc, argv, i, inl);
        return;
      }
    usage_error(prog, "unknown option '%s'", arg);
  }
}

static uint64_t default_tasks(const options_t *o) {
  if (o->workload == W_WAKE)
    return 200;
  if (o->task_us)
    return 20000;
  return o->workload == W_DAG ? 200000 : 1000000;
}

/* Parse the whole command line: exits 0 after --help and 2 on an error. */
static options_t parse_args(const program_t *p, int argc, char **argv) {
  options_t o = {.buffers = 256, .repeat = 1, .seed = 1, .sleep_us = 2000};
  bool have_workload = false, have_buffers = false;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      p->usage(stdout);
      exit(0);
    }
    if (argv[i][0] != '-') {
      if (have_workload)
        usage_error(p->name, "more than one workload ('%s')", argv[i]);
      o.workload = parse_workload(p->name, argv[i]);
      have_workload = true;
      continue;
    }
    have_buffers |= !strncmp(argv[i], "--buffers", 9);
    parse_option(p, &o, argc, argv, &i);
  }
  if (!have_workload)
    usage_error(p->name, "no workload given: overhead, chain, dag or wake");
  if (have_buffers && o.workload != W_DAG)
    usage_error(p->name, "--buffers applies to dag only");
  if (o.task_us && o.workload == W_WAKE)
    usage_error(p->name, "--task-us does not apply to wake");
  if (!o.tasks)
    o.tasks = default_tasks(&o);
  return o;
}

/* {=== Clocks ===} */

static uint64_t clock_ns(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

/* CPU time of the calling thread: the submitting thread's, when timing. */
static uint64_t thread_cpu_ns(void) {
  return clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

/* Busy-wait rather than sleep: a sleeping kernel would hand its core back
 * and hide the runtime's own cost from the efficiency figure. */
static void spin_for(uint64_t ns) {
  if (!ns)
    return;
  uint64_t until = now_ns() + ns;
  while (now_ns() < until)
    ;
}

static void sleep_us(uint64_t us) {
  struct timespec ts = {.tv_sec = (time_t)(us / 1000000),
                        .tv_nsec = (long)(us % 1000000) * 1000};
  while (nanosleep(&ts, &ts) && errno == EINTR)
    ;
}

/* {=== The DAG ===} */

/* splitmix64: tiny and seedable; both runtimes get the same DAG from it. */
static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

/* Fill dag with n tasks of 3 buffer indices below nbuf (read, read, write),
 * all three distinct; nbuf is at least 3. */
static void draw_dag(uint32_t *dag, uint64_t n, uint64_t nbuf, uint64_t seed) {
  uint64_t s = seed;
  for (uint64_t t = 0; t < n; t++) {
    uint32_t *e = &dag[3 * t];
    e[0] = (uint32_t)(rng_next(&s) % nbuf);
    do
      e[1] = (uint32_t)(rng_next(&s) % nbuf);
    while (e[1] == e[0]);
    do
      e[2] = (uint32_t)(rng_next(&s) % nbuf);
    while (e[2] == e[0] || e[2] == e[1]);
  }
}

/* Run the DAG's kernel (out = a + b + 1) sequentially on shadow, which
 * then holds what a correct run leaves in the buffers. */
static void replay_dag(const uint32_t *dag, uint64_t n, uint64_t *shadow) {
  for (uint64_t t = 0; t < n; t++) {
    const uint32_t *e = &dag[3 * t];
    shadow[e[2]] = shadow[e[0]] + shadow[e[1]] + 1;
  }
}

/* {=== Checks and JSON lines ===} */

/* chain's counter after repetition rep (from 0): when it is wrong, say so
 * and return 1. */
static int check_chain_count(const char *prog, const options_t *o, uint64_t rep,
                             uint64_t got) {
  uint64_t want = o->tasks * (rep + 1);
  if (got == want)
    return 0;
  fprintf(stderr, "%s: chain: counter is %" PRIu64 ", expected %" PRIu64 "\n",
          prog, got, want);
  return 1;
}

/* Buffer i after a dag run against the replay's value: when they differ,
 * say so and return 1. */
static int check_dag_buffer(const char *prog, size_t i, uint64_t got,
                            uint64_t want) {
  if (got == want)
    return 0;
  fprintf(stderr,
          "%s: dag: buffer %zu holds %" PRIu64
          ", a sequential run gives %" PRIu64 "\n",
          prog, i, got, want);
  return 1;
}

/* Wall time from the first submit to the end of the wait, to the last
 * submit returning (close to the total: the submitting thread is the
 * bottleneck), and the CPU time the submitting thread used meanwhile
 * (less than its wall time: it was preempted or blocked). */
typedef struct timing {
  uint64_t total_ns, submit_ns, submit_cpu_ns;
} timing_t;

/* The leading fields: "runtime", then "sched" unless sched is NULL. */
static void print_head(const char *runtime, const char *sched) {
  printf("{\"runtime\":\"%s\"", runtime);
  if (sched)
    printf(",\"sched\":\"%s\"", sched);
}

static void print_throughput(const char *runtime, const char *sched,
                             const options_t *o, unsigned workers, size_t nbuf,
                             const timing_t *tm) {
  print_head(runtime, sched);
  printf(",\"workload\":\"%s\",\"workers\":%u,\"tasks\":%" PRIu64,
         workload_names[o->workload], workers, o->tasks);
  if (o->workload == W_DAG)
    printf(",\"buffers\":%zu,\"seed\":%" PRIu64, nbuf, o->seed);
  double secs = (double)tm->total_ns * 1e-9, n = (double)o->tasks;
  printf(",\"task_us\":%" PRIu64 ",\"seconds\":%.6f,\"ns_per_task\":%.1f"
         ",\"submit_ns_per_task\":%.1f,\"submit_cpu_ns_per_task\":%.1f",
         o->task_us, secs, (double)tm->total_ns / n, (double)tm->submit_ns / n,
         (double)tm->submit_cpu_ns / n);
  if (o->task_us) {
    /* A chain cannot use more than one worker at a time. */
    unsigned par = o->workload == W_CHAIN ? 1 : workers;
    double ideal = (double)o->tasks * (double)o->task_us * 1e-6 / par;
    printf(",\"ideal_seconds\":%.6f,\"efficiency\":%.4f", ideal, ideal / secs);
  }
  printf("}\n");
  fflush(stdout);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

/* The latency fields of a wake line for n latencies (ns; n >= 1), which
 * it sorts in place. */
static void print_latencies(uint64_t *lat, uint64_t n) {
  qsort(lat, n, sizeof *lat, cmp_u64);
  uint64_t p99 = (n * 99 + 99) / 100 - 1; /* ceil(0.99 n) - 1 */
  printf(",\"min_us\":%.2f,\"median_us\":%.2f,\"p99_us\":%.2f,\"max_us\":%.2f",
         lat[0] * 1e-3, lat[n / 2] * 1e-3, lat[p99] * 1e-3, lat[n - 1] * 1e-3);
}

/* The wake line for n latencies (ns; n >= 1), which it sorts in place.
 * (strata-bench prints more fields, with print_latencies.) */
BENCH_MAYBE_UNUSED static void print_wake(const char *runtime,
                                          const char *sched, const options_t *o,
                                          unsigned workers, uint64_t *lat,
                                          uint64_t n) {
  print_head(runtime, sched);
  printf(",\"workload\":\"wake\",\"workers\":%u,\"samples\":%" PRIu64
         ",\"sleep_us\":%" PRIu64,
         workers, n, o->sleep_us);
  print_latencies(lat, n);
  printf("}\n");
  fflush(stdout);
}

#endif /* BENCH_COMMON_H */
