/* SPDX-License-Identifier: MIT */
/* tests/test_data.c: buffer registration (bad ranges, overlaps), stale
 * handles, and unregistration that waits for a buffer's tasks. */
#include "config.h"

#include "util.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef struct fixture {
  strata_runtime_t *rt;
  test_log_t log;
  strata_kernel_t slow_inc;
} fixture_t;

static atomic_int gate_open;

/* Adds 1 to the first byte of each buffer, after the gate opens. */
static int slow_inc(const strata_kernel_call_t *c) {
  while (!atomic_load(&gate_open))
    test_sleep_ms(1);
  for (uint32_t i = 0; i < c->nbuffers; i++)
    ((unsigned char *)c->buffers[i])[0]++;
  return 0;
}

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  test_log_init(&f->log);
  f->rt = test_runtime(2, &f->log);
  const strata_kernel_impl_t impls[] = {{STRATA_IMPL_CPU, slow_inc}};
  strata_kernel_desc_t d = {
      .struct_size = sizeof d, .name = "slow-inc", .impls = impls, .nimpls = 1};
  assert_int_equal(strata_kernel_register(f->rt, &d, &f->slow_inc), 0);
  atomic_store(&gate_open, 1);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  atomic_store(&gate_open, 1);
  assert_int_equal(strata_runtime_destroy(f->rt), 0);
  free(f);
  return 0;
}

static void test_data_register_and_get(void **state) {
  fixture_t *f = *state;
  char mem[100];
  strata_buffer_t b;
  assert_int_equal(strata_buffer_register(f->rt, mem, sizeof mem, &b), 0);
  assert_int_not_equal(b.id, 0);
  void *p;
  size_t n;
  assert_int_equal(strata_buffer_get(f->rt, b, &p, &n), 0);
  assert_ptr_equal(p, mem);
  assert_int_equal(n, sizeof mem);
  assert_int_equal(strata_buffer_unregister(f->rt, b), 0);
}

static void test_data_bad_ranges(void **state) {
  fixture_t *f = *state;
  char mem[64];
  strata_buffer_t b;
  assert_int_equal(strata_buffer_register(f->rt, mem, 0, &b), STRATA_EINVAL);
  assert_true(test_log_has(&f->log, "zero size"));
  assert_int_equal(strata_buffer_register(f->rt, NULL, 8, &b), STRATA_EINVAL);
  assert_true(test_log_has(&f->log, "NULL address"));
  assert_int_equal(
      strata_buffer_register(f->rt, (void *)(UINTPTR_MAX - 8), 64, &b),
      STRATA_EINVAL);
  assert_int_equal(strata_buffer_register(f->rt, mem, 8, NULL), STRATA_EINVAL);
  assert_int_equal(strata_buffer_register(NULL, mem, 8, &b), STRATA_EINVAL);
}

static void test_data_overlaps_rejected(void **state) {
  fixture_t *f = *state;
  char mem[256];
  strata_buffer_t mid, left, right, b;
  assert_int_equal(strata_buffer_register(f->rt, mem + 64, 64, &mid), 0);
  /* Same range, inside, covering, straddling either end. */
  struct {
    size_t off, len;
  } bad[] = {{64, 64}, {80, 8}, {32, 128}, {60, 8}, {120, 16}, {127, 1}};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_int_equal(
        strata_buffer_register(f->rt, mem + bad[i].off, bad[i].len, &b),
        STRATA_EOVERLAP);
  assert_true(test_log_has(&f->log, "overlaps buffer"));
  /* Touching ranges are fine. */
  assert_int_equal(strata_buffer_register(f->rt, mem, 64, &left), 0);
  assert_int_equal(strata_buffer_register(f->rt, mem + 128, 128, &right), 0);
  assert_int_equal(strata_buffer_unregister(f->rt, mid), 0);
  /* Once unregistered, the range is free again. */
  assert_int_equal(strata_buffer_register(f->rt, mem + 80, 8, &b), 0);
  assert_int_equal(strata_buffer_unregister(f->rt, b), 0);
  assert_int_equal(strata_buffer_unregister(f->rt, left), 0);
  assert_int_equal(strata_buffer_unregister(f->rt, right), 0);
}

