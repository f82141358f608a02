/* SPDX-License-Identifier: MIT */
/* runtime/tasks/graph.c: task objects, dependency linking at submit, and the
 * ending of tasks (successor release, failure and cancel propagation). */
#include "config.h"

#include "runtime.h"
#include "dispatch.h"

#include <string.h>

#define COMP "graph"

/* {=== Task objects and references ===} */

strata__task_t *strata__task_get(strata_runtime_t *rt, strata_task_t h) {
  return strata__htable_get(&rt->tasks, h.id);
}

void strata__task_ref(strata__task_t *t) {
  atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

/* {=== Task pool ===} */

/* Tasks kept for reuse; beyond this, ended tasks go back to the allocator
 * (a burst of submissions must not pin its peak memory forever). */
#define TASK_POOL_MAX 4096

void strata__task_pool_init(strata__task_pool_t *pool) {
  strata__mutex_init_hot(&pool->mu);
  pool->free = NULL;
  atomic_init(&pool->returned, NULL);
  atomic_init(&pool->cached, 0);
}

void strata__task_pool_drain(strata__task_pool_t *pool,
                             const strata__allocator_t *a) {
  strata__task_t *lists[2] = {pool->free,
                              atomic_exchange(&pool->returned, NULL)};
  for (int i = 0; i < 2; i++)
    for (strata__task_t *t = lists[i], *next; t; t = next) {
      next = t->resolve_next;
      strata__free(a, t, sizeof *t);
    }
  pool->free = NULL;
  atomic_store(&pool->cached, 0);
  pthread_mutex_destroy(&pool->mu);
}

/* A task object, recycled when one is cached. @thread any */
static strata__task_t *pool_get(strata_runtime_t *rt, bool *recycled) {
  strata__task_pool_t *pool = &rt->task_pool;
  pthread_mutex_lock(&pool->mu);
  strata__task_t *t = pool->free;
  if (!t)
    t = atomic_exchange_explicit(&pool->returned, NULL, memory_order_acquire);
  if (t) {
    pool->free = t->resolve_next;
    atomic_fetch_sub_explicit(&pool->cached, 1, memory_order_relaxed);
  }
  pthread_mutex_unlock(&pool->mu);
  *recycled = t != NULL;
  return t ? t : strata__alloc(&rt->alloc, sizeof *t);
}

/* Give a dead task object back (lock-free push). @thread any */
static void pool_put(strata_runtime_t *rt, strata__task_t *t) {
  strata__task_pool_t *pool = &rt->task_pool;
  if (atomic_fetch_add_explicit(&pool->cached, 1, memory_order_relaxed) >=
      TASK_POOL_MAX) {
    atomic_fetch_sub_explicit(&pool->cached, 1, memory_order_relaxed);
    if (t->hslot)
      strata__htable_release_slot(&rt->tasks, t->hslot);
    strata__free(&rt->alloc, t, sizeof *t);
    return;
  }
  strata__task_t *head =
      atomic_load_explicit(&pool->returned, memory_order_relaxed);
  do
    t->resolve_next = head;
  while (!atomic_compare_exchange_weak_explicit(
      &pool->returned, &head, t, memory_order_release, memory_order_relaxed));
}

static void task_free(strata__task_t *t) {
  strata_runtime_t *rt = t->rt;
  const strata__allocator_t *a = &rt->alloc;
  strata__free(a, t->decision, sizeof *t->decision);
  if (!t->submitted)
    for (size_t i = 0; i < t->naccess; i++)
      strata__buffer_unref(rt, t->access[i].buf);
  if (t->access != t->access_inline)
    strata__free(a, t->access, t->cap_access * sizeof *t->access);
  if (t->ptrs != t->ptrs_inline) {
    strata__free(a, t->ptrs, t->naccess * sizeof *t->ptrs);
    strata__free(a, t->sizes, t->naccess * sizeof *t->sizes);
    strata__free(a, t->modes, t->naccess * sizeof *t->modes);
  }
  if (t->args != t->args_inline)
    strata__free(a, t->args, t->args_cap);
  for (strata__succ_block_t *b = t->succ_blocks, *next; b; b = next) {
    next = b->next;
    strata__free(a, b, sizeof *b + b->cap * sizeof *b->slot);
  }
  strata__task_t *origin = atomic_load(&t->doom);
  if (origin)
    strata__task_unref(origin); /* an origin has no doom: depth 1 */
  if (t->job)
    strata__job_unref(rt, t->job);
  strata__attrs_free(&t->attrs, a);
  pool_put(rt, t);
}

void strata__task_unref(strata__task_t *t) {
  if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
    task_free(t);
}

/* Make room for `need` elements in an array that starts in inline
 * storage; the inline block is never freed. */
static int grow_inline(const strata__allocator_t *a, void **arr, size_t *cap,
                       const void *inline_block, size_t need, size_t elem) {
  if (need <= *cap)
    return STRATA_OK;
  if (*arr != inline_block)
    return strata__grow(a, arr, cap, need, elem);
  size_t ncap = *cap * 2 > need ? *cap * 2 : need;
  void *p = strata__alloc(a, ncap * elem);
  if (!p)
    return STRATA_ENOMEM;
  memcpy(p, *arr, *cap * elem);
  *arr = p;
  *cap = ncap;
  return STRATA_OK;
}

/* {=== Ending tasks ===} */

/* Remember `origin` as the reason `t` will not run (first one wins). */
static void doom(strata__task_t *t, strata__task_t *origin) {
  strata__task_t *expected = NULL;
  if (atomic_compare_exchange_strong(&t->doom, &expected, origin))
    strata__task_ref(origin);
}

/* The task a dependent of `t` blames when t did not succeed. */
static strata__task_t *origin_of(strata__task_t *t) {
  strata__task_t *o = atomic_load(&t->doom);
  return o ? o : t;
}

/* Status of a task that will not run: the failure or cancel it inherits,
 * or its own job's cancellation. */
static int doomed_status(strata__task_t *t) {
  strata__task_t *o = atomic_load(&t->doom);
  if (o)
    return o->status == STRATA_ECANCELED ? STRATA_ECANCELED : STRATA_EDEPFAILED;
  return STRATA_ECANCELED;
}

static bool will_not_run(strata__task_t *t) {
  /* The application's own access always happens: it sees the data as the
   * tasks before it left it. */
  return !t->host &&
         (atomic_load(&t->doom) || (t->job && atomic_load(&t->job->canceled)));
}

/* Settle the counters of a submitted task that ended, and wake whoever
 * waits for one of them to reach zero. */
static void account_end(strata_runtime_t *rt, strata__task_t *t, int status) {
  bool wake = atomic_load(&t->waited);
  /* The job first: once every device is idle (what destroy waits for),
   * every job's accounting, and the callback its end may post, is done. */
  if (t->job)
    strata__job_task_ended(rt, t->job, t, status);
  /* A device going idle may make the whole runtime idle; only look when
   * someone waits, since reading `submitted` on every end would pull its
   * line away from the submitting thread. (Sequentially consistent: a
   * waiter that registers after this reads the new `ended`.) */
  if (t->device >= 0) {
    strata__device_t *d = rt->devices[t->device];
    uint64_t ended = atomic_fetch_add(&d->ended, 1) + 1;
    if (strata__waits_any(&rt->waits) && ended == atomic_load(&d->submitted))
      wake = true;
  }
  if (status == STRATA_EDEPFAILED || status == STRATA_ECANCELED) {
    strata__task_t *o = atomic_load(&t->doom);
    if (o)
      STRATA_LOG(&rt->log, STRATA_LOG_DEBUG, COMP,
                 "task '%s' not run (%s): it consumes the results of '%s'",
                 strata__task_name(t), strata_err_name(status),
                 strata__task_name(o));
    else
      STRATA_LOG(&rt->log, STRATA_LOG_DEBUG, COMP,
                 "task '%s' not run: its job was canceled",
                 strata__task_name(t));
  }
  if (wake)
    strata__waits_notify(&rt->waits);
}

/* On the notifier thread: the task's callback, then its watch. */
static void deliver_done(strata_runtime_t *rt, strata__notice_t *n) {
  strata__task_t *t = STRATA_CONTAINER_OF(n, strata__task_t, notice);
  t->done_cb(rt, (strata_task_t){t->id}, t->status, t->done_arg);
  if (t->watched)
    strata__evfd_signal(&rt->notify.ev);
  strata__task_unref(t);
}

/* A submitted task with a callback or a watch ended: queue the callback
 * (the watch follows it), or signal the watch now. Never runs embedder
 * code here: the caller may hold graph_mu or be inside a submission. */
static void tell_embedder(strata_runtime_t *rt, strata__task_t *t) {
  if (t->done_cb) {
    strata__task_ref(t); /* until delivered */
    t->notice.deliver = deliver_done;
    strata__notify_post(rt, &t->notice);
  } else {
    strata__evfd_signal(&rt->notify.ev);
  }
}

/* Where the successors that become ready go while tasks end. */
typedef struct release_ctx {
  strata__task_t *doomed; /* ready but will not run: end them too */
  strata__task_t **next;  /* NULL, or where to hand one successor back */
  int device;             /* ... that runs on this device */
} release_ctx_t;

/* Release one successor of a task that ended (`origin`: whom it blames
 * when the task did not succeed). */
static void release_succ(strata_runtime_t *rt, strata__succ_t sc,
                         strata__task_t *origin, release_ctx_t *rc) {
  strata__task_t *s = sc.task;
  if (origin && sc.consumes)
    doom(s, origin);
  if (atomic_fetch_sub(&s->npending, 1) == 1) {
    if (will_not_run(s)) {
      s->resolve_next = rc->doomed;
      rc->doomed = s;
    } else if (rc->next && !*rc->next && s->device == rc->device &&
               strata__dispatch_may_run_next(rt, s)) {
      *rc->next = s;
    } else {
      strata__dispatch_enqueue(rt, s);
    }
  }
  strata__task_unref(s);
}

/* End one task with `status`: publish it, release its successors, settle
 * accounting. Drops the runtime's reference when the task was submitted. */
static void end_one(strata_runtime_t *rt, strata__task_t *t, int status,
                    bool submitted, release_ctx_t *rc) {
  t->status = status;
  atomic_store(&t->state, STRATA_TASK_DONE);
  /* Close the list: a submitter that now tries to add a successor sees the
   * flag and reads the status written above instead. */
  uint32_t n = atomic_fetch_or(&t->nsucc, STRATA__SUCCS_CLOSED);
  strata__task_t *origin = status == STRATA_OK ? NULL : origin_of(t);
  uint32_t i = 0;
  for (; i < n && i < STRATA__INLINE_SUCCS; i++)
    release_succ(rt, t->succ_inline[i], origin, rc);
  /* Read a block pointer only when a published slot lies behind it: a
   * submitter may be appending a block for a slot it will not publish. */
  strata__succ_block_t *b = i < n ? t->succ_blocks : NULL;
  while (b) {
    for (uint32_t j = 0; j < b->cap && i < n; j++, i++)
      release_succ(rt, b->slot[j], origin, rc);
    b = i < n ? b->next : NULL;
  }
  if (submitted) {
    /* After the status is published (waits see it) and before the end is
     * counted (destroy, once everything is counted, runs what is queued). */
    if (STRATA_UNLIKELY(t->done_cb || t->watched))
      tell_embedder(rt, t);
    account_end(rt, t, status);
    strata__task_unref(t);
  }
}

/* End t and, iteratively (chains of doomed tasks can be long), every
 * successor that becomes ready but will not run. */
static void end_chain(strata_runtime_t *rt, strata__task_t *t, int status,
                      bool submitted, strata__task_t **next) {
  release_ctx_t rc = {NULL, next, t->device};
  end_one(rt, t, status, submitted, &rc);
  while (rc.doomed) {
    strata__task_t *s = rc.doomed;
    rc.doomed = s->resolve_next;
    end_one(rt, s, doomed_status(s), true, &rc);
  }
}

void strata__graph_task_ran(strata_runtime_t *rt, strata__task_t *t, int status,
                            strata__task_t **next) {
  end_chain(rt, t, status, true, next);
}

void strata__graph_task_cancel(strata_runtime_t *rt, strata__task_t *t) {
  end_chain(rt, t, doomed_status(t), true, NULL);
}

/* A task's predecessors are all done: queue it, or end it at once when it
 * will not run. */
static void became_ready(strata_runtime_t *rt, strata__task_t *t) {
  if (will_not_run(t))
    end_chain(rt, t, doomed_status(t), true, NULL);
  else
    strata__dispatch_enqueue(rt, t);
}

/* Drop a task that was never submitted. Called with graph_mu held. */
static void discard_locked(strata_runtime_t *rt, strata__task_t *t) {
  STRATA_LOG(&rt->log, STRATA_LOG_DEBUG, COMP,
             "task '%s' released without being submitted: discarded",
             strata__task_name(t));
  end_chain(rt, t, STRATA_ECANCELED, false, NULL);
}

/* {=== Dependency edges (graph_mu held) ===} */

/* Successor slot i of p (i < p->succ_cap). */
static strata__succ_t *succ_slot(strata__task_t *p, uint32_t i) {
  if (i < STRATA__INLINE_SUCCS)
    return &p->succ_inline[i];
  i -= STRATA__INLINE_SUCCS;
  strata__succ_block_t *b = p->succ_blocks;
  for (; i >= b->cap; b = b->next)
    i -= b->cap;
  return &b->slot[i];
}

/* Reserve a successor slot in p for the edge about to be added, unless p
 * has ended. Blocks are appended, never moved: p's ending thread may read
 * the slots already published meanwhile. @return 0; STRATA_ENOMEM */
static int promise_succ(strata_runtime_t *rt, strata__task_t *p) {
  uint32_t n = atomic_load(&p->nsucc);
  if (n & STRATA__SUCCS_CLOSED)
    return STRATA_OK;
  if (n + p->succ_promised + 1 > p->succ_cap) {
    uint32_t cap = STRATA_MAX(p->succ_cap, 8u);
    strata__succ_block_t *b =
        strata__alloc(&rt->alloc, sizeof *b + cap * sizeof *b->slot);
    if (!b)
      return STRATA_ENOMEM;
    b->next = NULL;
    b->cap = cap;
    if (p->succ_tail)
      p->succ_tail->next = b;
    else
      p->succ_blocks = b;
    p->succ_tail = b;
    p->succ_cap += cap;
  }
  p->succ_promised++;
  return STRATA_OK;
}

/* Make s wait for p in a slot promised before. Called with graph_mu held
 * (the only place slots are filled); p may end concurrently, which the
 * compare-and-swap on its count settles. */
static void add_edge(strata__task_t *p, strata__task_t *s, bool consumes) {
  if (s->last_pred == p && (s->last_consumes || !consumes))
    return; /* already waits for p, consuming at least as much */
  uint32_t n = atomic_load(&p->nsucc);
  if (!(n & STRATA__SUCCS_CLOSED)) {
    STRATA_ASSERT(n < p->succ_cap);
    *succ_slot(p, n) = (strata__succ_t){s, consumes};
    /* Count the edge before it is published: p's end decrements it. */
    atomic_fetch_add(&s->npending, 1);
    strata__task_ref(s);
    if (atomic_compare_exchange_strong(&p->nsucc, &n, n + 1)) {
      s->last_pred = p;
      s->last_consumes = consumes;
      return;
    }
    /* p ended meanwhile; s still holds its own references, so neither
     * count reaches zero here. */
    atomic_fetch_sub(&s->npending, 1);
    atomic_fetch_sub(&s->refs, 1);
  }
  if (consumes && p->status != STRATA_OK)
    doom(s, origin_of(p));
}

/* Is `target` reachable from `from` along successor edges? Every task
 * reachable from an unsubmitted task waits on it, so none of them can end
 * meanwhile (a discarded one's list reads closed), and lists only grow
 * under graph_mu, which the caller holds. */
static int reaches(strata_runtime_t *rt, strata__task_t *from,
                   strata__task_t *target, bool *found) {
  strata__task_t **stack = NULL;
  size_t n = 0, cap = 0;
  uint64_t epoch = ++rt->visit_epoch;
  int rc = STRATA_OK;
  *found = false;
  from->visit = epoch;
  if ((rc = strata__grow(&rt->alloc, (void **)&stack, &cap, 1, sizeof *stack)))
    return rc;
  stack[n++] = from;
  while (n && !*found) {
    strata__task_t *x = stack[--n];
    if (x == target) {
      *found = true;
      break;
    }
    uint32_t ns = atomic_load(&x->nsucc);
    if (ns & STRATA__SUCCS_CLOSED)
      ns = 0;
    for (uint32_t i = 0; i < ns && rc == STRATA_OK; i++) {
      strata__task_t *s = succ_slot(x, i)->task;
      if (s->visit == epoch)
        continue;
      s->visit = epoch;
      rc =
          strata__grow(&rt->alloc, (void **)&stack, &cap, n + 1, sizeof *stack);
      if (rc == STRATA_OK)
        stack[n++] = s;
    }
    if (rc)
      break;
  }
  strata__free(&rt->alloc, stack, cap * sizeof *stack);
  return rc;
}

/* Drop the buffer's readers that have ended. */
static void prune_readers(strata__buffer_t *b) {
  size_t k = 0;
  for (size_t i = 0; i < b->nreaders; i++) {
    strata__task_t *r = b->readers[i];
    if (strata__task_state(r) == STRATA_TASK_DONE)
      strata__task_unref(r);
    else
      b->readers[k++] = r;
  }
  b->nreaders = k;
}

/* Call fn on every predecessor linking t will add an edge from (with
 * repeats), stopping at the first error. */
static int for_each_pred(strata_runtime_t *rt, strata__task_t *t,
                         int (*fn)(strata_runtime_t *, strata__task_t *)) {
  int rc = STRATA_OK;
  for (size_t i = 0; i < t->naccess && rc == STRATA_OK; i++) {
    strata_access_mode_t mode = strata__task_access_mode(t, i);
    strata__buffer_t *b = t->access[i].buf;
    if (!mode)
      continue;
    if (b->last_writer)
      rc = fn(rt, b->last_writer);
    for (size_t r = 0; (mode & STRATA_W) && r < b->nreaders && !rc; r++)
      rc = fn(rt, b->readers[r]);
  }
  return rc;
}

static int forget_promise(strata_runtime_t *rt, strata__task_t *p) {
  (void)rt;
  p->succ_promised = 0;
  return STRATA_OK;
}

/* Reserve every allocation that linking t will need, so that linking
 * itself cannot fail halfway. */
static int reserve_links(strata_runtime_t *rt, strata__task_t *t) {
  int rc = STRATA_OK;
  for (size_t i = 0; i < t->naccess && rc == STRATA_OK; i++) {
    strata_access_mode_t mode = strata__task_access_mode(t, i);
    strata__buffer_t *b = t->access[i].buf;
    if (!mode)
      continue;
    if (mode & STRATA_W) {
      prune_readers(b); /* readers that ended need no edge */
    } else {
      if (b->nreaders == b->cap_readers)
        prune_readers(b);
      rc = strata__grow(&rt->alloc, (void **)&b->readers, &b->cap_readers,
                        b->nreaders + 1, sizeof *b->readers);
    }
  }
  if (rc == STRATA_OK)
    rc = for_each_pred(rt, t, promise_succ);
  for_each_pred(rt, t, forget_promise); /* the slots stay reserved */
  if (t->naccess > STRATA__INLINE_ACCESSES && rc == STRATA_OK) {
    t->ptrs = strata__alloc(&rt->alloc, t->naccess * sizeof *t->ptrs);
    t->sizes = strata__alloc(&rt->alloc, t->naccess * sizeof *t->sizes);
    t->modes = strata__alloc(&rt->alloc, t->naccess * sizeof *t->modes);
    if (!t->ptrs || !t->sizes || !t->modes) {
      strata__free(&rt->alloc, t->ptrs, t->naccess * sizeof *t->ptrs);
      strata__free(&rt->alloc, t->sizes, t->naccess * sizeof *t->sizes);
      strata__free(&rt->alloc, t->modes, t->naccess * sizeof *t->modes);
      t->ptrs = t->ptrs_inline;
      t->sizes = t->sizes_inline;
      t->modes = t->modes_inline;
      rc = STRATA_ENOMEM;
    }
  }
  return rc;
}

/* Link t behind the tasks its accesses must follow, as if all tasks ran
 * in submission order: a writer follows the last writer (and consumes its
 * result when it also reads) and every reader since; a reader follows
 * (and consumes) the last writer. */
static void link_accesses(strata__task_t *t) {
  t->last_pred = NULL;
  for (size_t i = 0; i < t->naccess; i++) {
    strata_access_mode_t mode = strata__task_access_mode(t, i);
    strata__buffer_t *b = t->access[i].buf;
    if (!mode)
      continue;
    if (b->last_writer)
      add_edge(b->last_writer, t, (mode & STRATA_R) != 0);
    if (mode & STRATA_W) {
      for (size_t r = 0; r < b->nreaders; r++) {
        add_edge(b->readers[r], t, false);
        strata__task_unref(b->readers[r]);
      }
      b->nreaders = 0;
      if (b->last_writer)
        strata__task_unref(b->last_writer);
      strata__task_ref(t);
      b->last_writer = t;
    } else {
      strata__task_ref(t);
      b->readers[b->nreaders++] = t;
    }
  }
}

/* {=== Public API: describing tasks ===} */

/* Look up a task that is still being described. */
static int get_created(strata_runtime_t *rt, strata_task_t h,
                       strata__task_t **out) {
  *out = NULL;
  if (!rt)
    return STRATA_EINVAL;
  strata__task_t *t = strata__task_get(rt, h);
  if (!t)
    return strata__htable_miss(&rt->tasks, h.id);
  if (strata__task_state(t) != STRATA_TASK_CREATED)
    return STRATA_ESTATE;
  *out = t;
  return STRATA_OK;
}

/* A task object for kernel k, fresh or recycled, in state CREATED. */
static strata__task_t *new_task(strata_runtime_t *rt, strata__kernel_t *k) {
  bool recycled;
  strata__task_t *t = pool_get(rt, &recycled);
  if (!t)
    return NULL;
  if (!recycled)
    t->hslot = 0;
  /* Field by field rather than memset of ~700 bytes: this is the hot
   * path of every submission. */
  t->rt = rt;
  t->kernel = k;
  t->job = NULL;
  t->user_data = NULL;
  atomic_init(&t->refs, 1);
  atomic_init(&t->state, STRATA_TASK_CREATED);
  atomic_init(&t->npending, 1);
  atomic_init(&t->doom, NULL);
  atomic_init(&t->waited, false);
  t->status = t->kernel_status = 0;
  t->submitted = false;
  t->device = -1;
  t->seq = t->start_ns = 0;
  strata__attrs_init(&t->attrs);
  t->access = t->access_inline;
  t->naccess = 0;
  t->cap_access = STRATA__INLINE_ACCESSES;
  t->ptrs = t->ptrs_inline;
  t->sizes = t->sizes_inline;
  t->modes = t->modes_inline;
  t->args = t->args_inline;
  t->args_size = 0;
  t->args_cap = STRATA__INLINE_ARGS;
  atomic_init(&t->nsucc, 0);
  t->succ_cap = STRATA__INLINE_SUCCS;
  t->succ_promised = 0;
  t->succ_blocks = t->succ_tail = NULL;
  t->last_pred = NULL;
  t->last_consumes = false;
  t->resolve_next = NULL;
  t->visit = 0;
  t->qnode.next = NULL;
  t->qnode.priority = 0;
  t->host = false;
  t->staged = false;
  t->decision = NULL;
  t->done_cb = NULL;
  t->done_arg = NULL;
  t->watched = false;
  return t;
}

int strata_task_create(strata_runtime_t *rt, strata_kernel_t kernel,
                       strata_task_t *out) {
  if (!rt || !out)
    return STRATA_EINVAL;
  strata__kernel_t *k = strata__kernel_get(rt, kernel);
  if (!k)
    return strata__htable_miss(&rt->kernels, kernel.id);
  if (strata__runtime_shutting_down(rt))
    return STRATA_ESHUTDOWN;
  strata__task_t *t = new_task(rt, k);
  if (!t)
    return STRATA_ENOMEM;
  if (t->hslot) {
    t->id = strata__htable_readd(&rt->tasks, t->hslot, t);
  } else {
    int rc = strata__htable_add(&rt->tasks, &rt->alloc, t, &t->id);
    if (rc) {
      task_free(t);
      return rc;
    }
    t->hslot = (uint32_t)t->id;
  }
  out->id = t->id;
  return STRATA_OK;
}

int strata_task_access(strata_runtime_t *rt, strata_task_t task,
                       strata_buffer_t buf, strata_access_mode_t mode) {
  strata__task_t *t;
  int rc = get_created(rt, task, &t);
  if (rc)
    return rc;
  if (mode != STRATA_R && mode != STRATA_W && mode != STRATA_RW) {
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
               "task '%s': access mode %d is not R, W or RW",
               strata__task_name(t), (int)mode);
    return STRATA_EINVAL;
  }
  strata__buffer_t *b = strata__buffer_get(rt, buf);
  if (!b) {
    rc = strata__htable_miss(&rt->buffers, buf.id);
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
               rc == STRATA_EINVAL
                   ? "task '%s': handle %#llx is not a buffer handle"
                   : "task '%s': buffer %#llx is not registered",
               strata__task_name(t), (unsigned long long)buf.id);
    return rc;
  }
  if ((rc = grow_inline(&rt->alloc, (void **)&t->access, &t->cap_access,
                        t->access_inline, t->naccess + 1, sizeof *t->access)))
    return rc;
  strata__buffer_ref(b);
  t->access[t->naccess++] = (strata__access_t){b, mode};
  return STRATA_OK;
}

