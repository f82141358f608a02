/* SPDX-License-Identifier: MIT */
#include "config.h"
#include "schema.h"
