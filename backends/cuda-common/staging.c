/* SPDX-License-Identifier: MIT */
/* backends/cuda-common/staging.c: large copies to or from pageable host
 * memory, through two pinned buffers per card. cudaMemcpyAsync on pageable
 * memory stages it itself, through a driver buffer, and returns only when
 * the host side is done: the core's thread that started the copy would
 * wait, and nothing of the copy would overlap. Here a thread of the card's
 * own does it a chunk at a time, double-buffered: the CPU fills (or
 * drains) one pinned buffer while the DMA engine moves the other, and the
 * core hears of the end through copy_done, as for any copy.
 *
 * One stager per card, started with its lanes; its jobs are done in the
 * order they came, on a stream of its own. */
#include "scuda.h"

#include <string.h>

/* {=== Which copies ===} */

/* Is p host memory no card's DMA reaches directly? Unknown answers "no":
 * the copy then goes as it is. */
static bool pageable(const void *p) {
  struct cudaPointerAttributes a;
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return a.type == cudaMemoryTypeUnregistered;
}

bool scuda_stage_wanted(const strata_backend_copy_t *op) {
  if (op->size < SCUDA_STAGE_MIN)
    return false;
  if (op->src_dev == STRATA_BACKEND_HOST && op->dst_dev >= 0)
    return pageable(op->src);
  if (op->dst_dev == STRATA_BACKEND_HOST && op->src_dev >= 0)
    return pageable(op->dst);
  return false;
}

/* {=== Moving the chunks ===} */

/* The bytes of the chunk at `off` of a copy of `size`. */
static size_t chunk_len(size_t size, size_t off) {
  return size - off < SCUDA_STAGE_CHUNK ? size - off : SCUDA_STAGE_CHUNK;
}

/* Host to device: fill buffer i while the other's chunk is on its way. */
static cudaError_t stage_in(scuda_stager_t *s,
                            const strata_backend_copy_t *op) {
  const char *src = op->src;
  char *dst = op->dst;
  cudaError_t e = cudaSuccess;
  size_t k = 0;
  for (size_t off = 0; off < op->size && !e; off += SCUDA_STAGE_CHUNK, k++) {
    size_t n = chunk_len(op->size, off);
    unsigned i = k % 2;
    if (k >= 2 && (e = cudaEventSynchronize(s->ev[i])))
      break; /* buffer i is free once its last chunk has left */
    memcpy(s->pin[i], src + off, n);
    e = cudaMemcpyAsync(dst + off, s->pin[i], n, cudaMemcpyHostToDevice,
                        s->stream);
    if (!e)
      e = cudaEventRecord(s->ev[i], s->stream);
  }
  cudaError_t done = cudaStreamSynchronize(s->stream);
  return e ? e : done;
}

/* Device to host: two chunks in flight, each drained from its buffer as
 * it lands, and the buffer's next chunk started at once. */
static cudaError_t stage_out(scuda_stager_t *s,
                             const strata_backend_copy_t *op) {
  const char *src = op->src;
  char *dst = op->dst;
  size_t chunks = (op->size + SCUDA_STAGE_CHUNK - 1) / SCUDA_STAGE_CHUNK;
  cudaError_t e = cudaSuccess;
  for (size_t k = 0; k < chunks + 2 && !e; k++) {
    unsigned i = k % 2;
    if (k >= 2) { /* chunk k - 2 is in buffer i: drain it */
      size_t off = (k - 2) * SCUDA_STAGE_CHUNK;
      size_t n = chunk_len(op->size, off);
      if ((e = cudaEventSynchronize(s->ev[i])))
        break;
      memcpy(dst + off, s->pin[i], n);
    }
    if (k < chunks) {
      size_t off = k * SCUDA_STAGE_CHUNK;
      size_t n = chunk_len(op->size, off);
      e = cudaMemcpyAsync(s->pin[i], src + off, n, cudaMemcpyDeviceToHost,
                          s->stream);
      if (!e)
        e = cudaEventRecord(s->ev[i], s->stream);
    }
  }
  cudaError_t done = cudaStreamSynchronize(s->stream);
  return e ? e : done;
}

/* The pinned buffers, made at the first job (most runs never need them).
 * @return 0; a CUDA error */
