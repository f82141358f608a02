/* SPDX-License-Identifier: MIT */
/* tests/test_memory.c: the memory manager on simulated devices. A sim
 * device's memory is separate host memory, so a missing or stale copy
 * shows as wrong bytes: random DAGs over devices with tiny capacities
 * must give exactly the sequential result. Also: oversubscription,
 * write-back of modified copies, spill files and their checksums, copy
 * retries, devices that die (with and without another device to take
 * the work), acquire/release, prefetch, and the node and link queries. */
#include "config.h"

#include "util.h"
#include "dag.h"

#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KIB 1024
#define WORDS 128 /* uint64_t per buffer: 1 KiB buffers */
#define BUF_BYTES (WORDS * sizeof(uint64_t))

static char tmpdir[256]; /* machine files and spill directories */

/* {=== Machines ===} */

#define SIM_DEV TEST_SIM_DEV

/* Write a machine description into tmpdir; returns its path (static). */
static const char *machine(const char *name, const char *devices,
                           const char *top) {
  char file[128], text[8192];
  snprintf(file, sizeof file, "%s.lua", name);
  snprintf(text, sizeof text, "return { %s devices = {\n%s} }\n",
           top ? top : "", devices);
  return test_write_file(tmpdir, file, text);
}

/* The standard pair: a 12 KiB HBM card and an 8 KiB GDDR card, so a DAG
 * over 48 buffers of 1 KiB is four to six times what each holds (and a
 * task's working set, at most 8 buffers, fits both). */
static const char *tiny_pair(const char *hbm_extra, const char *gddr_extra) {
  static char devs[2048];
  char a[512], b[512];
  snprintf(a, sizeof a, SIM_DEV("hbm", "H", "12 * KiB", "%s"),
           hbm_extra ? hbm_extra : "");
  snprintf(b, sizeof b, SIM_DEV("gddr", "G", "8 * KiB", "%s"),
           gddr_extra ? gddr_extra : "");
  snprintf(devs, sizeof devs, "%s%s", a, b);
  return machine("pair", devs, NULL);
}

static strata_memory_node_info_t node_info(strata_runtime_t *rt, int n) {
  strata_memory_node_info_t i = {.struct_size = sizeof i};
  assert_int_equal(strata_memory_node_info(rt, n, &i), 0);
  return i;
}

/* Register n buffers of BUF_BYTES from data into h. */
static void register_all(strata_runtime_t *rt, uint64_t (*data)[WORDS], int n,
                         strata_buffer_t *h) {
  for (int i = 0; i < n; i++)
    assert_int_equal(strata_buffer_register(rt, data[i], BUF_BYTES, &h[i]), 0);
}

/* Sums over the device nodes. */
typedef struct totals {
  uint64_t evictions, writebacks, misses, hits, prefetches;
} totals_t;

static totals_t device_totals(strata_runtime_t *rt) {
  totals_t t = {0};
  for (int n = 0; n < strata_memory_node_count(rt); n++) {
    strata_memory_node_info_t i = node_info(rt, n);
    if (i.kind != STRATA_NODE_DEVICE)
      continue;
    assert_true(!i.capacity || i.used <= i.capacity);
    t.evictions += i.evictions;
    t.writebacks += i.writebacks;
    t.misses += i.misses;
    t.hits += i.hits;
    t.prefetches += i.prefetches;
  }
  return t;
}

static uint64_t link_failures(strata_runtime_t *rt) {
  uint64_t f = 0;
  int n = strata_memory_node_count(rt);
  for (int s = 0; s < n; s++)
    for (int d = 0; d < n; d++) {
      strata_link_stats_t l = {.struct_size = sizeof l};
      assert_int_equal(strata_link_stats(rt, s, d, &l), 0);
      f += l.failures;
    }
  return f;
}

/* Run a random DAG of `ntask` tasks over 48 buffers on m's runtime and
 * check every byte against sequential execution. With `read_first`, every
 * access reads (W becomes RW), so no task can run on a device before a
 * copy to it succeeded. */
static void run_dag_rerun(test_sim_rt_t *m, unsigned ntask, unsigned seed,
                          bool owned, bool read_first, unsigned reruns) {
  test_dag_t g;
  test_dag_build(&g, 48, ntask, WORDS, 12, seed);
  g.reruns_max = reruns;
  if (read_first)
    for (unsigned t = 0; t < ntask; t++)
      for (uint32_t i = 0; i < g.args[t].n; i++)
        g.args[t].mode[i] |= STRATA_R;
  test_dag_run_sequential(&g);
  strata_kernel_t k;
  if (strata_kernel_find(m->rt, "mix", &k))
    k = test_register_cpu(m->rt, "mix", test_mix_kernel);
  test_dag_run_and_check(&g, m->rt, k, owned);
  test_dag_free(&g);
}

static void run_dag_ex(test_sim_rt_t *m, unsigned ntask, unsigned seed,
                       bool owned, bool read_first) {
  run_dag_rerun(m, ntask, seed, owned, read_first, 0);
}

static void run_dag(test_sim_rt_t *m, unsigned ntask, unsigned seed,
                    bool owned) {
  run_dag_ex(m, ntask, seed, owned, false);
}

/* {=== Coherence under random DAGs ===} */

static void test_memory_dag_cpu_and_two_sims(void **state) {
  (void)state;
  for (unsigned seed = 1; seed <= 2; seed++) {
    test_sim_rt_t m;
    test_sim_start(&m, "cpu,sim", tiny_pair(NULL, NULL), 1);
    assert_int_equal(strata_device_count(m.rt), 3);
    /* host + two device nodes */
    assert_int_equal(strata_memory_node_count(m.rt), 3);
    run_dag(&m, 3000, seed, false);
    totals_t t = device_totals(m.rt);
    assert_true(t.misses > 0);
    assert_true(t.evictions > 0);  /* 48 KiB through 20 KiB of cards */
    assert_true(t.writebacks > 0); /* some victims were the only copy */
    test_sim_destroy(&m);
  }
}

static void test_memory_dag_sims_only(void **state) {
  (void)state;
  test_sim_rt_t m;
  test_sim_start(&m, "sim", tiny_pair(NULL, NULL), 0);
  assert_int_equal(strata_device_count(m.rt), 2);
  run_dag(&m, 3000, 3, false);
  assert_int_equal(test_device_of(m.rt, STRATA_CLASS_CPU), -1);
  test_sim_destroy(&m);
}

static void test_memory_dag_owned_pinned_eager(void **state) {
  (void)state;
  test_sim_rt_t m;
  test_sim_opts(&m, "cpu,sim", tiny_pair(NULL, NULL), 1);
  m.o.pinned_bytes = 16 * KIB;
  m.o.eager_writeback = 1;
  m.o.prefetch = 0;
  test_sim_create(&m);
  assert_int_equal(strata_memory_node_count(m.rt), 4);
  run_dag(&m, 2000, 4, true);
  test_sim_destroy(&m);
}

static void test_memory_dag_three_devices_peers(void **state) {
  (void)state;
  /* Two HBM peers (direct copies) and a GDDR card (through the host). */
  char devs[2048];
  snprintf(devs, sizeof devs, "%s%s%s",
           SIM_DEV("hbm", "H0", "10 * KiB", "peers = { 'H1' },"),
           SIM_DEV("hbm", "H1", "10 * KiB", "peers = { 'H0' },"),
           SIM_DEV("gddr", "G", "8 * KiB", ""));
  test_sim_rt_t m;
  test_sim_start(&m, "sim", machine("three", devs, NULL), 0);
  run_dag(&m, 3000, 5, false);
  /* Some copies went directly between the peers. */
  int h0 = test_device_info(m.rt, 0).memory_node,
      h1 = test_device_info(m.rt, 1).memory_node;
  strata_link_stats_t a = {.struct_size = sizeof a};
  strata_link_stats_t b = {.struct_size = sizeof b};
  assert_int_equal(strata_link_stats(m.rt, h0, h1, &a), 0);
  assert_int_equal(strata_link_stats(m.rt, h1, h0, &b), 0);
  assert_true(a.copies + b.copies > 0);
  assert_int_equal((a.bytes + b.bytes) % BUF_BYTES, 0);
  /* Peers copy at the smaller host link's speed unless told otherwise. */
  assert_true(test_device_info(m.rt, 0).peer_gbps == 10.0f);
  assert_true(test_device_info(m.rt, 2).peer_gbps == 0.0f);
  test_sim_destroy(&m);
}

