/* SPDX-License-Identifier: MIT */
/* tests/test_runtime.c: runtime lifecycle (options, create, destroy that
 * drains and refuses new work), status codes, kernels, devices, logging,
 * and allocation failures along a whole embedding session. */
#include "config.h"

#include "util.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_int gate_open, counter;

static int count_kernel(const strata_kernel_call_t *c) {
  (void)c;
  while (!atomic_load(&gate_open))
    test_sleep_ms(1);
  atomic_fetch_add(&counter, 1);
  return 0;
}

static strata_kernel_t register_count(strata_runtime_t *rt) {
  const strata_kernel_impl_t impls[] = {{STRATA_IMPL_CPU, count_kernel}};
  strata_kernel_desc_t d = {
      .struct_size = sizeof d, .name = "count", .impls = impls, .nimpls = 1};
  strata_kernel_t k;
  assert_int_equal(strata_kernel_register(rt, &d, &k), 0);
  return k;
}

static strata_task_t submit_count(strata_runtime_t *rt, strata_kernel_t k) {
  strata_task_t t;
  assert_int_equal(strata_task_create(rt, k, &t), 0);
  assert_int_equal(strata_task_submit(rt, t), 0);
  return t;
}

static int reset(void **state) {
  (void)state;
  atomic_store(&gate_open, 1);
  atomic_store(&counter, 0);
  return 0;
}

/* {=== Status codes and names ===} */

static void test_runtime_status_table(void **state) {
  (void)state;
  int codes[] = {
#define XX(name, value, msg) STRATA_##name,
      STRATA_ERRNO_MAP(XX)
#undef XX
  };
  assert_string_equal(strata_strerror(0), "success");
  assert_string_equal(strata_err_name(0), "STRATA_OK");
  for (size_t i = 0; i < sizeof codes / sizeof *codes; i++) {
    assert_true(codes[i] < 0);
    assert_string_not_equal(strata_strerror(codes[i]), "unknown status");
    assert_string_not_equal(strata_err_name(codes[i]), "STRATA_E?");
    for (size_t j = 0; j < i; j++)
      assert_int_not_equal(codes[i], codes[j]);
  }
  assert_string_equal(strata_err_name(STRATA_EINVAL), "STRATA_EINVAL");
  assert_string_equal(strata_strerror(-999), "unknown status");
  assert_string_equal(strata_err_name(12345), "STRATA_E?");
  assert_string_equal(strata_device_class_name(STRATA_CLASS_HBM), "hbm");
  assert_string_equal(strata_device_class_name((strata_device_class_t)9), "?");
  assert_string_equal(strata_version_string(), PACKAGE_VERSION);
}

/* {=== Options ===} */

static void test_runtime_bad_options(void **state) {
  (void)state;
  test_log_t log;
  test_log_init(&log);
  strata_runtime_opts_t o;
  strata_runtime_t *rt = (strata_runtime_t *)&o;
  test_opts(&o, 1, &log);
  assert_int_equal(strata_runtime_create(&o, NULL), STRATA_EINVAL);
  o.struct_size = 8;
  assert_int_equal(strata_runtime_create(&o, &rt), STRATA_EINVAL);
  assert_null(rt);
  assert_true(test_log_has(&log, "malformed options"));
  test_opts(&o, 1, &log);
  o.log_level = (strata_log_level_t)42;
  assert_int_equal(strata_runtime_create(&o, &rt), STRATA_EINVAL);
  strata_runtime_opts_init(NULL); /* harmless */
  strata_runtime_opts_init(&o);
  assert_int_equal(o.struct_size, sizeof o);
  assert_int_equal(o.log_level, STRATA_LOG_WARN);
  assert_null(o.alloc);
  assert_int_equal(strata_runtime_destroy(NULL), STRATA_EINVAL);
  assert_int_equal(strata_runtime_wait_all(NULL), STRATA_EINVAL);
}

