/* SPDX-License-Identifier: MIT */
/* progress.c: the terminal progress line (see progress.h). */
#include "config.h"

#include "progress.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define REDRAW_NS 200000000L /* five times a second */

struct progress {
  FILE *out;
  uint64_t total;
  progress_count_fn count;
  const void *ud;
  pthread_t tid;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool stop;
  struct timespec t0;
};

static double since(const struct timespec *t0) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)(now.tv_sec - t0->tv_sec) +
         (double)(now.tv_nsec - t0->tv_nsec) * 1e-9;
}

static void draw(progress_t *p) {
  uint64_t done = p->count(p->ud);
  double t = since(&p->t0), rate = t > 0 ? (double)done / t : 0;
  fprintf(p->out, "\r\033[K%llu/%llu tasks, %.0f/s, %.1f s elapsed",
          (unsigned long long)done, (unsigned long long)p->total, rate, t);
  if (rate > 0 && done < p->total)
    fprintf(p->out, ", ETA %.1f s", (double)(p->total - done) / rate);
  fflush(p->out);
}

static void *run(void *arg) {
  progress_t *p = arg;
  pthread_mutex_lock(&p->mu);
  draw(p); /* at once: a short run shows its line too */
  while (!p->stop) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += REDRAW_NS;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&p->cv, &p->mu, &until);
    if (!p->stop)
      draw(p);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

progress_t *progress_start(FILE *out, uint64_t total, progress_count_fn count,
                           const void *ud) {
  if (!isatty(fileno(out)))
    return NULL;
  progress_t *p = calloc(1, sizeof *p);
  if (!p)
    return NULL;
  *p = (progress_t){.out = out, .total = total, .count = count, .ud = ud};
  clock_gettime(CLOCK_MONOTONIC, &p->t0);
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  if (pthread_create(&p->tid, NULL, run, p)) {
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
    return NULL;
  }
  return p;
}

void progress_stop(progress_t *p) {
  if (!p)
    return;
  pthread_mutex_lock(&p->mu);
  p->stop = true;
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
  pthread_join(p->tid, NULL);
  fprintf(p->out, "\r\033[K");
  fflush(p->out);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cv);
  free(p);
}
