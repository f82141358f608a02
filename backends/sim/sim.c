/* SPDX-License-Identifier: MIT */
/* backends/sim/sim.c: simulated devices described by a machine file
 * (machine.h). Each device's memory is separate host memory, allocated
 * and copied through this backend, so a coherence bug shows as wrong
 * data; kernels run their CPU implementation on the device's workers. In
 * "modelled" time each device keeps a virtual clock: a copy costs
 * latency + bytes / link bandwidth, a task flops / rate (or its bytes over
 * memory bandwidth, whichever is longer), so a what-if study of a large
 * machine runs on a small one. Every modelled time saturates at
 * SIM_TIME_MAX (machine.h) rather than overflow, whatever the figures and
 * the tasks' flops. Faults (failing copies, a device that dies,
 * one that runs hot) come from the description or, at any time, from
 * strata_device_inject.
 *
 * Execution is asynchronous, as on a real card: a worker thread runs the
 * kernel it takes and goes back to next(), and the backend's completion
 * thread completes the work, in real time once its modelled compute time
 * has passed (the device's compute slots, one per worker, are booked in
 * wall-clock time), in modelled time at once. A device holds up to
 * inflight_depth works (twice its workers unless depth= says otherwise),
 * and works end in the order their times say, not the order they began.
 * A work (or copy) already due when it is issued, with none queued
 * before it, ends on the thread that issued it instead: thread hops cost
 * more than such a work (see finish, sim_copy_async).
 *
 * Options: machine=PATH (no devices without it), time=real|modelled,
 * skip_kernels=1 (modelled only), classes=hbm+gddr (keep only those
 * classes of the description), depth=N (works in flight per device). */
#include "config.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <strata/backend.h>

#include "machine.h"
#include "optlist.h"

typedef struct sim_state sim_state_t;

/* What a worker slot or a host link is busy with in modelled time: the
 * intervals [s, e), sorted and disjoint. Work is booked into the earliest
 * gap that fits after its data is valid, so the modelled schedule does not
 * depend on the order in which the host happened to run the kernels (a
 * slow simulated device's task may really end first). */
typedef struct sim_span {
  double s, e;
} sim_span_t;

typedef struct sim_timeline {
  sim_span_t *v;
  size_t n, cap;
} sim_timeline_t;

enum { LINK_IN, LINK_OUT };

typedef struct sim_dev {
  sim_state_t *st;
  const sim_device_spec_t *spec;
  strata_device_handle_t *handle;
  _Atomic uint64_t tasks;  /* started, for die_after and hot_after */
  _Atomic uint64_t copies; /* for copy_fail_at */
  atomic_bool dead;
  _Atomic uint64_t mem_used;
  /* Faults injected through the API (strata_device_inject). */
  _Atomic uint64_t copy_fail_next;   /* copies left to fail */
  atomic_bool die_next;              /* fail at the next task */
  _Atomic double temperature, power; /* readings; NAN: the description's */
  /* Modelled time, in seconds (st->model_mu): the device's clock is the
   * latest of its workers' (each runs one task at a time). */
  double clock, busy, copy_time;
  /* The host link carries each direction on its own (PCIe and NVLink
   * are full duplex): [LINK_IN] into the device, [LINK_OUT] out of it. */
  sim_timeline_t link[2];
  sim_timeline_t *wline; /* spec->workers entries */
  /* Real time (st->done_mu): when each compute slot is free, in
   * CLOCK_MONOTONIC ns. */
  uint64_t *slot_free; /* spec->workers entries */
  /* Real time (st->copy_mu): when each direction of the host link is
   * free, in CLOCK_MONOTONIC ns: copies share a link one after another. */
  uint64_t link_free[2];
} sim_dev_t;

/* A work run and waiting for its end (st->done_mu). */
typedef struct sim_done {
  struct sim_done *next;
  strata_work_t *work;
  int status;
  uint64_t due; /* CLOCK_MONOTONIC ns; 0: now */
} sim_done_t;

typedef struct sim_thread {
  sim_dev_t *dev;
  unsigned worker;
  pthread_t tid;
} sim_thread_t;

/* When a piece of memory (device block or host buffer) last became valid,
 * in modelled time. */
typedef struct vt_entry {
  const void *ptr;
  double t;
} vt_entry_t;

/* A copy in flight: it lands (the bytes move, unless they did at issue)
 * and completes at `due`, from the copy thread, in the order of their due
 * times, whatever the order they were issued in. */
typedef struct sim_copy {
  const strata_backend_copy_t *op; /* the core's, valid until copy_done */
  void *token;
  uint64_t due_ns; /* CLOCK_MONOTONIC */
  int status;      /* decided at issue (injected failures) */
  bool landed;     /* the bytes moved at issue: only the report waits */
  struct sim_copy *next;
} sim_copy_t;

/* A first guess at what a memcpy costs, in ps per byte (10 GB/s), until
 * copies landed at issue have measured it; copies shorter than the _MIN
 * are not timed. */
#define SIM_MEMCPY_PS_GUESS 100u
#define SIM_MEMCPY_LEARN_MIN 16384u

struct sim_state {
  const strata_core_services_t *core;
  sim_machine_t machine;
  bool loaded;
  bool modelled, skip_kernels;
  strata_backend_device_t *descs;
  sim_dev_t *devs;
  size_t ndevs;
  sim_thread_t *threads;
  size_t nthreads, cap_threads;
  pthread_mutex_t model_mu;
  uint32_t depth; /* depth= (0: twice each device's workers) */
  /* {=== Completion (done_mu) ===} */
  pthread_mutex_t done_mu;
  pthread_cond_t done_cv; /* CLOCK_MONOTONIC; the completion thread */
  sim_done_t *due;        /* sorted by due time, FIFO among equals */
  sim_done_t *free_done;  /* one per work a device may hold */
  sim_done_t *done_block;
  size_t ndone;
  bool done_stop, completer_running;
  pthread_t completer;
  vt_entry_t *vt; /* open addressing, power-of-two size */
  size_t vt_cap, vt_n;
  /* Peer lists, one row of SIM_MAX_DEVICES per kept device. */
  strata_backend_peer_t *peers;
  /* Copies in flight, sorted by due time (copy_mu). */
  pthread_mutex_t copy_mu;
  pthread_cond_t copy_cv; /* CLOCK_MONOTONIC: a copy queued, stop */
  sim_copy_t *copies;
  pthread_t copy_tid;
  bool copy_running, copy_stop;
  /* What a memcpy of this host costs, in picoseconds per byte (a moving
   * average of the copies landed at issue; races only blur it). */
  _Atomic uint64_t memcpy_ps_per_byte;
};

