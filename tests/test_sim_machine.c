/* SPDX-License-Identifier: MIT */
/* tests/test_sim_machine.c: the sim backend's machine descriptions: the
 * shipped machines, defaults and constants, the device facts as
 * strata_device_info reports them, and the bad-input corpus in
 * tests/machines, each rejected with the file, the field and the reason. */
#include "config.h"

#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../backends/sim/machine.h"
#include "util.h"

#define GIB (UINT64_C(1) << 30)

/* {=== Counting allocator ===}
 * Each block carries its size in a header, so a free or realloc with the
 * wrong osize is caught. fail_after = k fails the k-th growing request
 * from now on; shrinks and frees never fail, as Lua expects. */
#define HDR 16

typedef struct counter {
  size_t live_blocks, live_bytes, calls, bad_sizes;
  long fail_after; /* <= 0: never */
} counter_t;

static void *count_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  counter_t *c = ud;
  unsigned char *blk = ptr ? (unsigned char *)ptr - HDR : NULL;
  size_t old = blk ? *(size_t *)blk : 0;
  if (blk && old != osize)
    c->bad_sizes++;
  if (nsize == 0) {
    if (blk) {
      c->live_blocks--;
      c->live_bytes -= old;
      free(blk);
    }
    return NULL;
  }
  if (nsize > old) {
    c->calls++;
    if (c->fail_after > 0 && --c->fail_after == 0)
      return NULL;
  }
  unsigned char *nb = realloc(blk, nsize + HDR);
  if (!nb)
    return NULL;
  *(size_t *)nb = nsize;
  if (!blk)
    c->live_blocks++;
  c->live_bytes = c->live_bytes - old + nsize;
  return nb + HDR;
}

static void assert_clean(const counter_t *c) {
  assert_int_equal(c->bad_sizes, 0);
  assert_int_equal(c->live_blocks, 0);
  assert_int_equal(c->live_bytes, 0);
}

/* {=== Fixture ===} */

typedef struct fx {
  counter_t count;
  sim_machine_t m;
  char err[512];
  char path[4096];
  char tmp[256]; /* a private directory for generated files */
} fx_t;

static int group_setup(void **state) {
  fx_t *f = calloc(1, sizeof *f);
  if (!f)
    return -1;
  *state = f;
  const char *t = getenv("TMPDIR");
  snprintf(f->tmp, sizeof f->tmp, "%s/strata-sim-machine-XXXXXX",
           t && *t ? t : "/tmp");
  if (mkdtemp(f->tmp))
    return 0;
  free(f); /* cmocka skips the group teardown when the setup fails */
  return -1;
}

/* Removes the generated files, which all live directly in f->tmp. */
static int group_teardown(void **state) {
  fx_t *f = *state;
  DIR *d = opendir(f->tmp);
  struct dirent *e;
  char p[4096];
  while (d && (e = readdir(d)))
    if (e->d_name[0] != '.') {
      snprintf(p, sizeof p, "%s/%s", f->tmp, e->d_name);
      unlink(p);
    }
  if (d)
    closedir(d);
  rmdir(f->tmp);
  free(f);
  return 0;
}

static int setup(void **state) {
  fx_t *f = *state;
  memset(&f->count, 0, sizeof f->count);
  memset(&f->m, 0, sizeof f->m);
  f->err[0] = '\0';
  return 0;
}

static int teardown(void **state) {
  fx_t *f = *state;
  sim_machine_free(&f->m, count_alloc, &f->count);
  assert_clean(&f->count);
  return 0;
}

static const char *in_dir(fx_t *f, const char *env, const char *file) {
  const char *dir = getenv(env);
  assert_non_null(dir);
  int n = snprintf(f->path, sizeof f->path, "%s/%s", dir, file);
  assert_true(n > 0 && (size_t)n < sizeof f->path);
  return f->path;
}

/* Writes `len` bytes of `text` to a file in the private directory. */
static const char *write_tmp(fx_t *f, const char *file, const char *text,
                             size_t len) {
  int n = snprintf(f->path, sizeof f->path, "%s/%s", f->tmp, file);
  assert_true(n > 0 && (size_t)n < sizeof f->path);
  FILE *out = fopen(f->path, "wb");
  assert_non_null(out);
  assert_int_equal(fwrite(text, 1, len, out), len);
  assert_int_equal(fclose(out), 0);
  return f->path;
}

static int load(fx_t *f, const char *path) {
  return sim_machine_load(path, count_alloc, &f->count, &f->m, f->err,
                          sizeof f->err);
}

static void load_ok(fx_t *f, const char *path) {
  int rc = load(f, path);
  if (rc != 0)
    print_error("%s\n", f->err);
  assert_int_equal(rc, 0);
  assert_string_equal(f->err, "");
}

static const sim_device_spec_t *device(fx_t *f, const char *name) {
  for (size_t i = 0; i < f->m.ndevices; i++)
    if (strcmp(f->m.devices[i].name, name) == 0)
      return &f->m.devices[i];
  fail_msg("no device named '%s'", name);
  return NULL;
}

/* {=== The shipped machines ===} */

