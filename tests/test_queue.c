/* SPDX-License-Identifier: MIT */
/* tests/test_queue.c: the ready queue (white-box): priority then FIFO
 * order, timeouts, stop, no lost node under concurrent pushes and pops, and
 * how idle workers wait: the first polls, then every idle worker parks (a
 * long idle costs no CPU), a push with no parked worker wakes nobody, and
 * a push after a long idle still reaches a parked worker; the polling
 * budget follows the gaps between pushes; with short tasks a push leaves
 * work to the awake workers, and parked ones nap. Built twice: on
 * the futex, and with STRATA_QUEUE_NO_FUTEX on the condition variable.
 * No assertion depends on how fast anything runs: waits are polls with
 * bounds of seconds, CPU bounds are fractions of what polling would take. */
#include "config.h"

#include "util.h"

#include <stdlib.h>

#include "queue.h"

#define SPIN_NS 200000 /* polling budget of the queues under test */
#define LONG_NS (UINT64_C(60) * 1000000000u) /* a minute */

typedef struct fixture {
  test_alloc_t alloc;
  strata__allocator_t a;
  strata__queue_t q;
} fixture_t;

static int setup_spin(void **state, uint64_t spin_ns) {
  fixture_t *f = calloc(1, sizeof *f);
  test_alloc_init(&f->alloc);
  f->a = (strata__allocator_t){test_alloc_fn, &f->alloc};
  assert_int_equal(strata__queue_init(&f->q, spin_ns), 0);
  *state = f;
  return 0;
}

static int setup(void **state) { return setup_spin(state, SPIN_NS); }
static int setup_nospin(void **state) { return setup_spin(state, 0); }

static int teardown(void **state) {
  fixture_t *f = *state;
  strata__queue_destroy(&f->q, &f->a);
  test_alloc_assert_clean(&f->alloc);
  free(f);
  return 0;
}

static strata__queue_stats_t stats(const strata__queue_t *q) {
  strata__queue_stats_t s;
  strata__queue_stats(q, &s);
  return s;
}

/* Poll `cond` for up to ten seconds, then assert it. */
#define ASSERT_EVENTUALLY(cond)                                                \
  do {                                                                         \
    for (int i_ = 0; i_ < 10000 && !(cond); i_++)                              \
      test_sleep_ms(1);                                                        \
    assert_true(cond);                                                         \
  } while (0)

/* {=== Order, timeouts, stop ===} */

static void test_queue_priority_then_fifo(void **state) {
  fixture_t *f = *state;
  strata__qnode_t n[6];
  int prio[6] = {0, 5, 0, -3, 5, 0};
  for (int i = 0; i < 6; i++) {
    assert_int_equal(strata__queue_reserve(&f->q, &f->a, prio[i]), 0);
    n[i].priority = prio[i];
    strata__queue_push(&f->q, &n[i]);
  }
  assert_int_equal(strata__queue_size(&f->q), 6);
  assert_int_equal(strata__queue_top_priority(&f->q), 5);
  int want[6] = {1, 4, 0, 2, 5, 3};
  bool stopped;
  for (int i = 0; i < 6; i++)
    assert_ptr_equal(strata__queue_pop(&f->q, 0, &stopped), &n[want[i]]);
  assert_null(strata__queue_pop(&f->q, 0, &stopped));
  assert_false(stopped);
}

static void test_queue_timeout(void **state) {
  fixture_t *f = *state;
  bool stopped = true;
  assert_null(strata__queue_pop(&f->q, 2000000, &stopped)); /* 2 ms */
  assert_false(stopped);
  /* Past the poll, the timed wait parks and still ends on time. */
  stopped = true;
  assert_null(strata__queue_pop(&f->q, 20000000, &stopped));
  assert_false(stopped);
  assert_int_equal(f->q.parked, 0);
  assert_null(f->q.waiters);
}

static void test_queue_stop_keeps_queued_nodes(void **state) {
  fixture_t *f = *state;
  strata__qnode_t n = {.priority = 0};
  assert_int_equal(strata__queue_reserve(&f->q, &f->a, 0), 0);
  strata__queue_push(&f->q, &n);
  strata__queue_stop(&f->q);
  bool stopped;
  assert_ptr_equal(strata__queue_pop(&f->q, 0, &stopped), &n);
  assert_null(strata__queue_pop(&f->q, -1, &stopped));
  assert_true(stopped);
}

