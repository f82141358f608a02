/* SPDX-License-Identifier: MIT */
/* cholesky.c: the launcher's demo job: a tiled Cholesky factorisation over
 * OpenBLAS/LAPACKE tile kernels, and the residual check of its result. */
#include "config.h"

#include "cholesky.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tiles start on cache-line boundaries, which BLAS kernels like. */
#define TILE_ALIGN 64

typedef enum { K_POTRF, K_TRSM, K_SYRK, K_GEMM, K_COUNT } kind_t;

/* The by-value arguments of every task: it writes tile (m, n) at step k of
 * the factorisation, and tiles are b x b. */
typedef struct tile_args {
  int32_t m, n, k, b;
} tile_args_t;

struct chol {
  strata_runtime_t *rt;
  int tiles, b, n;
  size_t ntiles;         /* tiles of the lower triangle */
  size_t tile_bytes;     /* b * b doubles: what each buffer covers */
  size_t stride;         /* distance between tiles: tile_bytes, aligned */
  unsigned char *store;  /* the lower tiles, tile-major, each column-major */
  double *ref;           /* the original matrix, n x n column-major */
  strata_buffer_t *bufs; /* one per lower tile, by tile_index() */
  size_t nregistered;    /* bufs[0..nregistered-1] are registered */
  bool checked;
  strata_kernel_t kernels[K_COUNT];
};

/* {=== Tile kernels ===}
 *
 * Each kernel checks that the task was described as expected (argument
 * size, buffer count and sizes) before handing pointers to BLAS: a
 * mismatch would otherwise read out of bounds. */

static int unpack(const strata_kernel_call_t *call, uint32_t nbuffers,
                  const tile_args_t **out) {
  if (call->args_size != sizeof(tile_args_t) || call->nbuffers != nbuffers)
    return STRATA_EINVAL;
  const tile_args_t *a = call->args;
  size_t bytes = (size_t)a->b * (size_t)a->b * sizeof(double);
  for (uint32_t i = 0; i < nbuffers; i++)
    if (call->sizes[i] != bytes)
      return STRATA_EINVAL;
  *out = a;
  return STRATA_OK;
}

/* A_kk = L_kk L_kk^T; a positive LAPACK info (not positive definite) fails
 * the task, and with it every task that consumes the tile. */
static int potrf_cpu(const strata_kernel_call_t *call) {
  const tile_args_t *a;
  if (unpack(call, 1, &a))
    return STRATA_EINVAL;
  return LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'L', a->b, call->buffers[0],
                             a->b);
}

/* A_mk = A_mk L_kk^-T */
static int trsm_cpu(const strata_kernel_call_t *call) {
  const tile_args_t *a;
  if (unpack(call, 2, &a))
    return STRATA_EINVAL;
  cblas_dtrsm(CblasColMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit,
              a->b, a->b, 1.0, call->buffers[1], a->b, call->buffers[0], a->b);
  return STRATA_OK;
}

/* A_mm = A_mm - A_mk A_mk^T (lower triangle) */
static int syrk_cpu(const strata_kernel_call_t *call) {
  const tile_args_t *a;
  if (unpack(call, 2, &a))
    return STRATA_EINVAL;
  cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, a->b, a->b, -1.0,
              call->buffers[1], a->b, 1.0, call->buffers[0], a->b);
  return STRATA_OK;
}

/* A_mn = A_mn - A_mk A_nk^T */
static int gemm_cpu(const strata_kernel_call_t *call) {
  const tile_args_t *a;
  if (unpack(call, 3, &a))
    return STRATA_EINVAL;
  cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, a->b, a->b, a->b, -1.0,
              call->buffers[1], a->b, call->buffers[2], a->b, 1.0,
              call->buffers[0], a->b);
  return STRATA_OK;
}

/* The tiles' CUDA code: cuBLAS and cuSOLVER where the CUDA backends are
 * built. Without them no real GPU exists to call it, and the CPU code
 * stands as the CUDA entry so that simulated GPUs (which are candidates
 * where a kernel has CUDA code, and run its CPU code) take tiles too. */
#ifdef STRATA_CHOL_CUDA
#include "scuk.h"
_Static_assert(sizeof(tile_args_t) == sizeof(scuk_tile_args_t) &&
                   offsetof(tile_args_t, b) == offsetof(scuk_tile_args_t, b),
               "the CUDA tile kernels read the launcher's arguments");
#define CUDA_OR(cuda, cpu) cuda
#else
#define CUDA_OR(cuda, cpu) cpu
#endif

/* What each kind of task is: its kernels, and its cost in units of b^3
 * flops (for the "flops" attribute the placement policy reads). */
