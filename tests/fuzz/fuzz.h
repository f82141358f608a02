/* SPDX-License-Identifier: MIT */
/* tests/fuzz/fuzz.h: what the libFuzzer harnesses of tests/fuzz/ share: a
 * leak- and size-checking allocator, a private scratch directory per
 * process, and a check that aborts (libFuzzer then keeps the input).
 * Header-only (static inline), since each harness is one program.
 *
 * Thread-safety: the allocator may be called from any thread (the
 * runtime's workers allocate); the rest is for the fuzzing thread. */
#ifndef STRATA_FUZZ_H
#define STRATA_FUZZ_H

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Fail the run: libFuzzer reports the abort and saves the input. */
#define FUZZ_CHECK(cond, ...)                                                  \
  do {                                                                         \
    if (!(cond))                                                               \
      fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                       \
  } while (0)

static inline void fuzz_fail(const char *file, int line, const char *cond,
                             const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "%s:%d: check failed: %s: ", file, line, cond);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  abort();
}

/* {=== Counting allocator ===}
 * Each block carries its size in front, so that a free or realloc with a
 * wrong osize is caught; after each input nothing may be left. */
#define FUZZ_HDR 16

typedef struct fuzz_alloc {
  pthread_mutex_t mu;
  size_t live_blocks, live_bytes, bad_sizes;
} fuzz_alloc_t;

static inline void fuzz_alloc_init(fuzz_alloc_t *a) {
  memset(a, 0, sizeof *a);
  pthread_mutex_init(&a->mu, NULL);
}

static inline void *fuzz_alloc_fn(void *ud, void *ptr, size_t osize,
                                  size_t nsize) {
  fuzz_alloc_t *a = ud;
  unsigned char *blk = ptr ? (unsigned char *)ptr - FUZZ_HDR : NULL;
  void *out = NULL;
  pthread_mutex_lock(&a->mu);
  size_t old = blk ? *(size_t *)blk : 0;
  if (blk && old != osize)
    a->bad_sizes++;
  if (nsize == 0) {
    if (blk) {
      a->live_blocks--;
      a->live_bytes -= old;
      free(blk);
    }
  } else {
    unsigned char *nb = realloc(blk, nsize + FUZZ_HDR);
    if (nb) {
      *(size_t *)nb = nsize;
      if (!blk)
        a->live_blocks++;
      a->live_bytes = a->live_bytes - old + nsize;
      out = nb + FUZZ_HDR;
    }
  }
  pthread_mutex_unlock(&a->mu);
  return out;
}

/** Check that everything allocated through `a` was freed with its size,
 *  and release the allocator. */
static inline void fuzz_alloc_done(fuzz_alloc_t *a) {
  FUZZ_CHECK(a->bad_sizes == 0, "%zu frees with a wrong size", a->bad_sizes);
  FUZZ_CHECK(a->live_blocks == 0, "%zu blocks (%zu bytes) leaked",
             a->live_blocks, a->live_bytes);
  pthread_mutex_destroy(&a->mu);
}

/* {=== Scratch directory ===}
 * One per process (libFuzzer's -fork and -jobs run several), removed at
 * exit with the files written into it. */
static char fuzz_dir[256];

static inline void fuzz_dir_remove(void) {
  char cmd[300];
  if (!fuzz_dir[0])
    return;
  /* The directory is ours and its name has no shell characters. */
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir);
  if (system(cmd) != 0)
    fprintf(stderr, "fuzz: could not remove %s\n", fuzz_dir);
}

/** The scratch directory, made on first use. */
static inline const char *fuzz_scratch(void) {
  if (!fuzz_dir[0]) {
    const char *t = getenv("TMPDIR");
    snprintf(fuzz_dir, sizeof fuzz_dir, "%s/strata-fuzz-XXXXXX",
             t && *t && strlen(t) < 200 ? t : "/tmp");
    if (!mkdtemp(fuzz_dir)) {
      perror("fuzz: mkdtemp");
      abort();
    }
    atexit(fuzz_dir_remove);
  }
  return fuzz_dir;
}

/** Write `len` bytes to scratch/name; returns the path (static buffer:
 *  one per name slot `slot`, 0..3). */
static inline const char *fuzz_write(int slot, const char *name,
                                     const void *data, size_t len) {
  static char paths[4][512];
  char *path = paths[slot & 3];
  snprintf(path, sizeof paths[0], "%s/%s", fuzz_scratch(), name);
  FILE *f = fopen(path, "wb");
  if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f)) {
    perror(path);
    abort();
  }
  return path;
}

/** The directory scratch/name, made when missing; returns its path
 *  (static buffer). */
static inline const char *fuzz_subdir(const char *name) {
  static char path[512];
  snprintf(path, sizeof path, "%s/%s", fuzz_scratch(), name);
  if (mkdir(path, 0700) && errno != EEXIST) {
    perror(path);
    abort();
  }
  return path;
}

/* {=== Backends that stay loaded ===}
 * The runtime unloads its backend plugins when it is destroyed, but
 * libFuzzer keeps writing the coverage counters of every instrumented
 * module it has seen, so an unloaded plugin would crash the fuzzer
 * itself. Holding one more reference (RTLD_NODELETE) keeps each mapped
 * for the life of the process; the runtime's own loading is unchanged. */
#ifdef FUZZ_BACKENDS
static inline void fuzz_keep_backends(void) {
  static const char *const names[] = {"cpu", "sim"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/.libs/%s.so", FUZZ_BACKENDS, names[i]);
    if (!dlopen(path, RTLD_NOW | RTLD_NODELETE)) {
      fprintf(stderr, "fuzz: %s\n", dlerror());
      abort();
    }
  }
}

/* A harness that runs a runtime defines FUZZ_RUNS_RUNTIME before
 * including this: the backends are kept from the start. */
#ifdef FUZZ_RUNS_RUNTIME
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  fuzz_keep_backends();
  return 0;
}
#endif
#endif

#endif /* STRATA_FUZZ_H */
