/* SPDX-License-Identifier: MIT */
/* tests/test_abi3.c: what backend ABI 3.0 offers, on the peer-a and
 * peer-b test plugins (tests/plugins/peer.c): direct copies between cards
 * of two backends, the pinned tier in memory a backend provides, managed
 * memory moved by the backend's prefetch, and the device facts. */
#include "config.h"

#include "util.h"

#include <stdio.h>
#include <string.h>

#include <strata/data.h>
#include <strata/kernel.h>
#include <strata/runtime.h>
#include <strata/task.h>

#define A_BUS "0000:0a:00.0"
#define B_BUS "0000:0b:00.0"

typedef struct fx {
  test_log_t log;
  strata_runtime_opts_t o;
  strata_runtime_t *rt;
  char dir[512]; /* holds the policy */
} fx_t;

/* Both peer cards stand for GPUs, so every kernel with CUDA code may run
 * on either: this policy keeps "on-a" on the HBM card and "on-b" on the
 * GDDR one, so that each test knows which card holds what. */
static const char pin_policy[] =
    "function place(task, machine)\n"
    "  if task.kernel == 'on-a' then return 'hbm' end\n"
    "  if task.kernel == 'on-b' then return 'gddr' end\n"
    "end\n";

static void fx_create_sized(fx_t *f, const char *backends, const char *options,
                            uint64_t device_bytes);

static void fx_create(fx_t *f, const char *backends, const char *options) {
  fx_create_sized(f, backends, options, 0);
}

/* With device_bytes (0: each card's own size). */
static void fx_create_sized(fx_t *f, const char *backends, const char *options,
                            uint64_t device_bytes) {
  test_log_init(&f->log);
  test_opts(&f->o, 1, &f->log);
  f->o.backend_path = test_env("STRATA_TEST_PLUGINS");
  f->o.backends = backends;
  f->o.required_backends = backends;
  f->o.backend_options = options;
  test_tmpdir(f->dir, sizeof f->dir, "abi3");
  f->o.policy = test_write_file(f->dir, "pin.lua", pin_policy);
  f->o.health_period_ms = -1;
  f->o.log_level = STRATA_LOG_INFO; /* what the plugins count, no more */
  f->o.device_bytes = device_bytes;
  assert_int_equal(strata_runtime_create(&f->o, &f->rt), 0);
}

static void fx_destroy(fx_t *f) {
  assert_int_equal(strata_runtime_destroy(f->rt), 0);
  test_tmpdir_remove(f->dir);
}

static size_t log_count(fx_t *f, const char *needle) {
  size_t n = 0;
  for (const char *p = f->log.text; (p = strstr(p, needle)); p++)
    n++;
  return n;
}

/* buffer[w] += w + 1 (or = w + 1 for a write-only access). */
static int bump(const strata_kernel_call_t *c) {
  uint64_t *p = c->buffers[0];
  for (size_t w = 0; w < c->sizes[0] / sizeof *p; w++)
    p[w] += w + 1;
  return 0;
}

static strata_kernel_t on_class(fx_t *f, const char *name,
                                strata_device_class_t cls) {
  /* The peer cards stand for GPUs: a candidate needs CUDA code, and they
   * run the CPU code (the CUDA entry is never called). */
  const strata_kernel_impl_t impls[] = {
      {STRATA_IMPL_CPU, bump},
      {cls == STRATA_CLASS_CPU ? STRATA_IMPL_CPU : STRATA_IMPL_CUDA, bump}};
  strata_kernel_desc_t d = {.struct_size = sizeof d,
                            .name = name,
                            .impls = impls,
                            .nimpls = cls == STRATA_CLASS_CPU ? 1 : 2};
  strata_kernel_t k;
  assert_int_equal(strata_kernel_register(f->rt, &d, &k), 0);
  return k;
}

