/* SPDX-License-Identifier: MIT */
/* json.h: what the launcher's JSON writers share (strata-run's report,
 * strata-info --json): a string written as a JSON string literal.
 * @thread any (writes only to the stream it is given) */
#ifndef STRATA_RUN_JSON_H
#define STRATA_RUN_JSON_H

#include <stdio.h>

/** Write s to out between quotes, '"' and '\\' escaped, control
 *  characters as \u00XX; other bytes as they are (UTF-8 passes through).
 *  Errors are the stream's (ferror). */
void json_put_string(FILE *out, const char *s);

#endif /* STRATA_RUN_JSON_H */
