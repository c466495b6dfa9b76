/* Unit tests for proto/srtp_gcm, the native AES-GCM SRTP engine: RFC 7714 §16/§17
 * known answers, and cross-checks against libsrtp2 (HD_SRTP_ENGINE=libsrtp) —
 * byte-identical protect output, and each side unprotecting the other's packets
 * through sequence wrap, reordering, replays, too-old packets, tampering, CSRCs
 * and header extensions, several SSRCs, RTP and RTCP. */
#include "hd_test.h"

#include <pthread.h>

#include "base/err.h"
#include "proto/srtp.h"
#include "proto/srtp_gcm.h"

static void unhex(const char *h, uint8_t *out, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned v;
    assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
    out[i] = (uint8_t)v;
  }
  assert_int_equal(strlen(h), 2 * n);
}

/* RFC 7714 §16.1 / §17.1: session key and salt given directly (no KDF). */
static const char *kRfcKey = "000102030405060708090a0b0c0d0e0f";
static const char *kRfcSalt = "517569642070726f2071756f";
/* §16: header 8040f17b 8041f8d3 5501a0b2, "Gallia est omnis divisa in partes tres", ROC 0. */
static const char *kRfcRtp =
    "8040f17b8041f8d35501a0b247616c6c696120657374206f6d6e69732064697669736120696e2070617274"
    "65732074726573";
static const char *kRfcSrtp =
    "8040f17b8041f8d35501a0b2f24de3a3fb34de6cacba861c9d7e4bcabe633bd50d294e6f42a5f47a51c7d1"
    "9b36de3adf8833899d7f27beb16a9152cf765ee4390cce";
/* §17: the sender report of SSRC "Mars", SRTCP index 0x5d4; tag, then E||index. */
static const char *kRfcRtcp =
    "81c8000d4d6172734e5450314e545032525450200000042a0000e9304c756e61deadbeefdeadbeefdeadbee"
    "fdeadbeefdeadbeef";
static const char *kRfcSrtcp =
    "81c8000d4d61727363e94885dcdab67ca727d7662f6b7e997ff5c0f76c06f32dc676a5f1730d6fda4ce09"
    "b4686303ded0bb9275bc84aa45896cf4d2fc5abf87245d9eade800005d4";

static hd_srtp_gcm_t *rfc_engine(void) {
  hd_srtp_gcm_session_keys_t k;
  unhex(kRfcKey, k.rtp_key, 16);
  unhex(kRfcSalt, k.rtp_salt, 12);
  memcpy(k.rtcp_key, k.rtp_key, 16);
  memcpy(k.rtcp_salt, k.rtp_salt, 12);
  hd_srtp_gcm_t *g;
  assert_int_equal(hd_srtp_gcm_new_session(&g, &k, &k), 0);
  return g;
}

static void test_rfc7714_rtp(void **st) {
  (void)st;
  uint8_t plain[50], srtp[66], buf[100];
  unhex(kRfcRtp, plain, sizeof plain);
  unhex(kRfcSrtp, srtp, sizeof srtp);
  hd_srtp_gcm_t *g = rfc_engine();
  memcpy(buf, plain, sizeof plain);
  assert_int_equal(hd_srtp_gcm_protect(g, buf, sizeof plain, sizeof buf), (int)sizeof srtp);
  assert_memory_equal(buf, srtp, sizeof srtp);
  hd_srtp_gcm_free(g);
  g = rfc_engine(); /* fresh receiver */
  assert_int_equal(hd_srtp_gcm_unprotect(g, buf, sizeof srtp), (int)sizeof plain);
  assert_memory_equal(buf, plain, sizeof plain);
  memcpy(buf, srtp, sizeof srtp);
  assert_int_equal(hd_srtp_gcm_unprotect(g, buf, sizeof srtp), HD_EREPLAY);
  hd_srtp_gcm_free(g);
}

