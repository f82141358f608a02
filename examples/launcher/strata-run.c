/* SPDX-License-Identifier: MIT */
/* strata-run.c: the Strata launcher: lists the devices Strata finds and
 * runs a tiled Cholesky factorisation on them as a demo job. On a machine
 * without a GPU it adds the two simulated cards of the "mixed" machine
 * description (sim backend), and says so; --machine runs on a simulated
 * machine of the user's choice instead. */
#include "config.h"

#include <cblas.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <strata.h>

#include "cholesky.h"
#include "sandbox.h"

#define PROG "strata-run"
#define EXIT_USAGE 2
#define MAX_WORKERS 4096 /* the CPU backend refuses more */
#define RESIDUAL_LIMIT 1e-10
#define REPORT_NAME_WIDTH 28 /* device names are cut to this in the report */
/* The most an input file may hold: the library's own limit for machine
 * descriptions and policies, and a generous one for hwloc XML. */
#define SCRIPT_MAX ((size_t)1 << 20)
#define TOPOLOGY_MAX ((size_t)1 << 30)

typedef struct options {
  unsigned workers;         /* 0: one per core */
  const char *backends;     /* NULL: every backend found */
  const char *backend_path; /* NULL: the library's default */
  const char *topology;     /* NULL: this machine */
  const char *machine;      /* --machine: FILE, "none", or NULL (default) */
  const char *policy;       /* --policy: FILE, "none", or NULL (tiered) */
  const char *time;         /* --time: "real", "modelled" or NULL */
  int tiles, tile_size;
  strata_log_level_t log_level;
  bool list_devices;
  const char *trace; /* --trace FILE.json */
  const char *gantt; /* --gantt FILE.svg */
} options_t;

/* How argument parsing ended. */
typedef enum { ARGS_RUN, ARGS_DONE, ARGS_BAD } args_result_t;

/* Levels in strata_log_level_t order. */
static const char *const level_names[] = {"error", "warn", "info", "debug",
                                          "trace"};

/* {=== Arguments ===} */

static void usage(FILE *f) {
  fprintf(f,
          "Usage: " PROG " [OPTION]...\n"
          "Run a tiled Cholesky factorisation as a demo job on the devices "
          "Strata finds,\ncheck its result and report how each device was "
          "used.\n\n"
          "  -h, --help               show this help and exit\n"
          "  -V, --version            show the version and exit\n"
          "      --list-devices       list the devices and exit\n"
          "  -w, --workers N          CPU worker threads (default: one per "
          "core)\n"
          "      --backends LIST      comma-separated backends to load; each "
          "must start\n"
          "                           (default: every backend found)\n"
          "      --backend-path DIRS  colon-separated backend directories\n"
          "                           (default: $STRATA_BACKEND_PATH, else "
          "the installed ones)\n"
          "      --topology FILE      take the machine from an hwloc XML "
          "file\n"
          "      --machine FILE       run on the simulated machine FILE "
          "describes (sim\n"
          "                           backend) instead of this one; 'none' "
          "turns off the\n"
          "                           simulated GPUs added when no GPU is "
          "present\n"
          "                           (default: $STRATA_MACHINE, else "
          "mixed.lua)\n"
          "      --time real|modelled simulated devices: run as fast as "
          "they can, or keep\n"
          "                           a virtual clock (the report gives "
          "the modelled\n"
          "                           makespan); default: the machine "
          "description's\n"
          "      --policy FILE        the Lua policy that places tasks "
          "(default: tiered.lua,\n"
          "                           built in; 'none': least loaded); "
          "SIGHUP reloads it\n"
          "      --tiles T            tiles per matrix side (default 12, "
          "1..%d)\n"
          "      --tile-size B        order of a tile (default 192, 1..%d);\n"
          "                           the matrix order T*B is at most %d\n"
          "      --log-level LEVEL    error, warn, info or debug (default "
          "warn)\n"
          "      --trace FILE.json    write the run as a Chrome trace (opens "
          "in Perfetto)\n"
          "      --gantt FILE.svg     draw the run as an SVG timeline\n\n"
          "Exit status: 0 success, 1 runtime failure or wrong result, "
          "2 bad usage.\n",
          CHOL_MAX_TILES, CHOL_MAX_TILE_SIZE, CHOL_MAX_ORDER);
}

static bool parse_number(const char *opt, const char *arg, long min, long max,
                         long *out) {
  char *end;
  errno = 0;
  long v = strtol(arg, &end, 10);
  if (errno || end == arg || *end || v < min || v > max) {
    fprintf(stderr,
            PROG ": %s: expected a whole number from %ld to %ld, got '%s'\n",
            opt, min, max, arg);
    return false;
  }
  *out = v;
  return true;
}

/* Only the levels a release build emits are offered; TRACE compiles out. */
static bool parse_level(const char *arg, strata_log_level_t *out) {
  for (int l = STRATA_LOG_ERROR; l <= STRATA_LOG_DEBUG; l++)
    if (!strcmp(arg, level_names[l])) {
      *out = (strata_log_level_t)l;
      return true;
    }
  fprintf(stderr,
          PROG ": --log-level: expected error, warn, info or debug, got "
               "'%s'\n",
          arg);
  return false;
}

enum {
  OPT_LIST = 256,
  OPT_BACKENDS,
  OPT_BACKEND_PATH,
  OPT_TOPOLOGY,
  OPT_MACHINE,
  OPT_POLICY,
  OPT_TIME,
  OPT_TILES,
  OPT_TILE_SIZE,
  OPT_LOG_LEVEL,
  OPT_TRACE,
  OPT_GANTT
};

