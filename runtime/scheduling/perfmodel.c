/* SPDX-License-Identifier: MIT */
/* runtime/scheduling/perfmodel.c: run-time history per (kernel, device model,
 * size bucket), and its file (see perfmodel.h). */
#include "config.h"

#include "perfmodel.h"

#include "device.h"
#include "graph.h"

#include "sandbox.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define COMP "perfmodel"
#define FILE_HEADER "strata-perfmodel 1"
/* Past this many samples, a new one weighs 1/AVERAGE_WINDOW: the mean
 * follows a device whose speed changes. */
#define AVERAGE_WINDOW 32
#define NAME_MAX_LEN 255 /* kernel and model names in the file */
#define LINE_MAX_LEN (2 * NAME_MAX_LEN + 94) /* bytes of one line */
#define FILE_MAX ((size_t)64 << 20)          /* bytes of the file */

void strata__perf_init(strata__perfmodel_t *pm) {
  memset(pm, 0, sizeof *pm);
  pthread_mutex_init(&pm->mu, NULL);
}

static void free_entries(strata__perf_entry_t *slots, size_t cap,
                         const strata__allocator_t *a) {
  for (size_t i = 0; i < cap; i++) {
    strata__strfree(a, slots[i].kernel);
    strata__strfree(a, slots[i].model);
  }
  strata__free(a, slots, cap * sizeof *slots);
}

void strata__perf_fini(strata__perfmodel_t *pm, const strata__allocator_t *a) {
  free_entries(pm->slots, pm->cap, a);
  pthread_mutex_destroy(&pm->mu);
  memset(pm, 0, sizeof *pm);
}

/* The size bucket of a working set: floor(log2(bytes)), 0 for 0. */
static uint32_t perf_bucket(uint64_t bytes) {
  uint32_t b = 0;
  while (bytes > 1) {
    bytes >>= 1;
    b++;
  }
  return b;
}

static uint64_t hash(const char *kernel, const char *model, uint32_t bucket) {
  uint64_t h = strata__fnv1a_str(STRATA__FNV_BASIS ^ bucket, kernel);
  h = strata__fnv1a(h, "\xff", 1); /* separates "ab"+"c" from "a"+"bc" */
  return strata__fnv1a_str(h, model);
}

/* The slot of this key, or the free slot where it would go (pm->mu held;
 * the table is never full). */
static strata__perf_entry_t *find(strata__perfmodel_t *pm, const char *kernel,
                                  const char *model, uint32_t bucket) {
  size_t mask = pm->cap - 1;
  for (size_t i = hash(kernel, model, bucket) & mask;; i = (i + 1) & mask) {
    strata__perf_entry_t *e = &pm->slots[i];
    if (!e->kernel || (e->bucket == bucket && !strcmp(e->kernel, kernel) &&
                       !strcmp(e->model, model)))
      return e;
  }
}

/* Keep the load factor under 1/2. @return 0; STRATA_ENOMEM */
static int grow(strata__perfmodel_t *pm, const strata__allocator_t *a) {
  if (2 * (pm->n + 1) <= pm->cap)
    return STRATA_OK;
  size_t ncap = pm->cap ? 2 * pm->cap : 64;
  strata__perf_entry_t *old = pm->slots;
  size_t ocap = pm->cap;
  pm->slots = strata__zalloc(a, ncap * sizeof *pm->slots);
  if (!pm->slots) {
    pm->slots = old;
    return STRATA_ENOMEM;
  }
  pm->cap = ncap;
  for (size_t i = 0; i < ocap; i++)
    if (old[i].kernel)
      *find(pm, old[i].kernel, old[i].model, old[i].bucket) = old[i];
  strata__free(a, old, ocap * sizeof *old);
  return STRATA_OK;
}

/* The entry for this key, created empty if absent (pm->mu held).
 * @return NULL when out of memory */
