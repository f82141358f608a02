/* SPDX-License-Identifier: MIT */
/* tests/gpu/test_gpu.c: the CUDA backends on a real card, with real
 * kernels: the coherence DAGs of the fake-runtime tests with the mix
 * kernel as device code (checked bit for bit against a sequential run on
 * the CPU), device memory oversubscribed by a capped device_bytes, both
 * plugins on the one card through the class override, managed buffers,
 * the vector and cuBLAS/cuSOLVER kernels of kernels/cuda against their CPU
 * answers, and, last since it leaves the card unusable to this process, a
 * faulting kernel whose card is failed while its work finishes elsewhere
 * with no data lost.
 *
 * Linked with the toolkit's libcudart (never the fake): without a driver
 * or a card it is skipped (exit 77; under make check's TAP driver, a plan
 * of no tests), as on CI. */
#include "config.h"

#include "dag.h"
#include "gpu_mix.h"
#include "scuk.h"
#include "util.h"

#include <cuda_runtime_api.h>
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GPU_BACKENDS "cpu,cuda-hbm,cuda-gddr"

/* {=== Kernels ===} */

static atomic_bool fault_next; /* the next mix on a GPU faults instead */

static int mix_cuda(const strata_kernel_call_t *c) {
  const test_mix_args_t *a = c->args;
  if (c->args_size != sizeof *a || c->nbuffers != a->n)
    return -1;
  if (atomic_exchange(&fault_next, false))
    return gpu_fault_launch(c->buffers[0], c->stream) ? STRATA_EBACKEND : 0;
  gpu_mix_launch_t l = {.id = a->id, .n = a->n, .words = a->words};
  for (uint32_t i = 0; i < a->n; i++) {
    l.mode[i] = a->mode[i];
    l.bufs[i] = c->buffers[i];
  }
  return gpu_mix_launch(&l, c->stream) ? STRATA_EBACKEND : 0;
}

/* {=== A runtime on this machine's cards ===} */

typedef struct gpu_rt {
  strata_runtime_t *rt;
  test_log_t log;
  strata_runtime_opts_t o;
} gpu_rt_t;

static void gpu_opts(gpu_rt_t *m, const char *options) {
  test_log_init(&m->log);
  test_opts(&m->o, 2, &m->log);
  m->o.backends = GPU_BACKENDS;
  m->o.required_backends = "cpu";
  m->o.backend_options = options;
}

static void gpu_create(gpu_rt_t *m) {
  int rc = strata_runtime_create(&m->o, &m->rt);
  if (rc)
    fail_msg("create: %s\n%s", strata_strerror(rc), m->log.text);
}

static void gpu_destroy(gpu_rt_t *m) {
  assert_int_equal(strata_runtime_destroy(m->rt), 0);
}

static uint64_t tasks_on_gpus(strata_runtime_t *rt) {
  uint64_t n = 0;
  for (int d = 0; d < strata_device_count(rt); d++) {
    strata_device_stats_t st = {.struct_size = sizeof st};
    assert_int_equal(strata_device_stats(rt, d, &st), 0);
    if (test_device_info(rt, d).device_class != STRATA_CLASS_CPU)
      n += st.tasks_run;
  }
  return n;
}

static void run_dag(strata_runtime_t *rt, unsigned nbuf, unsigned ntask,
                    unsigned words, unsigned seed, unsigned reruns) {
  test_dag_check(rt, test_register_mix(rt, mix_cuda), nbuf, ntask, words, seed,
                 reruns);
}

/* {=== Tests ===} */

static void test_gpu_dag(void **state) {
  gpu_rt_t m;
  gpu_opts(&m, NULL);
  gpu_create(&m);
  run_dag(m.rt, 48, 600, 64, 3, 0);
  assert_true(tasks_on_gpus(m.rt) > 0);
  gpu_destroy(&m);
}

static void test_gpu_oversubscribed(void **state) {
  gpu_rt_t m;
  gpu_opts(&m, NULL);
  m.o.device_bytes = 16 * 512; /* 16 of the 64 buffers */
  gpu_create(&m);
  run_dag(m.rt, 64, 600, 64, 5, 0);
  assert_true(tasks_on_gpus(m.rt) > 0);
  gpu_destroy(&m);
}

