/* SPDX-License-Identifier: MIT */
/* report.c: the run's report, text and JSON (see report.h). Both printers
 * walk the same figures, computed once by tally(). */
#include "config.h"

#include "report.h"

#include "json.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NAME_WIDTH 28
#define MAX_TIERS 16

/* The counters of one sample. */
typedef struct sample {
  strata_device_stats_t *dev;
  strata_memory_node_info_t *node;
  strata_link_stats_t *link; /* nnodes x nnodes, [src * n + dst] */
  strata_policy_stats_t policy;
  strata_metrics_stats_t metrics;
} sample_t;

struct report {
  strata_runtime_t *rt;
  int ndev, nnodes;
  strata_device_info_t *info;
  sample_t before, after;
};

/* {=== Sampling ===} */

static int sample_alloc(report_t *r, sample_t *s) {
  s->dev = calloc((size_t)r->ndev, sizeof *s->dev);
  s->node = calloc((size_t)r->nnodes, sizeof *s->node);
  s->link = calloc((size_t)r->nnodes * (size_t)r->nnodes, sizeof *s->link);
  return s->dev && s->node && s->link ? STRATA_OK : STRATA_ENOMEM;
}

static void sample_free(sample_t *s) {
  free(s->dev);
  free(s->node);
  free(s->link);
}

static int take(report_t *r, sample_t *s) {
  int rc = STRATA_OK;
  for (int i = 0; i < r->ndev && !rc; i++) {
    s->dev[i].struct_size = sizeof s->dev[i];
    rc = strata_device_stats(r->rt, i, &s->dev[i]);
  }
  for (int i = 0; i < r->nnodes && !rc; i++) {
    s->node[i].struct_size = sizeof s->node[i];
    rc = strata_memory_node_info(r->rt, i, &s->node[i]);
    for (int j = 0; j < r->nnodes && !rc; j++) {
      strata_link_stats_t *l = &s->link[i * r->nnodes + j];
      l->struct_size = sizeof *l;
      rc = strata_link_stats(r->rt, i, j, l);
    }
  }
  s->policy.struct_size = sizeof s->policy;
  if (!rc && strata_policy_stats(r->rt, &s->policy))
    memset(&s->policy, 0, sizeof s->policy); /* no policy loaded */
  s->metrics.struct_size = sizeof s->metrics;
  if (!rc)
    rc = strata_metrics_stats(r->rt, &s->metrics);
  return rc;
}

void report_free(report_t *r) {
  if (!r)
    return;
  free(r->info);
  sample_free(&r->before);
  sample_free(&r->after);
  free(r);
}

int report_begin(strata_runtime_t *rt, report_t **out) {
  report_t *r = calloc(1, sizeof *r);
  if (!r)
    return STRATA_ENOMEM;
  r->rt = rt;
  r->ndev = strata_device_count(rt);
  r->nnodes = strata_memory_node_count(rt);
  r->info = calloc((size_t)(r->ndev > 0 ? r->ndev : 1), sizeof *r->info);
  int rc = r->ndev > 0 && r->nnodes > 0 && r->info ? STRATA_OK : STRATA_ENOMEM;
  if (!rc)
    rc = sample_alloc(r, &r->before);
  if (!rc)
    rc = sample_alloc(r, &r->after);
  for (int i = 0; i < r->ndev && !rc; i++) {
    r->info[i].struct_size = sizeof r->info[i];
    rc = strata_device_info(rt, i, &r->info[i]);
  }
  if (!rc)
    rc = take(r, &r->before);
  if (rc) {
    report_free(r);
    return rc;
  }
  *out = r;
  return STRATA_OK;
}

int report_end(report_t *r) { return take(r, &r->after); }

/* {=== The figures ===} */

typedef struct tier_count {
  const char *tier;
  uint64_t tasks;
} tier_count_t;

typedef struct device_figures {
  uint64_t tasks, failed;
  double busy_s, utilisation;
  uint64_t bytes_in, bytes_out, evictions, hits;
  bool own_memory; /* the device has a memory node of its own */
  tier_count_t tiers[MAX_TIERS];
  int ntiers;
} device_figures_t;

/* The tier a task ran under: its own, else its job's, else "-". */
static const char *tier_of(const jf_plan_t *p, const jf_task_t *t) {
  if (t->tier)
    return t->tier;
  const jf_job_t *j = &p->jobs[t->job];
  return j->tier[0] ? j->tier : "-";
}

static void count_tier(device_figures_t *d, const char *tier) {
  for (int i = 0; i < d->ntiers; i++)
    if (!strcmp(d->tiers[i].tier, tier)) {
      d->tiers[i].tasks++;
      return;
    }
  if (d->ntiers < MAX_TIERS)
    d->tiers[d->ntiers++] = (tier_count_t){tier, 1};
}

