/* SPDX-License-Identifier: MIT */
/* runtime/data.c: buffer registration, the index of registered ranges that
 * rejects overlaps, and unregistration that drains a buffer's tasks. */
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
  strata__free(&rt->alloc, b->readers, b->cap_readers * sizeof *b->readers);
  strata__free(&rt->alloc, b, sizeof *b);
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
  if (atomic_load(&rt->shutdown))
    return STRATA_ESHUTDOWN;
  strata__buffer_t *b = strata__zalloc(&rt->alloc, sizeof *b);
  if (!b)
    return STRATA_ENOMEM;
  b->ptr = ptr;
  b->size = size;
  atomic_init(&b->refs, 1);

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
    strata__free(&rt->alloc, b, sizeof *b);
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
 * critical section, so that no submission can add to it afterwards. */
static history_t take_history(strata_runtime_t *rt, strata__buffer_t *b,
                              bool kill, bool *was_dead) {
  pthread_mutex_lock(&rt->graph_mu);
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
    return STRATA_ENOENT;
  /* From here on, submissions that access it fail. */
  bool was_dead;
  history_t h = take_history(rt, b, true, &was_dead);
  if (was_dead || strata__htable_remove(&rt->buffers, buf.id) != b) {
    drop_history(rt, &h); /* a concurrent unregister won */
    return STRATA_ENOENT;
  }
  ask_to_be_woken(h.writer);
  for (size_t i = 0; i < h.nreaders; i++)
    ask_to_be_woken(h.readers[i]);
  strata__runtime_wait_until(rt, history_idle, &h);
  drop_history(rt, &h);
  range_remove(rt, b);
  strata__buffer_unref(rt, b);
  return STRATA_OK;
}

int strata_buffer_get(const strata_runtime_t *rt, strata_buffer_t buf,
                      void **ptr, size_t *size) {
  if (!rt)
    return STRATA_EINVAL;
  strata__buffer_t *b = strata__buffer_get(rt, buf);
  if (!b)
    return STRATA_ENOENT;
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
  history_t h = take_history(rt, b, false, NULL);
  drop_history(rt, &h);
  strata__buffer_unref(rt, b);
}

void strata__buffers_free(strata_runtime_t *rt) {
  strata__htable_foreach(&rt->buffers, release_buffer, rt);
  strata__free(&rt->alloc, rt->ranges, rt->cap_ranges * sizeof *rt->ranges);
  rt->ranges = NULL;
  rt->nranges = rt->cap_ranges = 0;
}
