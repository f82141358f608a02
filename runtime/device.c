/* SPDX-License-Identifier: MIT */
/* runtime/device.c: the device table and the public device queries. */
#include "config.h"

#include "runtime.h"

#include <string.h>

#define COMP "device"

/* How long an idle worker polls its queue before sleeping. Long enough to
 * catch the next task of a busy stream, short enough that an idle
 * embedding application sees no spinning cores. */
#define STRATA__IDLE_SPIN_NS 20000

static int check_desc(strata_runtime_t *rt, const strata__backend_t *be,
                      const strata_backend_device_t *d) {
  const char *why = NULL;
  if ((unsigned)d->device_class >= STRATA_CLASS_COUNT)
    why = "unknown device class";
  else if ((unsigned)d->impl_class >= STRATA_CLASS_COUNT)
    why = "unknown implementation class";
  else if (!d->nworkers)
    why = "no workers";
  else if (!memchr(d->name, '\0', sizeof d->name) || !d->name[0])
    why = "no name";
  else if (d->own_memory &&
           (!be->comp->mem_alloc || !be->comp->mem_free || !be->comp->copy))
    why = "it has its own memory, but the backend cannot allocate or copy";
  else if (d->own_memory && !d->memory_bytes)
    why = "it has its own memory, of zero bytes";
  else if (d->worker_cores)
    for (uint32_t w = 0; w < d->nworkers && !why; w++)
      if (d->worker_cores[w] >= rt->topo.view.ncores)
        why = "worker bound to a core that does not exist";
  if (why)
    STRATA_LOG(&rt->log, STRATA_LOG_WARN, COMP,
               "backend '%s' reported a malformed device: %s", be->name, why);
  return why ? STRATA_EINVAL : STRATA_OK;
}

static size_t slots_bytes(uint32_t nworkers) {
  return nworkers * sizeof(strata__worker_slot_t) + 63;
}

/* Zeroed worker slots on a cache-line boundary. */
static int alloc_slots(strata_runtime_t *rt, strata__device_t *d) {
  d->workers_block = strata__zalloc(&rt->alloc, slots_bytes(d->desc.nworkers));
  if (!d->workers_block)
    return STRATA_ENOMEM;
  uintptr_t p = ((uintptr_t)d->workers_block + 63) & ~(uintptr_t)63;
  d->workers = (strata__worker_slot_t *)p;
  return STRATA_OK;
}

static void device_free(strata_runtime_t *rt, strata__device_t *d) {
  strata__free(&rt->alloc, d->workers_block, slots_bytes(d->desc.nworkers));
  strata__queue_destroy(&d->queue, &rt->alloc);
  strata__free(&rt->alloc, d, sizeof *d);
}

/* Device i of a probe list whose entries are `stride` bytes apart (the
 * plugin's sizeof, which may differ from ours). */
static strata_backend_device_t desc_at(const strata_backend_device_t *descs,
                                       size_t stride, size_t i) {
  strata_backend_device_t d;
  memset(&d, 0, sizeof d);
  memcpy(&d, (const char *)descs + i * stride, STRATA_MIN(stride, sizeof d));
  d.struct_size = sizeof d;
  return d;
}

/* The fields of ABI 2.0: a probe list with shorter entries is malformed. */
#define DEVICE_MIN_SIZE                                                        \
  (offsetof(strata_backend_device_t, peers) + sizeof(uint64_t))

