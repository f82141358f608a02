/* SPDX-License-Identifier: MIT */
/* tests/test_cuda.c: the cuda-hbm and cuda-gddr backends, their real code,
 * against the fake CUDA runtime (tests/fakecuda): no driver, classification
 * and the class override, both plugins on one card, random DAGs over the
 * CPU and both kinds of card checked against a sequential run, device
 * memory oversubscribed, several works in flight with copies beside them,
 * managed buffers, pinned host memory, failed copies and allocations, and
 * a sticky error moving work elsewhere with no data lost; health through
 * the fake NVML (tests/fakecuda/fakenvml.c), and without one.
 *
 * The test kernel's CUDA code does what a real one does: it queues its
 * work on the stream it is given (as a host function) and returns; the
 * work runs later, on the stream's thread, on device memory the host
 * cannot read directly. A backend that completed a task before its stream
 * reached it, or handed a kernel host pointers, gives wrong data here. */
#include "config.h"

#include "dag.h"
#include "fakecuda.h"
#include "nvml.h"
#include "scuk.h"
#include "util.h"

#include <strata/metrics.h>
#include <strata/policy.h>

#include <cuda_runtime_api.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CUDA_BACKENDS "cpu,cuda-hbm,cuda-gddr"

/* {=== The test kernel's CUDA code ===} */

typedef struct mix_job {
  struct mix_job *prev, *next; /* queued, not yet run */
  test_mix_args_t a;
  void *bufs[TEST_MIX_MAX_ACC];
} mix_job_t;

static atomic_int mix_errors;

/* Jobs queued on streams and not run yet: a card that takes a sticky
 * error drops what is queued, as a real one does, and the test frees them
 * at the end. */
static pthread_mutex_t jobs_mu = PTHREAD_MUTEX_INITIALIZER;
static mix_job_t *jobs;

static void job_unlink(mix_job_t *j) {
  if (j->prev)
    j->prev->next = j->next;
  else
    jobs = j->next;
  if (j->next)
    j->next->prev = j->prev;
}

static void jobs_free_dropped(void) {
  pthread_mutex_lock(&jobs_mu);
  while (jobs) {
    mix_job_t *j = jobs;
    job_unlink(j);
    free(j);
  }
  pthread_mutex_unlock(&jobs_mu);
}

static void mix_on_stream(void *ud) {
  mix_job_t *j = ud;
  uint64_t *b[TEST_MIX_MAX_ACC];
  for (uint32_t i = 0; i < j->a.n; i++)
    if (!(b[i] = fakecuda_host_ptr(j->bufs[i])))
      atomic_fetch_add(&mix_errors, 1);
  test_mix_apply(&j->a, b);
  pthread_mutex_lock(&jobs_mu);
  job_unlink(j);
  pthread_mutex_unlock(&jobs_mu);
  free(j);
}

static int mix_cuda(const strata_kernel_call_t *c) {
  const test_mix_args_t *a = c->args;
  if (c->args_size != sizeof *a || c->nbuffers != a->n || !c->stream)
    return -1;
  mix_job_t *j = malloc(sizeof *j);
  if (!j)
    return -1;
  j->a = *a;
  for (uint32_t i = 0; i < a->n; i++)
    j->bufs[i] = c->buffers[i];
  pthread_mutex_lock(&jobs_mu);
  j->prev = NULL;
  j->next = jobs;
  if (jobs)
    jobs->prev = j;
  jobs = j;
  pthread_mutex_unlock(&jobs_mu);
  if (cudaLaunchHostFunc((cudaStream_t)c->stream, mix_on_stream, j) !=
      cudaSuccess) {
    pthread_mutex_lock(&jobs_mu);
    job_unlink(j);
    pthread_mutex_unlock(&jobs_mu);
    free(j);
    return -1;
  }
  return 0;
}

/* {=== A runtime over fake cards ===} */

typedef struct cu_rt {
  strata_runtime_t *rt;
  test_alloc_t alloc;
  test_log_t log;
  strata_runtime_opts_t o;
} cu_rt_t;

/* cards: FAKECUDA_DEVICES ("h100,rtx4090"; NULL: no driver). */
static void cu_opts(cu_rt_t *m, const char *cards, const char *options) {
  if (cards)
    setenv("FAKECUDA_DEVICES", cards, 1);
  else
    unsetenv("FAKECUDA_DEVICES");
  assert_int_equal(fakecuda_reset(), 0);
  atomic_store(&mix_errors, 0);
  test_alloc_init(&m->alloc);
  test_log_init(&m->log);
  test_opts(&m->o, 2, &m->log);
  m->o.backends = CUDA_BACKENDS;
  m->o.required_backends = "cpu";
  m->o.backend_options = options;
  m->o.alloc = test_alloc_fn;
  m->o.alloc_ud = &m->alloc;
}

