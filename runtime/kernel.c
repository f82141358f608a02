/* SPDX-License-Identifier: MIT */
/* runtime/kernel.c: kernel registration and lookup. */
#include "config.h"

#include "runtime.h"

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

static bool has_impl(const strata_kernel_fn *impl) {
  for (int c = 0; c < STRATA_CLASS_COUNT; c++)
    if (impl[c])
      return true;
  return false;
}

int strata_kernel_register(strata_runtime_t *rt,
                           const strata_kernel_desc_t *desc,
                           strata_kernel_t *out) {
  if (!rt || !desc || !out ||
      desc->struct_size < offsetof(strata_kernel_desc_t, user_data))
    return STRATA_EINVAL;
  strata_kernel_desc_t d = {0};
  memcpy(&d, desc, STRATA_MIN(desc->struct_size, sizeof d));
  if (!d.name || !*d.name || !has_impl(d.impl)) {
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP, "kernel '%s' rejected: %s",
               d.name ? d.name : "(null)",
               d.name && *d.name ? "no implementation given" : "no name");
    return STRATA_EINVAL;
  }
  strata__kernel_t *k = strata__zalloc(&rt->alloc, sizeof *k);
  if (!k || !(k->name = strata__strdup(&rt->alloc, d.name))) {
    strata__free(&rt->alloc, k, sizeof *k);
    return STRATA_ENOMEM;
  }
  memcpy(k->impl, d.impl, sizeof k->impl);
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
