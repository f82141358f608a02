/* SPDX-License-Identifier: MIT */
/* tests/test_loader.c: backend plugin loading: ABI layout, broken and junk
 * plugins, plugins that misreport their devices or never start their
 * workers, filters, required backends, backend options, out of memory. */
#include "config.h"

#include "util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <strata/backend.h>

/* {=== ABI 3.0 layout ===}
 * These offsets are what plugins already built were compiled against: a
 * change here breaks them silently, so it must come with a major bump. */
#define PTR sizeof(void *)
#define AT(field, n)                                                           \
  _Static_assert(offsetof(strata_backend_component_t, field) == 8 + (n)*PTR,   \
                 #field " moved")
_Static_assert(offsetof(strata_backend_component_t, abi_major) == 0,
               "abi_major moved");
_Static_assert(offsetof(strata_backend_component_t, abi_minor) == 2,
               "abi_minor moved");
_Static_assert(offsetof(strata_backend_component_t, struct_size) == 4,
               "struct_size moved");
AT(name, 0);
AT(description, 1);
AT(init, 2);
AT(probe, 3);
AT(start, 4);
AT(stop, 5);
AT(fini, 6);
AT(mem_alloc, 7);
AT(mem_free, 8);
AT(copy, 9);
AT(copy_async, 10);
AT(host_alloc, 11);
AT(host_free, 12);
AT(host_register, 13);
AT(host_unregister, 14);
AT(managed_alloc, 15);
AT(managed_free, 16);
AT(managed_prefetch, 17);
AT(health, 18);
AT(model, 19);
AT(inject, 20);
AT(reserved, 21);
#undef AT
/* A minor bump takes fields from `reserved`: the total size never moves;
 * eight reserved slots are free and last. */
_Static_assert(sizeof(strata_backend_component_t) == 8 + 29 * PTR,
               "component size changed");
_Static_assert(offsetof(strata_backend_device_t, struct_size) == 0,
               "a probed device must start with its size");
_Static_assert(sizeof(strata_backend_component_t) ==
                   offsetof(strata_backend_component_t, reserved) + 8 * PTR,
               "reserved is not the last member, or not 8 pointers");
_Static_assert(offsetof(strata_core_services_t, abi_major) == 0 &&
                   offsetof(strata_core_services_t, abi_minor) == 2 &&
                   offsetof(strata_core_services_t, struct_size) == 4 &&
                   offsetof(strata_core_services_t, core) == 8,
               "services header moved");
_Static_assert(sizeof(strata_core_services_t) ==
                   offsetof(strata_core_services_t, reserved) + 8 * PTR,
               "services: reserved is not the last member, or not 8 pointers");
#undef PTR

/* {=== Fixture ===} */

#define NBROKEN 8
static const char *const broken[NBROKEN] = {
    "bad-major",    "newer-minor", "no-symbol",  "misnamed",
    "small-struct", "null-entry",  "init-fails", "reserved-set",
};

typedef struct fixture {
  test_alloc_t alloc;
  test_log_t log;
  strata_runtime_opts_t opts;
  strata_runtime_t *rt; /* live runtime, destroyed by teardown if a test
                           failed before it could */
  char path[8192];      /* backends:plugins */
  char tmp[256];        /* a temporary plugin directory, or "" */
  char tmp_path[8192 + 512];
} fixture_t;

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  if (!f)
    return -1;
  test_alloc_init(&f->alloc);
  test_log_init(&f->log);
  test_opts(&f->opts, 1, &f->log);
  snprintf(f->path, sizeof f->path, "%s",
           test_path2(test_env("STRATA_TEST_BACKENDS"),
                      test_env("STRATA_TEST_PLUGINS")));
  f->opts.backend_path = f->path;
  f->opts.backends = NULL;
  f->opts.required_backends = NULL;
  f->opts.alloc = test_alloc_fn;
  f->opts.alloc_ud = &f->alloc;
  *state = f;
  return 0;
}

/* Remove the temporary directory and everything in it (flat). */
static void remove_tmp(fixture_t *f) {
  DIR *d = opendir(f->tmp);
  if (d) {
    char p[512];
    for (struct dirent *e; (e = readdir(d));)
      if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
        snprintf(p, sizeof p, "%s/%s", f->tmp, e->d_name);
        unlink(p);
      }
    closedir(d);
  }
  rmdir(f->tmp);
}

static int teardown(void **state) {
  fixture_t *f = *state;
  if (f->rt)
    (void)strata_runtime_destroy(f->rt);
  if (f->tmp[0])
    remove_tmp(f);
  pthread_mutex_destroy(&f->alloc.mu);
  pthread_mutex_destroy(&f->log.mu);
  free(f);
  return 0;
}

/* {=== Helpers ===} */

/* cmocka's fail_msg writes to stderr, which the TAP driver keeps out of
 * the test's log: print the reason on stdout as a TAP diagnostic. */
#define FAIL(...)                                                              \
  do {                                                                         \
    print_message("# " __VA_ARGS__);                                           \
    fail();                                                                    \
  } while (0)

/* Show the captured log as TAP diagnostics, after a failure. */
static void dump_log(test_log_t *l) {
  for (const char *line = l->text; *line;) {
    const char *nl = strchr(line, '\n');
    int len = nl ? (int)(nl - line) : (int)strlen(line);
    print_message("#   %.*s\n", len, line);
    line += len + (nl != NULL);
  }
}

static strata_runtime_t *create_ok(fixture_t *f) {
  strata_runtime_t *rt = NULL;
  int rc = strata_runtime_create(&f->opts, &rt);
  if (rc) {
    dump_log(&f->log);
    FAIL("create: %s\n", strata_err_name(rc));
  }
  assert_non_null(rt);
  return f->rt = rt;
}

