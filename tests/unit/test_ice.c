/* Unit tests for src/proto/ice (ICE-lite, RFC 8445 §2.5, consent RFC 7675):
 * virtual clock, no sockets. Checks are built the way Chrome sends them. */
#include "hd_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "base/err.h"
#include "proto/ice.h"
#include "proto/stun.h"

#define LUFRAG "srvA"
#define LPWD "serverpassword0123456789"
#define RUFRAG "cliB"

typedef struct {
  int use_candidate;
  int controlled; /* send ICE-CONTROLLED instead of ICE-CONTROLLING */
  int no_fingerprint;
  int no_integrity;
  uint16_t extra_attr;  /* if nonzero, add this (empty) attribute */
  const char *username; /* default LUFRAG ":" RUFRAG */
  const char *pwd;      /* default LPWD */
  uint16_t type;        /* default binding request */
} check_opts_t;

static int build_check(uint8_t *buf, size_t cap, const check_opts_t *o) {
  hd_stun_builder_t b;
  const char *user = o && o->username ? o->username : LUFRAG ":" RUFRAG;
  const char *pwd = o && o->pwd ? o->pwd : LPWD;
  hd_stun_build_start(&b, buf, cap, o && o->type ? o->type : HD_STUN_BINDING_REQUEST, NULL);
  hd_stun_add_username(&b, user, strlen(user));
  hd_stun_add_attr(&b, 0xC057, "\x00\x01\x00\x0a", 4); /* GOOG-NETWORK-INFO */
  if (o && o->controlled)
    hd_stun_add_ice_controlled(&b, 0x1122334455667788ull);
  else
    hd_stun_add_ice_controlling(&b, 0x1122334455667788ull);
  if (o && o->use_candidate) hd_stun_add_use_candidate(&b);
  hd_stun_add_priority(&b, 1853824767u);
  if (o && o->extra_attr) hd_stun_add_attr(&b, o->extra_attr, NULL, 0);
  int n = hd_stun_build_finish(&b, o && o->no_integrity ? NULL : (const uint8_t *)pwd, strlen(pwd),
                               !(o && o->no_fingerprint));
  assert_true(n > 0);
  return n;
}

