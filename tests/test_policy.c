/* SPDX-License-Identifier: MIT */
/* tests/test_policy.c: the Lua policy engine on simulated cards: the
 * shipped policies place a mixed job as documented; a policy that raises,
 * loops, allocates without bound, returns garbage or reaches for io/os
 * never loses a task (the default decides, the fallback is counted);
 * reload keeps the old script when the new one is broken; evict routes
 * victims as told without dropping modified data; alert fires on an
 * injected temperature and tiered.lua drains the hot card; performance
 * models converge and persist; decisions are recorded. */
#include "config.h"

#include "util.h"
#include "dag.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WORDS 128
#define BUF_BYTES (WORDS * sizeof(uint64_t))

static char tmpdir[256];
static char policies[1024]; /* the source tree's lua/policies */

/* {=== Set-up ===} */

/* host CPUs (cpu backend, 1 worker) + a 64 KiB HBM card + a 64 KiB GDDR
 * card, or the cards alone. */
static const char *pair_machine(void) {
  return test_write_file(
      tmpdir, "pair.lua",
      "return { devices = {\n" TEST_SIM_DEV(
          "hbm", "H", "64 * KiB", "fp64 = 34 * TFLOPS, fp32 = 67 * TFLOPS,")
          TEST_SIM_DEV("gddr", "G", "64 * KiB",
                       "fp64 = 1 * TFLOPS, fp32 = 80 * "
                       "TFLOPS,") "} }\n");
}

typedef struct prt {
  test_sim_rt_t s; /* the runtime, its allocator, log and options */
  strata_kernel_t k;
  uint64_t data[8][WORDS];
  strata_buffer_t b[8];
} prt_t;

static void prt_opts(prt_t *p, const char *backends, const char *machine,
                     const char *policy) {
  test_sim_opts(&p->s, backends, machine, 1);
  p->s.o.policy = policy;
  p->s.o.health_period_ms = -1; /* tests call strata_health_check */
  p->s.o.record_decisions = 1;
}

static int fill_kernel(const strata_kernel_call_t *c) {
  for (uint32_t i = 0; i < c->nbuffers; i++)
    if (c->modes[i] & STRATA_W)
      ((uint64_t *)c->buffers[i])[0]++;
  return 0;
}

static void prt_start(prt_t *p) {
  test_sim_create(&p->s);
  p->k = test_register_cpu(p->s.rt, "fill", fill_kernel);
  memset(p->data, 0, sizeof p->data);
  for (int i = 0; i < 8; i++)
    assert_int_equal(
        strata_buffer_register(p->s.rt, p->data[i], BUF_BYTES, &p->b[i]), 0);
}

static void prt_stop(prt_t *p) {
  for (int i = 0; i < 8; i++)
    assert_int_equal(strata_buffer_unregister(p->s.rt, p->b[i]), 0);
  test_sim_destroy(&p->s);
}

/* Submit one task on buffer i with the given tier and precision (NULL:
 * unset); wait for it; return the class of the device it ran on. */
static strata_device_class_t run_one(prt_t *p, int i, const char *tier,
                                     const char *precision) {
  strata_task_t t;
  assert_int_equal(strata_task_create(p->s.rt, p->k, &t), 0);
  assert_int_equal(strata_task_access(p->s.rt, t, p->b[i], STRATA_RW), 0);
  if (tier)
    assert_int_equal(strata_task_set_attr(p->s.rt, t, "tier", tier), 0);
  if (precision)
    assert_int_equal(strata_task_set_attr(p->s.rt, t, "precision", precision),
                     0);
  assert_int_equal(strata_task_submit(p->s.rt, t), 0);
  assert_int_equal(strata_task_wait(p->s.rt, t), 0);
  strata_task_info_t ti = {.struct_size = sizeof ti};
  assert_int_equal(strata_task_info(p->s.rt, t, &ti), 0);
  assert_int_equal(strata_task_release(p->s.rt, t), 0);
  return test_device_info(p->s.rt, ti.device).device_class;
}

static strata_policy_stats_t stats(prt_t *p) {
  strata_policy_stats_t s = {.struct_size = sizeof s};
  assert_int_equal(strata_policy_stats(p->s.rt, &s), 0);
  return s;
}

static const char *policy_file(const char *name) {
  static char path[1100];
  snprintf(path, sizeof path, "%s/%s", policies, name);
  return path;
}

/* {=== Shipped policies ===} */