static void test_sim_machine_mixed(void **state) {
  fx_t *f = *state;
  load_ok(f, in_dir(f, "STRATA_TEST_MACHINES", "mixed.lua"));
  assert_string_equal(f->m.name, "mixed");
  assert_false(f->m.modelled);
  assert_false(f->m.skip_kernels);
  assert_int_equal(f->m.ndevices, 3);

  const sim_device_spec_t *cpu = &f->m.devices[0];
  assert_int_equal(cpu->device_class, STRATA_CLASS_CPU);
  assert_int_equal(cpu->memory, 0);
  assert_true(cpu->link_bandwidth == 0);
  assert_true(cpu->mem_bandwidth == 50e9);
  assert_true(cpu->fp64 == 1e12 && cpu->fp32 == 2e12);
  assert_int_equal(cpu->workers, 2);
  assert_int_equal(cpu->numa, 0);

  const sim_device_spec_t *h100 = device(f, "H100 SXM (simulated)");
  assert_int_equal(h100->device_class, STRATA_CLASS_HBM);
  assert_int_equal(h100->memory, 80 * GIB);
  assert_true(h100->mem_bandwidth == 3.35e12);
  assert_true(h100->link_bandwidth == 64e9);
  assert_true(fabs(h100->link_latency - 5e-6) < 1e-18); /* 5 * us */
  assert_true(h100->fp64 == 34e12 && h100->fp32 == 67e12);
  assert_true(h100->ecc);
  assert_int_equal(h100->workers, 1);

  const sim_device_spec_t *rtx = device(f, "RTX 4090 (simulated)");
  assert_int_equal(rtx->device_class, STRATA_CLASS_GDDR);
  assert_int_equal(rtx->memory, 24 * GIB);
  assert_true(rtx->mem_bandwidth == 1.008e12);
  assert_true(rtx->link_bandwidth == 32e9);
  assert_true(rtx->fp64 < rtx->fp32 / 50); /* consumer FP64: 1/64 rate */
  assert_false(rtx->ecc);
  assert_int_equal(rtx->numa, 0);

  /* The real cards' facts; made-up uuids; none on the CPUs. */
  assert_string_equal(h100->uuid, "SIM-mixed-2");
  assert_int_equal(h100->cc_major, 9);
  assert_int_equal(h100->cc_minor, 0);
  assert_int_equal(h100->memory_bus_width, 5120);
  assert_int_equal(h100->pcie_gen, 5);
  assert_int_equal(h100->pcie_width, 16);
  assert_string_equal(rtx->uuid, "SIM-mixed-3");
  assert_int_equal(rtx->cc_major, 8);
  assert_int_equal(rtx->cc_minor, 9);
  assert_int_equal(rtx->memory_bus_width, 384);
  assert_int_equal(rtx->pcie_gen, 4);
  assert_int_equal(rtx->pcie_width, 16);
  assert_string_equal(cpu->uuid, "");
  assert_int_equal(cpu->cc_major + cpu->cc_minor, 0);
  assert_int_equal(cpu->memory_bus_width + cpu->pcie_gen + cpu->pcie_width, 0);

  for (size_t i = 0; i < f->m.ndevices; i++) {
    assert_int_equal(f->m.devices[i].peers, 0);
    assert_true(f->m.devices[i].peer_bandwidth == 0);
    assert_int_equal(f->m.devices[i].faults.die_after, 0);
  }
}

/* The sim puts the facts where a real card's backend does: a runtime on
 * mixed.lua reports them through strata_device_info. */
static void test_sim_machine_facts_reported(void **state) {
  (void)state;
  test_sim_rt_t m;
  char path[1024];
  snprintf(path, sizeof path, "%s/mixed.lua", getenv("STRATA_TEST_MACHINES"));
  test_sim_start(&m, "sim", path, 1);
  int seen = 0;
  for (int d = 0; d < strata_device_count(m.rt); d++) {
    strata_device_info_t i = test_device_info(m.rt, d);
    if (strcmp(i.name, "H100 SXM (simulated)") == 0) {
      assert_string_equal(i.uuid, "SIM-mixed-2");
      assert_int_equal(i.cc_major, 9);
      assert_int_equal(i.cc_minor, 0);
      assert_int_equal(i.memory_bus_width, 5120);
      assert_int_equal(i.pcie_gen, 5);
      assert_int_equal(i.pcie_width, 16);
      seen |= 1;
    } else if (strcmp(i.name, "RTX 4090 (simulated)") == 0) {
      assert_string_equal(i.uuid, "SIM-mixed-3");
      assert_int_equal(i.cc_major, 8);
      assert_int_equal(i.cc_minor, 9);
      assert_int_equal(i.memory_bus_width, 384);
      assert_int_equal(i.pcie_gen, 4);
      assert_int_equal(i.pcie_width, 16);
      seen |= 2;
    } else if (i.device_class == STRATA_CLASS_CPU &&
               strcmp(i.name, "host CPUs") == 0) {
      assert_string_equal(i.uuid, ""); /* unknown */
      assert_int_equal(i.cc_major + i.cc_minor, 0);
      assert_int_equal(i.memory_bus_width + i.pcie_gen + i.pcie_width, 0);
      seen |= 4;
    }
  }
  assert_int_equal(seen, 7);
  test_sim_destroy(&m);
}

/* The peers of devices[i] in big.lua: exactly the other HBM card of the
 * same node. */
static void check_big_peers(fx_t *f, size_t i) {
  const sim_device_spec_t *d = &f->m.devices[i];
  uint64_t want = 0;
  for (size_t j = 0; j < f->m.ndevices; j++) {
    const sim_device_spec_t *o = &f->m.devices[j];
    if (j != i && d->device_class == STRATA_CLASS_HBM &&
        o->device_class == STRATA_CLASS_HBM && o->numa == d->numa)
      want |= UINT64_C(1) << j;
    /* Symmetric: i lists j exactly when j lists i. */
    assert_int_equal(d->peers >> j & 1, o->peers >> i & 1);
  }
  assert_int_equal(d->peers, want);
  if (want)
    assert_true(d->peer_bandwidth == 450e9);
}

