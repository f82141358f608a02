/* SPDX-License-Identifier: MIT */
/* runtime/core/handle.c: generational, typed handle tables (see handle.h). */
#include "config.h"

#include "handle.h"

#include <string.h>

static strata__hslot_t *slot_at(const strata__htable_t *t, uint32_t slot) {
  uint32_t c = slot >> STRATA__HCHUNK_BITS;
  if (c >= STRATA__HMAX_CHUNKS)
    return NULL;
  strata__hslot_t *chunk =
      atomic_load_explicit(&t->chunks[c], memory_order_acquire);
  return chunk ? &chunk[slot & (STRATA__HCHUNK_SLOTS - 1)] : NULL;
}

/* The id of slot number `slot` (slot + 1, kind bits ignored) at
 * generation gen in t. */
static uint64_t make_id(const strata__htable_t *t, uint32_t gen,
                        uint32_t slot) {
  return ((uint64_t)gen << 32) | ((uint64_t)t->kind << STRATA__HKIND_SHIFT) |
         (uint64_t)(slot & STRATA__HSLOT_MASK);
}

/* The slot + 1 that id names in t, or 0 when id is 0 or of another kind. */
static uint32_t slot_of(const strata__htable_t *t, uint64_t id) {
  uint32_t lo = (uint32_t)id;
  if ((lo >> STRATA__HKIND_SHIFT) != (uint32_t)t->kind)
    return 0;
  return lo & STRATA__HSLOT_MASK;
}

void strata__htable_init(strata__htable_t *t, strata__hkind_t kind) {
  memset(t, 0, sizeof *t);
  t->kind = kind;
  strata__mutex_init_hot(&t->mu);
}

int strata__htable_miss(const strata__htable_t *t, uint64_t id) {
  /* Numbers whose kind bits name no kind at all were never issued: as
   * unknown as a released handle. */
  uint32_t kind = (uint32_t)id >> STRATA__HKIND_SHIFT;
  if (kind >= STRATA__HKIND_TASK && kind <= STRATA__HKIND_LAST &&
      kind != (uint32_t)t->kind)
    return STRATA_EINVAL;
  return STRATA_ENOENT;
}

void strata__htable_destroy(strata__htable_t *t, const strata__allocator_t *a) {
  for (uint32_t c = 0; c < t->nchunks; c++)
    strata__free(a, atomic_load(&t->chunks[c]),
                 STRATA__HCHUNK_SLOTS * sizeof(strata__hslot_t));
  pthread_mutex_destroy(&t->mu);
}

/* Add a chunk of free slots; called with the mutex held. */
static int add_chunk(strata__htable_t *t, const strata__allocator_t *a) {
  if (t->nchunks == STRATA__HMAX_CHUNKS)
    return STRATA_ENOMEM;
  strata__hslot_t *chunk =
      strata__alloc(a, STRATA__HCHUNK_SLOTS * sizeof(strata__hslot_t));
  if (!chunk)
    return STRATA_ENOMEM;
  uint32_t base = t->nchunks << STRATA__HCHUNK_BITS;
  for (uint32_t i = 0; i < STRATA__HCHUNK_SLOTS; i++) {
    atomic_init(&chunk[i].gen, 1);
    atomic_init(&chunk[i].obj, NULL);
    /* Chain in ascending order so ids come out densely. */
    chunk[i].next_free =
        i + 1 < STRATA__HCHUNK_SLOTS ? base + i + 2 : t->free_head;
  }
  t->free_head = base + 1;
  atomic_store_explicit(&t->chunks[t->nchunks], chunk, memory_order_release);
  t->nchunks++;
  return STRATA_OK;
}

