/* SPDX-License-Identifier: MIT */
/* tests/plugins/liar.c: a backend whose probe lies, or whose start does
 * nothing, in the one way its option `lie` names, for the checks the core
 * makes of what plugins report (tests/test_loader.c):
 *   (unset)      no device: the plugin stays out of other tests' way
 *   null         3 devices, a NULL array
 *   count        100000 devices (the array holds 3)
 *   workers0     nworkers 0;   workers-huge   nworkers 1 << 20
 *   name         a name of 64 bytes with no NUL;   model, busid  the same
 *   size-huge    struct_size 4096;   size-small   struct_size 16
 *   size-mixed   device 1's struct_size differs from device 0's
 *   nan          fp64_flops NaN;   negative   link_bandwidth -1
 *   numa         numa_node -7;     peers      npeers 5, peers NULL
 *   ecc          ecc 7;            memory     own_memory 2
 *   uuid         a uuid with no NUL;  cc      compute capability 100.0
 *   buswidth     memory_bus_width 70000;  pciegen 9;  pciewidth 3
 *   kinds        memory_kinds 8;   pool       memory_pool 1, own_memory 0
 *   managed      own memory of kind MANAGED, without managed_* entries
 *   peers-max    npeers 1000;      peer-nomem a peer list, own_memory 0
 *   peer-self    device 0 lists its own bus id;  peer-nan  bandwidth NaN
 *   dupbus       devices 0 and 1 share a bus id
 *   stall        one honest HBM device ("liar0"), whose workers start()
 *                never starts: it returns 0 and runs no thread
 * Every lie but stall and count reports 3 devices, device 0 the liar. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <strata/backend.h>

#define NDEVS 3

typedef struct liar_state {
  const strata_core_services_t *core;
  char lie[32];
  strata_backend_device_t devs[NDEVS];
  size_t ndevs;
  const strata_backend_device_t *array; /* what probe hands over */
  strata_backend_peer_t peer;
} liar_state_t;

/* Memory entries, so that the checks reach the fields past them (a
 * device of the liar never gets as far as using them). */
static int liar_mem_alloc(void *state, unsigned dev, size_t size, void **ptr) {
  (void)state, (void)dev, (void)size, (void)ptr;
  return STRATA_ENOMEM;
}

static void liar_mem_free(void *state, unsigned dev, void *ptr, size_t size) {
  (void)state, (void)dev, (void)ptr, (void)size;
}

static int liar_copy(void *state, const strata_backend_copy_t *op) {
  (void)state, (void)op;
  return STRATA_EIO;
}

static void describe(strata_backend_device_t *d, size_t i) {
  memset(d, 0, sizeof *d);
  d->struct_size = sizeof *d;
  d->device_class = STRATA_CLASS_HBM;
  d->candidate_impl = d->run_impl = STRATA_IMPL_CUDA;
  snprintf(d->name, sizeof d->name, "liar%zu", i);
  d->nworkers = 1;
  d->numa_node = -1;
  d->ecc = -1;
}

/* A device with memory of its own, whose peer list is st->peer. */
static void with_memory(liar_state_t *st, strata_backend_device_t *d) {
  d->own_memory = 1;
  d->memory_bytes = 1 << 20;
  snprintf(d->pci_busid, sizeof d->pci_busid, "0000:0%c:00.0",
           '1' + (int)(d - st->devs));
  snprintf(st->peer.busid, sizeof st->peer.busid, "0000:09:00.0");
  d->peers = &st->peer;
  d->npeers = 1;
}

/* The lies of ABI 3.0's fields. */
static void lie_more(liar_state_t *st, strata_backend_device_t *d,
                     const char *l) {
  if (!strcmp(l, "uuid"))
    memset(d->uuid, 'x', sizeof d->uuid);
  else if (!strcmp(l, "cc"))
    d->cc_major = 100;
  else if (!strcmp(l, "buswidth"))
    d->memory_bus_width = 70000;
  else if (!strcmp(l, "pciegen"))
    d->pcie_gen = 9;
  else if (!strcmp(l, "pciewidth"))
    d->pcie_width = 3;
  else if (!strcmp(l, "kinds"))
    d->memory_kinds = 8;
  else if (!strcmp(l, "pool"))
    d->memory_pool = 1;
  else if (!strcmp(l, "managed")) {
    with_memory(st, d);
    d->memory_kinds = STRATA_MEMORY_MANAGED;
  } else if (!strcmp(l, "peers-max")) {
    with_memory(st, d);
    d->npeers = 1000;
  } else if (!strcmp(l, "peer-nomem")) {
    with_memory(st, d);
    d->own_memory = 0;
  } else if (!strcmp(l, "peer-self")) {
    with_memory(st, d);
    memcpy(st->peer.busid, d->pci_busid, sizeof d->pci_busid);
  } else if (!strcmp(l, "peer-nan")) {
    with_memory(st, d);
    st->peer.bandwidth = NAN;
  } else if (!strcmp(l, "dupbus")) {
    snprintf(d->pci_busid, sizeof d->pci_busid, "0000:01:00.0");
    snprintf(st->devs[1].pci_busid, sizeof d->pci_busid, "0000:01:00.0");
  }
}

