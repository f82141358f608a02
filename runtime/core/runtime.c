/* SPDX-License-Identifier: MIT */
/* runtime/core/runtime.c: runtime creation and destruction (the order modules
 * come up and go down in), options, and the completion signalling every
 * wait uses. */
#include "config.h"

#include "runtime.h"
#include "dispatch.h"
#include "host_access.h"

#include <string.h>

#define COMP "runtime"

void strata_runtime_opts_init(strata_runtime_opts_t *opts) {
  if (!opts)
    return;
  memset(opts, 0, sizeof *opts);
  opts->struct_size = sizeof *opts;
  opts->log_level = STRATA_LOG_WARN;
  opts->prefetch = 1;
}

/* Every submitted task counts in its device's load until it ends, so the
 * runtime is idle when every load is zero (no separate global counter for
 * every task end to contend on). */
static bool all_idle(void *arg) {
  strata_runtime_t *rt = arg;
  for (size_t i = 0; i < rt->ndevices; i++)
    if (strata__device_load(rt->devices[i]))
      return false;
  return true;
}

int strata_runtime_wait_all(strata_runtime_t *rt) {
  if (!rt)
    return STRATA_EINVAL;
  strata__waits_until(&rt->waits, all_idle, rt);
  return STRATA_OK;
}

/* {=== Creation ===} */

static int check_opts(const strata_runtime_opts_t *o,
                      strata_runtime_opts_t *copy) {
  strata_runtime_opts_init(copy);
  if (!o)
    return STRATA_OK;
  if (o->struct_size < offsetof(strata_runtime_opts_t, backend_path))
    return STRATA_EINVAL;
  memcpy(copy, o, STRATA_MIN(o->struct_size, sizeof *copy));
  copy->struct_size = sizeof *copy;
  if ((unsigned)copy->log_level > STRATA_LOG_TRACE)
    return STRATA_EINVAL;
  return STRATA_OK;
}

static void init_locks(strata_runtime_t *rt) {
  pthread_mutex_init(&rt->kernels_mu, NULL);
  pthread_mutex_init(&rt->data_mu, NULL);
  strata__mutex_init_hot(&rt->graph_mu);
  (void)strata__waits_init(&rt->waits);
  strata__htable_init(&rt->tasks, STRATA__HKIND_TASK);
  strata__htable_init(&rt->jobs, STRATA__HKIND_JOB);
  pthread_mutex_init(&rt->jobs_mu, NULL);
  strata__htable_init(&rt->buffers, STRATA__HKIND_BUFFER);
  strata__htable_init(&rt->kernels, STRATA__HKIND_KERNEL);
  strata__task_pool_init(&rt->task_pool);
  strata__notify_init(&rt->notify);
  strata__trace_init(rt);
  strata__metrics_init(rt);
}

/* Free what creation may have set up; every piece tolerates never having
 * been set up. */
static void teardown(strata_runtime_t *rt) {
  /* Every task has ended and its handles are gone: drop the jobs, then
   * the buffers (whose access history holds the last task references) and
   * the memory nodes, while the backends that hold device memory are
   * still loaded; then the backends and their devices. */
  strata__metrics_export_stop(rt); /* they read everything: first */
  strata__watchdog_stop(rt);       /* it fails devices: before they go */
  strata__jobs_release_all(rt);
  strata__health_stop(rt); /* it calls the policy: before it goes */
  strata__policy_fini(rt);
  strata__estimates_fini(rt);   /* saves the history: after the policy */
  strata__host_access_fini(rt); /* the tasks' side of the buffers */
  strata__buffers_free(rt);
  strata__transfer_stop(rt);
  strata__memory_fini(rt);
  strata__staging_fini(rt); /* its memory is a backend's: before they go */
  strata__loader_stop(rt);
  strata__devices_free(rt);
  strata__kernels_free(rt);
  strata__placer_fini(rt);
  strata__topology_free(&rt->topo, &rt->alloc);
  strata__htable_destroy(&rt->tasks, &rt->alloc);
  strata__htable_destroy(&rt->jobs, &rt->alloc);
  strata__htable_destroy(&rt->buffers, &rt->alloc);
  strata__htable_destroy(&rt->kernels, &rt->alloc);
  strata__task_pool_drain(&rt->task_pool, &rt->alloc);
  strata__notify_fini(&rt->notify);
  strata__trace_fini(rt);
  strata__metrics_fini(rt); /* after every thread that counts */
  strata__waits_fini(&rt->waits);
  pthread_mutex_destroy(&rt->jobs_mu);
  pthread_mutex_destroy(&rt->graph_mu);
  pthread_mutex_destroy(&rt->data_mu);
  pthread_mutex_destroy(&rt->kernels_mu);
  strata__allocator_t a = rt->alloc;
  strata__free(&a, rt, sizeof *rt);
}