/* {=== Oversubscription ===} */

static int add_kernel(const strata_kernel_call_t *c) {
  /* buffers[0] += buffers[1] (word by word); both 1 KiB. */
  uint64_t *dst = c->buffers[0];
  const uint64_t *src = c->nbuffers > 1 ? c->buffers[1] : NULL;
  for (size_t w = 0; w < WORDS; w++)
    dst[w] += src ? src[w] + 1 : 1;
  return 0;
}

static void test_memory_oversubscription_3x(void **state) {
  (void)state;
  /* One 8 KiB card, 24 buffers (3x): sweeps over all of them, each task
   * reading the previous buffer and updating the next. */
  test_sim_rt_t m;
  test_sim_opts(&m, "sim",
                machine("one", SIM_DEV("gddr", "G", "8 * KiB", ""), NULL), 0);
  m.alloc.watch_size = BUF_BYTES; /* device blocks */
  test_sim_create(&m);
  enum { N = 24, SWEEPS = 6 };
  static uint64_t data[N][WORDS], ref[N][WORDS];
  for (int b = 0; b < N; b++)
    for (int w = 0; w < WORDS; w++)
      data[b][w] = ref[b][w] = (uint64_t)(b * 1000 + w);
  strata_kernel_t k = test_register_cpu(m.rt, "add", add_kernel);
  strata_buffer_t h[N];
  register_all(m.rt, data, N, h);
  for (int s = 0; s < SWEEPS; s++)
    for (int b = 0; b < N; b++) {
      int prev = (b + N - 1) % N;
      for (int w = 0; w < WORDS; w++)
        ref[b][w] += ref[prev][w] + 1;
      strata_task_t t;
      assert_int_equal(strata_task_create(m.rt, k, &t), 0);
      assert_int_equal(strata_task_access(m.rt, t, h[b], STRATA_RW), 0);
      assert_int_equal(strata_task_access(m.rt, t, h[prev], STRATA_R), 0);
      assert_int_equal(strata_task_submit(m.rt, t), 0);
      assert_int_equal(strata_task_release(m.rt, t), 0);
    }
  assert_int_equal(strata_runtime_wait_all(m.rt), 0);
  for (int b = 0; b < N; b++)
    assert_int_equal(strata_buffer_unregister(m.rt, h[b]), 0);
  assert_memory_equal(data, ref, sizeof data);
  totals_t t = device_totals(m.rt);
  assert_true(t.evictions >= N * SWEEPS - 8); /* nearly every task */
  assert_true(t.writebacks > 0);
  /* The card's blocks are reused, not freed and allocated anew at each
   * eviction: about as many as it holds were ever allocated. */
  assert_true(m.alloc.watch_allocs <= 10);
  test_sim_destroy(&m);
}

static int nop_kernel(const strata_kernel_call_t *c) {
  (void)c;
  return 0;
}

static void test_memory_thrashing_reported(void **state) {
  (void)state;
  /* A 2 KiB card and tasks that read two 1 KiB buffers each from a cycle
   * of eight: every task evicts both of its predecessor's, twice as many
   * evictions as tasks, which is reported once. */
  test_sim_rt_t m;
  test_sim_start(&m, "sim",
                 machine("two", SIM_DEV("gddr", "G", "2 * KiB", ""), NULL), 0);
  strata_kernel_t k = test_register_cpu(m.rt, "nop", nop_kernel);
  static uint64_t data[8][WORDS];
  strata_buffer_t h[8];
  register_all(m.rt, data, 8, h);
  for (int i = 0; i < 400; i++) {
    strata_task_t t;
    assert_int_equal(strata_task_create(m.rt, k, &t), 0);
    assert_int_equal(strata_task_access(m.rt, t, h[(2 * i) % 8], STRATA_R), 0);
    assert_int_equal(strata_task_access(m.rt, t, h[(2 * i + 1) % 8], STRATA_R),
                     0);
    assert_int_equal(strata_task_submit(m.rt, t), 0);
    assert_int_equal(strata_task_release(m.rt, t), 0);
  }
  assert_int_equal(strata_runtime_wait_all(m.rt), 0);
  assert_true(test_log_has(&m.log, "G is thrashing"));
  for (int b = 0; b < 8; b++)
    assert_int_equal(strata_buffer_unregister(m.rt, h[b]), 0);
  test_sim_destroy(&m);
}

/* {=== Modified copies are never dropped ===} */

static int fill_kernel(const strata_kernel_call_t *c) {
  uint64_t v = *(const uint64_t *)c->args;
  for (uint32_t i = 0; i < c->nbuffers; i++)
    for (size_t w = 0; w < c->sizes[i] / sizeof(uint64_t); w++)
      ((uint64_t *)c->buffers[i])[w] = v + w;
  return 0;
}

static void submit_fill(strata_runtime_t *rt, strata_kernel_t k,
                        strata_buffer_t b, uint64_t v) {
  strata_task_t t;
  assert_int_equal(strata_task_create(rt, k, &t), 0);
  assert_int_equal(strata_task_access(rt, t, b, STRATA_W), 0);
  assert_int_equal(strata_task_set_args(rt, t, &v, sizeof v), 0);
  assert_int_equal(strata_task_submit(rt, t), 0);
  assert_int_equal(strata_task_release(rt, t), 0);
}

static void check_filled(const uint64_t *p, uint64_t v) {
  for (size_t w = 0; w < WORDS; w++)
    if (p[w] != v + w)
      fail_msg("word %zu is %llu, expected %llu", w, (unsigned long long)p[w],
               (unsigned long long)(v + w));
}

static void test_memory_modified_copy_never_dropped(void **state) {
  (void)state;
  /* A 2 KiB card and 8 buffers written there in turn: each new one evicts
   * an older one, whose only valid copy is on the card. */
  test_sim_rt_t m;
  test_sim_start(&m, "sim",
                 machine("two", SIM_DEV("gddr", "G", "2 * KiB", ""), NULL), 0);
  strata_kernel_t k = test_register_cpu(m.rt, "fill", fill_kernel);
  enum { N = 8 };
  static uint64_t data[N][WORDS];
  strata_buffer_t h[N];
  for (int b = 0; b < N; b++) {
    assert_int_equal(strata_buffer_register(m.rt, data[b], BUF_BYTES, &h[b]),
                     0);
    submit_fill(m.rt, k, h[b], 100u * (b + 1));
  }
  assert_int_equal(strata_runtime_wait_all(m.rt), 0);
  strata_memory_node_info_t card =
      node_info(m.rt, test_device_info(m.rt, 0).memory_node);
  assert_int_equal(card.evictions, card.writebacks); /* all were modified */
  assert_true(card.writebacks >= N - 2);
  /* The application reads each buffer's latest data. */
  for (int b = 0; b < N; b++) {
    void *p;
    assert_int_equal(strata_buffer_acquire(m.rt, h[b], STRATA_R, &p), 0);
    assert_ptr_equal(p, data[b]);
    check_filled(p, 100u * (b + 1));
    assert_int_equal(strata_buffer_release(m.rt, h[b]), 0);
  }
  /* Written again on the card, then unregistered: the caller's memory
   * holds the latest data. */
  for (int b = 0; b < N; b++)
    submit_fill(m.rt, k, h[b], 7000u + b);
  for (int b = 0; b < N; b++) {
    assert_int_equal(strata_buffer_unregister(m.rt, h[b]), 0);
    check_filled(data[b], 7000u + b);
  }
  test_sim_destroy(&m);
}

/* {=== Acquire and release ===} */

