/* SPDX-License-Identifier: MIT */
/* kernlib.c: loading kernel libraries with libltdl and indexing their
 * kernels (see kernlib.h). A library is checked before any of its kernels
 * is used: the ABI version, the struct size, and each entry's fields (a
 * name, a buffer list that agrees with the modes, code for each type it
 * claims). */
#include "config.h"

#include "kernlib.h"

#include <dlfcn.h>
#include <ltdl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LIBRARIES 16

struct kernlib {
  lt_dlhandle dl[MAX_LIBRARIES];
  size_t nlibs;
  bool ltdl_up;
  kernlib_kernel_t *kernels;
  size_t nkernels;
};

const char *kernlib_elem_name(strata_elem_t t) {
  return t == STRATA_ELEM_FLOAT    ? "float"
         : t == STRATA_ELEM_DOUBLE ? "double"
                                   : "none";
}

size_t kernlib_elem_size(strata_elem_t t) {
  return t == STRATA_ELEM_FLOAT    ? sizeof(float)
         : t == STRATA_ELEM_DOUBLE ? sizeof(double)
                                   : 1;
}

/* {=== Opening one library ===} */

/* Open `name` from the first directory of `path` that has it; a name with
 * a '/' is a path of its own. */
static lt_dlhandle open_module(const char *name, const char *path) {
  if (strchr(name, '/'))
    return lt_dlopenext(name);
  for (const char *p = path ? path : ""; *p;) {
    size_t len = strcspn(p, ":");
    if (len) {
      char file[4096];
      snprintf(file, sizeof file, "%.*s/%s", (int)len, p, name);
      lt_dlhandle h = lt_dlopenext(file);
      if (h)
        return h;
    }
    p += len + (p[len] == ':');
  }
  return NULL;
}

/* Keep the module's code mapped after lt_dlclose (which still frees
 * libltdl's handle): the libraries a kernel library pulls in (the CUDA
 * runtime) leave exit handlers in its mappings, called at exit. */
static void stay_mapped(lt_dlhandle dl) {
  const lt_dlinfo *info = lt_dlgetinfo(dl);
  void *h = info && info->filename
                ? dlopen(info->filename, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE)
                : NULL;
  if (h)
    dlclose(h); /* the flag stays; only the count goes back */
}

/* Whether an entry is usable; why not in err. */
static bool entry_ok(const strata_library_kernel_t *k, char *err,
                     size_t errlen) {
  if (!k->name || !*k->name || strchr(k->name, '.') || !k->buffers ||
      !k->modes) {
    snprintf(err, errlen, "an entry without a name, buffers or modes");
    return false;
  }
  size_t nb = 0;
  while (k->buffers[nb])
    nb++;
  bool any = !strcmp(k->modes, "*");
  if (!any && (strlen(k->modes) != nb || strspn(k->modes, "rwx") != nb)) {
    snprintf(err, errlen,
             "kernel '%s': modes '%s' do not match its %zu "
             "buffer(s)",
             k->name, k->modes, nb);
    return false;
  }
  if ((k->nargs && !k->args) || !k->types ||
      k->types >= 1u << STRATA_ELEM_COUNT) {
    snprintf(err, errlen, "kernel '%s': bad argument list or types", k->name);
    return false;
  }
  for (int t = 0; t < STRATA_ELEM_COUNT; t++)
    if ((k->types >> t & 1u) && !k->cpu[t]) {
      snprintf(err, errlen, "kernel '%s': no CPU code for %s", k->name,
               kernlib_elem_name((strata_elem_t)t));
      return false;
    }
  return true;
}

static int add_library(kernlib_t *kl, lt_dlhandle dl, const char *name,
                       char *err, size_t errlen) {
  void *sym = lt_dlsym(dl, STRATA_KERNEL_LIBRARY_SYMBOL);
  strata_kernel_library_fn fn;
  memcpy(&fn, &sym, sizeof fn); /* data to function pointer */
  const strata_kernel_library_t *lib = sym ? fn() : NULL;
  if (!lib) {
    snprintf(err, errlen, "%s: not a kernel library (no %s)", name,
             STRATA_KERNEL_LIBRARY_SYMBOL);
    return STRATA_EABI;
  }
  if (lib->abi != STRATA_KERNEL_LIBRARY_ABI) {
    snprintf(err, errlen,
             "%s: built for kernel library ABI %u, this launcher speaks %d",
             name, lib->abi, STRATA_KERNEL_LIBRARY_ABI);
    return STRATA_EABI;
  }
  if (lib->struct_size < sizeof *lib || !lib->name ||
      (lib->nkernels && !lib->kernels)) {
    snprintf(err, errlen,
             "%s: a malformed table (struct size %u, %s name, %u kernels%s)",
             name, lib->struct_size, lib->name ? "a" : "no", lib->nkernels,
             lib->nkernels && !lib->kernels ? " but no array" : "");
    return STRATA_EABI;
  }
  if (lib->nkernels > 4096) {
    snprintf(err, errlen, "%s: %u kernels, more than 4096", name,
             lib->nkernels);
    return STRATA_EABI;
  }
  kernlib_kernel_t *grown = realloc(
      kl->kernels, (kl->nkernels + lib->nkernels + 1) * sizeof *kl->kernels);
  if (!grown) {
    snprintf(err, errlen, "%s: not enough memory", name);
    return STRATA_ENOMEM;
  }
  kl->kernels = grown;
  for (uint32_t i = 0; i < lib->nkernels; i++) {
    const strata_library_kernel_t *k = &lib->kernels[i];
    char why[160];
    if (!entry_ok(k, why, sizeof why)) {
      snprintf(err, errlen, "%s: %s", name, why);
      return STRATA_EABI;
    }
    if (kernlib_find(kl, k->name)) {
      snprintf(err, errlen, "%s: kernel '%s' is already given by %s", name,
               k->name, kernlib_find(kl, k->name)->library);
      return STRATA_EEXIST;
    }
    kernlib_kernel_t *e = &kl->kernels[kl->nkernels++];
    *e = (kernlib_kernel_t){.k = k, .library = lib->name};
    for (int t = 0; t < STRATA_ELEM_COUNT; t++)
      e->handle[t] = (strata_kernel_t){0};
  }
  return STRATA_OK;
}

