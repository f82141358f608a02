/* SPDX-License-Identifier: MIT */
/* strata-run.c: the Strata launcher: runs a job file (examples/jobs/; the
 * three-tier pipeline by default) on the devices Strata finds, checks its
 * result and reports where every task ran. On a machine without a GPU it
 * adds the two simulated cards of the "mixed" machine description (sim
 * backend), and says so; --machine runs on a simulated machine of the
 * user's choice instead. The job file is loaded (jobfile.c) before the
 * runtime starts, so that a bad one fails before anything runs; its
 * kernels come from kernel libraries (kernlib.c); jobrun.c runs it and
 * report.c tells what happened. */
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

#include "jobfile.h"
#include "jobrun.h"
#include "kernlib.h"
#include "progress.h"
#include "report.h"
#include "sandbox.h"

#define PROG "strata-run"
#define EXIT_USAGE 2
#define MAX_WORKERS 4096     /* the CPU backend refuses more */
#define REPORT_NAME_WIDTH 28 /* device names are cut to this in the report */
/* The most an input file may hold: the library's own limit for machine
 * descriptions and policies, and a generous one for hwloc XML. */
#define SCRIPT_MAX ((size_t)1 << 20)
#define TOPOLOGY_MAX ((size_t)1 << 30)
#define JOB_FILE_MAX ((size_t)1 << 20)
#define DEFAULT_JOB "pipeline.lua"
#define DEFAULT_KERNELS "strata-kernels"
/* --tiles and --tile-size: the built-in demo's options, kept as
 * shorthands for cholesky.lua's n and tile. */
#define CHOL_MAX_TILES 128
#define CHOL_MAX_TILE_SIZE 4096
#define CHOL_MAX_ORDER 16384

typedef struct options {
  unsigned workers;         /* 0: one per core */
  const char *backends;     /* NULL: every backend found */
  const char *backend_path; /* NULL: the library's default */
  const char *topology;     /* NULL: this machine */
  const char *machine;      /* --machine: FILE, "none", or NULL (default) */
  const char *policy;       /* --policy: FILE, "none", or NULL (tiered) */
  const char *time;         /* --time: "real", "modelled" or NULL */
  int tiles, tile_size;     /* 0: not given */
  strata_log_level_t log_level;
  bool list_devices, list_kernels, quiet;
  const char *trace;          /* --trace FILE.json */
  const char *gantt;          /* --gantt FILE.svg */
  const char *metrics_listen; /* --metrics-listen ADDR:PORT */
  const char *metrics_dir;    /* --metrics-textfile DIR */
  long metrics_linger_s;      /* --metrics-linger S */
  report_format_t report;     /* --report text|json */
  const char *kernels;        /* --kernels LIST */
  const char *kernel_path;    /* --kernel-path DIRS; NULL: the default */
  const char *job;            /* JOB.lua; NULL: the default job */
  jf_set_t sets[JF_MAX_SETS]; /* --set key=value */
  size_t nsets;
  char tiles_set[2][64]; /* --tiles/--tile-size as --set values */
} options_t;

/* How argument parsing ended. */
typedef enum { ARGS_RUN, ARGS_DONE, ARGS_BAD } args_result_t;

/* Levels in strata_log_level_t order. */
static const char *const level_names[] = {"error", "warn", "info", "debug",
                                          "trace"};

/* {=== Arguments ===} */