static void test_memory_acquire_release(void **state) {
  (void)state;
  test_sim_rt_t m;
  test_sim_start(&m, "sim", tiny_pair(NULL, NULL), 0);
  strata_kernel_t k = test_register_cpu(m.rt, "fill", fill_kernel);
  static uint64_t data[WORDS];
  strata_buffer_t b;
  assert_int_equal(strata_buffer_register(m.rt, data, sizeof data, &b), 0);
  void *p;
  assert_int_equal(strata_buffer_release(m.rt, b), STRATA_ESTATE);
  assert_int_equal(strata_buffer_acquire(m.rt, b, 0, &p), STRATA_EINVAL);
  assert_int_equal(strata_buffer_acquire(m.rt, b, STRATA_R, NULL),
                   STRATA_EINVAL);
  /* A writer runs on a card; acquire waits for it and brings its data. */
  submit_fill(m.rt, k, b, 5);
  assert_int_equal(strata_buffer_acquire(m.rt, b, STRATA_RW, &p), 0);
  check_filled(p, 5);
  assert_int_equal(strata_buffer_acquire(m.rt, b, STRATA_R, &p), STRATA_EBUSY);
  assert_int_equal(strata_buffer_unregister(m.rt, b), STRATA_EBUSY);
  /* A task submitted now waits for the release, and sees what the
   * application wrote in the meantime. */
  strata_kernel_t add = test_register_cpu(m.rt, "add", add_kernel);
  strata_task_t t;
  assert_int_equal(strata_task_create(m.rt, add, &t), 0);
  assert_int_equal(strata_task_access(m.rt, t, b, STRATA_RW), 0);
  assert_int_equal(strata_task_submit(m.rt, t), 0);
  test_sleep_ms(20);
  strata_task_info_t ti = {.struct_size = sizeof ti};
  assert_int_equal(strata_task_info(m.rt, t, &ti), 0);
  assert_true(ti.state != STRATA_TASK_DONE);
  ((uint64_t *)p)[0] = 1000;
  assert_int_equal(strata_buffer_release(m.rt, b), 0);
  assert_int_equal(strata_task_wait(m.rt, t), 0);
  assert_int_equal(strata_task_release(m.rt, t), 0);
  assert_int_equal(strata_buffer_acquire(m.rt, b, STRATA_R, &p), 0);
  assert_int_equal(((uint64_t *)p)[0], 1001);
  assert_int_equal(((uint64_t *)p)[1], 5 + 1 + 1);
  assert_int_equal(strata_buffer_release(m.rt, b), 0);
  assert_int_equal(strata_buffer_release(m.rt, b), STRATA_ESTATE);
  assert_int_equal(strata_buffer_unregister(m.rt, b), 0);
  assert_int_equal(strata_buffer_acquire(m.rt, b, STRATA_R, &p), STRATA_ENOENT);
  assert_int_equal(strata_buffer_release(m.rt, b), STRATA_ENOENT);
  test_sim_destroy(&m);
}

/* {=== Admission: a task that fits nowhere ===} */

static void test_memory_enospc_at_submit(void **state) {
  (void)state;
  test_sim_rt_t m;
  test_sim_start(&m, "sim", tiny_pair(NULL, NULL), 0);
  strata_kernel_t k = test_register_cpu(m.rt, "fill", fill_kernel);
  /* 16 KiB: more than either card (12 and 8 KiB). */
  static uint64_t big[2][1024];
  strata_buffer_t b[2];
  for (int i = 0; i < 2; i++)
    assert_int_equal(strata_buffer_register(m.rt, big[i], sizeof big[i], &b[i]),
                     0);
  strata_task_t t;
  uint64_t v = 1;
  assert_int_equal(strata_task_create(m.rt, k, &t), 0);
  assert_int_equal(strata_task_access(m.rt, t, b[0], STRATA_W), 0);
  assert_int_equal(strata_task_access(m.rt, t, b[1], STRATA_W), 0);
  assert_int_equal(strata_task_set_args(m.rt, t, &v, sizeof v), 0);
  assert_int_equal(strata_task_submit(m.rt, t), STRATA_ENOSPC);
  assert_true(test_log_has(&m.log, "at once"));
  assert_int_equal(strata_task_release(m.rt, t), 0);
  /* One of them alone fits the HBM card. */
  submit_fill(m.rt, k, b[0], 3);
  for (int i = 0; i < 2; i++)
    assert_int_equal(strata_buffer_unregister(m.rt, b[i]), 0);
  assert_int_equal(big[0][1023], 3 + 1023);
  test_sim_destroy(&m);

  /* With the host CPUs present the same task runs there. */
  test_sim_start(&m, "cpu,sim", tiny_pair(NULL, NULL), 1);
  k = test_register_cpu(m.rt, "fill", fill_kernel);
  for (int i = 0; i < 2; i++)
    assert_int_equal(strata_buffer_register(m.rt, big[i], sizeof big[i], &b[i]),
                     0);
  assert_int_equal(strata_task_create(m.rt, k, &t), 0);
  assert_int_equal(strata_task_access(m.rt, t, b[0], STRATA_W), 0);
  assert_int_equal(strata_task_access(m.rt, t, b[1], STRATA_W), 0);
  assert_int_equal(strata_task_set_args(m.rt, t, &v, sizeof v), 0);
  assert_int_equal(strata_task_submit(m.rt, t), 0);
  assert_int_equal(strata_task_wait(m.rt, t), 0);
  strata_task_info_t ti = {.struct_size = sizeof ti};
  assert_int_equal(strata_task_info(m.rt, t, &ti), 0);
  assert_int_equal(ti.device, test_device_of(m.rt, STRATA_CLASS_CPU));
  assert_int_equal(strata_task_release(m.rt, t), 0);
  for (int i = 0; i < 2; i++)
    assert_int_equal(strata_buffer_unregister(m.rt, b[i]), 0);
  test_sim_destroy(&m);
}

/* {=== Spill directory ===} */

/* Files in dir and the directories it holds (the runtime's private one). */
static unsigned spill_files(const char *dir) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  unsigned n = 0;
  struct dirent *e;
  char path[1024];
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    n += S_ISDIR(st.st_mode) ? spill_files(path) : 1;
  }
  closedir(d);
  return n;
}

/* Flip one byte of every file in dir. */
static void corrupt_spill_files(const char *dir) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  struct dirent *e;
  char path[1024];
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    if (S_ISDIR(st.st_mode)) {
      corrupt_spill_files(path);
      continue;
    }
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    int c = fgetc(f);
    fseek(f, 0, SEEK_SET);
    fputc(c ^ 0x5a, f);
    fclose(f);
  }
  closedir(d);
}

static const char *spill_dir(const char *name) {
  static char dir[512];
  snprintf(dir, sizeof dir, "%s/%s", tmpdir, name);
  if (mkdir(dir, 0700) && errno != EEXIST)
    fail_msg("mkdir %s: %s", dir, strerror(errno));
  return dir;
}

static void test_memory_spill_and_read_back(void **state) {
  (void)state;
  /* Owned buffers under a 6 KiB cap on host memory: 48 KiB of them live
   * mostly in spill files, and a DAG on the CPU and the cards still gives
   * the sequential result. */
  const char *dir = spill_dir("spill-dag");
  test_sim_rt_t m;
  test_sim_opts(&m, "cpu,sim", tiny_pair(NULL, NULL), 1);
  m.o.host_bytes = 6 * KIB;
  m.o.spill_dir = dir;
  m.o.device_tiers = "host,spill";
  test_sim_create(&m);
  int n = strata_memory_node_count(m.rt);
  assert_int_equal(n, 4); /* host, spill, two cards */
  int spill = -1;
  for (int i = 0; i < n; i++)
    if (node_info(m.rt, i).kind == STRATA_NODE_SPILL)
      spill = i;
  assert_true(spill >= 0);
  run_dag(&m, 1500, 6, true);
  strata_memory_node_info_t host = node_info(m.rt, 0);
  assert_int_equal(host.kind, STRATA_NODE_HOST);
  assert_true(host.writebacks > 0); /* to the spill directory */
  assert_true(host.used <= 6 * KIB);
  strata_link_stats_t back = {.struct_size = sizeof back};
  assert_int_equal(strata_link_stats(m.rt, spill, 0, &back), 0);
  assert_true(back.copies > 0);          /* read back */
  assert_int_equal(spill_files(dir), 0); /* unregistering removed them */
  test_sim_destroy(&m);
}

