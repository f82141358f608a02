/* SPDX-License-Identifier: MIT */
/* tests/fakecuda/fakenvml.c: a fake NVML for the tests, built as
 * libnvidia-ml.so.1 (the driver library's soname), answering for the
 * cards of FAKECUDA_DEVICES as the fake CUDA runtime makes them (card i
 * at PCI bus 0000:(0x10 + i):00.0, or as FAKECUDA_BUSES says). What a real
 * driver says of such cards is what it says: the server card has ECC on,
 * persistence mode and an exclusive-process compute mode, and runs its link at
 * full speed; the consumer card answers NOT_SUPPORTED for ECC, is held down by
 * a thermal slowdown, and runs its link at gen 3 of 4. NVML lists the cards in
 * the reverse of CUDA's order, so that matching by ordinal shows as wrong
 * answers. Memory in use is the fake CUDA runtime's count, when it is
 * loaded.
 *
 * Controls for the tests: fakenvml_inject (a card lost to NVML, ECC
 * errors), FAKENVML_DRIVER (the driver version it reports). Without
 * FAKECUDA_DEVICES (no driver), nvmlInit_v2 answers DRIVER_NOT_LOADED. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakecuda.h"

#define PUBLIC __attribute__((visibility("default")))
#define MAX_CARDS 8

enum {
  NVML_SUCCESS = 0,
  NVML_ERROR_UNINITIALIZED = 1,
  NVML_ERROR_INVALID_ARGUMENT = 2,
  NVML_ERROR_NOT_SUPPORTED = 3,
  NVML_ERROR_DRIVER_NOT_LOADED = 9,
  NVML_ERROR_INSUFFICIENT_SIZE = 7,
  NVML_ERROR_GPU_IS_LOST = 15,
};

typedef struct card {
  int cuda;        /* the fake CUDA runtime's ordinal */
  unsigned bus;    /* its PCI bus, as the fake CUDA runtime has it */
  int server;      /* h100: 1; rtx4090: 0 */
  atomic_int lost; /* fakenvml_inject "lost" */
  atomic_llong ecc_corrected, ecc_uncorrected;
} card_t;

typedef card_t *nvmlDevice_t;

typedef struct pci_info_v3 {
  char bus_id_legacy[16];
  unsigned domain, bus, device, pci_device_id, pci_subsystem_id;
  char bus_id[32];
} pci_info_v3_t;

typedef struct utilization {
  unsigned gpu, memory;
} utilization_t;

typedef struct memory_info {
  unsigned long long total, free, used;
} memory_info_t;

/* The entry points, as NVIDIA's header declares them (with the types
 * reduced as above). */
PUBLIC int nvmlInit_v2(void);
PUBLIC int nvmlShutdown(void);
PUBLIC const char *nvmlErrorString(int r);
PUBLIC int nvmlDeviceGetCount_v2(unsigned *count);
PUBLIC int nvmlDeviceGetHandleByIndex_v2(unsigned i, nvmlDevice_t *out);
PUBLIC int nvmlDeviceGetPciInfo_v3(nvmlDevice_t d, pci_info_v3_t *pci);
PUBLIC int nvmlDeviceGetTemperature(nvmlDevice_t d, int sensor, unsigned *t);
PUBLIC int nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned *mw);
PUBLIC int nvmlDeviceGetUtilizationRates(nvmlDevice_t d, utilization_t *u);
PUBLIC int nvmlDeviceGetMemoryInfo(nvmlDevice_t d, memory_info_t *m);
PUBLIC int nvmlDeviceGetEccMode(nvmlDevice_t d, int *current, int *pending);
PUBLIC int nvmlDeviceGetTotalEccErrors(nvmlDevice_t d, int type, int counter,
                                       unsigned long long *count);
PUBLIC int nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t d,
                                                  unsigned long long *reasons);
PUBLIC int nvmlDeviceGetCurrPcieLinkGeneration(nvmlDevice_t d, unsigned *gen);
PUBLIC int nvmlDeviceGetCurrPcieLinkWidth(nvmlDevice_t d, unsigned *width);
PUBLIC int nvmlDeviceGetMaxPcieLinkGeneration(nvmlDevice_t d, unsigned *gen);
PUBLIC int nvmlDeviceGetMaxPcieLinkWidth(nvmlDevice_t d, unsigned *width);
PUBLIC int nvmlDeviceGetPersistenceMode(nvmlDevice_t d, int *mode);
PUBLIC int nvmlDeviceGetComputeMode(nvmlDevice_t d, int *mode);
PUBLIC int nvmlSystemGetDriverVersion(char *buf, unsigned len);
PUBLIC int fakenvml_inject(int ordinal, const char *what, long value);

static struct {
  atomic_int inits; /* nvmlInit_v2 minus nvmlShutdown */
  card_t cards[MAX_CARDS];
  int ncards;
} G;

/* Read FAKECUDA_DEVICES as the fake CUDA runtime does. @return whether
 * there is a driver */
