/* SPDX-License-Identifier: MIT */
/* bench/strata-membench.c: memory-manager benchmarks on the sim backend,
 * whose devices keep their memory in separate host memory and copy with
 * memcpy (and, for tiled and tiers, what policies make of a machine). Five
 * workloads, each printing one JSON line per measurement:
 *   transfer  host->device copies of N buffers, against plain memcpy;
 *   evict     a cyclic sweep over 3x a device's memory, reading (clean
 *             replicas are dropped) or writing (each eviction writes back);
 *   tiled     a tiled matrix multiply on a machine description in modelled
 *             time, with the data moved per link and the modelled makespan;
 *   tiers     a three-tier job (preprocessing, FP64 training, FP32
 *             validation) in modelled time, next to its lower bounds;
 *   overlap   independent tasks on one card in real time, each copying
 *             its input for as long as it then computes: the makespan
 *             against max(copies, compute) and against their sum, on a
 *             roomy card and on one that holds a few inputs.
 * Time is never judged; a wrong result or a failed call is an error
 * (exit 1), a bad command line exits 2. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <strata.h>

#ifndef STRATA_BUILD_BACKENDS
#define STRATA_BUILD_BACKENDS NULL /* the library's configured path */
#endif
#ifndef STRATA_SOURCE_MACHINES
#define STRATA_SOURCE_MACHINES "lua/machines"
#endif

#define PROG "strata-membench"
#include "strata-helpers.h"

#define KIB ((uint64_t)1024)
#define MIB (KIB * KIB)
#define ALIGN 64 /* host buffers start on a cache line */

#define TRANSFER_TOTAL (256 * MIB) /* default bytes per transfer round */
#define TRANSFER_MIN_COUNT 4
#define EVICT_BUFFERS 24 /* 3x the device's memory ... */
#define EVICT_FIT 8      /* ... which holds this many buffers */
#define HOST_NODE 0      /* host memory is always memory node 0 */

typedef enum { W_TRANSFER, W_EVICT, W_TILED, W_TIERS, W_OVERLAP } workload_t;

static const char *const workload_names[] = {"transfer", "evict", "tiled",
                                             "tiers", "overlap"};

typedef struct options {
  workload_t workload;
  const char *backend_path;
  uint64_t size;       /* 0: the workload's default */
  uint64_t count;      /* 0: the workload's default */
  uint64_t repeat;     /* 0: the workload's default */
  const char *machine; /* tiled; NULL: mixed.lua from the source tree */
  double oversub;      /* tiled; 0: no cap on device memory */
  int prefetch;
  const char *policy; /* tiled, tiers: a file, "none", NULL: tiered */
} options_t;

/* One runtime with its kernels and one slab of registered buffers. */
typedef struct bench {
  options_t opt;
  char tmpdir[4096]; /* machine files we write; "" until created */
  strata_runtime_t *rt;
  strata_kernel_t k_empty, k_check, k_incr, k_gemm;
  size_t tile_order; /* tiled: the gemm kernel's b */
  unsigned char *mem;
  size_t memsize;
  strata_buffer_t *bufs;
  size_t nbuf, nreg; /* buffers in the slab; of which registered */
  size_t bufsize;
} bench_t;

/* {=== Small helpers ===} */

static void usage(FILE *f) {
  fprintf(f,
          "usage: " PROG " transfer|evict|tiled|tiers|overlap [options]\n"
          "  --size BYTES       transfer: buffer size (default: each of 64K,\n"
          "                     1M, 16M); evict, overlap: buffer size\n"
          "                     (default 1M); tiled: tile size, b*b*8\n"
          "                     (default 2M, b=512).\n"
          "                     Suffixes K, M, G (powers of 1024)\n"
          "  --count N          transfer: buffers (default 256M/size, at\n"
          "                     least 4); evict: sweeps (default 20); tiled:\n"
          "                     tiles per side T (default 8); overlap: tasks\n"
          "                     (default 64)\n"
          "  --repeat R         transfer: timed rounds, best kept (default\n"
          "                     5); evict, tiled, overlap: measurements\n"
          "                     (default 1)\n"
          "  --machine FILE     tiled: machine description (default\n"
          "                     " STRATA_SOURCE_MACHINES "/mixed.lua)\n"
          "  --oversub X        tiled: cap device memory at working set / X\n"
          "                     (default 0: no cap)\n"
          "  --prefetch 0|1     prefetch inputs (default 1)\n"
          "  --policy FILE      tiled, tiers: the Lua policy (default: the\n"
          "                     library's, tiered.lua; 'none': least "
          "loaded)\n"
          "  --backend-path P   backend plugin directory\n"
          "Prints one JSON line per measurement on stdout.\n");
}

#if defined(__GNUC__)
#define PRINTF_LIKE(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define PRINTF_LIKE(fmt, args)
#endif

/* A bad command line: one line on stderr, exit status 2. */
_Noreturn static void usage_error(const char *fmt, ...) PRINTF_LIKE(1, 2);
_Noreturn static void usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, PROG ": ");
  vfprintf(stderr, fmt, ap);
  fputs(" (try --help)\n", stderr);
  va_end(ap);
  exit(2);
}

/* A wrong result (not a failed call): say what, and fail the run. */
static int wrong(const char *fmt, ...) PRINTF_LIKE(1, 2);
static int wrong(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, PROG ": ");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return 1;
}

/* n items of size bytes exceed what any run here could hold (and what
 * the sizes computed from them could count): say so. */
static bool too_big(uint64_t n, uint64_t size) {
  if (n <= (UINT64_C(1) << 40) / size)
    return false;
  fprintf(stderr, PROG ": %" PRIu64 " x %" PRIu64 " bytes is more than 1 TiB\n",
          n, size);
  return true;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double secs(uint64_t ns) { return (double)ns * 1e-9; }

static double gbps(uint64_t bytes, uint64_t ns) {
  return ns ? (double)bytes / (double)ns : 0.0; /* bytes/ns == GB/s */
}

/* A JSON string: device names are free text. */
static void print_json_string(const char *s) {
  putchar('"');
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      printf("\\%c", c);
    else if (c < 0x20)
      printf("\\u%04x", c);
    else
      putchar(c);
  }
  putchar('"');
}

/* {=== Command line ===} */

/* A whole number, with an optional K, M or G (powers of 1024). */
static uint64_t parse_bytes(const char *opt, const char *s, uint64_t min,
                            uint64_t max) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (!*s || *s == '-' || end == s || errno)
    usage_error("bad number for %s", opt);
  unsigned shift = 0;
  if (*end == 'k' || *end == 'K')
    shift = 10;
  else if (*end == 'm' || *end == 'M')
    shift = 20;
  else if (*end == 'g' || *end == 'G')
    shift = 30;
  if (shift)
    end++;
  if (*end || v > (max >> shift))
    usage_error("bad or too large value for %s", opt);
  v <<= shift;
  if (v < min)
    usage_error("value too small for %s", opt);
  return v;
}

static double parse_ratio(const char *opt, const char *s) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || *end || !(v >= 0) || v > 1e6)
    usage_error("bad value for %s (a number >= 0)", opt);
  return v;
}

static workload_t parse_workload(const char *s) {
  for (size_t w = 0; w < sizeof workload_names / sizeof *workload_names; w++)
    if (!strcmp(s, workload_names[w]))
      return (workload_t)w;
  usage_error("unknown workload '%s'", s);
}

/* The value of "--opt V" or "--opt=V". */
static const char *value_of(int argc, char **argv, int *i, const char *eq) {
  if (eq)
    return eq + 1;
  if (*i + 1 >= argc)
    usage_error("%s needs a value", argv[*i]);
  return argv[++*i];
}

