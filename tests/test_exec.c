/* SPDX-License-Identifier: MIT */
/* tests/test_exec.c: how works reach backends and come back. Kernel
 * implementations are keyed by what runs them (a device is a candidate
 * only where the kernel has the code it asks for); a backend may hold
 * several works per device, up to its inflight_depth, and complete them
 * out of order from its own threads (tests/plugins/async.c). */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "dag.h"
#include "util.h"

static char tmpdir[256];

/* {=== Runtimes ===} */

typedef struct fx {
  strata_runtime_t *rt;
  test_log_t log;
  test_alloc_t alloc;
  strata_runtime_opts_t o;
  char options[256];
} fx_t;

/* A runtime on the async test backend only, its options after "async:". */
static void async_start(fx_t *f, const char *options) {
  memset(f, 0, sizeof *f);
  test_log_init(&f->log);
  test_alloc_init(&f->alloc);
  test_opts(&f->o, 1, &f->log);
  f->o.backend_path = test_path2(test_env("STRATA_TEST_BACKENDS"),
                                 test_env("STRATA_TEST_PLUGINS"));
  f->o.backends = f->o.required_backends = "async";
  snprintf(f->options, sizeof f->options, "async:%s", options);
  f->o.backend_options = f->options;
  f->o.alloc = test_alloc_fn;
  f->o.alloc_ud = &f->alloc;
  int rc = strata_runtime_create(&f->o, &f->rt);
  if (rc)
    fail_msg("create: %s\n%s", strata_strerror(rc), f->log.text);
}

/* Destroy it (the backend logs what it held at stop) and check for leaks. */
static void fx_destroy(fx_t *f) {
  assert_int_equal(strata_runtime_destroy(f->rt), 0);
  test_alloc_assert_clean(&f->alloc);
}

/* A machine of one simulated H100-like card, in real or modelled time. */
static const char *gpu_machine(const char *time) {
  char name[64], text[1024];
  snprintf(name, sizeof name, "gpu-%s.lua", time);
  snprintf(text, sizeof text, "return { time = '%s', devices = {\n%s} }\n",
           time, TEST_SIM_DEV("hbm", "H100", "1 * GB", "workers = 2"));
  return test_write_file(tmpdir, name, text);
}

/* {=== Kernels ===} */

static _Atomic int order[64];
static atomic_int norder, cpu_calls, cuda_calls;

static void reset_counts(void) {
  atomic_store(&norder, 0);
  atomic_store(&cpu_calls, 0);
  atomic_store(&cuda_calls, 0);
}

/* Notes the task's id (its argument) in the order kernels ran. */
static int note_cpu(const strata_kernel_call_t *c) {
  int i = atomic_fetch_add(&norder, 1);
  if (i < 64)
    atomic_store(&order[i], c->args ? *(const int *)c->args : -1);
  atomic_fetch_add(&cpu_calls, 1);
  return 0;
}

static int note_cuda(const strata_kernel_call_t *c) {
  (void)c;
  atomic_fetch_add(&cuda_calls, 1);
  return 0;
}

static strata_kernel_t kernel(strata_runtime_t *rt, const char *name, bool cpu,
                              bool cuda) {
  strata_kernel_impl_t impls[2];
  uint32_t n = 0;
  if (cpu)
    impls[n++] = (strata_kernel_impl_t){STRATA_IMPL_CPU, note_cpu};
  if (cuda)
    impls[n++] = (strata_kernel_impl_t){STRATA_IMPL_CUDA, note_cuda};
  strata_kernel_desc_t d = {
      .struct_size = sizeof d, .name = name, .impls = impls, .nimpls = n};
  strata_kernel_t k;
  assert_int_equal(strata_kernel_register(rt, &d, &k), STRATA_OK);
  return k;
}

/* Submit a task of k with argument id. @return submit's answer */
static int submit(strata_runtime_t *rt, strata_kernel_t k, int id,
                  strata_task_t *out) {
  assert_int_equal(strata_task_create(rt, k, out), 0);
  assert_int_equal(strata_task_set_args(rt, *out, &id, sizeof id), 0);
  return strata_task_submit(rt, *out);
}

/* {=== Kernel descriptions ===} */

