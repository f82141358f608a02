/* SPDX-License-Identifier: MIT */
/* tests/test_cpu.c: the CPU backend: worker counts, one device per NUMA
 * node, and workers bound to distinct cores of this machine. */
#include "config.h"

#include "util.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define MAX_W 64

static cpu_set_t masks[MAX_W];
static pthread_t threads[MAX_W];
static atomic_int nseen;
static pthread_barrier_t barrier;

/* Records the calling worker's affinity. The barrier holds every worker
 * until all have arrived, so each of the N tasks runs on a different one
 * of the N workers. */
static int affinity_kernel(const strata_kernel_call_t *c) {
  (void)c;
  int slot = atomic_fetch_add(&nseen, 1);
  if (slot >= MAX_W)
    return -1;
  threads[slot] = pthread_self();
  pthread_getaffinity_np(pthread_self(), sizeof masks[0], &masks[slot]);
  pthread_barrier_wait(&barrier);
  return 0;
}

static void run_affinity(strata_runtime_t *rt, unsigned workers) {
  const strata_kernel_impl_t impls[] = {{STRATA_IMPL_CPU, affinity_kernel}};
  strata_kernel_desc_t d = {
      .struct_size = sizeof d, .name = "affinity", .impls = impls, .nimpls = 1};
  strata_kernel_t k;
  assert_int_equal(strata_kernel_register(rt, &d, &k), 0);
  memset(masks, 0, sizeof masks);
  atomic_store(&nseen, 0);
  pthread_barrier_init(&barrier, NULL, workers);
  for (unsigned i = 0; i < workers; i++) {
    strata_task_t t;
    assert_int_equal(strata_task_create(rt, k, &t), 0);
    assert_int_equal(strata_task_submit(rt, t), 0);
    assert_int_equal(strata_task_release(rt, t), 0);
  }
  assert_int_equal(strata_runtime_wait_all(rt), 0);
  pthread_barrier_destroy(&barrier);
  assert_int_equal(atomic_load(&nseen), workers);
  for (unsigned w = 0; w < workers; w++)
    for (unsigned v = 0; v < w; v++)
      assert_false(pthread_equal(threads[w], threads[v]));
}

static void test_cpu_workers_bound_to_distinct_cores(void **state) {
  (void)state;
  strata_runtime_t *probe = test_runtime(1, NULL);
  unsigned ncores = strata_runtime_machine(probe)->ncores;
  const strata_core_info_t *cores = strata_runtime_machine(probe)->cores;
  unsigned pus_per_core = cores[0].npus;
  assert_int_equal(strata_runtime_destroy(probe), 0);
  unsigned workers = ncores < 4 ? ncores : 4;

  test_log_t log;
  test_log_init(&log);
  strata_runtime_t *rt = test_runtime(workers, &log);
  run_affinity(rt, workers);
  for (unsigned w = 0; w < workers; w++) {
    /* Bound to one core: its hardware threads, nothing else. */
    assert_int_equal(CPU_COUNT(&masks[w]), pus_per_core);
    for (unsigned v = 0; v < w; v++) {
      cpu_set_t both;
      CPU_AND(&both, &masks[w], &masks[v]);
      assert_int_equal(CPU_COUNT(&both), 0);
    }
  }
  assert_false(test_log_has(&log, "could not be bound"));
  assert_int_equal(strata_runtime_destroy(rt), 0);
}

static void test_cpu_default_is_one_worker_per_core(void **state) {
  (void)state;
  strata_runtime_t *rt = test_runtime(0, NULL);
  const strata_machine_t *m = strata_runtime_machine(rt);
  unsigned total = 0, cores = 0;
  for (int d = 0; d < strata_device_count(rt); d++) {
    strata_device_info_t di = {.struct_size = sizeof di};
    assert_int_equal(strata_device_info(rt, d, &di), 0);
    assert_int_equal(di.device_class, STRATA_CLASS_CPU);
    total += di.workers;
    cores += di.cores;
  }
  assert_int_equal(total, m->ncores);
  assert_int_equal(cores, m->ncores);
  assert_int_equal(strata_device_count(rt), m->nnuma ? (int)m->nnuma : 1);
  assert_int_equal(strata_runtime_destroy(rt), 0);
}

static void test_cpu_more_workers_than_cores(void **state) {
  (void)state;
  test_log_t log;
  test_log_init(&log);
  strata_runtime_t *probe = test_runtime(1, NULL);
  unsigned ncores = strata_runtime_machine(probe)->ncores;
  assert_int_equal(strata_runtime_destroy(probe), 0);
  strata_runtime_t *rt = test_runtime(ncores + 1, &log);
  assert_true(test_log_has(&log, "cores are shared"));
  run_affinity(rt, ncores + 1);
  assert_int_equal(strata_runtime_destroy(rt), 0);
}

static void test_cpu_workers_option(void **state) {
  (void)state;
  test_log_t log;
  test_log_init(&log);
  strata_runtime_opts_t o;
  test_opts(&o, 0, &log);
  o.backend_options = "cpu:workers=1";
  strata_runtime_t *rt;
  assert_int_equal(strata_runtime_create(&o, &rt), 0);
  strata_device_info_t di = {.struct_size = sizeof di};
  assert_int_equal(strata_device_info(rt, 0, &di), 0);
  assert_int_equal(di.workers, 1);
  assert_int_equal(strata_runtime_destroy(rt), 0);

  const char *bad[] = {"cpu:workers=0", "cpu:workers=-3", "cpu:workers=two",
                       "cpu:workers=100000"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    test_log_clear(&log);
    o.backend_options = bad[i];
    assert_int_equal(strata_runtime_create(&o, &rt), STRATA_EBACKEND);
    assert_true(test_log_has(&log, "expected a count"));
    assert_true(test_log_has(&log, "required backend 'cpu'"));
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cpu_workers_bound_to_distinct_cores),
      cmocka_unit_test(test_cpu_default_is_one_worker_per_core),
      cmocka_unit_test(test_cpu_more_workers_than_cores),
      cmocka_unit_test(test_cpu_workers_option),
  };
  return cmocka_run_group_tests_name("cpu", tests, NULL, NULL);
}
