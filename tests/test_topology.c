/* SPDX-License-Identifier: MIT */
/* tests/test_topology.c: the machine view built from hwloc, on this machine
 * and on the XML machines in tests/topologies, through the public API. */
#include "config.h"

#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GIB (UINT64_C(1) << 30)
#define TWO_NUMA "h100-4090-2numa.xml"
#define SINGLE "single-4core.xml"
#define DRAM_HBM "dram-hbm-1pkg.xml"
/* The same machine as hwloc >= 2.8 exports it from Linux: DRAM labelled. */
#define DRAM_LABELLED_HBM "dram-labelled-hbm-1pkg.xml"
#define DRAM_DRAM "dram-dram-1pkg.xml"
#define GPUS_REVERSED "gpus-reversed.xml"
#define BROKEN "broken.xml"
#define MISSING "no-such-machine.xml"
#define FIXTURE_CPU "Intel(R) Xeon(R) Platinum 8468"

/* {=== Fixture ===}
 * Every runtime of a test allocates through a counting allocator and logs
 * into a capture, so each test can check for leaks and log lines. */
typedef struct fx {
  test_alloc_t alloc;
  test_log_t log;
  strata_runtime_t *rt;
  char path[4096];
} fx_t;

static int setup(void **state) {
  fx_t *f = calloc(1, sizeof *f);
  if (!f)
    return -1;
  test_alloc_init(&f->alloc);
  test_log_init(&f->log);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx_t *f = *state;
  if (f->rt)
    (void)strata_runtime_destroy(f->rt);
  pthread_mutex_destroy(&f->alloc.mu);
  pthread_mutex_destroy(&f->log.mu);
  free(f);
  return 0;
}

/* The full path of a file in tests/topologies. */
static const char *fixture_path(fx_t *f, const char *file) {
  int n = snprintf(f->path, sizeof f->path, "%s/%s",
                   test_env("STRATA_TEST_TOPOLOGIES"), file);
  assert_true(n > 0 && (size_t)n < sizeof f->path);
  return f->path;
}

/* Options for the cpu backend on `xml` (NULL: this machine), allocating
 * and logging into the fixture. */
static void fx_opts(fx_t *f, strata_runtime_opts_t *o, const char *xml,
                    unsigned workers) {
  test_opts(o, workers, &f->log);
  o->alloc = test_alloc_fn;
  o->alloc_ud = &f->alloc;
  o->topology_xml = xml ? fixture_path(f, xml) : NULL;
}

static const strata_machine_t *fx_create(fx_t *f, const char *xml,
                                         unsigned workers) {
  strata_runtime_opts_t o;
  fx_opts(f, &o, xml, workers);
  assert_int_equal(strata_runtime_create(&o, &f->rt), STRATA_OK);
  const strata_machine_t *m = strata_runtime_machine(f->rt);
  assert_non_null(m);
  return m;
}

/* Destroy the runtime (which joins its workers) and check for leaks. */
static void fx_destroy(fx_t *f) {
  assert_int_equal(strata_runtime_destroy(f->rt), STRATA_OK);
  f->rt = NULL;
  test_alloc_assert_clean(&f->alloc);
}

static strata_device_info_t device(fx_t *f, int index) {
  strata_device_info_t d = {.struct_size = sizeof d};
  assert_int_equal(strata_device_info(f->rt, index, &d), STRATA_OK);
  return d;
}

/* The CPU device of NUMA node `numa`; fails if there is none. */
static strata_device_info_t cpu_device_of(fx_t *f, int32_t numa) {
  for (int i = 0; i < strata_device_count(f->rt); i++) {
    strata_device_info_t d = device(f, i);
    if (d.device_class == STRATA_CLASS_CPU && d.numa_node == numa)
      return d;
  }
  fail_msg("no CPU device on NUMA node %d", (int)numa);
  return (strata_device_info_t){0};
}

/* Captured lines that contain both `a` and `b`. */
static unsigned log_lines(fx_t *f, const char *a, const char *b) {
  unsigned n = 0;
  pthread_mutex_lock(&f->log.mu);
  for (char *line = f->log.text; *line;) {
    char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    char buf[1024];
    snprintf(buf, sizeof buf, "%.*s", (int)len, line);
    n += strstr(buf, a) && strstr(buf, b);
    line += len + (end != NULL);
  }
  pthread_mutex_unlock(&f->log.mu);
  return n;
}