static void usage(FILE *f) {
  fprintf(f,
          "Usage: " PROG " [OPTION]... [JOB.lua] [--set KEY=VALUE]...\n"
          "Run a job file on the devices Strata finds, check its result and "
          "report where\nevery task ran (default job: " DEFAULT_JOB ", the "
          "three-tier pipeline; a name\nwithout '/' that is not in this "
          "directory is looked up among the shipped jobs).\n\n"
          "  -h, --help               show this help and exit\n"
          "  -V, --version            show the version and exit\n"
          "      --list-devices       list the devices and exit\n"
          "      --list-kernels       list the kernels of the kernel "
          "libraries and exit\n"
          "  -w, --workers N          CPU worker threads (default: one per "
          "core)\n"
          "      --backends LIST      comma-separated backends to load; each "
          "must start\n"
          "                           (default: every backend found)\n"
          "      --backend-path DIRS  colon-separated backend directories\n"
          "                           (default: $STRATA_BACKEND_PATH, else "
          "the installed ones)\n"
          "      --kernels LIST       kernel libraries to load "
          "(default " DEFAULT_KERNELS ")\n"
          "      --kernel-path DIRS   where to find them (default: "
          "$STRATA_KERNEL_PATH, else\n"
          "                           the installed ones)\n"
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
          "      --set KEY=VALUE      set a parameter the job file declares "
          "(repeatable)\n"
          "      --tiles T            run cholesky.lua with n = T*B "
          "(1..%d)\n"
          "      --tile-size B        ... and tile = B (1..%d; default 192)\n"
          "      --report text|json   the report's form (default text; json: "
          "only the\n"
          "                           report on stdout)\n"
          "      --quiet              print the report only: no progress, no "
          "announcements\n"
          "      --log-level LEVEL    error, warn, info or debug (default "
          "warn)\n"
          "      --trace FILE.json    write the run as a Chrome trace (opens "
          "in Perfetto)\n"
          "      --gantt FILE.svg     draw the run as an SVG timeline\n"
          "      --metrics-listen [HOST]:PORT  serve Prometheus metrics at "
          "http://HOST:PORT/\n"
          "                           metrics (HOST default 127.0.0.1; PORT "
          "0: any free one)\n"
          "      --metrics-textfile DIR  write DIR/strata.prom for "
          "node_exporter every 5 s\n"
          "                           and at the end\n"
          "      --metrics-linger S   keep the endpoint up S seconds after "
          "the report, so\n"
          "                           the last scrape sees the final counts "
          "(0..3600)\n\n"
          "Exit status: 0 every job completed and its check passed, 1 a "
          "failure (a bad\njob file, a failed task, a wrong result), 2 bad "
          "usage.\n",
          CHOL_MAX_TILES, CHOL_MAX_TILE_SIZE);
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
  OPT_GANTT,
  OPT_SET,
  OPT_REPORT,
  OPT_QUIET,
  OPT_KERNELS,
  OPT_KERNEL_PATH,
  OPT_LIST_KERNELS,
  OPT_METRICS_LISTEN,
  OPT_METRICS_TEXTFILE,
  OPT_METRICS_LINGER
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
    {"set", required_argument, NULL, OPT_SET},
    {"report", required_argument, NULL, OPT_REPORT},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"kernels", required_argument, NULL, OPT_KERNELS},
    {"kernel-path", required_argument, NULL, OPT_KERNEL_PATH},
    {"list-kernels", no_argument, NULL, OPT_LIST_KERNELS},
    {"metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN},
    {"metrics-textfile", required_argument, NULL, OPT_METRICS_TEXTFILE},
    {"metrics-linger", required_argument, NULL, OPT_METRICS_LINGER},
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

/* --set KEY=VALUE: KEY a name (letters, digits, '_'), given once. */
static bool add_set(options_t *o, const char *arg) {
  const char *eq = strchr(arg, '=');
  size_t klen = eq ? (size_t)(eq - arg) : 0;
  if (!eq || !klen || klen >= sizeof o->tiles_set[0] ||
      strspn(arg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                  "0123456789_") != klen) {
    fprintf(stderr,
            PROG ": --set: expected KEY=VALUE with KEY a parameter name, got "
                 "'%s'\n",
            arg);
    return false;
  }
  for (size_t i = 0; i < o->nsets; i++)
    if (!strncmp(o->sets[i].key, arg, klen) && !o->sets[i].key[klen]) {
      fprintf(stderr, PROG ": --set: %.*s is set twice\n", (int)klen, arg);
      return false;
    }
  if (o->nsets == JF_MAX_SETS) {
    fprintf(stderr, PROG ": --set: more than %u parameters\n", JF_MAX_SETS);
    return false;
  }
  /* The key is cut out of arg in place: argv is the program's to change. */
  char *key = (char *)arg;
  key[klen] = '\0';
  o->sets[o->nsets++] = (jf_set_t){key, eq + 1, false};
  return true;
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
  case OPT_SET:
    return add_set(o, arg);
  case OPT_REPORT:
    if (strcmp(arg, "text") && strcmp(arg, "json")) {
      fprintf(stderr, PROG ": --report: expected text or json, got '%s'\n",
              arg);
      return false;
    }
    o->report = strcmp(arg, "json") ? REPORT_TEXT : REPORT_JSON;
    return true;
  case OPT_QUIET:
    o->quiet = true;
    return true;
  case OPT_KERNELS:
  case OPT_KERNEL_PATH:
    if (!*arg) {
      fprintf(stderr, PROG ": --%s: expected a value\n",
              c == OPT_KERNELS ? "kernels" : "kernel-path");
      return false;
    }
    *(c == OPT_KERNELS ? &o->kernels : &o->kernel_path) = arg;
    return true;
  case OPT_LIST_KERNELS:
    o->list_kernels = true;
    return true;
  case OPT_METRICS_LISTEN:
  case OPT_METRICS_TEXTFILE:
    if (!*arg) {
      fprintf(stderr, PROG ": --%s: expected %s\n",
              c == OPT_METRICS_LISTEN ? "metrics-listen" : "metrics-textfile",
              c == OPT_METRICS_LISTEN ? "[HOST]:PORT" : "a directory");
      return false;
    }
    *(c == OPT_METRICS_LISTEN ? &o->metrics_listen : &o->metrics_dir) = arg;
    return true;
  case OPT_METRICS_LINGER:
    return parse_number("--metrics-linger", arg, 0, 3600, &o->metrics_linger_s);
  default: /* getopt_long returns only the values listed above */
    return false;
  }
}