static const struct option long_options[] = {
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {"list-devices", no_argument, NULL, OPT_LIST},
    {"workers", required_argument, NULL, 'w'},
    {"backends", required_argument, NULL, OPT_BACKENDS},
    {"backend-path", required_argument, NULL, OPT_BACKEND_PATH},
    {"topology", required_argument, NULL, OPT_TOPOLOGY},
    {"machine", required_argument, NULL, OPT_MACHINE},
    {"policy", required_argument, NULL, OPT_POLICY},
    {"time", required_argument, NULL, OPT_TIME},
    {"tiles", required_argument, NULL, OPT_TILES},
    {"tile-size", required_argument, NULL, OPT_TILE_SIZE},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"trace", required_argument, NULL, OPT_TRACE},
    {"gantt", required_argument, NULL, OPT_GANTT},
    {NULL, 0, NULL, 0}};

/* Whether "--name=value" names a known option (that takes no value). */
static bool known_long(const char *arg) {
  size_t len = strcspn(arg + 2, "=");
  for (const struct option *o = long_options; o->name; o++)
    if (strlen(o->name) == len && !strncmp(o->name, arg + 2, len))
      return true;
  return false;
}

/* getopt's own messages are turned off (opterr) so that every usage error
 * is one line in the same form. argv[optind - 1] is the element getopt
 * stopped at; for a bad letter inside "-hx" optopt names it better. */
static void bad_option(int c, char **argv) {
  const char *arg = argv[optind - 1];
  bool is_long = !strncmp(arg, "--", 2);
  if (c == ':')
    fprintf(stderr, PROG ": option '%s' needs a value (try --help)\n", arg);
  else if (is_long && strchr(arg, '=') && known_long(arg))
    fprintf(stderr, PROG ": option '%.*s' takes no value (try --help)\n",
            (int)strcspn(arg, "="), arg);
  else if (is_long || !optopt)
    fprintf(stderr, PROG ": unknown option '%s' (try --help)\n", arg);
  else
    fprintf(stderr, PROG ": unknown option '-%c' (try --help)\n", optopt);
}

/* Apply one parsed option. */
static bool apply_option(int c, const char *arg, options_t *o) {
  long v;
  switch (c) {
  case 'w':
    if (!parse_number("--workers", arg, 1, MAX_WORKERS, &v))
      return false;
    o->workers = (unsigned)v;
    return true;
  case OPT_TILES:
    if (!parse_number("--tiles", arg, 1, CHOL_MAX_TILES, &v))
      return false;
    o->tiles = (int)v;
    return true;
  case OPT_TILE_SIZE:
    if (!parse_number("--tile-size", arg, 1, CHOL_MAX_TILE_SIZE, &v))
      return false;
    o->tile_size = (int)v;
    return true;
  case OPT_LOG_LEVEL:
    return parse_level(arg, &o->log_level);
  case OPT_BACKENDS:
    o->backends = arg;
    return true;
  case OPT_BACKEND_PATH:
    o->backend_path = arg;
    return true;
  case OPT_TOPOLOGY:
    o->topology = arg;
    return true;
  case OPT_POLICY:
    if (!*arg) {
      fprintf(stderr, PROG ": --policy: expected a file or 'none'\n");
      return false;
    }
    o->policy = arg;
    return true;
  case OPT_TIME:
    if (strcmp(arg, "real") && strcmp(arg, "modelled")) {
      fprintf(stderr, PROG ": --time: expected real or modelled, got '%s'\n",
              arg);
      return false;
    }
    o->time = arg;
    return true;
  case OPT_MACHINE:
    if (!*arg) {
      fprintf(stderr, PROG ": --machine: expected a file or 'none'\n");
      return false;
    }
    /* The path travels in backend_options, where ',' and ';' separate
     * settings (and there are no escapes). */
    if (strpbrk(arg, ",;")) {
      fprintf(stderr,
              PROG ": --machine: '%s': a path holding ',' or ';' cannot be "
                   "passed to the sim backend (link it under another "
                   "name)\n",
              arg);
      return false;
    }
    o->machine = arg;
    return true;
  case OPT_LIST:
    o->list_devices = true;
    return true;
  case OPT_TRACE:
  case OPT_GANTT:
    if (!*arg) {
      fprintf(stderr, PROG ": --%s: expected a file\n",
              c == OPT_TRACE ? "trace" : "gantt");
      return false;
    }
    *(c == OPT_TRACE ? &o->trace : &o->gantt) = arg;
    return true;
  default: /* getopt_long returns only the values listed above */
    return false;
  }
}

/* Checks that need every option: the matrix must fit the order bound, and
 * the backend path falls back to the environment. */
static bool finish_options(options_t *o) {
  if (o->tiles * o->tile_size > CHOL_MAX_ORDER) {
    fprintf(stderr,
            PROG ": --tiles %d with --tile-size %d makes a matrix of order "
                 "%d; the limit is %d\n",
            o->tiles, o->tile_size, o->tiles * o->tile_size, CHOL_MAX_ORDER);
    return false;
  }
  if (!o->backend_path) {
    const char *env = getenv("STRATA_BACKEND_PATH");
    if (env && *env)
      o->backend_path = env;
  }
  return true;
}

