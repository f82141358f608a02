/* SPDX-License-Identifier: MIT */
/* tests/dag.c: random task graphs whose result is known (dag.h). */
#include "config.h"

#include "util.h"
#include "dag.h"

#include <stdlib.h>
#include <string.h>

uint64_t test_mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  return x ^ (x >> 33);
}

void test_mix_apply(const test_mix_args_t *a, uint64_t *const *bufs) {
  uint64_t h = test_mix64(a->id + 1);
  for (uint32_t i = 0; i < a->n; i++)
    if (a->mode[i] & STRATA_R)
      for (uint32_t w = 0; w < a->words; w++)
        h = test_mix64(h ^ bufs[i][w]);
  for (uint32_t i = 0; i < a->n; i++) {
    if (!(a->mode[i] & STRATA_W))
      continue;
    for (uint32_t w = 0; w < a->words; w++) {
      uint64_t v = test_mix64(h + i * 31 + (uint64_t)w);
      bufs[i][w] = (a->mode[i] & STRATA_R) ? bufs[i][w] ^ v : v;
    }
  }
}

int test_mix_kernel(const strata_kernel_call_t *c) {
  const test_mix_args_t *a = c->args;
  if (c->args_size != sizeof *a || c->nbuffers != a->n)
    return -1;
  for (uint32_t i = 0; i < a->n; i++)
    if (c->sizes[i] != a->words * sizeof(uint64_t))
      return -1;
  test_mix_apply(a, (uint64_t *const *)c->buffers);
  return 0;
}

strata_kernel_t test_register_cpu(strata_runtime_t *rt, const char *name,
                                  strata_kernel_fn fn) {
  /* fn is the CPU code, and stands as the CUDA code too so that simulated
   * GPUs are candidates: they run the CPU code, never the CUDA entry (the
   * fake backend's GPUs call it, on host threads). */
  const strata_kernel_impl_t impls[] = {{STRATA_IMPL_CPU, fn},
                                        {STRATA_IMPL_CUDA, fn}};
  strata_kernel_desc_t d = {
      .struct_size = sizeof d, .name = name, .impls = impls, .nimpls = 2};
  strata_kernel_t k;
  assert_int_equal(strata_kernel_register(rt, &d, &k), STRATA_OK);
  return k;
}

void test_dag_build(test_dag_t *g, unsigned nbuf, unsigned ntask,
                    unsigned words, unsigned hot, unsigned seed) {
  *g = (test_dag_t){.nbuf = nbuf, .ntask = ntask, .words = words};
  g->data = calloc((size_t)nbuf * words, sizeof *g->data);
  g->ref = calloc((size_t)nbuf * words, sizeof *g->ref);
  g->args = calloc(ntask, sizeof *g->args);
  g->which = calloc(ntask, sizeof *g->which);
  assert_true(g->data && g->ref && g->args && g->which);
  srand(seed);
  for (size_t i = 0; i < (size_t)nbuf * words; i++)
    g->data[i] = g->ref[i] = test_mix64(i);
  for (unsigned t = 0; t < ntask; t++) {
    test_mix_args_t *a = &g->args[t];
    a->id = t;
    a->words = words;
    a->n = 1 + (uint32_t)(rand() % 3);
    if (t % 97 == 0)
      a->n = TEST_MIX_MAX_ACC; /* more accesses than the inline arrays */
    for (uint32_t i = 0; i < a->n; i++) {
      g->which[t][i] =
          (uint16_t)(rand() % 4 ? rand() % (int)hot : rand() % (int)nbuf);
      a->mode[i] = (uint8_t)(1 + rand() % 3);
    }
  }
}

void test_dag_free(test_dag_t *g) {
  free(g->data);
  free(g->ref);
  free(g->args);
  free(g->which);
}

void test_dag_run_sequential(test_dag_t *g) {
  for (unsigned t = 0; t < g->ntask; t++) {
    uint64_t *bufs[TEST_MIX_MAX_ACC];
    for (uint32_t i = 0; i < g->args[t].n; i++)
      bufs[i] = g->ref + (size_t)g->which[t][i] * g->words;
    test_mix_apply(&g->args[t], bufs);
  }
}

