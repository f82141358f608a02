/* SPDX-License-Identifier: MIT */
/* backends/cuda-common/nvml.c: NVML loaded at run time (see nvml.h).
 *
 * The types below are NVIDIA's public ones, reduced to what is read here:
 * handles are opaque, return codes ints (0 success, 3 NOT_SUPPORTED,
 * 15 GPU_IS_LOST). Versioned entry points are resolved by their versioned
 * names, newest first. nvmlPciInfo_t changed between _v2 and _v3, but the
 * numeric domain, bus and device fields stay at the same offsets (after a
 * 16-byte string): those are all that is read, from a buffer big enough
 * for either. */
#include <dlfcn.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "nvml.h"

typedef struct nvml_device *nvml_device_t; /* nvmlDevice_t */
typedef int nvml_return_t;                 /* nvmlReturn_t */

#define NVML_SUCCESS 0
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_GPU_IS_LOST 15
#define NVML_TEMPERATURE_GPU 0
#define NVML_MEMORY_ERROR_CORRECTED 0
#define NVML_MEMORY_ERROR_UNCORRECTED 1
#define NVML_VOLATILE_ECC 0
/* Clock-event reasons that are not throttling: the card is idle, or runs
 * at the clocks its application (or display) asked for. */
#define NVML_REASONS_BENIGN (0x1ull | 0x2ull | 0x100ull)

typedef struct nvml_pci_head {
  char bus_id_legacy[16];
  unsigned domain, bus, device;
  unsigned char rest[128]; /* the rest of _v2 or _v3 */
} nvml_pci_head_t;

typedef struct nvml_utilization {
  unsigned gpu, memory;
} nvml_utilization_t;

typedef struct nvml_memory {
  unsigned long long total, free, used;
} nvml_memory_t;

/* The entry points used, resolved at open. Optional ones may be NULL
 * (older drivers): their readings stay unknown. */
typedef struct nvml_api {
  nvml_return_t (*init)(void);
  nvml_return_t (*shutdown)(void);
  const char *(*error_string)(nvml_return_t);
  nvml_return_t (*count)(unsigned *);
  nvml_return_t (*by_index)(unsigned, nvml_device_t *);
  nvml_return_t (*pci_info)(nvml_device_t, nvml_pci_head_t *);
  nvml_return_t (*temperature)(nvml_device_t, int, unsigned *);
  nvml_return_t (*power)(nvml_device_t, unsigned *);
  nvml_return_t (*utilization)(nvml_device_t, nvml_utilization_t *);
  nvml_return_t (*memory)(nvml_device_t, nvml_memory_t *);
  nvml_return_t (*ecc_mode)(nvml_device_t, int *, int *);
  nvml_return_t (*ecc_errors)(nvml_device_t, int, int, unsigned long long *);
  nvml_return_t (*reasons)(nvml_device_t, unsigned long long *);
  nvml_return_t (*pcie_gen)(nvml_device_t, unsigned *);
  nvml_return_t (*pcie_width)(nvml_device_t, unsigned *);
  nvml_return_t (*max_pcie_gen)(nvml_device_t, unsigned *);
  nvml_return_t (*max_pcie_width)(nvml_device_t, unsigned *);
  nvml_return_t (*persistence)(nvml_device_t, int *);
  nvml_return_t (*compute_mode)(nvml_device_t, int *);
  nvml_return_t (*driver_version)(char *, unsigned);
} nvml_api_t;

typedef struct nvml_card {
  nvml_device_t handle;
  unsigned domain, bus, device;
} nvml_card_t;

struct scuda_nvml {
  const strata_core_services_t *core; /* its allocator */
  void *lib;                          /* dlopen handle */
  nvml_api_t api;
  char driver[32];
  nvml_card_t *cards;
  unsigned ncards, cards_cap;
};

/* The first of `names` (NULL-terminated) the library exports. */
static void *resolve(void *lib, const char *const *names) {
  for (; *names; names++) {
    void *sym = dlsym(lib, *names);
    if (sym)
      return sym;
  }
  return NULL;
}

