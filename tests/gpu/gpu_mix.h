/* SPDX-License-Identifier: MIT */
/* tests/gpu/gpu_mix.h: the device code of the GPU tests (mix_kernel.cu),
 * callable from C. */
#ifndef STRATA_TESTS_GPU_MIX_H
#define STRATA_TESTS_GPU_MIX_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GPU_MIX_MAX 8
#define GPU_MIX_R 1 /* STRATA_R */
#define GPU_MIX_W 2 /* STRATA_W */

/** One "mix" task for the device: its arguments and buffers. */
typedef struct gpu_mix_launch {
  uint64_t id;
  uint32_t n, words;
  uint8_t mode[GPU_MIX_MAX];
  uint64_t *bufs[GPU_MIX_MAX];
} gpu_mix_launch_t;

/** Queue one mix on `stream`. @return a cudaError_t (0: launched) */
int gpu_mix_launch(const gpu_mix_launch_t *l, void *stream);
/** Queue a kernel that writes 8 TiB past p: an illegal address.
 *  @return a cudaError_t */
int gpu_fault_launch(void *p, void *stream);

#ifdef __cplusplus
}
#endif

#endif /* STRATA_TESTS_GPU_MIX_H */
