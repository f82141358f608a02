/* SPDX-License-Identifier: MIT */
/* tests/test_job.c: jobs (wait, info, cancel) and how failure and
 * cancellation propagate to the tasks that consume their results. */
#include "config.h"

#include "util.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* {=== Kernels ===} */

typedef struct step_args {
  int fail;      /* return this when non-zero */
  int wait_gate; /* block until the gate opens */
  int counter;   /* index into ran[] */
} step_args_t;

static atomic_int gate_open;
static atomic_int ran[64];

static int step_kernel(const strata_kernel_call_t *c) {
  const step_args_t *a = c->args;
  while (a->wait_gate && !atomic_load(&gate_open))
    test_sleep_ms(1);
  atomic_fetch_add(&ran[a->counter], 1);
  for (uint32_t i = 0; i < c->nbuffers; i++)
    ((unsigned char *)c->buffers[i])[0]++;
  return a->fail;
}

/* {=== Fixture ===} */

typedef struct fixture {
  strata_runtime_t *rt;
  strata_kernel_t step;
  unsigned char mem[8][64];
  strata_buffer_t buf[8];
  test_log_t log;
} fixture_t;

static int setup_n(void **state, unsigned workers) {
  fixture_t *f = calloc(1, sizeof *f);
  test_log_init(&f->log);
  f->rt = test_runtime(workers, &f->log);
  const strata_kernel_impl_t impls[] = {{STRATA_IMPL_CPU, step_kernel}};
  strata_kernel_desc_t d = {
      .struct_size = sizeof d, .name = "step", .impls = impls, .nimpls = 1};
  assert_int_equal(strata_kernel_register(f->rt, &d, &f->step), 0);
  for (int i = 0; i < 8; i++)
    assert_int_equal(
        strata_buffer_register(f->rt, f->mem[i], sizeof f->mem[i], &f->buf[i]),
        0);
  atomic_store(&gate_open, 0);
  for (int i = 0; i < 64; i++)
    atomic_store(&ran[i], 0);
  *state = f;
  return 0;
}

static int setup1(void **state) { return setup_n(state, 1); }
static int setup2(void **state) { return setup_n(state, 2); }

static int teardown(void **state) {
  fixture_t *f = *state;
  atomic_store(&gate_open, 1);
  assert_int_equal(strata_runtime_destroy(f->rt), 0);
  free(f);
  return 0;
}

/* A task named `name` in `job` (may be none) recording into ran[counter],
 * with up to two accesses (buf -1: none). */
static strata_task_t task(fixture_t *f, strata_job_t job, const char *name,
                          step_args_t a, int b1, strata_access_mode_t m1,
                          int b2, strata_access_mode_t m2) {
  strata_task_t t;
  assert_int_equal(strata_task_create(f->rt, f->step, &t), 0);
  assert_int_equal(strata_task_set_attr(f->rt, t, "name", name), 0);
  if (b1 >= 0)
    assert_int_equal(strata_task_access(f->rt, t, f->buf[b1], m1), 0);
  if (b2 >= 0)
    assert_int_equal(strata_task_access(f->rt, t, f->buf[b2], m2), 0);
  assert_int_equal(strata_task_set_args(f->rt, t, &a, sizeof a), 0);
  if (job.id)
    assert_int_equal(strata_task_set_job(f->rt, t, job), 0);
  assert_int_equal(strata_task_submit(f->rt, t), 0);
  return t;
}

static strata_job_t new_job(fixture_t *f, const char *name) {
  strata_job_t j;
  assert_int_equal(strata_job_create(f->rt, &j), 0);
  assert_int_equal(strata_job_set_attr(f->rt, j, "name", name), 0);
  return j;
}

static strata_task_info_t info_of(fixture_t *f, strata_task_t t) {
  strata_task_info_t info = {.struct_size = sizeof info};
  assert_int_equal(strata_task_info(f->rt, t, &info), 0);
  return info;
}

static strata_job_info_t job_info(fixture_t *f, strata_job_t j) {
  strata_job_info_t info = {.struct_size = sizeof info};
  assert_int_equal(strata_job_info(f->rt, j, &info), 0);
  return info;
}

/* {=== Tests ===} */