/* Register or create the buffers; created ones get data's bytes. */
static void make_buffers(test_dag_t *g, strata_runtime_t *rt,
                         test_dag_memory_t memory, strata_buffer_t *h) {
  size_t size = g->words * sizeof(uint64_t);
  for (unsigned b = 0; b < g->nbuf; b++) {
    uint64_t *mine = g->data + (size_t)b * g->words;
    if (memory == TEST_DAG_REGISTERED) {
      assert_int_equal(strata_buffer_register(rt, mine, size, &h[b]), 0);
      continue;
    }
    void *p;
    assert_int_equal(memory == TEST_DAG_MANAGED
                         ? strata_buffer_create_managed(rt, size, &h[b])
                         : strata_buffer_create(rt, size, &h[b]),
                     0);
    assert_int_equal(strata_buffer_acquire(rt, h[b], STRATA_W, &p), 0);
    memcpy(p, mine, size);
    assert_int_equal(strata_buffer_release(rt, h[b]), 0);
  }
}

static void submit_all(test_dag_t *g, strata_runtime_t *rt, strata_kernel_t k,
                       const strata_buffer_t *h) {
  for (unsigned t = 0; t < g->ntask; t++) {
    strata_task_t task;
    assert_int_equal(strata_task_create(rt, k, &task), 0);
    for (uint32_t i = 0; i < g->args[t].n; i++)
      assert_int_equal(
          strata_task_access(rt, task, h[g->which[t][i]], g->args[t].mode[i]),
          0);
    assert_int_equal(
        strata_task_set_args(rt, task, &g->args[t], sizeof g->args[t]), 0);
    assert_int_equal(strata_task_submit(rt, task), 0);
    assert_int_equal(strata_task_release(rt, task), 0);
  }
}

void test_dag_run_and_check(test_dag_t *g, strata_runtime_t *rt,
                            strata_kernel_t k, test_dag_memory_t memory) {
  strata_buffer_t *h = calloc(g->nbuf, sizeof *h);
  assert_non_null(h);
  uint64_t ran0 = 0, ran = 0, failed = 0;
  strata_device_stats_t st = {.struct_size = sizeof st};
  for (int d = 0; d < strata_device_count(rt); d++) {
    assert_int_equal(strata_device_stats(rt, d, &st), 0);
    ran0 += st.tasks_run;
  }
  make_buffers(g, rt, memory, h);
  submit_all(g, rt, k, h);
  assert_int_equal(strata_runtime_wait_all(rt), 0);
  for (int d = 0; d < strata_device_count(rt); d++) {
    assert_int_equal(strata_device_stats(rt, d, &st), 0);
    ran += st.tasks_run;
    failed += st.tasks_failed;
  }
  assert_in_range(ran - ran0, g->ntask, g->ntask + g->reruns_max);
  assert_int_equal(failed, 0);
  size_t size = g->words * sizeof(uint64_t);
  for (unsigned b = 0; b < g->nbuf; b++) {
    if (memory != TEST_DAG_REGISTERED) {
      void *p;
      assert_int_equal(strata_buffer_acquire(rt, h[b], STRATA_R, &p), 0);
      memcpy(g->data + (size_t)b * g->words, p, size);
      assert_int_equal(strata_buffer_release(rt, h[b]), 0);
    }
    assert_int_equal(strata_buffer_unregister(rt, h[b]), 0);
  }
  free(h);
  for (unsigned b = 0; b < g->nbuf; b++)
    if (memcmp(g->data + (size_t)b * g->words, g->ref + (size_t)b * g->words,
               size))
      fail_msg("buffer %u differs from sequential execution", b);
}

strata_kernel_t test_register_mix(strata_runtime_t *rt, strata_kernel_fn cuda) {
  strata_kernel_t k;
  if (strata_kernel_find(rt, "mix", &k) == STRATA_OK)
    return k;
  const strata_kernel_impl_t impls[] = {{STRATA_IMPL_CPU, test_mix_kernel},
                                        {STRATA_IMPL_CUDA, cuda}};
  strata_kernel_desc_t d = {
      .struct_size = sizeof d, .name = "mix", .impls = impls, .nimpls = 2};
  assert_int_equal(strata_kernel_register(rt, &d, &k), STRATA_OK);
  return k;
}

void test_dag_check(strata_runtime_t *rt, strata_kernel_t k, unsigned nbuf,
                    unsigned ntask, unsigned words, unsigned seed,
                    unsigned reruns) {
  test_dag_t g;
  test_dag_build(&g, nbuf, ntask, words, nbuf / 4 + 1, seed);
  g.reruns_max = reruns;
  test_dag_run_sequential(&g);
  test_dag_run_and_check(&g, rt, k, false);
  test_dag_free(&g);
}