static void parse_option(options_t *o, int argc, char **argv, int *i) {
  const char *arg = argv[*i], *eq = strchr(arg, '=');
  size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
#define IS(name) (len == strlen(name) && !strncmp(arg, name, len))
  if (IS("--backend-path"))
    o->backend_path = value_of(argc, argv, i, eq);
  else if (IS("--size"))
    o->size = parse_bytes("--size", value_of(argc, argv, i, eq), 1,
                          UINT64_C(1) << 40);
  else if (IS("--count"))
    o->count = parse_bytes("--count", value_of(argc, argv, i, eq), 1,
                           UINT64_C(1) << 24);
  else if (IS("--repeat"))
    o->repeat = parse_bytes("--repeat", value_of(argc, argv, i, eq), 1, 10000);
  else if (IS("--machine"))
    o->machine = value_of(argc, argv, i, eq);
  else if (IS("--oversub"))
    o->oversub = parse_ratio("--oversub", value_of(argc, argv, i, eq));
  else if (IS("--policy"))
    o->policy = value_of(argc, argv, i, eq);
  else if (IS("--prefetch"))
    o->prefetch =
        (int)parse_bytes("--prefetch", value_of(argc, argv, i, eq), 0, 1);
  else
    usage_error("unknown option '%s'", arg);
#undef IS
}

/* Exits 0 after --help and 2 on an error. */
static options_t parse_args(int argc, char **argv) {
  options_t o = {.backend_path = STRATA_BUILD_BACKENDS, .prefetch = 1};
  bool have_workload = false;
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
    } else {
      parse_option(&o, argc, argv, &i);
    }
  }
  if (!have_workload)
    usage_error("no workload given: transfer, evict, tiled, tiers or overlap");
  bool modelled = o.workload == W_TILED || o.workload == W_TIERS;
  if (!modelled && (o.machine || o.policy))
    usage_error("--machine and --policy apply to tiled and tiers only");
  if (o.workload != W_TILED && o.oversub > 0)
    usage_error("--oversub applies to tiled only");
  if (!modelled && o.size % ALIGN)
    usage_error("--size must be a multiple of 64 bytes");
  return o;
}

/* {=== Machine descriptions in a temporary directory ===} */

static const char *const machine_files[] = {"transfer.lua", "evict.lua",
                                            "overlap.lua"};

static int make_tmpdir(bench_t *b) {
  const char *base = getenv("TMPDIR");
  snprintf(b->tmpdir, sizeof b->tmpdir, "%s/" PROG "-XXXXXX",
           base && *base ? base : "/tmp");
  if (mkdtemp(b->tmpdir))
    return 0;
  fprintf(stderr, PROG ": mkdtemp %s: %s\n", b->tmpdir, strerror(errno));
  b->tmpdir[0] = '\0';
  return 1;
}

static void remove_tmpdir(bench_t *b) {
  if (!b->tmpdir[0])
    return;
  char path[sizeof b->tmpdir + 32];
  for (size_t i = 0; i < sizeof machine_files / sizeof *machine_files; i++) {
    snprintf(path, sizeof path, "%s/%s", b->tmpdir, machine_files[i]);
    if (unlink(path) && errno != ENOENT)
      fprintf(stderr, PROG ": unlink %s: %s\n", path, strerror(errno));
  }
  if (rmdir(b->tmpdir))
    fprintf(stderr, PROG ": rmdir %s: %s\n", b->tmpdir, strerror(errno));
  b->tmpdir[0] = '\0';
}

/* A machine of one simulated GDDR card with `memory` bytes and one
 * worker, so tasks run one at a time in submission order. transfer and
 * evict run in real time, where the sim makes a copy last at least its
 * modelled link time: this card's link has no latency and carries 1 TB/s,
 * faster than any memcpy here, so that what they measure is the memory
 * manager's cost over memcpy, not a link's. */
static int write_gddr_machine(bench_t *b, const char *file, uint64_t memory,
                              char *path, size_t len) {
  snprintf(path, len, "%s/%s", b->tmpdir, file);
  FILE *f = fopen(path, "w");
  if (!f) {
    fprintf(stderr, PROG ": %s: %s\n", path, strerror(errno));
    return 1;
  }
  fprintf(f,
          "-- written by " PROG ": one simulated GDDR card\n"
          "return {\n"
          "  name = \"membench\",\n"
          "  devices = {\n"
          "    { class = \"gddr\", name = \"membench gddr\",\n"
          "      memory = %" PRIu64 ", mem_bandwidth = 1000 * GB,\n"
          "      link_bandwidth = 1000 * GB, link_latency = 0,\n"
          "      fp64 = 1 * TFLOPS,\n"
          "      fp32 = 80 * TFLOPS, workers = 1 },\n"
          "  },\n"
          "}\n",
          memory);
  if (fclose(f)) {
    fprintf(stderr, PROG ": writing %s: %s\n", path, strerror(errno));
    return 1;
  }
  return 0;
}

/* {=== Kernels ===} */

/* Does nothing: the task exists for the copies around it. */
static int k_empty(const strata_kernel_call_t *c) {
  (void)c;
  return 0;
}

/* Reads a buffer tagged by tag_buffer: a copy that did not land (or
 * landed in the wrong place) fails the task. */
static int k_check(const strata_kernel_call_t *c) {
  const uint64_t *w = c->buffers[0];
  size_t last = c->sizes[0] / sizeof *w - 1;
  return w[0] != 0 && w[last] == ~w[0] ? 0 : 1;
}

/* Adds 1 to every word, so each buffer ends up counting its tasks. */
static int k_incr(const strata_kernel_call_t *c) {
  uint64_t *w = c->buffers[0];
  size_t n = c->sizes[0] / sizeof *w;
  for (size_t i = 0; i < n; i++)
    w[i]++;
  return 0;
}

/* C += A * B on b x b tiles of doubles. tiled runs with skip_kernels, so
 * this never runs there; it is what the flops attribute describes. */
static int k_gemm(const strata_kernel_call_t *c) {
  const bench_t *b = c->user_data;
  size_t n = b->tile_order;
  double *C = c->buffers[0];
  const double *A = c->buffers[1], *B = c->buffers[2];
  for (size_t i = 0; i < n; i++)
    for (size_t k = 0; k < n; k++)
      for (size_t j = 0; j < n; j++)
        C[i * n + j] += A[i * n + k] * B[k * n + j];
  return 0;
}

static int register_kernels(bench_t *b) {
  int rc;
  if ((rc = register_cpu_kernel(b->rt, "membench.empty", k_empty, b,
                                &b->k_empty)) ||
      (rc = register_cpu_kernel(b->rt, "membench.check", k_check, b,
                                &b->k_check)) ||
      (rc = register_cpu_kernel(b->rt, "membench.incr", k_incr, b,
                                &b->k_incr)) ||
      (rc = register_cpu_kernel(b->rt, "membench.gemm", k_gemm, b, &b->k_gemm)))
    return rc;
  return 0;
}

/* {=== Runtime and buffers ===} */

/* A runtime with only the sim backend on `machine`; `extra` adds sim
 * options (",time=modelled"). */
static int start_runtime(bench_t *b, const char *machine, const char *extra,
                         uint64_t device_bytes) {
  char sim_opts[4096 + 128];
  int len = snprintf(sim_opts, sizeof sim_opts, "sim:machine=%s%s", machine,
                     extra ? extra : "");
  if (len < 0 || (size_t)len >= sizeof sim_opts || strpbrk(machine, ",;")) {
    fprintf(stderr, PROG ": machine path '%s' is unusable here\n", machine);
    return 1;
  }
  strata_runtime_opts_t o;
  strata_runtime_opts_init(&o);
  o.log = log_stderr;
  o.log_level = STRATA_LOG_WARN;
  o.backend_path = b->opt.backend_path;
  o.backends = "sim";
  o.required_backends = "sim";
  o.backend_options = sim_opts;
  o.device_bytes = device_bytes;
  o.prefetch = b->opt.prefetch;
  o.policy =
      b->opt.policy && !strcmp(b->opt.policy, "none") ? "" : b->opt.policy;
  int rc = strata_runtime_create(&o, &b->rt);
  if (rc) {
    b->rt = NULL;
    return report("strata_runtime_create", rc);
  }
  return register_kernels(b);
}