static void destroy_clean(fixture_t *f, strata_runtime_t *rt) {
  assert_ptr_equal(rt, f->rt);
  f->rt = NULL;
  assert_int_equal(strata_runtime_destroy(rt), STRATA_OK);
  test_alloc_assert_clean(&f->alloc);
}

/* Create must fail with `want`, leave *out NULL and free everything. */
static void create_fails(fixture_t *f, int want) {
  strata_runtime_t *rt = (strata_runtime_t *)(uintptr_t)1; /* not NULL */
  int rc = strata_runtime_create(&f->opts, &rt);
  if (rc != want) {
    dump_log(&f->log);
    FAIL("create: %s, expected %s\n", strata_err_name(rc),
         strata_err_name(want));
  }
  assert_null(rt);
  test_alloc_assert_clean(&f->alloc);
}

/* How many captured lines at `level` ("WARN") contain a and b (b may be
 * NULL)? */
static int log_lines(test_log_t *l, const char *level, const char *a,
                     const char *b) {
  char tag[16];
  snprintf(tag, sizeof tag, "[%s] ", level);
  int n = 0;
  pthread_mutex_lock(&l->mu);
  for (char *line = l->text; *line;) {
    char *nl = strchr(line, '\n');
    if (nl)
      *nl = '\0';
    n += !strncmp(line, tag, strlen(tag)) && strstr(line, a) &&
         (!b || strstr(line, b));
    if (!nl)
      break;
    *nl = '\n';
    line = nl + 1;
  }
  pthread_mutex_unlock(&l->mu);
  return n;
}

static void assert_logged(fixture_t *f, const char *level, const char *a,
                          const char *b) {
  if (log_lines(&f->log, level, a, b) < 1) {
    dump_log(&f->log);
    FAIL("no [%s] line with '%s' and '%s' in the log above\n", level, a,
         b ? b : "");
  }
}

static strata_device_info_t device(strata_runtime_t *rt, int i) {
  strata_device_info_t info = {.struct_size = sizeof info};
  assert_int_equal(strata_device_info(rt, i, &info), STRATA_OK);
  return info;
}

/* Devices of `backend`, and their workers in total. */
static int devices_of(strata_runtime_t *rt, const char *backend,
                      unsigned *workers) {
  int n = 0;
  unsigned w = 0;
  for (int i = 0; i < strata_device_count(rt); i++) {
    strata_device_info_t info = device(rt, i);
    if (!strcmp(info.backend, backend)) {
      n++;
      w += info.workers;
    }
  }
  if (workers)
    *workers = w;
  return n;
}

static int noop(const strata_kernel_call_t *call) {
  (void)call;
  return 0;
}

/* Run one task of a kernel implemented only with the code devices of
 * class `cls` run (CPU code for the CPU, CUDA code for the GPU classes; one
 * kernel per class, so that a runtime can run one of each).
 * @return the device it ran on */
static int run_task(strata_runtime_t *rt, strata_device_class_t cls) {
  static const char *const names[STRATA_CLASS_COUNT] = {"noop-cpu", "noop-hbm",
                                                        "noop-gddr"};
  const strata_kernel_impl_t impls[] = {
      {cls == STRATA_CLASS_CPU ? STRATA_IMPL_CPU : STRATA_IMPL_CUDA, noop}};
  strata_kernel_desc_t desc = {.struct_size = sizeof desc,
                               .name = names[cls],
                               .impls = impls,
                               .nimpls = 1};
  strata_kernel_t k;
  strata_task_t t;
  assert_int_equal(strata_kernel_register(rt, &desc, &k), STRATA_OK);
  assert_int_equal(strata_task_create(rt, k, &t), STRATA_OK);
  assert_int_equal(strata_task_submit(rt, t), STRATA_OK);
  assert_int_equal(strata_task_wait(rt, t), STRATA_OK);
  strata_task_info_t info = {.struct_size = sizeof info};
  assert_int_equal(strata_task_info(rt, t, &info), STRATA_OK);
  assert_int_equal(info.state, STRATA_TASK_DONE);
  assert_int_equal(info.status, STRATA_OK);
  assert_int_equal(strata_task_release(rt, t), STRATA_OK);
  return info.device;
}

/* Make f->tmp a fresh empty directory. */
static void make_tmp(fixture_t *f) {
  const char *base = getenv("TMPDIR");
  snprintf(f->tmp, sizeof f->tmp, "%s/strata-loader-XXXXXX",
           base && *base ? base : "/tmp");
  if (!mkdtemp(f->tmp)) {
    f->tmp[0] = '\0';
    FAIL("mkdtemp failed\n");
  }
}

static void write_tmp(fixture_t *f, const char *name, const char *text) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", f->tmp, name);
  FILE *fp = fopen(p, "w");
  assert_non_null(fp);
  assert_true(fputs(text, fp) >= 0);
  assert_int_equal(fclose(fp), 0);
}

/* tmp/<name>.so -> the test plugin <plugin>'s shared object. */
static void link_tmp(fixture_t *f, const char *name, const char *plugin) {
  char target[4096], p[512];
  snprintf(target, sizeof target, "%s/.libs/%s.so",
           test_env("STRATA_TEST_PLUGINS"), plugin);
  if (access(target, R_OK))
    FAIL("%s not found (shared plugins are required)\n", target);
  snprintf(p, sizeof p, "%s/%s.so", f->tmp, name);
  assert_int_equal(symlink(target, p), 0);
}

/* {=== ABI ===} */

