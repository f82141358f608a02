/* SPDX-License-Identifier: MIT */
/* backends/cuda-common/discover.c: which GPUs a CUDA plugin drives, and what
 * it tells the core about each. A card is HBM when its memory bus is at
 * least 1024 bits wide (HBM stacks are 1024 bits each; GDDR cards top out
 * at 512), else GDDR; the "class" option overrides that per card, so that
 * either plugin can be tried on any card, and both on one. */
#include "scuda.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optlist.h"

#define HBM_MIN_BUS_BITS 1024

static const strata__optfmt_t CLASS_MAP = {
    .option = "option class", .kind = STRATA__OPT_MAP, .sep = '+'};

/* {=== Options ===} */

static int read_count(scuda_backend_t *b, const char *key, unsigned dflt,
                      unsigned max, unsigned *out) {
  char buf[32], *end;
  int rc = b->core->option(b->core->core, key, buf, sizeof buf);
  if (rc == STRATA_ENOENT) {
    *out = dflt;
    return STRATA_OK;
  }
  long n = rc ? 0 : strtol(buf, &end, 10);
  if (rc || *end || n < 1 || n > (long)max) {
    scuda_log(b, STRATA_LOG_ERROR,
              "option %s=%s: expected a count from 1 to %u", key,
              rc ? "(too long)" : buf, max);
    return STRATA_EINVAL;
  }
  *out = (unsigned)n;
  return STRATA_OK;
}

/* The "class" option: "ID=hbm+ID=gddr", ID a CUDA ordinal, a UUID
 * ("GPU-...") or a PCI bus id. Checked whole before any card is looked at.
 * @return 0; STRATA_EINVAL (logged) */
static int check_class_option(scuda_backend_t *b, const char *text) {
  char err[256], q[64];
  if (strata__opt_check(&CLASS_MAP, strata__opt_span(text), err, sizeof err)) {
    scuda_log(b, STRATA_LOG_ERROR, "%s", err);
    return STRATA_EINVAL;
  }
  strata__optitem_t it;
  for (size_t c = 0;
       strata__opt_next(&CLASS_MAP, strata__opt_span(text), &c, &it);)
    if (!strata__opt_is(it.value, "hbm") && !strata__opt_is(it.value, "gddr")) {
      scuda_log(b, STRATA_LOG_ERROR,
                "option class: position %zu: %s is not a class (hbm or gddr)",
                it.value.pos, strata__opt_quote(it.value, q, sizeof q));
      return STRATA_EINVAL;
    }
  return STRATA_OK;
}

static bool span_is_nocase(strata__optspan_t s, const char *word) {
  if (s.len != strlen(word))
    return false;
  for (size_t i = 0; i < s.len; i++)
    if (tolower((unsigned char)s.s[i]) != tolower((unsigned char)word[i]))
      return false;
  return true;
}

/* The class the option gives card `ordinal` (uuid, busid), if any.
 * @return true when one does (*klass set) */
static bool class_forced(const char *text, int ordinal, const char *uuid,
                         const char *busid, strata_device_class_t *klass) {
  char num[16];
  snprintf(num, sizeof num, "%d", ordinal);
  strata__optitem_t it;
  for (size_t c = 0;
       strata__opt_next(&CLASS_MAP, strata__opt_span(text), &c, &it);)
    if (strata__opt_is(it.key, num) || span_is_nocase(it.key, uuid) ||
        span_is_nocase(it.key, busid)) {
      *klass = strata__opt_is(it.value, "hbm") ? STRATA_CLASS_HBM
                                               : STRATA_CLASS_GDDR;
      return true;
    }
  return false;
}

/* {=== Facts ===} */

/* Peak rates of cards whose figures are published (flop/s); others are
 * estimated from their SMs and clock. */
