/* SPDX-License-Identifier: MIT */
/* runtime/observe/trace.c: the trace recorder (trace.h) and its two
 * writers: Chrome trace-event JSON and an SVG timeline. */
#include "config.h"

#include "runtime.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMP "trace"

typedef enum trace_kind { TRACE_TASK, TRACE_COPY, TRACE_COUNTER } trace_kind_t;

/* One event. TASK: a (device, worker) track, start and end, names. COPY:
 * a (src node, dst node) track, start and end, bytes, the nodes' names.
 * COUNTER: a node's bytes in use at start_ns, its name. */
typedef struct strata__trace_event {
  uint8_t kind;
  int32_t a, b; /* TASK: device, worker; COPY: src, dst node; COUNTER: node */
  int32_t status;
  uint64_t start_ns, end_ns;
  uint64_t value;  /* COPY: bytes; COUNTER: bytes in use */
  char name[40];   /* TASK: its name; COPY: the source's; COUNTER: node's */
  char kernel[32]; /* TASK: its kernel; COPY: the destination's name */
  char tier[16], job[24];
} trace_event_t;
#define DEFAULT_MAX_EVENTS 1000000

/* {=== Recording ===} */

void strata__trace_init(strata_runtime_t *rt) {
  strata__trace_t *t = &rt->trace;
  *t = (strata__trace_t){0};
  atomic_init(&t->on, false);
  pthread_mutex_init(&t->mu, NULL);
}

void strata__trace_fini(strata_runtime_t *rt) {
  strata__trace_t *t = &rt->trace;
  strata__free(&rt->alloc, t->ev, t->cap * sizeof *t->ev);
  t->ev = NULL;
  pthread_mutex_destroy(&t->mu);
}

/* Cut to fit at a character's start: a cut UTF-8 sequence would make
 * the files invalid. */
static void copy_name(char *dst, size_t len, const char *s) {
  size_t n = 0;
  for (; s && s[n] && n + 1 < len; n++)
    dst[n] = s[n];
  /* s[n] is the first byte left out: if it continues a character, the
   * character's first bytes go too. */
  if (s && s[n])
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
      n--;
  dst[n] = '\0';
}

static void add(strata_runtime_t *rt, const trace_event_t *e) {
  strata__trace_t *t = &rt->trace;
  pthread_mutex_lock(&t->mu);
  if (!atomic_load_explicit(&t->on, memory_order_relaxed)) {
    /* stopped since the caller looked */
  } else if (t->n >= t->max || strata__grow(&rt->alloc, (void **)&t->ev,
                                            &t->cap, t->n + 1, sizeof *t->ev)) {
    t->dropped++;
  } else {
    t->ev[t->n++] = *e;
  }
  pthread_mutex_unlock(&t->mu);
}

void strata__trace_task(strata_runtime_t *rt, int device, unsigned worker,
                        uint64_t start_ns, uint64_t end_ns, int status,
                        const char *name, const char *kernel, const char *tier,
                        const char *job) {
  trace_event_t e = {.kind = TRACE_TASK,
                     .a = device,
                     .b = (int32_t)worker,
                     .status = status,
                     .start_ns = start_ns,
                     .end_ns = end_ns};
  copy_name(e.name, sizeof e.name, name);
  copy_name(e.kernel, sizeof e.kernel, kernel);
  copy_name(e.tier, sizeof e.tier, tier);
  copy_name(e.job, sizeof e.job, job);
  add(rt, &e);
}

void strata__trace_copy(strata_runtime_t *rt, int src, const char *src_name,
                        int dst, const char *dst_name, uint64_t bytes,
                        uint64_t start_ns, uint64_t end_ns, int status,
                        uint64_t dst_used) {
  trace_event_t e = {.kind = TRACE_COPY,
                     .a = src,
                     .b = dst,
                     .status = status,
                     .start_ns = start_ns,
                     .end_ns = end_ns,
                     .value = bytes};
  copy_name(e.name, sizeof e.name, src_name);
  copy_name(e.kernel, sizeof e.kernel, dst_name);
  add(rt, &e);
  trace_event_t u = {
      .kind = TRACE_COUNTER, .a = dst, .start_ns = end_ns, .value = dst_used};
  copy_name(u.name, sizeof u.name, dst_name);
  add(rt, &u);
}

