/* Unit tests for proto/dtls: a client and a server object joined by an in-memory
 * link with scripted loss, on a virtual clock (retransmission must follow it). */
#include "hd_test.h"

#include "base/err.h"
#include "proto/dtls.h"
#include "proto/srtp.h"

static hd_dtls_cert_t *g_cert_c, *g_cert_s, *g_cert_x;

static int setup_all(void **st) {
  (void)st;
  if (hd_dtls_cert_generate(&g_cert_c) || hd_dtls_cert_generate(&g_cert_s) ||
      hd_dtls_cert_generate(&g_cert_x))
    return -1;
  return 0;
}

static int teardown_all(void **st) {
  (void)st;
  hd_dtls_cert_free(g_cert_c);
  hd_dtls_cert_free(g_cert_s);
  hd_dtls_cert_free(g_cert_x);
  return 0;
}

/* ---- the link ---- */

typedef struct {
  hd_dtls_t *c, *s;
  hd_time_t now;
  /* loss script: drop flight k of a direction (a flight = the datagrams one drain of
   * a side yields) when bit k of the mask is set; drop_all drops everything. */
  unsigned drop_c2s_mask, drop_s2c_mask;
  int drop_c2s_all, drop_s2c_all;
  double loss;  /* random loss per datagram, both directions (0 = none) */
  uint32_t rng; /* its seed (xorshift32, nonzero) */
  int flights_c2s, flights_s2c;
  int sent_c2s, sent_s2c;   /* datagrams put on the wire */
  int feed_rc_c, feed_rc_s; /* first negative feed result on each side */
} link_t;

static void link_init(link_t *l, hd_dtls_t *c, hd_dtls_t *s) {
  memset(l, 0, sizeof *l);
  l->c = c;
  l->s = s;
}

/* Drains `from`, delivering to `to` unless dropped. Returns datagrams moved. */
static int drain(link_t *l, hd_dtls_t *from, hd_dtls_t *to, int c2s) {
  uint8_t buf[HD_DTLS_MAX_DATAGRAM];
  int moved = 0, n;
  int flight = c2s ? l->flights_c2s : l->flights_s2c;
  unsigned mask = c2s ? l->drop_c2s_mask : l->drop_s2c_mask;
  int all = c2s ? l->drop_c2s_all : l->drop_s2c_all;
  int drop = all || (flight < 32 && (mask >> flight & 1));
  while ((n = hd_dtls_poll(from, buf, sizeof buf)) > 0) {
    assert_true(n <= HD_DTLS_MTU);
    moved++;
    if (c2s)
      l->sent_c2s++;
    else
      l->sent_s2c++;
    if (drop) continue;
    if (l->loss > 0) {
      l->rng ^= l->rng << 13;
      l->rng ^= l->rng >> 17;
      l->rng ^= l->rng << 5;
      if ((double)l->rng / 4294967296.0 < l->loss) continue;
    }
    int rc = hd_dtls_feed(to, buf, (size_t)n, l->now);
    int *first = c2s ? &l->feed_rc_s : &l->feed_rc_c;
    if (rc < 0 && !*first) *first = rc;
  }
  assert_true(n >= 0);
  if (moved) {
    if (c2s)
      l->flights_c2s++;
    else
      l->flights_s2c++;
  }
  return moved;
}

static int settled(const link_t *l) {
  int a = hd_dtls_state(l->c), b = hd_dtls_state(l->s);
  return a != HD_DTLS_HANDSHAKING && b != HD_DTLS_HANDSHAKING;
}

/* Runs the link until both sides settle or nothing is left to do; time advances only
 * to the next timer. Returns the number of timer jumps. */
static int run(link_t *l, hd_time_t limit) {
  int jumps = 0;
  for (int guard = 0; guard < 1000; guard++) {
    int moved = drain(l, l->c, l->s, 1) + drain(l, l->s, l->c, 0);
    if (moved) continue;
    if (settled(l)) break;
    hd_time_t t = hd_time_min(hd_dtls_next_timeout(l->c), hd_dtls_next_timeout(l->s));
    if (t == HD_TIME_NEVER || t > limit) break;
    if (t > l->now) l->now = t;
    jumps++;
    hd_dtls_handle_timeout(l->c, l->now);
    hd_dtls_handle_timeout(l->s, l->now);
  }
  return jumps;
}