static void test_job_wait_and_counts(void **state) {
  fixture_t *f = *state;
  strata_job_t j = new_job(f, "sweep");
  assert_int_equal(strata_job_wait(f->rt, j), 0); /* empty: at once */
  for (int i = 0; i < 20; i++) {
    strata_task_t t =
        task(f, j, "t", (step_args_t){.counter = 0}, i % 8, STRATA_RW, -1, 0);
    assert_int_equal(strata_task_release(f->rt, t), 0);
  }
  assert_int_equal(strata_job_wait(f->rt, j), 0);
  strata_job_info_t ji = job_info(f, j);
  assert_int_equal(ji.submitted, 20);
  assert_int_equal(ji.succeeded, 20);
  assert_int_equal(ji.pending, 0);
  assert_int_equal(ji.failed + ji.dep_failed + ji.canceled, 0);
  assert_int_equal(ji.status, 0);
  assert_int_equal(atomic_load(&ran[0]), 20);
  assert_int_equal(strata_job_release(f->rt, j), 0);
}

static void test_job_failure_propagates_to_consumers(void **state) {
  fixture_t *f = *state;
  strata_job_t j = new_job(f, "train"), other = new_job(f, "validate");
  /* A fails writing b0; B reads b0 and writes b1; C reads b1: neither runs.
   * D in the same job and E in another job touch other buffers: they run. */
  strata_task_t a = task(f, j, "A", (step_args_t){.fail = -42, .counter = 1}, 0,
                         STRATA_W, -1, 0);
  strata_task_t b =
      task(f, j, "B", (step_args_t){.counter = 2}, 0, STRATA_R, 1, STRATA_W);
  strata_task_t c =
      task(f, j, "C", (step_args_t){.counter = 3}, 1, STRATA_R, -1, 0);
  strata_task_t d =
      task(f, j, "D", (step_args_t){.counter = 4}, 2, STRATA_RW, -1, 0);
  strata_task_t e =
      task(f, other, "E", (step_args_t){.counter = 5}, 3, STRATA_RW, -1, 0);

  assert_int_equal(strata_job_wait(f->rt, j), STRATA_EKERNEL);
  assert_int_equal(strata_job_wait(f->rt, other), 0);
  assert_int_equal(strata_task_wait(f->rt, a), STRATA_EKERNEL);
  assert_int_equal(info_of(f, a).kernel_status, -42);
  for (strata_task_t *t = (strata_task_t[]){b, c, {0}}; t->id; t++) {
    assert_int_equal(strata_task_wait(f->rt, *t), STRATA_EDEPFAILED);
    strata_task_info_t in = info_of(f, *t);
    assert_string_equal(in.cause_name, "A");
    assert_int_equal(in.cause.id, a.id);
  }
  assert_int_equal(strata_task_wait(f->rt, d), 0);
  assert_int_equal(strata_task_wait(f->rt, e), 0);
  assert_int_equal(atomic_load(&ran[2]) + atomic_load(&ran[3]), 0);
  assert_int_equal(atomic_load(&ran[4]) + atomic_load(&ran[5]), 2);

  strata_job_info_t ji = job_info(f, j);
  assert_int_equal(ji.failed, 1);
  assert_int_equal(ji.dep_failed, 2);
  assert_int_equal(ji.succeeded, 1);
  assert_int_equal(ji.status, STRATA_EKERNEL);
  assert_string_equal(ji.first_failed_name, "A");
  assert_int_equal(ji.first_failed.id, a.id);
  assert_true(test_log_has(&f->log, "task 'A' failed"));
  assert_true(test_log_has(&f->log, "returned -42"));

  /* A task submitted later that reads poisoned data does not run either;
   * one that overwrites b0 (W) heals it for the readers after it. */
  strata_task_t g =
      task(f, j, "G", (step_args_t){.counter = 6}, 1, STRATA_R, -1, 0);
  assert_int_equal(strata_task_wait(f->rt, g), STRATA_EDEPFAILED);
  assert_string_equal(info_of(f, g).cause_name, "A");
  strata_task_t h =
      task(f, j, "H", (step_args_t){.counter = 7}, 0, STRATA_W, -1, 0);
  strata_task_t i =
      task(f, j, "I", (step_args_t){.counter = 8}, 0, STRATA_R, -1, 0);
  assert_int_equal(strata_task_wait(f->rt, h), 0);
  assert_int_equal(strata_task_wait(f->rt, i), 0);
  for (strata_task_t *t = (strata_task_t[]){a, b, c, d, e, g, h, i, {0}}; t->id;
       t++)
    assert_int_equal(strata_task_release(f->rt, *t), 0);
  assert_int_equal(strata_job_release(f->rt, j), 0);
  assert_int_equal(strata_job_release(f->rt, other), 0);
}