static void test_policy_tiered_default(void **state) {
  (void)state;
  prt_t p;
  prt_opts(&p, "cpu,sim", pair_machine(), NULL); /* tiered, built in */
  prt_start(&p);
  strata_policy_stats_t s = stats(&p);
  assert_string_equal(s.name, "tiered.lua (built in)");
  for (int round = 0; round < 3; round++) {
    assert_int_equal(run_one(&p, 0, "train", NULL), STRATA_CLASS_HBM);
    assert_int_equal(run_one(&p, 1, NULL, "fp64"), STRATA_CLASS_HBM);
    assert_int_equal(run_one(&p, 2, "validate", NULL), STRATA_CLASS_GDDR);
    assert_int_equal(run_one(&p, 3, NULL, "fp32"), STRATA_CLASS_GDDR);
    assert_int_equal(run_one(&p, 4, "preprocess", NULL), STRATA_CLASS_CPU);
    assert_int_equal(run_one(&p, 6, "preprocess", "fp32"), STRATA_CLASS_CPU);
    /* "Anything FP64 on the HBM cards", validation included. */
    assert_int_equal(run_one(&p, 5, "validate", "fp64"), STRATA_CLASS_HBM);
  }
  s = stats(&p);
  assert_int_equal(s.fallbacks, 0);
  assert_int_equal(s.errors, 0);
  assert_true(s.cached >= 14); /* rounds 2 and 3 skipped Lua */
  prt_stop(&p);
  assert_int_equal(p.data[0][0], 3);
}

static void test_policy_tiered_fp64_without_hbm(void **state) {
  (void)state;
  /* FP64 stays off the GDDR card only while an HBM card exists. */
  prt_t p;
  prt_opts(&p, "cpu,sim",
           test_write_file(tmpdir, "gddr.lua",
                           "return { devices = {\n" TEST_SIM_DEV(
                               "gddr", "G", "64 * KiB", "") "} }\n"),
           "");
  p.s.o.policy = policy_file("tiered.lua");
  prt_start(&p);
  assert_int_equal(run_one(&p, 0, "train", "fp64"), STRATA_CLASS_GDDR);
  assert_int_equal(run_one(&p, 1, "preprocess", NULL), STRATA_CLASS_CPU);
  prt_stop(&p);
}

static void test_policy_no_policy(void **state) {
  (void)state;
  prt_t p;
  prt_opts(&p, "cpu,sim", pair_machine(), "");
  prt_start(&p);
  strata_policy_stats_t s = stats(&p);
  assert_string_equal(s.name, "");
  run_one(&p, 0, "train", NULL);
  assert_int_equal(stats(&p).calls, 0);
  prt_stop(&p);
}

static void test_policy_eager(void **state) {
  (void)state;
  prt_t p;
  prt_opts(&p, "cpu,sim", pair_machine(), policy_file("eager.lua"));
  prt_start(&p);
  /* Everything idle: the first device that can run it. */
  assert_int_equal(run_one(&p, 0, "train", NULL), STRATA_CLASS_CPU);
  assert_int_equal(stats(&p).fallbacks, 0);
  prt_stop(&p);
}

static int heavy_kernel(const strata_kernel_call_t *c) {
  (void)c;
  return 0;
}

static strata_device_class_t run_flops(prt_t *p, strata_kernel_t k, int i,
                                       const char *flops, const char *prec) {
  strata_task_t t;
  assert_int_equal(strata_task_create(p->s.rt, k, &t), 0);
  assert_int_equal(strata_task_access(p->s.rt, t, p->b[i], STRATA_R), 0);
  assert_int_equal(strata_task_set_attr(p->s.rt, t, "flops", flops), 0);
  assert_int_equal(strata_task_set_attr(p->s.rt, t, "precision", prec), 0);
  assert_int_equal(strata_task_submit(p->s.rt, t), 0);
  assert_int_equal(strata_task_wait(p->s.rt, t), 0);
  strata_decision_t d = {.struct_size = sizeof d};
  assert_int_equal(strata_task_decision(p->s.rt, t, &d), 0);
  assert_int_equal(d.fallback, 0);
  assert_true(d.candidates == 7); /* all three devices could */
  assert_int_equal(strata_task_release(p->s.rt, t), 0);
  return test_device_info(p->s.rt, d.device).device_class;
}

static void test_policy_eft(void **state) {
  (void)state;
  /* With no history, estimates come from the rates: a heavy FP64 task
   * finishes first on the HBM card (34 TFLOP/s), a heavy FP32 one on the
   * GDDR card (80), and a tiny one on the host (no copy to make). */
  prt_t p;
  prt_opts(&p, "cpu,sim", pair_machine(), policy_file("eft.lua"));
  prt_start(&p);
  /* (Three kernels: once one has run, its measured time is what counts.) */
  strata_kernel_t k1 = test_register_cpu(p.s.rt, "heavy64", heavy_kernel);
  strata_kernel_t k2 = test_register_cpu(p.s.rt, "heavy32", heavy_kernel);
  strata_kernel_t k3 = test_register_cpu(p.s.rt, "light", heavy_kernel);
  assert_int_equal(run_flops(&p, k1, 0, "1e12", "fp64"), STRATA_CLASS_HBM);
  assert_int_equal(run_flops(&p, k2, 1, "1e12", "fp32"), STRATA_CLASS_GDDR);
  assert_int_equal(run_flops(&p, k3, 2, "10", "fp32"), STRATA_CLASS_CPU);
  prt_stop(&p);
}

/* Two equal HBM cards with `memory` each, in modelled time; the file's
 * path. */