static void test_exec_kernel_desc_refused(void **state) {
  (void)state;
  test_log_t log;
  test_log_init(&log);
  strata_runtime_t *rt = test_runtime(1, &log);
  strata_kernel_t k;
  strata_kernel_impl_t two_cpu[] = {{STRATA_IMPL_CPU, note_cpu},
                                    {STRATA_IMPL_CPU, note_cuda}};
  strata_kernel_desc_t d = {
      .struct_size = sizeof d, .name = "dup", .impls = two_cpu, .nimpls = 2};
  assert_int_equal(strata_kernel_register(rt, &d, &k), STRATA_EINVAL);
  assert_true(test_log_has(&log, "two implementations of kind CPU"));

  strata_kernel_impl_t unknown[] = {{STRATA_IMPL_CPU, note_cpu},
                                    {(strata_impl_kind_t)99, note_cpu}};
  d = (strata_kernel_desc_t){
      .struct_size = sizeof d, .name = "new", .impls = unknown, .nimpls = 2};
  assert_int_equal(strata_kernel_register(rt, &d, &k), STRATA_EINVAL);
  assert_true(test_log_has(&log, "has kind 99, which this runtime does not"));
  unknown[1].kind = (strata_impl_kind_t)-1;
  assert_int_equal(strata_kernel_register(rt, &d, &k), STRATA_EINVAL);
  unknown[1].kind = STRATA_IMPL_COUNT;
  assert_int_equal(strata_kernel_register(rt, &d, &k), STRATA_EINVAL);

  strata_kernel_impl_t nofn[] = {{STRATA_IMPL_CUDA, NULL}};
  d = (strata_kernel_desc_t){
      .struct_size = sizeof d, .name = "nofn", .impls = nofn, .nimpls = 1};
  assert_int_equal(strata_kernel_register(rt, &d, &k), STRATA_EINVAL);
  assert_true(test_log_has(&log, "implementation 0 (CUDA) has no function"));
  d.impls = NULL;
  assert_int_equal(strata_kernel_register(rt, &d, &k), STRATA_EINVAL);
  d.impls = nofn;
  d.nimpls = 0;
  assert_int_equal(strata_kernel_register(rt, &d, &k), STRATA_EINVAL);
  /* Refused descriptions leave no kernel behind: the names are free. */
  assert_int_equal(strata_kernel_find(rt, "dup", &k), STRATA_ENOENT);
  unknown[1].kind = STRATA_IMPL_CUDA;
  d = (strata_kernel_desc_t){
      .struct_size = sizeof d, .name = "new", .impls = unknown, .nimpls = 2};
  assert_int_equal(strata_kernel_register(rt, &d, &k), STRATA_OK);
  assert_int_equal(strata_runtime_destroy(rt), 0);
}

/* {=== Candidacy by kind of code ===} */

/* CPU code alone does not make a simulated GPU a candidate: a real card
 * could not run it. With CUDA code too, the card takes the task and runs
 * the CPU code as its stand-in, never the CUDA entry. */
static void test_exec_sim_gpu_needs_cuda_runs_cpu(void **state) {
  (void)state;
  test_sim_rt_t m;
  test_sim_start(&m, "sim", gpu_machine("modelled"), 0);
  reset_counts();
  strata_kernel_t cpu_only = kernel(m.rt, "cpu-only", true, false);
  strata_kernel_t both = kernel(m.rt, "both", true, true);
  strata_kernel_t cuda_only = kernel(m.rt, "cuda-only", false, true);
  strata_task_t t;
  assert_int_equal(submit(m.rt, cpu_only, 0, &t), STRATA_ENODEV);
  assert_true(test_log_has(&m.log, "no working device has an implementation"));
  assert_int_equal(strata_task_release(m.rt, t), 0);
  /* Without CPU code the simulator has nothing to run in its place. */
  assert_int_equal(submit(m.rt, cuda_only, 1, &t), STRATA_ENODEV);
  assert_int_equal(strata_task_release(m.rt, t), 0);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(submit(m.rt, both, i, &t), 0);
    assert_int_equal(strata_task_wait(m.rt, t), 0);
    strata_task_info_t ti = {.struct_size = sizeof ti};
    assert_int_equal(strata_task_info(m.rt, t, &ti), 0);
    assert_int_equal(test_device_info(m.rt, ti.device).device_class,
                     STRATA_CLASS_HBM);
    assert_int_equal(strata_task_release(m.rt, t), 0);
  }
  assert_int_equal(atomic_load(&cpu_calls), 4);
  assert_int_equal(atomic_load(&cuda_calls), 0);
  test_sim_destroy(&m);
}

/* With the host's CPUs next to the simulated card, CPU-only work stays on
 * the CPUs however busy they are. */
static void test_exec_cpu_only_kernel_stays_off_sim_gpu(void **state) {
  (void)state;
  test_sim_rt_t m;
  test_sim_start(&m, "cpu,sim", gpu_machine("modelled"), 1);
  reset_counts();
  strata_kernel_t cpu_only = kernel(m.rt, "cpu-only", true, false);
  int gpu = test_device_of(m.rt, STRATA_CLASS_HBM);
  assert_true(gpu >= 0);
  strata_task_t ts[16];
  for (int i = 0; i < 16; i++)
    assert_int_equal(submit(m.rt, cpu_only, i, &ts[i]), 0);
  assert_int_equal(strata_runtime_wait_all(m.rt), 0);
  for (int i = 0; i < 16; i++) {
    strata_task_info_t ti = {.struct_size = sizeof ti};
    assert_int_equal(strata_task_info(m.rt, ts[i], &ti), 0);
    assert_int_not_equal(ti.device, gpu);
    assert_int_equal(strata_task_release(m.rt, ts[i]), 0);
  }
  strata_device_stats_t st = {.struct_size = sizeof st};
  assert_int_equal(strata_device_stats(m.rt, gpu, &st), 0);
  assert_int_equal(st.tasks_run, 0);
  test_sim_destroy(&m);
}