/* {=== Allocation through the core ===} */

static void *sim_alloc(const strata_core_services_t *core, size_t n) {
  void *p = core->alloc(core->core, NULL, 0, n);
  if (p)
    memset(p, 0, n);
  return p;
}

static void sim_free(const strata_core_services_t *core, void *p, size_t n) {
  if (p)
    core->alloc(core->core, p, n, 0);
}

/* The machine parser allocates through a strata_alloc_fn: route it. */
static void *core_alloc_fn(void *ud, void *ptr, size_t osize, size_t nsize) {
  const strata_core_services_t *core = ud;
  return core->alloc(core->core, ptr, osize, nsize);
}

/* {=== Modelled time: validity times of memory (model_mu held) ===} */

static size_t vt_slot(const sim_state_t *st, const void *ptr) {
  uintptr_t h = (uintptr_t)ptr;
  h ^= h >> 17;
  h *= 0xed5ad4bbu;
  h ^= h >> 11;
  return h & (st->vt_cap - 1);
}

/* The slot holding ptr, or the free slot where it would go (vt_cap > 0;
 * the table is never full). */
static size_t vt_find(const sim_state_t *st, const void *ptr) {
  size_t i = vt_slot(st, ptr);
  while (st->vt[i].ptr && st->vt[i].ptr != ptr)
    i = (i + 1) & (st->vt_cap - 1);
  return i;
}

static double vt_get(const sim_state_t *st, const void *ptr) {
  if (!st->vt_cap)
    return 0;
  const vt_entry_t *e = &st->vt[vt_find(st, ptr)];
  return e->ptr ? e->t : 0;
}

static void vt_grow(sim_state_t *st) {
  size_t ncap = st->vt_cap ? st->vt_cap * 2 : 1024;
  vt_entry_t *nv = sim_alloc(st->core, ncap * sizeof *nv);
  if (!nv)
    return; /* the model just loses precision */
  vt_entry_t *old = st->vt;
  size_t ocap = st->vt_cap;
  st->vt = nv;
  st->vt_cap = ncap;
  st->vt_n = 0;
  for (size_t i = 0; i < ocap; i++)
    if (old[i].ptr) {
      st->vt[vt_find(st, old[i].ptr)] = old[i];
      st->vt_n++;
    }
  sim_free(st->core, old, ocap * sizeof *old);
}

static void vt_set(sim_state_t *st, const void *ptr, double t) {
  if (st->vt_n * 2 >= st->vt_cap)
    vt_grow(st);
  if (!st->vt_cap)
    return;
  vt_entry_t *e = &st->vt[vt_find(st, ptr)];
  /* Without memory to grow, a new block goes unrecorded rather than fill
   * the table (vt_find needs a free slot to stop at). */
  if (!e->ptr && st->vt_n + 1 >= st->vt_cap)
    return;
  if (!e->ptr)
    st->vt_n++;
  *e = (vt_entry_t){ptr, t};
}

/* Forget a block (linear probing: re-insert the run after it). */
static void vt_del(sim_state_t *st, const void *ptr) {
  if (!st->vt_cap)
    return;
  size_t i = vt_find(st, ptr);
  if (!st->vt[i].ptr)
    return;
  st->vt[i].ptr = NULL;
  st->vt_n--;
  for (size_t j = (i + 1) & (st->vt_cap - 1); st->vt[j].ptr;
       j = (j + 1) & (st->vt_cap - 1)) {
    vt_entry_t e = st->vt[j];
    st->vt[j].ptr = NULL;
    st->vt_n--;
    vt_set(st, e.ptr, e.t);
  }
}

static double max2(double a, double b) { return a > b ? a : b; }

/* {=== Timelines ===} */

/* Spans kept per timeline: beyond this two neighbours merge (the oldest
 * two, unless the new span goes between them; the gap between them is
 * given up), which keeps booking cheap on long runs. */
#define SIM_SPANS 512

/* The earliest start at or after `ready` of a gap of `len` in tl. */
static double timeline_find(const sim_timeline_t *tl, double ready,
                            double len) {
  double t = ready;
  for (size_t i = 0; i < tl->n; i++) {
    if (t + len <= tl->v[i].s)
      return t;
    t = max2(t, tl->v[i].e);
  }
  return t;
}

static void timeline_free(const strata_core_services_t *core,
                          sim_timeline_t *tl) {
  sim_free(core, tl->v, tl->cap * sizeof *tl->v);
  *tl = (sim_timeline_t){0};
}

/* Mark [s, e) busy (found free by timeline_find). Without memory for the
 * span, everything before e is taken as busy (later than it could be);
 * without memory for the first span, nothing is recorded. */
static void timeline_book(const strata_core_services_t *core,
                          sim_timeline_t *tl, double s, double e) {
  if (e <= s)
    return;
  size_t i = 0;
  while (i < tl->n && tl->v[i].e <= s)
    i++;
  if (i > 0 && tl->v[i - 1].e == s) { /* extends the one before */
    tl->v[i - 1].e = e;
    if (i < tl->n && tl->v[i].s == e) {
      tl->v[i - 1].e = tl->v[i].e;
      memmove(&tl->v[i], &tl->v[i + 1], (tl->n - i - 1) * sizeof *tl->v);
      tl->n--;
    }
    return;
  }
  if (i < tl->n && tl->v[i].s == e) { /* extends the one after */
    tl->v[i].s = s;
    return;
  }
  if (tl->n == SIM_SPANS) { /* merge two spans away from the new one */
    size_t k = i >= 2 ? 0 : tl->n - 2;
    tl->v[k].e = tl->v[k + 1].e;
    memmove(&tl->v[k + 1], &tl->v[k + 2], (tl->n - k - 2) * sizeof *tl->v);
    tl->n--;
    i -= i >= 2;
  }
  if (tl->n == tl->cap) {
    size_t cap = tl->cap ? 2 * tl->cap : 16;
    sim_span_t *v = sim_alloc(core, cap * sizeof *v);
    if (!v && tl->n) {
      tl->v[0] = (sim_span_t){0, max2(e, tl->v[tl->n - 1].e)};
      tl->n = 1;
    }
    if (!v)
      return;
    if (tl->n)
      memcpy(v, tl->v, tl->n * sizeof *v);
    sim_free(core, tl->v, tl->cap * sizeof *tl->v);
    tl->v = v;
    tl->cap = cap;
  }
  memmove(&tl->v[i + 1], &tl->v[i], (tl->n - i) * sizeof *tl->v);
  tl->v[i] = (sim_span_t){s, e};
  tl->n++;
}