static void cu_create(cu_rt_t *m) {
  int rc = strata_runtime_create(&m->o, &m->rt);
  if (rc)
    fail_msg("create: %s\n%s", strata_strerror(rc), m->log.text);
}

static void cu_destroy(cu_rt_t *m) {
  assert_int_equal(strata_runtime_destroy(m->rt), 0);
  jobs_free_dropped();
  test_alloc_assert_clean(&m->alloc);
  assert_int_equal(atomic_load(&mix_errors), 0);
  /* Every device block went back. */
  fakecuda_stats_t s;
  for (int d = 0; fakecuda_stats(d, &s) == 0; d++)
    assert_int_equal(s.bytes_live, 0);
}

/* The runtime's device driven by `backend` (the first). */
static void run_dag(strata_runtime_t *rt, unsigned nbuf, unsigned ntask,
                    unsigned words, unsigned seed, unsigned reruns) {
  test_dag_check(rt, test_register_mix(rt, mix_cuda), nbuf, ntask, words, seed,
                 reruns);
}

/* {=== Discovery ===} */

/* With the toolkit but no driver (CI), both plugins load, find nothing,
 * say why once, and the runtime runs on the CPU. */
static void test_cuda_no_driver(void **state) {
  cu_rt_t m;
  cu_opts(&m, NULL, NULL);
  cu_create(&m);
  assert_int_equal(strata_device_count(m.rt), 1);
  assert_true(test_log_has(&m.log, "no CUDA device: cudaGetDeviceCount: "
                                   "cudaErrorInsufficientDriver"));
  assert_true(test_log_has(&m.log, "backend 'cuda-hbm' found no device"));
  assert_true(test_log_has(&m.log, "backend 'cuda-gddr' found no device"));
  run_dag(m.rt, 8, 40, 16, 1, 0);
  cu_destroy(&m);
}

static void test_cuda_classifies_cards(void **state) {
  cu_rt_t m;
  cu_opts(&m, "h100,rtx4090", NULL);
  cu_create(&m);
  assert_int_equal(strata_device_count(m.rt), 3);
  int h = test_device_of_backend(m.rt, "cuda-hbm"),
      g = test_device_of_backend(m.rt, "cuda-gddr");
  assert_true(h > 0 && g > 0);
  strata_device_info_t hi = test_device_info(m.rt, h);
  strata_device_info_t gi = test_device_info(m.rt, g);
  assert_int_equal(hi.device_class, STRATA_CLASS_HBM);
  assert_int_equal(gi.device_class, STRATA_CLASS_GDDR);
  assert_string_equal(hi.model, "NVIDIA H100 80GB HBM3");
  assert_string_equal(gi.model, "NVIDIA GeForce RTX 4090");
  assert_string_equal(hi.pci_busid, "0000:10:00.0");
  assert_string_equal(gi.pci_busid, "0000:11:00.0");
  assert_int_equal(strncmp(hi.uuid, "GPU-", 4), 0);
  assert_string_not_equal(hi.uuid, gi.uuid);
  assert_int_equal(hi.memory_bus_width, 5120);
  assert_int_equal(gi.memory_bus_width, 384);
  assert_int_equal(hi.ecc, 1);
  assert_int_equal(gi.ecc, 0);
  assert_int_equal(hi.cc_major * 10 + hi.cc_minor, 90);
  assert_int_equal(gi.cc_major * 10 + gi.cc_minor, 89);
  assert_true(hi.memory_bytes == (uint64_t)80 << 30);
  assert_true(gi.memory_bytes == (uint64_t)24 << 30);
  /* Strong FP64 on the server card, weak on the consumer one. */
  assert_true(hi.fp64_flops > 30e12 && gi.fp64_flops < 2e12);
  assert_true(gi.fp32_flops > hi.fp32_flops);
  /* HBM3 at 2.6 GHz over 5120 bits: 3.35 TB/s. */
  assert_true(hi.mem_bandwidth > 3.3e12 && hi.mem_bandwidth < 3.4e12);
  assert_int_equal(hi.workers, 2);
  /* No P2P between an H100 and an RTX 4090. */
  assert_int_equal(hi.npeers, 0);
  assert_int_equal(gi.npeers, 0);
  cu_destroy(&m);
}

/* Two H100s reach each other: each lists the other, and copies between
 * them go direct. */
static void test_cuda_peers_between_like_cards(void **state) {
  cu_rt_t m;
  cu_opts(&m, "h100,h100", NULL);
  cu_create(&m);
  assert_int_equal(strata_device_count(m.rt), 3);
  int h = test_device_of_backend(m.rt, "cuda-hbm");
  assert_int_equal(test_device_info(m.rt, h).npeers, 1);
  assert_int_equal(test_device_info(m.rt, h + 1).npeers, 1);
  fakecuda_stats_t s;
  assert_int_equal(fakecuda_stats(0, &s), 0);
  assert_int_equal(s.peer_enabled, 1);
  run_dag(m.rt, 24, 300, 64, 7, 0);
  fakecuda_stats_t s0, s1;
  assert_int_equal(fakecuda_stats(0, &s0), 0);
  assert_int_equal(fakecuda_stats(1, &s1), 0);
  assert_int_equal(s0.peer_staged + s1.peer_staged, 0);
  cu_destroy(&m);
}

