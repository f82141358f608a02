/* SPDX-License-Identifier: MIT */
/* runtime/core/evfd.c: the event loop's file descriptor (see evfd.h). Define
 * STRATA_EVFD_PIPE to build the pipe fallback on Linux too (its test
 * does). */
#include "config.h"

#include "evfd.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <strata/common.h>

#if defined(__linux__) && !defined(STRATA_EVFD_PIPE)
#include <sys/eventfd.h>
#define USE_EVENTFD 1
#else
#define USE_EVENTFD 0
#endif

void strata__evfd_init(strata__evfd_t *e) {
  pthread_mutex_init(&e->mu, NULL);
  atomic_init(&e->rfd, -1);
  atomic_init(&e->wfd, -1);
  atomic_init(&e->pending, 0);
}

static int from_errno(int err) {
  if (err == EMFILE || err == ENFILE)
    return STRATA_EAGAIN;
  return err == ENOMEM ? STRATA_ENOMEM : STRATA_EIO;
}

#if !USE_EVENTFD
/* Make fd non-blocking and close-on-exec. @return 0 or an errno value */
static int set_flags(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
      fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
    return errno;
  return 0;
}
#endif

/* Create the descriptor(s). @return 0 or an errno value */
static int make(int *rfd, int *wfd) {
#if USE_EVENTFD
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0)
    return errno;
  *rfd = *wfd = fd;
  return 0;
#else
  int p[2];
  if (pipe(p) < 0)
    return errno;
  int err = set_flags(p[0]);
  if (!err)
    err = set_flags(p[1]);
  if (err) {
    close(p[0]);
    close(p[1]);
    return err;
  }
  *rfd = p[0];
  *wfd = p[1];
  return 0;
#endif
}

/* Make the fd readable. A full pipe (EAGAIN) already is. */
static void poke(int fd) {
#if USE_EVENTFD
  uint64_t one = 1;
  while (write(fd, &one, sizeof one) < 0 && errno == EINTR)
    ;
#else
  char c = 0;
  while (write(fd, &c, 1) < 0 && errno == EINTR)
    ;
#endif
}

/* Read everything there is (non-blocking). */
static void drain(int fd) {
#if USE_EVENTFD
  uint64_t n;
  while (read(fd, &n, sizeof n) < 0 && errno == EINTR)
    ;
#else
  char buf[256];
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r > 0 || (r < 0 && errno == EINTR))
      continue;
    break; /* empty (EAGAIN) or closed */
  }
#endif
}

int strata__evfd_open(strata__evfd_t *e, int *fd) {
  int rc = STRATA_OK;
  pthread_mutex_lock(&e->mu);
  if (atomic_load(&e->rfd) < 0) {
    int r = -1, w = -1, err = make(&r, &w);
    if (err) {
      rc = from_errno(err);
      goto out;
    }
    atomic_store(&e->rfd, r);
    /* Publish before reading the count: a signal that counted before the
     * store and found no fd is seen here, one that counts after finds the
     * fd (both sequentially consistent). */
    atomic_store(&e->wfd, w);
    if (atomic_load(&e->pending))
      poke(w);
  }
  *fd = atomic_load(&e->rfd);
out:
  pthread_mutex_unlock(&e->mu);
  return rc;
}

void strata__evfd_signal(strata__evfd_t *e) {
  /* Only the first signal since a clear touches the fd: the count says
   * how many there were. */
  if (atomic_fetch_add(&e->pending, 1) != 0)
    return;
  int w = atomic_load(&e->wfd);
  if (w >= 0)
    poke(w);
}

uint64_t strata__evfd_clear(strata__evfd_t *e) {
  /* Drain first, then take the count: a signal counted after the exchange
   * finds the count at 0 and pokes the fd again, after the drain, so it
   * cannot be lost. */
  int r = atomic_load(&e->rfd);
  if (r >= 0)
    drain(r);
  return atomic_exchange(&e->pending, 0);
}

void strata__evfd_fini(strata__evfd_t *e) {
  int r = atomic_load(&e->rfd), w = atomic_load(&e->wfd);
  if (r >= 0)
    close(r);
  if (w >= 0 && w != r)
    close(w);
  atomic_store(&e->rfd, -1);
  atomic_store(&e->wfd, -1);
  pthread_mutex_destroy(&e->mu);
}