static void run(fx_t *f, strata_kernel_t k, strata_buffer_t b) {
  strata_task_t t;
  assert_int_equal(strata_task_create(f->rt, k, &t), 0);
  assert_int_equal(strata_task_access(f->rt, t, b, STRATA_RW), 0);
  assert_int_equal(strata_task_submit(f->rt, t), 0);
  assert_int_equal(strata_task_release(f->rt, t), 0);
}

static int device_named(fx_t *f, const char *backend) {
  for (int i = 0; i < strata_device_count(f->rt); i++)
    if (!strcmp(test_device_info(f->rt, i).backend, backend))
      return i;
  fail_msg("no device of %s", backend);
  return -1;
}

/* {=== Peers across backends ===} */

static void test_abi3_cross_backend_peer_copy(void **state) {
  (void)state;
  fx_t f;
  fx_create(&f, "peer-a,peer-b",
            "peer-a:class=hbm,busid=" A_BUS ",peer=" B_BUS
            ";peer-b:class=gddr,busid=" B_BUS ",peer=" A_BUS);
  int a = device_named(&f, "peer-a"), b = device_named(&f, "peer-b");
  strata_device_info_t ia = test_device_info(f.rt, a);
  assert_int_equal(ia.npeers, 1);
  assert_true(ia.peer_gbps == 50.0f);
  /* The facts the backend reported. */
  assert_string_equal(ia.uuid, "GPU-peer-a");
  assert_int_equal(ia.cc_major, 9);
  assert_int_equal(ia.cc_minor, 0);
  assert_int_equal(ia.memory_bus_width, 5120);
  assert_int_equal(ia.pcie_gen, 5);
  assert_int_equal(ia.pcie_width, 16);
  assert_true(test_log_has(&f.log, "direct path peer-a-card (peer-a) -> "
                                   "peer-b-card (peer-b), 50.0 GB/s"));
  /* The matrix, as the C API shows it. */
  double bw = -1;
  assert_int_equal(strata_device_peer(f.rt, b, a, &bw), 1);
  assert_true(bw == 50e9);
  assert_int_equal(strata_device_peer(f.rt, a, b, NULL), 1);
  assert_int_equal(strata_device_peer(f.rt, a, a, &bw), 0);
  assert_true(bw == 0);
  assert_int_equal(strata_device_peer(f.rt, a, 9, NULL), STRATA_ERANGE);
  assert_int_equal(strata_device_peer(NULL, a, b, NULL), STRATA_EINVAL);
  enum { WORDS = 8192 };
  static uint64_t data[WORDS];
  memset(data, 0, sizeof data);
  strata_buffer_t buf;
  assert_int_equal(strata_buffer_register(f.rt, data, sizeof data, &buf), 0);
  run(&f, on_class(&f, "on-a", STRATA_CLASS_HBM), buf);
  run(&f, on_class(&f, "on-b", STRATA_CLASS_GDDR), buf);
  assert_int_equal(strata_runtime_wait_all(f.rt), 0);
  assert_int_equal(strata_buffer_unregister(f.rt, buf), 0);
  for (size_t w = 0; w < WORDS; w++)
    assert_int_equal(data[w], 2 * (w + 1));
  /* The bytes went card to card, made by the destination's backend. */
  strata_link_stats_t l = {.struct_size = sizeof l};
  assert_int_equal(strata_link_stats(f.rt, ia.memory_node,
                                     test_device_info(f.rt, b).memory_node, &l),
                   0);
  assert_int_equal(l.bytes, sizeof data);
  assert_int_equal(l.copies, 1);
  assert_true(test_log_has(&f.log, "peer-b: copy of 65536 bytes from foreign "
                                   "card " A_BUS));
  fx_destroy(&f);
}

/* One end only listing the other is no path. */
static void test_abi3_half_path_is_none(void **state) {
  (void)state;
  fx_t f;
  fx_create(&f, "peer-a,peer-b",
            "peer-a:busid=" A_BUS ",peer=" B_BUS ";peer-b:busid=" B_BUS);
  assert_int_equal(test_device_info(f.rt, 0).npeers, 0);
  assert_int_equal(test_device_info(f.rt, 1).npeers, 0);
  assert_true(test_log_has(&f.log, "not the other way: no direct path"));
  fx_destroy(&f);
}