/* The override puts one H100 under both plugins: two devices over one
 * card, the forced one without a bus id of its own. */
static void test_cuda_override_one_card_both_plugins(void **state) {
  cu_rt_t m;
  cu_opts(&m, "h100", "cuda-gddr:class=0=gddr");
  m.o.required_backends = CUDA_BACKENDS;
  cu_create(&m);
  assert_int_equal(strata_device_count(m.rt), 3);
  strata_device_info_t hi =
      test_device_info(m.rt, test_device_of_backend(m.rt, "cuda-hbm"));
  strata_device_info_t gi =
      test_device_info(m.rt, test_device_of_backend(m.rt, "cuda-gddr"));
  assert_int_equal(hi.device_class, STRATA_CLASS_HBM);
  assert_int_equal(gi.device_class, STRATA_CLASS_GDDR);
  assert_string_equal(gi.model, "NVIDIA H100 80GB HBM3");
  assert_string_equal(hi.pci_busid, "0000:10:00.0");
  assert_string_equal(gi.pci_busid, "");
  run_dag(m.rt, 16, 200, 32, 3, 0);
  cu_destroy(&m);
}

/* By UUID and bus id too; the HBM plugin, told the card is GDDR, leaves it. */
static void test_cuda_override_by_busid(void **state) {
  cu_rt_t m;
  cu_opts(&m, "h100,rtx4090", "cuda-hbm:class=0000:10:00.0=gddr");
  cu_create(&m);
  assert_int_equal(test_device_of_backend(m.rt, "cuda-hbm"), -1);
  assert_int_equal(strata_device_count(m.rt), 2);
  cu_destroy(&m);
}

/* By UUID, in any case: the H100's, upper-cased. */
static void test_cuda_override_by_uuid(void **state) {
  cu_rt_t m;
  cu_opts(&m, "h100,rtx4090",
          "cuda-hbm:class=GPU-40414243-4445-4647-4849-4A4B4C4D4E4F=gddr");
  cu_create(&m);
  assert_int_equal(test_device_of_backend(m.rt, "cuda-hbm"), -1);
  assert_int_equal(strata_device_count(m.rt), 2);
  cu_destroy(&m);
}

static void test_cuda_bad_options_refused(void **state) {
  const char *bad[] = {"cuda-gddr:class=0=ddr", "cuda-gddr:class=0=gddr+",
                       "cuda-gddr:workers=0", "cuda-gddr:depth=many",
                       "cuda-gddr:pool=cuda"};
  const char *said[] = {"'ddr' is not a class", "option class: position",
                        "option workers=0", "option depth=many",
                        "option pool=cuda: expected core or stream"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    cu_rt_t m;
    cu_opts(&m, "rtx4090", bad[i]);
    m.o.required_backends = "cuda-gddr";
    assert_int_not_equal(strata_runtime_create(&m.o, &m.rt), STRATA_OK);
    if (!test_log_has(&m.log, said[i]))
      fail_msg("%s: no '%s' in\n%s", bad[i], said[i], m.log.text);
    test_alloc_assert_clean(&m.alloc);
  }
}

/* {=== Running work ===} */

static void test_cuda_dag_cpu_and_both_cards(void **state) {
  cu_rt_t m;
  cu_opts(&m, "h100,rtx4090", NULL);
  cu_create(&m);
  run_dag(m.rt, 48, 600, 64, 11, 0);
  for (int d = 0; d < 2; d++) {
    fakecuda_stats_t s;
    assert_int_equal(fakecuda_stats(d, &s), 0);
    assert_true(s.hostfns > 0);
    assert_true(s.h2d > 0);
  }
  cu_destroy(&m);
}

/* A card far smaller than the data: the core evicts and writes back
 * through the backend's copies, and the result is still exact. */
static void test_cuda_oversubscribed(void **state) {
  cu_rt_t m;
  cu_opts(&m, "h100,rtx4090", NULL);
  m.o.device_bytes = 24 * 512;
  cu_create(&m);
  run_dag(m.rt, 64, 500, 64, 5, 0);
  fakecuda_stats_t s;
  assert_int_equal(fakecuda_stats(0, &s), 0);
  assert_true(s.d2h > 0);
  cu_destroy(&m);
}

/* Slow operations: a card holds several works at once, on several
 * streams, with copies beside them. */
