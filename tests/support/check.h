/* CHECK(x) for test support code (the .c files in tests/support): a broken harness
 * invariant, with no recovery in a test, prints where and aborts. The
 * support library is linked without cmocka (integration tests use it too),
 * so cmocka's assert_* are not available here. Include only from .c files. */
#ifndef HD_TEST_CHECK_H
#define HD_TEST_CHECK_H
#include <stdio.h>
#include <stdlib.h>

#define CHECK(x)                                                                                             \
  do {                                                                                                       \
    if (!(x)) {                                                                                              \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x);                                  \
      abort();                                                                                               \
    }                                                                                                        \
  } while (0)

#endif