static void test_rfc7714_rtcp(void **st) {
  (void)st;
  uint8_t plain[52], srtcp[72], buf[128];
  unhex(kRfcRtcp, plain, sizeof plain);
  unhex(kRfcSrtcp, srtcp, sizeof srtcp);
  hd_srtp_gcm_t *g = rfc_engine();
  memcpy(buf, srtcp, sizeof srtcp);
  assert_int_equal(hd_srtp_gcm_unprotect_rtcp(g, buf, sizeof srtcp), (int)sizeof plain);
  assert_memory_equal(buf, plain, sizeof plain);
  /* Our SRTCP index counts from 1 (as libsrtp): protect 0x5d3 packets first. */
  for (int i = 1; i < 0x5d4; i++) {
    memcpy(buf, plain, sizeof plain);
    assert_int_equal(hd_srtp_gcm_protect_rtcp(g, buf, sizeof plain, sizeof buf), (int)sizeof srtcp);
  }
  memcpy(buf, plain, sizeof plain);
  assert_int_equal(hd_srtp_gcm_protect_rtcp(g, buf, sizeof plain, sizeof buf), (int)sizeof srtcp);
  assert_memory_equal(buf, srtcp, sizeof srtcp);
  hd_srtp_gcm_free(g);
}

/* ---- cross-implementation ---- */

static const uint8_t k1[28] = {0x3a, 0x11, 0x92, 0x07, 0xc4, 0x5e, 0x61, 0x28, 0x9d, 0x40,
                               0xee, 0x02, 0x7b, 0x55, 0x18, 0xa3, 0x66, 0x0f, 0xd1, 0x24,
                               0xb8, 0x73, 0x4c, 0x90, 0x05, 0xe9, 0x2a, 0x5d};
static const uint8_t k2[28] = {0xf0, 0x01, 0x22, 0x93, 0x34, 0xa5, 0x46, 0xb7, 0x58, 0xc9,
                               0x6a, 0xdb, 0x7c, 0xed, 0x8e, 0xff, 0x10, 0x21, 0x32, 0x43,
                               0x54, 0x65, 0x76, 0x87, 0x98, 0xa9, 0xba, 0xcb};

static hd_srtp_t *make(const char *engine, const uint8_t *local, const uint8_t *remote) {
  if (strcmp(engine, "libsrtp") == 0)
    setenv("HD_SRTP_ENGINE", "libsrtp", 1);
  else
    unsetenv("HD_SRTP_ENGINE");
  hd_srtp_t *s;
  assert_int_equal(hd_srtp_new(&s, HD_SRTP_AEAD_AES_128_GCM, local, remote, 28), 0);
  unsetenv("HD_SRTP_ENGINE");
  assert_string_equal(hd_srtp_engine(s), engine);
  return s;
}

/* Both engines on each end of one link: n_a/l_a send with k1, n_b/l_b receive it. */
typedef struct {
  hd_srtp_t *n_a, *l_a, *n_b, *l_b;
} link_t;

static void link_open(link_t *l) {
  l->n_a = make("native", k1, k2);
  l->l_a = make("libsrtp", k1, k2);
  l->n_b = make("native", k2, k1);
  l->l_b = make("libsrtp", k2, k1);
}

static void link_close(link_t *l) {
  hd_srtp_free(l->n_a);
  hd_srtp_free(l->l_a);
  hd_srtp_free(l->n_b);
  hd_srtp_free(l->l_b);
}

/* RTP with cc CSRCs, an RFC 8285 one-byte extension of ext words (if ext > 0)
 * and a payload; returns the length. */
static size_t make_rtp(uint8_t *p, uint16_t seq, uint32_t ssrc, int cc, int ext, size_t payload) {
  size_t n = 0;
  p[n++] = (uint8_t)(0x80 | (ext ? 0x10 : 0) | cc);
  p[n++] = 96;
  p[n++] = (uint8_t)(seq >> 8);
  p[n++] = (uint8_t)seq;
  uint32_t ts = (uint32_t)seq * 90u;
  for (int i = 3; i >= 0; i--)
    p[n++] = (uint8_t)(ts >> (8 * i));
  for (int i = 3; i >= 0; i--)
    p[n++] = (uint8_t)(ssrc >> (8 * i));
  for (int c = 0; c < cc; c++)
    for (int i = 0; i < 4; i++)
      p[n++] = (uint8_t)(0x10 * c + i);
  if (ext) {
    p[n++] = 0xbe;
    p[n++] = 0xde;
    p[n++] = 0;
    p[n++] = (uint8_t)ext;
    for (int i = 0; i < 4 * ext; i++)
      p[n++] = (uint8_t)(0x20 + i);
  }
  for (size_t i = 0; i < payload; i++)
    p[n++] = (uint8_t)(seq * 7 + i);
  return n;
}

