/* SPDX-License-Identifier: MIT */
/* backends/cuda-common/component.c: the ABI entry points both CUDA plugins
 * share (their components differ only in name and the class they claim:
 * see SCUDA_COMPONENT in scuda.h). */
#include "scuda.h"

#include <string.h>

int scuda_init(const strata_core_services_t *core,
               const strata_backend_config_t *cfg, const char *name,
               strata_device_class_t klass, void **state) {
  scuda_backend_t *b = core->alloc(core->core, NULL, 0, sizeof *b);
  if (!b)
    return STRATA_ENOMEM;
  memset(b, 0, sizeof *b);
  b->core = core;
  b->machine = cfg->machine;
  b->name = name;
  b->klass = klass;
  int rc = scuda_discover(b);
  if (rc) {
    scuda_fini(b);
    return rc;
  }
  *state = b;
  return STRATA_OK;
}

int scuda_probe(void *state, const strata_backend_device_t **devices,
                size_t *ndevices) {
  scuda_backend_t *b = state;
  *devices = b->ndevs ? b->facts : NULL;
  *ndevices = b->ndevs;
  return STRATA_OK;
}

int scuda_start(void *state, strata_device_handle_t *const *handles,
                size_t nhandles) {
  scuda_backend_t *b = state;
  if (nhandles != b->ndevs)
    return STRATA_EINVAL;
  for (size_t i = 0; i < nhandles; i++)
    b->devs[i].handle = handles[i];
  return scuda_start_workers(b);
}

void scuda_stop(void *state) { scuda_stop_workers(state); }

void scuda_fini(void *state) {
  scuda_backend_t *b = state;
  if (!b)
    return;
  scuda_nvml_close(b->nvml);
  b->core->alloc(b->core->core, b, sizeof *b, 0);
}

int scuda_health(void *state, unsigned dev, strata_health_t *out) {
  scuda_backend_t *b = state;
  if (dev >= b->ndevs)
    return STRATA_EINVAL;
  if (!b->nvml || b->devs[dev].nvml < 0)
    return STRATA_ENOTSUP;
  return scuda_nvml_health(b->nvml, (unsigned)b->devs[dev].nvml, out);
}
