/* SPDX-License-Identifier: MIT */
/* strata/kernel.h: kernels (named operations with one implementation per
 * device class) and the call frame an implementation receives. */
#ifndef STRATA_KERNEL_H
#define STRATA_KERNEL_H

#include <strata/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct strata_runtime;

/** What a kernel implementation receives. Valid only during the call. */
typedef struct strata_kernel_call {
  size_t struct_size;
  uint32_t nbuffers;
  void *const *buffers; /* one per access, in the order the accesses
                           were added; addresses on the device */
  const size_t *sizes;  /* byte size of each buffer */
  const void *args;     /* the task's by-value argument bytes */
  size_t args_size;
  void *user_data;      /* strata_kernel_desc_t.user_data */
  int32_t device;       /* runtime device index it runs on */
  uint32_t worker;      /* worker index within that device */
  void *stream;         /* backend execution stream (cudaStream_t on
                           CUDA devices); NULL on CPU devices */
  const uint8_t *modes; /* how the task uses each buffer
                           (strata_access_mode_t) */
} strata_kernel_call_t;

/** A kernel implementation. Return 0 on success; anything else marks the
 *  task failed (STRATA_EKERNEL) and is kept as its kernel_status. Runs on
 *  a worker thread; several calls of the same kernel run concurrently. */
typedef int (*strata_kernel_fn)(const strata_kernel_call_t *call);

/** Describes a kernel to register. */
typedef struct strata_kernel_desc {
  size_t struct_size;                        /* sizeof(strata_kernel_desc_t) */
  const char *name;                          /* unique per runtime; copied */
  strata_kernel_fn impl[STRATA_CLASS_COUNT]; /* by device class; NULL: the
                                                class cannot run it */
  void *user_data;                           /* passed to every call */
} strata_kernel_desc_t;

/** Register a kernel. At least one implementation must be given.
 *  @return 0; STRATA_EINVAL (no name or no implementation); STRATA_EEXIST
 *          (a kernel of that name exists)
 *  @own    the kernel belongs to rt and lives until strata_runtime_destroy
 *  @thread any */
STRATA_API int strata_kernel_register(struct strata_runtime *rt,
                                      const strata_kernel_desc_t *desc,
                                      strata_kernel_t *out) STRATA_WARN_UNUSED;

/** Look a kernel up by name.
 *  @return 0; STRATA_ENOENT
 *  @thread any */
STRATA_API int strata_kernel_find(struct strata_runtime *rt, const char *name,
                                  strata_kernel_t *out);

#ifdef __cplusplus
}
#endif

#endif /* STRATA_KERNEL_H */