/* {=== Pinned host memory ===} */

/* The pinned tier's blocks are peer-a's pinned memory (host_alloc), and
 * data evicted there comes back intact. */
static void test_abi3_pinned_tier_from_backend(void **state) {
  (void)state;
  fx_t f;
  test_log_init(&f.log);
  test_opts(&f.o, 1, &f.log);
  f.o.backend_path = test_env("STRATA_TEST_PLUGINS");
  f.o.backends = f.o.required_backends = "peer-a";
  f.o.backend_options = "peer-a:busid=" A_BUS;
  f.o.policy = "";
  f.o.health_period_ms = -1;
  f.o.log_level = STRATA_LOG_INFO;
  f.o.pinned_bytes = 8u << 20;
  f.o.device_tiers = "pinned";
  f.o.device_bytes = 1u << 20;
  assert_int_equal(strata_runtime_create(&f.o, &f.rt), 0);
  assert_true(test_log_has(&f.log, "pinned host memory from backend 'peer-a' "
                                   "(host_alloc)"));
  enum { N = 4, WORDS = (512u << 10) / sizeof(uint64_t) };
  static uint64_t data[N][WORDS];
  memset(data, 0, sizeof data);
  strata_buffer_t buf[N];
  strata_kernel_t k = on_class(&f, "on-a", STRATA_CLASS_HBM);
  for (int i = 0; i < N; i++) {
    assert_int_equal(
        strata_buffer_register(f.rt, data[i], sizeof data[i], &buf[i]), 0);
    run(&f, k, buf[i]);
  }
  assert_int_equal(strata_runtime_wait_all(f.rt), 0);
  for (int i = 0; i < N; i++)
    assert_int_equal(strata_buffer_unregister(f.rt, buf[i]), 0);
  for (int i = 0; i < N; i++)
    for (size_t w = 0; w < WORDS; w++)
      assert_int_equal(data[i][w], w + 1);
  /* A 1 MiB card holds two of the four: the others went to the pinned
   * tier, in blocks from the backend. */
  assert_true(log_count(&f, "host_alloc 524288") >= 1);
  fx_destroy(&f);
}

/* {=== Managed memory ===} */

static void test_abi3_managed_memory(void **state) {
  (void)state;
  fx_t f;
  /* copy=gone: any copy would fail the device; managed memory needs none,
   * in or out. */
  fx_create(&f, "peer-a", "peer-a:busid=" A_BUS ",managed=1,copy=gone");
  int a = device_named(&f, "peer-a");
  assert_int_equal(test_device_info(f.rt, a).managed, 1);
  enum { WORDS = 4096 };
  static uint64_t data[WORDS];
  for (size_t w = 0; w < WORDS; w++)
    data[w] = 7;
  strata_buffer_t buf;
  assert_int_equal(strata_buffer_register(f.rt, data, sizeof data, &buf), 0);
  strata_kernel_t k = on_class(&f, "on-a", STRATA_CLASS_HBM);
  run(&f, k, buf);
  run(&f, k, buf);
  assert_int_equal(strata_runtime_wait_all(f.rt), 0);
  assert_int_equal(strata_buffer_unregister(f.rt, buf), 0);
  for (size_t w = 0; w < WORDS; w++)
    assert_int_equal(data[w], 7 + 2 * (w + 1));
  /* Filled from the host by the CPU and moved with the prefetch, once:
   * the second task found it valid there. */
  assert_int_equal(log_count(&f, "managed_prefetch 32768 to 0"), 1);
  fx_destroy(&f);
}

/* strata_buffer_create_managed: one allocation (peer-a's managed_alloc),
 * used in place on the card that offers managed memory (copy=gone: any
 * copy through it would fail the card), moved there ahead of its tasks
 * and back before the host reads it; a card without managed memory gets a
 * copy, as of host memory. Freed with the buffer by the backend that
 * made it. */