static const struct {
  const char *name; /* a substring of the CUDA device name */
  double fp64, fp32;
} KNOWN_CARDS[] = {
    {"H200", 34e12, 67e12},         {"H100 PCIe", 25.6e12, 51.2e12},
    {"H100", 34e12, 67e12},         {"A100", 9.7e12, 19.5e12},
    {"RTX 4090", 1.29e12, 82.6e12}, {"RTX 3090", 0.556e12, 35.6e12},
    {"2080 Ti", 0.42e12, 13.4e12},  {"L40S", 1.43e12, 91.6e12},
};

/* FP32 and FP64 lanes per SM by compute capability (CUDA C Programming
 * Guide, arithmetic instruction throughput). */
static void lanes_per_sm(int major, int minor, int *fp32, int *fp64) {
  *fp32 = major >= 8 && !(major == 8 && minor == 0) ? 128 : 64;
  *fp64 = (major == 8 && minor == 0)    ? 32
          : (major == 9 || major == 10) ? 64
                                        : 2;
}

static int attr(int ordinal, enum cudaDeviceAttr a) {
  int v = 0;
  if (cudaDeviceGetAttribute(&v, a, ordinal) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return v;
}

static void rates(strata_backend_device_t *f, int ordinal) {
  for (size_t i = 0; i < sizeof KNOWN_CARDS / sizeof *KNOWN_CARDS; i++)
    if (strstr(f->name, KNOWN_CARDS[i].name)) {
      f->fp64_flops = KNOWN_CARDS[i].fp64;
      f->fp32_flops = KNOWN_CARDS[i].fp32;
      break;
    }
  int fp32, fp64;
  lanes_per_sm(f->cc_major, f->cc_minor, &fp32, &fp64);
  double sm_hz = (double)attr(ordinal, cudaDevAttrMultiProcessorCount) *
                 attr(ordinal, cudaDevAttrClockRate) * 1e3;
  if (f->fp32_flops == 0) { /* one fused multiply-add: two flops */
    f->fp32_flops = sm_hz * fp32 * 2;
    f->fp64_flops = sm_hz * fp64 * 2;
  }
  /* Double data rate over the whole bus. */
  f->mem_bandwidth = (double)attr(ordinal, cudaDevAttrMemoryClockRate) * 1e3 *
                     2 * f->memory_bus_width / 8;
}

/* Bytes/s per lane of each PCIe generation, after line coding. */
static double pcie_lane_bps(uint32_t gen) {
  static const double GBPS[] = {0,     0.25,  0.5,   0.985,
                                1.969, 3.938, 7.563, 15.125};
  return gen < sizeof GBPS / sizeof *GBPS ? GBPS[gen] * 1e9 : 0;
}

static void lowercase(char *s) {
  for (; *s; s++)
    *s = (char)tolower((unsigned char)*s);
}

static void format_uuid(const cudaUUID_t *u, char *out, size_t len) {
  const unsigned char *x = (const unsigned char *)u->bytes;
  snprintf(
      out, len,
      "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x"
      "%02x",
      x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7], x[8], x[9], x[10], x[11],
      x[12], x[13], x[14], x[15]);
}

/* Where the machine map (hwloc) has this card: its NUMA node and link. */
static const strata_pci_gpu_info_t *on_bus(const strata_machine_t *m,
                                           const char *busid) {
  for (uint32_t i = 0; i < m->ngpus; i++)
    if (!strcmp(m->gpus[i].busid, busid))
      return &m->gpus[i];
  return NULL;
}

static void link_facts(scuda_backend_t *b, scuda_device_t *d,
                       strata_backend_device_t *f, const char *busid) {
  const strata_pci_gpu_info_t *g = on_bus(b->machine, busid);
  f->numa_node = g ? g->numa_node : -1;
  unsigned idx;
  if (b->nvml && scuda_nvml_find(b->nvml, busid, &idx) == STRATA_OK) {
    d->nvml = (int)idx;
    uint32_t gen, width;
    if (scuda_nvml_max_link(b->nvml, idx, &gen, &width) == STRATA_OK &&
        gen >= 1 && gen <= 7) {
      f->pcie_gen = gen;
      f->pcie_width = width;
    }
  }
  if (g && g->link_gbps > 0)
    f->link_bandwidth = g->link_gbps * 1e9;
  else if (f->pcie_gen)
    f->link_bandwidth = pcie_lane_bps(f->pcie_gen) * f->pcie_width;
  f->link_latency = 10e-6;
}