int strata_task_set_args(strata_runtime_t *rt, strata_task_t task,
                         const void *args, size_t size) {
  strata__task_t *t;
  int rc = get_created(rt, task, &t);
  if (rc)
    return rc;
  if (size && !args)
    return STRATA_EINVAL;
  if (size > t->args_cap) {
    unsigned char *p = strata__alloc(&rt->alloc, size);
    if (!p)
      return STRATA_ENOMEM;
    if (t->args != t->args_inline)
      strata__free(&rt->alloc, t->args, t->args_cap);
    t->args = p;
    t->args_cap = size;
  }
  if (size)
    memcpy(t->args, args, size);
  t->args_size = size;
  return STRATA_OK;
}

int strata_task_set_attr(strata_runtime_t *rt, strata_task_t task,
                         const char *key, const char *value) {
  strata__task_t *t;
  int rc = get_created(rt, task, &t);
  if (rc)
    return rc;
  rc = strata__attrs_set(&t->attrs, &rt->alloc, key, value);
  if (rc == STRATA_EINVAL)
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
               "task '%s': attribute '%s'='%s' rejected", strata__task_name(t),
               key ? key : "(null)", value ? value : "(null)");
  return rc;
}

int strata_task_set_attr_number(strata_runtime_t *rt, strata_task_t task,
                                const char *key, double value) {
  strata__task_t *t;
  int rc = get_created(rt, task, &t);
  if (rc)
    return rc;
  rc = strata__attrs_set_number(&t->attrs, &rt->alloc, key, value);
  if (rc == STRATA_EINVAL)
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
               "task '%s': numeric attribute '%s'=%g rejected",
               strata__task_name(t), key ? key : "(null)", value);
  return rc;
}