/* A copy of `size` bytes in modelled time: into device `to` (NULL: into
 * host memory) from device `from` (NULL: from host memory). A copy over a
 * host link takes that direction of it; a peer copy both devices' (out of
 * one, into the other) at the peer bandwidth. */
static void model_copy(sim_state_t *st, sim_dev_t *to, sim_dev_t *from,
                       void *dst, const void *src, size_t size) {
  pthread_mutex_lock(&st->model_mu);
  sim_dev_t *dev = to ? to : from;
  double bw = to && from ? to->spec->peer_bandwidth : dev->spec->link_bandwidth;
  double len =
      sim_time_add(dev->spec->link_latency, sim_time_div((double)size, bw));
  sim_timeline_t *a = to ? &to->link[LINK_IN] : NULL;
  sim_timeline_t *b = from ? &from->link[LINK_OUT] : NULL;
  double t0 = vt_get(st, src);
  for (;;) { /* a gap free on both */
    double ta = a ? timeline_find(a, t0, len) : t0;
    double tb = b ? timeline_find(b, ta, len) : ta;
    if (tb == t0)
      break;
    t0 = tb;
  }
  double t1 = sim_time_add(t0, len);
  if (a) {
    timeline_book(st->core, a, t0, t1);
    to->copy_time = sim_time_add(to->copy_time, len);
  }
  if (b) {
    timeline_book(st->core, b, t0, t1);
    from->copy_time = sim_time_add(from->copy_time, len);
  }
  vt_set(st, dst, t1);
  pthread_mutex_unlock(&st->model_mu);
}

/* How long a task computes on one worker slot of the device: its flops at
 * the rate of its precision, or its bytes at memory bandwidth, whichever
 * is longer. The device's rates are shared by its workers: a task gets
 * its part. */
static double compute_time(const sim_device_spec_t *sp,
                           const strata_work_t *work) {
  const strata_kernel_call_t *c = &work->call;
  double bytes = 0;
  for (uint32_t i = 0; i < c->nbuffers; i++)
    bytes += (double)c->sizes[i];
  double share = sp->workers ? sp->workers : 1;
  double rate = work->precision == STRATA_PRECISION_FP64 ? sp->fp64 : sp->fp32;
  double t = sim_time_div(work->flops * share, rate);
  return max2(t, sim_time_div(bytes * share, sp->mem_bandwidth));
}

/* A task in modelled time: it starts in the earliest gap of a worker of
 * the device after its data is valid, and lasts its compute_time. */
static void model_task(sim_state_t *st, sim_dev_t *dev,
                       const strata_work_t *work) {
  const strata_kernel_call_t *c = &work->call;
  pthread_mutex_lock(&st->model_mu);
  double ready = 0;
  for (uint32_t i = 0; i < c->nbuffers; i++)
    ready = max2(ready, vt_get(st, c->buffers[i]));
  double t = compute_time(dev->spec, work);
  /* The task takes the worker slot that can start it first, whichever
   * thread really runs it: the model must not depend on which one woke. */
  sim_timeline_t *line = &dev->wline[0];
  double start = timeline_find(line, ready, t);
  for (unsigned w = 1; w < dev->spec->workers; w++) {
    double s = timeline_find(&dev->wline[w], ready, t);
    if (s < start) {
      start = s;
      line = &dev->wline[w];
    }
  }
  double end = sim_time_add(start, t);
  timeline_book(st->core, line, start, end);
  dev->clock = max2(dev->clock, end);
  dev->busy = sim_time_add(dev->busy, t);
  for (uint32_t i = 0; i < c->nbuffers; i++)
    if (c->modes && (c->modes[i] & STRATA_W))
      vt_set(st, c->buffers[i], end);
  pthread_mutex_unlock(&st->model_mu);
}

/* {=== Setup ===} */

static const char *const class_names[] = {"cpu", "hbm", "gddr"};
static const strata__optfmt_t CLASSES = {
    .option = "option classes", .kind = STRATA__OPT_LIST, .sep = '+'};

static bool class_kept(const char *classes, strata_device_class_t c) {
  strata__optitem_t it;
  return !*classes || strata__opt_find(&CLASSES, strata__opt_span(classes),
                                       class_names[c], &it);
}

/* classes= is a '+' list of class names ("hbm+gddr"; empty: all).
 * @return 0; STRATA_EINVAL (logged) */
static int check_classes(const strata_core_services_t *core,
                         const char *classes) {
  char err[256], q[64];
  if (strata__opt_check(&CLASSES, strata__opt_span(classes), err, sizeof err)) {
    core->log(core->core, STRATA_LOG_ERROR, "%s", err);
    return STRATA_EINVAL;
  }
  strata__optitem_t it;
  for (size_t c = 0;
       strata__opt_next(&CLASSES, strata__opt_span(classes), &c, &it);) {
    bool known = false;
    for (int k = 0; k < STRATA_CLASS_COUNT && !known; k++)
      known = strata__opt_is(it.key, class_names[k]);
    if (!known) {
      core->log(core->core, STRATA_LOG_ERROR,
                "option classes: position %zu: %s is not a class (cpu, hbm "
                "or gddr)",
                it.key.pos, strata__opt_quote(it.key, q, sizeof q));
      return STRATA_EINVAL;
    }
  }
  return STRATA_OK;
}