int strata_trace_start(strata_runtime_t *rt, size_t max_events) {
  if (!rt)
    return STRATA_EINVAL;
  strata__trace_t *t = &rt->trace;
  pthread_mutex_lock(&t->mu);
  t->n = 0;
  t->dropped = 0;
  t->max = max_events ? max_events : DEFAULT_MAX_EVENTS;
  t->t0_ns = strata__now_ns();
  t->ever = true;
  atomic_store(&t->on, true);
  pthread_mutex_unlock(&t->mu);
  return STRATA_OK;
}

int strata_trace_stop(strata_runtime_t *rt) {
  if (!rt)
    return STRATA_EINVAL;
  atomic_store(&rt->trace.on, false);
  return STRATA_OK;
}

int strata_trace_counts(const strata_runtime_t *rt, uint64_t *events,
                        uint64_t *dropped) {
  if (!rt)
    return STRATA_EINVAL;
  strata__trace_t *t = (strata__trace_t *)&rt->trace;
  pthread_mutex_lock(&t->mu);
  if (events)
    *events = t->n;
  if (dropped)
    *dropped = t->dropped;
  pthread_mutex_unlock(&t->mu);
  return STRATA_OK;
}

/* {=== A snapshot to write from ===} */

typedef struct snapshot {
  trace_event_t *ev;
  size_t n;
  uint64_t t0, t1; /* the span drawn, ns */
} snapshot_t;

static int take_snapshot(strata_runtime_t *rt, snapshot_t *s) {
  strata__trace_t *t = &rt->trace;
  pthread_mutex_lock(&t->mu);
  int rc = t->ever ? STRATA_OK : STRATA_ESTATE;
  *s = (snapshot_t){.n = t->n, .t0 = t->t0_ns, .t1 = t->t0_ns + 1};
  if (!rc && s->n && !(s->ev = strata__alloc(&rt->alloc, s->n * sizeof *s->ev)))
    rc = STRATA_ENOMEM;
  if (!rc && s->n)
    memcpy(s->ev, t->ev, s->n * sizeof *s->ev);
  pthread_mutex_unlock(&t->mu);
  if (rc) {
    s->n = 0;
    return rc;
  }
  for (size_t i = 0; i < s->n; i++) {
    trace_event_t *e = &s->ev[i];
    /* A task already running at the start began before it: drawn from
     * the start. */
    if (e->start_ns < s->t0)
      e->start_ns = s->t0;
    if (e->end_ns < e->start_ns)
      e->end_ns = e->start_ns;
    uint64_t end = e->kind == TRACE_COUNTER ? e->start_ns : e->end_ns;
    if (end > s->t1)
      s->t1 = end;
  }
  return STRATA_OK;
}

static void drop_snapshot(strata_runtime_t *rt, snapshot_t *s) {
  strata__free(&rt->alloc, s->ev, s->n * sizeof *s->ev);
}

/* Microseconds since the start, for both writers. */
static double us(const snapshot_t *s, uint64_t ns) {
  return ns > s->t0 ? (double)(ns - s->t0) / 1e3 : 0;
}

static void put_escaped(FILE *f, const char *s, bool xml) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (xml && (c == '<' || c == '>' || c == '&' || c == '"'))
      fprintf(f, "&#%d;", c);
    else if (!xml && (c == '"' || c == '\\'))
      fprintf(f, "\\%c", c);
    else if (c < 0x20)
      fprintf(f, xml ? " " : "\\u%04x", c);
    else
      fputc(c, f);
  }
}

/* {=== Chrome trace-event JSON ===} */

/* Process ids: a device's is its index + 1; links and memory come after
 * the devices. */
