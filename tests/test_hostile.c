/* SPDX-License-Identifier: MIT */
/* tests/test_hostile.c: policies written to break the runtime. Every
 * script of tests/policies/ says in its first lines what must happen:
 *   -- expect: refused    it does not load: creation fails, STRATA_EPOLICY
 *   -- expect: fallback   it loads; its hooks fail, the default decides
 *   -- expect: completes  its answers are valid, yet the job must finish
 *   -- log: TEXT          a line of the log contains TEXT
 * and for each the job's results must be right, the run bounded in time,
 * and the failure logged once, not once per task. Then: probation (a
 * failing hook is left alone for a growing period, a reload forgives it),
 * a hook stalled in C work does not stop other submitting threads, and a
 * memory-bomb policy does not make a job slow. */
#include "config.h"

#include "dag.h"
#include "util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WORDS 128
#define BUF_BYTES (WORDS * sizeof(uint64_t))
#define NBUF 8
#define ROUNDS 4
/* policy_time_ms in these tests: short, but far above what a hook that
 * does not stall needs on a loaded machine under a sanitizer. */
#define TIME_MS 100
#define SCRIPT_BOUND 10 /* seconds one hostile script may cost, at most */

static char tmpdir[256];

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* host CPUs + a 64 KiB HBM card + a 2 KiB GDDR card (so that a job on it
 * evicts, and the evict hook runs). */
static const char *machine(void) {
  return test_write_file(
      tmpdir, "hostile-machine.lua",
      "return { devices = {\n" TEST_SIM_DEV("hbm", "H", "64 * KiB", "")
          TEST_SIM_DEV("gddr", "G", "2 * KiB", "") "} }\n");
}

typedef struct job {
  test_sim_rt_t s;
  strata_kernel_t k;
  uint64_t data[NBUF][WORDS];
  strata_buffer_t b[NBUF];
} job_t;

static int fill_kernel(const strata_kernel_call_t *c) {
  for (uint32_t i = 0; i < c->nbuffers; i++)
    if (c->modes[i] & STRATA_W)
      ((uint64_t *)c->buffers[i])[0]++;
  return 0;
}

static void job_opts(job_t *j, const char *policy) {
  test_sim_opts(&j->s, "cpu,sim", machine(), 1);
  j->s.o.policy = policy;
  j->s.o.health_period_ms = -1;
  j->s.o.pinned_bytes = 64 * 1024;
  j->s.o.policy_time_ms = TIME_MS;
}

/* Register the buffers (tagging them: the cache hook runs). */
static void job_start(job_t *j) {
  test_sim_create(&j->s);
  j->k = test_register_cpu(j->s.rt, "fill", fill_kernel);
  memset(j->data, 0, sizeof j->data);
  for (int i = 0; i < NBUF; i++) {
    assert_int_equal(
        strata_buffer_register(j->s.rt, j->data[i], BUF_BYTES, &j->b[i]), 0);
    assert_int_equal(strata_buffer_set_tag(j->s.rt, j->b[i], "shard"), 0);
  }
}

/* `rounds` tasks on every buffer, submitted in one go, then waited. */
static void job_run(job_t *j, int rounds, const char *tier) {
  strata_task_t *t = calloc((size_t)rounds * NBUF, sizeof *t);
  assert_non_null(t);
  for (int r = 0; r < rounds; r++)
    for (int i = 0; i < NBUF; i++) {
      strata_task_t *x = &t[r * NBUF + i];
      assert_int_equal(strata_task_create(j->s.rt, j->k, x), 0);
      assert_int_equal(strata_task_access(j->s.rt, *x, j->b[i], STRATA_RW), 0);
      if (tier)
        assert_int_equal(strata_task_set_attr(j->s.rt, *x, "tier", tier), 0);
      assert_int_equal(strata_task_submit(j->s.rt, *x), 0);
    }
  for (int n = 0; n < rounds * NBUF; n++) {
    assert_int_equal(strata_task_wait(j->s.rt, t[n]), 0);
    assert_int_equal(strata_task_release(j->s.rt, t[n]), 0);
  }
  free(t);
}

/* Unregister (the data comes home) and check every task ran. */
static void job_stop(job_t *j, uint64_t expect) {
  for (int i = 0; i < NBUF; i++)
    assert_int_equal(strata_buffer_unregister(j->s.rt, j->b[i]), 0);
  test_sim_destroy(&j->s);
  for (int i = 0; i < NBUF; i++)
    assert_int_equal(j->data[i][0], expect);
}

