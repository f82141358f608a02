/* SPDX-License-Identifier: MIT */
/* tests/util.c: shared test helpers (see util.h). */
#include "config.h"

#include "util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HDR 16 /* keeps blocks 16-byte aligned */

void test_alloc_init(test_alloc_t *a) {
  memset(a, 0, sizeof *a);
  pthread_mutex_init(&a->mu, NULL);
  a->fail_after = -1;
}

static bool should_fail(test_alloc_t *a, size_t grow) {
  a->calls++;
  if (a->fail_after == 0)
    return true;
  if (a->fail_after > 0 && --a->fail_after == 0) {
    a->fail_after = -1;
    return true;
  }
  return a->cap_bytes && a->live_bytes + grow > a->cap_bytes;
}

void *test_alloc_fn(void *ud, void *ptr, size_t osize, size_t nsize) {
  test_alloc_t *a = ud;
  pthread_mutex_lock(&a->mu);
  unsigned char *blk = ptr ? (unsigned char *)ptr - HDR : NULL;
  if (blk && *(size_t *)blk != osize)
    a->bad_sizes++;
  void *out = NULL;
  if (nsize == 0) {
    if (blk) {
      a->live_blocks--;
      a->live_bytes -= *(size_t *)blk;
      free(blk);
    }
  } else if (!should_fail(a, nsize > osize ? nsize - osize : 0)) {
    if (!ptr && nsize == a->watch_size)
      a->watch_allocs++;
    size_t old = blk ? *(size_t *)blk : 0;
    unsigned char *nb = realloc(blk, nsize + HDR);
    if (nb) {
      *(size_t *)nb = nsize;
      if (!blk)
        a->live_blocks++;
      a->live_bytes += nsize - old;
      if (a->live_bytes > a->peak_bytes)
        a->peak_bytes = a->live_bytes;
      out = nb + HDR;
    }
  }
  pthread_mutex_unlock(&a->mu);
  return out;
}

void test_alloc_assert_clean(test_alloc_t *a) {
  assert_int_equal(a->bad_sizes, 0);
  assert_int_equal(a->live_blocks, 0);
  assert_int_equal(a->live_bytes, 0);
}

void test_log_init(test_log_t *l) {
  memset(l, 0, sizeof *l);
  pthread_mutex_init(&l->mu, NULL);
}

void test_log_fn(void *ud, strata_log_level_t level, const char *component,
                 const char *msg) {
  test_log_t *l = ud;
  static const char *names[] = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE"};
  pthread_mutex_lock(&l->mu);
  l->count[level]++;
  int n = snprintf(l->text + l->len, sizeof l->text - l->len, "[%s] %s: %s\n",
                   names[level], component, msg);
  if (n > 0 && l->len + (size_t)n < sizeof l->text)
    l->len += (size_t)n;
  pthread_mutex_unlock(&l->mu);
  if (getenv("STRATA_TEST_VERBOSE"))
    fprintf(stderr, "# [%s] %s: %s\n", names[level], component, msg);
}

bool test_log_has(test_log_t *l, const char *needle) {
  pthread_mutex_lock(&l->mu);
  bool has = strstr(l->text, needle) != NULL;
  pthread_mutex_unlock(&l->mu);
  return has;
}

static test_log_t *watched_log;

static void on_alarm(int sig) {
  (void)sig;
  static const char msg[] = "watchdog: the test hangs; its log:\n";
  if (write(2, msg, sizeof msg - 1) < 0 ||
      (watched_log && write(2, watched_log->text, watched_log->len) < 0))
    _exit(2);
  _exit(1);
}

void test_watchdog(test_log_t *log, unsigned s) {
  watched_log = log;
  signal(SIGALRM, on_alarm);
  alarm(s);
}

void test_watchdog_off(void) {
  alarm(0);
  watched_log = NULL;
}

void test_log_clear(test_log_t *l) {
  pthread_mutex_lock(&l->mu);
  l->len = 0;
  l->text[0] = '\0';
  memset(l->count, 0, sizeof l->count);
  pthread_mutex_unlock(&l->mu);
}

const char *test_env(const char *name) {
  const char *v = getenv(name);
  if (!v)
    fail_msg("%s is not set: run the tests through make check", name);
  return v;
}

void test_opts(strata_runtime_opts_t *o, unsigned workers, test_log_t *log) {
  strata_runtime_opts_init(o);
  o->backend_path = test_env("STRATA_TEST_BACKENDS");
  o->backends = "cpu";
  o->required_backends = "cpu";
  o->cpu_workers = workers;
  if (log) {
    o->log = test_log_fn;
    o->log_ud = log;
    o->log_level = STRATA_LOG_DEBUG;
  }
}