static int links_pid(const strata_runtime_t *rt) {
  return (int)rt->ndevices + 1;
}

static void json_meta(FILE *f, const char *what, int pid, int tid,
                      const char *name, bool *first) {
  fprintf(f,
          "%s{\"ph\":\"M\",\"name\":\"%s\",\"pid\":%d,\"tid\":%d,"
          "\"args\":{\"name\":\"",
          *first ? "" : ",\n", what, pid, tid);
  put_escaped(f, name, false);
  fputs("\"}}", f);
  *first = false;
}

static void json_tracks(FILE *f, strata_runtime_t *rt, const snapshot_t *s,
                        bool *first) {
  for (size_t d = 0; d < rt->ndevices; d++) {
    const strata__device_t *dev = rt->devices[d];
    json_meta(f, "process_name", (int)d + 1, 0, dev->desc.name, first);
    for (uint32_t w = 0; w < dev->desc.nworkers; w++) {
      char name[32];
      snprintf(name, sizeof name, "worker %u", w);
      json_meta(f, "thread_name", (int)d + 1, (int)w, name, first);
    }
  }
  json_meta(f, "process_name", links_pid(rt), 0, "links", first);
  json_meta(f, "process_name", links_pid(rt) + 1, 0, "memory", first);
  /* A link's track id: src * 256 + dst, named at its first copy. */
  size_t nn = strata__memory_nnodes(&rt->mem);
  size_t cells = nn ? nn * nn : 1;
  bool *named = strata__zalloc(&rt->alloc, cells);
  for (size_t i = 0; named && i < s->n; i++) {
    const trace_event_t *e = &s->ev[i];
    int tid = e->a * 256 + e->b;
    if (e->kind != TRACE_COPY || e->a < 0 || e->b < 0 || (size_t)e->a >= nn ||
        (size_t)e->b >= nn || named[e->a * nn + e->b])
      continue;
    named[e->a * nn + e->b] = true;
    char name[80];
    snprintf(name, sizeof name, "%s -> %s", e->name, e->kernel);
    json_meta(f, "thread_name", links_pid(rt), tid, name, first);
  }
  strata__free(&rt->alloc, named, cells);
}

static void json_event(FILE *f, const strata_runtime_t *rt, const snapshot_t *s,
                       const trace_event_t *e) {
  switch (e->kind) {
  case TRACE_TASK:
    fprintf(f,
            ",\n{\"ph\":\"X\",\"pid\":%d,\"tid\":%d,\"ts\":%.3f,"
            "\"dur\":%.3f,\"cat\":\"task\",\"name\":\"",
            e->a + 1, e->b, us(s, e->start_ns),
            us(s, e->end_ns) - us(s, e->start_ns));
    put_escaped(f, e->name, false);
    fputs("\",\"args\":{\"kernel\":\"", f);
    put_escaped(f, e->kernel, false);
    fputs("\",\"tier\":\"", f);
    put_escaped(f, e->tier, false);
    fputs("\",\"job\":\"", f);
    put_escaped(f, e->job, false);
    fprintf(f, "\",\"status\":%d}}", (int)e->status);
    break;
  case TRACE_COPY:
    fprintf(f,
            ",\n{\"ph\":\"X\",\"pid\":%d,\"tid\":%d,\"ts\":%.3f,"
            "\"dur\":%.3f,\"cat\":\"copy\",\"name\":\"copy\","
            "\"args\":{\"bytes\":%" PRIu64 ",\"status\":%d}}",
            links_pid(rt), e->a * 256 + e->b, us(s, e->start_ns),
            us(s, e->end_ns) - us(s, e->start_ns), e->value, (int)e->status);
    break;
  default:
    fprintf(f, ",\n{\"ph\":\"C\",\"pid\":%d,\"tid\":0,\"ts\":%.3f,\"name\":\"",
            links_pid(rt) + 1, us(s, e->start_ns));
    put_escaped(f, e->name, false);
    fprintf(f, "\",\"args\":{\"bytes\":%" PRIu64 "}}", e->value);
  }
}

