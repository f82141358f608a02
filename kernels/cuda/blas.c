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
  double *work; /* dpotrf's workspace, grown as needed */
  int lwork;
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

static int grow_work(handles_t *h, int b, double *a) {
  int need = 0;
  if (api.dpotrf_size(h->solver, CUBLAS_FILL_MODE_LOWER, b, a, b, &need) !=
      CUSOLVER_STATUS_SUCCESS)
    return STRATA_EBACKEND;
  if (need <= h->lwork)
    return STRATA_OK;
  cudaFree(h->work);
  h->lwork = 0;
  if (cudaMalloc((void **)&h->work, (size_t)need * sizeof(double)) !=
      cudaSuccess)
    return STRATA_EBACKEND;
  h->lwork = need;
  return STRATA_OK;
}

int scuk_dpotrf(const strata_kernel_call_t *call) {
  int b;
  handles_t *h;
  int rc = begin(call, 1, &b, &h);
  if (rc)
    return rc;
  double *a = call->buffers[0];
  if ((rc = grow_work(h, b, a)))
    return rc;
  if (api.dpotrf(h->solver, CUBLAS_FILL_MODE_LOWER, b, a, b, h->work, h->lwork,
                 h->info) != CUSOLVER_STATUS_SUCCESS)
    return STRATA_EBACKEND;
  /* The one kernel that waits for its stream: whether the tile was
   * positive definite decides whether the task failed, as LAPACK's info
   * does on the CPU. */
  int info = 0;
  if (cudaMemcpyAsync(&info, h->info, sizeof info, cudaMemcpyDeviceToHost,
                      call->stream) != cudaSuccess ||
      cudaStreamSynchronize(call->stream) != cudaSuccess)
    return STRATA_EBACKEND;
  return info;
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