static const char *twin_cards(const char *name, const char *memory) {
  char text[2048];
  snprintf(text, sizeof text,
           "return { time = 'modelled', skip_kernels = true, devices = "
           "{\n" TEST_SIM_DEV("hbm", "H0", "%s", "fp64 = 34 * TFLOPS,")
               TEST_SIM_DEV("hbm", "H1", "%s", "fp64 = 34 * TFLOPS,") "} }\n",
           memory, memory);
  return test_write_file(tmpdir, name, text);
}

/* Submit an FP64 task of `flops` reading `in` and writing `out`. */
static strata_task_t submit_fp64(prt_t *p, strata_buffer_t in,
                                 strata_buffer_t out, const char *flops) {
  strata_task_t t;
  assert_int_equal(strata_task_create(p->s.rt, p->k, &t), 0);
  assert_int_equal(strata_task_access(p->s.rt, t, in, STRATA_R), 0);
  assert_int_equal(strata_task_access(p->s.rt, t, out, STRATA_W), 0);
  assert_int_equal(strata_task_set_attr(p->s.rt, t, "flops", flops), 0);
  assert_int_equal(strata_task_set_attr(p->s.rt, t, "precision", "fp64"), 0);
  assert_int_equal(strata_task_submit(p->s.rt, t), 0);
  return t;
}

/* The device the policy itself chose for t, which is then released. */
static int chosen_and_released(prt_t *p, strata_task_t t) {
  strata_decision_t d = {.struct_size = sizeof d};
  assert_int_equal(strata_task_decision(p->s.rt, t, &d), 0);
  assert_int_equal(d.fallback, 0);
  assert_int_equal(strata_task_release(p->s.rt, t), 0);
  return d.device;
}

/* A DAG submitted in one go: six heavy FP64 tasks that all read what
 * one root task writes, none ready when placed. eft counts the work it
 * has placed on a card, ready or not, so it spreads them over two equal
 * cards (a copy of the root's 1 KiB output costs microseconds, a task
 * 0.3 ms) rather than queueing all six where the data will be. */
static void test_policy_eft_spreads_dag(void **state) {
  (void)state;
  prt_t p;
  prt_opts(&p, "sim", twin_cards("twin.lua", "64 * KiB"),
           policy_file("eft.lua"));
  prt_start(&p);
  void *hold; /* the root waits for the application's write */
  assert_int_equal(strata_buffer_acquire(p.s.rt, p.b[7], STRATA_W, &hold), 0);
  strata_task_t t[7];
  for (int i = 0; i < 7; i++)
    t[i] = submit_fp64(&p, p.b[i ? 0 : 7], p.b[i], "1e10");
  assert_int_equal(strata_buffer_release(p.s.rt, p.b[7]), 0);
  assert_int_equal(strata_runtime_wait_all(p.s.rt), 0);
  int on[2] = {0, 0};
  for (int i = 0; i < 7; i++)
    on[chosen_and_released(&p, t[i])] += i > 0;
  assert_true(on[0] >= 2 && on[1] >= 2);
  /* The modelled makespan shows it: four tasks' time at most, not seven. */
  for (int d = 0; d < 2; d++) {
    strata_device_model_t m = {.struct_size = sizeof m};
    assert_int_equal(strata_device_model(p.s.rt, d, &m), 0);
    assert_true(m.clock_ns < 4 * 295000 + 50000);
  }
  prt_stop(&p);
}

/* Readers of one 1 MiB input, placed in one go: the plan remembers the
 * copy the first one makes to a card, so the others, tiny, follow it
 * there instead of copying the input again to the other card (110 us
 * over a 10 GB/s link against 0.03 us of work). */
static void test_policy_eft_remembers_copies(void **state) {
  (void)state;
  prt_t p;
  prt_opts(&p, "sim", twin_cards("twin-big.lua", "64 * MiB"),
           policy_file("eft.lua"));
  prt_start(&p);
  static uint64_t input[(1 << 20) / sizeof(uint64_t)];
  strata_buffer_t in;
  assert_int_equal(strata_buffer_register(p.s.rt, input, sizeof input, &in), 0);
  strata_task_t t[6];
  for (int i = 0; i < 6; i++)
    t[i] = submit_fp64(&p, in, p.b[i], "1e6");
  assert_int_equal(strata_runtime_wait_all(p.s.rt), 0);
  int on[2] = {0, 0};
  for (int i = 0; i < 6; i++)
    on[chosen_and_released(&p, t[i])]++;
  assert_true(on[0] == 6 || on[1] == 6);
  assert_int_equal(strata_buffer_unregister(p.s.rt, in), 0);
  prt_stop(&p);
}