/* Tell the lie named in st->lie, which is not "stall" nor empty. */
static void lie(liar_state_t *st) {
  strata_backend_device_t *d = &st->devs[0];
  const char *l = st->lie;
  st->ndevs = NDEVS;
  if (!strcmp(l, "null"))
    st->array = NULL;
  else if (!strcmp(l, "count"))
    st->ndevs = 100000;
  else if (!strcmp(l, "workers0"))
    d->nworkers = 0;
  else if (!strcmp(l, "workers-huge"))
    d->nworkers = UINT32_C(1) << 20;
  else if (!strcmp(l, "name"))
    memset(d->name, 'x', sizeof d->name);
  else if (!strcmp(l, "model"))
    memset(d->model, 'x', sizeof d->model);
  else if (!strcmp(l, "busid"))
    memset(d->pci_busid, 'x', sizeof d->pci_busid);
  else if (!strcmp(l, "size-huge"))
    d->struct_size = 4096;
  else if (!strcmp(l, "size-small"))
    d->struct_size = 16;
  else if (!strcmp(l, "size-mixed"))
    st->devs[1].struct_size = 200;
  else if (!strcmp(l, "nan"))
    d->fp64_flops = NAN;
  else if (!strcmp(l, "negative"))
    d->link_bandwidth = -1;
  else if (!strcmp(l, "numa"))
    d->numa_node = -7;
  else if (!strcmp(l, "peers"))
    d->npeers = 5;
  else if (!strcmp(l, "ecc"))
    d->ecc = 7;
  else if (!strcmp(l, "memory"))
    d->own_memory = 2;
  else
    lie_more(st, d, l);
}

static int liar_init(const strata_core_services_t *core,
                     const strata_backend_config_t *cfg, void **state) {
  (void)cfg;
  liar_state_t *st = core->alloc(core->core, NULL, 0, sizeof *st);
  if (!st)
    return STRATA_ENOMEM;
  memset(st, 0, sizeof *st);
  st->core = core;
  for (size_t i = 0; i < NDEVS; i++)
    describe(&st->devs[i], i);
  st->array = st->devs;
  if (core->option(core->core, "lie", st->lie, sizeof st->lie)) {
    st->lie[0] = '\0';
  } else if (!strcmp(st->lie, "stall")) {
    st->ndevs = 1;
  } else {
    lie(st);
  }
  *state = st;
  return STRATA_OK;
}

static int liar_probe(void *state, const strata_backend_device_t **devices,
                      size_t *n) {
  liar_state_t *st = state;
  *devices = st->array;
  *n = st->ndevs;
  return STRATA_OK;
}

/* Reports success and starts nothing: the core must notice by itself. */
static int liar_start(void *state, strata_device_handle_t *const *h, size_t n) {
  (void)state, (void)h, (void)n;
  return STRATA_OK;
}

static void liar_stop(void *state) { (void)state; }

static void liar_fini(void *state) {
  liar_state_t *st = state;
  st->core->alloc(st->core->core, st, sizeof *st, 0);
}

STRATA_BACKEND_EXPORT const strata_backend_component_t
    strata_backend_liar_component = {
        .abi_major = STRATA_BACKEND_ABI_MAJOR,
        .abi_minor = STRATA_BACKEND_ABI_MINOR,
        .struct_size = sizeof(strata_backend_component_t),
        .name = "liar",
        .description = "test backend that misreports its devices",
        .init = liar_init,
        .probe = liar_probe,
        .start = liar_start,
        .stop = liar_stop,
        .fini = liar_fini,
        .mem_alloc = liar_mem_alloc,
        .mem_free = liar_mem_free,
        .copy = liar_copy,
};
