/* SPDX-License-Identifier: MIT */
/* tests/test_api.c: the embedder's task API: strata_task_insert (and that a
 * failed one leaves nothing behind), completion callbacks of tasks and
 * jobs (once, on the callback thread, after the status is visible, free to
 * submit, never when the call that set them failed), the event fd with
 * poll(), numeric attributes, job counters for every ending, and handles
 * of the wrong kind refused by every public call. */
#include "config.h"

#include "dag.h"
#include "util.h"

#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* {=== Kernel and fixture ===} */

typedef struct bump_args {
  int add;  /* added to the first byte of every buffer */
  int fail; /* returned when non-zero */
  int gate; /* wait until the gate opens */
} bump_args_t;

static atomic_int gate_open;

static int bump_kernel(const strata_kernel_call_t *c) {
  const bump_args_t *a = c->args;
  while (a && a->gate && !atomic_load(&gate_open))
    test_sleep_ms(1);
  for (uint32_t i = 0; i < c->nbuffers; i++)
    if (c->modes[i] & STRATA_W)
      ((unsigned char *)c->buffers[i])[0] += (unsigned char)(a ? a->add : 1);
  return a ? a->fail : 0;
}

#define NBUF 8

typedef struct fixture {
  strata_runtime_t *rt;
  test_alloc_t alloc;
  test_log_t log;
  strata_kernel_t bump;
  unsigned char mem[NBUF][64];
  strata_buffer_t buf[NBUF];
  pthread_t main_thread;
} fixture_t;

static fixture_t *fx; /* for the callbacks */

static int setup_n(void **state, unsigned workers) {
  fixture_t *f = calloc(1, sizeof *f);
  test_alloc_init(&f->alloc);
  test_log_init(&f->log);
  strata_runtime_opts_t o;
  test_opts(&o, workers, &f->log);
  o.alloc = test_alloc_fn;
  o.alloc_ud = &f->alloc;
  assert_int_equal(strata_runtime_create(&o, &f->rt), 0);
  const strata_kernel_impl_t impls[] = {{STRATA_IMPL_CPU, bump_kernel}};
  strata_kernel_desc_t d = {
      .struct_size = sizeof d, .name = "bump", .impls = impls, .nimpls = 1};
  assert_int_equal(strata_kernel_register(f->rt, &d, &f->bump), 0);
  for (int i = 0; i < NBUF; i++)
    assert_int_equal(
        strata_buffer_register(f->rt, f->mem[i], sizeof f->mem[i], &f->buf[i]),
        0);
  f->main_thread = pthread_self();
  atomic_store(&gate_open, 0);
  fx = f;
  *state = f;
  return 0;
}

static int setup1(void **state) { return setup_n(state, 1); }
static int setup2(void **state) { return setup_n(state, 2); }

static int teardown(void **state) {
  fixture_t *f = *state;
  atomic_store(&gate_open, 1);
  assert_int_equal(strata_runtime_destroy(f->rt), 0);
  test_alloc_assert_clean(&f->alloc);
  free(f);
  fx = NULL;
  return 0;
}

/* {=== Callback recorders ===} */

#define MAX_CALLS 256

typedef struct calls {
  atomic_int taken;      /* slots taken */
  atomic_int n;          /* calls finished (after everything they record) */
  int status[MAX_CALLS]; /* status given to call i */
  uint64_t handle[MAX_CALLS];
  atomic_int off_main;    /* calls not on the main thread */
  atomic_int wait_agrees; /* strata_task_wait in the callback agreed */
  bool check_wait;        /* call strata_task_wait on the handle */
} calls_t;

static void record_task(strata_runtime_t *rt, strata_task_t task, int status,
                        void *arg) {
  calls_t *c = arg;
  int i = atomic_fetch_add(&c->taken, 1);
  if (i < MAX_CALLS) {
    c->status[i] = status;
    c->handle[i] = task.id;
  }
  if (!pthread_equal(pthread_self(), fx->main_thread))
    atomic_fetch_add(&c->off_main, 1);
  if (c->check_wait) {
    /* The status is visible to waits before the callback runs. */
    strata_task_info_t ti = {.struct_size = sizeof ti};
    if (strata_task_wait(rt, task) == status &&
        strata_task_info(rt, task, &ti) == 0 && ti.state == STRATA_TASK_DONE &&
        ti.status == status)
      atomic_fetch_add(&c->wait_agrees, 1);
  }
  atomic_fetch_add(&c->n, 1);
}

static void record_job(strata_runtime_t *rt, strata_job_t job, int status,
                       void *arg) {
  calls_t *c = arg;
  int i = atomic_fetch_add(&c->taken, 1);
  if (i < MAX_CALLS) {
    c->status[i] = status;
    c->handle[i] = job.id;
  }
  if (!pthread_equal(pthread_self(), fx->main_thread))
    atomic_fetch_add(&c->off_main, 1);
  if (c->check_wait && strata_job_wait(rt, job) == status)
    atomic_fetch_add(&c->wait_agrees, 1);
  atomic_fetch_add(&c->n, 1);
}

/* Wait (up to 10 s, polling) until *n reaches want. */
static void wait_count(atomic_int *n, int want) {
  for (int i = 0; i < 10000 && atomic_load(n) < want; i++)
    test_sleep_ms(1);
  assert_int_equal(atomic_load(n), want);
}

/* A task description on buffer b (RW) with args a. */
static strata_task_desc_t desc_on(fixture_t *f, int b, const bump_args_t *a) {
  static strata_access_desc_t acc[NBUF];
  acc[b] = (strata_access_desc_t){f->buf[b], STRATA_RW};
  return (strata_task_desc_t){.struct_size = sizeof(strata_task_desc_t),
                              .kernel = f->bump,
                              .accesses = &acc[b],
                              .naccesses = 1,
                              .args = a,
                              .args_size = sizeof *a};
}

/* {=== strata_task_insert ===} */

static void test_api_insert_runs(void **state) {
  fixture_t *f = *state;
  strata_job_t job;
  assert_int_equal(strata_job_create(f->rt, &job), 0);
  bump_args_t a = {.add = 5};
  calls_t calls = {0};
  strata_attr_desc_t attrs[] = {
      {.key = "tier", .value = "train"},
      {.key = "flops", .number = 2e9},
      {.key = "batch", .number = 32},
  };
  strata_access_desc_t acc[] = {{f->buf[0], STRATA_RW}, {f->buf[1], STRATA_W}};
  strata_task_desc_t d = {.struct_size = sizeof d,
                          .kernel = f->bump,
                          .accesses = acc,
                          .naccesses = 2,
                          .args = &a,
                          .args_size = sizeof a,
                          .attrs = attrs,
                          .nattrs = 3,
                          .name = "first",
                          .priority = 3,
                          .job = job,
                          .callback = record_task,
                          .callback_arg = &calls};
  strata_task_t t;
  assert_int_equal(strata_task_insert(f->rt, &d, &t), 0);
  assert_int_equal(strata_task_wait(f->rt, t), 0);
  strata_task_info_t ti = {.struct_size = sizeof ti};
  assert_int_equal(strata_task_info(f->rt, t, &ti), 0);
  assert_string_equal(ti.name, "first");
  assert_int_equal(f->mem[0][0], 5);
  assert_int_equal(f->mem[1][0], 5);

  /* A second one depends on the first explicitly and through buffer 0;
   * no handle kept: it runs all the same. */
  strata_task_desc_t d2 = desc_on(f, 0, &a);
  d2.deps = &t;
  d2.ndeps = 1;
  d2.job = job;
  d2.callback = record_task;
  d2.callback_arg = &calls;
  assert_int_equal(strata_task_insert(f->rt, &d2, NULL), 0);
  assert_int_equal(strata_job_wait(f->rt, job), 0);
  wait_count(&calls.n, 2);
  assert_int_equal(calls.status[0], 0);
  assert_int_equal(calls.status[1], 0);
  assert_int_equal(calls.handle[0], t.id);
  assert_int_equal(f->mem[0][0], 10);
  strata_job_info_t ji = {.struct_size = sizeof ji};
  assert_int_equal(strata_job_info(f->rt, job, &ji), 0);
  assert_int_equal(ji.submitted, 2);
  assert_int_equal(ji.succeeded, 2);
  assert_int_equal(strata_task_release(f->rt, t), 0);
  assert_int_equal(strata_job_release(f->rt, job), 0);
}

