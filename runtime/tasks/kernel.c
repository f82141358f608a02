/* SPDX-License-Identifier: MIT */
/* runtime/tasks/kernel.c: kernel registration and lookup. */
#include "config.h"

#include "runtime.h"

#include <stdio.h>
#include <string.h>

#define COMP "kernel"

strata__kernel_t *strata__kernel_get(struct strata_runtime *rt,
                                     strata_kernel_t k) {
  return strata__htable_get(&rt->kernels, k.id);
}

/* Called with kernels_mu held. */
static strata__kernel_t *find_locked(strata_runtime_t *rt, const char *name) {
  for (size_t i = 0; i < rt->nkernels; i++)
    if (!strcmp(rt->kernel_list[i]->name, name))
      return rt->kernel_list[i];
  return NULL;
}

static void kernel_free(strata_runtime_t *rt, strata__kernel_t *k) {
  strata__strfree(&rt->alloc, k->name);
  strata__free(&rt->alloc, k, sizeof *k);
}

static const char *kind_name(int kind) {
  return kind == STRATA_IMPL_CPU    ? "CPU"
         : kind == STRATA_IMPL_CUDA ? "CUDA"
                                    : "?";
}

/* Spread d's pairs into impl (indexed by kind). @return NULL, or why the
 * description is refused: a caller that mixes up kinds would otherwise
 * run code where it cannot run, or lose one of two functions silently. */
static const char *spread_impls(const strata_kernel_desc_t *d,
                                strata_kernel_fn impl[STRATA_IMPL_COUNT],
                                char *why, size_t len) {
  if (!d->nimpls)
    return "no implementation given";
  if (!d->impls)
    return "impls is NULL";
  for (uint32_t i = 0; i < d->nimpls; i++) {
    const strata_kernel_impl_t *p = &d->impls[i];
    int kind = (int)p->kind;
    if (kind < 0 || kind >= STRATA_IMPL_COUNT)
      snprintf(why, len,
               "implementation %u has kind %d, which this runtime "
               "does not know",
               i, kind);
    else if (!p->fn)
      snprintf(why, len, "implementation %u (%s) has no function", i,
               kind_name(kind));
    else if (impl[kind])
      snprintf(why, len, "two implementations of kind %s", kind_name(kind));
    else {
      impl[kind] = p->fn;
      continue;
    }
    return why;
  }
  return NULL;
}

int strata_kernel_register(strata_runtime_t *rt,
                           const strata_kernel_desc_t *desc,
                           strata_kernel_t *out) {
  if (!rt || !desc || !out ||
      desc->struct_size < offsetof(strata_kernel_desc_t, user_data))
    return STRATA_EINVAL;
  strata_kernel_desc_t d = {0};
  memcpy(&d, desc, STRATA_MIN(desc->struct_size, sizeof d));
  strata_kernel_fn impl[STRATA_IMPL_COUNT] = {0};
  char buf[128];
  const char *why =
      !d.name || !*d.name ? "no name" : spread_impls(&d, impl, buf, sizeof buf);
  if (why) {
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP, "kernel '%s' rejected: %s",
               d.name ? d.name : "(null)", why);
    return STRATA_EINVAL;
  }
  strata__kernel_t *k = strata__zalloc(&rt->alloc, sizeof *k);
  if (!k || !(k->name = strata__strdup(&rt->alloc, d.name))) {
    strata__free(&rt->alloc, k, sizeof *k);
    return STRATA_ENOMEM;
  }
  memcpy(k->impl, impl, sizeof k->impl);
  k->user_data = d.user_data;

  int rc;
  pthread_mutex_lock(&rt->kernels_mu);
  if (find_locked(rt, d.name)) {
    rc = STRATA_EEXIST;
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
               "kernel '%s' is already registered", d.name);
    goto fail;
  }
  if ((rc =
           strata__grow(&rt->alloc, (void **)&rt->kernel_list, &rt->cap_kernels,
                        rt->nkernels + 1, sizeof *rt->kernel_list)))
    goto fail;
  if ((rc = strata__htable_add(&rt->kernels, &rt->alloc, k, &k->id)))
    goto fail;
  rt->kernel_list[rt->nkernels++] = k;
  pthread_mutex_unlock(&rt->kernels_mu);
  out->id = k->id;
  return STRATA_OK;
fail:
  pthread_mutex_unlock(&rt->kernels_mu);
  kernel_free(rt, k);
  return rc;
}

int strata_kernel_find(strata_runtime_t *rt, const char *name,
                       strata_kernel_t *out) {
  if (!rt || !name || !out)
    return STRATA_EINVAL;
  pthread_mutex_lock(&rt->kernels_mu);
  strata__kernel_t *k = find_locked(rt, name);
  if (k)
    out->id = k->id;
  pthread_mutex_unlock(&rt->kernels_mu);
  return k ? STRATA_OK : STRATA_ENOENT;
}

void strata__kernels_free(strata_runtime_t *rt) {
  for (size_t i = 0; i < rt->nkernels; i++) {
    strata__htable_remove(&rt->kernels, rt->kernel_list[i]->id);
    kernel_free(rt, rt->kernel_list[i]);
  }
  strata__free(&rt->alloc, rt->kernel_list,
               rt->cap_kernels * sizeof *rt->kernel_list);
  rt->kernel_list = NULL;
  rt->nkernels = rt->cap_kernels = 0;
}
