/* SPDX-License-Identifier: MIT */
/* progress.h: the progress line strata-run keeps on a terminal while a run
 * goes (tasks done/total, rate, elapsed, ETA), redrawn a few times a
 * second by a thread of its own and erased at the end. Nothing is written
 * when the stream is not a terminal.
 * @thread progress_start and progress_stop from one thread */
#ifndef STRATA_RUN_PROGRESS_H
#define STRATA_RUN_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

typedef struct progress progress_t;

/** Tasks ended so far; called from the progress thread. */
typedef uint64_t (*progress_count_fn)(const void *ud);

/** Start drawing on `out` when it is a terminal; NULL otherwise (and when
 *  no thread can be had: the run goes on without a line). */
progress_t *progress_start(FILE *out, uint64_t total, progress_count_fn count,
                           const void *ud);

/** Stop the thread and erase the line. NULL is a no-op. */
void progress_stop(progress_t *p);

#endif /* STRATA_RUN_PROGRESS_H */