/* {=== This machine ===} */

static void check_cores(const strata_machine_t *m) {
  uint32_t known = 0, pus = 0;
  for (uint32_t i = 0; i < m->ncores; i++) {
    const strata_core_info_t *c = &m->cores[i];
    assert_int_equal(c->logical_index, i);
    assert_true(c->npus >= 1);
    pus += c->npus;
    if (c->numa_node < 0) {
      assert_int_equal(c->numa_node, -1);
      continue;
    }
    bool listed = false;
    for (uint32_t n = 0; n < m->nnuma; n++)
      listed |= m->numa[n].os_index == c->numa_node;
    assert_true(listed);
    known++;
  }
  uint32_t counted = 0;
  for (uint32_t n = 0; n < m->nnuma; n++)
    counted += m->numa[n].ncores;
  /* Every core with a single NUMA node is counted once, by that node. */
  assert_int_equal(counted, known);
  assert_int_equal(pus, m->npus);
}

static void test_topology_this_machine(void **state) {
  fx_t *f = *state;
  const strata_machine_t *m = fx_create(f, NULL, 1);
  assert_true(m->npackages >= 1);
  assert_true(m->ncores >= 1);
  assert_true(m->npus >= m->ncores);
  assert_true(m->nnuma >= 1);
  assert_int_equal(m->is_this_system, 1);
  assert_non_null(m->cpu_model);
  assert_non_null(m->numa);
  assert_non_null(m->cores);
  check_cores(m);
  for (uint32_t g = 0; g < m->ngpus; g++)
    assert_int_equal(m->gpus[g].vendor_id, 0x10de);
  assert_true(test_log_has(&f->log, "this machine"));
  fx_destroy(f);
}

/* {=== The two-socket machine with an H100 and an RTX 4090 ===} */

static void test_topology_xml_counts(void **state) {
  fx_t *f = *state;
  const strata_machine_t *m = fx_create(f, TWO_NUMA, 1);
  assert_int_equal(m->npackages, 2);
  assert_int_equal(m->nnuma, 2);
  assert_int_equal(m->ncores, 16);
  assert_int_equal(m->npus, 32);
  assert_int_equal(m->is_this_system, 0);
  assert_string_equal(m->cpu_model, FIXTURE_CPU);
  check_cores(m);
  for (uint32_t i = 0; i < m->ncores; i++) {
    assert_int_equal(m->cores[i].numa_node, i < 8 ? 0 : 1);
    assert_int_equal(m->cores[i].os_index, i);
    assert_int_equal(m->cores[i].npus, 2);
  }
  assert_true(test_log_has(&f->log, "2 package(s), 2 NUMA node(s), 16 "
                                    "core(s), 32 PU(s), 2 NVIDIA GPU(s)"));
  fx_destroy(f);
}

static void test_topology_xml_numa_memory(void **state) {
  fx_t *f = *state;
  const strata_machine_t *m = fx_create(f, TWO_NUMA, 1);
  assert_int_equal(m->numa[0].os_index, 0);
  assert_int_equal(m->numa[0].ncores, 8);
  assert_int_equal(m->numa[0].memory_bytes, 64 * GIB);
  /* Node 1 has half the memory, so swapped nodes would show. */
  assert_int_equal(m->numa[1].os_index, 1);
  assert_int_equal(m->numa[1].ncores, 8);
  assert_int_equal(m->numa[1].memory_bytes, 32 * GIB);
  fx_destroy(f);
}

static void check_gpu(const strata_pci_gpu_info_t *g, const char *busid,
                      uint16_t device_id, uint16_t class_id, int32_t numa,
                      float gbps) {
  assert_string_equal(g->busid, busid);
  assert_int_equal(g->vendor_id, 0x10de);
  assert_int_equal(g->device_id, device_id);
  assert_int_equal(g->class_id, class_id);
  assert_int_equal(g->numa_node, numa);
  assert_true(fabsf(g->link_gbps - gbps) < 0.1f);
}

/* The fixture also holds a Mellanox NIC, the BMC's ASPEED VGA (class 0300
 * but not NVIDIA) and the 4090's HD audio function (NVIDIA, class 0403):
 * none of them is a GPU. */
