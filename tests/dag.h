/* SPDX-License-Identifier: MIT */
/* tests/dag.h: random task graphs whose result is known. The "mix" kernel
 * computes a deterministic function of its inputs: it reads every buffer
 * accessed with R (in access order), then writes every buffer accessed
 * with W (W overwrites, RW mixes with the old value). Running the same
 * tasks one by one in submission order must give exactly the bytes the
 * runtime gives, whatever devices, copies and evictions it used. */
#ifndef STRATA_TEST_DAG_H
#define STRATA_TEST_DAG_H

#include <stdbool.h>
#include <stdint.h>

#include <strata.h>

#define TEST_MIX_MAX_ACC 8

typedef struct test_mix_args {
  uint64_t id;
  uint32_t n;     /* accesses */
  uint32_t words; /* uint64_t words per buffer */
  uint8_t mode[TEST_MIX_MAX_ACC];
} test_mix_args_t;

uint64_t test_mix64(uint64_t x);
void test_mix_apply(const test_mix_args_t *a, uint64_t *const *bufs);
/** The kernel: fails (returns -1) on arguments that do not match. */
int test_mix_kernel(const strata_kernel_call_t *c);
/** Register "mix" (name) with fn as its CPU implementation (and as its CUDA
 *  one, so that simulated GPUs, which run the CPU code, are candidates),
 *  asserting success. */
strata_kernel_t test_register_cpu(strata_runtime_t *rt, const char *name,
                                  strata_kernel_fn fn);

/** "mix" with the CPU kernel and `cuda` as its CUDA code (real device
 *  code, or host work queued on the stream), found when this runtime has
 *  it already (a second DAG). */
strata_kernel_t test_register_mix(strata_runtime_t *rt, strata_kernel_fn cuda);

typedef struct test_dag {
  unsigned nbuf, ntask, words;
  uint64_t *data; /* nbuf * words: what the runtime computes on */
  uint64_t *ref;  /* the same, computed sequentially */
  test_mix_args_t *args;
  uint16_t (*which)[TEST_MIX_MAX_ACC];
  /* Kernels that may run twice: a task whose results a failing device
   * could not bring home runs again elsewhere (eager_writeback). The
   * results are checked exactly all the same. Default 0. */
  unsigned reruns_max;
} test_dag_t;

/** A random DAG of `ntask` tasks over `nbuf` buffers of `words` words;
 *  three accesses in four go to the first `hot` buffers (long chains, many
 *  concurrent readers), the rest anywhere (wide parallelism). */
void test_dag_build(test_dag_t *g, unsigned nbuf, unsigned ntask,
                    unsigned words, unsigned hot, unsigned seed);
void test_dag_free(test_dag_t *g);
/** Compute ref by running the tasks in order. */
void test_dag_run_sequential(test_dag_t *g);
/** Where a DAG's buffers live: registered (the test's memory), created
 *  by the runtime (strata_buffer_create), or in shared managed memory
 *  (strata_buffer_create_managed); the last two are filled and read back
 *  through acquire. false and true read as the first two. */
typedef enum test_dag_memory {
  TEST_DAG_REGISTERED = 0,
  TEST_DAG_OWNED = 1,
  TEST_DAG_MANAGED = 2
} test_dag_memory_t;

/** Run the tasks on rt with kernel k (test_mix_kernel) over data, then
 *  assert that every task ran, none failed, and data equals ref byte for
 *  byte, the buffers where `memory` says. */
void test_dag_run_and_check(test_dag_t *g, strata_runtime_t *rt,
                            strata_kernel_t k, test_dag_memory_t memory);
/** Build, replay and run a DAG of `ntask` mixes over `nbuf` buffers of
 *  `words` words (a quarter of them hot) with kernel k, allowing `reruns`
 *  tasks to run twice, and check it. */
void test_dag_check(strata_runtime_t *rt, strata_kernel_t k, unsigned nbuf,
                    unsigned ntask, unsigned words, unsigned seed,
                    unsigned reruns);

#endif /* STRATA_TEST_DAG_H */