strata_runtime_t *test_runtime(unsigned workers, test_log_t *log) {
  strata_runtime_opts_t o;
  test_opts(&o, workers, log);
  strata_runtime_t *rt = NULL;
  assert_int_equal(strata_runtime_create(&o, &rt), STRATA_OK);
  assert_non_null(rt);
  return rt;
}

const char *test_path2(const char *a, const char *b) {
  static char buf[8192];
  snprintf(buf, sizeof buf, "%s:%s", a, b);
  return buf;
}

void test_sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

void test_tmpdir(char *buf, size_t len, const char *tag) {
  const char *tmp = getenv("TMPDIR");
  snprintf(buf, len, "%s/strata-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", tag);
  if (!mkdtemp(buf))
    fail_msg("mkdtemp %s failed", buf);
}

void test_tmpdir_remove(const char *dir) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", dir);
}

const char *test_write_file(const char *dir, const char *name,
                            const char *text) {
  /* A few buffers in turn, so that two paths can be used together. */
  static char paths[4][1024];
  static unsigned next;
  char *path = paths[next++ % 4];
  snprintf(path, sizeof paths[0], "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  if (!f)
    fail_msg("cannot write %s", path);
  fputs(text, f);
  fclose(f);
  return path;
}

/* {=== Runtimes on simulated devices ===} */

void test_sim_opts(test_sim_rt_t *m, const char *backends, const char *machine,
                   unsigned cpu_workers) {
  test_alloc_init(&m->alloc);
  test_log_init(&m->log);
  test_opts(&m->o, cpu_workers, &m->log);
  m->o.backends = backends;
  m->o.required_backends = "sim";
  snprintf(m->options, sizeof m->options, "sim:machine=%s", machine);
  m->o.backend_options = m->options;
  m->o.alloc = test_alloc_fn;
  m->o.alloc_ud = &m->alloc;
}

void test_sim_create(test_sim_rt_t *m) {
  int rc = strata_runtime_create(&m->o, &m->rt);
  if (rc)
    fail_msg("create: %s\n%s", strata_strerror(rc), m->log.text);
}

void test_sim_start(test_sim_rt_t *m, const char *backends, const char *machine,
                    unsigned cpu_workers) {
  test_sim_opts(m, backends, machine, cpu_workers);
  test_sim_create(m);
}

void test_sim_destroy(test_sim_rt_t *m) {
  assert_int_equal(strata_runtime_destroy(m->rt), 0);
  test_alloc_assert_clean(&m->alloc);
}

int test_device_of(strata_runtime_t *rt, strata_device_class_t cls) {
  for (int d = 0; d < strata_device_count(rt); d++)
    if (test_device_info(rt, d).device_class == cls)
      return d;
  return -1;
}

int test_device_of_backend(strata_runtime_t *rt, const char *backend) {
  for (int d = 0; d < strata_device_count(rt); d++)
    if (!strcmp(test_device_info(rt, d).backend, backend))
      return d;
  return -1;
}

strata_device_info_t test_device_info(strata_runtime_t *rt, int d) {
  strata_device_info_t i = {.struct_size = sizeof i};
  assert_int_equal(strata_device_info(rt, d, &i), 0);
  return i;
}

int test_run_group(const struct CMUnitTest *tests, size_t n,
                   const char *tmpdir) {
  /* STRATA_TEST_FILTER=pattern runs only the matching tests. */
  if (getenv("STRATA_TEST_FILTER"))
    cmocka_set_test_filter(getenv("STRATA_TEST_FILTER"));
  int failed = _cmocka_run_group_tests("tests", tests, n, NULL, NULL);
  if (!failed)
    test_tmpdir_remove(tmpdir);
  return failed;
}

/* {=== Metrics text ===} */

char *test_metrics_text(strata_runtime_t *rt) {
  size_t len = 0;
  assert_int_equal(strata_metrics_format(rt, NULL, 0, &len), STRATA_ERANGE);
  char *buf = malloc(len + 4096); /* room for counts that grew since */
  assert_non_null(buf);
  assert_int_equal(strata_metrics_format(rt, buf, len + 4096, &len), 0);
  assert_int_equal(strlen(buf), len);
  return buf;
}

double test_metrics_sum(const char *text, const char *family,
                        const char *const *with, unsigned *lines) {
  double total = 0;
  unsigned found = 0;
  size_t flen = strlen(family);
  for (const char *line = text; *line;) {
    const char *end = strchr(line, '\n');
    assert_non_null(end);
    if (!strncmp(line, family, flen) &&
        (line[flen] == '{' || line[flen] == ' ')) {
      bool all = true;
      for (unsigned w = 0; with && with[w]; w++) {
        const char *hit = strstr(line, with[w]);
        all = all && hit && hit < end;
      }
      const char *value = end;
      while (value > line && value[-1] != ' ')
        value--;
      if (all) {
        total += strtod(value, NULL);
        found++;
      }
    }
    line = end + 1;
  }
  if (lines)
    *lines = found;
  return total;
}