static args_result_t parse_args(int argc, char **argv, options_t *o) {
  *o = (options_t){.tiles = 12, .tile_size = 192, .log_level = STRATA_LOG_WARN};
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":hVw:", long_options, NULL)) != -1) {
    if (c == 'h') {
      usage(stdout);
      return ARGS_DONE;
    }
    if (c == 'V') {
      printf(PROG " %s (libstrata %s)\n", PACKAGE_VERSION,
             strata_version_string());
      return ARGS_DONE;
    }
    if (c == '?' || c == ':') {
      bad_option(c, argv);
      return ARGS_BAD;
    }
    if (!apply_option(c, optarg, o))
      return ARGS_BAD;
  }
  if (optind < argc) {
    fprintf(stderr, PROG ": unexpected argument '%s' (try --help)\n",
            argv[optind]);
    return ARGS_BAD;
  }
  return finish_options(o) ? ARGS_RUN : ARGS_BAD;
}

/* {=== Input files ===} */

/* Whether `path` is a regular file of at most max bytes; if not,
 * "PATH: reason" in err. The library refuses such files too, but as the
 * status of a failed creation: checked up front (without reading or
 * blocking), the launcher can say which file and why, and stop. */
static bool input_ok(const char *path, size_t max, char *err, size_t errlen) {
  return strata__check_text_file(path, max, err, errlen) == STRATA_OK;
}

/* input_ok, or "strata-run: cannot WHAT: PATH: reason" on stderr. */
static bool check_input(const char *what, const char *path, size_t max) {
  char err[PATH_MAX + 128];
  if (input_ok(path, max, err, sizeof err))
    return true;
  fprintf(stderr, PROG ": cannot %s: %s\n", what, err);
  return false;
}

/* Every file named on the command line, before a runtime is created. */
static bool check_inputs(const options_t *o) {
  if (o->topology && !check_input("load topology", o->topology, TOPOLOGY_MAX))
    return false;
  if (o->machine && strcmp(o->machine, "none") &&
      !check_input("simulate the machine", o->machine, SCRIPT_MAX))
    return false;
  if (o->policy && strcmp(o->policy, "none") &&
      !check_input("load the policy", o->policy, SCRIPT_MAX))
    return false;
  return true;
}

/* {=== Runtime ===} */

/* The library never prints: this is where its messages become visible.
 * One fprintf per message keeps lines from different threads whole. */
static void log_stderr(void *ud, strata_log_level_t level,
                       const char *component, const char *msg) {
  (void)ud;
  const char *name = (unsigned)level < sizeof level_names / sizeof *level_names
                         ? level_names[level]
                         : "?";
  fprintf(stderr, "strata: [%s] %s: %s\n", name, component, msg);
}

/* The machine a run uses: this one, this one plus simulated GPUs (when it
 * has none), or a simulated machine (--machine). */
typedef enum {
  MACHINE_HOST,
  MACHINE_HOST_SIM_GPUS,
  MACHINE_SIM
} machine_kind_t;

typedef struct machine_choice {
  machine_kind_t kind;
  const char *path; /* the description, for the two simulated kinds */
} machine_choice_t;

static int start_runtime(const options_t *o, const machine_choice_t *m,
                         strata_runtime_t **rt) {
  strata_runtime_opts_t opts;
  strata_runtime_opts_init(&opts);
  opts.log = log_stderr;
  opts.log_level = o->log_level;
  opts.cpu_workers = o->workers;
  opts.backend_path = o->backend_path;
  opts.backends = o->backends;
  /* Backends named on the command line are wanted: running without one of
   * them would answer a question nobody asked. */
  opts.required_backends = o->backends;
  opts.topology_xml = o->topology;
  opts.policy = o->policy && !strcmp(o->policy, "none") ? "" : o->policy;
  char sim[4200];
  if (m->kind != MACHINE_HOST) {
    snprintf(sim, sizeof sim, "sim:machine=%s%s%s%s", m->path,
             m->kind == MACHINE_HOST_SIM_GPUS ? ",classes=hbm+gddr" : "",
             o->time ? ",time=" : "", o->time ? o->time : "");
    opts.backend_options = sim;
    if (m->kind == MACHINE_SIM && !o->backends)
      opts.backends = "sim";
    if (!o->backends)
      opts.required_backends = "sim";
  }
  int rc = strata_runtime_create(&opts, rt);
  if (rc == STRATA_ETOPOLOGY && o->topology)
    fprintf(stderr, PROG ": cannot load topology '%s': %s\n", o->topology,
            strata_strerror(rc));
  else if (rc == STRATA_EPOLICY)
    fprintf(stderr,
            PROG ": cannot load the policy '%s' (see the message "
                 "above)\n",
            o->policy ? o->policy : "tiered.lua");
  else if (rc == STRATA_EBACKEND && m->kind != MACHINE_HOST)
    fprintf(stderr,
            PROG ": cannot simulate the machine '%s': %s (see the "
                 "message above)\n",
            m->path, strata_strerror(rc));
  else if (rc == STRATA_ENODEV || rc == STRATA_EBACKEND)
    fprintf(stderr, PROG ": cannot start the runtime: %s (backend path: %s)\n",
            strata_strerror(rc),
            o->backend_path ? o->backend_path : "the built-in default");
  else if (rc)
    fprintf(stderr, PROG ": cannot start the runtime: %s\n",
            strata_strerror(rc));
  return rc;
}

static bool has_gpu(strata_runtime_t *rt) {
  for (int i = 0; i < strata_device_count(rt); i++) {
    strata_device_info_t di = {.struct_size = sizeof di};
    if (strata_device_info(rt, i, &di) == STRATA_OK &&
        di.device_class != STRATA_CLASS_CPU)
      return true;
  }
  return false;
}

/* Without blocking: an installed mixed.lua could be anything. */
static bool readable(const char *path) {
  char err[8];
  return input_ok(path, SCRIPT_MAX, err, sizeof err);
}

