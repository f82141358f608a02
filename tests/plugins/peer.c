/* SPDX-License-Identifier: MIT */
/* tests/plugins/peer.c: one card of memory of its own, with asynchronous
 * copies completed from the plugin's own thread, newest first (so that
 * copies in flight together end out of order). Built twice (peer-a with
 * PEER_HOSTMEM: it also offers pinned host memory and managed memory;
 * peer-b without), so that two backends can copy between their cards
 * directly; peer-b pins host memory with host_register instead. Options:
 *   class=hbm|gddr   the card's class (default hbm)
 *   busid=ID         its bus id (without it: no card, so that the plugin
 *                    stays out of other tests' way)
 *   peer=ID          the one bus id it can copy from directly (default none)
 *   managed=1        (peer-a) offer managed memory only
 *   pool=1           declare a pool of its own (memory_pool): the core
 *                    gives every freed block back at once
 *   register=fail    (peer-b) host_register fails, as with a locked-memory
 *                    limit reached
 *   copy=gone        every copy fails with STRATA_EDEVICE, as on a card
 *                    that fell off the bus
 *   health=block     health() answers once, then blocks until
 *                    strata_device_inject(..., "release", 0) (or 30 s);
 *                    inject "blocked" answers 0 once it is blocked
 * It logs at INFO each host_alloc, host_register, host_unregister,
 * mem_free, managed_prefetch and copy from a foreign card, for the tests to
 * count, and at ERROR an unregister of a range it did not register. */
#include "config.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <strata/backend.h>

#define CAT3(a, b, c) a##b##c
#define SYMBOL(p) CAT3(strata_backend_, p, _component)

typedef struct pending {
  const strata_backend_copy_t *op; /* NULL: a prefetch */
  void *token;
  struct pending *next;
} pending_t;

typedef struct peer_state {
  const strata_core_services_t *core;
  strata_backend_device_t dev;
  strata_backend_peer_t peer;
  strata_device_handle_t *handle;
  pthread_t worker, completer;
  bool started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pending_t *stack; /* newest first */
  bool stop;
  bool block_health, blocked, released; /* under mu */
  unsigned readings;
  bool register_fail;   /* register=fail */
  bool copy_gone;       /* copy=gone */
  void *registered[64]; /* host_register ranges, under mu */
} peer_state_t;

static void *palloc(peer_state_t *st, size_t n) {
  return st->core->alloc(st->core->core, NULL, 0, n);
}

static void pfree(peer_state_t *st, void *p, size_t n) {
  if (p)
    st->core->alloc(st->core->core, p, n, 0);
}

static int p_init(const strata_core_services_t *core,
                  const strata_backend_config_t *cfg, void **state) {
  (void)cfg;
  peer_state_t *st = core->alloc(core->core, NULL, 0, sizeof *st);
  if (!st)
    return STRATA_ENOMEM;
  memset(st, 0, sizeof *st);
  st->core = core;
  pthread_mutex_init(&st->mu, NULL);
  pthread_cond_init(&st->cv, NULL);
  strata_backend_device_t *d = &st->dev;
  char buf[32] = "hbm";
  core->option(core->core, "class", buf, sizeof buf);
  d->struct_size = sizeof *d;
  d->device_class = !strcmp(buf, "gddr") ? STRATA_CLASS_GDDR : STRATA_CLASS_HBM;
  /* Stands for a GPU as the sim does: a candidate for kernels with CUDA
   * code, running their CPU code. */
  d->candidate_impl = STRATA_IMPL_CUDA;
  d->run_impl = STRATA_IMPL_CPU;
  snprintf(d->name, sizeof d->name, "%s-card", PLUGIN_NAME);
  d->memory_bytes = 64u << 20;
  d->numa_node = -1;
  d->nworkers = 1;
  d->own_memory = 1;
  d->ecc = -1;
  d->link_bandwidth = 16e9;
  d->cc_major = 9;
  d->pcie_gen = 5;
  d->pcie_width = 16;
  d->memory_bus_width = 5120;
  snprintf(d->uuid, sizeof d->uuid, "GPU-%s", PLUGIN_NAME);
  core->option(core->core, "busid", d->pci_busid, sizeof d->pci_busid);
  if (core->option(core->core, "peer", st->peer.busid, sizeof st->peer.busid) ==
      STRATA_OK) {
    st->peer.bandwidth = 50e9;
    d->peers = &st->peer;
    d->npeers = 1;
  }
  st->block_health =
      core->option(core->core, "health", buf, sizeof buf) == STRATA_OK &&
      !strcmp(buf, "block");
  if (core->option(core->core, "pool", buf, sizeof buf) == STRATA_OK &&
      !strcmp(buf, "1"))
    d->memory_pool = 1;
  st->register_fail =
      core->option(core->core, "register", buf, sizeof buf) == STRATA_OK &&
      !strcmp(buf, "fail");
  st->copy_gone =
      core->option(core->core, "copy", buf, sizeof buf) == STRATA_OK &&
      !strcmp(buf, "gone");
#ifdef PEER_HOSTMEM
  if (core->option(core->core, "managed", buf, sizeof buf) == STRATA_OK)
    d->memory_kinds = STRATA_MEMORY_MANAGED;
#endif
  *state = st;
  return STRATA_OK;
}

