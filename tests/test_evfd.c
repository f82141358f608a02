/* SPDX-License-Identifier: MIT */
/* tests/test_evfd.c: the event loop's file descriptor (white-box), built
 * twice: with eventfd (on Linux) and, with STRATA_EVFD_PIPE, as the pipe
 * other systems get. Readable exactly while signals are uncleared, counts
 * exact, no signal lost when signals race with clears. */
#include "config.h"

#include "util.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include "evfd.h"

#ifdef STRATA_EVFD_PIPE
#define GROUP "evfd_pipe"
#else
#define GROUP "evfd"
#endif

static bool readable(int fd, int timeout_ms) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  int n = poll(&p, 1, timeout_ms);
  assert_true(n >= 0);
  return n == 1 && (p.revents & POLLIN);
}

static void test_evfd_signal_and_clear(void **state) {
  (void)state;
  strata__evfd_t e;
  strata__evfd_init(&e);
  strata__evfd_signal(&e); /* before the fd exists: counted */
  int fd, fd2;
  assert_int_equal(strata__evfd_open(&e, &fd), 0);
  assert_int_equal(strata__evfd_open(&e, &fd2), 0);
  assert_int_equal(fd, fd2);
  assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
  assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
  assert_true(readable(fd, 0));
  assert_int_equal(strata__evfd_clear(&e), 1);
  assert_false(readable(fd, 0));
  assert_int_equal(strata__evfd_clear(&e), 0);
  for (int i = 0; i < 100000; i++) /* far more than a pipe holds */
    strata__evfd_signal(&e);
  assert_true(readable(fd, 0));
  assert_int_equal(strata__evfd_clear(&e), 100000);
  assert_false(readable(fd, 0));
  strata__evfd_fini(&e);
}

typedef struct racer {
  strata__evfd_t *e;
  int n;
} racer_t;

static void *signaller(void *p) {
  racer_t *r = p;
  for (int i = 0; i < r->n; i++)
    strata__evfd_signal(r->e);
  return NULL;
}

static void test_evfd_no_signal_lost(void **state) {
  (void)state;
  /* Four threads signal while a loop waits and clears: the counts add up,
   * and whenever a count is owed the fd is readable. */
  strata__evfd_t e;
  strata__evfd_init(&e);
  int fd;
  assert_int_equal(strata__evfd_open(&e, &fd), 0);
  pthread_t th[4];
  racer_t r = {&e, 20000};
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&th[i], NULL, signaller, &r), 0);
  uint64_t total = 0;
  while (total < 4u * 20000u) {
    assert_true(readable(fd, 10000)); /* a lost signal would hang here */
    total += strata__evfd_clear(&e);
  }
  for (int i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  assert_int_equal(total, 4u * 20000u);
  assert_int_equal(strata__evfd_clear(&e), 0);
  strata__evfd_fini(&e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_evfd_signal_and_clear),
      cmocka_unit_test(test_evfd_no_signal_lost),
  };
  return cmocka_run_group_tests_name(GROUP, tests, NULL, NULL);
}