int strata__devices_add(strata_runtime_t *rt, strata__backend_t *be,
                        const strata_backend_device_t *descs, size_t n) {
  int rc;
  size_t stride = n ? descs[0].struct_size : 0;
  if (n && stride < DEVICE_MIN_SIZE) {
    STRATA_LOG(&rt->log, STRATA_LOG_WARN, COMP,
               "backend '%s' reported devices of %zu bytes, at least %zu are "
               "needed",
               be->name, stride, (size_t)DEVICE_MIN_SIZE);
    return STRATA_EABI;
  }
  for (size_t i = 0; i < n; i++) {
    strata_backend_device_t d = desc_at(descs, stride, i);
    if ((rc = check_desc(rt, be, &d)))
      return rc;
  }
  if ((rc = strata__grow(&rt->alloc, (void **)&rt->devices, &rt->cap_devices,
                         rt->ndevices + n, sizeof *rt->devices)))
    return rc;
  size_t added = 0;
  for (; added < n; added++) {
    strata__device_t *d = strata__zalloc(&rt->alloc, sizeof *d);
    if (!d)
      break;
    d->desc = desc_at(descs, stride, added);
    d->bindex = (unsigned)added;
    if (alloc_slots(rt, d)) {
      strata__free(&rt->alloc, d, sizeof *d);
      break;
    }
    if (strata__queue_init(&d->queue, STRATA__IDLE_SPIN_NS)) {
      strata__free(&rt->alloc, d->workers_block, slots_bytes(d->desc.nworkers));
      strata__free(&rt->alloc, d, sizeof *d);
      break;
    }
    d->index = (int)rt->ndevices;
    d->backend = be;
    d->rt = rt;
    rt->devices[rt->ndevices++] = d;
  }
  if (added < n) {
    strata__devices_drop_last(rt, added);
    return STRATA_ENOMEM;
  }
  return STRATA_OK;
}

void strata__devices_drop_last(strata_runtime_t *rt, size_t n) {
  while (n--)
    device_free(rt, rt->devices[--rt->ndevices]);
}

void strata__devices_stop(strata_runtime_t *rt, strata__backend_t *be) {
  for (size_t i = 0; i < rt->ndevices; i++)
    if (rt->devices[i]->backend == be)
      strata__queue_stop(&rt->devices[i]->queue);
}

void strata__devices_free(strata_runtime_t *rt) {
  strata__devices_drop_last(rt, rt->ndevices);
  strata__free(&rt->alloc, rt->devices, rt->cap_devices * sizeof *rt->devices);
  rt->devices = NULL;
  rt->cap_devices = 0;
}

/* {=== Public API ===} */

/* Cores the workers are assigned to; several workers may share one. */
static uint32_t distinct_cores(const strata_backend_device_t *d) {
  uint32_t n = 0;
  for (uint32_t w = 0; d->worker_cores && w < d->nworkers; w++) {
    bool seen = false;
    for (uint32_t v = 0; v < w && !seen; v++)
      seen = d->worker_cores[v] == d->worker_cores[w];
    n += !seen;
  }
  return n;
}

/* The checks every device query starts with: `out` is an output struct
 * (struct_size first, holding at least one field) and `index` a device.
 * @return 0 with *d set; STRATA_EINVAL; STRATA_ERANGE */
static int query(const strata_runtime_t *rt, int index, const void *out,
                 const strata__device_t **d) {
  if (!rt || !out || *(const size_t *)out <= sizeof(size_t))
    return STRATA_EINVAL;
  if (index < 0 || (size_t)index >= rt->ndevices)
    return STRATA_ERANGE;
  *d = rt->devices[index];
  return STRATA_OK;
}

const char *strata__device_model_name(const strata__device_t *d) {
  return d->desc.model[0] ? d->desc.model : d->desc.name;
}

int strata_device_count(const strata_runtime_t *rt) {
  return rt ? (int)rt->ndevices : STRATA_EINVAL;
}

