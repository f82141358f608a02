/* SPDX-License-Identifier: MIT */
/* tests/test_transfer2.c: how the transfer engine issues copies, on the
 * gather test plugins (tests/plugins/gather.c) and the peer cards: a
 * task's input copies are in flight together and may end in any order;
 * staging runs outside the device's worker, so a slow copy holds back
 * only its own task; no runtime lock is held across a copy (a backend
 * that calls back into the runtime from inside one does not deadlock);
 * the host hop between two cards that are not peers reuses the staging
 * pool; a backend's own pool gets freed blocks back at once; pinned
 * memory by host_register, and what happens when registration fails. */
#include "config.h"

#include "util.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <strata/data.h>
#include <strata/kernel.h>
#include <strata/runtime.h>
#include <strata/task.h>

typedef struct fx {
  test_log_t log;
  strata_runtime_opts_t o;
  strata_runtime_t *rt;
  char dir[512];
  char options[256];
} fx_t;

static void fx_opts(fx_t *f, const char *backends, const char *options) {
  test_log_init(&f->log);
  test_opts(&f->o, 1, &f->log);
  f->o.backend_path = test_env("STRATA_TEST_PLUGINS");
  f->o.backends = backends;
  f->o.required_backends = backends;
  snprintf(f->options, sizeof f->options, "%s", options);
  f->o.backend_options = f->options;
  f->o.health_period_ms = -1;
  f->o.prefetch = 0; /* every copy is the staging's own */
  f->o.log_level = STRATA_LOG_INFO;
  f->dir[0] = 0;
}

static void fx_create(fx_t *f) {
  int rc = strata_runtime_create(&f->o, &f->rt);
  if (rc)
    fail_msg("runtime: %s\n%s", strata_strerror(rc), f->log.text);
}

static void fx_destroy(fx_t *f) {
  assert_int_equal(strata_runtime_destroy(f->rt), 0);
  if (f->dir[0])
    test_tmpdir_remove(f->dir);
}

static size_t log_count(fx_t *f, const char *needle) {
  pthread_mutex_lock(&f->log.mu);
  size_t n = 0;
  for (const char *p = f->log.text; (p = strstr(p, needle)); p++)
    n++;
  pthread_mutex_unlock(&f->log.mu);
  return n;
}

/* A kernel with CUDA code (what the test cards run: its CPU code). */
static strata_kernel_t gpu_kernel(fx_t *f, const char *name,
                                  strata_kernel_fn fn) {
  const strata_kernel_impl_t impls[] = {{STRATA_IMPL_CPU, fn},
                                        {STRATA_IMPL_CUDA, fn}};
  strata_kernel_desc_t d = {
      .struct_size = sizeof d, .name = name, .impls = impls, .nimpls = 2};
  strata_kernel_t k;
  assert_int_equal(strata_kernel_register(f->rt, &d, &k), 0);
  return k;
}

static uint64_t pattern(unsigned k, size_t w) { return (k + 1) * 1000003u + w; }

/* {=== Out-of-order completion ===} */

enum { NIN = 4 };

/* buffers[NIN] (written) [k] = 1 when input k holds its pattern. */
static int check_inputs(const strata_kernel_call_t *c) {
  uint64_t *out = c->buffers[NIN];
  for (unsigned k = 0; k < NIN; k++) {
    const uint64_t *in = c->buffers[k];
    size_t words = c->sizes[k] / sizeof *in;
    out[k] = 1;
    for (size_t w = 0; w < words; w++)
      if (in[w] != pattern(k, w))
        out[k] = 0;
  }
  return 0;
}

/* The card ends copies only once four are in flight, newest first: the
 * task's four input copies were issued together, ended in reverse order,
 * and each landed where it belongs. */
