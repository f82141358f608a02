/* SPDX-License-Identifier: MIT */
/* runtime/observe/metrics_textfile.c: node_exporter's textfile mode
 * (strata_metrics_textfile). A thread writes DIR/strata.prom every
 * interval and a last time when stopped; each write goes to a temporary
 * file in DIR (the same file system, so the rename is atomic) that is
 * renamed over strata.prom, so the collector reads the previous file or
 * the new one, never half of one. A failed write (disk full, the
 * directory gone) removes its temporary file, is counted and logged once
 * per run of failures, and leaves the previous file. The thread's
 * struct is started and stopped under metrics.export_mu
 * (metrics_export.c); its own mu guards the stop flag. */
#include "config.h"

#include "runtime.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define COMP "metrics"

#define DEFAULT_INTERVAL_MS 15000
#define FILE_NAME "strata.prom"

struct strata__metrics_textfile {
  strata_runtime_t *rt;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t wake; /* CLOCK_MONOTONIC */
  bool stop;
  bool failing; /* the last write failed (logged once per run of them) */
  int interval_ms;
  char *dir;
};

/* Write all of text to a temporary file in dir, then rename it over
 * dir/strata.prom. @return 0 or an errno */
static int write_atomically(const char *dir, const char *text, size_t len) {
  char tmp[PATH_MAX], dst[PATH_MAX];
  if (snprintf(tmp, sizeof tmp, "%s/.%s.XXXXXX", dir, FILE_NAME) >=
          (int)sizeof tmp ||
      snprintf(dst, sizeof dst, "%s/%s", dir, FILE_NAME) >= (int)sizeof dst)
    return ENAMETOOLONG;
  int err = 0, fd = mkstemp(tmp);
  if (fd < 0)
    return errno;
  for (size_t off = 0; off < len && !err;) {
    ssize_t w = write(fd, text + off, len - off);
    if (w > 0)
      off += (size_t)w;
    else if (w == 0)
      err = EIO; /* a regular file that takes nothing */
    else if (errno != EINTR)
      err = errno;
  }
  /* node_exporter reads the file as it is renamed in: the bytes must be
   * in it by then (a crash after the rename leaves a whole file). */
  if (!err && fsync(fd))
    err = errno;
  /* mkstemp makes it 0600: the collector may run as another user. */
  if (!err && fchmod(fd, 0644))
    err = errno;
  if (close(fd) && !err)
    err = errno;
  if (!err && rename(tmp, dst))
    err = errno;
  if (err)
    unlink(tmp);
  return err;
}

/* Write the file now; *os_error gets the errno (0 on success).
 * @return 0; STRATA_EIO; STRATA_ENOMEM */
static int write_now(strata_runtime_t *rt, const char *dir, int *os_error) {
  strata__expo_t x;
  strata__expo_init(&x, &rt->alloc);
  strata__metrics_collect(rt, &x);
  int err =
      x.failed ? ENOMEM : write_atomically(dir, x.buf ? x.buf : "", x.len);
  strata__expo_fini(&x);
  if (os_error)
    *os_error = err;
  if (err) {
    atomic_fetch_add(&rt->metrics.textfile_failures, 1);
    return err == ENOMEM ? STRATA_ENOMEM : STRATA_EIO;
  }
  atomic_fetch_add(&rt->metrics.textfile_writes, 1);
  return STRATA_OK;
}

/* One write on the thread: a failure is logged when it starts a run of
 * failures, and the first success after it says so. */
static void write_logged(strata_runtime_t *rt,
                         struct strata__metrics_textfile *tf) {
  int err, rc = write_now(rt, tf->dir, &err);
  if (rc && !tf->failing)
    STRATA_LOG(&rt->log, STRATA_LOG_WARN, COMP,
               "metrics textfile: cannot write %s/%s (%s); the previous "
               "file stays, writes go on",
               tf->dir, FILE_NAME, strerror(err));
  else if (!rc && tf->failing)
    STRATA_LOG(&rt->log, STRATA_LOG_INFO, COMP,
               "metrics textfile: %s/%s written again", tf->dir, FILE_NAME);
  tf->failing = rc != 0;
}

static void *textfile_main(void *arg) {
  struct strata__metrics_textfile *tf = arg;
  strata_runtime_t *rt = tf->rt;
  pthread_mutex_lock(&tf->mu);
  for (bool last = false; !last;) {
    struct timespec at =
        strata__deadline_in((uint64_t)tf->interval_ms * 1000000u);
    while (!tf->stop &&
           pthread_cond_timedwait(&tf->wake, &tf->mu, &at) != ETIMEDOUT)
      ;
    /* A stop asked before this thread first ran still gets its write. */
    last = tf->stop;
    pthread_mutex_unlock(&tf->mu);
    write_logged(rt, tf);
    pthread_mutex_lock(&tf->mu);
  }
  pthread_mutex_unlock(&tf->mu);
  return NULL;
}

static void textfile_free(strata_runtime_t *rt,
                          struct strata__metrics_textfile *tf) {
  pthread_cond_destroy(&tf->wake);
  pthread_mutex_destroy(&tf->mu);
  strata__strfree(&rt->alloc, tf->dir);
  strata__free(&rt->alloc, tf, sizeof *tf);
}

int strata__metrics_textfile_start(strata_runtime_t *rt, const char *dir,
                                   int interval_ms) {
  strata__metrics_t *m = &rt->metrics;
  if (m->textfile)
    return STRATA_EBUSY;
  /* The first write, here: a directory that cannot be written is the
   * caller's error now rather than a log line later. */
  int err, rc = write_now(rt, dir, &err);
  if (rc) {
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
               "metrics textfile: cannot write %s/%s (%s)", dir, FILE_NAME,
               strerror(err));
    return rc;
  }
  struct strata__metrics_textfile *tf = strata__zalloc(&rt->alloc, sizeof *tf);
  if (!tf)
    return STRATA_ENOMEM;
  tf->rt = rt;
  tf->interval_ms = interval_ms ? interval_ms : DEFAULT_INTERVAL_MS;
  tf->dir = strata__strdup(&rt->alloc, dir);
  pthread_mutex_init(&tf->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&tf->wake, &ca);
  pthread_condattr_destroy(&ca);
  if (!tf->dir || pthread_create(&tf->thread, NULL, textfile_main, tf)) {
    textfile_free(rt, tf);
    return STRATA_ENOMEM;
  }
  m->textfile = tf;
  return STRATA_OK;
}

void strata__metrics_textfile_stop(strata_runtime_t *rt) {
  struct strata__metrics_textfile *tf = rt->metrics.textfile;
  if (!tf)
    return;
  pthread_mutex_lock(&tf->mu);
  tf->stop = true;
  pthread_cond_signal(&tf->wake);
  pthread_mutex_unlock(&tf->mu);
  pthread_join(tf->thread, NULL);
  rt->metrics.textfile = NULL;
  textfile_free(rt, tf);
}
