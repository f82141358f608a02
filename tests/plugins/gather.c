/* SPDX-License-Identifier: MIT */
/* tests/plugins/gather.c: one card whose copies show how the core issues
 * them. Built twice: `gather` completes asynchronous copies (copy_async)
 * from its own thread; `gather-sync` (GATHER_SYNC) has only the blocking
 * copy, made on the caller's thread. It stands for a GPU (a candidate for
 * kernels with CUDA code, running their CPU code), with one worker.
 * Options:
 *   busid=ID       its bus id (without it: no card, so that the plugin
 *                  stays out of other tests' way)
 *   gather=N       (gather) hold completions until N copies are in flight
 *                  together, or 200 ms passed since the oldest; then end
 *                  them all, newest first, logging "completed K together"
 *   slow=BYTES     (gather) a copy of exactly BYTES bytes ends only after
 *                  strata_device_inject(..., "release", 0) (or the stop)
 *   reenter=ADDR   the address (hex) of a `void fn(void)` in the test
 *                  program, called from inside every copy and copy_async
 *                  on the calling thread: it calls back into the runtime
 * It logs at INFO each host_alloc (it offers pinned host memory). */
#include "config.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <strata/backend.h>

#ifdef GATHER_SYNC
#define PLUGIN_NAME "gather-sync"
#define SYMBOL strata_backend_gather_sync_component
#else
#define PLUGIN_NAME "gather"
#define SYMBOL strata_backend_gather_component
#endif

#define GATHER_WAIT_NS 200000000L /* the longest a copy is held back */

typedef struct pending {
  strata_backend_copy_t op; /* copied: the core's may go when it ends */
  void *token;
  struct pending *next;
} pending_t;

typedef struct gather_state {
  const strata_core_services_t *core;
  strata_backend_device_t dev;
  strata_device_handle_t *handle;
  pthread_t worker, completer;
  bool started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pending_t *stack; /* newest first; gathered, not yet ended */
  unsigned npending;
  pending_t *slow; /* held until "release" */
  bool released, stop;
  unsigned gather;
  size_t slow_bytes;
  void (*reenter)(void);
} gather_state_t;

static void *galloc(gather_state_t *st, size_t n) {
  return st->core->alloc(st->core->core, NULL, 0, n);
}

static void gfree(gather_state_t *st, void *p, size_t n) {
  if (p)
    st->core->alloc(st->core->core, p, n, 0);
}

static unsigned long option_ul(const strata_core_services_t *core,
                               const char *key, int base) {
  char buf[64];
  if (core->option(core->core, key, buf, sizeof buf) != STRATA_OK)
    return 0;
  return strtoul(buf, NULL, base);
}

static int g_init(const strata_core_services_t *core,
                  const strata_backend_config_t *cfg, void **state) {
  (void)cfg;
  gather_state_t *st = core->alloc(core->core, NULL, 0, sizeof *st);
  if (!st)
    return STRATA_ENOMEM;
  memset(st, 0, sizeof *st);
  st->core = core;
  pthread_mutex_init(&st->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&st->cv, &ca);
  pthread_condattr_destroy(&ca);
  strata_backend_device_t *d = &st->dev;
  d->struct_size = sizeof *d;
  d->device_class = STRATA_CLASS_HBM;
  d->candidate_impl = STRATA_IMPL_CUDA;
  d->run_impl = STRATA_IMPL_CPU;
  snprintf(d->name, sizeof d->name, "%s-card", PLUGIN_NAME);
  d->memory_bytes = 64u << 20;
  d->numa_node = -1;
  d->nworkers = 1;
  d->own_memory = 1;
  d->ecc = -1;
  d->link_bandwidth = 16e9;
  snprintf(d->uuid, sizeof d->uuid, "GPU-%s", PLUGIN_NAME);
  core->option(core->core, "busid", d->pci_busid, sizeof d->pci_busid);
  st->gather = (unsigned)option_ul(core, "gather", 10);
  st->slow_bytes = option_ul(core, "slow", 10);
  st->reenter = (void (*)(void))(uintptr_t)option_ul(core, "reenter", 16);
  *state = st;
  return STRATA_OK;
}

static int g_probe(void *state, const strata_backend_device_t **devices,
                   size_t *n) {
  gather_state_t *st = state;
  *devices = &st->dev;
  *n = st->dev.pci_busid[0] ? 1 : 0;
  return STRATA_OK;
}

static void *work_main(void *arg) {
  gather_state_t *st = arg;
  for (;;) {
    strata_work_t *w;
    int rc = st->core->next(st->core->core, st->handle, 0, -1, &w);
    if (rc == STRATA_ESHUTDOWN)
      return NULL;
    if (rc == STRATA_OK)
      st->core->complete(st->core->core, w, w->fn(&w->call));
  }
}

static void end_one(gather_state_t *st, pending_t *p) {
  memcpy(p->op.dst, p->op.src, p->op.size);
  void *token = p->token;
  gfree(st, p, sizeof *p);
  st->core->copy_done(st->core->core, token, STRATA_OK);
}

static void deadline_in(struct timespec *ts, long ns) {
  clock_gettime(CLOCK_MONOTONIC, ts);
  ts->tv_nsec += ns;
  ts->tv_sec += ts->tv_nsec / 1000000000;
  ts->tv_nsec %= 1000000000;
}

/* Ends gathered copies, newest first, once `gather` are in flight (or the
 * oldest waited long enough); ends slow copies once released. */
