/* SPDX-License-Identifier: MIT */
/* strata-info.c: the machine as Strata sees it, and whether it is set up
 * the way a mixed GPU machine should be: the topology (packages, NUMA
 * nodes, cores), every device with its class and facts, the GPUs on the
 * PCI bus and their NUMA nodes, the peer matrix, and a checklist whose
 * lines are OK, WARN or FAIL with the reason (PCIe link, ECC, driver
 * against the CUDA runtime, persistence and compute mode, mixed compute
 * capabilities, free memory). Text for people, --json for programs.
 *
 * It loads every backend it finds, but simulates nothing: on a machine
 * without GPUs it says so. Exit status: 0 (no FAIL line), 1 (a FAIL
 * line), 2 (bad usage), 3 (the runtime could not start). */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata.h>
#include <strata/policy.h>

#include "json.h"

#ifdef STRATA_HAVE_CUDA
#include <cuda_runtime_api.h> /* CUDART_VERSION: the toolkit built with */
#endif

#define PROG "strata-info"
#define MAX_DEVICES 64
#define MAX_CHECKS 256

typedef struct options {
  bool json;
  const char *topology, *backends, *backend_path;
} options_t;

/* {=== The checklist ===} */

typedef enum { CHECK_OK, CHECK_WARN, CHECK_FAIL } verdict_t;

static const char *const verdict_names[] = {"OK", "WARN", "FAIL"};

typedef struct check {
  verdict_t verdict;
  char what[48]; /* "pcie", "ecc", "driver", ... */
  int device;    /* -1: the machine */
  char why[240];
} check_t;

typedef struct report {
  const strata_machine_t *m;
  int ndev;
  strata_device_info_t info[MAX_DEVICES];
  strata_health_t health[MAX_DEVICES];
  bool has_health[MAX_DEVICES];
  check_t checks[MAX_CHECKS];
  int nchecks;
} report_t;

static void check(report_t *r, verdict_t v, const char *what, int device,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void check(report_t *r, verdict_t v, const char *what, int device,
                  const char *fmt, ...) {
  if (r->nchecks == MAX_CHECKS)
    return;
  check_t *c = &r->checks[r->nchecks++];
  c->verdict = v;
  c->device = device;
  snprintf(c->what, sizeof c->what, "%s", what);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->why, sizeof c->why, fmt, ap);
  va_end(ap);
}

static bool is_gpu(const strata_device_info_t *d) {
  return d->device_class != STRATA_CLASS_CPU;
}

/* A card's NVML-read fields, when its backend has them. */
static const strata_health_t *health_of(const report_t *r, int d) {
  return r->has_health[d] ? &r->health[d] : NULL;
}

static void check_link(report_t *r, int d) {
  const strata_device_info_t *i = &r->info[d];
  const strata_health_t *h = health_of(r, d);
  if (!h || h->pcie_gen < 0 || !i->pcie_gen) {
    check(r, CHECK_WARN, "pcie", d, "%s: PCIe link unknown", i->name);
    return;
  }
  if ((uint32_t)h->pcie_gen < i->pcie_gen ||
      (uint32_t)h->pcie_width < i->pcie_width)
    check(r, CHECK_WARN, "pcie", d,
          "%s: PCIe gen %" PRId32 " x%" PRId32 " now, the card can gen %" PRIu32
          " x%" PRIu32 " (an idle card lowers its link: look again under "
          "load; else reseat it or check the slot)",
          i->name, h->pcie_gen, h->pcie_width, i->pcie_gen, i->pcie_width);
  else
    check(r, CHECK_OK, "pcie", d, "%s: PCIe gen %" PRId32 " x%" PRId32, i->name,
          h->pcie_gen, h->pcie_width);
}