int strata_task_set_priority(strata_runtime_t *rt, strata_task_t task,
                             int priority) {
  strata__task_t *t;
  int rc = get_created(rt, task, &t);
  if (rc)
    return rc;
  t->attrs.priority = priority;
  t->attrs.has_priority = true;
  return STRATA_OK;
}

int strata_task_set_job(strata_runtime_t *rt, strata_task_t task,
                        strata_job_t job) {
  strata__task_t *t;
  int rc = get_created(rt, task, &t);
  if (rc)
    return rc;
  strata__job_t *j = strata__job_get(rt, job);
  if (!j)
    return strata__htable_miss(&rt->jobs, job.id);
  strata__job_ref(j);
  if (t->job)
    strata__job_unref(rt, t->job);
  t->job = j;
  return STRATA_OK;
}

int strata_task_set_callback(strata_runtime_t *rt, strata_task_t task,
                             strata_task_done_fn fn, void *arg) {
  strata__task_t *t;
  int rc = get_created(rt, task, &t);
  if (rc)
    return rc;
  if (fn && (rc = strata__notify_start(rt)))
    return rc;
  t->done_cb = fn;
  t->done_arg = fn ? arg : NULL;
  return STRATA_OK;
}

int strata_task_watch(strata_runtime_t *rt, strata_task_t task) {
  strata__task_t *t;
  int rc = get_created(rt, task, &t);
  if (rc)
    return rc;
  t->watched = true;
  return STRATA_OK;
}

