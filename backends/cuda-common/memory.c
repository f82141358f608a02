/* SPDX-License-Identifier: MIT */
/* backends/cuda-common/memory.c: device, pinned and managed memory, and
 * copies. The core keeps the accounts (capacity, eviction, device_bytes)
 * and caches freed device blocks itself (memory_pool 0): cudaMalloc and
 * cudaFree synchronise the card, and an exact-size cache in front of them
 * keeps both off the path of a steady workload, as a stream-ordered pool
 * would, without tying a block to the stream that freed it.
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

/* {=== Device memory ===} */

int scuda_mem_alloc(void *state, unsigned dev, size_t size, void **ptr) {
  scuda_backend_t *b = of(state);
  if (!valid_dev(b, (int)dev))
    return STRATA_EINVAL;
  cudaError_t e = set_device(b, dev);
  if (e == cudaSuccess)
    e = cudaMalloc(ptr, size);
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
  cudaError_t e = set_device(b, dev);
  if (e == cudaSuccess)
    e = cudaFree(ptr);
  /* A lost card frees nothing: the process's context is gone with it. */
  if (e != cudaSuccess && !scuda_sticky(e))
    scuda_status(b, e, "cudaFree");
  (void)cudaGetLastError();
}

/* {=== Copies ===} */

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
      scuda_fail_device((*lane)->dev, NULL, e, "a copy");
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
  int rc = issue_copy(b, op, &lane);
  return rc ? rc : scuda_lane_push(lane, SCUDA_ITEM_COPY, token);
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
  cudaError_t e = set_device(b, dev);
  if (e == cudaSuccess)
    e = cudaMallocManaged(ptr, size, cudaMemAttachGlobal);
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
  if (!b->ndevs)
    return STRATA_ENODEV;
  /* To a card: on its h2d lane; back to the host: on the first card's
   * d2h lane (any card's stream can move a managed range). */
  scuda_device_t *d = dev == STRATA_BACKEND_HOST ? &b->devs[0] : &b->devs[dev];
  scuda_lane_t *lane = dev == STRATA_BACKEND_HOST ? &d->d2h : &d->h2d;
  struct cudaMemLocation loc = {
      .type = dev == STRATA_BACKEND_HOST ? cudaMemLocationTypeHost
                                         : cudaMemLocationTypeDevice,
      .id = dev == STRATA_BACKEND_HOST ? 0 : d->ordinal};
  cudaError_t e = cudaSetDevice(d->ordinal);
  if (e == cudaSuccess)
    e = cudaMemPrefetchAsync(ptr, size, loc, 0, lane->stream);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return scuda_status(b, e, "cudaMemPrefetchAsync");
  }
  return scuda_lane_push(lane, SCUDA_ITEM_COPY, token);
}
