/* SPDX-License-Identifier: MIT */
/* backends/cpu/cpu.c: the CPU backend. One device per NUMA node that has
 * workers; one worker thread per core (or as many as the "workers" option
 * asks, spread over cores in order), each bound to its core through the
 * core's bind service. Workers block in next() when idle. */
#include "config.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/backend.h>

#define MAX_WORKERS 4096

typedef struct cpu_state cpu_state_t;

typedef struct cpu_worker {
  cpu_state_t *st;
  strata_device_handle_t *dev;
  unsigned index; /* within its device */
  pthread_t thread;
} cpu_worker_t;

struct cpu_state {
  const strata_core_services_t *core;
  const strata_machine_t *machine;
  unsigned nworkers;
  uint32_t *cores; /* core of each worker, grouped by device */
  strata_backend_device_t *devs;
  size_t ndevs;
  cpu_worker_t *workers;
  size_t nstarted;
};

/* {=== Allocation through the core ===} */

static void *cpu_alloc(cpu_state_t *st, size_t n) {
  void *p = st->core->alloc(st->core->core, NULL, 0, n);
  if (p)
    memset(p, 0, n);
  return p;
}

static void cpu_free(cpu_state_t *st, void *p, size_t n) {
  if (p)
    st->core->alloc(st->core->core, p, n, 0);
}

/* {=== Setup ===} */

static int parse_workers(cpu_state_t *st) {
  char buf[32];
  int rc = st->core->option(st->core->core, "workers", buf, sizeof buf);
  if (rc == STRATA_ENOENT) {
    st->nworkers = st->machine->ncores;
    return STRATA_OK;
  }
  char *end;
  long n = rc ? 0 : strtol(buf, &end, 10);
  if (rc || *end || n < 1 || n > MAX_WORKERS) {
    st->core->log(st->core->core, STRATA_LOG_ERROR,
                  "option workers=%s: expected a count from 1 to %d",
                  rc ? "(too long)" : buf, MAX_WORKERS);
    return STRATA_EINVAL;
  }
  st->nworkers = (unsigned)n;
  if (st->nworkers > st->machine->ncores)
    st->core->log(st->core->core, STRATA_LOG_INFO,
                  "%u workers on %u cores: cores are shared", st->nworkers,
                  st->machine->ncores);
  return STRATA_OK;
}

static uint64_t node_memory(const strata_machine_t *m, int32_t numa) {
  uint64_t total = 0;
  for (uint32_t i = 0; i < m->nnuma; i++)
    if (numa < 0 || m->numa[i].os_index == numa)
      total += m->numa[i].memory_bytes;
  return total;
}

/* Worker w runs on core w % ncores; workers are grouped into one device
 * per NUMA node, nodes in the order their first core appears. */
static int build_devices(cpu_state_t *st) {
  const strata_machine_t *m = st->machine;
  st->cores = cpu_alloc(st, st->nworkers * sizeof *st->cores);
  st->devs = cpu_alloc(st, st->nworkers * sizeof *st->devs);
  if (!st->cores || !st->devs)
    return STRATA_ENOMEM;
  int32_t *node_of = cpu_alloc(st, st->nworkers * sizeof *node_of);
  if (!node_of)
    return STRATA_ENOMEM;
  for (unsigned w = 0; w < st->nworkers; w++)
    node_of[w] = m->cores[w % m->ncores].numa_node;
  unsigned placed = 0;
  for (unsigned w = 0; w < st->nworkers; w++) {
    bool seen = false;
    for (unsigned v = 0; v < w && !seen; v++)
      seen = node_of[v] == node_of[w];
    if (seen)
      continue;
    strata_backend_device_t *d = &st->devs[st->ndevs];
    d->struct_size = sizeof *d;
    d->ecc = -1;
    d->worker_cores = &st->cores[placed];
    for (unsigned v = w; v < st->nworkers; v++)
      if (node_of[v] == node_of[w])
        st->cores[placed + d->nworkers++] = v % m->ncores;
    placed += d->nworkers;
    d->device_class = STRATA_CLASS_CPU;
    d->candidate_impl = d->run_impl = STRATA_IMPL_CPU;
    /* Each worker runs its work to the end before taking another. */
    d->inflight_depth = d->nworkers;
    d->numa_node = node_of[w];
    d->memory_bytes = node_memory(m, node_of[w]);
    char node[16] = "any";
    if (node_of[w] >= 0)
      snprintf(node, sizeof node, "%d", (int)node_of[w]);
    snprintf(d->name, sizeof d->name, "cpu%zu (node %s%s%s)", st->ndevs, node,
             *m->cpu_model ? ", " : "", m->cpu_model);
    snprintf(d->model, sizeof d->model, "%s CPUs",
             *m->cpu_model ? m->cpu_model : "host");
    st->ndevs++;
  }
  cpu_free(st, node_of, st->nworkers * sizeof *node_of);
  return STRATA_OK;
}

