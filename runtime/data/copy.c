/* SPDX-License-Identifier: MIT */
/* runtime/data/copy.c: fences and the one door to backend copies (see copy.h).
 * A backend's copy is retried a few times before the copy counts as
 * failed (not one it refuses, nor on a device it reports gone); every
 * failed attempt is logged and counted on its link. */
#include "config.h"

#include "runtime.h"

#define COMP "copy"

/* {=== Fences ===} */

int strata__fence_init(strata__fence_t *f) {
  *f = (strata__fence_t){0};
  if (pthread_mutex_init(&f->mu, NULL))
    return STRATA_ENOMEM;
  if (pthread_cond_init(&f->cv, NULL)) {
    pthread_mutex_destroy(&f->mu);
    return STRATA_ENOMEM;
  }
  return STRATA_OK;
}

void strata__fence_fini(strata__fence_t *f) {
  pthread_cond_destroy(&f->cv);
  pthread_mutex_destroy(&f->mu);
}

void strata__fence_add(strata__fence_t *f, unsigned n) {
  pthread_mutex_lock(&f->mu);
  f->pending += n;
  pthread_mutex_unlock(&f->mu);
}

void strata__fence_signal(strata__fence_t *f, int status) {
  pthread_mutex_lock(&f->mu);
  if (status && !f->status)
    f->status = status;
  bool last = --f->pending == 0;
  void (*done)(strata__fence_t *, void *) = f->done;
  void *arg = f->arg;
  if (last && !done)
    pthread_cond_broadcast(&f->cv);
  pthread_mutex_unlock(&f->mu);
  /* After the unlock: done may free the fence's owner. */
  if (last && done)
    done(f, arg);
}

int strata__fence_wait(strata__fence_t *f) {
  pthread_mutex_lock(&f->mu);
  while (f->pending)
    pthread_cond_wait(&f->cv, &f->mu);
  int status = f->status;
  pthread_mutex_unlock(&f->mu);
  return status;
}

/* {=== Copies ===} */

/* One copy in flight: the backend's token. Allocated per copy and freed
 * when its fence is signalled. */
typedef struct copy_op {
  strata_runtime_t *rt;
  strata__mnode_t *dn, *sn;
  strata__backend_t *be;    /* the backend that makes it */
  strata_backend_copy_t op; /* what the backend is told */
  strata__fence_t *f;
  unsigned attempt; /* 1 for the first */
  int dev;          /* a prefetch: its target (bindex); else unused */
  bool prefetch;    /* a managed_prefetch of op.dst, not a copy */
  uint64_t t0;      /* issued at (ns), when a trace records it; else 0 */
} copy_op_t;

bool strata__copy_direct(const strata_runtime_t *rt, const strata__mnode_t *dn,
                         const strata__mnode_t *sn) {
  return dn->kind == STRATA__NODE_DEVICE && sn->kind == STRATA__NODE_DEVICE &&
         strata__peers_direct(rt, dn->dev->index, sn->dev->index);
}

static void count_failure(strata_runtime_t *rt, const strata__mnode_t *sn,
                          const strata__mnode_t *dn) {
  strata__link_t *l =
      &rt->mem.links[sn->index * (int)rt->mem.nnodes + dn->index];
  atomic_fetch_add(&l->failures, 1);
}

/* The copy, and its destination's use after it, for the trace. */
static void trace_copy(const copy_op_t *c, int status) {
  strata__mnode_t *n = c->dn;
  pthread_mutex_lock(&n->mu);
  uint64_t used = n->used;
  pthread_mutex_unlock(&n->mu);
  strata__trace_copy(c->rt, c->sn->index, c->sn->name, n->index, n->name,
                     c->op.size, c->t0, strata__now_ns(), status, used);
}

static void finish(copy_op_t *c, int status) {
  if (STRATA_UNLIKELY(c->t0))
    trace_copy(c, status);
  strata__fence_t *f = c->f;
  strata__free(&c->rt->alloc, c, sizeof *c);
  strata__fence_signal(f, status);
}

static void attempt(copy_op_t *c);

/* Can another attempt succeed where this one failed with `status`? Not
 * for a copy the backend refuses (STRATA_EINVAL, STRATA_ENOTSUP) nor on
 * a device it reports gone (STRATA_EDEVICE): retrying those only delays
 * the failover. */
static bool worth_retrying(int status) {
  return status != STRATA_EINVAL && status != STRATA_ENOTSUP &&
         status != STRATA_EDEVICE;
}

/* The backend reported an attempt's end (or could not start it). */
static void ended(copy_op_t *c, int status) {
  strata_runtime_t *rt = c->rt;
  if (status == STRATA_OK) {
    finish(c, STRATA_OK);
    return;
  }
  count_failure(rt, c->sn, c->dn);
  STRATA_LOG(&rt->log, STRATA_LOG_WARN, COMP,
             "%s of %zu bytes %s -> %s failed (attempt %u of %u): %s",
             c->prefetch ? "prefetch" : "copy", c->op.size, c->sn->name,
             c->dn->name, c->attempt, rt->mem.copy_retries,
             strata_strerror(status));
  if (c->attempt >= rt->mem.copy_retries || !worth_retrying(status)) {
    finish(c, STRATA_EDEVICE);
    return;
  }
  c->attempt++;
  attempt(c);
}

