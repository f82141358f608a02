/* SPDX-License-Identifier: MIT */
/* tests/test_metrics.c: the metrics registry and its exposition
 * (strata/metrics.h) on the CPU and the two simulated cards: the text
 * format's rules (HELP and TYPE once per family, families contiguous,
 * label values escaped, a trailing newline, no timestamps), the counts
 * adding up to what ran, counters under concurrent submitters and
 * scrapes, the buffer call's sizes, the textfile mode (atomic, a last
 * write at stop, a directory that cannot be written, one that goes away
 * and comes back while it runs), the stats reader, and the HTTP
 * endpoint (GET /metrics, 404, 405, loopback by default, bad addresses,
 * one endpoint at a time); health alerts (a simulated card at 90 degrees
 * raises one, the default policy drains it, the alert clears below the
 * threshold minus the hysteresis and work comes back, a reading hovering
 * at the threshold raises it once) and per-class thresholds. */
#include "config.h"

#include "dag.h"
#include "util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[512];

static const char *machine(void) {
  static char path[1024];
  snprintf(path, sizeof path, "%s/mixed.lua", test_env("STRATA_TEST_MACHINES"));
  return path;
}

static int noop(const strata_kernel_call_t *c) {
  (void)c;
  return 0;
}

static strata_kernel_t noop_kernel(strata_runtime_t *rt) {
  strata_kernel_t k;
  if (strata_kernel_find(rt, "noop", &k))
    k = test_register_cpu(rt, "noop", noop);
  return k;
}

/* n buffer-less tasks of `tier` (NULL: none) in job j. */
static void submit(strata_runtime_t *rt, strata_job_t j, const char *tier,
                   unsigned n) {
  strata_kernel_t k = noop_kernel(rt);
  strata_attr_desc_t attr = {"tier", tier, 0};
  for (unsigned i = 0; i < n; i++) {
    strata_task_desc_t d = {.struct_size = sizeof d,
                            .kernel = k,
                            .attrs = tier ? &attr : NULL,
                            .nattrs = tier ? 1 : 0,
                            .job = j};
    assert_int_equal(strata_task_insert(rt, &d, NULL), 0);
  }
}

/* The text now, and the sum of a family's samples (tests/util.h). */
#define text_of test_metrics_text
#define sum_of(text, family, with) test_metrics_sum(text, family, with, NULL)

/* The exposition format's rules, line by line: each family's HELP then
 * TYPE once, its samples right after, never reopened; a sample's name is
 * its family's (plus _bucket, _sum, _count for histograms); a value and
 * no timestamp; the text ends with a newline. */
static void assert_well_formed(const char *text) {
  size_t len = strlen(text);
  assert_true(len > 0 && text[len - 1] == '\n');
  char seen[200][96];
  unsigned nseen = 0;
  char family[96] = "", type[16] = "";
  for (const char *line = text; *line;) {
    const char *end = strchr(line, '\n');
    char l[1024];
    size_t n = (size_t)(end - line);
    assert_true(n < sizeof l);
    memcpy(l, line, n);
    l[n] = '\0';
    if (!strncmp(l, "# HELP ", 7)) {
      char name[96];
      assert_int_equal(sscanf(l + 7, "%95s", name), 1);
      for (unsigned s = 0; s < nseen; s++)
        if (!strcmp(seen[s], name))
          fail_msg("family %s opened twice", name);
      assert_true(nseen < 200);
      snprintf(seen[nseen++], sizeof seen[0], "%s", name);
      snprintf(family, sizeof family, "%s", name);
      type[0] = '\0';
    } else if (!strncmp(l, "# TYPE ", 7)) {
      char name[96];
      assert_int_equal(sscanf(l + 7, "%95s %15s", name, type), 2);
      assert_string_equal(name, family);
      assert_true(!strcmp(type, "counter") || !strcmp(type, "gauge") ||
                  !strcmp(type, "histogram"));
      if (!strcmp(type, "counter"))
        assert_non_null(strstr(family, "_total"));
    } else {
      assert_true(type[0]); /* a sample after its family's TYPE */
      size_t fl = strlen(family);
      assert_int_equal(strncmp(l, family, fl), 0);
      const char *rest = l + fl;
      static const char *const sufs[] = {"_bucket", "_sum", "_count"};
      for (size_t i = 0; !strcmp(type, "histogram") && i < 3; i++)
        if (!strncmp(rest, sufs[i], strlen(sufs[i]))) {
          rest += strlen(sufs[i]);
          break;
        }
      assert_true(*rest == '{' || *rest == ' ');
      /* After the labels (quotes balanced, escapes skipped): one value. */
      const char *p = rest;
      if (*p == '{') {
        bool quoted = false;
        for (p++; *p && (quoted || *p != '}'); p++) {
          if (quoted && *p == '\\')
            p++;
          else if (*p == '"')
            quoted = !quoted;
        }
        assert_int_equal(*p, '}');
        p++;
      }
      assert_int_equal(*p, ' ');
      char *after;
      const char *v = p + 1;
      if (strcmp(v, "NaN") && strcmp(v, "+Inf") && strcmp(v, "-Inf")) {
        (void)strtod(v, &after);
        assert_true(after != v && *after == '\0'); /* no timestamp */
      }
    }
    line = end + 1;
  }
}

