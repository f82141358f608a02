/* SPDX-License-Identifier: MIT */
/* tests/test_transfer.c: the transfer engine and the data path on
 * simulated devices: results that must reach home before their task
 * counts as done, caps on host memory with spilling, evict hooks that keep
 * everything, the eviction counters, the spill node's accounts, and
 * eviction that makes room for prefetches. Every test that could hang on a
 * defect runs under a watchdog that fails it (with the log) instead. */
#include "config.h"

#include "util.h"
#include "dag.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KIB 1024
#define WORDS 128 /* uint64_t per buffer: 1 KiB buffers */
#define BUF_BYTES (WORDS * sizeof(uint64_t))

static char tmpdir[256];

/* {=== Helpers ===} */

static const char *machine(const char *name, const char *devices) {
  char file[128], text[8192];
  snprintf(file, sizeof file, "%s.lua", name);
  snprintf(text, sizeof text, "return { devices = {\n%s} }\n", devices);
  return test_write_file(tmpdir, file, text);
}

/* A 12 KiB HBM card and an 8 KiB GDDR card. */
static const char *tiny_pair(const char *hbm_extra) {
  static char devs[2048];
  char a[512], b[512];
  snprintf(a, sizeof a, TEST_SIM_DEV("hbm", "H", "12 * KiB", "%s"),
           hbm_extra ? hbm_extra : "");
  snprintf(b, sizeof b, "%s", TEST_SIM_DEV("gddr", "G", "8 * KiB", ""));
  snprintf(devs, sizeof devs, "%s%s", a, b);
  return machine("pair", devs);
}

static strata_memory_node_info_t node_info(strata_runtime_t *rt, int n) {
  strata_memory_node_info_t i = {.struct_size = sizeof i};
  assert_int_equal(strata_memory_node_info(rt, n, &i), 0);
  return i;
}

static int node_of_kind(strata_runtime_t *rt, strata_node_kind_t kind) {
  for (int n = 0; n < strata_memory_node_count(rt); n++)
    if (node_info(rt, n).kind == kind)
      return n;
  return -1;
}

static int fill_kernel(const strata_kernel_call_t *c) {
  uint64_t v = *(const uint64_t *)c->args;
  for (uint32_t i = 0; i < c->nbuffers; i++)
    for (size_t w = 0; w < c->sizes[i] / sizeof(uint64_t); w++)
      ((uint64_t *)c->buffers[i])[w] = v + w;
  return 0;
}

/* buffers[0] += buffers[1..] (word by word). */
static int add_kernel(const strata_kernel_call_t *c) {
  uint64_t *d = c->buffers[0];
  for (uint32_t i = 1; i < c->nbuffers; i++)
    for (size_t w = 0; w < WORDS; w++)
      d[w] += ((const uint64_t *)c->buffers[i])[w];
  if (c->nbuffers == 1)
    for (size_t w = 0; w < WORDS; w++)
      d[w]++;
  return 0;
}

static strata_task_t submit_fill(strata_runtime_t *rt, strata_kernel_t k,
                                 strata_buffer_t b, uint64_t v, bool keep) {
  strata_task_t t;
  assert_int_equal(strata_task_create(rt, k, &t), 0);
  assert_int_equal(strata_task_access(rt, t, b, STRATA_W), 0);
  assert_int_equal(strata_task_set_args(rt, t, &v, sizeof v), 0);
  assert_int_equal(strata_task_submit(rt, t), 0);
  if (!keep) {
    assert_int_equal(strata_task_release(rt, t), 0);
    return (strata_task_t){0};
  }
  return t;
}

static void check_filled(const uint64_t *p, uint64_t v) {
  for (size_t w = 0; w < WORDS; w++)
    if (p[w] != v + w)
      fail_msg("word %zu is %llu, expected %llu", w, (unsigned long long)p[w],
               (unsigned long long)(v + w));
}

/* {=== 1. eager write-back: a result is home before its task is done ===} */