static strata_policy_stats_t stats(job_t *j) {
  strata_policy_stats_t s = {.struct_size = sizeof s};
  assert_int_equal(strata_policy_stats(j->s.rt, &s), 0);
  return s;
}

/* {=== The corpus ===} */

typedef struct expectation {
  bool refused, fallback;
  char log[256];
} expectation_t;

/* Read "-- expect:" and "-- log:" from the script's first lines. */
static expectation_t expectation_of(const char *path) {
  expectation_t e = {0};
  bool said = false;
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char line[256];
  while (fgets(line, sizeof line, f) && !strncmp(line, "--", 2)) {
    line[strcspn(line, "\n")] = '\0';
    if (!strncmp(line, "-- expect: ", 11)) {
      e.refused = !strcmp(line + 11, "refused");
      e.fallback = !strcmp(line + 11, "fallback");
      said = e.refused || e.fallback || !strcmp(line + 11, "completes");
    } else if (!strncmp(line, "-- log: ", 8)) {
      snprintf(e.log, sizeof e.log, "%s", line + 8);
    }
  }
  fclose(f);
  if (!said || !e.log[0])
    fail_msg("%s: no '-- expect:' and '-- log:' lines", path);
  return e;
}

static void run_refused(const char *path, const expectation_t *e) {
  job_t j;
  job_opts(&j, path);
  double t0 = now_s();
  strata_runtime_t *rt = NULL;
  int rc = strata_runtime_create(&j.s.o, &rt);
  double took = now_s() - t0;
  if (rc != STRATA_EPOLICY)
    fail_msg("%s: creation gave %s, expected STRATA_EPOLICY\n%s", path,
             strata_err_name(rc), j.s.log.text);
  if (!test_log_has(&j.s.log, e->log))
    fail_msg("%s: the log lacks '%s':\n%s", path, e->log, j.s.log.text);
  if (took > SCRIPT_BOUND)
    fail_msg("%s: refused after %.1f s", path, took);
  test_alloc_assert_clean(&j.s.alloc);
}

static void run_fallback(const char *path, const expectation_t *e) {
  job_t j;
  job_opts(&j, path);
  double t0 = now_s();
  job_start(&j);
  job_run(&j, ROUNDS, "train");
  strata_policy_stats_t s = stats(&j);
  if (e->fallback && s.fallbacks < 1)
    fail_msg("%s: no decision fell back to the default\n%s", path,
             j.s.log.text);
  if (!test_log_has(&j.s.log, e->log))
    fail_msg("%s: the log lacks '%s':\n%s", path, e->log, j.s.log.text);
  /* Once per distinct message and hook, and one probation line: never
   * once per task. */
  if (j.s.log.count[STRATA_LOG_WARN] > 4)
    fail_msg("%s: %u warnings for %d tasks:\n%s", path,
             j.s.log.count[STRATA_LOG_WARN], ROUNDS * NBUF, j.s.log.text);
  job_stop(&j, ROUNDS);
  double took = now_s() - t0;
  if (took > SCRIPT_BOUND)
    fail_msg("%s: the job took %.1f s", path, took);
}

static int by_name(const void *a, const void *b) { return strcmp(a, b); }

static void test_hostile_corpus(void **state) {
  (void)state;
  const char *dir = test_env("STRATA_TEST_POLICIES");
  DIR *d = opendir(dir);
  assert_non_null(d);
  static char names[256][256]; /* static: a failure jumps out */
  size_t n = 0;
  for (struct dirent *de; (de = readdir(d)) && n < 256;)
    if (strstr(de->d_name, ".lua"))
      snprintf(names[n++], sizeof names[0], "%s", de->d_name);
  closedir(d);
  assert_true(n >= 30);
  qsort(names, n, sizeof *names, by_name);
  for (size_t i = 0; i < n; i++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%.255s", dir, names[i]);
    expectation_t e = expectation_of(path);
    if (e.refused)
      run_refused(path, &e);
    else
      run_fallback(path, &e);
  }
}

/* {=== Probation ===} */

/* Fails its first `fails` calls, then places on the CPU. */
static const char *failing_policy(int fails) {
  char text[256];
  snprintf(text, sizeof text,
           "local calls = 0\n"
           "function place(task, m)\n"
           "  calls = calls + 1\n"
           "  if calls <= %d then error('not yet') end\n"
           "  return 'cpu'\n"
           "end\n",
           fails);
  return test_write_file(tmpdir, "failing.lua", text);
}

