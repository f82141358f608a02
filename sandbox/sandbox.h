/* SPDX-License-Identifier: MIT */
/* sandbox/sandbox.h: the one Lua 5.4 sandbox every script Strata runs
 * goes through: policies (runtime/policy/state.c), sim machine descriptions
 * (backends/sim/machine.c) and the launcher's job files. A noinst
 * convenience library linked into each of them: the core, a backend and a
 * tool each carry their own copy, so no backend reaches into libstrata.
 *
 * What a sandbox guarantees to the C code that drives it, whatever the
 * script does:
 *   - text chunks only (no bytecode), read from regular files only;
 *   - a memory cap on the state;
 *   - an instruction budget per call that the script cannot catch: once
 *     exceeded, every further VM instruction raises again, so pcall,
 *     xpcall and error handlers only delay the unwinding to C;
 *   - a wall-clock deadline per call, checked by the count hook, the
 *     allocator and every library function that does work in C (counted
 *     from the first check: a call that ends within a thousand
 *     instructions never reads the clock);
 *   - library functions whose work is not one instruction (string.rep,
 *     format, concat, table.move, sort, insert, unpack, the pattern
 *     functions...) charge their work to the budget and refuse results
 *     above a size limit; pattern matching is bounded by the steps it
 *     takes, not by the length of its subject;
 *   - no finalizers (__gc), which would run with the count hook off;
 *   - a panic handler that reports instead of aborting silently.
 *
 * Thread-safety: a sandbox is not thread-safe; its owner serialises every
 * call on it (lua_State rules). Different sandboxes are independent. */
#ifndef STRATA_SANDBOX_H
#define STRATA_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lua.h>
#include <strata/common.h>

typedef struct strata__sandbox strata__sandbox_t;

/* Defaults, taken for any limit left at 0. */
#define STRATA__SANDBOX_INSTRUCTIONS 200000u      /* VM instructions per call */
#define STRATA__SANDBOX_MEMORY ((size_t)16 << 20) /* bytes in the state */
#define STRATA__SANDBOX_DEADLINE_NS 100000000u    /* 100 ms per call */
#define STRATA__SANDBOX_STRING_MAX ((size_t)1 << 20) /* bytes, or items */

/** Limits of one sandbox; 0 in any field takes its default. */
typedef struct strata__sandbox_limits {
  uint64_t instructions; /* VM instructions (and work units) per call */
  size_t memory;         /* bytes the state may hold */
  uint64_t deadline_ns;  /* wall-clock time per call */
  size_t string_max;     /* longest string, or most items, a library
                            function may build or walk in one call */
} strata__sandbox_limits_t;

/** What the script finds in its global table. */
typedef enum strata__sandbox_env {
  /* Nothing at all: the owner fills the globals (a data file). */
  STRATA__SANDBOX_EMPTY = 0,
  /* base, table, string, math and utf8, without load, loadfile, dofile,
   * require, collectgarbage, string.dump, print and warn; setmetatable
   * refuses __gc; the bounded functions replace the unbounded ones. */
  STRATA__SANDBOX_LIBS
} strata__sandbox_env_t;

/** Why the last call failed, beyond an ordinary error. */
typedef enum strata__sandbox_trip {
  STRATA__SANDBOX_RAN = 0,          /* no limit was hit */
  STRATA__SANDBOX_INSTRUCTIONS_HIT, /* budget (instructions, work) */
  STRATA__SANDBOX_DEADLINE_HIT,     /* wall clock */
  STRATA__SANDBOX_MEMORY_HIT        /* the memory cap refused a request */
} strata__sandbox_trip_t;

/** Reports a panic (an error outside any protected call; never expected)
 *  before the sandbox recovers or the process ends. */
typedef void (*strata__sandbox_report_fn)(void *ud, const char *msg);

/** Create a sandbox whose state allocates through `alloc` (NULL: the C
 *  library) under `limits` (NULL: the defaults), named `name` in
 *  messages (copied; at most 63 bytes kept).
 *  @return 0; STRATA_ENOMEM (nothing created)
 *  @own *out is the caller's: strata__sandbox_free */
int strata__sandbox_new(strata_alloc_fn alloc, void *alloc_ud,
                        const strata__sandbox_limits_t *limits,
                        strata__sandbox_env_t env, const char *name,
                        strata__sandbox_report_fn report, void *report_ud,
                        strata__sandbox_t **out);

/** Close the state and free the sandbox. NULL is a no-op. No finalizer of
 *  the script runs (none can exist). */
