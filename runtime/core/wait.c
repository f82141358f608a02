/* SPDX-License-Identifier: MIT */
/* runtime/core/wait.c: completion signalling (see wait.h). */
#include "config.h"

#include "wait.h"

#include <strata/common.h>

int strata__waits_init(strata__waits_t *w) {
  atomic_init(&w->waiters, 0);
  if (pthread_mutex_init(&w->mu, NULL))
    return STRATA_ENOMEM;
  if (pthread_cond_init(&w->cv, NULL)) {
    pthread_mutex_destroy(&w->mu);
    return STRATA_ENOMEM;
  }
  return STRATA_OK;
}

void strata__waits_fini(strata__waits_t *w) {
  pthread_cond_destroy(&w->cv);
  pthread_mutex_destroy(&w->mu);
}

void strata__waits_notify(strata__waits_t *w) {
  /* Pairs with the increment in strata__waits_until (both sequentially
   * consistent): either the waiter sees the state change that preceded
   * this call, or this call sees the waiter and broadcasts under the lock
   * the waiter holds until it sleeps. */
  if (!atomic_load(&w->waiters))
    return;
  pthread_mutex_lock(&w->mu);
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

void strata__waits_until(strata__waits_t *w, bool (*done)(void *arg),
                         void *arg) {
  pthread_mutex_lock(&w->mu);
  atomic_fetch_add(&w->waiters, 1);
  while (!done(arg))
    pthread_cond_wait(&w->cv, &w->mu);
  atomic_fetch_sub(&w->waiters, 1);
  pthread_mutex_unlock(&w->mu);
}