/* --tiles and --tile-size become cholesky.lua's parameters. */
static bool tiles_to_sets(options_t *o) {
  if (!o->tiles && !o->tile_size)
    return true;
  if (o->job) {
    fprintf(stderr, PROG ": --tiles and --tile-size run cholesky.lua; with a "
                         "job file, use --set\n");
    return false;
  }
  int b = o->tile_size ? o->tile_size : 192, t = o->tiles ? o->tiles : 12;
  if (t * b > CHOL_MAX_ORDER) {
    fprintf(stderr,
            PROG ": --tiles %d with --tile-size %d makes a matrix of order "
                 "%d; the limit is %d\n",
            t, b, t * b, CHOL_MAX_ORDER);
    return false;
  }
  if (o->nsets + 2 > JF_MAX_SETS)
    return false;
  snprintf(o->tiles_set[0], sizeof o->tiles_set[0], "%d", t * b);
  snprintf(o->tiles_set[1], sizeof o->tiles_set[1], "%d", b);
  o->sets[o->nsets++] = (jf_set_t){"n", o->tiles_set[0], false};
  o->sets[o->nsets++] = (jf_set_t){"tile", o->tiles_set[1], false};
  o->job = "cholesky.lua";
  return true;
}

/* Checks that need every option, and the defaults from the environment. */
static bool finish_options(options_t *o) {
  if (!tiles_to_sets(o))
    return false;
  if (!o->backend_path) {
    const char *env = getenv("STRATA_BACKEND_PATH");
    if (env && *env)
      o->backend_path = env;
  }
  if (!o->kernel_path) {
    const char *env = getenv("STRATA_KERNEL_PATH");
    o->kernel_path =
        env && *env ? env : STRATA_KERNELS_DIR ":" STRATA_BUILD_KERNELS_DIR;
  }
  if (!o->kernels)
    o->kernels = DEFAULT_KERNELS;
  return true;
}

