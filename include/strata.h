/* SPDX-License-Identifier: MIT */
/* strata.h: the umbrella header of Strata, an embeddable task runtime for
 * machines that mix server GPUs, consumer GPUs and CPUs.
 *
 * Typical use:
 *   strata_runtime_opts_t o;  strata_runtime_opts_init(&o);
 *   strata_runtime_create(&o, &rt);
 *   strata_kernel_register(rt, &desc, &k);
 *   strata_buffer_register(rt, ptr, size, &b);
 *   strata_task_create(rt, k, &t); strata_task_access(rt, t, b, STRATA_RW);
 *   strata_task_submit(rt, t); strata_task_release(rt, t);
 *   strata_runtime_wait_all(rt); strata_runtime_destroy(rt);
 *
 * The error rule is stated once, in strata/common.h. Every function states
 * its ownership (@own) and threading (@thread) contract. */
#ifndef STRATA_H
#define STRATA_H

#include <strata/common.h>
#include <strata/machine.h>
#include <strata/runtime.h>
#include <strata/data.h>
#include <strata/kernel.h>
#include <strata/task.h>
#include <strata/policy.h>
#include <strata/trace.h>
#include <strata/metrics.h>

#endif /* STRATA_H */
