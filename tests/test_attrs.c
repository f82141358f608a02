/* SPDX-License-Identifier: MIT */
/* tests/test_attrs.c: task and job attributes (white-box): well-known keys
 * are parsed and checked, other keys kept as tags, failures leave the set
 * unchanged. */
#include "config.h"

#include "util.h"

#include <stdio.h>
#include <stdlib.h>

#include "attrs.h"

typedef struct fixture {
  test_alloc_t alloc;
  strata__allocator_t a;
  strata__attrs_t at;
} fixture_t;

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  test_alloc_init(&f->alloc);
  f->a = (strata__allocator_t){test_alloc_fn, &f->alloc};
  strata__attrs_init(&f->at);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  strata__attrs_free(&f->at, &f->a);
  test_alloc_assert_clean(&f->alloc);
  free(f);
  return 0;
}

static void test_attrs_well_known_keys(void **state) {
  fixture_t *f = *state;
  assert_true(f->at.flops < 0);
  assert_false(f->at.has_priority);
  assert_int_equal(strata__attrs_set(&f->at, &f->a, "name", "gemm(1,2)"), 0);
  assert_int_equal(strata__attrs_set(&f->at, &f->a, "tier", "train"), 0);
  assert_int_equal(strata__attrs_set(&f->at, &f->a, "tier", "validate"), 0);
  assert_int_equal(strata__attrs_set(&f->at, &f->a, "precision", "fp64"), 0);
  assert_int_equal(strata__attrs_set(&f->at, &f->a, "flops", "2.5e9"), 0);
  assert_int_equal(strata__attrs_set(&f->at, &f->a, "priority", "-4"), 0);
  assert_int_equal(strata__attrs_set(&f->at, &f->a, "owner", "ana"), 0);
  assert_string_equal(f->at.name, "gemm(1,2)");
  assert_string_equal(f->at.tier, "validate");
  assert_string_equal(f->at.precision, "fp64");
  assert_string_equal(f->at.owner, "ana");
  assert_true(f->at.flops == 2.5e9);
  assert_true(f->at.has_priority);
  assert_int_equal(f->at.priority, -4);
  assert_int_equal(f->at.ntags, 0);
}

static void test_attrs_bad_values_rejected(void **state) {
  fixture_t *f = *state;
  const char *bad_flops[] = {"", "lots", "-1", "nan", "inf", "1e999", "3x"};
  for (size_t i = 0; i < sizeof bad_flops / sizeof *bad_flops; i++)
    assert_int_equal(strata__attrs_set(&f->at, &f->a, "flops", bad_flops[i]),
                     STRATA_EINVAL);
  const char *bad_prio[] = {"", "high", "1.5", "99999999999", "7 "};
  for (size_t i = 0; i < sizeof bad_prio / sizeof *bad_prio; i++)
    assert_int_equal(strata__attrs_set(&f->at, &f->a, "priority", bad_prio[i]),
                     STRATA_EINVAL);
  assert_int_equal(strata__attrs_set(&f->at, &f->a, "", "x"), STRATA_EINVAL);
  assert_int_equal(strata__attrs_set(&f->at, &f->a, NULL, "x"), STRATA_EINVAL);
  assert_int_equal(strata__attrs_set(&f->at, &f->a, "k", NULL), STRATA_EINVAL);
  assert_true(f->at.flops < 0);
  assert_false(f->at.has_priority);
}

static void test_attrs_tags(void **state) {
  fixture_t *f = *state;
  char key[16];
  for (int i = 0; i < 20; i++) {
    snprintf(key, sizeof key, "tag%d", i);
    assert_int_equal(strata__attrs_set(&f->at, &f->a, key, "v"), 0);
  }
  assert_int_equal(strata__attrs_set(&f->at, &f->a, "tag3", "replaced"), 0);
  assert_int_equal(f->at.ntags, 20);
  assert_string_equal(strata__attrs_tag(&f->at, "tag3"), "replaced");
  assert_null(strata__attrs_tag(&f->at, "missing"));
}