static void test_loader_abi_layout(void **state) {
  (void)state;
  /* The layout is checked at compile time above; here, the numbers the
   * loader compares plugins against (a minor bump must revisit the
   * reserved-slot assertion, so it revisits this one too). */
  assert_int_equal(STRATA_BACKEND_ABI_MAJOR, 3);
  assert_int_equal(STRATA_BACKEND_ABI_MINOR, 0);
  assert_int_equal(sizeof(((strata_backend_component_t *)0)->reserved),
                   8 * sizeof(void *));
}

/* {=== Broken plugins ===} */

static void assert_broken_logged(fixture_t *f) {
  char abi[96], size[96];
  snprintf(abi, sizeof abi, "built for backend ABI %d.%d",
           STRATA_BACKEND_ABI_MAJOR + 98, STRATA_BACKEND_ABI_MINOR);
  assert_logged(f, "WARN", "backend 'bad-major'", abi);
  snprintf(abi, sizeof abi, "built for backend ABI %d.%d",
           STRATA_BACKEND_ABI_MAJOR, STRATA_BACKEND_ABI_MINOR + 1);
  assert_logged(f, "WARN", "backend 'newer-minor'", abi);
  assert_logged(f, "WARN", "backend 'no-symbol'",
                "does not export strata_backend_no_symbol_component");
  assert_logged(f, "WARN", "backend 'misnamed'", "'somebody-else'");
  /* Every field of 3.0 up to the reserved slots. */
  snprintf(size, sizeof size, "struct is 16 bytes, at least %zu",
           offsetof(strata_backend_component_t, reserved));
  assert_logged(f, "WARN", "backend 'small-struct'", size);
  assert_logged(f, "WARN", "backend 'null-entry'", "entry point is NULL");
  assert_logged(f, "WARN", "backend 'init-fails'", "init failed");
  assert_logged(f, "WARN", "backend 'reserved-set'",
                "reserved fields are not NULL");
  /* The plugin's own message comes tagged with its name. */
  assert_logged(f, "ERROR", "init-fails: refusing to start", NULL);
  assert_int_equal(log_lines(&f->log, "WARN", " skipped: ", NULL), NBROKEN);
}

static void test_loader_broken_plugins_skipped(void **state) {
  fixture_t *f = *state;
  strata_runtime_t *rt = create_ok(f);
  assert_broken_logged(f);
  assert_true(devices_of(rt, "cpu", NULL) >= 1);
  assert_int_equal(devices_of(rt, "fake", NULL), 1);
  assert_int_equal(strata_device_count(rt), devices_of(rt, "cpu", NULL) + 1);
  int d = run_task(rt, STRATA_CLASS_CPU);
  assert_string_equal(device(rt, d).backend, "cpu");
  destroy_clean(f, rt);
}

/* {=== Required backends ===} */

static void test_loader_required_broken_fails(void **state) {
  fixture_t *f = *state;
  for (int i = 0; i < NBROKEN; i++) {
    test_log_clear(&f->log);
    f->opts.required_backends = broken[i];
    create_fails(f, STRATA_EBACKEND);
    char what[64];
    snprintf(what, sizeof what, "required backend '%s'", broken[i]);
    assert_logged(f, "ERROR", what, "not available");
  }
}

static void test_loader_required_missing_fails(void **state) {
  fixture_t *f = *state;
  f->opts.required_backends = "cpu,no-such-backend";
  create_fails(f, STRATA_EBACKEND);
  assert_logged(f, "ERROR", "required backend 'no-such-backend'", NULL);
}

static void test_loader_required_cpu_ok(void **state) {
  fixture_t *f = *state;
  f->opts.required_backends = "cpu";
  strata_runtime_t *rt = create_ok(f);
  assert_true(devices_of(rt, "cpu", NULL) >= 1);
  assert_int_equal(log_lines(&f->log, "ERROR", "required", NULL), 0);
  destroy_clean(f, rt);
}

/* {=== The backends filter ===} */

static void test_loader_filter_fake_only(void **state) {
  fixture_t *f = *state;
  f->opts.backends = "fake";
  strata_runtime_t *rt = create_ok(f);
  assert_int_equal(strata_device_count(rt), 1);
  assert_string_equal(device(rt, 0).backend, "fake");
  /* Filtered plugins are not even opened. */
  assert_int_equal(log_lines(&f->log, "WARN", " skipped: ", NULL), 0);
  destroy_clean(f, rt);
}

static void test_loader_filter_cpu_only(void **state) {
  fixture_t *f = *state;
  f->opts.backends = "cpu";
  strata_runtime_t *rt = create_ok(f);
  assert_true(strata_device_count(rt) >= 1);
  assert_int_equal(devices_of(rt, "cpu", NULL), strata_device_count(rt));
  assert_int_equal(log_lines(&f->log, "WARN", " skipped: ", NULL), 0);
  destroy_clean(f, rt);
}

/* {=== The fake backend ===} */

static void test_loader_fake_devices_run_by_class(void **state) {
  fixture_t *f = *state;
  f->opts.backend_options = "fake:devices=hbm+gddr,workers=2";
  strata_runtime_t *rt = create_ok(f);
  assert_int_equal(devices_of(rt, "fake", NULL), 2);
  int hbm = -1, gddr = -1;
  for (int i = 0; i < strata_device_count(rt); i++) {
    strata_device_info_t info = device(rt, i);
    if (strcmp(info.backend, "fake"))
      continue;
    assert_int_equal(info.workers, 2);
    if (info.device_class == STRATA_CLASS_HBM)
      hbm = i;
    else if (info.device_class == STRATA_CLASS_GDDR)
      gddr = i;
  }
  assert_true(hbm >= 0 && gddr >= 0 && hbm < gddr); /* in option order */
  int d = run_task(rt, STRATA_CLASS_HBM);
  assert_int_equal(d, hbm);
  assert_int_equal(device(rt, d).device_class, STRATA_CLASS_HBM);
  destroy_clean(f, rt);
}