/* The description simulated when no GPU is present: $STRATA_MACHINE, else
 * the installed mixed.lua, else the source tree's (an uninstalled build).
 * NULL when there is none. */
static const char *default_machine(void) {
  static char path[PATH_MAX];
  const char *env = getenv("STRATA_MACHINE");
  const char *p = env && *env ? env
                  : readable(STRATA_MACHINES_DIR "/mixed.lua")
                      ? STRATA_MACHINES_DIR "/mixed.lua"
                  : readable(STRATA_SOURCE_MACHINES_DIR "/mixed.lua")
                      ? STRATA_SOURCE_MACHINES_DIR "/mixed.lua"
                      : NULL;
  /* "build/../lua/machines/mixed.lua" reads better resolved. */
  return p && realpath(p, path) ? path : p;
}

/* Start the runtime on the machine the options ask for. Without --machine
 * and --backends, a machine with no GPU gets the simulated ones: the first
 * runtime tells whether a GPU backend found a device. */
static int start(const options_t *o, machine_choice_t *m,
                 strata_runtime_t **rt) {
  *m = (machine_choice_t){MACHINE_HOST, NULL};
  if (o->machine && strcmp(o->machine, "none")) {
    *m = (machine_choice_t){MACHINE_SIM, o->machine};
    return start_runtime(o, m, rt);
  }
  int rc = start_runtime(o, m, rt);
  if (rc || o->machine || o->backends || has_gpu(*rt))
    return rc;
  const char *path = default_machine();
  if (!path) {
    fprintf(stderr,
            PROG ": no GPU found and no machine description to simulate "
                 "one (set STRATA_MACHINE): running on the CPUs only\n");
    return STRATA_OK;
  }
  if ((rc = strata_runtime_destroy(*rt)))
    return rc;
  *rt = NULL;
  if (!check_input("simulate the machine", path, SCRIPT_MAX))
    return STRATA_EINVAL; /* $STRATA_MACHINE */
  *m = (machine_choice_t){MACHINE_HOST_SIM_GPUS, path};
  return start_runtime(o, m, rt);
}

static void announce(strata_runtime_t *rt, const options_t *o,
                     const machine_choice_t *mc) {
  const strata_machine_t *m = strata_runtime_machine(rt);
  printf(PROG " %s: ", PACKAGE_VERSION);
  if (mc->kind == MACHINE_HOST_SIM_GPUS)
    printf("no GPU found, so the GPUs of %s are simulated; ", mc->path);
  else if (mc->kind == MACHINE_SIM)
    printf("simulated machine %s; ", mc->path);
  printf("%d device(s) on %" PRIu32 " cores, %" PRIu32 " NUMA node(s), %" PRIu32
         " GPU(s)%s%s%s\n",
         strata_device_count(rt), m->ncores, m->nnuma, m->ngpus,
         o->topology ? " (described by " : "", o->topology ? o->topology : "",
         o->topology ? ")" : "");
  strata_policy_stats_t ps = {.struct_size = sizeof ps};
  if (strata_policy_stats(rt, &ps) == STRATA_OK)
    printf("policy: %s\n", ps.name[0] ? ps.name : "none (least loaded)");
}

/* {=== Devices ===} */

/* What the launcher knows of each device, and its counters around a job. */
typedef struct devices {
  int n;
  strata_device_info_t *info;
  strata_device_stats_t *before, *after;
} devices_t;

static void devices_free(devices_t *d) {
  free(d->info);
  free(d->before);
  free(d->after);
  *d = (devices_t){0};
}

static int devices_load(strata_runtime_t *rt, devices_t *d) {
  *d = (devices_t){.n = strata_device_count(rt)};
  if (d->n < 1)
    return d->n < 0 ? d->n : STRATA_ENODEV;
  d->info = calloc((size_t)d->n, sizeof *d->info);
  d->before = calloc((size_t)d->n, sizeof *d->before);
  d->after = calloc((size_t)d->n, sizeof *d->after);
  if (!d->info || !d->before || !d->after) {
    devices_free(d);
    return STRATA_ENOMEM;
  }
  for (int i = 0; i < d->n; i++) {
    d->info[i].struct_size = sizeof d->info[i];
    int rc = strata_device_info(rt, i, &d->info[i]);
    if (rc) {
      devices_free(d);
      return rc;
    }
  }
  return STRATA_OK;
}

static int devices_sample(strata_runtime_t *rt, const devices_t *d,
                          strata_device_stats_t *out) {
  for (int i = 0; i < d->n; i++) {
    out[i].struct_size = sizeof out[i];
    int rc = strata_device_stats(rt, i, &out[i]);
    if (rc)
      return rc;
  }
  return STRATA_OK;
}

static int name_width(const devices_t *d, int cap) {
  int w = 6; /* "device" */
  for (int i = 0; i < d->n; i++) {
    int len = (int)strlen(d->info[i].name);
    w = len > w ? len : w;
  }
  return w < cap ? w : cap;
}

/* "23.4 GiB", "512 MiB", "-" when unknown. */
static void format_bytes(uint64_t bytes, char *buf, size_t size) {
  const double gib = 1024.0 * 1024.0 * 1024.0;
  if (!bytes)
    snprintf(buf, size, "-");
  else if (bytes >= (uint64_t)gib)
    snprintf(buf, size, "%.1f GiB", (double)bytes / gib);
  else
    snprintf(buf, size, "%.0f MiB", (double)bytes / (1024.0 * 1024.0));
}

