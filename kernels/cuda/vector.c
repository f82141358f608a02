/* SPDX-License-Identifier: MIT */
/* kernels/cuda/vector.c: the vector kernels as Strata kernels: check the
 * call, then launch on the worker's stream (vector_kernels.cu). */
#include "scuk.h"

#include <stdbool.h>

#include <strata/common.h>

/* A call with `nbuf` buffers of doubles and `args` bytes of arguments. */
static bool shaped(const strata_kernel_call_t *call, uint32_t nbuf,
                   size_t args) {
  if (call->nbuffers != nbuf || call->args_size != args ||
      (args && !call->args))
    return false;
  for (uint32_t i = 0; i < nbuf; i++)
    if (call->sizes[i] % sizeof(double))
      return false;
  return true;
}

static double scalar(const strata_kernel_call_t *call) {
  return ((const scuk_scalar_args_t *)call->args)->value;
}

static int launched(int cuda_error) {
  return cuda_error ? STRATA_EBACKEND : STRATA_OK;
}

int scuk_fill(const strata_kernel_call_t *call) {
  if (!shaped(call, 1, sizeof(scuk_scalar_args_t)))
    return STRATA_EINVAL;
  return launched(scuk_launch_fill(call->buffers[0],
                                   call->sizes[0] / sizeof(double),
                                   scalar(call), call->stream));
}

int scuk_scale(const strata_kernel_call_t *call) {
  if (!shaped(call, 1, sizeof(scuk_scalar_args_t)))
    return STRATA_EINVAL;
  return launched(scuk_launch_scale(call->buffers[0],
                                    call->sizes[0] / sizeof(double),
                                    scalar(call), call->stream));
}

int scuk_axpy(const strata_kernel_call_t *call) {
  if (!shaped(call, 2, sizeof(scuk_scalar_args_t)) ||
      call->sizes[0] != call->sizes[1])
    return STRATA_EINVAL;
  return launched(scuk_launch_axpy(call->buffers[0], call->buffers[1],
                                   call->sizes[0] / sizeof(double),
                                   scalar(call), call->stream));
}

int scuk_checksum(const strata_kernel_call_t *call) {
  if (!shaped(call, 2, 0) || call->sizes[1] != sizeof(double))
    return STRATA_EINVAL;
  return launched(scuk_launch_checksum(call->buffers[0],
                                       call->sizes[0] / sizeof(double),
                                       call->buffers[1], call->stream));
}