/* fake fails at `step`: it is skipped with a WARN naming the step, and
 * the runtime still comes up on cpu. */
static void fake_fails_at(fixture_t *f, const char *options, const char *step) {
  test_log_clear(&f->log);
  f->opts.backend_options = options;
  strata_runtime_t *rt = create_ok(f);
  char why[64];
  snprintf(why, sizeof why, "skipped: %s failed", step);
  assert_logged(f, "WARN", "backend 'fake'", why);
  assert_int_equal(devices_of(rt, "fake", NULL), 0);
  assert_true(devices_of(rt, "cpu", NULL) >= 1);
  run_task(rt, STRATA_CLASS_CPU);
  destroy_clean(f, rt);
}

static void test_loader_fake_fail_init(void **state) {
  fake_fails_at(*state, "fake:fail=init", "init");
}

static void test_loader_fake_fail_probe(void **state) {
  fake_fails_at(*state, "fake:fail=probe", "probe");
}

/* Start fails once one worker thread runs: the core must stop it (next()
 * answers ESHUTDOWN), have the plugin join it and drop the devices, or
 * the test hangs or leaks. */
static void test_loader_fake_fail_start(void **state) {
  fake_fails_at(*state, "fake:fail=start", "start");
  fake_fails_at(*state, "fake:fail=start,devices=hbm+gddr+cpu,workers=3",
                "start");
}

/* A plugin that describes a device wrongly is refused before its devices
 * are used, with one WARN naming its file and the reason. */
static void refused(fixture_t *f, const char *backend, const char *options,
                    const char *what) {
  test_log_clear(&f->log);
  f->opts.backend_options = options;
  strata_runtime_t *rt = create_ok(f);
  char line[4200], name[64];
  snprintf(line, sizeof line,
           "(%s/%s) skipped: probe reported a malformed device list: ",
           test_env("STRATA_TEST_PLUGINS"), backend);
  assert_logged(f, "WARN", line, what);
  snprintf(name, sizeof name, "backend '%s'", backend);
  assert_int_equal(log_lines(&f->log, "WARN", name, NULL), 1);
  assert_int_equal(devices_of(rt, backend, NULL), 0);
  assert_true(devices_of(rt, "cpu", NULL) >= 1);
  run_task(rt, STRATA_CLASS_CPU);
  destroy_clean(f, rt);
}

static void test_loader_fake_malformed_devices(void **state) {
  fixture_t *f = *state;
  const char *bad[][2] = {
      {"class", "device 0: device_class 42 is not a known class"},
      {"impl", "device 0: candidate_impl 42 is not a known implementation "
               "kind"},
      {"workers", "device 0: nworkers is 0, not 1 to 4096"},
      {"name", "device 0: name is empty"},
      {"core", "device 0: worker_cores[0] is 1073741824, but the machine"}};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char opts[64];
    snprintf(opts, sizeof opts, "fake:bad=%s", bad[i][0]);
    refused(f, "fake", opts, bad[i][1]);
  }
}

/* next() for a worker the device does not have is refused and logged;
 * the backend then works normally. */
static void test_loader_next_bad_worker(void **state) {
  fixture_t *f = *state;
  f->opts.backend_options = "fake:badworker=1";
  strata_runtime_t *rt = create_ok(f);
  run_task(rt, STRATA_CLASS_HBM);
  destroy_clean(f, rt);
  assert_logged(f, "ERROR", "asked work for worker 6", "which has 1");
  char answer[48];
  snprintf(answer, sizeof answer, "answered %d", STRATA_EINVAL);
  assert_logged(f, "INFO", "next() for worker 6", answer);
}

static void test_loader_fake_no_device(void **state) {
  fixture_t *f = *state;
  f->opts.backend_options = "fake:none=1";
  strata_runtime_t *rt = create_ok(f);
  assert_logged(f, "INFO", "backend 'fake' found no device", NULL);
  assert_int_equal(devices_of(rt, "fake", NULL), 0);
  destroy_clean(f, rt);
  test_log_clear(&f->log);
  f->opts.required_backends = "fake";
  create_fails(f, STRATA_EBACKEND);
  assert_logged(f, "ERROR", "required backend 'fake'", NULL);
}

/* {=== Plugins that lie ===} */

static void liar_refused(fixture_t *f, const char *lie, const char *what) {
  char opts[64];
  snprintf(opts, sizeof opts, "liar:lie=%s", lie);
  f->opts.backends = "cpu,liar";
  refused(f, "liar", opts, what);
}

/* The list itself: a NULL array (which crashed the core), a count beyond
 * the bound (whose array is not read), entry sizes that are no published
 * layout or differ between entries. */
static void test_loader_liar_list(void **state) {
  fixture_t *f = *state;
  char size[96];
  liar_refused(f, "null", "probe reported 3 device(s) but a NULL array");
  liar_refused(f, "count", "probe reported 100000 devices, at most 64");
  snprintf(size, sizeof size,
           "device 0: struct_size is 4096, not the size of a published "
           "layout (%zu bytes, ABI 3.0)",
           sizeof(strata_backend_device_t));
  liar_refused(f, "size-huge", size);
  liar_refused(f, "size-small", "device 0: struct_size is 16, not the size");
  snprintf(size, sizeof size,
           "device 1: struct_size is 200, but device 0's is %zu",
           sizeof(strata_backend_device_t));
  liar_refused(f, "size-mixed", size);
}

