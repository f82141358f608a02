/* SPDX-License-Identifier: MIT */
/* runtime/tasks/host_access.c: the application's side of a buffer's tasks
 * (include/strata/data.h): acquiring a buffer's host memory and releasing
 * it (the access is a task of the graph, linked behind the buffer's
 * writers and readers, see strata__graph_host_begin), and unregistering,
 * which waits for the buffer's tasks to end before data/ frees it. At
 * runtime destroy, an access never released is ended and every buffer's
 * history is dropped before data/ frees the buffers.
 *
 * Calls down only: tasks/graph.c for the access tasks, data/ for buffers
 * and their host replica. Locking: graph_mu around a buffer's history and
 * its `acquired`; no lock across a wait or a copy. */
#include "config.h"

#include "host_access.h"
#include "runtime.h"

#define COMP "data" /* the data API, in logs, wherever its code lives */

/* {=== A buffer's history (graph_mu) ===} */

/* The tasks a buffer's history holds (task references moved to the
 * caller): the last writer and the readers since. */
typedef struct history {
  strata__task_t *writer;
  strata__task_t **readers;
  size_t nreaders, cap;
} history_t;

/* Take the buffer's history out of it; optionally mark it dead in the same
 * critical section, so that no submission can add to it afterwards. With
 * `acquired`, a buffer the application holds is left as it is (and
 * *acquired says so). */
static history_t take_history(strata_runtime_t *rt, strata__buffer_t *b,
                              bool kill, bool *was_dead, bool *acquired) {
  pthread_mutex_lock(&rt->graph_mu);
  if (acquired && (*acquired = b->acquired != NULL)) {
    pthread_mutex_unlock(&rt->graph_mu); /* kill nothing, take nothing */
    return (history_t){0};
  }
  if (was_dead)
    *was_dead = b->dead;
  if (kill)
    b->dead = true;
  history_t h = {b->last_writer, b->readers, b->nreaders, b->cap_readers};
  b->last_writer = NULL;
  b->readers = NULL;
  b->nreaders = b->cap_readers = 0;
  pthread_mutex_unlock(&rt->graph_mu);
  return h;
}

static void drop_history(strata_runtime_t *rt, history_t *h) {
  if (h->writer)
    strata__task_unref(h->writer);
  for (size_t i = 0; i < h->nreaders; i++)
    strata__task_unref(h->readers[i]);
  strata__free(&rt->alloc, h->readers, h->cap * sizeof *h->readers);
}

static bool ended(strata__task_t *t) {
  return !t || strata__task_state(t) == STRATA_TASK_DONE;
}

static bool history_idle(void *arg) {
  history_t *h = arg;
  for (size_t i = 0; i < h->nreaders; i++)
    if (!ended(h->readers[i]))
      return false;
  return ended(h->writer);
}

static void ask_to_be_woken(strata__task_t *t) {
  if (t)
    atomic_store(&t->waited, true);
}

/* {=== The application's access ===} */

int strata_buffer_unregister(strata_runtime_t *rt, strata_buffer_t buf) {
  if (!rt)
    return STRATA_EINVAL;
  strata__buffer_t *b = strata__buffer_get(rt, buf);
  if (!b)
    return strata__htable_miss(&rt->buffers, buf.id);
  /* From here on, submissions that access it fail, unless the
   * application holds it (checked under the same lock). */
  bool was_dead, acquired;
  history_t h = take_history(rt, b, true, &was_dead, &acquired);
  if (acquired) {
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
               "cannot unregister [%p, +%zu): the application holds it "
               "(strata_buffer_release first)",
               b->ptr, b->size);
    return STRATA_EBUSY;
  }
  if (was_dead || strata__htable_remove(&rt->buffers, buf.id) != b) {
    drop_history(rt, &h); /* a concurrent unregister won */
    return STRATA_ENOENT;
  }
  ask_to_be_woken(h.writer);
  for (size_t i = 0; i < h.nreaders; i++)
    ask_to_be_woken(h.readers[i]);
  strata__waits_until(&rt->waits, history_idle, &h);
  drop_history(rt, &h);
  return strata__buffer_retire(rt, b); /* its data home, then freed */
}

int strata_buffer_acquire(strata_runtime_t *rt, strata_buffer_t buf,
                          strata_access_mode_t mode, void **ptr) {
  if (!rt || !ptr ||
      (mode != STRATA_R && mode != STRATA_W && mode != STRATA_RW))
    return STRATA_EINVAL;
  strata__buffer_t *b = strata__buffer_get(rt, buf);
  if (!b)
    return strata__htable_miss(&rt->buffers, buf.id);
  strata__task_t *t;
  int rc = strata__graph_host_begin(rt, b, mode, &t);
  if (rc)
    return rc;
  if (mode & STRATA_W) /* its next data is made in host memory */
    atomic_store_explicit(&b->writer_device, -1, memory_order_relaxed);
  if ((rc = strata__memory_to_host(rt, b, mode & STRATA_W, true))) {
    strata__graph_host_end(rt, t);
    return rc;
  }
  *ptr = strata__memory_host_ptr(b, rt);
  return STRATA_OK;
}

int strata_buffer_release(strata_runtime_t *rt, strata_buffer_t buf) {
  if (!rt)
    return STRATA_EINVAL;
  strata__buffer_t *b = strata__buffer_get(rt, buf);
  if (!b)
    return strata__htable_miss(&rt->buffers, buf.id);
  pthread_mutex_lock(&rt->graph_mu);
  strata__task_t *t = b->acquired;
  pthread_mutex_unlock(&rt->graph_mu);
  if (!t)
    return STRATA_ESTATE;
  strata__memory_unpin_host(rt, b, strata__task_access_mode(t, 0) & STRATA_W);
  strata__graph_host_end(rt, t);
  return STRATA_OK;
}

/* {=== Runtime destroy ===} */

static void forget_tasks(uint64_t id, void *obj, void *ud) {
  (void)id;
  strata_runtime_t *rt = ud;
  strata__buffer_t *b = obj;
  if (b->acquired) /* the application never released it */
    strata__graph_host_end(rt, b->acquired);
  history_t h = take_history(rt, b, false, NULL, NULL);
  drop_history(rt, &h);
}

void strata__host_access_fini(strata_runtime_t *rt) {
  strata__htable_foreach(&rt->buffers, forget_tasks, rt);
}