static cudaError_t ensure_buffers(scuda_stager_t *s) {
  cudaError_t e = cudaSuccess;
  for (unsigned i = 0; i < 2 && !e; i++)
    if (!s->pin[i])
      e = cudaHostAlloc(&s->pin[i], SCUDA_STAGE_CHUNK, cudaHostAllocPortable);
  return e;
}

static void run_job(scuda_stager_t *s, scuda_stage_job_t *j) {
  scuda_device_t *d = s->dev;
  const strata_core_services_t *core = d->b->core;
  bool in = j->op.src_dev == STRATA_BACKEND_HOST;
  cudaError_t e = ensure_buffers(s);
  if (!e) {
    e = in ? stage_in(s, &j->op) : stage_out(s, &j->op);
  } else if (!scuda_sticky(e)) {
    /* No pinned memory to be had (a locked-memory limit): the copy goes
     * as it is, CUDA staging it, on this thread. */
    (void)cudaGetLastError();
    e = cudaMemcpyAsync(j->op.dst, j->op.src, j->op.size,
                        in ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost,
                        s->stream);
    if (!e)
      e = cudaStreamSynchronize(s->stream);
  }
  int rc = STRATA_OK;
  if (e) {
    (void)cudaGetLastError();
    rc = scuda_status(d->b, e,
                      in ? "a staged copy to the card"
                         : "a staged copy from the card");
  }
  core->copy_done(core->core, j->token, rc);
  if (scuda_sticky(e))
    scuda_fail_device(d, NULL, e, "a staged copy");
}

static void job_free(scuda_stager_t *s, scuda_stage_job_t *j) {
  const strata_core_services_t *core = s->dev->b->core;
  core->alloc(core->core, j, sizeof *j, 0);
}

static void *stager_main(void *arg) {
  scuda_stager_t *s = arg;
  (void)cudaSetDevice(s->dev->ordinal);
  pthread_mutex_lock(&s->mu);
  for (;;) {
    while (!s->head && !s->stop)
      pthread_cond_wait(&s->cv, &s->mu);
    scuda_stage_job_t *j = s->head;
    if (!j)
      break;
    s->head = j->next;
    if (!s->head)
      s->tail = NULL;
    pthread_mutex_unlock(&s->mu);
    run_job(s, j);
    job_free(s, j);
    pthread_mutex_lock(&s->mu);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

/* {=== The stager's life ===} */

int scuda_stager_start(scuda_stager_t *s, scuda_device_t *d) {
  *s = (scuda_stager_t){.dev = d};
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  cudaError_t e = cudaSetDevice(d->ordinal);
  if (!e)
    e = cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking);
  for (unsigned i = 0; i < 2 && !e; i++)
    e = cudaEventCreateWithFlags(&s->ev[i], cudaEventDisableTiming |
                                                cudaEventBlockingSync);
  if (e)
    return scuda_status(d->b, e, "starting the stager");
  if (pthread_create(&s->thread, NULL, stager_main, s)) {
    scuda_log(d->b, STRATA_LOG_ERROR, "cannot start the stager of %s",
              d->b->facts[d->index].name);
    return STRATA_EBACKEND;
  }
  s->started = true;
  return STRATA_OK;
}

int scuda_stage_push(scuda_stager_t *s, const strata_backend_copy_t *op,
                     void *token) {
  if (!s->started)
    return STRATA_EBACKEND;
  const strata_core_services_t *core = s->dev->b->core;
  scuda_stage_job_t *j = core->alloc(core->core, NULL, 0, sizeof *j);
  if (!j)
    return STRATA_ENOMEM;
  *j = (scuda_stage_job_t){.op = *op, .token = token};
  pthread_mutex_lock(&s->mu);
  if (s->tail)
    s->tail->next = j;
  else
    s->head = j;
  s->tail = j;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
  return STRATA_OK;
}

void scuda_stager_stop(scuda_stager_t *s) {
  if (!s->dev)
    return;
  if (s->started) {
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    s->started = false;
  }
  (void)cudaSetDevice(s->dev->ordinal);
  for (unsigned i = 0; i < 2; i++) {
    if (s->pin[i])
      (void)cudaFreeHost(s->pin[i]);
    if (s->ev[i])
      (void)cudaEventDestroy(s->ev[i]);
  }
  if (s->stream)
    (void)cudaStreamDestroy(s->stream);
  (void)cudaGetLastError();
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  s->dev = NULL;
}