static int p_probe(void *state, const strata_backend_device_t **devices,
                   size_t *n) {
  peer_state_t *st = state;
  *devices = &st->dev;
  *n = st->dev.pci_busid[0] ? 1 : 0;
  return STRATA_OK;
}

static void *work_main(void *arg) {
  peer_state_t *st = arg;
  for (;;) {
    strata_work_t *w;
    int rc = st->core->next(st->core->core, st->handle, 0, -1, &w);
    if (rc == STRATA_ESHUTDOWN)
      return NULL;
    if (rc == STRATA_OK)
      st->core->complete(st->core->core, w, w->fn(&w->call));
  }
}

/* Completes the newest pending operation first. */
static void *complete_main(void *arg) {
  peer_state_t *st = arg;
  pthread_mutex_lock(&st->mu);
  for (;;) {
    while (!st->stack && !st->stop)
      pthread_cond_wait(&st->cv, &st->mu);
    pending_t *p = st->stack;
    if (!p)
      break;
    st->stack = p->next;
    pthread_mutex_unlock(&st->mu);
    if (p->op)
      memcpy(p->op->dst, p->op->src, p->op->size);
    void *token = p->token;
    pfree(st, p, sizeof *p);
    st->core->copy_done(st->core->core, token, STRATA_OK);
    pthread_mutex_lock(&st->mu);
  }
  pthread_mutex_unlock(&st->mu);
  return NULL;
}