#define RESOLVE(lib, field, ...)                                               \
  do {                                                                         \
    static const char *const names_[] = {__VA_ARGS__, NULL};                   \
    void *sym_ = resolve((lib), names_);                                       \
    memcpy(&(field), &sym_, sizeof sym_); /* data to function pointer */       \
  } while (0)

static void resolve_api(void *lib, nvml_api_t *a) {
  RESOLVE(lib, a->init, "nvmlInit_v2");
  RESOLVE(lib, a->shutdown, "nvmlShutdown");
  RESOLVE(lib, a->error_string, "nvmlErrorString");
  RESOLVE(lib, a->count, "nvmlDeviceGetCount_v2");
  RESOLVE(lib, a->by_index, "nvmlDeviceGetHandleByIndex_v2");
  RESOLVE(lib, a->pci_info, "nvmlDeviceGetPciInfo_v3",
          "nvmlDeviceGetPciInfo_v2");
  RESOLVE(lib, a->temperature, "nvmlDeviceGetTemperature");
  RESOLVE(lib, a->power, "nvmlDeviceGetPowerUsage");
  RESOLVE(lib, a->utilization, "nvmlDeviceGetUtilizationRates");
  RESOLVE(lib, a->memory, "nvmlDeviceGetMemoryInfo");
  RESOLVE(lib, a->ecc_mode, "nvmlDeviceGetEccMode");
  RESOLVE(lib, a->ecc_errors, "nvmlDeviceGetTotalEccErrors");
  RESOLVE(lib, a->reasons, "nvmlDeviceGetCurrentClocksEventReasons",
          "nvmlDeviceGetCurrentClocksThrottleReasons");
  RESOLVE(lib, a->pcie_gen, "nvmlDeviceGetCurrPcieLinkGeneration");
  RESOLVE(lib, a->pcie_width, "nvmlDeviceGetCurrPcieLinkWidth");
  RESOLVE(lib, a->max_pcie_gen, "nvmlDeviceGetMaxPcieLinkGeneration");
  RESOLVE(lib, a->max_pcie_width, "nvmlDeviceGetMaxPcieLinkWidth");
  RESOLVE(lib, a->persistence, "nvmlDeviceGetPersistenceMode");
  RESOLVE(lib, a->compute_mode, "nvmlDeviceGetComputeMode");
  RESOLVE(lib, a->driver_version, "nvmlSystemGetDriverVersion");
}

static const char *nvml_error(const scuda_nvml_t *n, nvml_return_t r) {
  const char *s = n->api.error_string ? n->api.error_string(r) : NULL;
  return s ? s : "unknown NVML error";
}

/* Parse "DDDD:BB:DD.F" or "DDDDDDDD:BB:DD.F" (hex, either case). */
static int parse_busid(const char *s, unsigned *domain, unsigned *bus,
                       unsigned *device) {
  unsigned fn;
  char tail;
  if (!s || sscanf(s, "%x:%x:%x.%x%c", domain, bus, device, &fn, &tail) != 4)
    return STRATA_EINVAL;
  return STRATA_OK;
}

/* Memory from the embedder's allocator, through the core. */
static void *zalloc(const strata_core_services_t *core, size_t size) {
  void *p = core->alloc(core->core, NULL, 0, size);
  if (p)
    memset(p, 0, size);
  return p;
}

static void give_back(const strata_core_services_t *core, void *p,
                      size_t size) {
  if (p)
    core->alloc(core->core, p, size, 0);
}

static void nvml_free(scuda_nvml_t *n) {
  const strata_core_services_t *core = n->core;
  give_back(core, n->cards, n->cards_cap * sizeof *n->cards);
  give_back(core, n, sizeof *n);
}