static void describe(const sim_device_spec_t *sp, uint32_t depth,
                     strata_backend_device_t *d) {
  d->struct_size = sizeof *d;
  d->device_class = sp->device_class;
  /* A simulated card is a candidate where a real one of its class would
   * be (the kernel has CUDA code) and runs the CPU code as the stand-in. */
  d->candidate_impl =
      sp->device_class == STRATA_CLASS_CPU ? STRATA_IMPL_CPU : STRATA_IMPL_CUDA;
  d->run_impl = STRATA_IMPL_CPU;
  memcpy(d->name, sp->name, sizeof d->name);
  memcpy(d->model, sp->model, sizeof d->model);
  memcpy(d->uuid, sp->uuid, sizeof d->uuid);
  d->memory_bytes = sp->memory;
  d->numa_node = sp->numa;
  d->nworkers = sp->workers;
  d->inflight_depth = depth ? depth : 2 * sp->workers;
  d->own_memory = sp->device_class != STRATA_CLASS_CPU;
  d->link_bandwidth = sp->link_bandwidth;
  d->link_latency = sp->link_latency;
  d->mem_bandwidth = sp->mem_bandwidth;
  d->fp64_flops = sp->fp64;
  d->fp32_flops = sp->fp32;
  d->ecc = sp->ecc;
  d->cc_major = sp->cc_major;
  d->cc_minor = sp->cc_minor;
  d->memory_bus_width = sp->memory_bus_width;
  d->pcie_gen = sp->pcie_gen;
  d->pcie_width = sp->pcie_width;
}

/* A bus id of its own for each simulated card, so that peer lists can
 * name it (domain 0x5151 is not one real buses use). */
static void sim_busid(strata_backend_device_t *d, size_t i) {
  if (d->own_memory)
    snprintf(d->pci_busid, sizeof d->pci_busid, "5151:%02x:00.0",
             (unsigned)(i & 0xff));
}

/* Keep the devices of the classes asked for; peer bits follow the new
 * indexes. */
static int build_devices(sim_state_t *st, const char *classes) {
  const sim_machine_t *m = &st->machine;
  st->descs = sim_alloc(st->core, m->ndevices * sizeof *st->descs);
  st->devs = sim_alloc(st->core, m->ndevices * sizeof *st->devs);
  int *newidx = sim_alloc(st->core, m->ndevices * sizeof *newidx);
  if (!st->descs || !st->devs || !newidx) {
    sim_free(st->core, newidx, m->ndevices * sizeof *newidx);
    return STRATA_ENOMEM;
  }
  for (size_t i = 0; i < m->ndevices; i++) {
    newidx[i] = -1;
    if (!class_kept(classes, m->devices[i].device_class))
      continue;
    newidx[i] = (int)st->ndevs;
    sim_dev_t *d = &st->devs[st->ndevs];
    d->st = st;
    d->spec = &m->devices[i];
    d->wline = sim_alloc(st->core, d->spec->workers * sizeof *d->wline);
    if (!d->wline) {
      sim_free(st->core, newidx, m->ndevices * sizeof *newidx);
      return STRATA_ENOMEM;
    }
    atomic_init(&d->temperature, NAN);
    atomic_init(&d->power, NAN);
    d->slot_free = sim_alloc(st->core, d->spec->workers * sizeof *d->slot_free);
    if (!d->slot_free) {
      /* d is not counted in ndevs yet: sim_fini would not free its lines */
      sim_free(st->core, d->wline, d->spec->workers * sizeof *d->wline);
      d->wline = NULL;
      sim_free(st->core, newidx, m->ndevices * sizeof *newidx);
      return STRATA_ENOMEM;
    }
    describe(d->spec, st->depth, &st->descs[st->ndevs]);
    st->ndevs++;
  }
  st->peers =
      sim_alloc(st->core, m->ndevices * SIM_MAX_DEVICES * sizeof *st->peers);
  if (!st->peers) {
    sim_free(st->core, newidx, m->ndevices * sizeof *newidx);
    return STRATA_ENOMEM;
  }
  for (size_t i = 0; i < m->ndevices; i++)
    if (newidx[i] >= 0)
      sim_busid(&st->descs[newidx[i]], (size_t)newidx[i]);
  for (size_t i = 0; i < m->ndevices; i++) {
    if (newidx[i] < 0)
      continue;
    strata_backend_device_t *d = &st->descs[newidx[i]];
    strata_backend_peer_t *row =
        &st->peers[(size_t)newidx[i] * SIM_MAX_DEVICES];
    for (size_t j = 0; j < m->ndevices; j++)
      if ((m->devices[i].peers >> j & 1) && newidx[j] >= 0) {
        memcpy(row[d->npeers].busid, st->descs[newidx[j]].pci_busid,
               sizeof row->busid);
        row[d->npeers++].bandwidth = m->devices[i].peer_bandwidth;
      }
    d->peers = d->npeers ? row : NULL;
  }
  sim_free(st->core, newidx, m->ndevices * sizeof *newidx);
  return STRATA_OK;
}

static void sim_fini(void *state) {
  sim_state_t *st = state;
  if (!st)
    return;
  size_t n = st->machine.ndevices;
  sim_free(st->core, st->threads, st->cap_threads * sizeof *st->threads);
  sim_free(st->core, st->descs, n * sizeof *st->descs);
  for (size_t i = 0; st->devs && i < st->ndevs; i++) {
    sim_dev_t *d = &st->devs[i];
    timeline_free(st->core, &d->link[LINK_IN]);
    timeline_free(st->core, &d->link[LINK_OUT]);
    for (unsigned w = 0; d->wline && w < d->spec->workers; w++)
      timeline_free(st->core, &d->wline[w]);
    sim_free(st->core, d->wline, d->spec->workers * sizeof *d->wline);
    sim_free(st->core, d->slot_free, d->spec->workers * sizeof *d->slot_free);
  }
  sim_free(st->core, st->done_block, st->ndone * sizeof *st->done_block);
  sim_free(st->core, st->devs, n * sizeof *st->devs);
  sim_free(st->core, st->vt, st->vt_cap * sizeof *st->vt);
  sim_free(st->core, st->peers, n * SIM_MAX_DEVICES * sizeof *st->peers);
  pthread_cond_destroy(&st->copy_cv);
  pthread_mutex_destroy(&st->copy_mu);
  if (st->loaded)
    sim_machine_free(&st->machine, core_alloc_fn, (void *)st->core);
  pthread_mutex_destroy(&st->model_mu);
  pthread_cond_destroy(&st->done_cv);
  pthread_mutex_destroy(&st->done_mu);
  sim_free(st->core, st, sizeof *st);
}

