/* SPDX-License-Identifier: MIT */
/* runtime/hardware/topology.c: machine discovery with hwloc. */
#include "config.h"

#include "topology.h"

#include "sandbox.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMP "topology"
#define XML_MAX ((size_t)64 << 20) /* bytes of a topology XML file */
#define NVIDIA_VENDOR_ID 0x10de

/* Plain main memory. hwloc >= 2.8 on Linux marks it "DRAM" once it tells
 * HBM, SPM or NVM nodes apart (hwloc_internal_memattrs_guess_memory_tiers);
 * otherwise, and in XML or synthetic machines, DRAM has no subtype. */
static bool is_dram(const struct hwloc_obj *n) {
  return !n->subtype || !strcmp(n->subtype, "DRAM");
}

/* The NUMA node an object's memory is closest to: the single node of its
 * nodeset; when several nodes are local (DRAM next to HBM in flat mode),
 * the only DRAM one; -1 when it spans several DRAM nodes or none (hwloc
 * 2.9 gives CXL memory no subtype, so DRAM + CXL reads as -1). Nodeset
 * bits are OS indexes. */
static int32_t home_numa(hwloc_topology_t hw, hwloc_const_nodeset_t ns) {
  if (!ns || hwloc_bitmap_iszero(ns))
    return -1;
  if (hwloc_bitmap_weight(ns) == 1)
    return (int32_t)hwloc_bitmap_first(ns);
  int32_t plain = -1;
  int i;
  hwloc_bitmap_foreach_begin(i, ns) {
    hwloc_obj_t n = hwloc_get_numanode_obj_by_os_index(hw, (unsigned)i);
    if (n && is_dram(n)) {
      if (plain >= 0)
        return -1;
      plain = i;
    }
  }
  hwloc_bitmap_foreach_end();
  return plain;
}

static int fill_numa(strata__topology_t *t, const strata__allocator_t *a) {
  int n = hwloc_get_nbobjs_by_type(t->hw, HWLOC_OBJ_NUMANODE);
  t->view.nnuma = n > 0 ? (uint32_t)n : 0;
  if (!t->view.nnuma)
    return STRATA_OK;
  t->numa = strata__zalloc(a, t->view.nnuma * sizeof *t->numa);
  if (!t->numa)
    return STRATA_ENOMEM;
  for (uint32_t i = 0; i < t->view.nnuma; i++) {
    hwloc_obj_t o = hwloc_get_obj_by_type(t->hw, HWLOC_OBJ_NUMANODE, i);
    t->numa[i].os_index = (int32_t)o->os_index;
    t->numa[i].memory_bytes = o->attr ? o->attr->numanode.local_memory : 0;
  }
  return STRATA_OK;
}

static int fill_cores(strata__topology_t *t, const strata__allocator_t *a) {
  /* Some virtual machines report PUs without cores: treat each PU as a
   * core then, so there is always something to run workers on. */
  hwloc_obj_type_t type = HWLOC_OBJ_CORE;
  int n = hwloc_get_nbobjs_by_type(t->hw, type);
  if (n <= 0) {
    type = HWLOC_OBJ_PU;
    n = hwloc_get_nbobjs_by_type(t->hw, type);
  }
  if (n <= 0)
    return STRATA_ETOPOLOGY;
  t->view.ncores = (uint32_t)n;
  t->cores = strata__zalloc(a, t->view.ncores * sizeof *t->cores);
  if (!t->cores)
    return STRATA_ENOMEM;
  for (uint32_t i = 0; i < t->view.ncores; i++) {
    hwloc_obj_t o = hwloc_get_obj_by_type(t->hw, type, i);
    strata_core_info_t *c = &t->cores[i];
    c->logical_index = i;
    c->os_index = o->os_index;
    c->numa_node = home_numa(t->hw, o->nodeset);
    c->npus = (uint32_t)hwloc_bitmap_weight(o->cpuset);
    int l = strata__topology_numa_by_os(t, c->numa_node);
    if (l >= 0)
      t->numa[l].ncores++;
  }
  return STRATA_OK;
}

/* An NVIDIA display controller (class 03xx: VGA or 3D). The same cards
 * carry other NVIDIA functions (HD audio 0403, USB 0c03) and HGX boards
 * NVSwitches (0680): hwloc's I/O filter hides them today, this check does
 * not rely on it. */