/* Each field out of its bounds is named. */
static void test_loader_liar_fields(void **state) {
  fixture_t *f = *state;
  const char *bad[][2] = {
      {"workers0", "device 0: nworkers is 0, not 1 to 4096"},
      {"workers-huge", "device 0: nworkers is 1048576, not 1 to 4096"},
      {"name", "device 0: name is not NUL-terminated within 64 bytes"},
      {"model", "device 0: model is not NUL-terminated within 64 bytes"},
      {"busid", "device 0: pci_busid is not NUL-terminated within 16"},
      {"nan", "device 0: fp64_flops is nan, not a finite number >= 0"},
      {"negative", "device 0: link_bandwidth is -1, not a finite number"},
      {"numa", "device 0: numa_node is -7, not an OS index or -1"},
      {"peers", "device 0: npeers is 5 but peers is NULL"},
      {"ecc", "device 0: ecc is 7, not 1, 0 or -1"},
      {"memory", "device 0: own_memory is 2, not 0 or 1"},
      /* ABI 3.0 */
      {"uuid", "device 0: uuid is not NUL-terminated within 64 bytes"},
      {"cc", "device 0: compute capability is 100.0, not major 0 to 99"},
      {"buswidth", "device 0: memory_bus_width is 70000 bits, not 0 to 65536"},
      {"pciegen", "device 0: pcie_gen is 9, not 0 (unknown) to 7"},
      {"pciewidth", "device 0: pcie_width is 3, not 0 (unknown), 1, 2, 4"},
      {"kinds", "device 0: memory_kinds is 0x8, which has bits beyond"},
      {"pool", "device 0: memory_pool is 1 but own_memory is 0"},
      {"managed", "device 0: memory_kinds offers STRATA_MEMORY_MANAGED, but "
                  "managed_alloc, managed_free or managed_prefetch is NULL"},
      {"peers-max", "device 0: npeers is 1000, at most 256"},
      {"peer-nomem", "device 0: it lists peers, but own_memory is 0"},
      {"peer-self", "device 0: peers[0] is the device itself (0000:01:00.0)"},
      {"peer-nan", "device 0: peers[0].bandwidth is nan, not a finite number"},
      {"dupbus", "device 1: pci_busid '0000:01:00.0' is another device's"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    liar_refused(f, bad[i][0], bad[i][1]);
}

/* A lying backend that is required fails creation, and frees everything. */
static void test_loader_liar_required(void **state) {
  fixture_t *f = *state;
  f->opts.backends = "cpu,liar";
  f->opts.required_backends = "liar";
  f->opts.backend_options = "liar:lie=null";
  create_fails(f, STRATA_EBACKEND);
  assert_logged(f, "WARN", "backend 'liar'", "but a NULL array");
  assert_logged(f, "ERROR", "required backend 'liar'", "not available");
}

/* {=== Backends that never start their workers ===} */

static double seconds_since(const struct timespec *t0) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)(t.tv_sec - t0->tv_sec) +
         (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static int liar_device(strata_runtime_t *rt) {
  for (int i = 0; i < strata_device_count(rt); i++)
    if (!strcmp(device(rt, i).backend, "liar"))
      return i;
  FAIL("no liar device\n");
  return -1;
}

static int nap(const strata_kernel_call_t *call) {
  (void)call;
  test_sleep_ms(10);
  return 0;
}

static strata_kernel_t hbm_kernel(strata_runtime_t *rt, strata_kernel_fn fn) {
  const strata_kernel_impl_t impls[] = {{STRATA_IMPL_CUDA, fn}};
  strata_kernel_desc_t desc = {
      .struct_size = sizeof desc, .name = "hbm", .impls = impls, .nimpls = 1};
  strata_kernel_t k;
  assert_int_equal(strata_kernel_register(rt, &desc, &k), STRATA_OK);
  return k;
}

/* The stalled device is the only one that can run the kernel: once the
 * bound has passed, it is failed with one clear ERROR and the task ends
 * STRATA_EDEVICE; the rest of the runtime works on. */
static void test_loader_watchdog_fails_stalled_device(void **state) {
  fixture_t *f = *state;
  f->opts.backends = "cpu,liar";
  f->opts.backend_options = "liar:lie=stall";
  f->opts.worker_start_timeout_ms = 200;
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  strata_runtime_t *rt = create_ok(f);
  int d = liar_device(rt);
  strata_task_t t;
  assert_int_equal(strata_task_create(rt, hbm_kernel(rt, noop), &t), 0);
  assert_int_equal(strata_task_submit(rt, t), STRATA_OK);
  assert_int_equal(strata_task_wait(rt, t), STRATA_EDEVICE);
  assert_int_equal(strata_task_release(rt, t), STRATA_OK);
  double took = seconds_since(&t0);
  if (took > 10)
    FAIL("the stalled device was failed after %.1f s\n", took);
  assert_logged(f, "ERROR",
                "backend 'liar': device liar0: no worker started within "
                "0.2 s; device failed",
                NULL);
  assert_int_equal(log_lines(&f->log, "ERROR", "no worker started", NULL), 1);
  assert_true(device(rt, d).failed);
  run_task(rt, STRATA_CLASS_CPU);
  destroy_clean(f, rt);
}

/* Tasks placed on the stalled device while it looked idle run on the
 * working one of the same class once it is failed. */
static void test_loader_watchdog_tasks_move(void **state) {
  fixture_t *f = *state;
  enum { N = 8 };
  f->opts.backends = "fake,liar";
  f->opts.backend_options = "fake:devices=hbm;liar:lie=stall";
  f->opts.policy = ""; /* least loaded: the idle-looking liar gets some */
  f->opts.worker_start_timeout_ms = 1000;
  strata_runtime_t *rt = create_ok(f);
  int liar = liar_device(rt);
  strata_kernel_t k = hbm_kernel(rt, nap);
  strata_task_t t[N];
  for (int i = 0; i < N; i++) {
    assert_int_equal(strata_task_create(rt, k, &t[i]), STRATA_OK);
    assert_int_equal(strata_task_submit(rt, t[i]), STRATA_OK);
  }
  for (int i = 0; i < N; i++) {
    int rc = strata_task_wait(rt, t[i]);
    if (rc != STRATA_OK) {
      dump_log(&f->log);
      FAIL("task %d: %s\n", i, strata_err_name(rc));
    }
    strata_task_info_t info = {.struct_size = sizeof info};
    assert_int_equal(strata_task_info(rt, t[i], &info), STRATA_OK);
    assert_string_equal(device(rt, info.device).backend, "fake");
    assert_int_equal(strata_task_release(rt, t[i]), STRATA_OK);
  }
  assert_true(device(rt, liar).failed);
  assert_logged(f, "ERROR", "device liar0: no worker started", NULL);
  assert_logged(f, "INFO", "moves from liar0 to fake-hbm0", NULL);
  destroy_clean(f, rt);
}

/* Destroy with a task stuck on the stalled device returns once the
 * watchdog has failed it, and leaks nothing. */
static void test_loader_watchdog_destroy_does_not_hang(void **state) {
  fixture_t *f = *state;
  f->opts.backends = "cpu,liar";
  f->opts.backend_options = "liar:lie=stall";
  f->opts.worker_start_timeout_ms = 200;
  strata_runtime_t *rt = create_ok(f);
  strata_task_t t;
  assert_int_equal(strata_task_create(rt, hbm_kernel(rt, noop), &t), 0);
  assert_int_equal(strata_task_submit(rt, t), STRATA_OK);
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  destroy_clean(f, rt);
  double took = seconds_since(&t0);
  if (took > 10)
    FAIL("destroy took %.1f s\n", took);
  assert_logged(f, "ERROR", "device liar0: no worker started", NULL);
}

/* A runtime destroyed before the bound stops the watchdog at once and
 * fails nothing. */
static void test_loader_watchdog_stops_with_runtime(void **state) {
  fixture_t *f = *state;
  f->opts.backends = "cpu,liar";
  f->opts.backend_options = "liar:lie=stall";
  f->opts.worker_start_timeout_ms = 60000;
  strata_runtime_t *rt = create_ok(f);
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  destroy_clean(f, rt);
  double took = seconds_since(&t0);
  if (took > 10)
    FAIL("destroy waited %.1f s for the watchdog\n", took);
  assert_false(test_log_has(&f->log, "no worker started"));
}

/* Devices whose workers asked for work are never failed. */
static void test_loader_watchdog_spares_live_devices(void **state) {
  fixture_t *f = *state;
  f->opts.backends = "fake";
  f->opts.backend_options = "fake:devices=hbm+gddr";
  f->opts.worker_start_timeout_ms = 50;
  strata_runtime_t *rt = create_ok(f);
  /* Once a task has run on each, their workers are known to be alive. */
  run_task(rt, STRATA_CLASS_HBM);
  run_task(rt, STRATA_CLASS_GDDR);
  test_sleep_ms(150);
  for (int i = 0; i < strata_device_count(rt); i++)
    assert_false(device(rt, i).failed);
  assert_false(test_log_has(&f->log, "no worker started"));
  destroy_clean(f, rt);
}

/* {=== The backend path ===} */

static void test_loader_junk_files(void **state) {
  fixture_t *f = *state;
  make_tmp(f);
  write_tmp(f, "junk.so", "this is not an ELF file\n");
  write_tmp(f, "Bad.Name.so", "neither is this\n");
  write_tmp(f, "notes.txt", "nor this\n");
  snprintf(f->tmp_path, sizeof f->tmp_path, "%s",
           test_path2(f->tmp, test_env("STRATA_TEST_BACKENDS")));
  f->opts.backend_path = f->tmp_path;
  strata_runtime_t *rt = create_ok(f);
  assert_logged(f, "WARN", "backend 'junk'", "cannot load");
  assert_false(test_log_has(&f->log, "Bad.Name"));
  assert_false(test_log_has(&f->log, "notes"));
  assert_int_equal(devices_of(rt, "cpu", NULL), strata_device_count(rt));
  destroy_clean(f, rt);
}

static void test_loader_empty_path_enodev(void **state) {
  fixture_t *f = *state;
  const char *paths[] = {"", ":", "/nonexistent/strata/backends"};
  for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
    test_log_clear(&f->log);
    f->opts.backend_path = paths[i];
    create_fails(f, STRATA_ENODEV);
    assert_logged(f, "ERROR", "no backend provided a device", NULL);
  }
}

/* tmp holds cpu.so and fake.so, both the fake plugin, and comes first:
 * cpu is taken from tmp (and rejected: it exports no cpu component), not
 * from the real backends directory; fake loads from tmp. */
static void test_loader_first_directory_wins(void **state) {
  fixture_t *f = *state;
  make_tmp(f);
  link_tmp(f, "cpu", "fake");
  link_tmp(f, "fake", "fake");
  snprintf(f->tmp_path, sizeof f->tmp_path, "%s:%s", f->tmp, f->path);
  f->opts.backend_path = f->tmp_path;
  f->opts.backends = "cpu,fake";
  strata_runtime_t *rt = create_ok(f);
  char where[512];
  snprintf(where, sizeof where, "(%s/cpu) skipped", f->tmp);
  assert_logged(f, "WARN", where,
                "does not export strata_backend_cpu_component");
  snprintf(where, sizeof where, "(%s/fake) loaded", f->tmp);
  assert_logged(f, "INFO", "backend 'fake'", where);
  assert_int_equal(devices_of(rt, "cpu", NULL), 0);
  assert_int_equal(devices_of(rt, "fake", NULL), 1);
  destroy_clean(f, rt);
}

/* {=== CPU backend options ===} */

static void test_loader_cpu_bad_workers(void **state) {
  fixture_t *f = *state;
  const char *bad[] = {"cpu:workers=0", "cpu:workers=abc", "cpu:workers=-1",
                       "cpu:workers=2x"};
  f->opts.required_backends = "cpu";
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    test_log_clear(&f->log);
    f->opts.backend_options = bad[i];
    create_fails(f, STRATA_EBACKEND);
    assert_logged(f, "ERROR", "cpu: option workers=", NULL);
    assert_logged(f, "WARN", "backend 'cpu'", "init failed");
  }
}