int strata__htable_add(strata__htable_t *t, const strata__allocator_t *a,
                       void *obj, uint64_t *id) {
  int rc = STRATA_OK;
  pthread_mutex_lock(&t->mu);
  if (!t->free_head && (rc = add_chunk(t, a)) != STRATA_OK)
    goto out;
  uint32_t slot = t->free_head - 1;
  strata__hslot_t *s = slot_at(t, slot);
  t->free_head = s->next_free;
  atomic_store_explicit(&s->obj, obj, memory_order_release);
  *id =
      make_id(t, atomic_load_explicit(&s->gen, memory_order_relaxed), slot + 1);
  atomic_fetch_add(&t->live, 1);
out:
  pthread_mutex_unlock(&t->mu);
  return rc;
}

void *strata__htable_get(const strata__htable_t *t, uint64_t id) {
  uint32_t lo = slot_of(t, id);
  if (!lo)
    return NULL;
  const strata__hslot_t *s = slot_at(t, lo - 1);
  if (!s || atomic_load_explicit(&s->gen, memory_order_acquire) !=
                (uint32_t)(id >> 32))
    return NULL;
  return atomic_load_explicit(&s->obj, memory_order_acquire);
}

void *strata__htable_remove(strata__htable_t *t, uint64_t id) {
  uint32_t lo = slot_of(t, id);
  void *obj = NULL;
  if (!lo)
    return NULL;
  pthread_mutex_lock(&t->mu);
  strata__hslot_t *s = slot_at(t, lo - 1);
  if (s && atomic_load(&s->gen) == (uint32_t)(id >> 32) &&
      (obj = atomic_load(&s->obj)) != NULL) {
    atomic_store(&s->obj, NULL);
    uint32_t g = atomic_load(&s->gen) + 1;
    atomic_store_explicit(&s->gen, g ? g : 1, memory_order_release);
    s->next_free = t->free_head;
    t->free_head = lo;
    atomic_fetch_sub(&t->live, 1);
  }
  pthread_mutex_unlock(&t->mu);
  return obj;
}

void *strata__htable_retire(strata__htable_t *t, uint64_t id) {
  uint32_t lo = slot_of(t, id);
  strata__hslot_t *s = lo ? slot_at(t, lo - 1) : NULL;
  if (!s || atomic_load(&s->gen) != (uint32_t)(id >> 32))
    return NULL;
  void *obj = atomic_exchange(&s->obj, NULL);
  if (!obj)
    return NULL;
  uint32_t g = atomic_load(&s->gen) + 1;
  atomic_store_explicit(&s->gen, g ? g : 1, memory_order_release);
  atomic_fetch_sub(&t->live, 1);
  return obj;
}

uint64_t strata__htable_readd(strata__htable_t *t, uint32_t slot, void *obj) {
  slot &= STRATA__HSLOT_MASK;
  strata__hslot_t *s = slot_at(t, slot - 1);
  atomic_store_explicit(&s->obj, obj, memory_order_release);
  atomic_fetch_add(&t->live, 1);
  return make_id(t, atomic_load(&s->gen), slot);
}

void strata__htable_release_slot(strata__htable_t *t, uint32_t slot) {
  slot &= STRATA__HSLOT_MASK;
  pthread_mutex_lock(&t->mu);
  strata__hslot_t *s = slot_at(t, slot - 1);
  s->next_free = t->free_head;
  t->free_head = slot;
  pthread_mutex_unlock(&t->mu);
}

void strata__htable_foreach(strata__htable_t *t,
                            void (*fn)(uint64_t id, void *obj, void *ud),
                            void *ud) {
  for (uint32_t c = 0; c < t->nchunks; c++) {
    strata__hslot_t *chunk = atomic_load(&t->chunks[c]);
    for (uint32_t i = 0; i < STRATA__HCHUNK_SLOTS; i++) {
      void *obj = atomic_load(&chunk[i].obj);
      if (!obj)
        continue;
      uint32_t slot = (c << STRATA__HCHUNK_BITS) + i;
      fn(make_id(t, atomic_load(&chunk[i].gen), slot + 1), obj, ud);
    }
  }
}
