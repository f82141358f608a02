/* SPDX-License-Identifier: MIT */
/* bench/strata-gpubench.c: the CUDA backends on a real card, measured
 * against CUDA alone (figures, never pass/fail):
 *   copy     host-to-device and device-to-host throughput of Strata's
 *            copies (a task reading data last written on the host, the
 *            host acquiring data last written by a task) against raw
 *            cudaMemcpyAsync between the same pinned buffer and device
 *            memory, 1 MiB to 1 GiB (goal: 95% or more);
 *   gemm     a tiled DGEMM job (C -= A B^T, tiles through cuBLAS) against
 *            one cuBLAS call on the whole matrices (goal: 90% of its
 *            FLOP/s), data resident on the card in both;
 *   empty    the cost of an empty GPU task: one that queues nothing, and
 *            one that launches an empty kernel;
 *   overlap  tasks each with its own input to copy and a kernel as long
 *            as the copy: with copies beside the kernels, the job takes
 *            about half the serial time (copy + kernel, each measured
 *            alone);
 *   alloc    device memory through the core's block cache (pool=core, the
 *            default) against CUDA's stream-ordered pool (pool=stream).
 * One JSON line per figure on stdout. The first card only
 * (CUDA_VISIBLE_DEVICES=0 unless set). Exit 77 without a card. */
#include "config.h"

#define PROG "strata-gpubench"

#include <cuda_runtime_api.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scuk.h"
#include "strata-helpers.h"

int bench_empty_launch(void *stream);
int bench_spin_launch(long long cycles, void *stream);

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cuda_failed(const char *what, cudaError_t e) {
  fprintf(stderr, PROG ": %s: %s\n", what, cudaGetErrorString(e));
  return 1;
}