static void write_json(FILE *f, strata_runtime_t *rt, const snapshot_t *s) {
  bool first = true;
  fputs("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n", f);
  json_tracks(f, rt, s, &first);
  for (size_t i = 0; i < s->n; i++)
    json_event(f, rt, s, &s->ev[i]);
  fputs("\n]}\n", f);
}

/* {=== SVG timeline ===} */

enum { SVG_LABEL_W = 250, SVG_PLOT_W = 1100, SVG_LANE_H = 16, SVG_TOP = 44 };

/* A lane: a (device, worker) or a (src, dst) link. */
typedef struct lane {
  uint8_t kind; /* TRACE_TASK or _COPY */
  int32_t a, b;
  char label[96];
} lane_t;

static const char *const palette[] = {"#4e79a7", "#f28e2b", "#59a14f",
                                      "#e15759", "#76b7b2", "#edc948",
                                      "#b07aa1", "#ff9da7"};
enum { NPALETTE = 8, MAX_TIERS = 8, MAX_LANES = 512 };

typedef struct svg_ctx {
  const snapshot_t *s;
  lane_t lanes[MAX_LANES];
  size_t nlanes;
  char tiers[MAX_TIERS][16]; /* seen, in order: colour i */
  size_t ntiers;
  double px_per_ns;
} svg_ctx_t;

static int lane_of(svg_ctx_t *c, uint8_t kind, int32_t a, int32_t b) {
  for (size_t i = 0; i < c->nlanes; i++)
    if (c->lanes[i].kind == kind && c->lanes[i].a == a && c->lanes[i].b == b)
      return (int)i;
  return -1;
}

static void add_lanes(svg_ctx_t *c, strata_runtime_t *rt) {
  for (size_t d = 0; d < rt->ndevices; d++)
    for (uint32_t w = 0; w < rt->devices[d]->desc.nworkers; w++) {
      if (c->nlanes == MAX_LANES)
        return;
      lane_t *l = &c->lanes[c->nlanes++];
      *l = (lane_t){.kind = TRACE_TASK, .a = (int32_t)d, .b = (int32_t)w};
      snprintf(l->label, sizeof l->label, "%.70s / %u",
               rt->devices[d]->desc.name, w);
    }
  for (size_t i = 0; i < c->s->n && c->nlanes < MAX_LANES; i++) {
    const trace_event_t *e = &c->s->ev[i];
    if (e->kind != TRACE_COPY || lane_of(c, TRACE_COPY, e->a, e->b) >= 0)
      continue;
    lane_t *l = &c->lanes[c->nlanes++];
    *l = (lane_t){.kind = TRACE_COPY, .a = e->a, .b = e->b};
    snprintf(l->label, sizeof l->label, "%.40s -> %.40s", e->name, e->kernel);
  }
}

/* The colour of a tier: one of the palette's in the order first seen; the
 * ninth tier on, and tasks without one, grey. */
static const char *tier_colour(svg_ctx_t *c, const char *tier) {
  if (!tier[0])
    return "#9d9d9d";
  for (size_t i = 0; i < c->ntiers; i++)
    if (!strcmp(c->tiers[i], tier))
      return palette[i % NPALETTE];
  if (c->ntiers == MAX_TIERS)
    return "#9d9d9d";
  copy_name(c->tiers[c->ntiers], sizeof c->tiers[0], tier);
  return palette[c->ntiers++ % NPALETTE];
}

static double x_of(const svg_ctx_t *c, uint64_t ns) {
  return SVG_LABEL_W + (double)(ns - c->s->t0) * c->px_per_ns;
}

/* One lane's slices, in start order; a run of slices each under a pixel,
 * closer than a pixel to the next, is drawn as one block of the first's
 * colour, with a count. */
