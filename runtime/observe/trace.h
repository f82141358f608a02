/* SPDX-License-Identifier: MIT */
/* runtime/observe/trace.h: the trace recorder behind strata/trace.h. The
 * modules where things happen hand it finished events (a task's run, a
 * copy, a memory node's use) with every name it needs copied in: it calls
 * no other module, so it can be called from anywhere. While recording,
 * events are appended under one mutex (tracing is for looking at a run,
 * not for production speed); while not, callers pay one relaxed load
 * (strata__trace_on). */
#ifndef STRATA_TRACE_INTERNAL_H
#define STRATA_TRACE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <strata/trace.h>

struct strata_runtime;

struct strata__trace_event; /* trace.c's */

typedef struct strata__trace {
  atomic_bool on;
  pthread_mutex_t mu; /* what follows */
  struct strata__trace_event *ev;
  size_t n, cap, max;
  uint64_t dropped;
  uint64_t t0_ns; /* the start */
  bool ever;      /* something was started */
} strata__trace_t;

/** Off, empty. @thread owner (creation) */
void strata__trace_init(struct strata_runtime *rt);
/** @thread owner (destruction) */
void strata__trace_fini(struct strata_runtime *rt);

/** Is a recording on? One relaxed load: callers test it before building
 *  an event. @thread any */
static inline bool strata__trace_on(const strata__trace_t *t) {
  return atomic_load_explicit(&t->on, memory_order_relaxed);
}

/** A task's run on worker `worker` of device `device`, from start_ns to
 *  end_ns; the names are copied (NULL: none). @thread any */
void strata__trace_task(struct strata_runtime *rt, int device, unsigned worker,
                        uint64_t start_ns, uint64_t end_ns, int status,
                        const char *name, const char *kernel, const char *tier,
                        const char *job);

/** A copy of `bytes` from memory node src to dst, and dst's bytes in use
 *  after it (names copied). @thread any */
void strata__trace_copy(struct strata_runtime *rt, int src,
                        const char *src_name, int dst, const char *dst_name,
                        uint64_t bytes, uint64_t start_ns, uint64_t end_ns,
                        int status, uint64_t dst_used);

#endif /* STRATA_TRACE_INTERNAL_H */