static void check_ecc(report_t *r, int d) {
  const strata_device_info_t *i = &r->info[d];
  const strata_health_t *h = health_of(r, d);
  int32_t on = h && h->ecc_mode >= 0 ? h->ecc_mode : i->ecc;
  if (i->device_class == STRATA_CLASS_HBM && on == 0)
    check(r, CHECK_WARN, "ecc", d,
          "%s: ECC is off on a server card (nvidia-smi -e 1, then reboot)",
          i->name);
  else if (h && h->ecc_uncorrected > 0)
    check(r, CHECK_FAIL, "ecc", d,
          "%s: %" PRId64 " uncorrected ECC error(s) since the driver "
          "loaded: its memory cannot be trusted",
          i->name, h->ecc_uncorrected);
  else if (on > 0)
    check(r, CHECK_OK, "ecc", d, "%s: ECC on", i->name);
  else
    check(r, CHECK_OK, "ecc", d, "%s: no ECC (a consumer card)", i->name);
}

static void check_modes(report_t *r, int d) {
  const strata_device_info_t *i = &r->info[d];
  const strata_health_t *h = health_of(r, d);
  if (!h || h->persistence_mode < 0)
    check(r, CHECK_WARN, "persistence", d, "%s: persistence mode unknown",
          i->name);
  else if (!h->persistence_mode)
    check(r, CHECK_WARN, "persistence", d,
          "%s: persistence mode off: each program pays the driver's start "
          "(nvidia-smi -pm 1)",
          i->name);
  else
    check(r, CHECK_OK, "persistence", d, "%s: persistence mode on", i->name);
  if (!h || h->compute_mode < 0)
    return;
  if (i->device_class == STRATA_CLASS_HBM && h->compute_mode != 3)
    check(r, CHECK_WARN, "compute-mode", d,
          "%s: compute mode %s: a shared server card is best EXCLUSIVE_PROCESS "
          "(nvidia-smi -c EXCLUSIVE_PROCESS)",
          i->name, h->compute_mode == 2 ? "PROHIBITED" : "DEFAULT");
  else if (h->compute_mode == 2)
    check(r, CHECK_FAIL, "compute-mode", d,
          "%s: compute mode PROHIBITED: no program can use it", i->name);
  else
    check(r, CHECK_OK, "compute-mode", d, "%s: compute mode %s", i->name,
          h->compute_mode == 3 ? "EXCLUSIVE_PROCESS" : "DEFAULT");
}

static void check_memory(report_t *r, int d) {
  const strata_device_info_t *i = &r->info[d];
  const strata_health_t *h = health_of(r, d);
  if (!h || h->memory_used_bytes < 0 || !i->memory_bytes)
    return;
  double free = 1.0 - (double)h->memory_used_bytes / (double)i->memory_bytes;
  if (free < 0.10)
    check(r, CHECK_WARN, "memory", d,
          "%s: %.0f%% of its memory free: another process holds the rest",
          i->name, free * 100);
  else
    check(r, CHECK_OK, "memory", d, "%s: %.0f%% of its memory free", i->name,
          free * 100);
}

/* The driver a CUDA runtime needs, by the toolkit's major version (the
 * minimums of CUDA's minor-version compatibility). */
static int driver_needed(int cuda_major) {
  return cuda_major >= 13 ? 580 : cuda_major == 12 ? 525 : 450;
}

static void check_driver(report_t *r) {
  const char *driver = NULL;
  for (int d = 0; d < r->ndev && !driver; d++)
    if (health_of(r, d) && r->health[d].driver_version[0])
      driver = r->health[d].driver_version;
#ifdef CUDART_VERSION
  int major = CUDART_VERSION / 1000, minor = CUDART_VERSION % 1000 / 10;
  if (!driver) {
    check(r, CHECK_WARN, "driver", -1,
          "NVIDIA driver version unknown (no NVML); the CUDA runtime is %d.%d",
          major, minor);
    return;
  }
  int have = atoi(driver), need = driver_needed(major);
  if (have < need)
    check(r, CHECK_FAIL, "driver", -1,
          "driver %s is too old for the CUDA %d.%d runtime (needs %d or "
          "newer)",
          driver, major, minor, need);
  else
    check(r, CHECK_OK, "driver", -1, "driver %s, CUDA runtime %d.%d", driver,
          major, minor);
#else
  check(r, CHECK_WARN, "driver", -1, "built without the CUDA toolkit: %s%s",
        driver ? "driver " : "", driver ? driver : "no CUDA backends");
#endif
}