static void make_pair(hd_dtls_t **c, hd_dtls_t **s, const char *c_expects, const char *s_expects) {
  assert_int_equal(hd_dtls_new(s, g_cert_s, 1, s_expects, 0), 0);
  assert_int_equal(hd_dtls_new(c, g_cert_c, 0, c_expects, 0), 0);
}

static void make_good_pair(hd_dtls_t **c, hd_dtls_t **s) {
  make_pair(c, s, hd_dtls_cert_fingerprint(g_cert_s), hd_dtls_cert_fingerprint(g_cert_c));
}

/* ---- tests ---- */

static void test_cert_fingerprint_format(void **st) {
  (void)st;
  const char *fp = hd_dtls_cert_fingerprint(g_cert_c);
  assert_int_equal(strlen(fp), 95);
  for (int i = 0; i < 95; i++) {
    if (i % 3 == 2)
      assert_int_equal(fp[i], ':');
    else
      assert_true((fp[i] >= '0' && fp[i] <= '9') || (fp[i] >= 'A' && fp[i] <= 'F'));
  }
  assert_string_not_equal(fp, hd_dtls_cert_fingerprint(g_cert_s));
  /* A malformed expected fingerprint is rejected up front. */
  hd_dtls_t *d = NULL;
  assert_int_equal(hd_dtls_new(&d, g_cert_c, 0, "AB:CD", 0), HD_EINVAL);
  assert_int_equal(hd_dtls_new(&d, g_cert_c, 0, "zz", 0), HD_EINVAL);
  assert_int_equal(hd_dtls_new(&d, NULL, 0, NULL, 0), HD_EINVAL);
}

static void test_full_handshake_gcm(void **st) {
  (void)st;
  hd_dtls_t *c, *s;
  /* Lower-case fingerprint must be accepted (RFC 8122 says hex is case-insensitive). */
  char lower[96];
  snprintf(lower, sizeof lower, "%s", hd_dtls_cert_fingerprint(g_cert_s));
  for (char *p = lower; *p; p++)
    if (*p >= 'A' && *p <= 'F') *p = (char)(*p - 'A' + 'a');
  make_pair(&c, &s, lower, hd_dtls_cert_fingerprint(g_cert_c));

  /* Client has a ClientHello ready and a timer; the server waits. */
  assert_int_equal(hd_dtls_state(c), HD_DTLS_HANDSHAKING);
  assert_int_equal(hd_dtls_next_timeout(c), HD_DTLS_RTO_INITIAL);
  assert_int_equal(hd_dtls_next_timeout(s), HD_TIME_NEVER);
  hd_dtls_srtp_keys_t kc, ks;
  assert_int_equal(hd_dtls_srtp_keys(c, &kc), HD_ESTATE);

  link_t l;
  link_init(&l, c, s);
  int jumps = run(&l, HD_SEC(60));
  assert_int_equal(jumps, 0); /* no loss: no timer needed */
  assert_int_equal(l.now, 0);
  assert_int_equal(hd_dtls_state(c), HD_DTLS_CONNECTED);
  assert_int_equal(hd_dtls_state(s), HD_DTLS_CONNECTED);
  assert_string_equal(hd_dtls_error(c), "");
  assert_int_equal(hd_dtls_next_timeout(c), HD_TIME_NEVER);
  assert_int_equal(hd_dtls_next_timeout(s), HD_TIME_NEVER);
  /* Records are packed: a full handshake takes few datagrams. */
  assert_true(l.sent_c2s <= 4);
  assert_true(l.sent_s2c <= 4);

  assert_int_equal(hd_dtls_srtp_keys(c, &kc), 0);
  assert_int_equal(hd_dtls_srtp_keys(s, &ks), 0);
  assert_int_equal(kc.profile, HD_SRTP_AEAD_AES_128_GCM);
  assert_int_equal(ks.profile, HD_SRTP_AEAD_AES_128_GCM);
  assert_int_equal(kc.key_len, 28);
  assert_int_equal(ks.key_len, 28);
  assert_memory_equal(kc.local_key, ks.remote_key, 28);
  assert_memory_equal(kc.remote_key, ks.local_key, 28);
  assert_memory_not_equal(kc.local_key, kc.remote_key, 28);

  /* Application data both ways (SCTP rides on this for data channels). */
  const uint8_t msg[] = "hello over dtls";
  uint8_t buf[HD_DTLS_MAX_DATAGRAM];
  assert_int_equal(hd_dtls_send(c, msg, sizeof msg), (int)sizeof msg);
  assert_int_equal(hd_dtls_send(c, msg, 0), HD_EINVAL);
  run(&l, l.now);
  assert_int_equal(hd_dtls_recv(s, buf, 4), HD_ENOSPC);
  assert_int_equal(hd_dtls_recv(s, buf, sizeof buf), (int)sizeof msg);
  assert_memory_equal(buf, msg, sizeof msg);
  assert_int_equal(hd_dtls_recv(s, buf, sizeof buf), 0);
  assert_int_equal(hd_dtls_send(s, msg, 5), 5);
  run(&l, l.now);
  assert_int_equal(hd_dtls_recv(c, buf, sizeof buf), 5);

  /* close_notify from the peer closes the other side. */
  assert_int_equal(hd_dtls_close(c), 0);
  assert_int_equal(hd_dtls_state(c), HD_DTLS_CLOSED);
  assert_int_equal(hd_dtls_close(c), HD_ESTATE);
  run(&l, l.now);
  assert_int_equal(hd_dtls_state(s), HD_DTLS_CLOSED);
  assert_int_equal(hd_dtls_send(s, msg, 5), HD_ESTATE);
  assert_int_equal(hd_dtls_feed(s, buf, 20, l.now), HD_ESTATE);
  hd_dtls_free(c);
  hd_dtls_free(s);
}

