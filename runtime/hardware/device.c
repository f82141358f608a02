/* SPDX-License-Identifier: MIT */
/* runtime/hardware/device.c: the device table and the public device queries. */
#include "config.h"

#include "runtime.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define COMP "device"

/* {=== Checking what probe reported ===}
 * A plugin is third-party code: every field is checked before the core
 * uses any, and the first one out of bounds is named. */

/* The sizes of the published layouts of a probed device, as a plugin
 * built for them has them (3.0 only, so far). */
#define DEVICE_SIZE_3_0 sizeof(strata_backend_device_t)

/* Format why into buf. @return true, for `if (bad(...))` chains. */
static bool bad(char *buf, size_t len, const char *fmt, ...)
    STRATA_PRINTF(3, 4);
static bool bad(char *buf, size_t len, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, len, fmt, ap);
  va_end(ap);
  return true;
}

/* A char array field holds a NUL-terminated string. */
#define TERMINATED(d, field) memchr((d)->field, '\0', sizeof((d)->field))

typedef struct rate_field {
  const char *name;
  size_t offset;
} rate_field_t;

#define RATE(f)                                                                \
  { #f, offsetof(strata_backend_device_t, f) }
static const rate_field_t rates[] = {
    RATE(link_bandwidth), RATE(link_latency), RATE(mem_bandwidth),
    RATE(fp64_flops),     RATE(fp32_flops),
};
#undef RATE

/* The first rate or size that is negative, infinite or NaN, or NULL. */
static const rate_field_t *bad_rate(const strata_backend_device_t *d,
                                    double *value) {
  for (size_t i = 0; i < sizeof rates / sizeof *rates; i++) {
    memcpy(value, (const char *)d + rates[i].offset, sizeof *value);
    if (!isfinite(*value) || *value < 0)
      return &rates[i];
  }
  return NULL;
}

typedef struct text_field {
  const char *name;
  size_t offset, size;
} text_field_t;

#define TEXT(f)                                                                \
  {                                                                            \
#f, offsetof(strata_backend_device_t, f),                                  \
        sizeof(((strata_backend_device_t *)0)->f)                              \
  }
static const text_field_t texts[] = {TEXT(name), TEXT(model), TEXT(uuid),
                                     TEXT(pci_busid)};
#undef TEXT

/* The first string field that runs past its array, or NULL. */
static const text_field_t *bad_text(const strata_backend_device_t *d) {
  for (size_t i = 0; i < sizeof texts / sizeof *texts; i++)
    if (!memchr((const char *)d + texts[i].offset, '\0', texts[i].size))
      return &texts[i];
  return NULL;
}

/* The device facts (compute capability, bus, PCIe): zero or plausible. */
static bool bad_facts(const strata_backend_device_t *d, size_t i, char *why,
                      size_t len) {
  if (d->cc_major < 0 || d->cc_major > 99 || d->cc_minor < 0 || d->cc_minor > 9)
    return bad(why, len,
               "device %zu: compute capability is %d.%d, not major 0 to 99 "
               "and minor 0 to 9",
               i, (int)d->cc_major, (int)d->cc_minor);
  if (d->memory_bus_width > 65536)
    return bad(why, len,
               "device %zu: memory_bus_width is %u bits, not 0 to 65536", i,
               d->memory_bus_width);
  if (d->pcie_gen > 7)
    return bad(why, len, "device %zu: pcie_gen is %u, not 0 (unknown) to 7", i,
               d->pcie_gen);
  uint32_t w = d->pcie_width;
  if (w != 0 && w != 1 && w != 2 && w != 4 && w != 8 && w != 12 && w != 16 &&
      w != 32)
    return bad(why, len,
               "device %zu: pcie_width is %u, not 0 (unknown), 1, 2, 4, 8, "
               "12, 16 or 32 lanes",
               i, w);
  return false;
}

/* own_memory, memory_kinds, memory_pool. */
static bool bad_memory(const strata_backend_device_t *d, size_t i, char *why,
                       size_t len) {
  if (d->own_memory != 0 && d->own_memory != 1)
    return bad(why, len, "device %zu: own_memory is %d, not 0 or 1", i,
               (int)d->own_memory);
  uint32_t known = STRATA_MEMORY_DEVICE | STRATA_MEMORY_MANAGED;
  if (d->memory_kinds & ~known)
    return bad(why, len,
               "device %zu: memory_kinds is 0x%x, which has bits beyond "
               "STRATA_MEMORY_DEVICE and STRATA_MEMORY_MANAGED",
               i, d->memory_kinds);
  if (!d->own_memory && d->memory_kinds)
    return bad(why, len,
               "device %zu: memory_kinds is 0x%x but own_memory is 0 (a "
               "device on host memory offers no memory kinds)",
               i, d->memory_kinds);
  if (d->memory_pool != 0 && d->memory_pool != 1)
    return bad(why, len, "device %zu: memory_pool is %d, not 0 or 1", i,
               (int)d->memory_pool);
  if (d->memory_pool && !d->own_memory)
    return bad(why, len, "device %zu: memory_pool is 1 but own_memory is 0", i);
  return false;
}

/* Fields of device i that refer to nothing else. */
static bool bad_fields(const strata_backend_device_t *d, size_t i, char *why,
                       size_t len) {
  const rate_field_t *r;
  const text_field_t *t;
  double v;
  if ((unsigned)d->device_class >= STRATA_CLASS_COUNT)
    return bad(why, len, "device %zu: device_class %d is not a known class", i,
               (int)d->device_class);
  if ((unsigned)d->candidate_impl >= STRATA_IMPL_COUNT)
    return bad(why, len,
               "device %zu: candidate_impl %d is not a known implementation "
               "kind",
               i, (int)d->candidate_impl);
  if ((unsigned)d->run_impl >= STRATA_IMPL_COUNT)
    return bad(why, len,
               "device %zu: run_impl %d is not a known implementation kind", i,
               (int)d->run_impl);
  if (d->inflight_depth > STRATA_BACKEND_INFLIGHT_MAX)
    return bad(why, len,
               "device %zu: inflight_depth is %u, not 0 to %d "
               "(STRATA_BACKEND_INFLIGHT_MAX)",
               i, d->inflight_depth, STRATA_BACKEND_INFLIGHT_MAX);
  if (d->nworkers < 1 || d->nworkers > STRATA_BACKEND_WORKERS_MAX)
    return bad(
        why, len,
        "device %zu: nworkers is %u, not 1 to %d (STRATA_BACKEND_WORKERS_MAX)",
        i, d->nworkers, STRATA_BACKEND_WORKERS_MAX);
  if ((t = bad_text(d)))
    return bad(why, len,
               "device %zu: %s is not NUL-terminated within %zu bytes", i,
               t->name, t->size);
  if (!d->name[0])
    return bad(why, len, "device %zu: name is empty", i);
  if (d->numa_node < -1)
    return bad(why, len, "device %zu: numa_node is %d, not an OS index or -1",
               i, (int)d->numa_node);
  if (d->ecc < -1 || d->ecc > 1)
    return bad(why, len, "device %zu: ecc is %d, not 1, 0 or -1", i,
               (int)d->ecc);
  if ((r = bad_rate(d, &v)))
    return bad(why, len, "device %zu: %s is %g, not a finite number >= 0", i,
               r->name, v);
  return bad_memory(d, i, why, len) || bad_facts(d, i, why, len);
}

/* What the device's memory needs of the component. */
static bool bad_memory_ops(const strata_backend_component_t *c,
                           const strata_backend_device_t *d, size_t i,
                           char *why, size_t len) {
  if (!d->own_memory)
    return false;
  uint32_t kinds = d->memory_kinds ? d->memory_kinds : STRATA_MEMORY_DEVICE;
  if ((kinds & STRATA_MEMORY_DEVICE) && (!c->mem_alloc || !c->mem_free))
    return bad(why, len,
               "device %zu: own_memory is 1, but the backend cannot allocate "
               "(mem_alloc or mem_free is NULL)",
               i);
  if ((kinds & STRATA_MEMORY_MANAGED) &&
      (!c->managed_alloc || !c->managed_free || !c->managed_prefetch))
    return bad(why, len,
               "device %zu: memory_kinds offers STRATA_MEMORY_MANAGED, but "
               "managed_alloc, managed_free or managed_prefetch is NULL",
               i);
  if (!c->copy && !c->copy_async)
    return bad(why, len,
               "device %zu: own_memory is 1, but the backend cannot copy "
               "(copy and copy_async are both NULL)",
               i);
  if (!d->memory_bytes)
    return bad(why, len, "device %zu: own_memory is 1 but memory_bytes is 0",
               i);
  return false;
}

/* A bus id already taken by a device of the list before i, or of a
 * backend loaded earlier. */
static bool busid_taken(const strata_runtime_t *rt,
                        const strata_backend_device_t *descs, size_t stride,
                        size_t i, const char *busid) {
  for (size_t k = 0; k < i; k++) {
    const strata_backend_device_t *o =
        (const void *)((const char *)descs + k * stride);
    if (!strncasecmp(o->pci_busid, busid, sizeof o->pci_busid))
      return true;
  }
  for (size_t k = 0; k < rt->ndevices; k++)
    if (!strncasecmp(rt->devices[k]->desc.pci_busid, busid, 16))
      return true;
  return false;
}

/* The peers list: bounded, named, rated; only from a device with memory
 * and a bus id of its own. */
static bool bad_peers(const strata_backend_device_t *d, size_t i, char *why,
                      size_t len) {
  if (!d->npeers)
    return false;
  if (d->npeers > STRATA_BACKEND_PEERS_MAX)
    return bad(
        why, len,
        "device %zu: npeers is %u, at most %d (STRATA_BACKEND_PEERS_MAX)", i,
        d->npeers, STRATA_BACKEND_PEERS_MAX);
  if (!d->peers)
    return bad(why, len, "device %zu: npeers is %u but peers is NULL", i,
               d->npeers);
  if (!d->own_memory || !d->pci_busid[0])
    return bad(why, len,
               "device %zu: it lists peers, but %s (peer copies are between "
               "device memories named by bus id)",
               i,
               !d->own_memory ? "own_memory is 0" : "its pci_busid is empty");
  for (uint32_t k = 0; k < d->npeers; k++) {
    const strata_backend_peer_t *p = &d->peers[k];
    if (!memchr(p->busid, '\0', sizeof p->busid) || !p->busid[0])
      return bad(why, len,
                 "device %zu: peers[%u].busid is empty or not NUL-terminated "
                 "within %zu bytes",
                 i, k, sizeof p->busid);
    if (!strncasecmp(p->busid, d->pci_busid, sizeof p->busid))
      return bad(why, len, "device %zu: peers[%u] is the device itself (%s)", i,
                 k, p->busid);
    if (!isfinite(p->bandwidth) || p->bandwidth < 0)
      return bad(why, len,
                 "device %zu: peers[%u].bandwidth is %g, not a finite number "
                 ">= 0",
                 i, k, p->bandwidth);
  }
  return false;
}

/* Fields of device i of n that refer to the backend, the other devices or
 * the machine. */
static bool bad_references(const strata_runtime_t *rt,
                           const strata__backend_t *be,
                           const strata_backend_device_t *descs, size_t stride,
                           const strata_backend_device_t *d, size_t i,
                           char *why, size_t len) {
  if (bad_memory_ops(be->comp, d, i, why, len) || bad_peers(d, i, why, len))
    return true;
  if (d->pci_busid[0] && busid_taken(rt, descs, stride, i, d->pci_busid))
    return bad(why, len,
               "device %zu: pci_busid '%s' is another device's already", i,
               d->pci_busid);
  for (uint32_t w = 0; d->worker_cores && w < d->nworkers; w++)
    if (d->worker_cores[w] >= rt->topo.view.ncores)
      return bad(
          why, len,
          "device %zu: worker_cores[%u] is %u, but the machine has %u cores", i,
          w, d->worker_cores[w], rt->topo.view.ncores);
  return false;
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

/* The list itself: its count, its array, the size of its entries. */
static bool bad_list(const strata_backend_device_t *descs, size_t n, char *why,
                     size_t len) {
  if (n > STRATA_BACKEND_DEVICES_MAX)
    return bad(
        why, len,
        "probe reported %zu devices, at most %d (STRATA_BACKEND_DEVICES_MAX)",
        n, STRATA_BACKEND_DEVICES_MAX);
  if (!descs)
    return bad(why, len, "probe reported %zu device(s) but a NULL array", n);
  /* Only the first field is read before the stride is known to be one
   * that the plugin's array may really have. */
  size_t stride = descs[0].struct_size;
  if (stride != DEVICE_SIZE_3_0)
    return bad(why, len,
               "device 0: struct_size is %zu, not the size of a published "
               "layout (%zu bytes, ABI 3.0)",
               stride, (size_t)DEVICE_SIZE_3_0);
  for (size_t i = 1; i < n; i++) {
    uint32_t size;
    memcpy(&size, (const char *)descs + i * stride, sizeof size);
    if (size != stride)
      return bad(why, len,
                 "device %zu: struct_size is %u, but device 0's is %zu (all "
                 "entries have the same size)",
                 i, size, stride);
  }
  return false;
}

int strata__devices_check(const strata_runtime_t *rt,
                          const strata__backend_t *be,
                          const strata_backend_device_t *descs, size_t n,
                          char *why, size_t len) {
  if (!n)
    return STRATA_OK;
  if (bad_list(descs, n, why, len))
    return STRATA_EABI;
  size_t stride = descs[0].struct_size;
  for (size_t i = 0; i < n; i++) {
    strata_backend_device_t d = desc_at(descs, stride, i);
    if (bad_fields(&d, i, why, len) ||
        bad_references(rt, be, descs, stride, &d, i, why, len))
      return STRATA_EINVAL;
  }
  return STRATA_OK;
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

static int depth_init(strata__device_t *d) {
  strata__depth_t *p = &d->depth;
  uint32_t n = d->desc.nworkers;
  p->depth = d->desc.inflight_depth ? d->desc.inflight_depth : n;
  p->own_places = p->depth >= n;
  p->shared_cap = p->own_places ? p->depth - n : p->depth;
  atomic_init(&p->shared_used, 0);
  atomic_init(&p->waiters, 0);
  pthread_condattr_t ca;
  if (pthread_condattr_init(&ca))
    return STRATA_ENOMEM;
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  int rc = pthread_cond_init(&p->cv, &ca);
  pthread_condattr_destroy(&ca);
  if (rc)
    return STRATA_ENOMEM;
  if (pthread_mutex_init(&p->mu, NULL)) {
    pthread_cond_destroy(&p->cv);
    return STRATA_ENOMEM;
  }
  return STRATA_OK;
}

static void depth_destroy(strata__depth_t *p) {
  pthread_cond_destroy(&p->cv);
  pthread_mutex_destroy(&p->mu);
}

static void device_free(strata_runtime_t *rt, strata__device_t *d) {
  depth_destroy(&d->depth);
  strata__free(&rt->alloc, d->workers_block, slots_bytes(d->desc.nworkers));
  strata__queue_destroy(&d->queue, &rt->alloc);
  strata__free(&rt->alloc, d, sizeof *d);
}

void strata__devices_set_idle_poll(strata_runtime_t *rt, int idle_poll_us) {
  rt->idle_poll_ns = idle_poll_us < 0    ? 0
                     : idle_poll_us == 0 ? STRATA__QUEUE_SPIN_NS
                                         : (uint64_t)idle_poll_us * 1000u;
}

int strata__devices_add(strata_runtime_t *rt, strata__backend_t *be,
                        const strata_backend_device_t *descs, size_t n) {
  int rc;
  size_t stride = n ? descs[0].struct_size : 0;
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
    if (depth_init(d)) {
      strata__free(&rt->alloc, d->workers_block, slots_bytes(d->desc.nworkers));
      strata__free(&rt->alloc, d, sizeof *d);
      break;
    }
    if (strata__queue_init(&d->queue, rt->idle_poll_ns)) {
      depth_destroy(&d->depth);
      strata__free(&rt->alloc, d->workers_block, slots_bytes(d->desc.nworkers));
      strata__free(&rt->alloc, d, sizeof *d);
      break;
    }
    strata__queue_set_consumers(&d->queue, d->desc.nworkers);
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
    if (rt->devices[i]->backend == be) {
      strata__queue_stop(&rt->devices[i]->queue);
      strata__depth_stop(rt->devices[i]);
    }
}

void strata__devices_free(strata_runtime_t *rt) {
  strata__devices_drop_last(rt, rt->ndevices);
  strata__free(&rt->alloc, rt->devices, rt->cap_devices * sizeof *rt->devices);
  rt->devices = NULL;
  rt->cap_devices = 0;
}

/* {=== In-flight depth ===} */

/* A shared place, if one is left. */
static bool take_shared(strata__depth_t *p) {
  uint32_t used = atomic_load(&p->shared_used);
  while (used < p->shared_cap)
    if (atomic_compare_exchange_weak(&p->shared_used, &used, used + 1))
      return true;
  return false;
}

/* 1: w's own place is free; 0: a shared place was taken; -1: neither. */
static int try_place(strata__device_t *d, unsigned w) {
  if (d->depth.own_places && !atomic_load(&d->workers[w].w.own))
    return 1;
  return take_shared(&d->depth) ? 0 : -1;
}

int strata__depth_take_slow(strata__device_t *d, unsigned worker,
                            int64_t timeout_ns) {
  int got = try_place(d, worker);
  if (STRATA_LIKELY(got >= 0))
    return got;
  if (timeout_ns == 0)
    return STRATA_EAGAIN;
  strata__depth_t *p = &d->depth;
  struct timespec until;
  if (timeout_ns > 0)
    until = strata__deadline_in((uint64_t)timeout_ns);
  int rc = 0;
  pthread_mutex_lock(&p->mu);
  /* Announce the sleep, then look again: pairs with the waiters load after
   * a place is given back (both sequentially consistent), so that either
   * this sees the place or the giver sees this waiter and signals under
   * the lock held until the wait starts. */
  atomic_fetch_add(&p->waiters, 1);
  while ((got = try_place(d, worker)) < 0 && !p->stopping && rc != ETIMEDOUT)
    rc = timeout_ns < 0 ? pthread_cond_wait(&p->cv, &p->mu)
                        : pthread_cond_timedwait(&p->cv, &p->mu, &until);
  atomic_fetch_sub(&p->waiters, 1);
  bool stopping = p->stopping;
  pthread_mutex_unlock(&p->mu);
  if (got >= 0)
    return got;
  return stopping ? STRATA_ESHUTDOWN : STRATA_EAGAIN;
}

void strata__depth_wake(strata__device_t *d) {
  pthread_mutex_lock(&d->depth.mu);
  /* Broadcast: the place given back may be one worker's own, which only
   * that worker can take. */
  pthread_cond_broadcast(&d->depth.cv);
  pthread_mutex_unlock(&d->depth.mu);
}

void strata__depth_give_shared(strata__device_t *d) {
  atomic_fetch_sub(&d->depth.shared_used, 1);
  if (STRATA_UNLIKELY(atomic_load(&d->depth.waiters)))
    strata__depth_wake(d);
}

void strata__depth_stop(strata__device_t *d) {
  pthread_mutex_lock(&d->depth.mu);
  d->depth.stopping = true;
  pthread_cond_broadcast(&d->depth.cv);
  pthread_mutex_unlock(&d->depth.mu);
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

/* Is `name` an item of the comma-separated `list`? */
static bool listed(const char *list, const char *name) {
  size_t n = strlen(name);
  for (const char *p = list; p && *p;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if ((len == n && !strncmp(p, name, n)) ||
        (len == 3 && !strncmp(p, "all", 3)))
      return true;
    p = end ? end + 1 : NULL;
  }
  return false;
}

bool strata__device_managed(const strata_runtime_t *rt,
                            const strata__device_t *d, const char *wanted) {
  uint32_t kinds = d->desc.memory_kinds;
  if (!d->desc.own_memory)
    return false;
  if (kinds == STRATA_MEMORY_MANAGED)
    return true;
  if (!listed(wanted, d->desc.name))
    return false;
  if (!(kinds & STRATA_MEMORY_MANAGED)) {
    STRATA_LOG(&rt->log, STRATA_LOG_INFO, COMP,
               "managed_devices: %s offers no managed memory; its data stays "
               "in device memory",
               d->desc.name);
    return false;
  }
  STRATA_LOG(&rt->log, STRATA_LOG_INFO, COMP, "%s: data in managed memory",
             d->desc.name);
  return true;
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
  double bw;
  if (strata__peers_best(rt, index, &bw))
    info.peer_gbps = (float)(bw / 1e9);
  for (size_t s = 0; s < rt->ndevices; s++)
    info.npeers += strata__peers_direct(rt, index, (int)s);
  memcpy(info.uuid, d->desc.uuid, sizeof info.uuid);
  info.cc_major = d->desc.cc_major;
  info.cc_minor = d->desc.cc_minor;
  info.memory_bus_width = d->desc.memory_bus_width;
  info.pcie_gen = d->desc.pcie_gen;
  info.pcie_width = d->desc.pcie_width;
  info.managed = d->node >= 0 &&
                 (size_t)d->node < strata__memory_nnodes(&rt->mem) &&
                 strata__memory_node_managed(&rt->mem, (size_t)d->node);
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
    const strata__worker_slot_t *s = &d->workers[w];
    st.tasks_run += atomic_load(&s->w.tasks_run) + atomic_load(&s->w.far_run);
    st.tasks_failed +=
        atomic_load(&s->w.tasks_failed) + atomic_load(&s->w.far_failed);
    st.busy_ns += atomic_load(&s->w.busy_ns) + atomic_load(&s->w.far_busy_ns);
  }
  st.load = strata__device_load(d);
  strata__queue_device_stats(&d->queue, &st);
  return strata__copy_out(out, &st, sizeof st);
}

int strata_device_health(const strata_runtime_t *rt, int index,
                         strata_health_t *out) {
  const strata__device_t *d;
  int qrc = query(rt, index, out, &d);
  if (qrc)
    return qrc;
  /* The cache, never the backend: a slow driver call must not hold up
   * placement or a policy's view. */
  strata_health_t h;
  int rc = strata__health_read(rt, index, &h);
  if (rc)
    return rc;
  h.struct_size = sizeof h;
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
