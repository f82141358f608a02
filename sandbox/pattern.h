/* SPDX-License-Identifier: MIT */
/* sandbox/pattern.h: string.find, match, gmatch and gsub with Lua 5.4's
 * pattern semantics, whose every step is charged to the sandbox's budget,
 * so that a backtracking pattern on a short subject ends with a budget
 * error instead of running for minutes inside one C call.
 *
 * Same results and the same error messages as Lua 5.4's string library
 * (malformed patterns, captures, replacement strings, arguments); the
 * differences are only the limits:
 *   - every matcher step (an item tried against a character, a
 *     backtrack, a byte scanned by %b, a back-reference or a plain find)
 *     is one unit, charged through strata__sandbox_charge every 256 units
 *     and when the call ends, which raises once the budget or the deadline
 *     of the running call is exceeded;
 *   - results are charged at one unit per 64 bytes (captures pushed,
 *     gsub's output);
 *   - gsub refuses to build a result above strata__sandbox_string_max
 *     bytes: "result of string.gsub larger than N bytes";
 *   - recursion is Lua's: 200 nested choice points or captures raise
 *     "pattern too complex"; nothing else recurses.
 *
 * Thread-safety: as the lua_State they run in. */
#ifndef STRATA_PATTERN_H
#define STRATA_PATTERN_H

#include <lua.h>

/** Replace the fields find, match, gmatch and gsub of the table on top of
 *  the stack (the string library's table, which strings' metatable
 *  __index is, so ("x"):find reaches them too) with the bounded
 *  functions. The stack is left as it was.
 *  @return nothing; may raise a memory error (call it protected)
 *  @thread the state's owner */
void strata__pattern_open(lua_State *L);

#endif /* STRATA_PATTERN_H */