static void test_cuda_works_in_flight(void **state) {
  cu_rt_t m;
  cu_opts(&m, "h100", NULL);
  m.o.backends = "cuda-hbm";
  m.o.required_backends = "cuda-hbm";
  cu_create(&m);
  assert_int_equal(fakecuda_inject(0, "op_delay_us", 2000), 0);
  run_dag(m.rt, 32, 64, 16, 13, 0);
  fakecuda_stats_t s;
  assert_int_equal(fakecuda_stats(0, &s), 0);
  assert_true(s.max_streams_busy >= 2);
  cu_destroy(&m);
}

static void test_cuda_managed_buffers(void **state) {
  cu_rt_t m;
  cu_opts(&m, "h100", NULL);
  m.o.managed_devices = "all";
  cu_create(&m);
  int h = test_device_of_backend(m.rt, "cuda-hbm");
  assert_int_equal(test_device_info(m.rt, h).managed, 1);
  run_dag(m.rt, 16, 200, 32, 17, 0);
  fakecuda_stats_t s;
  assert_int_equal(fakecuda_stats(0, &s), 0);
  assert_true(s.prefetches > 0);
  assert_int_equal(s.h2d + s.d2h, 0); /* no copies: prefetches */
  cu_destroy(&m);
}

/* Buffers made with strata_buffer_create_managed: one cudaMallocManaged
 * allocation each, used in place by the CPU and both cards; the runtime
 * makes no copy at all, only prefetches, and the DAG's results are those
 * of a sequential run. */
static void test_cuda_shared_managed_buffers(void **state) {
  cu_rt_t m;
  cu_opts(&m, "h100,rtx4090", NULL);
  cu_create(&m);
  test_dag_t g;
  test_dag_build(&g, 16, 300, 32, 5, 43);
  test_dag_run_sequential(&g);
  test_dag_run_and_check(&g, m.rt, test_register_mix(m.rt, mix_cuda),
                         TEST_DAG_MANAGED);
  test_dag_free(&g);
  uint64_t prefetches = 0;
  for (int d = 0; d < 2; d++) {
    fakecuda_stats_t st;
    assert_int_equal(fakecuda_stats(d, &st), 0);
    assert_int_equal(st.h2d + st.d2h + st.d2d + st.peer_direct + st.peer_staged,
                     0);
    assert_true(st.hostfns > 0); /* the card ran some of the tasks */
    prefetches += st.prefetches;
  }
  assert_true(prefetches > 0);
  cu_destroy(&m);
}

static void test_cuda_pinned_host_memory(void **state) {
  cu_rt_t m;
  cu_opts(&m, "h100,rtx4090", NULL);
  m.o.pinned_bytes = 1 << 20;
  m.o.device_bytes = 16 * 512;
  cu_create(&m);
  assert_true(test_log_has(&m.log, "pinned host memory from backend "
                                   "'cuda-gddr' (host_alloc)"));
  run_dag(m.rt, 48, 300, 64, 19, 0);
  cu_destroy(&m);
}

/* Large copies to or from pageable memory (the DAG's buffers are the
 * test's own calloc'd memory) go through the cards' stagers, a pinned
 * chunk at a time: the fake sees no copy from pageable memory at all, and
 * the data, in buffers of two chunks and a bit, is right. */
static void test_cuda_pageable_copies_staged(void **state) {
  cu_rt_t m;
  cu_opts(&m, "h100,rtx4090", NULL);
  m.o.device_bytes = 3 * (9 << 20); /* evictions: copies both ways */
  cu_create(&m);
  run_dag(m.rt, 6, 24, (9 << 20) / 8 + 1, 41, 0);
  uint64_t h2d = 0, d2h = 0;
  for (int d = 0; d < 2; d++) {
    fakecuda_stats_t st;
    assert_int_equal(fakecuda_stats(d, &st), 0);
    assert_int_equal(st.pageable, 0);
    h2d += st.h2d;
    d2h += st.d2h;
  }
  assert_true(h2d >= 3 && d2h >= 3); /* a copy is three chunks */
  cu_destroy(&m);
}

/* pool=stream: device blocks come from CUDA's stream-ordered pool, and the
 * core gives every block back at once (the backend's pool caches). */
static void test_cuda_stream_ordered_pool(void **state) {
  cu_rt_t m;
  cu_opts(&m, "h100", "cuda-hbm:pool=stream");
  m.o.backends = m.o.required_backends = "cuda-hbm";
  m.o.device_bytes = 8 * 512;
  cu_create(&m);
  run_dag(m.rt, 24, 200, 64, 47, 0);
  fakecuda_stats_t st;
  assert_int_equal(fakecuda_stats(0, &st), 0);
  assert_true(st.pool_allocs > 0);
  assert_int_equal(st.pool_allocs, st.mallocs);
  strata_memory_node_info_t ni = {.struct_size = sizeof ni};
  int node = test_device_info(m.rt, 0).memory_node;
  assert_int_equal(strata_memory_node_info(m.rt, node, &ni), 0);
  assert_int_equal(ni.cached, 0); /* nothing kept by the core */
  cu_destroy(&m);
}

