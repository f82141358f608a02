/* SPDX-License-Identifier: MIT */
/* backends/cuda-hbm/hbm.c: the cuda-hbm backend: the CUDA cards with HBM
 * (a memory bus of 1024 bits or more: A100, H100, H200), driven by the
 * shared CUDA code of backends/cuda-common. */
#include "scuda.h"

SCUDA_COMPONENT(strata_backend_cuda_hbm_component, "cuda-hbm", STRATA_CLASS_HBM,
                "CUDA cards with HBM (server GPUs)");
