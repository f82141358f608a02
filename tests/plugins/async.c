/* SPDX-License-Identifier: MIT */
/* tests/plugins/async.c: a backend whose devices run work asynchronously,
 * as a GPU backend would: each worker thread takes a batch of works with
 * next() before any of them runs, and hands the batch to the backend's own
 * completion thread, which runs and completes the works in the reverse of
 * the order they were taken. Options:
 *   devices=N      devices to report (default 0: none, so that loading every
 *                  plugin of a directory finds nothing here)
 *   class=cpu|hbm  their class: cpu runs CPU code, hbm CUDA code (called on
 *                  host threads, as every kernel here); default cpu
 *   workers=W      threads calling next() per device (default 1)
 *   depth=D        inflight_depth (default 4)
 *   batch=B        works taken before any is handed on (default: depth)
 *   wait_ms=M      how long next() may wait for each further work of a
 *                  batch (default 20; -1: without limit)
 *   mixed=1        the worker completes every second work of a batch
 *                  itself, at the same time as the completion thread
 *   relay=1        two threads per device take turns as its one worker
 *                  (workers=1, depth=1): the one whose turn it is takes a
 *                  work and hands it to the other to complete, asks for the
 *                  next one (and waits: the depth is full until the other
 *                  completes the first), runs that one itself, then passes
 *                  the turn on. Each thread thus completes works of a
 *                  worker index it served before and no longer serves.
 * At stop it logs, per device, "async<i>: <n> works, at most <m> in flight
 * (depth <d>)" at INFO, and at ERROR any moment it held more than the
 * depth. */
#include "config.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/backend.h>

#define MAX_DEVS 4
#define MAX_WORKERS 8
#define MAX_BATCH 64

typedef struct async_state async_state_t;

/* A work waiting for the completion thread (intrusive list node). */
typedef struct pending {
  struct pending *next;
  strata_work_t *work;
  unsigned dev;
} pending_t;

typedef struct async_worker {
  async_state_t *st;
  unsigned dev, index;
  pthread_t tid;
  pending_t slots[MAX_BATCH]; /* one per work of its current batch */
} async_worker_t;

typedef struct async_dev {
  strata_device_handle_t *handle;
  /* relay=1: whose turn (0 or 1), the work handed over for the other
   * thread to complete, and the end (mu). */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  unsigned turn;
  strata_work_t *to_complete;
  bool done;
  _Atomic unsigned held, max_held;
  _Atomic unsigned long long works;
} async_dev_t;

struct async_state {
  const strata_core_services_t *core;
  strata_backend_device_t descs[MAX_DEVS];
  async_dev_t devs[MAX_DEVS];
  size_t ndevs;
  unsigned workers, batch;
  long wait_ms;
  bool mixed, relay;
  async_worker_t threads[MAX_DEVS * MAX_WORKERS];
  size_t nthreads;
  /* The completion thread and its list (mu). */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pending_t *head; /* LIFO: each batch is pushed in taking order */
  bool stop, completer_started;
  pthread_t completer;
};

static long option_long(const strata_core_services_t *core, const char *key,
                        long dflt) {
  char buf[32];
  if (core->option(core->core, key, buf, sizeof buf) != STRATA_OK)
    return dflt;
  return strtol(buf, NULL, 10);
}

/* {=== Counting what a device holds ===} */

static void took(async_dev_t *d, unsigned n) {
  unsigned held = atomic_fetch_add(&d->held, n) + n;
  unsigned max = atomic_load(&d->max_held);
  while (held > max && !atomic_compare_exchange_weak(&d->max_held, &max, held))
    ;
  atomic_fetch_add(&d->works, n);
}

/* Before complete(): the core may hand the place to another next() as soon
 * as it runs, which must not count twice. */
static void run_and_complete(async_state_t *st, unsigned dev,
                             strata_work_t *w) {
  int status = w->fn(&w->call);
  atomic_fetch_sub(&st->devs[dev].held, 1);
  st->core->complete(st->core->core, w, status);
}

/* {=== Completion thread ===} */

static void *complete_main(void *arg) {
  async_state_t *st = arg;
  pthread_mutex_lock(&st->mu);
  for (;;) {
    while (!st->head && !st->stop)
      pthread_cond_wait(&st->cv, &st->mu);
    pending_t *p = st->head;
    st->head = NULL;
    bool stop = st->stop;
    pthread_mutex_unlock(&st->mu);
    /* Newest first: the reverse of the order next() gave them. */
    while (p) {
      pending_t *next = p->next;
      unsigned dev = p->dev;
      strata_work_t *w = p->work;
      /* The worker may reuse the slot from now on. */
      __atomic_store_n(&p->work, NULL, __ATOMIC_RELEASE);
      run_and_complete(st, dev, w);
      p = next;
    }
    pthread_mutex_lock(&st->mu);
    if (stop && !st->head)
      break;
  }
  pthread_mutex_unlock(&st->mu);
  return NULL;
}

/* {=== Workers ===} */

/* Wait until the completion thread has let go of every slot of w (its
 * batch before the last one). */