static void check_capabilities(report_t *r) {
  char seen[128] = "";
  int first = -1;
  bool mixed = false;
  for (int d = 0; d < r->ndev; d++) {
    const strata_device_info_t *i = &r->info[d];
    if (!is_gpu(i) || !i->cc_major)
      continue;
    char cc[16];
    snprintf(cc, sizeof cc, "%" PRId32 ".%" PRId32, i->cc_major, i->cc_minor);
    if (!strstr(seen, cc) && strlen(seen) + strlen(cc) + 2 < sizeof seen) {
      if (seen[0])
        strcat(seen, ", ");
      strcat(seen, cc);
    }
    int v = i->cc_major * 10 + i->cc_minor;
    mixed |= first >= 0 && v != first;
    first = first < 0 ? v : first;
  }
  if (mixed)
    check(r, CHECK_WARN, "compute-capability", -1,
          "mixed compute capabilities (%s): every kernel needs code for each "
          "(Strata's own are built for sm_75 to sm_90, PTX beyond)",
          seen);
  else if (first >= 0)
    check(r, CHECK_OK, "compute-capability", -1, "compute capability %s", seen);
}

static void run_checks(report_t *r) {
  int gpus = 0;
  for (int d = 0; d < r->ndev; d++) {
    if (!is_gpu(&r->info[d]))
      continue;
    gpus++;
    if (r->info[d].failed)
      check(r, CHECK_FAIL, "failed", d, "%s: failed", r->info[d].name);
    check_link(r, d);
    check_ecc(r, d);
    check_modes(r, d);
    check_memory(r, d);
  }
  if (!gpus)
    check(r, CHECK_WARN, "gpus", -1,
          "no GPU driven by a backend: work runs on the CPUs (strata-run "
          "simulates cards)");
  if (r->m && r->m->ngpus > (uint32_t)gpus)
    check(r, CHECK_WARN, "gpus", -1,
          "%" PRIu32 " NVIDIA GPU(s) on the PCI bus, %d driven: no driver, or "
          "no CUDA backend for them",
          r->m->ngpus, gpus);
  check_driver(r);
  check_capabilities(r);
}

/* {=== Gathering ===} */

static int gather(strata_runtime_t *rt, report_t *r) {
  r->m = strata_runtime_machine(rt);
  r->ndev = strata_device_count(rt);
  if (r->ndev > MAX_DEVICES)
    r->ndev = MAX_DEVICES;
  (void)strata_health_check(rt);
  for (int d = 0; d < r->ndev; d++) {
    r->info[d].struct_size = sizeof r->info[d];
    int rc = strata_device_info(rt, d, &r->info[d]);
    if (rc)
      return rc;
    r->health[d].struct_size = sizeof r->health[d];
    r->has_health[d] = strata_device_health(rt, d, &r->health[d]) == 0;
  }
  return STRATA_OK;
}

/* {=== Text ===} */

static void text_machine(const report_t *r) {
  const strata_machine_t *m = r->m;
  printf("machine: %" PRIu32 " package(s), %" PRIu32 " NUMA node(s), %" PRIu32
         " core(s), %" PRIu32 " PU(s)%s%s%s\n",
         m->npackages, m->nnuma, m->ncores, m->npus,
         m->cpu_model[0] ? ", " : "", m->cpu_model,
         m->is_this_system ? "" : " (from an XML description)");
  for (uint32_t n = 0; n < m->nnuma; n++)
    printf("  NUMA %" PRId32 ": %" PRIu32 " core(s), %.1f GiB\n",
           m->numa[n].os_index, m->numa[n].ncores,
           (double)m->numa[n].memory_bytes / (1024.0 * 1024 * 1024));
}