static int read_cards(void) {
  const char *s = getenv("FAKECUDA_DEVICES");
  if (!s || !*s || !strcmp(s, "none"))
    return 0;
  char buf[256];
  snprintf(buf, sizeof buf, "%s", s);
  int n = 0;
  for (char *save, *tok = strtok_r(buf, ",", &save); tok && n < MAX_CARDS;
       tok = strtok_r(NULL, ",", &save), n++)
    G.cards[n] = (card_t){.cuda = n, .server = !strcmp(tok, "h100")};
  /* NVML's order: the reverse of CUDA's. */
  for (int i = 0; i < n / 2; i++) {
    card_t t = G.cards[i];
    G.cards[i] = G.cards[n - 1 - i];
    G.cards[n - 1 - i] = t;
  }
  /* The buses the fake CUDA runtime gives the cards (FAKECUDA_BUSES). */
  const char *buses = getenv("FAKECUDA_BUSES");
  for (int i = 0; i < n; i++)
    G.cards[i].bus = 0x10 + (unsigned)G.cards[i].cuda;
  for (int c = 0; buses && *buses && c < n; c++) {
    char *end;
    unsigned long bus = strtoul(buses, &end, 16);
    if (end == buses || bus > 0xff)
      break;
    for (int i = 0; i < n; i++)
      if (G.cards[i].cuda == c)
        G.cards[i].bus = (unsigned)bus;
    buses = *end == ',' ? end + 1 : end;
  }
  G.ncards = n;
  return 1;
}

static int check(nvmlDevice_t d) {
  if (atomic_load(&G.inits) <= 0)
    return NVML_ERROR_UNINITIALIZED;
  if (!d)
    return NVML_ERROR_INVALID_ARGUMENT;
  return atomic_load(&d->lost) ? NVML_ERROR_GPU_IS_LOST : NVML_SUCCESS;
}

PUBLIC int nvmlInit_v2(void) {
  if (atomic_load(&G.inits) == 0 && !read_cards())
    return NVML_ERROR_DRIVER_NOT_LOADED;
  atomic_fetch_add(&G.inits, 1);
  return NVML_SUCCESS;
}

PUBLIC int nvmlShutdown(void) {
  if (atomic_load(&G.inits) <= 0)
    return NVML_ERROR_UNINITIALIZED;
  atomic_fetch_sub(&G.inits, 1);
  return NVML_SUCCESS;
}

PUBLIC const char *nvmlErrorString(int r) {
  switch (r) {
  case NVML_SUCCESS:
    return "Success";
  case NVML_ERROR_UNINITIALIZED:
    return "Uninitialized";
  case NVML_ERROR_INVALID_ARGUMENT:
    return "Invalid Argument";
  case NVML_ERROR_NOT_SUPPORTED:
    return "Not Supported";
  case NVML_ERROR_DRIVER_NOT_LOADED:
    return "Driver Not Loaded";
  case NVML_ERROR_GPU_IS_LOST:
    return "GPU is lost";
  default:
    return "Unknown Error";
  }
}

PUBLIC int nvmlDeviceGetCount_v2(unsigned *count) {
  if (atomic_load(&G.inits) <= 0)
    return NVML_ERROR_UNINITIALIZED;
  *count = (unsigned)G.ncards;
  return NVML_SUCCESS;
}

PUBLIC int nvmlDeviceGetHandleByIndex_v2(unsigned i, nvmlDevice_t *out) {
  if (atomic_load(&G.inits) <= 0)
    return NVML_ERROR_UNINITIALIZED;
  if (i >= (unsigned)G.ncards)
    return NVML_ERROR_INVALID_ARGUMENT;
  *out = &G.cards[i];
  return NVML_SUCCESS;
}

PUBLIC int nvmlDeviceGetPciInfo_v3(nvmlDevice_t d, pci_info_v3_t *pci) {
  int r = check(d);
  if (r)
    return r;
  memset(pci, 0, sizeof *pci);
  pci->domain = 0;
  pci->bus = d->bus;
  pci->device = 0;
  pci->pci_device_id = d->server ? 0x233010de : 0x268410de;
  snprintf(pci->bus_id, sizeof pci->bus_id, "00000000:%02X:00.0", pci->bus);
  snprintf(pci->bus_id_legacy, sizeof pci->bus_id_legacy, "0000:%02X:00.0",
           pci->bus);
  return NVML_SUCCESS;
}

PUBLIC int nvmlDeviceGetTemperature(nvmlDevice_t d, int sensor, unsigned *t) {
  int r = check(d);
  if (!r)
    *t = sensor != 0 ? 0 : d->server ? 41 : 67;
  return r ? r : sensor != 0 ? NVML_ERROR_INVALID_ARGUMENT : NVML_SUCCESS;
}

PUBLIC int nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned *mw) {
  int r = check(d);
  if (!r)
    *mw = d->server ? 98500 : 287250;
  return r;
}