void strata__sandbox_free(strata__sandbox_t *sb);

/** The state, for the owner to push values and read results. Everything
 *  that may raise (allocate, or touch a value the script made) must run
 *  inside strata__sandbox_call or strata__sandbox_cpcall. The bottom
 *  stack slot (index 1) is the sandbox's own: the owner never pops below
 *  the top it found. @own borrowed */
lua_State *strata__sandbox_state(strata__sandbox_t *sb);

/** Compile `len` bytes of source text (bytecode refused) as a function
 *  named `chunkname` (Lua's "@file" / "=name" convention), within the
 *  limits, and push it; on failure push the message instead. A message
 *  that does not name the chunk gets its name in front (a C stack overflow
 *  of a deeply nested file says which file).
 *  @return LUA_OK, or the Lua status of the failure */
int strata__sandbox_load(strata__sandbox_t *sb, const char *text, size_t len,
                         const char *chunkname);

/** Call the function below the `nargs` arguments on top of the stack with
 *  the limits armed afresh, and a traceback on error. Like lua_pcall: on
 *  success the results replace function and arguments; on failure one
 *  message does. A limit hit inside the call fails it, even when the
 *  script caught the error. Calls may nest (a C function of the owner
 *  calling back into Lua): only the outermost one arms the limits.
 *  @return LUA_OK, or a Lua error status */
int strata__sandbox_call(strata__sandbox_t *sb, int nargs, int nresults);

/** Run fn(L) with ud as its only argument (a light userdata at index 1)
 *  protected and within the limits: reading a script's answer, building
 *  views. Results as strata__sandbox_call. */
int strata__sandbox_cpcall(strata__sandbox_t *sb, lua_CFunction fn, void *ud,
                           int nresults);

/** Change the wall-clock limit of the calls that follow (0: the
 *  default): loading a script may take longer than one of its hooks. */
void strata__sandbox_set_deadline(strata__sandbox_t *sb, uint64_t ns);

/** Which limit ended the last call, if one did. */
strata__sandbox_trip_t strata__sandbox_tripped(const strata__sandbox_t *sb);

/** Charge `units` of work (about one VM instruction each) to the call
 *  running in L, and check its deadline; raises a Lua error when either
 *  is exceeded. For C functions the sandbox's scripts can call. A state
 *  that is not a sandbox's is charged nothing. */
void strata__sandbox_charge(lua_State *L, uint64_t units);

/** The string/items limit of the sandbox running L (for C functions that
 *  build results). */
size_t strata__sandbox_string_max(lua_State *L);

/** Bytes the state holds now. */
size_t strata__sandbox_memory_used(const strata__sandbox_t *sb);

/** The C library's realloc and free as a strata_alloc_fn (what a NULL
 *  allocator means here). @thread any */
void *strata__sandbox_libc_alloc(void *ud, void *ptr, size_t osize,
                                 size_t nsize);

/* {=== Reading a script or data file ===} */

/** Read the regular file `path` whole, at most `max` bytes, into a buffer
 *  allocated with `alloc` (NULL: the C library) of *len + 1 bytes, NUL
 *  terminated. Opens with O_NONBLOCK and refuses anything that is not a
 *  regular file (a FIFO, a device, a directory) without reading it. On
 *  failure writes "PATH: reason" into err (errlen bytes): "no such file",
 *  "permission denied", "is a directory", "not a regular file (a FIFO)",
 *  "larger than N bytes", the read error.
 *  @return 0; STRATA_ENOENT (missing), STRATA_EINVAL (not a regular file,
 *  too large), STRATA_EIO (cannot be opened or read), STRATA_ENOMEM
 *  @own *text is the caller's: free it with alloc, *len + 1 bytes */
int strata__read_text_file(const char *path, size_t max, strata_alloc_fn alloc,
                           void *alloc_ud, char **text, size_t *len, char *err,
                           size_t errlen);

/** What strata__read_text_file would say of path without reading it:
 *  opened without blocking, its kind and size checked, closed.
 *  @return 0 (a regular file of at most max bytes); the errors of
 *  strata__read_text_file but STRATA_ENOMEM @thread any */
int strata__check_text_file(const char *path, size_t max, char *err,
                            size_t errlen);

/** Free what strata__read_text_file returned. */
void strata__free_text_file(strata_alloc_fn alloc, void *alloc_ud, char *text,
                            size_t len);

#endif /* STRATA_SANDBOX_H */