static void draw_lane(FILE *f, svg_ctx_t *c, int lane, const size_t *order,
                      size_t n) {
  double y = SVG_TOP + lane * SVG_LANE_H + 2;
  for (size_t k = 0; k < n;) {
    const trace_event_t *e = &c->s->ev[order[k]];
    double x0 = x_of(c, e->start_ns), x1 = x_of(c, e->end_ns);
    size_t run = 1;
    uint64_t last_end = e->end_ns;
    /* Thin slices close together, each under a pixel, are one block. */
    while (x1 - x0 < 1.0 && k + run < n) {
      const trace_event_t *nx = &c->s->ev[order[k + run]];
      double nx0 = x_of(c, nx->start_ns), nx1 = x_of(c, nx->end_ns);
      if (nx0 - x1 > 1.0 || nx1 - nx0 >= 1.0)
        break;
      x1 = nx1 > x1 ? nx1 : x1;
      last_end = nx->end_ns > last_end ? nx->end_ns : last_end;
      run++;
    }
    const char *fill =
        e->kind == TRACE_COPY ? "#555555" : tier_colour(c, e->tier);
    fprintf(f,
            "<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%d\" "
            "fill=\"%s\"><title>",
            x0, y, x1 - x0 < 0.5 ? 0.5 : x1 - x0, SVG_LANE_H - 4, fill);
    if (run > 1)
      fprintf(f, "%zu slices", run);
    else if (e->kind == TRACE_COPY)
      fprintf(f, "copy of %" PRIu64 " bytes", e->value);
    else {
      put_escaped(f, e->name, true);
      fputs(" (", f);
      put_escaped(f, e->kernel, true);
      if (e->tier[0]) {
        fputs(", ", f);
        put_escaped(f, e->tier, true);
      }
      fputs(")", f);
    }
    fprintf(f, ": %.3f ms</title></rect>\n",
            (double)(last_end - e->start_ns) / 1e6);
    k += run;
  }
}

/* Sort by start time: qsort takes no context, so the events it orders are
 * named in a thread-local, set just before the call. */
static _Thread_local const trace_event_t *sort_ev;

static int by_start(const void *x, const void *y) {
  uint64_t a = sort_ev[*(const size_t *)x].start_ns;
  uint64_t b = sort_ev[*(const size_t *)y].start_ns;
  return a < b ? -1 : a > b;
}

static void draw_axis(FILE *f, const svg_ctx_t *c, double bottom) {
  double span_ms = (double)(c->s->t1 - c->s->t0) / 1e6;
  fprintf(f,
          "<line x1=\"%d\" y1=\"%.0f\" x2=\"%d\" y2=\"%.0f\" "
          "stroke=\"#333\"/>\n",
          SVG_LABEL_W, bottom, SVG_LABEL_W + SVG_PLOT_W, bottom);
  for (int i = 0; i <= 10; i++) {
    double x = SVG_LABEL_W + SVG_PLOT_W * i / 10.0;
    double t = span_ms * i / 10.0;
    fprintf(f,
            "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" "
            "stroke=\"#333\"/><text x=\"%.1f\" y=\"%.0f\" "
            "text-anchor=\"middle\">%.*f %s</text>\n",
            x, bottom, x, bottom + 5, x, bottom + 18, t >= 1000 ? 2 : 1,
            t >= 1000 ? t / 1000 : t, t >= 1000 ? "s" : "ms");
  }
}

static void draw_legend(FILE *f, const svg_ctx_t *c, double y) {
  double x = SVG_LABEL_W;
  for (size_t i = 0; i < c->ntiers; i++, x += 130) {
    fprintf(f,
            "<rect x=\"%.0f\" y=\"%.0f\" width=\"12\" height=\"12\" "
            "fill=\"%s\"/><text x=\"%.0f\" y=\"%.0f\">",
            x, y, palette[i % NPALETTE], x + 16, y + 11);
    put_escaped(f, c->tiers[i], true);
    fputs("</text>\n", f);
  }
  fprintf(f,
          "<rect x=\"%.0f\" y=\"%.0f\" width=\"12\" height=\"12\" "
          "fill=\"#9d9d9d\"/><text x=\"%.0f\" y=\"%.0f\">no tier</text>\n"
          "<rect x=\"%.0f\" y=\"%.0f\" width=\"12\" height=\"12\" "
          "fill=\"#555555\"/><text x=\"%.0f\" y=\"%.0f\">copy</text>\n",
          x, y, x + 16, y + 11, x + 130, y, x + 146, y + 11);
}

