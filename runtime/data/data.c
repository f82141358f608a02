/* SPDX-License-Identifier: MIT */
/* runtime/data/data.c: buffers: registration (with the index of registered
 * ranges that rejects overlaps) and creation, the application's access
 * (acquire, release), and unregistration that drains a buffer's tasks and
 * brings its data home. */
#include "config.h"

#include "runtime.h"

#include <string.h>

#define COMP "data"

strata__buffer_t *strata__buffer_get(const strata_runtime_t *rt,
                                     strata_buffer_t b) {
  return strata__htable_get(&rt->buffers, b.id);
}

void strata__buffer_ref(strata__buffer_t *b) {
  atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
}

void strata__buffer_unref(strata_runtime_t *rt, strata__buffer_t *b) {
  if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
    return;
  strata__memory_buffer_fini(rt, b);
  strata__free(&rt->alloc, b->readers, b->cap_readers * sizeof *b->readers);
  strata__free(&rt->alloc, b, sizeof *b);
}

/* A buffer object over host memory `ptr` (the caller's, or the runtime's
 * when `owned`), with its replicas, not yet named by a handle. */
static strata__buffer_t *buffer_new(strata_runtime_t *rt, void *ptr,
                                    size_t size, bool owned) {
  strata__buffer_t *b = strata__zalloc(&rt->alloc, sizeof *b);
  if (!b)
    return NULL;
  b->ptr = ptr;
  b->size = size;
  b->owned = owned;
  atomic_init(&b->refs, 1);
  atomic_init(&b->writer_device, -1);
  atomic_init(&b->plan_ready, 0);
  atomic_init(&b->plan_host, 0);
  atomic_init(&b->plan_valid, 0);
  if (strata__memory_buffer_init(rt, b, ptr)) {
    strata__free(&rt->alloc, b, sizeof *b);
    return NULL;
  }
  return b;
}

/* {=== Range index (data_mu) ===} */

/* First index whose range starts at or after ptr. */
static size_t range_lower_bound(const strata_runtime_t *rt, uintptr_t ptr) {
  size_t lo = 0, hi = rt->nranges;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if ((uintptr_t)rt->ranges[mid]->ptr < ptr)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static strata__buffer_t *range_overlap(const strata_runtime_t *rt, size_t at,
                                       uintptr_t p, size_t size) {
  if (at > 0) {
    strata__buffer_t *prev = rt->ranges[at - 1];
    if ((uintptr_t)prev->ptr + prev->size > p)
      return prev;
  }
  if (at < rt->nranges && (uintptr_t)rt->ranges[at]->ptr < p + size)
    return rt->ranges[at];
  return NULL;
}

static int range_insert(strata_runtime_t *rt, strata__buffer_t *b) {
  uintptr_t p = (uintptr_t)b->ptr;
  size_t at = range_lower_bound(rt, p);
  strata__buffer_t *o = range_overlap(rt, at, p, b->size);
  if (o) {
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
               "cannot register [%p, +%zu): overlaps buffer [%p, +%zu)", b->ptr,
               b->size, o->ptr, o->size);
    return STRATA_EOVERLAP;
  }
  int rc = strata__grow(&rt->alloc, (void **)&rt->ranges, &rt->cap_ranges,
                        rt->nranges + 1, sizeof *rt->ranges);
  if (rc)
    return rc;
  memmove(&rt->ranges[at + 1], &rt->ranges[at],
          (rt->nranges - at) * sizeof *rt->ranges);
  rt->ranges[at] = b;
  rt->nranges++;
  return STRATA_OK;
}

static void range_remove(strata_runtime_t *rt, strata__buffer_t *b) {
  pthread_mutex_lock(&rt->data_mu);
  size_t at = range_lower_bound(rt, (uintptr_t)b->ptr);
  if (at < rt->nranges && rt->ranges[at] == b) {
    memmove(&rt->ranges[at], &rt->ranges[at + 1],
            (rt->nranges - at - 1) * sizeof *rt->ranges);
    rt->nranges--;
  }
  pthread_mutex_unlock(&rt->data_mu);
}