static void test_sim_machine_big(void **state) {
  fx_t *f = *state;
  load_ok(f, in_dir(f, "STRATA_TEST_MACHINES", "big.lua"));
  assert_string_equal(f->m.name, "big");
  assert_true(f->m.modelled);
  assert_false(f->m.skip_kernels);
  assert_int_equal(f->m.ndevices, 10);
  unsigned per_node[2][STRATA_CLASS_COUNT] = {{0}};
  for (size_t i = 0; i < f->m.ndevices; i++) {
    const sim_device_spec_t *d = &f->m.devices[i];
    assert_in_range(d->numa, 0, 1);
    per_node[d->numa][d->device_class]++;
    if (d->device_class == STRATA_CLASS_HBM) {
      assert_int_equal(d->memory, 80 * GIB);
      assert_true(d->ecc);
      assert_int_equal(d->cc_major * 10 + d->cc_minor, 90);
      assert_int_equal(d->memory_bus_width, 5120);
      assert_int_equal(d->pcie_gen * 100 + d->pcie_width, 516);
    } else if (d->device_class == STRATA_CLASS_GDDR) {
      assert_int_equal(d->memory, 24 * GIB);
      assert_int_equal(d->cc_major * 10 + d->cc_minor, 89);
      assert_int_equal(d->memory_bus_width, 384);
      assert_int_equal(d->pcie_gen * 100 + d->pcie_width, 416);
    } else {
      assert_int_equal(d->memory, 0);
      assert_int_equal(d->cc_major + d->memory_bus_width + d->pcie_gen, 0);
    }
    /* Every card has its own made-up identity: devices[N] of big. */
    char uuid[64] = "";
    if (d->device_class != STRATA_CLASS_CPU)
      snprintf(uuid, sizeof uuid, "SIM-big-%zu", i + 1);
    assert_string_equal(d->uuid, uuid);
    check_big_peers(f, i);
  }
  for (int n = 0; n < 2; n++) {
    assert_int_equal(per_node[n][STRATA_CLASS_CPU], 1);
    assert_int_equal(per_node[n][STRATA_CLASS_HBM], 2);
    assert_int_equal(per_node[n][STRATA_CLASS_GDDR], 2);
  }
}

/* {=== Defaults, constants, peers ===} */

/* The longest name a device may have: 63 bytes. */
#define NAME63 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde"

static void test_sim_machine_defaults(void **state) {
  fx_t *f = *state;
  static const char text[] =
      "return { devices = {\n"
      "  { class = 'cpu', name = 'c', mem_bandwidth = KB, fp64 = KB,\n"
      "    fp32 = KB },\n"
      "  { class = 'gddr', name = '" NAME63 "', memory = 1,\n"
      "    mem_bandwidth = KB,\n"
      "    link_bandwidth = KB, fp64 = KB, fp32 = KB, health = {} },\n"
      "} }\n";
  load_ok(f, write_tmp(f, "minimal.lua", text, sizeof text - 1));
  assert_string_equal(f->m.name, "minimal"); /* the file name */
  assert_false(f->m.modelled);
  assert_false(f->m.skip_kernels);
  assert_int_equal(f->m.ndevices, 2);
  for (size_t i = 0; i < 2; i++) {
    const sim_device_spec_t *d = &f->m.devices[i];
    assert_true(d->link_latency == 5e-6);
    assert_false(d->ecc);
    assert_int_equal(d->numa, 0);
    assert_int_equal(d->workers, 1);
    assert_int_equal(d->peers, 0);
    assert_true(d->temperature == 40 && d->power == 0);
    assert_int_equal(d->faults.copy_fail_at, 0);
    assert_int_equal(d->faults.copy_fail_count, 1);
    assert_int_equal(d->faults.die_after, 0);
    assert_int_equal(d->faults.hot_after, 0);
  }
  assert_int_equal(f->m.devices[1].memory, 1);
  assert_string_equal(f->m.devices[1].name, NAME63);
}

static void test_sim_machine_constants(void **state) {
  fx_t *f = *state;
  static const char text[] =
      "return { name = 'units', time = 'modelled', skip_kernels = true,\n"
      "  devices = {\n"
      "  { class = 'hbm', name = 'x', memory = TiB + GiB + MiB + KiB,\n"
      "    mem_bandwidth = TB + GB + MB + KB, link_bandwidth = 2 * GB,\n"
      "    link_latency = ms + 3 * us, fp64 = TFLOPS + GFLOPS,\n"
      "    fp32 = 1.5 * GiB, numa = 3, workers = 64, ecc = true,\n"
      "    health = { temperature = -50, power = 1e3 },\n"
      "    faults = { copy_fail_at = 3, copy_fail_count = 2,\n"
      "               die_after = 1e3, hot_after = 5, hot_temperature = 92 } "
      "},\n"
      "} }\n";
  load_ok(f, write_tmp(f, "units.lua", text, sizeof text - 1));
  const sim_device_spec_t *d = &f->m.devices[0];
  assert_string_equal(f->m.name, "units");
  assert_true(f->m.modelled && f->m.skip_kernels);
  assert_int_equal(d->memory, (UINT64_C(1) << 40) + (UINT64_C(1) << 30) +
                                  (UINT64_C(1) << 20) + 1024);
  assert_true(d->mem_bandwidth == 1e12 + 1e9 + 1e6 + 1e3);
  assert_true(fabs(d->link_latency - 1.003e-3) < 1e-15);
  assert_true(d->fp64 == 1e12 + 1e9);
  assert_true(d->fp32 == 1610612736.0);
  assert_int_equal(d->numa, 3);
  assert_int_equal(d->workers, 64);
  assert_true(d->temperature == -50 && d->power == 1000);
  assert_int_equal(d->faults.copy_fail_at, 3);
  assert_int_equal(d->faults.copy_fail_count, 2);
  assert_int_equal(d->faults.die_after, 1000); /* 1e3 is a whole number */
  assert_int_equal(d->faults.hot_after, 5);
  assert_true(d->faults.hot_temperature == 92);
}