static void test_api_insert_struct_size(void **state) {
  fixture_t *f = *state;
  bump_args_t a = {.add = 1};
  /* A caller built against a newer header: a bigger struct is fine when
   * what this library does not know is zero, refused otherwise. */
  struct {
    strata_task_desc_t d;
    uint64_t newer[2];
  } big = {.d = desc_on(f, 2, &a)};
  big.d.struct_size = sizeof big;
  assert_int_equal(strata_task_insert(f->rt, &big.d, NULL), 0);
  big.newer[1] = 1;
  test_log_clear(&f->log);
  assert_int_equal(strata_task_insert(f->rt, &big.d, NULL), STRATA_EINVAL);
  assert_true(test_log_has(&f->log, "fields this library does not know"));
  /* The first version's size is the least. */
  strata_task_desc_t d = desc_on(f, 2, &a);
  d.struct_size = STRATA_TASK_DESC_SIZE_V1;
  assert_int_equal(strata_task_insert(f->rt, &d, NULL), 0);
  d.struct_size = STRATA_TASK_DESC_SIZE_V1 - 1;
  assert_int_equal(strata_task_insert(f->rt, &d, NULL), STRATA_EINVAL);
  d.struct_size = 0;
  assert_int_equal(strata_task_insert(f->rt, &d, NULL), STRATA_EINVAL);
  assert_int_equal(strata_runtime_wait_all(f->rt), 0);
  assert_int_equal(f->mem[2][0], 2);
}

/* What a failed insert must not leave behind, checked after many. */
typedef struct leftovers {
  calls_t calls;
  strata_task_t sentinel;
} leftovers_t;

static void expect_fail(fixture_t *f, leftovers_t *l, strata_task_desc_t d,
                        int want) {
  d.callback = record_task;
  d.callback_arg = &l->calls;
  d.watch = 1;
  strata_task_t out = l->sentinel;
  assert_int_equal(strata_task_insert(f->rt, &d, &out), want);
  assert_int_equal(out.id, l->sentinel.id); /* untouched */
}

static void test_api_insert_failures_leave_nothing(void **state) {
  fixture_t *f = *state;
  leftovers_t l = {.sentinel = {0x5a5a5a5a5a5a5a5aULL}};
  int fd;
  assert_int_equal(strata_runtime_event_fd(f->rt, &fd), 0);
  bump_args_t a = {.add = 1};
  strata_task_desc_t ok = desc_on(f, 3, &a);
  strata_job_t job, dead_job, canceled;
  assert_int_equal(strata_job_create(f->rt, &job), 0);
  assert_int_equal(strata_job_create(f->rt, &dead_job), 0);
  assert_int_equal(strata_job_release(f->rt, dead_job), 0);
  assert_int_equal(strata_job_create(f->rt, &canceled), 0);
  assert_int_equal(strata_job_cancel(f->rt, canceled), 0);
  strata_task_t dead_task;
  assert_int_equal(strata_task_create(f->rt, f->bump, &dead_task), 0);
  assert_int_equal(strata_task_release(f->rt, dead_task), 0);

  assert_int_equal(strata_task_insert(NULL, &ok, NULL), STRATA_EINVAL);
  assert_int_equal(strata_task_insert(f->rt, NULL, NULL), STRATA_EINVAL);

  strata_task_desc_t d = ok;
  d.naccesses = 2, d.accesses = NULL;
  expect_fail(f, &l, d, STRATA_EINVAL);
  d = ok, d.nattrs = 1, d.attrs = NULL;
  expect_fail(f, &l, d, STRATA_EINVAL);
  d = ok, d.ndeps = 1, d.deps = NULL;
  expect_fail(f, &l, d, STRATA_EINVAL);
  d = ok, d.args = NULL;
  expect_fail(f, &l, d, STRATA_EINVAL);
  /* Kernels: of the wrong kind, unknown. */
  d = ok, d.kernel = (strata_kernel_t){f->buf[0].id};
  expect_fail(f, &l, d, STRATA_EINVAL);
  d = ok, d.kernel = (strata_kernel_t){42};
  expect_fail(f, &l, d, STRATA_ENOENT);
  /* The second access is bad, after the first took its reference. */
  strata_access_desc_t two[2] = {{f->buf[3], STRATA_RW},
                                 {(strata_buffer_t){job.id}, STRATA_R}};
  d = ok, d.accesses = two, d.naccesses = 2;
  expect_fail(f, &l, d, STRATA_EINVAL);
  two[1] = (strata_access_desc_t){f->buf[4], 7};
  expect_fail(f, &l, d, STRATA_EINVAL);
  /* Attributes. */
  strata_attr_desc_t bad_attrs[][2] = {
      {{.key = "tier", .value = "x"}, {.key = "flops", .value = "-1"}},
      {{.key = "flops", .number = 1}, {.key = "priority", .number = 1.5}},
      {{.key = "flops", .number = 1}, {.key = "name", .number = 3}},
      {{.key = "flops", .number = 1}, {.key = "batch", .number = NAN}},
      {{.key = "flops", .number = 1}, {.key = "", .value = "x"}},
  };
  for (size_t i = 0; i < sizeof bad_attrs / sizeof *bad_attrs; i++) {
    d = ok, d.attrs = bad_attrs[i], d.nattrs = 2;
    expect_fail(f, &l, d, STRATA_EINVAL);
  }
  /* Jobs: of the wrong kind, released, canceled (fails at submit, after
   * every other step succeeded). */
  d = ok, d.job = (strata_job_t){f->bump.id};
  expect_fail(f, &l, d, STRATA_EINVAL);
  d = ok, d.job = dead_job;
  expect_fail(f, &l, d, STRATA_ENOENT);
  d = ok, d.job = canceled;
  expect_fail(f, &l, d, STRATA_ECANCELED);
  /* Dependencies: released, of the wrong kind. */
  strata_task_t deps[2] = {{0}, dead_task};
  assert_int_equal(strata_task_create(f->rt, f->bump, &deps[0]), 0);
  d = ok, d.deps = deps, d.ndeps = 2;
  expect_fail(f, &l, d, STRATA_ENOENT);
  deps[1] = (strata_task_t){f->buf[1].id};
  expect_fail(f, &l, d, STRATA_EINVAL);
  assert_true(test_log_has(&f->log, "nothing submitted"));
  assert_true(test_log_has(&f->log, "accesses[1]"));

  /* Nothing of all that was submitted: the job counted nothing, no
   * callback ran, no event was counted, the buffers are free (a task on
   * them runs at once, and they unregister without waiting), and the
   * unsubmitted dependency's successors were all discarded. */
  assert_int_equal(strata_task_release(f->rt, deps[0]), 0);
  d = ok, d.job = job;
  strata_task_t t;
  assert_int_equal(strata_task_insert(f->rt, &d, &t), 0);
  assert_int_equal(strata_task_wait(f->rt, t), 0);
  assert_int_equal(strata_task_release(f->rt, t), 0);
  assert_int_equal(strata_runtime_wait_all(f->rt), 0);
  strata_job_info_t ji = {.struct_size = sizeof ji};
  assert_int_equal(strata_job_info(f->rt, job, &ji), 0);
  assert_int_equal(ji.submitted, 1);
  assert_int_equal(ji.ended, 1);
  assert_int_equal(strata_job_info(f->rt, canceled, &ji), 0);
  assert_int_equal(ji.submitted, 0);
  test_sleep_ms(20); /* a stray callback would have run by now */
  assert_int_equal(atomic_load(&l.calls.n), 0);
  struct pollfd p = {.fd = fd, .events = POLLIN};
  assert_int_equal(poll(&p, 1, 0), 0);
  uint64_t events = 99;
  assert_int_equal(strata_runtime_event_clear(f->rt, &events), 0);
  assert_int_equal(events, 0);
  assert_int_equal(f->mem[3][0], 1);
  assert_int_equal(f->mem[4][0], 0);
  assert_int_equal(strata_buffer_unregister(f->rt, f->buf[3]), 0);
  assert_int_equal(strata_buffer_unregister(f->rt, f->buf[4]), 0);
  assert_int_equal(strata_job_release(f->rt, job), 0);
  assert_int_equal(strata_job_release(f->rt, canceled), 0);
}

