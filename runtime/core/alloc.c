/* SPDX-License-Identifier: MIT */
/* runtime/core/alloc.c: allocation through the embedder's allocator. */
#include "config.h"

#include "alloc.h"

#include <string.h>

void *strata__default_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  (void)osize;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  return realloc(ptr, nsize);
}

void *strata__alloc(const strata__allocator_t *a, size_t n) {
  STRATA_ASSERT(n > 0);
  return a->fn(a->ud, NULL, 0, n);
}

void *strata__zalloc(const strata__allocator_t *a, size_t n) {
  void *p = strata__alloc(a, n);
  if (p)
    memset(p, 0, n);
  return p;
}

void *strata__realloc(const strata__allocator_t *a, void *p, size_t osize,
                      size_t nsize) {
  STRATA_ASSERT(nsize > 0);
  return a->fn(a->ud, p, p ? osize : 0, nsize);
}

void strata__free(const strata__allocator_t *a, void *p, size_t n) {
  if (p)
    a->fn(a->ud, p, n, 0);
}

char *strata__strdup(const strata__allocator_t *a, const char *s) {
  if (!s)
    return NULL;
  size_t n = strlen(s) + 1;
  char *d = strata__alloc(a, n);
  if (d)
    memcpy(d, s, n);
  return d;
}

void strata__strfree(const strata__allocator_t *a, char *s) {
  if (s)
    strata__free(a, s, strlen(s) + 1);
}

int strata__grow(const strata__allocator_t *a, void **arr, size_t *cap,
                 size_t need, size_t elem) {
  if (need <= *cap)
    return STRATA_OK;
  size_t ncap = *cap ? *cap : 4;
  while (ncap < need)
    ncap *= 2;
  void *p = strata__realloc(a, *arr, *cap * elem, ncap * elem);
  if (!p)
    return STRATA_ENOMEM;
  *arr = p;
  *cap = ncap;
  return STRATA_OK;
}

void *strata__alloc_via(void *ud, void *ptr, size_t osize, size_t nsize) {
  const strata__allocator_t *a = ud;
  return a->fn(a->ud, ptr, osize, nsize);
}
