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
 * How a task ends (its status: what strata_task_wait returns, what its
 * callback is given, strata_task_info's `status`). The list is complete:
 * every status the runtime ends a task with is here; the strata_job_info_t
 * counter each one adds to is on the right.
 *   0                  the kernel ran and returned 0           succeeded
 *   STRATA_EKERNEL     the kernel returned non-zero (what it   kernel_failed
 *                      returned: strata_task_info's
 *                      kernel_status)
 *   STRATA_EDEVICE     its device failed (or copies to or      device_failed
 *                      from it kept failing) and no other
 *                      working device can run the kernel;
 *                      while another can, the task moves
 *                      there and runs instead
 *   STRATA_ELOST       not run: a buffer it reads had its     data_lost
 *                      only valid copy on a device that
 *                      failed (eager_writeback in the
 *                      runtime options keeps copies at home)
 *   STRATA_EIO         not run: a spilled copy of its input   data_failed
 *                      could not be read back or failed its
 *                      checksum, or the spill directory
 *                      failed writes needed to make room
 *   STRATA_ENOSPC      not run: making room for its data      data_failed
 *                      needed a spill and the spill
 *                      directory is full
 *   STRATA_ENOMEM      not run: the allocator failed while    no_memory
 *                      bringing its data to the device
 *   STRATA_EDEPFAILED  not run: a task whose results it       dep_failed
 *                      consumes did not succeed (for any
 *                      status above but 0)
 *   STRATA_ECANCELED   not run: its job was canceled, or a    canceled
 *                      task whose results it consumes was
 *                      canceled or discarded
 * Should a later version end tasks with a status not listed here, it is
 * counted in `other_failed` and treated as the task's own failure.
 * Only EKERNEL and EDEVICE can end a task that started running; the data
 * statuses (ELOST, EIO, ENOSPC, ENOMEM) end it before its kernel ran.
 * "Consumes" means an explicit dependency, or reading (R or RW) a buffer
 * the other task was the last to write. A failed write poisons a buffer
 * until a later task writes it with mode W (which does not read it).
 * Write-after-read and pure write-after-write edges only order tasks.
 *
 * Two ways to build a task: strata_task_insert, one call with a
 * designated-initialiser struct (StarPU's starpu_task_insert habit), or
 * step by step: strata_task_create, then strata_task_access,
 * strata_task_set_args, strata_task_set_attr... then strata_task_submit
 * and strata_task_release. Both end the same way. */

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

/** Set a numeric attribute: "flops" (finite, >= 0), "priority" (an
 *  integer within int's range; same as strata_task_set_priority) or a user
 *  tag, which the policy then reads as a Lua number (a tag set with
 *  strata_task_set_attr is a string). The string keys ("name", "tier",
 *  "precision") refuse numbers.
 *  @return 0; STRATA_EINVAL (empty key, a string key, NaN or infinite,
 *          out of range, a fractional priority); STRATA_ESTATE
 *  @thread any, one thread per task while it is being described */
STRATA_API int strata_task_set_attr_number(strata_runtime_t *rt,
                                           strata_task_t task, const char *key,
                                           double value);

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
 *          STRATA_ESHUTDOWN (strata_runtime_destroy has started).
 *          On failure the task stays created (fix it and submit again, or
 *          release it).
 *  @own    the handle stays the caller's: release it when done with it
 *  @thread any  @blocks no
 *  @cb     its callback runs on the callback thread once it has ended,
 *          never inside this call */
STRATA_API int strata_task_submit(strata_runtime_t *rt,
                                  strata_task_t task) STRATA_WARN_UNUSED;

/** Wait until the task ends.
 *  @return the task's status (see above); STRATA_ESTATE (not submitted)
 *  @thread any  @blocks yes */
STRATA_API int strata_task_wait(strata_runtime_t *rt, strata_task_t task);

/* {=== Completion callbacks and the event loop's file descriptor ===}
 *
 * Callbacks (of tasks and of jobs) run on one runtime thread of their own,
 * started the first time a callback is set, one callback at a time, in the
 * order the work ended; never on the thread that submitted or ran the work,
 * never inside the call that set them. Each runs once, after the status it
 * is given is visible to strata_task_wait, strata_task_info and (for jobs)
 * strata_job_wait. No runtime lock is held while it runs.
 *
 * A callback MAY call any function of this API, including submitting and
 * inserting tasks (the usual continuation), waiting for them, and
 * setting further callbacks; a callback that blocks (a wait, a long
 * computation) only delays the callbacks behind it, never the tasks.
 * It MUST NOT call strata_runtime_destroy (which answers STRATA_EBUSY
 * there) and must not wait for something only a later callback does.
 * strata_runtime_destroy runs every callback still due before it returns;
 * tasks submitted from those get STRATA_ESHUTDOWN.
 *
 * If the call that sets a callback fails, the callback never runs. A task's
 * callback runs only if the task is submitted: a task released or
 * discarded without being submitted (including by a failed
 * strata_task_insert) never calls it. */

/** Called once when a submitted task has ended. `task` is the handle it
 *  had, which may since have been released (then other calls answer
 *  STRATA_ENOENT for it); `status` is its final status (table above). */
typedef void (*strata_task_done_fn)(strata_runtime_t *rt, strata_task_t task,
                                    int status, void *arg);

/** Called once when a job next has no task pending, with the status
 *  strata_job_wait would return then. */
typedef void (*strata_job_done_fn)(strata_runtime_t *rt, strata_job_t job,
                                   int status, void *arg);

/** Have `fn(rt, task, status, arg)` called once when the task ends (see
 *  above). Replaces an earlier callback; fn NULL removes it.
 *  @return 0; STRATA_ESTATE (already submitted); STRATA_EAGAIN (the
 *          callback thread could not be started); STRATA_ESHUTDOWN
 *  @own    arg: the caller's; the runtime only passes it to fn
 *  @thread any, one thread per task while it is being described */
STRATA_API int strata_task_set_callback(strata_runtime_t *rt,
                                        strata_task_t task,
                                        strata_task_done_fn fn, void *arg);

/** Make the runtime's event fd (strata_runtime_event_fd) readable when
 *  the task ends (after its callback has returned, when it has one).
 *  Counts one event. Like callbacks, only for submitted tasks.
 *  @return 0; STRATA_ESTATE (already submitted: watch its job instead)
 *  @thread any, one thread per task while it is being described */
STRATA_API int strata_task_watch(strata_runtime_t *rt, strata_task_t task);

/** A file descriptor that becomes readable when watched work ends
 *  (strata_task_watch, strata_job_watch, `.watch` in strata_task_insert),
 *  for poll, epoll, select or an event library. An eventfd on Linux, the
 *  read end of a non-blocking pipe elsewhere; made on the first call (the
 *  same fd is returned afterwards), and events that happened before
 *  already make it readable. It stays readable until
 *  strata_runtime_event_clear; do not read, write or close it yourself.
 *  The runtime closes it in strata_runtime_destroy.
 *  @return 0; STRATA_EAGAIN (out of file descriptors); STRATA_EIO
 *  @own    *fd: the runtime's  @thread any */
STRATA_API int strata_runtime_event_fd(strata_runtime_t *rt, int *fd);

/** Make the event fd unreadable again and say how many watched ends it
 *  stood for since the last clear. Call it when poll reports the fd
 *  readable, then look at the work you watch (strata_task_info,
 *  strata_job_info, or what your callbacks recorded). An end racing with
 *  the clear is counted now or leaves the fd readable for the next round:
 *  none is lost, but a wake-up may find *count == 0.
 *  @param[out] count  may be NULL
 *  @return 0  @thread any (one event loop) */
STRATA_API int strata_runtime_event_clear(strata_runtime_t *rt,
                                          uint64_t *count);

/* {=== One call: strata_task_insert ===} */

/** One buffer access of strata_task_desc_t. */
typedef struct strata_access_desc {
  strata_buffer_t buffer;
  strata_access_mode_t mode; /* STRATA_R, STRATA_W or STRATA_RW */
} strata_access_desc_t;

/** One attribute of strata_task_desc_t: a string (value non-NULL, as
 *  strata_task_set_attr) or, when value is NULL, a number (as
 *  strata_task_set_attr_number). */
typedef struct strata_attr_desc {
  const char *key;
  const char *value;
  double number;
} strata_attr_desc_t;

/** Everything a task is, for strata_task_insert; meant for designated
 *  initialisers, so that a field left out is zero and means "none" or
 *  "default":
 *    strata_task_desc_t d = {.struct_size = sizeof d, .kernel = k,
 *        .accesses = (strata_access_desc_t[]){{a, STRATA_R}, {b, STRATA_RW}},
 *        .naccesses = 2, .args = &alpha, .args_size = sizeof alpha};
 *  struct_size rules: set it to sizeof the struct as your header has it.
 *  Fields are only ever appended; a library older than your header
 *  accepts a larger struct when every field it does not know is zero, and
 *  refuses it (STRATA_EINVAL, logged) otherwise, so that nothing you ask
 *  for is silently ignored. STRATA_TASK_DESC_SIZE_V1 is the smallest size
 *  accepted. */
typedef struct strata_task_desc {
  size_t struct_size;
  strata_kernel_t kernel;
  const strata_access_desc_t *accesses; /* in the order the kernel sees */
  size_t naccesses;
  const void *args; /* by-value arguments, copied (strata_task_set_args) */
  size_t args_size;
  const strata_attr_desc_t *attrs; /* applied in order */
  size_t nattrs;
  const char *name;          /* the "name" attribute; NULL: the kernel's name */
  int priority;              /* 0: the default (the job's priority, else 0); to
                                force 0 under a job that has one, pass the
                                attribute "priority" */
  strata_job_t job;          /* STRATA_NONE: no job */
  const strata_task_t *deps; /* explicit dependencies (strata_task_depend) */
  size_t ndeps;
  strata_task_done_fn callback; /* NULL: none (strata_task_set_callback) */
  void *callback_arg;
  int watch; /* non-zero: as strata_task_watch */
} strata_task_desc_t;

#define STRATA_TASK_DESC_SIZE_V1                                               \
  (offsetof(strata_task_desc_t, watch) + sizeof(int))

/** Create, describe and submit a task in one call. On success the task is
 *  submitted exactly as strata_task_create, the setters in the struct's
 *  order and strata_task_submit would have made it.
 *  On failure nothing stays behind: no task was submitted, none is left
 *  created, *out is untouched, the callback never runs, no event is
 *  counted, and the buffers and job named are as they were (no reference,
 *  no count). A dependency already added when a later field failed keeps
 *  an edge to the discarded task until it ends: the task never runs and
 *  the dependency is not affected. The failing field is logged.
 *  @param[out] out  the task's handle (the caller's, release it when done
 *                   with it); NULL: no handle is kept (the task runs all
 *                   the same; use a callback, a watch or its job to learn
 *                   how it ended)
 *  @return 0; STRATA_EINVAL (NULL desc, struct_size below
 *          STRATA_TASK_DESC_SIZE_V1 or with unknown non-zero fields, a NULL
 *          array with a non-zero count, a bad mode or attribute, a handle
 *          of the wrong kind); STRATA_ENOENT (unknown kernel, released
 *          buffer, job or dependency); STRATA_ENODEV; STRATA_ECANCELED (the
 *          job is canceled); STRATA_EAGAIN (callback thread); STRATA_ENOMEM;
 *          STRATA_ESHUTDOWN; and what strata_task_submit returns
 *  @own    desc and everything it points to: borrowed for the call
 *  @thread any  @blocks no */
STRATA_API int strata_task_insert(strata_runtime_t *rt,
                                  const strata_task_desc_t *desc,
                                  strata_task_t *out) STRATA_WARN_UNUSED;

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

/** Drop the caller's handle. A submitted task still runs (and its
 *  callback and watch still fire). A task never submitted is discarded:
 *  its callback never runs, and tasks that depend on it end
 *  STRATA_ECANCELED.
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

/** Set a numeric job attribute: "priority" (an integer) or a user tag
 *  (a Lua number to the policy); as strata_task_set_attr_number.
 *  @return 0; STRATA_EINVAL
 *  @thread any */
STRATA_API int strata_job_set_attr_number(strata_runtime_t *rt,
                                          strata_job_t job, const char *key,
                                          double value);

/** Wait until every task submitted to the job so far has ended.
 *  @return 0 when all ran successfully, else the status of the first task
 *          that did not (any status of the table above but 0)
 *  @thread any  @blocks yes */
STRATA_API int strata_job_wait(strata_runtime_t *rt, strata_job_t job);

/** Have `fn(rt, job, status, arg)` called once, on the callback thread,
 *  the next time the job has no task pending (when strata_job_wait would
 *  return), with the status strata_job_wait would return. When nothing is
 *  pending now, that is at once (still on the callback thread, never in
 *  this call). One callback at a time: set the next one once it has been
 *  called (from inside it, for instance). Releasing the job's handle does
 *  not prevent it.
 *  @return 0; STRATA_EINVAL (fn NULL); STRATA_EBUSY (a callback is set and
 *          has not been called yet); STRATA_EAGAIN (the callback thread
 *          could not be started); STRATA_ESHUTDOWN
 *  @own    arg: the caller's; kept and passed to fn, never dereferenced
 *  @thread any */
STRATA_API int strata_job_set_callback(strata_runtime_t *rt, strata_job_t job,
                                       strata_job_done_fn fn, void *arg);

/** Make the event fd readable (one event) the next time the job has no
 *  task pending, after its callback when one is due then; at once when
 *  nothing is pending now. One-shot: watch again for the next time.
 *  @return 0
 *  @thread any */
STRATA_API int strata_job_watch(strata_runtime_t *rt, strata_job_t job);

/** Cancel the job: its tasks that have not started end STRATA_ECANCELED
 *  (running ones finish), further submissions to it fail. Other jobs carry
 *  on; tasks elsewhere that consume a canceled task's results end
 *  STRATA_ECANCELED as well. Does not wait.
 *  @return 0
 *  @thread any */
STRATA_API int strata_job_cancel(strata_runtime_t *rt, strata_job_t job);

/** Counters of a job, one per way a task can end (the status table
 *  above says which status adds to which). Every ended task is in exactly
 *  one of succeeded, failed, dep_failed and canceled; every failed one in
 *  exactly one of the *_failed / data_* / no_memory / other_failed
 *  counters after it. Counters are read one by one: they add up exactly
 *  once pending is 0 (after strata_job_wait).
 *
 *  struct_size rules: the fields up to first_failed_name are those of the
 *  first version, at the same offsets; later ones are appended. The
 *  runtime fills what the caller's struct_size holds (an older caller
 *  gets the fields it knows) and leaves struct_size as the caller set it. */
typedef struct strata_job_info {
  size_t struct_size;
  uint64_t submitted;  /* tasks submitted to it */
  uint64_t pending;    /* submitted and not ended */
  uint64_t succeeded;  /* ended 0 */
  uint64_t failed;     /* ended by a failure of their own: every status but
                          0, EDEPFAILED and ECANCELED; the sum of
                          kernel_failed ... other_failed below */
  uint64_t dep_failed; /* STRATA_EDEPFAILED */
  uint64_t canceled;   /* STRATA_ECANCELED */
  int canceled_flag;   /* strata_job_cancel was called */
  int status;          /* what strata_job_wait would return now */
  strata_task_t first_failed; /* first task that ended non-zero */
  char first_failed_name[64];
  /* Appended since the first version: what `failed` is made of, and the
   * total. */
  uint64_t ended;         /* succeeded + failed + dep_failed + canceled */
  uint64_t kernel_failed; /* STRATA_EKERNEL */
  uint64_t device_failed; /* STRATA_EDEVICE */
  uint64_t data_lost;     /* STRATA_ELOST */
  uint64_t data_failed;   /* STRATA_EIO, STRATA_ENOSPC (spill directory) */
  uint64_t no_memory;     /* STRATA_ENOMEM */
  uint64_t other_failed;  /* any other status (none today) */
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
