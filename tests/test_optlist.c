/* SPDX-License-Identifier: MIT */
/* tests/test_optlist.c: the one parser of option strings
 * (sandbox/optlist.h): lists, maps and sections split as documented,
 * every refusal with its exact message (option, position, the part
 * quoted), search paths that skip empty entries, and the lookups the
 * runtime and the backends use. */
#include "config.h"

#include "optlist.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <strata.h>

static const strata__optfmt_t LIST = {.option = "backends",
                                      .kind = STRATA__OPT_LIST};
static const strata__optfmt_t PLUS = {
    .option = "classes", .kind = STRATA__OPT_LIST, .sep = '+'};
static const strata__optfmt_t PATH = {.option = "backend_path",
                                      .kind = STRATA__OPT_LIST,
                                      .sep = ':',
                                      .path = true};
static const strata__optfmt_t MAP = {.option = "opts", .kind = STRATA__OPT_MAP};
static const strata__optfmt_t SECTIONS = {.option = "backend_options",
                                          .kind = STRATA__OPT_SECTIONS};

/* text is refused with exactly `message`. */
static void refused(const strata__optfmt_t *fmt, const char *text,
                    const char *message) {
  char err[256];
  int rc = strata__opt_check(fmt, strata__opt_span(text), err, sizeof err);
  if (rc != STRATA_EINVAL || strcmp(err, message))
    fail_msg("'%s': got %d '%s', expected '%s'", text, rc, err, message);
}

static void accepted(const strata__optfmt_t *fmt, const char *text) {
  char err[256];
  int rc = strata__opt_check(fmt, strata__opt_span(text), err, sizeof err);
  if (rc)
    fail_msg("'%s' refused: %s", text, err);
}

/* The items of text joined as "key|key" (maps: "key=value"). */
static const char *items(const strata__optfmt_t *fmt, const char *text) {
  static char out[256];
  size_t o = 0;
  strata__optitem_t it;
  out[0] = '\0';
  for (size_t c = 0; strata__opt_next(fmt, strata__opt_span(text), &c, &it);) {
    o += (size_t)snprintf(out + o, sizeof out - o, "%s%.*s", o ? "|" : "",
                          (int)it.key.len, it.key.s);
    if (it.value.s)
      o += (size_t)snprintf(out + o, sizeof out - o, "=%.*s", (int)it.value.len,
                            it.value.s);
  }
  return out;
}

/* {=== Lists ===} */

static void test_optlist_list_split(void **state) {
  (void)state;
  accepted(&LIST, "cpu,sim");
  accepted(&LIST, "");
  accepted(&LIST, NULL);
  accepted(&LIST, "cuda-hbm");
  assert_string_equal(items(&LIST, "cpu,sim,fake"), "cpu|sim|fake");
  assert_string_equal(items(&LIST, ""), "");
  assert_string_equal(items(&PLUS, "hbm+gddr"), "hbm|gddr");
  /* Unchecked splitting keeps empty items: the check is what refuses. */
  assert_string_equal(items(&LIST, "a,,b"), "a||b");
  /* '=' and ':' mean nothing in a list. */
  assert_string_equal(items(&LIST, "a=1:2"), "a=1:2");
}

static void test_optlist_list_refusals(void **state) {
  (void)state;
  refused(&LIST, ",cpu", "backends: position 1: empty item (a stray ',')");
  refused(&LIST, "cpu,,sim", "backends: position 5: empty item (a stray ',')");
  refused(&LIST, "cpu,", "backends: position 4: empty item (a stray ',')");
  refused(&LIST, ",", "backends: position 1: empty item (a stray ',')");
  refused(&PLUS, "hbm+", "classes: position 4: empty item (a stray '+')");
  refused(&LIST, "cpu, sim",
          "backends: position 5: item ' sim' holds a space (nothing is "
          "trimmed)");
  refused(&LIST, "cpu ",
          "backends: position 4: item 'cpu ' holds a space (nothing is "
          "trimmed)");
  refused(&LIST, "cpu\t",
          "backends: position 4: item 'cpu?' holds a control character "
          "(0x09)");
  refused(&LIST, "cpu,sim,cpu",
          "backends: position 9: item 'cpu' is listed twice (first at "
          "position 1)");
  refused(&PLUS, "hbm+gddr+hbm",
          "classes: position 10: item 'hbm' is listed twice (first at "
          "position 1)");
}