/* Start one attempt: the asynchronous form when the backend has it, else
 * the blocking one, on this thread. */
static void attempt(copy_op_t *c) {
  const strata_backend_component_t *comp = c->be->comp;
  void *state = c->be->state;
  /* Decided before the call: once an asynchronous attempt has started, c
   * belongs to whichever thread reports its end, and may be freed. */
  bool async = c->prefetch || comp->copy_async;
  int rc;
  if (c->prefetch)
    rc = comp->managed_prefetch(state, c->dev, c->op.dst, c->op.size, c);
  else if (comp->copy_async)
    rc = comp->copy_async(state, &c->op, c);
  else
    rc = comp->copy ? comp->copy(state, &c->op) : STRATA_ENOTSUP;
  if (rc == STRATA_OK && async)
    return; /* copy_done ends it */
  ended(c, rc);
}

void strata__copy_done(void *token, int status) { ended(token, status); }

/* The device number of node n in a copy made by backend be. */
static int32_t endpoint(const strata__mnode_t *n, const strata__backend_t *be) {
  if (n->kind != STRATA__NODE_DEVICE)
    return STRATA_BACKEND_HOST;
  return n->dev->backend == be ? (int32_t)n->dev->bindex
                               : STRATA_BACKEND_FOREIGN;
}

void strata__copy_issue(strata_runtime_t *rt, strata__mnode_t *dn, void *dst,
                        strata__mnode_t *sn, const void *src, size_t size,
                        strata__fence_t *f) {
  copy_op_t *c = strata__zalloc(&rt->alloc, sizeof *c);
  if (!c) {
    strata__fence_signal(f, STRATA_ENOMEM);
    return;
  }
  /* The destination's backend makes every copy into a device, a direct
   * one from another backend's device too; the source's, copies out. */
  strata__device_t *dev = dn->kind == STRATA__NODE_DEVICE ? dn->dev : sn->dev;
  *c = (copy_op_t){.rt = rt,
                   .dn = dn,
                   .sn = sn,
                   .be = dev->backend,
                   .f = f,
                   .attempt = 1,
                   .t0 = STRATA_UNLIKELY(strata__trace_on(&rt->trace))
                             ? strata__now_ns()
                             : 0};
  c->op = (strata_backend_copy_t){.dst_dev = endpoint(dn, c->be),
                                  .src_dev = endpoint(sn, c->be),
                                  .dst = dst,
                                  .src = src,
                                  .size = size};
  if (c->op.src_dev == STRATA_BACKEND_FOREIGN)
    strata__strlcpy(c->op.src_busid, sn->dev->desc.pci_busid,
                    sizeof c->op.src_busid);
  /* A shared managed buffer between two places that both use it in
   * place: nothing to copy. Towards a device, it moves there ahead of the
   * task; towards the host, back to host memory, through the backend of
   * the device it comes from. */
  if (dst == src) {
    if (dn->kind != STRATA__NODE_DEVICE && sn->kind != STRATA__NODE_DEVICE) {
      finish(c, STRATA_OK);
      return;
    }
    c->prefetch = true;
    c->dev = dn->kind == STRATA__NODE_DEVICE ? (int)dn->dev->bindex
                                             : STRATA_BACKEND_HOST;
    attempt(c);
    return;
  }
  /* Managed memory is the host's too: fill it from host memory with the
   * CPU, then have the backend move it to the device ahead of the task;
   * read it back the same way, with the CPU (the pages follow it), once
   * the tasks that wrote it have completed, which they have when a copy
   * out of it is issued. */
  if (dn->kind == STRATA__NODE_DEVICE && dn->managed &&
      sn->kind != STRATA__NODE_DEVICE) {
    memcpy(dst, src, size);
    c->prefetch = true;
    c->dev = (int)dn->dev->bindex;
  } else if (sn->kind == STRATA__NODE_DEVICE && sn->managed &&
             dn->kind != STRATA__NODE_DEVICE) {
    /* Not from a card that failed: its pages may be gone with it. */
    bool gone = atomic_load(&sn->dev->failed);
    if (!gone)
      memcpy(dst, src, size);
    finish(c, gone ? STRATA_EDEVICE : STRATA_OK);
    return;
  }
  attempt(c);
}

int strata__copy_sync(strata_runtime_t *rt, strata__mnode_t *dn, void *dst,
                      strata__mnode_t *sn, const void *src, size_t size) {
  strata__fence_t f;
  if (strata__fence_init(&f))
    return STRATA_ENOMEM;
  strata__fence_add(&f, 1);
  strata__copy_issue(rt, dn, dst, sn, src, size, &f);
  int rc = strata__fence_wait(&f);
  strata__fence_fini(&f);
  return rc;
}