static void test_memory_spill_checksum(void **state) {
  (void)state;
  const char *dir = spill_dir("spill-corrupt");
  test_sim_rt_t m;
  test_sim_opts(&m, "cpu,sim", tiny_pair(NULL, NULL), 1);
  m.o.host_bytes = 2 * KIB;
  m.o.spill_dir = dir;
  test_sim_create(&m);
  enum { N = 4 };
  strata_buffer_t h[N];
  void *p;
  for (int b = 0; b < N; b++) {
    assert_int_equal(strata_buffer_create(m.rt, BUF_BYTES, &h[b]), 0);
    assert_int_equal(strata_buffer_acquire(m.rt, h[b], STRATA_W, &p), 0);
    for (size_t w = 0; w < WORDS; w++)
      ((uint64_t *)p)[w] = 10u * b + w;
    assert_int_equal(strata_buffer_release(m.rt, h[b]), 0);
  }
  assert_true(spill_files(dir) >= 2); /* only two fit under the cap */
  corrupt_spill_files(dir);
  /* A task that reads a corrupted buffer fails with EIO; the others
   * read back intact. */
  strata_kernel_t k = test_register_cpu(m.rt, "add", add_kernel);
  unsigned eio = 0;
  for (int b = 0; b < N; b++) {
    strata_task_t t;
    assert_int_equal(strata_task_create(m.rt, k, &t), 0);
    assert_int_equal(strata_task_access(m.rt, t, h[b], STRATA_RW), 0);
    assert_int_equal(strata_task_submit(m.rt, t), 0);
    int rc = strata_task_wait(m.rt, t);
    assert_int_equal(strata_task_release(m.rt, t), 0);
    if (rc == STRATA_EIO) {
      eio++;
      assert_int_equal(strata_buffer_acquire(m.rt, h[b], STRATA_R, &p),
                       STRATA_EIO);
      continue;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(strata_buffer_acquire(m.rt, h[b], STRATA_R, &p), 0);
    assert_int_equal(((uint64_t *)p)[3], 10u * b + 3 + 1);
    assert_int_equal(strata_buffer_release(m.rt, h[b]), 0);
  }
  assert_true(eio >= 2);
  assert_true(test_log_has(&m.log, "checksum"));
  for (int b = 0; b < N; b++) {
    int rc = strata_buffer_unregister(m.rt, h[b]);
    assert_true(rc == 0 || rc == STRATA_EIO);
  }
  assert_int_equal(spill_files(dir), 0);
  test_sim_destroy(&m);
}

/* {=== Failing copies and devices ===} */

static void test_memory_copy_retried(void **state) {
  (void)state;
  /* The GDDR card's 2nd and 3rd copies fail; the third attempt of that
   * copy succeeds (three attempts per copy). */
  test_sim_rt_t m;
  test_sim_opts(
      &m, "sim",
      tiny_pair(NULL, "faults = { copy_fail_at = 2, copy_fail_count = 2 },"),
      0);
  test_sim_create(&m);
  run_dag(&m, 800, 7, false);
  assert_int_equal(link_failures(m.rt), 2);
  for (int d = 0; d < 2; d++)
    assert_int_equal(test_device_info(m.rt, d).failed, 0);
  assert_true(test_log_has(&m.log, "attempt 1 of 3"));
  test_sim_destroy(&m);
}

static void test_memory_copy_fails_for_good(void **state) {
  (void)state;
  /* Every copy to or from the HBM card fails: the first task placed there
   * cannot get its inputs, the card is declared failed, and its work goes
   * to the other devices; the results are still right. */
  test_sim_rt_t m;
  test_sim_opts(
      &m, "cpu,sim",
      tiny_pair("faults = { copy_fail_at = 1, copy_fail_count = 100000 },",
                NULL),
      1);
  test_sim_create(&m);
  run_dag_ex(&m, 1500, 8, false, true);
  int h = test_device_of(m.rt, STRATA_CLASS_HBM);
  assert_int_equal(test_device_info(m.rt, h).failed, 1);
  assert_int_equal(
      test_device_info(m.rt, test_device_of(m.rt, STRATA_CLASS_GDDR)).failed,
      0);
  strata_device_stats_t st = {.struct_size = sizeof st};
  assert_int_equal(strata_device_stats(m.rt, h, &st), 0);
  assert_int_equal(st.tasks_run, 0);
  assert_true(test_log_has(&m.log, "keep failing"));
  assert_true(link_failures(m.rt) >= 3);
  test_sim_destroy(&m);
}

static void test_memory_writeback_fails_for_good(void **state) {
  (void)state;
  /* With eager write-back, a card whose results cannot be copied home is
   * declared failed at once, and nothing else runs there; the task whose
   * results could not be brought home runs again elsewhere, so nothing is
   * lost (the option's promise). */
  test_sim_rt_t m;
  test_sim_opts(
      &m, "sim",
      tiny_pair("faults = { copy_fail_at = 1, copy_fail_count = 100000 },",
                NULL),
      0);
  m.o.eager_writeback = 1;
  test_sim_create(&m);
  strata_kernel_t fill = test_register_cpu(m.rt, "fill", fill_kernel);
  strata_kernel_t add = test_register_cpu(m.rt, "add", add_kernel);
  int h = test_device_of(m.rt, STRATA_CLASS_HBM);
  static uint64_t a[WORDS], b[WORDS];
  strata_buffer_t ba, bb;
  assert_int_equal(strata_buffer_register(m.rt, a, sizeof a, &ba), 0);
  assert_int_equal(strata_buffer_register(m.rt, b, sizeof b, &bb), 0);
  submit_fill(m.rt, fill, ba, 40); /* write-only: runs on the HBM card */
  assert_int_equal(strata_runtime_wait_all(m.rt), 0);
  assert_int_equal(test_device_info(m.rt, h).failed, 1);
  assert_true(test_log_has(&m.log, "copying results home keeps failing"));
  strata_task_t t;
  assert_int_equal(strata_task_create(m.rt, add, &t), 0);
  assert_int_equal(strata_task_access(m.rt, t, bb, STRATA_RW), 0);
  assert_int_equal(strata_task_access(m.rt, t, ba, STRATA_R), 0);
  assert_int_equal(strata_task_submit(m.rt, t), 0);
  assert_int_equal(strata_task_wait(m.rt, t), 0);
  strata_task_info_t ti = {.struct_size = sizeof ti};
  assert_int_equal(strata_task_info(m.rt, t, &ti), 0);
  assert_int_equal(ti.device, test_device_of(m.rt, STRATA_CLASS_GDDR));
  assert_int_equal(strata_task_release(m.rt, t), 0);
  assert_int_equal(strata_buffer_unregister(m.rt, ba), 0);
  assert_int_equal(strata_buffer_unregister(m.rt, bb), 0);
  test_sim_destroy(&m);
}

static void test_memory_device_dies_work_moves(void **state) {
  (void)state;
  /* The HBM card dies after 50 tasks. With eager write-back every result
   * it produced is already at home, so its queued and running tasks
   * re-run elsewhere and nothing is lost. */
  test_sim_rt_t m;
  test_sim_opts(&m, "cpu,sim", tiny_pair("faults = { die_after = 50 },", NULL),
                1);
  m.o.eager_writeback = 1;
  test_sim_create(&m);
  /* The card completes works from its own thread: the results of the
   * tasks it ran last may still be on their way home when it dies, and
   * those tasks run again elsewhere (at most one per place of its depth). */
  run_dag_rerun(&m, 2000, 9, false, false, 8);
  int h = test_device_of(m.rt, STRATA_CLASS_HBM);
  assert_int_equal(test_device_info(m.rt, h).failed, 1);
  strata_device_stats_t st = {.struct_size = sizeof st};
  assert_int_equal(strata_device_stats(m.rt, h, &st), 0);
  assert_int_equal(st.tasks_run, 50);
  assert_true(test_log_has(&m.log, "injected failure after 50"));
  /* New work avoids it. */
  run_dag(&m, 200, 10, false);
  assert_int_equal(strata_device_stats(m.rt, h, &st), 0);
  assert_int_equal(st.tasks_run, 50);
  test_sim_destroy(&m);
}

static void test_memory_device_dies_data_lost(void **state) {
  (void)state;
  /* Without eager write-back, a buffer whose only copy was on the card
   * that died is lost: tasks that read it end STRATA_ELOST, and so does
   * acquiring it; other data and other tasks are unaffected. */
  test_sim_rt_t m;
  test_sim_start(&m, "sim", tiny_pair("faults = { die_after = 1 },", NULL), 0);
  strata_kernel_t fill = test_register_cpu(m.rt, "fill", fill_kernel);
  strata_kernel_t add = test_register_cpu(m.rt, "add", add_kernel);
  int h = test_device_of(m.rt, STRATA_CLASS_HBM);
  static uint64_t a[WORDS], b[WORDS];
  strata_buffer_t ba, bb;
  assert_int_equal(strata_buffer_register(m.rt, a, sizeof a, &ba), 0);
  assert_int_equal(strata_buffer_register(m.rt, b, sizeof b, &bb), 0);
  /* The default placement puts a task on the least loaded device, the
   * first on a tie: the HBM card. */
  submit_fill(m.rt, fill, ba, 40);
  assert_int_equal(strata_runtime_wait_all(m.rt), 0);
  strata_device_stats_t st = {.struct_size = sizeof st};
  assert_int_equal(strata_device_stats(m.rt, h, &st), 0);
  assert_int_equal(st.tasks_run, 1);
  /* The next task there makes the card die; its reader moves to the GDDR
   * card and finds the data gone. */
  strata_task_t t;
  assert_int_equal(strata_task_create(m.rt, add, &t), 0);
  assert_int_equal(strata_task_access(m.rt, t, bb, STRATA_RW), 0);
  assert_int_equal(strata_task_access(m.rt, t, ba, STRATA_R), 0);
  assert_int_equal(strata_task_submit(m.rt, t), 0);
  int rc = strata_task_wait(m.rt, t);
  assert_int_equal(strata_task_release(m.rt, t), 0);
  assert_int_equal(test_device_info(m.rt, h).failed, 1);
  assert_int_equal(rc, STRATA_ELOST);
  void *p;
  assert_int_equal(strata_buffer_acquire(m.rt, ba, STRATA_R, &p), STRATA_ELOST);
  /* Overwriting a lost buffer makes it whole again. */
  submit_fill(m.rt, fill, ba, 70);
  assert_int_equal(strata_buffer_acquire(m.rt, ba, STRATA_R, &p), 0);
  check_filled(p, 70);
  assert_int_equal(strata_buffer_release(m.rt, ba), 0);
  assert_int_equal(strata_buffer_unregister(m.rt, ba), 0);
  assert_int_equal(strata_buffer_unregister(m.rt, bb), 0);
  test_sim_destroy(&m);
}

static void test_memory_device_dies_no_other(void **state) {
  (void)state;
  /* The only device dies: queued tasks end STRATA_EDEVICE, the job says
   * so, nothing hangs, and later submissions fail cleanly too. The six
   * tasks wait for a gate task submitted after them, so that the card
   * cannot die (after the gate and three of them) while they are still
   * being submitted. */
  test_sim_rt_t m;
  test_sim_opts(
      &m, "sim",
      machine("lonely",
              SIM_DEV("gddr", "G", "8 * KiB", "faults = { die_after = 4 },"),
              NULL),
      0);
  test_sim_create(&m);
  strata_kernel_t fill = test_register_cpu(m.rt, "fill", fill_kernel);
  strata_job_t job;
  assert_int_equal(strata_job_create(m.rt, &job), 0);
  static uint64_t data[6][WORDS], gate_data[WORDS];
  strata_buffer_t h[6], gh;
  uint64_t v = 9;
  assert_int_equal(strata_buffer_register(m.rt, gate_data, BUF_BYTES, &gh), 0);
  strata_task_t gate;
  assert_int_equal(strata_task_create(m.rt, fill, &gate), 0);
  assert_int_equal(strata_task_access(m.rt, gate, gh, STRATA_W), 0);
  assert_int_equal(strata_task_set_args(m.rt, gate, &v, sizeof v), 0);
  for (int b = 0; b < 6; b++) {
    assert_int_equal(strata_buffer_register(m.rt, data[b], BUF_BYTES, &h[b]),
                     0);
    strata_task_t t;
    assert_int_equal(strata_task_create(m.rt, fill, &t), 0);
    assert_int_equal(strata_task_access(m.rt, t, h[b], STRATA_W), 0);
    assert_int_equal(strata_task_set_args(m.rt, t, &v, sizeof v), 0);
    assert_int_equal(strata_task_set_job(m.rt, t, job), 0);
    assert_int_equal(strata_task_depend(m.rt, t, gate), 0);
    assert_int_equal(strata_task_submit(m.rt, t), 0);
    assert_int_equal(strata_task_release(m.rt, t), 0);
  }
  assert_int_equal(strata_task_submit(m.rt, gate), 0);
  assert_int_equal(strata_task_wait(m.rt, gate), 0);
  assert_int_equal(strata_task_release(m.rt, gate), 0);
  assert_int_equal(strata_job_wait(m.rt, job), STRATA_EDEVICE);
  strata_job_info_t ji = {.struct_size = sizeof ji};
  assert_int_equal(strata_job_info(m.rt, job, &ji), 0);
  assert_int_equal(ji.submitted, 6);
  assert_int_equal(ji.succeeded, 3);
  assert_int_equal(ji.pending, 0);
  assert_int_equal(ji.status, STRATA_EDEVICE);
  assert_true(test_log_has(&m.log, "no other device"));
  assert_int_equal(strata_job_release(m.rt, job), 0);
  for (int b = 0; b < 6; b++)
    assert_true(strata_buffer_unregister(m.rt, h[b]) != STRATA_ENOENT);
  assert_true(strata_buffer_unregister(m.rt, gh) != STRATA_ENOENT);
  test_sim_destroy(&m);
}

/* {=== Prefetch ===} */

static strata_runtime_t *gate_rt;
static atomic_int gate_open;

/* Holds the only worker until the four tasks queued behind it had their
 * inputs prefetched (or 10 s pass, which fails the test). */
static int gate_kernel(const strata_kernel_call_t *c) {
  (void)c;
  for (int i = 0; i < 10000 && !atomic_load(&gate_open); i++) {
    totals_t t = device_totals(gate_rt);
    if (t.prefetches >= 4)
      break;
    test_sleep_ms(1);
  }
  return 0;
}

static void run_prefetch_job(int prefetch, totals_t *out) {
  test_sim_rt_t m;
  test_sim_opts(&m, "sim",
                machine("one", SIM_DEV("hbm", "H", "8 * KiB", ""), NULL), 0);
  m.o.prefetch = prefetch;
  test_sim_create(&m);
  gate_rt = m.rt;
  atomic_store(&gate_open, prefetch == 0); /* without prefetch, no wait */
  strata_kernel_t gate = test_register_cpu(m.rt, "gate", gate_kernel);
  strata_kernel_t add = test_register_cpu(m.rt, "add", add_kernel);
  static uint64_t src[4][WORDS];
  strata_buffer_t hs[4];
  strata_task_t t;
  assert_int_equal(strata_task_create(m.rt, gate, &t), 0);
  assert_int_equal(strata_task_submit(m.rt, t), 0);
  assert_int_equal(strata_task_release(m.rt, t), 0);
  for (int i = 0; i < 4; i++) {
    for (int w = 0; w < WORDS; w++)
      src[i][w] = (uint64_t)(i + 1);
    assert_int_equal(strata_buffer_register(m.rt, src[i], BUF_BYTES, &hs[i]),
                     0);
    assert_int_equal(strata_task_create(m.rt, add, &t), 0);
    assert_int_equal(strata_task_access(m.rt, t, hs[i], STRATA_RW), 0);
    assert_int_equal(strata_task_submit(m.rt, t), 0);
    assert_int_equal(strata_task_release(m.rt, t), 0);
  }
  assert_int_equal(strata_runtime_wait_all(m.rt), 0);
  *out = device_totals(m.rt);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(strata_buffer_unregister(m.rt, hs[i]), 0);
    assert_int_equal(src[i][0], (uint64_t)(i + 1) + 1);
  }
  test_sim_destroy(&m);
}