int strata_task_set_data(strata_runtime_t *rt, strata_task_t task, void *data) {
  if (!rt)
    return STRATA_EINVAL;
  strata__task_t *t = strata__task_get(rt, task);
  if (!t)
    return strata__htable_miss(&rt->tasks, task.id);
  t->user_data = data;
  return STRATA_OK;
}

void *strata_task_get_data(strata_runtime_t *rt, strata_task_t task) {
  strata__task_t *t = rt ? strata__task_get(rt, task) : NULL;
  return t ? t->user_data : NULL;
}

int strata_task_depend(strata_runtime_t *rt, strata_task_t task,
                       strata_task_t on) {
  strata__task_t *t;
  int rc = get_created(rt, task, &t);
  if (rc)
    return rc;
  strata__task_t *p = strata__task_get(rt, on);
  if (!p)
    return strata__htable_miss(&rt->tasks, on.id);
  bool cycle = p == t;
  pthread_mutex_lock(&rt->graph_mu);
  if (strata__runtime_shutting_down(rt)) {
    rc = STRATA_ESHUTDOWN;
  } else if (strata__task_state(t) != STRATA_TASK_CREATED) {
    rc = STRATA_ESTATE;
  } else if (cycle || (rc = reaches(rt, t, p, &cycle)) != STRATA_OK) {
    /* rc says why */
  } else if (!cycle && (rc = promise_succ(rt, p)) == STRATA_OK) {
    p->succ_promised = 0;
    t->last_pred = NULL;
    add_edge(p, t, true);
  }
  pthread_mutex_unlock(&rt->graph_mu);
  if (cycle) {
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
               "task '%s' cannot depend on '%s': that would close a cycle",
               strata__task_name(t), strata__task_name(p));
    return STRATA_ECYCLE;
  }
  return rc;
}

