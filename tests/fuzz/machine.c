/* SPDX-License-Identifier: MIT */
/* tests/fuzz/machine.c: libFuzzer harness of the sim backend's
 * machine-description loader (backends/sim/machine.c, compiled in). Each
 * input is written to a file of a private scratch directory and loaded:
 * the loader must either accept it, with every field of the result in
 * range, or reject it with STRATA_EINVAL and a message; in both cases
 * without a crash, a hang past the loader's own limits, or a byte left
 * allocated. Seeds: tests/fuzz/corpus/machine/ (the shipped machines and
 * the bad-description corpus of tests/machines/). */
#include "config.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../backends/sim/machine.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A C string field is terminated within its array. */
#define TERMINATED(field) (memchr((field), '\0', sizeof(field)) != NULL)

static void check_device(const sim_device_spec_t *d, size_t n) {
  FUZZ_CHECK(TERMINATED(d->name) && d->name[0], "device name");
  FUZZ_CHECK(TERMINATED(d->model), "device model");
  FUZZ_CHECK(d->device_class == STRATA_CLASS_CPU ||
                 d->device_class == STRATA_CLASS_HBM ||
                 d->device_class == STRATA_CLASS_GDDR,
             "class %d", (int)d->device_class);
  FUZZ_CHECK(d->workers >= 1, "workers %u", d->workers);
  /* Rates feed divisions in the time model: never NaN or negative. */
  const double rates[] = {d->mem_bandwidth, d->link_bandwidth,
                          d->link_latency,  d->fp64,
                          d->fp32,          d->peer_bandwidth};
  for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++)
    FUZZ_CHECK(!isnan(rates[i]) && rates[i] >= 0, "rate %zu is %g", i,
               rates[i]);
  FUZZ_CHECK(n >= 64 || d->peers >> n == 0, "peer bits beyond the devices");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_write(0, "machine.lua", data, size);
  fuzz_alloc_t a;
  fuzz_alloc_init(&a);
  sim_machine_t m;
  char err[512];
  memset(err, 'x', sizeof err);
  int rc = sim_machine_load(path, fuzz_alloc_fn, &a, &m, err, sizeof err);
  FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL, "unterminated message");
  if (rc == 0) {
    FUZZ_CHECK(m.ndevices >= 1 && m.ndevices <= SIM_MAX_DEVICES,
               "%zu devices", m.ndevices);
    FUZZ_CHECK(TERMINATED(m.name), "machine name");
    FUZZ_CHECK(!m.skip_kernels || m.modelled, "skip_kernels in real time");
    for (size_t i = 0; i < m.ndevices; i++)
      check_device(&m.devices[i], m.ndevices);
    sim_machine_free(&m, fuzz_alloc_fn, &a);
  } else {
    /* The allocator never fails and the file exists: only a bad
     * description can be the reason. */
    FUZZ_CHECK(rc == STRATA_EINVAL, "rc %d (%s)", rc, err);
    FUZZ_CHECK(err[0] != '\0', "rejected without a message");
  }
  fuzz_alloc_done(&a);
  return 0;
}