static void test_metrics_format_and_counts(void **state) {
  (void)state;
  test_sim_rt_t m;
  test_sim_start(&m, "cpu,sim", machine(), 2);
  strata_job_t j;
  assert_int_equal(strata_job_create(m.rt, &j), 0);
  const char *odd = "odd \"name\"\\ with\nnewline";
  assert_int_equal(strata_job_set_attr(m.rt, j, "name", odd), 0);
  submit(m.rt, j, "preprocess", 100);
  submit(m.rt, j, "train", 50);
  submit(m.rt, j, NULL, 25);
  assert_int_equal(strata_runtime_wait_all(m.rt), 0);

  char *text = text_of(m.rt);
  if (getenv("STRATA_TEST_PRINT"))
    fputs(text, stderr);
  assert_well_formed(text);
  assert_int_equal(sum_of(text, "strata_device_tasks_total", NULL), 175);
  const char *pre[] = {"tier=\"preprocess\"", "status=\"ok\"", NULL};
  assert_int_equal(sum_of(text, "strata_device_tasks_total", pre), 100);
  /* The default policy runs preprocessing on the CPUs, training on HBM. */
  const char *pre_cpu[] = {"tier=\"preprocess\"", "class=\"cpu\"", NULL};
  assert_int_equal(sum_of(text, "strata_device_tasks_total", pre_cpu), 100);
  const char *train_hbm[] = {"tier=\"train\"", "class=\"hbm\"", NULL};
  assert_int_equal(sum_of(text, "strata_device_tasks_total", train_hbm), 50);
  const char *none[] = {"tier=\"none\"", NULL};
  assert_int_equal(sum_of(text, "strata_device_tasks_total", none), 25);
  /* The job's name, escaped as a label value. */
  assert_non_null(strstr(text, "job=\"odd \\\"name\\\"\\\\ with\\nnewline\""));
  const char *done[] = {"state=\"succeeded\"", NULL};
  assert_int_equal(sum_of(text, "strata_job_tasks", done), 175);
  /* Every device is there with its class and model (the machine's CPUs
   * and mixed.lua's three); health on the sims. */
  assert_int_equal(sum_of(text, "strata_device_info", NULL), 4);
  const char *hbm[] = {"device=\"hbm0\"", NULL};
  assert_int_equal(sum_of(text, "strata_device_temperature_celsius", hbm), 45);
  assert_non_null(strstr(text, "# TYPE strata_policy_decision_seconds "
                               "histogram\n"));
  assert_non_null(strstr(text, "strata_policy_decision_seconds_bucket{"));
  /* Nothing raised. */
  assert_int_equal(sum_of(text, "strata_alerts_raised_total", NULL), 0);

  /* The buffer call: too small says how much; the FILE call writes the
   * same text (nothing runs, the sims' readings are constant). */
  size_t len = 0;
  char small[16];
  assert_int_equal(strata_metrics_format(m.rt, small, sizeof small, &len),
                   STRATA_ERANGE);
  assert_int_equal(len, strlen(text));
  char *exact = malloc(len + 1);
  assert_int_equal(strata_metrics_format(m.rt, exact, len + 1, NULL), 0);
  assert_string_equal(exact, text);
  FILE *f = tmpfile();
  assert_non_null(f);
  assert_int_equal(strata_metrics_write(m.rt, f), 0);
  assert_int_equal(ftell(f), (long)len);
  fclose(f);
  assert_int_equal(strata_metrics_format(NULL, exact, len, NULL),
                   STRATA_EINVAL);
  assert_int_equal(strata_metrics_format(m.rt, NULL, 5, NULL), STRATA_EINVAL);
  assert_int_equal(strata_metrics_write(m.rt, NULL), STRATA_EINVAL);
  free(exact);
  free(text);
  assert_int_equal(strata_job_release(m.rt, j), 0);
  test_sim_destroy(&m);
}

