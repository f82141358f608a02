/* SPDX-License-Identifier: MIT */
/* strata/machine.h: the read-only description of the machine that the
 * runtime builds from hwloc and shares with embedders and backends. */
#ifndef STRATA_MACHINE_H
#define STRATA_MACHINE_H

#include <strata/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* All NUMA node numbers in this header are operating-system indexes (what
 * numactl and /sys show); -1 means unknown. */

/** A NUMA node: memory with the cores closest to it. */
typedef struct strata_numa_info {
  int32_t os_index;
  uint32_t ncores;       /* cores whose memory is closest to this node */
  uint64_t memory_bytes; /* local memory; 0 when hwloc does not know */
} strata_numa_info_t;

/** A core (not a hardware thread). */
typedef struct strata_core_info {
  uint32_t logical_index; /* hwloc's logical index: 0..ncores-1 */
  uint32_t os_index;
  int32_t numa_node;
  uint32_t npus; /* hardware threads in this core */
} strata_core_info_t;

/** A GPU seen on the PCI bus (vendor 0x10de), whether or not a backend
 *  drives it. */
typedef struct strata_pci_gpu_info {
  char busid[16];     /* "0000:3b:00.0" */
  uint16_t vendor_id; /* 0x10de */
  uint16_t device_id; /* 0x2330 for an H100 SXM, 0x2684 for an RTX 4090 */
  uint16_t class_id;  /* 0x0302 (3D controller) or 0x0300 (VGA) */
  int32_t numa_node;  /* the NUMA node closest to the card */
  float link_gbps;    /* PCIe link bandwidth in GB/s; 0 when unknown */
} strata_pci_gpu_info_t;

/** The machine as the runtime mapped it at creation. */
typedef struct strata_machine {
  uint32_t npackages;
  uint32_t nnuma;
  uint32_t ncores;
  uint32_t npus;
  uint32_t ngpus;
  int32_t is_this_system;            /* 0 when loaded from an XML description:
                                        threads are then not bound */
  const char *cpu_model;             /* "" when unknown */
  const strata_numa_info_t *numa;    /* nnuma entries, by logical index */
  const strata_core_info_t *cores;   /* ncores entries, by logical index */
  const strata_pci_gpu_info_t *gpus; /* ngpus entries, in PCI order */
} strata_machine_t;

#ifdef __cplusplus
}
#endif

#endif /* STRATA_MACHINE_H */