static void test_memory_prefetch(void **state) {
  (void)state;
  totals_t on, off;
  run_prefetch_job(1, &on);
  assert_int_equal(on.prefetches, 4);
  assert_int_equal(on.misses, 0); /* every input was there in time */
  assert_int_equal(on.hits, 4);
  run_prefetch_job(0, &off);
  assert_int_equal(off.prefetches, 0);
  assert_int_equal(off.misses, 4);
}

/* {=== Queries and options ===} */

static void test_memory_nodes_and_links(void **state) {
  (void)state;
  const char *dir = spill_dir("spill-nodes");
  test_sim_rt_t m;
  test_sim_opts(&m, "cpu,sim", tiny_pair(NULL, NULL), 1);
  m.o.pinned_bytes = 4 * KIB;
  m.o.spill_dir = dir;
  m.o.device_bytes = 4 * KIB; /* caps both cards below their size */
  test_sim_create(&m);
  assert_int_equal(strata_memory_node_count(m.rt), 5);
  assert_int_equal(strata_memory_node_count(NULL), STRATA_EINVAL);
  for (int n = 0; n < 5; n++) {
    strata_memory_node_info_t i = node_info(m.rt, n);
    assert_int_equal(i.index, n);
    if (i.kind == STRATA_NODE_DEVICE) {
      assert_int_equal(i.capacity, 4 * KIB);
      assert_true(i.device >= 0);
      assert_int_equal(test_device_info(m.rt, i.device).memory_node, n);
    } else {
      assert_int_equal(i.device, -1);
    }
    if (i.kind == STRATA_NODE_PINNED)
      assert_int_equal(i.capacity, 4 * KIB);
  }
  assert_int_equal(node_info(m.rt, 0).kind, STRATA_NODE_HOST);
  int cpu = test_device_of(m.rt, STRATA_CLASS_CPU);
  assert_int_equal(test_device_info(m.rt, cpu).memory_node, 0);
  strata_memory_node_info_t i = {.struct_size = sizeof i};
  assert_int_equal(strata_memory_node_info(m.rt, 5, &i), STRATA_ERANGE);
  assert_int_equal(strata_memory_node_info(m.rt, -1, &i), STRATA_ERANGE);
  assert_int_equal(strata_memory_node_info(NULL, 0, &i), STRATA_EINVAL);
  i.struct_size = 0;
  assert_int_equal(strata_memory_node_info(m.rt, 0, &i), STRATA_EINVAL);
  /* An older, smaller struct gets the fields it knows. */
  struct {
    size_t struct_size;
    int index;
  } small = {sizeof small, -1};
  assert_int_equal(strata_memory_node_info(m.rt, 2, (void *)&small), 0);
  assert_int_equal(small.index, 2);
  strata_link_stats_t l = {.struct_size = sizeof l};
  assert_int_equal(strata_link_stats(m.rt, 0, 5, &l), STRATA_ERANGE);
  assert_int_equal(strata_link_stats(m.rt, -1, 0, &l), STRATA_ERANGE);
  assert_int_equal(strata_link_stats(m.rt, 0, 0, NULL), STRATA_EINVAL);
  assert_int_equal(strata_link_stats(m.rt, 0, 0, &l), 0);
  assert_int_equal(l.bytes, 0);
  test_sim_destroy(&m);
}