static const struct {
  const char *name;
  strata_kernel_fn cpu, cuda;
  double flops_b3;
} kinds[K_COUNT] = {
    [K_POTRF] = {"dpotrf", potrf_cpu, CUDA_OR(scuk_dpotrf, potrf_cpu),
                 1.0 / 3.0},
    [K_TRSM] = {"dtrsm", trsm_cpu, CUDA_OR(scuk_dtrsm, trsm_cpu), 1.0},
    [K_SYRK] = {"dsyrk", syrk_cpu, CUDA_OR(scuk_dsyrk, syrk_cpu), 1.0},
    [K_GEMM] = {"dgemm", gemm_cpu, CUDA_OR(scuk_dgemm, gemm_cpu), 2.0},
};

/* Register the kernels, or find them when this runtime already has them
 * (a second job on the same runtime). */
static int get_kernels(chol_t *c) {
  for (int i = 0; i < K_COUNT; i++) {
    const strata_kernel_impl_t impls[] = {{STRATA_IMPL_CPU, kinds[i].cpu},
                                          {STRATA_IMPL_CUDA, kinds[i].cuda}};
    strata_kernel_desc_t d = {.struct_size = sizeof d,
                              .name = kinds[i].name,
                              .impls = impls,
                              .nimpls = 2};
    int rc = strata_kernel_register(c->rt, &d, &c->kernels[i]);
    if (rc == STRATA_EEXIST)
      rc = strata_kernel_find(c->rt, kinds[i].name, &c->kernels[i]);
    if (rc)
      return rc;
  }
  return STRATA_OK;
}

/* {=== The matrix ===} */

uint64_t chol_task_count(int tiles) {
  uint64_t t = tiles > 0 ? (uint64_t)tiles : 0;
  /* Unsigned wrap-around of t - 1 and t - 2 is multiplied by zero when t
   * is 0 or 1. */
  return t + t * (t - 1) + t * (t - 1) * (t - 2) / 6;
}

double chol_flops(int n) { return (double)n * n * n / 3.0; }

int chol_order(const chol_t *c) { return c->n; }

int chol_tiles(const chol_t *c) { return c->tiles; }

/* Tiles of the lower triangle, row by row: (0,0) (1,0) (1,1) (2,0)... */
static size_t tile_index(int m, int n) {
  return (size_t)m * (size_t)(m + 1) / 2 + (size_t)n;
}

static double *tile(const chol_t *c, int m, int n) {
  return (double *)(c->store + tile_index(m, n) * c->stride);
}

/* A fixed-seed xorshift64* generator, so every run factors the same
 * matrix. */
static double next_uniform(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return (double)((*s * 0x2545F4914F6CDD1DULL) >> 11) * 0x1.0p-53;
}

/* Symmetric, entries in [-0.5, 0.5) plus n on the diagonal: strictly
 * diagonally dominant with a positive diagonal, hence positive definite
 * and well conditioned. */
static void fill_reference(chol_t *c) {
  size_t n = (size_t)c->n;
  uint64_t seed = 0x9E3779B97F4A7C15ULL;
  for (size_t j = 0; j < n; j++) {
    for (size_t i = j; i < n; i++) {
      double v = next_uniform(&seed) - 0.5;
      c->ref[i + j * n] = c->ref[j + i * n] = v;
    }
    c->ref[j + j * n] += (double)n;
  }
}

/* Copy the lower tiles of the reference into the tile store. */
static void scatter(chol_t *c) {
  size_t n = (size_t)c->n, b = (size_t)c->b;
  for (int tm = 0; tm < c->tiles; tm++)
    for (int tn = 0; tn <= tm; tn++) {
      double *t = tile(c, tm, tn);
      const double *src = c->ref + (size_t)tm * b + (size_t)tn * b * n;
      for (size_t j = 0; j < b; j++)
        memcpy(t + j * b, src + j * n, b * sizeof *t);
    }
}

static int alloc_matrix(chol_t *c) {
  size_t n = (size_t)c->n;
  c->tile_bytes = (size_t)c->b * (size_t)c->b * sizeof(double);
  c->stride = (c->tile_bytes + TILE_ALIGN - 1) / TILE_ALIGN * TILE_ALIGN;
  c->ntiles = tile_index(c->tiles, 0);
  c->store = aligned_alloc(TILE_ALIGN, c->ntiles * c->stride);
  c->ref = malloc(n * n * sizeof *c->ref);
  c->bufs = calloc(c->ntiles, sizeof *c->bufs);
  return c->store && c->ref && c->bufs ? STRATA_OK : STRATA_ENOMEM;
}