/* {=== Public API ===} */

int strata_buffer_register(strata_runtime_t *rt, void *ptr, size_t size,
                           strata_buffer_t *out) {
  if (!rt || !out)
    return STRATA_EINVAL;
  if (!ptr || !size || (uintptr_t)ptr + size < (uintptr_t)ptr) {
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
               "cannot register [%p, +%zu): %s", ptr, size,
               !ptr    ? "NULL address"
               : !size ? "zero size"
                       : "wraps around");
    return STRATA_EINVAL;
  }
  if (strata__runtime_shutting_down(rt))
    return STRATA_ESHUTDOWN;
  strata__buffer_t *b = buffer_new(rt, ptr, size, false);
  if (!b)
    return STRATA_ENOMEM;

  pthread_mutex_lock(&rt->data_mu);
  int rc = range_insert(rt, b);
  if (rc == STRATA_OK &&
      (rc = strata__htable_add(&rt->buffers, &rt->alloc, b, &b->id))) {
    size_t at = range_lower_bound(rt, (uintptr_t)ptr);
    memmove(&rt->ranges[at], &rt->ranges[at + 1],
            (rt->nranges - at - 1) * sizeof *rt->ranges);
    rt->nranges--;
  }
  pthread_mutex_unlock(&rt->data_mu);
  if (rc) {
    strata__buffer_unref(rt, b);
    return rc;
  }
  out->id = b->id;
  return STRATA_OK;
}

int strata_buffer_create(strata_runtime_t *rt, size_t size,
                         strata_buffer_t *out) {
  if (!rt || !out || !size)
    return STRATA_EINVAL;
  if (strata__runtime_shutting_down(rt))
    return STRATA_ESHUTDOWN;
  void *mem = strata__zalloc(&rt->alloc, size);
  strata__buffer_t *b = mem ? buffer_new(rt, mem, size, true) : NULL;
  if (!b) {
    strata__free(&rt->alloc, mem, size);
    return STRATA_ENOMEM;
  }
  int rc = strata__htable_add(&rt->buffers, &rt->alloc, b, &b->id);
  if (rc) {
    strata__buffer_unref(rt, b); /* frees mem, which it owns */
    return rc;
  }
  out->id = b->id;
  return STRATA_OK;
}

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
  /* The latest data goes home before the replicas are freed. */
  int rc = strata__memory_buffer_flush(rt, b);
  if (rc)
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
               "unregistering [%p, +%zu): its latest data could not be "
               "brought home: %s",
               b->ptr, b->size, strata_strerror(rc));
  if (!b->owned)
    range_remove(rt, b);
  strata__buffer_unref(rt, b);
  return rc;
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

int strata_buffer_get(const strata_runtime_t *rt, strata_buffer_t buf,
                      void **ptr, size_t *size) {
  if (!rt)
    return STRATA_EINVAL;
  strata__buffer_t *b = strata__buffer_get(rt, buf);
  if (!b)
    return strata__htable_miss(&rt->buffers, buf.id);
  if (ptr)
    *ptr = b->ptr;
  if (size)
    *size = b->size;
  return STRATA_OK;
}

static void release_buffer(uint64_t id, void *obj, void *ud) {
  strata_runtime_t *rt = ud;
  strata__buffer_t *b = obj;
  strata__htable_remove(&rt->buffers, id);
  if (b->acquired) /* the application never released it */
    strata__graph_host_end(rt, b->acquired);
  history_t h = take_history(rt, b, false, NULL, NULL);
  drop_history(rt, &h);
  if (strata__memory_buffer_flush(rt, b))
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
               "buffer [%p, +%zu): its latest data could not be brought home",
               b->ptr, b->size);
  strata__buffer_unref(rt, b);
}

void strata__buffers_free(strata_runtime_t *rt) {
  strata__htable_foreach(&rt->buffers, release_buffer, rt);
  strata__free(&rt->alloc, rt->ranges, rt->cap_ranges * sizeof *rt->ranges);
  rt->ranges = NULL;
  rt->nranges = rt->cap_ranges = 0;
}