static args_result_t parse_args(int argc, char **argv, options_t *o) {
  *o = (options_t){.log_level = STRATA_LOG_WARN, .report = REPORT_TEXT};
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
  if (optind < argc)
    o->job = argv[optind++];
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
  if (o->job && !check_input("load the job", o->job, JOB_FILE_MAX))
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

/* How the machine was chosen, in words (also the report's "machine"). */
static void describe_machine(const machine_choice_t *mc, char *buf, size_t n) {
  if (mc->kind == MACHINE_HOST_SIM_GPUS)
    snprintf(buf, n, "this machine, with the GPUs of %s simulated", mc->path);
  else if (mc->kind == MACHINE_SIM)
    snprintf(buf, n, "simulated machine %s", mc->path);
  else
    snprintf(buf, n, "this machine");
}

static void announce(FILE *out, strata_runtime_t *rt, const options_t *o,
                     const machine_choice_t *mc) {
  const strata_machine_t *m = strata_runtime_machine(rt);
  fprintf(out, PROG " %s: ", PACKAGE_VERSION);
  if (mc->kind == MACHINE_HOST_SIM_GPUS)
    fprintf(out, "no GPU found, so the GPUs of %s are simulated; ", mc->path);
  else if (mc->kind == MACHINE_SIM)
    fprintf(out, "simulated machine %s; ", mc->path);
  fprintf(out,
          "%d device(s) on %" PRIu32 " cores, %" PRIu32
          " NUMA node(s), %" PRIu32 " GPU(s)%s%s%s\n",
          strata_device_count(rt), m->ncores, m->nnuma, m->ngpus,
          o->topology ? " (described by " : "", o->topology ? o->topology : "",
          o->topology ? ")" : "");
  strata_policy_stats_t ps = {.struct_size = sizeof ps};
  if (strata_policy_stats(rt, &ps) == STRATA_OK)
    fprintf(out, "policy: %s\n", ps.name[0] ? ps.name : "none (least loaded)");
}

/* {=== Devices ===} */

/* What the launcher knows of each device, for the listing. */
typedef struct devices {
  int n;
  strata_device_info_t *info;
} devices_t;

static void devices_free(devices_t *d) {
  free(d->info);
  *d = (devices_t){0};
}

static int devices_load(strata_runtime_t *rt, devices_t *d) {
  *d = (devices_t){.n = strata_device_count(rt)};
  if (d->n < 1)
    return d->n < 0 ? d->n : STRATA_ENODEV;
  d->info = calloc((size_t)d->n, sizeof *d->info);
  if (!d->info) {
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

/* {=== Kernel libraries and the job file ===} */

static int list_kernels(const kernlib_t *kl) {
  for (size_t i = 0; i < kernlib_count(kl); i++) {
    const kernlib_kernel_t *e = kernlib_at(kl, i);
    const strata_library_kernel_t *k = e->k;
    printf("%-10s (", k->name);
    bool any = !strcmp(k->modes, "*");
    for (size_t b = 0; k->buffers[b]; b++)
      printf("%s%s:%s", b ? ", " : "", k->buffers[b],
             k->modes[b] == 'r'   ? "r"
             : k->modes[b] == 'w' ? "w"
                                  : "rw");
    if (any)
      printf("buffers...:r");
    printf(")");
    for (uint32_t a = 0; a < k->nargs; a++)
      printf("%s%s%s", a ? ", " : " args ", k->args[a].name,
             k->args[a].required ? "" : "?");
    printf("  [%s%s%s%s] %s\n",
           k->types >> STRATA_ELEM_FLOAT & 1 ? "float" : "",
           (k->types >> STRATA_ELEM_FLOAT & 1) &&
                   (k->types >> STRATA_ELEM_DOUBLE & 1)
               ? ","
               : "",
           k->types >> STRATA_ELEM_DOUBLE & 1 ? "double" : "",
           k->types == 1u << STRATA_ELEM_NONE ? "untyped" : "", e->library);
    printf("           %s\n", k->summary);
  }
  return EXIT_SUCCESS;
}

/* Without blocking (an installed file could be anything). */
static bool exists(const char *path) {
  char err[8];
  return input_ok(path, JOB_FILE_MAX, err, sizeof err);
}

/* The job file to run: the one named, else the default; a bare name not
 * found here is looked up among the installed jobs, then the source
 * tree's. */
static const char *resolve_job(const char *job) {
  static char path[PATH_MAX];
  const char *name = job ? job : DEFAULT_JOB;
  if (strchr(name, '/') || exists(name))
    return name;
  snprintf(path, sizeof path, "%s/%s", STRATA_JOBS_DIR, name);
  if (exists(path))
    return path;
  snprintf(path, sizeof path, "%s/%s", STRATA_SOURCE_JOBS_DIR, name);
  if (exists(path)) {
    char *real = realpath(path, NULL);
    if (real) {
      snprintf(path, sizeof path, "%s", real);
      free(real);
    }
    return path;
  }
  return name; /* check_inputs says it is missing */
}

/* Half the machine's memory: the most a job's buffers may take. */
static uint64_t memory_limit(void) {
  long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || size <= 0)
    return (uint64_t)1 << 32;
  return (uint64_t)pages * (uint64_t)size / 2;
}

/* {=== Running the job ===} */

/* Write the recording to path (NULL: not asked for). @return 0, or 1
 * when it could not be written (said) */
static int write_trace(strata_runtime_t *rt, const char *path,
                       strata_trace_format_t format, FILE *info) {
  if (!path)
    return 0;
  int rc = strata_trace_write(rt, path, format);
  if (rc) {
    fprintf(stderr, PROG ": cannot write %s: %s\n", path, strata_strerror(rc));
    return 1;
  }
  uint64_t events = 0, dropped = 0;
  (void)strata_trace_counts(rt, &events, &dropped);
  if (info)
    fprintf(info, "%s: %s, %" PRIu64 " events%s\n", path,
            format == STRATA_TRACE_SVG ? "timeline" : "trace", events,
            dropped ? " (some dropped: the recording was full)" : "");
  return 0;
}

/* {=== Metrics: the endpoint and the textfile ===} */

#define TEXTFILE_INTERVAL_MS 5000

typedef struct metrics_out {
  char url[128];       /* "" none */
  char file[PATH_MAX]; /* "" none */
} metrics_out_t;

/* Start what --metrics-listen and --metrics-textfile ask for, before
 * anything runs: an address that cannot be bound or a directory that
 * cannot be written fails the run (the library logged why). */
static bool start_metrics(strata_runtime_t *rt, const options_t *o,
                          metrics_out_t *m, FILE *info) {
  *m = (metrics_out_t){{0}, {0}};
  int rc;
  if (o->metrics_listen) {
    if ((rc = strata_metrics_listen(rt, o->metrics_listen))) {
      fprintf(stderr, PROG ": --metrics-listen %s: %s\n", o->metrics_listen,
              strata_strerror(rc));
      return false;
    }
    /* The host as given; none (":PORT", "PORT") is loopback. */
    const char *colon = strrchr(o->metrics_listen, ':');
    int hlen = colon ? (int)(colon - o->metrics_listen) : 0;
    if (hlen)
      snprintf(m->url, sizeof m->url, "http://%.*s:%d/metrics", hlen,
               o->metrics_listen, strata_metrics_port(rt));
    else
      snprintf(m->url, sizeof m->url, "http://127.0.0.1:%d/metrics",
               strata_metrics_port(rt));
    /* Always said, also under --quiet: a scraper needs the port. */
    fprintf(stderr, PROG ": metrics: %s\n", m->url);
  }
  if (o->metrics_dir) {
    if ((rc = strata_metrics_textfile(rt, o->metrics_dir,
                                      TEXTFILE_INTERVAL_MS))) {
      fprintf(stderr, PROG ": --metrics-textfile %s: %s\n", o->metrics_dir,
              strata_strerror(rc));
      return false;
    }
    snprintf(m->file, sizeof m->file, "%s/strata.prom", o->metrics_dir);
    if (info)
      fprintf(info, "metrics: %s, every %d s and at the end\n", m->file,
              TEXTFILE_INTERVAL_MS / 1000);
  }
  return true;
}

/* --metrics-linger: the report is out; keep answering scrapes a while. */
static void linger(const options_t *o, FILE *info) {
  if (!o->metrics_listen || o->metrics_linger_s <= 0)
    return;
  if (info)
    fprintf(info, "metrics: serving the final counts for %ld s\n",
            o->metrics_linger_s);
  fflush(stdout);
  fflush(stderr);
  struct timespec left = {.tv_sec = o->metrics_linger_s};
  while (nanosleep(&left, &left) && errno == EINTR)
    ;
}

static uint64_t tasks_done(const void *ud) { return jobrun_done(ud); }

/* Set up, submit and wait; the run's status. */
static int execute(strata_runtime_t *rt, const jf_plan_t *plan,
                   const options_t *o, jobrun_t **jr) {
  char err[1024];
  int rc = jobrun_setup(rt, plan, jr, err, sizeof err);
  if (rc) {
    fprintf(stderr, PROG ": cannot set the job up: %s\n", err);
    return rc;
  }
  progress_t *p =
      o->quiet ? NULL : progress_start(stderr, plan->ntasks, tasks_done, *jr);
  rc = jobrun_submit(*jr, err, sizeof err);
  if (rc)
    fprintf(stderr, PROG ": %s\n", err);
  int wrc = jobrun_wait(*jr);
  progress_stop(p);
  return rc ? rc : wrc;
}

/* The check on the final data, with every core for its BLAS calls (the
 * runtime is idle by then). */
static void run_check(jobfile_t *jf, const jobrun_t *jr, report_run_t *rr,
                      char *msg, size_t n) {
  rr->has_check = jobfile_plan(jf)->has_check;
  rr->check_message = msg;
  msg[0] = '\0';
  if (!rr->has_check || rr->status)
    return;
  openblas_set_num_threads(openblas_get_num_procs());
  int rc = jobfile_check(jf, jobrun_data(jr), &rr->check_passed, msg, n);
  openblas_set_num_threads(1);
  if (rc)
    fprintf(stderr, PROG ": the check did not run: %s\n", msg);
  else if (!rr->check_passed)
    fprintf(stderr, PROG ": wrong result: %s\n", msg);
}

static void say_failure(const jobrun_t *jr, const jf_plan_t *plan) {
  for (size_t i = 0; jr && i < plan->njobs; i++) {
    const jr_job_t *j = &jobrun_jobs(jr)[i];
    if (j->status)
      fprintf(stderr,
              PROG ": job '%s' failed: %" PRIu64 " of %" PRIu64
                   " task(s) failed, %" PRIu64 " not run after a failure, "
                   "%" PRIu64 " canceled; first: %s (%s)\n",
              plan->jobs[i].name, j->failed, j->tasks, j->dep_failed,
              j->canceled, j->first_failed, strata_strerror(j->status));
  }
}

static int run_job_file(strata_runtime_t *rt, jobfile_t *jf, const options_t *o,
                        const char *job_path, const char *machine) {
  /* The runtime runs one kernel per worker in parallel; OpenBLAS threads
   * inside each kernel would only oversubscribe the cores. */
  openblas_set_num_threads(1);
  const jf_plan_t *plan = jobfile_plan(jf);
  FILE *info = o->quiet ? NULL : o->report == REPORT_JSON ? stderr : stdout;
  if (info) {
    fprintf(info, "job: %s, %zu tasks in %zu job(s), %zu buffers (%.1f MiB)\n",
            job_path, plan->ntasks, plan->njobs, plan->nbuffers,
            (double)plan->buffer_bytes / (1024.0 * 1024.0));
    fflush(info); /* show what runs before it runs */
  }
  metrics_out_t metrics;
  if (!start_metrics(rt, o, &metrics, info))
    return EXIT_FAILURE;
  report_t *rep;
  int rc = report_begin(rt, &rep);
  if (rc) {
    fprintf(stderr, PROG ": cannot read the counters: %s\n",
            strata_strerror(rc));
    return EXIT_FAILURE;
  }
  if ((o->trace || o->gantt) && (rc = strata_trace_start(rt, 0)))
    fprintf(stderr, PROG ": cannot record the run: %s\n", strata_strerror(rc));
  jobrun_t *jr = NULL;
  report_run_t rr = {.job_file = job_path,
                     .params = jobfile_params(jf),
                     .machine = machine,
                     .plan = plan,
                     .metrics_url = metrics.url[0] ? metrics.url : NULL,
                     .metrics_file = metrics.file[0] ? metrics.file : NULL};
  rr.status = execute(rt, plan, o, &jr);
  (void)strata_trace_stop(rt);
  rr.run = jr;
  if ((rc = report_end(rep)))
    fprintf(stderr, PROG ": cannot read the counters: %s\n",
            strata_strerror(rc));
  if (rr.status)
    say_failure(jr, plan);
  char msg[1024];
  run_check(jf, jr, &rr, msg, sizeof msg);
  bool passed = jr && !rc && report_print(rep, &rr, o->report, stdout);
  if (write_trace(rt, o->trace, STRATA_TRACE_CHROME_JSON, info) ||
      write_trace(rt, o->gantt, STRATA_TRACE_SVG, info))
    passed = false;
  report_free(rep);
  jobrun_free(jr);
  linger(o, info);
  return passed ? EXIT_SUCCESS : EXIT_FAILURE;
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

/* Load the kernel libraries and the job file (before any runtime: a bad
 * file fails before anything runs). */
static int prepare(const options_t *o, const char *job, kernlib_t **kl,
                   jobfile_t **jf, jf_context_t *ctx) {
  char err[2048];
  if (kernlib_open(o->kernels, o->kernel_path, kl, err, sizeof err)) {
    fprintf(stderr, PROG ": cannot load the kernels: %s\n", err);
    return EXIT_FAILURE;
  }
  if (o->list_kernels)
    return list_kernels(*kl);
  if (o->list_devices)
    return EXIT_SUCCESS;
  *ctx = (jf_context_t){.kernels = *kl,
                        .sets = (jf_set_t *)o->sets,
                        .nsets = o->nsets,
                        .memory_limit = memory_limit()};
  if (jobfile_load(job, ctx, jf, err, sizeof err)) {
    fprintf(stderr, PROG ": %s\n", err);
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}

int main(int argc, char **argv) {
  options_t o;
  args_result_t args = parse_args(argc, argv, &o);
  if (args != ARGS_RUN)
    return args == ARGS_DONE ? finish_output(EXIT_SUCCESS) : EXIT_USAGE;
  const char *job = resolve_job(o.job);
  if (!o.list_devices && !o.list_kernels)
    o.job = job;
  kernlib_t *kl = NULL;
  jobfile_t *jf = NULL;
  jf_context_t ctx;
  int status =
      check_inputs(&o) ? prepare(&o, job, &kl, &jf, &ctx) : EXIT_FAILURE;
  if (status || o.list_kernels) {
    jobfile_free(jf);
    kernlib_close(kl);
    return finish_output(status);
  }
  if (!o.policy && jf && jobfile_policy(jf))
    o.policy = jobfile_policy(jf); /* the job's own, unless one is named */
  strata_runtime_t *rt;
  machine_choice_t machine;
  reloader_t reloader;
  if (start(&o, &machine, &rt)) {
    jobfile_free(jf);
    kernlib_close(kl);
    return EXIT_FAILURE;
  }
  start_reloader(&reloader, rt);
  if (!o.quiet)
    announce(o.report == REPORT_JSON ? stderr : stdout, rt, &o, &machine);
  char described[PATH_MAX + 64];
  describe_machine(&machine, described, sizeof described);
  status = o.list_devices ? list_devices(rt)
                          : run_job_file(rt, jf, &o, job, described);
  stop_reloader(&reloader);
  int rc = strata_runtime_destroy(rt);
  if (rc) {
    fprintf(stderr, PROG ": cannot shut the runtime down: %s\n",
            strata_strerror(rc));
    status = EXIT_FAILURE;
  }
  /* After the runtime: its workers ran the libraries' code. */
  jobfile_free(jf);
  kernlib_close(kl);
  return finish_output(status);
}