static void test_transfer2_out_of_order(void **state) {
  (void)state;
  fx_t f;
  fx_opts(&f, "gather", "gather:busid=0000:0c:00.0,gather=4");
  fx_create(&f);
  strata_kernel_t k = gpu_kernel(&f, "check", check_inputs);
  static uint64_t in[NIN][4096 + NIN * 64];
  static uint64_t out[NIN];
  strata_buffer_t b[NIN + 1];
  strata_task_t t;
  assert_int_equal(strata_task_create(f.rt, k, &t), 0);
  for (unsigned i = 0; i < NIN; i++) {
    size_t words = 4096 + i * 64; /* sizes differ: a misplaced copy shows */
    for (size_t w = 0; w < words; w++)
      in[i][w] = pattern(i, w);
    assert_int_equal(
        strata_buffer_register(f.rt, in[i], words * sizeof(uint64_t), &b[i]),
        0);
    assert_int_equal(strata_task_access(f.rt, t, b[i], STRATA_R), 0);
  }
  assert_int_equal(strata_buffer_register(f.rt, out, sizeof out, &b[NIN]), 0);
  assert_int_equal(strata_task_access(f.rt, t, b[NIN], STRATA_W), 0);
  assert_int_equal(strata_task_submit(f.rt, t), 0);
  assert_int_equal(strata_task_wait(f.rt, t), 0);
  assert_int_equal(strata_task_release(f.rt, t), 0);
  assert_true(log_count(&f, "completed 4 together") >= 1);
  for (unsigned i = 0; i <= NIN; i++)
    assert_int_equal(strata_buffer_unregister(f.rt, b[i]), 0);
  for (unsigned i = 0; i < NIN; i++)
    assert_int_equal(out[i], 1);
  fx_destroy(&f);
}

/* {=== Staging outside the worker ===} */

static atomic_uint order;
static unsigned ran_at[2];

static int note_a(const strata_kernel_call_t *c) {
  (void)c;
  ran_at[0] = atomic_fetch_add(&order, 1) + 1;
  return 0;
}

static int note_b(const strata_kernel_call_t *c) {
  (void)c;
  ran_at[1] = atomic_fetch_add(&order, 1) + 1;
  return 0;
}

/* Task a's input copy is held by the card until the test releases it;
 * task b, submitted after it, is staged on another engine thread and run
 * by the card's one worker meanwhile: a slow copy holds back only its
 * own task, never the worker nor the other staging. */
static void test_transfer2_slow_copy_holds_only_its_task(void **state) {
  (void)state;
  enum { SLOW = 3 * 4096, FAST = 4096 };
  fx_t f;
  fx_opts(&f, "gather", "gather:busid=0000:0c:00.0,slow=12288");
  fx_create(&f);
  atomic_store(&order, 0);
  ran_at[0] = ran_at[1] = 0;
  static char da[SLOW], db[FAST];
  strata_buffer_t ba, bb;
  assert_int_equal(strata_buffer_register(f.rt, da, SLOW, &ba), 0);
  assert_int_equal(strata_buffer_register(f.rt, db, FAST, &bb), 0);
  strata_task_t ta, tb;
  assert_int_equal(strata_task_create(f.rt, gpu_kernel(&f, "a", note_a), &ta),
                   0);
  assert_int_equal(strata_task_access(f.rt, ta, ba, STRATA_R), 0);
  assert_int_equal(strata_task_submit(f.rt, ta), 0);
  assert_int_equal(strata_task_create(f.rt, gpu_kernel(&f, "b", note_b), &tb),
                   0);
  assert_int_equal(strata_task_access(f.rt, tb, bb, STRATA_R), 0);
  assert_int_equal(strata_task_submit(f.rt, tb), 0);
  assert_int_equal(strata_task_wait(f.rt, tb), 0);
  assert_int_equal(ran_at[1], 1);
  assert_int_equal(ran_at[0], 0); /* its copy cannot have ended */
  assert_int_equal(strata_device_inject(f.rt, 0, "release", 0), 0);
  assert_int_equal(strata_task_wait(f.rt, ta), 0);
  assert_int_equal(ran_at[0], 2);
  assert_int_equal(strata_task_release(f.rt, ta), 0);
  assert_int_equal(strata_task_release(f.rt, tb), 0);
  assert_int_equal(strata_buffer_unregister(f.rt, ba), 0);
  assert_int_equal(strata_buffer_unregister(f.rt, bb), 0);
  fx_destroy(&f);
}