static void test_attrs_numbers(void **state) {
  fixture_t *f = *state;
  assert_int_equal(strata__attrs_set_number(&f->at, &f->a, "flops", 3e9), 0);
  assert_true(f->at.flops == 3e9);
  assert_int_equal(strata__attrs_set_number(&f->at, &f->a, "priority", -2), 0);
  assert_int_equal(f->at.priority, -2);
  assert_true(f->at.has_priority);
  /* A number tag keeps its exact text beside the number. */
  assert_int_equal(strata__attrs_set_number(&f->at, &f->a, "lr", 0.1), 0);
  assert_int_equal(f->at.ntags, 1);
  assert_true(f->at.tags[0].is_number);
  assert_true(f->at.tags[0].number == 0.1);
  assert_true(strtod(strata__attrs_tag(&f->at, "lr"), NULL) == 0.1);
  /* Set again as a string: a string again. */
  assert_int_equal(strata__attrs_set(&f->at, &f->a, "lr", "fast"), 0);
  assert_false(f->at.tags[0].is_number);
  assert_string_equal(strata__attrs_tag(&f->at, "lr"), "fast");
  /* Refused, and nothing changes. */
  const char *keys[] = {"name", "tier", "precision", "owner", ""};
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
    assert_int_equal(strata__attrs_set_number(&f->at, &f->a, keys[i], 1),
                     STRATA_EINVAL);
  assert_int_equal(strata__attrs_set_number(&f->at, &f->a, NULL, 1),
                   STRATA_EINVAL);
  assert_int_equal(strata__attrs_set_number(&f->at, &f->a, "flops", -1),
                   STRATA_EINVAL);
  assert_int_equal(strata__attrs_set_number(&f->at, &f->a, "priority", 2.5),
                   STRATA_EINVAL);
  assert_int_equal(strata__attrs_set_number(&f->at, &f->a, "priority", 3e9),
                   STRATA_EINVAL);
  assert_int_equal(strata__attrs_set_number(&f->at, &f->a, "x", 1.0 / 0.0),
                   STRATA_EINVAL);
  assert_true(f->at.flops == 3e9);
  assert_int_equal(f->at.priority, -2);
  assert_null(f->at.name);
  assert_int_equal(f->at.ntags, 1);
  /* A failed allocation leaves the tags as they were. */
  f->alloc.fail_after = 1;
  assert_int_equal(strata__attrs_set_number(&f->at, &f->a, "batch", 8),
                   STRATA_ENOMEM);
  assert_int_equal(f->at.ntags, 1);
}

static void test_attrs_allocation_failures(void **state) {
  fixture_t *f = *state;
  assert_int_equal(strata__attrs_set(&f->at, &f->a, "name", "old"), 0);
  for (long k = 1; k <= 3; k++) {
    f->alloc.fail_after = k;
    int rc = strata__attrs_set(&f->at, &f->a, "name", "new");
    int rc2 = strata__attrs_set(&f->at, &f->a, "newtag", "v");
    f->alloc.fail_after = -1;
    assert_true(rc == 0 || rc == STRATA_ENOMEM);
    assert_true(rc2 == 0 || rc2 == STRATA_ENOMEM);
    /* A failed set leaves the previous value. */
    assert_string_equal(f->at.name, rc ? "old" : "new");
    if (rc2 == 0)
      assert_string_equal(strata__attrs_tag(&f->at, "newtag"), "v");
    strata__attrs_free(&f->at, &f->a);
    assert_int_equal(strata__attrs_set(&f->at, &f->a, "name", "old"), 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_attrs_well_known_keys, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_attrs_bad_values_rejected, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_attrs_tags, setup, teardown),
      cmocka_unit_test_setup_teardown(test_attrs_numbers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_attrs_allocation_failures, setup,
                                      teardown),
  };
  return cmocka_run_group_tests_name("attrs", tests, NULL, NULL);
}