static void check_profile(const char *c_prof, const char *s_prof, int want) {
  hd_dtls_t *c, *s;
  make_good_pair(&c, &s);
  if (c_prof) assert_int_equal(hd_dtls_set_srtp_profiles(c, c_prof), 0);
  if (s_prof) assert_int_equal(hd_dtls_set_srtp_profiles(s, s_prof), 0);
  link_t l;
  link_init(&l, c, s);
  run(&l, HD_SEC(60));
  assert_int_equal(hd_dtls_state(c), HD_DTLS_CONNECTED);
  assert_int_equal(hd_dtls_state(s), HD_DTLS_CONNECTED);
  hd_dtls_srtp_keys_t kc, ks;
  assert_int_equal(hd_dtls_srtp_keys(c, &kc), 0);
  assert_int_equal(hd_dtls_srtp_keys(s, &ks), 0);
  assert_int_equal(kc.profile, want);
  assert_int_equal(ks.profile, want);
  assert_int_equal(kc.key_len, (size_t)hd_srtp_key_len(want));
  assert_memory_equal(kc.local_key, ks.remote_key, kc.key_len);
  assert_memory_equal(kc.remote_key, ks.local_key, kc.key_len);
  /* Too late to change profiles now. */
  assert_int_equal(hd_dtls_set_srtp_profiles(s, "SRTP_AES128_CM_SHA1_80"), HD_ESTATE);
  hd_dtls_free(c);
  hd_dtls_free(s);
}

static void test_profile_cm_when_server_only_cm(void **st) {
  (void)st;
  check_profile(NULL, "SRTP_AES128_CM_SHA1_80", HD_SRTP_AES128_CM_SHA1_80);
}

static void test_profile_cm_when_client_only_cm(void **st) {
  (void)st;
  check_profile("SRTP_AES128_CM_SHA1_80", NULL, HD_SRTP_AES128_CM_SHA1_80);
}

static void test_profile_server_preference(void **st) {
  (void)st;
  /* Client prefers CM but offers GCM too: the server's order (GCM first) wins. */
  check_profile("SRTP_AES128_CM_SHA1_80:SRTP_AEAD_AES_128_GCM", NULL, HD_SRTP_AEAD_AES_128_GCM);
}

static void test_profile_setter_errors(void **st) {
  (void)st;
  hd_dtls_t *c, *s;
  make_good_pair(&c, &s);
  assert_int_equal(hd_dtls_set_srtp_profiles(s, "NOT_A_PROFILE"), HD_EINVAL);
  assert_int_equal(hd_dtls_set_srtp_profiles(s, ""), HD_EINVAL);
  assert_int_equal(hd_dtls_set_srtp_profiles(s, NULL), HD_EINVAL);
  hd_dtls_free(c);
  hd_dtls_free(s);
}

