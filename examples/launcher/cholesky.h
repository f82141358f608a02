/* SPDX-License-Identifier: MIT */
/* cholesky.h: the launcher's demo job, a tiled Cholesky factorisation. */
#ifndef STRATA_RUN_CHOLESKY_H
#define STRATA_RUN_CHOLESKY_H

#include <stddef.h>
#include <stdint.h>

#include <strata.h>

/* Bounds on the problem the launcher accepts. The matrix order bound keeps
 * the three copies the demo holds (tiles, reference, factor for the check)
 * within a few GiB. */
#define CHOL_MAX_TILES 128
#define CHOL_MAX_TILE_SIZE 4096
#define CHOL_MAX_ORDER 16384

typedef struct chol chol_t;

/** Tasks the factorisation of a tiles x tiles matrix submits:
 *  T potrf + T(T-1)/2 trsm + T(T-1)/2 syrk + T(T-1)(T-2)/6 gemm. */
uint64_t chol_task_count(int tiles);

/** Floating-point operations of a Cholesky factorisation of order n: n^3/3
 *  (the figure GFLOP/s rates are quoted against). */
double chol_flops(int n);

/** Build a symmetric positive definite matrix of order tiles * tile_size,
 *  keep a reference copy for the check, register the tile kernels (or
 *  find them, when an earlier call registered them) and one buffer per
 *  tile of the lower triangle.
 *  @return 0; STRATA_EINVAL (sizes outside the bounds above), STRATA_ENOMEM,
 *          or what the runtime returned
 *  @own    *out: caller, free with chol_destroy */
int chol_create(strata_runtime_t *rt, int tiles, int tile_size, chol_t **out);

/** Submit every task of the factorisation to `job`, in the order of the
 *  sequential algorithm; the runtime derives the dependencies. On failure
 *  the tasks already submitted stay submitted (cancel the job), and the
 *  name of the task that could not be submitted is written to `failed`.
 *  @return 0, or the runtime's status */
int chol_submit(chol_t *c, strata_job_t job, uint64_t *submitted, char *failed,
                size_t failed_size);

/** Unregister the tiles; this waits for their tasks, so the factor is in
 *  host memory afterwards.
 *  @return 0, or the first failure of strata_buffer_unregister */
int chol_finish(chol_t *c);

/** After chol_finish: the relative residual ||A - L L^T||_F / ||A||_F,
 *  computed on the full matrix. Uses up the reference copy: call once.
 *  @return 0; STRATA_ESTATE (tiles still registered, or called twice);
 *          STRATA_ENOMEM */
int chol_check(chol_t *c, double *residual);

/** Unregister what is still registered (waiting for its tasks) and free
 *  everything. Kernels belong to the runtime and stay. NULL is a no-op. */
void chol_destroy(chol_t *c);

/** The matrix order (tiles * tile_size). */
int chol_order(const chol_t *c);
/** Tiles per side. */
int chol_tiles(const chol_t *c);

#endif /* STRATA_RUN_CHOLESKY_H */