static void test_runtime_log_levels(void **state) {
  (void)state;
  test_log_t log;
  test_log_init(&log);
  strata_runtime_opts_t o;
  test_opts(&o, 1, &log);
  o.log_level = STRATA_LOG_WARN;
  strata_runtime_t *rt;
  assert_int_equal(strata_runtime_create(&o, &rt), 0);
  assert_int_equal(log.count[STRATA_LOG_INFO] + log.count[STRATA_LOG_DEBUG], 0);
  assert_int_equal(strata_runtime_destroy(rt), 0);
  o.log_level = STRATA_LOG_INFO;
  assert_int_equal(strata_runtime_create(&o, &rt), 0);
  assert_true(test_log_has(&log, "backend 'cpu'"));
  assert_true(test_log_has(&log, "loaded with 1 device"));
  assert_int_equal(strata_runtime_destroy(rt), 0);
}

/* {=== Kernels, devices, accessors ===} */

static void test_runtime_kernel_registry(void **state) {
  (void)state;
  strata_runtime_t *rt = test_runtime(1, NULL);
  const strata_kernel_impl_t impls[] = {{STRATA_IMPL_CPU, count_kernel}};
  strata_kernel_desc_t d = {.struct_size = sizeof d, .name = "k"};
  strata_kernel_t k, k2;
  assert_int_equal(strata_kernel_register(rt, &d, &k), STRATA_EINVAL);
  d.impls = impls;
  d.nimpls = 1;
  d.name = "";
  assert_int_equal(strata_kernel_register(rt, &d, &k), STRATA_EINVAL);
  d.name = NULL;
  assert_int_equal(strata_kernel_register(rt, &d, &k), STRATA_EINVAL);
  d.name = "k";
  d.struct_size = 4;
  assert_int_equal(strata_kernel_register(rt, &d, &k), STRATA_EINVAL);
  d.struct_size = sizeof d;
  assert_int_equal(strata_kernel_register(rt, &d, &k), 0);
  assert_int_equal(strata_kernel_register(rt, &d, &k2), STRATA_EEXIST);
  assert_int_equal(strata_kernel_find(rt, "k", &k2), 0);
  assert_int_equal(k.id, k2.id);
  assert_int_equal(strata_kernel_find(rt, "nope", &k2), STRATA_ENOENT);
  assert_int_equal(strata_kernel_find(rt, NULL, &k2), STRATA_EINVAL);
  assert_int_equal(strata_runtime_destroy(rt), 0);
}

static void test_runtime_devices_and_stats(void **state) {
  (void)state;
  strata_runtime_t *rt = test_runtime(2, NULL);
  assert_int_equal(strata_device_count(rt), 1);
  assert_int_equal(strata_device_count(NULL), STRATA_EINVAL);
  strata_device_info_t di = {.struct_size = sizeof di};
  assert_int_equal(strata_device_info(rt, 0, &di), 0);
  assert_int_equal(di.device_class, STRATA_CLASS_CPU);
  assert_string_equal(di.backend, "cpu");
  assert_int_equal(di.workers, 2);
  assert_non_null(strstr(di.name, "cpu0"));
  assert_int_equal(strata_device_info(rt, 1, &di), STRATA_ERANGE);
  assert_int_equal(strata_device_info(rt, -1, &di), STRATA_ERANGE);
  di.struct_size = sizeof(size_t);
  assert_int_equal(strata_device_info(rt, 0, &di), STRATA_EINVAL);
  /* A caller built against an older, smaller struct gets the fields it
   * knows of and nothing written past them. */
  strata_device_info_t older;
  memset(&older, 0x5a, sizeof older);
  older.struct_size = offsetof(strata_device_info_t, backend);
  assert_int_equal(strata_device_info(rt, 0, &older), 0);
  assert_int_equal(older.struct_size, offsetof(strata_device_info_t, backend));
  assert_int_equal(older.device_class, STRATA_CLASS_CPU);
  assert_int_equal(older.backend[0], 0x5a);
  assert_int_equal(older.workers, 0x5a5a5a5a);

  strata_kernel_t k = register_count(rt);
  for (int i = 0; i < 10; i++)
    assert_int_equal(strata_task_release(rt, submit_count(rt, k)), 0);
  assert_int_equal(strata_runtime_wait_all(rt), 0);
  strata_device_stats_t st = {.struct_size = sizeof st};
  assert_int_equal(strata_device_stats(rt, 0, &st), 0);
  assert_int_equal(st.tasks_run, 10);
  assert_int_equal(st.tasks_failed, 0);
  assert_int_equal(st.load, 0);
  assert_int_equal(strata_device_stats(rt, 3, &st), STRATA_ERANGE);

  int x;
  strata_runtime_set_data(rt, &x);
  assert_ptr_equal(strata_runtime_get_data(rt), &x);
  assert_null(strata_runtime_get_data(NULL));
  const strata_machine_t *m = strata_runtime_machine(rt);
  assert_non_null(m);
  assert_true(m->ncores >= 1);
  assert_int_equal(strata_runtime_destroy(rt), 0);
}