/* {=== No lock across a copy ===} */

static strata_runtime_t *reenter_rt;
static atomic_uint reentered;

/* Called by the card from inside its copy or copy_async. Each query takes
 * the locks it needs: a lock held across the copy would deadlock here. */
static void reenter(void) {
  strata_runtime_t *rt = reenter_rt;
  if (!rt)
    return;
  int nodes = strata_memory_node_count(rt);
  for (int n = 0; n < nodes; n++) {
    strata_memory_node_info_t info = {.struct_size = sizeof info};
    assert_int_equal(strata_memory_node_info(rt, n, &info), 0);
    strata_link_stats_t l = {.struct_size = sizeof l};
    assert_int_equal(strata_link_stats(rt, n, 0, &l), 0);
  }
  strata_device_stats_t st = {.struct_size = sizeof st};
  assert_int_equal(strata_device_stats(rt, 0, &st), 0);
  atomic_fetch_add(&reentered, 1);
}

static int add_one(const strata_kernel_call_t *c) {
  uint64_t *p = c->buffers[0];
  for (size_t w = 0; w < c->sizes[0] / sizeof *p; w++)
    p[w] += 1;
  return 0;
}

/* Copies in, out for eviction (the card holds two of the eight buffers),
 * and home at unregister, each calling back into the runtime. */
static void reenter_run(const char *backend) {
  enum { NBUF = 8, WORDS = 8192, ROUNDS = 3 };
  fx_t f;
  char opts[128];
  snprintf(opts, sizeof opts, "%s:busid=0000:0c:00.0,reenter=%llx", backend,
           (unsigned long long)(uintptr_t)reenter);
  fx_opts(&f, backend, opts);
  f.o.device_bytes = 2 * WORDS * sizeof(uint64_t) + 4096;
  fx_create(&f);
  reenter_rt = f.rt;
  atomic_store(&reentered, 0);
  strata_kernel_t k = gpu_kernel(&f, "add", add_one);
  static uint64_t data[NBUF][WORDS];
  memset(data, 0, sizeof data);
  strata_buffer_t b[NBUF];
  for (int i = 0; i < NBUF; i++)
    assert_int_equal(
        strata_buffer_register(f.rt, data[i], sizeof data[i], &b[i]), 0);
  for (int r = 0; r < ROUNDS; r++)
    for (int i = 0; i < NBUF; i++) {
      strata_task_t t;
      assert_int_equal(strata_task_create(f.rt, k, &t), 0);
      assert_int_equal(strata_task_access(f.rt, t, b[i], STRATA_RW), 0);
      assert_int_equal(strata_task_submit(f.rt, t), 0);
      assert_int_equal(strata_task_release(f.rt, t), 0);
    }
  assert_int_equal(strata_runtime_wait_all(f.rt), 0);
  for (int i = 0; i < NBUF; i++)
    assert_int_equal(strata_buffer_unregister(f.rt, b[i]), 0);
  reenter_rt = NULL;
  for (int i = 0; i < NBUF; i++)
    for (size_t w = 0; w < WORDS; w++)
      assert_int_equal(data[i][w], ROUNDS);
  /* At least each buffer's first copy in (how many more rounds find
   * their buffer still on the card depends on timing). */
  assert_true(atomic_load(&reentered) >= NBUF);
  strata_memory_node_info_t info = {.struct_size = sizeof info};
  assert_int_equal(strata_memory_node_info(
                       f.rt, test_device_info(f.rt, 0).memory_node, &info),
                   0);
  assert_true(info.evictions > 0);
  fx_destroy(&f);
}

static void test_transfer2_copy_reenters_async(void **state) {
  (void)state;
  reenter_run("gather");
}

static void test_transfer2_copy_reenters_blocking(void **state) {
  (void)state;
  reenter_run("gather-sync");
}