static strata__perf_entry_t *entry(strata__perfmodel_t *pm,
                                   const strata__allocator_t *a,
                                   const char *kernel, const char *model,
                                   uint32_t bucket) {
  if (grow(pm, a))
    return NULL;
  strata__perf_entry_t *e = find(pm, kernel, model, bucket);
  if (e->kernel)
    return e;
  char *k = strata__strdup(a, kernel), *m = strata__strdup(a, model);
  if (!k || !m) {
    strata__strfree(a, k);
    strata__strfree(a, m);
    return NULL;
  }
  *e = (strata__perf_entry_t){k, m, bucket, 0, 0};
  pm->n++;
  return e;
}

/* {=== The memo ===} */

static strata__perf_memo_t *memo_of(strata__perfmodel_t *pm, const char *kernel,
                                    const char *model, uint32_t bucket) {
  uint64_t h = ((uint64_t)(uintptr_t)kernel >> 4) * 0x9e3779b97f4a7c15ULL ^
               ((uint64_t)(uintptr_t)model >> 4) * 0xc2b2ae3d27d4eb4fULL ^
               bucket * 0x165667b19e3779f9ULL;
  return &pm->memo[(h >> 32) & (STRATA__PERF_MEMO - 1)];
}

/* The memo's answer for the key, if the slot holds it (any thread). A
 * sequence lock without standalone fences: the data are read with
 * acquire loads, so the second read of the count comes after them. */
static bool memo_read(strata__perf_memo_t *m, const char *kernel,
                      const char *model, uint32_t bucket, double *seconds,
                      uint64_t *count) {
  uint32_t s1 = atomic_load_explicit(&m->seq, memory_order_acquire);
  if (s1 & 1)
    return false;
  const char *k = atomic_load_explicit(&m->kernel, memory_order_acquire);
  const char *mo = atomic_load_explicit(&m->model, memory_order_acquire);
  uint32_t b = atomic_load_explicit(&m->bucket, memory_order_acquire);
  uint64_t c = atomic_load_explicit(&m->count, memory_order_acquire);
  uint64_t bits = atomic_load_explicit(&m->mean_bits, memory_order_acquire);
  if (atomic_load_explicit(&m->seq, memory_order_relaxed) != s1 ||
      k != kernel || mo != model || b != bucket)
    return false;
  memcpy(seconds, &bits, sizeof *seconds);
  *count = c;
  return true;
}

/* Put an answer in its slot (pm->mu held: one writer at a time). The
 * data are stored with release, so a reader that sees any of them also
 * sees the odd count before them. */
static void memo_write(strata__perf_memo_t *m, const char *kernel,
                       const char *model, uint32_t bucket, double seconds,
                       uint64_t count) {
  uint32_t s = atomic_load_explicit(&m->seq, memory_order_relaxed);
  uint64_t bits;
  memcpy(&bits, &seconds, sizeof bits);
  atomic_store_explicit(&m->seq, s + 1, memory_order_relaxed);
  atomic_store_explicit(&m->kernel, kernel, memory_order_release);
  atomic_store_explicit(&m->model, model, memory_order_release);
  atomic_store_explicit(&m->bucket, bucket, memory_order_release);
  atomic_store_explicit(&m->count, count, memory_order_release);
  atomic_store_explicit(&m->mean_bits, bits, memory_order_release);
  atomic_store_explicit(&m->seq, s + 2, memory_order_release);
}

/* {=== Entries ===} */

static void add_sample(strata__perf_entry_t *e, double seconds) {
  e->count++;
  double w =
      e->count < AVERAGE_WINDOW ? 1.0 / (double)e->count : 1.0 / AVERAGE_WINDOW;
  e->mean += (seconds - e->mean) * w;
}

void strata__perf_record(strata__perfmodel_t *pm, const strata__allocator_t *a,
                         const char *kernel, const char *model, uint64_t bytes,
                         double seconds) {
  uint32_t bucket = perf_bucket(bytes);
  pthread_mutex_lock(&pm->mu);
  strata__perf_entry_t *e = entry(pm, a, kernel, model, bucket);
  if (e) {
    add_sample(e, seconds);
    memo_write(memo_of(pm, kernel, model, bucket), kernel, model, bucket,
               e->mean, e->count);
  }
  pthread_mutex_unlock(&pm->mu);
}