static void test_no_common_profile_fails(void **st) {
  (void)st;
  hd_dtls_t *c, *s;
  make_good_pair(&c, &s);
  assert_int_equal(hd_dtls_set_srtp_profiles(c, "SRTP_AES128_CM_SHA1_32"), 0);
  assert_int_equal(hd_dtls_set_srtp_profiles(s, "SRTP_AEAD_AES_128_GCM"), 0);
  link_t l;
  link_init(&l, c, s);
  run(&l, HD_SEC(60));
  /* The server omits use_srtp (RFC 5764 §4.1.1) and DTLS completes; no SRTP keys. */
  assert_int_equal(hd_dtls_state(c), HD_DTLS_CONNECTED);
  assert_int_equal(hd_dtls_state(s), HD_DTLS_CONNECTED);
  hd_dtls_srtp_keys_t k;
  assert_int_equal(hd_dtls_srtp_keys(c, &k), HD_EUNSUPPORTED);
  assert_int_equal(hd_dtls_srtp_keys(s, &k), HD_EUNSUPPORTED);
  hd_dtls_free(c);
  hd_dtls_free(s);
}

static void test_client_rejects_server_fingerprint(void **st) {
  (void)st;
  hd_dtls_t *c, *s;
  /* The client expects some other certificate. */
  make_pair(&c, &s, hd_dtls_cert_fingerprint(g_cert_x), hd_dtls_cert_fingerprint(g_cert_c));
  link_t l;
  link_init(&l, c, s);
  run(&l, HD_SEC(60));
  assert_int_equal(hd_dtls_state(c), HD_DTLS_FAILED);
  assert_string_equal(hd_dtls_error(c), "fingerprint mismatch");
  assert_int_equal(l.feed_rc_c, HD_EAUTH);
  /* The alert reaches the server, which fails too, saying why. */
  assert_int_equal(hd_dtls_state(s), HD_DTLS_FAILED);
  assert_non_null(strstr(hd_dtls_error(s), "peer alert"));
  hd_dtls_srtp_keys_t k;
  assert_int_equal(hd_dtls_srtp_keys(c, &k), HD_ESTATE);
  assert_int_equal(hd_dtls_next_timeout(c), HD_TIME_NEVER);
  hd_dtls_free(c);
  hd_dtls_free(s);
}

static void test_server_rejects_client_fingerprint(void **st) {
  (void)st;
  hd_dtls_t *c, *s;
  make_pair(&c, &s, hd_dtls_cert_fingerprint(g_cert_s), hd_dtls_cert_fingerprint(g_cert_x));
  link_t l;
  link_init(&l, c, s);
  run(&l, HD_SEC(60));
  assert_int_equal(hd_dtls_state(s), HD_DTLS_FAILED);
  assert_string_equal(hd_dtls_error(s), "fingerprint mismatch");
  assert_int_equal(l.feed_rc_s, HD_EAUTH);
  assert_int_equal(hd_dtls_state(c), HD_DTLS_FAILED);
  assert_non_null(strstr(hd_dtls_error(c), "peer alert"));
  hd_dtls_free(c);
  hd_dtls_free(s);
}

static void test_no_fingerprint_check_in_tests(void **st) {
  (void)st;
  hd_dtls_t *c, *s;
  make_pair(&c, &s, NULL, NULL);
  link_t l;
  link_init(&l, c, s);
  run(&l, HD_SEC(60));
  assert_int_equal(hd_dtls_state(c), HD_DTLS_CONNECTED);
  assert_int_equal(hd_dtls_state(s), HD_DTLS_CONNECTED);
  hd_dtls_free(c);
  hd_dtls_free(s);
}

static void test_lost_first_flights_recovered_by_virtual_time(void **st) {
  (void)st;
  hd_dtls_t *c, *s;
  make_good_pair(&c, &s);
  link_t l;
  link_init(&l, c, s);
  l.drop_c2s_mask = 1; /* the first ClientHello */
  l.drop_s2c_mask = 1; /* the first server flight */
  int jumps = run(&l, HD_SEC(60));
  assert_int_equal(hd_dtls_state(c), HD_DTLS_CONNECTED);
  assert_int_equal(hd_dtls_state(s), HD_DTLS_CONNECTED);
  /* Only virtual time moved things: CH retransmitted at 0.5 s, the server's flight
   * (first sent at 0.5 s, lost) again at 1.0 s. */
  assert_true(jumps >= 2);
  assert_int_equal(l.now, HD_MS(1000));
  hd_dtls_srtp_keys_t kc, ks;
  assert_int_equal(hd_dtls_srtp_keys(c, &kc), 0);
  assert_int_equal(hd_dtls_srtp_keys(s, &ks), 0);
  assert_memory_equal(kc.local_key, ks.remote_key, kc.key_len);
  hd_dtls_free(c);
  hd_dtls_free(s);
}