/* n buffers of size bytes in one slab, touched now so that page faults
 * stay out of every timing. */
static int alloc_buffers(bench_t *b, size_t n, size_t size) {
  size_t bytes = (n * size + ALIGN - 1) / ALIGN * ALIGN;
  b->mem = aligned_alloc(ALIGN, bytes);
  b->bufs = calloc(n, sizeof *b->bufs);
  if (!b->mem || !b->bufs)
    return report("allocating buffers", STRATA_ENOMEM);
  memset(b->mem, 0, bytes);
  b->memsize = bytes;
  b->nbuf = n;
  b->bufsize = size;
  return 0;
}

static uint64_t *words(const bench_t *b, size_t i) {
  return (uint64_t *)(void *)(b->mem + i * b->bufsize);
}

/* The pattern k_check looks for: the first and last words of buffer i. */
static void tag_buffers(bench_t *b) {
  size_t last = b->bufsize / sizeof(uint64_t) - 1;
  for (size_t i = 0; i < b->nbuf; i++) {
    words(b, i)[0] = i + 1;
    words(b, i)[last] = ~(uint64_t)(i + 1);
  }
}

static int register_buffers(bench_t *b) {
  for (; b->nreg < b->nbuf; b->nreg++) {
    int rc = strata_buffer_register(b->rt, b->mem + b->nreg * b->bufsize,
                                    b->bufsize, &b->bufs[b->nreg]);
    if (rc)
      return report("strata_buffer_register", rc);
  }
  return 0;
}

/* Unregister (which brings the latest data home) and destroy. */
static int stop_runtime(bench_t *b) {
  int status = 0;
  for (size_t i = 0; i < b->nreg; i++) {
    int rc = strata_buffer_unregister(b->rt, b->bufs[i]);
    if (rc)
      status = report("strata_buffer_unregister", rc);
  }
  b->nreg = 0;
  if (b->rt) {
    int rc = strata_runtime_destroy(b->rt);
    if (rc)
      status = report("strata_runtime_destroy", rc);
    b->rt = NULL;
  }
  return status;
}

static void free_buffers(bench_t *b) {
  free(b->mem);
  free(b->bufs);
  b->mem = NULL;
  b->bufs = NULL;
  b->nbuf = b->memsize = 0;
}

/* {=== Tasks and counters ===} */

/* What a task carries besides its accesses. */
typedef struct task_extra {
  const char *flops; /* NULL: no "flops" and "precision" attributes */
  int priority;
  const char *precision; /* with flops; NULL: "fp64" */
  const char *tier;      /* NULL: none */
} task_extra_t;

/* create, access..., attributes, submit, release: one task, as an
 * application would submit it. */
static int submit(bench_t *b, strata_kernel_t k, const strata_buffer_t *bufs,
                  const strata_access_mode_t *modes, size_t n,
                  task_extra_t extra) {
  const char *flops = extra.flops;
  strata_task_t t;
  int rc = strata_task_create(b->rt, k, &t);
  if (rc)
    return report("strata_task_create", rc);
  for (size_t i = 0; i < n && rc == 0; i++)
    if ((rc = strata_task_access(b->rt, t, bufs[i], modes[i])))
      report("strata_task_access", rc);
  if (rc == 0 && extra.priority &&
      (rc = strata_task_set_priority(b->rt, t, extra.priority)))
    report("strata_task_set_priority", rc);
  if (rc == 0 && flops &&
      ((rc = strata_task_set_attr(b->rt, t, "flops", flops)) ||
       (rc = strata_task_set_attr(b->rt, t, "precision",
                                  extra.precision ? extra.precision : "fp64"))))
    report("strata_task_set_attr", rc);
  if (rc == 0 && extra.tier &&
      (rc = strata_task_set_attr(b->rt, t, "tier", extra.tier)))
    report("strata_task_set_attr", rc);
  if (rc == 0 && (rc = strata_task_submit(b->rt, t)))
    report("strata_task_submit", rc);
  int rrc = strata_task_release(b->rt, t);
  if (rrc && !rc)
    rc = report("strata_task_release", rrc);
  return rc;
}

/* One task per buffer, in buffer order, each accessing it with `mode`. */
static int submit_sweep(bench_t *b, strata_kernel_t k,
                        strata_access_mode_t mode, int priority) {
  task_extra_t extra = {.priority = priority};
  for (size_t i = 0; i < b->nbuf; i++) {
    int rc = submit(b, k, &b->bufs[i], &mode, 1, extra);
    if (rc)
      return rc;
  }
  return 0;
}

/* Kernels run and kernels failed, over all devices. */
static int task_counts(const bench_t *b, uint64_t *run, uint64_t *failed) {
  *run = *failed = 0;
  for (int i = 0; i < strata_device_count(b->rt); i++) {
    strata_device_stats_t st = {.struct_size = sizeof st};
    int rc = strata_device_stats(b->rt, i, &st);
    if (rc)
      return report("strata_device_stats", rc);
    *run += st.tasks_run;
    *failed += st.tasks_failed;
  }
  return 0;
}

/* Wait for everything submitted, then check that exactly `n` more kernels
 * ran since `before` (a task_counts reading) and none failed. */
static int finish_round(bench_t *b, const uint64_t before[2], uint64_t n) {
  int rc = strata_runtime_wait_all(b->rt);
  if (rc)
    return report("strata_runtime_wait_all", rc);
  uint64_t run, failed;
  if ((rc = task_counts(b, &run, &failed)))
    return rc;
  if (failed != before[1])
    return wrong("%" PRIu64 " task(s) failed", failed - before[1]);
  if (run - before[0] != n)
    return wrong("%" PRIu64 " task(s) ran, %" PRIu64 " submitted",
                 run - before[0], n);
  return 0;
}

/* Submit a sweep and wait for it, untimed. */
static int warm_up(bench_t *b, strata_kernel_t k) {
  uint64_t before[2];
  int rc = task_counts(b, &before[0], &before[1]);
  if (rc || (rc = submit_sweep(b, k, STRATA_R, 0)))
    return rc;
  return finish_round(b, before, b->nbuf);
}

static int link_bytes(const bench_t *b, int src, int dst, uint64_t *bytes) {
  strata_link_stats_t st = {.struct_size = sizeof st};
  int rc = strata_link_stats(b->rt, src, dst, &st);
  if (rc)
    return report("strata_link_stats", rc);
  *bytes = st.bytes;
  return 0;
}

/* The memory node of the first device with memory of its own. */
static int device_node(const bench_t *b, int *node) {
  for (int i = 0; i < strata_memory_node_count(b->rt); i++) {
    strata_memory_node_info_t info = {.struct_size = sizeof info};
    int rc = strata_memory_node_info(b->rt, i, &info);
    if (rc)
      return report("strata_memory_node_info", rc);
    if (info.kind == STRATA_NODE_DEVICE) {
      *node = i;
      return 0;
    }
  }
  fprintf(stderr, PROG ": the machine has no device with its own memory\n");
  return 1;
}

static int node_info(const bench_t *b, int node,
                     strata_memory_node_info_t *out) {
  *out = (strata_memory_node_info_t){.struct_size = sizeof *out};
  int rc = strata_memory_node_info(b->rt, node, out);
  return rc ? report("strata_memory_node_info", rc) : 0;
}

/* {=== memcpy baseline ===} */

/* Best time over `repeat` rounds of copying n buffers of size bytes from
 * src into dst, which is already touched. */
static uint64_t memcpy_best_ns(const unsigned char *src, unsigned char *dst,
                               size_t n, size_t size, uint64_t repeat) {
  uint64_t best = UINT64_MAX;
  for (uint64_t r = 0; r < repeat; r++) {
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < n; i++)
      memcpy(dst + i * size, src + i * size, size);
    uint64_t ns = now_ns() - t0;
    best = ns < best ? ns : best;
  }
  /* Read the result back so the copies have an observable effect. */
  volatile unsigned char sink = dst[n * size - 1];
  (void)sink;
  return best;
}