/* {=== Failures ===} */

static void test_cuda_failed_copies_retried(void **state) {
  cu_rt_t m;
  cu_opts(&m, "h100,rtx4090", NULL);
  cu_create(&m);
  /* Two failures in a row on each card: the third attempt succeeds
   * (copy_retries 3), and no card is failed for it. */
  assert_int_equal(fakecuda_inject(0, "copy_fail", 2), 0);
  assert_int_equal(fakecuda_inject(1, "copy_fail", 2), 0);
  run_dag(m.rt, 24, 200, 32, 23, 0);
  assert_int_equal(
      test_device_info(m.rt, test_device_of_backend(m.rt, "cuda-hbm")).failed,
      0);
  assert_int_equal(
      test_device_info(m.rt, test_device_of_backend(m.rt, "cuda-gddr")).failed,
      0);
  assert_true(test_log_has(&m.log, "(attempt 2 of 3)"));
  cu_destroy(&m);
}

static void test_cuda_out_of_memory_evicts(void **state) {
  cu_rt_t m;
  cu_opts(&m, "h100", NULL);
  m.o.backends = "cuda-hbm";
  m.o.required_backends = "cuda-hbm";
  cu_create(&m);
  /* The first DAG leaves its blocks in the core's cache; the second, of
   * another block size, meets a cudaMalloc failure far below the card's
   * size (as when another process holds the rest), which the core answers
   * by giving its cached blocks back and trying again. */
  run_dag(m.rt, 24, 200, 32, 29, 0);
  assert_int_equal(fakecuda_inject(0, "oom", 1), 0);
  run_dag(m.rt, 24, 200, 64, 30, 0);
  assert_true(test_log_has(&m.log, "cudaErrorMemoryAllocation"));
  cu_destroy(&m);
}

/* The H100 is lost part way (an illegal address): the core fails it and
 * runs its work on the others from data still valid; eager write-back
 * keeps every result home, so nothing is lost. */
static void test_cuda_sticky_error_moves_work(void **state) {
  cu_rt_t m;
  cu_opts(&m, "h100,rtx4090", NULL);
  m.o.eager_writeback = 1;
  cu_create(&m);
  assert_int_equal(fakecuda_inject(0, "sticky", 40), 0);
  run_dag(m.rt, 32, 400, 32, 31, 64);
  int h = test_device_of_backend(m.rt, "cuda-hbm");
  assert_int_equal(test_device_info(m.rt, h).failed, 1);
  assert_true(test_log_has(&m.log, "cudaErrorIllegalAddress"));
  cu_destroy(&m);
}

/* Device code the fake cannot run (nvcc's kernels, kernels/cuda): the
 * launch fails, and with it the task, as for any kernel error; the card
 * stays in service (the DAG ran on it before). */
static void test_cuda_kernel_launch_fails_task(void **state) {
  cu_rt_t m;
  cu_opts(&m, "h100", NULL);
  m.o.backends = m.o.required_backends = "cuda-hbm";
  cu_create(&m);
  run_dag(m.rt, 8, 40, 16, 37, 0);
  const strata_kernel_impl_t impls[] = {{STRATA_IMPL_CUDA, scuk_fill}};
  strata_kernel_desc_t d = {
      .struct_size = sizeof d, .name = "fill", .impls = impls, .nimpls = 1};
  strata_kernel_t fill;
  assert_int_equal(strata_kernel_register(m.rt, &d, &fill), 0);
  static double data[64];
  strata_buffer_t buf;
  assert_int_equal(strata_buffer_register(m.rt, data, sizeof data, &buf), 0);
  strata_task_t t;
  scuk_scalar_args_t a = {.value = 3.0};
  assert_int_equal(strata_task_create(m.rt, fill, &t), 0);
  assert_int_equal(strata_task_access(m.rt, t, buf, STRATA_W), 0);
  assert_int_equal(strata_task_set_args(m.rt, t, &a, sizeof a), 0);
  assert_int_equal(strata_task_submit(m.rt, t), 0);
  assert_int_equal(strata_task_wait(m.rt, t), STRATA_EKERNEL);
  strata_task_info_t ti = {.struct_size = sizeof ti};
  assert_int_equal(strata_task_info(m.rt, t, &ti), 0);
  assert_int_equal(ti.kernel_status, STRATA_EBACKEND);
  assert_int_equal(strata_task_release(m.rt, t), 0);
  assert_int_equal(strata_buffer_unregister(m.rt, buf), 0);
  assert_int_equal(test_device_info(m.rt, 0).failed, 0);
  /* A malformed call queues nothing. */
  strata_kernel_call_t bad = {.struct_size = sizeof bad, .nbuffers = 0};
  assert_int_equal(scuk_fill(&bad), STRATA_EINVAL);
  cu_destroy(&m);
}

