/* SPDX-License-Identifier: MIT */
/* tests/fuzz/options.c: libFuzzer harness of the option-list parsers,
 * through the public API: backend_options ("name:key=value,...;name2:..."
 * and what the cpu and sim backends read from it: workers, machine, time,
 * skip_kernels, classes), backends and required_backends, device_tiers,
 * task and job attributes (priority, flops, name, tier, tags...) and the
 * performance-model file. Each input builds one runtime: creation must
 * succeed or fail with a STRATA_E* code; once created, every attribute
 * must be accepted or refused with STRATA_EINVAL, the job's tasks must
 * all end with status 0, and nothing may be left allocated.
 *
 * Input: lines "KEY VALUE" (unknown keys are ignored):
 *   backends V | required V | backend_options V | device_tiers V
 *   pinned N (pinned_bytes) | spill (a spill directory) | workers N
 *   policy eft|eager|tiered|none | task K=V | job K=V
 *   perf   (every later byte is the performance-model file)
 * '/' in values becomes '_', so that no option reaches outside the
 * scratch directory; then "@M" becomes the path of a valid two-card
 * machine description. Seeds: tests/fuzz/corpus/options/. */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <strata.h>

#define FUZZ_RUNS_RUNTIME
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define VALUE_MAX 2048
#define MAX_ATTRS 16
#define WORDS 64

static const char machine_text[] =
    "return { devices = {\n"
    "  { class = 'hbm', name = 'H', memory = 64 * KiB,\n"
    "    mem_bandwidth = 1 * TB, link_bandwidth = 10 * GB,\n"
    "    fp64 = 1 * TFLOPS, fp32 = 2 * TFLOPS },\n"
    "  { class = 'gddr', name = 'G', memory = 64 * KiB,\n"
    "    mem_bandwidth = 1 * TB, link_bandwidth = 10 * GB,\n"
    "    fp64 = 1 * TFLOPS, fp32 = 2 * TFLOPS },\n"
    "} }\n";

typedef struct attr {
  bool job;
  char *kv;
} attr_t;

typedef struct input {
  char *backends, *required, *backend_options, *device_tiers, *policy;
  uint64_t pinned;
  bool spill;
  unsigned workers;
  attr_t attrs[MAX_ATTRS];
  size_t nattrs;
  const uint8_t *perf;
  size_t perf_len;
  bool has_perf;
} input_t;

/* A value with '/' made harmless and "@M" expanded; malloc'd. */
static char *value(const char *s, size_t n) {
  static const char *mpath;
  if (!mpath)
    mpath = fuzz_write(1, "m.lua", machine_text, strlen(machine_text));
  size_t mlen = strlen(mpath);
  char *out = malloc(n * (mlen + 1) + 1), *o = out;
  FUZZ_CHECK(out != NULL, "malloc");
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '@' && i + 1 < n && s[i + 1] == 'M') {
      memcpy(o, mpath, mlen);
      o += mlen;
      i++;
    } else {
      *o++ = s[i] == '/' ? '_' : s[i];
    }
  }
  *o = '\0';
  return out;
}

static bool key_is(const char *line, size_t len, const char *key,
                   const char **val, size_t *vlen) {
  size_t k = strlen(key);
  if (len < k || memcmp(line, key, k) || (len > k && line[k] != ' '))
    return false;
  *val = len > k ? line + k + 1 : line + len;
  *vlen = len > k ? len - k - 1 : 0;
  return true;
}

static void set(char **field, const char *v, size_t n) {
  free(*field);
  *field = value(v, n);
}

/* Parse the input; strings may hold any byte but NUL (a NUL ends the
 * value, as it would for a C caller). */
