/* SPDX-License-Identifier: MIT */
/* bench/starpu/overhead.c: StarPU versions of strata-bench's workloads
 * (overhead, chain, dag, wake), printing the same JSON lines. */
#define _POSIX_C_SOURCE 200809L

#include "../common.h" /* what strata-bench.c shares */

#include <starpu.h>

#define PROG "starpu-overhead"

/* One variable per buffer, each on its own cache line as in strata-bench. */
typedef struct slot {
  _Alignas(64) uint64_t v;
} slot_t;

typedef struct bench {
  options_t opt;
  const char *sched; /* --sched; NULL: STARPU_SCHED or StarPU's default */
  unsigned workers;
  uint64_t spin_ns; /* read by the kernels through cl_arg */
  slot_t *mem;
  starpu_data_handle_t *handles;
  size_t nbuf;
  uint64_t *shadow;
  uint32_t *dag; /* 3 buffer indices per task: read, read, write */
} bench_t;

/* {=== Small helpers ===} */

static void usage(FILE *f) {
  fprintf(f, "usage: " PROG " overhead|chain|dag|wake [options]\n"
             "  -n, --tasks N   tasks (samples for wake); defaults as "
             "strata-bench\n"
             "  --workers W     CPU workers (sets starpu_conf.ncpus; "
             "STARPU_NCPU wins)\n"
             "  --task-us U     each task busy-waits U microseconds\n"
             "  --buffers B     dag: buffers (default 256)\n"
             "  --repeat R      print R measurements (default 1)\n"
             "  --seed S        dag: random seed (default 1)\n"
             "  --sleep-us U    wake: idle time before each sample "
             "(default 2000)\n"
             "  --sched NAME    scheduling policy (else STARPU_SCHED)\n");
}

static int report(const char *what, int rc) {
  fprintf(stderr, PROG ": %s failed: %s\n", what, strerror(rc < 0 ? -rc : rc));
  return 1;
}

/* {=== Codelets ===} */

static void k_empty(void *buffers[], void *arg) {
  (void)buffers;
  spin_for(((const bench_t *)arg)->spin_ns);
}

static void k_chain(void *buffers[], void *arg) {
  ++*(uint64_t *)STARPU_VARIABLE_GET_PTR(buffers[0]);
  spin_for(((const bench_t *)arg)->spin_ns);
}

static void k_dag(void *buffers[], void *arg) {
  uint64_t x = *(const uint64_t *)STARPU_VARIABLE_GET_PTR(buffers[0]);
  uint64_t y = *(const uint64_t *)STARPU_VARIABLE_GET_PTR(buffers[1]);
  *(uint64_t *)STARPU_VARIABLE_GET_PTR(buffers[2]) = x + y + 1;
  spin_for(((const bench_t *)arg)->spin_ns);
}

static void k_stamp(void *buffers[], void *arg) {
  (void)arg;
  *(uint64_t *)STARPU_VARIABLE_GET_PTR(buffers[0]) = now_ns();
}

/* No performance model: eager and lws do not need one, and a model would
 * make StarPU calibrate (and write files) during the timed runs. */
static struct starpu_codelet cl_empty = {
    .cpu_funcs = {k_empty}, .nbuffers = 0, .name = "bench.empty"};
static struct starpu_codelet cl_chain = {.cpu_funcs = {k_chain},
                                         .nbuffers = 1,
                                         .modes = {STARPU_RW},
                                         .name = "bench.chain"};
static struct starpu_codelet cl_dag = {.cpu_funcs = {k_dag},
                                       .nbuffers = 3,
                                       .modes = {STARPU_R, STARPU_R, STARPU_W},
                                       .name = "bench.dag"};
static struct starpu_codelet cl_stamp = {.cpu_funcs = {k_stamp},
                                         .nbuffers = 1,
                                         .modes = {STARPU_W},
                                         .name = "bench.stamp"};

/* {=== Setup and teardown ===} */

