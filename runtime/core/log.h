/* SPDX-License-Identifier: MIT */
/* runtime/core/log.h: the runtime's only output channel, the embedder's log
 * callback. Messages above the configured level are never formatted. */
#ifndef STRATA_LOG_H
#define STRATA_LOG_H

#include <stdarg.h>

#include "internal.h"

typedef struct strata__logger {
  strata_log_fn fn; /* NULL: drop everything */
  void *ud;
  strata_log_level_t level;
} strata__logger_t;

#ifdef STRATA_DEBUG
#define STRATA__TRACE_ON 1
#else
#define STRATA__TRACE_ON 0
#endif

/** Log through `lg` if `lvl` is enabled. @thread any */
#define STRATA_LOG(lg, lvl, comp, ...)                                         \
  do {                                                                         \
    if (((lvl) != STRATA_LOG_TRACE || STRATA__TRACE_ON) &&                     \
        strata__log_enabled((lg), (lvl)))                                      \
      strata__log((lg), (lvl), (comp), __VA_ARGS__);                           \
  } while (0)

static inline bool strata__log_enabled(const strata__logger_t *lg,
                                       strata_log_level_t lvl) {
  return lg->fn && lvl <= lg->level;
}

void strata__log(const strata__logger_t *lg, strata_log_level_t lvl,
                 const char *comp, const char *fmt, ...) STRATA_PRINTF(4, 5);
void strata__logv(const strata__logger_t *lg, strata_log_level_t lvl,
                  const char *comp, const char *fmt, va_list ap)
    STRATA_PRINTF(4, 0);

#endif /* STRATA_LOG_H */
