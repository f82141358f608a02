/* SPDX-License-Identifier: MIT */
#ifndef STRATA_SCHEMA_H
#define STRATA_SCHEMA_H
#endif
