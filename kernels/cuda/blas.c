/* SPDX-License-Identifier: MIT */
/* kernels/cuda/blas.c: the tile kernels through cuBLAS and cuSOLVER,
 * loaded at the first call (see scuk.h), with one cuBLAS and one cuSOLVER
 * handle per worker thread, bound to the worker's stream at each call. */
#include "scuk.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cusolverDn.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata/common.h>

/* {=== The libraries, loaded once ===} */

typedef struct blas_api {
  cublasStatus_t (*create)(cublasHandle_t *);
  cublasStatus_t (*destroy)(cublasHandle_t);
  cublasStatus_t (*set_stream)(cublasHandle_t, cudaStream_t);
  cublasStatus_t (*dgemm)(cublasHandle_t, cublasOperation_t, cublasOperation_t,
                          int, int, int, const double *, const double *, int,
                          const double *, int, const double *, double *, int);
  cublasStatus_t (*dsyrk)(cublasHandle_t, cublasFillMode_t, cublasOperation_t,
                          int, int, const double *, const double *, int,
                          const double *, double *, int);
  cublasStatus_t (*dtrsm)(cublasHandle_t, cublasSideMode_t, cublasFillMode_t,
                          cublasOperation_t, cublasDiagType_t, int, int,
                          const double *, const double *, int, double *, int);
  cusolverStatus_t (*solver_create)(cusolverDnHandle_t *);
  cusolverStatus_t (*solver_destroy)(cusolverDnHandle_t);
  cusolverStatus_t (*solver_set_stream)(cusolverDnHandle_t, cudaStream_t);
  cusolverStatus_t (*dpotrf_size)(cusolverDnHandle_t, cublasFillMode_t, int,
                                  double *, int, int *);
  cusolverStatus_t (*dpotrf)(cusolverDnHandle_t, cublasFillMode_t, int,
                             double *, int, double *, int, int *);
  /* The float versions, for the general calls below. */
  cublasStatus_t (*sgemm)(cublasHandle_t, cublasOperation_t, cublasOperation_t,
                          int, int, int, const float *, const float *, int,
                          const float *, int, const float *, float *, int);
  cublasStatus_t (*ssyrk)(cublasHandle_t, cublasFillMode_t, cublasOperation_t,
                          int, int, const float *, const float *, int,
                          const float *, float *, int);
  cublasStatus_t (*strsm)(cublasHandle_t, cublasSideMode_t, cublasFillMode_t,
                          cublasOperation_t, cublasDiagType_t, int, int,
                          const float *, const float *, int, float *, int);
  cusolverStatus_t (*spotrf_size)(cusolverDnHandle_t, cublasFillMode_t, int,
                                  float *, int, int *);
  cusolverStatus_t (*spotrf)(cusolverDnHandle_t, cublasFillMode_t, int, float *,
                             int, float *, int, int *);
} blas_api_t;

static blas_api_t api;
static bool api_ok;
static char api_error[256];
static pthread_once_t api_once = PTHREAD_ONCE_INIT;
static pthread_key_t handles_key;

#ifndef SCUK_CUDA_LIBDIR
#define SCUK_CUDA_LIBDIR "/usr/local/cuda/lib64"
#endif

/* By soname (the dynamic linker's search), else from the toolkit this was
 * built with (not in the linker's cache on every machine). */
static void *open_lib(const char *soname) {
  void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", SCUK_CUDA_LIBDIR, soname);
    h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  }
  if (!h && !api_error[0])
    snprintf(api_error, sizeof api_error, "%s not loaded: %s", soname,
             dlerror());
  return h;
}

static bool resolve(void *lib, const char *name, void *field) {
  void *sym = lib ? dlsym(lib, name) : NULL;
  memcpy(field, &sym, sizeof sym); /* data to function pointer */
  if (!sym && lib && !api_error[0])
    snprintf(api_error, sizeof api_error, "%s: no symbol %s", "cuBLAS/cuSOLVER",
             name);
  return sym != NULL;
}