static void test_api_insert_allocation_failures(void **state) {
  fixture_t *f = *state;
  /* Fail each allocation of a rich insert in turn: each failure answers
   * STRATA_ENOMEM and leaves nothing (no callback, nothing leaked at
   * destroy); the first insert that gets all it needs runs once. */
  strata_job_t job;
  assert_int_equal(strata_job_create(f->rt, &job), 0);
  strata_task_t dep;
  assert_int_equal(strata_task_create(f->rt, f->bump, &dep), 0);
  assert_int_equal(strata_task_submit(f->rt, dep), 0);
  unsigned char big_args[200] = {1};
  strata_access_desc_t acc[6];
  for (int i = 0; i < 6; i++)
    acc[i] = (strata_access_desc_t){f->buf[i], i % 2 ? STRATA_R : STRATA_RW};
  strata_attr_desc_t attrs[] = {{.key = "site", .value = "lab"},
                                {.key = "batch", .number = 8},
                                {.key = "tier", .value = "train"}};
  calls_t calls = {0};
  strata_task_desc_t d = {.struct_size = sizeof d,
                          .kernel = f->bump,
                          .accesses = acc,
                          .naccesses = 6,
                          .args = big_args,
                          .args_size = sizeof big_args,
                          .attrs = attrs,
                          .nattrs = 3,
                          .name = "rich",
                          .job = job,
                          .deps = &dep,
                          .ndeps = 1,
                          .callback = record_task,
                          .callback_arg = &calls,
                          .watch = 1};
  int rc, failures = 0;
  for (long k = 1; k < 200; k++) {
    f->alloc.fail_after = k;
    strata_task_t out = {77};
    rc = strata_task_insert(f->rt, &d, &out);
    f->alloc.fail_after = -1;
    if (rc == 0) {
      assert_int_not_equal(out.id, 77);
      assert_int_equal(strata_task_release(f->rt, out), 0);
      break;
    }
    assert_int_equal(rc, STRATA_ENOMEM);
    assert_int_equal(out.id, 77);
    failures++;
  }
  assert_int_equal(rc, 0);
  assert_true(failures >= 5); /* it did fail at several steps */
  assert_int_equal(strata_job_wait(f->rt, job), 0);
  wait_count(&calls.n, 1);
  strata_job_info_t ji = {.struct_size = sizeof ji};
  assert_int_equal(strata_job_info(f->rt, job, &ji), 0);
  assert_int_equal(ji.submitted, 1);
  assert_int_equal(strata_task_release(f->rt, dep), 0);
  assert_int_equal(strata_job_release(f->rt, job), 0);
}

/* {=== Task callbacks ===} */

static void test_api_task_callback_each_status(void **state) {
  fixture_t *f = *state;
  calls_t calls = {.check_wait = true};
  strata_job_t job;
  assert_int_equal(strata_job_create(f->rt, &job), 0);
  bump_args_t okay = {.add = 1}, failing = {.fail = 7},
              gated = {.add = 1, .gate = 1};
  strata_task_t t[5];
  /* 0: succeeds; 1: its kernel fails; 2: consumes 1 (EDEPFAILED); 3: in
   * a job canceled while it waits behind gated 4 (ECANCELED). */
  strata_task_desc_t d = desc_on(f, 0, &okay);
  d.callback = record_task, d.callback_arg = &calls;
  assert_int_equal(strata_task_insert(f->rt, &d, &t[0]), 0);
  d = desc_on(f, 1, &failing);
  d.callback = record_task, d.callback_arg = &calls;
  assert_int_equal(strata_task_insert(f->rt, &d, &t[1]), 0);
  d = desc_on(f, 1, &okay);
  d.callback = record_task, d.callback_arg = &calls;
  assert_int_equal(strata_task_insert(f->rt, &d, &t[2]), 0);
  d = desc_on(f, 2, &gated);
  assert_int_equal(strata_task_insert(f->rt, &d, &t[4]), 0);
  d = desc_on(f, 2, &okay);
  d.callback = record_task, d.callback_arg = &calls, d.job = job;
  assert_int_equal(strata_task_insert(f->rt, &d, &t[3]), 0);
  assert_int_equal(strata_job_cancel(f->rt, job), 0);
  atomic_store(&gate_open, 1);
  int want[4] = {0, STRATA_EKERNEL, STRATA_EDEPFAILED, STRATA_ECANCELED};
  for (int i = 0; i < 4; i++)
    assert_int_equal(strata_task_wait(f->rt, t[i]), want[i]);
  wait_count(&calls.n, 4);
  test_sleep_ms(10);
  assert_int_equal(atomic_load(&calls.n), 4); /* once each */
  for (int i = 0; i < 4; i++) {
    int j = 0;
    while (j < 4 && calls.handle[j] != t[i].id)
      j++;
    assert_true(j < 4);
    assert_int_equal(calls.status[j], want[i]);
  }
  assert_int_equal(atomic_load(&calls.off_main), 4);
  assert_int_equal(atomic_load(&calls.wait_agrees), 4);
  for (int i = 0; i < 5; i++)
    assert_int_equal(strata_task_release(f->rt, t[i]), 0);
  assert_int_equal(strata_job_release(f->rt, job), 0);
}

/* A continuation: each callback inserts the next task until `left` runs
 * out; every fourth also waits for the task it inserted. */
typedef struct chain {
  atomic_int left, done, errors;
  int buf;
} chain_t;