/* {=== Idle workers ===} */

/* The device's counters after waiting (up to 10 s) until `done` holds. */
static strata_device_stats_t
stats_once(strata_runtime_t *rt, bool (*done)(const strata_device_stats_t *)) {
  strata_device_stats_t st = {.struct_size = sizeof st};
  for (int i = 0; i < 10000; i++) {
    assert_int_equal(strata_device_stats(rt, 0, &st), 0);
    if (done(&st))
      break;
    test_sleep_ms(1);
  }
  return st;
}

/* Both workers asleep now: here (no timeouts, tasks too few to make a
 * queue's workers nap) a worker that went to sleep leaves only when woken. */
static bool all_asleep(const strata_device_stats_t *st) {
  return st->sleeps - st->wakeups == 2;
}

/* By default the first worker to run dry polls before it sleeps; with
 * idle_poll_us < 0, workers go to sleep at once and never poll; either
 * way, every wake-up is counted, and a task submitted to sleeping workers
 * still runs. */
static void test_runtime_idle_poll_option(void **state) {
  (void)state;
  for (int never = 0; never < 2; never++) {
    strata_runtime_opts_t o;
    test_opts(&o, 2, NULL);
    o.idle_poll_us = never ? -1 : 0;
    strata_runtime_t *rt = NULL;
    assert_int_equal(strata_runtime_create(&o, &rt), 0);
    strata_kernel_t k = register_count(rt);
    assert_int_equal(strata_task_release(rt, submit_count(rt, k)), 0);
    assert_int_equal(strata_runtime_wait_all(rt), 0);
    /* Both workers asleep: after its poll (500 us at first) for one. */
    strata_device_stats_t st = stats_once(rt, all_asleep);
    assert_true(all_asleep(&st));
    if (never)
      assert_int_equal(st.idle_polls, 0);
    else
      assert_true(st.idle_polls >= 1);
    assert_true(st.idle_poll_hits <= st.idle_polls);
    uint64_t wakeups = st.wakeups;
    assert_int_equal(strata_task_release(rt, submit_count(rt, k)), 0);
    assert_int_equal(strata_runtime_wait_all(rt), 0);
    assert_int_equal(strata_device_stats(rt, 0, &st), 0);
    assert_int_equal(st.tasks_run, 2);
    assert_true(st.wakeups > wakeups); /* nobody polled: one was woken */
    assert_int_equal(strata_runtime_destroy(rt), 0);
  }
}

/* {=== Destroy ===} */

static void test_runtime_destroy_drains(void **state) {
  (void)state;
  strata_runtime_t *rt = test_runtime(2, NULL);
  strata_kernel_t k = register_count(rt);
  for (int i = 0; i < 200; i++)
    assert_int_equal(strata_task_release(rt, submit_count(rt, k)), 0);
  assert_int_equal(strata_runtime_destroy(rt), 0);
  assert_int_equal(atomic_load(&counter), 200);
}