static void text_devices(const report_t *r) {
  printf("\ndevices:\n");
  for (int d = 0; d < r->ndev; d++) {
    const strata_device_info_t *i = &r->info[d];
    printf("  %2d  %-4s  %-36s %-9s %6.1f GiB  NUMA %s", d,
           strata_device_class_name(i->device_class), i->name, i->backend,
           (double)i->memory_bytes / (1024.0 * 1024 * 1024),
           i->numa_node >= 0 ? "" : "?");
    if (i->numa_node >= 0)
      printf("%" PRId32, i->numa_node);
    if (is_gpu(i))
      printf("  cc %" PRId32 ".%" PRId32 "  bus %s  PCIe gen %" PRIu32
             " x%" PRIu32 "  ECC %s",
             i->cc_major, i->cc_minor, i->pci_busid[0] ? i->pci_busid : "-",
             i->pcie_gen, i->pcie_width,
             i->ecc > 0    ? "on"
             : i->ecc == 0 ? "off"
                           : "?");
    printf("\n");
  }
}

static void text_pci(const report_t *r) {
  const strata_machine_t *m = r->m;
  if (!m->ngpus)
    return;
  printf("\nGPUs on the PCI bus (NUMA affinity):\n");
  for (uint32_t g = 0; g < m->ngpus; g++) {
    const strata_pci_gpu_info_t *p = &m->gpus[g];
    const char *by = "no backend";
    for (int d = 0; d < r->ndev; d++)
      if (!strcmp(r->info[d].pci_busid, p->busid))
        by = r->info[d].name;
    printf("  %-12s  %04x:%04x  NUMA %2" PRId32 "  %5.1f GB/s  %s\n", p->busid,
           p->vendor_id, p->device_id, p->numa_node, p->link_gbps, by);
  }
}

static void text_peers(strata_runtime_t *rt, const report_t *r) {
  int gpus = 0;
  for (int d = 0; d < r->ndev; d++)
    gpus += is_gpu(&r->info[d]);
  if (gpus < 2)
    return;
  printf("\npeers (direct copies from column to row, GB/s; - through host "
         "memory):\n      ");
  for (int s = 0; s < r->ndev; s++)
    if (is_gpu(&r->info[s]))
      printf("%6d", s);
  printf("\n");
  for (int d = 0; d < r->ndev; d++) {
    if (!is_gpu(&r->info[d]))
      continue;
    printf("  %2d  ", d);
    for (int s = 0; s < r->ndev; s++) {
      if (!is_gpu(&r->info[s]))
        continue;
      double bw = 0;
      if (s == d)
        printf("%6s", ".");
      else if (strata_device_peer(rt, d, s, &bw) == 1)
        printf("%6.0f", bw / 1e9);
      else
        printf("%6s", "-");
    }
    printf("\n");
  }
}

static void text_checks(const report_t *r) {
  int count[3] = {0, 0, 0};
  printf("\nchecks:\n");
  for (int c = 0; c < r->nchecks; c++) {
    const check_t *k = &r->checks[c];
    count[k->verdict]++;
    printf("  %-4s  %s\n", verdict_names[k->verdict], k->why);
  }
  printf("\n%d OK, %d WARN, %d FAIL\n", count[0], count[1], count[2]);
}

/* {=== JSON ===} */

static void json_machine(const strata_machine_t *m) {
  printf("\"machine\":{\"packages\":%" PRIu32 ",\"numa_nodes\":%" PRIu32
         ",\"cores\":%" PRIu32 ",\"pus\":%" PRIu32 ",\"cpu_model\":",
         m->npackages, m->nnuma, m->ncores, m->npus);
  json_put_string(stdout, m->cpu_model);
  printf(",\"from_xml\":%s,\"numa\":[", m->is_this_system ? "false" : "true");
  for (uint32_t n = 0; n < m->nnuma; n++)
    printf("%s{\"os_index\":%" PRId32 ",\"cores\":%" PRIu32
           ",\"memory_bytes\":%" PRIu64 "}",
           n ? "," : "", m->numa[n].os_index, m->numa[n].ncores,
           m->numa[n].memory_bytes);
  printf("],\"pci_gpus\":[");
  for (uint32_t g = 0; g < m->ngpus; g++) {
    printf("%s{\"busid\":", g ? "," : "");
    json_put_string(stdout, m->gpus[g].busid);
    printf(",\"device_id\":%u,\"numa_node\":%" PRId32 ",\"link_gbps\":%.1f}",
           m->gpus[g].device_id, m->gpus[g].numa_node, m->gpus[g].link_gbps);
  }
  printf("]}");
}