/* {=== Health through NVML ===} */

static strata_health_t health_of(strata_runtime_t *rt, int dev) {
  assert_int_equal(strata_health_check(rt), 0);
  strata_health_t h = {.struct_size = sizeof h};
  assert_int_equal(strata_device_health(rt, dev, &h), 0);
  return h;
}

/* Each card gets its own answers, matched by bus id (the fake NVML lists
 * the cards in the reverse of CUDA's order); the consumer card's ECC is
 * NOT_SUPPORTED, which is "unknown", not an error. */
static void test_cuda_health_from_nvml(void **state) {
  cu_rt_t m;
  cu_opts(&m, "h100,rtx4090", NULL);
  m.o.health_period_ms = -1;
  cu_create(&m);
  assert_false(test_log_has(&m.log, "health unknown"));
  strata_health_t h = health_of(m.rt, test_device_of_backend(m.rt, "cuda-hbm"));
  strata_health_t g =
      health_of(m.rt, test_device_of_backend(m.rt, "cuda-gddr"));
  assert_true(h.temperature_c == 41 && g.temperature_c == 67);
  assert_true(h.power_w == 98.5 && g.power_w == 287.25);
  assert_true(h.utilisation == 0.37 && g.utilisation == 0.93);
  assert_int_equal(h.ecc_mode, 1);
  assert_int_equal(h.ecc_corrected, 0);
  assert_int_equal(h.ecc_uncorrected, 0);
  assert_int_equal(g.ecc_mode, -1);
  assert_int_equal(g.ecc_corrected, -1);
  assert_int_equal(g.ecc_uncorrected, -1);
  /* Idle is no throttling; a thermal slowdown is. */
  assert_int_equal(h.throttled, 0);
  assert_int_equal(h.throttle_reasons, 0x1);
  assert_int_equal(g.throttled, 1);
  assert_int_equal(g.throttle_reasons, 0x20);
  assert_int_equal(h.pcie_gen, 5);
  assert_int_equal(g.pcie_gen, 3);
  assert_int_equal(g.pcie_width, 16);
  assert_int_equal(h.persistence_mode, 1);
  assert_int_equal(g.persistence_mode, 0);
  assert_int_equal(h.compute_mode, 3);
  assert_int_equal(g.compute_mode, 0);
  assert_string_equal(h.driver_version, "580.65.06");
  assert_string_equal(g.driver_version, "580.65.06");
  assert_true(h.memory_used_bytes >= 512 << 20);
  /* The card's link as it can run: gen 4 x16 for the consumer card,
   * though it runs at gen 3 now. */
  strata_device_info_t gi =
      test_device_info(m.rt, test_device_of_backend(m.rt, "cuda-gddr"));
  assert_int_equal(gi.pcie_gen, 4);
  assert_int_equal(gi.pcie_width, 16);
  /* ECC errors counted by the driver show at the next reading. */
  assert_int_equal(fakenvml_inject(0, "ecc_uncorrected", 2), 0);
  h = health_of(m.rt, test_device_of_backend(m.rt, "cuda-hbm"));
  assert_int_equal(h.ecc_uncorrected, 2);
  cu_destroy(&m);
}

/* A backend writes only the fields within the struct_size it is given:
 * an embedder built before the GPU fields were appended keeps its
 * memory. */
static void test_cuda_health_older_struct(void **state) {
  cu_rt_t m;
  cu_opts(&m, "rtx4090", NULL);
  m.o.health_period_ms = -1;
  cu_create(&m);
  assert_int_equal(strata_health_check(m.rt), 0);
  struct {
    strata_health_t h;
  } box;
  memset(&box, 0x5a, sizeof box);
  box.h.struct_size = offsetof(strata_health_t, throttle_reasons);
  assert_int_equal(strata_device_health(
                       m.rt, test_device_of_backend(m.rt, "cuda-gddr"), &box.h),
                   0);
  assert_true(box.h.temperature_c == 67);
  const unsigned char *tail = (const unsigned char *)&box.h.throttle_reasons;
  for (size_t i = 0; i < sizeof box - box.h.struct_size; i++)
    assert_int_equal(tail[i], 0x5a);
  cu_destroy(&m);
}

/* A policy reads what NVML says: the card at 93% utilisation, with memory
 * in use and no ECC to count (the consumer card), takes every task. */
