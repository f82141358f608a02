/* SPDX-License-Identifier: MIT */
/* tests/test_handle.c: generational handle tables (white-box): ids stay
 * unique, released ids never resolve again, an id of one table's kind never
 * resolves in another's (and says so), lookups run concurrently with adds
 * and removes. */
#include "config.h"

#include "util.h"

#include <stdlib.h>

#include "handle.h"

typedef struct fixture {
  test_alloc_t alloc;
  strata__allocator_t a;
  strata__htable_t t;
} fixture_t;

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  test_alloc_init(&f->alloc);
  f->a = (strata__allocator_t){test_alloc_fn, &f->alloc};
  strata__htable_init(&f->t, STRATA__HKIND_BUFFER);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  strata__htable_destroy(&f->t, &f->a);
  test_alloc_assert_clean(&f->alloc);
  free(f);
  return 0;
}

static void test_handle_add_get_remove(void **state) {
  fixture_t *f = *state;
  int x, y;
  uint64_t a, b;
  assert_int_equal(strata__htable_add(&f->t, &f->a, &x, &a), 0);
  assert_int_equal(strata__htable_add(&f->t, &f->a, &y, &b), 0);
  assert_int_not_equal(a, 0);
  assert_int_not_equal(a, b);
  assert_ptr_equal(strata__htable_get(&f->t, a), &x);
  assert_ptr_equal(strata__htable_get(&f->t, b), &y);
  assert_ptr_equal(strata__htable_remove(&f->t, a), &x);
  assert_null(strata__htable_get(&f->t, a));
  assert_null(strata__htable_remove(&f->t, a));
  /* The slot is reused under a new generation: the old id stays dead. */
  uint64_t c;
  assert_int_equal(strata__htable_add(&f->t, &f->a, &x, &c), 0);
  assert_int_equal((uint32_t)c, (uint32_t)a);
  assert_int_not_equal(c, a);
  assert_null(strata__htable_get(&f->t, a));
  assert_ptr_equal(strata__htable_get(&f->t, c), &x);
  assert_null(strata__htable_get(&f->t, 0));
  assert_null(strata__htable_get(&f->t, 0xffffffffffffffffull));
  assert_null(strata__htable_get(&f->t, (1ull << 32) | 999999));
  strata__htable_remove(&f->t, b);
  strata__htable_remove(&f->t, c);
}

static void count(uint64_t id, void *obj, void *ud) {
  (void)id, (void)obj;
  (*(int *)ud)++;
}

static void test_handle_many_across_chunks(void **state) {
  fixture_t *f = *state;
  enum { N = 10000 };
  uint64_t *ids = malloc(N * sizeof *ids);
  int objs[N];
  for (int i = 0; i < N; i++)
    assert_int_equal(strata__htable_add(&f->t, &f->a, &objs[i], &ids[i]), 0);
  for (int i = 0; i < N; i++)
    assert_ptr_equal(strata__htable_get(&f->t, ids[i]), &objs[i]);
  int n = 0;
  strata__htable_foreach(&f->t, count, &n);
  assert_int_equal(n, N);
  for (int i = 0; i < N; i += 2)
    strata__htable_remove(&f->t, ids[i]);
  n = 0;
  strata__htable_foreach(&f->t, count, &n);
  assert_int_equal(n, N / 2);
  for (int i = 1; i < N; i += 2)
    assert_ptr_equal(strata__htable_remove(&f->t, ids[i]), &objs[i]);
  free(ids);
}

static void test_handle_allocation_failure(void **state) {
  fixture_t *f = *state;
  int x;
  uint64_t id = 77;
  f->alloc.fail_after = 1;
  assert_int_equal(strata__htable_add(&f->t, &f->a, &x, &id), STRATA_ENOMEM);
  assert_int_equal(id, 77);
  assert_int_equal(strata__htable_add(&f->t, &f->a, &x, &id), 0);
  strata__htable_remove(&f->t, id);
}

