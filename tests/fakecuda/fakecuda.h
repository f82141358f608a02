/* SPDX-License-Identifier: MIT */
/* tests/fakecuda/fakecuda.h: the test controls of the fake CUDA runtime
 * (tests/fakecuda/fakecuda.c). The fake is a libcudart.so.13 that
 * simulates the GPUs named in the environment variable FAKECUDA_DEVICES,
 * read at the first CUDA call: a comma-separated list of "h100" (5120-bit
 * HBM3, 80 GB, ECC, compute capability 9.0) and "rtx4090" (384-bit GDDR6X,
 * 24 GB, no ECC, 8.9); unset or "none": the driver is missing
 * (cudaGetDeviceCount answers cudaErrorInsufficientDriver, as on a machine
 * with the toolkit and no GPU). Device i has the PCI bus id 0000:(10+i):00.0,
 * or the buses FAKECUDA_BUSES lists in hex ("3b,af"), to match the GPUs of
 * an hwloc XML machine.
 * Cards of the same preset reach each other peer to peer; an h100 and an
 * rtx4090 do not.
 *
 * Device memory is kept apart from host memory: a device pointer maps no
 * readable page in the process, so host code that dereferences one
 * faults, as it would on a real card. Streams run their operations in
 * order on a thread of their own. A test kernel's CUDA code enqueues host
 * work on its stream (cudaLaunchHostFunc) and reaches its buffers there
 * through fakecuda_host_ptr. */
#ifndef STRATA_FAKECUDA_H
#define STRATA_FAKECUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** What a device has done since the process started. */
typedef struct fakecuda_stats {
  uint64_t h2d, d2h, d2d;    /* copies by direction (d2d: within a card) */
  uint64_t peer_direct;      /* copies between cards with peer access on */
  uint64_t peer_staged;      /* between cards without it (through host) */
  uint64_t pageable;         /* copies whose host side was not pinned */
  uint64_t hostfns;          /* host functions run (test kernels) */
  uint64_t prefetches;       /* managed ranges moved to this card */
  uint64_t mallocs, frees;   /* cudaMalloc / cudaFree that succeeded */
  uint64_t pool_allocs;      /* of the mallocs, cudaMallocAsync\'s */
  uint64_t bytes_live;       /* device memory allocated now */
  uint32_t max_streams_busy; /* most streams of the card running an
                                operation at the same moment */
  uint32_t peer_enabled;     /* cards this one enabled peer access to */
} fakecuda_stats_t;

/* The controls below may be called from any thread; none blocks on the
 * fake cards' streams. */

/** Read FAKECUDA_DEVICES again and start over with fresh cards (counters
 *  and faults cleared), so that one test program can try several
 *  machines. Only between runtimes: nothing may be allocated and no stream
 *  may be left but the default ones (which it frees first).
 *  @return 0; -1 (memory or streams still live: the cards stay as they
 *          were, less their default streams) */
int fakecuda_reset(void);

/** Counters of device `dev`. @return 0; -1 (no such device) */
int fakecuda_stats(int dev, fakecuda_stats_t *out);

/** Make device `dev` misbehave:
 *  "copy_fail": its next `n` copies are refused when enqueued
 *               (cudaErrorUnknown, not sticky);
 *  "oom":       its next `n` cudaMalloc fail (cudaErrorMemoryAllocation);
 *  "memory_limit": the card really holds only `n` bytes (another process
 *               has the rest): cudaMalloc fails beyond (0: all of it);
 *  "sticky":    after `n` more operations run on its streams (copies and
 *               host functions), a sticky error (cudaErrorIllegalAddress),
 *               at once for n 0: every later call on the card returns it,
 *               queued operations are dropped, events report it;
 *  "op_delay_us": every operation on its streams takes `n` µs longer.
 *  @return 0; -1 (no such device or fault) */
int fakecuda_inject(int dev, const char *fault, long n);

/** The host-visible view of `p`: for device memory, the same bytes through
 *  the fake's private mapping; any other pointer is returned as is. Only
 *  for code the fake runs on a stream (test kernels' host functions).
 *  @return the view; NULL for a device pointer outside every block */
void *fakecuda_host_ptr(const void *p);

/** Where managed memory at `p` was last prefetched: a device ordinal, -1
 *  the host (never prefetched), -2 not managed memory. */
int fakecuda_managed_location(const void *p);

/* {=== The fake NVML (libnvidia-ml.so.1, fakenvml.c) ===} */

/** Change what NVML says of the card CUDA numbers `ordinal`: "lost"
 *  (value != 0: every query answers GPU_IS_LOST), "ecc_corrected",
 *  "ecc_uncorrected" (the volatile counts). Valid until the next
 *  nvmlInit_v2 after a full shutdown. @return 0; -1 (no such card or
 *  fault) */
int fakenvml_inject(int ordinal, const char *what, long value);

#ifdef __cplusplus
}
#endif

#endif /* STRATA_FAKECUDA_H */