bool strata__perf_lookup(strata__perfmodel_t *pm, const char *kernel,
                         const char *model, uint64_t bytes, double *seconds,
                         uint64_t *count) {
  uint32_t bucket = perf_bucket(bytes);
  strata__perf_memo_t *m = memo_of(pm, kernel, model, bucket);
  if (memo_read(m, kernel, model, bucket, seconds, count))
    return *count > 0;
  pthread_mutex_lock(&pm->mu);
  const strata__perf_entry_t *e =
      pm->cap ? find(pm, kernel, model, bucket) : NULL;
  bool found = e && e->kernel && e->count;
  *seconds = found ? e->mean : 0;
  *count = found ? e->count : 0;
  memo_write(m, kernel, model, bucket, *seconds, *count);
  pthread_mutex_unlock(&pm->mu);
  return found;
}

/* {=== The file ===} */

/* One line "<count> <mean> <bucket> <kernel>\t<model>" into e's fields.
 * @return 0; STRATA_EIO */
static int parse_line(char *line, uint64_t *count, double *mean,
                      uint32_t *bucket, char **kernel, char **model) {
  char *end;
  errno = 0;
  unsigned long long c = strtoull(line, &end, 10);
  if (errno || end == line || *end != ' ')
    return STRATA_EIO;
  double m = strtod(end + 1, &end);
  if (errno || *end != ' ' || !(m >= 0) || m > 1e9)
    return STRATA_EIO;
  unsigned long b = strtoul(end + 1, &end, 10);
  if (errno || *end != ' ' || b > 64)
    return STRATA_EIO;
  char *tab = strchr(end + 1, '\t');
  if (!tab || tab == end + 1 || !tab[1])
    return STRATA_EIO;
  *tab = '\0';
  tab[strcspn(tab + 1, "\r\n") + 1] = '\0';
  *count = c;
  *mean = m;
  *bucket = (uint32_t)b;
  *kernel = end + 1;
  *model = tab + 1;
  return c ? STRATA_OK : STRATA_EIO;
}

/* Parse the lines of a models file (text, NUL-terminated) into pm. The
 * first line is the header. @return 0; STRATA_EIO (*lineno: the line that
 * is not one); STRATA_ENOMEM */
static int parse_file(strata__perfmodel_t *pm, const strata__allocator_t *a,
                      char *text, size_t len, unsigned *lineno) {
  if (len == 0 || strncmp(text, FILE_HEADER, strlen(FILE_HEADER)))
    return STRATA_EIO;
  int rc = STRATA_OK;
  char *line = text, *end = text + len;
  *lineno = 0;
  pthread_mutex_lock(&pm->mu);
  while (rc == STRATA_OK && line < end) {
    char *nl = memchr(line, '\n', (size_t)(end - line));
    size_t n = nl ? (size_t)(nl - line) : (size_t)(end - line);
    line[n] = '\0';
    if (++*lineno > 1 && n > 0) {
      uint64_t count;
      double mean;
      uint32_t bucket;
      char *kernel, *model;
      strata__perf_entry_t *e;
      if (n > LINE_MAX_LEN ||
          (rc = parse_line(line, &count, &mean, &bucket, &kernel, &model)))
        rc = STRATA_EIO;
      else if (!(e = entry(pm, a, kernel, model, bucket)))
        rc = STRATA_ENOMEM;
      else {
        e->count = count;
        e->mean = mean;
      }
    }
    line += n + 1;
  }
  pthread_mutex_unlock(&pm->mu);
  return rc;
}