static int register_tiles(chol_t *c) {
  for (int tm = 0; tm < c->tiles; tm++)
    for (int tn = 0; tn <= tm; tn++) {
      int rc = strata_buffer_register(c->rt, tile(c, tm, tn), c->tile_bytes,
                                      &c->bufs[tile_index(tm, tn)]);
      if (rc)
        return rc;
      c->nregistered++; /* tiles register in index order */
    }
  return STRATA_OK;
}

int chol_create(strata_runtime_t *rt, int tiles, int tile_size, chol_t **out) {
  if (!rt || !out || tiles < 1 || tiles > CHOL_MAX_TILES || tile_size < 1 ||
      tile_size > CHOL_MAX_TILE_SIZE || tiles * tile_size > CHOL_MAX_ORDER)
    return STRATA_EINVAL;
  chol_t *c = calloc(1, sizeof *c);
  if (!c)
    return STRATA_ENOMEM;
  *c = (chol_t){
      .rt = rt, .tiles = tiles, .b = tile_size, .n = tiles * tile_size};
  int rc = alloc_matrix(c);
  if (!rc) {
    fill_reference(c);
    scatter(c);
    rc = get_kernels(c);
  }
  if (!rc)
    rc = register_tiles(c);
  if (rc) {
    chol_destroy(c);
    return rc;
  }
  *out = c;
  return STRATA_OK;
}

/* {=== The task graph ===} */

/* A task's priority is its bottom level: the number of tasks on the
 * longest dependency path from it to the end of the factorisation, itself
 * included. For a task that writes tile (m, n) at step k this is
 * 3T - 2 - m - n - k (1 for potrf(T-1), the last task), which matches a
 * longest-path search over the graph. Running the longest remaining paths
 * first keeps the critical path, potrf -> trsm -> syrk -> potrf..., moving
 * while the trailing updates fill the other workers. */
static int priority(const chol_t *c, const tile_args_t *a) {
  return 3 * c->tiles - 2 - a->m - a->n - a->k;
}

static void task_name(kind_t kind, const tile_args_t *a, char *buf,
                      size_t size) {
  switch (kind) {
  case K_POTRF:
    snprintf(buf, size, "potrf(%d)", (int)a->k);
    break;
  case K_TRSM:
  case K_SYRK:
    snprintf(buf, size, "%s(%d,%d)", kind == K_TRSM ? "trsm" : "syrk",
             (int)a->m, (int)a->k);
    break;
  default:
    snprintf(buf, size, "gemm(%d,%d,%d)", (int)a->m, (int)a->n, (int)a->k);
  }
}

/* The tile written (read-write) first, then the tiles read, in the order
 * the kernels expect. */
static int add_accesses(const chol_t *c, strata_task_t t, kind_t kind,
                        const tile_args_t *a) {
  strata_buffer_t in[2];
  int nin = 0;
  if (kind == K_TRSM)
    in[nin++] = c->bufs[tile_index(a->k, a->k)];
  if (kind == K_SYRK || kind == K_GEMM)
    in[nin++] = c->bufs[tile_index(a->m, a->k)];
  if (kind == K_GEMM)
    in[nin++] = c->bufs[tile_index(a->n, a->k)];
  int rc =
      strata_task_access(c->rt, t, c->bufs[tile_index(a->m, a->n)], STRATA_RW);
  for (int i = 0; i < nin && !rc; i++)
    rc = strata_task_access(c->rt, t, in[i], STRATA_R);
  return rc;
}

static int describe(const chol_t *c, strata_task_t t, strata_job_t job,
                    kind_t kind, const tile_args_t *a, const char *name) {
  char flops[32];
  double b = a->b;
  snprintf(flops, sizeof flops, "%.0f", kinds[kind].flops_b3 * b * b * b);
  int rc = add_accesses(c, t, kind, a);
  if (!rc)
    rc = strata_task_set_args(c->rt, t, a, sizeof *a);
  if (!rc)
    rc = strata_task_set_attr(c->rt, t, "name", name);
  if (!rc)
    rc = strata_task_set_attr(c->rt, t, "flops", flops);
  if (!rc) /* double precision throughout: the policy and models read it */
    rc = strata_task_set_attr(c->rt, t, "precision", "fp64");
  if (!rc)
    rc = strata_task_set_priority(c->rt, t, priority(c, a));
  if (!rc)
    rc = strata_task_set_job(c->rt, t, job);
  return rc;
}

/* Create, describe and submit one task, then drop the handle: the job
 * tracks the task from here on. */