/* A search path skips empty entries, takes repeats and spaces, and still
 * refuses control characters. */
static void test_optlist_path(void **state) {
  (void)state;
  accepted(&PATH, "");
  accepted(&PATH, ":");
  accepted(&PATH, "/a::/b:");
  accepted(&PATH, "/a:/a");
  accepted(&PATH, "/my plugins:/b");
  assert_string_equal(items(&PATH, ":/a::/my b:"), "/a|/my b");
  assert_string_equal(items(&PATH, "::"), "");
  refused(&PATH, "/a:/b\n",
          "backend_path: position 6: item '/b?' holds a control character "
          "(0x0a)");
}

/* {=== Maps ===} */

static void test_optlist_map_split(void **state) {
  (void)state;
  accepted(&MAP, "workers=2,label=x");
  accepted(&MAP, "classes="); /* an empty value is a value */
  accepted(&MAP, "machine=/a=b:c.lua");
  assert_string_equal(items(&MAP, "a=1,b=,c=x=y:z"), "a=1|b=|c=x=y:z");
  assert_string_equal(items(&MAP, "novalue"), "novalue");
  strata__optitem_t it;
  assert_true(strata__opt_find(&MAP, strata__opt_span("a=1,bb=22"), "bb", &it));
  assert_true(strata__opt_is(it.value, "22"));
  assert_int_equal(it.key.pos, 5);
  assert_int_equal(it.value.pos, 8);
  assert_false(strata__opt_find(&MAP, strata__opt_span("a=1,bb=22"), "b", &it));
  assert_false(strata__opt_find(&MAP, strata__opt_span(NULL), "a", &it));
}

static void test_optlist_map_refusals(void **state) {
  (void)state;
  refused(&MAP, "workers",
          "opts: position 1: 'workers' has no '=' (expected key=value)");
  refused(&MAP, "a=1,workers",
          "opts: position 5: 'workers' has no '=' (expected key=value)");
  refused(&MAP, "=2", "opts: position 1: '=2' has an empty key");
  refused(&MAP, "a=1,,b=2", "opts: position 5: empty item (a stray ',')");
  refused(&MAP, "a=1,", "opts: position 4: empty item (a stray ',')");
  refused(&MAP, " a=1",
          "opts: position 1: key ' a' holds a space (nothing is trimmed)");
  refused(&MAP, "a\x01=1",
          "opts: position 2: key 'a?' holds a control character (0x01)");
  refused(&MAP, "workers=1,x=2,workers=3",
          "opts: position 15: key 'workers' is set twice (first at "
          "position 1)");
}

/* {=== Sections ===} */

static void test_optlist_sections_split(void **state) {
  (void)state;
  const char *s = "fake:workers=3;cpu:workers=2,label=a b";
  accepted(&SECTIONS, s);
  accepted(&SECTIONS, "");
  accepted(&SECTIONS, "sim:machine=/x/a:b.lua");
  assert_string_equal(items(&SECTIONS, s),
                      "fake=workers=3|cpu=workers=2,label=a b");
  strata__optitem_t it;
  assert_true(strata__opt_find(&SECTIONS, strata__opt_span(s), "cpu", &it));
  assert_int_equal(it.value.pos, 20);
  /* The settings are a map whose positions are those of the whole. */
  strata__optitem_t kv;
  assert_true(strata__opt_find(&MAP, it.value, "label", &kv));
  assert_true(strata__opt_is(kv.value, "a b"));
  assert_int_equal(kv.key.pos, 30);
  assert_false(strata__opt_find(&SECTIONS, strata__opt_span(s), "cp", &it));
}