static void print_device(const strata_device_info_t *di, int width) {
  char mem[16], node[12] = "-", cores[12] = "-";
  format_bytes(di->memory_bytes, mem, sizeof mem);
  if (di->numa_node >= 0)
    snprintf(node, sizeof node, "%" PRId32, di->numa_node);
  if (di->cores)
    snprintf(cores, sizeof cores, "%" PRIu32, di->cores);
  printf("%3d  %-5s  %-*s  %9s  %4s  %5s  %7" PRIu32 "  %s\n", di->index,
         strata_device_class_name(di->device_class), width, di->name, mem, node,
         cores, di->workers, di->backend);
}

/* What a GPU (real or simulated) told the runtime about itself: the facts
 * placement and the performance models use. */
static void print_gpu_facts(const strata_device_info_t *di) {
  if (di->device_class == STRATA_CLASS_CPU)
    return;
  printf("  %3d  %s", di->index, di->model[0] ? di->model : di->name);
  if (di->cc_major)
    printf(", compute %" PRId32 ".%" PRId32, di->cc_major, di->cc_minor);
  if (di->memory_bus_width)
    printf(", %" PRIu32 "-bit bus", di->memory_bus_width);
  if (di->mem_bandwidth > 0)
    printf(", %.0f GB/s", di->mem_bandwidth / 1e9);
  if (di->fp64_flops > 0 || di->fp32_flops > 0)
    printf(", FP64 %.2f / FP32 %.1f Tflop/s", di->fp64_flops / 1e12,
           di->fp32_flops / 1e12);
  printf(", ECC %s", di->ecc > 0 ? "on" : di->ecc == 0 ? "off" : "?");
  if (di->pcie_gen)
    printf(", PCIe gen %" PRIu32 " x%" PRIu32, di->pcie_gen, di->pcie_width);
  if (di->pci_busid[0])
    printf(", bus %s", di->pci_busid);
  if (di->npeers)
    printf(", %" PRIu32 " peer(s)", di->npeers);
  if (di->managed)
    printf(", managed memory");
  if (di->uuid[0])
    printf(", %s", di->uuid);
  if (di->failed)
    printf(", FAILED");
  printf("\n");
}

/* GPUs hwloc sees on the PCI bus, whether or not a backend drives them:
 * tells a user why a card is missing from the devices above. */
static void print_pci_gpus(const strata_machine_t *m) {
  if (!m || !m->ngpus)
    return;
  printf("\nGPUs on the PCI bus:\n");
  printf("  %-12s  %-9s  %-5s  %4s  %s\n", "bus id", "id", "class", "node",
         "link");
  for (uint32_t i = 0; i < m->ngpus; i++) {
    const strata_pci_gpu_info_t *g = &m->gpus[i];
    char node[16] = "-";
    if (g->numa_node >= 0)
      snprintf(node, sizeof node, "%d", (int)g->numa_node);
    printf("  %-12s  %04x:%04x  %04x   %4s  %.1f GB/s\n", g->busid,
           g->vendor_id, g->device_id, g->class_id, node, g->link_gbps);
  }
}

static int list_devices(strata_runtime_t *rt) {
  devices_t d;
  int rc = devices_load(rt, &d);
  if (rc) {
    fprintf(stderr, PROG ": cannot read the devices: %s\n",
            strata_strerror(rc));
    return EXIT_FAILURE;
  }
  int width = name_width(&d, (int)sizeof d.info[0].name);
  printf("%3s  %-5s  %-*s  %9s  %4s  %5s  %7s  %s\n", "#", "class", width,
         "device", "memory", "node", "cores", "workers", "backend");
  for (int i = 0; i < d.n; i++)
    print_device(&d.info[i], width);
  bool gpus = false;
  for (int i = 0; i < d.n && !gpus; i++)
    gpus = d.info[i].device_class != STRATA_CLASS_CPU;
  if (gpus)
    printf("\nGPU facts:\n");
  for (int i = 0; i < d.n; i++)
    print_gpu_facts(&d.info[i]);
  devices_free(&d);
  print_pci_gpus(strata_runtime_machine(rt));
  return EXIT_SUCCESS;
}

/* {=== The demo job ===} */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void report_job_failure(strata_runtime_t *rt, strata_job_t job,
                               int status) {
  strata_job_info_t ji = {.struct_size = sizeof ji};
  if (strata_job_info(rt, job, &ji)) {
    fprintf(stderr, PROG ": job failed: %s\n", strata_strerror(status));
    return;
  }
  fprintf(stderr,
          PROG ": job failed: %" PRIu64 " of %" PRIu64
               " task(s) failed, %" PRIu64 " not run after a failure, %" PRIu64
               " canceled; first: %s (%s)\n",
          ji.failed, ji.submitted, ji.dep_failed, ji.canceled,
          ji.first_failed_name, strata_strerror(status));
}

/* Submit the factorisation as one job and wait for it. */
static int run_job(strata_runtime_t *rt, chol_t *c) {
  strata_job_t job;
  int rc = strata_job_create(rt, &job);
  if (rc) {
    fprintf(stderr, PROG ": cannot create the job: %s\n", strata_strerror(rc));
    return rc;
  }
  char failed[64] = "";
  if ((rc = strata_job_set_attr(rt, job, "name", "cholesky")))
    fprintf(stderr, PROG ": cannot name the job: %s\n", strata_strerror(rc));
  else if ((rc = chol_submit(c, job, NULL, failed, sizeof failed))) {
    fprintf(stderr, PROG ": cannot submit task %s: %s\n", failed,
            strata_strerror(rc));
    /* Only 0 is documented; what was submitted still ends below. */
    (void)strata_job_cancel(rt, job);
  }
  int wrc = strata_job_wait(rt, job);
  if (!rc && wrc) {
    report_job_failure(rt, job, wrc);
    rc = wrc;
  }
  int rrc = strata_job_release(rt, job);
  if (rrc)
    fprintf(stderr, PROG ": cannot release the job: %s\n",
            strata_strerror(rrc));
  return rc ? rc : rrc;
}