static void cpu_fini(void *state) {
  cpu_state_t *st = state;
  if (!st)
    return;
  cpu_free(st, st->workers, st->nworkers * sizeof *st->workers);
  cpu_free(st, st->devs, st->nworkers * sizeof *st->devs);
  cpu_free(st, st->cores, st->nworkers * sizeof *st->cores);
  cpu_free(st, st, sizeof *st);
}

static int cpu_init(const strata_core_services_t *core,
                    const strata_backend_config_t *cfg, void **state) {
  cpu_state_t tmp = {.core = core, .machine = cfg->machine};
  cpu_state_t *st = cpu_alloc(&tmp, sizeof *st);
  if (!st)
    return STRATA_ENOMEM;
  *st = tmp;
  int rc = parse_workers(st);
  if (rc == STRATA_OK)
    rc = build_devices(st);
  if (rc == STRATA_OK &&
      !(st->workers = cpu_alloc(st, st->nworkers * sizeof *st->workers)))
    rc = STRATA_ENOMEM;
  if (rc) {
    cpu_fini(st);
    return rc;
  }
  *state = st;
  return STRATA_OK;
}

static int cpu_probe(void *state, const strata_backend_device_t **devices,
                     size_t *ndevices) {
  cpu_state_t *st = state;
  *devices = st->devs;
  *ndevices = st->ndevs;
  return STRATA_OK;
}

/* {=== Workers ===} */

static void *worker_main(void *arg) {
  cpu_worker_t *w = arg;
  const strata_core_services_t *core = w->st->core;
  /* A failed bind is logged by the core; the worker still runs. */
  (void)core->bind_worker(core->core, w->dev, w->index);
  for (;;) {
    strata_work_t *work;
    int rc = core->next(core->core, w->dev, w->index, -1, &work);
    if (rc == STRATA_ESHUTDOWN)
      break;
    if (rc)
      continue;
    core->complete(core->core, work, work->fn(&work->call));
  }
  return NULL;
}

static int cpu_start(void *state, strata_device_handle_t *const *handles,
                     size_t nhandles) {
  cpu_state_t *st = state;
  if (nhandles != st->ndevs)
    return STRATA_EINVAL;
  for (size_t d = 0; d < st->ndevs; d++) {
    for (unsigned i = 0; i < st->devs[d].nworkers; i++) {
      cpu_worker_t *w = &st->workers[st->nstarted];
      *w = (cpu_worker_t){.st = st, .dev = handles[d], .index = i};
      if (pthread_create(&w->thread, NULL, worker_main, w)) {
        st->core->log(st->core->core, STRATA_LOG_ERROR,
                      "cannot start worker %u of %s", i, st->devs[d].name);
        return STRATA_EBACKEND;
      }
      st->nstarted++;
    }
  }
  return STRATA_OK;
}

static void cpu_stop(void *state) {
  cpu_state_t *st = state;
  for (size_t i = 0; i < st->nstarted; i++)
    pthread_join(st->workers[i].thread, NULL);
  st->nstarted = 0;
}

STRATA_BACKEND_EXPORT const strata_backend_component_t
    strata_backend_cpu_component = {
        .abi_major = STRATA_BACKEND_ABI_MAJOR,
        .abi_minor = STRATA_BACKEND_ABI_MINOR,
        .struct_size = sizeof(strata_backend_component_t),
        .name = "cpu",
        .description = "host cores, one bound worker thread per core",
        .init = cpu_init,
        .probe = cpu_probe,
        .start = cpu_start,
        .stop = cpu_stop,
        .fini = cpu_fini,
};
