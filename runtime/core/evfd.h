/* SPDX-License-Identifier: MIT */
/* runtime/core/evfd.h: a file descriptor an event loop can poll, made readable
 * by any thread without a lock (an eventfd on Linux, else a non-blocking
 * pipe), with an exact count of the signals since it was last cleared.
 * Standalone: it knows nothing of the runtime, so that both ways can be
 * tested on one system. */
#ifndef STRATA_EVFD_H
#define STRATA_EVFD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

typedef struct strata__evfd {
  pthread_mutex_t mu;       /* opening */
  _Atomic int rfd, wfd;     /* -1 until opened; one fd for an eventfd */
  _Atomic uint64_t pending; /* signals since the last clear */
} strata__evfd_t;

/** An unopened one: signals are counted, no fd exists yet. */
void strata__evfd_init(strata__evfd_t *e);

/** Open the descriptor if not yet done (signals counted before make it
 *  readable at once) and give its readable end.
 *  @return 0; STRATA_EAGAIN (the process or system is out of file
 *          descriptors); STRATA_ENOMEM; STRATA_EIO (any other failure)
 *  @thread any */
int strata__evfd_open(strata__evfd_t *e, int *fd);

/** Count one signal and, on the first since the last clear, make the fd
 *  readable. Lock-free; never blocks. @thread any */
void strata__evfd_signal(strata__evfd_t *e);

/** Make the fd unreadable again and take the count of signals since the
 *  last clear. A signal that races with the clear is either counted now
 *  or leaves the fd readable (then the next clear counts it): none is
 *  lost, but the fd may be readable with a count of 0. @thread any */
uint64_t strata__evfd_clear(strata__evfd_t *e);

/** Close the descriptor(s). No signal may run concurrently. */
void strata__evfd_fini(strata__evfd_t *e);

#endif /* STRATA_EVFD_H */