static void wait_slots_free(async_worker_t *w) {
  for (unsigned i = 0; i < MAX_BATCH; i++)
    while (__atomic_load_n(&w->slots[i].work, __ATOMIC_ACQUIRE))
      sched_yield();
}

/* Hand the works of a batch on: every one to the completion thread, or
 * with `mixed` every second one completed here. */
static void hand_on(async_worker_t *w, strata_work_t **works, unsigned n) {
  async_state_t *st = w->st;
  took(&st->devs[w->dev], n);
  pthread_mutex_lock(&st->mu);
  for (unsigned i = 0; i < n; i++) {
    if (st->mixed && i % 2)
      continue;
    pending_t *p = &w->slots[i];
    p->dev = w->dev;
    __atomic_store_n(&p->work, works[i], __ATOMIC_RELEASE);
    p->next = st->head;
    st->head = p;
  }
  pthread_cond_signal(&st->cv);
  pthread_mutex_unlock(&st->mu);
  for (unsigned i = 1; st->mixed && i < n; i += 2)
    run_and_complete(st, w->dev, works[i]);
}

static void *worker_main(void *arg) {
  async_worker_t *w = arg;
  async_state_t *st = w->st;
  const strata_core_services_t *core = st->core;
  strata_device_handle_t *dev = st->devs[w->dev].handle;
  int64_t wait_ns = st->wait_ms < 0 ? -1 : st->wait_ms * 1000000;
  for (bool done = false; !done;) {
    strata_work_t *works[MAX_BATCH];
    int rc = core->next(core->core, dev, w->index, -1, &works[0]);
    if (rc == STRATA_ESHUTDOWN)
      break;
    if (rc)
      continue;
    unsigned n = 1;
    while (n < st->batch) {
      rc = core->next(core->core, dev, w->index, wait_ns, &works[n]);
      if (rc != STRATA_OK)
        break;
      n++;
    }
    done = rc == STRATA_ESHUTDOWN;
    wait_slots_free(w);
    hand_on(w, works, n);
  }
  wait_slots_free(w);
  return NULL;
}

/* {=== relay=1: a worker index that changes threads ===} */

/* One turn of thread `me`: two works, the first completed by the other
 * thread, the second here; at the end the index holds nothing, so the
 * other thread may serve it next (backend.h). @return false at the end */
static bool relay_turn(async_worker_t *w, async_dev_t *d) {
  const strata_core_services_t *core = w->st->core;
  strata_work_t *first, *second;
  int rc = core->next(core->core, d->handle, 0, -1, &first);
  if (rc == STRATA_OK) {
    took(d, 1);
    pthread_mutex_lock(&d->mu);
    d->to_complete = first;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    /* The depth is full until the other thread completes `first`, whose
     * completion must wake this thread (without limit: a missed wake-up
     * hangs here). */
    rc = core->next(core->core, d->handle, 0, -1, &second);
    if (rc == STRATA_OK) {
      took(d, 1);
      run_and_complete(w->st, w->dev, second);
    }
  }
  pthread_mutex_lock(&d->mu);
  if (rc == STRATA_ESHUTDOWN)
    d->done = true;
  else
    d->turn = 1 - w->index;
  pthread_cond_broadcast(&d->cv);
  pthread_mutex_unlock(&d->mu);
  return rc != STRATA_ESHUTDOWN;
}

static void *relay_main(void *arg) {
  async_worker_t *w = arg;
  async_dev_t *d = &w->st->devs[w->dev];
  pthread_mutex_lock(&d->mu);
  for (;;) {
    while (d->turn != w->index && !d->to_complete && !d->done)
      pthread_cond_wait(&d->cv, &d->mu);
    if (d->to_complete && d->turn != w->index) {
      strata_work_t *work = d->to_complete;
      d->to_complete = NULL;
      pthread_mutex_unlock(&d->mu);
      run_and_complete(w->st, w->dev, work);
      pthread_mutex_lock(&d->mu);
      continue;
    }
    if (d->done)
      break;
    pthread_mutex_unlock(&d->mu);
    bool more = relay_turn(w, d);
    pthread_mutex_lock(&d->mu);
    if (!more)
      break;
  }
  pthread_mutex_unlock(&d->mu);
  return NULL;
}

/* {=== Component ===} */

static void async_fini(void *state) {
  async_state_t *st = state;
  for (size_t i = 0; i < MAX_DEVS; i++) {
    pthread_cond_destroy(&st->devs[i].cv);
    pthread_mutex_destroy(&st->devs[i].mu);
  }
  pthread_cond_destroy(&st->cv);
  pthread_mutex_destroy(&st->mu);
  st->core->alloc(st->core->core, st, sizeof *st, 0);
}