static int check_result(chol_t *c) {
  double residual;
  /* The check (n^3 flops, more than the job) runs while the runtime is
   * idle, so OpenBLAS may use every core for it. */
  openblas_set_num_threads(openblas_get_num_procs());
  int rc = chol_check(c, &residual);
  openblas_set_num_threads(1);
  if (rc) {
    fprintf(stderr, PROG ": cannot check the result: %s\n",
            strata_strerror(rc));
    return EXIT_FAILURE;
  }
  bool ok = residual <= RESIDUAL_LIMIT; /* false for NaN too */
  printf("result check: %s (relative residual %.1e)\n",
         ok ? "passed" : "FAILED", residual);
  if (!ok)
    fprintf(stderr,
            PROG ": wrong result: relative residual %.1e is above %.0e\n",
            residual, RESIDUAL_LIMIT);
  return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* Copy `name` into buf, cut to `width` columns with "..." when longer. */
static void shorten(const char *name, int width, char *buf, size_t size) {
  size_t len = strlen(name);
  if ((int)len > width && width >= 4) {
    snprintf(buf, size, "%.*s...", width - 3, name);
    return;
  }
  if (len >= size)
    len = size - 1;
  memcpy(buf, name, len);
  buf[len] = '\0';
}

/* Utilisation is busy time over the time the device's workers had. */
static void print_usage_table(const devices_t *d, double wall) {
  int width = name_width(d, REPORT_NAME_WIDTH);
  printf("%-*s  %-5s  %7s  %8s  %5s\n", width, "device", "class", "tasks",
         "busy(s)", "util");
  for (int i = 0; i < d->n; i++) {
    const strata_device_info_t *di = &d->info[i];
    uint64_t tasks = d->after[i].tasks_run - d->before[i].tasks_run;
    uint64_t failed = d->after[i].tasks_failed - d->before[i].tasks_failed;
    double busy = (double)(d->after[i].busy_ns - d->before[i].busy_ns) * 1e-9;
    double capacity = wall * (di->workers ? di->workers : 1);
    char name[REPORT_NAME_WIDTH + 1], extra[40] = "";
    shorten(di->name, width, name, sizeof name);
    if (failed)
      snprintf(extra, sizeof extra, "  (%" PRIu64 " failed)", failed);
    printf("%-*s  %-5s  %7" PRIu64 "  %8.3f  %4.0f%%%s\n", width, name,
           strata_device_class_name(di->device_class), tasks, busy,
           capacity > 0 ? 100.0 * busy / capacity : 0.0, extra);
  }
}

/* Bytes copied between memory nodes during the run (devices with their own
 * memory, simulated or not). */
static void print_traffic(strata_runtime_t *rt) {
  int n = strata_memory_node_count(rt);
  bool any = false;
  for (int src = 0; src < n; src++)
    for (int dst = 0; dst < n; dst++) {
      strata_link_stats_t l = {.struct_size = sizeof l};
      strata_memory_node_info_t a = {.struct_size = sizeof a};
      strata_memory_node_info_t b = {.struct_size = sizeof b};
      if (strata_link_stats(rt, src, dst, &l) || !l.bytes ||
          strata_memory_node_info(rt, src, &a) ||
          strata_memory_node_info(rt, dst, &b))
        continue;
      if (!any)
        printf("data moved:\n");
      any = true;
      printf("  %s -> %s: %.1f MiB in %" PRIu64 " copies\n", a.name, b.name,
             (double)l.bytes / (1024.0 * 1024.0), l.copies);
    }
}

/* The latest virtual clock of devices whose time is modelled; 0: none. */
static double modelled_makespan(strata_runtime_t *rt) {
  uint64_t end = 0;
  for (int i = 0; i < strata_device_count(rt); i++) {
    strata_device_model_t dm = {.struct_size = sizeof dm};
    if (strata_device_model(rt, i, &dm) == STRATA_OK && dm.clock_ns > end)
      end = dm.clock_ns;
  }
  return (double)end * 1e-9;
}

/* The FP64 rate of all devices together (flop/s). */
static double total_fp64(const devices_t *d) {
  double sum = 0;
  for (int i = 0; i < d->n; i++)
    sum += d->info[i].fp64_flops;
  return sum > 0 ? sum : 1;
}

/* The critical path of the factorisation at the best rate one task gets
 * (a device's FP64 rate over its workers): per step, a POTRF, then a TRSM
 * and a SYRK before the next POTRF can start. */
static double critical_path(const devices_t *d, int tiles, int b) {
  double best = 0;
  for (int i = 0; i < d->n; i++) {
    double r =
        d->info[i].fp64_flops / (d->info[i].workers ? d->info[i].workers : 1);
    best = r > best ? r : best;
  }
  double b3 = (double)b * b * b;
  double flops = tiles * b3 / 3.0 + (tiles - 1) * 2.0 * b3;
  return best > 0 ? flops / best : 0;
}

/* qsort order: heaviest first. */
static int by_weight(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x < y) - (x > y);
}

/* The flops of the tasks that write each tile of the lower triangle,
 * heaviest first, into w (tiles * (tiles + 1) / 2 entries): a diagonal
 * tile takes a SYRK per column before it and a POTRF, the others a GEMM
 * per column before them and a TRSM. */