/* The first card in both plugins: two devices over one GPU. */
static void test_gpu_both_plugins_one_card(void **state) {
  gpu_rt_t m;
  gpu_opts(&m, "cuda-hbm:class=0=hbm;cuda-gddr:class=0=gddr");
  m.o.backends = "cuda-hbm,cuda-gddr"; /* either may find no card */
  m.o.required_backends = NULL;
  gpu_create(&m);
  /* cuda-hbm claims every card by its class; cuda-gddr card 0 too. */
  int cards = 0;
  assert_int_equal(cudaGetDeviceCount(&cards), cudaSuccess);
  assert_int_equal(strata_device_count(m.rt), cards + 1);
  run_dag(m.rt, 32, 400, 64, 7, 0);
  gpu_destroy(&m);
}

static void test_gpu_managed(void **state) {
  gpu_rt_t m;
  gpu_opts(&m, NULL);
  m.o.managed_devices = "all";
  gpu_create(&m);
  int g = test_device_of_backend(m.rt, "cuda-hbm") >= 0
              ? test_device_of_backend(m.rt, "cuda-hbm")
              : test_device_of_backend(m.rt, "cuda-gddr");
  if (g < 0 || !test_device_info(m.rt, g).managed) {
    gpu_destroy(&m);
    skip(); /* no concurrent managed access on this card */
  }
  run_dag(m.rt, 32, 400, 64, 9, 0);
  gpu_destroy(&m);
}

/* {=== kernels/cuda against the CPU ===} */

static strata_kernel_t cuda_only(strata_runtime_t *rt, const char *name,
                                 strata_kernel_fn fn) {
  const strata_kernel_impl_t impls[] = {{STRATA_IMPL_CUDA, fn}};
  strata_kernel_desc_t d = {
      .struct_size = sizeof d, .name = name, .impls = impls, .nimpls = 1};
  strata_kernel_t k;
  assert_int_equal(strata_kernel_register(rt, &d, &k), 0);
  return k;
}

static void submit(strata_runtime_t *rt, strata_kernel_t k,
                   const strata_buffer_t *b, const strata_access_mode_t *mode,
                   unsigned n, const void *args, size_t args_size) {
  strata_task_t t;
  assert_int_equal(strata_task_create(rt, k, &t), 0);
  for (unsigned i = 0; i < n; i++)
    assert_int_equal(strata_task_access(rt, t, b[i], mode[i]), 0);
  if (args_size)
    assert_int_equal(strata_task_set_args(rt, t, args, args_size), 0);
  assert_int_equal(strata_task_submit(rt, t), 0);
  assert_int_equal(strata_task_wait(rt, t), 0);
  assert_int_equal(strata_task_release(rt, t), 0);
}

static void test_gpu_vector_kernels(void **state) {
  gpu_rt_t m;
  gpu_opts(&m, NULL);
  m.o.backends = "cuda-hbm,cuda-gddr"; /* either may find no card */
  m.o.required_backends = NULL;
  gpu_create(&m);
  enum { N = 1 << 20 };
  double *x = calloc(N, sizeof *x), *y = calloc(N, sizeof *y), sum = 0;
  assert_true(x && y);
  strata_buffer_t bx, by, bs;
  assert_int_equal(strata_buffer_register(m.rt, x, N * sizeof *x, &bx), 0);
  assert_int_equal(strata_buffer_register(m.rt, y, N * sizeof *y, &by), 0);
  assert_int_equal(strata_buffer_register(m.rt, &sum, sizeof sum, &bs), 0);
  strata_kernel_t fill = cuda_only(m.rt, "fill", scuk_fill),
                  scale = cuda_only(m.rt, "scale", scuk_scale),
                  axpy = cuda_only(m.rt, "axpy", scuk_axpy),
                  checksum = cuda_only(m.rt, "checksum", scuk_checksum);
  const strata_access_mode_t w[] = {STRATA_W}, rw[] = {STRATA_RW},
                             rw_r[] = {STRATA_RW, STRATA_R},
                             r_w[] = {STRATA_R, STRATA_W};
  scuk_scalar_args_t two = {2.0}, half = {0.5}, three = {3.0};
  submit(m.rt, fill, &bx, w, 1, &two, sizeof two);   /* x = 2 */
  submit(m.rt, fill, &by, w, 1, &half, sizeof half); /* y = 0.5 */
  submit(m.rt, scale, &by, rw, 1, &two, sizeof two); /* y = 1 */
  const strata_buffer_t yx[] = {by, bx}, ys[] = {by, bs};
  submit(m.rt, axpy, yx, rw_r, 2, &three, sizeof three); /* y = 7 */
  submit(m.rt, checksum, ys, r_w, 2, NULL, 0);           /* sum = 7N */
  assert_int_equal(strata_buffer_unregister(m.rt, bx), 0);
  assert_int_equal(strata_buffer_unregister(m.rt, by), 0);
  assert_int_equal(strata_buffer_unregister(m.rt, bs), 0);
  for (size_t i = 0; i < N; i++)
    if (x[i] != 2.0 || y[i] != 7.0)
      fail_msg("element %zu: x %g y %g", i, x[i], y[i]);
  assert_true(sum == 7.0 * N);
  free(x);
  free(y);
  gpu_destroy(&m);
}

