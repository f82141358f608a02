/* SPDX-License-Identifier: MIT */
/* runtime/data/memory.c: the memory nodes (host, pinned, spill, one per
 * device with its own memory), their set-up from the runtime options and
 * the device tiers, their teardown, the working-set queries placement
 * asks, and the public node and link queries. The rest of the memory
 * manager is in the files memory_impl.h lists.
 *
 * Owns: rt->mem's node table, links table and tier list (written only
 * here, at init and fini, by the owner thread). Locking: the public
 * queries read a node's used and cached bytes under its mu, and the
 * counters atomically; nothing here holds a lock across a call out. */
#include "config.h"

#include "memory_impl.h"

#include "optlist.h"

#include <string.h>

static int add_node(strata_runtime_t *rt, strata__node_kind_t kind,
                    strata__device_t *dev, const char *name,
                    uint64_t capacity) {
  strata__mnode_t *n = strata__zalloc(&rt->alloc, sizeof *n);
  if (!n)
    return -1;
  n->index = (int)rt->mem.nnodes;
  n->kind = kind;
  n->dev = dev;
  n->capacity = capacity;
  strata__strlcpy(n->name, name, sizeof n->name);
  pthread_mutex_init(&n->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&n->freed, &ca);
  pthread_condattr_destroy(&ca);
  rt->mem.nodes[rt->mem.nnodes++] = n;
  return n->index;
}

/* Parse "pinned,host" into the list of tiers device evictions go to. */
static int parse_tiers(strata_runtime_t *rt, const char *list) {
  static const strata__optfmt_t fmt = {.option = "device_tiers",
                                       .kind = STRATA__OPT_LIST};
  strata__memory_t *m = &rt->mem;
  char err[256], q[64];
  m->ndevice_tiers = 0;
  if (strata__opt_check(&fmt, strata__opt_span(list), err, sizeof err)) {
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, STRATA__MEMORY_COMP, "%s", err);
    return STRATA_EINVAL;
  }
  strata__optitem_t it;
  for (size_t c = 0; strata__opt_next(&fmt, strata__opt_span(list), &c, &it);) {
    int node = strata__opt_is(it.key, "pinned")  ? m->pinned
               : strata__opt_is(it.key, "host")  ? m->host
               : strata__opt_is(it.key, "spill") ? m->spill
                                                 : -1;
    if (node < 0 || m->ndevice_tiers == 3) {
      STRATA_LOG(&rt->log, STRATA_LOG_ERROR, STRATA__MEMORY_COMP,
                 "device_tiers '%s': %s is not an available tier "
                 "(pinned needs pinned_bytes, spill needs spill_dir)",
                 list, strata__opt_quote(it.key, q, sizeof q));
      return STRATA_EINVAL;
    }
    m->device_tiers[m->ndevice_tiers++] = node;
  }
  return STRATA_OK;
}

int strata__memory_init(strata_runtime_t *rt,
                        const strata_runtime_opts_t *opts) {
  strata__memory_t *m = &rt->mem;
  size_t max = 3 + rt->ndevices;
  m->nodes = strata__zalloc(&rt->alloc, max * sizeof *m->nodes);
  if (!m->nodes)
    return STRATA_ENOMEM;
  m->pinned = m->spill = -1;
  strata__spill_init(&m->files);
  m->copy_retries = 3;
  m->eager_writeback = opts->eager_writeback;
  if ((m->host =
           add_node(rt, STRATA__NODE_HOST, NULL, "host", opts->host_bytes)) < 0)
    return STRATA_ENOMEM;
  if (opts->pinned_bytes &&
      (m->pinned = add_node(rt, STRATA__NODE_PINNED, NULL, "pinned host",
                            opts->pinned_bytes)) < 0)
    return STRATA_ENOMEM;
  if (opts->spill_dir) {
    int rc =
        strata__spill_open(&m->files, opts->spill_dir, &rt->alloc, &rt->log);
    if (rc)
      return rc;
    if ((m->spill = add_node(rt, STRATA__NODE_SPILL, NULL, "spill", 0)) < 0)
      return STRATA_ENOMEM;
  }
  for (size_t i = 0; i < rt->ndevices; i++) {
    strata__device_t *d = rt->devices[i];
    if (!d->desc.own_memory) {
      d->node = m->host;
      continue;
    }
    uint64_t cap = d->desc.memory_bytes;
    if (opts->device_bytes && (!cap || opts->device_bytes < cap))
      cap = opts->device_bytes;
    if ((d->node = add_node(rt, STRATA__NODE_DEVICE, d, d->desc.name, cap)) < 0)
      return STRATA_ENOMEM;
    m->nodes[d->node]->managed =
        strata__device_managed(rt, d, opts->managed_devices);
  }
  m->active = m->nnodes > 1 || opts->host_bytes;
  m->links =
      strata__zalloc(&rt->alloc, m->nnodes * m->nnodes * sizeof *m->links);
  if (!m->links)
    return STRATA_ENOMEM;
  return parse_tiers(rt, opts->device_tiers ? opts->device_tiers
                         : m->pinned >= 0   ? "pinned,host"
                                            : "host");
}

