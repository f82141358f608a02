/* SPDX-License-Identifier: MIT */
/* runtime/scheduling/plan.c: the estimated timeline of placed work (see
 * plan.h). */
#include "config.h"

#include "plan.h"

#include "runtime.h"

static uint64_t to_ns(double s) {
  return s > 0 && s < 1e9 ? (uint64_t)(s * 1e9) : 0;
}

static double to_s(uint64_t ns) { return (double)ns * 1e-9; }

static double max2(double a, double b) { return a > b ? a : b; }

int strata__plan_init(strata__plan_t *pl, strata_runtime_t *rt, bool modelled) {
  size_t n = rt->ndevices ? rt->ndevices : 1, slots = 0;
  for (size_t d = 0; d < rt->ndevices; d++)
    slots += rt->devices[d]->desc.nworkers ? rt->devices[d]->desc.nworkers : 1;
  pl->ndevices = n;
  pl->nslots = slots ? slots : 1;
  pl->modelled = modelled;
  pl->origin = strata__now_ns();
  pl->slot_free =
      strata__zalloc(&rt->alloc, pl->nslots * sizeof *pl->slot_free);
  pl->first_slot = strata__zalloc(&rt->alloc, n * sizeof *pl->first_slot);
  pl->link_free = strata__zalloc(&rt->alloc, 2 * n * sizeof *pl->link_free);
  if (!pl->slot_free || !pl->first_slot || !pl->link_free) {
    strata__plan_fini(pl, rt);
    return STRATA_ENOMEM;
  }
  for (size_t d = 0, s = 0; d < rt->ndevices; d++) {
    pl->first_slot[d] = s;
    s += rt->devices[d]->desc.nworkers ? rt->devices[d]->desc.nworkers : 1;
  }
  return STRATA_OK;
}

void strata__plan_fini(strata__plan_t *pl, strata_runtime_t *rt) {
  strata__free(&rt->alloc, pl->slot_free, pl->nslots * sizeof *pl->slot_free);
  strata__free(&rt->alloc, pl->first_slot,
               pl->ndevices * sizeof *pl->first_slot);
  strata__free(&rt->alloc, pl->link_free,
               2 * pl->ndevices * sizeof *pl->link_free);
  pl->slot_free = pl->link_free = NULL;
  pl->first_slot = NULL;
}

double strata__plan_now(const strata__plan_t *pl, const strata_runtime_t *rt) {
  if (!pl->modelled)
    return to_s(strata__now_ns() - pl->origin);
  uint64_t latest = 0;
  for (size_t d = 0; d < rt->ndevices; d++) {
    strata_device_model_t m = {.struct_size = sizeof m};
    if (strata_device_model(rt, (int)d, &m) == STRATA_OK && m.clock_ns > latest)
      latest = m.clock_ns;
  }
  return to_s(latest);
}

/* The device whose host link a copy from memory node n crosses, or -1
 * (host memory, or a node without a device). */
static int device_of_node(const strata_runtime_t *rt, int n) {
  const strata__device_t *dev = strata__memory_node_device(&rt->mem, (size_t)n);
  return dev && dev->desc.own_memory ? dev->index : -1;
}

static bool host_like_valid(const strata_runtime_t *rt,
                            const strata__buffer_t *b) {
  for (size_t n = 0; n < strata__memory_nnodes(&rt->mem); n++)
    if (device_of_node(rt, (int)n) < 0 && strata__replica_valid(&b->rep[n]))
      return true;
  return false;
}

/* The card holding b's only copy when no writer is placed, or -1. */
static int holding_card(const strata_runtime_t *rt, const strata__buffer_t *b) {
  for (size_t n = 0; n < strata__memory_nnodes(&rt->mem); n++)
    if (strata__replica_valid(&b->rep[n]))
      return device_of_node(rt, (int)n);
  return -1;
}

/* A crossing of device d's host link, out of the card into host memory
 * or into it (bandwidth bw; 0: the link's own). */