static void test_lost_last_flight_recovered(void **st) {
  (void)st;
  /* Flights: c2s #0 CH, s2c #0 ServerHello..Done, c2s #1 Cert..Finished,
   * s2c #1 CCS+Finished. Losing the last one leaves the server CONNECTED and the
   * client waiting; the client's retransmitted flight makes the connected server
   * re-send its last flight (RFC 6347 §4.2.4). */
  hd_dtls_t *c, *s;
  make_good_pair(&c, &s);
  link_t l;
  link_init(&l, c, s);
  l.drop_s2c_mask = 2;
  run(&l, HD_SEC(60));
  assert_int_equal(hd_dtls_state(s), HD_DTLS_CONNECTED);
  assert_int_equal(hd_dtls_state(c), HD_DTLS_CONNECTED);
  assert_int_equal(l.now, HD_DTLS_RTO_INITIAL);
  hd_dtls_srtp_keys_t kc, ks;
  assert_int_equal(hd_dtls_srtp_keys(c, &kc), 0);
  assert_int_equal(hd_dtls_srtp_keys(s, &ks), 0);
  assert_memory_equal(kc.local_key, ks.remote_key, kc.key_len);
  assert_memory_equal(kc.remote_key, ks.local_key, kc.key_len);
  hd_dtls_free(c);
  hd_dtls_free(s);
}

static void test_total_loss_fails_after_budget(void **st) {
  (void)st;
  hd_dtls_t *c, *s;
  make_good_pair(&c, &s);
  link_t l;
  link_init(&l, c, s);
  l.drop_c2s_all = 1;
  hd_time_t expect = 0, rto = HD_DTLS_RTO_INITIAL;
  for (int i = 0; i <= HD_DTLS_MAX_RETRIES; i++) {
    expect += rto;
    rto = rto * 2 > HD_DTLS_RTO_MAX ? HD_DTLS_RTO_MAX : rto * 2;
  }
  /* Early calls do nothing. */
  assert_int_equal(hd_dtls_handle_timeout(c, HD_MS(1)), 0);
  int sent_before = l.sent_c2s;
  for (int guard = 0; guard < 100 && hd_dtls_state(c) == HD_DTLS_HANDSHAKING; guard++) {
    drain(&l, c, s, 1);
    hd_time_t t = hd_dtls_next_timeout(c);
    assert_true(t != HD_TIME_NEVER);
    assert_true(t > l.now);
    l.now = t;
    int rc = hd_dtls_handle_timeout(c, l.now);
    if (hd_dtls_state(c) == HD_DTLS_FAILED)
      assert_int_equal(rc, HD_ETIMEDOUT);
    else
      assert_int_equal(rc, 0);
  }
  drain(&l, c, s, 1);
  assert_int_equal(hd_dtls_state(c), HD_DTLS_FAILED);
  assert_string_equal(hd_dtls_error(c), "handshake timeout");
  assert_int_equal(l.now, expect); /* 12.5 s */
  /* The original ClientHello, then two per retry (a path that lost a flight
   * gets handshake datagrams twice), each produced on virtual time. */
  assert_int_equal(l.sent_c2s - sent_before, 1 + 2 * HD_DTLS_MAX_RETRIES);
  assert_int_equal(hd_dtls_next_timeout(c), HD_TIME_NEVER);
  assert_int_equal(hd_dtls_state(s), HD_DTLS_HANDSHAKING);
  assert_int_equal(hd_dtls_next_timeout(s), HD_TIME_NEVER);
  hd_dtls_free(c);
  hd_dtls_free(s);
}

/* Handshakes over a link with random loss p both ways, 30 seeds: how many
 * finish within `limit` of virtual time (the slowest in *worst). */
