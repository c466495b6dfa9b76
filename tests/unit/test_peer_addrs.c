/* Per-pair node-link addresses (src/cluster/peer_addrs; issue 16 item 5):
 * "ID=IP:PORT" entries parse, several for one id keep their order (one per
 * media worker), other ids are untouched, and malformed input is refused
 * whole with a message that shows the expected form. */
#include "hd_test.h"

#include <string.h>

#include "base/err.h"
#include "cluster/peer_addrs.h"

static void test_parse_and_get(void **st) {
  (void)st;
  hd_peer_addrs_t t = {.n = 0};
  char err[256] = "";
  assert_int_equal(
      hd_peer_addrs_parse(&t, "n3=127.0.0.1:9000,n3=127.0.0.1:9001,host-b:7880=[::1]:7", err, sizeof err), 0);
  assert_int_equal(t.n, 3);
  const char *a[HD_CLUSTER_MAX_MEDIA];
  assert_int_equal(hd_peer_addrs_get(&t, "n3", a, HD_CLUSTER_MAX_MEDIA), 2);
  assert_string_equal(a[0], "127.0.0.1:9000");
  assert_string_equal(a[1], "127.0.0.1:9001");
  /* an id containing ':' (the default hostname:port): the first '=' splits */
  assert_int_equal(hd_peer_addrs_get(&t, "host-b:7880", a, HD_CLUSTER_MAX_MEDIA), 1);
  assert_string_equal(a[0], "[::1]:7");
  assert_int_equal(hd_peer_addrs_get(&t, "n1", a, HD_CLUSTER_MAX_MEDIA), 0);
  assert_int_equal(hd_peer_addrs_get(&t, "n3", a, 1), 1); /* max respected */
  /* a second spec appends (the config key, then each --peer-addr) */
  assert_int_equal(hd_peer_addrs_parse(&t, "n1=10.0.0.1:1", err, sizeof err), 0);
  assert_int_equal(hd_peer_addrs_get(&t, "n1", a, HD_CLUSTER_MAX_MEDIA), 1);
  assert_int_equal(hd_peer_addrs_parse(&t, "", err, sizeof err), 0);
  assert_int_equal(hd_peer_addrs_parse(&t, NULL, err, sizeof err), 0);
  assert_int_equal(t.n, 4);
}

static void test_refused(void **st) {
  (void)st;
  static const char *bad[] = {
      "n3",                           /* no '=' */
      "=127.0.0.1:9000",              /* no id */
      "n3=127.0.0.1",                 /* no port */
      "n3=127.0.0.1:0",               /* port 0 */
      "n3=127.0.0.1:65536",           /* port too large */
      "n3=localhost:9000",            /* a name: the media thread does not resolve */
      "n3=::1:9000",                  /* IPv6 without brackets */
      "n 3=127.0.0.1:9000",           /* id characters */
      "n3=127.0.0.1:9000,",           /* trailing comma */
      "n3=127.0.0.1:9x",              /* port digits */
      "n1=10.0.0.1:1,n3=1.2.3.4.5:6", /* the second entry is bad: none is taken */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    hd_peer_addrs_t t = {.n = 0};
    char err[256] = "";
    assert_int_equal(hd_peer_addrs_parse(&t, bad[i], err, sizeof err), HD_EINVAL);
    assert_int_equal(t.n, 0);
    assert_non_null(strstr(err, "NODE_ID=IP:PORT"));
  }
}

static void test_caps(void **st) {
  (void)st;
  hd_peer_addrs_t t = {.n = 0};
  char err[256] = "";
  char spec[4096] = "";
  for (int i = 0; i < HD_CLUSTER_MAX_MEDIA; i++)
    snprintf(spec + strlen(spec), sizeof spec - strlen(spec), "%sn3=127.0.0.1:%d", i ? "," : "", 9000 + i);
  assert_int_equal(hd_peer_addrs_parse(&t, spec, err, sizeof err), 0);
  /* one more address for n3 than a node has media workers: refused */
  assert_int_equal(hd_peer_addrs_parse(&t, "n3=127.0.0.1:1", err, sizeof err), HD_ENOSPC);
  assert_non_null(strstr(err, "n3"));
  assert_int_equal(t.n, HD_CLUSTER_MAX_MEDIA);
  /* the table's own cap */
  for (int i = t.n; i < HD_PEER_ADDRS_MAX; i++) {
    char one[64];
    snprintf(one, sizeof one, "p%d=127.0.0.1:1", i);
    assert_int_equal(hd_peer_addrs_parse(&t, one, err, sizeof err), 0);
  }
  assert_int_equal(hd_peer_addrs_parse(&t, "z=127.0.0.1:1", err, sizeof err), HD_ENOSPC);
  assert_int_equal(t.n, HD_PEER_ADDRS_MAX);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_and_get),
      cmocka_unit_test(test_refused),
      cmocka_unit_test(test_caps),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