static strata__plan_leg_t leg(const strata_runtime_t *rt, int d, bool out,
                              size_t size, double bw) {
  const strata__device_t *dev = rt->devices[d];
  if (bw <= 0)
    bw = dev->desc.link_bandwidth;
  return (strata__plan_leg_t){
      STRATA__PLAN_LINK(d, out),
      bw > 0 ? (double)size / bw + dev->desc.link_latency : 0, out};
}

/* A buffer needs a copy to d unless it is valid there now and no task
 * placed elsewhere is about to write it (its last writer's device, noted
 * at placement, says where its data will be). Coming from a card, the
 * copy goes out over that card's host link; going to a card, in over
 * that card's: both, for two cards that are not peers (the runtime stages
 * through host memory). A peer copy is booked on the way into the
 * destination at the peer bandwidth (the host link's when the backend
 * does not say). */
int strata__plan_copy(const strata_runtime_t *rt, const strata__buffer_t *b,
                      int d, strata__plan_leg_t legs[2], double *staged) {
  const strata__device_t *dev = rt->devices[d];
  int node = dev->node;
  int wd = atomic_load_explicit(&b->writer_device, memory_order_relaxed);
  int from = wd >= 0 ? rt->devices[wd]->node : -1;
  bool here = strata__replica_valid(&b->rep[node]);
  uint64_t planned = atomic_load_explicit(&b->plan_valid, memory_order_relaxed);
  if (from == node || (here && (from < 0 || wd == d)) ||
      (d < 64 && (planned >> d & 1)))
    return 0;
  int card = from >= 0                ? device_of_node(rt, from)
             : host_like_valid(rt, b) ? -1
                                      : holding_card(rt, b);
  bool peer = card >= 0 && strata__peers_direct(rt, d, card);
  uint64_t host = atomic_load_explicit(&b->plan_host, memory_order_relaxed);
  *staged = -1;
  if (card >= 0 && !peer && host) {
    *staged = to_s(host - 1);
    card = -1;
  }
  int n = 0;
  if (card >= 0 && !peer)
    legs[n++] = leg(rt, card, true, b->size, 0);
  if (dev->desc.own_memory)
    legs[n++] = leg(rt, d, false, b->size,
                    peer ? strata__peers_bandwidth(rt, d, card) : 0);
  return n;
}

/* When t's copy over `link` could start: after the copies this task
 * already queued on it, else when the link is free. */
static double *link_end(strata__plan_est_t *e, const strata__plan_t *pl,
                        int link) {
  for (int i = 0; i < e->nlinks; i++)
    if (e->link[i] == link)
      return &e->link_end[i];
  if (e->nlinks == STRATA__PLAN_LINKS)
    return NULL;
  e->link[e->nlinks] = link;
  e->link_end[e->nlinks] = max2(
      e->now,
      to_s(atomic_load_explicit(&pl->link_free[link], memory_order_relaxed)));
  return &e->link_end[e->nlinks++];
}

