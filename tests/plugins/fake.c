/* SPDX-License-Identifier: MIT */
/* tests/plugins/fake.c: a working backend for tests, whose devices and
 * failures are chosen by options:
 *   devices=hbm+gddr+cpu   one device per class named (default: hbm)
 *   workers=N              workers per device (default 1)
 *   fail=init|probe|start  fail that step
 *   none=1                 report no device
 *   bad=class|impl|workers|name|core   describe the first device wrongly
 *   badworker=1            each thread first asks next() for a worker
 *                          that does not exist, and logs the answer
 * Kernels run on plain host threads whatever the device class, so tests
 * can observe GPU-class placement without a GPU. */
#include "config.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/backend.h>

#define MAX_DEVS 8
#define MAX_THREADS 64

typedef struct fake_thread {
  const strata_core_services_t *core;
  strata_device_handle_t *dev;
  unsigned worker;
  unsigned bad_worker; /* 0: none */
  pthread_t tid;
} fake_thread_t;

typedef struct fake_state {
  const strata_core_services_t *core;
  char fail[16];
  strata_backend_device_t devs[MAX_DEVS];
  size_t ndevs;
  fake_thread_t threads[MAX_THREADS];
  size_t nthreads;
  uint32_t bad_core;
  bool bad_worker;
} fake_state_t;

static int parse_class(const char *s, size_t n, strata_device_class_t *c) {
  for (int k = 0; k < STRATA_CLASS_COUNT; k++) {
    const char *names[] = {"cpu", "hbm", "gddr"};
    if (strlen(names[k]) == n && !strncmp(names[k], s, n)) {
      *c = (strata_device_class_t)k;
      return 0;
    }
  }
  return -1;
}

/* bad=...: a device description the core must reject. */
static void describe_wrongly(fake_state_t *st, strata_backend_device_t *d,
                             const char *what) {
  if (!strcmp(what, "class"))
    d->device_class = (strata_device_class_t)42;
  else if (!strcmp(what, "impl"))
    d->candidate_impl = (strata_impl_kind_t)42;
  else if (!strcmp(what, "workers"))
    d->nworkers = 0;
  else if (!strcmp(what, "name"))
    d->name[0] = '\0';
  else if (!strcmp(what, "core")) {
    st->bad_core = UINT32_C(1) << 30;
    d->worker_cores = &st->bad_core;
  }
}

static int fake_init(const strata_core_services_t *core,
                     const strata_backend_config_t *cfg, void **state) {
  (void)cfg;
  fake_state_t *st = core->alloc(core->core, NULL, 0, sizeof *st);
  if (!st)
    return STRATA_ENOMEM;
  memset(st, 0, sizeof *st);
  st->core = core;
  char buf[128] = "hbm";
  unsigned workers = 1;
  char wbuf[16];
  if (core->option(core->core, "workers", wbuf, sizeof wbuf) == STRATA_OK)
    workers = (unsigned)atoi(wbuf);
  core->option(core->core, "fail", st->fail, sizeof st->fail);
  core->option(core->core, "devices", buf, sizeof buf);
  char none[4];
  bool report_none =
      core->option(core->core, "none", none, sizeof none) == STRATA_OK;
  for (const char *p = buf; *p && !report_none && st->ndevs < MAX_DEVS;) {
    const char *end = strchr(p, '+');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    strata_backend_device_t *d = &st->devs[st->ndevs];
    if (parse_class(p, n, &d->device_class)) {
      core->log(core->core, STRATA_LOG_ERROR, "unknown class in '%s'", buf);
      core->alloc(core->core, st, sizeof *st, 0);
      return STRATA_EINVAL;
    }
    d->struct_size = sizeof *d;
    /* GPU classes stand for CUDA cards: their kernels' CUDA entries run
     * (on host threads, as every kernel here). */
    d->candidate_impl = d->run_impl = d->device_class == STRATA_CLASS_CPU
                                          ? STRATA_IMPL_CPU
                                          : STRATA_IMPL_CUDA;
    d->nworkers = workers ? workers : 1;
    d->numa_node = -1;
    d->memory_bytes = (uint64_t)(st->ndevs + 1) << 30;
    snprintf(d->name, sizeof d->name, "fake-%.*s%zu", (int)n, p, st->ndevs);
    st->ndevs++;
    p = end ? end + 1 : p + n;
  }
  if (!strcmp(st->fail, "init")) {
    core->alloc(core->core, st, sizeof *st, 0);
    return STRATA_EBACKEND;
  }
  char bad[16];
  if (core->option(core->core, "bad", bad, sizeof bad) == STRATA_OK &&
      st->ndevs)
    describe_wrongly(st, &st->devs[0], bad);
  char flag[4];
  st->bad_worker =
      core->option(core->core, "badworker", flag, sizeof flag) == STRATA_OK;
  *state = st;
  return STRATA_OK;
}

static int fake_probe(void *state, const strata_backend_device_t **devices,
                      size_t *n) {
  fake_state_t *st = state;
  if (!strcmp(st->fail, "probe"))
    return STRATA_EBACKEND;
  *devices = st->devs;
  *n = st->ndevs;
  return STRATA_OK;
}

static void *run(void *arg) {
  fake_thread_t *th = arg;
  if (th->bad_worker) {
    strata_work_t *w;
    int rc = th->core->next(th->core->core, th->dev, th->bad_worker, 0, &w);
    th->core->log(th->core->core, STRATA_LOG_INFO,
                  "next() for worker %u answered %d", th->bad_worker, rc);
  }
  for (;;) {
    strata_work_t *w;
    int rc = th->core->next(th->core->core, th->dev, th->worker, -1, &w);
    if (rc == STRATA_ESHUTDOWN)
      return NULL;
    if (rc == STRATA_OK)
      th->core->complete(th->core->core, w, w->fn(&w->call));
  }
}

static int fake_start(void *state, strata_device_handle_t *const *h, size_t n) {
  fake_state_t *st = state;
  for (size_t d = 0; d < n; d++)
    for (unsigned w = 0; w < st->devs[d].nworkers; w++) {
      if (st->nthreads == MAX_THREADS)
        return STRATA_EBACKEND;
      fake_thread_t *th = &st->threads[st->nthreads];
      *th = (fake_thread_t){st->core, h[d], w,
                            st->bad_worker ? st->devs[d].nworkers + 5 : 0, 0};
      if (pthread_create(&th->tid, NULL, run, th))
        return STRATA_EBACKEND;
      st->nthreads++;
      /* fail=start: fail once one thread runs (whatever the device and
       * worker counts), so the core must stop and join it */
      if (!strcmp(st->fail, "start"))
        return STRATA_EBACKEND;
    }
  return STRATA_OK;
}

static void fake_stop(void *state) {
  fake_state_t *st = state;
  for (size_t i = 0; i < st->nthreads; i++)
    pthread_join(st->threads[i].tid, NULL);
  st->nthreads = 0;
}

static void fake_fini(void *state) {
  fake_state_t *st = state;
  st->core->alloc(st->core->core, st, sizeof *st, 0);
}

STRATA_BACKEND_EXPORT const strata_backend_component_t
    strata_backend_fake_component = {
        .abi_major = STRATA_BACKEND_ABI_MAJOR,
        .abi_minor = STRATA_BACKEND_ABI_MINOR,
        .struct_size = sizeof(strata_backend_component_t),
        .name = "fake",
        .description = "test backend with configurable devices and failures",
        .init = fake_init,
        .probe = fake_probe,
        .start = fake_start,
        .stop = fake_stop,
        .fini = fake_fini,
};
