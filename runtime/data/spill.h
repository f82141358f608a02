/* SPDX-License-Identifier: MIT */
/* runtime/data/spill.h: the files of the spill node, the last memory tier.
 * They live in a private directory the runtime makes inside spill_dir
 * (mkdtemp: mode 0700, checked to be ours through a descriptor of it, so
 * that a directory swapped in at that path later is never used). Each
 * file is created with O_CREAT | O_EXCL | O_NOFOLLOW, mode 0600, under a
 * name derived from a secret, so nothing planted there is followed,
 * overwritten or read; it is removed when its replica goes, and whatever
 * is left at teardown. A failed write or read is logged the first time
 * for each (operation, cause) and counted after, so a full disk cannot
 * flood the log. Owned by the memory manager (memory.c), which calls it
 * with the buffer's and the node's locks held. */
#ifndef STRATA_SPILL_H
#define STRATA_SPILL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "alloc.h"
#include "log.h"

/* Spill failures of one kind: one operation (write or read) failing for
 * one cause (an errno, or a short or corrupt file). */
typedef struct strata__spill_fail {
  bool write;
  int cause;
  uint64_t count;
} strata__spill_fail_t;

typedef struct strata__spill {
  char *dir;            /* the private directory's path; NULL: none */
  int fd;               /* a descriptor of it; -1: none */
  uint64_t key;         /* secret the file names are derived from */
  _Atomic uint64_t seq; /* the last file number given */
  pthread_mutex_t mu;   /* guards the failure counts */
  strata__spill_fail_t fails[8];
  size_t nfails;
  uint64_t fails_other; /* of kinds beyond those 8 */
} strata__spill_t;

/** No directory yet. @thread owner (runtime creation) */
void strata__spill_init(strata__spill_t *s);

/** Make the private directory inside `dir` and open it.
 *  @return 0; STRATA_ENOMEM; STRATA_EINVAL (dir missing, not a directory,
 *          not writable), STRATA_ENOSPC, STRATA_EIO (logged)
 *  @thread owner (runtime creation) */
int strata__spill_open(strata__spill_t *s, const char *dir,
                       const strata__allocator_t *a,
                       const strata__logger_t *log);

/** Remove every file left and the directory, log the failure counts, free
 *  what init and open made. @thread owner (teardown) */
void strata__spill_fini(strata__spill_t *s, const strata__allocator_t *a,
                        const strata__logger_t *log);

/** Write `size` bytes to a new file and set *id to its number and
 *  *checksum to that of the data; a file *id names already is removed
 *  first (files are never rewritten in place). On failure no file is left
 *  and *id is 0.
 *  @return 0; STRATA_ENOSPC (a full device, quota or file size limit);
 *          STRATA_EIO (logged once per cause) @thread any */
int strata__spill_write(strata__spill_t *s, const strata__logger_t *log,
                        uintptr_t *id, uint64_t *checksum, const void *src,
                        size_t size);

/** Read file `id` into dst, checking its size and checksum.
 *  @return 0; STRATA_EIO (unreadable, short or corrupt; logged once per
 *          cause) @thread any */
int strata__spill_read(strata__spill_t *s, const strata__logger_t *log,
                       uintptr_t id, uint64_t checksum, void *dst, size_t size);

/** Remove file `id` (0: none). @thread any */
void strata__spill_remove(strata__spill_t *s, uintptr_t id);

#endif /* STRATA_SPILL_H */
