/* SPDX-License-Identifier: MIT */
/* tests/util.h: helpers shared by the cmocka tests: a counting allocator
 * with failure injection, a log capture, and runtimes built on the
 * build tree's backends. */
#ifndef STRATA_TEST_UTIL_H
#define STRATA_TEST_UTIL_H

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <strata.h>

/* {=== Counting allocator ===}
 * Every block carries a header with its size, so a free or realloc with a
 * wrong osize is caught; fail_after = k makes the k-th allocation from now
 * on (and only it) fail; cap_bytes limits the live total. */
typedef struct test_alloc {
  pthread_mutex_t mu;
  size_t live_blocks, live_bytes, peak_bytes, calls;
  long fail_after;     /* < 0: never */
  size_t cap_bytes;    /* 0: unlimited */
  size_t bad_sizes;    /* frees/reallocs whose osize was wrong */
  size_t watch_size;   /* new blocks of exactly this size ... */
  size_t watch_allocs; /* ... are counted here */
} test_alloc_t;

void test_alloc_init(test_alloc_t *a);
void *test_alloc_fn(void *ud, void *ptr, size_t osize, size_t nsize);
/** Assert nothing is left allocated and no size was ever wrong. */
void test_alloc_assert_clean(test_alloc_t *a);

/* {=== Log capture ===} */
typedef struct test_log {
  pthread_mutex_t mu;
  char text[1 << 16];
  size_t len;
  unsigned count[STRATA_LOG_TRACE + 1];
} test_log_t;

void test_log_init(test_log_t *l);
void test_log_fn(void *ud, strata_log_level_t level, const char *component,
                 const char *msg);
/** Does any captured line contain `needle`? */
bool test_log_has(test_log_t *l, const char *needle);
/* A hang is a failure: after `s` seconds the program prints `log` (the
 * runtime under test's, or NULL) and exits with a failure. One at a time;
 * test_watchdog_off disarms it. */
void test_watchdog(test_log_t *log, unsigned s);
void test_watchdog_off(void);
void test_log_clear(test_log_t *l);

/* {=== Runtimes ===} */
/** The value of a variable make check exports; fails the test if unset. */
const char *test_env(const char *name);
/** Options for a runtime on the build tree's cpu backend with `workers`
 *  workers (0: one per core), logging into `log` (may be NULL) at DEBUG. */
void test_opts(strata_runtime_opts_t *o, unsigned workers, test_log_t *log);
/** Create such a runtime, asserting success. */
strata_runtime_t *test_runtime(unsigned workers, test_log_t *log);
/** A path "a:b" in a static buffer. */
const char *test_path2(const char *a, const char *b);
/** Make a private directory under $TMPDIR (or /tmp) named after `tag`
 *  into buf, failing the test when it cannot. */
void test_tmpdir(char *buf, size_t len, const char *tag);
/** Remove it and what it holds. */
void test_tmpdir_remove(const char *dir);
/** Write `text` to dir/name; returns the path (one of four static buffers
 *  used in turn). */
const char *test_write_file(const char *dir, const char *name,
                            const char *text);

/* {=== Runtimes on simulated devices ===} */

/* A runtime on the sim backend (and maybe cpu), with a leak-checking
 * allocator and a captured log. */
typedef struct test_sim_rt {
  strata_runtime_t *rt;
  test_alloc_t alloc;
  test_log_t log;
  strata_runtime_opts_t o;
  char options[1024];
} test_sim_rt_t;

/** Options for a runtime on `backends` ("cpu,sim" or "sim"; sim
 *  required) with the machine description at `machine`; cpu_workers as
 *  in test_opts. */
void test_sim_opts(test_sim_rt_t *m, const char *backends, const char *machine,
                   unsigned cpu_workers);
/** Create it, failing the test (with the log) when it cannot. */
void test_sim_create(test_sim_rt_t *m);
/** test_sim_opts, then test_sim_create. */
void test_sim_start(test_sim_rt_t *m, const char *backends, const char *machine,
                    unsigned cpu_workers);
/** Destroy it and check that nothing leaked. */
void test_sim_destroy(test_sim_rt_t *m);
/** The index of the first device of class cls, or -1. */
int test_device_of(strata_runtime_t *rt, strata_device_class_t cls);
/** The index of the first device of backend `backend`, or -1. */
int test_device_of_backend(strata_runtime_t *rt, const char *backend);
/** Device d's information (asserted to exist). */
strata_device_info_t test_device_info(strata_runtime_t *rt, int d);
/** Run the group (honouring STRATA_TEST_FILTER) and, when every test
 *  passed, remove tmpdir. @return the failures */
int test_run_group(const struct CMUnitTest *tests, size_t n,
                   const char *tmpdir);

/* One simulated device of a machine description (lua/machines/README.md)
 * with moderate rates; `extra` adds fields (faults, peers, workers...). */
#define TEST_SIM_DEV(cls, nm, mem, extra)                                      \
  "{ class = '" cls "', name = '" nm "', memory = " mem ",\n"                  \
  "  mem_bandwidth = 1 * TB, link_bandwidth = 10 * GB, link_latency = 5 * "    \
  "us,\n"                                                                      \
  "  fp64 = 1 * TFLOPS, fp32 = 2 * TFLOPS, health = { temperature = 40, "      \
  "power = 200 },\n  " extra " },\n"

/** Sleep for `ms` milliseconds. */
void test_sleep_ms(unsigned ms);

/** The runtime's metrics text now (strata_metrics_format), malloc'd: the
 *  caller frees it. Fails the test when formatting fails. */
char *test_metrics_text(strata_runtime_t *rt);
/** The sum of every sample of `family` in `text` whose line contains each
 *  of the `with` strings (NULL-terminated; NULL: none); the number of
 *  such lines in *lines when not NULL. */
double test_metrics_sum(const char *text, const char *family,
                        const char *const *with, unsigned *lines);

#endif /* STRATA_TEST_UTIL_H */
