/* SPDX-License-Identifier: MIT */
/* runtime/data/staging.c: pinned host memory from a backend, and the pool of
 * staging buffers (see staging.h). */
#include "config.h"

#include "runtime.h"

#define COMP "staging"

void strata__staging_init(strata_runtime_t *rt) {
  strata__staging_t *s = &rt->staging;
  *s = (strata__staging_t){0};
  /* Backends are loaded in name order: the first that can wins. */
  for (size_t i = 0; i < rt->nbackends && !s->provider; i++)
    if (rt->backends[i]->comp->host_alloc && rt->backends[i]->comp->host_free)
      s->provider = rt->backends[i];
  for (size_t i = 0; i < rt->nbackends && !s->provider; i++)
    if (rt->backends[i]->comp->host_register &&
        rt->backends[i]->comp->host_unregister) {
      s->provider = rt->backends[i];
      s->registers = true;
    }
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->given, NULL);
  s->ready = true;
  if (s->provider)
    STRATA_LOG(&rt->log, STRATA_LOG_INFO, COMP,
               "pinned host memory from backend '%s' (%s)", s->provider->name,
               s->registers ? "host_register" : "host_alloc");
}

/* Is buf one of the pool's plain (not pinned) buffers? (s->mu held, or
 * no other thread left.) */
static bool is_plain(const strata__staging_t *s, const void *buf) {
  for (unsigned i = 0; i < s->nplain; i++)
    if (s->plain[i] == buf)
      return true;
  return false;
}

void strata__staging_fini(strata_runtime_t *rt) {
  strata__staging_t *s = &rt->staging;
  if (!s->ready)
    return;
  for (unsigned i = 0; i < s->nfree; i++)
    if (is_plain(s, s->free[i]))
      strata__free(&rt->alloc, s->free[i], STRATA__STAGING_BYTES);
    else
      strata__hostmem_free(rt, s->free[i], STRATA__STAGING_BYTES);
  pthread_cond_destroy(&s->given);
  pthread_mutex_destroy(&s->mu);
  *s = (strata__staging_t){0};
}

int strata__hostmem_alloc(strata_runtime_t *rt, size_t size, void **ptr) {
  strata__staging_t *s = &rt->staging;
  strata__backend_t *be = s->provider;
  if (be && !s->registers)
    return be->comp->host_alloc(be->state, size, ptr) ? STRATA_ENOMEM
                                                      : STRATA_OK;
  if (!(*ptr = strata__alloc(&rt->alloc, size)))
    return STRATA_ENOMEM;
  if (be && be->comp->host_register(be->state, *ptr, size)) {
    /* Given back: strata__hostmem_free could not tell it from pinned. */
    STRATA_LOG(&rt->log, STRATA_LOG_DEBUG, COMP,
               "host_register of %zu bytes failed", size);
    strata__free(&rt->alloc, *ptr, size);
    return STRATA_ENOMEM;
  }
  return STRATA_OK;
}

void strata__hostmem_free(strata_runtime_t *rt, void *ptr, size_t size) {
  strata__staging_t *s = &rt->staging;
  strata__backend_t *be = s->provider;
  if (!ptr)
    return;
  if (be && !s->registers) {
    be->comp->host_free(be->state, ptr, size);
    return;
  }
  if (be)
    be->comp->host_unregister(be->state, ptr, size);
  strata__free(&rt->alloc, ptr, size);
}

/* Without pinned memory (exhausted, or its registration refused), a
 * staging buffer of plain memory: copies through it are slower, but none
 * fails for want of pinning. Called without s->mu, for a slot counted in
 * nbuf. */
static int take_plain(strata_runtime_t *rt, void **buf) {
  strata__staging_t *s = &rt->staging;
  if (!s->provider ||
      !(*buf = strata__alloc(&rt->alloc, STRATA__STAGING_BYTES)))
    return STRATA_ENOMEM;
  pthread_mutex_lock(&s->mu);
  s->plain[s->nplain++] = *buf;
  bool warn = !s->warned_plain;
  s->warned_plain = true;
  pthread_mutex_unlock(&s->mu);
  if (warn)
    STRATA_LOG(&rt->log, STRATA_LOG_WARN, COMP,
               "backend '%s' gave no pinned memory for a staging buffer "
               "(%s failed): staging uses plain memory, copies through it "
               "are slower",
               s->provider->name,
               s->registers ? "host_register" : "host_alloc");
  atomic_fetch_add(&s->takes, 1);
  return STRATA_OK;
}

int strata__staging_take(strata_runtime_t *rt, void **buf) {
  strata__staging_t *s = &rt->staging;
  pthread_mutex_lock(&s->mu);
  for (;;) {
    if (s->nfree) {
      *buf = s->free[--s->nfree];
      break;
    }
    if (s->nbuf < STRATA__STAGING_MAX) {
      s->nbuf++; /* ours: allocated without the lock */
      pthread_mutex_unlock(&s->mu);
      if (strata__hostmem_alloc(rt, STRATA__STAGING_BYTES, buf) == STRATA_OK) {
        atomic_fetch_add(&s->takes, 1);
        return STRATA_OK;
      }
      if (take_plain(rt, buf) == STRATA_OK)
        return STRATA_OK;
      pthread_mutex_lock(&s->mu);
      s->nbuf--;
      if (s->nbuf == s->nfree) { /* nothing out to wait for */
        pthread_mutex_unlock(&s->mu);
        return STRATA_ENOMEM;
      }
    }
    pthread_cond_wait(&s->given, &s->mu);
  }
  pthread_mutex_unlock(&s->mu);
  atomic_fetch_add(&s->takes, 1);
  return STRATA_OK;
}

void strata__staging_give(strata_runtime_t *rt, void *buf) {
  strata__staging_t *s = &rt->staging;
  pthread_mutex_lock(&s->mu);
  s->free[s->nfree++] = buf;
  pthread_cond_signal(&s->given);
  pthread_mutex_unlock(&s->mu);
}