static void test_abi3_shared_managed_buffer(void **state) {
  (void)state;
  fx_t f;
  fx_create(&f, "peer-a,peer-b",
            "peer-a:class=hbm,busid=" A_BUS ",managed=1,copy=gone"
            ";peer-b:class=gddr,busid=" B_BUS);
  enum { WORDS = 4096 };
  strata_buffer_t buf;
  assert_int_equal(
      strata_buffer_create_managed(f.rt, WORDS * sizeof(uint64_t), &buf), 0);
  uint64_t *p;
  assert_int_equal(strata_buffer_acquire(f.rt, buf, STRATA_W, (void **)&p), 0);
  for (size_t w = 0; w < WORDS; w++)
    p[w] = 7;
  assert_int_equal(strata_buffer_release(f.rt, buf), 0);
  strata_kernel_t a = on_class(&f, "on-a", STRATA_CLASS_HBM);
  strata_kernel_t b = on_class(&f, "on-b", STRATA_CLASS_GDDR);
  run(&f, a, buf);
  run(&f, a, buf);
  assert_int_equal(strata_runtime_wait_all(f.rt), 0);
  assert_int_equal(log_count(&f, "managed_prefetch 32768 to 0"), 1);
  /* The host reads it where it is, once it is back. */
  uint64_t *q;
  assert_int_equal(strata_buffer_acquire(f.rt, buf, STRATA_R, (void **)&q), 0);
  assert_ptr_equal(q, p);
  for (size_t w = 0; w < WORDS; w++)
    assert_int_equal(q[w], 7 + 2 * (w + 1));
  assert_int_equal(strata_buffer_release(f.rt, buf), 0);
  assert_int_equal(log_count(&f, "managed_prefetch 32768 to -1"), 1);
  run(&f, b, buf); /* on the card without managed memory: a copy */
  run(&f, a, buf); /* and back in place */
  assert_int_equal(strata_runtime_wait_all(f.rt), 0);
  assert_int_equal(strata_buffer_unregister(f.rt, buf), 0);
  assert_int_equal(log_count(&f, "managed_prefetch 32768 to 0"), 2);
  assert_int_equal(log_count(&f, "mem_free 32768"), 1); /* the allocation */
  for (int d = 0; d < strata_device_count(f.rt); d++)
    assert_int_equal(test_device_info(f.rt, d).failed, 0);
  fx_destroy(&f);
}

/* A shared managed buffer's alias holds none of the card's memory, so it
 * is never in the card's LRU: pressure from other buffers evicts them,
 * never the alias (whose "eviction" would move it back to the host). */
static void test_abi3_managed_alias_not_evicted(void **state) {
  (void)state;
  fx_t f;
  fx_create_sized(&f, "peer-a", "peer-a:busid=" A_BUS ",managed=1", 64u << 10);
  strata_kernel_t k = on_class(&f, "on-a", STRATA_CLASS_HBM);
  strata_buffer_t m;
  assert_int_equal(strata_buffer_create_managed(f.rt, 32768, &m), 0);
  run(&f, k, m);
  assert_int_equal(strata_runtime_wait_all(f.rt), 0);
  enum { N = 6 }; /* 192 KiB of ordinary buffers on a 64 KiB card */
  strata_buffer_t b[N];
  for (int i = 0; i < N; i++) {
    assert_int_equal(strata_buffer_create(f.rt, 32768, &b[i]), 0);
    run(&f, k, b[i]);
  }
  assert_int_equal(strata_runtime_wait_all(f.rt), 0);
  assert_int_equal(log_count(&f, "managed_prefetch 32768 to -1"), 0);
  for (int i = 0; i < N; i++)
    assert_int_equal(strata_buffer_unregister(f.rt, b[i]), 0);
  assert_int_equal(strata_buffer_unregister(f.rt, m), 0);
  fx_destroy(&f);
}