int strata_runtime_create(const strata_runtime_opts_t *opts,
                          strata_runtime_t **out) {
  strata_runtime_opts_t o;
  if (!out)
    return STRATA_EINVAL;
  *out = NULL;
  int rc = check_opts(opts, &o);
  if (rc) {
    if (opts && opts->log)
      opts->log(opts->log_ud, STRATA_LOG_ERROR, COMP,
                "strata_runtime_create: malformed options (struct_size or "
                "log_level)");
    return rc;
  }
  strata__allocator_t a = {o.alloc ? o.alloc : strata__default_alloc,
                           o.alloc ? o.alloc_ud : NULL};
  strata_runtime_t *rt = strata__zalloc(&a, sizeof *rt);
  if (!rt)
    return STRATA_ENOMEM;
  rt->alloc = a;
  rt->log = (strata__logger_t){o.log, o.log_ud, o.log_level};
  strata__placer_reset(rt);
  init_locks(rt);

  if ((rc = strata__topology_load(&rt->topo, o.topology_xml, &rt->alloc,
                                  &rt->log)) ||
      (rc = strata__loader_start(rt, &o)))
    goto fail;
  if (!rt->ndevices) {
    STRATA_LOG(&rt->log, STRATA_LOG_ERROR, COMP,
               "no backend provided a device (backend path: %s)",
               o.backend_path ? o.backend_path : "the built-in default");
    rc = STRATA_ENODEV;
    goto fail;
  }
  strata__staging_init(rt); /* pinned memory: before the pinned tier */
  if ((rc = strata__metrics_size(rt)) || (rc = strata__memory_init(rt, &o)) ||
      (rc = strata__transfer_start(rt, o.prefetch != 0,
                                   strata__dispatch_staged)) ||
      (rc = strata__estimates_init(rt, &o)) ||
      (rc = strata__policy_init(rt, &o)) ||
      (rc = strata__health_start(rt, o.health_period_ms)))
    goto fail;
  /* Last: failing a device needs memory, placement and the policy. */
  strata__watchdog_start(rt, o.worker_start_timeout_ms);
  *out = rt;
  return STRATA_OK;
fail:
  teardown(rt);
  return rc;
}

/* {=== Destruction ===} */

static void release_task_handle(uint64_t id, void *obj, void *ud) {
  strata_runtime_t *rt = ud;
  strata__htable_retire(&rt->tasks, id); /* tasks keep their slot */
  strata__task_unref(obj);
}

int strata_runtime_destroy(strata_runtime_t *rt) {
  if (!rt)
    return STRATA_EINVAL;
  /* From a callback, destroy would wait for the thread it runs on. */
  if (strata__notify_on_thread(rt))
    return STRATA_EBUSY;
  pthread_mutex_lock(&rt->graph_mu);
  atomic_store(&rt->shutdown, true);
  pthread_mutex_unlock(&rt->graph_mu);
  strata__graph_discard_unsubmitted(rt);
  strata__waits_until(&rt->waits, all_idle, rt);
  /* Every task has ended and posted its callback: run them all. */
  strata__notify_stop(rt);
  /* The textfile's last write sees every task ended. */
  strata__metrics_export_stop(rt);
  strata__htable_foreach(&rt->tasks, release_task_handle, rt);
  teardown(rt);
  return STRATA_OK;
}

/* {=== Accessors ===} */

void strata_runtime_set_data(strata_runtime_t *rt, void *data) {
  if (rt)
    rt->user_data = data;
}

void *strata_runtime_get_data(const strata_runtime_t *rt) {
  return rt ? rt->user_data : NULL;
}

const strata_machine_t *strata_runtime_machine(const strata_runtime_t *rt) {
  return rt ? strata__topology_view(&rt->topo) : NULL;
}
