/* TURN REST API style credentials (src/proto/turn_cred): known vectors
 * (computed with `openssl dgst -sha1 -hmac SECRET -binary | base64`), caps. */
#include "hd_test.h"

#include <string.h>

#include "base/err.h"
#include "proto/turn_cred.h"

static void test_vectors(void **st) {
  (void)st;
  char user[64], cred[HD_TURN_CRED_LEN];
  assert_int_equal(
      hd_turn_cred_mint("shared-secret-0123456789", "alice", 1700000000, user, sizeof user, cred), 0);
  assert_string_equal(user, "1700000000:alice");
  assert_string_equal(cred, "y00HE0Uj20k7+zOAgXoW/02E32g=");
  /* the identity is taken as is after the first colon (coturn splits there) */
  assert_int_equal(
      hd_turn_cred_mint("shared-secret-0123456789", "bob:with:colons", 1700000000, user, sizeof user, cred),
      0);
  assert_string_equal(user, "1700000000:bob:with:colons");
  assert_string_equal(cred, "URO2w6sTRhXChtypOIelUBvNL34=");
}

static void test_errors(void **st) {
  (void)st;
  char user[17], cred[HD_TURN_CRED_LEN];
  assert_int_equal(hd_turn_cred_mint("", "alice", 1, user, sizeof user, cred), HD_EINVAL);
  assert_int_equal(hd_turn_cred_mint("s", "alice", -1, user, sizeof user, cred), HD_EINVAL);
  /* "1700000000:alice" is 16 bytes + NUL: fits in 17, not in 16 */
  assert_int_equal(hd_turn_cred_mint("s", "alice", 1700000000, user, 16, cred), HD_ENOSPC);
  assert_int_equal(hd_turn_cred_mint("s", "alice", 1700000000, user, 17, cred), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_vectors),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
