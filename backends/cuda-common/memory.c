/* SPDX-License-Identifier: MIT */
/* backends/cuda-common/memory.c: device, pinned and managed memory, and
 * copies. The core keeps the accounts (capacity, eviction, device_bytes)
 * and, by default, caches freed device blocks itself (memory_pool 0):
 * cudaMalloc and cudaFree synchronise the card, and an exact-size cache in
 * front of them keeps both off the path of a steady workload. pool=stream
 * takes blocks from CUDA's stream-ordered pool instead (memory_pool 1),
 * which reuses memory across sizes.
 *
 * Copies go on the destination card's h2d lane (host to device, and
 * between cards: the destination's side makes a peer copy) or the source
 * card's d2h lane (device to host), and complete through the lane; large
 * ones to or from pageable host memory go through the card's stager
 * (staging.c) instead. Host
 * memory for the core's pinned tier and staging buffers is page-locked
 * (portable: every card can reach it). */
#include "scuda.h"

#include <stdio.h>

static scuda_backend_t *of(void *state) { return state; }

static bool valid_dev(scuda_backend_t *b, int dev) {
  return dev >= 0 && (size_t)dev < b->ndevs;
}

static cudaError_t set_device(scuda_backend_t *b, unsigned dev) {
  return cudaSetDevice(b->devs[dev].ordinal);
}

/* These entry points run on the core's and the embedder's threads, whose
 * current CUDA device is theirs: each one puts it back as it found it. */
static int current_device(void) {
  int dev = -1;
  if (cudaGetDevice(&dev) != cudaSuccess) {
    (void)cudaGetLastError();
    dev = -1;
  }
  return dev;
}

static void restore_device(int dev) {
  if (dev >= 0)
    (void)cudaSetDevice(dev);
}

/* A stream operation is queued but its completion could not be: wait for
 * the lane's stream here and report the end now (copy_done may be called
 * from inside copy_async). @return 0: the operation is reported */
static int finish_here(scuda_lane_t *lane, void *token) {
  scuda_backend_t *b = lane->dev->b;
  cudaError_t e = cudaStreamSynchronize(lane->stream);
  int rc = scuda_status(b, e, "waiting for a copy");
  b->core->copy_done(b->core->core, token, rc);
  if (scuda_sticky(e))
    scuda_fail_device(lane->dev, NULL, e, "a copy");
  (void)cudaGetLastError();
  return STRATA_OK;
}

/* Queue the completion of an operation already on the lane's stream.
 * @return 0 (copy_done will be, or was, called) */
static int complete_on(scuda_lane_t *lane, void *token) {
  if (scuda_lane_push(lane, SCUDA_ITEM_COPY, token) == STRATA_OK)
    return STRATA_OK;
  return finish_here(lane, token);
}

/* {=== Device memory ===} */

/* With pool=stream, blocks come from the card's stream-ordered pool on a
 * stream of their own: an allocation is waited for there (the pool
 * answers from memory it keeps, without the device-wide synchronisation
 * of cudaMalloc), so the block is ready for any stream; a free is queued
 * there, the core freeing only blocks no work uses any more. */
int scuda_pool_start(scuda_device_t *d) {
  if (!d->stream_pool)
    return STRATA_OK;
  cudaMemPool_t pool;
  uint64_t keep = UINT64_MAX; /* freed memory stays in the pool */
  cudaError_t e = cudaSetDevice(d->ordinal);
  if (!e)
    e = cudaStreamCreateWithFlags(&d->alloc_stream, cudaStreamNonBlocking);
  if (!e)
    e = cudaDeviceGetDefaultMemPool(&pool, d->ordinal);
  if (!e)
    e = cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep);
  return scuda_status(d->b, e, "setting up the stream-ordered pool");
}

void scuda_pool_stop(scuda_device_t *d) {
  if (d->alloc_stream) {
    (void)cudaSetDevice(d->ordinal);
    (void)cudaStreamSynchronize(d->alloc_stream);
    (void)cudaStreamDestroy(d->alloc_stream);
    (void)cudaGetLastError();
    d->alloc_stream = NULL;
  }
}

static cudaError_t device_alloc(scuda_device_t *d, size_t size, void **ptr) {
  if (!d->alloc_stream)
    return cudaMalloc(ptr, size);
  cudaError_t e = cudaMallocAsync(ptr, size, d->alloc_stream);
  return e ? e : cudaStreamSynchronize(d->alloc_stream);
}

static cudaError_t device_free(scuda_device_t *d, void *ptr) {
  return d->alloc_stream ? cudaFreeAsync(ptr, d->alloc_stream) : cudaFree(ptr);
}

