/* SPDX-License-Identifier: MIT */
/* runtime/core/wait.h: the completion signalling that every wait of the
 * public API (task, job, buffer, all) is built on. A waiter sleeps until
 * its condition holds, re-checking after each notification; whoever ends
 * something notifies, which costs one atomic load when nobody waits. The
 * modules that end things (tasks, jobs, buffers) call down into this one;
 * it calls nobody. */
#ifndef STRATA_WAIT_H
#define STRATA_WAIT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

typedef struct strata__waits {
  pthread_mutex_t mu; /* a leaf lock: nothing is taken under it but what
                         the waiter's condition reads atomically */
  pthread_cond_t cv;
  _Atomic unsigned waiters;
} strata__waits_t;

/** @return 0; STRATA_ENOMEM  @thread owner (creation) */
int strata__waits_init(strata__waits_t *w);
/** @thread owner (destruction, nobody waiting) */
void strata__waits_fini(strata__waits_t *w);

/** Is anybody waiting? (Sequentially consistent: a waiter that registers
 *  after this load sees what was stored before it.) @thread any */
static inline bool strata__waits_any(strata__waits_t *w) {
  return atomic_load(&w->waiters) != 0;
}

/** Wake every waiter to re-check its condition; cheap when nobody waits.
 *  @thread any */
void strata__waits_notify(strata__waits_t *w);

/** Block until done(arg) is true, re-checking after each notification.
 *  done must not block or take locks that notifiers hold.
 *  @thread any  @blocks yes */
void strata__waits_until(strata__waits_t *w, bool (*done)(void *arg),
                         void *arg);

#endif /* STRATA_WAIT_H */