static void free_handles(void *p);

static void load_api(void) {
  /* Never closed: kernels may run until the process exits. */
  void *blas = open_lib("libcublas.so.13");
  void *solver = open_lib("libcusolver.so.12");
  api_ok = blas && solver;
  if (api_ok && pthread_key_create(&handles_key, free_handles) != 0) {
    snprintf(api_error, sizeof api_error, "no thread-local key for handles");
    api_ok = false;
  }
  api_ok &= resolve(blas, "cublasCreate_v2", &api.create);
  api_ok &= resolve(blas, "cublasDestroy_v2", &api.destroy);
  api_ok &= resolve(blas, "cublasSetStream_v2", &api.set_stream);
  api_ok &= resolve(blas, "cublasDgemm_v2", &api.dgemm);
  api_ok &= resolve(blas, "cublasDsyrk_v2", &api.dsyrk);
  api_ok &= resolve(blas, "cublasDtrsm_v2", &api.dtrsm);
  api_ok &= resolve(solver, "cusolverDnCreate", &api.solver_create);
  api_ok &= resolve(solver, "cusolverDnDestroy", &api.solver_destroy);
  api_ok &= resolve(solver, "cusolverDnSetStream", &api.solver_set_stream);
  api_ok &= resolve(solver, "cusolverDnDpotrf_bufferSize", &api.dpotrf_size);
  api_ok &= resolve(solver, "cusolverDnDpotrf", &api.dpotrf);
  api_ok &= resolve(blas, "cublasSgemm_v2", &api.sgemm);
  api_ok &= resolve(blas, "cublasSsyrk_v2", &api.ssyrk);
  api_ok &= resolve(blas, "cublasStrsm_v2", &api.strsm);
  api_ok &= resolve(solver, "cusolverDnSpotrf_bufferSize", &api.spotrf_size);
  api_ok &= resolve(solver, "cusolverDnSpotrf", &api.spotrf);
}

const char *scuk_blas_error(void) {
  pthread_once(&api_once, load_api);
  return api_ok ? NULL : api_error;
}

/* {=== Per-thread handles ===} */

typedef struct handles {
  int device; /* the CUDA device they were made on */
  cublasHandle_t blas;
  cusolverDnHandle_t solver;
  void *work; /* potrf's workspace, grown as needed */
  size_t work_bytes;
  int *info; /* dpotrf's answer, on the device */
} handles_t;

static void free_handles(void *p) {
  handles_t *h = p;
  if (!h)
    return;
  int was;
  if (cudaGetDevice(&was) == cudaSuccess && was != h->device)
    (void)cudaSetDevice(h->device);
  if (h->blas)
    api.destroy(h->blas);
  if (h->solver)
    api.solver_destroy(h->solver);
  cudaFree(h->work);
  cudaFree(h->info);
  (void)cudaGetLastError();
  free(h);
}

/* This thread's handles on its current device, on `stream`. NULL: the
 * libraries are missing or a handle could not be made. */
static handles_t *handles_on(cudaStream_t stream) {
  if (scuk_blas_error())
    return NULL;
  int dev;
  if (cudaGetDevice(&dev) != cudaSuccess)
    return NULL;
  handles_t *h = pthread_getspecific(handles_key);
  if (h && h->device != dev) {
    free_handles(h);
    (void)pthread_setspecific(handles_key, NULL);
    (void)cudaSetDevice(dev);
    h = NULL;
  }
  if (!h) {
    h = calloc(1, sizeof *h);
    if (!h)
      return NULL;
    h->device = dev;
    if (api.create(&h->blas) != CUBLAS_STATUS_SUCCESS ||
        api.solver_create(&h->solver) != CUSOLVER_STATUS_SUCCESS ||
        cudaMalloc((void **)&h->info, sizeof(int)) != cudaSuccess ||
        pthread_setspecific(handles_key, h) != 0) {
      free_handles(h);
      return NULL;
    }
  }
  if (api.set_stream(h->blas, stream) != CUBLAS_STATUS_SUCCESS ||
      api.solver_set_stream(h->solver, stream) != CUSOLVER_STATUS_SUCCESS)
    return NULL;
  return h;
}

