/* SPDX-License-Identifier: MIT */
/* backends/cuda-common/exec.c: running tasks on a GPU. Each worker thread
 * takes works from the core and launches their kernels on its own
 * non-blocking stream; behind each launch it records an event on the
 * worker's lane, whose thread waits for the events in stream order and
 * completes the works. So a worker may have several works in flight (the
 * core holds it back at the device's depth), copies on the copy lanes
 * overlap the kernels, and nothing waits for a GPU while holding a lock.
 * Copies use the same lanes (memory.c): a copy lane completes a copy by
 * calling the core's copy_done. A sticky error (the card is lost) fails
 * the device: the core runs its work elsewhere from data still valid. */
#include "scuda.h"

#include <string.h>

/* {=== Lanes ===} */

static void *lane_alloc(scuda_lane_t *l, size_t n) {
  const strata_core_services_t *core = l->dev->b->core;
  void *p = core->alloc(core->core, NULL, 0, n);
  if (p)
    memset(p, 0, n);
  return p;
}

static void lane_free(scuda_lane_t *l, void *p, size_t n) {
  const strata_core_services_t *core = l->dev->b->core;
  core->alloc(core->core, p, n, 0);
}

/* Report one item the stream has reached (e: what its event said). */
static void deliver(scuda_lane_t *l, scuda_item_t *it, cudaError_t e) {
  scuda_device_t *d = l->dev;
  const strata_core_services_t *core = d->b->core;
  if (it->kind == SCUDA_ITEM_WORK) {
    if (e == cudaSuccess)
      core->complete(core->core, it->what, 0);
    else if (scuda_sticky(e))
      scuda_fail_device(d, it->what, e, "a kernel");
    else
      core->complete(core->core, it->what,
                     scuda_status(d->b, e, "waiting for a kernel"));
    return;
  }
  int rc = e == cudaSuccess ? STRATA_OK
                            : scuda_status(d->b, e, "waiting for a copy");
  core->copy_done(core->core, it->what, rc);
  if (scuda_sticky(e))
    scuda_fail_device(d, NULL, e, "a copy");
}

static void *lane_main(void *arg) {
  scuda_lane_t *l = arg;
  (void)cudaSetDevice(l->dev->ordinal);
  pthread_mutex_lock(&l->mu);
  for (;;) {
    while (!l->head && !l->stop)
      pthread_cond_wait(&l->cv, &l->mu);
    scuda_item_t *it = l->head;
    if (!it)
      break;
    pthread_mutex_unlock(&l->mu);
    cudaError_t e = cudaEventSynchronize(it->ev);
    pthread_mutex_lock(&l->mu);
    l->head = it->next;
    if (!l->head)
      l->tail = NULL;
    pthread_mutex_unlock(&l->mu);
    /* No lock held: the core may queue the next copy from in here. */
    deliver(l, it, e);
    pthread_mutex_lock(&l->mu);
    it->next = l->spare;
    l->spare = it;
  }
  pthread_mutex_unlock(&l->mu);
  return NULL;
}

int scuda_lane_start(scuda_lane_t *l, scuda_device_t *d, const char *what) {
  *l = (scuda_lane_t){.dev = d};
  pthread_mutex_init(&l->mu, NULL);
  pthread_cond_init(&l->cv, NULL);
  cudaError_t e = cudaSetDevice(d->ordinal);
  if (e == cudaSuccess)
    e = cudaStreamCreateWithFlags(&l->stream, cudaStreamNonBlocking);
  if (e != cudaSuccess) {
    l->stream = NULL;
    return scuda_status(d->b, e, "creating a stream");
  }
  if (pthread_create(&l->thread, NULL, lane_main, l)) {
    scuda_log(d->b, STRATA_LOG_ERROR, "cannot start the %s lane of %s", what,
              d->b->facts[d->index].name);
    return STRATA_EBACKEND;
  }
  l->started = true;
  return STRATA_OK;
}

/* An item with its event: a spare one, else a new one. */
static scuda_item_t *take_item(scuda_lane_t *l, cudaError_t *e) {
  pthread_mutex_lock(&l->mu);
  scuda_item_t *it = l->spare;
  if (it)
    l->spare = it->next;
  pthread_mutex_unlock(&l->mu);
  if (it)
    return it;
  if (!(it = lane_alloc(l, sizeof *it))) {
    *e = cudaErrorMemoryAllocation;
    return NULL;
  }
  /* Blocking sync: the lane's thread sleeps instead of spinning on the
   * card while it waits. */
  *e = cudaEventCreateWithFlags(&it->ev,
                                cudaEventDisableTiming | cudaEventBlockingSync);
  if (*e != cudaSuccess) {
    lane_free(l, it, sizeof *it);
    return NULL;
  }
  return it;
}

int scuda_lane_push(scuda_lane_t *l, scuda_item_kind_t kind, void *what) {
  cudaError_t e = cudaSuccess;
  scuda_item_t *it = take_item(l, &e);
  if (it)
    e = cudaEventRecord(it->ev, l->stream);
  if (e != cudaSuccess) {
    if (it) {
      pthread_mutex_lock(&l->mu);
      it->next = l->spare;
      l->spare = it;
      pthread_mutex_unlock(&l->mu);
    }
    if (scuda_sticky(e))
      scuda_fail_device(l->dev, NULL, e, "recording an event");
    return scuda_status(l->dev->b, e, "recording an event");
  }
  it->kind = kind;
  it->what = what;
  it->next = NULL;
  pthread_mutex_lock(&l->mu);
  if (l->tail)
    l->tail->next = it;
  else
    l->head = it;
  l->tail = it;
  pthread_cond_signal(&l->cv);
  pthread_mutex_unlock(&l->mu);
  return STRATA_OK;
}