static void json_health(const strata_health_t *h) {
  printf(",\"health\":{\"temperature_c\":%.1f,\"power_w\":%.1f,"
         "\"utilisation\":%.2f,\"throttled\":%" PRId32
         ",\"memory_used_bytes\":%" PRId64 ",\"ecc_mode\":%" PRId32
         ",\"ecc_corrected\":%" PRId64 ",\"ecc_uncorrected\":%" PRId64
         ",\"pcie_gen\":%" PRId32 ",\"pcie_width\":%" PRId32
         ",\"persistence_mode\":%" PRId32 ",\"compute_mode\":%" PRId32
         ",\"driver_version\":",
         h->temperature_c, h->power_w, h->utilisation, h->throttled,
         h->memory_used_bytes, h->ecc_mode, h->ecc_corrected,
         h->ecc_uncorrected, h->pcie_gen, h->pcie_width, h->persistence_mode,
         h->compute_mode);
  json_put_string(stdout, h->driver_version);
  printf("}");
}

static void json_devices(strata_runtime_t *rt, const report_t *r) {
  printf(",\"devices\":[");
  for (int d = 0; d < r->ndev; d++) {
    const strata_device_info_t *i = &r->info[d];
    printf("%s{\"index\":%d,\"class\":", d ? "," : "", d);
    json_put_string(stdout, strata_device_class_name(i->device_class));
    printf(",\"name\":");
    json_put_string(stdout, i->name);
    printf(",\"model\":");
    json_put_string(stdout, i->model);
    printf(",\"backend\":");
    json_put_string(stdout, i->backend);
    printf(",\"uuid\":");
    json_put_string(stdout, i->uuid);
    printf(",\"pci_busid\":");
    json_put_string(stdout, i->pci_busid);
    printf(",\"memory_bytes\":%" PRIu64 ",\"numa_node\":%" PRId32
           ",\"cc\":\"%" PRId32 ".%" PRId32 "\",\"memory_bus_width\":%" PRIu32
           ",\"mem_bandwidth\":%.0f,\"fp64_flops\":%.0f,\"fp32_flops\":%.0f"
           ",\"ecc\":%" PRId32 ",\"pcie_gen\":%" PRIu32
           ",\"pcie_width\":%" PRIu32 ",\"failed\":%s,\"peers\":[",
           i->memory_bytes, i->numa_node, i->cc_major, i->cc_minor,
           i->memory_bus_width, i->mem_bandwidth, i->fp64_flops, i->fp32_flops,
           i->ecc, i->pcie_gen, i->pcie_width, i->failed ? "true" : "false");
    bool first = true;
    for (int s = 0; s < r->ndev; s++) {
      double bw = 0;
      if (s != d && strata_device_peer(rt, d, s, &bw) == 1) {
        printf("%s{\"from\":%d,\"bytes_per_s\":%.0f}", first ? "" : ",", s, bw);
        first = false;
      }
    }
    printf("]");
    if (health_of(r, d))
      json_health(&r->health[d]);
    printf("}");
  }
  printf("]");
}

static void json_checks(const report_t *r) {
  printf(",\"checks\":[");
  for (int c = 0; c < r->nchecks; c++) {
    const check_t *k = &r->checks[c];
    printf("%s{\"verdict\":\"%s\",\"check\":", c ? "," : "",
           verdict_names[k->verdict]);
    json_put_string(stdout, k->what);
    printf(",\"device\":%d,\"why\":", k->device);
    json_put_string(stdout, k->why);
    printf("}");
  }
  printf("]");
}

/* {=== main ===} */

