/* SPDX-License-Identifier: MIT */
/* strata/kernel_library.h: the ABI of a kernel library, a libtool module
 * that hands a program (strata-run, or any host application) a table of
 * kernels it can register with a runtime and call by name from a job
 * file, without being rebuilt.
 *
 * A library exports one symbol, strata_kernel_library_v1, a function
 * returning its table. Each entry names a kernel ("gemm"), the buffers it
 * takes and how it uses each (one letter per buffer: 'r', 'w' or 'x' for
 * read-write; "*" for any number of buffers read), its by-value arguments
 * (passed to the kernel as an array of doubles, in the order listed, the
 * defaults filled in by the caller), the element types it has code for,
 * and its code per element type and device kind. Two functions per entry
 * tell the caller, before anything runs, whether a call is well formed
 * (the buffer sizes agree with the arguments) and how many floating-point
 * operations it does (what the performance models and reports use).
 *
 * The kernels themselves check the argument block and buffer sizes again
 * and return STRATA_EINVAL on a mismatch: a table is data, and a caller
 * that skipped `check` must not make a kernel read out of bounds.
 *
 * Registered with a runtime, an entry becomes one kernel per element type,
 * named "NAME.TYPE" ("gemm.double", "gemm.float"; an untyped entry keeps
 * its name), with the CPU code and, where the library has it, CUDA code.
 * The type of a call is that of its buffers, which must all hold the same
 * one (but for a kernel flagged STRATA_LIBRARY_CONVERTS).
 *
 * Thread-safety: the table is immutable and lives as long as the module
 * is loaded; check and flops may be called from any thread. */
#ifndef STRATA_KERNEL_LIBRARY_H
#define STRATA_KERNEL_LIBRARY_H

#include <stddef.h>
#include <stdint.h>

#include <strata/kernel.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The version of this header's structs; a library built for another one
 *  is refused. */
#define STRATA_KERNEL_LIBRARY_ABI 1

/** Element types of buffers. */
typedef enum strata_elem {
  STRATA_ELEM_NONE = 0, /* untyped: the kernel reads bytes, or nothing */
  STRATA_ELEM_FLOAT,    /* IEEE binary32 */
  STRATA_ELEM_DOUBLE,   /* IEEE binary64 */
  STRATA_ELEM_COUNT
} strata_elem_t;

/** One by-value argument: its name in job files, and its value when a call
 *  leaves it out (required ones have none). */
typedef struct strata_library_arg {
  const char *name;
  double fallback;
  int required;
} strata_library_arg_t;

/** Whether a call is well formed: `args` has one double per argument (the
 *  defaults filled in), `sizes` the byte size of each buffer. Writes the
 *  reason ("C holds 100 elements, m*n is 128") into err on failure.
 *  @return 0, or STRATA_EINVAL */
typedef int (*strata_library_check_fn)(const double *args, uint32_t nbuffers,
                                       const size_t *sizes, strata_elem_t type,
                                       char *err, size_t errlen);

/** Floating-point operations of a well-formed call. */
typedef double (*strata_library_flops_fn)(const double *args, uint32_t nbuffers,
                                          const size_t *sizes,
                                          strata_elem_t type);

typedef struct strata_library_kernel {
  const char *name;           /* unique in the library: "gemm" */
  const char *summary;        /* one line: "C = alpha op(A) op(B) + beta C" */
  const char *const *buffers; /* their names, NULL-terminated: "C", "A" */
  const char *modes;          /* 'r', 'w', 'x' per buffer; "*": any number
                                 of buffers, each read */
  const strata_library_arg_t *args; /* nargs of them */
  uint32_t nargs;
  uint32_t types; /* bit (1u << strata_elem_t) per type it has code for */
  strata_kernel_fn cpu[STRATA_ELEM_COUNT];  /* by type; NULL: none */
  strata_kernel_fn cuda[STRATA_ELEM_COUNT]; /* by type; NULL: none */
  strata_library_check_fn check;            /* NULL: any call is fine */
  strata_library_flops_fn flops;            /* NULL: unknown */
  uint32_t flags;                           /* STRATA_LIBRARY_* */
} strata_library_kernel_t;

/** flags: the kernel converts between element types: buffer 1 holds the
 *  other type than buffer 0 (float and double), and the code is picked
 *  by buffer 0's type ("convert.double" reads floats). */
#define STRATA_LIBRARY_CONVERTS 1u

typedef struct strata_kernel_library {
  uint32_t abi;         /* STRATA_KERNEL_LIBRARY_ABI */
  uint32_t struct_size; /* sizeof(strata_kernel_library_t) */
  const char *name;     /* "strata-kernels" */
  const char *version;  /* free text */
  const strata_library_kernel_t *kernels;
  uint32_t nkernels;
} strata_kernel_library_t;

/** The symbol a library exports. @return its table, never NULL */
typedef const strata_kernel_library_t *(*strata_kernel_library_fn)(void);
#define STRATA_KERNEL_LIBRARY_SYMBOL "strata_kernel_library_v1"

#ifdef __cplusplus
}
#endif

#endif /* STRATA_KERNEL_LIBRARY_H */
