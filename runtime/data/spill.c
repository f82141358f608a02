/* SPDX-License-Identifier: MIT */
/* runtime/data/spill.c: the spill directory's files (see spill.h). */
#include "config.h"

#include "spill.h"

#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define COMP "memory" /* its messages are the memory manager's */

/* Spilled replicas live in a private directory the runtime makes inside
 * spill_dir (mkdtemp: mode 0700, checked to be ours) and reaches only
 * through a descriptor of it, so a directory swapped in at that path
 * later is never used. Each file is created with O_EXCL | O_NOFOLLOW,
 * mode 0600, under a name derived from a secret: nothing planted there
 * is followed, overwritten or read. A file is named by a number (the
 * memory manager keeps it in the spilled replica's ptr). */

/* Causes that are not an errno. */
#define SPILL_SHORT (-1)   /* the file ended early */
#define SPILL_CORRUPT (-2) /* its checksum did not match */

static uint64_t mix64(uint64_t z) { /* a bijection: distinct ids, names */
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

static void file_name(const strata__spill_t *s, uintptr_t id, char name[24]) {
  snprintf(name, 24, "%016llx",
           (unsigned long long)mix64((uint64_t)id ^ s->key));
}

/* The STRATA_E* code of a failed spill: a full device (or a file size or
 * quota limit) is ENOSPC; anything else is an I/O error. */
static int spill_code(int cause) {
  return cause == ENOSPC || cause == EDQUOT || cause == EFBIG ? STRATA_ENOSPC
                                                              : STRATA_EIO;
}

static const char *cause_name(int cause, char *buf, size_t len) {
  static const struct {
    int cause;
    const char *name;
  } names[] = {
      {SPILL_SHORT, "a short file"},
      {SPILL_CORRUPT, "a checksum mismatch"},
      {ENOSPC, "ENOSPC"},
      {EDQUOT, "EDQUOT"},
      {EFBIG, "EFBIG"},
      {EIO, "EIO"},
      {EROFS, "EROFS"},
      {EACCES, "EACCES"},
      {EPERM, "EPERM"},
      {ENOENT, "ENOENT"},
      {EEXIST, "EEXIST"},
      {ELOOP, "ELOOP"},
      {EMFILE, "EMFILE"},
      {ENFILE, "ENFILE"},
  };
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (names[i].cause == cause)
      return names[i].name;
  snprintf(buf, len, "errno %d", cause);
  return buf;
}

/* Note a failed spill read or write: the first of each kind is logged,
 * later ones only counted (strata__spill_fini reports the counts), so a
 * full disk cannot flood the log. @return its STRATA_E* code */
static int failed(strata__spill_t *s, const strata__logger_t *log, bool write,
                  int cause, size_t size) {
  pthread_mutex_lock(&s->mu);
  strata__spill_fail_t *f = NULL;
  for (size_t i = 0; i < s->nfails && !f; i++)
    if (s->fails[i].write == write && s->fails[i].cause == cause)
      f = &s->fails[i];
  size_t cap = sizeof s->fails / sizeof *s->fails;
  if (!f && s->nfails < cap)
    f = &s->fails[s->nfails++];
  bool first = false;
  if (f) {
    first = f->count++ == 0;
    f->write = write;
    f->cause = cause;
  } else {
    s->fails_other++;
  }
  pthread_mutex_unlock(&s->mu);
  if (first) {
    char buf[32];
    STRATA_LOG(log, STRATA_LOG_ERROR, COMP,
               "spill: cannot %s %zu bytes %s %s: %s%s%s (further failures "
               "of this kind are counted, not logged)",
               write ? "write" : "read", size, write ? "to" : "from", s->dir,
               cause_name(cause, buf, sizeof buf), cause > 0 ? ", " : "",
               cause > 0 ? strerror(cause) : "");
  }
  return cause < 0 ? STRATA_EIO : spill_code(cause);
}

/* Write all of p to fd. @return 0, or the errno that stopped it: a write
 * that writes nothing counts as ENOSPC (trying it again would spin) */
static int write_all(int fd, const char *p, size_t size) {
  while (size) {
    ssize_t w = write(fd, p, size);
    if (w > 0) {
      p += w;
      size -= (size_t)w;
    } else if (w == 0) {
      return ENOSPC;
    } else if (errno != EINTR) {
      return errno;
    }
  }
  return 0;
}

/* Read size bytes from fd into p. @return 0; SPILL_SHORT; an errno */
static int read_all(int fd, char *p, size_t size) {
  while (size) {
    ssize_t n = read(fd, p, size);
    if (n > 0) {
      p += n;
      size -= (size_t)n;
    } else if (n == 0) {
      return SPILL_SHORT;
    } else if (errno != EINTR) {
      return errno;
    }
  }
  return 0;
}

void strata__spill_remove(strata__spill_t *s, uintptr_t id) {
  if (!id)
    return;
  char name[24];
  file_name(s, id, name);
  (void)unlinkat(s->fd, name, 0);
}

int strata__spill_write(strata__spill_t *s, const strata__logger_t *log,
                        uintptr_t *id, uint64_t *checksum, const void *src,
                        size_t size) {
  if (*id) /* a file is never rewritten in place */
    strata__spill_remove(s, *id);
  *id = 0;
  char name[24];
  uintptr_t next = 0;
  int fd = -1, err = EEXIST;
  /* A name taken means someone else wrote there: take the next. */
  for (unsigned i = 0; fd < 0 && err == EEXIST && i < 8; i++) {
    next = (uintptr_t)(atomic_fetch_add(&s->seq, 1) + 1);
    file_name(s, next, name);
    fd = openat(s->fd, name,
                O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
      err = errno;
  }
  if (fd < 0)
    return failed(s, log, true, err, size);
  err = write_all(fd, src, size);
  if (close(fd) != 0 && !err && errno != EINTR)
    err = errno; /* a late write error (quota, network file system) */
  if (err) {
    (void)unlinkat(s->fd, name, 0);
    return failed(s, log, true, err, size);
  }
  *id = next;
  *checksum = strata__fnv1a(STRATA__FNV_BASIS, src, size);
  return STRATA_OK;
}

int strata__spill_read(strata__spill_t *s, const strata__logger_t *log,
                       uintptr_t id, uint64_t checksum, void *dst,
                       size_t size) {
  char name[24];
  file_name(s, id, name);
  int fd = openat(s->fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return failed(s, log, false, errno, size);
  int err = read_all(fd, dst, size);
  close(fd);
  if (!err && strata__fnv1a(STRATA__FNV_BASIS, dst, size) != checksum)
    err = SPILL_CORRUPT;
  return err ? failed(s, log, false, err, size) : STRATA_OK;
}

/* The STRATA_E* code for a spill directory that cannot be set up. */
static int setup_code(int err) {
  return err == ENOSPC || err == EDQUOT ? STRATA_ENOSPC
         : err == EIO                   ? STRATA_EIO
                                        : STRATA_EINVAL;
}

/* Check that the directory open as fd is ours alone: a directory owned by
 * this user, mode 0700 (set when the umask took more). @return an errno */
static int check_private(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0)
    return errno;
  if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid())
    return EPERM;
  if ((st.st_mode & 07777) != 0700 && fchmod(fd, 0700) != 0)
    return errno;
  return 0;
}

void strata__spill_init(strata__spill_t *s) {
  memset(s, 0, sizeof *s);
  s->fd = -1;
  pthread_mutex_init(&s->mu, NULL);
}

int strata__spill_open(strata__spill_t *s, const char *dir,
                       const strata__allocator_t *a,
                       const strata__logger_t *log) {
  size_t len = strlen(dir) + sizeof "/strata-XXXXXX";
  char *path = strata__alloc(a, len);
  if (!path)
    return STRATA_ENOMEM;
  snprintf(path, len, "%s/strata-XXXXXX", dir);
  bool made = mkdtemp(path) != NULL;
  int err = made ? 0 : errno;
  if (made) {
    s->fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    err = s->fd < 0 ? errno : check_private(s->fd);
  }
  if (err) {
    STRATA_LOG(log, STRATA_LOG_ERROR, COMP,
               "spill_dir '%s': cannot make a private directory there: %s", dir,
               err == EPERM ? "what was made is not ours" : strerror(err));
    if (s->fd >= 0)
      close(s->fd);
    s->fd = -1;
    if (made)
      (void)rmdir(path);
    strata__free(a, path, len);
    return setup_code(err);
  }
  s->dir = path; /* same length: strata__strfree frees it */
  if (getrandom(&s->key, sizeof s->key, 0) != (ssize_t)sizeof s->key)
    s->key =
        strata__now_ns() ^ (uint64_t)(uintptr_t)s ^ ((uint64_t)getpid() << 32);
  return STRATA_OK;
}

/* Remove what is left in the private directory (every file normally went
 * with its replica), then the directory itself. */
static void remove_all(strata__spill_t *s, const strata__logger_t *log) {
  if (s->fd < 0)
    return;
  DIR *d = fdopendir(s->fd);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d)))
      if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
        (void)unlinkat(dirfd(d), e->d_name, 0);
    closedir(d); /* closes fd */
  } else {
    close(s->fd);
  }
  s->fd = -1;
  if (rmdir(s->dir) != 0)
    STRATA_LOG(log, STRATA_LOG_WARN, COMP, "spill: cannot remove %s: %s",
               s->dir, strerror(errno));
}

/* Say how many spill operations failed, per kind. */
static void report(const strata__spill_t *s, const strata__logger_t *log) {
  for (size_t i = 0; i < s->nfails; i++) {
    const strata__spill_fail_t *f = &s->fails[i];
    char buf[32];
    STRATA_LOG(log, STRATA_LOG_WARN, COMP, "spill: %llu %s failed with %s",
               (unsigned long long)f->count, f->write ? "writes" : "reads",
               cause_name(f->cause, buf, sizeof buf));
  }
  if (s->fails_other)
    STRATA_LOG(log, STRATA_LOG_WARN, COMP,
               "spill: %llu reads or writes failed for other causes",
               (unsigned long long)s->fails_other);
}

void strata__spill_fini(strata__spill_t *s, const strata__allocator_t *a,
                        const strata__logger_t *log) {
  remove_all(s, log);
  report(s, log);
  strata__strfree(a, s->dir);
  pthread_mutex_destroy(&s->mu);
  memset(s, 0, sizeof *s);
  s->fd = -1;
}
