/* SPDX-License-Identifier: MIT */
/* runtime/copy.c: fences and the one door to backend copies (see copy.h).
 * A backend's copy is retried a few times before the copy counts as
 * failed; every failed attempt is logged and counted on its link. */
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

bool strata__copy_direct(const strata_runtime_t *rt, const strata__mnode_t *dn,
                         const strata__mnode_t *sn) {
  (void)rt;
  return dn->kind == STRATA__NODE_DEVICE && sn->kind == STRATA__NODE_DEVICE &&
         dn->dev->backend == sn->dev->backend &&
         (dn->dev->desc.peers >> sn->dev->bindex & 1);
}

static void count_failure(strata_runtime_t *rt, const strata__mnode_t *sn,
                          const strata__mnode_t *dn) {
  strata__link_t *l =
      &rt->mem.links[sn->index * (int)rt->mem.nnodes + dn->index];
  atomic_fetch_add(&l->failures, 1);
}

void strata__copy_issue(strata_runtime_t *rt, strata__mnode_t *dn, void *dst,
                        strata__mnode_t *sn, const void *src, size_t size,
                        strata__fence_t *f) {
  strata__device_t *dev = dn->kind == STRATA__NODE_DEVICE ? dn->dev : sn->dev;
  const strata_backend_component_t *c = dev->backend->comp;
  int ddev = dn->kind == STRATA__NODE_DEVICE ? (int)dn->dev->bindex : -1;
  int sdev = sn->kind == STRATA__NODE_DEVICE ? (int)sn->dev->bindex : -1;
  int rc = STRATA_EDEVICE;
  for (unsigned attempt = 1; attempt <= rt->mem.copy_retries; attempt++) {
    rc = c->copy(dev->backend->state, ddev, dst, sdev, src, size);
    if (rc == STRATA_OK)
      break;
    count_failure(rt, sn, dn);
    STRATA_LOG(&rt->log, STRATA_LOG_WARN, COMP,
               "copy of %zu bytes %s -> %s failed (attempt %u of %u): %s", size,
               sn->name, dn->name, attempt, rt->mem.copy_retries,
               strata_strerror(rc));
  }
  strata__fence_signal(f, rc == STRATA_OK ? rc : STRATA_EDEVICE);
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
