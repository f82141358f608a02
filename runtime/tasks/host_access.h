/* SPDX-License-Identifier: MIT */
/* runtime/tasks/host_access.h: the application's access to buffers as
 * tasks of the graph (strata_buffer_acquire, strata_buffer_release and
 * strata_buffer_unregister, declared in strata/data.h), and its part of
 * runtime destroy. */
#ifndef STRATA_HOST_ACCESS_H
#define STRATA_HOST_ACCESS_H

struct strata_runtime;

/** Runtime destroy, before strata__buffers_free: end every access the
 *  application never released, and drop every buffer's access history
 *  (the last task references). @thread owner (teardown, every task
 *  ended) */
void strata__host_access_fini(struct strata_runtime *rt);

#endif /* STRATA_HOST_ACCESS_H */