static void test_handle_kinds_never_cross(void **state) {
  fixture_t *f = *state;
  /* Two tables of different kinds hand out the same slot first: the ids
   * still differ, each resolves only in its own table, and a lookup in the
   * wrong one is told apart from a released handle. */
  strata__htable_t kernels;
  strata__htable_init(&kernels, STRATA__HKIND_KERNEL);
  int buf, ker;
  uint64_t b, k;
  assert_int_equal(strata__htable_add(&f->t, &f->a, &buf, &b), 0);
  assert_int_equal(strata__htable_add(&kernels, &f->a, &ker, &k), 0);
  assert_int_not_equal(b, k);
  assert_int_equal(b & STRATA__HSLOT_MASK, k & STRATA__HSLOT_MASK);
  assert_ptr_equal(strata__htable_get(&f->t, b), &buf);
  assert_ptr_equal(strata__htable_get(&kernels, k), &ker);
  assert_null(strata__htable_get(&f->t, k));
  assert_null(strata__htable_get(&kernels, b));
  assert_int_equal(strata__htable_miss(&f->t, k), STRATA_EINVAL);
  assert_int_equal(strata__htable_miss(&kernels, b), STRATA_EINVAL);
  /* Removing or retiring through the wrong table touches nothing. */
  assert_null(strata__htable_remove(&f->t, k));
  assert_null(strata__htable_retire(&f->t, k));
  assert_ptr_equal(strata__htable_get(&kernels, k), &ker);
  /* Released, zero, and numbers of no kind: ENOENT. */
  assert_ptr_equal(strata__htable_remove(&f->t, b), &buf);
  assert_int_equal(strata__htable_miss(&f->t, b), STRATA_ENOENT);
  assert_int_equal(strata__htable_miss(&f->t, 0), STRATA_ENOENT);
  assert_int_equal(strata__htable_miss(&f->t, 42), STRATA_ENOENT);
  assert_int_equal(strata__htable_miss(&f->t, 0xf0000001u), STRATA_ENOENT);
  /* Sticky slots keep their kind across lives. */
  void *o = strata__htable_retire(&kernels, k);
  assert_ptr_equal(o, &ker);
  uint64_t k2 = strata__htable_readd(&kernels, (uint32_t)k, &ker);
  assert_int_not_equal(k2, k);
  assert_int_equal((uint32_t)k2 >> STRATA__HKIND_SHIFT, STRATA__HKIND_KERNEL);
  assert_ptr_equal(strata__htable_get(&kernels, k2), &ker);
  assert_null(strata__htable_get(&kernels, k));
  assert_ptr_equal(strata__htable_retire(&kernels, k2), &ker);
  strata__htable_release_slot(&kernels, (uint32_t)k2);
  strata__htable_destroy(&kernels, &f->a);
}

typedef struct churn {
  fixture_t *f;
  uint64_t *shared_ids;
  int n;
} churn_t;

static void *churn_thread(void *p) {
  churn_t *c = p;
  int obj;
  for (int i = 0; i < c->n; i++) {
    uint64_t id;
    if (strata__htable_add(&c->f->t, &c->f->a, &obj, &id))
      return (void *)1;
    if (strata__htable_get(&c->f->t, id) != &obj)
      return (void *)2;
    /* Ids of the other threads' live objects resolve to their objects or
     * to nothing, never to ours. */
    for (int k = 0; k < 4; k++)
      if (strata__htable_get(&c->f->t, c->shared_ids[(i + k) % 64]) == &obj)
        return (void *)3;
    c->shared_ids[i % 64] = id;
    if (strata__htable_remove(&c->f->t, id) != &obj)
      return (void *)4;
  }
  return NULL;
}

static void test_handle_concurrent_churn(void **state) {
  fixture_t *f = *state;
  uint64_t ids[4][64] = {{0}};
  pthread_t th[4];
  churn_t c[4];
  for (int i = 0; i < 4; i++) {
    c[i] = (churn_t){f, ids[(i + 1) % 4], 20000};
    assert_int_equal(pthread_create(&th[i], NULL, churn_thread, &c[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    void *ret;
    pthread_join(th[i], &ret);
    assert_null(ret);
  }
  assert_int_equal(f->t.live, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_handle_add_get_remove, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_handle_many_across_chunks, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_handle_allocation_failure, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_handle_kinds_never_cross, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_handle_concurrent_churn, setup,
                                      teardown),
  };
  return cmocka_run_group_tests_name("handle", tests, NULL, NULL);
}
