/* SPDX-License-Identifier: MIT */
/* tests/fuzz/policy_answer.c: libFuzzer harness of what the runtime does
 * with a policy's answers. The input is decoded into a Lua expression per
 * hook (nil, booleans, integers, floats with NaN and infinities, class
 * and tier names, device and node views, lists, nested and
 * self-referencing tables, tables whose metatable's __len, __index,
 * __tostring... raise, loop or answer odd values); a policy script whose
 * place, cache and evict hooks return them is written to a scratch file;
 * then a small job runs, through the public API, on a fresh runtime with
 * the cpu backend and two 2 KiB simulated cards, a 2 KiB pinned tier and
 * a spill directory, so that every hook is called (evict too). Whatever
 * the answers, the runtime must come up, every task must end with status
 * 0, every buffer must hold what running the tasks in order gives, and
 * nothing may be left allocated.
 *
 * Input layout: byte 0 says which hooks exist (bit 0 place, 1 cache,
 * 2 evict) and whether place gives a second result (bit 3, itself an
 * expression); then one expression per hook present, in that order, each
 * a tree of bytes decoded by expr() below. Set FUZZ_SHOW_SCRIPT=1 to print
 * the generated script (for reading a crash input). Seeds:
 * tests/fuzz/corpus/policy_answer/. */
#include "config.h"

#include <stdarg.h>
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

#define NBUF 4
#define WORDS 128 /* 1 KiB buffers: two fill a card */
#define ROUNDS 2
#define NTASK (ROUNDS * NBUF * 2)
#define MAX_DEPTH 5
#define SCRIPT_MAX (64 * 1024)

/* {=== Decoding bytes into Lua source ===} */

typedef struct gen {
  const uint8_t *in;
  size_t len, pos;
  char out[SCRIPT_MAX];
  size_t n;
} gen_t;

/* Past this much text every further expression is nil, so that the text
 * that closes the open constructs always fits. */
#define SCRIPT_SOFT (SCRIPT_MAX - 8192)

/* Past the end of the input every byte reads 0, which decodes to nil:
 * any prefix of an input is an input. */
static unsigned byte(gen_t *g) { return g->pos < g->len ? g->in[g->pos++] : 0; }

