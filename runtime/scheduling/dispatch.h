/* SPDX-License-Identifier: MIT */
/* runtime/scheduling/dispatch.h: the bridge between the graph and the devices:
 * ready tasks go into their device's queue; backend workers take them with
 * next() and report them with complete() (the services of backend.h). */
#ifndef STRATA_DISPATCH_H
#define STRATA_DISPATCH_H

#include "graph.h"
#include "loader.h"

/** Queue a task whose dependencies are satisfied. @thread any */
void strata__dispatch_enqueue(struct strata_runtime *rt, strata__task_t *t);

/** The transfer engine staged t (status 0: its data is in place and
 *  held: queue it) or could not (STRATA_EDEVICE: the device fails and t
 *  moves; other errors end t). The engine's staged completion
 *  (strata__staged_fn, given to strata__transfer_start at runtime
 *  creation): the engine, below the scheduler, never names it.
 *  @thread a transfer thread, or the thread that made t ready */
void strata__dispatch_staged(struct strata_runtime *rt, strata__task_t *t,
                             int status);

/** May ready task t run before everything queued on its device (nothing is
 *  queued there, or nothing can outrank it)? A hint, read without locks.
 *  @thread any */
bool strata__dispatch_may_run_next(struct strata_runtime *rt,
                                   const strata__task_t *t);

/** Fail device d as if its backend had reported it: no more work goes
 *  there and what is queued runs elsewhere (or ends STRATA_EDEVICE);
 *  logged at ERROR with `why`. A no-op on a device already failed.
 *  @thread any (no runtime lock held) */
void strata__dispatch_fail_device(struct strata_runtime *rt,
                                  strata__device_t *d, const char *why);

/* The services table entries (see strata/backend.h). */
int strata__dispatch_next(strata_core_t *core, strata_device_handle_t *dev,
                          unsigned worker, int64_t timeout_ns,
                          strata_work_t **out);
void strata__dispatch_complete(strata_core_t *core, strata_work_t *work,
                               int status);
int strata__dispatch_bind_worker(strata_core_t *core,
                                 strata_device_handle_t *dev, unsigned worker);
void strata__dispatch_device_failed(strata_core_t *core,
                                    strata_device_handle_t *dev,
                                    strata_work_t *work, const char *why);

#endif /* STRATA_DISPATCH_H */