static void test_loader_cpu_workers(void **state) {
  fixture_t *f = *state;
  unsigned workers;
  f->opts.backends = "cpu";
  f->opts.cpu_workers = 1;
  strata_runtime_t *rt = create_ok(f);
  assert_int_equal(devices_of(rt, "cpu", &workers), 1);
  assert_int_equal(workers, 1);
  destroy_clean(f, rt);
  /* An explicit option wins over cpu_workers (another backend's part
   * comes first: ';' separates them). */
  f->opts.backend_options = "fake:workers=3;cpu:workers=2";
  rt = create_ok(f);
  devices_of(rt, "cpu", &workers);
  assert_int_equal(workers, 2);
  destroy_clean(f, rt);
}

/* cpu_workers is appended to the cpu backend's own options, however long
 * they are. A 4-core XML machine makes "workers lost" visible (4, not 1)
 * on any host. */
static void test_loader_cpu_workers_long_options(void **state) {
  fixture_t *f = *state;
  char xml[4096];
  snprintf(xml, sizeof xml, "%s/single-4core.xml",
           test_env("STRATA_TEST_TOPOLOGIES"));
  f->opts.topology_xml = xml;
  f->opts.backends = "cpu";
  f->opts.cpu_workers = 1;
  f->opts.backend_options =
      "cpu:label=a-label-long-enough-to-overflow-a-fixed-64-byte-buffer";
  unsigned workers;
  strata_runtime_t *rt = create_ok(f);
  assert_int_equal(devices_of(rt, "cpu", &workers), 1);
  if (workers != 1)
    FAIL("cpu runs %u workers, not 1: cpu_workers was lost\n", workers);
  destroy_clean(f, rt);
}