static int async_init(const strata_core_services_t *core,
                      const strata_backend_config_t *cfg, void **state) {
  (void)cfg;
  async_state_t *st = core->alloc(core->core, NULL, 0, sizeof *st);
  if (!st)
    return STRATA_ENOMEM;
  memset(st, 0, sizeof *st);
  st->core = core;
  pthread_mutex_init(&st->mu, NULL);
  pthread_cond_init(&st->cv, NULL);
  for (size_t i = 0; i < MAX_DEVS; i++) {
    pthread_mutex_init(&st->devs[i].mu, NULL);
    pthread_cond_init(&st->devs[i].cv, NULL);
  }
  long ndevs = option_long(core, "devices", 0);
  long workers = option_long(core, "workers", 1);
  long depth = option_long(core, "depth", 4);
  long batch = option_long(core, "batch", depth);
  char cls[8] = "cpu";
  core->option(core->core, "class", cls, sizeof cls);
  if (ndevs < 0 || ndevs > MAX_DEVS || workers < 1 || workers > MAX_WORKERS ||
      depth < 1 || batch < 1 || batch > MAX_BATCH ||
      (strcmp(cls, "cpu") && strcmp(cls, "hbm"))) {
    core->log(core->core, STRATA_LOG_ERROR, "bad options");
    async_fini(st);
    return STRATA_EINVAL;
  }
  st->ndevs = (size_t)ndevs;
  st->workers = (unsigned)workers;
  st->batch = (unsigned)batch;
  st->wait_ms = option_long(core, "wait_ms", 20);
  st->mixed = option_long(core, "mixed", 0) != 0;
  st->relay = option_long(core, "relay", 0) != 0;
  if (st->relay && (workers != 1 || depth != 1)) {
    core->log(core->core, STRATA_LOG_ERROR, "relay=1 needs workers=1,depth=1");
    async_fini(st);
    return STRATA_EINVAL;
  }
  bool gpu = !strcmp(cls, "hbm");
  for (size_t i = 0; i < st->ndevs; i++) {
    strata_backend_device_t *d = &st->descs[i];
    d->struct_size = sizeof *d;
    d->device_class = gpu ? STRATA_CLASS_HBM : STRATA_CLASS_CPU;
    d->candidate_impl = d->run_impl = gpu ? STRATA_IMPL_CUDA : STRATA_IMPL_CPU;
    d->nworkers = st->workers;
    d->inflight_depth = (uint32_t)depth;
    d->numa_node = -1;
    d->ecc = -1;
    d->memory_bytes = UINT64_C(1) << 30;
    snprintf(d->name, sizeof d->name, "async%zu", i);
  }
  *state = st;
  return STRATA_OK;
}

static int async_probe(void *state, const strata_backend_device_t **devices,
                       size_t *n) {
  async_state_t *st = state;
  *devices = st->ndevs ? st->descs : NULL;
  *n = st->ndevs;
  return STRATA_OK;
}

static int async_start(void *state, strata_device_handle_t *const *h,
                       size_t n) {
  async_state_t *st = state;
  if (pthread_create(&st->completer, NULL, complete_main, st))
    return STRATA_EBACKEND;
  st->completer_started = true;
  for (size_t d = 0; d < n; d++) {
    st->devs[d].handle = h[d];
    /* relay: two threads for the one worker, told apart by `index`. */
    unsigned nthreads = st->relay ? 2 : st->workers;
    for (unsigned i = 0; i < nthreads; i++) {
      async_worker_t *w = &st->threads[st->nthreads];
      w->st = st;
      w->dev = (unsigned)d;
      w->index = i;
      if (pthread_create(&w->tid, NULL, st->relay ? relay_main : worker_main,
                         w))
        return STRATA_EBACKEND;
      st->nthreads++;
    }
  }
  return STRATA_OK;
}

static void async_stop(void *state) {
  async_state_t *st = state;
  for (size_t i = 0; i < st->nthreads; i++)
    pthread_join(st->threads[i].tid, NULL);
  st->nthreads = 0;
  if (st->completer_started) {
    pthread_mutex_lock(&st->mu);
    st->stop = true;
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->mu);
    pthread_join(st->completer, NULL);
    st->completer_started = false;
  }
  for (size_t i = 0; i < st->ndevs; i++) {
    async_dev_t *d = &st->devs[i];
    unsigned max = atomic_load(&d->max_held);
    st->core->log(st->core->core, STRATA_LOG_INFO,
                  "async%zu: %llu works, at most %u in flight (depth %u)", i,
                  (unsigned long long)atomic_load(&d->works), max,
                  st->descs[i].inflight_depth);
    if (max > st->descs[i].inflight_depth)
      st->core->log(st->core->core, STRATA_LOG_ERROR,
                    "async%zu held more works than its depth", i);
  }
}

STRATA_BACKEND_EXPORT const strata_backend_component_t
    strata_backend_async_component = {
        .abi_major = STRATA_BACKEND_ABI_MAJOR,
        .abi_minor = STRATA_BACKEND_ABI_MINOR,
        .struct_size = sizeof(strata_backend_component_t),
        .name = "async",
        .description = "test backend that completes works out of order from "
                       "its own thread",
        .init = async_init,
        .probe = async_probe,
        .start = async_start,
        .stop = async_stop,
        .fini = async_fini,
};
