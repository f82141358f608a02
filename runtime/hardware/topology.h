/* SPDX-License-Identifier: MIT */
/* runtime/hardware/topology.h: the machine as hwloc sees it (this system or an
 * XML description): packages, NUMA nodes, cores, PUs and PCI GPUs with their
 * link speed and closest NUMA node, plus thread binding. */
#ifndef STRATA_TOPOLOGY_H
#define STRATA_TOPOLOGY_H

#include <hwloc.h>

#include "alloc.h"
#include "log.h"

typedef struct strata__topology {
  hwloc_topology_t hw;
  strata_machine_t view; /* arrays below, published to users/backends */
  strata_numa_info_t *numa;
  strata_core_info_t *cores;
  strata_pci_gpu_info_t *gpus;
  char *cpu_model;
} strata__topology_t;

/** Load the topology of this machine (xml == NULL) or of an hwloc XML
 *  file, keeping PCI devices.
 *  @return 0; STRATA_ETOPOLOGY (logged); STRATA_ENOMEM */
int strata__topology_load(strata__topology_t *t, const char *xml,
                          const strata__allocator_t *a,
                          const strata__logger_t *lg);
/** Free what strata__topology_load made; a topology never loaded (zeroed)
 *  is ignored. @thread owner (destruction) */
void strata__topology_free(strata__topology_t *t, const strata__allocator_t *a);

/** The machine as published to users and backends (the arrays it points
 *  to live until strata__topology_free). @thread any */
static inline const strata_machine_t *
strata__topology_view(const strata__topology_t *t) {
  return &t->view;
}

/** Bind the calling thread to core `logical` (index into view.cores) or to
 *  the cores of NUMA node `numa_os`.
 *  @return 0; STRATA_ENOTSUP (XML topology); STRATA_ERANGE; STRATA_EBACKEND
 *  @thread any (binds the caller) */
int strata__topology_bind_core(const strata__topology_t *t, unsigned logical);
int strata__topology_bind_numa(const strata__topology_t *t, int numa_os);

/** Logical index of the NUMA node with OS index `os`, or -1. */
int strata__topology_numa_by_os(const strata__topology_t *t, int os);

#endif /* STRATA_TOPOLOGY_H */