/* SR-shaped compound packet of sender ssrc. */
static size_t make_rtcp(uint8_t *p, uint32_t ssrc, int salt) {
  size_t n = 28 + (size_t)(salt % 3) * 8;
  memset(p, 0, n);
  p[0] = 0x80;
  p[1] = 200;
  p[3] = (uint8_t)(n / 4 - 1);
  for (int i = 0; i < 4; i++)
    p[4 + i] = (uint8_t)(ssrc >> (24 - 8 * i));
  for (size_t i = 8; i < n; i++)
    p[i] = (uint8_t)(i * 3 + (size_t)salt);
  return n;
}

#define PKT 400

typedef struct {
  uint8_t plain[PKT], nat[PKT], lib[PKT];
  size_t plen;
  int slen;
} sent_t;

/* Protect on both senders: the outputs must be byte-identical. */
static void send_both(link_t *l, sent_t *s, int rtcp) {
  memcpy(s->nat, s->plain, s->plen);
  memcpy(s->lib, s->plain, s->plen);
  int a = rtcp ? hd_srtp_protect_rtcp(l->n_a, s->nat, s->plen, PKT)
               : hd_srtp_protect(l->n_a, s->nat, s->plen, PKT);
  int b = rtcp ? hd_srtp_protect_rtcp(l->l_a, s->lib, s->plen, PKT)
               : hd_srtp_protect(l->l_a, s->lib, s->plen, PKT);
  assert_int_equal(a, b);
  assert_true(a > (int)s->plen);
  assert_memory_equal(s->nat, s->lib, (size_t)a);
  s->slen = a;
}

/* Deliver to both receivers, each the other engine's output; both must agree. */
static int recv_both(link_t *l, const sent_t *s, int rtcp) {
  uint8_t x[PKT], y[PKT];
  memcpy(x, s->lib, (size_t)s->slen);
  memcpy(y, s->nat, (size_t)s->slen);
  int a = rtcp ? hd_srtp_unprotect_rtcp(l->n_b, x, (size_t)s->slen)
               : hd_srtp_unprotect(l->n_b, x, (size_t)s->slen);
  int b = rtcp ? hd_srtp_unprotect_rtcp(l->l_b, y, (size_t)s->slen)
               : hd_srtp_unprotect(l->l_b, y, (size_t)s->slen);
  assert_int_equal(a, b);
  if (a >= 0) {
    assert_int_equal(a, (int)s->plen);
    assert_memory_equal(x, s->plain, s->plen);
    assert_memory_equal(y, s->plain, s->plen);
  }
  return a;
}

#define NPKT 3600
#define NSSRC 3