static struct sockaddr_in v4(const char *ip, uint16_t port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

/* Feeds a check built from opts from `from`; returns hd_ice_feed's result. */
static int feed(hd_ice_t *ice, const check_opts_t *o, const struct sockaddr_in *from, hd_time_t now,
                uint8_t *resp, size_t *resp_len) {
  uint8_t pkt[512];
  int n = build_check(pkt, sizeof pkt, o);
  return hd_ice_feed(ice, pkt, (size_t)n, (const struct sockaddr *)from, sizeof *from, now, resp, 512,
                     resp_len);
}

static int same_addr(const struct sockaddr *sa, const struct sockaddr_in *b) {
  if (!sa || sa->sa_family != AF_INET) return 0;
  const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
  return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
}

/* Finds attribute `type` in a message; returns its value pointer and length. */
static const uint8_t *find_attr(const uint8_t *msg, size_t len, uint16_t type, size_t *alen) {
  size_t off = 20;
  while (off + 4 <= len) {
    uint16_t t = hd_get_u16(msg + off), l = hd_get_u16(msg + off + 2);
    if (t == type) {
      *alen = l;
      return msg + off + 4;
    }
    off += 4 + (((size_t)l + 3) & ~(size_t)3);
  }
  return NULL;
}

static void test_valid_check_response(void **st) {
  (void)st;
  hd_ice_t ice;
  assert_int_equal(hd_ice_init(&ice, LUFRAG, LPWD, RUFRAG), 0);
  assert_int_equal(hd_ice_state(&ice), HD_ICE_NEW);
  assert_null(hd_ice_selected(&ice, NULL));
  struct sockaddr_in from = v4("198.51.100.9", 54321);
  uint8_t pkt[512], resp[512];
  size_t rl = 0;
  int n = build_check(pkt, sizeof pkt, NULL);
  assert_int_equal(hd_ice_feed(&ice, pkt, (size_t)n, (struct sockaddr *)&from, sizeof from, HD_SEC(1), resp,
                               sizeof resp, &rl),
                   1);

  hd_stun_msg_t req, m;
  assert_int_equal(hd_stun_parse(&req, pkt, (size_t)n), 0);
  assert_int_equal(hd_stun_parse(&m, resp, rl), 0);
  assert_int_equal(m.len, rl);
  assert_int_equal(m.type, HD_STUN_BINDING_SUCCESS);
  assert_memory_equal(m.txid, req.txid, 12);
  assert_true(m.fingerprint_ok);
  assert_int_equal(hd_stun_check_integrity(&m, resp, rl, (const uint8_t *)LPWD, strlen(LPWD)), 0);
  assert_int_equal(hd_stun_check_integrity(&m, resp, rl, (const uint8_t *)"otherpwd", 8), HD_EAUTH);
  assert_true(m.present & HD_STUN_HAS_XOR_MAPPED_ADDRESS);
  assert_true(same_addr((struct sockaddr *)&m.xor_mapped, &from));

  assert_int_equal(hd_ice_state(&ice), HD_ICE_CONNECTED);
  socklen_t sl = 0;
  assert_true(same_addr(hd_ice_selected(&ice, &sl), &from));
  assert_int_equal(sl, sizeof from);
  assert_false(hd_ice_is_nominated(&ice)); /* tentative */
  assert_int_equal(ice.n_checks, 1);
  hd_ice_free(&ice);
}

static void test_ipv6_check(void **st) {
  (void)st;
  hd_ice_t ice;
  assert_int_equal(hd_ice_init(&ice, LUFRAG, LPWD, NULL), 0);
  struct sockaddr_in6 from;
  memset(&from, 0, sizeof from);
  from.sin6_family = AF_INET6;
  from.sin6_port = htons(9);
  inet_pton(AF_INET6, "2001:db8::1", &from.sin6_addr);
  uint8_t pkt[512], resp[512];
  size_t rl;
  int n = build_check(pkt, sizeof pkt, NULL);
  assert_int_equal(
      hd_ice_feed(&ice, pkt, (size_t)n, (struct sockaddr *)&from, sizeof from, 0, resp, sizeof resp, &rl), 1);
  hd_stun_msg_t m;
  assert_int_equal(hd_stun_parse(&m, resp, rl), 0);
  assert_int_equal(m.xor_mapped.ss_family, AF_INET6);
  assert_memory_equal(&((struct sockaddr_in6 *)&m.xor_mapped)->sin6_addr, &from.sin6_addr, 16);
  socklen_t sl;
  const struct sockaddr *sel = hd_ice_selected(&ice, &sl);
  assert_non_null(sel);
  assert_int_equal(sl, sizeof from);
  assert_int_equal(sel->sa_family, AF_INET6);
  /* Bad `from` addresses are caller errors. */
  struct sockaddr bad;
  memset(&bad, 0, sizeof bad);
  bad.sa_family = AF_UNIX;
  assert_int_equal(hd_ice_feed(&ice, pkt, (size_t)n, &bad, sizeof bad, 0, resp, sizeof resp, &rl), HD_EINVAL);
  assert_int_equal(hd_ice_feed(&ice, pkt, (size_t)n, (struct sockaddr *)&from, 8, 0, resp, sizeof resp, &rl),
                   HD_EINVAL);
}

static void test_auth_failures(void **st) {
  (void)st;
  hd_ice_t ice;
  assert_int_equal(hd_ice_init(&ice, LUFRAG, LPWD, RUFRAG), 0);
  struct sockaddr_in from = v4("198.51.100.9", 1000);
  uint8_t resp[512];
  size_t rl = 777;
  check_opts_t o = {0};
  o.pwd = "wrongpassword0123456789";
  assert_int_equal(feed(&ice, &o, &from, 0, resp, &rl), HD_EAUTH);
  assert_int_equal(rl, 777); /* no response */
  memset(&o, 0, sizeof o);
  o.username = "xxxx:" RUFRAG; /* not our ufrag */
  assert_int_equal(feed(&ice, &o, &from, 0, resp, &rl), HD_EAUTH);
  o.username = LUFRAG ":other"; /* not the peer's ufrag */
  assert_int_equal(feed(&ice, &o, &from, 0, resp, &rl), HD_EAUTH);
  o.username = LUFRAG "x:" RUFRAG; /* prefix is not enough */
  assert_int_equal(feed(&ice, &o, &from, 0, resp, &rl), HD_EAUTH);
  o.username = LUFRAG; /* no colon */
  assert_int_equal(feed(&ice, &o, &from, 0, resp, &rl), HD_EAUTH);
  memset(&o, 0, sizeof o);
  o.no_integrity = 1;
  assert_int_equal(feed(&ice, &o, &from, 0, resp, &rl), HD_EPROTO);
  assert_int_equal(ice.n_auth_fail, 5);
  assert_int_equal(hd_ice_state(&ice), HD_ICE_NEW);
  assert_null(hd_ice_selected(&ice, NULL));

  /* Corrupted fingerprint. */
  uint8_t pkt[512];
  int n = build_check(pkt, sizeof pkt, NULL);
  pkt[n - 1] ^= 1;
  assert_int_equal(
      hd_ice_feed(&ice, pkt, (size_t)n, (struct sockaddr *)&from, sizeof from, 0, resp, sizeof resp, &rl),
      HD_EAUTH);
  /* Not STUN / truncated. */
  assert_int_equal(hd_ice_feed(&ice, (const uint8_t *)"\x16\xfe\xfd", 3, (struct sockaddr *)&from,
                               sizeof from, 0, resp, sizeof resp, &rl),
                   HD_EPROTO);
  n = build_check(pkt, sizeof pkt, NULL);
  assert_true(hd_ice_feed(&ice, pkt, (size_t)n - 4, (struct sockaddr *)&from, sizeof from, 0, resp,
                          sizeof resp, &rl) < 0);
  assert_int_equal(hd_ice_state(&ice), HD_ICE_NEW);

  /* Without a remote ufrag any peer ufrag is accepted; after setting it, only that one. */
  assert_int_equal(hd_ice_init(&ice, LUFRAG, LPWD, NULL), 0);
  memset(&o, 0, sizeof o);
  o.username = LUFRAG ":whatever";
  assert_int_equal(feed(&ice, &o, &from, 0, resp, &rl), 1);
  assert_int_equal(hd_ice_set_remote_ufrag(&ice, RUFRAG), 0);
  assert_int_equal(feed(&ice, &o, &from, 0, resp, &rl), HD_EAUTH);
  assert_int_equal(feed(&ice, NULL, &from, 0, resp, &rl), 1);
}

static void test_init_args(void **st) {
  (void)st;
  hd_ice_t ice;
  char longu[HD_ICE_MAX_UFRAG + 2];
  memset(longu, 'u', sizeof longu - 1);
  longu[sizeof longu - 1] = 0;
  assert_int_equal(hd_ice_init(&ice, NULL, LPWD, NULL), HD_EINVAL);
  assert_int_equal(hd_ice_init(&ice, LUFRAG, NULL, NULL), HD_EINVAL);
  assert_int_equal(hd_ice_init(&ice, "", LPWD, NULL), HD_EINVAL);
  assert_int_equal(hd_ice_init(&ice, "a:b", LPWD, NULL), HD_EINVAL);
  assert_int_equal(hd_ice_init(&ice, longu, LPWD, NULL), HD_EINVAL);
  assert_int_equal(hd_ice_init(&ice, LUFRAG, LPWD, longu), HD_EINVAL);
  longu[HD_ICE_MAX_UFRAG] = 0;
  assert_int_equal(hd_ice_init(&ice, longu, LPWD, NULL), 0);
}

static void test_nomination_and_path_change(void **st) {
  (void)st;
  hd_ice_t ice;
  assert_int_equal(hd_ice_init(&ice, LUFRAG, LPWD, RUFRAG), 0);
  struct sockaddr_in a = v4("10.0.0.1", 1111), b = v4("192.0.2.50", 2222), c = v4("192.0.2.51", 3333);
  uint8_t resp[512];
  size_t rl;
  check_opts_t uc = {0};
  uc.use_candidate = 1;

  assert_int_equal(feed(&ice, NULL, &a, HD_MS(10), resp, &rl), 1);
  assert_true(same_addr(hd_ice_selected(&ice, NULL), &a)); /* tentative: first valid check */
  assert_int_equal(feed(&ice, NULL, &b, HD_MS(20), resp, &rl), 1);
  assert_true(same_addr(hd_ice_selected(&ice, NULL), &a)); /* still the first one */
  assert_false(hd_ice_is_nominated(&ice));

  assert_int_equal(feed(&ice, &uc, &b, HD_MS(30), resp, &rl), 1);
  assert_true(same_addr(hd_ice_selected(&ice, NULL), &b));
  assert_true(hd_ice_is_nominated(&ice));
  assert_int_equal(feed(&ice, NULL, &a, HD_MS(40), resp, &rl), 1); /* a plain check does not steal it */
  assert_true(same_addr(hd_ice_selected(&ice, NULL), &b));

  /* Path change (e.g. Wi-Fi -> LTE): a new nomination replaces the old one. */
  assert_int_equal(feed(&ice, &uc, &c, HD_SEC(10), resp, &rl), 1);
  assert_true(same_addr(hd_ice_selected(&ice, NULL), &c));
  assert_true(hd_ice_is_nominated(&ice));
  assert_int_equal(hd_ice_state(&ice), HD_ICE_CONNECTED);
  /* Consent now follows the new path. */
  assert_int_equal(hd_ice_next_timeout(&ice), HD_SEC(10) + HD_SEC(30));
}

static void test_consent_expiry_exact(void **st) {
  (void)st;
  hd_ice_t ice;
  assert_int_equal(hd_ice_init(&ice, LUFRAG, LPWD, RUFRAG), 0);
  struct sockaddr_in a = v4("10.0.0.1", 1111);
  uint8_t resp[512];
  size_t rl;
  check_opts_t uc = {0};
  uc.use_candidate = 1;
  hd_ice_start(&ice, 0);
  assert_int_equal(feed(&ice, &uc, &a, 0, resp, &rl), 1);
  assert_int_equal(hd_ice_next_timeout(&ice), HD_SEC(30));
  assert_int_equal(hd_ice_handle_timeout(&ice, HD_MS(29900)), 0);
  assert_int_equal(hd_ice_state(&ice), HD_ICE_CONNECTED);
  assert_int_equal(hd_ice_handle_timeout(&ice, HD_SEC(30) - 1), 0);
  assert_int_equal(hd_ice_state(&ice), HD_ICE_CONNECTED);
  assert_int_equal(hd_ice_handle_timeout(&ice, HD_SEC(30)), HD_ETIMEDOUT);
  assert_int_equal(hd_ice_state(&ice), HD_ICE_FAILED);
  assert_null(hd_ice_selected(&ice, NULL));
  assert_int_equal(hd_ice_next_timeout(&ice), HD_TIME_NEVER);
  /* A late check cannot revive a session whose consent expired. */
  assert_int_equal(feed(&ice, &uc, &a, HD_SEC(31), resp, &rl), HD_ECLOSED);
  assert_int_equal(hd_ice_handle_timeout(&ice, HD_SEC(40)), HD_ETIMEDOUT);

  /* Expiry is also applied when a packet arrives before the owner's timer fires. */
  assert_int_equal(hd_ice_init(&ice, LUFRAG, LPWD, RUFRAG), 0);
  assert_int_equal(feed(&ice, &uc, &a, 0, resp, &rl), 1);
  assert_int_equal(feed(&ice, &uc, &a, HD_SEC(30), resp, &rl), HD_ECLOSED);

  /* The timeout field is configurable. */
  assert_int_equal(hd_ice_init(&ice, LUFRAG, LPWD, RUFRAG), 0);
  ice.consent_timeout = HD_SEC(5);
  assert_int_equal(feed(&ice, &uc, &a, HD_SEC(1), resp, &rl), 1);
  assert_int_equal(hd_ice_next_timeout(&ice), HD_SEC(6));
  assert_int_equal(hd_ice_handle_timeout(&ice, HD_SEC(6)), HD_ETIMEDOUT);
}

static void test_consent_refreshed_for_5_minutes(void **st) {
  (void)st;
  hd_ice_t ice;
  assert_int_equal(hd_ice_init(&ice, LUFRAG, LPWD, RUFRAG), 0);
  struct sockaddr_in a = v4("10.0.0.1", 1111);
  uint8_t resp[512];
  size_t rl;
  check_opts_t uc = {0};
  uc.use_candidate = 1;
  hd_time_t t;
  for (t = 0; t <= HD_SEC(300); t += HD_SEC(5)) {
    assert_int_equal(feed(&ice, t == 0 ? &uc : NULL, &a, t, resp, &rl), 1);
    /* Drive the owner's timer at every second in between. */
    for (hd_time_t u = t; u < t + HD_SEC(5); u += HD_SEC(1))
      assert_int_equal(hd_ice_handle_timeout(&ice, u), 0);
    assert_int_equal(hd_ice_state(&ice), HD_ICE_CONNECTED);
    assert_int_equal(hd_ice_next_timeout(&ice), t + HD_SEC(30));
  }
  assert_true(hd_ice_is_nominated(&ice));
  assert_int_equal(ice.n_checks, 61);
  t -= HD_SEC(5); /* last check */
  assert_int_equal(hd_ice_handle_timeout(&ice, t + HD_SEC(30) - 1), 0);
  assert_int_equal(hd_ice_handle_timeout(&ice, t + HD_SEC(30)), HD_ETIMEDOUT);
}

static void test_connect_timeout(void **st) {
  (void)st;
  hd_ice_t ice;
  assert_int_equal(hd_ice_init(&ice, LUFRAG, LPWD, RUFRAG), 0);
  assert_int_equal(hd_ice_next_timeout(&ice), 0);                /* unanchored: due now */
  assert_int_equal(hd_ice_handle_timeout(&ice, HD_SEC(100)), 0); /* anchors at 100 s */
  assert_int_equal(hd_ice_next_timeout(&ice), HD_SEC(130));
  assert_int_equal(hd_ice_handle_timeout(&ice, HD_MS(129900)), 0);
  assert_int_equal(hd_ice_state(&ice), HD_ICE_NEW);
  assert_int_equal(hd_ice_handle_timeout(&ice, HD_SEC(130)), HD_ETIMEDOUT);
  assert_int_equal(hd_ice_state(&ice), HD_ICE_FAILED);

  /* A valid check before the deadline cancels it. */
  assert_int_equal(hd_ice_init(&ice, LUFRAG, LPWD, RUFRAG), 0);
  hd_ice_start(&ice, 0);
  struct sockaddr_in a = v4("10.0.0.1", 1111);
  uint8_t resp[512];
  size_t rl;
  assert_int_equal(feed(&ice, NULL, &a, HD_SEC(29), resp, &rl), 1);
  assert_int_equal(hd_ice_handle_timeout(&ice, HD_SEC(30)), 0);
  assert_int_equal(hd_ice_next_timeout(&ice), HD_SEC(59));
}

static void test_role_conflict(void **st) {
  (void)st;
  hd_ice_t ice;
  assert_int_equal(hd_ice_init(&ice, LUFRAG, LPWD, RUFRAG), 0);
  struct sockaddr_in a = v4("10.0.0.1", 1111);
  uint8_t pkt[512], resp[512];
  size_t rl;
  check_opts_t o = {0};
  o.controlled = 1;
  o.use_candidate = 1;
  int n = build_check(pkt, sizeof pkt, &o);
  assert_int_equal(
      hd_ice_feed(&ice, pkt, (size_t)n, (struct sockaddr *)&a, sizeof a, 0, resp, sizeof resp, &rl), 1);
  hd_stun_msg_t req, m;
  assert_int_equal(hd_stun_parse(&req, pkt, (size_t)n), 0);
  assert_int_equal(hd_stun_parse(&m, resp, rl), 0);
  assert_int_equal(m.type, HD_STUN_BINDING_ERROR);
  assert_memory_equal(m.txid, req.txid, 12);
  assert_int_equal(m.error_code, 487);
  assert_true(m.fingerprint_ok);
  assert_int_equal(hd_stun_check_integrity(&m, resp, rl, (const uint8_t *)LPWD, strlen(LPWD)), 0);
  /* Not a valid check: no state change. */
  assert_int_equal(hd_ice_state(&ice), HD_ICE_NEW);
  assert_null(hd_ice_selected(&ice, NULL));
  /* A conflicting request with a bad password gets no response at all. */
  o.pwd = "nottherightpassword!!!";
  assert_int_equal(feed(&ice, &o, &a, 0, resp, &rl), HD_EAUTH);
}

static void test_unknown_attribute_420(void **st) {
  (void)st;
  hd_ice_t ice;
  assert_int_equal(hd_ice_init(&ice, LUFRAG, LPWD, RUFRAG), 0);
  struct sockaddr_in a = v4("10.0.0.1", 1111);
  uint8_t resp[512];
  size_t rl;
  check_opts_t o = {0};
  o.extra_attr = 0x0042; /* comprehension-required, unknown */
  assert_int_equal(feed(&ice, &o, &a, 0, resp, &rl), 1);
  hd_stun_msg_t m;
  assert_int_equal(hd_stun_parse(&m, resp, rl), 0);
  assert_int_equal(m.type, HD_STUN_BINDING_ERROR);
  assert_int_equal(m.error_code, 420);
  assert_int_equal(hd_stun_check_integrity(&m, resp, rl, (const uint8_t *)LPWD, strlen(LPWD)), 0);
  size_t alen = 0;
  const uint8_t *ua = find_attr(resp, rl, HD_STUN_ATTR_UNKNOWN_ATTRIBUTES, &alen);
  assert_non_null(ua);
  assert_int_equal(alen, 2);
  assert_int_equal(hd_get_u16(ua), 0x0042);
  assert_int_equal(hd_ice_state(&ice), HD_ICE_NEW);
  /* A comprehension-optional unknown attribute is fine. */
  o.extra_attr = 0xC060;
  assert_int_equal(feed(&ice, &o, &a, 0, resp, &rl), 1);
  assert_int_equal(hd_stun_parse(&m, resp, rl), 0);
  assert_int_equal(m.type, HD_STUN_BINDING_SUCCESS);
}

static void test_ignored_messages(void **st) {
  (void)st;
  hd_ice_t ice;
  assert_int_equal(hd_ice_init(&ice, LUFRAG, LPWD, RUFRAG), 0);
  struct sockaddr_in a = v4("10.0.0.1", 1111);
  uint8_t resp[512];
  size_t rl = 99;
  check_opts_t o = {0};
  o.type = HD_STUN_BINDING_INDICATION;
  assert_int_equal(feed(&ice, &o, &a, 0, resp, &rl), 0);
  o.type = HD_STUN_BINDING_SUCCESS;
  assert_int_equal(feed(&ice, &o, &a, 0, resp, &rl), 0);
  o.type = HD_STUN_BINDING_ERROR;
  assert_int_equal(feed(&ice, &o, &a, 0, resp, &rl), 0);
  assert_int_equal(rl, 99);
  o.type = 0x0003; /* Allocate request (TURN) */
  assert_int_equal(feed(&ice, &o, &a, 0, resp, &rl), HD_EUNSUPPORTED);
  assert_int_equal(hd_ice_state(&ice), HD_ICE_NEW);
}

static void test_small_resp_buffer(void **st) {
  (void)st;
  hd_ice_t ice;
  assert_int_equal(hd_ice_init(&ice, LUFRAG, LPWD, RUFRAG), 0);
  struct sockaddr_in a = v4("10.0.0.1", 1111);
  uint8_t pkt[512], resp[64];
  size_t rl = 5;
  int n = build_check(pkt, sizeof pkt, NULL);
  /* Success response is 20 + 12 + 24 + 8 = 64 bytes. */
  assert_int_equal(hd_ice_feed(&ice, pkt, (size_t)n, (struct sockaddr *)&a, sizeof a, 0, resp, 63, &rl),
                   HD_ENOSPC);
  assert_int_equal(rl, 5);
  assert_int_equal(hd_ice_state(&ice), HD_ICE_NEW); /* untouched */
  assert_int_equal(ice.n_remotes, 0);
  assert_int_equal(hd_ice_feed(&ice, pkt, (size_t)n, (struct sockaddr *)&a, sizeof a, 0, resp, 64, &rl), 1);
  assert_int_equal(rl, 64);
}

static void test_remote_cap(void **st) {
  (void)st;
  hd_ice_t ice;
  assert_int_equal(hd_ice_init(&ice, LUFRAG, LPWD, RUFRAG), 0);
  uint8_t resp[512];
  size_t rl;
  check_opts_t uc = {0};
  uc.use_candidate = 1;
  struct sockaddr_in nom = v4("10.0.0.1", 1);
  assert_int_equal(feed(&ice, &uc, &nom, 0, resp, &rl), 1);
  for (int i = 0; i < 50; i++) {
    struct sockaddr_in x = v4("10.0.0.2", (uint16_t)(2000 + i));
    assert_int_equal(feed(&ice, NULL, &x, HD_MS(i + 1), resp, &rl), 1);
    assert_true(ice.n_remotes <= HD_ICE_MAX_REMOTE);
  }
  assert_int_equal(ice.n_remotes, HD_ICE_MAX_REMOTE);
  /* The nominated address survives the churn. */
  assert_true(same_addr(hd_ice_selected(&ice, NULL), &nom));
  assert_true(hd_ice_is_nominated(&ice));
}

static void test_tentative_follows_live_path(void **st) {
  (void)st;
  hd_ice_t ice;
  assert_int_equal(hd_ice_init(&ice, LUFRAG, LPWD, RUFRAG), 0);
  struct sockaddr_in a = v4("10.0.0.1", 1), b = v4("10.0.0.2", 2);
  uint8_t resp[512];
  size_t rl;
  assert_int_equal(feed(&ice, NULL, &a, 0, resp, &rl), 1);
  for (hd_time_t t = HD_SEC(5); t <= HD_SEC(40); t += HD_SEC(5)) {
    assert_int_equal(feed(&ice, NULL, &b, t, resp, &rl), 1);
    assert_int_equal(hd_ice_handle_timeout(&ice, t), 0);
  }
  /* a went quiet at 30 s; the unnominated selection moved to b instead of failing. */
  assert_true(same_addr(hd_ice_selected(&ice, NULL), &b));
  assert_int_equal(hd_ice_state(&ice), HD_ICE_CONNECTED);
}

static void test_restart(void **st) {
  (void)st;
  hd_ice_t ice;
  assert_int_equal(hd_ice_init(&ice, LUFRAG, LPWD, RUFRAG), 0);
  struct sockaddr_in a = v4("10.0.0.1", 1), b = v4("10.0.0.9", 9);
  uint8_t resp[512];
  size_t rl;
  check_opts_t uc = {0};
  uc.use_candidate = 1;
  assert_int_equal(feed(&ice, &uc, &a, 0, resp, &rl), 1);
  assert_int_equal(hd_ice_restart(&ice, "srvN", "newserverpassword0123456", "cliN"), 0);
  /* Old credentials no longer work; media still goes to a until re-nominated. */
  assert_int_equal(feed(&ice, &uc, &b, HD_SEC(1), resp, &rl), HD_EAUTH);
  assert_true(same_addr(hd_ice_selected(&ice, NULL), &a));
  check_opts_t nu = {0};
  nu.use_candidate = 1;
  nu.username = "srvN:cliN";
  nu.pwd = "newserverpassword0123456";
  assert_int_equal(feed(&ice, &nu, &b, HD_SEC(2), resp, &rl), 1);
  assert_true(same_addr(hd_ice_selected(&ice, NULL), &b));
  assert_int_equal(hd_ice_restart(&ice, "bad:ufrag", "x", NULL), HD_EINVAL);
  assert_int_equal(ice.local_ufrag_len, 4); /* unchanged on failure */
  hd_ice_free(&ice);
  hd_ice_free(&ice);
  assert_int_equal(hd_ice_state(&ice), HD_ICE_FAILED);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_check_response),
      cmocka_unit_test(test_ipv6_check),
      cmocka_unit_test(test_auth_failures),
      cmocka_unit_test(test_init_args),
      cmocka_unit_test(test_nomination_and_path_change),
      cmocka_unit_test(test_consent_expiry_exact),
      cmocka_unit_test(test_consent_refreshed_for_5_minutes),
      cmocka_unit_test(test_connect_timeout),
      cmocka_unit_test(test_role_conflict),
      cmocka_unit_test(test_unknown_attribute_420),
      cmocka_unit_test(test_ignored_messages),
      cmocka_unit_test(test_small_resp_buffer),
      cmocka_unit_test(test_remote_cap),
      cmocka_unit_test(test_tentative_follows_live_path),
      cmocka_unit_test(test_restart),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