/* {=== Public API: submission ===} */

/* The priority a task's ready-queue entry gets. */
static int effective_priority(strata__task_t *t) {
  if (t->attrs.has_priority || !t->job)
    return t->attrs.priority;
  pthread_mutex_lock(&t->job->mu);
  int p = t->job->attrs.has_priority ? t->job->attrs.priority : 0;
  pthread_mutex_unlock(&t->job->mu);
  return p;
}

/* Checks made under graph_mu, where they cannot race with unregister,
 * cancel or shutdown. */
static int check_submittable(strata_runtime_t *rt, strata__task_t *t) {
  if (strata__runtime_shutting_down(rt))
    return STRATA_ESHUTDOWN;
  if (strata__task_state(t) != STRATA_TASK_CREATED)
    return STRATA_ESTATE;
  if (t->job && atomic_load(&t->job->canceled)) {
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
               "task '%s' not submitted: its job is canceled",
               strata__task_name(t));
    return STRATA_ECANCELED;
  }
  for (size_t i = 0; i < t->naccess; i++)
    if (t->access[i].buf->dead) {
      STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
                 "task '%s' not submitted: its buffer #%zu was unregistered",
                 strata__task_name(t), i);
      return STRATA_ENOENT;
    }
  return STRATA_OK;
}