/* CUDA code alone never runs on the CPU; a CUDA card (the async backend's
 * hbm devices) calls the CUDA entry. */
static void test_exec_cuda_code_on_cuda_devices_only(void **state) {
  (void)state;
  strata_runtime_t *rt = test_runtime(1, NULL);
  reset_counts();
  strata_task_t t;
  assert_int_equal(submit(rt, kernel(rt, "cuda-only", false, true), 0, &t),
                   STRATA_ENODEV);
  assert_int_equal(strata_task_release(rt, t), 0);
  assert_int_equal(strata_runtime_destroy(rt), 0);

  fx_t f;
  async_start(&f, "devices=1,class=hbm,depth=2,wait_ms=1");
  assert_int_equal(submit(f.rt, kernel(f.rt, "both", true, true), 0, &t), 0);
  assert_int_equal(strata_task_wait(f.rt, t), 0);
  assert_int_equal(strata_task_release(f.rt, t), 0);
  assert_int_equal(submit(f.rt, kernel(f.rt, "cpu-only", true, false), 1, &t),
                   STRATA_ENODEV);
  assert_int_equal(strata_task_release(f.rt, t), 0);
  assert_int_equal(atomic_load(&cuda_calls), 1);
  assert_int_equal(atomic_load(&cpu_calls), 0);
  fx_destroy(&f);
}

/* {=== Several works in flight, completed out of order ===} */

/* The backend takes four works before running any, then runs and
 * completes them newest first, on its own thread. */
static void test_exec_out_of_order_completion(void **state) {
  (void)state;
  fx_t f;
  async_start(&f, "devices=1,depth=4,batch=4,wait_ms=-1");
  reset_counts();
  strata_kernel_t k = kernel(f.rt, "note", true, false);
  strata_task_t ts[8];
  for (int i = 0; i < 8; i++)
    assert_int_equal(submit(f.rt, k, i, &ts[i]), 0);
  assert_int_equal(strata_runtime_wait_all(f.rt), 0);
  for (int i = 0; i < 8; i++) {
    assert_int_equal(strata_task_wait(f.rt, ts[i]), 0);
    assert_int_equal(strata_task_release(f.rt, ts[i]), 0);
  }
  static const int want[8] = {3, 2, 1, 0, 7, 6, 5, 4};
  assert_int_equal(atomic_load(&norder), 8);
  for (int i = 0; i < 8; i++)
    assert_int_equal(atomic_load(&order[i]), want[i]);
  strata_device_stats_t st = {.struct_size = sizeof st};
  assert_int_equal(strata_device_stats(f.rt, 0, &st), 0);
  assert_int_equal(st.tasks_run, 8);
  assert_int_equal(st.tasks_failed, 0);
  fx_destroy(&f);
  assert_true(test_log_has(&f.log, "async0: 8 works, at most 4 in flight "
                                   "(depth 4)"));
}

/* The depth bounds what a device holds: a backend that asks for more
 * waits in next() (here until its timeout, then runs what it has). */
static void depth_run(const char *options, const char *want, bool exact) {
  fx_t f;
  async_start(&f, options);
  reset_counts();
  strata_kernel_t k = kernel(f.rt, "note", true, false);
  strata_task_t ts[40];
  for (int i = 0; i < 40; i++)
    assert_int_equal(submit(f.rt, k, i, &ts[i]), 0);
  assert_int_equal(strata_runtime_wait_all(f.rt), 0);
  for (int i = 0; i < 40; i++)
    assert_int_equal(strata_task_release(f.rt, ts[i]), 0);
  fx_destroy(&f);
  assert_int_equal(atomic_load(&cpu_calls), 40);
  assert_false(test_log_has(&f.log, "held more works than its depth"));
  if (exact && !test_log_has(&f.log, want))
    fail_msg("expected '%s' in:\n%s", want, f.log.text);
}

static void test_exec_depth_bound(void **state) {
  (void)state;
  /* One worker asking for eight at a time gets three, then waits. */
  depth_run("devices=1,depth=3,batch=8,wait_ms=2",
            "async0: 40 works, at most 3 in flight (depth 3)", true);
  /* Places of the workers' own and shared ones together... */
  depth_run("devices=1,workers=2,depth=5,batch=8,wait_ms=2", NULL, false);
  /* ... and a depth below the worker count: all places shared. */
  depth_run("devices=2,workers=4,depth=2,batch=4,wait_ms=2", NULL, false);
}