static uint64_t delta(uint64_t after, uint64_t before) {
  return after >= before ? after - before : 0;
}

static void memory_figures(const report_t *r, int dev, device_figures_t *d) {
  int node = r->info[dev].memory_node;
  if (node < 0 || node >= r->nnodes ||
      r->after.node[node].kind != STRATA_NODE_DEVICE ||
      r->after.node[node].device != dev)
    return;
  d->own_memory = true;
  for (int o = 0; o < r->nnodes; o++) {
    int in = o * r->nnodes + node, out = node * r->nnodes + o;
    d->bytes_in += delta(r->after.link[in].bytes, r->before.link[in].bytes);
    d->bytes_out += delta(r->after.link[out].bytes, r->before.link[out].bytes);
  }
  d->evictions =
      delta(r->after.node[node].evictions, r->before.node[node].evictions);
  d->hits = delta(r->after.node[node].hits, r->before.node[node].hits);
}

/* Every device's figures; the caller frees the array. */
static device_figures_t *tally(const report_t *r, const report_run_t *run,
                               double wall) {
  device_figures_t *f = calloc((size_t)r->ndev, sizeof *f);
  if (!f)
    return NULL;
  const jr_task_t *tasks = run->run ? jobrun_tasks(run->run) : NULL;
  for (size_t i = 0; tasks && i < run->plan->ntasks; i++)
    if (tasks[i].device >= 0 && tasks[i].device < r->ndev)
      count_tier(&f[tasks[i].device], tier_of(run->plan, &run->plan->tasks[i]));
  for (int i = 0; i < r->ndev; i++) {
    f[i].tasks = delta(r->after.dev[i].tasks_run, r->before.dev[i].tasks_run);
    f[i].failed =
        delta(r->after.dev[i].tasks_failed, r->before.dev[i].tasks_failed);
    f[i].busy_s =
        (double)delta(r->after.dev[i].busy_ns, r->before.dev[i].busy_ns) * 1e-9;
    double capacity = wall * (r->info[i].workers ? r->info[i].workers : 1);
    f[i].utilisation = capacity > 0 ? f[i].busy_s / capacity : 0;
    memory_figures(r, i, &f[i]);
  }
  return f;
}

/* The latest virtual clock of devices whose time is modelled; 0: none. */
static double modelled_makespan(strata_runtime_t *rt) {
  uint64_t end = 0;
  for (int i = 0; i < strata_device_count(rt); i++) {
    strata_device_model_t dm = {.struct_size = sizeof dm};
    if (strata_device_model(rt, i, &dm) == STRATA_OK && dm.clock_ns > end)
      end = dm.clock_ns;
  }
  return (double)end * 1e-9;
}

/* The least time the run's work takes on every device at once: each
 * task's flops over the devices' rates at its precision (FP32 for fp32
 * tasks, FP64 otherwise); 0 when a rate or a task's flops are unknown. */
static double work_bound(const report_t *r, const jf_plan_t *plan) {
  double fp64 = 0, fp32 = 0, t = 0;
  for (int i = 0; i < r->ndev; i++) {
    fp64 += r->info[i].fp64_flops;
    fp32 += r->info[i].fp32_flops;
  }
  for (size_t i = 0; i < plan->ntasks; i++) {
    const jf_task_t *k = &plan->tasks[i];
    bool single = k->precision && !strcmp(k->precision, "fp32");
    double rate = single ? fp32 : fp64;
    if (k->flops < 0 || (k->flops > 0 && rate <= 0))
      return 0;
    t += k->flops > 0 ? k->flops / rate : 0;
  }
  return t;
}

static bool job_ok(const jr_job_t *j) {
  return j->status == STRATA_OK && j->succeeded == j->tasks;
}

/* Every job completed and the check (if any) passed. */
static bool all_passed(const report_run_t *run) {
  if (run->status || !run->run)
    return false;
  for (size_t i = 0; i < run->plan->njobs; i++)
    if (!job_ok(&jobrun_jobs(run->run)[i]))
      return false;
  return !run->has_check || run->check_passed;
}

static double total_flops(const report_run_t *run) {
  double sum = 0;
  for (size_t i = 0; i < run->plan->njobs; i++) {
    double f = jobrun_jobs(run->run)[i].flops;
    if (f < 0)
      return -1;
    sum += f;
  }
  return sum;
}

/* {=== Text ===} */