static void test_hostile_probation(void **state) {
  (void)state;
  job_t j;
  job_opts(&j, failing_policy(1000000));
  job_start(&j);
  /* Three failures in a row, then 10 ms without calling the hook: a
   * round of 8 tasks takes far less. */
  job_run(&j, 1, NULL);
  strata_policy_stats_t s = stats(&j);
  assert_int_equal(s.probations, 1);
  assert_int_equal(s.fallbacks + s.skipped, NBUF);
  assert_true(s.skipped >= 1);
  assert_true(test_log_has(&j.s.log, "failed 3 times in a row"));
  /* Each failed trial puts it back, for longer: 10, 20, 40 ms... */
  uint64_t before = s.probations;
  for (int trial = 0; trial < 3; trial++) {
    test_sleep_ms(10u << trial);
    job_run(&j, 1, NULL);
  }
  s = stats(&j);
  assert_true(s.probations > before);
  assert_true(s.probations <= before + 3);
  /* One log line for the probation, however often. */
  test_log_clear(&j.s.log);
  test_sleep_ms(100);
  job_run(&j, 1, NULL);
  assert_false(test_log_has(&j.s.log, "in a row"));
  /* A reload forgives: the next task calls the hook again. */
  uint64_t fallbacks = stats(&j).fallbacks;
  assert_int_equal(strata_policy_reload(j.s.rt, NULL), 0);
  job_run(&j, 1, NULL);
  assert_true(stats(&j).fallbacks >= fallbacks + 3);
  job_stop(&j, 6);
}

static void test_hostile_probation_ends_on_success(void **state) {
  (void)state;
  job_t j;
  job_opts(&j, failing_policy(3));
  j.s.o.record_decisions = 1;
  job_start(&j);
  job_run(&j, 1, NULL);
  assert_int_equal(stats(&j).probations, 1);
  /* After the period, a trial that succeeds ends the probation: the
   * hook decides every task from then on. */
  test_sleep_ms(15);
  uint64_t skipped = stats(&j).skipped;
  job_run(&j, 2, NULL);
  strata_policy_stats_t s = stats(&j);
  assert_int_equal(s.skipped, skipped);
  assert_int_equal(s.fallbacks, 3);
  assert_int_equal(s.probations, 1);
  job_stop(&j, 3);
}

/* {=== A stalled hook and the other submitting threads ===} */

typedef struct submitter {
  job_t *j;
  const char *tier;
  int first; /* buffers first, first + 1, first + 2, first + 3 */
  double worst;
} submitter_t;

static void *submit_loop(void *arg) {
  submitter_t *s = arg;
  for (int r = 0; r < 5; r++)
    for (int i = s->first; i < s->first + NBUF / 2; i++) {
      strata_task_t t;
      double t0 = now_s();
      assert_int_equal(strata_task_create(s->j->s.rt, s->j->k, &t), 0);
      assert_int_equal(strata_task_access(s->j->s.rt, t, s->j->b[i], STRATA_RW),
                       0);
      assert_int_equal(strata_task_set_attr(s->j->s.rt, t, "tier", s->tier), 0);
      assert_int_equal(strata_task_submit(s->j->s.rt, t), 0);
      double took = now_s() - t0;
      if (took > s->worst)
        s->worst = took;
      assert_int_equal(strata_task_wait(s->j->s.rt, t), 0);
      assert_int_equal(strata_task_release(s->j->s.rt, t), 0);
    }
  return NULL;
}