/* {=== Malformed option strings ===} */

/* Each is refused at creation with STRATA_EINVAL and one ERROR quoting
 * the offending part, before any plugin is loaded. */
static void test_loader_malformed_backend_options(void **state) {
  fixture_t *f = *state;
  const char *bad[][3] = {
      {"cpu", "position 1: 'cpu' has no ':'", NULL},
      {"cpu:workers=2;:workers=1",
       "position 15: ':workers=1' has an empty "
       "name",
       NULL},
      {"cpu:workers", "position 5: 'workers' has no '=' (expected key=value)",
       NULL},
      {"cpu:workers=2,workers=3", "position 15: key 'workers' is set twice",
       NULL},
      {"cpu:workers=2;", "position 14: empty item (a stray ';')", NULL},
      {"cpu:workers=2,", "position 14: empty item (a stray ',')", NULL},
      {"cpu:workers=1;cpu:workers=2",
       "position 15: section 'cpu' appears "
       "twice",
       NULL},
      {"cpu:=2", "position 5: '=2' has an empty key", NULL},
      {"cpu: workers=2", "key ' workers' holds a space", NULL},
      {"cuda:devices=0", "position 1: no backend 'cuda' in the backend path",
       NULL},
      {"CPU:workers=1", "position 1: 'CPU' is not a backend name", NULL}};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    test_log_clear(&f->log);
    f->opts.backend_options = bad[i][0];
    create_fails(f, STRATA_EINVAL);
    assert_logged(f, "ERROR", "backend_options: ", bad[i][1]);
    assert_false(test_log_has(&f->log, "loaded with"));
  }
}

/* The backend lists follow the same rules; a search path skips empty
 * entries as it always did. */
static void test_loader_malformed_backend_lists(void **state) {
  fixture_t *f = *state;
  f->opts.backends = "cpu,";
  create_fails(f, STRATA_EINVAL);
  assert_logged(f, "ERROR", "backends: position 4: empty item", NULL);
  f->opts.backends = "cpu, fake";
  create_fails(f, STRATA_EINVAL);
  assert_logged(f, "ERROR",
                "backends: position 5: item ' fake' holds a "
                "space",
                NULL);
  f->opts.backends = "cpu";
  f->opts.required_backends = "cpu,cpu";
  create_fails(f, STRATA_EINVAL);
  assert_logged(f, "ERROR",
                "required_backends: position 5: item 'cpu' is "
                "listed twice (first at position 1)",
                NULL);
  f->opts.required_backends = NULL;
  char path[sizeof f->path + 8];
  snprintf(path, sizeof path, "::%s:", f->path);
  f->opts.backend_path = path;
  destroy_clean(f, create_ok(f));
}

/* A setting no backend asked for is a WARN naming it; the runtime runs. */
static void test_loader_unread_backend_option(void **state) {
  fixture_t *f = *state;
  f->opts.backends = "cpu";
  f->opts.backend_options = "cpu:workrs=2,workers=1";
  strata_runtime_t *rt = create_ok(f);
  assert_logged(f, "WARN", "backend 'cpu' did not read its setting 'workrs'",
                NULL);
  assert_false(test_log_has(&f->log, "setting 'workers'"));
  destroy_clean(f, rt);
}