static void chain_next(strata_runtime_t *rt, strata_task_t task, int status,
                       void *arg) {
  (void)task;
  chain_t *c = arg;
  if (status)
    atomic_fetch_add(&c->errors, 1);
  int left = atomic_fetch_sub(&c->left, 1);
  if (left <= 0) {
    atomic_store(&c->done, 1);
    return;
  }
  static const bump_args_t one = {.add = 1};
  strata_task_desc_t d = desc_on(fx, c->buf, &one);
  d.callback = chain_next;
  d.callback_arg = c;
  strata_task_t t;
  if (strata_task_insert(rt, &d, &t)) {
    atomic_fetch_add(&c->errors, 1);
    atomic_store(&c->done, 1);
    return;
  }
  if (left % 4 == 0 && strata_task_wait(rt, t) != 0)
    atomic_fetch_add(&c->errors, 1);
  if (strata_task_release(rt, t))
    atomic_fetch_add(&c->errors, 1);
}

static void test_api_callback_submits(void **state) {
  fixture_t *f = *state;
  /* One worker, and callbacks that submit and wait: no deadlock. */
  chain_t c = {.buf = 5};
  atomic_store(&c.left, 100);
  bump_args_t one = {.add = 1};
  strata_task_desc_t d = desc_on(f, 5, &one);
  d.callback = chain_next;
  d.callback_arg = &c;
  assert_int_equal(strata_task_insert(f->rt, &d, NULL), 0);
  wait_count(&c.done, 1);
  assert_int_equal(atomic_load(&c.errors), 0);
  assert_int_equal(strata_runtime_wait_all(f->rt), 0);
  assert_int_equal(f->mem[5][0], 101);
}

static void test_api_callback_setter_errors(void **state) {
  fixture_t *f = *state;
  calls_t calls = {0};
  strata_task_t t;
  assert_int_equal(strata_task_create(f->rt, f->bump, &t), 0);
  assert_int_equal(strata_task_set_callback(NULL, t, record_task, &calls),
                   STRATA_EINVAL);
  assert_int_equal(strata_task_set_callback(f->rt, (strata_task_t){f->bump.id},
                                            record_task, &calls),
                   STRATA_EINVAL);
  /* Set, then released without being submitted: never called. */
  assert_int_equal(strata_task_set_callback(f->rt, t, record_task, &calls), 0);
  assert_int_equal(strata_task_watch(f->rt, t), 0);
  assert_int_equal(strata_task_release(f->rt, t), 0);
  /* Set, then cleared: never called. */
  assert_int_equal(strata_task_create(f->rt, f->bump, &t), 0);
  assert_int_equal(strata_task_set_callback(f->rt, t, record_task, &calls), 0);
  assert_int_equal(strata_task_set_callback(f->rt, t, NULL, NULL), 0);
  assert_int_equal(strata_task_submit(f->rt, t), 0);
  /* Too late once submitted: refused, and so never called. */
  assert_int_equal(strata_task_set_callback(f->rt, t, record_task, &calls),
                   STRATA_ESTATE);
  assert_int_equal(strata_task_watch(f->rt, t), STRATA_ESTATE);
  assert_int_equal(strata_task_wait(f->rt, t), 0);
  assert_int_equal(strata_task_release(f->rt, t), 0);
  /* A submission that fails: the callback set before never runs either. */
  strata_job_t job;
  assert_int_equal(strata_job_create(f->rt, &job), 0);
  assert_int_equal(strata_job_cancel(f->rt, job), 0);
  assert_int_equal(strata_task_create(f->rt, f->bump, &t), 0);
  assert_int_equal(strata_task_set_callback(f->rt, t, record_task, &calls), 0);
  assert_int_equal(strata_task_set_job(f->rt, t, job), 0);
  assert_int_equal(strata_task_submit(f->rt, t), STRATA_ECANCELED);
  assert_int_equal(strata_task_release(f->rt, t), 0);
  /* Jobs: fn NULL, wrong kind, released. */
  assert_int_equal(strata_job_set_callback(f->rt, job, NULL, NULL),
                   STRATA_EINVAL);
  assert_int_equal(strata_job_set_callback(f->rt, (strata_job_t){f->buf[0].id},
                                           record_job, &calls),
                   STRATA_EINVAL);
  assert_int_equal(strata_job_release(f->rt, job), 0);
  assert_int_equal(strata_job_set_callback(f->rt, job, record_job, &calls),
                   STRATA_ENOENT);
  assert_int_equal(strata_runtime_wait_all(f->rt), 0);
  test_sleep_ms(20);
  assert_int_equal(atomic_load(&calls.n), 0);
}

/* {=== Job callbacks ===} */

typedef struct rearm {
  calls_t calls;
  atomic_int rearm_rc;
} rearm_t;

static void record_and_rearm(strata_runtime_t *rt, strata_job_t job, int status,
                             void *arg) {
  rearm_t *r = arg;
  bool first = atomic_load(&r->calls.taken) == 0;
  record_job(rt, job, status, &r->calls);
  if (first) /* the next one may be set from inside */
    atomic_store(&r->rearm_rc,
                 strata_job_set_callback(rt, job, record_and_rearm, r));
}

static void test_api_job_callback(void **state) {
  fixture_t *f = *state;
  strata_job_t job;
  assert_int_equal(strata_job_create(f->rt, &job), 0);
  rearm_t r = {.calls = {.check_wait = true}};
  atomic_store(&r.rearm_rc, 1);
  /* Idle now: it runs at once, on the callback thread, never in the call;
   * it sets the next one from inside, which (idle still) runs next. */
  assert_int_equal(strata_job_set_callback(f->rt, job, record_and_rearm, &r),
                   0);
  wait_count(&r.calls.n, 2);
  assert_int_equal(atomic_load(&r.rearm_rc), 0);
  assert_int_equal(r.calls.status[0], 0);
  assert_int_equal(r.calls.status[1], 0);
  test_sleep_ms(10);
  assert_int_equal(atomic_load(&r.calls.n), 2); /* once each */

  /* With work pending: called when the last task ends, with the job's
   * status; one callback at a time. */
  calls_t c = {.check_wait = true};
  bump_args_t gated = {.add = 1, .gate = 1}, failing = {.fail = 1};
  for (int i = 0; i < 4; i++) {
    strata_task_desc_t d = desc_on(f, i, i == 2 ? &failing : &gated);
    d.job = job;
    assert_int_equal(strata_task_insert(f->rt, &d, NULL), 0);
  }
  assert_int_equal(strata_job_set_callback(f->rt, job, record_job, &c), 0);
  assert_int_equal(strata_job_set_callback(f->rt, job, record_job, &c),
                   STRATA_EBUSY);
  test_sleep_ms(10);
  assert_int_equal(atomic_load(&c.n), 0); /* still pending */
  atomic_store(&gate_open, 1);
  wait_count(&c.n, 1);
  assert_int_equal(c.status[0], STRATA_EKERNEL);
  assert_int_equal(c.handle[0], job.id);
  assert_int_equal(atomic_load(&c.off_main), 1);
  assert_int_equal(atomic_load(&c.wait_agrees), 1);
  assert_int_equal(atomic_load(&r.calls.off_main), 2);
  test_sleep_ms(10);
  assert_int_equal(atomic_load(&c.n), 1);
  assert_int_equal(strata_job_release(f->rt, job), 0);

  /* Armed, then released while work is pending: still called. */
  calls_t c2 = {0};
  assert_int_equal(strata_job_create(f->rt, &job), 0);
  atomic_store(&gate_open, 0);
  strata_task_desc_t d = desc_on(f, 6, &gated);
  d.job = job;
  assert_int_equal(strata_task_insert(f->rt, &d, NULL), 0);
  assert_int_equal(strata_job_set_callback(f->rt, job, record_job, &c2), 0);
  assert_int_equal(strata_job_release(f->rt, job), 0);
  atomic_store(&gate_open, 1);
  wait_count(&c2.n, 1);
  assert_int_equal(c2.status[0], 0);
}

