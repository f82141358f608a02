/* SPDX-License-Identifier: MIT */
/* runtime/hardware/loader.h: backend plugins, found in the backend path, loaded
 * with libltdl, checked against the ABI and initialised. `struct
 * strata_core` is one loaded backend: what the plugin knows as its opaque
 * core handle. */
#ifndef STRATA_LOADER_H
#define STRATA_LOADER_H

#include <ltdl.h>
#include <stdatomic.h>
#include <strata/backend.h>

#include "internal.h"

struct strata_runtime;

/* A shared description: written by the loader while it loads and starts
 * the backend; read by the modules that call it (data/copy, staging and
 * the block cache: comp and state; scheduling: rt and name). */
typedef struct strata_core {
  struct strata_runtime *rt;
  char *name;
  char *path;
  lt_dlhandle dl;
  const strata_backend_component_t *comp;
  strata_core_services_t services;
  strata_backend_config_t config;
  char *options; /* this backend's "key=value,..." or NULL */
  atomic_uint_least64_t options_read; /* bit i: the backend asked for its
                                         setting i (the first 64) */
  void *state;
  bool started;
} strata__backend_t;

/** Load, initialise, probe and start the backends the options ask for.
 *  Failures are logged and the backend skipped, unless it is required.
 *  @return 0; STRATA_EINVAL (a malformed backends, required_backends,
 *          backend_options or backend_path, or settings for a backend not
 *          in the path: logged, nothing loaded); STRATA_EBACKEND (a
 *          required backend failed); STRATA_ENOMEM
 *  @own    the backends: rt's, until strata__loader_stop
 *  @thread owner (creation) */
int strata__loader_start(struct strata_runtime *rt,
                         const strata_runtime_opts_t *opts);

/** Stop and unload every backend (devices must be stopped first).
 *  Tolerates a strata__loader_start that failed half way.
 *  @thread owner (destruction) */
void strata__loader_stop(struct strata_runtime *rt);

#endif /* STRATA_LOADER_H */