static int write_svg(FILE *f, strata_runtime_t *rt, const snapshot_t *s) {
  static svg_ctx_t zero;
  svg_ctx_t *c = strata__alloc(&rt->alloc, sizeof *c);
  size_t *order = strata__alloc(&rt->alloc, (s->n ? s->n : 1) * sizeof *order);
  if (!c || !order) {
    strata__free(&rt->alloc, c, sizeof *c);
    strata__free(&rt->alloc, order, (s->n ? s->n : 1) * sizeof *order);
    return STRATA_ENOMEM;
  }
  *c = zero;
  c->s = s;
  c->px_per_ns = (double)SVG_PLOT_W / (double)(s->t1 - s->t0);
  add_lanes(c, rt);
  double bottom = SVG_TOP + (double)c->nlanes * SVG_LANE_H + 4;
  fprintf(f,
          "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
          "height=\"%.0f\" font-family=\"sans-serif\" font-size=\"11\">\n"
          "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
          "<text x=\"8\" y=\"18\" font-size=\"14\">Strata run: %zu "
          "events over %.3f ms</text>\n",
          SVG_LABEL_W + SVG_PLOT_W + 20, bottom + 60, s->n,
          (double)(s->t1 - s->t0) / 1e6);
  for (size_t l = 0; l < c->nlanes; l++) {
    double y = SVG_TOP + (double)l * SVG_LANE_H;
    fprintf(f,
            "<rect x=\"%d\" y=\"%.0f\" width=\"%d\" height=\"%d\" "
            "fill=\"%s\"/><text x=\"8\" y=\"%.0f\">",
            SVG_LABEL_W, y, SVG_PLOT_W, SVG_LANE_H,
            l % 2 ? "#f4f4f4" : "#fbfbfb", y + 12);
    put_escaped(f, c->lanes[l].label, true);
    fputs("</text>\n", f);
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++) {
      const trace_event_t *e = &s->ev[i];
      if (e->kind == c->lanes[l].kind && e->a == c->lanes[l].a &&
          e->b == c->lanes[l].b)
        order[n++] = i;
    }
    sort_ev = s->ev;
    qsort(order, n, sizeof *order, by_start);
    draw_lane(f, c, (int)l, order, n);
  }
  draw_axis(f, c, bottom);
  draw_legend(f, c, bottom + 28);
  fputs("</svg>\n", f);
  strata__free(&rt->alloc, order, (s->n ? s->n : 1) * sizeof *order);
  strata__free(&rt->alloc, c, sizeof *c);
  return STRATA_OK;
}

/* {=== Writing ===} */

int strata_trace_write(strata_runtime_t *rt, const char *path,
                       strata_trace_format_t format) {
  if (!rt || !path ||
      (format != STRATA_TRACE_CHROME_JSON && format != STRATA_TRACE_SVG))
    return STRATA_EINVAL;
  snapshot_t s;
  int rc = take_snapshot(rt, &s);
  if (rc)
    return rc;
  FILE *f = fopen(path, "w");
  if (!f) {
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP, "cannot write %s: %s", path,
               strerror(errno));
    drop_snapshot(rt, &s);
    return STRATA_EIO;
  }
  if (format == STRATA_TRACE_CHROME_JSON)
    write_json(f, rt, &s);
  else
    rc = write_svg(f, rt, &s);
  bool bad = ferror(f) != 0;
  if (fclose(f) != 0 || bad) {
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP, "cannot write %s: %s", path,
               strerror(errno));
    rc = rc ? rc : STRATA_EIO;
  }
  drop_snapshot(rt, &s);
  return rc;
}
