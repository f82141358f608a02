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

static void *libc_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  (void)osize;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  return realloc(ptr, nsize);
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

/* Read exactly what is there, up to max + 1 bytes (one more tells "too
 * large"). A read loop that cannot spin: 0 is the end, -1 with EINTR is
 * retried, any other -1 is an error. */
static int read_all(int fd, char *buf, size_t cap, size_t *got) {
  size_t n = 0;
  while (n < cap) {
    ssize_t r = read(fd, buf + n, cap - n);
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

int strata__read_text_file(const char *path, size_t max, strata_alloc_fn alloc,
                           void *alloc_ud, char **text, size_t *len, char *err,
                           size_t errlen) {
  if (!alloc)
    alloc = libc_alloc;
  *text = NULL;
  *len = 0;
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return open_error(path, errno, err, errlen);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return open_error(path, e, err, errlen);
  }
  if (S_ISDIR(st.st_mode)) {
    close(fd);
    return open_error(path, EISDIR, err, errlen);
  }
  if (!S_ISREG(st.st_mode)) {
    say(err, errlen, "%s: not a regular file (%s)", path, kind(&st));
    close(fd);
    return STRATA_EINVAL;
  }
  if ((uint64_t)st.st_size > max) {
    say(err, errlen, "%s: larger than %zu bytes", path, max);
    close(fd);
    return STRATA_EINVAL;
  }
  /* The size can change under us, and some files (/proc) say 0: read at
   * most max + 1 bytes, whatever fstat said, then give back the rest. */
  size_t cap = max + 1;
  char *buf = alloc(alloc_ud, NULL, 0, cap + 1);
  if (!buf) {
    close(fd);
    say(err, errlen, "%s: out of memory", path);
    return STRATA_ENOMEM;
  }
  size_t n = 0;
  int e = read_all(fd, buf, cap, &n);
  close(fd);
  if (e || n > max) {
    alloc(alloc_ud, buf, cap + 1, 0);
    if (e)
      say(err, errlen, "%s: cannot read: %s", path, strerror(e));
    else
      say(err, errlen, "%s: larger than %zu bytes", path, max);
    return e ? STRATA_EIO : STRATA_EINVAL;
  }
  /* Give back what the file did not fill: the caller frees len + 1. */
  if (n != cap) {
    char *fit = alloc(alloc_ud, buf, cap + 1, n + 1);
    if (fit)
      buf = fit;
    else {
      alloc(alloc_ud, buf, cap + 1, 0);
      say(err, errlen, "%s: out of memory", path);
      return STRATA_ENOMEM;
    }
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
    alloc = libc_alloc;
  alloc(alloc_ud, text, len + 1, 0);
}