static int lossy_handshakes(double p, hd_time_t limit, hd_time_t *worst) {
  int done = 0;
  *worst = 0;
  for (uint32_t seed = 1; seed <= 30; seed++) {
    hd_dtls_t *c, *s;
    make_good_pair(&c, &s);
    link_t l;
    link_init(&l, c, s);
    l.loss = p;
    l.rng = seed * 2654435761u;
    run(&l, limit);
    if (hd_dtls_state(c) == HD_DTLS_CONNECTED && hd_dtls_state(s) == HD_DTLS_CONNECTED) {
      done++;
      if (l.now > *worst) *worst = l.now;
    } else {
      print_message("%.0f%% seed %u: not connected after %.1f s [%s]\n", p * 100, seed, (double)l.now / 1e6,
                    hd_dtls_error(c));
    }
    hd_dtls_free(c);
    hd_dtls_free(s);
  }
  print_message("dtls at %.0f%% loss each way: %d/30 handshakes within %.0f s (slowest %.1f s)\n", p * 100,
                done, (double)limit / 1e6, (double)*worst / 1e6);
  return done;
}

/* Random loss on both directions, as on a weak network (issue 13: video at
 * 30 %, speech at 50 %): every handshake must finish within 10 s of virtual
 * time (the SDK gives a connection 15 s, ICE included). Before: the RTO
 * doubled to 8 s (RFC 6347's schedule), so the retries thinned out just when
 * most were lost -- 27/30 at 30 % and 11/30 at 50 % within 10 s; with the RTO
 * capped at 1 s, 30/30 and 23/30 (OpenSSL gives a flight 12 retransmissions:
 * at 50 % each way a round trip gets through 1 time in 4, and 0.75^12 is
 * 3 %). Sending handshake datagrams twice once a flight was lost makes that
 * 1 - 0.75^2 per direction: 30/30 at 50 % too. */
static void test_random_loss_handshake_completes(void **st) {
  (void)st;
  hd_time_t worst;
  assert_int_equal(lossy_handshakes(0.3, HD_SEC(10), &worst), 30);
  assert_int_equal(lossy_handshakes(0.5, HD_SEC(10), &worst), 30);
}

static void test_garbage_is_rejected_without_harm(void **st) {
  (void)st;
  hd_dtls_t *c, *s;
  make_good_pair(&c, &s);
  static const uint8_t junk1[] = {0x00, 0x01, 0x02};
  uint8_t junk2[200];
  for (size_t i = 0; i < sizeof junk2; i++)
    junk2[i] = (uint8_t)(i * 37 + 11);
  /* Plausible record header whose length overruns the datagram. */
  static const uint8_t junk3[] = {22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00, 1, 2};
  /* Well-framed record with nonsense inside: OpenSSL discards or rejects it. */
  uint8_t junk4[40] = {22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 5, 0, 27};
  for (size_t i = 13; i < sizeof junk4; i++)
    junk4[i] = (uint8_t)(0xa5 ^ i);

  assert_int_equal(hd_dtls_feed(s, junk1, sizeof junk1, 0), HD_EPROTO);
  assert_int_equal(hd_dtls_feed(s, junk2, sizeof junk2, 0), HD_EPROTO);
  assert_int_equal(hd_dtls_feed(s, junk3, sizeof junk3, 0), HD_EPROTO);
  assert_int_equal(hd_dtls_feed(s, junk1, 0, 0), HD_EPROTO);
  assert_int_equal(hd_dtls_feed(c, junk2, sizeof junk2, 0), HD_EPROTO);
  assert_int_equal(hd_dtls_feed(NULL, junk2, sizeof junk2, 0), HD_EINVAL);
  assert_int_equal(hd_dtls_state(s), HD_DTLS_HANDSHAKING);
  assert_int_equal(hd_dtls_state(c), HD_DTLS_HANDSHAKING);
  /* The handshake still completes after the junk. */
  link_t l;
  link_init(&l, c, s);
  run(&l, HD_SEC(60));
  assert_int_equal(hd_dtls_state(c), HD_DTLS_CONNECTED);
  assert_int_equal(hd_dtls_state(s), HD_DTLS_CONNECTED);
  /* After CONNECTED: junk and a forged epoch-0 handshake record are harmless. */
  assert_int_equal(hd_dtls_feed(s, junk2, sizeof junk2, 0), HD_EPROTO);
  int rc = hd_dtls_feed(s, junk4, sizeof junk4, 0);
  assert_true(rc == 0 || rc == HD_EPROTO);
  assert_int_equal(hd_dtls_state(s), HD_DTLS_CONNECTED);
  /* Poll with a too-small buffer leaves the datagram queued. */
  const uint8_t msg[] = "x";
  uint8_t buf[HD_DTLS_MAX_DATAGRAM];
  assert_int_equal(hd_dtls_send(c, msg, 1), 1);
  assert_int_equal(hd_dtls_poll(c, buf, 4), HD_ENOSPC);
  assert_true(hd_dtls_poll(c, buf, sizeof buf) > 0);
  assert_int_equal(hd_dtls_poll(c, buf, sizeof buf), 0);
  hd_dtls_free(c);
  hd_dtls_free(s);
}