int strata_device_info(const strata_runtime_t *rt, int index,
                       strata_device_info_t *out) {
  const strata__device_t *d;
  int qrc = query(rt, index, out, &d);
  if (qrc)
    return qrc;
  strata_device_info_t info = {.struct_size = sizeof info};
  info.index = index;
  info.device_class = d->desc.device_class;
  memcpy(info.name, d->desc.name, sizeof info.name);
  strata__strlcpy(info.backend, d->backend->name, sizeof info.backend);
  info.memory_bytes = d->desc.memory_bytes;
  info.numa_node = d->desc.numa_node;
  info.workers = d->desc.nworkers;
  info.cores = distinct_cores(&d->desc);
  memcpy(info.pci_busid, d->desc.pci_busid, sizeof info.pci_busid);
  info.link_gbps = (float)(d->desc.link_bandwidth / 1e9);
  info.memory_node = d->node;
  info.mem_bandwidth = d->desc.mem_bandwidth;
  info.fp64_flops = d->desc.fp64_flops;
  info.fp32_flops = d->desc.fp32_flops;
  info.ecc = d->desc.ecc;
  info.failed = atomic_load(&d->failed);
  strata__strlcpy(info.model, strata__device_model_name(d), sizeof info.model);
  if (d->desc.peers)
    info.peer_gbps =
        (float)((d->desc.peer_bandwidth > 0 ? d->desc.peer_bandwidth
                                            : d->desc.link_bandwidth) /
                1e9);
  return strata__copy_out(out, &info, sizeof info);
}

int strata_device_stats(const strata_runtime_t *rt, int index,
                        strata_device_stats_t *out) {
  const strata__device_t *d;
  int qrc = query(rt, index, out, &d);
  if (qrc)
    return qrc;
  strata_device_stats_t st = {.struct_size = sizeof st};
  for (uint32_t w = 0; w < d->desc.nworkers; w++) {
    st.tasks_run += atomic_load(&d->workers[w].w.tasks_run);
    st.tasks_failed += atomic_load(&d->workers[w].w.tasks_failed);
    st.busy_ns += atomic_load(&d->workers[w].w.busy_ns);
  }
  st.load = strata__device_load(d);
  return strata__copy_out(out, &st, sizeof st);
}

int strata_device_health(const strata_runtime_t *rt, int index,
                         strata_health_t *out) {
  const strata__device_t *d;
  int qrc = query(rt, index, out, &d);
  if (qrc)
    return qrc;
  const strata_backend_component_t *c = d->backend->comp;
  if (!c->health)
    return STRATA_ENOTSUP;
  strata_health_t h = {.struct_size = sizeof h,
                       .temperature_c = -300,
                       .power_w = -1,
                       .utilisation = -1,
                       .throttled = -1};
  int rc = c->health(d->backend->state, d->bindex, &h);
  if (rc)
    return rc;
  return strata__copy_out(out, &h, sizeof h);
}

int strata_device_inject(strata_runtime_t *rt, int index, const char *fault,
                         double value) {
  if (!rt || !fault)
    return STRATA_EINVAL;
  if (index < 0 || (size_t)index >= rt->ndevices)
    return STRATA_ERANGE;
  const strata__device_t *d = rt->devices[index];
  const strata_backend_component_t *c = d->backend->comp;
  if (c->struct_size < offsetof(strata_backend_component_t, reserved) ||
      !c->inject) /* a 2.0 plugin: no inject */
    return STRATA_ENOTSUP;
  int rc = c->inject(d->backend->state, d->bindex, fault, value);
  STRATA_LOG(&rt->log, rc ? STRATA_LOG_WARN : STRATA_LOG_INFO, COMP,
             "inject '%s' (%g) into %s: %s", fault, value, d->desc.name,
             strata_strerror(rc));
  return rc;
}

int strata_device_model(const strata_runtime_t *rt, int index,
                        strata_device_model_t *out) {
  const strata__device_t *d;
  int qrc = query(rt, index, out, &d);
  if (qrc)
    return qrc;
  const strata_backend_component_t *c = d->backend->comp;
  if (!c->model)
    return STRATA_ENOTSUP;
  strata_device_model_t m = {.struct_size = sizeof m};
  int rc = c->model(d->backend->state, d->bindex, &m);
  if (rc)
    return rc;
  return strata__copy_out(out, &m, sizeof m);
}