static void test_transfer_writeback_fails_task_reruns(void **state) {
  (void)state;
  /* Every copy to or from the HBM card fails. A write-only task placed
   * there runs, but its result cannot be brought home: the card is
   * declared failed and the task runs again elsewhere, so it ends 0 and
   * its reader sees its data (eager_writeback promises nothing is lost). */
  test_sim_rt_t m;
  test_sim_opts(
      &m, "sim",
      tiny_pair("faults = { copy_fail_at = 1, copy_fail_count = 100000 },"), 0);
  m.o.eager_writeback = 1;
  m.o.policy = "";
  test_sim_create(&m);
  test_watchdog(&m.log, 20);
  strata_kernel_t fill = test_register_cpu(m.rt, "fill", fill_kernel);
  strata_kernel_t add = test_register_cpu(m.rt, "add", add_kernel);
  int h = test_device_of(m.rt, STRATA_CLASS_HBM);
  static uint64_t a[WORDS], b[WORDS];
  strata_buffer_t ba, bb;
  assert_int_equal(strata_buffer_register(m.rt, a, sizeof a, &ba), 0);
  assert_int_equal(strata_buffer_register(m.rt, b, sizeof b, &bb), 0);
  strata_task_t w = submit_fill(m.rt, fill, ba, 40, true);
  assert_int_equal(strata_task_wait(m.rt, w), 0);
  assert_int_equal(strata_task_release(m.rt, w), 0);
  assert_int_equal(test_device_info(m.rt, h).failed, 1);
  assert_true(test_log_has(&m.log, "copying results home keeps failing"));
  strata_task_t t;
  assert_int_equal(strata_task_create(m.rt, add, &t), 0);
  assert_int_equal(strata_task_access(m.rt, t, bb, STRATA_RW), 0);
  assert_int_equal(strata_task_access(m.rt, t, ba, STRATA_R), 0);
  assert_int_equal(strata_task_submit(m.rt, t), 0);
  assert_int_equal(strata_task_wait(m.rt, t), 0);
  assert_int_equal(strata_task_release(m.rt, t), 0);
  assert_int_equal(strata_buffer_unregister(m.rt, ba), 0);
  assert_int_equal(strata_buffer_unregister(m.rt, bb), 0);
  check_filled(a, 40);
  check_filled(b, 40);
  test_watchdog_off();
  test_sim_destroy(&m);
}

/* {=== 2. a host cap with spilling and simulated cards ===} */

static void test_transfer_host_cap_no_deadlock(void **state) {
  (void)state;
  /* Runtime-owned buffers under a host cap of four buffers, spilling,
   * eager write-back, two CPU workers and both cards: a random DAG over
   * 24 owned buffers completes with the sequential result. */
  char dir[256];
  test_tmpdir(dir, sizeof dir, "xfer-spill");
  test_sim_rt_t m;
  test_sim_opts(&m, "cpu,sim", tiny_pair(NULL), 2);
  m.o.host_bytes = 4 * BUF_BYTES;
  m.o.spill_dir = dir;
  m.o.eager_writeback = 1;
  test_sim_create(&m);
  test_watchdog(&m.log, 30);
  test_dag_t g;
  test_dag_build(&g, 24, 400, WORDS, 8, 77);
  test_dag_run_sequential(&g);
  strata_kernel_t k = test_register_cpu(m.rt, "mix", test_mix_kernel);
  test_dag_run_and_check(&g, m.rt, k, true);
  test_dag_free(&g);
  test_watchdog_off();
  test_sim_destroy(&m);
  test_tmpdir_remove(dir);
}

/* {=== 3. an evict hook that keeps everything on a full card ===} */

static void test_transfer_keep_is_bounded(void **state) {
  (void)state;
  /* A 2 KiB card, every task placed there, an evict hook that keeps
   * every replica: the first tasks fill the card with modified data; the
   * next ones need room that "keep" never frees. The wait is bounded: the
   * default tiers decide, and the log says so. */
  test_sim_rt_t m;
  test_sim_opts(&m, "sim",
                machine("one", TEST_SIM_DEV("gddr", "G", "2 * KiB", "")), 0);
  m.o.policy = test_write_file(tmpdir, "keep.lua",
                               "function place(t, m) return 'gddr' end\n"
                               "function evict(b, n, m) return 'keep' end\n");
  test_sim_create(&m);
  test_watchdog(&m.log, 20);
  strata_kernel_t fill = test_register_cpu(m.rt, "fill", fill_kernel);
  strata_kernel_t add = test_register_cpu(m.rt, "add", add_kernel);
  enum { N = 6 };
  static uint64_t data[N][WORDS];
  strata_buffer_t h[N];
  for (int b = 0; b < N; b++) {
    assert_int_equal(strata_buffer_register(m.rt, data[b], BUF_BYTES, &h[b]),
                     0);
    submit_fill(m.rt, fill, h[b], 100u * (b + 1), false);
  }
  for (int b = 0; b + 1 < N; b++) {
    strata_task_t t;
    assert_int_equal(strata_task_create(m.rt, add, &t), 0);
    assert_int_equal(strata_task_access(m.rt, t, h[b], STRATA_RW), 0);
    assert_int_equal(strata_task_access(m.rt, t, h[b + 1], STRATA_R), 0);
    assert_int_equal(strata_task_submit(m.rt, t), 0);
    assert_int_equal(strata_task_release(m.rt, t), 0);
  }
  assert_int_equal(strata_runtime_wait_all(m.rt), 0);
  assert_true(test_log_has(&m.log, "keep"));
  for (int b = 0; b < N; b++)
    assert_int_equal(strata_buffer_unregister(m.rt, h[b]), 0);
  for (int b = 0; b + 1 < N; b++)
    for (size_t w = 0; w < WORDS; w++)
      assert_int_equal(data[b][w], 100u * (b + 1) + 100u * (b + 2) + 2 * w);
  test_watchdog_off();
  test_sim_destroy(&m);
}