/* {=== Destroy and callbacks ===} */

static atomic_int slow_calls;
static atomic_int destroy_rc_in_cb;

static void slow_callback(strata_runtime_t *rt, strata_task_t task, int status,
                          void *arg) {
  (void)task, (void)status, (void)arg;
  test_sleep_ms(2);
  /* Destroy from a callback would wait for itself. */
  atomic_store(&destroy_rc_in_cb, strata_runtime_destroy(rt));
  atomic_fetch_add(&slow_calls, 1);
}

static void test_api_destroy_runs_due_callbacks(void **state) {
  (void)state;
  test_alloc_t alloc;
  test_alloc_init(&alloc);
  strata_runtime_opts_t o;
  test_opts(&o, 2, NULL);
  o.alloc = test_alloc_fn;
  o.alloc_ud = &alloc;
  strata_runtime_t *rt;
  assert_int_equal(strata_runtime_create(&o, &rt), 0);
  /* The CUDA entry makes the simulated cards candidates; they run the CPU
   * code and never call it. */
  const strata_kernel_impl_t impls[] = {{STRATA_IMPL_CPU, bump_kernel},
                                        {STRATA_IMPL_CUDA, bump_kernel}};
  strata_kernel_desc_t kd = {
      .struct_size = sizeof kd, .name = "bump", .impls = impls, .nimpls = 2};
  strata_kernel_t k;
  assert_int_equal(strata_kernel_register(rt, &kd, &k), 0);
  atomic_store(&slow_calls, 0);
  atomic_store(&destroy_rc_in_cb, 0);
  for (int i = 0; i < 20; i++) {
    strata_task_desc_t d = {
        .struct_size = sizeof d, .kernel = k, .callback = slow_callback};
    assert_int_equal(strata_task_insert(rt, &d, NULL), 0);
  }
  int fd;
  assert_int_equal(strata_runtime_event_fd(rt, &fd), 0);
  /* Callbacks still queued: destroy runs them all before it returns, and
   * closes the event fd. */
  assert_int_equal(strata_runtime_destroy(rt), 0);
  assert_int_equal(fcntl(fd, F_GETFD), -1);
  assert_int_equal(atomic_load(&slow_calls), 20);
  assert_int_equal(atomic_load(&destroy_rc_in_cb), STRATA_EBUSY);
  test_alloc_assert_clean(&alloc);
}

/* {=== The event fd ===} */

static bool readable(int fd, int timeout_ms) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  int n = poll(&p, 1, timeout_ms);
  assert_true(n >= 0);
  return n == 1 && (p.revents & POLLIN);
}

static atomic_int cb_done_before_event;

static void mark_callback(strata_runtime_t *rt, strata_task_t task, int status,
                          void *arg) {
  (void)rt, (void)task, (void)status, (void)arg;
  test_sleep_ms(5); /* an early signal would be seen meanwhile */
  atomic_store(&cb_done_before_event, 1);
}

