/* SPDX-License-Identifier: MIT */
/* tests/plugins/broken.c: backends that are wrong in one way each, chosen
 * at compile time (BROKEN_*), for the loader tests. PLUGIN is the C name
 * derived from the file name; PLUGIN_NAME what the component claims. */
#include <stddef.h>

#include <strata/backend.h>

#define CAT3(a, b, c) a##b##c
#define SYMBOL(p) CAT3(strata_backend_, p, _component)

static const strata_backend_device_t device = {
    .struct_size = sizeof(strata_backend_device_t),
    .device_class = STRATA_CLASS_CPU,
    .candidate_impl = STRATA_IMPL_CPU,
    .run_impl = STRATA_IMPL_CPU,
    .name = "broken",
    .nworkers = 1,
    .numa_node = -1,
};

static int b_init(const strata_core_services_t *core,
                  const strata_backend_config_t *cfg, void **state) {
  (void)cfg;
  *state = NULL;
#ifdef BROKEN_INIT_FAILS
  core->log(core->core, STRATA_LOG_ERROR, "refusing to start, as asked");
  return STRATA_EBACKEND;
#else
  (void)core;
  return STRATA_OK;
#endif
}

__attribute__((unused)) static int
b_probe(void *state, const strata_backend_device_t **devices, size_t *n) {
  (void)state;
  *devices = &device;
  *n = 1;
  return STRATA_OK;
}

static int b_start(void *state, strata_device_handle_t *const *h, size_t n) {
  (void)state, (void)h, (void)n;
  return STRATA_OK;
}

static void b_stop(void *state) { (void)state; }
static void b_fini(void *state) { (void)state; }

#ifdef BROKEN_NO_SYMBOL
/* A complete component under a symbol that does not match the file name
 * (as after renaming a plugin file). */
#define EXPORTED strata_backend_elsewhere_component
#else
#define EXPORTED SYMBOL(PLUGIN)
#endif

STRATA_BACKEND_EXPORT const strata_backend_component_t EXPORTED = {
#ifdef BROKEN_BAD_MAJOR
    .abi_major = STRATA_BACKEND_ABI_MAJOR + 98,
#else
    .abi_major = STRATA_BACKEND_ABI_MAJOR,
#endif
#ifdef BROKEN_NEWER_MINOR
    .abi_minor = STRATA_BACKEND_ABI_MINOR + 1,
#else
    .abi_minor = STRATA_BACKEND_ABI_MINOR,
#endif
#ifdef BROKEN_SMALL_STRUCT
    .struct_size = 16,
#else
    .struct_size = sizeof(strata_backend_component_t),
#endif
    .name = PLUGIN_NAME,
    .init = b_init,
#ifdef BROKEN_NULL_ENTRY
    .probe = NULL,
#else
    .probe = b_probe,
#endif
    .start = b_start,
    .stop = b_stop,
    .fini = b_fini,
#ifdef BROKEN_RESERVED_SET
    /* Filled by a plugin built against a newer minor that lies about it. */
    .reserved = {(void *)&device},
#endif
};