void strata__plan_eval(const strata__plan_t *pl, strata_runtime_t *rt,
                       const strata__task_t *t, int d, double now,
                       strata__plan_est_t *e) {
  unsigned workers = rt->devices[d]->desc.nworkers;
  e->now = now;
  e->nlinks = e->nstaged = 0;
  e->slot = pl->first_slot[d];
  uint64_t free_ns =
      atomic_load_explicit(&pl->slot_free[e->slot], memory_order_relaxed);
  for (unsigned w = 1; w < workers; w++) {
    uint64_t f = atomic_load_explicit(&pl->slot_free[pl->first_slot[d] + w],
                                      memory_order_relaxed);
    if (f < free_ns) {
      free_ns = f;
      e->slot = pl->first_slot[d] + w;
    }
  }
  double slot = max2(now, to_s(free_ns)), ready = slot;
  e->copy_s = 0;
  for (size_t i = 0; i < t->naccess; i++) {
    if (!(strata__task_access_mode(t, i) & STRATA_R))
      continue;
    strata__buffer_t *b = t->access[i].buf;
    double made = max2(
        now, to_s(atomic_load_explicit(&b->plan_ready, memory_order_relaxed)));
    strata__plan_leg_t legs[2];
    double staged;
    int nlegs = strata__plan_copy(rt, b, d, legs, &staged);
    made = max2(made, staged);
    for (int k = 0; k < nlegs; k++) {
      double *end = link_end(e, pl, legs[k].link);
      /* A link is booked as a throughput: a copy whose data comes late
       * does not hold back the copies queued after it (the runtime
       * copies whatever is ready); it just cannot end before its data is
       * made and has crossed. */
      e->copy_s += legs[k].seconds;
      if (end)
        *end += legs[k].seconds;
      made = max2(end ? *end : made, made + legs[k].seconds);
      if (legs[k].to_host && e->nstaged < STRATA__PLAN_LINKS) {
        e->staged[e->nstaged] = b;
        e->staged_at[e->nstaged++] = made;
      }
    }
    ready = max2(ready, made);
  }
  double run = strata__estimates_run_time(rt, t, d);
  e->start = ready;
  e->finish = ready + run;
  /* The worker is booked as a throughput too: a task waiting for late
   * inputs does not hold back tasks placed after it that are ready
   * sooner (they run first; the queue takes what is ready). */
  e->slot_end = slot + run;
}

/* eft's last choice on this thread, until the placement that follows. */
static _Thread_local struct {
  const strata__plan_t *pl;
  const strata__task_t *t;
  int d;
  strata__plan_est_t e;
} chosen;

void strata__plan_remember(const strata__plan_t *pl, const strata__task_t *t,
                           int d, const strata__plan_est_t *e) {
  chosen.pl = pl;
  chosen.t = t;
  chosen.d = d;
  chosen.e = *e;
}

bool strata__plan_recall(const strata__plan_t *pl, const strata__task_t *t,
                         int d, strata__plan_est_t *e) {
  bool kept = chosen.pl == pl && chosen.t == t && chosen.d == d;
  if (kept)
    *e = chosen.e;
  chosen.t = NULL;
  return kept;
}

void strata__plan_forget(void) { chosen.t = NULL; }

void strata__plan_commit(strata__plan_t *pl, const strata__task_t *t, int d,
                         const strata__plan_est_t *e) {
  uint64_t finish = to_ns(e->finish);
  atomic_store_explicit(&pl->slot_free[e->slot], to_ns(e->slot_end),
                        memory_order_relaxed);
  for (int i = 0; i < e->nlinks; i++)
    atomic_store_explicit(&pl->link_free[e->link[i]], to_ns(e->link_end[i]),
                          memory_order_relaxed);
  for (size_t i = 0; d < 64 && i < t->naccess; i++)
    if (strata__task_access_mode(t, i) & STRATA_R)
      atomic_fetch_or_explicit(&t->access[i].buf->plan_valid, UINT64_C(1) << d,
                               memory_order_relaxed);
  for (int i = 0; i < e->nstaged; i++)
    atomic_store_explicit(&e->staged[i]->plan_host, to_ns(e->staged_at[i]) + 1,
                          memory_order_relaxed);
  for (size_t i = 0; i < t->naccess; i++)
    if (strata__task_access_mode(t, i) & STRATA_W) {
      strata__buffer_t *b = t->access[i].buf;
      atomic_store_explicit(&b->plan_ready, finish, memory_order_relaxed);
      atomic_store_explicit(&b->plan_host, 0, memory_order_relaxed);
      atomic_store_explicit(&b->plan_valid, d < 64 ? UINT64_C(1) << d : 0,
                            memory_order_relaxed);
      atomic_store_explicit(&b->writer_device, d, memory_order_relaxed);
    }
}