static void test_job_failure_through_explicit_edge(void **state) {
  fixture_t *f = *state;
  strata_task_t a = task(f, (strata_job_t)STRATA_NONE, "A",
                         (step_args_t){.fail = 1}, -1, 0, -1, 0);
  strata_task_t b;
  assert_int_equal(strata_task_create(f->rt, f->step, &b), 0);
  step_args_t args = {.counter = 9};
  assert_int_equal(strata_task_set_args(f->rt, b, &args, sizeof args), 0);
  assert_int_equal(strata_task_depend(f->rt, b, a), 0);
  assert_int_equal(strata_task_submit(f->rt, b), 0);
  assert_int_equal(strata_task_wait(f->rt, b), STRATA_EDEPFAILED);
  assert_int_equal(atomic_load(&ran[9]), 0);
  assert_int_equal(strata_task_release(f->rt, a), 0);
  assert_int_equal(strata_task_release(f->rt, b), 0);
}

static void test_job_long_failure_chain(void **state) {
  fixture_t *f = *state;
  /* Ending 20000 dependents of a failure must not recurse deeply. */
  strata_job_t j = new_job(f, "chain");
  strata_task_t first =
      task(f, j, "first", (step_args_t){.wait_gate = 1, .fail = 3}, 0,
           STRATA_RW, -1, 0);
  for (int i = 0; i < 20000; i++) {
    strata_task_t t =
        task(f, j, "link", (step_args_t){.counter = 10}, 0, STRATA_RW, -1, 0);
    assert_int_equal(strata_task_release(f->rt, t), 0);
  }
  atomic_store(&gate_open, 1);
  assert_int_equal(strata_job_wait(f->rt, j), STRATA_EKERNEL);
  assert_int_equal(job_info(f, j).dep_failed, 20000);
  assert_int_equal(atomic_load(&ran[10]), 0);
  assert_int_equal(strata_task_release(f->rt, first), 0);
  assert_int_equal(strata_job_release(f->rt, j), 0);
}

static void test_job_cancel(void **state) {
  fixture_t *f = *state; /* one worker */
  strata_job_t j = new_job(f, "doomed"), k = new_job(f, "survivor");
  /* The gate task occupies the only worker; everything else queues. */
  strata_task_t gate = task(
      f, j, "gate", (step_args_t){.wait_gate = 1, .counter = 11}, -1, 0, -1, 0);
  for (int i = 0; i < 10; i++) {
    strata_task_release(f->rt,
                        task(f, j, "queued", (step_args_t){.counter = 12},
                             i % 4, STRATA_RW, -1, 0));
    strata_task_release(f->rt, task(f, k, "other", (step_args_t){.counter = 13},
                                    4 + i % 4, STRATA_RW, -1, 0));
  }
  test_sleep_ms(10);
  assert_int_equal(strata_job_cancel(f->rt, j), 0);
  assert_int_equal(strata_job_cancel(f->rt, j), 0); /* idempotent */
  atomic_store(&gate_open, 1);
  assert_int_equal(strata_job_wait(f->rt, j), STRATA_ECANCELED);
  assert_int_equal(strata_job_wait(f->rt, k), 0);
  assert_int_equal(strata_task_wait(f->rt, gate), 0); /* was running */
  assert_int_equal(atomic_load(&ran[12]), 0);
  assert_int_equal(atomic_load(&ran[13]), 10);
  strata_job_info_t ji = job_info(f, j);
  assert_true(ji.canceled_flag);
  assert_int_equal(ji.canceled, 10);
  assert_int_equal(ji.succeeded, 1);

  /* New submissions to a canceled job fail and leave the task usable. */
  strata_task_t t;
  assert_int_equal(strata_task_create(f->rt, f->step, &t), 0);
  step_args_t a = {.counter = 14};
  assert_int_equal(strata_task_set_args(f->rt, t, &a, sizeof a), 0);
  assert_int_equal(strata_task_set_job(f->rt, t, j), 0);
  assert_int_equal(strata_task_submit(f->rt, t), STRATA_ECANCELED);
  assert_int_equal(strata_task_set_job(f->rt, t, k), 0);
  assert_int_equal(strata_task_submit(f->rt, t), 0);
  assert_int_equal(strata_task_wait(f->rt, t), 0);
  assert_int_equal(strata_task_release(f->rt, t), 0);
  assert_int_equal(strata_task_release(f->rt, gate), 0);
  assert_int_equal(strata_job_release(f->rt, j), 0);
  assert_int_equal(strata_job_release(f->rt, k), 0);
}