/* A peer named on one side only is linked both ways, and without
 * peer_bandwidth the copies run at the slower of the two host links. */
static void test_sim_machine_peers(void **state) {
  fx_t *f = *state;
  static const char text[] =
      "local function card(name, link, peers)\n"
      "  return { class = 'hbm', name = name, memory = 1.5 * GiB,\n"
      "    mem_bandwidth = TB, link_bandwidth = link, fp64 = TFLOPS,\n"
      "    fp32 = TFLOPS, peers = peers }\n"
      "end\n"
      "return { devices = {\n"
      "  card('a', 64 * GB, { 'b', 'b' }), card('b', 32 * GB),\n"
      "  card('c', 64 * GB),\n"
      "} }\n";
  load_ok(f, write_tmp(f, "peers.lua", text, sizeof text - 1));
  assert_int_equal(f->m.devices[0].memory, 3 * GIB / 2);
  assert_int_equal(f->m.devices[0].peers, 1u << 1);
  assert_int_equal(f->m.devices[1].peers, 1u << 0);
  assert_int_equal(f->m.devices[2].peers, 0);
  assert_true(f->m.devices[0].peer_bandwidth == 32e9);
  assert_true(f->m.devices[1].peer_bandwidth == 32e9);
  assert_true(f->m.devices[2].peer_bandwidth == 0);
}

/* {=== Bad input ===} */

/* Each file in tests/machines and what its message must contain:
 * "FILE: FIELD: REASON" for a bad field, "FILE:LINE: REASON" for an error
 * Lua reports itself (line > 0), "FILE: REASON" for the file as a whole. */