/* Enumerate the cards and their bus ids. */
static int list_cards(scuda_nvml_t *n, const strata_core_services_t *core) {
  unsigned count = 0;
  nvml_return_t r = n->api.count(&count);
  if (r != NVML_SUCCESS) {
    core->log(core->core, STRATA_LOG_INFO, "NVML: nvmlDeviceGetCount: %s",
              nvml_error(n, r));
    return STRATA_ENOTSUP;
  }
  n->cards_cap = count ? count : 1;
  n->cards = zalloc(core, n->cards_cap * sizeof *n->cards);
  if (!n->cards) {
    n->cards_cap = 0;
    return STRATA_ENOMEM;
  }
  for (unsigned i = 0; i < count; i++) {
    nvml_card_t *c = &n->cards[n->ncards];
    nvml_pci_head_t pci;
    memset(&pci, 0, sizeof pci);
    if (n->api.by_index(i, &c->handle) != NVML_SUCCESS ||
        n->api.pci_info(c->handle, &pci) != NVML_SUCCESS)
      continue; /* a card NVML cannot reach has no health */
    c->domain = pci.domain;
    c->bus = pci.bus;
    c->device = pci.device;
    n->ncards++;
  }
  return STRATA_OK;
}

static bool api_complete(const nvml_api_t *a) {
  return a->init && a->shutdown && a->count && a->by_index && a->pci_info;
}

int scuda_nvml_open_named(const strata_core_services_t *core,
                          const char *soname, scuda_nvml_t **out) {
  *out = NULL;
  scuda_nvml_t *n = zalloc(core, sizeof *n);
  if (!n)
    return STRATA_ENOMEM;
  n->core = core;
  /* dlopen by the exact soname, never the unversioned development link:
   * the dynamic linker's own search (a library already loaded under that
   * soname, LD_LIBRARY_PATH, its cache) is where the driver puts it. */
  n->lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (!n->lib) {
    core->log(core->core, STRATA_LOG_INFO,
              "NVML: %s not loaded: device health unknown", soname);
    nvml_free(n);
    return STRATA_ENOTSUP;
  }
  resolve_api(n->lib, &n->api);
  int rc = STRATA_ENOTSUP;
  nvml_return_t r = api_complete(&n->api) ? n->api.init() : -1;
  if (r != NVML_SUCCESS) {
    core->log(core->core, STRATA_LOG_INFO,
              "NVML: %s: %s: device health unknown", soname,
              r == -1 ? "entry points missing" : nvml_error(n, r));
    goto fail;
  }
  rc = list_cards(n, core);
  if (rc != STRATA_OK) {
    n->api.shutdown();
    goto fail;
  }
  if (!n->api.driver_version ||
      n->api.driver_version(n->driver, sizeof n->driver) != NVML_SUCCESS)
    n->driver[0] = '\0';
  *out = n;
  return STRATA_OK;
fail:
  dlclose(n->lib);
  nvml_free(n);
  return rc;
}

int scuda_nvml_open(const strata_core_services_t *core, scuda_nvml_t **out) {
  return scuda_nvml_open_named(core, "libnvidia-ml.so.1", out);
}

int scuda_nvml_find(const scuda_nvml_t *n, const char *busid, unsigned *index) {
  unsigned domain, bus, device;
  if (!n || parse_busid(busid, &domain, &bus, &device) != STRATA_OK)
    return STRATA_EINVAL;
  for (unsigned i = 0; i < n->ncards; i++) {
    const nvml_card_t *c = &n->cards[i];
    if (c->domain == domain && c->bus == bus && c->device == device) {
      *index = i;
      return STRATA_OK;
    }
  }
  return STRATA_ENOENT;
}

/* Whether `field` of *h lies within the caller's struct_size. */
#define HAS(h, field)                                                          \
  ((h)->struct_size >=                                                         \
   offsetof(strata_health_t, field) + sizeof(((strata_health_t *)0)->field))

/* One reading: `call` is made only when the entry point exists and the
 * field is within the caller's struct; lost records GPU_IS_LOST. */
#define READ(h, field, fn, lost, ...)                                          \
  (HAS(h, field) && (fn) ? read_status((fn)(__VA_ARGS__), (lost)) : false)

static bool read_status(nvml_return_t r, bool *lost) {
  if (r == NVML_ERROR_GPU_IS_LOST)
    *lost = true;
  return r == NVML_SUCCESS;
}