/* {=== The staging pool ===} */

#define A_BUS "0000:0a:00.0"
#define B_BUS "0000:0b:00.0"

static const char pin_policy[] =
    "function place(task, machine)\n"
    "  if task.kernel == 'on-a' then return 'hbm' end\n"
    "  if task.kernel == 'on-b' then return 'gddr' end\n"
    "end\n";

static strata_kernel_t on_card(fx_t *f, const char *name) {
  return gpu_kernel(f, name, add_one);
}

static void run_on(fx_t *f, strata_kernel_t k, strata_buffer_t b) {
  strata_task_t t;
  assert_int_equal(strata_task_create(f->rt, k, &t), 0);
  assert_int_equal(strata_task_access(f->rt, t, b, STRATA_RW), 0);
  assert_int_equal(strata_task_submit(f->rt, t), 0);
  assert_int_equal(strata_task_wait(f->rt, t), 0);
  assert_int_equal(strata_task_release(f->rt, t), 0);
}

/* Two cards that are not peers: a buffer the first wrote, whose host
 * replica gave its memory up under the host cap, goes to the second
 * through the staging pool (a hop through host memory, a pooled buffer
 * at a time). Over many such copies, the pool's buffers (host_alloc of
 * the provider, peer-a) are allocated once and reused. */
static void test_transfer2_staging_pool_reused(void **state) {
  (void)state;
  enum { WORDS = 8192, ROUNDS = 40, SIZE = WORDS * sizeof(uint64_t) };
  fx_t f;
  fx_opts(&f, "peer-a,peer-b",
          "peer-a:class=hbm,busid=" A_BUS ";peer-b:class=gddr,busid=" B_BUS);
  test_tmpdir(f.dir, sizeof f.dir, "transfer2");
  f.o.policy = test_write_file(f.dir, "pin.lua", pin_policy);
  f.o.host_bytes = SIZE + SIZE / 2; /* one buffer's host memory, not two */
  fx_create(&f);
  strata_kernel_t ka = on_card(&f, "on-a"), kb = on_card(&f, "on-b");
  int a = 0, b = 1;
  if (strcmp(test_device_info(f.rt, 0).backend, "peer-a"))
    a = 1, b = 0;
  int na = test_device_info(f.rt, a).memory_node;
  int nb = test_device_info(f.rt, b).memory_node;
  assert_int_equal(test_device_info(f.rt, a).npeers, 0);
  uint64_t hops = 0;
  for (int r = 0; r < ROUNDS; r++) {
    strata_buffer_t x, filler;
    assert_int_equal(strata_buffer_create(f.rt, SIZE, &x), 0);
    run_on(&f, ka, x); /* x now lives on a; its host replica is stale */
    /* Room for the filler under the cap: x's stale host memory goes. */
    assert_int_equal(strata_buffer_create(f.rt, SIZE, &filler), 0);
    strata_link_stats_t before = {.struct_size = sizeof before};
    assert_int_equal(strata_link_stats(f.rt, na, 0, &before), 0);
    run_on(&f, kb, x); /* a -> host hop -> b */
    strata_link_stats_t after = {.struct_size = sizeof after};
    assert_int_equal(strata_link_stats(f.rt, na, 0, &after), 0);
    hops += after.copies - before.copies;
    assert_int_equal(strata_buffer_unregister(f.rt, filler), 0);
    void *p;
    assert_int_equal(strata_buffer_acquire(f.rt, x, STRATA_R, &p), 0);
    const uint64_t *w = p;
    assert_int_equal(w[0], 2);
    assert_int_equal(w[WORDS - 1], 2);
    assert_int_equal(strata_buffer_release(f.rt, x), 0);
    assert_int_equal(strata_buffer_unregister(f.rt, x), 0);
  }
  (void)nb;
  /* Most rounds went through the pool (a round whose host memory stayed
   * would go through the host replica instead). */
  assert_true(hops >= ROUNDS / 2);
  size_t allocs = log_count(&f, "host_alloc 1048576");
  assert_true(allocs >= 1);
  assert_true(allocs <= 8); /* STRATA__STAGING_MAX */
  fx_destroy(&f);
}