static const struct bad_case {
  const char *file, *field;
  int line;
  const char *reason;
} bad_cases[] = {
    {"syntax-error.lua", NULL, 5, "'}' expected"},
    {"runtime-error.lua", NULL, 6, "attempt to perform arithmetic"},
    {"no-return.lua", NULL, 0, "the file must return a table (got nil)"},
    {"not-a-table.lua", NULL, 0, "the file must return a table (got number)"},
    {"empty-devices.lua", "devices", 0, "must not be empty"},
    {"unknown-class.lua", "devices[1].class", 0,
     "must be 'cpu', 'hbm' or 'gddr' (got 'tpu')"},
    {"negative-memory.lua", "devices[2].memory", 0,
     "-5 bytes is out of range (1 to 2^50 bytes)"},
    {"fractional-memory.lua", "devices[1].memory", 0,
     "must be a whole number of bytes (got 1.5)"},
    {"missing-fp64.lua", "devices[3].fp64", 0, "missing"},
    {"missing-memory.lua", "devices[1].memory", 0, "missing"},
    {"unknown-top-field.lua", "nmae", 0, "unknown field"},
    {"unknown-device-field.lua", "devices[1].memroy", 0, "unknown field"},
    {"unknown-health-field.lua", "devices[1].health.temprature", 0,
     "unknown field"},
    {"unknown-faults-field.lua", "devices[2].faults.die_at", 0,
     "unknown field"},
    {"wrong-type-number.lua", "devices[1].fp32", 0,
     "must be a number (got '67')"},
    {"wrong-type-boolean.lua", "devices[1].ecc", 0,
     "must be a boolean (got 'yes')"},
    {"wrong-type-table.lua", "devices[1].health", 0,
     "must be a table (got 45)"},
    {"wrong-type-devices.lua", "devices", 0, "must be a table (got 'all"},
    {"not-a-list.lua", "devices", 0, "must be a list (found key '"},
    {"duplicate-name.lua", "devices[2].name", 0,
     "duplicate name 'A' (also devices[1])"},
    {"peer-self.lua", "devices[1].peers[1]", 0,
     "a device cannot be its own peer"},
    {"unknown-peer.lua", "devices[2].peers[1]", 0, "no device named 'B200'"},
    {"peer-cpu.lua", "devices[2].peers[1]", 0, "'host' is a cpu device"},
    {"cpu-memory.lua", "devices[1].memory", 0,
     "a cpu device works on host memory"},
    {"workers-range.lua", "devices[1].workers", 0,
     "65 workers is out of range (1 to 64 workers)"},
    {"nan-rate.lua", "devices[1].fp64", 0,
     "nan flop/s is out of range (1e3 to 1e18 flop/s)"},
    {"hot-without-temperature.lua", "devices[1].faults.hot_temperature", 0,
     "missing"},
    {"temperature-without-hot.lua", "devices[1].faults.hot_temperature", 0,
     "needs hot_after"},
    {"count-without-at.lua", "devices[1].faults.copy_fail_count", 0,
     "needs copy_fail_at"},
    {"count-too-large.lua", "devices[1].faults.copy_fail_count", 0,
     "8589934592 copies is out of range (1 to 1e9 copies)"},
    {"cpu-link.lua", "devices[1].link_bandwidth", 0,
     "a cpu device has no host link"},
    {"temperature-range.lua", "devices[1].health.temperature", 0,
     "5000 degrees C is out of range (-50 to 200 degrees C)"},
    {"rate-tiny.lua", "devices[1].fp64", 0,
     "1e-300 flop/s is out of range (1e3 to 1e18 flop/s)"},
    {"rate-huge.lua", "devices[1].fp32", 0,
     "1e+300 flop/s is out of range (1e3 to 1e18 flop/s)"},
    {"latency-huge.lua", "devices[1].link_latency", 0,
     "1e+300 s is out of range (0 to 10 s)"},
    {"latency-negative.lua", "devices[1].link_latency", 0,
     "-5e-06 s is out of range (0 to 10 s)"},
    {"link-bandwidth-tiny.lua", "devices[2].link_bandwidth", 0,
     "1e-300 B/s is out of range (1e3 to 1e15 B/s)"},
    {"bandwidth-huge.lua", "devices[1].mem_bandwidth", 0,
     "1e+300 B/s is out of range (1e3 to 1e15 B/s)"},
    {"peer-bandwidth-range.lua", "devices[1].peer_bandwidth", 0,
     "1 B/s is out of range (1e3 to 1e15 B/s)"},
    {"memory-huge.lua", "devices[1].memory", 0,
     "1152921504606846976 bytes is out of range (1 to 2^50 bytes)"},
    {"power-range.lua", "devices[1].health.power", 0,
     "1e+300 W is out of range (0 to 1e6 W)"},
    {"numa-range.lua", "devices[1].numa", 0,
     "70000 is out of range (0 to 65535)"},
    {"fault-count-range.lua", "devices[1].faults.die_after", 0,
     "1e+300 tasks is out of range (1 to 1e12 tasks)"},
    {"copy-fail-at-range.lua", "devices[1].faults.copy_fail_at", 0,
     "0 copies is out of range (1 to 1e12 copies)"},
    {"hot-temperature-range.lua", "devices[1].faults.hot_temperature", 0,
     "-300 degrees C is out of range (-50 to 200 degrees C)"},
    {"fractional-workers.lua", "devices[1].workers", 0,
     "must be a whole number (got 1.5)"},
    {"nested-cycle.lua", NULL, 0, "tables nested deeper than 32 levels"},
    {"nested-deep.lua", NULL, 0, "tables nested deeper than 32 levels"},
    {"bad-time.lua", "time", 0, "must be 'real' or 'modelled' (got 'fast')"},
    {"skip-kernels-real.lua", "skip_kernels", 0, "needs time = 'modelled'"},
    {"name-too-long.lua", "devices[1].name", 0,
     "must be a non-empty string of at most 63 bytes"},
    {"too-many-devices.lua", "devices", 0, "too many devices (65; at most 64)"},
    {"global-assign.lua", NULL, 4, "cannot assign global 'H100'"},
    {"unknown-name.lua", NULL, 6, "unknown name 'TFLOP'"},
    {"infinite-loop.lua", NULL, 5, "instruction budget (1000000) exceeded"},
    {"memory-bomb.lua", NULL, 0, "memory limit exceeded"},
    /* The instruction budget or the time limit, whichever comes first. */
    {"concat-bomb.lua", NULL, 7, ""},
    {"cc-not-a-version.lua", "devices[1].compute_capability", 0,
     "must be 'MAJOR.MINOR' with major 1 to 99 and minor 0 to 9, such as "
     "'9.0' (got 'x.y')"},
    {"cc-number.lua", "devices[1].compute_capability", 0,
     "must be a string such as '9.0' (got 9)"},
    {"pcie-gen-range.lua", "devices[1].pcie.gen", 0,
     "9 is out of range (1 to 7)"},
    {"pcie-width-lanes.lua", "devices[1].pcie.width", 0,
     "must be 1, 2, 4, 8, 12, 16 or 32 lanes (got 3)"},
    {"pcie-missing-width.lua", "devices[1].pcie.width", 0, "missing"},
    {"bus-width-range.lua", "devices[1].memory_bus_width", 0,
     "100000 bits is out of range (1 to 65536 bits)"},
    {"uuid-too-long.lua", "devices[1].uuid", 0,
     "must be a non-empty string of at most 63 bytes"},
    {"uuid-duplicate.lua", "devices[2].uuid", 0,
     "duplicate uuid 'GPU-same' (also devices[1])"},
    {"cpu-pcie.lua", "devices[1].pcie", 0, "a cpu device has none"},
};
#define NBAD (sizeof bad_cases / sizeof bad_cases[0])

static void expect_rejected(fx_t *f, const char *path, int status,
                            const char *want) {
  memset(&f->count, 0, sizeof f->count);
  int rc = load(f, path);
  if (!strstr(f->err, want))
    print_error("message: %s\nwanted:  %s\n", f->err, want);
  assert_int_equal(rc, status);
  assert_non_null(strstr(f->err, want));
  /* A failed load leaves nothing behind, not even a partial machine. */
  assert_null(f->m.devices);
  assert_int_equal(f->m.ndevices, 0);
  assert_clean(&f->count);
}

static void test_sim_machine_bad_corpus(void **state) {
  fx_t *f = *state;
  char want[256];
  for (size_t i = 0; i < NBAD; i++) {
    const struct bad_case *b = &bad_cases[i];
    if (b->field)
      snprintf(want, sizeof want, "%s: %s: %s", b->file, b->field, b->reason);
    else if (b->line)
      snprintf(want, sizeof want, "%s:%d: %s", b->file, b->line, b->reason);
    else
      snprintf(want, sizeof want, "%s: %s", b->file, b->reason);
    expect_rejected(f, in_dir(f, "STRATA_TEST_BAD_MACHINES", b->file),
                    STRATA_EINVAL, want);
  }
}