static bool option_set(const strata_core_services_t *core, const char *key,
                       char *buf, size_t len) {
  return core->option(core->core, key, buf, len) == STRATA_OK;
}

/* time= and skip_kernels= override the description. */
static int time_options(sim_state_t *st) {
  const strata_core_services_t *core = st->core;
  char buf[32];
  st->modelled = st->machine.modelled;
  if (option_set(core, "time", buf, sizeof buf)) {
    if (strcmp(buf, "real") && strcmp(buf, "modelled")) {
      core->log(core->core, STRATA_LOG_ERROR,
                "option time=%s: expected real or modelled", buf);
      return STRATA_EINVAL;
    }
    st->modelled = !strcmp(buf, "modelled");
  }
  if (option_set(core, "depth", buf, sizeof buf)) {
    char *end;
    long n = strtol(buf, &end, 10);
    if (*end || n < 1 || n > STRATA_BACKEND_INFLIGHT_MAX) {
      core->log(core->core, STRATA_LOG_ERROR,
                "option depth=%s: expected a count from 1 to %d", buf,
                STRATA_BACKEND_INFLIGHT_MAX);
      return STRATA_EINVAL;
    }
    st->depth = (uint32_t)n;
  }
  st->skip_kernels = st->machine.skip_kernels;
  if (option_set(core, "skip_kernels", buf, sizeof buf))
    st->skip_kernels = strcmp(buf, "0") != 0;
  if (st->skip_kernels && !st->modelled) {
    core->log(core->core, STRATA_LOG_ERROR,
              "skip_kernels needs modelled time (real time runs kernels)");
    return STRATA_EINVAL;
  }
  return STRATA_OK;
}

/* Load the description named by machine= (without it: no devices, so
 * that a runtime never gets simulated devices it did not ask for). */
static int load(sim_state_t *st) {
  const strata_core_services_t *core = st->core;
  char path[4096], classes[64] = "", err[512];
  int rc = core->option(core->core, "machine", path, sizeof path);
  if (rc == STRATA_ENOENT)
    return time_options(st);
  if (rc == STRATA_OK && (rc = core->option(core->core, "classes", classes,
                                            sizeof classes)) == STRATA_ENOENT)
    rc = STRATA_OK;
  if (rc == STRATA_ERANGE) { /* cut short, it would mean something else */
    core->log(core->core, STRATA_LOG_ERROR,
              "option machine or classes: longer than this backend takes "
              "(%zu and %zu bytes)",
              sizeof path - 1, sizeof classes - 1);
    return STRATA_EINVAL;
  }
  if (rc || (rc = check_classes(core, classes)))
    return rc;
  rc = sim_machine_load(path, core_alloc_fn, (void *)core, &st->machine, err,
                        sizeof err);
  if (rc) {
    core->log(core->core, STRATA_LOG_ERROR, "%s", err);
    return rc;
  }
  st->loaded = true;
  if ((rc = time_options(st)) || (rc = build_devices(st, classes)))
    return rc;
  core->log(core->core, STRATA_LOG_INFO,
            "machine '%s': %zu simulated device(s), %s time%s",
            st->machine.name, st->ndevs, st->modelled ? "modelled" : "real",
            st->skip_kernels ? ", kernels skipped" : "");
  return STRATA_OK;
}

static int sim_init(const strata_core_services_t *core,
                    const strata_backend_config_t *cfg, void **state) {
  (void)cfg;
  sim_state_t *st = sim_alloc(core, sizeof *st);
  if (!st)
    return STRATA_ENOMEM;
  st->core = core;
  pthread_mutex_init(&st->model_mu, NULL);
  pthread_mutex_init(&st->copy_mu, NULL);
  atomic_init(&st->memcpy_ps_per_byte, SIM_MEMCPY_PS_GUESS);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&st->copy_cv, &ca);
  pthread_mutex_init(&st->done_mu, NULL);
  pthread_cond_init(&st->done_cv, &ca);
  pthread_condattr_destroy(&ca);
  int rc = load(st);
  if (rc) {
    sim_fini(st);
    return rc;
  }
  *state = st;
  return STRATA_OK;
}

static int sim_probe(void *state, const strata_backend_device_t **devices,
                     size_t *ndevices) {
  sim_state_t *st = state;
  *devices = st->descs;
  *ndevices = st->ndevs;
  return STRATA_OK;
}

/* {=== Workers ===} */

/* Count a task the device starts; false when it dies now (injected). */
static bool survives(sim_dev_t *d, strata_work_t *work) {
  const sim_faults_t *f = &d->spec->faults;
  uint64_t n = atomic_fetch_add(&d->tasks, 1) + 1;
  bool told = atomic_exchange(&d->die_next, false);
  if (!told && (!f->die_after || n <= f->die_after))
    return true;
  atomic_store(&d->dead, true);
  const strata_core_services_t *core = d->st->core;
  char why[96];
  if (told)
    snprintf(why, sizeof why, "injected failure");
  else
    snprintf(why, sizeof why, "injected failure after %llu task(s)",
             (unsigned long long)f->die_after);
  core->device_failed(core->core, d->handle, work, why);
  return false;
}

/* {=== Completion ===} */

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* When a work taken at t0 ends in real time: on the device's compute slot
 * free first, after what it already holds, for its compute_time. Called
 * with done_mu held. */
static uint64_t book_real(sim_dev_t *d, const strata_work_t *work,
                          uint64_t t0) {
  double secs = compute_time(d->spec, work);
  /* Saturate rather than overflow (SIM_TIME_MAX is far beyond a run). */
  uint64_t len = secs >= 1e9 ? UINT64_C(1) << 62 : (uint64_t)(secs * 1e9);
  unsigned best = 0;
  for (unsigned w = 1; w < d->spec->workers; w++)
    if (d->slot_free[w] < d->slot_free[best])
      best = w;
  uint64_t start = d->slot_free[best] > t0 ? d->slot_free[best] : t0;
  d->slot_free[best] = start + len;
  return start + len;
}

