/* SPDX-License-Identifier: MIT */
/* runtime/data/data.c: buffers: registration (with the index of registered
 * ranges that rejects overlaps) and creation, references, and the end of a
 * buffer (its data brought home, its range and replicas freed). What
 * tasks do with a buffer is above this file: the access history is read
 * and written by tasks/graph.c, and the application's access (acquire,
 * release) and unregistering, which waits for a buffer's tasks, are in
 * tasks/host_access.c. This file calls nothing in tasks/. */
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

int strata_buffer_create_managed(strata_runtime_t *rt, size_t size,
                                 strata_buffer_t *out) {
  if (!rt || !out || !size)
    return STRATA_EINVAL;
  if (strata__runtime_shutting_down(rt))
    return STRATA_ESHUTDOWN;
  void *mem = NULL;
  strata__device_t *by = NULL;
  int rc = strata__memory_managed_alloc(rt, size, &mem, &by);
  if (rc)
    return rc;
  /* Not owned: its host replica is the allocation itself, fixed (never
   * spilled); the buffer's end gives it back to `by`'s backend. */
  strata__buffer_t *b = buffer_new(rt, mem, size, false);
  if (!b) {
    strata__memory_managed_free(rt, by, mem, size);
    return STRATA_ENOMEM;
  }
  b->managed_by = by;
  if ((rc = strata__htable_add(&rt->buffers, &rt->alloc, b, &b->id))) {
    strata__buffer_unref(rt, b); /* frees mem */
    return rc;
  }
  out->id = b->id;
  return STRATA_OK;
}

int strata__buffer_retire(strata_runtime_t *rt, strata__buffer_t *b) {
  /* The latest data goes home before the replicas are freed. */
  int rc = strata__memory_buffer_flush(rt, b);
  if (rc)
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
               "unregistering [%p, +%zu): its latest data could not be "
               "brought home: %s",
               b->ptr, b->size, strata_strerror(rc));
  if (!b->owned && !b->managed_by)
    range_remove(rt, b);
  strata__buffer_unref(rt, b);
  return rc;
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