static void test_policy_dataset_cache(void **state) {
  (void)state;
  prt_t p;
  prt_opts(&p, "cpu,sim", pair_machine(), policy_file("dataset-cache.lua"));
  prt_start(&p);
  assert_int_equal(strata_buffer_set_tag(p.s.rt, p.b[7], "dataset"), 0);
  /* Prefetched to the GDDR card when tagged. */
  int g = test_device_info(p.s.rt, test_device_of(p.s.rt, STRATA_CLASS_GDDR))
              .memory_node;
  strata_memory_node_info_t n = {.struct_size = sizeof n};
  for (int i = 0; i < 500; i++) {
    assert_int_equal(strata_memory_node_info(p.s.rt, g, &n), 0);
    if (n.prefetches)
      break;
    test_sleep_ms(2);
  }
  assert_int_equal(n.prefetches, 1);
  /* Its readers run there, and find it there. */
  strata_task_t t;
  assert_int_equal(strata_task_create(p.s.rt, p.k, &t), 0);
  assert_int_equal(strata_task_access(p.s.rt, t, p.b[0], STRATA_RW), 0);
  assert_int_equal(strata_task_access(p.s.rt, t, p.b[7], STRATA_R), 0);
  assert_int_equal(strata_task_submit(p.s.rt, t), 0);
  assert_int_equal(strata_task_wait(p.s.rt, t), 0);
  strata_task_info_t ti = {.struct_size = sizeof ti};
  assert_int_equal(strata_task_info(p.s.rt, t, &ti), 0);
  assert_int_equal(test_device_info(p.s.rt, ti.device).device_class,
                   STRATA_CLASS_GDDR);
  assert_int_equal(strata_task_release(p.s.rt, t), 0);
  assert_int_equal(strata_memory_node_info(p.s.rt, g, &n), 0);
  assert_true(n.hits >= 1);
  assert_int_equal(strata_buffer_set_tag(p.s.rt, p.b[0], NULL), STRATA_EINVAL);
  prt_stop(&p);
}

/* {=== Broken policies: every task still completes ===} */

static const struct {
  const char *name, *text, *logged;
} broken[] = {
    {"raises.lua", "function place(task, m) error('boom') end\n", "boom"},
    {"loops.lua", "function place(task, m) while true do end end\n",
     "instruction budget"},
    {"hog.lua",
     "local t = {}\nfunction place(task, m)\n"
     "  for i = 1, 1e9 do t[#t + 1] = string.rep('x', 1000) .. i end\nend\n",
     "not enough memory"},
    {"garbage.lua", "function place(task, m) return 42 end\n",
     "returned number"},
    {"unknown.lua", "function place(task, m) return 'tpu' end\n",
     "not a device class"},
    {"empty.lua", "function place(task, m) return {} end\n", "empty list"},
    {"io.lua", "function place(task, m) return io.open('/etc/passwd') end\n",
     "global 'io'"},
    {"os.lua", "function place(task, m) os.execute('true') end\n",
     "global 'os'"},
    {"writes.lua", "function place(task, m) task.tier = 'x' end\n",
     "read-only"},
    {"pattern.lua",
     "function place(task, m)\n"
     "  return string.find(string.rep('a', 100000), '(a*)*b')\nend\n",
     "exceeded"},
    {"load.lua", "function place(task, m) return load('return 1')() end\n",
     "global 'load'"},
};

static void test_policy_broken_policies(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof broken / sizeof *broken; i++) {
    prt_t p;
    prt_opts(&p, "cpu,sim", pair_machine(),
             test_write_file(tmpdir, broken[i].name, broken[i].text));
    p.s.o.policy_memory = 1 << 20;
    /* The limits under test, not the clock (a sanitizer's slowness). */
    p.s.o.policy_time_ms = 1000;
    prt_start(&p);
    for (int r = 0; r < 4; r++)
      for (int b = 0; b < 8; b++)
        run_one(&p, b, "train", NULL);
    /* Three failures, then probation: the default decides the rest
     * without calling the hook (32 tasks in well under 10 ms would all
     * be skipped; a slow machine may give the hook a trial or two). */
    strata_policy_stats_t s = stats(&p);
    if (s.fallbacks + s.skipped != 32 || s.fallbacks < 3 || s.probations < 1)
      fail_msg("%s: %llu fallbacks + %llu skipped (%llu probations), "
               "expected 32",
               broken[i].name, (unsigned long long)s.fallbacks,
               (unsigned long long)s.skipped, (unsigned long long)s.probations);
    if (!test_log_has(&p.s.log, broken[i].logged))
      fail_msg("%s: the log lacks '%s':\n%s", broken[i].name, broken[i].logged,
               p.s.log.text);
    /* Logged once, not per task: the error, and the probation. */
    if (p.s.log.count[STRATA_LOG_WARN] != 2 ||
        !test_log_has(&p.s.log, "without calling it"))
      fail_msg("%s: %u warnings:\n%s", broken[i].name,
               p.s.log.count[STRATA_LOG_WARN], p.s.log.text);
    prt_stop(&p);
    for (int b = 0; b < 8; b++)
      assert_int_equal(p.data[b][0], 4); /* every task ran */
  }
}