/* End a work that ran: due at its modelled end in real time (at once in
 * modelled time). One already due with none queued before it completes
 * here, on the worker, as a blocking kernel would: a hop to the
 * completion thread would only add two wake-ups. Others are queued for
 * the completion thread, so that works end in the order of their times. */
static void finish(sim_dev_t *d, strata_work_t *work, int status, uint64_t t0) {
  sim_state_t *st = d->st;
  pthread_mutex_lock(&st->done_mu);
  uint64_t due = st->modelled ? 0 : book_real(d, work, t0);
  if (!st->due && (!due || due <= now_ns())) {
    pthread_mutex_unlock(&st->done_mu);
    st->core->complete(st->core->core, work, status);
    return;
  }
  sim_done_t *n = st->free_done;
  /* The core holds a device to its depth, and there is a node per place:
   * none can be missing. */
  st->free_done = n->next;
  n->work = work;
  n->status = status;
  n->due = due;
  sim_done_t **at = &st->due;
  while (*at && (*at)->due <= n->due)
    at = &(*at)->next;
  n->next = *at;
  *at = n;
  if (st->due == n) /* the completion thread's next deadline moved */
    pthread_cond_signal(&st->done_cv);
  pthread_mutex_unlock(&st->done_mu);
}

static struct timespec at_ns(uint64_t ns) {
  return (struct timespec){(time_t)(ns / 1000000000u),
                           (long)(ns % 1000000000u)};
}

/* Complete works as they fall due; at stop, what is left at once. */
static void *complete_main(void *arg) {
  sim_state_t *st = arg;
  const strata_core_services_t *core = st->core;
  pthread_mutex_lock(&st->done_mu);
  for (;;) {
    sim_done_t *n = st->due;
    if (!n) {
      if (st->done_stop)
        break;
      pthread_cond_wait(&st->done_cv, &st->done_mu);
      continue;
    }
    if (n->due && !st->done_stop && n->due > now_ns()) {
      struct timespec until = at_ns(n->due);
      pthread_cond_timedwait(&st->done_cv, &st->done_mu, &until);
      continue;
    }
    st->due = n->next;
    strata_work_t *work = n->work;
    int status = n->status;
    /* The node is free before complete(): the place it stands for may be
     * taken again as soon as the core has it back. */
    n->next = st->free_done;
    st->free_done = n;
    pthread_mutex_unlock(&st->done_mu);
    core->complete(core->core, work, status);
    pthread_mutex_lock(&st->done_mu);
  }
  pthread_mutex_unlock(&st->done_mu);
  return NULL;
}

/* {=== Workers ===} */

static void *worker_main(void *arg) {
  sim_thread_t *th = arg;
  sim_dev_t *d = th->dev;
  const strata_core_services_t *core = d->st->core;
  for (;;) {
    strata_work_t *work;
    int rc = core->next(core->core, d->handle, th->worker, -1, &work);
    if (rc == STRATA_ESHUTDOWN)
      break;
    if (rc || !survives(d, work))
      continue;
    uint64_t t0 = d->st->modelled ? 0 : now_ns();
    if (d->st->modelled)
      model_task(d->st, d, work);
    int status = d->st->skip_kernels ? 0 : work->fn(&work->call);
    finish(d, work, status, t0);
  }
  return NULL;
}

/* {=== Copies in flight ===} */

/* Land one copy (unless it landed at issue) and report it. */
static void land(sim_state_t *st, sim_copy_t *c) {
  if (c->status == STRATA_OK && !c->landed)
    memcpy(c->op->dst, c->op->src, c->op->size);
  void *token = c->token;
  int status = c->status;
  sim_free(st->core, c, sizeof *c);
  st->core->copy_done(st->core->core, token, status);
}

static void *copy_main(void *arg) {
  sim_state_t *st = arg;
  pthread_mutex_lock(&st->copy_mu);
  for (;;) {
    sim_copy_t *c = st->copies;
    if (!c && st->copy_stop)
      break;
    uint64_t now = now_ns();
    if (c && (c->due_ns <= now || st->copy_stop)) {
      st->copies = c->next;
      /* Without the lock: copy_done may issue the next copy at once. */
      pthread_mutex_unlock(&st->copy_mu);
      land(st, c);
      pthread_mutex_lock(&st->copy_mu);
      continue;
    }
    if (!c) {
      pthread_cond_wait(&st->copy_cv, &st->copy_mu);
      continue;
    }
    struct timespec due = {(time_t)(c->due_ns / 1000000000u),
                           (long)(c->due_ns % 1000000000u)};
    pthread_cond_timedwait(&st->copy_cv, &st->copy_mu, &due);
  }
  pthread_mutex_unlock(&st->copy_mu);
  return NULL;
}

/* When a copy of `len` ns issued at `now` ends in real time: after what
 * the link already carries, each direction on its own as in modelled time
 * (into `to`, out of `from`; a peer copy takes both). Called with copy_mu
 * held. */
static uint64_t book_link(sim_dev_t *to, sim_dev_t *from, uint64_t now,
                          uint64_t len) {
  uint64_t start = now;
  if (to && to->link_free[LINK_IN] > start)
    start = to->link_free[LINK_IN];
  if (from && from->link_free[LINK_OUT] > start)
    start = from->link_free[LINK_OUT];
  if (to)
    to->link_free[LINK_IN] = start + len;
  if (from)
    from->link_free[LINK_OUT] = start + len;
  return start + len;
}

/* When a copy of `len` ns issued now is due, booked on the links of `to`
 * and `from` (len 0: it takes no time, it is due now). */
static uint64_t book_copy(sim_state_t *st, sim_dev_t *to, sim_dev_t *from,
                          uint64_t len) {
  uint64_t now = now_ns();
  if (!len)
    return now;
  pthread_mutex_lock(&st->copy_mu);
  uint64_t due = book_link(to, from, now, len);
  pthread_mutex_unlock(&st->copy_mu);
  return due;
}