static void tile_work(int tiles, int b, double *w) {
  double b3 = (double)b * b * b;
  int k = 0;
  for (int i = 0; i < tiles; i++)
    for (int j = 0; j <= i; j++)
      w[k++] = i == j ? b3 / 3.0 + j * b3 : b3 + j * 2.0 * b3;
  qsort(w, (size_t)k, sizeof *w, by_weight);
}

/* The work of the k heaviest tiles (prefix[k]), k capped at ntiles. */
static double heaviest(const double *prefix, int ntiles, double k) {
  return prefix[k < ntiles ? (int)k : ntiles];
}

/* Whether all the work fits in time t when a card works only on tiles
 * that came in over its host link or from its peers, and every tile
 * starts in host memory: a card imports at most t * (link + peers) / tile
 * bytes tiles and does at most t * rate of work, on those; all cards
 * together work on no more tiles than their host links bring in; a
 * device working in host memory does at most t * rate. A relaxation
 * (work on a tile may be split, and nothing has to go back), so the
 * smallest such t is a lower bound. prefix[k]: the work of the k
 * heaviest tiles. */
static bool links_fit(const devices_t *d, const double *prefix, int ntiles,
                      double tile_bytes, double t) {
  double host = 0, cards = 0, host_links = 0;
  for (int i = 0; i < d->n; i++) {
    const strata_device_info_t *in = &d->info[i];
    double can_do = t * in->fp64_flops;
    if (in->device_class == STRATA_CLASS_CPU) {
      host += can_do;
      continue;
    }
    double bw = ((double)in->link_gbps + (double)in->peer_gbps) * 1e9;
    double on_tiles = heaviest(prefix, ntiles, floor(t * bw / tile_bytes));
    cards += can_do < on_tiles ? can_do : on_tiles;
    host_links += (double)in->link_gbps * 1e9;
  }
  double brought = heaviest(prefix, ntiles, floor(t * host_links / tile_bytes));
  cards = cards < brought ? cards : brought;
  return host + cards >= prefix[ntiles] * (1 - 1e-9);
}

/* The smallest time in which links_fit holds (bisection); 0 when a card's
 * link speed is unknown (the bound would not hold) or on failure. */
static double links_bound(const devices_t *d, int tiles, int b) {
  for (int i = 0; i < d->n; i++)
    if (d->info[i].device_class != STRATA_CLASS_CPU &&
        d->info[i].link_gbps <= 0)
      return 0;
  int ntiles = tiles * (tiles + 1) / 2;
  double *w = malloc((size_t)ntiles * sizeof *w);
  double *prefix = malloc((size_t)(ntiles + 1) * sizeof *prefix);
  double lo = 0, hi = 1e-6;
  if (!w || !prefix) {
    free(w);
    free(prefix);
    return 0;
  }
  tile_work(tiles, b, w);
  prefix[0] = 0;
  for (int k = 0; k < ntiles; k++)
    prefix[k + 1] = prefix[k] + w[k];
  double tile_bytes = (double)b * b * sizeof(double);
  while (!links_fit(d, prefix, ntiles, tile_bytes, hi) && hi < 1e9)
    hi *= 2;
  for (int it = 0; it < 100; it++) {
    double mid = (lo + hi) / 2;
    if (links_fit(d, prefix, ntiles, tile_bytes, mid))
      hi = mid;
    else
      lo = mid;
  }
  free(w);
  free(prefix);
  return hi < 1e9 ? hi : 0;
}

/* Run the job between two samples of the device counters, then check the
 * factor and report. */
static int measure_and_check(strata_runtime_t *rt, chol_t *c, devices_t *d) {
  int rc = devices_sample(rt, d, d->before);
  double t0 = now_s();
  int jrc = rc ? rc : run_job(rt, c);
  double wall = now_s() - t0;
  if (!rc)
    rc = devices_sample(rt, d, d->after);
  if (rc) {
    fprintf(stderr, PROG ": cannot read device counters: %s\n",
            strata_strerror(rc));
    return EXIT_FAILURE;
  }
  /* Unregistering waits for the tiles' tasks and leaves the factor in host
   * memory, where the check reads it. */
  int frc = chol_finish(c);
  if (frc)
    fprintf(stderr, PROG ": cannot unregister the tiles: %s\n",
            strata_strerror(frc));
  int status = jrc || frc ? EXIT_FAILURE : check_result(c);
  print_usage_table(d, wall);
  print_traffic(rt);
  double modelled = modelled_makespan(rt);
  if (modelled > 0) {
    double work = chol_flops(chol_order(c)) / total_fp64(d);
    int tiles = chol_tiles(c), b = chol_order(c) / chol_tiles(c);
    double path = critical_path(d, tiles, b);
    double links = links_bound(d, tiles, b);
    double bound = work > path ? work : path;
    bound = links > bound ? links : bound;
    printf("modelled makespan: %.6f s; lower bound %.6f s (work over every "
           "device's FP64 rate %.6f s, critical path %.6f s, host links "
           "%.6f s)\n",
           modelled, bound, work, path, links);
  }
  if (status == EXIT_SUCCESS && wall > 0)
    printf("wall time: %.3f s, %.1f GFLOP/s\n", wall,
           chol_flops(chol_order(c)) / wall * 1e-9);
  else
    printf("wall time: %.3f s\n", wall);
  return status;
}

/* Write the recording to path (NULL: not asked for). @return 0, or 1
 * when it could not be written (said) */