static void emit(gen_t *g, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void emit(gen_t *g, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(g->out + g->n, sizeof g->out - g->n, fmt, ap);
  va_end(ap);
  FUZZ_CHECK(k >= 0 && g->n + (size_t)k < sizeof g->out, "script too long");
  g->n += (size_t)k;
}

static const char *const strings[] = {
    "cpu",      "hbm", "gddr", "pinned",  "host",   "spill", "keep",
    "",         "CPU", "disk", "cpu\\0x", "cpu ",   "nil",   "gpu",
    "hbm,gddr", "0",   "1",    "-1",      "device", "node"};
static const char *const numbers[] = {"0",
                                      "1",
                                      "-1",
                                      "2",
                                      "3",
                                      "63",
                                      "64",
                                      "0.5",
                                      "-0.0",
                                      "0/0",
                                      "1/0",
                                      "-1/0",
                                      "1e308",
                                      "-(0/0)",
                                      "2^53",
                                      "1e-300",
                                      "math.maxinteger",
                                      "math.mininteger",
                                      "255",
                                      "1<<32",
                                      "1.5",
                                      "4096",
                                      "-4096"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void expr(gen_t *g, int depth);

static void pick(gen_t *g, const char *const *set, size_t n, bool quote) {
  const char *s = set[byte(g) % n];
  emit(g, quote ? "'%s'" : "(%s)", s);
}

/* Bytes of the input as a Lua string, every byte escaped. */
static void raw_string(gen_t *g) {
  unsigned n = byte(g) % 24;
  emit(g, "'");
  for (unsigned i = 0; i < n; i++)
    emit(g, "\\%03u", byte(g));
  emit(g, "'");
}

static void index_expr(gen_t *g, int depth) {
  if (byte(g) % 4 == 0)
    expr(g, depth + 1); /* anything at all as a key */
  else
    pick(g, numbers, COUNT(numbers), false);
}

/* A list of up to 5 entries. */
static void list(gen_t *g, int depth) {
  unsigned n = byte(g) % 6;
  emit(g, "{");
  for (unsigned i = 0; i < n; i++) {
    expr(g, depth + 1);
    emit(g, ",");
  }
  emit(g, "}");
}

/* A metamethod: raises, loops until the budget ends, or answers. */
static void metamethod(gen_t *g, int depth) {
  switch (byte(g) % 5) {
  case 0:
    emit(g, "function() error('metamethod raised') end");
    break;
  case 1:
    emit(g, "function() while true do end end");
    break;
  case 2:
    emit(g, "function() error(setmetatable({}, {__tostring = function() "
            "error('tostring raised') end})) end");
    break;
  case 3:
    emit(g, "m.devices"); /* __index as a table */
    break;
  default:
    emit(g, "function() return ");
    expr(g, depth + 1);
    emit(g, " end");
  }
}

static void with_metatable(gen_t *g, int depth) {
  static const char *const events[] = {
      "__len", "__index", "__tostring", "__name",   "__eq",
      "__lt",  "__call",  "__newindex", "__concat", "__pairs"};
  emit(g, "setmetatable(");
  if (byte(g) & 1)
    list(g, depth);
  else
    emit(g, "{}");
  emit(g, ", {");
  unsigned n = 1 + byte(g) % 3;
  for (unsigned i = 0; i < n; i++) {
    const char *ev = events[byte(g) % COUNT(events)];
    emit(g, "%s = ", ev);
    if (!strcmp(ev, "__name"))
      raw_string(g);
    else
      metamethod(g, depth);
    emit(g, ",");
  }
  emit(g, "})");
}

static void expr(gen_t *g, int depth) {
  if (depth > MAX_DEPTH || g->n > SCRIPT_SOFT) {
    emit(g, "nil");
    return;
  }
  unsigned op = byte(g);
  switch (op % 24) {
  case 0:
    emit(g, "nil");
    break;
  case 1:
    emit(g, op & 0x80 ? "true" : "false");
    break;
  case 2:
  case 3:
    pick(g, numbers, COUNT(numbers), false);
    break;
  case 4:
  case 5:
  case 6:
    pick(g, strings, COUNT(strings), true);
    break;
  case 7:
    raw_string(g);
    break;
  case 8:
  case 9:
    emit(g, "m.devices[");
    index_expr(g, depth);
    emit(g, "]");
    break;
  case 10:
    emit(g, "m.by_class(");
    pick(g, strings, COUNT(strings), true);
    emit(g, ")");
    break;
  case 11:
    emit(g, op & 0x80 ? "m.devices" : "m.nodes");
    break;
  case 12:
    emit(g, "m.nodes[");
    index_expr(g, depth);
    emit(g, "]");
    break;
  case 13:
  case 14:
    list(g, depth);
    break;
  case 15: { /* keyed table */
    unsigned n = byte(g) % 4;
    emit(g, "{");
    for (unsigned i = 0; i < n; i++) {
      emit(g, "[");
      if (byte(g) & 1)
        pick(g, strings, COUNT(strings), true);
      else
        pick(g, numbers, COUNT(numbers), false);
      emit(g, "] = ");
      expr(g, depth + 1);
      emit(g, ",");
    }
    emit(g, "}");
    break;
  }
  case 16:
  case 17:
    with_metatable(g, depth);
    break;
  case 18: /* the hook's own argument: a task, buffer or node view */
    emit(g, op & 0x80 ? "a" : "m");
    break;
  case 19:
    emit(g, "function() end");
    break;
  case 20: /* nested deeper than any parser would allow in source */
    emit(g, "(function() local t = ");
    expr(g, depth + 1);
    emit(g, " for i = 1, %u do t = {t} end return t end)()", 1 + byte(g) * 4u);
    break;
  case 21: /* a table that holds itself */
    emit(g, "(function() local t = ");
    list(g, depth);
    emit(g, " t[#t + 1] = t t.class = t return t end)()");
    break;
  case 22: /* a long list of the same answer */
    emit(g,
         "(function() local t = {} for i = 1, %u do t[i] = ", 1 + byte(g) * 8u);
    expr(g, depth + 1);
    emit(g, " end return t end)()");
    break;
  default: { /* a helper's answer, maybe called with the wrong things */
    static const char *const helpers[] = {
        "m.least_loaded()",      "m.least_loaded(a)",
        "m.first_idle(a)",       "m.eft(a)",
        "m.by_class()",          "m.devices[#m.devices]",
        "string.rep('x', 4096)", "m.has_room(m.devices[1], 1)"};
    emit(g, "%s", helpers[byte(g) % COUNT(helpers)]);
  }
  }
}

/* The policy script for this input. */
static void script(gen_t *g) {
  unsigned hooks = byte(g);
  emit(g, "-- generated by tests/fuzz/policy_answer.c\n");
  if (hooks & 1) {
    emit(g, "function place(a, m)\n  return ");
    expr(g, 0);
    if (hooks & 8) {
      emit(g, ", ");
      expr(g, 0);
    }
    emit(g, "\nend\n");
  }
  if (hooks & 2) {
    emit(g, "function cache(a, m)\n  return ");
    expr(g, 0);
    emit(g, "\nend\n");
  }
  if (hooks & 4) {
    emit(g, "function evict(b, a, m)\n  return ");
    expr(g, 0);
    emit(g, "\nend\n");
  }
}

/* {=== The job ===} */

static const char machine_text[] =
    "return { devices = {\n"
    "  { class = 'hbm', name = 'H', memory = 2 * KiB,\n"
    "    mem_bandwidth = 1 * TB, link_bandwidth = 10 * GB,\n"
    "    fp64 = 1 * TFLOPS, fp32 = 2 * TFLOPS },\n"
    "  { class = 'gddr', name = 'G', memory = 2 * KiB,\n"
    "    mem_bandwidth = 1 * TB, link_bandwidth = 10 * GB,\n"
    "    fp64 = 1 * TFLOPS, fp32 = 2 * TFLOPS },\n"
    "} }\n";

/* Every word of the written buffer (the last access) grows by the
 * matching word of the read one (if any) plus one. */
static int step_kernel(const strata_kernel_call_t *c) {
  uint64_t *w = c->buffers[c->nbuffers - 1];
  const uint64_t *r = c->nbuffers > 1 ? c->buffers[0] : NULL;
  for (size_t i = 0; i < WORDS; i++)
    w[i] += (r ? r[i] : 0) + 1;
  return 0;
}

static void drop_log(void *ud, strata_log_level_t level, const char *comp,
                     const char *msg) {
  (void)ud, (void)level, (void)comp, (void)msg;
}

/* Task j of round r: even j steps buffer j/2 alone; odd j adds buffer
 * j/2 into the next one. */
static void task_buffers(int j, int *r, int *w) {
  *r = j % 2 ? j / 2 : -1;
  *w = j % 2 ? (j / 2 + 1) % NBUF : j / 2;
}

static void reference(uint64_t ref[NBUF][WORDS]) {
  for (int round = 0; round < ROUNDS; round++)
    for (int j = 0; j < 2 * NBUF; j++) {
      int r, w;
      task_buffers(j, &r, &w);
      for (size_t i = 0; i < WORDS; i++)
        ref[w][i] += (r >= 0 ? ref[r][i] : 0) + 1;
    }
}

static void run_job(const char *policy) {
  static uint64_t buf[NBUF][WORDS], ref[NBUF][WORDS];
  char options[600], spill[520];
  fuzz_alloc_t a;
  fuzz_alloc_init(&a);
  strata_runtime_opts_t o;
  strata_runtime_opts_init(&o);
  o.alloc = fuzz_alloc_fn;
  o.alloc_ud = &a;
  o.log = drop_log;
  o.log_level = STRATA_LOG_ERROR;
  o.backend_path = FUZZ_BACKENDS;
  o.backends = o.required_backends = "cpu,sim";
  snprintf(options, sizeof options, "sim:machine=%s",
           fuzz_write(1, "machine.lua", machine_text, strlen(machine_text)));
  o.backend_options = options;
  o.cpu_workers = 1;
  o.topology_xml = FUZZ_TOPOLOGIES "/single-4core.xml";
  o.pinned_bytes = 2 * 1024;
  snprintf(spill, sizeof spill, "%s", fuzz_subdir("spill"));
  o.spill_dir = spill;
  o.policy = policy;
  o.policy_budget = 20000; /* a looping answer costs less time */
  o.health_period_ms = -1;
  strata_runtime_t *rt;
  int rc = strata_runtime_create(&o, &rt);
  FUZZ_CHECK(rc == 0, "create: %s", strata_err_name(rc));

  /* Every device may run it: CPU code, and the same function as CUDA code
   * so that simulated GPUs (which run the CPU code) are candidates. */
  const strata_kernel_impl_t impls[] = {{STRATA_IMPL_CPU, step_kernel},
                                        {STRATA_IMPL_CUDA, step_kernel}};
  strata_kernel_desc_t kd = {
      .struct_size = sizeof kd, .name = "step", .impls = impls, .nimpls = 2};
  strata_kernel_t k;
  FUZZ_CHECK(strata_kernel_register(rt, &kd, &k) == 0, "kernel");
  strata_buffer_t b[NBUF];
  for (int i = 0; i < NBUF; i++) {
    for (size_t w = 0; w < WORDS; w++)
      buf[i][w] = ref[i][w] = (uint64_t)i * 1000 + w;
    FUZZ_CHECK(strata_buffer_register(rt, buf[i], sizeof buf[i], &b[i]) == 0,
               "register");
  }
  /* Tagging asks the cache hook. */
  FUZZ_CHECK(strata_buffer_set_tag(rt, b[0], "dataset") == 0, "tag");
  FUZZ_CHECK(strata_buffer_set_tag(rt, b[2], "shard") == 0, "tag");

  strata_task_t t[NTASK];
  for (int n = 0; n < NTASK; n++) {
    int r, w;
    task_buffers(n % (2 * NBUF), &r, &w);
    FUZZ_CHECK(strata_task_create(rt, k, &t[n]) == 0, "task");
    if (r >= 0)
      FUZZ_CHECK(strata_task_access(rt, t[n], b[r], STRATA_R) == 0, "access");
    FUZZ_CHECK(strata_task_access(rt, t[n], b[w], STRATA_RW) == 0, "access");
    FUZZ_CHECK(strata_task_set_attr(rt, t[n], "tier",
                                    n % 3 ? "train" : "validate") == 0,
               "attr");
    rc = strata_task_submit(rt, t[n]);
    FUZZ_CHECK(rc == 0, "submit %d: %s", n, strata_err_name(rc));
  }
  FUZZ_CHECK(strata_runtime_wait_all(rt) == 0, "wait_all");
  for (int n = 0; n < NTASK; n++) {
    rc = strata_task_wait(rt, t[n]);
    FUZZ_CHECK(rc == 0, "task %d ended %s", n, strata_err_name(rc));
    FUZZ_CHECK(strata_task_release(rt, t[n]) == 0, "release");
  }
  for (int i = 0; i < NBUF; i++)
    FUZZ_CHECK(strata_buffer_unregister(rt, b[i]) == 0, "unregister");
  FUZZ_CHECK(strata_runtime_destroy(rt) == 0, "destroy");
  fuzz_alloc_done(&a);

  reference(ref);
  for (int i = 0; i < NBUF; i++)
    FUZZ_CHECK(!memcmp(buf[i], ref[i], sizeof buf[i]),
               "buffer %d holds wrong data (word 0: %llu, expected %llu)", i,
               (unsigned long long)buf[i][0], (unsigned long long)ref[i][0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static gen_t g;
  memset(&g, 0, sizeof g);
  g.in = data;
  g.len = size;
  script(&g);
  const char *show = getenv("FUZZ_SHOW_SCRIPT");
  if (show && *show == '1')
    fprintf(stderr, "--- policy\n%.*s---\n", (int)g.n, g.out);
  run_job(fuzz_write(0, "policy.lua", g.out, g.n));
  return 0;
}