static void test_policy_answer_that_cannot_run(void **state) {
  (void)state;
  /* The cards hold 64 KiB; a task on 128 KiB named for the GDDR card
   * cannot run there: the default places it (on the host CPUs). */
  prt_t p;
  prt_opts(&p, "cpu,sim", pair_machine(),
           test_write_file(tmpdir, "gddr-only.lua",
                           "function place(task, m) return 'gddr' end\n"));
  prt_start(&p);
  static uint64_t big[16384];
  strata_buffer_t b;
  assert_int_equal(strata_buffer_register(p.s.rt, big, sizeof big, &b), 0);
  strata_task_t t;
  assert_int_equal(strata_task_create(p.s.rt, p.k, &t), 0);
  assert_int_equal(strata_task_access(p.s.rt, t, b, STRATA_RW), 0);
  assert_int_equal(strata_task_submit(p.s.rt, t), 0);
  assert_int_equal(strata_task_wait(p.s.rt, t), 0);
  strata_decision_t d = {.struct_size = sizeof d};
  assert_int_equal(strata_task_decision(p.s.rt, t, &d), 0);
  assert_int_equal(d.fallback, 1);
  assert_int_equal(d.device, 0);
  assert_non_null(strstr(d.why, "can run the task"));
  assert_int_equal(strata_task_release(p.s.rt, t), 0);
  assert_int_equal(stats(&p).fallbacks, 1);
  assert_int_equal(strata_buffer_unregister(p.s.rt, b), 0);
  assert_int_equal(big[0], 1);
  prt_stop(&p);
}

static const struct {
  const char *name, *text, *logged;
} unloadable[] = {
    {"syntax.lua", "function place(task, m\n", "expected"},
    {"notfn.lua", "place = 3\n", "'place' must be a function"},
    {"toplevel.lua", "while true do end\n", "instruction budget"},
    {"bytecode.lua", "\x1bLua\x54\x00", "binary"},
};

static void test_policy_bad_scripts_refused(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof unloadable / sizeof *unloadable; i++) {
    prt_t p;
    prt_opts(&p, "cpu,sim", pair_machine(),
             test_write_file(tmpdir, unloadable[i].name, unloadable[i].text));
    assert_int_equal(strata_runtime_create(&p.s.o, &p.s.rt), STRATA_EPOLICY);
    if (!test_log_has(&p.s.log, unloadable[i].logged))
      fail_msg("%s: the log lacks '%s':\n%s", unloadable[i].name,
               unloadable[i].logged, p.s.log.text);
    test_alloc_assert_clean(&p.s.alloc);
  }
  prt_t p;
  prt_opts(&p, "cpu,sim", pair_machine(), "/nonexistent/policy.lua");
  assert_int_equal(strata_runtime_create(&p.s.o, &p.s.rt), STRATA_EPOLICY);
  assert_true(test_log_has(&p.s.log, "/nonexistent/policy.lua"));
  test_alloc_assert_clean(&p.s.alloc);
}

/* {=== Reload ===} */

static void test_policy_reload(void **state) {
  (void)state;
  char path[1024];
  snprintf(path, sizeof path, "%s",
           test_write_file(tmpdir, "reload.lua",
                           "function place(task, m) return 'gddr' end\n"));
  prt_t p;
  prt_opts(&p, "cpu,sim", pair_machine(), path);
  prt_start(&p);
  assert_int_equal(run_one(&p, 0, NULL, NULL), STRATA_CLASS_GDDR);
  /* A broken version: the old one stays. */
  test_write_file(tmpdir, "reload.lua", "function place(task, m\n");
  assert_int_equal(strata_policy_reload(p.s.rt, NULL), STRATA_EPOLICY);
  assert_true(test_log_has(&p.s.log, "stays in force"));
  assert_int_equal(run_one(&p, 1, NULL, NULL), STRATA_CLASS_GDDR);
  /* A good one takes over. */
  test_write_file(tmpdir, "reload.lua",
                  "function place(task, m) return 'hbm' end\n");
  assert_int_equal(strata_policy_reload(p.s.rt, NULL), 0);
  assert_int_equal(run_one(&p, 2, NULL, NULL), STRATA_CLASS_HBM);
  /* Another file by name. */
  assert_int_equal(strata_policy_reload(p.s.rt, policy_file("tiered.lua")), 0);
  assert_int_equal(run_one(&p, 3, "preprocess", NULL), STRATA_CLASS_CPU);
  strata_policy_stats_t s = stats(&p);
  assert_int_equal(s.reloads, 2);
  assert_int_equal(s.reload_failures, 1);
  assert_string_equal(s.name, "tiered.lua");
  assert_int_equal(strata_policy_reload(NULL, NULL), STRATA_EINVAL);
  prt_stop(&p);
}

/* {=== evict ===} */

