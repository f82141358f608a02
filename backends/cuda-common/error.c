/* SPDX-License-Identifier: MIT */
/* backends/cuda-common/error.c: CUDA errors become STRATA_E* codes here, and
 * only here; each is logged with CUDA's own name and string first. */
#include "scuda.h"

#include <stdarg.h>
#include <stdio.h>

void scuda_log(scuda_backend_t *b, strata_log_level_t level, const char *fmt,
               ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  b->core->log(b->core->core, level, "%s", msg);
}

/* Errors after which the card's context is unusable: every later call of
 * this process on it fails with the same error (CUDA's "sticky" errors). */
bool scuda_sticky(cudaError_t e) {
  switch (e) {
  case cudaErrorIllegalAddress:
  case cudaErrorLaunchTimeout:
  case cudaErrorLaunchFailure:
  case cudaErrorECCUncorrectable:
  case cudaErrorNvlinkUncorrectable:
  case cudaErrorHardwareStackError:
  case cudaErrorIllegalInstruction:
  case cudaErrorMisalignedAddress:
  case cudaErrorInvalidAddressSpace:
  case cudaErrorInvalidPc:
  case cudaErrorAssert:
  case cudaErrorContextIsDestroyed:
  case cudaErrorDevicesUnavailable:
  case cudaErrorContained: /* Hopper's contained ECC/NVLink error */
  case cudaErrorTensorMemoryLeak:
  case cudaErrorMpsClientTerminated:
    return true;
  default:
    return false;
  }
}

/* "what: cudaErrorName (its string)": every message of a CUDA error. */
static void describe(char *buf, size_t len, const char *what, cudaError_t e) {
  snprintf(buf, len, "%s: %s (%s)", what, cudaGetErrorName(e),
           cudaGetErrorString(e));
}

int scuda_status(scuda_backend_t *b, cudaError_t e, const char *what) {
  if (e == cudaSuccess)
    return STRATA_OK;
  int rc;
  switch (e) {
  case cudaErrorMemoryAllocation:
    rc = STRATA_ENOMEM;
    break;
  case cudaErrorInvalidValue:
  case cudaErrorInvalidDevice:
  case cudaErrorInvalidResourceHandle:
  case cudaErrorInvalidDevicePointer:
    rc = STRATA_EINVAL;
    break;
  case cudaErrorNotSupported:
    rc = STRATA_ENOTSUP;
    break;
  case cudaErrorInsufficientDriver:
  case cudaErrorNoDevice:
  case cudaErrorCudartUnloading:
    rc = STRATA_ENODEV;
    break;
  default:
    rc = scuda_sticky(e) ? STRATA_EDEVICE : STRATA_EBACKEND;
  }
  char why[256];
  describe(why, sizeof why, what, e);
  scuda_log(b, rc == STRATA_ENOMEM ? STRATA_LOG_DEBUG : STRATA_LOG_ERROR, "%s",
            why);
  return rc;
}

/* The device's failure, reported from a thread of its own: the core
 * waits there for the copies in flight on the card, which the lane that
 * found the error (or the core's thread in a copy or an allocation) may
 * still have to report. */
static void *report_main(void *arg) {
  scuda_device_t *d = arg;
  const strata_core_services_t *core = d->b->core;
  core->device_failed(core->core, d->handle, NULL, d->fail_why);
  return NULL;
}

void scuda_fail_device(scuda_device_t *d, strata_work_t *work, cudaError_t e,
                       const char *what) {
  const strata_core_services_t *core = d->b->core;
  bool was = atomic_exchange(&d->failed, true);
  if (work) {
    /* The core takes the work back (and fails the device the first
     * time): safe from a worker or a compute lane, which hold no copy. */
    char why[sizeof d->fail_why];
    describe(why, sizeof why, what, e);
    core->device_failed(core->core, d->handle, work, why);
    return;
  }
  if (was)
    return;
  describe(d->fail_why, sizeof d->fail_why, what, e);
  if (pthread_create(&d->reporter, NULL, report_main, d) == 0)
    atomic_store(&d->reporting, true);
  else
    report_main(d); /* no thread to be had: the core may wait here */
}

void scuda_fail_device_join(scuda_device_t *d) {
  if (atomic_exchange(&d->reporting, false))
    pthread_join(d->reporter, NULL);
}
