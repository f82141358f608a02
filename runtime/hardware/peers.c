/* SPDX-License-Identifier: MIT */
/* runtime/hardware/peers.c: the machine-wide peer matrix (see peers.h). Bus ids
 * are compared without regard to case ("0000:17:00.0" and "0000:17:00.0"
 * spelled by two drivers may differ only so). */
#include "config.h"

#include "runtime.h"

#include <string.h>
#include <strings.h>

#define COMP "peers"

/* The entry of device `from`'s peers list that names device `to`, or
 * NULL. */
static const strata_backend_peer_t *entry(const strata__device_t *from,
                                          const strata__device_t *to) {
  if (!to->desc.pci_busid[0])
    return NULL;
  for (uint32_t k = 0; k < from->desc.npeers; k++)
    if (!strncasecmp(from->desc.peers[k].busid, to->desc.pci_busid,
                     sizeof to->desc.pci_busid))
      return &from->desc.peers[k];
  return NULL;
}

static double min_known(double a, double b) {
  return a > 0 && b > 0 ? STRATA_MIN(a, b) : a > 0 ? a : b;
}

/* Look at one ordered pair: src -> dst. */
static void match(strata_runtime_t *rt, size_t dst, size_t src) {
  strata__peers_t *p = &rt->peers;
  const strata__device_t *d = rt->devices[dst], *s = rt->devices[src];
  const strata_backend_peer_t *ds = entry(d, s), *sd = entry(s, d);
  if (!ds && !sd)
    return;
  if (!ds || !sd) {
    STRATA_LOG(&rt->log, STRATA_LOG_INFO, COMP,
               "%s lists %s as a peer, but not the other way: no direct path",
               ds ? d->desc.name : s->desc.name,
               ds ? s->desc.name : d->desc.name);
    return;
  }
  double bw = min_known(ds->bandwidth, sd->bandwidth);
  if (!(bw > 0))
    bw = min_known(d->desc.link_bandwidth, s->desc.link_bandwidth);
  p->path[dst * p->n + src] = true;
  p->bw[dst * p->n + src] = bw;
  STRATA_LOG(&rt->log, STRATA_LOG_INFO, COMP,
             "direct path %s (%s) -> %s (%s), %.1f GB/s", s->desc.name,
             s->backend->name, d->desc.name, d->backend->name, bw / 1e9);
}

int strata__peers_build(strata_runtime_t *rt) {
  strata__peers_t *p = &rt->peers;
  size_t n = rt->ndevices;
  strata__peers_free(rt);
  if (!n)
    return STRATA_OK;
  p->path = strata__zalloc(&rt->alloc, n * n * sizeof *p->path);
  p->bw = strata__zalloc(&rt->alloc, n * n * sizeof *p->bw);
  p->n = n;
  if (!p->path || !p->bw) {
    strata__peers_free(rt);
    return STRATA_ENOMEM;
  }
  for (size_t dst = 0; dst < n; dst++)
    for (size_t src = 0; src < n; src++)
      if (src != dst && rt->devices[dst]->desc.own_memory &&
          rt->devices[src]->desc.own_memory)
        match(rt, dst, src);
  return STRATA_OK;
}

void strata__peers_free(strata_runtime_t *rt) {
  strata__peers_t *p = &rt->peers;
  strata__free(&rt->alloc, p->path, p->n * p->n * sizeof *p->path);
  strata__free(&rt->alloc, p->bw, p->n * p->n * sizeof *p->bw);
  *p = (strata__peers_t){0};
}

static bool in_range(const strata__peers_t *p, int dst, int src) {
  return p->path && dst >= 0 && src >= 0 && (size_t)dst < p->n &&
         (size_t)src < p->n;
}

bool strata__peers_direct(const strata_runtime_t *rt, int dst, int src) {
  const strata__peers_t *p = &rt->peers;
  return in_range(p, dst, src) && p->path[(size_t)dst * p->n + (size_t)src];
}

double strata__peers_bandwidth(const strata_runtime_t *rt, int dst, int src) {
  const strata__peers_t *p = &rt->peers;
  return strata__peers_direct(rt, dst, src)
             ? p->bw[(size_t)dst * p->n + (size_t)src]
             : 0;
}

bool strata__peers_best(const strata_runtime_t *rt, int dst, double *bw) {
  const strata__peers_t *p = &rt->peers;
  bool any = false;
  *bw = 0;
  for (size_t s = 0; p->path && dst >= 0 && (size_t)dst < p->n && s < p->n; s++)
    if (p->path[(size_t)dst * p->n + s]) {
      any = true;
      *bw = STRATA_MAX(*bw, p->bw[(size_t)dst * p->n + s]);
    }
  return any;
}

int strata_device_peer(const strata_runtime_t *rt, int dst, int src,
                       double *bytes_per_s) {
  if (!rt)
    return STRATA_EINVAL;
  if (dst < 0 || src < 0 || dst >= (int)rt->ndevices ||
      src >= (int)rt->ndevices)
    return STRATA_ERANGE;
  bool direct = strata__peers_direct(rt, dst, src);
  if (bytes_per_s)
    *bytes_per_s = direct ? strata__peers_bandwidth(rt, dst, src) : 0;
  return direct;
}