/* Every file in the corpus has a case above, so none is left untested. */
static void test_sim_machine_corpus_complete(void **state) {
  (void)state;
  DIR *d = opendir(getenv("STRATA_TEST_BAD_MACHINES"));
  struct dirent *e;
  size_t files = 0;
  assert_non_null(d);
  while ((e = readdir(d))) {
    size_t len = strlen(e->d_name);
    if (len < 4 || strcmp(e->d_name + len - 4, ".lua") != 0)
      continue;
    size_t i = 0;
    while (i < NBAD && strcmp(bad_cases[i].file, e->d_name) != 0)
      i++;
    if (i == NBAD)
      fail_msg("tests/machines/%s has no case in bad_cases", e->d_name);
    files++;
  }
  closedir(d);
  assert_int_equal(files, NBAD);
}

/* Runaway descriptions cost milliseconds: the budget counts the work of
 * `..` on megabytes, and the clock backs it up. */
static void test_sim_machine_runaway_is_quick(void **state) {
  fx_t *f = *state;
  static const char *const files[] = {"infinite-loop.lua", "memory-bomb.lua",
                                      "concat-bomb.lua"};
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    expect_rejected(f, in_dir(f, "STRATA_TEST_BAD_MACHINES", files[i]),
                    STRATA_EINVAL, files[i]);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took = (double)(t1.tv_sec - t0.tv_sec) +
                  (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    if (took > 2.0 || !(strstr(f->err, "exceeded")))
      fail_msg("%s: %.2f s, '%s'", files[i], took, f->err);
  }
}

static void test_sim_machine_bytecode(void **state) {
  fx_t *f = *state;
  static const char text[] = "\x1bLuaT\x00\x19\x93\r\n\x1a\n";
  expect_rejected(f, write_tmp(f, "bytecode.lua", text, sizeof text - 1),
                  STRATA_EINVAL,
                  "bytecode.lua: precompiled (binary) chunks are not "
                  "accepted");
}

/* One byte over the 1 MiB cap; all comment, so only the size is wrong. */
static void test_sim_machine_huge(void **state) {
  fx_t *f = *state;
  size_t len = ((size_t)1 << 20) + 1;
  char *text = malloc(len);
  assert_non_null(text);
  memset(text, '-', len);
  const char *path = write_tmp(f, "huge.lua", text, len);
  free(text);
  expect_rejected(f, path, STRATA_EINVAL,
                  "huge.lua: larger than 1048576 bytes");
}

static void test_sim_machine_missing_file(void **state) {
  fx_t *f = *state;
  expect_rejected(f,
                  in_dir(f, "STRATA_TEST_BAD_MACHINES", "no-such-machine.lua"),
                  STRATA_ENOENT, "no-such-machine.lua: no such file");
  /* A path through a file, not a directory, is as missing. */
  expect_rejected(f, in_dir(f, "STRATA_TEST_BAD_MACHINES", "bad-time.lua/x"),
                  STRATA_ENOENT, "bad-time.lua/x: no such file");
  char want[4200];
  snprintf(want, sizeof want, "%s: is a directory",
           getenv("STRATA_TEST_BAD_MACHINES"));
  expect_rejected(f, getenv("STRATA_TEST_BAD_MACHINES"), STRATA_EINVAL, want);
}

/* A FIFO nobody writes to is refused at once, not read (which would wait
 * for a writer forever); so is a character device. */
static void test_sim_machine_not_regular(void **state) {
  fx_t *f = *state;
  int n = snprintf(f->path, sizeof f->path, "%s/fifo.lua", f->tmp);
  assert_true(n > 0 && (size_t)n < sizeof f->path);
  assert_int_equal(mkfifo(f->path, 0600), 0);
  char want[4200];
  snprintf(want, sizeof want, "%s: not a regular file (a FIFO)", f->path);
  expect_rejected(f, f->path, STRATA_EINVAL, want);
  unlink(f->path);
  expect_rejected(f, "/dev/zero", STRATA_EINVAL,
                  "/dev/zero: not a regular file (a character device)");
}

/* Permission checks pass for root: run this one only where they apply. */
static void test_sim_machine_unreadable(void **state) {
  fx_t *f = *state;
  static const char text[] = "return {}\n";
  const char *path = write_tmp(f, "secret.lua", text, sizeof text - 1);
  assert_int_equal(chmod(path, 0), 0);
  FILE *probe = fopen(path, "r");
  if (probe) { /* root, or a file system without permissions */
    fclose(probe);
    print_message("# permissions are not enforced here: skipped\n");
    return;
  }
  char want[4200];
  snprintf(want, sizeof want, "%s: permission denied", path);
  expect_rejected(f, path, STRATA_EIO, want);
}

/* {=== Nesting ===} */

/* Source text "return { x = {{...{}...}} }" with `levels` braces around x's
 * value: nesting the parser itself refuses past 200 levels. */