#define CUDA_OR_FAIL(call)                                                     \
  do {                                                                         \
    cudaError_t e_ = (call);                                                   \
    if (e_ != cudaSuccess)                                                     \
      return cuda_failed(#call, e_);                                           \
  } while (0)

#define STRATA_OR_FAIL(call)                                                   \
  do {                                                                         \
    int rc_ = (call);                                                          \
    if (rc_)                                                                   \
      return report(#call, rc_);                                               \
  } while (0)

/* {=== The runtime: the GPU backends only ===} */

static int k_nothing(const strata_kernel_call_t *c) {
  (void)c;
  return 0;
}

static int k_empty_kernel(const strata_kernel_call_t *c) {
  return bench_empty_launch(c->stream) ? STRATA_EBACKEND : 0;
}

static long long spin_cycles;

static int k_spin(const strata_kernel_call_t *c) {
  return bench_spin_launch(spin_cycles, c->stream) ? STRATA_EBACKEND : 0;
}

static int start(strata_runtime_t **rt, const char *backend_options) {
  strata_runtime_opts_t o;
  strata_runtime_opts_init(&o);
  o.log = log_stderr;
  o.log_level = STRATA_LOG_WARN;
  o.backends = "cuda-hbm,cuda-gddr";
  o.backend_options = backend_options;
  /* The build tree's backends, unless told (a copied tree elsewhere). */
  const char *path = getenv("STRATA_BACKEND_PATH");
  o.backend_path = path && *path ? path : STRATA_BUILD_BACKENDS;
  o.policy = "";
  o.health_period_ms = -1;
  int rc = strata_runtime_create(&o, rt);
  if (rc)
    return report("strata_runtime_create", rc);
  if (strata_device_count(*rt) < 1) {
    fprintf(stderr, PROG ": no CUDA device\n");
    return 1;
  }
  return 0;
}

static int cuda_kernel(strata_runtime_t *rt, const char *name,
                       strata_kernel_fn fn, strata_kernel_t *k) {
  const strata_kernel_impl_t impls[] = {{STRATA_IMPL_CUDA, fn}};
  strata_kernel_desc_t d = {
      .struct_size = sizeof d, .name = name, .impls = impls, .nimpls = 1};
  if (strata_kernel_find(rt, name, k) == STRATA_OK)
    return 0;
  return strata_kernel_register(rt, &d, k);
}

static int task(strata_runtime_t *rt, strata_kernel_t k,
                const strata_buffer_t *b, const strata_access_mode_t *m,
                unsigned n, const void *args, size_t args_size, bool wait) {
  strata_task_t t;
  STRATA_OR_FAIL(strata_task_create(rt, k, &t));
  for (unsigned i = 0; i < n; i++)
    STRATA_OR_FAIL(strata_task_access(rt, t, b[i], m[i]));
  if (args_size)
    STRATA_OR_FAIL(strata_task_set_args(rt, t, args, args_size));
  STRATA_OR_FAIL(strata_task_submit(rt, t));
  if (wait)
    STRATA_OR_FAIL(strata_task_wait(rt, t));
  STRATA_OR_FAIL(strata_task_release(rt, t));
  return 0;
}

/* {=== copy ===} */

enum { COPY_ROUNDS = 8 };

static double raw_copy_gbps(void *host, void *dev, size_t size, bool h2d,
                            cudaStream_t s) {
  uint64_t best = UINT64_MAX;
  for (int r = 0; r < COPY_ROUNDS; r++) {
    uint64_t t0 = now_ns();
    if (cudaMemcpyAsync(h2d ? dev : host, h2d ? host : dev, size,
                        h2d ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost,
                        s) != cudaSuccess ||
        cudaStreamSynchronize(s) != cudaSuccess)
      return 0;
    uint64_t t = now_ns() - t0;
    best = t < best ? t : best;
  }
  return (double)size / (double)best;
}

/* H2D: the host writes, a task reads on the card. D2H: a task writes on
 * the card, the host reads. Best of the rounds, as for the raw copy. */
static int strata_copy_gbps(strata_runtime_t *rt, void *host, size_t size,
                            double *h2d, double *d2h) {
  strata_kernel_t none;
  STRATA_OR_FAIL(cuda_kernel(rt, "nothing", k_nothing, &none));
  strata_buffer_t b;
  STRATA_OR_FAIL(strata_buffer_register(rt, host, size, &b));
  const strata_access_mode_t r[] = {STRATA_R}, w[] = {STRATA_W};
  uint64_t best_in = UINT64_MAX, best_out = UINT64_MAX;
  for (int round = 0; round < COPY_ROUNDS; round++) {
    void *p;
    STRATA_OR_FAIL(strata_buffer_acquire(rt, b, STRATA_W, &p));
    STRATA_OR_FAIL(strata_buffer_release(rt, b));
    uint64_t t0 = now_ns();
    if (task(rt, none, &b, r, 1, NULL, 0, true))
      return 1;
    uint64_t t1 = now_ns();
    if (task(rt, none, &b, w, 1, NULL, 0, true))
      return 1;
    uint64_t t2 = now_ns();
    STRATA_OR_FAIL(strata_buffer_acquire(rt, b, STRATA_R, &p));
    STRATA_OR_FAIL(strata_buffer_release(rt, b));
    uint64_t t3 = now_ns();
    best_in = t1 - t0 < best_in ? t1 - t0 : best_in;
    best_out = t3 - t2 < best_out ? t3 - t2 : best_out;
  }
  STRATA_OR_FAIL(strata_buffer_unregister(rt, b));
  *h2d = (double)size / (double)best_in;
  *d2h = (double)size / (double)best_out;
  return 0;
}

static int bench_copy(strata_runtime_t *rt, size_t max_bytes) {
  void *host, *dev;
  cudaStream_t s;
  CUDA_OR_FAIL(cudaMallocHost(&host, max_bytes));
  CUDA_OR_FAIL(cudaMalloc(&dev, max_bytes));
  CUDA_OR_FAIL(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  memset(host, 1, max_bytes);
  for (size_t size = 1 << 20; size <= max_bytes; size *= 4) {
    double raw_in = raw_copy_gbps(host, dev, size, true, s);
    double raw_out = raw_copy_gbps(host, dev, size, false, s);
    double in = 0, out = 0;
    if (strata_copy_gbps(rt, host, size, &in, &out))
      return 1;
    printf("{\"bench\":\"copy\",\"bytes\":%zu,\"raw_h2d_gbps\":%.2f,"
           "\"strata_h2d_gbps\":%.2f,\"h2d_ratio\":%.3f,"
           "\"raw_d2h_gbps\":%.2f,\"strata_d2h_gbps\":%.2f,"
           "\"d2h_ratio\":%.3f}\n",
           size, raw_in, in, raw_in > 0 ? in / raw_in : 0, raw_out, out,
           raw_out > 0 ? out / raw_out : 0);
    fflush(stdout);
  }
  cudaStreamDestroy(s);
  cudaFree(dev);
  cudaFreeHost(host);
  return 0;
}

/* {=== gemm ===} */

/* One cuBLAS call on the whole n x n matrices, through the same kernel
 * the tiles use (scuk_dgemm with b = n), data on the card. */
static double raw_gemm_seconds(int n) {
  size_t bytes = (size_t)n * (size_t)n * sizeof(double);
  void *m[3] = {NULL, NULL, NULL};
  cudaStream_t s = NULL;
  double best = 0;
  if (cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) != cudaSuccess)
    return 0;
  for (int i = 0; i < 3; i++)
    if (cudaMalloc(&m[i], bytes) != cudaSuccess ||
        cudaMemsetAsync(m[i], 0, bytes, s) != cudaSuccess)
      goto out;
  size_t sizes[3] = {bytes, bytes, bytes};
  scuk_tile_args_t a = {.b = n};
  strata_kernel_call_t c = {.struct_size = sizeof c,
                            .nbuffers = 3,
                            .buffers = m,
                            .sizes = sizes,
                            .args = &a,
                            .args_size = sizeof a,
                            .stream = s};
  for (int r = 0; r < 4; r++) { /* the first warms cuBLAS up */
    uint64_t t0 = now_ns();
    if (scuk_dgemm(&c) || cudaStreamSynchronize(s) != cudaSuccess)
      goto out;
    double t = (double)(now_ns() - t0) * 1e-9;
    if (r && (!best || t < best))
      best = t;
  }
out:
  for (int i = 0; i < 3; i++)
    cudaFree(m[i]);
  cudaStreamDestroy(s);
  return best;
}

/* The tiled job: C_ij -= sum_k A_ik B_jk^T, one task per (i, j, k); run
 * twice, the second timed (its tiles are on the card already). */
static int bench_gemm(strata_runtime_t *rt, int n, int tile) {
  int t = n / tile;
  size_t tb = (size_t)tile * (size_t)tile * sizeof(double);
  size_t ntiles = (size_t)3 * t * t;
  strata_buffer_t *b = calloc(ntiles, sizeof *b);
  if (!b)
    return 1;
  for (size_t i = 0; i < ntiles; i++)
    STRATA_OR_FAIL(strata_buffer_create(rt, tb, &b[i]));
  strata_buffer_t *A = b, *B = b + t * t, *C = b + 2 * t * t;
  strata_kernel_t gemm;
  STRATA_OR_FAIL(cuda_kernel(rt, "dgemm", scuk_dgemm, &gemm));
  scuk_tile_args_t a = {.b = tile};
  const strata_access_mode_t m[] = {STRATA_RW, STRATA_R, STRATA_R};
  double secs = 0;
  for (int pass = 0; pass < 2; pass++) {
    uint64_t t0 = now_ns();
    for (int i = 0; i < t; i++)
      for (int j = 0; j < t; j++)
        for (int k = 0; k < t; k++) {
          const strata_buffer_t acc[] = {C[i * t + j], A[i * t + k],
                                         B[j * t + k]};
          if (task(rt, gemm, acc, m, 3, &a, sizeof a, false))
            return 1;
        }
    STRATA_OR_FAIL(strata_runtime_wait_all(rt));
    secs = (double)(now_ns() - t0) * 1e-9;
  }
  for (size_t i = 0; i < ntiles; i++)
    STRATA_OR_FAIL(strata_buffer_unregister(rt, b[i]));
  free(b);
  double raw = raw_gemm_seconds(n);
  double flops = 2.0 * n * (double)n * n;
  printf("{\"bench\":\"gemm\",\"n\":%d,\"tile\":%d,\"tasks\":%d,"
         "\"strata_gflops\":%.1f,\"cublas_gflops\":%.1f,\"ratio\":%.3f}\n",
         n, tile, t * t * t, flops / secs * 1e-9,
         raw > 0 ? flops / raw * 1e-9 : 0, raw > 0 ? raw / secs : 0);
  return 0;
}

/* {=== empty ===} */

static int bench_empty(strata_runtime_t *rt, int ntasks) {
  const struct {
    const char *name;
    strata_kernel_fn fn;
  } kinds[] = {{"nothing", k_nothing}, {"empty_kernel", k_empty_kernel}};
  for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
    strata_kernel_t k;
    STRATA_OR_FAIL(cuda_kernel(rt, kinds[i].name, kinds[i].fn, &k));
    uint64_t t0 = now_ns();
    for (int n = 0; n < ntasks; n++)
      if (task(rt, k, NULL, NULL, 0, NULL, 0, false))
        return 1;
    STRATA_OR_FAIL(strata_runtime_wait_all(rt));
    double us = (double)(now_ns() - t0) * 1e-3 / ntasks;
    printf("{\"bench\":\"empty\",\"kernel\":\"%s\",\"tasks\":%d,"
           "\"us_per_task\":%.2f}\n",
           kinds[i].name, ntasks, us);
  }
  return 0;
}

/* {=== overlap ===} */

static int bench_overlap(strata_runtime_t *rt, size_t size, int ntasks) {
  /* The copy's time alone, then cycles for a kernel as long. */
  void *host, *dev;
  cudaStream_t s;
  CUDA_OR_FAIL(cudaMallocHost(&host, size * (size_t)ntasks));
  CUDA_OR_FAIL(cudaMalloc(&dev, size));
  CUDA_OR_FAIL(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  double gbps = raw_copy_gbps(host, dev, size, true, s);
  if (gbps <= 0) {
    fprintf(stderr, PROG ": overlap: the raw copy failed\n");
    return 1;
  }
  double copy_s = (double)size / gbps * 1e-9;
  /* Cycles for a kernel as long as the copy: from the peak clock first,
   * then scaled by what a run of them took (the clock under load is
   * another). */
  int khz = 0;
  CUDA_OR_FAIL(cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, 0));
  spin_cycles = (long long)(copy_s * khz * 1e3);
  double kernel_s = 0;
  for (int round = 0; round < 3; round++) {
    uint64_t t0 = now_ns();
    CUDA_OR_FAIL((cudaError_t)bench_spin_launch(spin_cycles, s));
    CUDA_OR_FAIL(cudaStreamSynchronize(s));
    kernel_s = (double)(now_ns() - t0) * 1e-9;
    if (kernel_s > 0 && round < 2)
      spin_cycles = (long long)((double)spin_cycles * copy_s / kernel_s);
  }
  cudaFree(dev);
  cudaStreamDestroy(s);
  strata_kernel_t spin;
  STRATA_OR_FAIL(cuda_kernel(rt, "spin", k_spin, &spin));
  strata_buffer_t *b = calloc((size_t)ntasks, sizeof *b);
  if (!b)
    return 1;
  for (int i = 0; i < ntasks; i++)
    STRATA_OR_FAIL(strata_buffer_register(rt, (char *)host + (size_t)i * size,
                                          size, &b[i]));
  const strata_access_mode_t r[] = {STRATA_R};
  uint64_t t0 = now_ns();
  for (int i = 0; i < ntasks; i++)
    if (task(rt, spin, &b[i], r, 1, NULL, 0, false))
      return 1;
  STRATA_OR_FAIL(strata_runtime_wait_all(rt));
  double wall = (double)(now_ns() - t0) * 1e-9;
  for (int i = 0; i < ntasks; i++)
    STRATA_OR_FAIL(strata_buffer_unregister(rt, b[i]));
  free(b);
  cudaFreeHost(host);
  double serial = ntasks * (copy_s + kernel_s);
  printf("{\"bench\":\"overlap\",\"bytes\":%zu,\"tasks\":%d,"
         "\"copy_ms\":%.3f,\"kernel_ms\":%.3f,\"serial_s\":%.4f,"
         "\"strata_s\":%.4f,\"ratio\":%.3f}\n",
         size, ntasks, copy_s * 1e3, kernel_s * 1e3, serial, wall,
         wall / serial);
  return 0;
}

/* {=== alloc ===} */

/* Device memory through the core's block cache (pool=core) or CUDA's
 * stream-ordered pool (pool=stream): tasks each writing a fresh buffer of
 * one of seven sizes, so that the core's exact-size cache and the pool's
 * reuse across sizes both have their chance. */
static int alloc_run(const char *pool, int ntasks, double *us_per_task) {
  char options[96];
  snprintf(options, sizeof options, "cuda-hbm:pool=%s;cuda-gddr:pool=%s", pool,
           pool);
  strata_runtime_t *rt;
  if (start(&rt, options))
    return 1;
  strata_kernel_t none;
  STRATA_OR_FAIL(cuda_kernel(rt, "nothing", k_nothing, &none));
  const strata_access_mode_t w[] = {STRATA_W};
  uint64_t t0 = now_ns();
  for (int i = 0; i < ntasks; i++) {
    strata_buffer_t b;
    STRATA_OR_FAIL(
        strata_buffer_create(rt, (size_t)(64 << 10) * (1 + i % 7), &b));
    if (task(rt, none, &b, w, 1, NULL, 0, false))
      return 1;
    STRATA_OR_FAIL(strata_buffer_unregister(rt, b));
  }
  STRATA_OR_FAIL(strata_runtime_wait_all(rt));
  *us_per_task = (double)(now_ns() - t0) * 1e-3 / ntasks;
  STRATA_OR_FAIL(strata_runtime_destroy(rt));
  return 0;
}

static int bench_alloc(int ntasks) {
  double core = 0, stream = 0;
  if (alloc_run("core", ntasks, &core) || alloc_run("stream", ntasks, &stream))
    return 1;
  printf("{\"bench\":\"alloc\",\"tasks\":%d,\"core_us_per_task\":%.2f,"
         "\"stream_us_per_task\":%.2f,\"stream_over_core\":%.3f}\n",
         ntasks, core, stream, core > 0 ? stream / core : 0);
  return 0;
}

/* {=== main ===} */

static void usage(FILE *f) {
  fprintf(f, "usage: " PROG " [copy|gemm|empty|overlap|alloc|all] [--quick]\n"
             "  --quick  smaller sizes (a check that it runs, not figures)\n");
}

int main(int argc, char **argv) {
  const char *what = "all";
  bool quick = false;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--quick"))
      quick = true;
    else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(argv[i], "copy") || !strcmp(argv[i], "gemm") ||
               !strcmp(argv[i], "empty") || !strcmp(argv[i], "overlap") ||
               !strcmp(argv[i], "alloc") || !strcmp(argv[i], "all"))
      what = argv[i];
    else {
      usage(stderr);
      return 2;
    }
  }
  setenv("CUDA_VISIBLE_DEVICES", "0", 0);
  int ncuda = 0;
  if (cudaGetDeviceCount(&ncuda) != cudaSuccess || ncuda < 1) {
    printf(PROG ": no CUDA device: skipped\n");
    return 77;
  }
  strata_runtime_t *rt;
  if (start(&rt, NULL))
    return 1;
  bool all = !strcmp(what, "all");
  int rc = 0;
  if (!rc && (all || !strcmp(what, "copy")))
    rc = bench_copy(rt, quick ? (size_t)16 << 20 : (size_t)1 << 30);
  if (!rc && (all || !strcmp(what, "empty")))
    rc = bench_empty(rt, quick ? 2000 : 50000);
  if (!rc && (all || !strcmp(what, "overlap")))
    rc = bench_overlap(rt, quick ? (size_t)4 << 20 : (size_t)64 << 20,
                       quick ? 8 : 32);
  if (!rc && (all || !strcmp(what, "gemm")) && !scuk_blas_error())
    rc = bench_gemm(rt, quick ? 4096 : 16384, quick ? 1024 : 4096);
  else if (!rc && (all || !strcmp(what, "gemm")))
    fprintf(stderr, PROG ": gemm skipped: %s\n", scuk_blas_error());
  int drc = strata_runtime_destroy(rt);
  if (!rc && !drc && (all || !strcmp(what, "alloc")))
    rc = bench_alloc(quick ? 200 : 5000);
  return rc || drc ? 1 : 0;
}