static int start_starpu(bench_t *b) {
  struct starpu_conf conf;
  int rc = starpu_conf_init(&conf);
  if (rc)
    return report("starpu_conf_init", rc);
  if (b->opt.workers)
    conf.ncpus = (int)b->opt.workers;
  /* CPU workers only, as on the Strata side. */
  conf.ncuda = 0;
  conf.nopencl = 0;
  conf.nmic = 0;
  conf.nmpi_ms = 0;
  if (b->sched)
    conf.sched_policy_name = b->sched;
  if ((rc = starpu_init(&conf)))
    return report("starpu_init", rc);
  b->workers = starpu_cpu_worker_get_count();
  return 0;
}

static int register_buffers(bench_t *b, size_t n) {
  b->mem = aligned_alloc(_Alignof(slot_t), (n ? n : 1) * sizeof *b->mem);
  b->handles = calloc(n ? n : 1, sizeof *b->handles);
  if (!b->mem || !b->handles)
    return report("allocating buffers", ENOMEM);
  memset(b->mem, 0, (n ? n : 1) * sizeof *b->mem);
  for (size_t i = 0; i < n; i++)
    starpu_variable_data_register(&b->handles[i], STARPU_MAIN_RAM,
                                  (uintptr_t)&b->mem[i].v, sizeof b->mem[i].v);
  b->nbuf = n;
  return 0;
}

static int build_dag(bench_t *b) {
  b->dag = malloc(b->opt.tasks * 3 * sizeof *b->dag);
  b->shadow = calloc(b->nbuf, sizeof *b->shadow);
  if (!b->dag || !b->shadow)
    return report("allocating the DAG", ENOMEM);
  draw_dag(b->dag, b->opt.tasks, b->nbuf, b->opt.seed);
  return 0;
}

/* Unregistering also brings every buffer's latest value home. */
static void cleanup(bench_t *b, bool started) {
  if (started) {
    for (size_t i = 0; i < b->nbuf; i++)
      starpu_data_unregister(b->handles[i]);
    starpu_shutdown();
  }
  free(b->dag);
  free(b->shadow);
  free(b->handles);
  free(b->mem);
}

/* {=== Submission: starpu_task_create + starpu_task_submit ===} */

/* The task frees itself when it ends (destroy is 1 for
 * starpu_task_create), which mirrors strata_task_release right after
 * submitting. */
static int submit(bench_t *b, struct starpu_codelet *cl, const uint32_t *bufs,
                  int n) {
  struct starpu_task *t = starpu_task_create();
  if (!t)
    return report("starpu_task_create", ENOMEM);
  t->cl = cl;
  t->cl_arg = b;
  for (int i = 0; i < n; i++)
    t->handles[i] = b->handles[bufs[i]];
  int rc = starpu_task_submit(t);
  if (rc) {
    t->destroy = 0; /* never submitted: free it here */
    starpu_task_destroy(t);
    return report("starpu_task_submit", rc);
  }
  return 0;
}

static int submit_all(bench_t *b) {
  static const uint32_t first = 0;
  for (uint64_t i = 0; i < b->opt.tasks; i++) {
    int rc = b->opt.workload == W_OVERHEAD ? submit(b, &cl_empty, NULL, 0)
             : b->opt.workload == W_CHAIN
                 ? submit(b, &cl_chain, &first, 1)
                 : submit(b, &cl_dag, &b->dag[3 * i], 3);
    if (rc)
      return rc;
  }
  return 0;
}

/* {=== Checking results ===} */

/* Read a buffer's value where the application may look at it. */
static int read_slot(bench_t *b, size_t i, uint64_t *v) {
  int rc = starpu_data_acquire(b->handles[i], STARPU_R);
  if (rc)
    return report("starpu_data_acquire", rc);
  *v = b->mem[i].v;
  starpu_data_release(b->handles[i]);
  return 0;
}

static int check_chain(bench_t *b, uint64_t rep) {
  uint64_t got;
  if (read_slot(b, 0, &got))
    return 1;
  return check_chain_count(PROG, &b->opt, rep, got);
}

