/* SPDX-License-Identifier: MIT */
/* tests/test_trace.c: the trace recorder (strata/trace.h): off by default;
 * a run over the CPU and two simulated cards recorded as Chrome JSON (a
 * slice per task and per copy, a counter per memory node) and as an SVG
 * timeline; 20,000 short tasks still drawn, thin slices together; a full
 * recording counting what it drops; stop; and the errors (nothing
 * recorded, a file that cannot be written, an unknown format). */
#include "config.h"

#include "dag.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char dir[512];

/* dir/name, in one of four buffers (a call may hold two). */
static const char *in(const char *d, const char *name) {
  static char buf[4][1024];
  static unsigned next;
  char *p = buf[next++ % 4];
  snprintf(p, sizeof buf[0], "%s/%s", d, name);
  return p;
}

static const char *machine(void) {
  return in(test_env("STRATA_TEST_MACHINES"), "mixed.lua");
}

static void start(test_sim_rt_t *m) {
  test_sim_start(m, "cpu,sim", machine(), 2);
}

static strata_kernel_t mix(strata_runtime_t *rt) {
  strata_kernel_t k;
  if (strata_kernel_find(rt, "mix", &k))
    k = test_register_cpu(rt, "mix", test_mix_kernel);
  return k;
}

/* The file's bytes, NUL-terminated (freed by the caller). */
static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  long n = ftell(f);
  assert_true(n >= 0);
  rewind(f);
  char *s = malloc((size_t)n + 1);
  assert_non_null(s);
  assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
  s[n] = '\0';
  fclose(f);
  if (len)
    *len = (size_t)n;
  return s;
}

static size_t count(const char *s, const char *needle) {
  size_t n = 0;
  for (const char *p = s; (p = strstr(p, needle)); p++)
    n++;
  return n;
}

static void test_trace_off_by_default(void **state) {
  (void)state;
  test_sim_rt_t m;
  start(&m);
  test_dag_check(m.rt, mix(m.rt), 8, 50, 16, 1, 0);
  uint64_t events = 1, dropped = 1;
  assert_int_equal(strata_trace_counts(m.rt, &events, &dropped), 0);
  assert_int_equal(events, 0);
  assert_int_equal(dropped, 0);
  assert_int_equal(
      strata_trace_write(m.rt, in(dir, "none.json"), STRATA_TRACE_CHROME_JSON),
      STRATA_ESTATE);
  test_sim_destroy(&m);
}

static void test_trace_json_and_svg(void **state) {
  (void)state;
  test_sim_rt_t m;
  start(&m);
  assert_int_equal(strata_trace_start(m.rt, 0), 0);
  test_dag_check(m.rt, mix(m.rt), 16, 200, 64, 2, 0);
  assert_int_equal(strata_trace_stop(m.rt), 0);
  /* Nothing recorded after the stop. */
  test_dag_check(m.rt, mix(m.rt), 4, 20, 16, 3, 0);
  const char *json = in(dir, "run.json");
  const char *svg = in(dir, "run.svg");
  assert_int_equal(strata_trace_write(m.rt, json, STRATA_TRACE_CHROME_JSON), 0);
  assert_int_equal(strata_trace_write(m.rt, svg, STRATA_TRACE_SVG), 0);
  char *j = slurp(json, NULL);
  assert_int_equal(
      strncmp(j, "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[", 39), 0);
  assert_non_null(strstr(j, "\n]}\n"));
  assert_int_equal(count(j, "\"cat\":\"task\""), 200);
  assert_true(count(j, "\"cat\":\"copy\"") > 0);
  assert_true(count(j, "\"ph\":\"C\"") > 0);
  assert_non_null(strstr(j, "\"name\":\"process_name\",\"pid\":2"));
  assert_non_null(strstr(j, "\"args\":{\"kernel\":\"mix\""));
  assert_non_null(strstr(j, "H100 SXM (simulated)"));
  free(j);
  char *s = slurp(svg, NULL);
  assert_int_equal(strncmp(s, "<svg ", 5), 0);
  assert_non_null(strstr(s, "</svg>\n"));
  assert_non_null(strstr(s, "RTX 4090 (simulated) / 0</text>"));
  assert_non_null(strstr(s, " -&#62; ")); /* a link lane: "host -> card" */
  assert_non_null(strstr(s, ">no tier</text>"));
  assert_non_null(strstr(s, " ms</text>")); /* the axis */
  free(s);
  test_sim_destroy(&m);
}