/* memcpy of b's buffers into a touched copy of the slab. */
static int memcpy_baseline(const bench_t *b, uint64_t repeat, uint64_t *ns) {
  unsigned char *dst = aligned_alloc(ALIGN, b->memsize);
  if (!dst)
    return report("allocating the memcpy destination", STRATA_ENOMEM);
  memset(dst, 1, b->memsize);
  *ns = memcpy_best_ns(b->mem, dst, b->nbuf, b->bufsize, repeat);
  free(dst);
  return 0;
}

/* {=== transfer ===} */

/* Make host memory the only valid copy again: acquiring for writing
 * invalidates the device replicas, whose memory stays cached. */
static int invalidate_device_copies(bench_t *b) {
  for (size_t i = 0; i < b->nbuf; i++) {
    void *p;
    int rc = strata_buffer_acquire(b->rt, b->bufs[i], STRATA_W, &p);
    if (rc)
      return report("strata_buffer_acquire", rc);
    if ((rc = strata_buffer_release(b->rt, b->bufs[i])))
      return report("strata_buffer_release", rc);
  }
  return 0;
}

/* One timed round: every buffer copied to the device by one reading task.
 * The link must carry exactly the buffers' bytes, once. */
static int transfer_round(bench_t *b, int dev_node, uint64_t *ns) {
  uint64_t before[2], h2d0, h2d1;
  int rc;
  if ((rc = invalidate_device_copies(b)) ||
      (rc = task_counts(b, &before[0], &before[1])) ||
      (rc = link_bytes(b, HOST_NODE, dev_node, &h2d0)))
    return rc;
  uint64_t t0 = now_ns();
  rc = submit_sweep(b, b->k_check, STRATA_R, 0);
  /* Wait even after a failed submit: tasks in flight use the buffers. */
  int wrc = finish_round(b, before, b->nbuf);
  *ns = now_ns() - t0;
  if (rc || wrc)
    return rc ? rc : wrc;
  if ((rc = link_bytes(b, HOST_NODE, dev_node, &h2d1)))
    return rc;
  uint64_t want = (uint64_t)b->nbuf * b->bufsize;
  if (h2d1 - h2d0 != want)
    return wrong("transfer: host->device bytes grew by %" PRIu64
                 " in a round, expected %" PRIu64,
                 h2d1 - h2d0, want);
  return 0;
}

static void print_transfer(const bench_t *b, uint64_t repeat, uint64_t ns,
                           uint64_t memcpy_ns) {
  uint64_t bytes = (uint64_t)b->nbuf * b->bufsize;
  double s = gbps(bytes, ns), m = gbps(bytes, memcpy_ns);
  printf("{\"bench\":\"transfer\",\"size\":%zu,\"count\":%zu,\"bytes\":%" PRIu64
         ",\"repeat\":%" PRIu64 ",\"prefetch\":%d,\"seconds\":%.6f"
         ",\"gbps\":%.3f,\"memcpy_seconds\":%.6f,\"memcpy_gbps\":%.3f"
         ",\"ratio\":%.4f}\n",
         b->bufsize, b->nbuf, bytes, repeat, b->opt.prefetch, secs(ns), s,
         secs(memcpy_ns), m, m > 0 ? s / m : 0.0);
  fflush(stdout);
}

/* The timed part of transfer, on a started runtime with buffers. */
static int transfer_measure(bench_t *b, uint64_t repeat, uint64_t *best) {
  int node, rc;
  if ((rc = device_node(b, &node)) || (rc = warm_up(b, b->k_check)))
    return rc;
  *best = UINT64_MAX;
  for (uint64_t r = 0; r < repeat; r++) {
    uint64_t ns;
    if ((rc = transfer_round(b, node, &ns)))
      return rc;
    *best = ns < *best ? ns : *best;
  }
  return 0;
}

static int transfer_size(bench_t *b, uint64_t size) {
  uint64_t n = b->opt.count ? b->opt.count : TRANSFER_TOTAL / size;
  if (!b->opt.count && n < TRANSFER_MIN_COUNT)
    n = TRANSFER_MIN_COUNT;
  uint64_t repeat = b->opt.repeat ? b->opt.repeat : 5;
  if (too_big(n, size))
    return 1;
  char machine[sizeof b->tmpdir + 32];
  /* Room for every buffer, and some: nothing is ever evicted. */
  int rc = write_gddr_machine(b, "transfer.lua", 2 * n * size + 64 * MIB,
                              machine, sizeof machine);
  if (rc)
    return rc;
  uint64_t ns = 0, memcpy_ns = 0;
  if (!(rc = start_runtime(b, machine, NULL, 0)) &&
      !(rc = alloc_buffers(b, n, size))) {
    tag_buffers(b);
    if (!(rc = register_buffers(b)))
      rc = transfer_measure(b, repeat, &ns);
  }
  int src = stop_runtime(b);
  if (!rc && !(rc = src) && !(rc = memcpy_baseline(b, repeat, &memcpy_ns)))
    print_transfer(b, repeat, ns, memcpy_ns);
  free_buffers(b);
  return rc;
}

static int run_transfer(bench_t *b) {
  static const uint64_t sizes[] = {64 * KIB, MIB, 16 * MIB};
  if (b->opt.size)
    return transfer_size(b, b->opt.size);
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    int rc = transfer_size(b, sizes[i]);
    if (rc)
      return rc;
  }
  return 0;
}

/* {=== evict ===} */

/* Counters of the device node and its host link around the timed part. */
typedef struct evict_snap {
  strata_memory_node_info_t node;
  uint64_t h2d, d2h;
} evict_snap_t;

static int evict_snapshot(const bench_t *b, int node, evict_snap_t *s) {
  int rc;
  if ((rc = node_info(b, node, &s->node)) ||
      (rc = link_bytes(b, HOST_NODE, node, &s->h2d)) ||
      (rc = link_bytes(b, node, HOST_NODE, &s->d2h)))
    return rc;
  return 0;
}

typedef struct evict_result {
  uint64_t tasks, ns;
  evict_snap_t before, after;
} evict_result_t;

/* `sweeps` dirty sweeps (each task increments its buffer), task k also
 * depending on task k - EVICT_FIT, so that at most EVICT_FIT are staged
 * or running and none finds its buffer still on the card, and each a
 * lower priority than the one before, so that a task's successors are
 * never handed to the worker ahead of the tasks before them (the runtime
 * may run a successor next on the worker that ended its predecessor when
 * it is not below what is queued). */
static int dirty_sweeps(bench_t *b, uint64_t sweeps) {
  strata_task_t ring[EVICT_FIT];
  bool live[EVICT_FIT] = {false}; /* ring[i] is a handle still to release */
  uint64_t n = sweeps * b->nbuf;
  int rc = 0;
  for (uint64_t k = 0; k < n && rc == 0; k++) {
    size_t i = k % EVICT_FIT;
    strata_task_t t;
    if ((rc = strata_task_create(b->rt, b->k_incr, &t))) {
      report("strata_task_create", rc);
      break;
    }
    if ((rc = strata_task_access(b->rt, t, b->bufs[k % b->nbuf], STRATA_RW)))
      report("strata_task_access", rc);
    else if ((rc = strata_task_set_priority(b->rt, t, -(int)k)))
      report("strata_task_set_priority", rc);
    else if (live[i] && (rc = strata_task_depend(b->rt, t, ring[i])))
      report("strata_task_depend", rc);
    else if ((rc = strata_task_submit(b->rt, t)))
      report("strata_task_submit", rc);
    int crc = live[i] ? strata_task_release(b->rt, ring[i]) : 0;
    if (crc && !rc)
      rc = report("strata_task_release", crc);
    ring[i] = t; /* released below, submitted or not */
    live[i] = true;
  }
  for (size_t i = 0; i < EVICT_FIT; i++) {
    int crc = live[i] ? strata_task_release(b->rt, ring[i]) : 0;
    if (crc && !rc)
      rc = report("strata_task_release", crc);
  }
  return rc;
}