static void test_cuda_policy_reads_health(void **state) {
  char dir[512];
  test_tmpdir(dir, sizeof dir, "cuda-policy");
  cu_rt_t m;
  cu_opts(&m, "h100,rtx4090", NULL);
  m.o.health_period_ms = -1;
  m.o.policy = test_write_file(
      dir, "busy.lua",
      "function place(task, machine)\n"
      "  for _, d in ipairs(machine.devices) do\n"
      "    if d.utilisation and d.utilisation > 0.9 and d.memory_used and\n"
      "       d.memory_used > 0 and d.ecc_errors == nil then return d end\n"
      "    if d.ecc_errors and d.ecc_errors ~= 0 then error('ecc') end\n"
      "  end\n"
      "  error('no card answered')\n"
      "end\n");
  cu_create(&m);
  assert_int_equal(strata_health_check(m.rt), 0);
  run_dag(m.rt, 8, 60, 16, 53, 0);
  strata_device_stats_t st = {.struct_size = sizeof st};
  assert_int_equal(
      strata_device_stats(m.rt, test_device_of_backend(m.rt, "cuda-gddr"), &st),
      0);
  assert_int_equal(st.tasks_run, 60);
  cu_destroy(&m);
  test_tmpdir_remove(dir);
}

/* {=== Metrics from NVML ===} */

/* The value of FAMILY's sample for DEVICE whose line also holds EXTRA
 * (NULL: any), NAN when the text has none. */
static double sample_of(const char *text, const char *family,
                        const char *device, const char *extra) {
  char dev[64];
  snprintf(dev, sizeof dev, "device=\"%s\"", device);
  const char *with[] = {dev, extra, NULL};
  unsigned lines;
  double v = test_metrics_sum(text, family, with, &lines);
  return lines ? v : NAN;
}

/* What the driver says of each card reaches the exposition, per card as
 * NVML matched it by bus id: temperature, power, utilisation, memory in
 * use, a thermal slowdown, ECC counts where the card has ECC (the
 * consumer card has no ECC family line at all, not a zero), and counts
 * the driver raises later at the next scrape. */
static void test_cuda_metrics_from_nvml(void **state) {
  cu_rt_t m;
  cu_opts(&m, "h100,rtx4090", NULL);
  m.o.health_period_ms = -1;
  cu_create(&m);
  assert_int_equal(strata_health_check(m.rt), 0);
  char *text = test_metrics_text(m.rt);
  const char *temp = "strata_device_temperature_celsius";
  const char *power = "strata_device_power_watts";
  const char *util = "strata_device_utilisation_ratio";
  const char *used = "strata_device_memory_used_bytes";
  const char *throttled = "strata_device_throttled";
  const char *ecc = "strata_device_ecc_errors_total";
  assert_true(sample_of(text, temp, "hbm0", "class=\"hbm\"") == 41);
  assert_true(sample_of(text, temp, "gddr0", "class=\"gddr\"") == 67);
  assert_true(sample_of(text, power, "hbm0", NULL) == 98.5);
  assert_true(sample_of(text, power, "gddr0", NULL) == 287.25);
  assert_true(sample_of(text, util, "hbm0", NULL) == 0.37);
  assert_true(sample_of(text, util, "gddr0", NULL) == 0.93);
  assert_true(sample_of(text, used, "hbm0", NULL) >= 512 << 20);
  assert_true(sample_of(text, throttled, "hbm0", NULL) == 0);
  assert_true(sample_of(text, throttled, "gddr0", NULL) == 1);
  assert_true(sample_of(text, ecc, "hbm0", "type=\"corrected\"") == 0);
  assert_true(sample_of(text, ecc, "hbm0", "type=\"uncorrected\"") == 0);
  assert_true(isnan(sample_of(text, ecc, "gddr0", NULL)));
  /* The CPU has no sensor NVML reads: no line, not a zero. */
  assert_true(isnan(sample_of(text, temp, "cpu0", NULL)));
  assert_int_equal(fakenvml_inject(0, "ecc_corrected", 5), 0);
  assert_int_equal(fakenvml_inject(0, "ecc_uncorrected", 2), 0);
  assert_int_equal(strata_health_check(m.rt), 0);
  free(text);
  text = test_metrics_text(m.rt);
  assert_true(sample_of(text, ecc, "hbm0", "type=\"corrected\"") == 5);
  assert_true(sample_of(text, ecc, "hbm0", "type=\"uncorrected\"") == 2);
  free(text);
  cu_destroy(&m);
}

/* {=== NVML without a driver ===} */

static test_log_t *nvml_log;

static void nvml_log_fn(strata_core_t *core, strata_log_level_t level,
                        const char *fmt, ...) {
  (void)core;
  va_list ap;
  va_start(ap, fmt);
  char line[512];
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  test_log_fn(nvml_log, level, "cuda", line);
}

/* NVML's tables come from the test's leak-checking allocator. */
static test_alloc_t nvml_alloc;

static void *nvml_alloc_fn(strata_core_t *core, void *p, size_t old,
                           size_t size) {
  (void)core;
  return test_alloc_fn(&nvml_alloc, p, old, size);
}