/* {=== Who caches device memory, who pins host memory ===} */

enum { PWORDS = 8192, PSIZE = PWORDS * sizeof(uint64_t), NBUF = 4 };

/* Write NBUF buffers on the one card (which holds two), then add to each
 * there again and check them all: every buffer left the card at least
 * once, by the tiers `tiers`, and came back. */
static void round_trip(fx_t *f, const char *tiers) {
  f->o.device_bytes = 2 * PSIZE;
  f->o.device_tiers = tiers;
  f->o.policy = test_write_file(f->dir, "pin.lua", pin_policy);
  fx_create(f);
  strata_kernel_t kb = on_card(f, "on-b");
  strata_buffer_t x[NBUF];
  for (int i = 0; i < NBUF; i++) {
    assert_int_equal(strata_buffer_create(f->rt, PSIZE, &x[i]), 0);
    run_on(f, kb, x[i]);
  }
  for (int i = 0; i < NBUF; i++)
    run_on(f, kb, x[i]);
  for (int i = 0; i < NBUF; i++) {
    void *p;
    assert_int_equal(strata_buffer_acquire(f->rt, x[i], STRATA_R, &p), 0);
    const uint64_t *w = p;
    assert_int_equal(w[0], 2);
    assert_int_equal(w[PWORDS - 1], 2);
    assert_int_equal(strata_buffer_release(f->rt, x[i]), 0);
  }
  strata_memory_node_info_t mi = {.struct_size = sizeof mi};
  assert_int_equal(strata_memory_node_info(
                       f->rt, test_device_info(f->rt, 0).memory_node, &mi),
                   0);
  assert_true(mi.evictions >= NBUF);
  for (int i = 0; i < NBUF; i++)
    assert_int_equal(strata_buffer_unregister(f->rt, x[i]), 0);
}

/* A card that declares its own pool (memory_pool) gets each freed block
 * back at once; without one, the core keeps freed blocks for reuse and
 * gives them back at destroy. */
static void pool_case(bool pool) {
  fx_t f;
  fx_opts(&f, "peer-b",
          pool ? "peer-b:class=gddr,busid=" B_BUS ",pool=1"
               : "peer-b:class=gddr,busid=" B_BUS);
  test_tmpdir(f.dir, sizeof f.dir, "transfer2");
  round_trip(&f, "host");
  size_t frees = log_count(&f, "mem_free");
  if (pool)
    assert_true(frees >= NBUF); /* every eviction's block, at once */
  else
    assert_int_equal(frees, 0); /* cached, given back at destroy */
  fx_destroy(&f);
}

static void test_transfer2_backend_pool_gets_blocks_back(void **state) {
  (void)state;
  pool_case(true);
  pool_case(false);
}

/* peer-b pins with host_register: the pinned tier's blocks are its
 * registered ranges, each unregistered once (never one it did not
 * register). */
static void test_transfer2_pinned_tier_registers(void **state) {
  (void)state;
  fx_t f;
  fx_opts(&f, "peer-b", "peer-b:class=gddr,busid=" B_BUS);
  test_tmpdir(f.dir, sizeof f.dir, "transfer2");
  f.o.pinned_bytes = 16 * PSIZE;
  round_trip(&f, "pinned,host");
  assert_true(log_count(&f, " registered ") >= 1);
  assert_int_equal(log_count(&f, "never registered"), 0);
  fx_destroy(&f);
  assert_int_equal(log_count(&f, " registered "),
                   log_count(&f, "unregistered "));
}

/* Where registration fails (a locked-memory limit), nothing fails for
 * it: the pinned tier is full, so evicted data goes to host memory; and
 * staging buffers (the hop between the card and the spill directory)
 * are plain memory, said once at WARN. */
