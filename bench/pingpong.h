/* SPDX-License-Identifier: MIT */
/* bench/pingpong.h: the floor under any runtime's wake-up latency: how long
 * this machine takes to wake a thread blocked on a pthread condition
 * variable, or on a bare futex, measured the way strata-bench wake
 * measures a runtime (an idle time, then the stamp of the waker just
 * before the wake-up against the stamp of the woken thread as it runs).
 *
 * A pingpong_t owns one waiting thread. Each sample is a round trip that
 * is not timed (the waiter blocks right after it), the idle time, then
 * the timed wake-up; the waiter answers each ping with a pong so that the
 * next sample starts with it blocked again. Static functions only; include
 * after config.h (feature-test macros) and common.h (now_ns, sleep_us).
 * The futex variant exists on Linux only (elsewhere pp_init returns -1). */
#ifndef BENCH_PINGPONG_H
#define BENCH_PINGPONG_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <errno.h>
#include <stdbool.h>

#ifdef __linux__
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

typedef enum { PP_CONDVAR, PP_FUTEX } pp_kind_t;

typedef struct pingpong {
  pp_kind_t kind;
  int waiter_cpu, waker_cpu; /* both pinned there during a sample; -1: not */
  pthread_t thread;
  pthread_mutex_t mu;       /* condvar: guards the words, with the cvs */
  pthread_cond_t ping_cv;   /* the waiter waits here */
  pthread_cond_t pong_cv;   /* the timing thread waits here */
  _Atomic uint32_t ping;    /* bumped by the timing thread (futex word) */
  _Atomic uint32_t pong;    /* bumped by the waiter (futex word) */
  _Atomic uint64_t woke_ns; /* the waiter's stamp as it ran again */
  _Atomic bool quit;
} pingpong_t;

#ifdef __linux__
static void pp_futex_wait(_Atomic uint32_t *w, uint32_t v) {
  syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, v, NULL,
          NULL, 0);
}

static void pp_futex_wake(_Atomic uint32_t *w) {
  syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL,
          NULL, 0);
}
#endif

/* Block until *w differs from v. */
static void pp_wait(pingpong_t *p, _Atomic uint32_t *w, pthread_cond_t *cv,
                    uint32_t v) {
#ifdef __linux__
  if (p->kind == PP_FUTEX) {
    while (atomic_load(w) == v)
      pp_futex_wait(w, v);
    return;
  }
#endif
  pthread_mutex_lock(&p->mu);
  while (atomic_load(w) == v)
    pthread_cond_wait(cv, &p->mu);
  pthread_mutex_unlock(&p->mu);
}

/* Bump *w and wake the thread waiting for it to change. */
static void pp_signal(pingpong_t *p, _Atomic uint32_t *w, pthread_cond_t *cv) {
#ifdef __linux__
  if (p->kind == PP_FUTEX) {
    atomic_fetch_add(w, 1);
    pp_futex_wake(w);
    return;
  }
#endif
  pthread_mutex_lock(&p->mu);
  atomic_fetch_add(w, 1);
  pthread_cond_signal(cv);
  pthread_mutex_unlock(&p->mu);
}

static void *pp_waiter(void *arg) {
  pingpong_t *p = arg;
  for (uint32_t seen = 0;;) {
    pp_wait(p, &p->ping, &p->ping_cv, seen);
    atomic_store(&p->woke_ns, now_ns()); /* first thing once running */
    seen = atomic_load(&p->ping);
    if (atomic_load(&p->quit))
      return NULL;
    pp_signal(p, &p->pong, &p->pong_cv);
  }
}

static void pp_fini(pingpong_t *p);

/* Pin a thread to one CPU. @return 0 or an errno value */
static int pp_pin(pthread_t t, int cpu) {
#ifdef __linux__
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(t, sizeof set, &set);
#else
  (void)t;
  (void)cpu;
  return ENOSYS;
#endif
}