static void test_memory_bad_options(void **state) {
  (void)state;
  test_sim_rt_t m;
  test_sim_opts(&m, "cpu,sim", tiny_pair(NULL, NULL), 1);
  m.o.device_tiers = "pinned,host"; /* no pinned tier configured */
  assert_int_equal(strata_runtime_create(&m.o, &m.rt), STRATA_EINVAL);
  assert_true(test_log_has(&m.log, "pinned"));
  test_alloc_assert_clean(&m.alloc);
  test_sim_opts(&m, "cpu,sim", tiny_pair(NULL, NULL), 1);
  m.o.device_tiers = "host,disk";
  assert_int_equal(strata_runtime_create(&m.o, &m.rt), STRATA_EINVAL);
  assert_true(test_log_has(&m.log, "disk"));
  test_alloc_assert_clean(&m.alloc);
}

static void test_memory_bad_machine(void **state) {
  (void)state;
  test_sim_rt_t m;
  const char *path =
      machine("bad", SIM_DEV("hbm", "H", "-1 * KiB", ""), "name = 'bad',");
  test_sim_opts(&m, "cpu,sim", path, 1);
  assert_int_equal(strata_runtime_create(&m.o, &m.rt), STRATA_EBACKEND);
  assert_true(test_log_has(&m.log, path));
  assert_true(test_log_has(&m.log, "memory"));
  test_alloc_assert_clean(&m.alloc);
  /* Not required: the runtime starts without the sim devices. */
  test_sim_opts(&m, "cpu,sim", path, 1);
  m.o.required_backends = NULL;
  test_sim_create(&m);
  assert_int_equal(strata_device_count(m.rt), 1);
  test_sim_destroy(&m);
  /* Bad time options on a good machine: refused, and said why. */
  const char *good = tiny_pair(NULL, NULL);
  const char *bad_opts[][2] = {
      {"time=soon", "expected real or modelled"},
      {"time=real,skip_kernels=1", "skip_kernels needs modelled time"}};
  for (size_t i = 0; i < 2; i++) {
    test_sim_opts(&m, "sim", good, 0);
    snprintf(m.options, sizeof m.options, "sim:machine=%s,%s", good,
             bad_opts[i][0]);
    assert_int_equal(strata_runtime_create(&m.o, &m.rt), STRATA_EBACKEND);
    assert_true(test_log_has(&m.log, bad_opts[i][1]));
    test_alloc_assert_clean(&m.alloc);
  }
  /* No machine at all: the library never adds simulated devices. */
  test_sim_opts(&m, "cpu,sim", path, 1);
  m.o.backend_options = NULL;
  m.o.required_backends = NULL;
  test_sim_create(&m);
  assert_int_equal(strata_device_count(m.rt), 1);
  test_sim_destroy(&m);
}

static void test_memory_health_runs_hot(void **state) {
  (void)state;
  test_sim_rt_t m;
  test_sim_opts(
      &m, "sim",
      machine("hot",
              SIM_DEV("gddr", "G", "8 * KiB",
                      "faults = { hot_after = 3, hot_temperature = 92 },"),
              NULL),
      0);
  test_sim_create(&m);
  strata_health_t h = {.struct_size = sizeof h};
  assert_int_equal(strata_device_health(m.rt, 0, &h), 0);
  assert_true(h.temperature_c == 40);
  assert_true(h.power_w == 200);
  assert_int_equal(h.throttled, 0);
  strata_kernel_t fill = test_register_cpu(m.rt, "fill", fill_kernel);
  static uint64_t data[WORDS];
  strata_buffer_t b;
  assert_int_equal(strata_buffer_register(m.rt, data, sizeof data, &b), 0);
  for (int i = 0; i < 3; i++)
    submit_fill(m.rt, fill, b, (uint64_t)i);
  assert_int_equal(strata_runtime_wait_all(m.rt), 0);
  /* Readings are cached by the health thread: have it read them now. */
  assert_int_equal(strata_health_check(m.rt), 0);
  assert_int_equal(strata_device_health(m.rt, 0, &h), 0);
  assert_true(h.temperature_c == 92);
  assert_int_equal(h.throttled, 1);
  assert_int_equal(strata_device_health(m.rt, 1, &h), STRATA_ERANGE);
  assert_int_equal(strata_buffer_unregister(m.rt, b), 0);
  test_sim_destroy(&m);
}