/* Dependencies hold whatever order works end in, and successors are
 * released right: a random DAG gives the sequential result. A hang (a
 * worker never woken) fails the test after a minute. */
static void dag_on(const char *options) {
  fx_t f;
  async_start(&f, options);
  test_watchdog(&f.log, 60);
  test_dag_t g;
  test_dag_build(&g, 12, 300, 4, 4, 7);
  test_dag_run_sequential(&g);
  test_dag_run_and_check(
      &g, f.rt, test_register_cpu(f.rt, "mix", test_mix_kernel), false);
  test_dag_free(&g);
  fx_destroy(&f);
  test_watchdog_off();
  assert_false(test_log_has(&f.log, "held more works than its depth"));
}

static void test_exec_dag_out_of_order(void **state) {
  (void)state;
  dag_on("devices=2,workers=2,depth=6,batch=6,wait_ms=1");
  /* Works of one worker completed by two threads at once. */
  dag_on("devices=1,workers=2,depth=8,batch=8,wait_ms=1,mixed=1");
}

/* A worker index served by one thread, then another, each completing
 * works of the index it served before (tests/plugins/async.c, relay=1):
 * the thread that completes is not the worker's own any more, and the
 * worker's thread, asleep in next() at a full depth, must be woken when
 * the place comes back. */
static void test_exec_worker_changes_threads(void **state) {
  (void)state;
  dag_on("devices=1,workers=1,depth=1,relay=1");
}

/* Completions on the backend's thread, not the worker's: the successor of
 * each task of a chain must go through the queue (a worker asleep in
 * next() would never run one handed to it), so the chain ends. */
static void test_exec_chain_completed_off_worker(void **state) {
  (void)state;
  fx_t f;
  async_start(&f, "devices=1,depth=4,batch=4,wait_ms=1");
  reset_counts();
  strata_kernel_t k = kernel(f.rt, "note", true, false);
  int cell = 0;
  strata_buffer_t b;
  assert_int_equal(strata_buffer_register(f.rt, &cell, sizeof cell, &b), 0);
  strata_task_t ts[30];
  for (int i = 0; i < 30; i++) {
    assert_int_equal(strata_task_create(f.rt, k, &ts[i]), 0);
    assert_int_equal(strata_task_set_args(f.rt, ts[i], &i, sizeof i), 0);
    assert_int_equal(strata_task_access(f.rt, ts[i], b, STRATA_RW), 0);
    assert_int_equal(strata_task_submit(f.rt, ts[i]), 0);
  }
  assert_int_equal(strata_task_wait(f.rt, ts[29]), 0);
  /* A chain runs in order, however its works complete. */
  for (int i = 0; i < 30; i++) {
    assert_int_equal(atomic_load(&order[i]), i);
    assert_int_equal(strata_task_release(f.rt, ts[i]), 0);
  }
  assert_int_equal(strata_buffer_unregister(f.rt, b), 0);
  fx_destroy(&f);
}

/* The simulator holds several works per card and completes them from its
 * own thread, in real time after their modelled compute time. */
static void test_exec_sim_async_dag(void **state) {
  (void)state;
  const char *times[] = {"real", "modelled"};
  for (int i = 0; i < 2; i++) {
    test_sim_rt_t m;
    test_sim_start(&m, "cpu,sim", gpu_machine(times[i]), 1);
    test_dag_t g;
    test_dag_build(&g, 10, 200, 4, 4, 11);
    test_dag_run_sequential(&g);
    test_dag_run_and_check(
        &g, m.rt, test_register_cpu(m.rt, "mix", test_mix_kernel), true);
    test_dag_free(&g);
    test_sim_destroy(&m);
  }
}

int main(void) {
  test_tmpdir(tmpdir, sizeof tmpdir, "exec");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_exec_kernel_desc_refused),
      cmocka_unit_test(test_exec_sim_gpu_needs_cuda_runs_cpu),
      cmocka_unit_test(test_exec_cpu_only_kernel_stays_off_sim_gpu),
      cmocka_unit_test(test_exec_cuda_code_on_cuda_devices_only),
      cmocka_unit_test(test_exec_out_of_order_completion),
      cmocka_unit_test(test_exec_depth_bound),
      cmocka_unit_test(test_exec_dag_out_of_order),
      cmocka_unit_test(test_exec_worker_changes_threads),
      cmocka_unit_test(test_exec_chain_completed_off_worker),
      cmocka_unit_test(test_exec_sim_async_dag),
  };
  return test_run_group(tests, sizeof tests / sizeof *tests, tmpdir);
}