typedef struct popper {
  strata__queue_t *q;
  int64_t timeout_ns;
  strata__qnode_t *got;
  bool stopped;
  _Atomic bool done;
  clockid_t clock; /* its CPU clock */
  _Atomic bool ready;
} popper_t;

static void *pop_thread(void *arg) {
  popper_t *p = arg;
  pthread_getcpuclockid(pthread_self(), &p->clock);
  atomic_store(&p->ready, true);
  p->got = strata__queue_pop(p->q, p->timeout_ns, &p->stopped);
  atomic_store(&p->done, true);
  return NULL;
}

static void start_popper(pthread_t *t, popper_t *p, strata__queue_t *q,
                         int64_t timeout_ns) {
  *p = (popper_t){.q = q, .timeout_ns = timeout_ns};
  atomic_init(&p->done, false);
  atomic_init(&p->ready, false);
  assert_int_equal(pthread_create(t, NULL, pop_thread, p), 0);
  ASSERT_EVENTUALLY(atomic_load(&p->ready));
}

static uint64_t cpu_ns(clockid_t c) {
  struct timespec ts;
  assert_int_equal(clock_gettime(c, &ts), 0);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void test_queue_stop_wakes_parked(void **state) {
  fixture_t *f = *state;
  pthread_t t[2];
  popper_t p[2];
  for (int i = 0; i < 2; i++)
    start_popper(&t[i], &p[i], &f->q, -1);
  ASSERT_EVENTUALLY(atomic_load(&f->q.parked) == 2);
  assert_true(strata__queue_has_idle_worker(&f->q));
  strata__queue_stop(&f->q);
  for (int i = 0; i < 2; i++) {
    pthread_join(t[i], NULL);
    assert_null(p[i].got);
    assert_true(p[i].stopped);
  }
  assert_int_equal(f->q.parked, 0);
}

/* {=== How idle workers wait ===} */

/* The first idle worker polls, then parks; a long idle then costs it no
 * CPU, and a push after it reaches it. */
static void test_queue_idle_worker_parks_and_wakes(void **state) {
  fixture_t *f = *state;
  assert_int_equal(strata__queue_reserve(&f->q, &f->a, 0), 0);
  pthread_t t;
  popper_t p;
  start_popper(&t, &p, &f->q, -1);
  ASSERT_EVENTUALLY(stats(&f->q).parks == 1); /* counted as it blocks */
  assert_int_equal(f->q.parked, 1);
  strata__queue_stats_t s = stats(&f->q);
  assert_int_equal(s.spins, 1);
  assert_int_equal(s.spin_hits, 0);
  assert_int_equal(s.parks, 1);
  /* 50 ms idle: a polling thread would use all of it; allow a fifth. */
  uint64_t c0 = cpu_ns(p.clock);
  test_sleep_ms(50);
  uint64_t used = cpu_ns(p.clock) - c0;
  assert_true(used < 10000000);
  assert_false(atomic_load(&p.done));
  strata__qnode_t n = {.priority = 0};
  strata__queue_push(&f->q, &n);
  pthread_join(t, NULL);
  assert_ptr_equal(p.got, &n);
  assert_false(p.stopped);
  s = stats(&f->q);
  assert_int_equal(s.unparks, 1);
  assert_int_equal(f->q.parked, 0);
}

/* Only one worker polls; the second parks at once. */
static void test_queue_one_poller(void **state) {
  fixture_t *f = *state;
  /* The first polls on. */
  strata__queue_set_spin(&f->q, SPIN_NS, LONG_NS, LONG_NS);
  pthread_t t[2];
  popper_t p[2];
  for (int i = 0; i < 2; i++)
    start_popper(&t[i], &p[i], &f->q, -1);
  ASSERT_EVENTUALLY(atomic_load(&f->q.spinners) == 1 &&
                    stats(&f->q).parks == 1);
  strata__queue_stats_t s = stats(&f->q);
  assert_int_equal(s.spins, 1);
  assert_int_equal(s.parks, 1);
  strata__queue_stop(&f->q); /* ends the poll too */
  for (int i = 0; i < 2; i++) {
    pthread_join(t[i], NULL);
    assert_true(p[i].stopped);
  }
}

/* A push that a polling worker takes unparks nobody: no system call. */
static void test_queue_push_to_poller_wakes_nobody(void **state) {
  fixture_t *f = *state;
  assert_int_equal(strata__queue_reserve(&f->q, &f->a, 0), 0);
  strata__queue_t *q = &f->q;
  /* With no worker at all, a push has nobody to wake. */
  strata__qnode_t n0 = {.priority = 0}, n1 = {.priority = 0};
  strata__queue_push(q, &n0);
  assert_int_equal(stats(q).unparks, 0);
  bool stopped;
  assert_ptr_equal(strata__queue_pop(q, 0, &stopped), &n0);
  /* A worker that polls for a long time: catch it while it polls. */
  strata__queue_set_spin(q, SPIN_NS, LONG_NS, LONG_NS);
  pthread_t t;
  popper_t p;
  start_popper(&t, &p, q, -1);
  ASSERT_EVENTUALLY(atomic_load(&q->spinners) == 1);
  assert_true(strata__queue_has_idle_worker(q));
  strata__queue_push(q, &n1);
  pthread_join(t, NULL);
  assert_ptr_equal(p.got, &n1);
  strata__queue_stats_t s = stats(q);
  assert_int_equal(s.spin_hits, 1);
  assert_int_equal(s.parks, 0);
  assert_int_equal(s.unparks, 0);
}

/* An idle worker of q parks without polling; stop wakes it. */
static void assert_parks_at_once(strata__queue_t *q) {
  pthread_t t;
  popper_t p;
  start_popper(&t, &p, q, -1);
  ASSERT_EVENTUALLY(atomic_load(&q->parked) == 1);
  assert_int_equal(stats(q).spins, 0);
  strata__queue_stop(q);
  pthread_join(t, NULL);
  assert_true(p.stopped);
}

/* Without a polling budget, idle workers park at once. */
static void test_queue_no_spin_parks_at_once(void **state) {
  fixture_t *f = *state;
  assert_parks_at_once(&f->q);
}

/* {=== The polling budget follows the gaps ===} */

#define FLOOR_NS 1000000u /* 1 ms */

/* The pure rule: a fresh queue polls for its whole budget; polls that
 * find work within a microsecond bring it to the floor within a few
 * dozen; gaps of a few hundred microseconds raise it back to the top in a
 * few. */
static void test_queue_budget_rule(void **state) {
  (void)state;
  const uint64_t lo = 20000, max = 500000;
  uint64_t avg = max / STRATA__QUEUE_SPIN_FACTOR; /* as set up */
  assert_int_equal(strata__queue_budget(avg, lo, max), max);
  int n = 0;
  while (strata__queue_budget(avg, lo, max) > lo && n < 64) {
    avg = strata__queue_learn(avg, 500);
    n++;
  }
  assert_true(n < 64);
  assert_int_equal(strata__queue_budget(avg, lo, max), lo);
  for (n = 0; strata__queue_budget(avg, lo, max) < max && n < 8; n++)
    avg = strata__queue_learn(avg, 200000);
  assert_true(n < 8);
  /* Never above the top nor below the floor, at the extremes too. */
  assert_int_equal(strata__queue_budget(UINT64_MAX, lo, max), max);
  assert_int_equal(strata__queue_budget(0, lo, max), lo);
}

/* The runtime's bounds: the budget starts at STRATA__QUEUE_SPIN_START_NS,
 * and pauses of 2 ms (polled in vain at first, then bridged) raise it to
 * the top, 4 ms, in a few; it never passes the 10 ms after which a
 * runtime counts as idle. */
static void test_queue_budget_grows_to_bridge_ms_pauses(void **state) {
  (void)state;
  const uint64_t lo = STRATA__QUEUE_SPIN_FLOOR_NS, max = STRATA__QUEUE_SPIN_NS;
  assert_true(max < UINT64_C(10000000));
  uint64_t avg = STRATA__QUEUE_SPIN_START_NS / STRATA__QUEUE_SPIN_FACTOR;
  assert_int_equal(strata__queue_budget(avg, lo, max),
                   STRATA__QUEUE_SPIN_START_NS);
  int n = 0;
  for (; strata__queue_budget(avg, lo, max) < max && n < 8; n++)
    avg = strata__queue_learn(avg, 2000000);
  assert_true(n < 8);
  assert_int_equal(strata__queue_budget(avg, lo, max), max);
}

/* A queue set up with a start above its top starts at the top; with a top
 * of 0 it never polls. */
static void test_queue_budget_start_within_bounds(void **state) {
  fixture_t *f = *state;
  strata__queue_set_spin(&f->q, FLOOR_NS, LONG_NS, 2 * FLOOR_NS);
  assert_int_equal(strata__queue_budget(atomic_load(&f->q.hit_wait_ns),
                                        f->q.spin_floor_ns, f->q.spin_ns),
                   2 * FLOOR_NS);
  strata__queue_set_spin(&f->q, FLOOR_NS, FLOOR_NS, 0);
  assert_parks_at_once(&f->q);
}

/* Catch a popper while it polls, then push: a poll that found work at
 * once, each time. */
static void quick_hits(fixture_t *f, int rounds) {
  for (int i = 0; i < rounds; i++) {
    pthread_t t;
    popper_t p;
    strata__qnode_t n = {.priority = 0};
    start_popper(&t, &p, &f->q, -1);
    ASSERT_EVENTUALLY(atomic_load(&f->q.spinners) == 1);
    strata__queue_push(&f->q, &n);
    pthread_join(t, NULL);
    assert_ptr_equal(p.got, &n);
  }
}

/* After polls that found work quickly, an idle worker parks after the
 * floor instead of polling for the whole budget (a minute here): the
 * queue learnt that its producer does not pause for long. */
static void test_queue_budget_falls_after_quick_hits(void **state) {
  fixture_t *f = *state;
  assert_int_equal(strata__queue_reserve(&f->q, &f->a, 0), 0);
  strata__queue_set_spin(&f->q, FLOOR_NS, LONG_NS, LONG_NS);
  /* However slow this machine, 64 hits leave the average below a
   * sixteenth of a minute's: each waited for at most a few seconds. */
  quick_hits(f, 64);
  assert_true(atomic_load(&f->q.hit_wait_ns) < LONG_NS / 16 / 8);
  pthread_t t;
  popper_t p;
  start_popper(&t, &p, &f->q, -1);
  ASSERT_EVENTUALLY(stats(&f->q).parks == 1);
  strata__queue_stop(&f->q);
  pthread_join(t, NULL);
  assert_true(p.stopped);
}

/* A worker that polled in vain and is then woken by a push has measured
 * a gap longer than its budget: the average it follows grows. */
static void test_queue_budget_grows_after_a_longer_gap(void **state) {
  fixture_t *f = *state;
  assert_int_equal(strata__queue_reserve(&f->q, &f->a, 0), 0);
  strata__queue_set_spin(&f->q, FLOOR_NS, LONG_NS, LONG_NS);
  quick_hits(f, 64);
  uint64_t before = atomic_load(&f->q.hit_wait_ns);
  pthread_t t;
  popper_t p;
  strata__qnode_t n = {.priority = 0};
  start_popper(&t, &p, &f->q, -1);
  ASSERT_EVENTUALLY(stats(&f->q).parks == 1); /* past its budget */
  strata__queue_push(&f->q, &n);
  pthread_join(t, NULL);
  assert_ptr_equal(p.got, &n);
  /* The gap was at least the budget it polled for, which is at least
   * eight times the average: the average grows whatever it was. */
  assert_true(atomic_load(&f->q.hit_wait_ns) > before);
}

/* {=== Short tasks: a push leaves work to the awake workers ===} */

/* Of a device's two workers one is parked; the other (never started here,
 * so held "by a task" for good) counts as awake. Once the queue knows its
 * tasks are short, a push of one node wakes nobody: it is the awake
 * worker's; and since that worker is held, the parked one finds the node
 * when it next naps awake (about 1 ms). */
static void test_queue_short_tasks_leave_work_to_awake(void **state) {
  fixture_t *f = *state;
  strata__queue_t *q = &f->q;
  assert_int_equal(strata__queue_reserve(q, &f->a, 0), 0);
  strata__queue_set_consumers(q, 2);
  strata__queue_task_ran(q, STRATA__QUEUE_TASK_SAMPLE, 500);
  pthread_t t;
  popper_t p;
  start_popper(&t, &p, q, -1);
  ASSERT_EVENTUALLY(atomic_load(&q->parked) == 1);
  strata__qnode_t n = {.priority = 0};
  strata__queue_push(q, &n);
  pthread_join(t, NULL); /* the nap ends it: no push woke it */
  assert_ptr_equal(p.got, &n);
  assert_int_equal(stats(q).unparks, 0);
}

/* The rule itself (pure): who is woken for what. */
static void test_queue_should_wake_rule(void **state) {
  (void)state;
  const uint64_t shrt = 500, unknown = UINT64_MAX;
  const size_t room =
      STRATA__QUEUE_WAKE_NS / (500 + STRATA__QUEUE_TASK_COST_NS);
  /* Nobody parked, or a poller for the node: no wake-up. */
  assert_false(strata__queue_should_wake(1, 0, 0, 0, 2, unknown));
  assert_false(strata__queue_should_wake(1, 1, 0, 1, 2, unknown));
  assert_true(strata__queue_should_wake(2, 1, 0, 1, 2, unknown));
  /* Tasks of unknown or long duration: as before, wake. */
  assert_true(strata__queue_should_wake(1, 1, 1, 0, 2, unknown));
  assert_true(strata__queue_should_wake(1, 1, 1, 0, 2, 50000));
  /* Short tasks, one awake worker, a napper: a backlog within a wake-up's
   * time is left to the awake one; one node more wakes. */
  assert_false(strata__queue_should_wake(1, 1, 1, 0, 2, shrt));
  assert_false(strata__queue_should_wake(room, 1, 1, 0, 2, shrt));
  assert_true(strata__queue_should_wake(room + 1, 1, 1, 0, 2, shrt));
  /* Two awake workers take twice as much. */
  assert_false(strata__queue_should_wake(2 * room, 1, 1, 0, 3, shrt));
  /* No napper to fall back on, or nobody awake (all parked, or the
   * consumers unknown): wake. */
  assert_true(strata__queue_should_wake(1, 1, 0, 0, 2, shrt));
  assert_true(strata__queue_should_wake(1, 2, 2, 0, 2, shrt));
  assert_true(strata__queue_should_wake(1, 1, 1, 0, 0, shrt));
}

/* {=== Concurrency: every node is taken exactly once ===} */

#define PRODUCERS 3
#define CONSUMERS 3
#define PER_PRODUCER 20000

typedef struct shared {
  strata__queue_t *q;
  strata__qnode_t *nodes;
  _Atomic unsigned char *seen;
  _Atomic int taken;
} shared_t;

static void *producer(void *arg) {
  shared_t *s = ((void **)arg)[0];
  int id = (int)(intptr_t)((void **)arg)[1];
  for (int i = 0; i < PER_PRODUCER; i++) {
    strata__qnode_t *n = &s->nodes[id * PER_PRODUCER + i];
    strata__queue_push(s->q, n);
    if (i % 1000 == 0)
      test_sleep_ms(1); /* pauses, so that consumers park now and then */
  }
  return NULL;
}

static void *consumer(void *arg) {
  shared_t *s = arg;
  for (;;) {
    bool stopped;
    strata__qnode_t *n = strata__queue_pop(s->q, -1, &stopped);
    if (!n) {
      assert_true(stopped);
      return NULL;
    }
    size_t i = (size_t)(n - s->nodes);
    assert_int_equal(atomic_fetch_add(&s->seen[i], 1), 0);
    atomic_fetch_add(&s->taken, 1);
  }
}

static void test_queue_concurrent_no_node_lost(void **state) {
  fixture_t *f = *state;
  enum { N = PRODUCERS * PER_PRODUCER };
  shared_t s = {.q = &f->q};
  s.nodes = calloc(N, sizeof *s.nodes);
  s.seen = calloc(N, sizeof *s.seen);
  atomic_init(&s.taken, 0);
  for (int i = 0; i < N; i++) {
    s.nodes[i].priority = i % 3 - 1;
    atomic_init(&s.seen[i], 0);
  }
  for (int p = -1; p <= 1; p++)
    assert_int_equal(strata__queue_reserve(&f->q, &f->a, p), 0);
  pthread_t prod[PRODUCERS], cons[CONSUMERS];
  void *args[PRODUCERS][2];
  for (int i = 0; i < CONSUMERS; i++)
    assert_int_equal(pthread_create(&cons[i], NULL, consumer, &s), 0);
  for (int i = 0; i < PRODUCERS; i++) {
    args[i][0] = &s;
    args[i][1] = (void *)(intptr_t)i;
    assert_int_equal(pthread_create(&prod[i], NULL, producer, args[i]), 0);
  }
  for (int i = 0; i < PRODUCERS; i++)
    pthread_join(prod[i], NULL);
  /* A lost wake-up would leave nodes queued with every consumer parked. */
  ASSERT_EVENTUALLY(atomic_load(&s.taken) == N);
  strata__queue_stop(&f->q);
  for (int i = 0; i < CONSUMERS; i++)
    pthread_join(cons[i], NULL);
  assert_int_equal(strata__queue_size(&f->q), 0);
  free(s.nodes);
  free((void *)s.seen);
}

/* {=== An idle runtime ===} */

static int stamp_kernel(const strata_kernel_call_t *c) {
  (void)c;
  return 0;
}

/* CPU time of every thread but this one; signed, since the two clocks
 * are read one after the other. */
static int64_t others_cpu_ns(void) {
  int64_t all = (int64_t)cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
  return all - (int64_t)cpu_ns(CLOCK_THREAD_CPUTIME_ID);
}

static void run_one(strata_runtime_t *rt, strata_kernel_t k) {
  strata_task_t t;
  assert_int_equal(strata_task_create(rt, k, &t), 0);
  assert_int_equal(strata_task_submit(rt, t), 0);
  assert_int_equal(strata_task_wait(rt, t), 0);
  assert_int_equal(strata_task_release(rt, t), 0);
}

/* A runtime with two workers, idle for 100 ms after a task, uses far less
 * than polling would (two workers: 200 ms of CPU), and a task submitted
 * after that idle runs. */
static void test_queue_idle_runtime_sleeps(void **state) {
  (void)state;
  strata_runtime_t *rt = test_runtime(2, NULL);
  const strata_kernel_impl_t impls[] = {{STRATA_IMPL_CPU, stamp_kernel}};
  strata_kernel_desc_t d = {.struct_size = sizeof d,
                            .name = "queue.stamp",
                            .impls = impls,
                            .nimpls = 1};
  strata_kernel_t k;
  assert_int_equal(strata_kernel_register(rt, &d, &k), 0);
  run_one(rt, k);
  test_sleep_ms(10); /* past the poll (0.5 ms) */
  int64_t c0 = others_cpu_ns();
  test_sleep_ms(100);
  int64_t used = others_cpu_ns() - c0;
  /* A generous bound: a loaded machine may add its own noise. */
  assert_true(used < 20000000);
  run_one(rt, k);
  assert_int_equal(strata_runtime_destroy(rt), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_queue_priority_then_fifo, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_queue_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_queue_stop_keeps_queued_nodes, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_queue_stop_wakes_parked, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_queue_idle_worker_parks_and_wakes,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_queue_one_poller, setup, teardown),
      cmocka_unit_test_setup_teardown(test_queue_push_to_poller_wakes_nobody,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_queue_no_spin_parks_at_once,
                                      setup_nospin, teardown),
      cmocka_unit_test(test_queue_budget_rule),
      cmocka_unit_test(test_queue_budget_grows_to_bridge_ms_pauses),
      cmocka_unit_test_setup_teardown(test_queue_budget_start_within_bounds,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_queue_budget_falls_after_quick_hits,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_queue_budget_grows_after_a_longer_gap, setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_queue_short_tasks_leave_work_to_awake, setup_nospin, teardown),
      cmocka_unit_test(test_queue_should_wake_rule),
      cmocka_unit_test_setup_teardown(test_queue_concurrent_no_node_lost, setup,
                                      teardown),
      cmocka_unit_test(test_queue_idle_runtime_sleeps),
  };
  return cmocka_run_group_tests_name("queue", tests, NULL, NULL);
}