static void test_runtime_destroy_discards_unsubmitted(void **state) {
  (void)state;
  test_alloc_t alloc;
  test_alloc_init(&alloc);
  strata_runtime_opts_t o;
  test_opts(&o, 1, NULL);
  o.alloc = test_alloc_fn;
  o.alloc_ud = &alloc;
  strata_runtime_t *rt;
  assert_int_equal(strata_runtime_create(&o, &rt), 0);
  strata_kernel_t k = register_count(rt);
  char mem[8];
  strata_buffer_t b;
  strata_job_t j;
  assert_int_equal(strata_buffer_register(rt, mem, sizeof mem, &b), 0);
  assert_int_equal(strata_job_create(rt, &j), 0);
  strata_task_t never, after;
  assert_int_equal(strata_task_create(rt, k, &never), 0);
  assert_int_equal(strata_task_access(rt, never, b, STRATA_W), 0);
  assert_int_equal(strata_task_create(rt, k, &after), 0);
  assert_int_equal(strata_task_depend(rt, after, never), 0);
  assert_int_equal(strata_task_set_job(rt, after, j), 0);
  assert_int_equal(strata_task_submit(rt, after), 0);
  /* Handles, buffers and jobs left to destroy are cleaned up too. */
  assert_int_equal(strata_runtime_destroy(rt), 0);
  assert_int_equal(atomic_load(&counter), 0);
  test_alloc_assert_clean(&alloc);
}

typedef struct destroyer {
  strata_runtime_t *rt;
  int rc;
} destroyer_t;

static void *destroy_thread(void *p) {
  destroyer_t *d = p;
  d->rc = strata_runtime_destroy(d->rt);
  return NULL;
}

static void test_runtime_submit_during_destroy(void **state) {
  (void)state;
  test_log_t log;
  test_log_init(&log);
  destroyer_t d = {.rt = test_runtime(1, &log)};
  strata_kernel_t k = register_count(d.rt);
  atomic_store(&gate_open, 0);
  strata_task_t running = submit_count(d.rt, k), spare;
  assert_int_equal(strata_task_create(d.rt, k, &spare), 0);
  char mem[4];
  strata_buffer_t b;

  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, destroy_thread, &d), 0);
  /* Wait until destroy has begun: new work is refused. */
  strata_task_t t;
  int rc;
  while ((rc = strata_task_create(d.rt, k, &t)) == 0) {
    assert_int_equal(strata_task_release(d.rt, t), 0);
    test_sleep_ms(1);
  }
  assert_int_equal(rc, STRATA_ESHUTDOWN);
  assert_int_equal(strata_task_submit(d.rt, spare), STRATA_ESHUTDOWN);
  assert_int_equal(strata_buffer_register(d.rt, mem, sizeof mem, &b),
                   STRATA_ESHUTDOWN);
  (void)running;
  /* The running task still completes: nothing submitted is lost. */
  atomic_store(&gate_open, 1);
  pthread_join(th, NULL);
  assert_int_equal(d.rc, 0);
  assert_int_equal(atomic_load(&counter), 1);
}

/* {=== Waits from several threads ===} */

static void *wait_all_thread(void *rt) {
  return (void *)(intptr_t)strata_runtime_wait_all(rt);
}

static void test_runtime_wait_all_concurrent(void **state) {
  (void)state;
  strata_runtime_t *rt = test_runtime(2, NULL);
  assert_int_equal(strata_runtime_wait_all(rt), 0); /* nothing to wait for */
  strata_kernel_t k = register_count(rt);
  atomic_store(&gate_open, 0);
  for (int i = 0; i < 20; i++)
    assert_int_equal(strata_task_release(rt, submit_count(rt, k)), 0);
  pthread_t th[3];
  for (int i = 0; i < 3; i++)
    assert_int_equal(pthread_create(&th[i], NULL, wait_all_thread, rt), 0);
  test_sleep_ms(10);
  atomic_store(&gate_open, 1);
  for (int i = 0; i < 3; i++) {
    void *ret;
    pthread_join(th[i], &ret);
    assert_int_equal((intptr_t)ret, 0);
  }
  assert_int_equal(atomic_load(&counter), 20);
  assert_int_equal(strata_runtime_destroy(rt), 0);
}