static void test_api_event_fd_poll(void **state) {
  fixture_t *f = *state;
  int fd, fd2;
  assert_int_equal(strata_runtime_event_fd(NULL, &fd), STRATA_EINVAL);
  assert_int_equal(strata_runtime_event_fd(f->rt, NULL), STRATA_EINVAL);
  assert_int_equal(strata_runtime_event_fd(f->rt, &fd), 0);
  assert_int_equal(strata_runtime_event_fd(f->rt, &fd2), 0);
  assert_int_equal(fd, fd2);
  assert_false(readable(fd, 0));

  /* A watched task: readable when it ends, not before. */
  bump_args_t gated = {.add = 1, .gate = 1}, plain = {.add = 1};
  strata_task_desc_t d = desc_on(f, 0, &gated);
  d.watch = 1;
  strata_task_t t;
  assert_int_equal(strata_task_insert(f->rt, &d, &t), 0);
  /* Unwatched work does not wake the loop. */
  d = desc_on(f, 1, &plain);
  strata_task_t u;
  assert_int_equal(strata_task_insert(f->rt, &d, &u), 0);
  assert_int_equal(strata_task_wait(f->rt, u), 0);
  assert_int_equal(strata_task_release(f->rt, u), 0);
  test_sleep_ms(5);
  assert_false(readable(fd, 0));
  atomic_store(&gate_open, 1);
  assert_true(readable(fd, 10000));
  strata_task_info_t ti = {.struct_size = sizeof ti};
  assert_int_equal(strata_task_info(f->rt, t, &ti), 0);
  assert_int_equal(ti.state, STRATA_TASK_DONE);
  uint64_t n;
  assert_true(readable(fd, 0)); /* level: until cleared */
  assert_int_equal(strata_runtime_event_clear(f->rt, &n), 0);
  assert_int_equal(n, 1);
  assert_false(readable(fd, 0));
  assert_int_equal(strata_task_release(f->rt, t), 0);

  /* With a callback: the fd is signalled after it returns. */
  atomic_store(&cb_done_before_event, 0);
  d = desc_on(f, 2, &plain);
  d.watch = 1;
  d.callback = mark_callback;
  assert_int_equal(strata_task_insert(f->rt, &d, NULL), 0);
  assert_true(readable(fd, 10000));
  assert_int_equal(atomic_load(&cb_done_before_event), 1);
  assert_int_equal(strata_runtime_event_clear(f->rt, NULL), 0);

  /* Many watched tasks: the counts add up to one per task. */
  uint64_t total = 0;
  for (int i = 0; i < 40; i++) {
    d = desc_on(f, i % NBUF, &plain);
    d.watch = 1;
    assert_int_equal(strata_task_insert(f->rt, &d, NULL), 0);
  }
  for (int i = 0; i < 10000 && total < 40; i++)
    if (readable(fd, 1)) {
      assert_int_equal(strata_runtime_event_clear(f->rt, &n), 0);
      total += n;
    }
  assert_int_equal(total, 40);
  assert_false(readable(fd, 0));

  /* Jobs: one event when the job next has nothing pending; at once when
   * it has nothing pending now. */
  strata_job_t job;
  assert_int_equal(strata_job_create(f->rt, &job), 0);
  assert_int_equal(strata_job_watch(f->rt, job), 0);
  assert_true(readable(fd, 0));
  assert_int_equal(strata_runtime_event_clear(f->rt, &n), 0);
  assert_int_equal(n, 1);
  atomic_store(&gate_open, 0);
  for (int i = 0; i < 3; i++) {
    d = desc_on(f, i, &gated);
    d.job = job;
    assert_int_equal(strata_task_insert(f->rt, &d, NULL), 0);
  }
  assert_int_equal(strata_job_watch(f->rt, job), 0);
  assert_int_equal(strata_job_watch(f->rt, (strata_job_t){t.id}),
                   STRATA_EINVAL);
  test_sleep_ms(5);
  assert_false(readable(fd, 0));
  atomic_store(&gate_open, 1);
  assert_true(readable(fd, 10000));
  assert_int_equal(strata_job_wait(f->rt, job), 0);
  assert_int_equal(strata_runtime_event_clear(f->rt, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(strata_job_release(f->rt, job), 0);
}

static void test_api_event_before_fd(void **state) {
  fixture_t *f = *state;
  /* Ends watched before anyone asked for the fd make it readable once it
   * is made. */
  bump_args_t plain = {.add = 1};
  strata_task_desc_t d = desc_on(f, 0, &plain);
  d.watch = 1;
  strata_task_t t;
  assert_int_equal(strata_task_insert(f->rt, &d, &t), 0);
  assert_int_equal(strata_task_wait(f->rt, t), 0);
  assert_int_equal(strata_task_release(f->rt, t), 0);
  int fd;
  assert_int_equal(strata_runtime_event_fd(f->rt, &fd), 0);
  assert_true(readable(fd, 0));
  uint64_t n;
  assert_int_equal(strata_runtime_event_clear(f->rt, &n), 0);
  assert_int_equal(n, 1);
  assert_false(readable(fd, 0));
}

/* {=== Numeric attributes ===} */

static void test_api_numeric_attrs(void **state) {
  (void)state;
  char dir[256];
  test_tmpdir(dir, sizeof dir, "api");
  const char *path = test_write_file(
      dir, "numbers.lua",
      "function place(task, m)\n"
      "  if task.kernel ~= 'bump' then return nil end\n"
      "  assert(task.flops == 1.5e9, 'chk flops')\n"
      "  assert(task.priority == 4, 'chk priority')\n"
      "  assert(math.type(task.tags.batch) == 'float', 'chk batch: number')\n"
      "  assert(task.tags.batch == 32, 'chk batch value')\n"
      "  assert(task.tags.site == 'lab', 'chk site: string')\n"
      "  assert(task.job.tags.epoch == 3, 'chk job tag: number')\n"
      "  assert(task.job.tags.owner_id == '7', 'chk job tag: string')\n"
      "  return m.devices[1]\n"
      "end\n");
  test_log_t log;
  test_log_init(&log);
  strata_runtime_opts_t o;
  test_opts(&o, 1, &log);
  o.policy = path;
  strata_runtime_t *rt;
  assert_int_equal(strata_runtime_create(&o, &rt), 0);
  /* The CUDA entry makes the simulated cards candidates; they run the CPU
   * code and never call it. */
  const strata_kernel_impl_t impls[] = {{STRATA_IMPL_CPU, bump_kernel},
                                        {STRATA_IMPL_CUDA, bump_kernel}};
  strata_kernel_desc_t kd = {
      .struct_size = sizeof kd, .name = "bump", .impls = impls, .nimpls = 2};
  strata_kernel_t k;
  assert_int_equal(strata_kernel_register(rt, &kd, &k), 0);
  strata_job_t job;
  assert_int_equal(strata_job_create(rt, &job), 0);
  assert_int_equal(strata_job_set_attr_number(rt, job, "epoch", 3), 0);
  assert_int_equal(strata_job_set_attr(rt, job, "owner_id", "7"), 0);
  assert_int_equal(strata_job_set_attr_number(rt, job, "owner", 1),
                   STRATA_EINVAL);
  assert_int_equal(strata_job_set_attr_number(rt, job, "priority", 2.5),
                   STRATA_EINVAL);
  assert_int_equal(
      strata_job_set_attr_number(rt, (strata_job_t){k.id}, "epoch", 1),
      STRATA_EINVAL);
  strata_task_t t;
  assert_int_equal(strata_task_create(rt, k, &t), 0);
  assert_int_equal(strata_task_set_attr_number(rt, t, "flops", 1.5e9), 0);
  assert_int_equal(strata_task_set_attr_number(rt, t, "priority", 4), 0);
  assert_int_equal(strata_task_set_attr_number(rt, t, "batch", 31), 0);
  assert_int_equal(strata_task_set_attr_number(rt, t, "batch", 32), 0);
  assert_int_equal(strata_task_set_attr(rt, t, "site", "lab"), 0);
  assert_int_equal(strata_task_set_job(rt, t, job), 0);
  /* Refused: negative flops, fractional or huge priority, NaN, infinity,
   * string keys, empty key. Nothing changes. */
  assert_int_equal(strata_task_set_attr_number(rt, t, "flops", -1),
                   STRATA_EINVAL);
  assert_int_equal(strata_task_set_attr_number(rt, t, "priority", 0.5),
                   STRATA_EINVAL);
  assert_int_equal(strata_task_set_attr_number(rt, t, "priority", 1e12),
                   STRATA_EINVAL);
  assert_int_equal(strata_task_set_attr_number(rt, t, "batch", NAN),
                   STRATA_EINVAL);
  assert_int_equal(strata_task_set_attr_number(rt, t, "flops", INFINITY),
                   STRATA_EINVAL);
  assert_int_equal(strata_task_set_attr_number(rt, t, "tier", 1),
                   STRATA_EINVAL);
  assert_int_equal(strata_task_set_attr_number(rt, t, "", 1), STRATA_EINVAL);
  assert_int_equal(strata_task_set_attr_number(rt, t, NULL, 1), STRATA_EINVAL);
  assert_true(test_log_has(&log, "numeric attribute 'tier'"));
  assert_int_equal(strata_task_submit(rt, t), 0);
  assert_int_equal(strata_task_wait(rt, t), 0);
  assert_int_equal(strata_task_set_attr_number(rt, t, "flops", 1),
                   STRATA_ESTATE);
  assert_int_equal(strata_task_release(rt, t), 0);
  /* The policy's asserts all held: none of their messages was logged. */
  const char *msgs[] = {"chk "};
  for (size_t i = 0; i < sizeof msgs / sizeof *msgs; i++)
    assert_false(test_log_has(&log, msgs[i]));
  /* And they do run: the same tag set as a string is seen as one (the
   * policy error is logged, the task placed by default and run). */
  assert_int_equal(strata_task_create(rt, k, &t), 0);
  assert_int_equal(strata_task_set_attr_number(rt, t, "flops", 1.5e9), 0);
  assert_int_equal(strata_task_set_attr_number(rt, t, "priority", 4), 0);
  assert_int_equal(strata_task_set_attr(rt, t, "batch", "32"), 0);
  assert_int_equal(strata_task_submit(rt, t), 0);
  assert_int_equal(strata_task_wait(rt, t), 0);
  assert_int_equal(strata_task_release(rt, t), 0);
  assert_true(test_log_has(&log, "chk batch: number"));
  assert_int_equal(strata_job_release(rt, job), 0);
  assert_int_equal(strata_runtime_destroy(rt), 0);
  test_tmpdir_remove(dir);
}

/* {=== Job counters ===} */

/* The first version of strata_job_info_t, as compiled callers have it. */
typedef struct job_info_v1 {
  size_t struct_size;
  uint64_t submitted, pending, succeeded, failed, dep_failed, canceled;
  int canceled_flag;
  int status;
  strata_task_t first_failed;
  char first_failed_name[64];
} job_info_v1_t;

#define SAME_OFFSET(f)                                                         \
  _Static_assert(offsetof(job_info_v1_t, f) == offsetof(strata_job_info_t, f), \
                 #f " moved")
SAME_OFFSET(submitted);
SAME_OFFSET(pending);
SAME_OFFSET(succeeded);
SAME_OFFSET(failed);
SAME_OFFSET(dep_failed);
SAME_OFFSET(canceled);
SAME_OFFSET(canceled_flag);
SAME_OFFSET(status);
SAME_OFFSET(first_failed);
SAME_OFFSET(first_failed_name);
_Static_assert(sizeof(job_info_v1_t) <= offsetof(strata_job_info_t, ended),
               "new counters are appended");

static void check_sums(const strata_job_info_t *ji) {
  assert_int_equal(ji->pending, 0);
  assert_int_equal(ji->ended, ji->submitted);
  assert_int_equal(ji->ended,
                   ji->succeeded + ji->failed + ji->dep_failed + ji->canceled);
  assert_int_equal(ji->failed, ji->kernel_failed + ji->device_failed +
                                   ji->data_lost + ji->data_failed +
                                   ji->no_memory + ji->other_failed);
}

static void test_api_job_counters_cpu(void **state) {
  fixture_t *f = *state;
  strata_job_t job;
  assert_int_equal(strata_job_create(f->rt, &job), 0);
  bump_args_t okay = {.add = 1}, failing = {.fail = 3},
              gated = {.add = 1, .gate = 1};
  strata_task_desc_t d = desc_on(f, 0, &okay);
  d.job = job;
  assert_int_equal(strata_task_insert(f->rt, &d, NULL), 0); /* succeeded */
  d = desc_on(f, 1, &failing);
  d.job = job;
  assert_int_equal(strata_task_insert(f->rt, &d, NULL), 0); /* kernel */
  d = desc_on(f, 1, &okay);
  d.job = job;
  assert_int_equal(strata_task_insert(f->rt, &d, NULL), 0); /* dep_failed */
  assert_int_equal(strata_job_wait(f->rt, job), STRATA_EKERNEL);
  d = desc_on(f, 2, &gated);
  assert_int_equal(strata_task_insert(f->rt, &d, NULL), 0);
  d = desc_on(f, 2, &okay);
  d.job = job;
  assert_int_equal(strata_task_insert(f->rt, &d, NULL), 0); /* canceled */
  assert_int_equal(strata_job_cancel(f->rt, job), 0);
  atomic_store(&gate_open, 1);
  assert_int_equal(strata_job_wait(f->rt, job), STRATA_EKERNEL);
  strata_job_info_t ji = {.struct_size = sizeof ji};
  assert_int_equal(strata_job_info(f->rt, job, &ji), 0);
  assert_int_equal(ji.submitted, 4);
  assert_int_equal(ji.succeeded, 1);
  assert_int_equal(ji.failed, 1);
  assert_int_equal(ji.kernel_failed, 1);
  assert_int_equal(ji.dep_failed, 1);
  assert_int_equal(ji.canceled, 1);
  check_sums(&ji);
  /* A caller of the first version gets its fields, nothing beyond. */
  struct {
    job_info_v1_t v1;
    unsigned char guard[64];
  } old;
  memset(&old, 0x5a, sizeof old);
  old.v1.struct_size = sizeof old.v1;
  assert_int_equal(strata_job_info(f->rt, job, (strata_job_info_t *)&old), 0);
  assert_int_equal(old.v1.struct_size, sizeof old.v1);
  assert_int_equal(old.v1.failed, 1);
  assert_int_equal(old.v1.canceled, 1);
  for (size_t i = 0; i < sizeof old.guard; i++)
    assert_int_equal(old.guard[i], 0x5a);
  assert_int_equal(strata_job_release(f->rt, job), 0);
}

#define SIM_DEV(cls, nm, mem, extra) TEST_SIM_DEV(cls, nm, mem, extra)

static void test_api_job_counters_device_and_data(void **state) {
  (void)state;
  /* Two cards; the HBM one dies at its second task. The first task wrote
   * buffer a there (its only copy): its reader ends STRATA_ELOST. Then the
   * GDDR card dies too, with work queued that nothing else can run:
   * STRATA_EDEVICE. */
  char dir[256];
  test_tmpdir(dir, sizeof dir, "api-sim");
  const char *path = test_write_file(
      dir, "pair.lua",
      "return { devices = {\n" SIM_DEV("hbm", "H", "64 * KiB",
                                       "faults = { die_after = 1 },")
          SIM_DEV("gddr", "G", "64 * KiB", "faults = { die_after = 2 },") "} "
                                                                          "}"
                                                                          "\n");
  test_sim_rt_t m;
  test_sim_start(&m, "sim", path, 0);
  strata_kernel_t k = test_register_cpu(m.rt, "bump", bump_kernel);
  int h = test_device_of(m.rt, STRATA_CLASS_HBM);
  int g = test_device_of(m.rt, STRATA_CLASS_GDDR);
  assert_true(h >= 0 && g >= 0);
  static unsigned char a[1024], b[1024], c[6][1024];
  strata_buffer_t ba, bb, bc[6];
  assert_int_equal(strata_buffer_register(m.rt, a, sizeof a, &ba), 0);
  assert_int_equal(strata_buffer_register(m.rt, b, sizeof b, &bb), 0);
  for (int i = 0; i < 6; i++)
    assert_int_equal(strata_buffer_register(m.rt, c[i], sizeof c[i], &bc[i]),
                     0);
  strata_job_t job;
  assert_int_equal(strata_job_create(m.rt, &job), 0);
  bump_args_t one = {.add = 1};
  /* Write a on the HBM card (least loaded, first on a tie). */
  strata_access_desc_t wa = {ba, STRATA_W};
  strata_task_desc_t d = {.struct_size = sizeof d,
                          .kernel = k,
                          .accesses = &wa,
                          .naccesses = 1,
                          .args = &one,
                          .args_size = sizeof one,
                          .job = job};
  strata_task_t t;
  assert_int_equal(strata_task_insert(m.rt, &d, &t), 0);
  assert_int_equal(strata_task_wait(m.rt, t), 0);
  /* Until its end is counted, H looks loaded to the placement. */
  assert_int_equal(strata_runtime_wait_all(m.rt), 0);
  strata_task_info_t ti = {.struct_size = sizeof ti};
  assert_int_equal(strata_task_info(m.rt, t, &ti), 0);
  assert_int_equal(ti.device, h);
  assert_int_equal(strata_task_release(m.rt, t), 0);
  /* Its reader: the card dies running it, it moves to G and finds a
   * lost. */
  strata_access_desc_t rd[2] = {{bb, STRATA_RW}, {ba, STRATA_R}};
  d.accesses = rd, d.naccesses = 2;
  assert_int_equal(strata_task_insert(m.rt, &d, &t), 0);
  assert_int_equal(strata_task_wait(m.rt, t), STRATA_ELOST);
  assert_int_equal(strata_task_release(m.rt, t), 0);
  assert_int_equal(test_device_info(m.rt, h).failed, 1);
  /* G dies after two tasks: the rest end STRATA_EDEVICE. Each waits on
   * a gate submitted after them, so that none runs before all are
   * queued. */
  strata_task_t gate;
  assert_int_equal(strata_task_create(m.rt, k, &gate), 0);
  for (int i = 0; i < 6; i++) {
    strata_access_desc_t w = {bc[i], STRATA_W};
    d.accesses = &w, d.naccesses = 1, d.deps = &gate, d.ndeps = 1;
    assert_int_equal(strata_task_insert(m.rt, &d, NULL), 0);
  }
  assert_int_equal(strata_task_submit(m.rt, gate), 0);
  assert_int_equal(strata_job_wait(m.rt, job), STRATA_ELOST);
  assert_int_equal(strata_task_release(m.rt, gate), 0);
  strata_job_info_t ji = {.struct_size = sizeof ji};
  assert_int_equal(strata_job_info(m.rt, job, &ji), 0);
  assert_int_equal(ji.submitted, 8);
  assert_int_equal(ji.data_lost, 1);
  assert_true(ji.device_failed >= 1);
  assert_int_equal(ji.kernel_failed, 0);
  assert_int_equal(ji.failed, ji.data_lost + ji.device_failed);
  check_sums(&ji);
  assert_int_equal(strata_job_release(m.rt, job), 0);
  test_sim_destroy(&m);
  test_tmpdir_remove(dir);
}

/* {=== Handles of the wrong kind ===} */

static void test_api_wrong_kind_handles(void **state) {
  fixture_t *f = *state;
  strata_runtime_t *rt = f->rt;
  strata_job_t job;
  assert_int_equal(strata_job_create(rt, &job), 0);
  strata_task_t task;
  assert_int_equal(strata_task_create(rt, f->bump, &task), 0);
  /* Each kind's handle, given as each other kind. */
  strata_task_t as_task[] = {{f->buf[0].id}, {job.id}, {f->bump.id}};
  strata_job_t as_job[] = {{f->buf[0].id}, {task.id}, {f->bump.id}};
  strata_buffer_t as_buf[] = {{task.id}, {job.id}, {f->bump.id}};
  strata_kernel_t as_kernel[] = {{task.id}, {job.id}, {f->buf[0].id}};
  const int E = STRATA_EINVAL;
  void *p;
  size_t sz;
  for (int i = 0; i < 3; i++) {
    strata_task_t wt = as_task[i];
    strata_job_t wj = as_job[i];
    strata_buffer_t wb = as_buf[i];
    strata_kernel_t wk = as_kernel[i];
    strata_task_t out;
    /* Tasks. */
    assert_int_equal(strata_task_create(rt, wk, &out), E);
    assert_int_equal(strata_task_access(rt, wt, f->buf[0], STRATA_R), E);
    assert_int_equal(strata_task_access(rt, task, wb, STRATA_R), E);
    assert_int_equal(strata_task_set_args(rt, wt, "x", 1), E);
    assert_int_equal(strata_task_set_attr(rt, wt, "tier", "x"), E);
    assert_int_equal(strata_task_set_attr_number(rt, wt, "flops", 1), E);
    assert_int_equal(strata_task_set_priority(rt, wt, 1), E);
    assert_int_equal(strata_task_set_job(rt, wt, job), E);
    assert_int_equal(strata_task_set_job(rt, task, wj), E);
    assert_int_equal(strata_task_depend(rt, wt, task), E);
    assert_int_equal(strata_task_depend(rt, task, wt), E);
    assert_int_equal(strata_task_set_callback(rt, wt, record_task, NULL), E);
    assert_int_equal(strata_task_watch(rt, wt), E);
    assert_int_equal(strata_task_submit(rt, wt), E);
    assert_int_equal(strata_task_wait(rt, wt), E);
    strata_task_info_t ti = {.struct_size = sizeof ti};
    assert_int_equal(strata_task_info(rt, wt, &ti), E);
    assert_int_equal(strata_task_set_data(rt, wt, &ti), E);
    assert_null(strata_task_get_data(rt, wt));
    strata_decision_t dec = {.struct_size = sizeof dec};
    assert_int_equal(strata_task_decision(rt, wt, &dec), E);
    assert_int_equal(strata_task_release(rt, wt), E);
    /* Jobs. */
    assert_int_equal(strata_job_set_attr(rt, wj, "tier", "x"), E);
    assert_int_equal(strata_job_set_attr_number(rt, wj, "epoch", 1), E);
    assert_int_equal(strata_job_wait(rt, wj), E);
    assert_int_equal(strata_job_set_callback(rt, wj, record_job, NULL), E);
    assert_int_equal(strata_job_watch(rt, wj), E);
    assert_int_equal(strata_job_cancel(rt, wj), E);
    strata_job_info_t ji = {.struct_size = sizeof ji};
    assert_int_equal(strata_job_info(rt, wj, &ji), E);
    assert_int_equal(strata_job_release(rt, wj), E);
    /* Buffers. */
    assert_int_equal(strata_buffer_get(rt, wb, &p, &sz), E);
    assert_int_equal(strata_buffer_set_tag(rt, wb, "t"), E);
    assert_int_equal(strata_buffer_acquire(rt, wb, STRATA_R, &p), E);
    assert_int_equal(strata_buffer_release(rt, wb), E);
    assert_int_equal(strata_buffer_unregister(rt, wb), E);
  }
  /* Nothing named by those numbers was touched: the buffer is still
   * registered, the job not canceled or released, the task still being
   * described, the kernel still runs. */
  assert_int_equal(strata_buffer_get(rt, f->buf[0], &p, &sz), 0);
  assert_ptr_equal(p, f->mem[0]);
  strata_job_info_t ji = {.struct_size = sizeof ji};
  assert_int_equal(strata_job_info(rt, job, &ji), 0);
  assert_int_equal(ji.canceled_flag, 0);
  strata_task_info_t ti = {.struct_size = sizeof ti};
  assert_int_equal(strata_task_info(rt, task, &ti), 0);
  assert_int_equal(ti.state, STRATA_TASK_CREATED);
  assert_int_equal(strata_task_access(rt, task, f->buf[0], STRATA_RW), 0);
  assert_int_equal(strata_task_set_job(rt, task, job), 0);
  assert_int_equal(strata_task_submit(rt, task), 0);
  assert_int_equal(strata_job_wait(rt, job), 0);
  assert_int_equal(f->mem[0][0], 1);
  /* Released handles still answer STRATA_ENOENT, forged numbers too. */
  assert_int_equal(strata_task_release(rt, task), 0);
  assert_int_equal(strata_task_release(rt, task), STRATA_ENOENT);
  assert_int_equal(strata_job_release(rt, job), 0);
  assert_int_equal(strata_job_wait(rt, job), STRATA_ENOENT);
  assert_int_equal(strata_job_wait(rt, (strata_job_t){12345}), STRATA_ENOENT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_api_insert_runs, setup2, teardown),
      cmocka_unit_test_setup_teardown(test_api_insert_struct_size, setup2,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_api_insert_failures_leave_nothing,
                                      setup2, teardown),
      cmocka_unit_test_setup_teardown(test_api_insert_allocation_failures,
                                      setup2, teardown),
      cmocka_unit_test_setup_teardown(test_api_task_callback_each_status,
                                      setup2, teardown),
      cmocka_unit_test_setup_teardown(test_api_callback_submits, setup1,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_api_callback_setter_errors, setup2,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_api_job_callback, setup2, teardown),
      cmocka_unit_test(test_api_destroy_runs_due_callbacks),
      cmocka_unit_test_setup_teardown(test_api_event_fd_poll, setup2, teardown),
      cmocka_unit_test_setup_teardown(test_api_event_before_fd, setup2,
                                      teardown),
      cmocka_unit_test(test_api_numeric_attrs),
      cmocka_unit_test_setup_teardown(test_api_job_counters_cpu, setup2,
                                      teardown),
      cmocka_unit_test(test_api_job_counters_device_and_data),
      cmocka_unit_test_setup_teardown(test_api_wrong_kind_handles, setup2,
                                      teardown),
  };
  return cmocka_run_group_tests_name("api", tests, NULL, NULL);
}
