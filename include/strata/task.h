/* SPDX-License-Identifier: MIT */
/* strata/task.h: tasks (kernel calls over buffers) and jobs (groups of
 * tasks waited on, canceled and reported as one). */
#ifndef STRATA_TASK_H
#define STRATA_TASK_H

#include <strata/common.h>
#include <strata/kernel.h>
#include <strata/runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

/* {=== Tasks ===}
 *
 * A task is created, described (accesses, arguments, attributes,
 * dependencies), submitted, then waited on or queried, and finally
 * released. Releasing the handle never cancels a submitted task: the
 * runtime keeps what it needs until the task ends. A released handle is
 * dead (calls answer STRATA_ENOENT).
 *
 * Dependencies follow buffer access order, as if the tasks ran one after
 * another in submission order (read-after-write, write-after-read,
 * write-after-write); tasks that only read a buffer run concurrently.
 *
 * How a task ends (its status):
 *   0                   the kernel ran and returned 0
 *   STRATA_EKERNEL      the kernel returned non-zero
 *   STRATA_EDEPFAILED   not run: a task whose results it consumes failed
 *   STRATA_ECANCELED    not run: its job was canceled, or a task whose
 *                       results it consumes was canceled or discarded
 * "Consumes" means an explicit dependency, or reading (R or RW) a buffer
 * the other task was the last to write. A failed write poisons a buffer
 * until a later task writes it with mode W (which does not read it).
 * Write-after-read and pure write-after-write edges only order tasks. */

typedef enum strata_task_state {
  STRATA_TASK_CREATED = 0, /* being described, not submitted */
  STRATA_TASK_WAITING,     /* submitted, waiting for dependencies */
  STRATA_TASK_READY,       /* in its device's ready queue */
  STRATA_TASK_RUNNING,
  STRATA_TASK_DONE
} strata_task_state_t;

/** Create a task calling `kernel`.
 *  @return 0; STRATA_ENOENT (unknown kernel); STRATA_ESHUTDOWN
 *  @own    *out: caller, until strata_task_release
 *  @thread any */
STRATA_API int strata_task_create(strata_runtime_t *rt, strata_kernel_t kernel,
                                  strata_task_t *out) STRATA_WARN_UNUSED;

/** Append a buffer access. The kernel sees the buffers in this order. The
 *  same buffer may appear more than once; its modes then combine.
 *  @return 0; STRATA_ENOENT (buffer not registered); STRATA_EINVAL (bad
 *          mode); STRATA_ESTATE (already submitted)
 *  @thread any, but one thread per task while it is being described */
STRATA_API int strata_task_access(strata_runtime_t *rt, strata_task_t task,
                                  strata_buffer_t buf,
                                  strata_access_mode_t mode);

/** Copy `size` bytes of by-value arguments into the task (replacing any
 *  earlier ones). size 0 clears them. The kernel finds them at an address
 *  aligned for any type, as malloc's memory is.
 *  @return 0; STRATA_EINVAL (args NULL with size > 0); STRATA_ESTATE
 *  @own    args: borrowed for the call (copied)
 *  @thread any, one thread per task while it is being described */
STRATA_API int strata_task_set_args(strata_runtime_t *rt, strata_task_t task,
                                    const void *args, size_t size);

/** Set an attribute the placement policy reads. Well-known keys are
 *  checked: "name" (shown in reports and errors), "tier" (e.g. "train",
 *  "validate", "preprocess" or any site label), "precision" ("fp64",
 *  "fp32", "fp16", "bf16", "int8" or any label), "flops" (a number >= 0),
 *  "priority" (an integer, same as strata_task_set_priority). Other keys
 *  are kept as user tags. Key and value are copied.
 *  @return 0; STRATA_EINVAL (empty key, bad number); STRATA_ESTATE
 *  @thread any, one thread per task while it is being described */
STRATA_API int strata_task_set_attr(strata_runtime_t *rt, strata_task_t task,
                                    const char *key, const char *value);

/** Among the ready tasks of a device, higher priorities run first; equal
 *  priorities run in the order they became ready, except that a task made
 *  ready by the one a worker just ran may run next on that worker (its
 *  data is still in that worker's cache or device memory). Default: the
 *  job's "priority" attribute, else 0.
 *  @return 0; STRATA_ESTATE
 *  @thread any, one thread per task while it is being described */
STRATA_API int strata_task_set_priority(strata_runtime_t *rt,
                                        strata_task_t task, int priority);

/** Make the task part of `job` (counted, waited on and canceled with it).
 *  @return 0; STRATA_ENOENT (job released); STRATA_ESTATE
 *  @own    the task keeps the job alive even if its handle is released
 *  @thread any, one thread per task while it is being described */
STRATA_API int strata_task_set_job(strata_runtime_t *rt, strata_task_t task,
                                   strata_job_t job);

/** Add an explicit dependency: `task` runs only after `on` ends, and
 *  consumes its results (if `on` fails or is canceled, `task` does not
 *  run). `on` may itself be unsubmitted: `task` then waits for it to be
 *  submitted and to end; releasing `on` without submitting it cancels
 *  `task`.
 *  @return 0; STRATA_ENOENT (`on` released); STRATA_ECYCLE (`on` already
 *          depends on `task`, directly or not, or they are the same);
 *          STRATA_ESTATE (`task` already submitted)
 *  @thread any */