void strata__memory_fini(strata_runtime_t *rt) {
  strata__memory_t *m = &rt->mem;
  if (!m->nodes)
    return; /* init never ran, or failed before anything was set up */
  for (size_t i = 0; i < m->nnodes; i++) {
    strata__mnode_t *n = m->nodes[i];
    strata__blockcache_fini(rt, n);
    pthread_cond_destroy(&n->freed);
    pthread_mutex_destroy(&n->mu);
    strata__free(&rt->alloc, n, sizeof *n);
  }
  strata__free(&rt->alloc, m->links, m->nnodes * m->nnodes * sizeof *m->links);
  strata__free(&rt->alloc, m->nodes, (3 + rt->ndevices) * sizeof *m->nodes);
  strata__spill_fini(&m->files, &rt->alloc, &rt->log);
  memset(m, 0, sizeof *m);
}

uint64_t strata__memory_working_set(const strata__task_t *t,
                                    uint64_t *managed) {
  uint64_t bytes = 0;
  *managed = 0;
  for (size_t i = 0; i < t->naccess; i++)
    if (strata__task_access_mode(t, i)) {
      bytes += t->access[i].buf->size;
      if (t->access[i].buf->managed_by)
        *managed += t->access[i].buf->size;
    }
  return bytes;
}

uint64_t strata__memory_task_room(const strata_runtime_t *rt,
                                  const strata__task_t *t, int node) {
  const strata__mnode_t *n = rt->mem.nodes[node];
  return strata__memory_aliases_managed(n) ? t->working_set - t->managed_set
                                           : t->working_set;
}

bool strata__memory_fits(strata_runtime_t *rt, int d, const strata__task_t *t) {
  int node = rt->devices[d]->node;
  strata__mnode_t *n = node_of(rt, node);
  return !n->capacity || strata__memory_task_room(rt, t, node) <= n->capacity;
}

/* {=== Shared managed memory (strata_buffer_create_managed) ===} */

bool strata__memory_aliases_managed(const strata__mnode_t *n) {
  return n->kind == STRATA__NODE_DEVICE &&
         (n->dev->desc.memory_kinds & STRATA_MEMORY_MANAGED);
}

int strata__memory_managed_alloc(strata_runtime_t *rt, size_t size, void **ptr,
                                 strata__device_t **by) {
  for (size_t i = 0; i < rt->ndevices; i++) {
    strata__device_t *d = rt->devices[i];
    if (!d->desc.own_memory || atomic_load(&d->failed) ||
        !strata__memory_aliases_managed(node_of(rt, d->node)))
      continue;
    if (d->backend->comp->managed_alloc(d->backend->state, d->bindex, size,
                                        ptr))
      return STRATA_ENOMEM;
    /* Zeroed by the host, whose pages it first is. */
    memset(*ptr, 0, size);
    strata__mnode_t *h = rt->mem.nodes[rt->mem.host];
    pthread_mutex_lock(&h->mu);
    h->used += size;
    pthread_mutex_unlock(&h->mu);
    *by = d;
    return STRATA_OK;
  }
  STRATA_LOG(&rt->log, STRATA_LOG_ERROR, STRATA__MEMORY_COMP,
             "a managed buffer needs a device that offers managed memory "
             "(a CUDA card); none here does");
  return STRATA_ENOTSUP;
}

void strata__memory_managed_free(strata_runtime_t *rt, strata__device_t *by,
                                 void *ptr, size_t size) {
  by->backend->comp->managed_free(by->backend->state, by->bindex, ptr, size);
  strata__mnode_t *h = rt->mem.nodes[rt->mem.host];
  pthread_mutex_lock(&h->mu);
  h->used -= size;
  pthread_mutex_unlock(&h->mu);
}

/* {=== Public queries ===} */

int strata_memory_node_count(const strata_runtime_t *rt) {
  return rt ? (int)rt->mem.nnodes : STRATA_EINVAL;
}

int strata_memory_node_info(const strata_runtime_t *rt, int node,
                            strata_memory_node_info_t *out) {
  if (!rt || !out || out->struct_size <= sizeof(size_t))
    return STRATA_EINVAL;
  if (node < 0 || (size_t)node >= rt->mem.nnodes)
    return STRATA_ERANGE;
  strata__mnode_t *n = rt->mem.nodes[node];
  strata_memory_node_info_t info = {.struct_size = sizeof info};
  info.index = node;
  info.kind = (strata_node_kind_t)n->kind;
  info.device = n->dev ? n->dev->index : -1;
  memcpy(info.name, n->name, sizeof info.name);
  info.capacity = n->capacity;
  pthread_mutex_lock(&n->mu);
  info.used = n->used;
  info.cached = n->cached_bytes;
  pthread_mutex_unlock(&n->mu);
  info.evictions = atomic_load(&n->evictions);
  info.writebacks = atomic_load(&n->writebacks);
  info.hits = atomic_load(&n->hits);
  info.misses = atomic_load(&n->misses);
  info.prefetches = atomic_load(&n->prefetches);
  return strata__copy_out(out, &info, sizeof info);
}

int strata_link_stats(const strata_runtime_t *rt, int src, int dst,
                      strata_link_stats_t *out) {
  if (!rt || !out || out->struct_size <= sizeof(size_t))
    return STRATA_EINVAL;
  int n = (int)rt->mem.nnodes;
  if (src < 0 || src >= n || dst < 0 || dst >= n)
    return STRATA_ERANGE;
  const strata__link_t *l = &rt->mem.links[src * n + dst];
  strata_link_stats_t st = {.struct_size = sizeof st};
  st.bytes = atomic_load(&l->bytes);
  st.copies = atomic_load(&l->copies);
  st.failures = atomic_load(&l->failures);
  return strata__copy_out(out, &st, sizeof st);
}