static void test_policy_evict_routes_victims(void **state) {
  (void)state;
  /* A 2 KiB card, a pinned tier, and a policy that sends every victim of
   * the card to host memory (skipping the pinned tier): written buffers
   * cycle through the card and come back intact. */
  const char *path = test_write_file(
      tmpdir, "evict.lua",
      "function place(task, m) return 'gddr' end\n"
      "function evict(buffer, node, m)\n"
      "  assert(node.kind == 'device' and buffer.size == 1024)\n"
      "  return 'host'\nend\n");
  prt_t p;
  prt_opts(&p, "cpu,sim",
           test_write_file(tmpdir, "small.lua",
                           "return { devices = {\n" TEST_SIM_DEV(
                               "gddr", "G", "2 * KiB", "") "} }\n"),
           path);
  p.s.o.pinned_bytes = 64 * 1024;
  prt_start(&p);
  for (int r = 0; r < 3; r++)
    for (int b = 0; b < 8; b++)
      assert_int_equal(run_one(&p, b, NULL, NULL), STRATA_CLASS_GDDR);
  strata_memory_node_info_t pinned = {.struct_size = sizeof pinned};
  int npinned = -1, ncard = -1;
  for (int n = 0; n < strata_memory_node_count(p.s.rt); n++) {
    strata_memory_node_info_t i = {.struct_size = sizeof i};
    assert_int_equal(strata_memory_node_info(p.s.rt, n, &i), 0);
    if (i.kind == STRATA_NODE_PINNED)
      npinned = n;
    if (i.kind == STRATA_NODE_DEVICE)
      ncard = n;
  }
  assert_int_equal(strata_memory_node_info(p.s.rt, npinned, &pinned), 0);
  assert_int_equal(pinned.used, 0); /* nothing went there */
  strata_link_stats_t l = {.struct_size = sizeof l};
  assert_int_equal(strata_link_stats(p.s.rt, ncard, 0, &l), 0);
  assert_true(l.copies >= 16); /* write-backs to host memory */
  assert_int_equal(stats(&p).fallbacks, 0);
  prt_stop(&p);
  for (int b = 0; b < 8; b++)
    assert_int_equal(p.data[b][0], 3);

  /* tiered.lua sends them to the pinned tier. */
  prt_opts(&p, "cpu,sim",
           test_write_file(tmpdir, "small.lua",
                           "return { devices = {\n" TEST_SIM_DEV(
                               "gddr", "G", "2 * KiB", "") "} }\n"),
           NULL);
  p.s.o.pinned_bytes = 64 * 1024;
  prt_start(&p);
  for (int r = 0; r < 2; r++)
    for (int b = 0; b < 8; b++)
      assert_int_equal(run_one(&p, b, "validate", NULL), STRATA_CLASS_GDDR);
  assert_int_equal(strata_link_stats(p.s.rt, ncard, npinned, &l), 0);
  assert_true(l.copies >= 8);
  prt_stop(&p);
  for (int b = 0; b < 8; b++)
    assert_int_equal(p.data[b][0], 2);

  /* A bad answer: the default tiers, counted. */
  prt_opts(&p, "cpu,sim",
           test_write_file(tmpdir, "small.lua",
                           "return { devices = {\n" TEST_SIM_DEV(
                               "gddr", "G", "2 * KiB", "") "} }\n"),
           test_write_file(tmpdir, "badevict.lua",
                           "function place(task, m) return 'gddr' end\n"
                           "function evict(b, n, m) return 'disk' end\n"));
  prt_start(&p);
  for (int b = 0; b < 8; b++)
    run_one(&p, b, NULL, NULL);
  assert_true(stats(&p).fallbacks >= 3);
  assert_true(stats(&p).fallbacks + stats(&p).skipped >= 6);
  assert_true(
      test_log_has(&p.s.log, "not 'pinned', 'host', 'spill' or 'keep'"));
  prt_stop(&p);
  for (int b = 0; b < 8; b++)
    assert_int_equal(p.data[b][0], 1);
}

/* {=== alert ===} */

static void test_policy_alert_drains_hot_card(void **state) {
  (void)state;
  prt_t p;
  prt_opts(&p, "cpu,sim", pair_machine(), NULL);
  prt_start(&p);
  int h = test_device_of(p.s.rt, STRATA_CLASS_HBM);
  assert_int_equal(run_one(&p, 0, "train", NULL), STRATA_CLASS_HBM);
  assert_int_equal(strata_health_check(p.s.rt), 0);
  assert_int_equal(stats(&p).alerts, 0);
  assert_int_equal(strata_device_inject(p.s.rt, h, "temperature", 95), 0);
  assert_int_equal(strata_health_check(p.s.rt), 0);
  assert_int_equal(strata_health_check(p.s.rt), 0); /* once per crossing */
  assert_int_equal(stats(&p).alerts, 1);
  assert_true(test_log_has(&p.s.log, "temperature 95.0 over 85.0"));
  /* Training now goes to the next class. */
  assert_int_equal(run_one(&p, 1, "train", NULL), STRATA_CLASS_GDDR);
  /* Power has its own threshold. */
  assert_int_equal(strata_device_inject(p.s.rt, h, "power", 450), 0);
  assert_int_equal(strata_health_check(p.s.rt), 0);
  assert_int_equal(stats(&p).alerts, 2);
  prt_stop(&p);

  /* The monitor reads health by itself, and custom thresholds hold. */
  prt_opts(&p, "cpu,sim", pair_machine(), NULL);
  p.s.o.health_period_ms = 5;
  p.s.o.alert_temperature = 60;
  prt_start(&p);
  assert_int_equal(strata_device_inject(p.s.rt, h, "temperature", 61), 0);
  for (int i = 0; i < 2000 && !stats(&p).alerts; i++)
    test_sleep_ms(1);
  assert_int_equal(stats(&p).alerts, 1);
  prt_stop(&p);
}