static void test_topology_xml_gpus(void **state) {
  fx_t *f = *state;
  const strata_machine_t *m = fx_create(f, TWO_NUMA, 1);
  assert_int_equal(m->ngpus, 2);
  assert_non_null(m->gpus);
  check_gpu(&m->gpus[0], "0000:3b:00.0", 0x2330, 0x0302, 0, 63.015f);
  check_gpu(&m->gpus[1], "0000:af:00.0", 0x2684, 0x0300, 1, 31.508f);
  fx_destroy(f);
}

/* Worker w runs on core w % ncores in logical order: four workers all sit
 * on node 0's cores, so there is one CPU device. */
static void test_topology_xml_few_workers_one_device(void **state) {
  fx_t *f = *state;
  fx_create(f, TWO_NUMA, 4);
  assert_int_equal(strata_device_count(f->rt), 1);
  strata_device_info_t d = device(f, 0);
  assert_int_equal(d.device_class, STRATA_CLASS_CPU);
  assert_string_equal(d.backend, "cpu");
  assert_int_equal(d.numa_node, 0);
  assert_int_equal(d.workers, 4);
  assert_int_equal(d.memory_bytes, 64 * GIB);
  assert_string_equal(d.pci_busid, "");
  assert_non_null(strstr(d.name, FIXTURE_CPU));
  fx_destroy(f);
  /* Destroy joined the workers, so each has tried to bind by now. */
  assert_int_equal(log_lines(f, "[DEBUG]", "not bound"), 4);
  assert_int_equal(f->log.count[STRATA_LOG_WARN], 0);
  assert_int_equal(f->log.count[STRATA_LOG_ERROR], 0);
}

static void check_node_device(fx_t *f, int32_t numa, uint64_t memory) {
  strata_device_info_t d = cpu_device_of(f, numa);
  assert_string_equal(d.backend, "cpu");
  assert_int_equal(d.workers, 8);
  assert_int_equal(d.memory_bytes, memory);
  assert_string_equal(d.pci_busid, "");
}

static void test_topology_xml_device_per_node(void **state) {
  fx_t *f = *state;
  fx_create(f, TWO_NUMA, 16);
  assert_int_equal(strata_device_count(f->rt), 2);
  check_node_device(f, 0, 64 * GIB);
  check_node_device(f, 1, 32 * GIB);
  fx_destroy(f);
  assert_int_equal(log_lines(f, "[DEBUG]", "not bound"), 16);
  assert_int_equal(f->log.count[STRATA_LOG_WARN], 0);
}

/* {=== The one-socket machine ===} */

static void test_topology_xml_single_node(void **state) {
  fx_t *f = *state;
  const strata_machine_t *m = fx_create(f, SINGLE, 0);
  assert_int_equal(m->npackages, 1);
  assert_int_equal(m->nnuma, 1);
  assert_int_equal(m->ncores, 4);
  assert_int_equal(m->npus, 8);
  assert_int_equal(m->ngpus, 0);
  assert_int_equal(m->is_this_system, 0);
  assert_string_equal(m->cpu_model, "");
  assert_int_equal(m->numa[0].ncores, 4);
  assert_int_equal(m->numa[0].memory_bytes, 16 * GIB);
  check_cores(m);
  assert_int_equal(strata_device_count(f->rt), 1);
  strata_device_info_t d = device(f, 0);
  assert_int_equal(d.device_class, STRATA_CLASS_CPU);
  assert_int_equal(d.numa_node, 0);
  assert_int_equal(d.workers, 4); /* one per core by default */
  assert_int_equal(d.memory_bytes, 16 * GIB);
  fx_destroy(f);
}

/* {=== DRAM next to HBM in flat mode ===}
 * One package whose cores all see two NUMA nodes: DRAM (P#0, 64 GiB, no
 * subtype) and HBM (P#1, 16 GiB, subtype "HBM"). */

#define DRAM_NODE 0