static void test_junk_during_handshake_keeps_schedule(void **st) {
  (void)st;
  /* The garbage record with a valid frame reaches OpenSSL mid-handshake; whatever
   * OpenSSL thinks of it, no crash and the API stays consistent. */
  hd_dtls_t *c, *s;
  make_good_pair(&c, &s);
  uint8_t junk4[40] = {22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 5, 0, 27};
  for (size_t i = 13; i < sizeof junk4; i++)
    junk4[i] = (uint8_t)(0xa5 ^ i);
  int rc = hd_dtls_feed(c, junk4, sizeof junk4, 0);
  assert_true(rc == 0 || rc == HD_EPROTO);
  if (rc == 0)
    assert_int_equal(hd_dtls_state(c), HD_DTLS_HANDSHAKING);
  else
    assert_int_equal(hd_dtls_state(c), HD_DTLS_FAILED);
  hd_dtls_free(c);
  hd_dtls_free(s);
}

static void test_close_during_handshake(void **st) {
  (void)st;
  hd_dtls_t *c, *s;
  make_good_pair(&c, &s);
  assert_int_equal(hd_dtls_close(c), 0);
  assert_int_equal(hd_dtls_state(c), HD_DTLS_CLOSED);
  assert_int_equal(hd_dtls_next_timeout(c), HD_TIME_NEVER);
  assert_int_equal(hd_dtls_handle_timeout(c, HD_SEC(100)), 0);
  hd_dtls_free(c);
  hd_dtls_free(s);
  hd_dtls_free(NULL);
  hd_dtls_cert_free(NULL);
}

/* issue 12 item 1: records from the peer's address that are not authenticated must
 * not change state. 8 spoofed 15-byte epoch-1 alerts used to end the session
 * (OpenSSL raised a fatal internal_error on the too-short record). */
static int feed_forged(hd_dtls_t *s, uint8_t type, uint16_t epoch, uint8_t seq, uint16_t rlen) {
  uint8_t rec[13 + 64] = {type, 0xfe, 0xfd, (uint8_t)(epoch >> 8), (uint8_t)epoch, 0, 0, 0,
                          0,    0,    seq,  (uint8_t)(rlen >> 8),  (uint8_t)rlen};
  assert_true(rlen <= 64);
  rec[13] = 2;  /* fatal */
  rec[14] = 40; /* handshake_failure */
  for (size_t i = 15; i < 13u + rlen; i++)
    rec[i] = (uint8_t)(i * 29 + seq);
  return hd_dtls_feed(s, rec, 13 + (size_t)rlen, 0);
}