/* One tile through dpotrf on the card: L L^T gives the tile back. */
static void test_gpu_cusolver_potrf(void **state) {
  if (scuk_blas_error())
    skip();
  gpu_rt_t m;
  gpu_opts(&m, NULL);
  m.o.backends = "cuda-hbm,cuda-gddr"; /* either may find no card */
  m.o.required_backends = NULL;
  gpu_create(&m);
  enum { B = 256 };
  double *a = malloc(B * B * sizeof *a), *a0 = malloc(B * B * sizeof *a0);
  assert_true(a && a0);
  for (int j = 0; j < B; j++)
    for (int i = 0; i < B; i++)
      a[i + j * B] = i == j ? B : 1.0 / (1 + abs(i - j));
  memcpy(a0, a, B * B * sizeof *a);
  strata_buffer_t ba;
  assert_int_equal(strata_buffer_register(m.rt, a, B * B * sizeof *a, &ba), 0);
  strata_kernel_t potrf = cuda_only(m.rt, "dpotrf", scuk_dpotrf);
  const strata_access_mode_t rw[] = {STRATA_RW};
  scuk_tile_args_t t = {.b = B};
  submit(m.rt, potrf, &ba, rw, 1, &t, sizeof t);
  assert_int_equal(strata_buffer_unregister(m.rt, ba), 0);
  double worst = 0;
  for (int i = 0; i < B; i++)
    for (int j = 0; j <= i; j++) {
      double s = 0;
      for (int k = 0; k <= j; k++)
        s += a[i + k * B] * a[j + k * B];
      worst = fmax(worst, fabs(s - a0[i + j * B]));
    }
  assert_true(worst < 1e-9 * B);
  free(a);
  free(a0);
  gpu_destroy(&m);
}

/* Last: a faulting kernel leaves its card unusable to this process. */
static void test_gpu_faulting_kernel(void **state) {
  gpu_rt_t m;
  gpu_opts(&m, NULL);
  m.o.eager_writeback = 1;
  gpu_create(&m);
  atomic_store(&fault_next, true);
  run_dag(m.rt, 32, 400, 64, 11, 64);
  int failed = 0;
  for (int d = 0; d < strata_device_count(m.rt); d++)
    failed += test_device_info(m.rt, d).failed;
  assert_true(failed >= 1);
  assert_true(test_log_has(&m.log, "cudaErrorIllegalAddress"));
  gpu_destroy(&m);
}

int main(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
    /* Skipped: make check reads TAP (a plan of no tests, and why); a
     * script reads the exit status (77, automake's skip). */
    const char *why = cudaGetErrorString(cudaGetLastError());
    const char *out = getenv("CMOCKA_MESSAGE_OUTPUT");
    bool tap = out && !strcmp(out, "TAP");
    printf("%sno CUDA device (%s)\n", tap ? "1..0 # SKIP " : "SKIP: ", why);
    return tap ? 0 : 77;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gpu_dag),
      cmocka_unit_test(test_gpu_oversubscribed),
      cmocka_unit_test(test_gpu_both_plugins_one_card),
      cmocka_unit_test(test_gpu_managed),
      cmocka_unit_test(test_gpu_vector_kernels),
      cmocka_unit_test(test_gpu_cusolver_potrf),
      cmocka_unit_test(test_gpu_faulting_kernel),
  };
  return test_run_group(tests, sizeof tests / sizeof *tests, NULL);
}