/* {=== 4. writebacks are a subset of evictions ===} */

static void test_transfer_writebacks_subset(void **state) {
  (void)state;
  /* With eager write-back every result is copied home at once; those
   * copies are not evictions, so the card's writebacks (evictions that
   * first wrote the replica elsewhere) stay within its evictions. */
  test_sim_rt_t m;
  test_sim_opts(&m, "sim",
                machine("one", TEST_SIM_DEV("gddr", "G", "2 * KiB", "")), 0);
  m.o.eager_writeback = 1;
  test_sim_create(&m);
  strata_kernel_t fill = test_register_cpu(m.rt, "fill", fill_kernel);
  enum { N = 8 };
  static uint64_t data[N][WORDS];
  strata_buffer_t h[N];
  for (int b = 0; b < N; b++) {
    assert_int_equal(strata_buffer_register(m.rt, data[b], BUF_BYTES, &h[b]),
                     0);
    submit_fill(m.rt, fill, h[b], 10u * (b + 1), false);
  }
  assert_int_equal(strata_runtime_wait_all(m.rt), 0);
  strata_memory_node_info_t card =
      node_info(m.rt, test_device_info(m.rt, 0).memory_node);
  assert_true(card.evictions > 0);
  assert_true(card.writebacks <= card.evictions);
  for (int b = 0; b < N; b++) {
    assert_int_equal(strata_buffer_unregister(m.rt, h[b]), 0);
    check_filled(data[b], 10u * (b + 1));
  }
  test_sim_destroy(&m);
}

/* {=== 5. the spill node counts what it holds ===} */

static void test_transfer_spill_node_used(void **state) {
  (void)state;
  char dir[256];
  test_tmpdir(dir, sizeof dir, "xfer-used");
  test_sim_rt_t m;
  memset(&m, 0, sizeof m);
  test_alloc_init(&m.alloc);
  test_log_init(&m.log);
  test_opts(&m.o, 1, &m.log);
  m.o.alloc = test_alloc_fn;
  m.o.alloc_ud = &m.alloc;
  m.o.host_bytes = 2 * BUF_BYTES;
  m.o.spill_dir = dir;
  assert_int_equal(strata_runtime_create(&m.o, &m.rt), 0);
  enum { N = 5 };
  strata_buffer_t h[N];
  for (int b = 0; b < N; b++) {
    void *p;
    assert_int_equal(strata_buffer_create(m.rt, BUF_BYTES, &h[b]), 0);
    assert_int_equal(strata_buffer_acquire(m.rt, h[b], STRATA_W, &p), 0);
    memset(p, b, BUF_BYTES);
    assert_int_equal(strata_buffer_release(m.rt, h[b]), 0);
  }
  int s = node_of_kind(m.rt, STRATA_NODE_SPILL);
  assert_true(s >= 0);
  strata_memory_node_info_t sp = node_info(m.rt, s);
  /* Five buffers, room for two at home: three are in files. */
  assert_int_equal(sp.used, 3 * BUF_BYTES);
  strata_memory_node_info_t host =
      node_info(m.rt, node_of_kind(m.rt, STRATA_NODE_HOST));
  assert_true(host.used <= 2 * BUF_BYTES);
  for (int b = 0; b < N; b++)
    assert_int_equal(strata_buffer_unregister(m.rt, h[b]), 0);
  assert_int_equal(node_info(m.rt, s).used, 0);
  test_sim_destroy(&m);
  test_tmpdir_remove(dir);
}

/* {=== Eviction makes room for prefetches ===} */

static strata_runtime_t *gate_rt;
static uint64_t gate_seen; /* prefetches before the gate */

static uint64_t card_prefetches(strata_runtime_t *rt) {
  return node_info(rt, test_device_info(rt, 0).memory_node).prefetches;
}

/* Holds the only worker until the task behind it had its input
 * prefetched (or 10 s pass, which fails the test). */
static int gate_kernel(const strata_kernel_call_t *c) {
  (void)c;
  for (int i = 0; i < 10000 && card_prefetches(gate_rt) < gate_seen + 1; i++)
    test_sleep_ms(1);
  return 0;
}