static void test_hostile_stall_spares_other_threads(void **state) {
  (void)state;
  /* The stall is work in C (a megabyte per string.rep): only the wall
   * clock can end it, since the instruction budget here is huge. */
  job_t j;
  job_opts(&j, test_write_file(tmpdir, "stall.lua",
                               "function place(task, m)\n"
                               "  if task.tier == 'stall' then\n"
                               "    while true do\n"
                               "      local s = string.rep('x', 1 << 19)\n"
                               "    end\n"
                               "  end\n"
                               "  return 'cpu'\n"
                               "end\n"));
  j.s.o.policy_budget = UINT64_C(1) << 50;
  job_start(&j);
  submitter_t a = {&j, "stall", 0, 0}, b = {&j, "quick", NBUF / 2, 0};
  pthread_t ta, tb;
  double t0 = now_s();
  assert_int_equal(pthread_create(&ta, NULL, submit_loop, &a), 0);
  assert_int_equal(pthread_create(&tb, NULL, submit_loop, &b), 0);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  double took = now_s() - t0;
  /* One call lasts at most the time limit (100 ms), and a thread waits at
   * most that long for the engine: far below these bounds, which only a
   * stall without end exceeds. */
  if (a.worst > 2.0 || b.worst > 2.0 || took > SCRIPT_BOUND)
    fail_msg("submit took up to %.3f s (stalling) and %.3f s (quick), "
             "%.1f s in all",
             a.worst, b.worst, took);
  if (!test_log_has(&j.s.log, "time limit"))
    fail_msg("no time limit in the log:\n%s", j.s.log.text);
  job_stop(&j, 5);
}

/* {=== A memory bomb does not make the job slow ===} */

static void test_hostile_memory_bomb_job_time(void **state) {
  (void)state;
  job_t j;
  job_opts(&j,
           test_write_file(tmpdir, "bomb.lua",
                           "local keep = {}\n"
                           "function place(task, m)\n"
                           "  while true do\n"
                           "    keep[#keep + 1] = string.rep('x', 1 << 16)\n"
                           "      .. #keep\n"
                           "  end\n"
                           "end\n"));
  double t0 = now_s();
  job_start(&j);
  job_run(&j, 40, NULL); /* 320 tasks */
  double took = now_s() - t0;
  /* Each failing call fills 16 MiB; probation keeps the number of such
   * calls to a handful, where once every task made one (minutes). */
  strata_policy_stats_t s = stats(&j);
  if (s.fallbacks > 40 || took > 5.0)
    fail_msg("%llu failing calls, %.2f s for 320 tasks",
             (unsigned long long)s.fallbacks, took);
  job_stop(&j, 40);
}

/* {=== Input files that are not regular files ===} */

/* A FIFO or a directory named as the performance-model file or the
 * topology: refused at once with its own message, never read (a FIFO
 * nobody writes to would block creation forever). */
static void test_hostile_input_files(void **state) {
  (void)state;
  char fifo[512];
  snprintf(fifo, sizeof fifo, "%s/fifo", tmpdir);
  assert_int_equal(mkfifo(fifo, 0600), 0);
  const char *const paths[] = {fifo, tmpdir};
  const char *const said[] = {"not a regular file (a FIFO)", "is a directory"};
  for (int i = 0; i < 2; i++) {
    job_t j;
    job_opts(&j, "");
    j.s.o.perf_models = paths[i];
    double t0 = now_s();
    job_start(&j); /* the models start empty: creation succeeds */
    assert_true(now_s() - t0 < SCRIPT_BOUND);
    if (!test_log_has(&j.s.log, said[i]))
      fail_msg("perf models %s: the log lacks '%s':\n%s", paths[i], said[i],
               j.s.log.text);
    job_run(&j, 1, NULL);
    job_stop(&j, 1);
    /* Nor is it replaced by the models saved at destruction. */
    struct stat st;
    assert_int_equal(stat(paths[i], &st), 0);
    assert_true(i == 0 ? S_ISFIFO(st.st_mode) : S_ISDIR(st.st_mode));

    strata_runtime_opts_t o;
    static test_log_t log;
    test_log_init(&log);
    test_opts(&o, 1, &log);
    o.topology_xml = paths[i];
    strata_runtime_t *rt;
    t0 = now_s();
    assert_int_equal(strata_runtime_create(&o, &rt), STRATA_ETOPOLOGY);
    assert_true(now_s() - t0 < SCRIPT_BOUND);
    if (!test_log_has(&log, said[i]))
      fail_msg("topology %s: the log lacks '%s':\n%s", paths[i], said[i],
               log.text);
  }
  unlink(fifo);
}

int main(void) {
  test_tmpdir(tmpdir, sizeof tmpdir, "hostile");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hostile_corpus),
      cmocka_unit_test(test_hostile_probation),
      cmocka_unit_test(test_hostile_probation_ends_on_success),
      cmocka_unit_test(test_hostile_stall_spares_other_threads),
      cmocka_unit_test(test_hostile_memory_bomb_job_time),
      cmocka_unit_test(test_hostile_input_files),
  };
  return test_run_group(tests, sizeof tests / sizeof *tests, tmpdir);
}