/* {=== The set ===} */

int kernlib_open(const char *names, const char *path, kernlib_t **out,
                 char *err, size_t errlen) {
  kernlib_t *kl = calloc(1, sizeof *kl);
  if (!kl) {
    snprintf(err, errlen, "not enough memory");
    return STRATA_ENOMEM;
  }
  int rc = STRATA_OK;
  if (lt_dlinit()) {
    snprintf(err, errlen, "cannot set up libltdl");
    free(kl);
    return STRATA_EBACKEND;
  }
  kl->ltdl_up = true;
  for (const char *p = names; *p && !rc;) {
    size_t len = strcspn(p, ",");
    char name[1024];
    snprintf(name, sizeof name, "%.*s", (int)len, p);
    p += len + (p[len] == ',');
    if (!*name)
      continue;
    if (kl->nlibs == MAX_LIBRARIES) {
      snprintf(err, errlen, "more than %d kernel libraries", MAX_LIBRARIES);
      rc = STRATA_EINVAL;
      break;
    }
    lt_dlhandle dl = open_module(name, path);
    if (!dl) {
      snprintf(err, errlen, "kernel library '%s' not found (searched '%s')",
               name,
               strchr(name, '/') ? name
               : path            ? path
                                 : "");
      rc = STRATA_ENOENT;
      break;
    }
    kl->dl[kl->nlibs++] = dl;
    stay_mapped(dl);
    rc = add_library(kl, dl, name, err, errlen);
  }
  if (rc) {
    kernlib_close(kl);
    return rc;
  }
  *out = kl;
  return STRATA_OK;
}

void kernlib_close(kernlib_t *kl) {
  if (!kl)
    return;
  for (size_t i = 0; i < kl->nlibs; i++)
    lt_dlclose(kl->dl[i]);
  if (kl->ltdl_up)
    lt_dlexit();
  free(kl->kernels);
  free(kl);
}

kernlib_kernel_t *kernlib_find(kernlib_t *kl, const char *name) {
  for (size_t i = 0; i < kl->nkernels; i++)
    if (!strcmp(kl->kernels[i].k->name, name))
      return &kl->kernels[i];
  return NULL;
}

size_t kernlib_count(const kernlib_t *kl) { return kl->nkernels; }

const kernlib_kernel_t *kernlib_at(const kernlib_t *kl, size_t i) {
  return i < kl->nkernels ? &kl->kernels[i] : NULL;
}

/* {=== Using a kernel ===} */

int kernlib_handle(strata_runtime_t *rt, kernlib_kernel_t *k, strata_elem_t t,
                   strata_kernel_t *out) {
  if ((unsigned)t >= STRATA_ELEM_COUNT || !(k->k->types >> t & 1u))
    return STRATA_ENOTSUP;
  if (k->handle[t].id) {
    *out = k->handle[t];
    return STRATA_OK;
  }
  char name[96];
  if (t == STRATA_ELEM_NONE)
    snprintf(name, sizeof name, "%s", k->k->name);
  else
    snprintf(name, sizeof name, "%s.%s", k->k->name, kernlib_elem_name(t));
  strata_kernel_impl_t impls[2] = {{STRATA_IMPL_CPU, k->k->cpu[t]}};
  uint32_t n = 1;
  if (k->k->cuda[t])
    impls[n++] = (strata_kernel_impl_t){STRATA_IMPL_CUDA, k->k->cuda[t]};
  strata_kernel_desc_t d = {
      .struct_size = sizeof d, .name = name, .impls = impls, .nimpls = n};
  int rc = strata_kernel_register(rt, &d, &k->handle[t]);
  if (rc == STRATA_EEXIST)
    rc = strata_kernel_find(rt, name, &k->handle[t]);
  if (rc) {
    k->handle[t] = (strata_kernel_t){0};
    return rc;
  }
  *out = k->handle[t];
  return STRATA_OK;
}

int kernlib_run_host(const kernlib_kernel_t *k, strata_elem_t t,
                     void *const *buffers, const size_t *sizes,
                     const uint8_t *modes, uint32_t nbuffers,
                     const double *args) {
  if ((unsigned)t >= STRATA_ELEM_COUNT || !k->k->cpu[t])
    return STRATA_ENOTSUP;
  strata_kernel_call_t call = {
      .struct_size = sizeof call,
      .nbuffers = nbuffers,
      .buffers = buffers,
      .sizes = sizes,
      .args = k->k->nargs ? args : NULL,
      .args_size = k->k->nargs * sizeof(double),
      .device = -1,
      .modes = modes,
  };
  return k->k->cpu[t](&call);
}