/* {=== Performance models ===} */

static int sleepy_kernel(const strata_kernel_call_t *c) {
  (void)c;
  test_sleep_ms(2);
  return 0;
}

static void test_policy_perf_models(void **state) {
  (void)state;
  char models[512];
  snprintf(models, sizeof models, "%s/models.txt", tmpdir);
  char path[1024];
  snprintf(path, sizeof path, "%s",
           test_write_file(
               tmpdir, "estimate.lua",
               "function place(task, m)\n"
               "  local d = m.by_class('gddr')[1]\n"
               "  local e = m.estimate(task, d)\n"
               "  print(string.format('estimate %.6f', e))\n"
               "  if e >= 0.0019 then print('estimate from history') end\n"
               "  return d\nend\n"));
  prt_t p;
  prt_opts(&p, "cpu,sim", pair_machine(), path);
  p.s.o.perf_models = models;
  prt_start(&p);
  strata_kernel_t k = test_register_cpu(p.s.rt, "sleepy", sleepy_kernel);
  for (int i = 0; i < 10; i++) {
    strata_task_t t;
    assert_int_equal(strata_task_create(p.s.rt, k, &t), 0);
    assert_int_equal(strata_task_access(p.s.rt, t, p.b[0], STRATA_R), 0);
    assert_int_equal(strata_task_submit(p.s.rt, t), 0);
    assert_int_equal(strata_task_wait(p.s.rt, t), 0);
    assert_int_equal(strata_task_release(p.s.rt, t), 0);
  }
  /* The first estimate came from the rates (~1 ns for 1 KiB at 1 TB/s);
   * the last from history: the kernel sleeps 2 ms, so at least that (more
   * on a loaded machine). */
  assert_true(test_log_has(&p.s.log, "estimate 0.000000"));
  assert_true(test_log_has(&p.s.log, "estimate from history"));
  prt_stop(&p);
  /* Saved; a new runtime starts from them. */
  FILE *f = fopen(models, "r");
  assert_non_null(f);
  char text[1024] = "";
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  assert_non_null(strstr(text, "strata-perfmodel 1\n"));
  assert_non_null(strstr(text, " sleepy\tG\n"));
  prt_opts(&p, "cpu,sim", pair_machine(), path);
  p.s.o.perf_models = models;
  prt_start(&p);
  k = test_register_cpu(p.s.rt, "sleepy", sleepy_kernel);
  strata_task_t t;
  assert_int_equal(strata_task_create(p.s.rt, k, &t), 0);
  assert_int_equal(strata_task_access(p.s.rt, t, p.b[0], STRATA_R), 0);
  assert_int_equal(strata_task_submit(p.s.rt, t), 0);
  assert_int_equal(strata_task_wait(p.s.rt, t), 0);
  assert_int_equal(strata_task_release(p.s.rt, t), 0);
  assert_false(test_log_has(&p.s.log, "estimate 0.000000"));
  assert_true(test_log_has(&p.s.log, "estimate from history"));
  prt_stop(&p);
  /* A corrupt file: logged, ignored from the bad line on. */
  test_write_file(tmpdir, "models.txt", "strata-perfmodel 1\nnonsense\n");
  prt_opts(&p, "cpu,sim", pair_machine(), path);
  p.s.o.perf_models = models;
  prt_start(&p);
  assert_true(test_log_has(&p.s.log, "not a performance-model line"));
  prt_stop(&p);
}

/* {=== Views and decisions ===} */