/* Fill in the kernel call frame (host addresses for now). */
static strata_precision_t precision_of(const char *label) {
  static const char *const names[] = {"fp64", "fp32", "fp16", "bf16", "int8"};
  if (!label)
    return STRATA_PRECISION_UNKNOWN;
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (!strcmp(label, names[i]))
      return (strata_precision_t)(STRATA_PRECISION_FP64 + i);
  return STRATA_PRECISION_OTHER;
}

void strata__graph_retarget(strata_runtime_t *rt, strata__task_t *t, int d) {
  t->device = d;
  t->work.fn = strata__kernel_impl_for(t->kernel, &rt->devices[d]->desc);
  t->work.call.device = d;
}

static void prepare_call(strata_runtime_t *rt, strata__task_t *t) {
  for (size_t i = 0; i < t->naccess; i++) {
    t->ptrs[i] = t->access[i].buf->ptr;
    t->sizes[i] = t->access[i].buf->size;
    t->modes[i] = (uint8_t)t->access[i].mode;
  }
  t->work.call = (strata_kernel_call_t){
      .struct_size = sizeof(strata_kernel_call_t),
      .nbuffers = (uint32_t)t->naccess,
      .buffers = t->ptrs,
      .sizes = t->sizes,
      .args = t->args_size ? t->args : NULL,
      .args_size = t->args_size,
      .user_data = t->kernel->user_data,
      .modes = t->modes,
  };
  t->work.flops = t->attrs.flops;
  t->work.precision = precision_of(t->attrs.precision);
  strata__graph_retarget(rt, t, t->device);
}

