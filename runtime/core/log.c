/* SPDX-License-Identifier: MIT */
/* runtime/core/log.c: message formatting for the log callback, and the small
 * helpers (abort, strings, output structs, mutexes) every module uses. */
#include "config.h"

#include "log.h"

#include <stdio.h>
#include <string.h>

void strata__logv(const strata__logger_t *lg, strata_log_level_t lvl,
                  const char *comp, const char *fmt, va_list ap) {
  if (!strata__log_enabled(lg, lvl))
    return;
  /* A fixed buffer keeps logging allocation-free, so it works on the
   * out-of-memory paths it reports; longer messages are truncated. */
  char msg[1024];
  vsnprintf(msg, sizeof msg, fmt, ap);
  lg->fn(lg->ud, lvl, comp, msg);
}

void strata__log(const strata__logger_t *lg, strata_log_level_t lvl,
                 const char *comp, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  strata__logv(lg, lvl, comp, fmt, ap);
  va_end(ap);
}

_Noreturn void strata__abort(const char *file, int line, const char *msg) {
  /* The one place the library writes to stderr: an internal invariant is
   * broken and the process cannot continue safely. */
  fprintf(stderr, "strata: internal error at %s:%d: %s\n", file, line, msg);
  abort();
}

void strata__strlcpy(char *dst, const char *src, size_t size) {
  if (!size)
    return;
  size_t n = src ? strlen(src) : 0;
  if (n >= size)
    n = size - 1;
  if (n)
    memcpy(dst, src, n);
  dst[n] = '\0';
}

int strata__copy_out(void *out, const void *full, size_t full_size) {
  size_t caller = *(const size_t *)out;
  if (caller <= sizeof(size_t))
    return STRATA_EINVAL;
  size_t n = caller < full_size ? caller : full_size;
  memcpy((char *)out + sizeof(size_t), (const char *)full + sizeof(size_t),
         n - sizeof(size_t));
  return STRATA_OK;
}

int strata__mutex_init_hot(pthread_mutex_t *m) {
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
  pthread_mutexattr_t attr;
  int rc = pthread_mutexattr_init(&attr);
  if (rc)
    return rc;
  pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
  rc = pthread_mutex_init(m, &attr);
  pthread_mutexattr_destroy(&attr);
  return rc;
#else
  return pthread_mutex_init(m, NULL);
#endif
}