static void parse(input_t *in, const uint8_t *data, size_t size) {
  memset(in, 0, sizeof *in);
  size_t pos = 0;
  while (pos < size) {
    const char *line = (const char *)data + pos;
    const uint8_t *nl = memchr(line, '\n', size - pos);
    size_t len = nl ? (size_t)((const char *)nl - line) : size - pos;
    pos += len + (nl ? 1 : 0);
    const char *nul = memchr(line, '\0', len);
    if (nul)
      len = (size_t)(nul - line);
    if (len > VALUE_MAX)
      len = VALUE_MAX;
    const char *v;
    size_t n;
    if (key_is(line, len, "perf", &v, &n)) {
      in->has_perf = true;
      in->perf = data + pos;
      in->perf_len = size - pos;
      return;
    } else if (key_is(line, len, "backends", &v, &n)) {
      set(&in->backends, v, n);
    } else if (key_is(line, len, "required", &v, &n)) {
      set(&in->required, v, n);
    } else if (key_is(line, len, "backend_options", &v, &n)) {
      set(&in->backend_options, v, n);
    } else if (key_is(line, len, "device_tiers", &v, &n)) {
      set(&in->device_tiers, v, n);
    } else if (key_is(line, len, "policy", &v, &n)) {
      set(&in->policy, v, n);
    } else if (key_is(line, len, "pinned", &v, &n)) {
      in->pinned = strtoull(v, NULL, 10) % (1u << 20);
    } else if (key_is(line, len, "workers", &v, &n)) {
      in->workers = (unsigned)(strtoul(v, NULL, 10) % 8);
    } else if (key_is(line, len, "spill", &v, &n)) {
      in->spill = true;
    } else if ((key_is(line, len, "task", &v, &n) ||
                key_is(line, len, "job", &v, &n)) &&
               in->nattrs < MAX_ATTRS) {
      attr_t *at = &in->attrs[in->nattrs++];
      at->job = line[0] == 'j';
      at->kv = value(v, n);
    }
  }
}

static void release(input_t *in) {
  free(in->backends);
  free(in->required);
  free(in->backend_options);
  free(in->device_tiers);
  free(in->policy);
  for (size_t i = 0; i < in->nattrs; i++)
    free(in->attrs[i].kv);
}

static void drop_log(void *ud, strata_log_level_t level, const char *comp,
                     const char *msg) {
  (void)ud, (void)level, (void)comp, (void)msg;
}

static int step_kernel(const strata_kernel_call_t *c) {
  uint64_t *w = c->buffers[0];
  for (size_t i = 0; i < WORDS; i++)
    w[i]++;
  return 0;
}

/* An attribute "K=V" (no '=': an empty value) on a task or job. */
static void set_attr(strata_runtime_t *rt, strata_task_t t, strata_job_t j,
                     const attr_t *at) {
  char *eq = strchr(at->kv, '=');
  const char *val = "";
  if (eq) {
    *eq = '\0';
    val = eq + 1;
  }
  int rc = at->job ? strata_job_set_attr(rt, j, at->kv, val)
                   : strata_task_set_attr(rt, t, at->kv, val);
  FUZZ_CHECK(rc == 0 || rc == STRATA_EINVAL, "set_attr '%s'='%s': %s", at->kv,
             val, strata_err_name(rc));
  if (eq)
    *eq = '=';
}