/* The sweeps, timed: clean ones read (check), dirty ones increment. */
static int evict_measure(bench_t *b, bool dirty, uint64_t sweeps,
                         evict_result_t *res) {
  int node, rc;
  uint64_t before[2];
  /* A first, untimed sweep fills the device, so every timed task evicts;
   * it only reads, so the dirty buffers still count their sweeps. */
  if ((rc = device_node(b, &node)) ||
      (rc = warm_up(b, dirty ? b->k_empty : b->k_check)) ||
      (rc = task_counts(b, &before[0], &before[1])) ||
      (rc = evict_snapshot(b, node, &res->before)))
    return rc;
  res->tasks = sweeps * b->nbuf;
  uint64_t t0 = now_ns();
  /* Later sweeps get lower priorities. A clean sweep's tasks are all
   * ready at once and run in order. A dirty task's successor (same
   * buffer, next sweep) is ready when it ends, its buffer still on the
   * card: the engine would stage it at once, with no copy, ahead of the
   * tasks still waiting for room, and the sweeps would turn into buffer
   * after buffer, all hits. So a dirty task also waits for the one
   * EVICT_FIT before it (dirty_sweeps): when it is ready, its buffer was
   * last used EVICT_BUFFERS tasks ago and the card has since held the
   * ones after, and every task misses and evicts a modified replica. */
  if (dirty)
    rc = dirty_sweeps(b, sweeps);
  for (uint64_t s = 0; !dirty && s < sweeps && rc == 0; s++)
    rc = submit_sweep(b, b->k_check, STRATA_R, -(int)s);
  int wrc = finish_round(b, before, rc ? 0 : res->tasks);
  res->ns = now_ns() - t0;
  if (rc || wrc)
    return rc ? rc : wrc;
  return evict_snapshot(b, node, &res->after);
}

/* After unregistering, every word of every dirty buffer counts the
 * sweeps: no write-back was lost or applied twice. */
static int check_dirty(const bench_t *b, uint64_t sweeps) {
  size_t n = b->bufsize / sizeof(uint64_t);
  for (size_t i = 0; i < b->nbuf; i++)
    for (size_t j = 0; j < n; j++)
      if (words(b, i)[j] != sweeps)
        return wrong("evict: a word of a dirty buffer holds %" PRIu64
                     ", expected %" PRIu64,
                     words(b, i)[j], sweeps);
  return 0;
}

static void print_evict(const bench_t *b, bool dirty, uint64_t sweeps,
                        const evict_result_t *r, uint64_t memcpy_ns) {
  const strata_memory_node_info_t *x = &r->before.node, *y = &r->after.node;
  uint64_t ev = y->evictions - x->evictions;
  uint64_t wb = y->writebacks - x->writebacks;
  uint64_t wb_bytes = wb * b->bufsize;
  printf("{\"bench\":\"evict\",\"mode\":\"%s\",\"size\":%zu,\"buffers\":%zu"
         ",\"capacity\":%" PRIu64 ",\"sweeps\":%" PRIu64 ",\"prefetch\":%d"
         ",\"tasks\":%" PRIu64 ",\"evictions\":%" PRIu64
         ",\"writebacks\":%" PRIu64 ",\"misses\":%" PRIu64
         ",\"prefetches\":%" PRIu64 ",\"h2d_bytes\":%" PRIu64
         ",\"d2h_bytes\":%" PRIu64 ",\"seconds\":%.6f,\"ns_per_task\":%.1f",
         dirty ? "dirty" : "clean", b->bufsize, b->nbuf, x->capacity, sweeps,
         b->opt.prefetch, r->tasks, ev, wb, y->misses - x->misses,
         y->prefetches - x->prefetches, r->after.h2d - r->before.h2d,
         r->after.d2h - r->before.d2h, secs(r->ns),
         (double)r->ns / (double)r->tasks);
  if (ev)
    printf(",\"ns_per_eviction\":%.1f", (double)r->ns / (double)ev);
  else
    printf(",\"ns_per_eviction\":null");
  printf(",\"writeback_gbps\":%.3f,\"memcpy_gbps\":%.3f}\n",
         gbps(wb_bytes, r->ns),
         gbps((uint64_t)b->nbuf * b->bufsize, memcpy_ns));
  fflush(stdout);
}

/* One measurement in a fresh runtime, so the counters start at zero. */
static int evict_once(bench_t *b, bool dirty) {
  uint64_t size = b->opt.size ? b->opt.size : MIB;
  uint64_t sweeps = b->opt.count ? b->opt.count : 20;
  char machine[sizeof b->tmpdir + 32];
  int rc = write_gddr_machine(b, "evict.lua", EVICT_FIT * size, machine,
                              sizeof machine);
  if (rc)
    return rc;
  evict_result_t res = {0};
  uint64_t memcpy_ns = 0;
  if (!(rc = start_runtime(b, machine, NULL, 0)) &&
      !(rc = alloc_buffers(b, EVICT_BUFFERS, size))) {
    if (!dirty)
      tag_buffers(b);
    if (!(rc = register_buffers(b)))
      rc = evict_measure(b, dirty, sweeps, &res);
  }
  int src = stop_runtime(b);
  if (!rc && !(rc = src) && !(dirty && (rc = check_dirty(b, sweeps))) &&
      !(rc = memcpy_baseline(b, 5, &memcpy_ns)))
    print_evict(b, dirty, sweeps, &res, memcpy_ns);
  free_buffers(b);
  return rc;
}

static int run_evict(bench_t *b) {
  uint64_t repeat = b->opt.repeat ? b->opt.repeat : 1;
  for (int dirty = 0; dirty <= 1; dirty++)
    for (uint64_t r = 0; r < repeat; r++) {
      int rc = evict_once(b, dirty);
      if (rc)
        return rc;
    }
  return 0;
}

/* {=== tiled ===} */

typedef struct tiled_shape {
  size_t t;     /* tiles per side */
  size_t order; /* b: a tile is b x b doubles */
  uint64_t tile_bytes, working_set, device_bytes, flops_per_task;
} tiled_shape_t;

/* Tile (i, j) of matrix m (0: A, 1: B, 2: C). */
static strata_buffer_t tile(const bench_t *b, const tiled_shape_t *s, int m,
                            size_t i, size_t j) {
  return b->bufs[(size_t)m * s->t * s->t + i * s->t + j];
}

/* C[i][j] += A[i][k] * B[k][j] for all tiles, k outermost: each k step
 * updates every C tile once. */
static int tiled_submit(bench_t *b, const tiled_shape_t *s) {
  static const strata_access_mode_t modes[] = {STRATA_RW, STRATA_R, STRATA_R};
  char flops[32];
  snprintf(flops, sizeof flops, "%" PRIu64, s->flops_per_task);
  for (size_t k = 0; k < s->t; k++)
    for (size_t i = 0; i < s->t; i++)
      for (size_t j = 0; j < s->t; j++) {
        strata_buffer_t bufs[] = {tile(b, s, 2, i, j), tile(b, s, 0, i, k),
                                  tile(b, s, 1, k, j)};
        int rc = submit(b, b->k_gemm, bufs, modes, 3,
                        (task_extra_t){.flops = flops});
        if (rc)
          return rc;
      }
  return 0;
}

/* Modelled makespan (largest virtual clock) and the machine's summed
 * fp64 rate. Devices whose time is not modelled are left out. */
static int tiled_model(const bench_t *b, uint64_t *makespan_ns, double *fp64) {
  *makespan_ns = 0;
  *fp64 = 0;
  for (int i = 0; i < strata_device_count(b->rt); i++) {
    strata_device_info_t info = {.struct_size = sizeof info};
    strata_device_model_t m = {.struct_size = sizeof m};
    int rc = strata_device_info(b->rt, i, &info);
    if (rc)
      return report("strata_device_info", rc);
    *fp64 += info.fp64_flops;
    rc = strata_device_model(b->rt, i, &m);
    if (rc == STRATA_ENOTSUP)
      continue;
    if (rc)
      return report("strata_device_model", rc);
    if (m.clock_ns > *makespan_ns)
      *makespan_ns = m.clock_ns;
  }
  return 0;
}