/* Copy src into dst[len], cut to fit (CUDA's strings are longer than the
 * ABI's fields can be; what they hold fits). */
static void copy_text(char *dst, size_t len, const char *src) {
  size_t n = 0;
  while (n + 1 < len && src[n])
    n++;
  memcpy(dst, src, n);
  dst[n] = '\0';
}

/* Cards this one can copy from directly, machine-wide (the other plugin's
 * too: the core keeps only pairs where both ends list each other). A card
 * claimed through the override has no bus id of its own, so no peers. */
static void peer_facts(scuda_backend_t *b, scuda_device_t *d,
                       strata_backend_device_t *f, int ncuda) {
  if (d->forced)
    return;
  for (int o = 0; o < ncuda && f->npeers < SCUDA_DEVICES_MAX; o++) {
    int there = 0, back = 0;
    char busid[32];
    if (o == d->ordinal || cudaDeviceCanAccessPeer(&there, d->ordinal, o) ||
        cudaDeviceCanAccessPeer(&back, o, d->ordinal) || !there || !back ||
        cudaDeviceGetPCIBusId(busid, sizeof busid, o)) {
      (void)cudaGetLastError();
      continue;
    }
    lowercase(busid);
    strata_backend_peer_t *p = &d->peers[f->npeers++];
    copy_text(p->busid, sizeof p->busid, busid);
    /* Unknown: the core takes the slower host link of the two, which is
     * right over PCIe; NVLink, faster, is not told apart yet. */
    p->bandwidth = 0;
  }
  f->peers = f->npeers ? d->peers : NULL;
}

static void describe(scuda_backend_t *b, scuda_device_t *d,
                     const struct cudaDeviceProp *p, const char *uuid,
                     const char *busid, int ncuda) {
  strata_backend_device_t *f = &b->facts[d->index];
  f->struct_size = sizeof *f;
  f->device_class = b->klass;
  snprintf(f->name, sizeof f->name, "%.48s (cuda %d)", p->name, d->ordinal);
  copy_text(f->model, sizeof f->model, p->name);
  copy_text(f->uuid, sizeof f->uuid, uuid);
  /* Two devices over one card (the override) would share a bus id. */
  if (!d->forced)
    copy_text(f->pci_busid, sizeof f->pci_busid, busid);
  f->memory_bytes = p->totalGlobalMem;
  f->nworkers = b->nworkers;
  f->own_memory = 1;
  f->memory_kinds = STRATA_MEMORY_DEVICE;
  if (attr(d->ordinal, cudaDevAttrManagedMemory) &&
      attr(d->ordinal, cudaDevAttrConcurrentManagedAccess))
    f->memory_kinds |= STRATA_MEMORY_MANAGED;
  /* The core's block cache (memory.c), or CUDA's stream-ordered pool
   * where asked for and the card has one. */
  d->stream_pool =
      b->stream_pool && attr(d->ordinal, cudaDevAttrMemoryPoolsSupported);
  f->memory_pool = d->stream_pool;
  f->ecc = attr(d->ordinal, cudaDevAttrEccEnabled) ? 1 : 0;
  f->cc_major = p->major;
  f->cc_minor = p->minor;
  f->memory_bus_width =
      (uint32_t)attr(d->ordinal, cudaDevAttrGlobalMemoryBusWidth);
  f->candidate_impl = f->run_impl = STRATA_IMPL_CUDA;
  f->inflight_depth = b->nworkers * b->depth;
  rates(f, d->ordinal);
  link_facts(b, d, f, busid);
  peer_facts(b, d, f, ncuda);
}

/* {=== Enumeration ===} */

