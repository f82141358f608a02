/* SPDX-License-Identifier: MIT */
/* sandbox/file.c: read a script or data file whole, refusing what is not
 * a regular file before reading a byte of it (a FIFO would block the
 * caller forever, a device could be endless). */
#include "config.h"

#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

STRATA_PRINTF(3, 4)
static void say(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || !errlen)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* What kind of file st is, for "not a regular file (...)". */
static const char *kind(const struct stat *st) {
  if (S_ISFIFO(st->st_mode))
    return "a FIFO";
  if (S_ISCHR(st->st_mode))
    return "a character device";
  if (S_ISBLK(st->st_mode))
    return "a block device";
  if (S_ISSOCK(st->st_mode))
    return "a socket";
  return "not a plain file";
}

/* errno after open() or read() as a status and words. */
static int open_error(const char *path, int e, char *err, size_t errlen) {
  switch (e) {
  case ENOENT:
  case ENOTDIR:
    say(err, errlen, "%s: no such file", path);
    return STRATA_ENOENT;
  case EACCES:
  case EPERM:
    say(err, errlen, "%s: permission denied", path);
    return STRATA_EIO;
  case EISDIR:
    say(err, errlen, "%s: is a directory", path);
    return STRATA_EINVAL;
  default:
    say(err, errlen, "%s: cannot open: %s", path, strerror(e));
    return STRATA_EIO;
  }
}

/* Read to the end of the file into *buf (*cap bytes), growing it up to
 * limit bytes; stops once limit bytes are in, so a file that grows (or a
 * /proc file that said 0) costs at most limit. A read loop that cannot
 * spin: 0 is the end, -1 with EINTR is retried, any other -1 is an error,
 * returned as errno (-1: out of memory). */
static int read_all(int fd, strata_alloc_fn alloc, void *alloc_ud, char **buf,
                    size_t *cap, size_t limit, size_t *got) {
  size_t n = 0;
  while (n < limit) {
    if (n == *cap) {
      size_t ncap = *cap > limit / 2 ? limit : 2 * *cap;
      char *p = alloc(alloc_ud, *buf, *cap + 1, ncap + 1);
      if (!p)
        return -1;
      *buf = p;
      *cap = ncap;
    }
    ssize_t r = read(fd, *buf + n, *cap - n);
    if (r > 0) {
      n += (size_t)r;
      continue;
    }
    if (r == 0)
      break;
    if (errno != EINTR)
      return errno;
  }
  *got = n;
  return 0;
}

/* Checks that fd is a regular file of at most max bytes. */
static int check_kind(const char *path, int fd, size_t max, struct stat *st,
                      char *err, size_t errlen) {
  if (fstat(fd, st) != 0)
    return open_error(path, errno, err, errlen);
  if (S_ISDIR(st->st_mode))
    return open_error(path, EISDIR, err, errlen);
  if (!S_ISREG(st->st_mode)) {
    say(err, errlen, "%s: not a regular file (%s)", path, kind(st));
    return STRATA_EINVAL;
  }
  if (st->st_size < 0 || (uint64_t)st->st_size > max) {
    say(err, errlen, "%s: larger than %zu bytes", path, max);
    return STRATA_EINVAL;
  }
  return STRATA_OK;
}

/* Open path without blocking and check what it is. @return 0 (*fd open);
 * the error of check_kind or open_error (nothing open) */
static int open_checked(const char *path, size_t max, int *fd, struct stat *st,
                        char *err, size_t errlen) {
  *fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (*fd < 0)
    return open_error(path, errno, err, errlen);
  int rc = check_kind(path, *fd, max, st, err, errlen);
  if (rc) {
    close(*fd);
    *fd = -1;
  }
  return rc;
}

int strata__check_text_file(const char *path, size_t max, char *err,
                            size_t errlen) {
  int fd;
  struct stat st;
  int rc = open_checked(path, max, &fd, &st, err, errlen);
  if (rc == STRATA_OK)
    close(fd);
  return rc;
}

int strata__read_text_file(const char *path, size_t max, strata_alloc_fn alloc,
                           void *alloc_ud, char **text, size_t *len, char *err,
                           size_t errlen) {
  if (!alloc)
    alloc = strata__sandbox_libc_alloc;
  *text = NULL;
  *len = 0;
  /* One byte past max tells "too large"; one more holds the NUL. */
  if (max > SIZE_MAX - 2)
    max = SIZE_MAX - 2;
  int fd;
  struct stat st;
  int rc = open_checked(path, max, &fd, &st, err, errlen);
  if (rc)
    return rc;
  /* Room for what fstat says, plus one byte to see the end (or growth);
   * the buffer is never bigger than the file needs, whatever max is. */
  size_t cap = (size_t)st.st_size + 1;
  if (cap < 64)
    cap = 64;
  if (cap > max + 1)
    cap = max + 1;
  char *buf = alloc(alloc_ud, NULL, 0, cap + 1);
  size_t n = 0;
  int e = buf ? read_all(fd, alloc, alloc_ud, &buf, &cap, max + 1, &n) : -1;
  close(fd);
  if (e || n > max) {
    if (buf)
      alloc(alloc_ud, buf, cap + 1, 0);
    if (e < 0)
      say(err, errlen, "%s: out of memory", path);
    else if (e)
      say(err, errlen, "%s: cannot read: %s", path, strerror(e));
    else
      say(err, errlen, "%s: larger than %zu bytes", path, max);
    return e < 0 ? STRATA_ENOMEM : e ? STRATA_EIO : STRATA_EINVAL;
  }
  /* Give back what the file did not fill: the caller frees len + 1. */
  if (n != cap) {
    char *fit = alloc(alloc_ud, buf, cap + 1, n + 1);
    if (!fit) {
      alloc(alloc_ud, buf, cap + 1, 0);
      say(err, errlen, "%s: out of memory", path);
      return STRATA_ENOMEM;
    }
    buf = fit;
  }
  buf[n] = '\0';
  *text = buf;
  *len = n;
  return STRATA_OK;
}

void strata__free_text_file(strata_alloc_fn alloc, void *alloc_ud, char *text,
                            size_t len) {
  if (!text)
    return;
  if (!alloc)
    alloc = strata__sandbox_libc_alloc;
  alloc(alloc_ud, text, len + 1, 0);
}