static void test_cross_rtp(void **st) {
  (void)st;
  link_t l;
  link_open(&l);
  sent_t *v = calloc(NPKT, sizeof *v);
  assert_non_null(v);
  const uint32_t ssrcs[NSSRC] = {0x11111111u, 0xcafebabeu, 0x00000007u};
  /* SSRC k starts near the top of the sequence space: every stream wraps
   * 65535 -> 0 (ROC 0 -> 1) within its 1200 packets. */
  for (int i = 0; i < NPKT; i++) {
    int k = i % NSSRC;
    uint16_t seq = (uint16_t)(65000 + 100 * k + i / NSSRC);
    int cc = (i % 7 == 0) ? 2 : 0, ext = (i % 5 == 0) ? 1 + i % 3 : 0;
    v[i].plen = make_rtp(v[i].plain, seq, ssrcs[k], cc, ext, 20 + (size_t)(i % 300));
    send_both(&l, &v[i], 0);
    /* NACK retransmission: the same packet again gives the same bytes. */
    if (i % 97 == 5) {
      sent_t again = v[i];
      send_both(&l, &again, 0);
      assert_memory_equal(again.nat, v[i].nat, (size_t)v[i].slen);
    }
  }
  /* Deliver in blocks of 30, each reversed (reordering within the window); hold
   * back packets 4 and 2400 and replay some. */
  for (int b = 0; b < NPKT; b += 30)
    for (int i = b + 29; i >= b; i--) {
      if (i == 4 || i == 2400) continue;
      assert_int_equal(recv_both(&l, &v[i], 0), (int)v[i].plen);
      if (i % 50 == 3) assert_int_equal(recv_both(&l, &v[i], 0), HD_EREPLAY);
    }
  /* 2400 is ~400 behind its stream's newest: still accepted; 4 is ~1199 behind: too old. */
  assert_int_equal(recv_both(&l, &v[2400], 0), (int)v[2400].plen);
  assert_int_equal(recv_both(&l, &v[2400], 0), HD_EREPLAY);
  assert_int_equal(recv_both(&l, &v[4], 0), HD_EREPLAY);

  /* Tampered tag, payload or header: HD_EAUTH on both, and no state change. */
  int newest = NPKT - 1;
  sent_t fresh;
  fresh.plen = make_rtp(fresh.plain, (uint16_t)(65000 + 100 * (newest % NSSRC) + newest / NSSRC + 1),
                        ssrcs[newest % NSSRC], 1, 1, 64);
  send_both(&l, &fresh, 0);
  const size_t spots[] = {(size_t)fresh.slen - 1, 20, 1}; /* tag, extension, header */
  for (int i = 0; i < 3; i++) {
    sent_t bad = fresh;
    bad.nat[spots[i]] ^= 0x40;
    bad.lib[spots[i]] ^= 0x40;
    assert_int_equal(recv_both(&l, &bad, 0), HD_EAUTH);
  }
  assert_int_equal(recv_both(&l, &fresh, 0), (int)fresh.plen);

  /* A sequence number moved onto one already received: a replay (checked first). */
  sent_t moved = fresh;
  moved.nat[3] ^= 0x40;
  moved.lib[3] ^= 0x40;
  assert_int_equal(recv_both(&l, &moved, 0), HD_EREPLAY);

  /* The sender refuses an index older than its window (libsrtp: replay_old). */
  sent_t old;
  old.plen = make_rtp(old.plain, (uint16_t)(65000 + 5), ssrcs[0], 0, 0, 10);
  memcpy(old.nat, old.plain, old.plen);
  memcpy(old.lib, old.plain, old.plen);
  assert_int_equal(hd_srtp_protect(l.n_a, old.nat, old.plen, PKT), HD_EREPLAY);
  assert_int_equal(hd_srtp_protect(l.l_a, old.lib, old.plen, PKT), HD_EREPLAY);
  free(v);
  link_close(&l);
}

static void test_cross_rtcp(void **st) {
  (void)st;
  link_t l;
  link_open(&l);
  enum { N = 600 }; /* 4 SSRCs, 150 SRTCP indices each */
  sent_t *v = calloc(N, sizeof *v);
  assert_non_null(v);
  for (int i = 0; i < N; i++) {
    v[i].plen = make_rtcp(v[i].plain, 0xa0000000u + (uint32_t)(i % 4), i);
    send_both(&l, &v[i], 1);
  }
  /* Reversed blocks of 20; hold back 1 (index 1, 149 behind at the end: older
   * than the 128-packet SRTCP window) and 390 (52 behind). */
  for (int b = 0; b < N; b += 20)
    for (int i = b + 19; i >= b; i--) {
      if (i == 1 || i == 390) continue;
      assert_int_equal(recv_both(&l, &v[i], 1), (int)v[i].plen);
      if (i % 30 == 7) assert_int_equal(recv_both(&l, &v[i], 1), HD_EREPLAY);
    }
  assert_int_equal(recv_both(&l, &v[390], 1), (int)v[390].plen);
  assert_int_equal(recv_both(&l, &v[1], 1), HD_EREPLAY);
  sent_t bad = v[N - 1];
  bad.nat[10] ^= 1;
  bad.lib[10] ^= 1;
  assert_int_equal(recv_both(&l, &bad, 1), HD_EREPLAY); /* delivered already: replay is checked first */
  sent_t fresh;
  fresh.plen = make_rtcp(fresh.plain, 0xa0000001u, 5);
  send_both(&l, &fresh, 1);
  for (size_t spot = 0; spot < (size_t)fresh.slen; spot += 9) {
    bad = fresh;
    bad.nat[spot] ^= 0x08;
    bad.lib[spot] ^= 0x08;
    int rc = recv_both(&l, &bad, 1);
    assert_true(rc == HD_EAUTH || rc == HD_EPROTO || rc == HD_EREPLAY);
  }
  assert_int_equal(recv_both(&l, &fresh, 1), (int)fresh.plen);
  free(v);
  link_close(&l);
}

/* Both directions of one pair of transports, mixed RTP and RTCP, with the keys
 * the other way round (k2 sends): the reverse of test_cross_rtp's direction. */