STRATA_API int strata_task_depend(strata_runtime_t *rt, strata_task_t task,
                                  strata_task_t on);

/** Place the task (the placement policy runs now, in this thread) and hand
 *  it to the runtime. A task whose inputs are already known to be poisoned
 *  is accepted and ends at once with STRATA_EDEPFAILED or
 *  STRATA_ECANCELED.
 *  @return 0; STRATA_ESTATE (submitted twice); STRATA_ENODEV (no device has
 *          an implementation of the kernel); STRATA_ENOENT (a buffer was
 *          unregistered); STRATA_ECANCELED (its job is canceled);
 *          STRATA_ESHUTDOWN (strata_runtime_destroy has started)
 *  @own    the handle stays the caller's: release it when done with it
 *  @thread any  @blocks no */
STRATA_API int strata_task_submit(strata_runtime_t *rt,
                                  strata_task_t task) STRATA_WARN_UNUSED;

/** Wait until the task ends.
 *  @return the task's status (see above); STRATA_ESTATE (not submitted)
 *  @thread any  @blocks yes */
STRATA_API int strata_task_wait(strata_runtime_t *rt, strata_task_t task);

/** Where a task is and how it ended. */
typedef struct strata_task_info {
  size_t struct_size;
  strata_task_state_t state;
  int status;        /* its status once DONE, else 0 */
  int kernel_status; /* what the kernel returned when status is EKERNEL */
  int device;        /* device it was placed on; -1 before submit */
  char name[64];     /* "name" attribute, else the kernel name */
  /* For EDEPFAILED/ECANCELED caused by another task: the task that failed
   * or was canceled first (its handle may since have been released). */
  strata_task_t cause;
  char cause_name[64];
} strata_task_info_t;

/** @return 0; STRATA_EINVAL (struct_size holds no field)
 *  @thread any */
STRATA_API int strata_task_info(strata_runtime_t *rt, strata_task_t task,
                                strata_task_info_t *out);

/** Attach an embedder pointer to the task.
 *  @thread any */
STRATA_API int strata_task_set_data(strata_runtime_t *rt, strata_task_t task,
                                    void *data);
STRATA_API void *strata_task_get_data(strata_runtime_t *rt, strata_task_t task);

/** Drop the caller's handle. A submitted task still runs. A task never
 *  submitted is discarded: tasks that depend on it end STRATA_ECANCELED.
 *  @return 0; STRATA_ENOENT (already released)
 *  @thread any */
STRATA_API int strata_task_release(strata_runtime_t *rt, strata_task_t task);

/* {=== Jobs ===} */

/** Create an empty job.
 *  @own    *out: caller, until strata_job_release
 *  @thread any */
STRATA_API int strata_job_create(strata_runtime_t *rt,
                                 strata_job_t *out) STRATA_WARN_UNUSED;

/** Set a job attribute: "name", "owner", "tier", "priority" (integer, the
 *  default priority of its tasks) or any user tag. Tasks submitted
 *  afterwards see the job's tier when they have none of their own.
 *  @return 0; STRATA_EINVAL
 *  @thread any */
STRATA_API int strata_job_set_attr(strata_runtime_t *rt, strata_job_t job,
                                   const char *key, const char *value);

/** Wait until every task submitted to the job so far has ended.
 *  @return 0 when all ran successfully, else the status of the first task
 *          that did not (STRATA_EKERNEL, STRATA_EDEPFAILED,
 *          STRATA_ECANCELED)
 *  @thread any  @blocks yes */
STRATA_API int strata_job_wait(strata_runtime_t *rt, strata_job_t job);

/** Cancel the job: its tasks that have not started end STRATA_ECANCELED
 *  (running ones finish), further submissions to it fail. Other jobs carry
 *  on; tasks elsewhere that consume a canceled task's results end
 *  STRATA_ECANCELED as well. Does not wait.
 *  @return 0
 *  @thread any */
STRATA_API int strata_job_cancel(strata_runtime_t *rt, strata_job_t job);

/** Counters of a job. */
typedef struct strata_job_info {
  size_t struct_size;
  uint64_t submitted; /* tasks submitted to it */
  uint64_t pending;   /* submitted and not ended */
  uint64_t succeeded;
  uint64_t failed;            /* STRATA_EKERNEL */
  uint64_t dep_failed;        /* STRATA_EDEPFAILED */
  uint64_t canceled;          /* STRATA_ECANCELED */
  int canceled_flag;          /* strata_job_cancel was called */
  int status;                 /* what strata_job_wait would return now */
  strata_task_t first_failed; /* first task that ended non-zero */
  char first_failed_name[64];
} strata_job_info_t;

/** @return 0; STRATA_EINVAL (struct_size holds no field)
 *  @thread any */
STRATA_API int strata_job_info(strata_runtime_t *rt, strata_job_t job,
                               strata_job_info_t *out);

/** Drop the caller's handle; tasks already in the job are unaffected.
 *  @return 0; STRATA_ENOENT
 *  @thread any */
STRATA_API int strata_job_release(strata_runtime_t *rt, strata_job_t job);

#ifdef __cplusplus
}
#endif

#endif /* STRATA_TASK_H */
