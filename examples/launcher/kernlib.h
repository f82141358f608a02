/* SPDX-License-Identifier: MIT */
/* kernlib.h: the kernel libraries strata-run loads (libtool modules with
 * the ABI of <strata/kernel_library.h>), found by name on a search path
 * the way backends are, and their kernels: looked up by name for job
 * files, registered with a runtime per element type on first use
 * ("gemm.double"), and run on the host for buffer set-up and checks.
 * @thread the launcher's main thread (not thread-safe) */
#ifndef STRATA_RUN_KERNLIB_H
#define STRATA_RUN_KERNLIB_H

#include <stdbool.h>
#include <stddef.h>

#include <strata.h>
#include <strata/kernel_library.h>

typedef struct kernlib kernlib_t;

/** One kernel of a loaded library. */
typedef struct kernlib_kernel {
  const strata_library_kernel_t *k;
  const char *library;                       /* its library's name */
  strata_kernel_t handle[STRATA_ELEM_COUNT]; /* registered; id 0: not yet */
} kernlib_kernel_t;

/** Load each library of `names` (comma-separated: a name searched on
 *  `path`, colon-separated directories, or a path to a module) and index
 *  their kernels; a kernel name given by two libraries is refused.
 *  @return 0; STRATA_ENOENT (not found), STRATA_EABI (not a kernel library
 *          of this ABI), STRATA_EEXIST (a name twice), STRATA_ENOMEM; the
 *          reason in err
 *  @own *out: the caller's, kernlib_close */
int kernlib_open(const char *names, const char *path, kernlib_t **out,
                 char *err, size_t errlen);

/** Close every library (after the runtime that ran their kernels is
 *  destroyed). Their code stays mapped until the process exits: the
 *  libraries they pull in (the CUDA runtime) leave exit handlers there.
 *  NULL is a no-op. */
void kernlib_close(kernlib_t *kl);

/** The kernel called `name`, or NULL. @own borrowed */
kernlib_kernel_t *kernlib_find(kernlib_t *kl, const char *name);

/** Kernels loaded, and the i-th, for listings. */
size_t kernlib_count(const kernlib_t *kl);
const kernlib_kernel_t *kernlib_at(const kernlib_t *kl, size_t i);

/** The runtime's kernel for `k` on elements of type t, registered on first
 *  use under "NAME.TYPE" (or NAME, untyped).
 *  @return 0; STRATA_ENOTSUP (no code for that type); the runtime's
 *          errors of strata_kernel_register */
int kernlib_handle(strata_runtime_t *rt, kernlib_kernel_t *k, strata_elem_t t,
                   strata_kernel_t *out);

/** Run k's CPU code for type t on host memory, now, in this thread.
 *  @return the kernel's status; STRATA_ENOTSUP (no CPU code) */
int kernlib_run_host(const kernlib_kernel_t *k, strata_elem_t t,
                     void *const *buffers, const size_t *sizes,
                     const uint8_t *modes, uint32_t nbuffers,
                     const double *args);

/** "float", "double" or "none". */
const char *kernlib_elem_name(strata_elem_t t);
/** Bytes of one element (1 for none). */
size_t kernlib_elem_size(strata_elem_t t);

#endif /* STRATA_RUN_KERNLIB_H */