static void test_cross_reverse_and_mixed(void **st) {
  (void)st;
  link_t l;
  l.n_a = make("native", k2, k1);
  l.l_a = make("libsrtp", k2, k1);
  l.n_b = make("native", k1, k2);
  l.l_b = make("libsrtp", k1, k2);
  for (int i = 0; i < 2000; i++) {
    sent_t s;
    int rtcp = i % 10 == 9;
    if (rtcp)
      s.plen = make_rtcp(s.plain, 0x5eed0000u + (uint32_t)(i % 2), i);
    else
      s.plen =
          make_rtp(s.plain, (uint16_t)(60000 + i * 3), 0x5eed0000u + (uint32_t)(i % 2), i % 3, i % 2, 100);
    send_both(&l, &s, rtcp);
    assert_int_equal(recv_both(&l, &s, rtcp), (int)s.plen);
  }
  link_close(&l);
}

static void test_engine_selection(void **st) {
  (void)st;
  hd_srtp_t *s = make("native", k1, k2);
  hd_srtp_free(s);
  s = make("libsrtp", k1, k2);
  hd_srtp_free(s);
  uint8_t cm[30] = {1};
  assert_int_equal(hd_srtp_new(&s, HD_SRTP_AES128_CM_SHA1_80, cm, cm, 30), 0);
  assert_string_equal(hd_srtp_engine(s), "libsrtp");
  hd_srtp_free(s);
  assert_string_equal(hd_srtp_engine(NULL), "libsrtp");
}

/* Inbound state only for authenticated packets; the stream table is capped. */
static void test_streams(void **st) {
  (void)st;
  hd_srtp_gcm_t *a, *b;
  assert_int_equal(hd_srtp_gcm_new(&a, k1, k2), 0);
  assert_int_equal(hd_srtp_gcm_new(&b, k2, k1), 0);
  uint8_t p[200];
  for (uint32_t i = 0; i < 100; i++) { /* forged packets under 100 SSRCs */
    size_t n = make_rtp(p, 1, 0x1000 + i, 0, 0, 40);
    assert_int_equal(hd_srtp_gcm_unprotect(b, p, n + 16), HD_EAUTH);
    n = make_rtcp(p, 0x1000 + i, 0);
    p[n + 16] = 0x80;
    assert_int_equal(hd_srtp_gcm_unprotect_rtcp(b, p, n + 20), HD_EAUTH);
  }
  assert_int_equal(hd_srtp_gcm_stream_count(b, 1), 0);
  /* 300 SSRCs, 3 packets each, round trips; the tables stop at the cap. */
  for (int round = 0; round < 3; round++)
    for (uint32_t i = 0; i < 300; i++) {
      size_t n = make_rtp(p, (uint16_t)(10 + round), 0x2000 + i, 0, 0, 40);
      int m = hd_srtp_gcm_protect(a, p, n, sizeof p);
      assert_int_equal(m, (int)n + 16);
      assert_int_equal(hd_srtp_gcm_unprotect(b, p, (size_t)m), (int)n);
    }
  assert_int_equal(hd_srtp_gcm_stream_count(a, 0), HD_SRTP_GCM_MAX_STREAMS);
  assert_int_equal(hd_srtp_gcm_stream_count(b, 1), HD_SRTP_GCM_MAX_STREAMS);
  assert_int_equal(hd_srtp_gcm_stream_count(a, 1), 0);
  hd_srtp_gcm_free(a);
  hd_srtp_gcm_free(b);
}

/* A stream replaced in the native tables keeps its ROC: SSRC X sends past a
 * sequence wrap (ROC 1), 300 other SSRCs push it out of the native sender and
 * receiver, then X continues — libsrtp (which never forgets) must still decrypt
 * it, so the native sender did not fall back to ROC 0 (an IV reused under GCM). */