static void *complete_main(void *arg) {
  gather_state_t *st = arg;
  pthread_mutex_lock(&st->mu);
  for (;;) {
    if (st->slow && (st->released || st->stop)) {
      pending_t *p = st->slow;
      st->slow = p->next;
      pthread_mutex_unlock(&st->mu);
      end_one(st, p);
      pthread_mutex_lock(&st->mu);
      continue;
    }
    if (st->stack) {
      struct timespec until;
      deadline_in(&until, GATHER_WAIT_NS);
      while (st->npending < st->gather && !st->stop)
        if (pthread_cond_timedwait(&st->cv, &st->mu, &until))
          break;
      pending_t *list = st->stack;
      unsigned n = st->npending;
      st->stack = NULL;
      st->npending = 0;
      pthread_mutex_unlock(&st->mu);
      st->core->log(st->core->core, STRATA_LOG_INFO, "completed %u together",
                    n);
      while (list) {
        pending_t *next = list->next;
        end_one(st, list);
        list = next;
      }
      pthread_mutex_lock(&st->mu);
      continue;
    }
    if (st->stop && !st->slow)
      break;
    pthread_cond_wait(&st->cv, &st->mu);
  }
  pthread_mutex_unlock(&st->mu);
  return NULL;
}

static int g_start(void *state, strata_device_handle_t *const *h, size_t n) {
  gather_state_t *st = state;
  if (n != 1)
    return STRATA_EINVAL;
  st->handle = h[0];
  if (pthread_create(&st->completer, NULL, complete_main, st))
    return STRATA_EBACKEND;
  if (pthread_create(&st->worker, NULL, work_main, st)) {
    pthread_mutex_lock(&st->mu);
    st->stop = true;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
    pthread_join(st->completer, NULL);
    return STRATA_EBACKEND;
  }
  st->started = true;
  return STRATA_OK;
}

static void g_stop(void *state) {
  gather_state_t *st = state;
  if (!st->started)
    return;
  pthread_join(st->worker, NULL);
  pthread_mutex_lock(&st->mu);
  st->stop = true;
  pthread_cond_broadcast(&st->cv);
  pthread_mutex_unlock(&st->mu);
  pthread_join(st->completer, NULL);
  st->started = false;
}

static void g_fini(void *state) {
  gather_state_t *st = state;
  pthread_cond_destroy(&st->cv);
  pthread_mutex_destroy(&st->mu);
  gfree(st, st, sizeof *st);
}

static int g_mem_alloc(void *state, unsigned dev, size_t size, void **ptr) {
  (void)dev;
  return (*ptr = galloc(state, size)) ? STRATA_OK : STRATA_ENOMEM;
}

static void g_mem_free(void *state, unsigned dev, void *ptr, size_t size) {
  (void)dev;
  gfree(state, ptr, size);
}

#ifdef GATHER_SYNC
static int g_copy(void *state, const strata_backend_copy_t *op) {
  gather_state_t *st = state;
  if (st->reenter)
    st->reenter();
  memcpy(op->dst, op->src, op->size);
  return STRATA_OK;
}
#else
static int g_copy_async(void *state, const strata_backend_copy_t *op,
                        void *token) {
  gather_state_t *st = state;
  if (st->reenter)
    st->reenter();
  pending_t *p = galloc(st, sizeof *p);
  if (!p)
    return STRATA_ENOMEM;
  *p = (pending_t){*op, token, NULL};
  pthread_mutex_lock(&st->mu);
  if (st->slow_bytes && op->size == st->slow_bytes && !st->released) {
    p->next = st->slow;
    st->slow = p;
  } else {
    p->next = st->stack;
    st->stack = p;
    st->npending++;
  }
  pthread_cond_broadcast(&st->cv);
  pthread_mutex_unlock(&st->mu);
  return STRATA_OK;
}
#endif

static int g_host_alloc(void *state, size_t size, void **ptr) {
  gather_state_t *st = state;
  st->core->log(st->core->core, STRATA_LOG_INFO, "host_alloc %zu", size);
  return (*ptr = galloc(st, size)) ? STRATA_OK : STRATA_ENOMEM;
}

static void g_host_free(void *state, void *ptr, size_t size) {
  gfree(state, ptr, size);
}

static int g_inject(void *state, unsigned dev, const char *fault,
                    double value) {
  gather_state_t *st = state;
  (void)dev, (void)value;
  if (strcmp(fault, "release"))
    return STRATA_EINVAL;
  pthread_mutex_lock(&st->mu);
  st->released = true;
  pthread_cond_broadcast(&st->cv);
  pthread_mutex_unlock(&st->mu);
  return STRATA_OK;
}

STRATA_BACKEND_EXPORT const strata_backend_component_t SYMBOL = {
    .abi_major = STRATA_BACKEND_ABI_MAJOR,
    .abi_minor = STRATA_BACKEND_ABI_MINOR,
    .struct_size = sizeof(strata_backend_component_t),
    .name = PLUGIN_NAME,
    .description = "test card that gathers, delays and re-enters on copies",
    .init = g_init,
    .probe = g_probe,
    .start = g_start,
    .stop = g_stop,
    .fini = g_fini,
    .mem_alloc = g_mem_alloc,
    .mem_free = g_mem_free,
#ifdef GATHER_SYNC
    .copy = g_copy,
#else
    .copy_async = g_copy_async,
#endif
    .host_alloc = g_host_alloc,
    .host_free = g_host_free,
    .inject = g_inject,
};