/* Queue c by its due time (ties keep the order of issue). */
static void enqueue(sim_state_t *st, sim_copy_t *c) {
  pthread_mutex_lock(&st->copy_mu);
  sim_copy_t **p = &st->copies;
  while (*p && (*p)->due_ns <= c->due_ns)
    p = &(*p)->next;
  c->next = *p;
  *p = c;
  pthread_cond_signal(&st->copy_cv);
  pthread_mutex_unlock(&st->copy_mu);
}

static int start_copies(sim_state_t *st) {
  if (pthread_create(&st->copy_tid, NULL, copy_main, st))
    return STRATA_EBACKEND;
  st->copy_running = true;
  return STRATA_OK;
}

/* Every copy still queued lands first: the core waits for each. */
static void stop_copies(sim_state_t *st) {
  if (!st->copy_running)
    return;
  pthread_mutex_lock(&st->copy_mu);
  st->copy_stop = true;
  pthread_cond_signal(&st->copy_cv);
  pthread_mutex_unlock(&st->copy_mu);
  pthread_join(st->copy_tid, NULL);
  st->copy_running = false;
}

/* One completion node per place of every device. */
static int alloc_done(sim_state_t *st, size_t n) {
  size_t total = 0;
  for (size_t i = 0; i < n; i++)
    total += st->descs[i].inflight_depth;
  st->done_block = sim_alloc(st->core, total * sizeof *st->done_block);
  if (!st->done_block)
    return STRATA_ENOMEM;
  st->ndone = total;
  for (size_t i = 0; i < total; i++) {
    st->done_block[i].next = st->free_done;
    st->free_done = &st->done_block[i];
  }
  return STRATA_OK;
}

static int sim_start(void *state, strata_device_handle_t *const *handles,
                     size_t n) {
  sim_state_t *st = state;
  if (n && start_copies(st))
    return STRATA_EBACKEND;
  size_t total = 0;
  for (size_t i = 0; i < n; i++)
    total += st->descs[i].nworkers;
  if (n && alloc_done(st, n))
    return STRATA_ENOMEM;
  if (n) {
    if (pthread_create(&st->completer, NULL, complete_main, st))
      return STRATA_EBACKEND;
    st->completer_running = true;
  }
  st->threads = sim_alloc(st->core, total * sizeof *st->threads);
  if (!st->threads)
    return STRATA_ENOMEM;
  st->cap_threads = total;
  for (size_t i = 0; i < n; i++) {
    st->devs[i].handle = handles[i];
    for (unsigned w = 0; w < st->descs[i].nworkers; w++) {
      sim_thread_t *th = &st->threads[st->nthreads];
      *th = (sim_thread_t){&st->devs[i], w, 0};
      if (pthread_create(&th->tid, NULL, worker_main, th))
        return STRATA_EBACKEND;
      st->nthreads++;
    }
  }
  return STRATA_OK;
}

static void sim_stop(void *state) {
  sim_state_t *st = state;
  for (size_t i = 0; i < st->nthreads; i++)
    pthread_join(st->threads[i].tid, NULL);
  st->nthreads = 0;
  /* The workers are gone: what they ran is completed now, due or not. */
  if (st->completer_running) {
    pthread_mutex_lock(&st->done_mu);
    st->done_stop = true;
    pthread_cond_signal(&st->done_cv);
    pthread_mutex_unlock(&st->done_mu);
    pthread_join(st->completer, NULL);
    st->completer_running = false;
  }
  stop_copies(st);
}

/* {=== Memory ===} */

static int sim_mem_alloc(void *state, unsigned dev, size_t size, void **ptr) {
  sim_state_t *st = state;
  sim_dev_t *d = &st->devs[dev];
  /* The core keeps the accounts; this is the device's own limit. */
  if (atomic_fetch_add(&d->mem_used, size) + size > d->spec->memory) {
    atomic_fetch_sub(&d->mem_used, size);
    return STRATA_ENOMEM;
  }
  *ptr = st->core->alloc(st->core->core, NULL, 0, size);
  if (!*ptr) {
    atomic_fetch_sub(&d->mem_used, size);
    return STRATA_ENOMEM;
  }
  return STRATA_OK;
}

static void sim_mem_free(void *state, unsigned dev, void *ptr, size_t size) {
  sim_state_t *st = state;
  if (st->modelled) {
    pthread_mutex_lock(&st->model_mu);
    vt_del(st, ptr);
    pthread_mutex_unlock(&st->model_mu);
  }
  st->core->alloc(st->core->core, ptr, size, 0);
  atomic_fetch_sub(&st->devs[dev].mem_used, size);
}

/* Does this copy hit an injected failure of device d? */
static bool copy_fails(sim_dev_t *d) {
  const sim_faults_t *f = &d->spec->faults;
  uint64_t left = atomic_load(&d->copy_fail_next);
  while (left &&
         !atomic_compare_exchange_weak(&d->copy_fail_next, &left, left - 1))
    ;
  if (left)
    return true;
  uint64_t n = atomic_fetch_add(&d->copies, 1) + 1;
  uint32_t count = f->copy_fail_count ? f->copy_fail_count : 1;
  return f->copy_fail_at && n >= f->copy_fail_at && n < f->copy_fail_at + count;
}

/* Real time: the longest one copy holds its link, so that a description
 * with a tiny bandwidth cannot stall a test for long. */
#define SIM_COPY_DELAY_MAX_NS 10000000u

/* How long a copy takes on the simulated link, in real time: latency plus
 * bytes over the host link, or over the peer bandwidth between two cards. */
static uint64_t copy_delay_ns(const sim_dev_t *a, const sim_dev_t *b,
                              size_t size) {
  double bw = b ? a->spec->peer_bandwidth : a->spec->link_bandwidth;
  double t =
      sim_time_add(a->spec->link_latency, sim_time_div((double)size, bw));
  double ns = t * 1e9;
  return ns < SIM_COPY_DELAY_MAX_NS ? (uint64_t)ns : SIM_COPY_DELAY_MAX_NS;
}

/* What a memcpy of `size` bytes is expected to cost on this host, in ns. */
static uint64_t memcpy_guess_ns(sim_state_t *st, size_t size) {
  uint64_t ps =
      atomic_load_explicit(&st->memcpy_ps_per_byte, memory_order_relaxed);
  return (uint64_t)((double)size * (double)ps * 1e-3);
}