/* {=== The kernels ===} */

/* A call on `nbuf` b x b tiles. @return b, or 0 when malformed */
static int tile_order(const strata_kernel_call_t *call, uint32_t nbuf) {
  if (call->args_size != sizeof(scuk_tile_args_t) || !call->args ||
      call->nbuffers != nbuf)
    return 0;
  int b = ((const scuk_tile_args_t *)call->args)->b;
  if (b <= 0)
    return 0;
  for (uint32_t i = 0; i < nbuf; i++)
    if (call->sizes[i] != (size_t)b * (size_t)b * sizeof(double))
      return 0;
  return b;
}

static int blas_status(cublasStatus_t s) {
  return s == CUBLAS_STATUS_SUCCESS ? STRATA_OK : STRATA_EBACKEND;
}

/* The start of every tile kernel: the call's tile order and this
 * thread's handles on its stream. @return 0; STRATA_EINVAL (a malformed
 * call); STRATA_EBACKEND (no handles) */
static int begin(const strata_kernel_call_t *call, uint32_t nbuf, int *b,
                 handles_t **h) {
  if (!(*b = tile_order(call, nbuf)))
    return STRATA_EINVAL;
  *h = handles_on(call->stream);
  return *h ? STRATA_OK : STRATA_EBACKEND;
}

/* At least `elems` elements of `elem` bytes of workspace. */
static int grow_work(handles_t *h, int elems, size_t elem) {
  size_t need = (size_t)(elems > 0 ? elems : 0) * elem;
  if (need <= h->work_bytes)
    return STRATA_OK;
  cudaFree(h->work);
  h->work_bytes = 0;
  if (cudaMalloc(&h->work, need) != cudaSuccess)
    return STRATA_EBACKEND;
  h->work_bytes = need;
  return STRATA_OK;
}

/* Whether the factorisation just queued found the matrix positive
 * definite: LAPACK's info, read back after waiting for the stream (the
 * one kind of kernel that waits: its answer decides whether the task
 * failed, as on the CPU). @return info (0 or > 0); STRATA_EBACKEND */
static int potrf_info(handles_t *h, cudaStream_t stream) {
  int info = 0;
  if (cudaMemcpyAsync(&info, h->info, sizeof info, cudaMemcpyDeviceToHost,
                      stream) != cudaSuccess ||
      cudaStreamSynchronize(stream) != cudaSuccess)
    return STRATA_EBACKEND;
  return info;
}

int scuk_potrf_lower(scuk_type_t t, void *stream, int n, void *a, int lda) {
  handles_t *h = handles_on(stream);
  if (!h)
    return STRATA_EBACKEND;
  int need = 0;
  const cublasFillMode_t lo = CUBLAS_FILL_MODE_LOWER;
  cusolverStatus_t s = t == SCUK_DOUBLE
                           ? api.dpotrf_size(h->solver, lo, n, a, lda, &need)
                           : api.spotrf_size(h->solver, lo, n, a, lda, &need);
  size_t elem = t == SCUK_DOUBLE ? sizeof(double) : sizeof(float);
  if (s != CUSOLVER_STATUS_SUCCESS || grow_work(h, need, elem))
    return STRATA_EBACKEND;
  int lwork = (int)(h->work_bytes / elem);
  s = t == SCUK_DOUBLE
          ? api.dpotrf(h->solver, lo, n, a, lda, h->work, lwork, h->info)
          : api.spotrf(h->solver, lo, n, a, lda, h->work, lwork, h->info);
  return s == CUSOLVER_STATUS_SUCCESS ? potrf_info(h, stream) : STRATA_EBACKEND;
}

int scuk_dpotrf(const strata_kernel_call_t *call) {
  int b = tile_order(call, 1);
  return b ? scuk_potrf_lower(SCUK_DOUBLE, call->stream, b, call->buffers[0], b)
           : STRATA_EINVAL;
}