/* With cross set, the waiter is pinned to one CPU and the timing thread,
 * during each sample, to another: the wake-up then always crosses cores,
 * as it does for a runtime whose workers are bound to cores. Without, the
 * kernel places both threads as it likes (it often runs the woken thread
 * on the waker's core, which is cheaper).
 * @return 0, or -1 when the kind or pinning does not exist here, there is
 * only one CPU to use, or a thread cannot start. */
static int pp_init(pingpong_t *p, pp_kind_t kind, bool cross) {
#ifndef __linux__
  if (kind == PP_FUTEX)
    return -1;
#endif
  p->kind = kind;
  atomic_init(&p->ping, 0);
  atomic_init(&p->pong, 0);
  atomic_init(&p->woke_ns, 0);
  atomic_init(&p->quit, false);
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->ping_cv, NULL);
  pthread_cond_init(&p->pong_cv, NULL);
  p->waiter_cpu = p->waker_cpu = -1;
#ifdef __linux__
  cpu_set_t mine;
  if (cross) {
    if (pthread_getaffinity_np(pthread_self(), sizeof mine, &mine) ||
        CPU_COUNT(&mine) < 2)
      return -1;
    for (int c = 0; c < CPU_SETSIZE; c++)
      if (CPU_ISSET(c, &mine)) {
        if (p->waker_cpu < 0)
          p->waker_cpu = c;
        else if (p->waiter_cpu < 0)
          p->waiter_cpu = c;
      }
  }
#else
  if (cross)
    return -1;
#endif
  if (pthread_create(&p->thread, NULL, pp_waiter, p)) {
    pthread_cond_destroy(&p->pong_cv);
    pthread_cond_destroy(&p->ping_cv);
    pthread_mutex_destroy(&p->mu);
    return -1;
  }
  if (cross && pp_pin(p->thread, p->waiter_cpu)) {
    pp_fini(p);
    return -1;
  }
  return 0;
}

static void pp_fini(pingpong_t *p) {
  atomic_store(&p->quit, true);
  pp_signal(p, &p->ping, &p->ping_cv);
  pthread_join(p->thread, NULL);
  pthread_cond_destroy(&p->pong_cv);
  pthread_cond_destroy(&p->ping_cv);
  pthread_mutex_destroy(&p->mu);
}

/* One ping answered: the waiter is blocked again when this returns.
 * @return the wake-up latency (ns); *t0 is when the ping was sent. */
static uint64_t pp_round_trip(pingpong_t *p, uint64_t *t0) {
  uint32_t pong = atomic_load(&p->pong);
  *t0 = now_ns();
  pp_signal(p, &p->ping, &p->ping_cv);
  pp_wait(p, &p->pong, &p->pong_cv, pong);
  return atomic_load(&p->woke_ns) - *t0;
}

/* One sample: the wake-up latency in ns of a thread blocked for about
 * idle_us (a round trip first, so that it blocked just before the idle
 * began); adds the idle as it really was, from the waiter's last wake-up,
 * to *idle_ns. */
static uint64_t pp_sample(pingpong_t *p, uint64_t idle_us, uint64_t *idle_ns) {
  uint64_t t0;
#ifdef __linux__
  cpu_set_t saved;
  bool pinned = p->waker_cpu >= 0 &&
                !pthread_getaffinity_np(pthread_self(), sizeof saved, &saved) &&
                !pp_pin(pthread_self(), p->waker_cpu);
#endif
  (void)pp_round_trip(p, &t0);
  uint64_t from = atomic_load(&p->woke_ns);
  sleep_us(idle_us);
  uint64_t lat = pp_round_trip(p, &t0);
  *idle_ns += t0 - from;
#ifdef __linux__
  if (pinned)
    pthread_setaffinity_np(pthread_self(), sizeof saved, &saved);
#endif
  return lat;
}

#endif /* BENCH_PINGPONG_H */