/* {=== Counters under concurrent updates ===} */

typedef struct submitter {
  strata_runtime_t *rt;
  const char *tier;
} submitter_t;

#define SUBMITTERS 4
#define PER_SUBMITTER 3000

static void *submit_main(void *arg) {
  submitter_t *s = arg;
  submit(s->rt, (strata_job_t)STRATA_NONE, s->tier, PER_SUBMITTER);
  return NULL;
}

static void test_metrics_concurrent_updates(void **state) {
  (void)state;
  test_sim_rt_t m;
  test_sim_start(&m, "cpu,sim", machine(), 2);
  noop_kernel(m.rt);
  const char *tiers[SUBMITTERS] = {"preprocess", "train", "validate", NULL};
  submitter_t s[SUBMITTERS];
  pthread_t th[SUBMITTERS];
  for (int i = 0; i < SUBMITTERS; i++) {
    s[i] = (submitter_t){m.rt, tiers[i]};
    assert_int_equal(pthread_create(&th[i], NULL, submit_main, &s[i]), 0);
  }
  /* Scrapes while the tasks run: every count only grows. */
  double last = 0;
  for (int scrape = 0; scrape < 50; scrape++) {
    char *text = text_of(m.rt);
    double now = sum_of(text, "strata_device_tasks_total", NULL);
    assert_true(now >= last);
    last = now;
    free(text);
  }
  for (int i = 0; i < SUBMITTERS; i++)
    pthread_join(th[i], NULL);
  assert_int_equal(strata_runtime_wait_all(m.rt), 0);
  char *text = text_of(m.rt);
  assert_well_formed(text);
  assert_int_equal(sum_of(text, "strata_device_tasks_total", NULL),
                   SUBMITTERS * PER_SUBMITTER);
  for (int i = 0; i < SUBMITTERS; i++) {
    char want[64];
    snprintf(want, sizeof want, "tier=\"%s\"", tiers[i] ? tiers[i] : "none");
    const char *with[] = {want, NULL};
    assert_int_equal(sum_of(text, "strata_device_tasks_total", with),
                     PER_SUBMITTER);
  }
  free(text);
  test_sim_destroy(&m);
}

/* {=== The textfile mode ===} */

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  char *s = malloc(1 << 20);
  size_t n = fread(s, 1, (1 << 20) - 1, f);
  s[n] = '\0';
  fclose(f);
  return s;
}

/* Files in d other than strata.prom (temporary files left behind). */
static unsigned strays(const char *d) {
  DIR *dp = opendir(d);
  assert_non_null(dp);
  unsigned n = 0;
  for (struct dirent *e; (e = readdir(dp));)
    n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
         strcmp(e->d_name, "strata.prom");
  closedir(dp);
  return n;
}

