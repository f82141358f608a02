/* SPDX-License-Identifier: MIT */
/* runtime/tasks/notify.h: completion notices for the embedder. Task and job
 * callbacks run on one runtime thread of their own (started the first time
 * a callback is set), never on the thread that ended the work: an ending
 * task may hold the graph lock (a discarded predecessor), or be ended
 * inside the submitting call, and a callback must be free to submit. The
 * event loop's file descriptor (evfd.h) is signalled for watched work.
 *
 * A notice is embedded in the object it is about (task or job), so posting
 * one at completion cannot fail; the poster holds a reference to the
 * object until `deliver` has run. */
#ifndef STRATA_NOTIFY_H
#define STRATA_NOTIFY_H

#include <pthread.h>
#include <stdbool.h>

#include "evfd.h"

struct strata_runtime;

typedef struct strata__notice {
  struct strata__notice *next;
  /* Called on the notifier thread, with no runtime lock held; runs the
   * embedder's callback and drops the poster's reference. */
  void (*deliver)(struct strata_runtime *rt, struct strata__notice *n);
} strata__notice_t;

typedef struct strata__notifier {
  pthread_mutex_t mu; /* the queue and the thread's state */
  pthread_cond_t cv;  /* notices posted, or stop */
  strata__notice_t *head, *tail;
  bool started, stopping;
  pthread_t thread;
  strata__evfd_t ev; /* the event loop's fd (strata_runtime_event_fd) */
} strata__notifier_t;

/** Set up an idle notifier (no thread yet). @thread owner, at create */
void strata__notify_init(strata__notifier_t *n);

/** Start the notifier thread unless it runs already. Called by whatever
 *  sets a callback, before the callback is accepted.
 *  @return 0; STRATA_EAGAIN (no thread could be made); STRATA_ESHUTDOWN
 *          (the runtime is being destroyed)  @thread any */
int strata__notify_start(struct strata_runtime *rt);

/** Queue n for delivery, in order of posting. The thread was started by
 *  the call that set the callback n delivers. Takes only the notifier's
 *  lock (a leaf): callable with any runtime lock held. @thread any */
void strata__notify_post(struct strata_runtime *rt, strata__notice_t *n);

/** Is the caller the notifier thread (inside a callback)? @thread any */
bool strata__notify_on_thread(struct strata_runtime *rt);

/** Deliver every notice queued (including those callbacks post while this
 *  runs), then stop and join the thread. After every task has ended.
 *  @thread owner, in destroy; never from the notifier thread */
void strata__notify_stop(struct strata_runtime *rt);

/** Free what init and the event fd set up. After strata__notify_stop. */
void strata__notify_fini(strata__notifier_t *n);

#endif /* STRATA_NOTIFY_H */