static int p_start(void *state, strata_device_handle_t *const *h, size_t n) {
  peer_state_t *st = state;
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

static void p_stop(void *state) {
  peer_state_t *st = state;
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

static void p_fini(void *state) {
  peer_state_t *st = state;
  pthread_cond_destroy(&st->cv);
  pthread_mutex_destroy(&st->mu);
  pfree(st, st, sizeof *st);
}

static int p_mem_alloc(void *state, unsigned dev, size_t size, void **ptr) {
  (void)dev;
  return (*ptr = palloc(state, size)) ? STRATA_OK : STRATA_ENOMEM;
}

static void p_mem_free(void *state, unsigned dev, void *ptr, size_t size) {
  peer_state_t *st = state;
  (void)dev;
  st->core->log(st->core->core, STRATA_LOG_INFO, "mem_free %zu", size);
  pfree(state, ptr, size);
}

static int push(peer_state_t *st, const strata_backend_copy_t *op,
                void *token) {
  pending_t *p = palloc(st, sizeof *p);
  if (!p)
    return STRATA_ENOMEM;
  *p = (pending_t){op, token, NULL};
  pthread_mutex_lock(&st->mu);
  p->next = st->stack;
  st->stack = p;
  pthread_cond_broadcast(&st->cv);
  pthread_mutex_unlock(&st->mu);
  return STRATA_OK;
}

static int p_copy_async(void *state, const strata_backend_copy_t *op,
                        void *token) {
  peer_state_t *st = state;
  if (st->copy_gone)
    return STRATA_EDEVICE;
  if (op->src_dev == STRATA_BACKEND_FOREIGN)
    st->core->log(st->core->core, STRATA_LOG_INFO,
                  "copy of %zu bytes from foreign card %s", op->size,
                  op->src_busid);
  return push(st, op, token);
}

#ifdef PEER_HOSTMEM
static int p_host_alloc(void *state, size_t size, void **ptr) {
  peer_state_t *st = state;
  st->core->log(st->core->core, STRATA_LOG_INFO, "host_alloc %zu", size);
  return (*ptr = palloc(st, size)) ? STRATA_OK : STRATA_ENOMEM;
}

static void p_host_free(void *state, void *ptr, size_t size) {
  pfree(state, ptr, size);
}

static int p_managed_prefetch(void *state, int dev, const void *ptr,
                              size_t size, void *token) {
  peer_state_t *st = state;
  (void)ptr;
  st->core->log(st->core->core, STRATA_LOG_INFO, "managed_prefetch %zu to %d",
                size, dev);
  return push(st, NULL, token);
}
#endif

#ifndef PEER_HOSTMEM
/* Page-locks nothing (the tests need no locked memory): it keeps the
 * ranges, so that an unregister of one it never registered shows. */
static int p_host_register(void *state, void *ptr, size_t size) {
  peer_state_t *st = state;
  if (st->register_fail)
    return STRATA_ENOMEM;
  int rc = STRATA_ENOMEM;
  pthread_mutex_lock(&st->mu);
  for (size_t i = 0; i < sizeof st->registered / sizeof *st->registered; i++)
    if (!st->registered[i]) {
      st->registered[i] = ptr;
      rc = STRATA_OK;
      break;
    }
  pthread_mutex_unlock(&st->mu);
  if (rc == STRATA_OK)
    st->core->log(st->core->core, STRATA_LOG_INFO, "registered %zu bytes",
                  size);
  return rc;
}

static void p_host_unregister(void *state, void *ptr, size_t size) {
  peer_state_t *st = state;
  bool found = false;
  pthread_mutex_lock(&st->mu);
  for (size_t i = 0; i < sizeof st->registered / sizeof *st->registered; i++)
    if (st->registered[i] == ptr) {
      st->registered[i] = NULL;
      found = true;
      break;
    }
  pthread_mutex_unlock(&st->mu);
  st->core->log(st->core->core, found ? STRATA_LOG_INFO : STRATA_LOG_ERROR,
                found ? "unregistered %zu bytes"
                      : "unregister of %zu bytes never registered",
                size);
}
#endif

static int p_health(void *state, unsigned dev, strata_health_t *out) {
  peer_state_t *st = state;
  (void)dev;
  out->temperature_c = 50;
  pthread_mutex_lock(&st->mu);
  if (st->block_health && st->readings++ > 0) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 30;
    st->blocked = true;
    while (!st->released)
      if (pthread_cond_timedwait(&st->cv, &st->mu, &until))
        break;
    st->blocked = false;
  }
  pthread_mutex_unlock(&st->mu);
  return STRATA_OK;
}

static int p_inject(void *state, unsigned dev, const char *fault,
                    double value) {
  peer_state_t *st = state;
  (void)dev, (void)value;
  int rc = STRATA_EINVAL;
  pthread_mutex_lock(&st->mu);
  if (!strcmp(fault, "blocked")) {
    rc = st->blocked ? STRATA_OK : STRATA_EAGAIN;
  } else if (!strcmp(fault, "release")) {
    rc = st->blocked ? STRATA_OK : STRATA_EAGAIN; /* EAGAIN: timed out */
    st->released = true;
    pthread_cond_broadcast(&st->cv);
  }
  pthread_mutex_unlock(&st->mu);
  return rc;
}

STRATA_BACKEND_EXPORT const strata_backend_component_t SYMBOL(PLUGIN) = {
    .abi_major = STRATA_BACKEND_ABI_MAJOR,
    .abi_minor = STRATA_BACKEND_ABI_MINOR,
    .struct_size = sizeof(strata_backend_component_t),
    .name = PLUGIN_NAME,
    .description = "test card with asynchronous, out-of-order copies",
    .init = p_init,
    .probe = p_probe,
    .start = p_start,
    .stop = p_stop,
    .fini = p_fini,
    .mem_alloc = p_mem_alloc,
    .mem_free = p_mem_free,
    .copy_async = p_copy_async,
    .health = p_health,
    .inject = p_inject,
#ifdef PEER_HOSTMEM
    .host_alloc = p_host_alloc,
    .host_free = p_host_free,
    .managed_alloc = p_mem_alloc,
    .managed_free = p_mem_free,
    .managed_prefetch = p_managed_prefetch,
#else
    .host_register = p_host_register,
    .host_unregister = p_host_unregister,
#endif
};