static void check_dram_hbm_home_node(fx_t *f, const char *file) {
  const strata_machine_t *m = fx_create(f, file, 1);
  assert_int_equal(m->npackages, 1);
  assert_int_equal(m->nnuma, 2);
  assert_int_equal(m->ncores, 4);
  assert_int_equal(m->numa[0].os_index, DRAM_NODE);
  assert_int_equal(m->numa[0].memory_bytes, 64 * GIB);
  assert_int_equal(m->numa[1].os_index, 1);
  assert_int_equal(m->numa[1].memory_bytes, 16 * GIB);
  for (uint32_t i = 0; i < m->ncores; i++)
    assert_int_equal(m->cores[i].numa_node, DRAM_NODE);
  assert_int_equal(m->numa[0].ncores, 4);
  assert_int_equal(m->numa[1].ncores, 0);
  check_cores(m);
  fx_destroy(f);
}

static void test_topology_xml_dram_hbm_home_node(void **state) {
  check_dram_hbm_home_node(*state, DRAM_HBM);
  check_dram_hbm_home_node(*state, DRAM_LABELLED_HBM);
}

/* The CPU device sits on the DRAM node and reports its memory alone, not
 * DRAM + HBM (80 GiB) as a device spanning every node would. */
static void check_dram_hbm_device(fx_t *f, const char *file) {
  fx_create(f, file, 4);
  assert_int_equal(strata_device_count(f->rt), 1);
  strata_device_info_t d = device(f, 0);
  assert_int_equal(d.device_class, STRATA_CLASS_CPU);
  assert_int_equal(d.numa_node, DRAM_NODE);
  assert_int_equal(d.workers, 4);
  assert_int_equal(d.memory_bytes, 64 * GIB);
  fx_destroy(f);
}

static void test_topology_xml_dram_hbm_device(void **state) {
  check_dram_hbm_device(*state, DRAM_HBM);
  check_dram_hbm_device(*state, DRAM_LABELLED_HBM);
}

/* Two untyped nodes (P#0 32 GiB, P#1 16 GiB) under one package: neither is
 * the cores' home, so they have none and the one CPU device spans both. */
static void test_topology_xml_two_dram_nodes_no_home(void **state) {
  fx_t *f = *state;
  const strata_machine_t *m = fx_create(f, DRAM_DRAM, 2);
  assert_int_equal(m->nnuma, 2);
  assert_int_equal(m->ncores, 2);
  for (uint32_t i = 0; i < m->ncores; i++)
    assert_int_equal(m->cores[i].numa_node, -1);
  assert_int_equal(m->numa[0].ncores, 0);
  assert_int_equal(m->numa[1].ncores, 0);
  check_cores(m);
  assert_int_equal(strata_device_count(f->rt), 1);
  strata_device_info_t d = device(f, 0);
  assert_int_equal(d.numa_node, -1);
  assert_int_equal(d.workers, 2);
  assert_int_equal(d.memory_bytes, 48 * GIB);
  fx_destroy(f);
}

/* {=== GPUs whose topology order is not their bus order ===}
 * hwloc lists PCI devices in tree order: the H100 at af:00.0 under package
 * 0 (node 0) before the RTX 4090 at 3b:00.0 under package 1 (node 1). */

static void test_topology_xml_gpus_bus_order(void **state) {
  fx_t *f = *state;
  const strata_machine_t *m = fx_create(f, GPUS_REVERSED, 1);
  assert_int_equal(m->ngpus, 2);
  assert_non_null(m->gpus);
  assert_true(strcmp(m->gpus[0].busid, m->gpus[1].busid) < 0);
  /* Each GPU keeps its own node, ids and link speed. */
  check_gpu(&m->gpus[0], "0000:3b:00.0", 0x2684, 0x0300, 1, 31.508f);
  check_gpu(&m->gpus[1], "0000:af:00.0", 0x2330, 0x0302, 0, 63.015f);
  fx_destroy(f);
}

/* {=== Files that cannot be loaded ===} */

static void check_load_fails(fx_t *f, const char *file) {
  strata_runtime_opts_t o;
  fx_opts(f, &o, file, 1);
  strata_runtime_t *rt = NULL;
  assert_int_equal(strata_runtime_create(&o, &rt), STRATA_ETOPOLOGY);
  assert_null(rt);
  assert_true(log_lines(f, "[ERROR] topology:", f->path) >= 1);
  test_alloc_assert_clean(&f->alloc);
}

static void test_topology_missing_file_fails(void **state) {
  check_load_fails(*state, MISSING);
}