int scuda_mem_alloc(void *state, unsigned dev, size_t size, void **ptr) {
  scuda_backend_t *b = of(state);
  if (!valid_dev(b, (int)dev))
    return STRATA_EINVAL;
  int was = current_device();
  cudaError_t e = set_device(b, dev);
  if (e == cudaSuccess)
    e = device_alloc(&b->devs[dev], size, ptr);
  restore_device(was);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    if (scuda_sticky(e))
      scuda_fail_device(&b->devs[dev], NULL, e, "cudaMalloc");
  }
  return scuda_status(b, e, "cudaMalloc");
}

void scuda_mem_free(void *state, unsigned dev, void *ptr, size_t size) {
  scuda_backend_t *b = of(state);
  if (!valid_dev(b, (int)dev))
    return;
  int was = current_device();
  cudaError_t e = set_device(b, dev);
  if (e == cudaSuccess)
    e = device_free(&b->devs[dev], ptr);
  restore_device(was);
  /* A lost card frees nothing: the process's context is gone with it. */
  if (e != cudaSuccess && !scuda_sticky(e))
    scuda_status(b, e, "cudaFree");
  (void)cudaGetLastError();
}

/* {=== Copies ===} */

/* A copy met a sticky error: fail the card it came from. Between two
 * cards the destination's side queues the copy, but the lost card may be
 * the source: the destination is failed only if its own stream says so,
 * else the source when it is one of this plugin's (a foreign source is
 * its plugin's to find; the core counts the failed copy meanwhile). */
static void blame(scuda_backend_t *b, const strata_backend_copy_t *op,
                  scuda_lane_t *lane, cudaError_t e) {
  bool between =
      op->src_dev != STRATA_BACKEND_HOST && op->dst_dev != STRATA_BACKEND_HOST;
  if (!between) {
    scuda_fail_device(lane->dev, NULL, e, "a copy");
    return;
  }
  cudaError_t mine = cudaStreamQuery(lane->stream);
  (void)cudaGetLastError();
  if (scuda_sticky(mine))
    scuda_fail_device(lane->dev, NULL, mine, "a copy");
  else if (valid_dev(b, op->src_dev))
    scuda_fail_device(&b->devs[op->src_dev], NULL, e, "a copy from it");
}

/* The lane and the CUDA call for `op`. @return 0; STRATA_E* */
static int issue_copy(scuda_backend_t *b, const strata_backend_copy_t *op,
                      scuda_lane_t **lane) {
  cudaError_t e;
  if (op->src_dev == STRATA_BACKEND_HOST && valid_dev(b, op->dst_dev)) {
    scuda_device_t *d = &b->devs[op->dst_dev];
    *lane = &d->h2d;
    if ((e = cudaSetDevice(d->ordinal)) == cudaSuccess)
      e = cudaMemcpyAsync(op->dst, op->src, op->size, cudaMemcpyHostToDevice,
                          d->h2d.stream);
  } else if (op->dst_dev == STRATA_BACKEND_HOST && valid_dev(b, op->src_dev)) {
    scuda_device_t *d = &b->devs[op->src_dev];
    *lane = &d->d2h;
    if ((e = cudaSetDevice(d->ordinal)) == cudaSuccess)
      e = cudaMemcpyAsync(op->dst, op->src, op->size, cudaMemcpyDeviceToHost,
                          d->d2h.stream);
  } else if (valid_dev(b, op->dst_dev)) {
    scuda_device_t *d = &b->devs[op->dst_dev];
    int from;
    if (op->src_dev == STRATA_BACKEND_FOREIGN)
      e = cudaDeviceGetByPCIBusId(&from, op->src_busid);
    else if (valid_dev(b, op->src_dev))
      e = (from = b->devs[op->src_dev].ordinal, cudaSuccess);
    else
      return STRATA_EINVAL;
    *lane = &d->h2d;
    if (e == cudaSuccess && (e = cudaSetDevice(d->ordinal)) == cudaSuccess)
      e = from == d->ordinal
              ? cudaMemcpyAsync(op->dst, op->src, op->size,
                                cudaMemcpyDeviceToDevice, d->h2d.stream)
              : cudaMemcpyPeerAsync(op->dst, d->ordinal, op->src, from,
                                    op->size, d->h2d.stream);
  } else {
    return STRATA_EINVAL;
  }
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    if (scuda_sticky(e))
      blame(b, op, *lane, e);
  }
  return scuda_status(b, e, "starting a copy");
}

