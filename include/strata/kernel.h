/* SPDX-License-Identifier: MIT */
/* strata/kernel.h: kernels (named operations with implementations keyed by
 * what runs them: CPU code, CUDA code...) and the call frame an
 * implementation receives. */
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
 *  a thread of the device's backend; several calls of the same kernel run
 *  concurrently. */
typedef int (*strata_kernel_fn)(const strata_kernel_call_t *call);

/** What runs an implementation. A device asks for one kind to be a
 *  candidate for a kernel and calls one kind (the same for real devices;
 *  a simulated GPU is a candidate where the kernel has CUDA code, and runs
 *  its CPU code as the stand-in: see strata_backend_device_t). Values are
 *  fixed and never reused; new kinds are appended. */
typedef enum strata_impl_kind {
  STRATA_IMPL_CPU = 0,  /* host code: buffers are host addresses */
  STRATA_IMPL_CUDA = 1, /* CUDA code: buffers are device addresses and
                           `stream` is the cudaStream_t to launch on */
  STRATA_IMPL_COUNT     /* the kinds this header knows; grows */
} strata_impl_kind_t;

/** One implementation of a kernel. The layout is fixed for good (it carries
 *  no size): a new kind is a new value of `kind`, never a new field. */
typedef struct strata_kernel_impl {
  strata_impl_kind_t kind;
  strata_kernel_fn fn;
} strata_kernel_impl_t;

/** Describes a kernel to register:
 *    strata_kernel_desc_t d = {
 *        .struct_size = sizeof d, .name = "scale",
 *        .impls = (const strata_kernel_impl_t[]){{STRATA_IMPL_CPU, scale}},
 *        .nimpls = 1};
 *  It grows without breaking compiled callers: fields are appended after
 *  user_data (the runtime reads struct_size bytes and zero-fills the
 *  rest), and kinds are added to strata_impl_kind_t. A runtime older than
 *  the header refuses a kind it does not know (STRATA_EINVAL, logged), so
 *  a caller that ships code for a newer kind can register again without
 *  that pair. */
typedef struct strata_kernel_desc {
  size_t struct_size;                /* sizeof(strata_kernel_desc_t) */
  const char *name;                  /* unique per runtime; copied */
  const strata_kernel_impl_t *impls; /* nimpls pairs, at most one per
                                        kind; copied */
  uint32_t nimpls;
  void *user_data; /* passed to every call */
} strata_kernel_desc_t;

/** Register a kernel. At least one implementation must be given; a device
 *  can run the kernel only where it has the kinds the device asks for.
 *  @return 0; STRATA_EINVAL (no name, no implementation, struct_size too
 *          small to hold nimpls, impls NULL, a pair without a function, a
 *          kind this runtime does not know, two pairs of one kind: each
 *          logged); STRATA_EEXIST (a kernel of that name exists);
 *          STRATA_ENOMEM
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
