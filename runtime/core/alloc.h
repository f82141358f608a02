/* SPDX-License-Identifier: MIT */
/* runtime/core/alloc.h: every allocation the runtime makes goes through the
 * embedder's allocator (strata_runtime_opts_t.alloc) via these wrappers,
 * which always pass the exact size of the block. */
#ifndef STRATA_ALLOC_H
#define STRATA_ALLOC_H

#include "internal.h"

typedef struct strata__allocator {
  strata_alloc_fn fn;
  void *ud;
} strata__allocator_t;

/** The default allocator: realloc/free. */
void *strata__default_alloc(void *ud, void *ptr, size_t osize, size_t nsize);

/** An allocator, as strata_alloc_fn, whose user data is a
 *  `const strata__allocator_t *`: for code that takes the public form
 *  (the Lua sandbox, the file reader). @thread any */
void *strata__alloc_via(void *ud, void *ptr, size_t osize, size_t nsize);

/** @return a block of n bytes, or NULL. n must be > 0. @thread any */
void *strata__alloc(const strata__allocator_t *a, size_t n);
/** @return a zeroed block of n bytes, or NULL. @thread any */
void *strata__zalloc(const strata__allocator_t *a, size_t n);
/** Resize p from osize to nsize bytes; NULL on failure (p unchanged). */
void *strata__realloc(const strata__allocator_t *a, void *p, size_t osize,
                      size_t nsize);
/** Free p, a block of exactly n bytes. NULL is ignored. */
void strata__free(const strata__allocator_t *a, void *p, size_t n);

/** Copy a C string; free it with strata__strfree. NULL gives NULL. */
char *strata__strdup(const strata__allocator_t *a, const char *s);
void strata__strfree(const strata__allocator_t *a, char *s);

/** Make room for `need` elements of `elem` bytes in *arr (capacity *cap,
 *  doubling). @return 0 or STRATA_ENOMEM (arr untouched). */
int strata__grow(const strata__allocator_t *a, void **arr, size_t *cap,
                 size_t need, size_t elem);

#endif /* STRATA_ALLOC_H */