static void usage(FILE *f) {
  fprintf(f, "usage: " PROG " [options]\n"
             "The machine as Strata sees it, and a checklist of its set-up.\n"
             "  -h, --help               show this help and exit\n"
             "  -V, --version            show the version and exit\n"
             "      --json               one JSON object instead of text\n"
             "      --topology FILE      take the machine from an hwloc XML "
             "file\n"
             "      --backends LIST      the backends to load (default: all "
             "found)\n"
             "      --backend-path DIRS  colon-separated backend directories\n"
             "                           (default: $STRATA_BACKEND_PATH, else "
             "the installed ones)\n"
             "Exit status: 0 no FAIL line, 1 a FAIL line, 2 bad usage, 3 the "
             "runtime could not start.\n");
}

static int parse(int argc, char **argv, options_t *o) {
  enum { OPT_JSON = 256, OPT_TOPOLOGY, OPT_BACKENDS, OPT_PATH };
  static const struct option longs[] = {
      {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},
      {"json", no_argument, NULL, OPT_JSON},
      {"topology", required_argument, NULL, OPT_TOPOLOGY},
      {"backends", required_argument, NULL, OPT_BACKENDS},
      {"backend-path", required_argument, NULL, OPT_PATH},
      {NULL, 0, NULL, 0}};
  *o = (options_t){0};
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "hV", longs, NULL)) != -1) {
    switch (c) {
    case 'h':
      usage(stdout);
      exit(0);
    case 'V':
      printf(PROG " %s\n", PACKAGE_VERSION);
      exit(0);
    case OPT_JSON:
      o->json = true;
      break;
    case OPT_TOPOLOGY:
      o->topology = optarg;
      break;
    case OPT_BACKENDS:
      o->backends = optarg;
      break;
    case OPT_PATH:
      o->backend_path = optarg;
      break;
    default:
      fprintf(stderr,
              PROG ": unknown option or missing value: '%s' (try "
                   "--help)\n",
              argv[optind - 1]);
      return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, PROG ": unexpected argument '%s' (try --help)\n",
            argv[optind]);
    return 2;
  }
  return 0;
}

static void log_stderr(void *ud, strata_log_level_t level,
                       const char *component, const char *msg) {
  (void)ud;
  if (level <= STRATA_LOG_WARN)
    fprintf(stderr, PROG ": %s: %s\n", component, msg);
}

int main(int argc, char **argv) {
  options_t o;
  if (parse(argc, argv, &o))
    return 2;
  strata_runtime_opts_t opts;
  strata_runtime_opts_init(&opts);
  opts.log = log_stderr;
  opts.log_level = STRATA_LOG_WARN;
  opts.cpu_workers = 1; /* nothing runs: one worker is plenty */
  opts.topology_xml = o.topology;
  opts.backends = o.backends;
  opts.required_backends = o.backends;
  const char *env = getenv("STRATA_BACKEND_PATH");
  opts.backend_path = o.backend_path ? o.backend_path
                      : env && *env  ? env
                                     : NULL;
  opts.policy = "";
  opts.health_period_ms = -1;
  strata_runtime_t *rt;
  int rc = strata_runtime_create(&opts, &rt);
  if (rc) {
    fprintf(stderr, PROG ": cannot start the runtime: %s\n",
            strata_strerror(rc));
    return 3;
  }
  static report_t r;
  if ((rc = gather(rt, &r))) {
    fprintf(stderr, PROG ": cannot read the devices: %s\n",
            strata_strerror(rc));
    strata_runtime_destroy(rt);
    return 3;
  }
  run_checks(&r);
  if (o.json) {
    printf("{\"version\":\"%s\",", PACKAGE_VERSION);
    json_machine(r.m);
    json_devices(rt, &r);
    json_checks(&r);
    printf("}\n");
  } else {
    printf(PROG " %s\n", PACKAGE_VERSION);
    text_machine(&r);
    text_devices(&r);
    text_pci(&r);
    text_peers(rt, &r);
    text_checks(&r);
  }
  bool failed = false;
  for (int c = 0; c < r.nchecks; c++)
    failed |= r.checks[c].verdict == CHECK_FAIL;
  if ((rc = strata_runtime_destroy(rt))) {
    fprintf(stderr, PROG ": %s\n", strata_strerror(rc));
    return 3;
  }
  return failed ? 1 : 0;
}