static int check_dag(bench_t *b) {
  replay_dag(b->dag, b->opt.tasks, b->shadow);
  for (size_t i = 0; i < b->nbuf; i++) {
    uint64_t got;
    if (read_slot(b, i, &got) || check_dag_buffer(PROG, i, got, b->shadow[i]))
      return 1;
  }
  return 0;
}

/* {=== Throughput workloads ===} */

/* The policy StarPU really runs (context 0 is the one starpu_init makes),
 * since STARPU_SCHED overrides the configuration. */
static const char *sched_name(void) {
  struct starpu_sched_policy *p = starpu_sched_ctx_get_sched_policy(0);
  return p && p->policy_name ? p->policy_name : "?";
}

/* First submit to starpu_task_wait_for_all returning, as for Strata. */
static int run_throughput(bench_t *b, uint64_t rep) {
  uint64_t cpu0 = thread_cpu_ns(), t0 = now_ns();
  int rc = submit_all(b);
  uint64_t ts = now_ns(), cpu1 = thread_cpu_ns();
  int wrc = starpu_task_wait_for_all();
  timing_t tm = {now_ns() - t0, ts - t0, cpu1 - cpu0};
  if (rc)
    return rc;
  if (wrc)
    return report("starpu_task_wait_for_all", wrc);
  if (b->opt.workload == W_CHAIN && check_chain(b, rep))
    return 1;
  if (b->opt.workload == W_DAG && check_dag(b))
    return 1;
  print_throughput("starpu", sched_name(), &b->opt, b->workers, b->nbuf, &tm);
  return 0;
}

/* {=== Wake-up latency ===} */

static int wake_sample(bench_t *b, uint64_t *lat_ns) {
  sleep_us(b->opt.sleep_us);
  struct starpu_task *t = starpu_task_create();
  if (!t)
    return report("starpu_task_create", ENOMEM);
  t->cl = &cl_stamp;
  t->handles[0] = b->handles[0];
  uint64_t t0 = now_ns();
  int rc = starpu_task_submit(t);
  if (rc) {
    t->destroy = 0;
    starpu_task_destroy(t);
    return report("starpu_task_submit", rc);
  }
  if ((rc = starpu_task_wait_for_all()))
    return report("starpu_task_wait_for_all", rc);
  uint64_t stamp;
  if (read_slot(b, 0, &stamp))
    return 1;
  *lat_ns = stamp - t0;
  return 0;
}

static int run_wake(bench_t *b) {
  uint64_t n = b->opt.tasks;
  uint64_t *lat = malloc(n * sizeof *lat);
  if (!lat)
    return report("allocating samples", ENOMEM);
  int rc = 0;
  for (uint64_t i = 0; i < n && rc == 0; i++)
    rc = wake_sample(b, &lat[i]);
  if (rc == 0)
    print_wake("starpu", sched_name(), &b->opt, b->workers, lat, n);
  free(lat);
  return rc;
}

/* {=== main ===} */

static int run(bench_t *b) {
  const options_t *o = &b->opt;
  size_t nbuf = o->workload == W_DAG        ? (size_t)o->buffers
                : o->workload == W_OVERHEAD ? 0
                                            : 1;
  int rc = register_buffers(b, nbuf);
  if (rc == 0 && o->workload == W_DAG)
    rc = build_dag(b);
  b->spin_ns = o->task_us * 1000;
  for (uint64_t rep = 0; rep < o->repeat && rc == 0; rep++)
    rc = o->workload == W_WAKE ? run_wake(b) : run_throughput(b, rep);
  return rc;
}

int main(int argc, char **argv) {
  bench_t b = {.sched = NULL};
  const own_option_t own[] = {{"--sched", &b.sched}};
  const program_t prog = {PROG, usage, own, sizeof own / sizeof *own};
  b.opt = parse_args(&prog, argc, argv);
  int rc = start_starpu(&b);
  bool started = rc == 0;
  if (started)
    rc = run(&b);
  cleanup(&b, started);
  return rc ? 1 : 0;
}
