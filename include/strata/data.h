/* SPDX-License-Identifier: MIT */
/* strata/data.h: buffers, the unit of data that tasks access and that
 * dependencies are derived from. */
#ifndef STRATA_DATA_H
#define STRATA_DATA_H

#include <strata/common.h>
#include <strata/runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Register `size` bytes at `ptr` as a buffer tasks can access. The caller
 *  keeps owning the memory; it must stay valid, and must not be touched by
 *  the application while tasks that access it are pending, until the
 *  buffer is unregistered.
 *  @return 0; STRATA_EINVAL (ptr NULL or size 0); STRATA_EOVERLAP (the
 *          range overlaps a registered buffer); STRATA_ESHUTDOWN
 *  @own    *out: caller, until strata_buffer_unregister
 *  @thread any */
STRATA_API int strata_buffer_register(strata_runtime_t *rt, void *ptr,
                                      size_t size,
                                      strata_buffer_t *out) STRATA_WARN_UNUSED;

/** Unregister a buffer. New submissions that access it fail from now on;
 *  the call blocks until every submitted task that accesses it has ended,
 *  so the caller's memory holds the final data on return. Tasks created
 *  but not yet submitted that access it fail at submit with STRATA_ENOENT.
 *  @return 0; STRATA_ENOENT (already unregistered)
 *  @own    the handle is dead on return
 *  @thread any  @blocks until the buffer's tasks end */
STRATA_API int strata_buffer_unregister(strata_runtime_t *rt,
                                        strata_buffer_t buf);

/** The registered address and size.
 *  @return 0; STRATA_ENOENT
 *  @thread any */
STRATA_API int strata_buffer_get(const strata_runtime_t *rt,
                                 strata_buffer_t buf, void **ptr, size_t *size);

#ifdef __cplusplus
}
#endif

#endif /* STRATA_DATA_H */