static void test_data_many_ranges_shuffled(void **state) {
  fixture_t *f = *state;
  enum { N = 3000 };
  char *mem = malloc(N * 16);
  strata_buffer_t *h = calloc(N, sizeof *h);
  int *order = malloc(N * sizeof *order);
  for (int i = 0; i < N; i++)
    order[i] = i;
  srand(7);
  for (int i = N - 1; i > 0; i--) {
    int j = rand() % (i + 1), t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  for (int i = 0; i < N; i++)
    assert_int_equal(
        strata_buffer_register(f->rt, mem + order[i] * 16, 16, &h[order[i]]),
        0);
  strata_buffer_t b;
  for (int i = 0; i < N; i += 37)
    assert_int_equal(strata_buffer_register(f->rt, mem + i * 16 + 8, 16, &b),
                     STRATA_EOVERLAP);
  for (int i = 0; i < N; i += 2)
    assert_int_equal(strata_buffer_unregister(f->rt, h[i]), 0);
  for (int i = 0; i < N; i += 2)
    assert_int_equal(strata_buffer_register(f->rt, mem + i * 16, 16, &h[i]), 0);
  for (int i = 0; i < N; i++)
    assert_int_equal(strata_buffer_unregister(f->rt, h[i]), 0);
  free(mem);
  free(h);
  free(order);
}

static void test_data_stale_handles(void **state) {
  fixture_t *f = *state;
  char mem[8];
  strata_buffer_t b;
  assert_int_equal(strata_buffer_register(f->rt, mem, sizeof mem, &b), 0);
  assert_int_equal(strata_buffer_unregister(f->rt, b), 0);
  assert_int_equal(strata_buffer_unregister(f->rt, b), STRATA_ENOENT);
  assert_int_equal(strata_buffer_get(f->rt, b, NULL, NULL), STRATA_ENOENT);
  assert_int_equal(strata_buffer_unregister(f->rt, (strata_buffer_t){0}),
                   STRATA_ENOENT);
  strata_task_t t;
  assert_int_equal(strata_task_create(f->rt, f->slow_inc, &t), 0);
  assert_int_equal(strata_task_access(f->rt, t, b, STRATA_RW), STRATA_ENOENT);
  assert_int_equal(strata_task_release(f->rt, t), 0);
}

static void test_data_unregistered_before_submit(void **state) {
  fixture_t *f = *state;
  char mem[8] = {0};
  strata_buffer_t b;
  assert_int_equal(strata_buffer_register(f->rt, mem, sizeof mem, &b), 0);
  strata_task_t t;
  assert_int_equal(strata_task_create(f->rt, f->slow_inc, &t), 0);
  assert_int_equal(strata_task_access(f->rt, t, b, STRATA_RW), 0);
  assert_int_equal(strata_buffer_unregister(f->rt, b), 0);
  assert_int_equal(strata_task_submit(f->rt, t), STRATA_ENOENT);
  assert_true(test_log_has(&f->log, "was unregistered"));
  assert_int_equal(strata_task_release(f->rt, t), 0);
  assert_int_equal(mem[0], 0);
}

typedef struct unreg_arg {
  strata_runtime_t *rt;
  strata_buffer_t b;
  atomic_int done;
  int rc;
} unreg_arg_t;

static void *unregister_thread(void *p) {
  unreg_arg_t *a = p;
  a->rc = strata_buffer_unregister(a->rt, a->b);
  atomic_store(&a->done, 1);
  return NULL;
}

static void test_data_unregister_waits_for_tasks(void **state) {
  fixture_t *f = *state;
  unsigned char mem[16] = {0};
  unreg_arg_t a = {.rt = f->rt};
  assert_int_equal(strata_buffer_register(f->rt, mem, sizeof mem, &a.b), 0);
  atomic_store(&gate_open, 0);
  for (int i = 0; i < 5; i++) {
    strata_task_t t;
    assert_int_equal(strata_task_create(f->rt, f->slow_inc, &t), 0);
    assert_int_equal(strata_task_access(f->rt, t, a.b, STRATA_RW), 0);
    assert_int_equal(strata_task_submit(f->rt, t), 0);
    assert_int_equal(strata_task_release(f->rt, t), 0);
  }
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, unregister_thread, &a), 0);
  test_sleep_ms(30);
  assert_int_equal(atomic_load(&a.done), 0); /* still waiting */
  /* Meanwhile new work on the buffer is refused. */
  strata_task_t t;
  assert_int_equal(strata_task_create(f->rt, f->slow_inc, &t), 0);
  int rc = strata_task_access(f->rt, t, a.b, STRATA_RW);
  assert_true(rc == STRATA_ENOENT);
  assert_int_equal(strata_task_release(f->rt, t), 0);
  atomic_store(&gate_open, 1);
  pthread_join(th, NULL);
  assert_int_equal(a.rc, 0);
  assert_int_equal(mem[0], 5); /* every task's result is in the memory */
}