int scuda_copy_async(void *state, const strata_backend_copy_t *op,
                     void *token) {
  scuda_backend_t *b = of(state);
  if (scuda_stage_wanted(op)) {
    int dev = op->src_dev == STRATA_BACKEND_HOST ? op->dst_dev : op->src_dev;
    if (!valid_dev(b, dev))
      return STRATA_EINVAL;
    if (atomic_load(&b->devs[dev].failed))
      return STRATA_EDEVICE;
    return scuda_stage_push(&b->devs[dev].stager, op, token);
  }
  scuda_lane_t *lane = NULL;
  int was = current_device();
  int rc = issue_copy(b, op, &lane);
  if (rc == STRATA_OK)
    rc = complete_on(lane, token);
  restore_device(was);
  return rc;
}

/* {=== Pinned host memory ===} */

int scuda_host_alloc(void *state, size_t size, void **ptr) {
  cudaError_t e = cudaHostAlloc(ptr, size, cudaHostAllocPortable);
  if (e == cudaSuccess)
    return STRATA_OK;
  (void)cudaGetLastError();
  /* Whatever CUDA says (a locked-memory limit, no driver), the core's
   * answer is the same: plain memory stands in. */
  (void)scuda_status(of(state), e, "cudaHostAlloc");
  return STRATA_ENOMEM;
}

void scuda_host_free(void *state, void *ptr, size_t size) {
  cudaError_t e = cudaFreeHost(ptr);
  if (e != cudaSuccess)
    scuda_status(of(state), e, "cudaFreeHost");
  (void)cudaGetLastError();
}

int scuda_host_register(void *state, void *ptr, size_t size) {
  cudaError_t e = cudaHostRegister(ptr, size, cudaHostRegisterPortable);
  if (e == cudaSuccess)
    return STRATA_OK;
  (void)cudaGetLastError();
  int rc = scuda_status(of(state), e, "cudaHostRegister");
  return rc == STRATA_ENOMEM ? rc : STRATA_EINVAL;
}

void scuda_host_unregister(void *state, void *ptr, size_t size) {
  cudaError_t e = cudaHostUnregister(ptr);
  if (e != cudaSuccess)
    scuda_status(of(state), e, "cudaHostUnregister");
  (void)cudaGetLastError();
}

/* {=== Managed memory ===} */

int scuda_managed_alloc(void *state, unsigned dev, size_t size, void **ptr) {
  scuda_backend_t *b = of(state);
  if (!valid_dev(b, (int)dev))
    return STRATA_EINVAL;
  int was = current_device();
  cudaError_t e = set_device(b, dev);
  if (e == cudaSuccess)
    e = cudaMallocManaged(ptr, size, cudaMemAttachGlobal);
  restore_device(was);
  if (e != cudaSuccess)
    (void)cudaGetLastError();
  return scuda_status(b, e, "cudaMallocManaged");
}

void scuda_managed_free(void *state, unsigned dev, void *ptr, size_t size) {
  scuda_backend_t *b = of(state);
  cudaError_t e = cudaFree(ptr);
  if (e != cudaSuccess && !scuda_sticky(e))
    scuda_status(b, e, "cudaFree (managed)");
  (void)cudaGetLastError();
}

int scuda_managed_prefetch(void *state, int dev, const void *ptr, size_t size,
                           void *token) {
  scuda_backend_t *b = of(state);
  if (dev != STRATA_BACKEND_HOST && !valid_dev(b, dev))
    return STRATA_EINVAL;
  /* To a card: on its h2d lane; back to the host: on the d2h lane of a
   * card still in service (any card's stream can move a managed range). */
  scuda_device_t *d = dev == STRATA_BACKEND_HOST ? NULL : &b->devs[dev];
  for (size_t i = 0; !d && i < b->ndevs; i++)
    if (!atomic_load(&b->devs[i].failed))
      d = &b->devs[i];
  if (!d)
    return STRATA_ENODEV;
  scuda_lane_t *lane = dev == STRATA_BACKEND_HOST ? &d->d2h : &d->h2d;
  struct cudaMemLocation loc = {
      .type = dev == STRATA_BACKEND_HOST ? cudaMemLocationTypeHost
                                         : cudaMemLocationTypeDevice,
      .id = dev == STRATA_BACKEND_HOST ? 0 : d->ordinal};
  int was = current_device();
  cudaError_t e = cudaSetDevice(d->ordinal);
  if (e == cudaSuccess)
    e = cudaMemPrefetchAsync(ptr, size, loc, 0, lane->stream);
  int rc = STRATA_OK;
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    rc = scuda_status(b, e, "cudaMemPrefetchAsync");
  } else {
    rc = complete_on(lane, token);
  }
  restore_device(was);
  return rc;
}