static bool is_gpu(const struct hwloc_pcidev_attr_s *p) {
  return p->vendor_id == NVIDIA_VENDOR_ID && (p->class_id >> 8) == 0x03;
}

/* PCI order: domain, bus, device, function. */
static int by_busid(const void *a, const void *b) {
  return strcmp(((const strata_pci_gpu_info_t *)a)->busid,
                ((const strata_pci_gpu_info_t *)b)->busid);
}

static int fill_gpus(strata__topology_t *t, const strata__allocator_t *a) {
  uint32_t n = 0;
  for (hwloc_obj_t o = NULL; (o = hwloc_get_next_pcidev(t->hw, o));)
    n += is_gpu(&o->attr->pcidev);
  if (!n)
    return STRATA_OK;
  t->gpus = strata__zalloc(a, n * sizeof *t->gpus);
  if (!t->gpus)
    return STRATA_ENOMEM;
  for (hwloc_obj_t o = NULL; (o = hwloc_get_next_pcidev(t->hw, o));) {
    const struct hwloc_pcidev_attr_s *p = &o->attr->pcidev;
    if (!is_gpu(p))
      continue;
    strata_pci_gpu_info_t *g = &t->gpus[t->view.ngpus++];
    snprintf(g->busid, sizeof g->busid, "%04x:%02x:%02x.%01x",
             (unsigned)p->domain, (unsigned)p->bus, (unsigned)p->dev,
             (unsigned)p->func);
    g->vendor_id = p->vendor_id;
    g->device_id = p->device_id;
    g->class_id = p->class_id;
    g->link_gbps = p->linkspeed;
    hwloc_obj_t anc = hwloc_get_non_io_ancestor_obj(t->hw, o);
    g->numa_node = anc ? home_numa(t->hw, anc->nodeset) : -1;
  }
  /* hwloc lists I/O objects in topology order, not bus order. */
  qsort(t->gpus, t->view.ngpus, sizeof *t->gpus, by_busid);
  return STRATA_OK;
}

static int fill_view(strata__topology_t *t, const strata__allocator_t *a) {
  int rc;
  int np = hwloc_get_nbobjs_by_type(t->hw, HWLOC_OBJ_PACKAGE);
  int npu = hwloc_get_nbobjs_by_type(t->hw, HWLOC_OBJ_PU);
  t->view.npackages = np > 0 ? (uint32_t)np : 0;
  t->view.npus = npu > 0 ? (uint32_t)npu : 0;
  t->view.is_this_system = hwloc_topology_is_thissystem(t->hw);
  if ((rc = fill_numa(t, a)) || (rc = fill_cores(t, a)) ||
      (rc = fill_gpus(t, a)))
    return rc;
  hwloc_obj_t pkg = hwloc_get_obj_by_type(t->hw, HWLOC_OBJ_PACKAGE, 0);
  const char *model = pkg ? hwloc_obj_get_info_by_name(pkg, "CPUModel") : NULL;
  if (!model)
    model = hwloc_obj_get_info_by_name(hwloc_get_root_obj(t->hw), "CPUModel");
  if (!(t->cpu_model = strata__strdup(a, model ? model : "")))
    return STRATA_ENOMEM;
  t->view.cpu_model = t->cpu_model;
  t->view.numa = t->numa;
  t->view.cores = t->cores;
  t->view.gpus = t->gpus;
  return STRATA_OK;
}