/* "tasks_per_device":{"name":N,...} */
static int print_device_tasks(const bench_t *b) {
  printf(",\"tasks_per_device\":{");
  for (int i = 0; i < strata_device_count(b->rt); i++) {
    strata_device_info_t info = {.struct_size = sizeof info};
    strata_device_stats_t st = {.struct_size = sizeof st};
    int rc = strata_device_info(b->rt, i, &info);
    if (rc || (rc = strata_device_stats(b->rt, i, &st)))
      return report("reading device counters", rc);
    printf("%s", i ? "," : "");
    print_json_string(info.name);
    printf(":%" PRIu64, st.tasks_run);
  }
  printf("}");
  return 0;
}

/* "device_memory":{"name":{"evictions":N,...},...}: how hard each
 * device's memory worked (what --oversub changes). */
static int print_device_memory(const bench_t *b) {
  bool first = true;
  printf(",\"device_memory\":{");
  for (int i = 0; i < strata_memory_node_count(b->rt); i++) {
    strata_memory_node_info_t n;
    int rc = node_info(b, i, &n);
    if (rc)
      return rc;
    if (n.kind != STRATA_NODE_DEVICE)
      continue;
    printf("%s", first ? "" : ",");
    print_json_string(n.name);
    printf(":{\"capacity\":%" PRIu64 ",\"evictions\":%" PRIu64
           ",\"writebacks\":%" PRIu64 ",\"prefetches\":%" PRIu64 "}",
           n.capacity, n.evictions, n.writebacks, n.prefetches);
    first = false;
  }
  printf("}");
  return 0;
}

static int node_name(const bench_t *b, int node, char *name, size_t len) {
  strata_memory_node_info_t info;
  int rc = node_info(b, node, &info);
  if (rc == 0)
    snprintf(name, len, "%s", info.name);
  return rc;
}

/* "links":[{"from":..,"to":..,"bytes":N},...] for the links used, and
 * "bytes_moved", their sum. */
static int print_links(const bench_t *b) {
  int n = strata_memory_node_count(b->rt);
  uint64_t total = 0;
  bool first = true;
  printf(",\"links\":[");
  for (int src = 0; src < n; src++)
    for (int dst = 0; dst < n; dst++) {
      uint64_t bytes;
      char from[64], to[64];
      int rc = link_bytes(b, src, dst, &bytes);
      if (rc)
        return rc;
      if (!bytes)
        continue;
      if ((rc = node_name(b, src, from, sizeof from)) ||
          (rc = node_name(b, dst, to, sizeof to)))
        return rc;
      printf("%s{\"from\":", first ? "" : ",");
      print_json_string(from);
      printf(",\"to\":");
      print_json_string(to);
      printf(",\"bytes\":%" PRIu64 "}", bytes);
      total += bytes;
      first = false;
    }
  printf("],\"bytes_moved\":%" PRIu64, total);
  return 0;
}

/* The tiled line; read before unregistering, which copies C home. */
static int print_tiled(const bench_t *b, const tiled_shape_t *s,
                       const char *machine, uint64_t ns) {
  uint64_t makespan_ns = 0;
  double fp64;
  int rc = tiled_model(b, &makespan_ns, &fp64);
  if (rc)
    return rc;
  uint64_t tasks = (uint64_t)s->t * s->t * s->t;
  double flops = (double)tasks * (double)s->flops_per_task;
  printf("{\"bench\":\"tiled\",\"machine\":");
  print_json_string(machine);
  printf(",\"tiles\":%zu,\"tile_order\":%zu,\"tile_bytes\":%" PRIu64
         ",\"working_set\":%" PRIu64 ",\"oversub\":%g,\"device_bytes\":%" PRIu64
         ",\"prefetch\":%d,\"tasks\":%" PRIu64 ",\"seconds\":%.6f"
         ",\"makespan_s\":%.6g,\"compute_bound_s\":%.6g",
         s->t, s->order, s->tile_bytes, s->working_set, b->opt.oversub,
         s->device_bytes, b->opt.prefetch, tasks, secs(ns), secs(makespan_ns),
         fp64 > 0 ? flops / fp64 : 0.0);
  if ((rc = print_device_tasks(b)) || (rc = print_device_memory(b)) ||
      (rc = print_links(b)))
    return rc;
  printf("}\n");
  fflush(stdout);
  return 0;
}

/* Tile bytes must be b*b*8 for a whole b. */
static int tiled_shape(const options_t *o, tiled_shape_t *s) {
  s->tile_bytes = o->size ? o->size : 2 * MIB;
  s->t = o->count ? (size_t)o->count : 8;
  s->order = (size_t)llround(sqrt((double)s->tile_bytes / 8.0));
  if ((uint64_t)s->order * s->order * 8 != s->tile_bytes) {
    fprintf(stderr,
            PROG ": tiled: --size %" PRIu64 " is not b*b*8 for a whole b\n",
            s->tile_bytes);
    return 1;
  }
  if (too_big(3 * (uint64_t)s->t * s->t, s->tile_bytes))
    return 1;
  s->working_set = 3 * (uint64_t)s->t * s->t * s->tile_bytes;
  s->device_bytes =
      o->oversub > 0 ? (uint64_t)((double)s->working_set / o->oversub) : 0;
  s->flops_per_task = 2 * (uint64_t)s->order * s->order * s->order;
  return 0;
}

static int tiled_once(bench_t *b, const tiled_shape_t *s, const char *machine) {
  b->tile_order = s->order;
  int rc = start_runtime(b, machine, ",time=modelled,skip_kernels=1",
                         s->device_bytes);
  uint64_t before[2];
  if (!rc && !(rc = alloc_buffers(b, 3 * s->t * s->t, s->tile_bytes)) &&
      !(rc = register_buffers(b)) &&
      !(rc = task_counts(b, &before[0], &before[1]))) {
    uint64_t t0 = now_ns();
    rc = tiled_submit(b, s);
    uint64_t n = rc ? 0 : (uint64_t)s->t * s->t * s->t;
    int wrc = finish_round(b, before, n);
    uint64_t ns = now_ns() - t0;
    if (!rc && !(rc = wrc))
      rc = print_tiled(b, s, machine, ns);
  }
  int src = stop_runtime(b);
  free_buffers(b);
  return rc ? rc : src;
}

static int run_tiled(bench_t *b) {
  tiled_shape_t s;
  int rc = tiled_shape(&b->opt, &s);
  if (rc)
    return rc;
  const char *machine =
      b->opt.machine ? b->opt.machine : STRATA_SOURCE_MACHINES "/mixed.lua";
  uint64_t repeat = b->opt.repeat ? b->opt.repeat : 1;
  for (uint64_t r = 0; r < repeat && rc == 0; r++)
    rc = tiled_once(b, &s, machine);
  return rc;
}

/* {=== tiers: a three-tier job in modelled time ===} */

/* One round: preprocessing writes a batch (FP32; tiered.lua sends it to
 * the CPUs), training reads it and updates the model (FP64: HBM), and
 * every fourth round validation reads the model and the validation set
 * and writes a report (FP32: GDDR). Buffers: the model, the validation
 * set, and per round a batch and a report. */
#define TIERS_PRE_FLOPS 2e9
#define TIERS_TRAIN_FLOPS 4e11
#define TIERS_VALIDATE_FLOPS 2e11
#define TIERS_EVERY 4

typedef struct tiers_shape {
  size_t rounds, nbuf;
  uint64_t bytes;
} tiers_shape_t;

static int tiers_task(bench_t *b, const strata_buffer_t *bufs,
                      const strata_access_mode_t *modes, size_t n,
                      const char *tier, const char *precision, double flops) {
  char f[32];
  snprintf(f, sizeof f, "%.0f", flops);
  return submit(
      b, b->k_empty, bufs, modes, n,
      (task_extra_t){.flops = f, .precision = precision, .tier = tier});
}