static const char *write_nested_source(fx_t *f, const char *file,
                                       size_t levels) {
  static const char head[] = "return { x = ", tail[] = " }\n";
  size_t len = sizeof head - 1 + 2 * levels + sizeof tail - 1;
  char *text = malloc(len);
  assert_non_null(text);
  memcpy(text, head, sizeof head - 1);
  memset(text + sizeof head - 1, '{', levels);
  memset(text + sizeof head - 1 + levels, '}', levels);
  memcpy(text + len - (sizeof tail - 1), tail, sizeof tail - 1);
  const char *path = write_tmp(f, file, text, len);
  free(text);
  return path;
}

static void test_sim_machine_nested_source(void **state) {
  fx_t *f = *state;
  static const size_t levels[] = {200, 100000};
  for (size_t i = 0; i < 2; i++) {
    char file[32], want[4200];
    snprintf(file, sizeof file, "source-%zu.lua", levels[i]);
    const char *path = write_nested_source(f, file, levels[i]);
    /* Lua's "C stack overflow" names no file by itself. */
    snprintf(want, sizeof want, "%s: C stack overflow", path);
    expect_rejected(f, path, STRATA_EINVAL, want);
  }
}

/* Tables the chunk builds: "local t = {} for i = 1, N do t = { t } end",
 * returned as the value of x (at level 2): the loader refuses them. */
static void test_sim_machine_nested_built(void **state) {
  fx_t *f = *state;
  static const unsigned levels[] = {200, 100000};
  for (size_t i = 0; i < 2; i++) {
    char text[160], file[32], want[4200];
    int n = snprintf(text, sizeof text,
                     "local t = {}\nfor i = 1, %u do t = { t } end\n"
                     "return { x = t }\n",
                     levels[i]);
    snprintf(file, sizeof file, "built-%u.lua", levels[i]);
    const char *path = write_tmp(f, file, text, (size_t)n);
    snprintf(want, sizeof want, "%s: tables nested deeper than 32 levels",
             path);
    expect_rejected(f, path, STRATA_EINVAL, want);
  }
}

/* 32 levels pass the nesting check (the field check refuses x after it),
 * 33 do not; a table shared along every path (2^30 of them) is measured
 * once, so the check takes no time. */
