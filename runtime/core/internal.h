/* SPDX-License-Identifier: MIT */
/* runtime/core/internal.h: helpers shared by every runtime module (assertions,
 * clocks, containers of, allocation and logging entry points). Never
 * installed. */
#ifndef STRATA_INTERNAL_H
#define STRATA_INTERNAL_H

#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <strata.h>

/* Programmer errors: checked in debug builds, answered with STRATA_EINVAL
 * in release builds by the public entry points. */
#ifdef STRATA_DEBUG
#include <assert.h>
#define STRATA_ASSERT(x) assert(x)
#else
#define STRATA_ASSERT(x) ((void)0)
#endif

/* Only for corrupted internal invariants, never for bad input. */
#define STRATA_ABORT(msg) strata__abort(__FILE__, __LINE__, msg)
_Noreturn void strata__abort(const char *file, int line, const char *msg);

#define STRATA_CONTAINER_OF(ptr, type, member)                                 \
  ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#define STRATA_LIKELY(x) __builtin_expect(!!(x), 1)
#define STRATA_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define STRATA_MIN(a, b) ((a) < (b) ? (a) : (b))
#define STRATA_MAX(a, b) ((a) > (b) ? (a) : (b))

/** FNV-1a: fold the n bytes at p into the hash h (start from
 *  STRATA__FNV_BASIS). */
#define STRATA__FNV_BASIS 0xcbf29ce484222325ULL
static inline uint64_t strata__fnv1a(uint64_t h, const void *p, size_t n) {
  const unsigned char *s = p;
  for (size_t i = 0; i < n; i++)
    h = (h ^ s[i]) * 0x100000001b3ULL;
  return h;
}

/** FNV-1a of a NUL-terminated string, folded into h. */
static inline uint64_t strata__fnv1a_str(uint64_t h, const char *s) {
  return strata__fnv1a(h, s, strlen(s));
}

/** Monotonic time in nanoseconds. */
static inline uint64_t strata__now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/** The absolute CLOCK_MONOTONIC time `ns` (as strata__now_ns counts) as a
 *  timespec, for waits on condition variables made with
 *  pthread_condattr_setclock(CLOCK_MONOTONIC) and for futexes. */
static inline struct timespec strata__timespec_at(uint64_t ns) {
  return (struct timespec){.tv_sec = (time_t)(ns / 1000000000u),
                           .tv_nsec = (long)(ns % 1000000000u)};
}

/** The CLOCK_MONOTONIC deadline `ns` from now (any length). */
static inline struct timespec strata__deadline_in(uint64_t ns) {
  return strata__timespec_at(strata__now_ns() + ns);
}

/** Tell the CPU we are in a spin-wait loop. */
static inline void strata__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/** Hand an output struct (first member: size_t struct_size) to a caller
 *  whose copy of the struct may be older and smaller: fill as much as the
 *  caller's struct_size holds, keep its struct_size.
 *  @return 0; STRATA_EINVAL (struct_size holds no field at all) */
int strata__copy_out(void *out, const void *full, size_t full_size);

/** Initialise a mutex taken on the per-task path for very short critical
 *  sections: where the C library offers it, one that spins briefly before
 *  sleeping, because a sleep and wake-up costs far more than the wait.
 *  @return 0 or an errno value */
int strata__mutex_init_hot(pthread_mutex_t *m);

/** Copy a C string into a fixed buffer, always terminating it. */
void strata__strlcpy(char *dst, const char *src, size_t size);

#endif /* STRATA_INTERNAL_H */