static int tiers_submit(bench_t *b, const tiers_shape_t *s) {
  static const strata_access_mode_t w[] = {STRATA_W};
  static const strata_access_mode_t rw_r[] = {STRATA_RW, STRATA_R};
  static const strata_access_mode_t r_r_w[] = {STRATA_R, STRATA_R, STRATA_W};
  strata_buffer_t model = b->bufs[0], val = b->bufs[1];
  int rc = 0;
  for (size_t i = 0; i < s->rounds && !rc; i++) {
    strata_buffer_t batch = b->bufs[2 + i];
    strata_buffer_t train[] = {model, batch};
    if ((rc = tiers_task(b, &batch, w, 1, "preprocess", "fp32",
                         TIERS_PRE_FLOPS)) ||
        (rc =
             tiers_task(b, train, rw_r, 2, "train", "fp64", TIERS_TRAIN_FLOPS)))
      break;
    if ((i + 1) % TIERS_EVERY == 0) {
      strata_buffer_t v[] = {model, val, b->bufs[2 + s->rounds + i]};
      rc = tiers_task(b, v, r_r_w, 3, "validate", "fp32", TIERS_VALIDATE_FLOPS);
    }
  }
  return rc;
}

/* Lower bounds: the training chain (each step updates the model) at the
 * best FP64 rate one task gets; and, for each precision, its work over
 * every device's rate in that precision. */
static int tiers_bounds(const bench_t *b, const tiers_shape_t *s, double *path,
                        double *work) {
  double best64 = 0, sum64 = 0, sum32 = 0;
  for (int i = 0; i < strata_device_count(b->rt); i++) {
    strata_device_info_t d = {.struct_size = sizeof d};
    int rc = strata_device_info(b->rt, i, &d);
    if (rc)
      return report("strata_device_info", rc);
    double per_task = d.fp64_flops / (d.workers ? d.workers : 1);
    best64 = per_task > best64 ? per_task : best64;
    sum64 += d.fp64_flops;
    sum32 += d.fp32_flops;
  }
  double n = (double)s->rounds, nval = (double)(s->rounds / TIERS_EVERY);
  *path = best64 > 0 ? n * TIERS_TRAIN_FLOPS / best64 : 0;
  double w64 = sum64 > 0 ? n * TIERS_TRAIN_FLOPS / sum64 : 0;
  double w32 = sum32 > 0
                   ? (n * TIERS_PRE_FLOPS + nval * TIERS_VALIDATE_FLOPS) / sum32
                   : 0;
  *work = w64 > w32 ? w64 : w32;
  return 0;
}

static int print_tiers(const bench_t *b, const tiers_shape_t *s,
                       const char *machine, uint64_t tasks) {
  uint64_t makespan_ns = 0;
  double fp64 = 0, path = 0, work = 0;
  int rc;
  if ((rc = tiled_model(b, &makespan_ns, &fp64)) ||
      (rc = tiers_bounds(b, s, &path, &work)))
    return rc;
  strata_policy_stats_t ps = {.struct_size = sizeof ps};
  if ((rc = strata_policy_stats(b->rt, &ps)))
    return report("strata_policy_stats", rc);
  double bound = path > work ? path : work;
  printf("{\"bench\":\"tiers\",\"machine\":");
  print_json_string(machine);
  printf(",\"policy\":");
  print_json_string(ps.name[0] ? ps.name : "none");
  printf(",\"rounds\":%zu,\"buffer_bytes\":%" PRIu64 ",\"tasks\":%" PRIu64
         ",\"makespan_s\":%.6g,\"lower_bound_s\":%.6g"
         ",\"critical_path_s\":%.6g,\"work_bound_s\":%.6g"
         ",\"ratio\":%.3f,\"policy_fallbacks\":%" PRIu64,
         s->rounds, s->bytes, tasks, secs(makespan_ns), bound, path, work,
         bound > 0 ? secs(makespan_ns) / bound : 0.0, ps.fallbacks);
  if ((rc = print_device_tasks(b)))
    return rc;
  printf("}\n");
  fflush(stdout);
  return 0;
}

static int tiers_once(bench_t *b, const tiers_shape_t *s, const char *machine) {
  uint64_t before[2];
  int rc = start_runtime(b, machine, ",time=modelled,skip_kernels=1", 0);
  if (!rc && !(rc = alloc_buffers(b, s->nbuf, s->bytes)) &&
      !(rc = register_buffers(b)) &&
      !(rc = task_counts(b, &before[0], &before[1]))) {
    uint64_t tasks = 2 * s->rounds + s->rounds / TIERS_EVERY;
    rc = tiers_submit(b, s);
    int wrc = finish_round(b, before, rc ? 0 : tasks);
    if (!rc && !(rc = wrc))
      rc = print_tiers(b, s, machine, tasks);
  }
  int src = stop_runtime(b);
  free_buffers(b);
  return rc ? rc : src;
}

static int run_tiers(bench_t *b) {
  tiers_shape_t s = {.rounds = b->opt.count ? (size_t)b->opt.count : 32,
                     .bytes = b->opt.size ? b->opt.size : 4 * MIB};
  s.nbuf = 2 + 2 * s.rounds;
  if (too_big(s.nbuf, s.bytes))
    return 1;
  const char *machine =
      b->opt.machine ? b->opt.machine : STRATA_SOURCE_MACHINES "/mixed.lua";
  uint64_t repeat = b->opt.repeat ? b->opt.repeat : 1;
  int rc = 0;
  for (uint64_t r = 0; r < repeat && rc == 0; r++)
    rc = tiers_once(b, &s, machine);
  return rc;
}

/* {=== overlap: copies and compute of equal length, in real time ===} */

/* The card: mixed.lua's RTX 4090 (simulated) with its host link slowed
 * from 32 GB/s to 1 GB/s. The sim really copies the bytes (memcpy, about
 * 8 GB/s on the development machine), and that must be a small part of
 * each modelled copy, or the benchmark would time the host's memcpy. */
#define OVERLAP_LINK_BANDWIDTH 1e9 /* bytes/s */
#define OVERLAP_LINK_LATENCY 5e-6  /* s */
#define OVERLAP_FP32 82.6e12       /* flop/s, as in mixed.lua */
#define OVERLAP_TASKS 64
#define OVERLAP_FIT 4 /* capped: the card holds this many inputs */
/* The sim holds a copy back 10 ms at most (SIM_COPY_DELAY_MAX_NS). */
#define OVERLAP_COPY_MAX 0.01

typedef struct overlap_shape {
  uint64_t size, tasks;
  double t;     /* one task's copy time, and its compute time */
  double flops; /* what makes its compute time t */
  bool capped;  /* device_bytes holds OVERLAP_FIT inputs */
} overlap_shape_t;

/* One card, one worker (one compute slot: the tasks compute one after
 * another), in real time, with memory for every input: the cap, where
 * there is one, is device_bytes. Why the compute time is a flops
 * attribute and not a kernel that spins: the sim models it (a work
 * completes once its compute slot was busy that long), and a spinning
 * kernel would take a host core from the copy and staging threads.
 * @return 0; 1 (said on stderr) when the file cannot be written */
static int write_overlap_machine(bench_t *b, const overlap_shape_t *s,
                                 char *path, size_t len) {
  snprintf(path, len, "%s/overlap.lua", b->tmpdir);
  FILE *f = fopen(path, "w");
  if (!f) {
    fprintf(stderr, PROG ": %s: %s\n", path, strerror(errno));
    return 1;
  }
  fprintf(
      f,
      "-- written by " PROG ": mixed.lua's GDDR card, host link at "
      "%g GB/s\n"
      "return {\n"
      "  name = \"membench overlap\",\n"
      "  time = \"real\",\n"
      "  devices = {\n"
      "    { class = \"gddr\", name = \"RTX 4090 (simulated, slow link)\",\n"
      "      memory = %" PRIu64 ", mem_bandwidth = 1.008 * TB,\n"
      "      link_bandwidth = %.0f, link_latency = %g,\n"
      "      fp64 = 1.3 * TFLOPS, fp32 = %.0f, workers = 1 },\n"
      "  },\n"
      "}\n",
      OVERLAP_LINK_BANDWIDTH / 1e9, 2 * s->tasks * s->size + 64 * MIB,
      OVERLAP_LINK_BANDWIDTH, OVERLAP_LINK_LATENCY, OVERLAP_FP32);
  if (fclose(f)) {
    fprintf(stderr, PROG ": writing %s: %s\n", path, strerror(errno));
    return 1;
  }
  return 0;
}