static void test_metrics_textfile(void **state) {
  (void)state;
  char tdir[600], path[700];
  snprintf(tdir, sizeof tdir, "%s/textfile", dir);
  assert_int_equal(mkdir(tdir, 0755), 0);
  snprintf(path, sizeof path, "%s/strata.prom", tdir);
  test_sim_rt_t m;
  test_sim_start(&m, "cpu,sim", machine(), 2);
  assert_int_equal(strata_metrics_textfile(m.rt, tdir, 20), 0);
  /* Written at once, readable by others, and not twice at a time. */
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0644);
  assert_int_equal(strata_metrics_textfile(m.rt, tdir, 20), STRATA_EBUSY);
  submit(m.rt, (strata_job_t)STRATA_NONE, "train", 40);
  assert_int_equal(strata_runtime_wait_all(m.rt), 0);
  test_sleep_ms(100); /* a few interval writes */
  char *text = slurp(path);
  assert_non_null(text);
  assert_well_formed(text);
  assert_int_equal(sum_of(text, "strata_device_tasks_total", NULL), 40);
  free(text);
  /* Stopping writes a last file with what ran since. */
  submit(m.rt, (strata_job_t)STRATA_NONE, "train", 2);
  assert_int_equal(strata_runtime_wait_all(m.rt), 0);
  assert_int_equal(strata_metrics_stop(m.rt), 0);
  text = slurp(path);
  assert_int_equal(sum_of(text, "strata_device_tasks_total", NULL), 42);
  free(text);
  assert_int_equal(strays(tdir), 0);

  /* A directory that does not exist: refused, nothing started. */
  char missing[700];
  snprintf(missing, sizeof missing, "%s/no/such/dir", dir);
  assert_int_equal(strata_metrics_textfile(m.rt, missing, 20), STRATA_EIO);
  assert_true(test_log_has(&m.log, "No such file or directory"));
  assert_int_equal(strata_metrics_textfile(m.rt, NULL, 20), STRATA_EINVAL);
  assert_int_equal(strata_metrics_textfile(m.rt, tdir, -1), STRATA_EINVAL);
  /* Started again, and written at destruction with the final counts. */
  assert_int_equal(strata_metrics_textfile(m.rt, tdir, 60000), 0);
  submit(m.rt, (strata_job_t)STRATA_NONE, "train", 3);
  test_sim_destroy(&m);
  text = slurp(path);
  assert_int_equal(sum_of(text, "strata_device_tasks_total", NULL), 45);
  free(text);
  assert_int_equal(strays(tdir), 0);
}

/* How often `needle` is in the captured log. */
static unsigned log_count(test_log_t *log, const char *needle) {
  unsigned n = 0;
  pthread_mutex_lock(&log->mu);
  for (const char *p = log->text; (p = strstr(p, needle)); p++)
    n++;
  pthread_mutex_unlock(&log->mu);
  return n;
}

/* A directory that goes away while the writer runs (as a full disk would
 * fail it): each failure counted, logged once, the writes go on and come
 * back with the directory. */
static void test_metrics_textfile_failing(void **state) {
  (void)state;
  char tdir[600], gone[600];
  snprintf(tdir, sizeof tdir, "%s/failing", dir);
  snprintf(gone, sizeof gone, "%s/failing.away", dir);
  assert_int_equal(mkdir(tdir, 0755), 0);
  test_sim_rt_t m;
  test_sim_start(&m, "cpu,sim", machine(), 1);
  assert_int_equal(strata_metrics_textfile(m.rt, tdir, 10), 0);
  assert_int_equal(rename(tdir, gone), 0);
  test_sleep_ms(100);
  strata_metrics_stats_t st = {.struct_size = sizeof st};
  assert_int_equal(strata_metrics_stats(m.rt, &st), 0);
  assert_true(st.textfile_failures >= 2);
  assert_int_equal(log_count(&m.log, "the previous file stays"), 1);
  assert_int_equal(rename(gone, tdir), 0);
  test_sleep_ms(100);
  assert_true(test_log_has(&m.log, "written again"));
  assert_int_equal(strata_metrics_stats(m.rt, &st), 0);
  uint64_t writes = st.textfile_writes;
  assert_int_equal(strata_metrics_stop(m.rt), 0);
  assert_int_equal(strata_metrics_stats(m.rt, &st), 0);
  assert_true(st.textfile_writes > writes); /* the last one */
  /* The reader's own errors. */
  assert_int_equal(strata_metrics_stats(m.rt, NULL), STRATA_EINVAL);
  assert_int_equal(strata_metrics_stats(NULL, &st), STRATA_EINVAL);
  strata_metrics_stats_t tiny = {.struct_size = sizeof(size_t)};
  assert_int_equal(strata_metrics_stats(m.rt, &tiny), STRATA_EINVAL);
  test_sim_destroy(&m);
}