static void test_topology_broken_xml_fails(void **state) {
  check_load_fails(*state, BROKEN);
}

/* Failing each allocation in turn while mapping the XML machine ends in a
 * clean error, never a leak, until the k-th run succeeds. */
static void test_topology_xml_alloc_failures(void **state) {
  fx_t *f = *state;
  strata_runtime_opts_t o;
  fx_opts(f, &o, TWO_NUMA, 2);
  int rc = STRATA_ENOMEM;
  long k;
  for (k = 1; k < 10000 && rc != STRATA_OK; k++) {
    f->alloc.fail_after = k;
    rc = strata_runtime_create(&o, &f->rt);
    if (rc != STRATA_OK) {
      assert_null(f->rt);
      assert_true(rc == STRATA_ENOMEM || rc == STRATA_EBACKEND);
      test_alloc_assert_clean(&f->alloc);
    }
  }
  assert_int_equal(rc, STRATA_OK);
  assert_true(k > 5); /* the machine view alone needs several blocks */
  f->alloc.fail_after = -1;
  fx_destroy(f);
}

/* {=== Running work on an XML machine ===} */

typedef struct add_args {
  int value;
} add_args_t;

static int add_kernel(const strata_kernel_call_t *call) {
  const add_args_t *a = call->args;
  int *v = call->buffers[0];
  for (size_t i = 0; i < call->sizes[0] / sizeof *v; i++)
    v[i] += a->value;
  return 0;
}

static void submit_add(fx_t *f, strata_kernel_t k, strata_buffer_t b,
                       int value) {
  strata_task_t t;
  add_args_t a = {value};
  assert_int_equal(strata_task_create(f->rt, k, &t), STRATA_OK);
  assert_int_equal(strata_task_access(f->rt, t, b, STRATA_RW), STRATA_OK);
  assert_int_equal(strata_task_set_args(f->rt, t, &a, sizeof a), STRATA_OK);
  assert_int_equal(strata_task_submit(f->rt, t), STRATA_OK);
  assert_int_equal(strata_task_wait(f->rt, t), STRATA_OK);
  strata_task_info_t info = {.struct_size = sizeof info};
  assert_int_equal(strata_task_info(f->rt, t, &info), STRATA_OK);
  assert_int_equal(info.state, STRATA_TASK_DONE);
  assert_true(info.device >= 0 && info.device < strata_device_count(f->rt));
  assert_int_equal(strata_task_release(f->rt, t), STRATA_OK);
}

static void test_topology_xml_runs_task(void **state) {
  fx_t *f = *state;
  fx_create(f, TWO_NUMA, 16);
  const strata_kernel_impl_t impls[] = {{STRATA_IMPL_CPU, add_kernel}};
  strata_kernel_desc_t desc = {
      .struct_size = sizeof desc, .name = "add", .impls = impls, .nimpls = 1};
  strata_kernel_t k;
  assert_int_equal(strata_kernel_register(f->rt, &desc, &k), STRATA_OK);
  int data[256];
  for (int i = 0; i < 256; i++)
    data[i] = i;
  strata_buffer_t b;
  assert_int_equal(strata_buffer_register(f->rt, data, sizeof data, &b),
                   STRATA_OK);
  submit_add(f, k, b, 1);
  submit_add(f, k, b, 2);
  assert_int_equal(strata_buffer_unregister(f->rt, b), STRATA_OK);
  for (int i = 0; i < 256; i++)
    assert_int_equal(data[i], i + 3);
  fx_destroy(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_topology_this_machine, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_topology_xml_counts, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_topology_xml_numa_memory, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_topology_xml_gpus, setup, teardown),
      cmocka_unit_test_setup_teardown(test_topology_xml_few_workers_one_device,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_topology_xml_device_per_node, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_topology_xml_single_node, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_topology_xml_dram_hbm_home_node,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_topology_xml_dram_hbm_device, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_topology_xml_two_dram_nodes_no_home,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_topology_xml_gpus_bus_order, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_topology_missing_file_fails, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_topology_broken_xml_fails, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_topology_xml_alloc_failures, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_topology_xml_runs_task, setup,
                                      teardown),
  };
  return cmocka_run_group_tests_name("topology", tests, NULL, NULL);
}
