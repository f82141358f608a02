/* SPDX-License-Identifier: MIT */
/* backends/cuda-common/nvml.h: the health of NVIDIA cards through NVML,
 * loaded at run time (libnvidia-ml.so.1, by its exact soname), so that a
 * machine without the driver's library still runs the CUDA backends with
 * health "unknown". The toolkit ships no nvml.h: nvml.c declares the few
 * types and entry points it uses from NVIDIA's public API reference.
 *
 * Cards are matched by PCI bus id, never by ordinal: CUDA's and NVML's
 * orders differ (CUDA_DEVICE_ORDER, CUDA_VISIBLE_DEVICES).
 *
 * Thread-safety: NVML is thread-safe; a handle is read-only once open, so
 * every function but close may be called from any thread. */
#ifndef STRATA_SCUDA_NVML_H
#define STRATA_SCUDA_NVML_H

#include <stdint.h>

#include <strata/backend.h>

typedef struct scuda_nvml scuda_nvml_t;

/** Load NVML and list its cards. Without the library (no NVIDIA driver)
 *  or when it does not initialise, logs one INFO line and fails.
 *  @param out  set to a handle to close with scuda_nvml_close
 *  @return 0; STRATA_ENOTSUP (no usable NVML: health stays unknown);
 *          STRATA_ENOMEM
 *  @thread owner */
int scuda_nvml_open(const strata_core_services_t *core, scuda_nvml_t **out);

/** scuda_nvml_open with another library name (tests: an absent one);
 *  the same returns, ownership and thread. */
int scuda_nvml_open_named(const strata_core_services_t *core,
                          const char *soname, scuda_nvml_t **out);

/** The NVML index of the card at PCI bus id `busid`, written either way:
 *  hwloc's and CUDA's "0000:3b:00.0" or NVML's "00000000:3B:00.0".
 *  @return 0; STRATA_ENOENT (NVML does not see it); STRATA_EINVAL (not a
 *          bus id) */
int scuda_nvml_find(const scuda_nvml_t *n, const char *busid, unsigned *index);

/** Read card `index`'s health into the fields of *out that lie within
 *  out->struct_size; what NVML cannot tell is left as the caller set it
 *  (unknown). An ECC query answered NOT_SUPPORTED (consumer cards) is
 *  such an unknown, not an error.
 *  @return 0; STRATA_ERANGE (no such index); STRATA_EINVAL (out NULL);
 *          STRATA_EDEVICE (NVML has lost the card: GPU_IS_LOST) */
int scuda_nvml_health(const scuda_nvml_t *n, unsigned index,
                      strata_health_t *out);

/** The PCIe link the card supports at best (generation, lanes).
 *  @return 0; STRATA_ERANGE; STRATA_ENOTSUP (NVML cannot tell) */
int scuda_nvml_max_link(const scuda_nvml_t *n, unsigned index, uint32_t *gen,
                        uint32_t *width);

/** Shut NVML down and unload it. NULL is fine. @thread owner */
void scuda_nvml_close(scuda_nvml_t *n);

#endif /* STRATA_SCUDA_NVML_H */