/* Count the newly submitted task everywhere it must be waited for. */
static void account_submit(strata_runtime_t *rt, strata__task_t *t) {
  /* The accesses' buffer references go: unregister now waits for this
   * task through the buffer's history instead. Dropping them here, on the
   * thread that took them, keeps the buffer's count off the workers. */
  for (size_t i = 0; i < t->naccess; i++)
    strata__buffer_unref(rt, t->access[i].buf);
  t->submitted = true;
  if (t->device >= 0)
    atomic_fetch_add(&rt->devices[t->device]->submitted, 1);
  if (t->job) {
    atomic_fetch_add(&t->job->submitted, 1);
    atomic_fetch_add(&t->job->pending, 1);
  }
  strata__task_ref(t); /* the runtime's, until the task ends */
}

int strata_task_submit(strata_runtime_t *rt, strata_task_t task) {
  strata__task_t *t;
  /* Shutdown first: destroy discards unsubmitted tasks, and the caller
   * should learn why rather than see a task that changed state. */
  if (rt && strata__runtime_shutting_down(rt))
    return STRATA_ESHUTDOWN;
  int rc = get_created(rt, task, &t);
  if (rc)
    return rc;
  int device;
  t->working_set = strata__memory_working_set(t, &t->managed_set);
  if ((rc = strata__placement_choose(rt, t, &device)))
    return rc;
  t->qnode.priority = effective_priority(t);
  if ((rc = strata__queue_reserve(&rt->devices[device]->queue, &rt->alloc,
                                  t->qnode.priority)))
    return rc;

  pthread_mutex_lock(&rt->graph_mu);
  if ((rc = check_submittable(rt, t)) || (rc = reserve_links(rt, t))) {
    pthread_mutex_unlock(&rt->graph_mu);
    return rc;
  }
  t->device = device;
  t->seq = rt->next_seq++;
  prepare_call(rt, t);
  account_submit(rt, t);
  atomic_store(&t->state, STRATA_TASK_WAITING);
  link_accesses(t);
  pthread_mutex_unlock(&rt->graph_mu);

  /* Drop the submission guard: if every predecessor has already ended,
   * the task is ready now. */
  if (atomic_fetch_sub(&t->npending, 1) == 1)
    became_ready(rt, t);
  return STRATA_OK;
}

/* {=== Public API: waiting, inspecting, releasing ===} */

static bool task_done(void *arg) {
  return strata__task_state(arg) == STRATA_TASK_DONE;
}

int strata_task_wait(strata_runtime_t *rt, strata_task_t task) {
  if (!rt)
    return STRATA_EINVAL;
  strata__task_t *t = strata__task_get(rt, task);
  if (!t)
    return strata__htable_miss(&rt->tasks, task.id);
  int state = strata__task_state(t);
  if (state == STRATA_TASK_CREATED)
    return STRATA_ESTATE;
  if (state != STRATA_TASK_DONE) {
    strata__task_ref(t);
    atomic_store(&t->waited, true);
    strata__waits_until(&rt->waits, task_done, t);
    int st = t->status;
    strata__task_unref(t);
    return st;
  }
  return t->status;
}