static const strata_core_services_t nvml_core = {.log = nvml_log_fn,
                                                 .alloc = nvml_alloc_fn};

/* No NVML library (a machine without NVIDIA's driver), or one without a
 * driver to talk to: health is unknown, one INFO line says why, nothing
 * fails. */
static void test_cuda_nvml_absent(void **state) {
  test_log_t log;
  test_log_init(&log);
  test_alloc_init(&nvml_alloc);
  nvml_log = &log;
  scuda_nvml_t *n = (scuda_nvml_t *)&log;
  assert_int_equal(
      scuda_nvml_open_named(&nvml_core, "libstrata-no-such-nvml.so.1", &n),
      STRATA_ENOTSUP);
  assert_null(n);
  assert_true(test_log_has(&log, "libstrata-no-such-nvml.so.1 not loaded: "
                                 "device health unknown"));
  unsetenv("FAKECUDA_DEVICES");
  assert_int_equal(scuda_nvml_open(&nvml_core, &n), STRATA_ENOTSUP);
  assert_null(n);
  assert_true(test_log_has(&log, "Driver Not Loaded: device health unknown"));
  scuda_nvml_close(NULL);
  test_alloc_assert_clean(&nvml_alloc);
}

/* Bus ids in hwloc's and NVML's spellings find the same card. */
static void test_cuda_nvml_bus_ids(void **state) {
  test_log_t log;
  test_log_init(&log);
  test_alloc_init(&nvml_alloc);
  nvml_log = &log;
  setenv("FAKECUDA_DEVICES", "h100,rtx4090", 1);
  scuda_nvml_t *n;
  assert_int_equal(scuda_nvml_open(&nvml_core, &n), 0);
  unsigned a, b;
  assert_int_equal(scuda_nvml_find(n, "0000:11:00.0", &a), 0);
  assert_int_equal(scuda_nvml_find(n, "00000000:11:00.0", &b), 0);
  assert_int_equal(a, b);
  assert_int_equal(a, 0); /* NVML's order is the reverse of CUDA's */
  assert_int_equal(scuda_nvml_find(n, "0000:10:00.0", &a), 0);
  assert_int_equal(a, 1);
  assert_int_equal(scuda_nvml_find(n, "0000:3b:00.0", &a), STRATA_ENOENT);
  assert_int_equal(scuda_nvml_find(n, "GPU-1234", &a), STRATA_EINVAL);
  strata_health_t h = {.struct_size = sizeof h, .ecc_mode = -1};
  assert_int_equal(scuda_nvml_health(n, 9, &h), STRATA_ERANGE);
  /* A card NVML has lost answers so. */
  assert_int_equal(fakenvml_inject(1, "lost", 1), 0);
  assert_int_equal(scuda_nvml_health(n, 0, &h), STRATA_EDEVICE);
  assert_int_equal(scuda_nvml_health(n, 1, &h), 0);
  assert_int_equal(h.ecc_mode, 1);
  scuda_nvml_close(n);
  test_alloc_assert_clean(&nvml_alloc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cuda_no_driver),
      cmocka_unit_test(test_cuda_nvml_absent),
      cmocka_unit_test(test_cuda_nvml_bus_ids),
      cmocka_unit_test(test_cuda_classifies_cards),
      cmocka_unit_test(test_cuda_peers_between_like_cards),
      cmocka_unit_test(test_cuda_override_one_card_both_plugins),
      cmocka_unit_test(test_cuda_override_by_busid),
      cmocka_unit_test(test_cuda_override_by_uuid),
      cmocka_unit_test(test_cuda_bad_options_refused),
      cmocka_unit_test(test_cuda_dag_cpu_and_both_cards),
      cmocka_unit_test(test_cuda_oversubscribed),
      cmocka_unit_test(test_cuda_works_in_flight),
      cmocka_unit_test(test_cuda_managed_buffers),
      cmocka_unit_test(test_cuda_shared_managed_buffers),
      cmocka_unit_test(test_cuda_pinned_host_memory),
      cmocka_unit_test(test_cuda_pageable_copies_staged),
      cmocka_unit_test(test_cuda_stream_ordered_pool),
      cmocka_unit_test(test_cuda_failed_copies_retried),
      cmocka_unit_test(test_cuda_out_of_memory_evicts),
      cmocka_unit_test(test_cuda_sticky_error_moves_work),
      cmocka_unit_test(test_cuda_kernel_launch_fails_task),
      cmocka_unit_test(test_cuda_health_from_nvml),
      cmocka_unit_test(test_cuda_health_older_struct),
      cmocka_unit_test(test_cuda_policy_reads_health),
      cmocka_unit_test(test_cuda_metrics_from_nvml),
  };
  return test_run_group(tests, sizeof tests / sizeof *tests, NULL);
}