/* Writes every word of its buffer, slowly. */
static int set_slowly(const strata_kernel_call_t *c) {
  uint64_t *p = c->buffers[0];
  for (size_t w = 0; w < c->sizes[0] / sizeof *p; w++)
    p[w] = 1000;
  test_sleep_ms(300);
  return 0;
}

/* The last writer of a shared managed buffer ran on a card without
 * managed memory, so its only valid copy is there; a write-only task then
 * writes the buffer in place on the managed card. Pressure on the first
 * card meanwhile must not write its old copy back into the managed
 * memory under the running task. */
static void test_abi3_managed_writeback_waits(void **state) {
  (void)state;
  fx_t f;
  fx_create_sized(&f, "peer-a,peer-b",
                  "peer-a:class=hbm,busid=" A_BUS ",managed=1"
                  ";peer-b:class=gddr,busid=" B_BUS,
                  64u << 10);
  strata_kernel_t kb = on_class(&f, "on-b", STRATA_CLASS_GDDR);
  const strata_kernel_impl_t impls[] = {{STRATA_IMPL_CPU, set_slowly},
                                        {STRATA_IMPL_CUDA, set_slowly}};
  strata_kernel_desc_t d = {
      .struct_size = sizeof d, .name = "on-a", .impls = impls, .nimpls = 2};
  strata_kernel_t ka;
  assert_int_equal(strata_kernel_register(f.rt, &d, &ka), 0);
  strata_buffer_t m;
  assert_int_equal(strata_buffer_create_managed(f.rt, 32768, &m), 0);
  run(&f, kb, m);
  strata_task_t t;
  assert_int_equal(strata_task_create(f.rt, ka, &t), 0);
  assert_int_equal(strata_task_access(f.rt, t, m, STRATA_W), 0);
  assert_int_equal(strata_task_submit(f.rt, t), 0);
  assert_int_equal(strata_task_release(f.rt, t), 0);
  test_sleep_ms(100); /* it runs */
  strata_buffer_t b[4];
  for (int i = 0; i < 4; i++) {
    assert_int_equal(strata_buffer_create(f.rt, 32768, &b[i]), 0);
    run(&f, kb, b[i]);
  }
  assert_int_equal(strata_runtime_wait_all(f.rt), 0);
  uint64_t *q;
  assert_int_equal(strata_buffer_acquire(f.rt, m, STRATA_R, (void **)&q), 0);
  for (size_t w = 0; w < 4096; w++)
    assert_int_equal(q[w], 1000);
  assert_int_equal(strata_buffer_release(f.rt, m), 0);
  for (int i = 0; i < 4; i++)
    assert_int_equal(strata_buffer_unregister(f.rt, b[i]), 0);
  assert_int_equal(strata_buffer_unregister(f.rt, m), 0);
  fx_destroy(&f);
}

/* A shared managed buffer takes no room on a card that uses it in place:
 * one twice the card's size runs there (unified memory pages it), where an
 * ordinary buffer that size is refused. */
static void test_abi3_managed_larger_than_card(void **state) {
  (void)state;
  fx_t f;
  fx_create_sized(&f, "peer-a", "peer-a:busid=" A_BUS ",managed=1", 64u << 10);
  strata_kernel_t k = on_class(&f, "on-a", STRATA_CLASS_HBM);
  enum { WORDS = 16384 }; /* 128 KiB */
  strata_buffer_t m, big;
  assert_int_equal(
      strata_buffer_create_managed(f.rt, WORDS * sizeof(uint64_t), &m), 0);
  run(&f, k, m);
  run(&f, k, m);
  assert_int_equal(strata_runtime_wait_all(f.rt), 0);
  uint64_t *q;
  assert_int_equal(strata_buffer_acquire(f.rt, m, STRATA_R, (void **)&q), 0);
  for (size_t w = 0; w < WORDS; w++)
    assert_int_equal(q[w], 2 * (w + 1));
  assert_int_equal(strata_buffer_release(f.rt, m), 0);
  assert_int_equal(strata_buffer_unregister(f.rt, m), 0);
  assert_int_equal(strata_buffer_create(f.rt, WORDS * sizeof(uint64_t), &big),
                   0);
  strata_task_t t;
  assert_int_equal(strata_task_create(f.rt, k, &t), 0);
  assert_int_equal(strata_task_access(f.rt, t, big, STRATA_RW), 0);
  assert_int_equal(strata_task_submit(f.rt, t), STRATA_ENOSPC);
  assert_int_equal(strata_task_release(f.rt, t), 0);
  assert_int_equal(strata_buffer_unregister(f.rt, big), 0);
  fx_destroy(&f);
}