int strata__topology_load(strata__topology_t *t, const char *xml,
                          const strata__allocator_t *a,
                          const strata__logger_t *lg) {
  memset(t, 0, sizeof *t);
  if (hwloc_topology_init(&t->hw) < 0) {
    STRATA_LOG(lg, STRATA_LOG_ERROR, COMP, "hwloc_topology_init failed: %s",
               strerror(errno));
    return STRATA_ETOPOLOGY;
  }
  /* hwloc hides I/O objects by default; GPUs are PCI devices. */
  hwloc_topology_set_io_types_filter(t->hw, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
  /* The file is read here, not by hwloc: a FIFO would block it forever,
   * and its messages would not say why a file is refused. */
  char *text = NULL, err[512];
  size_t len = 0;
  if (xml) {
    int rc = strata__read_text_file(xml, XML_MAX, strata__alloc_via, (void *)a,
                                    &text, &len, err, sizeof err);
    if (rc == STRATA_ENOMEM) {
      hwloc_topology_destroy(t->hw);
      t->hw = NULL;
      return rc;
    }
    if (rc) {
      STRATA_LOG(lg, STRATA_LOG_ERROR, COMP, "topology XML %s", err);
      goto fail;
    }
    if (hwloc_topology_set_xmlbuffer(t->hw, text, (int)len + 1) < 0) {
      STRATA_LOG(lg, STRATA_LOG_ERROR, COMP,
                 "cannot read topology XML '%s': %s", xml, strerror(errno));
      goto fail;
    }
  }
  int loaded = hwloc_topology_load(t->hw);
  strata__free_text_file(strata__alloc_via, (void *)a, text, len);
  text = NULL;
  if (loaded < 0) {
    STRATA_LOG(lg, STRATA_LOG_ERROR, COMP, "hwloc_topology_load%s%s failed: %s",
               xml ? " of " : "", xml ? xml : "", strerror(errno));
    goto fail;
  }
  int rc = fill_view(t, a);
  if (rc != STRATA_OK) {
    if (rc == STRATA_ETOPOLOGY)
      STRATA_LOG(lg, STRATA_LOG_ERROR, COMP,
                 "topology%s%s has no processing units", xml ? " " : "",
                 xml ? xml : "");
    strata__topology_free(t, a);
    return rc;
  }
  STRATA_LOG(lg, STRATA_LOG_INFO, COMP,
             "%s: %u package(s), %u NUMA node(s), %u core(s), %u PU(s), "
             "%u NVIDIA GPU(s) on PCI",
             xml ? xml : "this machine", t->view.npackages, t->view.nnuma,
             t->view.ncores, t->view.npus, t->view.ngpus);
  return STRATA_OK;
fail:
  strata__free_text_file(strata__alloc_via, (void *)a, text, len);
  hwloc_topology_destroy(t->hw);
  t->hw = NULL;
  return STRATA_ETOPOLOGY;
}

void strata__topology_free(strata__topology_t *t,
                           const strata__allocator_t *a) {
  if (!t->hw)
    return; /* never loaded */
  strata__free(a, t->numa, t->view.nnuma * sizeof *t->numa);
  strata__free(a, t->cores, t->view.ncores * sizeof *t->cores);
  strata__free(a, t->gpus, t->view.ngpus * sizeof *t->gpus);
  strata__strfree(a, t->cpu_model);
  hwloc_topology_destroy(t->hw);
  memset(t, 0, sizeof *t);
}

int strata__topology_numa_by_os(const strata__topology_t *t, int os) {
  for (uint32_t i = 0; i < t->view.nnuma; i++)
    if (t->numa[i].os_index == os)
      return (int)i;
  return -1;
}

static int bind_set(const strata__topology_t *t, hwloc_const_cpuset_t set) {
  if (!t->view.is_this_system)
    return STRATA_ENOTSUP;
  if (!set || hwloc_bitmap_iszero(set))
    return STRATA_ERANGE;
  return hwloc_set_cpubind(t->hw, set, HWLOC_CPUBIND_THREAD) == 0
             ? STRATA_OK
             : STRATA_EBACKEND;
}

int strata__topology_bind_core(const strata__topology_t *t, unsigned logical) {
  if (logical >= t->view.ncores)
    return STRATA_ERANGE;
  hwloc_obj_t o = hwloc_get_obj_by_type(t->hw, HWLOC_OBJ_CORE, logical);
  if (!o)
    o = hwloc_get_obj_by_type(t->hw, HWLOC_OBJ_PU, logical);
  return bind_set(t, o ? o->cpuset : NULL);
}

int strata__topology_bind_numa(const strata__topology_t *t, int numa_os) {
  int l = strata__topology_numa_by_os(t, numa_os);
  if (l < 0)
    return bind_set(t, hwloc_topology_get_topology_cpuset(t->hw));
  hwloc_obj_t o = hwloc_get_obj_by_type(t->hw, HWLOC_OBJ_NUMANODE, (unsigned)l);
  return bind_set(t, o ? o->cpuset : NULL);
}