PUBLIC int nvmlDeviceGetUtilizationRates(nvmlDevice_t d, utilization_t *u) {
  int r = check(d);
  if (!r)
    *u = d->server ? (utilization_t){37, 12} : (utilization_t){93, 40};
  return r;
}

/* What the fake CUDA runtime holds on the card, when it is loaded. */
static unsigned long long cuda_bytes_live(int ordinal) {
  int (*stats)(int, fakecuda_stats_t *);
  void *sym = dlsym(RTLD_DEFAULT, "fakecuda_stats");
  memcpy(&stats, &sym, sizeof sym);
  fakecuda_stats_t s;
  return stats && stats(ordinal, &s) == 0 ? s.bytes_live : 0;
}

PUBLIC int nvmlDeviceGetMemoryInfo(nvmlDevice_t d, memory_info_t *m) {
  int r = check(d);
  if (r)
    return r;
  m->total = (d->server ? 80ull : 24ull) << 30;
  /* The driver's own reservation, plus what the process allocated. */
  m->used = (512ull << 20) + cuda_bytes_live(d->cuda);
  m->free = m->total - m->used;
  return NVML_SUCCESS;
}

PUBLIC int nvmlDeviceGetEccMode(nvmlDevice_t d, int *current, int *pending) {
  int r = check(d);
  if (r)
    return r;
  if (!d->server)
    return NVML_ERROR_NOT_SUPPORTED;
  *current = *pending = 1;
  return NVML_SUCCESS;
}

PUBLIC int nvmlDeviceGetTotalEccErrors(nvmlDevice_t d, int type, int counter,
                                       unsigned long long *count) {
  int r = check(d);
  if (r)
    return r;
  if (!d->server)
    return NVML_ERROR_NOT_SUPPORTED;
  if (counter != 0 && counter != 1)
    return NVML_ERROR_INVALID_ARGUMENT;
  *count = (unsigned long long)(type == 0 ? atomic_load(&d->ecc_corrected)
                                          : atomic_load(&d->ecc_uncorrected));
  return NVML_SUCCESS;
}

PUBLIC int nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t d,
                                                  unsigned long long *reasons) {
  int r = check(d);
  if (!r) /* server: idle; consumer: software thermal slowdown */
    *reasons = d->server ? 0x1ull : 0x20ull;
  return r;
}

PUBLIC int nvmlDeviceGetCurrPcieLinkGeneration(nvmlDevice_t d, unsigned *gen) {
  int r = check(d);
  if (!r)
    *gen = d->server ? 5 : 3;
  return r;
}

PUBLIC int nvmlDeviceGetCurrPcieLinkWidth(nvmlDevice_t d, unsigned *width) {
  int r = check(d);
  if (!r)
    *width = 16;
  return r;
}

PUBLIC int nvmlDeviceGetMaxPcieLinkGeneration(nvmlDevice_t d, unsigned *gen) {
  int r = check(d);
  if (!r)
    *gen = d->server ? 5 : 4;
  return r;
}

PUBLIC int nvmlDeviceGetMaxPcieLinkWidth(nvmlDevice_t d, unsigned *width) {
  int r = check(d);
  if (!r)
    *width = 16;
  return r;
}

PUBLIC int nvmlDeviceGetPersistenceMode(nvmlDevice_t d, int *mode) {
  int r = check(d);
  if (!r)
    *mode = d->server;
  return r;
}

PUBLIC int nvmlDeviceGetComputeMode(nvmlDevice_t d, int *mode) {
  int r = check(d);
  if (!r)
    *mode = d->server ? 3 : 0; /* EXCLUSIVE_PROCESS : DEFAULT */
  return r;
}

PUBLIC int nvmlSystemGetDriverVersion(char *buf, unsigned len) {
  if (atomic_load(&G.inits) <= 0)
    return NVML_ERROR_UNINITIALIZED;
  /* FAKENVML_DRIVER: another driver's version (an old one, for tests). */
  const char *v = getenv("FAKENVML_DRIVER");
  if (!v || !*v)
    v = "580.65.06";
  if (len < strlen(v) + 1)
    return NVML_ERROR_INSUFFICIENT_SIZE;
  memcpy(buf, v, strlen(v) + 1);
  return NVML_SUCCESS;
}

/* The card CUDA numbers `ordinal`. */
static card_t *by_cuda(int ordinal) {
  for (int i = 0; i < G.ncards; i++)
    if (G.cards[i].cuda == ordinal)
      return &G.cards[i];
  return NULL;
}

PUBLIC int fakenvml_inject(int ordinal, const char *what, long value) {
  card_t *c = by_cuda(ordinal);
  if (!c)
    return -1;
  if (!strcmp(what, "lost"))
    atomic_store(&c->lost, value != 0);
  else if (!strcmp(what, "ecc_corrected"))
    atomic_store(&c->ecc_corrected, value);
  else if (!strcmp(what, "ecc_uncorrected"))
    atomic_store(&c->ecc_uncorrected, value);
  else
    return -1;
  return 0;
}