static void shorten(const char *name, int width, char *buf, size_t size) {
  size_t len = strlen(name);
  if ((int)len > width && width >= 4) {
    snprintf(buf, size, "%.*s...", width - 3, name);
    return;
  }
  if (len >= size)
    len = size - 1;
  memcpy(buf, name, len);
  buf[len] = '\0';
}

static void mib(uint64_t bytes, bool known, char *buf, size_t n) {
  if (!known)
    snprintf(buf, n, "-");
  else
    snprintf(buf, n, "%.1f", (double)bytes / (1024.0 * 1024.0));
}

static void text_devices(const report_t *r, const device_figures_t *f,
                         FILE *out) {
  fprintf(out, "%-*s  %-5s  %7s  %8s  %5s  %9s  %9s  %6s  %6s  %s\n",
          NAME_WIDTH, "device", "class", "tasks", "busy(s)", "util", "in(MiB)",
          "out(MiB)", "evict", "hits", "tasks by tier");
  for (int i = 0; i < r->ndev; i++) {
    const device_figures_t *d = &f[i];
    char name[NAME_WIDTH + 1], in[32], outb[32], ev[24] = "-", hits[24] = "-";
    shorten(r->info[i].name, NAME_WIDTH, name, sizeof name);
    mib(d->bytes_in, d->own_memory, in, sizeof in);
    mib(d->bytes_out, d->own_memory, outb, sizeof outb);
    if (d->own_memory) {
      snprintf(ev, sizeof ev, "%" PRIu64, d->evictions);
      snprintf(hits, sizeof hits, "%" PRIu64, d->hits);
    }
    fprintf(out,
            "%-*s  %-5s  %7" PRIu64 "  %8.3f  %4.0f%%  %9s  %9s  %6s  %6s ",
            NAME_WIDTH, name, strata_device_class_name(r->info[i].device_class),
            d->tasks, d->busy_s, 100 * d->utilisation, in, outb, ev, hits);
    for (int t = 0; t < d->ntiers; t++)
      fprintf(out, " %s %" PRIu64 "%s", d->tiers[t].tier, d->tiers[t].tasks,
              t + 1 < d->ntiers ? "," : "");
    if (!d->ntiers)
      fprintf(out, " -");
    if (d->failed)
      fprintf(out, " (%" PRIu64 " failed)", d->failed);
    fputc('\n', out);
  }
}

static void gflops_text(double flops, double wall, char *buf, size_t n) {
  if (flops < 0 || wall <= 0)
    snprintf(buf, n, "-");
  else
    snprintf(buf, n, "%.2f", flops / wall * 1e-9);
}

static void text_jobs(const report_run_t *run, FILE *out) {
  fprintf(out, "%-20s  %7s  %7s  %8s  %8s  %s\n", "job", "tasks", "failed",
          "wall(s)", "GFLOP/s", "status");
  for (size_t i = 0; i < run->plan->njobs; i++) {
    const jr_job_t *j = &jobrun_jobs(run->run)[i];
    char g[32];
    gflops_text(j->flops, j->wall_s, g, sizeof g);
    fprintf(out, "%-20s  %7" PRIu64 "  %7" PRIu64 "  %8.3f  %8s  %s",
            run->plan->jobs[i].name, j->tasks,
            j->failed + j->dep_failed + j->canceled, j->wall_s, g,
            job_ok(j) ? "completed" : strata_strerror(j->status));
    if (!job_ok(j) && j->first_failed[0])
      fprintf(out, " (first: %s)", j->first_failed);
    fputc('\n', out);
  }
}

static void text_policy(const report_t *r, FILE *out) {
  const strata_policy_stats_t *a = &r->after.policy, *b = &r->before.policy;
  uint64_t calls = delta(a->calls, b->calls);
  uint64_t ns = delta(a->call_ns, b->call_ns);
  char mean[48] = "";
  /* One call in 8 is timed: a handful of calls may have none timed. */
  if (ns && calls)
    snprintf(mean, sizeof mean, ", %.1f us per call",
             (double)ns / (double)calls * 1e-3);
  fprintf(out,
          "policy: %s: %" PRIu64 " calls, %" PRIu64 " answered from its "
          "cache, %" PRIu64 " fallbacks%s\n",
          a->name[0] ? a->name : "none (least loaded)", calls,
          delta(a->cached, b->cached), delta(a->fallbacks, b->fallbacks), mean);
}