static void register_fails_case(const char *tiers) {
  fx_t f;
  fx_opts(&f, "peer-b", "peer-b:class=gddr,busid=" B_BUS ",register=fail");
  test_tmpdir(f.dir, sizeof f.dir, "transfer2");
  f.o.pinned_bytes = 16 * PSIZE;
  f.o.spill_dir = f.dir;
  round_trip(&f, tiers);
  assert_int_equal(log_count(&f, " registered "), 0);
  fx_destroy(&f);
  assert_int_equal(log_count(&f, "never registered"), 0);
}

static void test_transfer2_register_fails_nothing_lost(void **state) {
  (void)state;
  register_fails_case("pinned,host");
  register_fails_case("spill");
}

/* Staging between the card and the spill directory goes through the
 * pool, whose buffers peer-b registers; when it cannot, they are plain
 * memory and the run says so once. */
static void test_transfer2_staging_plain_when_unpinnable(void **state) {
  (void)state;
  for (int fail = 0; fail < 2; fail++) {
    fx_t f;
    fx_opts(&f, "peer-b",
            fail ? "peer-b:class=gddr,busid=" B_BUS ",register=fail"
                 : "peer-b:class=gddr,busid=" B_BUS);
    test_tmpdir(f.dir, sizeof f.dir, "transfer2");
    f.o.spill_dir = f.dir;
    round_trip(&f, "spill");
    size_t pinned = log_count(&f, " registered 1048576 bytes");
    size_t warned = log_count(&f, "staging uses plain memory");
    if (fail) {
      assert_int_equal(pinned, 0);
      assert_int_equal(warned, 1);
    } else {
      assert_true(pinned >= 1);
      assert_int_equal(warned, 0);
    }
    fx_destroy(&f);
  }
}

/* A copy the card fails with STRATA_EDEVICE (gone) is not retried: one
 * attempt, then the failover; the task's data is still whole on the
 * host, where its CPU code may run it instead. */
static void test_transfer2_gone_device_copy_not_retried(void **state) {
  (void)state;
  fx_t f;
  fx_opts(&f, "peer-b", "peer-b:class=gddr,busid=" B_BUS ",copy=gone");
  test_tmpdir(f.dir, sizeof f.dir, "transfer2");
  f.o.policy = test_write_file(f.dir, "pin.lua", pin_policy);
  f.o.device_bytes = 2 * PSIZE;
  fx_create(&f);
  strata_kernel_t kb = on_card(&f, "on-b");
  strata_buffer_t x;
  assert_int_equal(strata_buffer_create(f.rt, PSIZE, &x), 0);
  strata_task_t t;
  assert_int_equal(strata_task_create(f.rt, kb, &t), 0);
  assert_int_equal(strata_task_access(f.rt, t, x, STRATA_RW), 0);
  assert_int_equal(strata_task_submit(f.rt, t), 0);
  (void)strata_task_wait(f.rt, t); /* ran elsewhere, or EDEVICE */
  assert_int_equal(strata_task_release(f.rt, t), 0);
  assert_true(log_count(&f, "attempt 1 of") >= 1);
  assert_int_equal(log_count(&f, "attempt 2 of"), 0);
  assert_int_equal(strata_buffer_unregister(f.rt, x), 0);
  fx_destroy(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_transfer2_out_of_order),
      cmocka_unit_test(test_transfer2_slow_copy_holds_only_its_task),
      cmocka_unit_test(test_transfer2_copy_reenters_async),
      cmocka_unit_test(test_transfer2_copy_reenters_blocking),
      cmocka_unit_test(test_transfer2_staging_pool_reused),
      cmocka_unit_test(test_transfer2_backend_pool_gets_blocks_back),
      cmocka_unit_test(test_transfer2_pinned_tier_registers),
      cmocka_unit_test(test_transfer2_register_fails_nothing_lost),
      cmocka_unit_test(test_transfer2_staging_plain_when_unpinnable),
      cmocka_unit_test(test_transfer2_gone_device_copy_not_retried),
  };
  return cmocka_run_group_tests_name("transfer2", tests, NULL, NULL);
}