static int claim(scuda_backend_t *b, const char *classes, int ordinal,
                 int ncuda) {
  struct cudaDeviceProp p;
  char busid[32], uuid[64];
  cudaError_t e = cudaGetDeviceProperties(&p, ordinal);
  if (e == cudaSuccess)
    e = cudaDeviceGetPCIBusId(busid, sizeof busid, ordinal);
  if (e != cudaSuccess) {
    scuda_status(b, e, "reading a CUDA device's properties");
    return STRATA_OK; /* that card is skipped, the others still serve */
  }
  lowercase(busid);
  format_uuid(&p.uuid, uuid, sizeof uuid);
  strata_device_class_t natural =
      attr(ordinal, cudaDevAttrGlobalMemoryBusWidth) >= HBM_MIN_BUS_BITS
          ? STRATA_CLASS_HBM
          : STRATA_CLASS_GDDR;
  strata_device_class_t klass = natural;
  bool forced = class_forced(classes, ordinal, uuid, busid, &klass);
  if (klass != b->klass)
    return STRATA_OK;
  if (b->ndevs == SCUDA_DEVICES_MAX) {
    scuda_log(b, STRATA_LOG_WARN, "more than %d cards: cuda %d is left out",
              SCUDA_DEVICES_MAX, ordinal);
    return STRATA_OK;
  }
  scuda_device_t *d = &b->devs[b->ndevs];
  *d = (scuda_device_t){.b = b,
                        .ordinal = ordinal,
                        .index = (unsigned)b->ndevs,
                        .forced = forced && klass != natural,
                        .nvml = -1};
  atomic_init(&d->failed, false);
  b->ndevs++;
  describe(b, d, &p, uuid, busid, ncuda);
  return STRATA_OK;
}

/* The "pool" option: "core" (the core's block cache in front of
 * cudaMalloc, the default) or "stream" (CUDA's stream-ordered pool).
 * @return 0; STRATA_EINVAL (logged) */
static int read_pool(scuda_backend_t *b) {
  char buf[16];
  int rc = b->core->option(b->core->core, "pool", buf, sizeof buf);
  b->stream_pool = false;
  if (rc == STRATA_ENOENT || (rc == STRATA_OK && !strcmp(buf, "core")))
    return STRATA_OK;
  if (rc == STRATA_OK && !strcmp(buf, "stream")) {
    b->stream_pool = true;
    return STRATA_OK;
  }
  scuda_log(b, STRATA_LOG_ERROR, "option pool=%s: expected core or stream",
            rc ? "(too long)" : buf);
  return STRATA_EINVAL;
}

int scuda_discover(scuda_backend_t *b) {
  char classes[512] = "";
  int rc = b->core->option(b->core->core, "class", classes, sizeof classes);
  if (rc == STRATA_ERANGE) {
    scuda_log(b, STRATA_LOG_ERROR, "option class: longer than %zu bytes",
              sizeof classes - 1);
    return STRATA_EINVAL;
  }
  if ((rc = check_class_option(b, classes)) ||
      (rc = read_count(b, "workers", SCUDA_WORKERS_DEFAULT, SCUDA_WORKERS_MAX,
                       &b->nworkers)) ||
      (rc = read_count(b, "depth", SCUDA_DEPTH_DEFAULT, SCUDA_DEPTH_MAX,
                       &b->depth)) ||
      (rc = read_pool(b)))
    return rc;
  int ncuda = 0;
  cudaError_t e = cudaGetDeviceCount(&ncuda);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    scuda_log(b, STRATA_LOG_INFO, "no CUDA device: cudaGetDeviceCount: %s (%s)",
              cudaGetErrorName(e), cudaGetErrorString(e));
    return STRATA_OK;
  }
  (void)scuda_nvml_open(b->core, &b->nvml);
  for (int o = 0; o < ncuda; o++)
    if ((rc = claim(b, classes, o, ncuda)))
      return rc;
  if (!b->ndevs)
    scuda_log(b, STRATA_LOG_INFO, "none of the %d CUDA device(s) is %s", ncuda,
              b->klass == STRATA_CLASS_HBM ? "HBM" : "GDDR");
  return STRATA_OK;
}