/* What the timed round added to the card's counters and its host link. */
typedef struct overlap_counts {
  uint64_t h2d, evictions, prefetches;
} overlap_counts_t;

static int overlap_counts(const bench_t *b, int node, overlap_counts_t *c) {
  strata_memory_node_info_t n;
  int rc;
  if ((rc = node_info(b, node, &n)) ||
      (rc = link_bytes(b, HOST_NODE, node, &c->h2d)))
    return rc;
  c->evictions = n.evictions;
  c->prefetches = n.prefetches;
  return 0;
}

static void print_overlap(const bench_t *b, const overlap_shape_t *s,
                          uint64_t device_bytes, uint64_t ns,
                          const overlap_counts_t *c) {
  double n = (double)s->tasks, copy = n * s->t, compute = n * s->t;
  /* The pipeline fills with one copy before the first compute starts. */
  double bound = (copy > compute ? copy : compute) + s->t;
  double makespan = secs(ns);
  printf("{\"bench\":\"overlap\",\"mode\":\"%s\",\"size\":%" PRIu64
         ",\"tasks\":%" PRIu64 ",\"device_bytes\":%" PRIu64
         ",\"prefetch\":%d,\"task_copy_s\":%.6g,\"task_compute_s\":%.6g"
         ",\"copy_s\":%.6f,\"compute_s\":%.6f,\"bound_s\":%.6f"
         ",\"sum_s\":%.6f,\"makespan_s\":%.6f,\"ratio\":%.4f"
         ",\"sum_ratio\":%.4f,\"h2d_bytes\":%" PRIu64 ",\"evictions\":%" PRIu64
         ",\"prefetches\":%" PRIu64 "}\n",
         s->capped ? "capped" : "roomy", s->size, s->tasks, device_bytes,
         b->opt.prefetch, s->t, s->t, copy, compute, bound, copy + compute,
         makespan, makespan / bound, makespan / (copy + compute), c->h2d,
         c->evictions, c->prefetches);
  fflush(stdout);
}

/* Every input crossed the link (more than once is no error, only slower:
 * a prefetch evicted before its task ran; h2d_bytes shows it), and a
 * capped card made room by evicting. */
static int overlap_check(const overlap_shape_t *s, const overlap_counts_t *c) {
  if (c->h2d < s->tasks * s->size)
    return wrong("overlap: %" PRIu64 " bytes went to the card, expected at "
                 "least %" PRIu64,
                 c->h2d, s->tasks * s->size);
  if (s->capped && s->tasks > OVERLAP_FIT &&
      c->evictions < s->tasks - OVERLAP_FIT)
    return wrong("overlap: %" PRIu64 " evictions on a card that holds %d of "
                 "%" PRIu64 " inputs",
                 c->evictions, OVERLAP_FIT, s->tasks);
  return 0;
}

/* One task per buffer, each reading its own (k_check: a copy that did
 * not land fails it) and computing for s->t in the sim's model. */
static int overlap_submit(bench_t *b, const overlap_shape_t *s) {
  static const strata_access_mode_t mode = STRATA_R;
  char flops[32];
  snprintf(flops, sizeof flops, "%.0f", s->flops);
  task_extra_t extra = {.flops = flops, .precision = "fp32"};
  for (size_t i = 0; i < b->nbuf; i++) {
    int rc = submit(b, b->k_check, &b->bufs[i], &mode, 1, extra);
    if (rc)
      return rc;
  }
  return 0;
}

/* One measurement in a fresh runtime. An untimed round first (without
 * the flops: the copies only) leaves the card's blocks in the core's
 * cache, then every input is made valid at home only: the timed round
 * copies every input again, but into memory the host has touched, so
 * that page faults in the sim's memcpy stay out of the timing. */
static int overlap_once(bench_t *b, const overlap_shape_t *s,
                        const char *machine) {
  uint64_t device_bytes = s->capped ? OVERLAP_FIT * s->size : 0;
  uint64_t before[2], ns = 0;
  overlap_counts_t c0 = {0}, c = {0};
  int node = 0;
  int rc = start_runtime(b, machine, NULL, device_bytes);
  if (!rc && !(rc = alloc_buffers(b, s->tasks, s->size))) {
    tag_buffers(b);
    if (!(rc = register_buffers(b)) && !(rc = device_node(b, &node)) &&
        !(rc = warm_up(b, b->k_check)) && !(rc = invalidate_device_copies(b)) &&
        !(rc = task_counts(b, &before[0], &before[1])) &&
        !(rc = overlap_counts(b, node, &c0))) {
      uint64_t t0 = now_ns();
      rc = overlap_submit(b, s);
      /* Wait even after a failed submit: tasks in flight use the buffers. */
      int wrc = finish_round(b, before, rc ? 0 : s->tasks);
      ns = now_ns() - t0;
      if (!rc)
        rc = wrc;
      if (!rc && !(rc = overlap_counts(b, node, &c))) {
        c = (overlap_counts_t){c.h2d - c0.h2d, c.evictions - c0.evictions,
                               c.prefetches - c0.prefetches};
        rc = overlap_check(s, &c);
      }
    }
  }
  int src = stop_runtime(b);
  if (!rc && !(rc = src))
    print_overlap(b, s, device_bytes, ns, &c);
  free_buffers(b);
  return rc;
}

static int run_overlap(bench_t *b) {
  overlap_shape_t s = {.size = b->opt.size ? b->opt.size : MIB,
                       .tasks = b->opt.count ? b->opt.count : OVERLAP_TASKS};
  s.t = OVERLAP_LINK_LATENCY + (double)s.size / OVERLAP_LINK_BANDWIDTH;
  s.flops = s.t * OVERLAP_FP32;
  if (s.t > OVERLAP_COPY_MAX) {
    fprintf(stderr,
            PROG ": overlap: a %" PRIu64 "-byte copy takes %g s on the "
                 "card's %g GB/s link, more than the %g s the sim holds a "
                 "copy back: use a smaller --size\n",
            s.size, s.t, OVERLAP_LINK_BANDWIDTH / 1e9, OVERLAP_COPY_MAX);
    return 1;
  }
  if (too_big(2 * s.tasks, s.size))
    return 1;
  char machine[sizeof b->tmpdir + 32];
  int rc = write_overlap_machine(b, &s, machine, sizeof machine);
  uint64_t repeat = b->opt.repeat ? b->opt.repeat : 1;
  for (int capped = 0; capped <= 1 && !rc; capped++) {
    s.capped = capped;
    for (uint64_t r = 0; r < repeat && !rc; r++)
      rc = overlap_once(b, &s, machine);
  }
  return rc;
}

/* {=== main ===} */

int main(int argc, char **argv) {
  bench_t b = {.opt = parse_args(argc, argv)};
  int rc = 0;
  if (b.opt.workload == W_TRANSFER || b.opt.workload == W_EVICT ||
      b.opt.workload == W_OVERLAP)
    rc = make_tmpdir(&b);
  if (rc == 0)
    rc = b.opt.workload == W_TRANSFER ? run_transfer(&b)
         : b.opt.workload == W_EVICT  ? run_evict(&b)
         : b.opt.workload == W_TILED  ? run_tiled(&b)
         : b.opt.workload == W_TIERS  ? run_tiers(&b)
                                      : run_overlap(&b);
  remove_tmpdir(&b);
  return rc ? 1 : 0;
}
