/* SPDX-License-Identifier: MIT */
/* runtime/core/handle.h: generational handle tables. A handle id is
 *   (generation << 32) | (kind << 28) | (slot + 1)
 * Freeing a slot bumps its generation, so a released handle no longer
 * resolves; the kind names the table (task, job, buffer, kernel), so a
 * handle of one kind given where another belongs is told apart from a
 * released one (STRATA_EINVAL rather than STRATA_ENOENT) and never resolves
 * to whatever shares its slot number in the other table; 0 is never a
 * valid id. Lookups are lock-free (slots live in chunks that never move);
 * allocating and freeing take the table's mutex. */
#ifndef STRATA_HANDLE_H
#define STRATA_HANDLE_H

#include <pthread.h>

#include "alloc.h"

#define STRATA__HCHUNK_BITS 12
#define STRATA__HCHUNK_SLOTS (1u << STRATA__HCHUNK_BITS)
#define STRATA__HMAX_CHUNKS 4096u /* 16M live handles per table */

/* Bits 28..31 of an id hold its kind; bits 0..27 the slot + 1 (16M slots
 * need 25 of them). */
#define STRATA__HKIND_SHIFT 28
#define STRATA__HSLOT_MASK ((UINT32_C(1) << STRATA__HKIND_SHIFT) - 1)
_Static_assert(STRATA__HCHUNK_SLOTS *STRATA__HMAX_CHUNKS <= STRATA__HSLOT_MASK,
               "slot numbers must not reach the kind bits");

/** What a table's handles name. Never 0, so that no id of any kind is 0. */
typedef enum strata__hkind {
  STRATA__HKIND_TASK = 1,
  STRATA__HKIND_JOB = 2,
  STRATA__HKIND_BUFFER = 3,
  STRATA__HKIND_KERNEL = 4,
  STRATA__HKIND_LAST = STRATA__HKIND_KERNEL
} strata__hkind_t;

typedef struct strata__hslot {
  _Atomic uint32_t gen;
  uint32_t next_free; /* slot + 1 of the next free slot; 0 ends the list */
  _Atomic(void *) obj;
} strata__hslot_t;

typedef struct strata__htable {
  pthread_mutex_t mu;
  strata__hkind_t kind; /* set at init, then read-only */
  uint32_t free_head;   /* slot + 1; 0: no free slot */
  uint32_t nchunks;
  _Atomic size_t live;
  _Atomic(strata__hslot_t *) chunks[STRATA__HMAX_CHUNKS];
} strata__htable_t;

/** Set up an empty table whose ids carry `kind`. @thread owner */
void strata__htable_init(strata__htable_t *t, strata__hkind_t kind);
/** Free the chunks; live objects are not touched (iterate first). */
void strata__htable_destroy(strata__htable_t *t, const strata__allocator_t *a);

/** Give obj (non-NULL) a new id.
 *  @return 0; STRATA_ENOMEM (allocation failed or table full) */
int strata__htable_add(strata__htable_t *t, const strata__allocator_t *a,
                       void *obj, uint64_t *id);

/** The object named by id, or NULL when id is 0, stale, out of range or of
 *  another kind. @thread any, lock-free */
void *strata__htable_get(const strata__htable_t *t, uint64_t id);

/** Why a lookup of id in t found nothing, as a public entry point answers:
 *  STRATA_EINVAL when id carries another table's kind (a kernel handle
 *  where a buffer handle belongs), else STRATA_ENOENT (0, released, or a
 *  number no table issues). @thread any */
int strata__htable_miss(const strata__htable_t *t, uint64_t id);

/** Kill id. @return the object it named, or NULL if id was not live. */
void *strata__htable_remove(strata__htable_t *t, uint64_t id);

/* Sticky slots, for objects that are recycled (tasks): the object keeps
 * its slot across lives, so killing and re-issuing its id takes no lock.
 * The caller guarantees that one id is never retired by two threads at
 * once (a handle is released once). */

/** Kill id but leave the slot with the caller, who stores the slot number
 *  ((uint32_t)id: its kind bits are ignored where it is given back) with
 *  the object. @return the object, or NULL if id was not live.
 *  @thread any, lock-free */
void *strata__htable_retire(strata__htable_t *t, uint64_t id);
/** Publish obj under a new id in a slot the caller retired.
 *  @return the new id  @thread any, lock-free */
uint64_t strata__htable_readd(strata__htable_t *t, uint32_t slot, void *obj);
/** Give a retired slot back to the table. @thread any */
void strata__htable_release_slot(strata__htable_t *t, uint32_t slot);

/** Call fn for every live (id, obj). fn may remove the id it is given.
 *  Must not run concurrently with add/remove from other threads. */
void strata__htable_foreach(strata__htable_t *t,
                            void (*fn)(uint64_t id, void *obj, void *ud),
                            void *ud);

#endif /* STRATA_HANDLE_H */