static void test_retired_stream_keeps_roc(void **st) {
  (void)st;
  link_t l;
  link_open(&l);
  const uint32_t X = 0x0badcafeu;
  sent_t s, early;
  uint32_t seq = 0;
  for (; seq < 65536 + 200; seq++) {
    s.plen = make_rtp(s.plain, (uint16_t)seq, X, 0, 0, 16);
    send_both(&l, &s, 0);
    assert_int_equal(recv_both(&l, &s, 0), (int)s.plen);
    if (seq == 64600) early = s; /* 1136 behind where X stops */
  }
  for (uint32_t i = 0; i < 300; i++) {
    s.plen = make_rtp(s.plain, 7, 0x7000 + i, 0, 0, 16);
    send_both(&l, &s, 0);
    assert_int_equal(recv_both(&l, &s, 0), (int)s.plen);
  }
  for (int k = 0; k < 50; k++, seq++) {
    s.plen = make_rtp(s.plain, (uint16_t)seq, X, 0, 0, 16);
    send_both(&l, &s, 0); /* byte-identical to libsrtp's, which kept X all along */
    assert_int_equal(recv_both(&l, &s, 0), (int)s.plen);
  }
  /* Its window was dropped but its top kept: far older packets are still too old,
   * at the sender and at the receiver. */
  assert_int_equal(recv_both(&l, &early, 0), HD_EREPLAY);
  s.plen = make_rtp(s.plain, 64600, X, 0, 0, 16);
  memcpy(s.nat, s.plain, s.plen);
  assert_int_equal(hd_srtp_protect(l.n_a, s.nat, s.plen, PKT), HD_EREPLAY);
  link_close(&l);
}

/* Outbound: once HD_SRTP_GCM_MAX_STREAMS live and HD_SRTP_GCM_MAX_RETIRED retired
 * SSRCs are used up, a new SSRC is refused (HD_ENOSPC), a known one still works.
 * Inbound never refuses. */
static void test_outbound_ssrc_limit(void **st) {
  (void)st;
  hd_srtp_gcm_t *a, *b;
  assert_int_equal(hd_srtp_gcm_new(&a, k1, k2), 0);
  assert_int_equal(hd_srtp_gcm_new(&b, k2, k1), 0);
  uint8_t p[100];
  const uint32_t total = HD_SRTP_GCM_MAX_STREAMS + HD_SRTP_GCM_MAX_RETIRED;
  for (uint32_t i = 0; i < total; i++) {
    size_t n = make_rtp(p, 1, 0x10000 + i, 0, 0, 8);
    int m = hd_srtp_gcm_protect(a, p, n, sizeof p);
    assert_int_equal(m, (int)n + 16);
    assert_int_equal(hd_srtp_gcm_unprotect(b, p, (size_t)m), (int)n);
  }
  size_t n = make_rtp(p, 1, 0x10000 + total, 0, 0, 8);
  assert_int_equal(hd_srtp_gcm_protect(a, p, n, sizeof p), HD_ENOSPC);
  n = make_rtcp(p, 0x10000 + total, 0);
  assert_int_equal(hd_srtp_gcm_protect_rtcp(a, p, n, sizeof p), HD_ENOSPC);
  /* SSRC 0x10000 was retired first: it comes back (seq 2 follows its 1). */
  n = make_rtp(p, 2, 0x10000, 0, 0, 8);
  int m = hd_srtp_gcm_protect(a, p, n, sizeof p);
  assert_int_equal(m, (int)n + 16);
  assert_int_equal(hd_srtp_gcm_unprotect(b, p, (size_t)m), (int)n);
  /* The receiver kept accepting new SSRCs, forgetting the oldest retired ones. */
  hd_srtp_gcm_t *c;
  assert_int_equal(hd_srtp_gcm_new(&c, k2, k1), 0);
  for (uint32_t i = 0; i < 200; i++) {
    n = make_rtp(p, 1, 0x90000 + i, 0, 0, 8);
    m = hd_srtp_gcm_protect(c, p, n, sizeof p);
    assert_true(m > 0);
    assert_int_equal(hd_srtp_gcm_unprotect(a, p, (size_t)m), (int)n);
  }
  hd_srtp_gcm_free(a);
  hd_srtp_gcm_free(b);
  hd_srtp_gcm_free(c);
}

