/* SPDX-License-Identifier: MIT */
/* runtime/hardware/peers.h: the machine-wide peer matrix. Every probed device lists
 * the PCI bus ids it can copy from directly (strata_backend_device_t.peers);
 * once every backend is loaded, the core matches those lists over all the
 * devices of all the backends: a direct path from device s to device d
 * exists where each lists the other. The copy engine (copy.c) and the
 * placement estimates (plan.c) read the matrix; nothing writes it after it
 * is built. */
#ifndef STRATA_PEERS_H
#define STRATA_PEERS_H

#include <stdbool.h>
#include <stddef.h>

struct strata_runtime;

typedef struct strata__peers {
  size_t n;   /* devices when it was built */
  bool *path; /* n * n, [dst * n + src]: a direct copy src -> dst */
  double *bw; /* n * n: its bytes/s; 0 unknown */
} strata__peers_t;

/** Build the matrix over rt's devices (after every backend is loaded);
 *  each path found, and each half path (one end lists the other, which
 *  does not list it back), is logged at INFO.
 *  @return 0; STRATA_ENOMEM
 *  @thread owner (creation) */
int strata__peers_build(struct strata_runtime *rt);
/** @thread owner (destruction) */
void strata__peers_free(struct strata_runtime *rt);

/** Can device src's memory be copied directly into device dst's?
 *  @thread any */
bool strata__peers_direct(const struct strata_runtime *rt, int dst, int src);
/** The bytes/s of that path: the smaller of the bandwidths the two ends
 *  list, else the slower of their host links; 0 when there is no path or
 *  nothing is known. @thread any */
double strata__peers_bandwidth(const struct strata_runtime *rt, int dst,
                               int src);
/** The best bandwidth of any path into dst (0: none or unknown), and
 *  whether it has one. @thread any */
bool strata__peers_best(const struct strata_runtime *rt, int dst, double *bw);

#endif /* STRATA_PEERS_H */