static void test_transfer_prefetch_evicts_clean(void **state) {
  (void)state;
  /* A 2 KiB card holds M, just written there (its only copy), and A,
   * read there (a clean copy: home has it too). While a gate task holds
   * the only worker, a task reading C is staged: C's prefetch makes room
   * by evicting A, never M (that would need a write-back, which a
   * prefetch does not make), and the task finds C in place. */
  test_sim_rt_t m;
  test_sim_opts(&m, "sim",
                machine("one", TEST_SIM_DEV("hbm", "H", "2 * KiB", "")), 0);
  test_sim_create(&m);
  test_watchdog(&m.log, 20);
  gate_rt = m.rt;
  strata_kernel_t fill = test_register_cpu(m.rt, "fill", fill_kernel);
  strata_kernel_t add = test_register_cpu(m.rt, "add", add_kernel);
  strata_kernel_t gate = test_register_cpu(m.rt, "gate", gate_kernel);
  static uint64_t a[WORDS], c[WORDS], mm[WORDS], out[WORDS];
  for (size_t w = 0; w < WORDS; w++)
    a[w] = c[w] = w;
  strata_buffer_t ba, bc, bm, bo;
  assert_int_equal(strata_buffer_register(m.rt, a, sizeof a, &ba), 0);
  assert_int_equal(strata_buffer_register(m.rt, c, sizeof c, &bc), 0);
  assert_int_equal(strata_buffer_register(m.rt, mm, sizeof mm, &bm), 0);
  assert_int_equal(strata_buffer_register(m.rt, out, sizeof out, &bo), 0);
  /* M written on the card; A read there (into M: M += A). */
  submit_fill(m.rt, fill, bm, 5, false);
  strata_task_t t;
  assert_int_equal(strata_task_create(m.rt, add, &t), 0);
  assert_int_equal(strata_task_access(m.rt, t, bm, STRATA_RW), 0);
  assert_int_equal(strata_task_access(m.rt, t, ba, STRATA_R), 0);
  assert_int_equal(strata_task_submit(m.rt, t), 0);
  assert_int_equal(strata_task_wait(m.rt, t), 0);
  assert_int_equal(strata_task_release(m.rt, t), 0);
  strata_memory_node_info_t before =
      node_info(m.rt, test_device_info(m.rt, 0).memory_node);
  assert_int_equal(before.used, 2 * BUF_BYTES); /* full: M and A */
  gate_seen = before.prefetches;
  /* The gate, then a task reading C (and writing nothing on the card). */
  assert_int_equal(strata_task_create(m.rt, gate, &t), 0);
  assert_int_equal(strata_task_submit(m.rt, t), 0);
  assert_int_equal(strata_task_release(m.rt, t), 0);
  assert_int_equal(strata_task_create(m.rt, add, &t), 0);
  assert_int_equal(strata_task_access(m.rt, t, bc, STRATA_RW), 0);
  assert_int_equal(strata_task_submit(m.rt, t), 0);
  assert_int_equal(strata_task_wait(m.rt, t), 0);
  assert_int_equal(strata_task_release(m.rt, t), 0);
  strata_memory_node_info_t after =
      node_info(m.rt, test_device_info(m.rt, 0).memory_node);
  assert_int_equal(after.prefetches - before.prefetches, 1);
  assert_int_equal(after.misses, before.misses); /* C was there in time */
  assert_true(after.evictions > before.evictions);
  assert_int_equal(after.writebacks, before.writebacks); /* M stayed */
  assert_int_equal(strata_buffer_unregister(m.rt, bm), 0);
  for (size_t w = 0; w < WORDS; w++)
    assert_int_equal(mm[w], 5 + w + w);
  for (strata_buffer_t *h = (strata_buffer_t[]){ba, bc, bo}, *e = h + 3; h < e;
       h++)
    assert_int_equal(strata_buffer_unregister(m.rt, *h), 0);
  assert_int_equal(c[1], 2);
  test_watchdog_off();
  test_sim_destroy(&m);
}

int main(void) {
  test_tmpdir(tmpdir, sizeof tmpdir, "transfer");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_transfer_writeback_fails_task_reruns),
      cmocka_unit_test(test_transfer_host_cap_no_deadlock),
      cmocka_unit_test(test_transfer_keep_is_bounded),
      cmocka_unit_test(test_transfer_writebacks_subset),
      cmocka_unit_test(test_transfer_spill_node_used),
      cmocka_unit_test(test_transfer_prefetch_evicts_clean),
  };
  return test_run_group(tests, sizeof tests / sizeof tests[0], tmpdir);
}