static void test_spoofed_records_do_not_end_session(void **st) {
  (void)st;
  hd_dtls_t *c, *s;
  make_good_pair(&c, &s);
  link_t l;
  link_init(&l, c, s);
  run(&l, HD_SEC(60));
  assert_int_equal(hd_dtls_state(s), HD_DTLS_CONNECTED);
  assert_int_equal(hd_dtls_dropped(s), 0);

  /* The attack: 8 datagrams, each one 15-byte epoch-1 alert record. */
  for (int i = 0; i < 8; i++)
    assert_int_equal(feed_forged(s, 21, 1, (uint8_t)(100 + i), 2), HD_EPROTO);
  assert_int_equal(hd_dtls_state(s), HD_DTLS_CONNECTED);
  assert_int_equal(hd_dtls_dropped(s), 8);
  /* Too short for the GCM nonce + tag, any content type. */
  assert_int_equal(feed_forged(s, 23, 1, 1, 23), HD_EPROTO);
  assert_int_equal(feed_forged(s, 22, 1, 2, 2), HD_EPROTO);
  assert_int_equal(feed_forged(s, 20, 1, 3, 1), HD_EPROTO);
  /* Plaintext epoch-0 alert / application data after the handshake, other epochs. */
  assert_int_equal(feed_forged(s, 21, 0, 4, 2), HD_EPROTO);
  assert_int_equal(feed_forged(s, 23, 0, 5, 40), HD_EPROTO);
  assert_int_equal(feed_forged(s, 21, 2, 6, 40), HD_EPROTO);
  assert_int_equal(hd_dtls_dropped(s), 14);
  /* Full-size epoch-1 records with a wrong tag: OpenSSL discards them, we count. */
  assert_int_equal(feed_forged(s, 21, 1, 7, 40), 0);
  assert_int_equal(feed_forged(s, 23, 1, 8, 64), 0);
  assert_int_equal(hd_dtls_dropped(s), 16);
  assert_int_equal(hd_dtls_state(s), HD_DTLS_CONNECTED);
  assert_string_equal(hd_dtls_error(s), "");
  assert_int_equal(hd_dtls_state(c), HD_DTLS_CONNECTED);

  /* The session still works both ways, and authentic records are not counted. */
  const uint8_t msg[] = "still here";
  uint8_t buf[HD_DTLS_MAX_DATAGRAM];
  assert_int_equal(hd_dtls_send(c, msg, sizeof msg), (int)sizeof msg);
  run(&l, l.now);
  assert_int_equal(hd_dtls_recv(s, buf, sizeof buf), (int)sizeof msg);
  assert_int_equal(hd_dtls_send(s, msg, 3), 3);
  run(&l, l.now);
  assert_int_equal(hd_dtls_recv(c, buf, sizeof buf), 3);
  assert_int_equal(hd_dtls_dropped(s), 16);
  /* A replayed authentic record is discarded and counted, nothing delivered twice. */
  assert_int_equal(hd_dtls_send(c, msg, sizeof msg), (int)sizeof msg);
  int n = hd_dtls_poll(c, buf, sizeof buf);
  assert_true(n > 0);
  assert_int_equal(hd_dtls_feed(s, buf, (size_t)n, 0), 0);
  assert_int_equal(hd_dtls_feed(s, buf, (size_t)n, 0), 0);
  uint8_t got[64];
  assert_int_equal(hd_dtls_recv(s, got, sizeof got), (int)sizeof msg);
  assert_int_equal(hd_dtls_recv(s, got, sizeof got), 0);
  assert_int_equal(hd_dtls_dropped(s), 17);
  /* The real peer's close_notify is authenticated and still closes. */
  assert_int_equal(hd_dtls_close(c), 0);
  run(&l, l.now);
  assert_int_equal(hd_dtls_state(s), HD_DTLS_CLOSED);
  assert_int_equal(hd_dtls_dropped(s), 17);
  hd_dtls_free(c);
  hd_dtls_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cert_fingerprint_format),
      cmocka_unit_test(test_full_handshake_gcm),
      cmocka_unit_test(test_profile_cm_when_server_only_cm),
      cmocka_unit_test(test_profile_cm_when_client_only_cm),
      cmocka_unit_test(test_profile_server_preference),
      cmocka_unit_test(test_profile_setter_errors),
      cmocka_unit_test(test_no_common_profile_fails),
      cmocka_unit_test(test_client_rejects_server_fingerprint),
      cmocka_unit_test(test_server_rejects_client_fingerprint),
      cmocka_unit_test(test_no_fingerprint_check_in_tests),
      cmocka_unit_test(test_lost_first_flights_recovered_by_virtual_time),
      cmocka_unit_test(test_lost_last_flight_recovered),
      cmocka_unit_test(test_total_loss_fails_after_budget),
      cmocka_unit_test(test_random_loss_handshake_completes),
      cmocka_unit_test(test_garbage_is_rejected_without_harm),
      cmocka_unit_test(test_junk_during_handshake_keeps_schedule),
      cmocka_unit_test(test_close_during_handshake),
      cmocka_unit_test(test_spoofed_records_do_not_end_session),
  };
  return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
