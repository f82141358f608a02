/* SPDX-License-Identifier: MIT */
/* runtime/core/error.c: status code names and messages, generated from the one
 * table in strata/common.h, plus the other static name tables. */
#include "config.h"

#include "internal.h"

const char *strata_strerror(int status) {
  switch (status) {
  case STRATA_OK:
    return "success";
#define XX(name, value, msg)                                                   \
  case STRATA_##name:                                                          \
    return msg;
    STRATA_ERRNO_MAP(XX)
#undef XX
  }
  return "unknown status";
}

const char *strata_err_name(int status) {
  switch (status) {
  case STRATA_OK:
    return "STRATA_OK";
#define XX(name, value, msg)                                                   \
  case STRATA_##name:                                                          \
    return "STRATA_" #name;
    STRATA_ERRNO_MAP(XX)
#undef XX
  }
  return "STRATA_E?";
}

const char *strata_version_string(void) { return PACKAGE_VERSION; }

const char *strata_device_class_name(strata_device_class_t c) {
  switch (c) {
  case STRATA_CLASS_CPU:
    return "cpu";
  case STRATA_CLASS_HBM:
    return "hbm";
  case STRATA_CLASS_GDDR:
    return "gddr";
  case STRATA_CLASS_COUNT:
    break;
  }
  return "?";
}