static void test_sim_machine_nested_bound(void **state) {
  fx_t *f = *state;
  static const struct {
    const char *body, *want;
  } cases[] = {
      {"for i = 1, 30 do t = { t } end", "x: unknown field"},
      {"for i = 1, 31 do t = { t } end", "tables nested deeper than 32"},
      {"for i = 1, 30 do t = { t, t, [t] = t } end", "x: unknown field"},
      {"for i = 1, 31 do t = { [t] = 1 } end", "tables nested deeper than 32"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char text[160], want[128];
    int n = snprintf(text, sizeof text, "local t = {}\n%s\nreturn { x = t }\n",
                     cases[i].body);
    const char *path = write_tmp(f, "bound.lua", text, (size_t)n);
    snprintf(want, sizeof want, "bound.lua: %s", cases[i].want);
    expect_rejected(f, path, STRATA_EINVAL, want);
  }
}

/* {=== Figures at the ends of their ranges ===} */

static void test_sim_machine_extreme_figures(void **state) {
  fx_t *f = *state;
  static const char text[] =
      "local function card(name, v)\n"
      "  return { class = 'hbm', name = name, memory = v.memory,\n"
      "    mem_bandwidth = v.bw, link_bandwidth = v.bw,\n"
      "    link_latency = v.latency, fp64 = v.rate, fp32 = v.rate,\n"
      "    peer_bandwidth = v.bw, numa = v.numa, workers = v.workers,\n"
      "    health = { temperature = v.temp, power = v.power } }\n"
      "end\n"
      "local lo = { memory = 1, bw = 1e3, latency = 0, rate = 1e3,\n"
      "  numa = 0, workers = 1, temp = -50, power = 0 }\n"
      "local hi = { memory = 1 << 50, bw = 1e15, latency = 10, rate = 1e18,\n"
      "  numa = 65535, workers = 64, temp = 200, power = 1e6 }\n"
      "local a, b = card('lo', lo), card('hi', hi)\n"
      "a.peers = { 'hi' }\n"
      "a.faults = { copy_fail_at = 1, copy_fail_count = 1 }\n"
      "b.faults = { copy_fail_at = 1e12, copy_fail_count = 1e9,\n"
      "  die_after = 1e12, hot_after = 1e12, hot_temperature = 200 }\n"
      "return { time = 'modelled', devices = { a, b } }\n";
  load_ok(f, write_tmp(f, "extreme.lua", text, sizeof text - 1));
  const sim_device_spec_t *lo = device(f, "lo"), *hi = device(f, "hi");
  assert_int_equal(lo->memory, 1);
  assert_int_equal(hi->memory, UINT64_C(1) << 50);
  assert_true(lo->fp64 == 1e3 && hi->fp32 == 1e18);
  assert_true(lo->link_latency == 0 && hi->link_latency == 10);
  assert_true(hi->peer_bandwidth == 1e15 && hi->mem_bandwidth == 1e15);
  assert_int_equal(hi->numa, 65535);
  assert_int_equal(hi->faults.copy_fail_count, 1000000000u);
  assert_int_equal(hi->faults.die_after, UINT64_C(1000000000000));
}

/* {=== The time model's arithmetic ===} */

static void test_sim_machine_time_saturates(void **state) {
  (void)state;
  /* The worst the accepted figures give: all of the largest memory over
   * the slowest link, the largest flops over the slowest rate. */
  double copy = sim_time_add(10, sim_time_div(0x1p50, 1e3));
  assert_true(copy > 0 && copy <= SIM_TIME_MAX && isfinite(copy));
  assert_true(sim_time_div(1e308, 1e3) == SIM_TIME_MAX);
  assert_true(sim_time_div(INFINITY, 1e3) == SIM_TIME_MAX);
  assert_true(sim_time_div(1e300, 1e-300) == SIM_TIME_MAX);
  assert_true(sim_time_div(NAN, 1e3) == 0);
  assert_true(sim_time_div(1e3, NAN) == 0);
  assert_true(sim_time_div(-1, 1e3) == 0 && sim_time_div(1, 0) == 0);
  assert_true(sim_time_div(2e9, 1e9) == 2);
  assert_true(sim_time_add(SIM_TIME_MAX, SIM_TIME_MAX) == SIM_TIME_MAX);
  assert_true(sim_time_add(NAN, 1) == 1 && sim_time_add(-5, 1) == 1);
  assert_true(sim_time_add(INFINITY, 0) == SIM_TIME_MAX);
  assert_int_equal(sim_time_ns(1.5), 1500000000u);
  assert_int_equal(sim_time_ns(NAN), 0);
  assert_int_equal(sim_time_ns(-1), 0);
  assert_int_equal(sim_time_ns(1e300), UINT64_C(100000000000000000));
  /* The clocks of every device at the ceiling still sum within int64. */
  assert_true((double)sim_time_ns(SIM_TIME_MAX) * SIM_MAX_DEVICES < 0x1p63);
  /* A clock that keeps adding work grows, then stays at the ceiling:
   * never wraps, never goes back. */
  double clock = 0, prev = 0;
  uint64_t prev_ns = 0;
  for (int i = 0; i < 400; i++) {
    clock = sim_time_add(clock, sim_time_div(1e15 * i, 1e3));
    assert_true(clock >= prev && clock <= SIM_TIME_MAX);
    assert_true(sim_time_ns(clock) >= prev_ns);
    prev = clock;
    prev_ns = sim_time_ns(clock);
  }
  assert_true(clock == SIM_TIME_MAX);
}

static void test_sim_machine_bad_arguments(void **state) {
  fx_t *f = *state;
  const char *path = in_dir(f, "STRATA_TEST_MACHINES", "mixed.lua");
  assert_int_equal(sim_machine_load(NULL, count_alloc, &f->count, &f->m, f->err,
                                    sizeof f->err),
                   STRATA_EINVAL);
  assert_int_equal(
      sim_machine_load(path, NULL, NULL, &f->m, f->err, sizeof f->err),
      STRATA_EINVAL);
  assert_int_equal(sim_machine_load(path, count_alloc, &f->count, NULL, f->err,
                                    sizeof f->err),
                   STRATA_EINVAL);
  /* No message buffer, or a tiny one: still a clean result. */
  assert_int_equal(
      sim_machine_load(path, count_alloc, &f->count, &f->m, NULL, 0), 0);
  sim_machine_free(&f->m, count_alloc, &f->count);
  char small[8];
  path = in_dir(f, "STRATA_TEST_BAD_MACHINES", "negative-memory.lua");
  assert_int_equal(sim_machine_load(path, count_alloc, &f->count, &f->m, small,
                                    sizeof small),
                   STRATA_EINVAL);
  assert_int_equal(strlen(small), sizeof small - 1);
  sim_machine_free(NULL, count_alloc, &f->count);
}

/* Fail each growing allocation of a successful load in turn: every run
 * either succeeds (Lua may collect garbage and retry) or reports
 * STRATA_ENOMEM, and none leaks. */
static void test_sim_machine_out_of_memory(void **state) {
  fx_t *f = *state;
  const char *path = in_dir(f, "STRATA_TEST_MACHINES", "big.lua");
  load_ok(f, path);
  sim_machine_free(&f->m, count_alloc, &f->count);
  long total = (long)f->count.calls;
  unsigned failures = 0;
  for (long k = 1; k <= total; k++) {
    memset(&f->count, 0, sizeof f->count);
    f->count.fail_after = k;
    int rc = load(f, path);
    if (rc == 0) {
      sim_machine_free(&f->m, count_alloc, &f->count);
    } else {
      assert_int_equal(rc, STRATA_ENOMEM);
      assert_non_null(strstr(f->err, "big.lua: out of memory"));
      assert_null(f->m.devices);
      failures++;
    }
    assert_clean(&f->count);
  }
  assert_true(failures > 0);
}

int main(void) {
  if (!getenv("STRATA_TEST_MACHINES") || !getenv("STRATA_TEST_BAD_MACHINES")) {
    fprintf(stderr, "STRATA_TEST_MACHINES and STRATA_TEST_BAD_MACHINES are "
                    "not set: run through make check\n");
    return 77;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_sim_machine_mixed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sim_machine_big, setup, teardown),
      cmocka_unit_test(test_sim_machine_facts_reported),
      cmocka_unit_test_setup_teardown(test_sim_machine_defaults, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_sim_machine_constants, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_sim_machine_peers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sim_machine_bad_corpus, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_sim_machine_corpus_complete, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_sim_machine_runaway_is_quick, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_sim_machine_bytecode, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_sim_machine_huge, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sim_machine_missing_file, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_sim_machine_not_regular, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_sim_machine_unreadable, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_sim_machine_nested_source, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_sim_machine_nested_built, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_sim_machine_nested_bound, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_sim_machine_extreme_figures, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_sim_machine_time_saturates, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_sim_machine_bad_arguments, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_sim_machine_out_of_memory, setup,
                                      teardown),
  };
  return cmocka_run_group_tests_name("sim_machine", tests, group_setup,
                                     group_teardown);
}
