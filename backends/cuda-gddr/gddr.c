/* SPDX-License-Identifier: MIT */
/* backends/cuda-gddr/gddr.c: the cuda-gddr backend: the CUDA cards with GDDR
 * (a memory bus under 1024 bits: RTX 4090, 3090, 2080 Ti), driven by the
 * shared CUDA code of backends/cuda-common. */
#include "scuda.h"

SCUDA_COMPONENT(strata_backend_cuda_gddr_component, "cuda-gddr",
                STRATA_CLASS_GDDR, "CUDA cards with GDDR (consumer GPUs)");