/* {=== Allocation failures anywhere in a session ===} */

/* A short embedding session; returns the first failure, 0 if none. */
static int session(strata_runtime_opts_t *o) {
  strata_runtime_t *rt;
  int rc = strata_runtime_create(o, &rt);
  if (rc)
    return rc;
  const strata_kernel_impl_t impls[] = {{STRATA_IMPL_CPU, count_kernel}};
  strata_kernel_desc_t d = {
      .struct_size = sizeof d, .name = "count", .impls = impls, .nimpls = 1};
  strata_kernel_t k;
  strata_job_t j = STRATA_NONE;
  strata_task_t t = STRATA_NONE;
  strata_buffer_t b = STRATA_NONE;
  char mem[32];
  if ((rc = strata_kernel_register(rt, &d, &k)) ||
      (rc = strata_buffer_register(rt, mem, sizeof mem, &b)) ||
      (rc = strata_job_create(rt, &j)) ||
      (rc = strata_job_set_attr(rt, j, "name", "session")) ||
      (rc = strata_task_create(rt, k, &t)) ||
      (rc = strata_task_access(rt, t, b, STRATA_RW)) ||
      (rc = strata_task_set_job(rt, t, j)) ||
      (rc = strata_task_set_attr(rt, t, "user-tag", "x")) ||
      (rc = strata_task_submit(rt, t)))
    goto out;
  rc = strata_job_wait(rt, j);
out:
  if (t.id)
    strata_task_release(rt, t);
  if (j.id)
    strata_job_release(rt, j);
  if (b.id)
    strata_buffer_unregister(rt, b);
  assert_int_equal(strata_runtime_destroy(rt), 0);
  return rc;
}

static void test_runtime_allocation_failures(void **state) {
  (void)state;
  for (long k = 1;; k++) {
    test_alloc_t alloc;
    test_alloc_init(&alloc);
    strata_runtime_opts_t o;
    test_opts(&o, 1, NULL);
    o.alloc = test_alloc_fn;
    o.alloc_ud = &alloc;
    alloc.fail_after = k;
    int rc = session(&o);
    bool injected = alloc.fail_after < 0;
    test_alloc_assert_clean(&alloc);
    if (!injected) {
      assert_int_equal(rc, 0);
      break;
    }
    /* A failed allocation surfaces as a clean error, or is absorbed by
     * a backend that was then skipped (creation then reports ENODEV). */
    assert_true(rc == STRATA_ENOMEM || rc == STRATA_ENODEV ||
                rc == STRATA_EBACKEND || rc == STRATA_OK);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_runtime_status_table),
      cmocka_unit_test(test_runtime_bad_options),
      cmocka_unit_test(test_runtime_log_levels),
      cmocka_unit_test_setup(test_runtime_kernel_registry, reset),
      cmocka_unit_test_setup(test_runtime_devices_and_stats, reset),
      cmocka_unit_test_setup(test_runtime_idle_poll_option, reset),
      cmocka_unit_test_setup(test_runtime_destroy_drains, reset),
      cmocka_unit_test_setup(test_runtime_destroy_discards_unsubmitted, reset),
      cmocka_unit_test_setup(test_runtime_submit_during_destroy, reset),
      cmocka_unit_test_setup(test_runtime_wait_all_concurrent, reset),
      cmocka_unit_test_setup(test_runtime_allocation_failures, reset),
  };
  return cmocka_run_group_tests_name("runtime", tests, NULL, NULL);
}