/* Stalls until the second gate opens (an unrelated, long task). */
static atomic_int other_gate;
static int stall(const strata_kernel_call_t *c) {
  (void)c;
  while (!atomic_load(&other_gate))
    test_sleep_ms(1);
  return 0;
}

static void test_data_unregister_ignores_other_work(void **state) {
  fixture_t *f = *state;
  const strata_kernel_impl_t impls[] = {{STRATA_IMPL_CPU, stall}};
  strata_kernel_desc_t d = {
      .struct_size = sizeof d, .name = "stall", .impls = impls, .nimpls = 1};
  strata_kernel_t k;
  assert_int_equal(strata_kernel_register(f->rt, &d, &k), 0);
  atomic_store(&other_gate, 0);
  strata_task_t busy;
  assert_int_equal(strata_task_create(f->rt, k, &busy), 0);
  assert_int_equal(strata_task_submit(f->rt, busy), 0);

  unsigned char mem[16] = {0};
  unreg_arg_t a = {.rt = f->rt};
  assert_int_equal(strata_buffer_register(f->rt, mem, sizeof mem, &a.b), 0);
  atomic_store(&gate_open, 0);
  strata_task_t t;
  assert_int_equal(strata_task_create(f->rt, f->slow_inc, &t), 0);
  assert_int_equal(strata_task_access(f->rt, t, a.b, STRATA_RW), 0);
  assert_int_equal(strata_task_submit(f->rt, t), 0);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, unregister_thread, &a), 0);
  test_sleep_ms(20);
  atomic_store(&gate_open, 1);
  /* The unregister returns once its own buffer is idle, while the
   * unrelated task is still running. */
  for (int i = 0; i < 2000 && !atomic_load(&a.done); i++)
    test_sleep_ms(1);
  int returned_while_busy = atomic_load(&a.done);
  atomic_store(&other_gate, 1); /* before asserting: never hang */
  pthread_join(th, NULL);
  assert_int_equal(returned_while_busy, 1);
  assert_int_equal(a.rc, 0);
  assert_int_equal(mem[0], 1);
  assert_int_equal(strata_task_wait(f->rt, busy), 0);
  assert_int_equal(strata_task_release(f->rt, busy), 0);
  assert_int_equal(strata_task_release(f->rt, t), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_data_register_and_get, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_data_bad_ranges, setup, teardown),
      cmocka_unit_test_setup_teardown(test_data_overlaps_rejected, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_data_many_ranges_shuffled, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_data_stale_handles, setup, teardown),
      cmocka_unit_test_setup_teardown(test_data_unregistered_before_submit,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_data_unregister_waits_for_tasks,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_data_unregister_ignores_other_work,
                                      setup, teardown),
  };
  return cmocka_run_group_tests_name("data", tests, NULL, NULL);
}