/* Two tasks of one job on a buffer, each with every attribute. */
static void run_job(strata_runtime_t *rt, const input_t *in) {
  static uint64_t buf[WORDS];
  memset(buf, 0, sizeof buf);
  /* Every device may run it: CPU code, and the same function as CUDA code
   * so that simulated GPUs (which run the CPU code) are candidates. */
  const strata_kernel_impl_t impls[] = {{STRATA_IMPL_CPU, step_kernel},
                                        {STRATA_IMPL_CUDA, step_kernel}};
  strata_kernel_desc_t kd = {
      .struct_size = sizeof kd, .name = "step", .impls = impls, .nimpls = 2};
  strata_kernel_t k;
  FUZZ_CHECK(strata_kernel_register(rt, &kd, &k) == 0, "kernel");
  strata_buffer_t b;
  FUZZ_CHECK(strata_buffer_register(rt, buf, sizeof buf, &b) == 0, "register");
  strata_job_t j;
  FUZZ_CHECK(strata_job_create(rt, &j) == 0, "job");
  strata_task_t t[2];
  for (int n = 0; n < 2; n++) {
    FUZZ_CHECK(strata_task_create(rt, k, &t[n]) == 0, "task");
    FUZZ_CHECK(strata_task_set_job(rt, t[n], j) == 0, "set_job");
    FUZZ_CHECK(strata_task_access(rt, t[n], b, STRATA_RW) == 0, "access");
    for (size_t i = 0; i < in->nattrs; i++)
      set_attr(rt, t[n], j, &in->attrs[i]);
    int rc = strata_task_submit(rt, t[n]);
    FUZZ_CHECK(rc == 0, "submit: %s", strata_err_name(rc));
  }
  int rc = strata_job_wait(rt, j);
  FUZZ_CHECK(rc == 0, "job ended %s", strata_err_name(rc));
  for (int n = 0; n < 2; n++) {
    rc = strata_task_wait(rt, t[n]);
    FUZZ_CHECK(rc == 0, "task ended %s", strata_err_name(rc));
    FUZZ_CHECK(strata_task_release(rt, t[n]) == 0, "release");
  }
  FUZZ_CHECK(strata_job_release(rt, j) == 0, "job release");
  FUZZ_CHECK(strata_buffer_unregister(rt, b) == 0, "unregister");
  /* sim's skip_kernels=1 (modelled time) runs no kernel, by design. */
  bool skipped = in->backend_options &&
                 strstr(in->backend_options, "skip_kernels") != NULL;
  FUZZ_CHECK(skipped || (buf[0] == 2 && buf[WORDS - 1] == 2),
             "buffer holds %llu", (unsigned long long)buf[0]);
}

static const char *policy_of(const char *name) {
  static char path[1024];
  if (!name || !strcmp(name, "none"))
    return "";
  if (!strcmp(name, "eft") || !strcmp(name, "eager") ||
      !strcmp(name, "tiered")) {
    snprintf(path, sizeof path, "%s/%s.lua", FUZZ_POLICIES, name);
    return path;
  }
  return NULL; /* the built-in tiered.lua */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  input_t in;
  parse(&in, data, size);
  char spill[520], perf[520];
  fuzz_alloc_t a;
  fuzz_alloc_init(&a);
  strata_runtime_opts_t o;
  strata_runtime_opts_init(&o);
  o.alloc = fuzz_alloc_fn;
  o.alloc_ud = &a;
  o.log = drop_log;
  o.log_level = STRATA_LOG_DEBUG; /* format every message, too */
  o.backend_path = FUZZ_BACKENDS;
  o.backends = in.backends ? in.backends : "cpu,sim";
  o.required_backends = in.required;
  o.backend_options = in.backend_options;
  o.device_tiers = in.device_tiers;
  o.cpu_workers = in.workers;
  o.pinned_bytes = in.pinned;
  o.topology_xml = FUZZ_TOPOLOGIES "/single-4core.xml";
  o.health_period_ms = -1;
  o.policy = policy_of(in.policy);
  if (in.spill) {
    snprintf(spill, sizeof spill, "%s", fuzz_subdir("spill"));
    o.spill_dir = spill;
  }
  if (in.has_perf) {
    snprintf(perf, sizeof perf, "%s",
             fuzz_write(2, "perf.txt", in.perf, in.perf_len));
    o.perf_models = perf;
  }
  strata_runtime_t *rt;
  int rc = strata_runtime_create(&o, &rt);
  if (rc == 0) {
    run_job(rt, &in);
    FUZZ_CHECK(strata_runtime_destroy(rt) == 0, "destroy");
  } else {
    FUZZ_CHECK(rc < 0 && strcmp(strata_err_name(rc), "STRATA_E?"),
               "create returned %d", rc);
  }
  fuzz_alloc_done(&a);
  release(&in);
  return 0;
}