static void test_policy_views(void **state) {
  (void)state;
  const char *path = test_write_file(
      tmpdir, "views.lua",
      "function place(task, m)\n"
      "  assert(task.kernel == 'fill' and task.tier == 'train')\n"
      "  assert(task.precision == 'fp64' and task.flops == 5e9)\n"
      "  assert(task.working_set == 1024 and #task.buffers == 1)\n"
      "  assert(task.buffers[1].mode == 'rw' and task.buffers[1].size == "
      "1024)\n"
      "  assert(task.tags.site == 'lab' and task.job.owner == 'ana')\n"
      "  assert(#m.devices == 3 and #m.by_class('hbm') == 1)\n"
      "  local h = m.by_class('hbm')[1]\n"
      "  assert(h.class == 'hbm' and h.name == 'H' and h.model == 'H')\n"
      "  assert(h.mem_class == 'hbm' and h.memory == 65536)\n"
      "  assert(h.fp64 == 34e12 and h.workers == 1 and h.free <= 65536)\n"
      "  assert(h.temperature == 40 and h.power == 200 and not h.failed)\n"
      "  assert(m.devices[1].mem_class == 'host')\n"
      "  assert(m.has_room(h, 1024) and not m.has_room(h, 1e9))\n"
      "  assert(m.least_loaded('gddr').class == 'gddr')\n"
      "  assert(m.can_run(task, h))\n"
      "  assert(m.can_run(task, 'gddr') and m.can_run(task, {'cpu', h}))\n"
      "  assert(m.reads_tag(task, 'ds') and not m.reads_tag(task, 'x'))\n"
      "  assert(task.buffers[1].tag == 'ds')\n"
      "  assert(m.first_idle(task) == m.devices[1])\n"
      "  assert(m.first_idle(task, {'gddr', h}).class == 'hbm')\n"
      "  assert(m.first_idle(task, 'gddr').name == 'G')\n"
      "  local d0, f0 = m.eft(task, 'hbm')\n"
      "  local d1, f1 = m.eft(task, 'hbm', 5)\n"
      "  assert(d0 == h and d1 == h and f0 > 0 and f1 > 0)\n"
      "  assert(not pcall(m.eft, task, nil, -1))\n"
      "  assert(m.eft(task) == h)\n" /* 5 GFLOP: fastest on the card */
      "  assert(m.eft(task, nil, 1e6) == m.devices[1])\n" /* no copy */
      "  assert(#m.nodes >= 3 and m.nodes[1].kind == 'host')\n"
      "  assert(tostring(h) == 'H')\n"
      "  assert(not pcall(function() m.devices[1] = 1 end))\n"
      "  assert(not pcall(function() h.name = 'x' end))\n"
      "  assert(not pcall(function() m.eft = nil end))\n"
      "  kept = task\n"
      "  return h\nend\n"
      "function alert(d, metric, v)\n"
      "  assert(not pcall(function() return kept.kernel end))\n"
      "end\n");
  prt_t p;
  prt_opts(&p, "cpu,sim", pair_machine(), path);
  prt_start(&p);
  strata_job_t job;
  assert_int_equal(strata_job_create(p.s.rt, &job), 0);
  assert_int_equal(strata_job_set_attr(p.s.rt, job, "owner", "ana"), 0);
  assert_int_equal(strata_buffer_set_tag(p.s.rt, p.b[0], "ds"), 0);
  strata_task_t t;
  assert_int_equal(strata_task_create(p.s.rt, p.k, &t), 0);
  assert_int_equal(strata_task_access(p.s.rt, t, p.b[0], STRATA_RW), 0);
  assert_int_equal(strata_task_set_attr(p.s.rt, t, "tier", "train"), 0);
  assert_int_equal(strata_task_set_attr(p.s.rt, t, "precision", "fp64"), 0);
  assert_int_equal(strata_task_set_attr(p.s.rt, t, "flops", "5e9"), 0);
  assert_int_equal(strata_task_set_attr(p.s.rt, t, "site", "lab"), 0);
  assert_int_equal(strata_task_set_job(p.s.rt, t, job), 0);
  assert_int_equal(strata_task_submit(p.s.rt, t), 0);
  assert_int_equal(strata_task_wait(p.s.rt, t), 0);
  strata_decision_t d = {.struct_size = sizeof d};
  assert_int_equal(strata_task_decision(p.s.rt, t, &d), 0);
  if (d.fallback)
    fail_msg("the view checks failed: %s\n%s", d.why, p.s.log.text);
  assert_int_equal(d.answer, 2); /* the HBM card, device 1 */
  assert_int_equal(d.device, 1);
  assert_int_equal(d.from_cache, 0);
  assert_int_equal(strata_task_release(p.s.rt, t), 0);
  assert_int_equal(strata_task_decision(p.s.rt, t, &d), STRATA_ENOENT);
  assert_int_equal(strata_job_release(p.s.rt, job), 0);
  /* A kept view refuses to be read outside its call. */
  assert_int_equal(strata_device_inject(p.s.rt, 1, "temperature", 99), 0);
  assert_int_equal(strata_health_check(p.s.rt), 0);
  assert_int_equal(stats(&p).errors, 0);
  prt_stop(&p);
}

int main(void) {
  test_tmpdir(tmpdir, sizeof tmpdir, "test-policy");
  snprintf(policies, sizeof policies, "%s/policies",
           test_env("STRATA_TEST_LUA"));
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_policy_tiered_default),
      cmocka_unit_test(test_policy_tiered_fp64_without_hbm),
      cmocka_unit_test(test_policy_no_policy),
      cmocka_unit_test(test_policy_eager),
      cmocka_unit_test(test_policy_eft),
      cmocka_unit_test(test_policy_eft_spreads_dag),
      cmocka_unit_test(test_policy_eft_remembers_copies),
      cmocka_unit_test(test_policy_dataset_cache),
      cmocka_unit_test(test_policy_broken_policies),
      cmocka_unit_test(test_policy_answer_that_cannot_run),
      cmocka_unit_test(test_policy_bad_scripts_refused),
      cmocka_unit_test(test_policy_reload),
      cmocka_unit_test(test_policy_evict_routes_victims),
      cmocka_unit_test(test_policy_alert_drains_hot_card),
      cmocka_unit_test(test_policy_perf_models),
      cmocka_unit_test(test_policy_views),
  };
  return test_run_group(tests, sizeof tests / sizeof *tests, tmpdir);
}