/* {=== The HTTP endpoint ===} */

/* Send `request` to 127.0.0.1:port, return what came back (malloc'd). */
static char *http(int port, const char *request) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  size_t n = strlen(request);
  assert_int_equal(write(fd, request, n), (ssize_t)n);
  size_t cap = 1 << 20, len = 0;
  char *out = malloc(cap);
  for (ssize_t r; (r = read(fd, out + len, cap - 1 - len)) > 0;)
    len += (size_t)r;
  out[len] = '\0';
  close(fd);
  return out;
}

static void test_metrics_http(void **state) {
  (void)state;
  test_sim_rt_t m;
  test_sim_start(&m, "cpu,sim", machine(), 2);
  assert_int_equal(strata_metrics_port(m.rt), 0);
  assert_int_equal(strata_metrics_listen(m.rt, "127.0.0.1:0"), 0);
  int port = strata_metrics_port(m.rt);
  assert_true(port > 0);
  assert_int_equal(strata_metrics_listen(m.rt, ":0"), STRATA_EBUSY);
  submit(m.rt, (strata_job_t)STRATA_NONE, "validate", 30);
  assert_int_equal(strata_runtime_wait_all(m.rt), 0);

  char *r = http(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n"
                       "Connection: close\r\n\r\n");
  assert_non_null(strstr(r, "HTTP/1.1 200"));
  assert_non_null(strstr(r, "Content-Type: text/plain; version=0.0.4; "
                            "charset=utf-8\r\n"));
  const char *body = strstr(r, "\r\n\r\n");
  assert_non_null(body);
  assert_well_formed(body + 4);
  assert_int_equal(sum_of(body + 4, "strata_device_tasks_total", NULL), 30);
  free(r);
  r = http(port, "GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  assert_non_null(strstr(r, "HTTP/1.1 404"));
  free(r);
  r = http(port, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                 "Connection: close\r\n\r\nabc");
  assert_non_null(strstr(r, "HTTP/1.1 405"));
  assert_non_null(strstr(r, "Allow: GET, HEAD"));
  free(r);
  /* The endpoint counts its scrapes. */
  char *text = text_of(m.rt);
  assert_int_equal(sum_of(text, "strata_metrics_scrapes_total", NULL), 1);
  free(text);

  assert_int_equal(strata_metrics_stop(m.rt), 0);
  assert_int_equal(strata_metrics_port(m.rt), 0);
  /* Malformed addresses; a port taken; ":PORT" means loopback. */
  const char *bad[] = {"",          "127.0.0.1:",   "127.0.0.1:70000",
                       "nohost:80", "1.2.3.4.5:80", "127.0.0.1:8x"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_int_equal(strata_metrics_listen(m.rt, bad[i]), STRATA_EINVAL);
  assert_int_equal(strata_metrics_listen(m.rt, NULL), STRATA_EINVAL);
  assert_int_equal(strata_metrics_listen(m.rt, ":0"), 0);
  port = strata_metrics_port(m.rt);
  char taken[32];
  snprintf(taken, sizeof taken, "127.0.0.1:%d", port);
  test_sim_rt_t other;
  test_sim_start(&other, "cpu,sim", machine(), 1);
  assert_int_equal(strata_metrics_listen(other.rt, taken), STRATA_EIO);
  assert_true(test_log_has(&other.log, "cannot listen"));
  test_sim_destroy(&other);
  test_sim_destroy(&m); /* the endpoint closes with the runtime */
}

/* {=== Health alerts: raised, cleared with hysteresis, per class ===} */

/* The value of family{device=dev,metric=temperature}. */
static double alert_value(strata_runtime_t *rt, const char *family,
                          const char *dev) {
  char want[64];
  snprintf(want, sizeof want, "device=\"%s\"", dev);
  const char *with[] = {want, "metric=\"temperature\"", NULL};
  char *text = text_of(rt);
  double v = sum_of(text, family, with);
  free(text);
  return v;
}

static double train_on(strata_runtime_t *rt, const char *dev) {
  char want[64];
  snprintf(want, sizeof want, "device=\"%s\"", dev);
  const char *with[] = {want, "tier=\"train\"", NULL};
  char *text = text_of(rt);
  double v = sum_of(text, "strata_device_tasks_total", with);
  free(text);
  return v;
}

static void set_temperature(test_sim_rt_t *m, int d, double c) {
  assert_int_equal(strata_device_inject(m->rt, d, "temperature", c), 0);
  assert_int_equal(strata_health_check(m->rt), 0);
}

static void test_metrics_alerts(void **state) {
  (void)state;
  test_sim_rt_t m;
  test_sim_opts(&m, "cpu,sim", machine(), 2);
  m.o.health_period_ms = -1; /* rounds only when the test asks */
  test_sim_create(&m);
  int hbm = test_device_of(m.rt, STRATA_CLASS_HBM);
  assert_true(hbm >= 0);
  assert_int_equal(alert_value(m.rt, "strata_alert_threshold", "hbm0"), 85);

  /* 90 degrees: raised (metric, log line, the policy's hook), and the
   * default policy places no training there. */
  set_temperature(&m, hbm, 90);
  assert_int_equal(alert_value(m.rt, "strata_alerts_raised_total", "hbm0"), 1);
  assert_int_equal(alert_value(m.rt, "strata_alert_active", "hbm0"), 1);
  assert_true(test_log_has(&m.log, "temperature 90.0 over 85.0: alert raised"));
  strata_policy_stats_t ps = {.struct_size = sizeof ps};
  assert_int_equal(strata_policy_stats(m.rt, &ps), 0);
  assert_int_equal(ps.alerts, 1);
  submit(m.rt, (strata_job_t)STRATA_NONE, "train", 20);
  assert_int_equal(strata_runtime_wait_all(m.rt), 0);
  assert_int_equal(train_on(m.rt, "hbm0"), 0);

  /* 82: below the threshold, not below it minus the hysteresis (80). */
  set_temperature(&m, hbm, 82);
  assert_int_equal(alert_value(m.rt, "strata_alert_active", "hbm0"), 1);
  assert_int_equal(alert_value(m.rt, "strata_alerts_cleared_total", "hbm0"), 0);
  /* 79: cleared (metric, log line, alert_cleared), work comes back. */
  set_temperature(&m, hbm, 79);
  assert_int_equal(alert_value(m.rt, "strata_alert_active", "hbm0"), 0);
  assert_int_equal(alert_value(m.rt, "strata_alerts_cleared_total", "hbm0"), 1);
  assert_true(test_log_has(&m.log, "temperature 79.0 below 80.0: alert "
                                   "cleared"));
  assert_int_equal(strata_policy_stats(m.rt, &ps), 0);
  assert_int_equal(ps.alerts, 2);
  submit(m.rt, (strata_job_t)STRATA_NONE, "train", 10);
  assert_int_equal(strata_runtime_wait_all(m.rt), 0);
  assert_int_equal(train_on(m.rt, "hbm0"), 10);

  /* Hovering at the threshold: raised once, never cleared. */
  const double hover[] = {86, 84, 86, 84, 85.5, 83};
  for (size_t i = 0; i < sizeof hover / sizeof *hover; i++)
    set_temperature(&m, hbm, hover[i]);
  assert_int_equal(alert_value(m.rt, "strata_alerts_raised_total", "hbm0"), 2);
  assert_int_equal(alert_value(m.rt, "strata_alerts_cleared_total", "hbm0"), 1);
  assert_int_equal(alert_value(m.rt, "strata_alert_active", "hbm0"), 1);
  strata_metrics_stats_t ms = {.struct_size = sizeof ms};
  assert_int_equal(strata_metrics_stats(m.rt, &ms), 0);
  assert_int_equal(ms.alerts_raised, 2);
  assert_int_equal(ms.alerts_cleared, 1);

  /* A reload while the alert stands: the new script is told of it (one
   * more hook call, no new raise) and keeps training off the card. */
  assert_int_equal(strata_policy_stats(m.rt, &ps), 0);
  uint64_t calls = ps.alerts;
  assert_int_equal(strata_policy_reload(m.rt, NULL), 0);
  assert_int_equal(strata_policy_stats(m.rt, &ps), 0);
  assert_int_equal(ps.alerts, calls + 1);
  assert_int_equal(alert_value(m.rt, "strata_alerts_raised_total", "hbm0"), 2);
  submit(m.rt, (strata_job_t)STRATA_NONE, "train", 10);
  assert_int_equal(strata_runtime_wait_all(m.rt), 0);
  assert_int_equal(train_on(m.rt, "hbm0"), 10);
  test_sim_destroy(&m);
}

static void test_metrics_alert_thresholds_per_class(void **state) {
  (void)state;
  test_sim_rt_t m;
  test_sim_opts(&m, "cpu,sim", machine(), 2);
  m.o.health_period_ms = -1;
  m.o.alert_thresholds = "hbm:temperature=95,power=700;gddr:temperature=80";
  m.o.alert_clear_temperature = 2;
  test_sim_create(&m);
  int hbm = test_device_of(m.rt, STRATA_CLASS_HBM);
  int gddr = test_device_of(m.rt, STRATA_CLASS_GDDR);
  assert_int_equal(alert_value(m.rt, "strata_alert_threshold", "hbm0"), 95);
  assert_int_equal(alert_value(m.rt, "strata_alert_threshold", "gddr0"), 80);
  set_temperature(&m, hbm, 90);
  set_temperature(&m, gddr, 82);
  assert_int_equal(alert_value(m.rt, "strata_alert_active", "hbm0"), 0);
  assert_int_equal(alert_value(m.rt, "strata_alert_active", "gddr0"), 1);
  /* The hysteresis asked for: 2 degrees. */
  set_temperature(&m, gddr, 78.5); /* not below 78 */
  assert_int_equal(alert_value(m.rt, "strata_alert_active", "gddr0"), 1);
  set_temperature(&m, gddr, 77.5);
  assert_int_equal(alert_value(m.rt, "strata_alert_active", "gddr0"), 0);
  test_sim_destroy(&m);

  /* Malformed: creation fails and says where. */
  const char *bad[] = {
      "tpu:temperature=80",  "hbm:temp=80", "hbm:temperature=-3",
      "hbm:temperature=hot", "hbm",         "hbm:temperature=80;hbm:power=9"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    test_sim_opts(&m, "cpu,sim", machine(), 1);
    m.o.alert_thresholds = bad[i];
    assert_int_equal(strata_runtime_create(&m.o, &m.rt), STRATA_EINVAL);
    assert_true(test_log_has(&m.log, "alert_thresholds"));
    test_alloc_assert_clean(&m.alloc);
  }
}

int main(void) {
  test_tmpdir(dir, sizeof dir, "metrics");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_metrics_format_and_counts),
      cmocka_unit_test(test_metrics_concurrent_updates),
      cmocka_unit_test(test_metrics_textfile),
      cmocka_unit_test(test_metrics_textfile_failing),
      cmocka_unit_test(test_metrics_http),
      cmocka_unit_test(test_metrics_alerts),
      cmocka_unit_test(test_metrics_alert_thresholds_per_class),
  };
  return test_run_group(tests, sizeof tests / sizeof *tests, dir);
}
