/* The virtual-clock worlds are deterministic (docs/testing.md, "Determinism").
 * A rate-limited world run twice in one process must put the same datagrams
 * (virtual send time, sender, receiver, length) on its links, and end with the
 * same estimate: before tests/support/seeded_rand.c the DTLS keys, ECDSA
 * nonces, SSRCs, ICE credentials and sequence starts came from the OS RNG, the
 * handshake flights differed by a few bytes (DER-encoded ECDSA signatures are
 * 70-72 bytes), and the figures of e.g. test_client_downlink moved run to run. */
#include "hd_test.h"

#include <stdio.h>

#include "support/client_world.h"
#include "support/pc_world.h"
#include "support/seeded_rand.h"

typedef struct {
  uint64_t n, hash, est, rendered;
} run_t;

/* test_client_downlink's "300k both legs" world: one adaptive stream through
 * 300 kbit/s legs with a 200 ms queue, 12 virtual seconds. */
static run_t run_client_world(void) {
  const char *lim[] = {"--delay", "25", "--rate", "300", "--queue", "200"};
  cw_cfg_t rc = {.up = lim, .nup = 6, .down = lim, .ndown = 6, .n_layers = 1, .adapt = 1};
  cw_t *w = cw_new(&rc);
  cw_run_until(w, w->now + HD_SEC(12));
  run_t r = {w->trace_n, w->trace_hash, cw_estimate(w, NULL), w->ep[1].rendered};
  cw_free(w);
  return r;
}

static void test_client_world_twice(void **st) {
  (void)st;
  run_t a = run_client_world();
  /* fresh certificates too, as a second process would make them */
  cw_teardown_all(NULL);
  cw_setup_all(NULL);
  run_t b = run_client_world();
  printf("client world: %llu datagrams, trace %016llx / %016llx, estimate %llu / %llu, frames %llu / %llu\n",
         (unsigned long long)a.n, (unsigned long long)a.hash, (unsigned long long)b.hash,
         (unsigned long long)a.est, (unsigned long long)b.est, (unsigned long long)a.rendered,
         (unsigned long long)b.rendered);
  assert_true(a.n > 1000); /* the world did run: handshakes and 12 s of media */
  assert_true(a.rendered > 100);
  assert_int_equal(a.n, b.n);
  assert_true(a.hash == b.hash);
  assert_int_equal(a.est, b.est);
  assert_int_equal(a.rendered, b.rendered);
}

/* pc_world's room through the node with 2% loss and a 400 kbit/s adaptive uplink. */
static void test_pc_world_twice(void **st) {
  (void)st;
  uint64_t n[2], h[2];
  for (int i = 0; i < 2; i++) {
    pw_t *w = pw_room_run(0.02, 8, 400000);
    n[i] = w->trace_n;
    h[i] = w->trace_hash;
    pw_free(w);
  }
  printf("pc world: %llu datagrams, trace %016llx / %016llx\n", (unsigned long long)n[0],
         (unsigned long long)h[0], (unsigned long long)h[1]);
  assert_true(n[0] > 500);
  assert_int_equal(n[0], n[1]);
  assert_true(h[0] == h[1]);
}

/* The worlds' certificates sign fixed validity dates (hd_dtls_cert_generate_at):
 * with the wall clock in them the signature's DER length, and so the node's
 * handshake flight, changed from one process to the next. Same seed and time:
 * the same certificate; another time: another one (the dates do come from the
 * argument). */
static void test_cert_from_seed_and_time(void **st) {
  (void)st;
  hd_dtls_cert_t *c[3];
  const int64_t t[3] = {1800000000, 1800000000, 1800000001};
  for (int i = 0; i < 3; i++) {
    hd_test_rand_seed(CW_RAND_SEED);
    assert_int_equal(hd_dtls_cert_generate_at(&c[i], t[i]), 0);
  }
  assert_string_equal(hd_dtls_cert_fingerprint(c[0]), hd_dtls_cert_fingerprint(c[1]));
  assert_string_not_equal(hd_dtls_cert_fingerprint(c[0]), hd_dtls_cert_fingerprint(c[2]));
  for (int i = 0; i < 3; i++)
    hd_dtls_cert_free(c[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_client_world_twice),
      cmocka_unit_test(test_pc_world_twice),
      cmocka_unit_test(test_cert_from_seed_and_time),
  };
  return cmocka_run_group_tests(tests, cw_setup_all, cw_teardown_all);
}