static void test_job_cancel_reaches_consumers_elsewhere(void **state) {
  fixture_t *f = *state;
  strata_job_t hold = new_job(f, "hold"), j = new_job(f, "producer"),
               k = new_job(f, "consumer");
  strata_task_t g =
      task(f, hold, "gate", (step_args_t){.wait_gate = 1}, 0, STRATA_W, -1, 0);
  strata_task_t x =
      task(f, j, "X", (step_args_t){.counter = 15}, 0, STRATA_RW, -1, 0);
  strata_task_t y =
      task(f, k, "Y", (step_args_t){.counter = 16}, 0, STRATA_R, -1, 0);
  strata_task_t z =
      task(f, k, "Z", (step_args_t){.counter = 17}, 5, STRATA_RW, -1, 0);
  assert_int_equal(strata_job_cancel(f->rt, j), 0);
  atomic_store(&gate_open, 1);
  assert_int_equal(strata_task_wait(f->rt, x), STRATA_ECANCELED);
  assert_int_equal(strata_task_wait(f->rt, y), STRATA_ECANCELED);
  assert_string_equal(info_of(f, y).cause_name, "X");
  assert_int_equal(strata_task_wait(f->rt, z), 0);
  assert_int_equal(strata_job_wait(f->rt, k), STRATA_ECANCELED);
  assert_int_equal(atomic_load(&ran[15]) + atomic_load(&ran[16]), 0);
  for (strata_task_t *t = (strata_task_t[]){g, x, y, z, {0}}; t->id; t++)
    assert_int_equal(strata_task_release(f->rt, *t), 0);
  strata_job_release(f->rt, hold);
  strata_job_release(f->rt, j);
  strata_job_release(f->rt, k);
}

static void test_job_release_while_running(void **state) {
  fixture_t *f = *state;
  strata_job_t j = new_job(f, "fire-and-forget");
  for (int i = 0; i < 50; i++)
    strata_task_release(f->rt, task(f, j, "t", (step_args_t){.counter = 18},
                                    i % 8, STRATA_RW, -1, 0));
  assert_int_equal(strata_job_release(f->rt, j), 0);
  assert_int_equal(strata_runtime_wait_all(f->rt), 0);
  assert_int_equal(atomic_load(&ran[18]), 50);
}

static void test_job_bad_input(void **state) {
  fixture_t *f = *state;
  strata_job_t j, bogus = {77};
  assert_int_equal(strata_job_create(NULL, &j), STRATA_EINVAL);
  assert_int_equal(strata_job_create(f->rt, NULL), STRATA_EINVAL);
  assert_int_equal(strata_job_create(f->rt, &j), 0);
  assert_int_equal(strata_job_set_attr(f->rt, j, "priority", "high"),
                   STRATA_EINVAL);
  assert_true(test_log_has(&f->log, "'priority'='high' rejected"));
  assert_int_equal(strata_job_set_attr(f->rt, j, NULL, "x"), STRATA_EINVAL);
  assert_int_equal(strata_job_set_attr(f->rt, j, "owner", "ana"), 0);
  assert_int_equal(strata_job_set_attr(f->rt, j, "site", "lab-3"), 0);
  strata_job_info_t ji = {.struct_size = 3};
  assert_int_equal(strata_job_info(f->rt, j, &ji), STRATA_EINVAL);
  assert_int_equal(strata_job_release(f->rt, j), 0);
  assert_int_equal(strata_job_release(f->rt, j), STRATA_ENOENT);
  assert_int_equal(strata_job_wait(f->rt, j), STRATA_ENOENT);
  assert_int_equal(strata_job_cancel(f->rt, bogus), STRATA_ENOENT);
  ji.struct_size = sizeof ji;
  assert_int_equal(strata_job_info(f->rt, j, &ji), STRATA_ENOENT);
  strata_task_t t;
  assert_int_equal(strata_task_create(f->rt, f->step, &t), 0);
  assert_int_equal(strata_task_set_job(f->rt, t, j), STRATA_ENOENT);
  assert_int_equal(strata_task_release(f->rt, t), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_job_wait_and_counts, setup2,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_job_failure_propagates_to_consumers,
                                      setup2, teardown),
      cmocka_unit_test_setup_teardown(test_job_failure_through_explicit_edge,
                                      setup2, teardown),
      cmocka_unit_test_setup_teardown(test_job_long_failure_chain, setup2,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_job_cancel, setup1, teardown),
      cmocka_unit_test_setup_teardown(
          test_job_cancel_reaches_consumers_elsewhere, setup2, teardown),
      cmocka_unit_test_setup_teardown(test_job_release_while_running, setup2,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_job_bad_input, setup2, teardown),
  };
  return cmocka_run_group_tests_name("job", tests, NULL, NULL);
}