static void test_memory_inject_faults(void **state) {
  (void)state;
  /* The same faults as the description's, injected from the API. */
  test_sim_rt_t m;
  test_sim_start(&m, "cpu,sim", tiny_pair(NULL, NULL), 1);
  int cpu = test_device_of(m.rt, STRATA_CLASS_CPU);
  int g = test_device_of(m.rt, STRATA_CLASS_GDDR);
  strata_health_t hl = {.struct_size = sizeof hl};
  assert_int_equal(strata_device_inject(m.rt, g, "temperature", 91), 0);
  assert_int_equal(strata_health_check(m.rt), 0);
  assert_int_equal(strata_device_health(m.rt, g, &hl), 0);
  assert_true(hl.temperature_c == 91);
  assert_int_equal(strata_device_inject(m.rt, g, "power", 420), 0);
  assert_int_equal(strata_health_check(m.rt), 0);
  assert_int_equal(strata_device_health(m.rt, g, &hl), 0);
  assert_true(hl.power_w == 420);
  assert_int_equal(strata_device_inject(m.rt, g, "temperature", -1000), 0);
  assert_int_equal(strata_health_check(m.rt), 0);
  assert_int_equal(strata_device_health(m.rt, g, &hl), 0);
  assert_true(hl.temperature_c == 40); /* the description's again */
  /* Bad input. */
  assert_int_equal(strata_device_inject(m.rt, g, "meltdown", 1), STRATA_EINVAL);
  assert_int_equal(strata_device_inject(m.rt, g, "copy_fail", 0.5),
                   STRATA_EINVAL);
  assert_int_equal(strata_device_inject(m.rt, g, "temperature", 1e9),
                   STRATA_EINVAL);
  assert_int_equal(strata_device_inject(m.rt, g, NULL, 1), STRATA_EINVAL);
  assert_int_equal(strata_device_inject(NULL, g, "die", 0), STRATA_EINVAL);
  assert_int_equal(strata_device_inject(m.rt, 3, "die", 0), STRATA_ERANGE);
  assert_int_equal(strata_device_inject(m.rt, cpu, "die", 0), STRATA_ENOTSUP);
  /* Two failing copies are retried; then the HBM card dies at its next
   * task and the work moves on. */
  assert_int_equal(strata_device_inject(m.rt, g, "copy_fail", 2), 0);
  run_dag(&m, 300, 11, false);
  assert_int_equal(link_failures(m.rt), 2);
  assert_int_equal(test_device_info(m.rt, g).failed, 0);
  test_sim_destroy(&m);

  /* On the cards alone, the first task goes to the HBM card (the first of
   * two idle devices), which dies and passes it to the GDDR card. */
  test_sim_start(&m, "sim", tiny_pair(NULL, NULL), 0);
  int h = test_device_of(m.rt, STRATA_CLASS_HBM);
  assert_int_equal(h, 0);
  assert_int_equal(strata_device_inject(m.rt, h, "die", 0), 0);
  strata_kernel_t fill = test_register_cpu(m.rt, "fill", fill_kernel);
  static uint64_t data[WORDS];
  strata_buffer_t b;
  assert_int_equal(strata_buffer_register(m.rt, data, BUF_BYTES, &b), 0);
  submit_fill(m.rt, fill, b, 50);
  assert_int_equal(strata_buffer_unregister(m.rt, b), 0);
  check_filled(data, 50);
  assert_int_equal(test_device_info(m.rt, h).failed, 1);
  assert_true(test_log_has(&m.log, "injected failure"));
  test_sim_destroy(&m);
}

/* {=== Modelled time ===} */

static atomic_int kernel_runs;

static int counting_kernel(const strata_kernel_call_t *c) {
  atomic_fetch_add(&kernel_runs, 1);
  return fill_kernel(c);
}

/* Ten FP64 tasks of 1 GFLOP on a 1 TFLOP/s card, each writing a 1 KiB
 * buffer: 1 ms each; one buffer for all (a chain), or one each
 * (independent, so a card with two workers runs two at a time). */
/* @return what strata_device_model said */
static int run_modelled(const char *extra_opts, int workers, bool chain,
                        strata_device_model_t *out, int *runs) {
  test_sim_rt_t m;
  char devs[512];
  snprintf(devs, sizeof devs, SIM_DEV("hbm", "H", "64 * KiB", "workers = %d,"),
           workers);
  test_sim_opts(&m, "sim", machine("modelled", devs, NULL), 0);
  snprintf(m.options, sizeof m.options, "sim:machine=%s/modelled.lua,%s",
           tmpdir, extra_opts);
  test_sim_create(&m);
  atomic_store(&kernel_runs, 0);
  strata_kernel_t k = test_register_cpu(m.rt, "count", counting_kernel);
  static uint64_t data[10][WORDS];
  strata_buffer_t b[10];
  register_all(m.rt, data, 10, b);
  for (int i = 0; i < 10; i++) {
    strata_task_t t;
    uint64_t v = 1;
    assert_int_equal(strata_task_create(m.rt, k, &t), 0);
    assert_int_equal(strata_task_access(m.rt, t, b[chain ? 0 : i], STRATA_W),
                     0);
    assert_int_equal(strata_task_set_args(m.rt, t, &v, sizeof v), 0);
    assert_int_equal(strata_task_set_attr(m.rt, t, "flops", "1e9"), 0);
    assert_int_equal(strata_task_set_attr(m.rt, t, "precision", "fp64"), 0);
    assert_int_equal(strata_task_submit(m.rt, t), 0);
    assert_int_equal(strata_task_release(m.rt, t), 0);
  }
  assert_int_equal(strata_runtime_wait_all(m.rt), 0);
  out->struct_size = sizeof *out;
  int rc = strata_device_model(m.rt, 0, out);
  if (rc)
    out->clock_ns = 0;
  for (int i = 0; i < 10; i++)
    assert_int_equal(strata_buffer_unregister(m.rt, b[i]), 0);
  *runs = atomic_load(&kernel_runs);
  test_sim_destroy(&m);
  return rc;
}

static void test_memory_modelled_time(void **state) {
  (void)state;
  strata_device_model_t dm;
  int runs;
  assert_int_equal(run_modelled("time=modelled", 1, true, &dm, &runs), 0);
  assert_int_equal(runs, 10);
  /* 10 ms of compute, plus the copies of the result home */
  assert_true(dm.busy_ns >= 10000000 && dm.busy_ns <= 10100000);
  assert_true(dm.clock_ns >= dm.busy_ns);
  assert_true(dm.clock_ns < 11000000);
  assert_int_equal(
      run_modelled("time=modelled,skip_kernels=1", 1, true, &dm, &runs), 0);
  assert_int_equal(runs, 0);
  assert_true(dm.busy_ns >= 10000000 && dm.busy_ns <= 10100000);
  /* Two workers run the ten independent tasks two at a time, each at
   * half the card's rate: 2 ms a task, 10 ms in all. */
  assert_int_equal(
      run_modelled("time=modelled,skip_kernels=1", 2, false, &dm, &runs), 0);
  assert_true(dm.busy_ns >= 20000000 && dm.busy_ns <= 20200000);
  assert_true(dm.clock_ns >= 10000000 && dm.clock_ns < 11000000);
  assert_int_equal(run_modelled("time=real", 1, true, &dm, &runs),
                   STRATA_ENOTSUP);
  assert_int_equal(runs, 10);
  assert_int_equal(dm.clock_ns, 0); /* ENOTSUP in real time */
}

