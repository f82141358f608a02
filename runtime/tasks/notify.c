/* SPDX-License-Identifier: MIT */
/* runtime/tasks/notify.c: the notifier thread that runs task and job callbacks,
 * and the public calls of the event loop's file descriptor. */
#include "config.h"

#include "runtime.h"

#define COMP "notify"

void strata__notify_init(strata__notifier_t *n) {
  pthread_mutex_init(&n->mu, NULL);
  pthread_cond_init(&n->cv, NULL);
  n->head = n->tail = NULL;
  n->started = n->stopping = false;
  strata__evfd_init(&n->ev);
}

/* The notifier thread: deliver notices in order until stopped with an
 * empty queue. Each is delivered with the lock dropped, so that callbacks
 * may post more (by setting new callbacks) and may block. */
static void *notifier_main(void *arg) {
  strata_runtime_t *rt = arg;
  strata__notifier_t *n = &rt->notify;
  pthread_mutex_lock(&n->mu);
  for (;;) {
    strata__notice_t *x = n->head;
    if (!x) {
      if (n->stopping)
        break;
      pthread_cond_wait(&n->cv, &n->mu);
      continue;
    }
    n->head = x->next;
    if (!n->head)
      n->tail = NULL;
    pthread_mutex_unlock(&n->mu);
    x->deliver(rt, x);
    pthread_mutex_lock(&n->mu);
  }
  pthread_mutex_unlock(&n->mu);
  return NULL;
}

int strata__notify_start(strata_runtime_t *rt) {
  strata__notifier_t *n = &rt->notify;
  int rc = STRATA_OK;
  pthread_mutex_lock(&n->mu);
  if (n->stopping) {
    rc = STRATA_ESHUTDOWN;
  } else if (!n->started) {
    int err = pthread_create(&n->thread, NULL, notifier_main, rt);
    if (err) {
      STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
                 "cannot start the thread that runs callbacks: %s",
                 strerror(err));
      rc = STRATA_EAGAIN;
    } else {
      n->started = true;
    }
  }
  pthread_mutex_unlock(&n->mu);
  return rc;
}

void strata__notify_post(strata_runtime_t *rt, strata__notice_t *x) {
  strata__notifier_t *n = &rt->notify;
  STRATA_ASSERT(n->started);
  x->next = NULL;
  pthread_mutex_lock(&n->mu);
  if (n->tail)
    n->tail->next = x;
  else
    n->head = x;
  n->tail = x;
  pthread_cond_signal(&n->cv);
  pthread_mutex_unlock(&n->mu);
}

bool strata__notify_on_thread(strata_runtime_t *rt) {
  strata__notifier_t *n = &rt->notify;
  pthread_mutex_lock(&n->mu);
  bool on = n->started && pthread_equal(n->thread, pthread_self());
  pthread_mutex_unlock(&n->mu);
  return on;
}

void strata__notify_stop(strata_runtime_t *rt) {
  strata__notifier_t *n = &rt->notify;
  pthread_mutex_lock(&n->mu);
  bool started = n->started;
  n->stopping = true;
  pthread_cond_signal(&n->cv);
  pthread_mutex_unlock(&n->mu);
  if (started)
    pthread_join(n->thread, NULL);
  n->started = false;
}

void strata__notify_fini(strata__notifier_t *n) {
  strata__evfd_fini(&n->ev);
  pthread_cond_destroy(&n->cv);
  pthread_mutex_destroy(&n->mu);
}

/* {=== Public API: the event loop's file descriptor ===} */

int strata_runtime_event_fd(strata_runtime_t *rt, int *fd) {
  if (!rt || !fd)
    return STRATA_EINVAL;
  int rc = strata__evfd_open(&rt->notify.ev, fd);
  if (rc)
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
               "cannot make the event file descriptor: %s",
               strata_strerror(rc));
  return rc;
}

int strata_runtime_event_clear(strata_runtime_t *rt, uint64_t *count) {
  if (!rt)
    return STRATA_EINVAL;
  uint64_t n = strata__evfd_clear(&rt->notify.ev);
  if (count)
    *count = n;
  return STRATA_OK;
}