int scuk_dtrsm(const strata_kernel_call_t *call) {
  int b;
  handles_t *h;
  int rc = begin(call, 2, &b, &h);
  if (rc)
    return rc;
  const double one = 1.0;
  return blas_status(api.dtrsm(h->blas, CUBLAS_SIDE_RIGHT,
                               CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_T,
                               CUBLAS_DIAG_NON_UNIT, b, b, &one,
                               call->buffers[1], b, call->buffers[0], b));
}

int scuk_dsyrk(const strata_kernel_call_t *call) {
  int b;
  handles_t *h;
  int rc = begin(call, 2, &b, &h);
  if (rc)
    return rc;
  const double minus_one = -1.0, one = 1.0;
  return blas_status(api.dsyrk(h->blas, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, b,
                               b, &minus_one, call->buffers[1], b, &one,
                               call->buffers[0], b));
}

int scuk_dgemm(const strata_kernel_call_t *call) {
  int b;
  handles_t *h;
  int rc = begin(call, 3, &b, &h);
  if (rc)
    return rc;
  const double minus_one = -1.0, one = 1.0;
  return blas_status(api.dgemm(h->blas, CUBLAS_OP_N, CUBLAS_OP_T, b, b, b,
                               &minus_one, call->buffers[1], b,
                               call->buffers[2], b, &one, call->buffers[0], b));
}

/* {=== General calls (the kernel library's) ===} */

static cublasOperation_t op_of(int trans) {
  return trans ? CUBLAS_OP_T : CUBLAS_OP_N;
}

int scuk_gemm(scuk_type_t t, void *stream, int transa, int transb, int m, int n,
              int k, double alpha, const void *a, int lda, const void *b,
              int ldb, double beta, void *c, int ldc) {
  handles_t *h = handles_on(stream);
  if (!h)
    return STRATA_EBACKEND;
  if (t == SCUK_DOUBLE)
    return blas_status(api.dgemm(h->blas, op_of(transa), op_of(transb), m, n, k,
                                 &alpha, a, lda, b, ldb, &beta, c, ldc));
  const float fa = (float)alpha, fb = (float)beta;
  return blas_status(api.sgemm(h->blas, op_of(transa), op_of(transb), m, n, k,
                               &fa, a, lda, b, ldb, &fb, c, ldc));
}

int scuk_syrk(scuk_type_t t, void *stream, int n, int k, double alpha,
              const void *a, int lda, double beta, void *c, int ldc) {
  handles_t *h = handles_on(stream);
  if (!h)
    return STRATA_EBACKEND;
  const cublasFillMode_t lo = CUBLAS_FILL_MODE_LOWER;
  if (t == SCUK_DOUBLE)
    return blas_status(api.dsyrk(h->blas, lo, CUBLAS_OP_N, n, k, &alpha, a, lda,
                                 &beta, c, ldc));
  const float fa = (float)alpha, fb = (float)beta;
  return blas_status(
      api.ssyrk(h->blas, lo, CUBLAS_OP_N, n, k, &fa, a, lda, &fb, c, ldc));
}

int scuk_trsm_rlt(scuk_type_t t, void *stream, int m, int n, double alpha,
                  const void *a, int lda, void *b, int ldb) {
  handles_t *h = handles_on(stream);
  if (!h)
    return STRATA_EBACKEND;
  const cublasSideMode_t r = CUBLAS_SIDE_RIGHT;
  const cublasFillMode_t lo = CUBLAS_FILL_MODE_LOWER;
  const cublasDiagType_t nu = CUBLAS_DIAG_NON_UNIT;
  if (t == SCUK_DOUBLE)
    return blas_status(api.dtrsm(h->blas, r, lo, CUBLAS_OP_T, nu, m, n, &alpha,
                                 a, lda, b, ldb));
  const float fa = (float)alpha;
  return blas_status(
      api.strsm(h->blas, r, lo, CUBLAS_OP_T, nu, m, n, &fa, a, lda, b, ldb));
}