/* The exporters' work and the alerts during the run. */
static void text_metrics(const report_t *r, const report_run_t *run,
                         FILE *out) {
  const strata_metrics_stats_t *a = &r->after.metrics, *b = &r->before.metrics;
  fprintf(out, "metrics: ");
  if (run->metrics_url)
    fprintf(out, "%s (%" PRIu64 " scrapes), ", run->metrics_url,
            delta(a->scrapes, b->scrapes));
  if (run->metrics_file)
    fprintf(out, "%s (%" PRIu64 " writes, %" PRIu64 " failed), ",
            run->metrics_file, delta(a->textfile_writes, b->textfile_writes),
            delta(a->textfile_failures, b->textfile_failures));
  fprintf(out, "%" PRIu64 " alerts raised, %" PRIu64 " cleared\n",
          delta(a->alerts_raised, b->alerts_raised),
          delta(a->alerts_cleared, b->alerts_cleared));
}

static bool print_text(const report_t *r, const report_run_t *run, FILE *out) {
  double wall = run->run ? jobrun_wall(run->run) : 0;
  device_figures_t *f = tally(r, run, wall);
  if (!f)
    return false;
  fprintf(out, "job file: %s%s%s%s\n", run->job_file,
          run->params[0] ? " (" : "", run->params, run->params[0] ? ")" : "");
  text_devices(r, f, out);
  free(f);
  if (run->run)
    text_jobs(run, out);
  text_policy(r, out);
  text_metrics(r, run, out);
  if (run->has_check)
    fprintf(out, "result check: %s%s%s\n",
            run->check_passed ? "passed" : "FAILED",
            run->check_message[0] ? ": " : "", run->check_message);
  else
    fprintf(out, "result check: none (the job file has no check)\n");
  double modelled = modelled_makespan(r->rt);
  if (modelled > 0)
    fprintf(out,
            "modelled makespan: %.6f s; lower bound %.7f s (work over every "
            "device's rate)\n",
            modelled, work_bound(r, run->plan));
  char g[32];
  gflops_text(run->run ? total_flops(run) : -1, wall, g, sizeof g);
  fprintf(out, "wall time: %.3f s%s%s%s\n", wall, strcmp(g, "-") ? ", " : "",
          strcmp(g, "-") ? g : "", strcmp(g, "-") ? " GFLOP/s" : "");
  return all_passed(run);
}

/* {=== JSON ===} */

/* A finite number, or null. */
static void json_number(FILE *out, double v) {
  if (isfinite(v))
    fprintf(out, "%.17g", v);
  else
    fputs("null", out);
}

static void json_devices(const report_t *r, const device_figures_t *f,
                         FILE *out) {
  fputs("\"devices\":[", out);
  for (int i = 0; i < r->ndev; i++) {
    const device_figures_t *d = &f[i];
    fprintf(out, "%s{\"index\":%d,\"class\":", i ? "," : "", i);
    json_put_string(out, strata_device_class_name(r->info[i].device_class));
    fputs(",\"name\":", out);
    json_put_string(out, r->info[i].name);
    fputs(",\"backend\":", out);
    json_put_string(out, r->info[i].backend);
    fprintf(out,
            ",\"workers\":%" PRIu32 ",\"tasks\":%" PRIu64 ",\"failed\":%" PRIu64
            ",\"tasks_by_tier\":{",
            r->info[i].workers, d->tasks, d->failed);
    for (int t = 0; t < d->ntiers; t++) {
      fputs(t ? "," : "", out);
      json_put_string(out, d->tiers[t].tier);
      fprintf(out, ":%" PRIu64, d->tiers[t].tasks);
    }
    fputs("},\"busy_s\":", out);
    json_number(out, d->busy_s);
    fputs(",\"utilisation\":", out);
    json_number(out, d->utilisation);
    fprintf(out,
            ",\"own_memory\":%s,\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64
            ",\"evictions\":%" PRIu64 ",\"cache_hits\":%" PRIu64 "}",
            d->own_memory ? "true" : "false", d->bytes_in, d->bytes_out,
            d->evictions, d->hits);
  }
  fputs("]", out);
}

static void json_jobs(const report_run_t *run, FILE *out) {
  fputs("\"jobs\":[", out);
  for (size_t i = 0; run->run && i < run->plan->njobs; i++) {
    const jr_job_t *j = &jobrun_jobs(run->run)[i];
    fputs(i ? ",{\"name\":" : "{\"name\":", out);
    json_put_string(out, run->plan->jobs[i].name);
    fputs(",\"tier\":", out);
    json_put_string(out, run->plan->jobs[i].tier);
    fprintf(out,
            ",\"tasks\":%" PRIu64 ",\"succeeded\":%" PRIu64
            ",\"failed\":%" PRIu64 ",\"dep_failed\":%" PRIu64
            ",\"canceled\":%" PRIu64 ",\"completed\":%s,\"status\":",
            j->tasks, j->succeeded, j->failed, j->dep_failed, j->canceled,
            job_ok(j) ? "true" : "false");
    json_put_string(out, strata_err_name(j->status));
    fputs(",\"wall_s\":", out);
    json_number(out, j->wall_s);
    fputs(",\"flops\":", out);
    json_number(out, j->flops >= 0 ? j->flops : NAN);
    fputs(",\"gflops\":", out);
    json_number(out, j->flops >= 0 && j->wall_s > 0
                         ? j->flops / j->wall_s * 1e-9
                         : NAN);
    fputs("}", out);
  }
  fputs("]", out);
}