static int submit(chol_t *c, strata_job_t job, kind_t kind, int m, int n, int k,
                  char *name, size_t name_size) {
  tile_args_t a = {.m = m, .n = n, .k = k, .b = c->b};
  task_name(kind, &a, name, name_size);
  strata_task_t t;
  int rc = strata_task_create(c->rt, c->kernels[kind], &t);
  if (rc)
    return rc;
  rc = describe(c, t, job, kind, &a, name);
  if (!rc)
    rc = strata_task_submit(c->rt, t);
  int rrc = strata_task_release(c->rt, t);
  return rc ? rc : rrc;
}

/* One step of the right-looking algorithm: factor the diagonal tile, solve
 * the panel below it, update the trailing matrix. */
static int submit_step(chol_t *c, strata_job_t job, int k, uint64_t *count,
                       char *name, size_t size) {
  int rc = submit(c, job, K_POTRF, k, k, k, name, size);
  *count += !rc;
  for (int m = k + 1; m < c->tiles && !rc; m++) {
    rc = submit(c, job, K_TRSM, m, k, k, name, size);
    *count += !rc;
  }
  for (int m = k + 1; m < c->tiles && !rc; m++) {
    rc = submit(c, job, K_SYRK, m, m, k, name, size);
    *count += !rc;
    for (int n = k + 1; n < m && !rc; n++) {
      rc = submit(c, job, K_GEMM, m, n, k, name, size);
      *count += !rc;
    }
  }
  return rc;
}

int chol_submit(chol_t *c, strata_job_t job, uint64_t *submitted, char *failed,
                size_t failed_size) {
  char name[64];
  uint64_t count = 0;
  int rc = STRATA_OK;
  for (int k = 0; k < c->tiles && !rc; k++)
    rc = submit_step(c, job, k, &count, name, sizeof name);
  if (rc && failed && failed_size)
    snprintf(failed, failed_size, "%s", name);
  if (submitted)
    *submitted = count;
  return rc;
}

/* {=== Result check ===} */

int chol_finish(chol_t *c) {
  int first = STRATA_OK;
  while (c->nregistered > 0) {
    int rc = strata_buffer_unregister(c->rt, c->bufs[--c->nregistered]);
    if (rc && !first)
      first = rc;
  }
  return first;
}

/* The factor as a full n x n column-major matrix. potrf leaves the strict
 * upper triangle of diagonal tiles as it found it: that part is zeroed. */
static double *gather_factor(const chol_t *c) {
  size_t n = (size_t)c->n, b = (size_t)c->b;
  double *l = calloc(n * n, sizeof *l);
  if (!l)
    return NULL;
  for (int tm = 0; tm < c->tiles; tm++)
    for (int tn = 0; tn <= tm; tn++) {
      const double *t = tile(c, tm, tn);
      double *dst = l + (size_t)tm * b + (size_t)tn * b * n;
      for (size_t j = 0; j < b; j++) {
        size_t from = tm == tn ? j : 0; /* lower part of a diagonal tile */
        memcpy(dst + j * n + from, t + j * b + from, (b - from) * sizeof *t);
      }
    }
  return l;
}

/* ||S||_F of a symmetric matrix from its lower triangle. Written out rather
 * than taken from LAPACKE_dlansy, whose NaN check answers a negative
 * number that would pass for a small residual. */
static double sym_frobenius(const double *s, size_t n) {
  double diag = 0.0, off = 0.0;
  for (size_t j = 0; j < n; j++) {
    diag += s[j + j * n] * s[j + j * n];
    for (size_t i = j + 1; i < n; i++)
      off += s[i + j * n] * s[i + j * n];
  }
  return sqrt(diag + 2.0 * off);
}

int chol_check(chol_t *c, double *residual) {
  if (c->nregistered || c->checked)
    return STRATA_ESTATE;
  double *l = gather_factor(c);
  if (!l)
    return STRATA_ENOMEM;
  c->checked = true;
  size_t n = (size_t)c->n;
  double norm_a = sym_frobenius(c->ref, n);
  /* ref := ref - L L^T, lower triangle only: both sides are symmetric. */
  cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, c->n, c->n, -1.0, l,
              c->n, 1.0, c->ref, c->n);
  double norm_r = sym_frobenius(c->ref, n);
  free(l);
  *residual = norm_r / norm_a;
  return STRATA_OK;
}

void chol_destroy(chol_t *c) {
  if (!c)
    return;
  /* Memory of a registered buffer must not be freed under pending tasks;
   * unregistering waits for them. The runtime logs any failure. */
  (void)chol_finish(c);
  free(c->bufs);
  free(c->ref);
  free(c->store);
  free(c);
}