void scuda_lane_stop(scuda_lane_t *l) {
  if (!l->dev)
    return;
  if (l->started) {
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    l->started = false;
  }
  (void)cudaSetDevice(l->dev->ordinal);
  for (scuda_item_t *it = l->spare, *next; it; it = next) {
    next = it->next;
    (void)cudaEventDestroy(it->ev);
    lane_free(l, it, sizeof *it);
  }
  l->spare = NULL;
  if (l->stream)
    (void)cudaStreamDestroy(l->stream);
  (void)cudaGetLastError();
  l->stream = NULL;
  pthread_mutex_destroy(&l->mu);
  pthread_cond_destroy(&l->cv);
  l->dev = NULL;
}

/* {=== Workers ===} */

/* Launch one work's kernel and queue its completion behind it. */
static void run(scuda_worker_t *w, strata_work_t *work) {
  scuda_device_t *d = w->dev;
  const strata_core_services_t *core = d->b->core;
  work->call.stream = w->lane.stream;
  int krc = work->fn(&work->call);
  cudaError_t e = cudaGetLastError();
  bool queued = krc == 0 && e == cudaSuccess;
  if (queued && scuda_lane_push(&w->lane, SCUDA_ITEM_WORK, work) == STRATA_OK)
    return;
  if (scuda_sticky(e)) {
    scuda_fail_device(d, work, e, "launching a kernel");
    return;
  }
  if (e != cudaSuccess) { /* named, whatever the kernel returned */
    int rc = scuda_status(d->b, e, "launching a kernel");
    krc = krc ? krc : rc;
  }
  /* What the kernel queued before it failed may still run: let it end
   * before the core reuses the buffers. */
  e = cudaStreamSynchronize(w->lane.stream);
  if (scuda_sticky(e)) {
    scuda_fail_device(d, work, e, "a failed kernel");
    return;
  }
  (void)cudaGetLastError();
  /* A kernel launched fine whose completion could not be queued has now
   * finished: it succeeded, unless its stream says otherwise. */
  if (queued)
    krc = scuda_status(d->b, e, "a kernel");
  else if (!krc)
    krc = STRATA_EBACKEND;
  core->complete(core->core, work, krc);
}

static void *worker_main(void *arg) {
  scuda_worker_t *w = arg;
  scuda_device_t *d = w->dev;
  const strata_core_services_t *core = d->b->core;
  /* A failed bind is logged by the core; the worker still runs. */
  (void)core->bind_worker(core->core, d->handle, w->index);
  (void)cudaSetDevice(d->ordinal);
  for (;;) {
    strata_work_t *work;
    int rc = core->next(core->core, d->handle, w->index, -1, &work);
    if (rc == STRATA_OK)
      run(w, work);
    else if (rc != STRATA_EAGAIN)
      break; /* STRATA_ESHUTDOWN, or a worker the core does not know */
  }
  return NULL;
}

/* Let device d read its peers' memory directly (the copy between two
 * cards is made by the destination's side). */
static void enable_peers(scuda_device_t *d) {
  const strata_backend_device_t *f = &d->b->facts[d->index];
  for (uint32_t i = 0; i < f->npeers; i++) {
    int o;
    if (cudaDeviceGetByPCIBusId(&o, f->peers[i].busid) == cudaSuccess) {
      cudaError_t e = cudaDeviceEnablePeerAccess(o, 0);
      if (e != cudaSuccess && e != cudaErrorPeerAccessAlreadyEnabled)
        scuda_status(d->b, e, "enabling peer access");
    }
    (void)cudaGetLastError();
  }
}

static int start_device(scuda_device_t *d) {
  static const char *const names[] = {"compute 0", "compute 1", "compute 2",
                                      "compute 3", "compute"};
  int rc;
  if ((rc = scuda_lane_start(&d->h2d, d, "h2d")) ||
      (rc = scuda_lane_start(&d->d2h, d, "d2h")) ||
      (rc = scuda_stager_start(&d->stager, d)) || (rc = scuda_pool_start(d)))
    return rc;
  enable_peers(d);
  d->nworkers = d->b->nworkers;
  for (unsigned i = 0; i < d->nworkers; i++) {
    scuda_worker_t *w = &d->workers[i];
    *w = (scuda_worker_t){.dev = d, .index = i};
    if ((rc = scuda_lane_start(&w->lane, d, names[i < 4 ? i : 4])))
      return rc;
    if (pthread_create(&w->thread, NULL, worker_main, w)) {
      scuda_log(d->b, STRATA_LOG_ERROR, "cannot start worker %u of %s", i,
                d->b->facts[d->index].name);
      return STRATA_EBACKEND;
    }
    w->started = true;
  }
  return STRATA_OK;
}

int scuda_start_workers(scuda_backend_t *b) {
  for (size_t i = 0; i < b->ndevs; i++) {
    int rc = start_device(&b->devs[i]);
    if (rc)
      return rc;
  }
  return STRATA_OK;
}

void scuda_stop_workers(scuda_backend_t *b) {
  for (size_t i = 0; i < b->ndevs; i++) {
    scuda_device_t *d = &b->devs[i];
    for (unsigned w = 0; w < d->nworkers; w++)
      if (d->workers[w].started) {
        pthread_join(d->workers[w].thread, NULL);
        d->workers[w].started = false;
      }
    for (unsigned w = 0; w < d->nworkers; w++)
      scuda_lane_stop(&d->workers[w].lane);
    scuda_lane_stop(&d->h2d);
    scuda_lane_stop(&d->d2h);
    scuda_stager_stop(&d->stager);
    scuda_pool_stop(d);
    scuda_fail_device_join(d);
  }
}