static int nothing(const strata_kernel_call_t *c) {
  (void)c;
  return 0;
}

/* 20,000 tasks of next to nothing: the timeline stays a few hundred
 * kilobytes, the thin slices drawn together. */
static void test_trace_many_thin_slices(void **state) {
  (void)state;
  test_sim_rt_t m;
  start(&m);
  strata_kernel_t k = test_register_cpu(m.rt, "nothing", nothing);
  assert_int_equal(strata_trace_start(m.rt, 0), 0);
  enum { N = 20000 };
  for (int i = 0; i < N; i++) {
    strata_task_t t;
    assert_int_equal(strata_task_create(m.rt, k, &t), 0);
    assert_int_equal(strata_task_set_attr(m.rt, t, "tier", "preprocess"), 0);
    assert_int_equal(strata_task_submit(m.rt, t), 0);
    assert_int_equal(strata_task_release(m.rt, t), 0);
  }
  assert_int_equal(strata_runtime_wait_all(m.rt), 0);
  uint64_t events = 0;
  assert_int_equal(strata_trace_counts(m.rt, &events, NULL), 0);
  assert_int_equal(events, N);
  const char *svg = in(dir, "many.svg");
  assert_int_equal(strata_trace_write(m.rt, svg, STRATA_TRACE_SVG), 0);
  size_t len;
  char *s = slurp(svg, &len);
  assert_true(len < 2u << 20);
  assert_true(count(s, " slices: ") > 0);
  assert_non_null(strstr(s, ">preprocess</text>"));
  free(s);
  test_sim_destroy(&m);
}

/* A recording of 10 events: the rest are counted, not kept. */
static void test_trace_full_counts_drops(void **state) {
  (void)state;
  test_sim_rt_t m;
  start(&m);
  assert_int_equal(strata_trace_start(m.rt, 10), 0);
  test_dag_check(m.rt, mix(m.rt), 8, 60, 16, 4, 0);
  uint64_t events = 0, dropped = 0;
  assert_int_equal(strata_trace_counts(m.rt, &events, &dropped), 0);
  assert_int_equal(events, 10);
  assert_true(dropped >= 50);
  /* A new start forgets the old recording. */
  assert_int_equal(strata_trace_start(m.rt, 0), 0);
  assert_int_equal(strata_trace_counts(m.rt, &events, &dropped), 0);
  assert_int_equal(events + dropped, 0);
  test_sim_destroy(&m);
}

static void test_trace_errors(void **state) {
  (void)state;
  test_sim_rt_t m;
  start(&m);
  assert_int_equal(strata_trace_start(NULL, 0), STRATA_EINVAL);
  assert_int_equal(strata_trace_stop(NULL), STRATA_EINVAL);
  assert_int_equal(strata_trace_start(m.rt, 0), 0);
  test_dag_check(m.rt, mix(m.rt), 4, 10, 16, 5, 0);
  assert_int_equal(strata_trace_write(m.rt, in(dir, "no/such/dir.json"),
                                      STRATA_TRACE_CHROME_JSON),
                   STRATA_EIO);
  assert_true(test_log_has(&m.log, "cannot write"));
  assert_int_equal(
      strata_trace_write(m.rt, in(dir, "x"), (strata_trace_format_t)7),
      STRATA_EINVAL);
  assert_int_equal(strata_trace_write(m.rt, NULL, STRATA_TRACE_SVG),
                   STRATA_EINVAL);
  test_sim_destroy(&m);
}

int main(void) {
  test_tmpdir(dir, sizeof dir, "trace");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_trace_off_by_default),
      cmocka_unit_test(test_trace_json_and_svg),
      cmocka_unit_test(test_trace_many_thin_slices),
      cmocka_unit_test(test_trace_full_counts_drops),
      cmocka_unit_test(test_trace_errors),
  };
  return test_run_group(tests, sizeof tests / sizeof *tests, dir);
}