int strata_task_info(strata_runtime_t *rt, strata_task_t task,
                     strata_task_info_t *out) {
  if (!rt || !out || out->struct_size <= sizeof(size_t))
    return STRATA_EINVAL;
  strata__task_t *t = strata__task_get(rt, task);
  if (!t)
    return strata__htable_miss(&rt->tasks, task.id);
  strata_task_info_t info = {.struct_size = sizeof info};
  info.state = (strata_task_state_t)strata__task_state(t);
  if (info.state == STRATA_TASK_DONE) {
    info.status = t->status;
    info.kernel_status = t->kernel_status;
  }
  info.device = t->device;
  strata__strlcpy(info.name, strata__task_name(t), sizeof info.name);
  strata__task_t *o = atomic_load(&t->doom);
  if (o) {
    info.cause.id = o->id;
    strata__strlcpy(info.cause_name, strata__task_name(o),
                    sizeof info.cause_name);
  }
  return strata__copy_out(out, &info, sizeof info);
}

int strata_task_release(strata_runtime_t *rt, strata_task_t task) {
  if (!rt)
    return STRATA_EINVAL;
  strata__task_t *t = strata__htable_retire(&rt->tasks, task.id);
  if (!t)
    return strata__htable_miss(&rt->tasks, task.id);
  if (strata__task_state(t) == STRATA_TASK_CREATED) {
    pthread_mutex_lock(&rt->graph_mu);
    /* Re-check: a concurrent submit may have won the race. */
    if (strata__task_state(t) == STRATA_TASK_CREATED)
      discard_locked(rt, t);
    pthread_mutex_unlock(&rt->graph_mu);
  }
  strata__task_unref(t);
  return STRATA_OK;
}

static void discard_if_unsubmitted(uint64_t id, void *obj, void *ud) {
  (void)id;
  strata__task_t *t = obj;
  if (strata__task_state(t) == STRATA_TASK_CREATED)
    discard_locked(ud, t);
}

void strata__graph_discard_unsubmitted(strata_runtime_t *rt) {
  pthread_mutex_lock(&rt->graph_mu);
  strata__htable_foreach(&rt->tasks, discard_if_unsubmitted, rt);
  pthread_mutex_unlock(&rt->graph_mu);
}

/* {=== The application's access to a buffer ===} */

/* Stands for the application in task names and logs. */
static strata__kernel_t host_kernel = {.name = (char *)"(application)"};

static bool host_ready(void *arg) {
  return strata__task_state(arg) != STRATA_TASK_WAITING;
}

/* Link t (accessing b) as a task submitted now. graph_mu held. */
static int link_host(strata_runtime_t *rt, strata__buffer_t *b,
                     strata__task_t *t) {
  if (strata__runtime_shutting_down(rt))
    return STRATA_ESHUTDOWN;
  if (b->dead)
    return STRATA_ENOENT;
  if (b->acquired)
    return STRATA_EBUSY;
  int rc = reserve_links(rt, t);
  if (rc)
    return rc;
  t->seq = rt->next_seq++;
  account_submit(rt, t);
  atomic_store(&t->state, STRATA_TASK_WAITING);
  link_accesses(t);
  b->acquired = t; /* the creation reference is held until release */
  return STRATA_OK;
}

int strata__graph_host_begin(strata_runtime_t *rt, strata__buffer_t *b,
                             strata_access_mode_t mode, strata__task_t **out) {
  strata__task_t *t = new_task(rt, &host_kernel);
  if (!t)
    return STRATA_ENOMEM;
  t->host = true;
  strata__buffer_ref(b);
  t->access[t->naccess++] = (strata__access_t){b, mode};
  pthread_mutex_lock(&rt->graph_mu);
  int rc = link_host(rt, b, t);
  pthread_mutex_unlock(&rt->graph_mu);
  if (rc) {
    task_free(t);
    return rc;
  }
  atomic_store(&t->waited, true);
  if (atomic_fetch_sub(&t->npending, 1) == 1)
    atomic_store(&t->state, STRATA_TASK_READY);
  strata__waits_until(&rt->waits, host_ready, t);
  atomic_store(&t->state, STRATA_TASK_RUNNING);
  *out = t;
  return STRATA_OK;
}

void strata__graph_host_end(strata_runtime_t *rt, strata__task_t *t) {
  pthread_mutex_lock(&rt->graph_mu);
  t->access[0].buf->acquired = NULL;
  pthread_mutex_unlock(&rt->graph_mu);
  end_chain(rt, t, STRATA_OK, true, NULL);
  strata__task_unref(t); /* the creation reference */
}

int strata_task_decision(strata_runtime_t *rt, strata_task_t task,
                         strata_decision_t *out) {
  if (!rt || !out || out->struct_size <= sizeof(size_t))
    return STRATA_EINVAL;
  strata__task_t *t = strata__task_get(rt, task);
  if (!t)
    return strata__htable_miss(&rt->tasks, task.id);
  if (!t->submitted || !t->decision)
    return STRATA_ENOENT;
  const strata__decision_t *d = t->decision;
  strata_decision_t r = {.struct_size = sizeof r};
  r.device = t->device;
  r.candidates = d->candidates;
  r.answer = d->answer;
  r.from_cache = d->from_cache;
  r.fallback = d->fallback;
  strata__strlcpy(r.why, d->why, sizeof r.why);
  return strata__copy_out(out, &r, sizeof r);
}