static strata_task_t modelled_task(strata_runtime_t *rt, strata_kernel_t k,
                                   const char *tier, const char *flops,
                                   strata_buffer_t in, strata_buffer_t out) {
  strata_task_t t;
  uint64_t v = 1;
  assert_int_equal(strata_task_create(rt, k, &t), 0);
  if (in.id)
    assert_int_equal(strata_task_access(rt, t, in, STRATA_R), 0);
  assert_int_equal(strata_task_access(rt, t, out, STRATA_W), 0);
  assert_int_equal(strata_task_set_args(rt, t, &v, sizeof v), 0);
  assert_int_equal(strata_task_set_attr(rt, t, "tier", tier), 0);
  assert_int_equal(strata_task_set_attr(rt, t, "flops", flops), 0);
  assert_int_equal(
      strata_task_set_attr(rt, t, "precision",
                           strcmp(tier, "train") ? "fp32" : "fp64"),
      0);
  assert_int_equal(strata_task_submit(rt, t), 0);
  return t;
}

/* The modelled schedule does not follow the order the host ran kernels
 * in: B waits (modelled) 2 ms for A's result from the slow card; C, run
 * by the host after B, was ready at once and fits the HBM card's idle
 * time before B. Booked after B, the card's clock would be 3 ms. */
static void test_memory_modelled_gaps(void **state) {
  (void)state;
  test_sim_rt_t m;
  test_sim_opts(&m, "sim", tiny_pair(NULL, NULL), 0);
  snprintf(m.options, sizeof m.options, "sim:machine=%s/pair.lua,%s", tmpdir,
           "time=modelled,skip_kernels=1");
  test_sim_create(&m);
  int h = test_device_of(m.rt, STRATA_CLASS_HBM);
  strata_kernel_t k = test_register_cpu(m.rt, "fill", fill_kernel);
  static uint64_t data[4][WORDS];
  strata_buffer_t b[4];
  register_all(m.rt, data, 4, b);
  void *p;
  assert_int_equal(strata_buffer_acquire(m.rt, b[2], STRATA_W, &p), 0);
  strata_buffer_t none = {0};
  /* A: 4 GFLOP FP32 on the GDDR card (2 TFLOP/s): 2 ms. */
  strata_task_t a = modelled_task(m.rt, k, "validate", "4e9", none, b[0]);
  strata_task_t bt = modelled_task(m.rt, k, "train", "1e6", b[0], b[1]);
  assert_int_equal(strata_task_wait(m.rt, bt), 0);
  assert_int_equal(strata_buffer_release(m.rt, b[2]), 0);
  /* C: 1 GFLOP FP64 on the HBM card (1 TFLOP/s): 1 ms. */
  strata_task_t c = modelled_task(m.rt, k, "train", "1e9", b[2], b[3]);
  assert_int_equal(strata_runtime_wait_all(m.rt), 0);
  strata_device_model_t dm = {.struct_size = sizeof dm};
  assert_int_equal(strata_device_model(m.rt, h, &dm), 0);
  assert_true(dm.busy_ns >= 1000000 && dm.busy_ns < 1100000);
  assert_true(dm.clock_ns >= 2000000);
  assert_true(dm.clock_ns < 2500000);
  strata_task_t ts[] = {a, bt, c};
  for (int i = 0; i < 3; i++)
    assert_int_equal(strata_task_release(m.rt, ts[i]), 0);
  for (int i = 0; i < 4; i++)
    assert_int_equal(strata_buffer_unregister(m.rt, b[i]), 0);
  test_sim_destroy(&m);
}

static int host_node(strata_runtime_t *rt) {
  for (int n = 0; n < strata_memory_node_count(rt); n++)
    if (node_info(rt, n).kind == STRATA_NODE_HOST)
      return n;
  fail_msg("no host node");
  return -1;
}

static uint64_t copies_between(strata_runtime_t *rt, int from, int to) {
  strata_link_stats_t l = {.struct_size = sizeof l};
  assert_int_equal(strata_link_stats(rt, from, to, &l), 0);
  return l.copies;
}

/* Data going from one card to another that is not its peer lands in its
 * host replica on the way: reading it on the host afterwards copies
 * nothing more from the first card. */
static void test_memory_stage_through_host(void **state) {
  (void)state;
  test_sim_rt_t m;
  test_sim_start(&m, "sim", tiny_pair(NULL, NULL), 0);
  int g = test_device_info(m.rt, test_device_of(m.rt, STRATA_CLASS_GDDR))
              .memory_node;
  int h = test_device_info(m.rt, test_device_of(m.rt, STRATA_CLASS_HBM))
              .memory_node;
  int host = host_node(m.rt);
  strata_kernel_t k = test_register_cpu(m.rt, "fill", fill_kernel);
  static uint64_t data[2][WORDS];
  strata_buffer_t b[2];
  register_all(m.rt, data, 2, b);
  strata_buffer_t none = {0};
  strata_task_t a = modelled_task(m.rt, k, "validate", "0", none, b[0]);
  strata_task_t r = modelled_task(m.rt, k, "train", "0", b[0], b[1]);
  assert_int_equal(strata_runtime_wait_all(m.rt), 0);
  strata_device_stats_t st = {.struct_size = sizeof st};
  assert_int_equal(
      strata_device_stats(m.rt, test_device_of(m.rt, STRATA_CLASS_GDDR), &st),
      0);
  assert_int_equal(st.tasks_run, 1); /* a ran on the GDDR card */
  assert_int_equal(copies_between(m.rt, g, host), 1);
  assert_int_equal(copies_between(m.rt, h, host), 0);
  void *p;
  assert_int_equal(strata_buffer_acquire(m.rt, b[0], STRATA_R, &p), 0);
  check_filled(p, 1);
  assert_int_equal(strata_buffer_release(m.rt, b[0]), 0);
  assert_int_equal(
      copies_between(m.rt, g, host) + copies_between(m.rt, h, host), 1);
  assert_int_equal(strata_task_release(m.rt, a), 0);
  assert_int_equal(strata_task_release(m.rt, r), 0);
  for (int i = 0; i < 2; i++)
    assert_int_equal(strata_buffer_unregister(m.rt, b[i]), 0);
  test_sim_destroy(&m);
}

/* {=== Main ===} */

int main(void) {
  test_tmpdir(tmpdir, sizeof tmpdir, "test-memory");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_memory_dag_cpu_and_two_sims),
      cmocka_unit_test(test_memory_dag_sims_only),
      cmocka_unit_test(test_memory_dag_owned_pinned_eager),
      cmocka_unit_test(test_memory_dag_three_devices_peers),
      cmocka_unit_test(test_memory_oversubscription_3x),
      cmocka_unit_test(test_memory_thrashing_reported),
      cmocka_unit_test(test_memory_modified_copy_never_dropped),
      cmocka_unit_test(test_memory_acquire_release),
      cmocka_unit_test(test_memory_enospc_at_submit),
      cmocka_unit_test(test_memory_spill_and_read_back),
      cmocka_unit_test(test_memory_spill_checksum),
      cmocka_unit_test(test_memory_copy_retried),
      cmocka_unit_test(test_memory_copy_fails_for_good),
      cmocka_unit_test(test_memory_writeback_fails_for_good),
      cmocka_unit_test(test_memory_device_dies_work_moves),
      cmocka_unit_test(test_memory_device_dies_data_lost),
      cmocka_unit_test(test_memory_device_dies_no_other),
      cmocka_unit_test(test_memory_prefetch),
      cmocka_unit_test(test_memory_nodes_and_links),
      cmocka_unit_test(test_memory_bad_options),
      cmocka_unit_test(test_memory_bad_machine),
      cmocka_unit_test(test_memory_health_runs_hot),
      cmocka_unit_test(test_memory_inject_faults),
      cmocka_unit_test(test_memory_modelled_time),
      cmocka_unit_test(test_memory_modelled_gaps),
      cmocka_unit_test(test_memory_stage_through_host),
  };
  return test_run_group(tests, sizeof tests / sizeof *tests, tmpdir);
}