static void json_policy(const report_t *r, FILE *out) {
  const strata_policy_stats_t *a = &r->after.policy, *b = &r->before.policy;
  uint64_t calls = delta(a->calls, b->calls);
  fputs("\"policy\":{\"name\":", out);
  json_put_string(out, a->name);
  fprintf(out,
          ",\"calls\":%" PRIu64 ",\"cache_hits\":%" PRIu64
          ",\"fallbacks\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"mean_call_us\":",
          calls, delta(a->cached, b->cached), delta(a->fallbacks, b->fallbacks),
          delta(a->errors, b->errors));
  uint64_t ns = delta(a->call_ns, b->call_ns);
  json_number(out, calls && ns ? (double)ns / (double)calls * 1e-3 : NAN);
  fputs("}", out);
}

static void json_string_or_null(FILE *out, const char *s) {
  if (s)
    json_put_string(out, s);
  else
    fputs("null", out);
}

static void json_metrics(const report_t *r, const report_run_t *run,
                         FILE *out) {
  const strata_metrics_stats_t *a = &r->after.metrics, *b = &r->before.metrics;
  fputs("\"metrics\":{\"endpoint\":", out);
  json_string_or_null(out, run->metrics_url);
  fprintf(out, ",\"scrapes\":%" PRIu64 ",\"textfile\":",
          delta(a->scrapes, b->scrapes));
  json_string_or_null(out, run->metrics_file);
  fprintf(out,
          ",\"textfile_writes\":%" PRIu64 ",\"textfile_failures\":%" PRIu64
          ",\"alerts_raised\":%" PRIu64 ",\"alerts_cleared\":%" PRIu64 "}",
          delta(a->textfile_writes, b->textfile_writes),
          delta(a->textfile_failures, b->textfile_failures),
          delta(a->alerts_raised, b->alerts_raised),
          delta(a->alerts_cleared, b->alerts_cleared));
}

static bool print_json(const report_t *r, const report_run_t *run, FILE *out) {
  double wall = run->run ? jobrun_wall(run->run) : 0;
  device_figures_t *f = tally(r, run, wall);
  if (!f)
    return false;
  bool passed = all_passed(run);
  fputs("{\"report_version\":1,\"strata_version\":", out);
  json_put_string(out, PACKAGE_VERSION);
  fputs(",\"job_file\":", out);
  json_put_string(out, run->job_file);
  fputs(",\"params\":", out);
  json_put_string(out, run->params);
  fputs(",\"machine\":", out);
  json_put_string(out, run->machine);
  fprintf(out, ",\"tasks\":%zu,\"wall_s\":", run->plan->ntasks);
  json_number(out, wall);
  fputs(",\"modelled_makespan_s\":", out);
  double modelled = modelled_makespan(r->rt);
  json_number(out, modelled > 0 ? modelled : NAN);
  fputs(",\"work_bound_s\":", out);
  double bound = work_bound(r, run->plan);
  json_number(out, bound > 0 ? bound : NAN);
  double flops = run->run ? total_flops(run) : -1;
  fputs(",\"gflops\":", out);
  json_number(out, flops >= 0 && wall > 0 ? flops / wall * 1e-9 : NAN);
  fputc(',', out);
  json_devices(r, f, out);
  fputc(',', out);
  json_jobs(run, out);
  fputc(',', out);
  json_policy(r, out);
  fputc(',', out);
  json_metrics(r, run, out);
  fprintf(out, ",\"check\":{\"present\":%s,\"passed\":%s,\"message\":",
          run->has_check ? "true" : "false",
          run->has_check && run->check_passed ? "true" : "false");
  json_put_string(out, run->check_message ? run->check_message : "");
  fprintf(out, "},\"passed\":%s}\n", passed ? "true" : "false");
  free(f);
  return passed;
}

bool report_print(const report_t *r, const report_run_t *run,
                  report_format_t format, FILE *f) {
  return format == REPORT_JSON ? print_json(r, run, f) : print_text(r, run, f);
}