/* Without a device that offers managed memory: refused, and said why. */
static void test_abi3_managed_buffer_refused(void **state) {
  (void)state;
  fx_t f;
  fx_create(&f, "peer-b", "peer-b:class=gddr,busid=" B_BUS);
  strata_buffer_t buf;
  assert_int_equal(strata_buffer_create_managed(f.rt, 4096, &buf),
                   STRATA_ENOTSUP);
  assert_true(test_log_has(&f.log, "a managed buffer needs a device that "
                                   "offers managed memory"));
  assert_int_equal(strata_buffer_create_managed(f.rt, 0, &buf), STRATA_EINVAL);
  fx_destroy(&f);
}

/* {=== Health cache ===} */

/* A backend whose health() blocks does not hold up submission, placement
 * or strata_device_health: they read the cache the health thread keeps. */
static void test_abi3_health_cache_never_waits(void **state) {
  (void)state;
  fx_t f;
  test_log_init(&f.log);
  test_opts(&f.o, 1, &f.log);
  f.o.backend_path = test_env("STRATA_TEST_PLUGINS");
  f.o.backends = f.o.required_backends = "peer-a";
  f.o.backend_options = "peer-a:busid=" A_BUS ",health=block";
  f.o.health_period_ms = 1;
  f.o.log_level = STRATA_LOG_INFO;
  assert_int_equal(strata_runtime_create(&f.o, &f.rt), 0);
  /* The first round answered; the next one blocks in the backend. */
  int rc = STRATA_EAGAIN;
  for (int i = 0; i < 5000 && rc; i++) {
    rc = strata_device_inject(f.rt, 0, "blocked", 0);
    if (rc)
      test_sleep_ms(1);
  }
  assert_int_equal(rc, 0);
  strata_health_t h = {.struct_size = sizeof h};
  assert_int_equal(strata_device_health(f.rt, 0, &h), 0);
  assert_true(h.temperature_c == 50);
  enum { WORDS = 512 };
  static uint64_t data[WORDS];
  memset(data, 0, sizeof data);
  strata_buffer_t buf;
  assert_int_equal(strata_buffer_register(f.rt, data, sizeof data, &buf), 0);
  strata_kernel_t k = on_class(&f, "on-a", STRATA_CLASS_HBM);
  for (int i = 0; i < 20; i++)
    run(&f, k, buf);
  assert_int_equal(strata_runtime_wait_all(f.rt), 0);
  assert_int_equal(strata_buffer_unregister(f.rt, buf), 0);
  assert_int_equal(data[3], 20 * 4);
  /* Still blocked: nothing above waited for the backend's health(). */
  assert_int_equal(strata_device_inject(f.rt, 0, "release", 0), 0);
  fx_destroy(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_abi3_cross_backend_peer_copy),
      cmocka_unit_test(test_abi3_half_path_is_none),
      cmocka_unit_test(test_abi3_pinned_tier_from_backend),
      cmocka_unit_test(test_abi3_managed_memory),
      cmocka_unit_test(test_abi3_shared_managed_buffer),
      cmocka_unit_test(test_abi3_managed_buffer_refused),
      cmocka_unit_test(test_abi3_managed_alias_not_evicted),
      cmocka_unit_test(test_abi3_managed_writeback_waits),
      cmocka_unit_test(test_abi3_managed_larger_than_card),
      cmocka_unit_test(test_abi3_health_cache_never_waits),
  };
  return cmocka_run_group_tests_name("abi3", tests, NULL, NULL);
}