int strata__perf_load(strata__perfmodel_t *pm, const strata__allocator_t *a,
                      const char *path, const strata__logger_t *log) {
  /* Read whole by the shared reader: a FIFO or a directory in its place
   * is refused with its own message instead of blocking. */
  char *text, err[512];
  size_t len;
  int rc = strata__read_text_file(path, FILE_MAX, strata__alloc_via, (void *)a,
                                  &text, &len, err, sizeof err);
  if (rc == STRATA_ENOENT)
    return STRATA_OK; /* the first run: the models start empty */
  if (rc == STRATA_ENOMEM)
    return rc;
  if (rc) {
    STRATA_LOG(log, STRATA_LOG_WARN, COMP, "%s; the models start empty", err);
    return STRATA_EIO;
  }
  unsigned lineno = 1;
  rc = parse_file(pm, a, text, len, &lineno);
  strata__free_text_file(strata__alloc_via, (void *)a, text, len);
  if (rc == STRATA_EIO)
    STRATA_LOG(log, STRATA_LOG_WARN, COMP,
               "%s:%u: not a performance-model line; the models start "
               "from what was read before it",
               path, lineno ? lineno : 1);
  return rc;
}

int strata__perf_save(strata__perfmodel_t *pm, const char *path,
                      const strata__logger_t *log) {
  /* Never replace what is not a models file: a FIFO, a directory, a
   * device someone named by mistake. */
  struct stat st;
  if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
    STRATA_LOG(log, STRATA_LOG_WARN, COMP,
               "%s: not a regular file; the models are not saved", path);
    return STRATA_EIO;
  }
  /* Write a neighbour, then rename: a crash never leaves half a file. */
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) {
    STRATA_LOG(log, STRATA_LOG_WARN, COMP, "cannot write %s: %s", tmp,
               strerror(errno));
    return STRATA_EIO;
  }
  fprintf(f, "%s\n", FILE_HEADER);
  pthread_mutex_lock(&pm->mu);
  for (size_t i = 0; i < pm->cap; i++) {
    const strata__perf_entry_t *e = &pm->slots[i];
    if (e->kernel && e->count && strlen(e->kernel) <= NAME_MAX_LEN &&
        strlen(e->model) <= NAME_MAX_LEN && !strpbrk(e->kernel, "\t\n") &&
        !strpbrk(e->model, "\t\n"))
      fprintf(f, "%llu %.9g %u %s\t%s\n", (unsigned long long)e->count, e->mean,
              e->bucket, e->kernel, e->model);
  }
  pthread_mutex_unlock(&pm->mu);
  bool ok = !ferror(f);
  ok = fclose(f) == 0 && ok;
  if (!ok || rename(tmp, path)) {
    STRATA_LOG(log, STRATA_LOG_WARN, COMP, "cannot write %s: %s", path,
               strerror(errno));
    remove(tmp);
    return STRATA_EIO;
  }
  return STRATA_OK;
}

/* {=== Estimates ===} */

/* Rate assumed for a device that does not know its own (the cpu backend
 * on a real machine): per worker, flop/s. */
#define GUESS_FLOPS_PER_WORKER 1e10

static double rate_per_task(const strata__device_t *dev, const char *prec) {
  /* As the sim and the rated speeds mean it: FP64 only when said. */
  bool fp64 = prec && !strcmp(prec, "fp64");
  double rate = fp64 ? dev->desc.fp64_flops : dev->desc.fp32_flops;
  if (rate <= 0)
    return GUESS_FLOPS_PER_WORKER;
  return rate / (dev->desc.nworkers ? dev->desc.nworkers : 1);
}

double strata__perf_estimate(strata__perfmodel_t *perf,
                             const strata__device_t *dev,
                             const strata__task_t *t) {
  double s;
  uint64_t count;
  if (strata__perf_lookup(perf, t->kernel->name, strata__device_model_name(dev),
                          t->working_set, &s, &count))
    return s;
  double compute =
      t->attrs.flops > 0
          ? t->attrs.flops / rate_per_task(dev, strata__task_precision(t))
          : 0;
  double bw = dev->desc.mem_bandwidth;
  double memory = bw > 0 ? (double)t->working_set / bw : 0;
  return compute > memory ? compute : memory;
}