/* {=== Concurrency ===} */

#define CREATORS 4
#define ROUNDS 3

/* One thread's life: create a runtime (every plugin, broken ones too),
 * run a task on fake, destroy. No cmocka asserts off the main thread.
 * @return the first failure, or STRATA_OK */
static int create_run_destroy(const strata_runtime_opts_t *o) {
  strata_runtime_t *rt = NULL;
  int rc = strata_runtime_create(o, &rt);
  if (rc)
    return rc;
  const strata_kernel_impl_t impls[] = {{STRATA_IMPL_CUDA, noop}};
  strata_kernel_desc_t desc = {
      .struct_size = sizeof desc, .name = "noop", .impls = impls, .nimpls = 1};
  strata_kernel_t k;
  strata_task_t t;
  if (!(rc = strata_kernel_register(rt, &desc, &k)) &&
      !(rc = strata_task_create(rt, k, &t))) {
    if (!(rc = strata_task_submit(rt, t)))
      rc = strata_task_wait(rt, t);
    int rrc = strata_task_release(rt, t);
    rc = rc ? rc : rrc;
  }
  int drc = strata_runtime_destroy(rt);
  return rc ? rc : drc;
}

static void *creator(void *arg) {
  const strata_runtime_opts_t *o = arg;
  intptr_t rc = STRATA_OK;
  for (int i = 0; i < ROUNDS && rc == STRATA_OK; i++)
    rc = create_run_destroy(o);
  return (void *)rc;
}

/* libltdl has no locking of its own: runtimes created and destroyed at
 * once from several threads must not corrupt it (the loader's mutex). */
static void test_loader_concurrent_creates(void **state) {
  fixture_t *f = *state;
  f->opts.log_level = STRATA_LOG_WARN; /* keep the capture from filling */
  pthread_t th[CREATORS];
  for (int i = 0; i < CREATORS; i++)
    assert_int_equal(pthread_create(&th[i], NULL, creator, &f->opts), 0);
  for (int i = 0; i < CREATORS; i++) {
    void *rc;
    assert_int_equal(pthread_join(th[i], &rc), 0);
    if ((intptr_t)rc != STRATA_OK)
      FAIL("thread %d: %s\n", i, strata_err_name((int)(intptr_t)rc));
  }
  test_alloc_assert_clean(&f->alloc);
  assert_int_equal(log_lines(&f->log, "WARN", " skipped: ", NULL),
                   NBROKEN * CREATORS * ROUNDS);
}

/* {=== Allocation failures ===} */

/* Fail the k-th allocation of create, for k = 1, 2, ... until a create
 * runs without reaching its k-th allocation. Every attempt must either
 * fail cleanly or succeed with the configured devices. */
static void test_loader_alloc_failures(void **state) {
  fixture_t *f = *state;
  f->opts.backends = "cpu,fake";
  f->opts.backend_options = "fake:devices=hbm+gddr,workers=2";
  long failed = 0;
  for (long k = 1;; k++) {
    assert_true(k < 100000);
    f->alloc.fail_after = k;
    strata_runtime_t *rt = NULL;
    int rc = strata_runtime_create(&f->opts, &rt);
    bool fired = f->alloc.fail_after <= 0;
    f->alloc.fail_after = -1;
    if (rc == STRATA_OK) {
      f->rt = rt;
      int n = devices_of(rt, "fake", NULL);
      if (n != 2)
        FAIL("k=%ld: created with %d fake device(s), not 2: a failed "
             "allocation was swallowed and options lost\n",
             k, n);
      assert_true(devices_of(rt, "cpu", NULL) >= 1);
      destroy_clean(f, rt);
    } else {
      if (rc != STRATA_ENOMEM) {
        dump_log(&f->log);
        FAIL("k=%ld: %s, expected STRATA_ENOMEM\n", k, strata_err_name(rc));
      }
      assert_true(fired);
      assert_null(rt);
      test_alloc_assert_clean(&f->alloc);
      failed++;
    }
    test_log_clear(&f->log);
    if (!fired)
      break;
  }
  assert_true(failed > 0);
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_loader_abi_layout),
      T(test_loader_broken_plugins_skipped),
      T(test_loader_required_broken_fails),
      T(test_loader_required_missing_fails),
      T(test_loader_required_cpu_ok),
      T(test_loader_filter_fake_only),
      T(test_loader_filter_cpu_only),
      T(test_loader_fake_devices_run_by_class),
      T(test_loader_fake_fail_init),
      T(test_loader_fake_fail_probe),
      T(test_loader_fake_fail_start),
      T(test_loader_fake_no_device),
      T(test_loader_fake_malformed_devices),
      T(test_loader_next_bad_worker),
      T(test_loader_liar_list),
      T(test_loader_liar_fields),
      T(test_loader_liar_required),
      T(test_loader_watchdog_fails_stalled_device),
      T(test_loader_watchdog_tasks_move),
      T(test_loader_watchdog_destroy_does_not_hang),
      T(test_loader_watchdog_stops_with_runtime),
      T(test_loader_watchdog_spares_live_devices),
      T(test_loader_junk_files),
      T(test_loader_empty_path_enodev),
      T(test_loader_first_directory_wins),
      T(test_loader_cpu_bad_workers),
      T(test_loader_cpu_workers),
      T(test_loader_cpu_workers_long_options),
      T(test_loader_malformed_backend_options),
      T(test_loader_malformed_backend_lists),
      T(test_loader_unread_backend_option),
      T(test_loader_concurrent_creates),
      T(test_loader_alloc_failures),
  };
#undef T
  return cmocka_run_group_tests_name("loader", tests, NULL, NULL);
}