/* memcpy op's bytes now, and learn what it cost. */
static void land_now(sim_state_t *st, const strata_backend_copy_t *op) {
  uint64_t t0 = now_ns();
  memcpy(op->dst, op->src, op->size);
  if (op->size < SIM_MEMCPY_LEARN_MIN)
    return; /* too short to time */
  uint64_t ps = (now_ns() - t0) * 1000u / op->size;
  uint64_t avg =
      atomic_load_explicit(&st->memcpy_ps_per_byte, memory_order_relaxed);
  atomic_store_explicit(&st->memcpy_ps_per_byte, (3 * avg + ps) / 4,
                        memory_order_relaxed);
}

/* copy_async: checked and modelled now, so copies overlap the kernels and
 * may end out of order; reported once due (at once in modelled time; in
 * real time once the link, which carries one copy at a time per
 * direction, has carried it). A copy that the copy thread could not land
 * sooner than a memcpy here (no modelled time, a failure, or a link time
 * no longer than the memcpy itself) lands on this thread, and if due by
 * then is reported inside this call: the thread hops would cost more
 * than the copy. Others land and are reported by the copy thread at
 * their due time, so that a core reading a replica before its copy ended
 * reads stale bytes. A foreign source (another backend's card) is read
 * through its pointer: every simulated memory is host memory. */
static int sim_copy_async(void *state, const strata_backend_copy_t *op,
                          void *token) {
  sim_state_t *st = state;
  int dd = op->dst_dev, sd = op->src_dev;
  sim_dev_t *to = dd >= 0 ? &st->devs[dd] : NULL;
  sim_dev_t *from = sd >= 0 ? &st->devs[sd] : NULL;
  sim_dev_t *a = to ? to : from;
  sim_dev_t *b = to && from ? from : NULL;
  if (!a)
    return STRATA_EINVAL;
  int status = STRATA_OK;
  uint64_t len = 0;
  if (atomic_load(&a->dead) || (b && atomic_load(&b->dead))) {
    status = STRATA_EDEVICE;
  } else if (copy_fails(a) || (b && copy_fails(b))) {
    st->core->log(st->core->core, STRATA_LOG_INFO,
                  "injected copy failure on %s", a->spec->name);
    status = STRATA_EIO;
  } else if (st->modelled) {
    model_copy(st, to, from, op->dst, op->src, op->size);
  } else {
    len = copy_delay_ns(a, b, op->size);
  }
  uint64_t due = book_copy(st, to, from, len);
  bool landed = false;
  if (status != STRATA_OK || due <= now_ns() + memcpy_guess_ns(st, op->size)) {
    if (status == STRATA_OK)
      land_now(st, op);
    landed = true;
    if (now_ns() >= due) {
      st->core->copy_done(st->core->core, token, status);
      return STRATA_OK;
    }
  }
  sim_copy_t *c = sim_alloc(st->core, sizeof *c);
  if (!c)
    return STRATA_ENOMEM; /* the link stays booked: the model runs late */
  *c = (sim_copy_t){.op = op,
                    .token = token,
                    .due_ns = due,
                    .status = status,
                    .landed = landed};
  enqueue(st, c);
  return STRATA_OK;
}

/* {=== Readouts ===} */

static int sim_health(void *state, unsigned dev, strata_health_t *out) {
  sim_state_t *st = state;
  sim_dev_t *d = &st->devs[dev];
  const sim_faults_t *f = &d->spec->faults;
  bool hot = f->hot_after && atomic_load(&d->tasks) >= f->hot_after;
  double temp = atomic_load(&d->temperature), power = atomic_load(&d->power);
  out->temperature_c = !isnan(temp) ? temp
                       : hot        ? f->hot_temperature
                                    : d->spec->temperature;
  out->power_w = !isnan(power)        ? power
                 : d->spec->power > 0 ? d->spec->power
                                      : -1;
  out->throttled = hot;
  return STRATA_OK;
}

/* Faults from the API (strata_device_inject). */
static int sim_inject(void *state, unsigned dev, const char *fault,
                      double value) {
  sim_state_t *st = state;
  sim_dev_t *d = &st->devs[dev];
  if (!strcmp(fault, "copy_fail")) {
    if (!(value >= 1 && value <= 1e9 && value == floor(value)))
      return STRATA_EINVAL;
    atomic_store(&d->copy_fail_next, (uint64_t)value);
  } else if (!strcmp(fault, "die")) {
    atomic_store(&d->die_next, true);
  } else if (!strcmp(fault, "temperature")) {
    if (!(value <= 200)) /* NaN too */
      return STRATA_EINVAL;
    atomic_store(&d->temperature, value < -273 ? NAN : value);
  } else if (!strcmp(fault, "power")) {
    if (!(value <= 1e6))
      return STRATA_EINVAL;
    atomic_store(&d->power, value < 0 ? NAN : value);
  } else {
    return STRATA_EINVAL;
  }
  return STRATA_OK;
}

static int sim_model(void *state, unsigned dev, strata_device_model_t *out) {
  sim_state_t *st = state;
  if (!st->modelled)
    return STRATA_ENOTSUP;
  sim_dev_t *d = &st->devs[dev];
  pthread_mutex_lock(&st->model_mu);
  out->clock_ns = sim_time_ns(d->clock);
  out->busy_ns = sim_time_ns(d->busy);
  out->copy_ns = sim_time_ns(d->copy_time);
  pthread_mutex_unlock(&st->model_mu);
  return STRATA_OK;
}

STRATA_BACKEND_EXPORT const strata_backend_component_t
    strata_backend_sim_component = {
        .abi_major = STRATA_BACKEND_ABI_MAJOR,
        .abi_minor = STRATA_BACKEND_ABI_MINOR,
        .struct_size = sizeof(strata_backend_component_t),
        .name = "sim",
        .description = "simulated devices from a machine description",
        .init = sim_init,
        .probe = sim_probe,
        .start = sim_start,
        .stop = sim_stop,
        .fini = sim_fini,
        .mem_alloc = sim_mem_alloc,
        .mem_free = sim_mem_free,
        .copy_async = sim_copy_async,
        .health = sim_health,
        .model = sim_model,
        .inject = sim_inject,
};
