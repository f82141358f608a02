/* SPDX-License-Identifier: MIT */
/* strata/common.h: version, visibility, status codes, logging and
 * allocation types shared by the public API and the backend ABI. */
#ifndef STRATA_COMMON_H
#define STRATA_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define STRATA_VERSION_MAJOR 0
#define STRATA_VERSION_MINOR 1
#define STRATA_VERSION_PATCH 0

#if defined(__GNUC__)
#define STRATA_API __attribute__((visibility("default")))
#define STRATA_WARN_UNUSED __attribute__((warn_unused_result))
#define STRATA_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define STRATA_API
#define STRATA_WARN_UNUSED
#define STRATA_PRINTF(fmt, args)
#endif

/* {=== Status codes ===}
 *
 * The error rule, stated once for the whole API: a function that returns
 * int returns STRATA_OK (0) on success and a negative STRATA_E* code on
 * failure. Positive values appear only where a function documents them as
 * counts. A call that fails had no effect, ownership of its arguments did
 * not move, and callbacks it was given are never called, unless its own
 * documentation says otherwise. Each function lists only its specific
 * codes; any function may also return STRATA_EINVAL for a NULL pointer or
 * a handle of the wrong kind, STRATA_ENOENT for a released handle (see
 * Handles below), and STRATA_ENOMEM when the allocator fails.
 *
 * The numeric values are part of the ABI (backends return them across the
 * plugin boundary): they never change, new codes are only appended. */
#define STRATA_ERRNO_MAP(XX)                                                   \
  XX(EINVAL, -1, "invalid argument")                                           \
  XX(ENOMEM, -2, "out of memory")                                              \
  XX(EBUSY, -3, "resource busy")                                               \
  XX(ENODEV, -4, "no suitable device")                                         \
  XX(ENOENT, -5, "no such object (unknown name or released handle)")           \
  XX(EEXIST, -6, "already exists")                                             \
  XX(EBACKEND, -7, "backend failure")                                          \
  XX(EABI, -8, "plugin ABI mismatch")                                          \
  XX(EPOLICY, -9, "policy error")                                              \
  XX(ECANCELED, -10, "canceled")                                               \
  XX(EAGAIN, -11, "resource temporarily unavailable, try again")               \
  XX(EKERNEL, -12, "kernel reported failure")                                  \
  XX(EDEPFAILED, -13, "a task this one depends on failed")                     \
  XX(ECYCLE, -14, "dependency cycle")                                          \
  XX(ESTATE, -15, "operation not allowed in the object's current state")       \
  XX(EOVERLAP, -16, "memory range overlaps a registered buffer")               \
  XX(ETOPOLOGY, -17, "machine topology could not be loaded")                   \
  XX(ESHUTDOWN, -18, "runtime is shutting down")                               \
  XX(ENOTSUP, -19, "operation not supported")                                  \
  XX(ERANGE, -20, "value out of range")                                        \
  XX(EDEVICE, -21, "device failed")                                            \
  XX(ENOSPC, -22, "no space left (device memory or spill directory)")          \
  XX(EIO, -23, "input/output error")                                           \
  XX(ELOST, -24, "data lost with a failed device")

typedef enum strata_status {
  STRATA_OK = 0,
#define STRATA__XX(name, value, msg) STRATA_##name = (value),
  STRATA_ERRNO_MAP(STRATA__XX)
#undef STRATA__XX
} strata_status_t;

/** Describe a status code in words ("invalid argument").
 *  @return a static string; "unknown status" for codes not in the table
 *  @own    static  @thread any */
STRATA_API const char *strata_strerror(int status);

/** Name a status code ("STRATA_EINVAL", "STRATA_OK").
 *  @return a static string; "STRATA_E?" for codes not in the table
 *  @own    static  @thread any */
STRATA_API const char *strata_err_name(int status);

/** The library version as "MAJOR.MINOR.PATCH".
 *  @own static  @thread any */
STRATA_API const char *strata_version_string(void);

/* {=== Logging and allocation (supplied by the embedder) ===} */

typedef enum strata_log_level {
  STRATA_LOG_ERROR = 0,
  STRATA_LOG_WARN,
  STRATA_LOG_INFO,
  STRATA_LOG_DEBUG,
  STRATA_LOG_TRACE
} strata_log_level_t;

/** Receives every message the library emits; the library itself never
 *  writes to stdout or stderr. `component` names the module ("loader",
 *  "graph", "cpu"...). `msg` is borrowed for the duration of the call.
 *  Called from any thread, possibly concurrently: the callback must be
 *  thread-safe. It must not call back into the runtime. */
typedef void (*strata_log_fn)(void *ud, strata_log_level_t level,
                              const char *component, const char *msg);

/** Allocator in the style of lua_Alloc: with nsize == 0 free ptr (of
 *  osize bytes) and return NULL; otherwise (re)allocate ptr from osize to
 *  nsize bytes (ptr is NULL and osize 0 for a fresh block) and return the
 *  block, or NULL on failure leaving ptr untouched. The runtime always
 *  passes the exact size it asked for. Called from any thread: it must be
 *  thread-safe. */
typedef void *(*strata_alloc_fn)(void *ud, void *ptr, size_t osize,
                                 size_t nsize);

/* {=== Devices ===} */

/** Closed set of device classes a task can run on. */
typedef enum strata_device_class {
  STRATA_CLASS_CPU = 0, /* host cores */
  STRATA_CLASS_HBM,     /* server GPU: HBM memory, ECC, strong FP64 */
  STRATA_CLASS_GDDR,    /* consumer GPU: GDDR memory, weak FP64 */
  STRATA_CLASS_COUNT
} strata_device_class_t;

/** "cpu", "hbm", "gddr"; "?" for values outside the enum.
 *  @own static  @thread any */
STRATA_API const char *strata_device_class_name(strata_device_class_t c);

/** How a task uses a buffer; RW == R | W. */
typedef enum strata_access_mode {
  STRATA_R = 1,
  STRATA_W = 2,
  STRATA_RW = 3
} strata_access_mode_t;

/* {=== Handles ===}
 *
 * Tasks, jobs, buffers and kernels are named by small value handles rather
 * than pointers. The id is opaque, but it carries:
 *   - a generation number, so using a handle after it was released or
 *     unregistered is detected and answered with STRATA_ENOENT instead of
 *     touching freed memory;
 *   - its kind, so a handle of one kind given where another belongs (a
 *     kernel's id cast to a buffer handle, or a number mixed up by a
 *     language binding) is refused with STRATA_EINVAL on every call,
 *     instead of acting on whatever object of the other kind shares its
 *     number.
 * A number the runtime never issued answers STRATA_ENOENT. A zero id is
 * never valid and stands for "none". Compare handles by id; do not do
 * arithmetic on them or rely on how the bits are laid out. */
typedef struct strata_task {
  uint64_t id;
} strata_task_t;
typedef struct strata_job {
  uint64_t id;
} strata_job_t;
typedef struct strata_buffer {
  uint64_t id;
} strata_buffer_t;
typedef struct strata_kernel {
  uint64_t id;
} strata_kernel_t;

#define STRATA_NONE                                                            \
  { 0 }

#ifdef __cplusplus
}
#endif

#endif /* STRATA_COMMON_H */