static void read_ecc(const scuda_nvml_t *n, nvml_device_t d, strata_health_t *h,
                     bool *lost) {
  const nvml_api_t *a = &n->api;
  int current = 0, pending = 0;
  /* NOT_SUPPORTED (consumer cards): ECC absent, the fields stay -1. */
  if (!READ(h, ecc_mode, a->ecc_mode, lost, d, &current, &pending))
    return;
  h->ecc_mode = current != 0;
  if (!current)
    return;
  unsigned long long count;
  if (READ(h, ecc_corrected, a->ecc_errors, lost, d,
           NVML_MEMORY_ERROR_CORRECTED, NVML_VOLATILE_ECC, &count))
    h->ecc_corrected = (int64_t)count;
  if (READ(h, ecc_uncorrected, a->ecc_errors, lost, d,
           NVML_MEMORY_ERROR_UNCORRECTED, NVML_VOLATILE_ECC, &count))
    h->ecc_uncorrected = (int64_t)count;
}

static void read_clocks(const scuda_nvml_t *n, nvml_device_t d,
                        strata_health_t *h, bool *lost) {
  unsigned long long reasons;
  if (READ(h, throttle_reasons, n->api.reasons, lost, d, &reasons)) {
    h->throttle_reasons = reasons;
    h->throttled = (reasons & ~NVML_REASONS_BENIGN) != 0;
  }
}

static void read_link(const scuda_nvml_t *n, nvml_device_t d,
                      strata_health_t *h, bool *lost) {
  unsigned v;
  if (READ(h, pcie_gen, n->api.pcie_gen, lost, d, &v))
    h->pcie_gen = (int32_t)v;
  if (READ(h, pcie_width, n->api.pcie_width, lost, d, &v))
    h->pcie_width = (int32_t)v;
}

static void read_modes(const scuda_nvml_t *n, nvml_device_t d,
                       strata_health_t *h, bool *lost) {
  int mode;
  if (READ(h, persistence_mode, n->api.persistence, lost, d, &mode))
    h->persistence_mode = mode != 0;
  if (READ(h, compute_mode, n->api.compute_mode, lost, d, &mode))
    h->compute_mode = mode;
  if (HAS(h, driver_version) && n->driver[0])
    snprintf(h->driver_version, sizeof h->driver_version, "%s", n->driver);
}

static void read_load(const scuda_nvml_t *n, nvml_device_t d,
                      strata_health_t *h, bool *lost) {
  const nvml_api_t *a = &n->api;
  unsigned v;
  if (READ(h, temperature_c, a->temperature, lost, d, NVML_TEMPERATURE_GPU, &v))
    h->temperature_c = v;
  if (READ(h, power_w, a->power, lost, d, &v))
    h->power_w = v / 1000.0; /* milliwatts */
  nvml_utilization_t u;
  if (READ(h, utilisation, a->utilization, lost, d, &u))
    h->utilisation = u.gpu / 100.0;
  nvml_memory_t m;
  if (READ(h, memory_used_bytes, a->memory, lost, d, &m))
    h->memory_used_bytes = (int64_t)m.used;
}

int scuda_nvml_health(const scuda_nvml_t *n, unsigned index,
                      strata_health_t *out) {
  if (!n || !out)
    return STRATA_EINVAL;
  if (index >= n->ncards)
    return STRATA_ERANGE;
  nvml_device_t d = n->cards[index].handle;
  bool lost = false;
  read_load(n, d, out, &lost);
  read_clocks(n, d, out, &lost);
  read_ecc(n, d, out, &lost);
  read_link(n, d, out, &lost);
  read_modes(n, d, out, &lost);
  return lost ? STRATA_EDEVICE : STRATA_OK;
}

int scuda_nvml_max_link(const scuda_nvml_t *n, unsigned index, uint32_t *gen,
                        uint32_t *width) {
  if (!n || index >= n->ncards)
    return STRATA_ERANGE;
  const nvml_api_t *a = &n->api;
  nvml_device_t d = n->cards[index].handle;
  unsigned g, w;
  if (!a->max_pcie_gen || !a->max_pcie_width ||
      a->max_pcie_gen(d, &g) != NVML_SUCCESS ||
      a->max_pcie_width(d, &w) != NVML_SUCCESS)
    return STRATA_ENOTSUP;
  *gen = g;
  *width = w;
  return STRATA_OK;
}

void scuda_nvml_close(scuda_nvml_t *n) {
  if (!n)
    return;
  n->api.shutdown();
  dlclose(n->lib);
  nvml_free(n);
}