static void test_optlist_sections_refusals(void **state) {
  (void)state;
  refused(&SECTIONS, "cpuworkers=2",
          "backend_options: position 1: 'cpuworkers=2' has no ':' (expected "
          "name:key=value,key=value)");
  refused(&SECTIONS, ":workers=2",
          "backend_options: position 1: ':workers=2' has an empty name");
  refused(&SECTIONS, "sim:",
          "backend_options: position 1: 'sim:' has no settings after ':'");
  refused(&SECTIONS, "cpu:workers=2;",
          "backend_options: position 14: empty item (a stray ';')");
  refused(&SECTIONS, ";cpu:workers=2",
          "backend_options: position 1: empty item (a stray ';')");
  refused(&SECTIONS, "cpu:workers=2;;sim:time=real",
          "backend_options: position 15: empty item (a stray ';')");
  refused(&SECTIONS, "c pu:workers=2",
          "backend_options: position 2: name 'c pu' holds a space (nothing "
          "is trimmed)");
  refused(&SECTIONS, "cpu:workers=2;sim:time=real;cpu:workers=3",
          "backend_options: position 29: section 'cpu' appears twice (first "
          "at position 1)");
  /* Errors in a section's settings: positions in the whole string. */
  refused(&SECTIONS, "cpu:workers=2;sim:machine",
          "backend_options: position 19: 'machine' has no '=' (expected "
          "key=value)");
  refused(&SECTIONS, "sim:time=real,=x",
          "backend_options: position 15: '=x' has an empty key");
  refused(&SECTIONS, "sim:time=real,time=modelled",
          "backend_options: position 15: key 'time' is set twice (first at "
          "position 5)");
  refused(&SECTIONS, "sim:time=real,",
          "backend_options: position 14: empty item (a stray ',')");
  refused(&SECTIONS, "sim:,time=real",
          "backend_options: position 5: empty item (a stray ',')");
}

/* {=== Messages ===} */

static void test_optlist_messages(void **state) {
  (void)state;
  char q[64];
  const char *long_item = "a-very-long-backend-name-that-goes-on-and-on-and-on";
  assert_string_equal(
      strata__opt_quote(strata__opt_span(long_item), q, sizeof q),
      "'a-very-long-backend-name-that-goes-on-an...'");
  assert_string_equal(strata__opt_quote(strata__opt_span("a\xff"), q, sizeof q),
                      "'a?'");
  char tiny[4];
  assert_string_equal(
      strata__opt_quote(strata__opt_span("abcdef"), tiny, sizeof tiny), "'ab");
  /* No room for a message, or no buffer at all: the answer is the same. */
  assert_int_equal(strata__opt_check(&LIST, strata__opt_span(","), NULL, 0),
                   STRATA_EINVAL);
  char small[8];
  assert_int_equal(
      strata__opt_check(&LIST, strata__opt_span(","), small, sizeof small),
      STRATA_EINVAL);
  assert_string_equal(small, "backend");
  /* A successful check clears the buffer. */
  char err[64] = "stale";
  assert_int_equal(
      strata__opt_check(&LIST, strata__opt_span("a"), err, sizeof err), 0);
  assert_string_equal(err, "");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_optlist_list_split),
      cmocka_unit_test(test_optlist_list_refusals),
      cmocka_unit_test(test_optlist_path),
      cmocka_unit_test(test_optlist_map_split),
      cmocka_unit_test(test_optlist_map_refusals),
      cmocka_unit_test(test_optlist_sections_split),
      cmocka_unit_test(test_optlist_sections_refusals),
      cmocka_unit_test(test_optlist_messages),
  };
  return cmocka_run_group_tests_name("optlist", tests, NULL, NULL);
}