static void test_bad_input(void **st) {
  (void)st;
  hd_srtp_t *a = make("native", k1, k2), *b = make("native", k2, k1);
  uint8_t buf[64];
  memset(buf, 0xee, sizeof buf);
  size_t n = make_rtp(buf, 1, 2, 0, 0, 20);
  assert_int_equal(hd_srtp_protect(a, buf, n, n + 15), HD_ENOSPC);
  assert_int_equal(buf[n], 0xee);
  assert_int_equal(hd_srtp_protect(a, buf, n, n - 1), HD_EINVAL);
  assert_int_equal(hd_srtp_protect(a, NULL, n, n), HD_EINVAL);
  uint8_t r[64];
  size_t rn = make_rtcp(r, 5, 0);
  assert_int_equal(hd_srtp_protect_rtcp(a, r, rn, rn + 19), HD_ENOSPC);
  uint8_t tiny[40] = {0x80};
  assert_int_equal(hd_srtp_protect(a, tiny, 11, sizeof tiny), HD_EPROTO);
  assert_int_equal(hd_srtp_unprotect(b, tiny, 27), HD_EPROTO);
  assert_int_equal(hd_srtp_unprotect(b, tiny, 0), HD_EPROTO);
  assert_int_equal(hd_srtp_protect_rtcp(a, tiny, 7, sizeof tiny), HD_EPROTO);
  assert_int_equal(hd_srtp_unprotect_rtcp(b, tiny, 27), HD_EPROTO);
  tiny[0] = 0x40;
  assert_int_equal(hd_srtp_protect(a, tiny, 20, sizeof tiny), HD_EPROTO);
  /* E flag clear: refused. */
  memset(tiny, 0, sizeof tiny);
  tiny[0] = 0x80;
  assert_int_equal(hd_srtp_unprotect_rtcp(b, tiny, 28), HD_EPROTO);
  tiny[24] = 0x80;
  assert_int_equal(hd_srtp_unprotect_rtcp(b, tiny, 28), HD_EAUTH);
  /* Arbitrary bytes of every length: a negative result, no crash (ASan build). */
  uint8_t junk[300];
  uint32_t x = 12345;
  for (size_t len = 0; len < sizeof junk; len++) {
    for (size_t i = 0; i < len; i++) {
      x = x * 1103515245u + 12345u;
      junk[i] = (uint8_t)(x >> 16);
    }
    if (len) junk[0] = (uint8_t)(0x80 | (junk[0] & 0x3f));
    assert_true(hd_srtp_unprotect(b, junk, len) < 0);
    assert_true(hd_srtp_unprotect_rtcp(b, junk, len) < 0);
  }
  hd_srtp_free(a);
  hd_srtp_free(b);
}

/* Several threads, each with its own pair (the node's workers): no shared state
 * beyond the once-fetched ciphers. */
static void *thread_main(void *arg) {
  uintptr_t id = (uintptr_t)arg;
  hd_srtp_t *a, *b;
  if (hd_srtp_new(&a, HD_SRTP_AEAD_AES_128_GCM, k1, k2, 28) < 0) return (void *)1;
  if (hd_srtp_new(&b, HD_SRTP_AEAD_AES_128_GCM, k2, k1, 28) < 0) return (void *)1;
  uintptr_t bad = 0;
  uint8_t p[PKT], orig[PKT];
  for (int i = 0; i < 20000; i++) {
    size_t n = i % 8 == 7 ? make_rtcp(p, (uint32_t)id, i) : make_rtp(p, (uint16_t)i, (uint32_t)id, 0, 0, 200);
    memcpy(orig, p, n);
    int rtcp = i % 8 == 7;
    int m = rtcp ? hd_srtp_protect_rtcp(a, p, n, PKT) : hd_srtp_protect(a, p, n, PKT);
    int r = m < 0 ? m : rtcp ? hd_srtp_unprotect_rtcp(b, p, (size_t)m) : hd_srtp_unprotect(b, p, (size_t)m);
    if (r != (int)n || memcmp(p, orig, n) != 0) bad++;
  }
  hd_srtp_free(a);
  hd_srtp_free(b);
  return (void *)bad;
}

static void test_threads(void **st) {
  (void)st;
  pthread_t th[4];
  for (uintptr_t i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&th[i], NULL, thread_main, (void *)(i + 1)), 0);
  for (int i = 0; i < 4; i++) {
    void *rv;
    assert_int_equal(pthread_join(th[i], &rv), 0);
    assert_int_equal((uintptr_t)rv, 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rfc7714_rtp),
      cmocka_unit_test(test_rfc7714_rtcp),
      cmocka_unit_test(test_cross_rtp),
      cmocka_unit_test(test_cross_rtcp),
      cmocka_unit_test(test_cross_reverse_and_mixed),
      cmocka_unit_test(test_engine_selection),
      cmocka_unit_test(test_streams),
      cmocka_unit_test(test_bad_input),
      cmocka_unit_test(test_threads),
      cmocka_unit_test(test_retired_stream_keeps_roc),
      cmocka_unit_test(test_outbound_ssrc_limit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
