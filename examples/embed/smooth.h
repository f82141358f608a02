/* SPDX-License-Identifier: MIT */
/* examples/embed/smooth.h: the GPU code of host.c's smoothing filter
 * (smooth.cu), built where CUDA is (EMBED_CUDA). */
#ifndef EMBED_SMOOTH_H
#define EMBED_SMOOTH_H

#include <strata/kernel.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Y (buffer 0) = the three-point moving average of X (buffer 1), on
 *  call->stream. @return 0; STRATA_EINVAL; STRATA_EBACKEND (the launch
 *  failed) */
int smooth_cuda(const strata_kernel_call_t *call);

#ifdef __cplusplus
}
#endif

#endif /* EMBED_SMOOTH_H */