static int write_trace(strata_runtime_t *rt, const char *path,
                       strata_trace_format_t format) {
  if (!path)
    return 0;
  int rc = strata_trace_write(rt, path, format);
  if (rc) {
    fprintf(stderr, PROG ": cannot write %s: %s\n", path, strata_strerror(rc));
    return 1;
  }
  uint64_t events = 0, dropped = 0;
  (void)strata_trace_counts(rt, &events, &dropped);
  printf("%s: %s, %" PRIu64 " events%s\n", path,
         format == STRATA_TRACE_SVG ? "timeline" : "trace", events,
         dropped ? " (some dropped: the recording was full)" : "");
  return 0;
}

static int run_demo(strata_runtime_t *rt, const options_t *o) {
  /* The runtime runs one kernel per worker in parallel; OpenBLAS threads
   * inside each kernel would only oversubscribe the cores. */
  openblas_set_num_threads(1);
  devices_t d;
  int rc = devices_load(rt, &d);
  if (rc) {
    fprintf(stderr, PROG ": cannot read the devices: %s\n",
            strata_strerror(rc));
    return EXIT_FAILURE;
  }
  chol_t *c;
  if ((rc = chol_create(rt, o->tiles, o->tile_size, &c))) {
    fprintf(stderr, PROG ": cannot set up the demo job: %s\n",
            strata_strerror(rc));
    devices_free(&d);
    return EXIT_FAILURE;
  }
  printf("job: tiled Cholesky, n=%d (%dx%d tiles of %d), %" PRIu64 " tasks\n",
         chol_order(c), o->tiles, o->tiles, o->tile_size,
         chol_task_count(o->tiles));
  fflush(stdout); /* show what runs before it runs */
  if ((o->trace || o->gantt) && (rc = strata_trace_start(rt, 0)))
    fprintf(stderr, PROG ": cannot record the run: %s\n", strata_strerror(rc));
  int status = measure_and_check(rt, c, &d);
  (void)strata_trace_stop(rt);
  if (write_trace(rt, o->trace, STRATA_TRACE_CHROME_JSON) ||
      write_trace(rt, o->gantt, STRATA_TRACE_SVG))
    status = EXIT_FAILURE;
  chol_destroy(c);
  devices_free(&d);
  return status;
}

/* {=== Reloading the policy on SIGHUP ===} */

/* The handler only writes a byte to a pipe (async-signal-safe); a thread
 * reads it and calls into the library. (Blocking SIGHUP and taking it with
 * sigwait would not do: libraries such as OpenBLAS start threads before
 * main, with the signal unblocked.) */
static int hup_pipe[2] = {-1, -1};

static void on_hup(int sig) {
  (void)sig;
  int saved = errno;
  char c = 'h';
  ssize_t n = write(hup_pipe[1], &c, 1);
  (void)n; /* a full pipe already holds a pending reload */
  errno = saved;
}

typedef struct reloader {
  strata_runtime_t *rt;
  pthread_t tid;
  bool running;
} reloader_t;

static void *reload_on_hup(void *arg) {
  reloader_t *r = arg;
  char c;
  while (read(hup_pipe[0], &c, 1) == 1 && c == 'h') {
    int rc = strata_policy_reload(r->rt, NULL);
    fprintf(stderr, PROG ": SIGHUP: %s\n",
            rc == STRATA_OK       ? "policy reloaded"
            : rc == STRATA_ENOENT ? "no policy file to reload"
                                  : "the policy does not load; the running "
                                    "one stays");
  }
  return NULL;
}

static void start_reloader(reloader_t *r, strata_runtime_t *rt) {
  r->rt = rt;
  r->running = false;
  if (pipe(hup_pipe))
    return;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_hup;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  /* The handler first: a thread that started without it would never be
   * joined (running stays false). */
  if (sigaction(SIGHUP, &sa, NULL))
    return;
  r->running = pthread_create(&r->tid, NULL, reload_on_hup, r) == 0;
  if (!r->running)
    signal(SIGHUP, SIG_DFL);
}

static void stop_reloader(reloader_t *r) {
  signal(SIGHUP, SIG_DFL);
  if (r->running) {
    char c = 'q';
    if (write(hup_pipe[1], &c, 1) == 1)
      pthread_join(r->tid, NULL);
  }
  if (hup_pipe[0] >= 0) {
    close(hup_pipe[0]);
    close(hup_pipe[1]);
  }
}

/* {=== main ===} */

/* A failed write to stdout (full disk) must not end in exit status 0. */
static int finish_output(int status) {
  if (fflush(stdout) || ferror(stdout)) {
    fprintf(stderr, PROG ": cannot write the output: %s\n", strerror(errno));
    return EXIT_FAILURE;
  }
  return status;
}

int main(int argc, char **argv) {
  options_t o;
  args_result_t args = parse_args(argc, argv, &o);
  if (args != ARGS_RUN)
    return args == ARGS_DONE ? finish_output(EXIT_SUCCESS) : EXIT_USAGE;
  strata_runtime_t *rt;
  machine_choice_t machine;
  reloader_t reloader;
  if (!check_inputs(&o) || start(&o, &machine, &rt))
    return EXIT_FAILURE;
  start_reloader(&reloader, rt);
  announce(rt, &o, &machine);
  int status = o.list_devices ? list_devices(rt) : run_demo(rt, &o);
  stop_reloader(&reloader);
  int rc = strata_runtime_destroy(rt);
  if (rc) {
    fprintf(stderr, PROG ": cannot shut the runtime down: %s\n",
            strata_strerror(rc));
    status = EXIT_FAILURE;
  }
  return finish_output(status);
}
