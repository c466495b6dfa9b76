/* Unit tests for src/proto/rtcp: hand-assembled packets from the RFC 3550 /
 * 4585 / 5104 layouts, REMB and TWCC packets as sent by libwebrtc, build->parse
 * round trips, malformed variants, NACK compression and NTP/RTT arithmetic. */
#include "hd_test.h"

#include "base/err.h"
#include "proto/rtcp.h"

static int first_pkt(const uint8_t *b, size_t n, hd_rtcp_pkt_t *p) {
  hd_rtcp_iter_t it;
  hd_rtcp_iter_init(&it, b, n);
  return hd_rtcp_next(&it, p);
}

/* SR with one report block, then SDES CNAME "ab" (RFC 3550 §6.4.1, §6.5). */
static const uint8_t k_sr_sdes[] = {
    0x81, 200,  0x00, 0x0c,                         /* V=2 RC=1 SR len 12 */
    0x11, 0x22, 0x33, 0x44,                         /* sender SSRC */
    0xe0, 0x00, 0x00, 0x01, 0x80, 0x00, 0x00, 0x00, /* NTP 0xe0000001.80000000 */
    0x00, 0x01, 0x00, 0x00,                         /* RTP ts 65536 */
    0x00, 0x00, 0x00, 0x0a,                         /* packets 10 */
    0x00, 0x00, 0x03, 0xe8,                         /* octets 1000 */
    0x55, 0x66, 0x77, 0x88,                         /* rb: ssrc */
    0x19, 0xff, 0xff, 0xfe,                         /* fraction 25, cumulative -2 */
    0x00, 0x01, 0x00, 0x05,                         /* ext highest 65541 */
    0x00, 0x00, 0x00, 0x20,                         /* jitter 32 */
    0x12, 0x34, 0x56, 0x78,                         /* LSR */
    0x00, 0x01, 0x80, 0x00,                         /* DLSR 1.5 s */
    0x81, 202,  0x00, 0x03,                         /* SDES SC=1 len 3 */
    0x11, 0x22, 0x33, 0x44, 0x01, 0x02, 'a',  'b',  /* CNAME "ab" */
    0x00, 0x00, 0x00, 0x00,                         /* END + pad to 32 bits */
};

static void test_sr_sdes_known(void **st) {
  (void)st;
  uint8_t buf[sizeof k_sr_sdes];
  memcpy(buf, k_sr_sdes, sizeof buf);
  size_t n = sizeof buf;

  assert_int_equal(hd_rtcp_validate(buf, n, 1), 2);
  hd_rtcp_iter_t it;
  hd_rtcp_pkt_t p;
  hd_rtcp_iter_init(&it, buf, n);
  assert_int_equal(hd_rtcp_next(&it, &p), 1);
  assert_int_equal(p.pt, HD_RTCP_SR);
  hd_rtcp_sr_t sr;
  assert_int_equal(hd_rtcp_parse_sr(&p, &sr), 0);
  assert_int_equal(sr.ssrc, 0x11223344);
  assert_true(sr.ntp == 0xe000000180000000ull);
  assert_int_equal(sr.rtp_ts, 65536);
  assert_int_equal(sr.packet_count, 10);
  assert_int_equal(sr.octet_count, 1000);
  assert_int_equal(sr.rb_count, 1);
  assert_int_equal(sr.rb[0].ssrc, 0x55667788);
  assert_int_equal(sr.rb[0].fraction_lost, 25);
  assert_int_equal(sr.rb[0].cumulative_lost, -2);
  assert_int_equal(sr.rb[0].ext_highest_seq, 65541);
  assert_int_equal(sr.rb[0].jitter, 32);
  assert_int_equal(sr.rb[0].lsr, 0x12345678);
  assert_int_equal(sr.rb[0].dlsr, 0x18000);
  hd_rtcp_rr_t rr;
  assert_int_equal(hd_rtcp_parse_rr(&p, &rr), HD_EINVAL);

  assert_int_equal(hd_rtcp_next(&it, &p), 1);
  assert_int_equal(p.pt, HD_RTCP_SDES);
  hd_rtcp_sdes_t sd;
  assert_int_equal(hd_rtcp_parse_sdes(&p, &sd), 0);
  assert_int_equal(sd.chunk_count, 1);
  const uint8_t *d;
  size_t l;
  assert_int_equal(hd_rtcp_sdes_find(&sd, 0x11223344, HD_RTCP_SDES_CNAME, &d, &l), 0);
  assert_int_equal(l, 2);
  assert_memory_equal(d, "ab", 2);
  assert_int_equal(hd_rtcp_sdes_find(&sd, 0x11223344, HD_RTCP_SDES_NAME, &d, &l), HD_ENOTFOUND);
  assert_int_equal(hd_rtcp_next(&it, &p), 0);

  /* Re-building the same SR gives the same bytes. */
  uint8_t out[128];
  assert_int_equal(hd_rtcp_build_sr(&sr, out, sizeof out), 52);
  assert_memory_equal(out, buf, 52);
  assert_int_equal(hd_rtcp_build_sdes_cname(0x11223344, "ab", out, sizeof out), 16);
  assert_memory_equal(out, buf + 52, 16);
  assert_int_equal(hd_rtcp_build_sr(&sr, out, 51), HD_ENOSPC);

  /* Malformed: RC says 2 blocks but length holds one. */
  buf[0] = 0x82;
  assert_int_equal(first_pkt(buf, n, &p), 1);
  assert_int_equal(hd_rtcp_parse_sr(&p, &sr), HD_EPROTO);
  buf[0] = 0x81;
  /* Length field past the datagram; lengths not adding up. */
  assert_int_equal(hd_rtcp_validate(buf, n - 4, 1), HD_ETRUNC);
  assert_int_equal(hd_rtcp_validate(buf, n + 0, 1), 2);
  assert_int_equal(hd_rtcp_validate(buf, 3, 1), HD_ETRUNC);
  buf[0] = 0x41; /* version 1 */
  assert_int_equal(hd_rtcp_validate(buf, n, 0), HD_EPROTO);
  buf[0] = 0x81;
  /* Reduced-size: SDES alone is fine unless compound is required. */
  assert_int_equal(hd_rtcp_validate(buf + 52, 16, 0), 1);
  assert_int_equal(hd_rtcp_validate(buf + 52, 16, 1), HD_EPROTO);
  /* SDES with the END item missing. */
  uint8_t bad[12] = {0x81, 202, 0, 2, 1, 2, 3, 4, 1, 2, 'a', 'b'};
  assert_int_equal(first_pkt(bad, sizeof bad, &p), 1);
  assert_int_equal(hd_rtcp_parse_sdes(&p, &sd), HD_EPROTO);
  /* Item length past the end. */
  bad[9] = 9;
  assert_int_equal(first_pkt(bad, sizeof bad, &p), 1);
  assert_int_equal(hd_rtcp_parse_sdes(&p, &sd), HD_EPROTO);
}

static void test_rr_roundtrip_and_unknown(void **st) {
  (void)st;
  hd_rtcp_rr_t rr;
  memset(&rr, 0, sizeof rr);
  rr.ssrc = 42;
  rr.rb_count = HD_RTCP_MAX_RB;
  for (int i = 0; i < HD_RTCP_MAX_RB; i++) {
    rr.rb[i].ssrc = (uint32_t)i;
    rr.rb[i].fraction_lost = (uint8_t)i;
    rr.rb[i].cumulative_lost = i == 3 ? 0x7fffff : -i;
    rr.rb[i].ext_highest_seq = 1000u + (uint32_t)i;
    rr.rb[i].jitter = 7;
    rr.rb[i].lsr = 9;
    rr.rb[i].dlsr = 10;
  }
  uint8_t buf[1024];
  int n = hd_rtcp_build_rr(&rr, buf, sizeof buf);
  assert_int_equal(n, 8 + 31 * 24);
  /* Append an APP packet (unknown to us) and a BYE: skipped / parsed. */
  const uint8_t app[12] = {0x80, 204, 0, 2, 0, 0, 0, 42, 'n', 'a', 'm', 'e'};
  memcpy(buf + n, app, sizeof app);
  n += (int)sizeof app;
  uint32_t bs[2] = {42, 43};
  int bn = hd_rtcp_build_bye(bs, 2, "bye now", buf + n, sizeof buf - (size_t)n);
  assert_int_equal(bn, 4 + 8 + 8);
  n += bn;
  assert_int_equal(hd_rtcp_validate(buf, (size_t)n, 1), 3);

  hd_rtcp_iter_t it;
  hd_rtcp_pkt_t p;
  hd_rtcp_iter_init(&it, buf, (size_t)n);
  assert_int_equal(hd_rtcp_next(&it, &p), 1);
  hd_rtcp_rr_t back;
  assert_int_equal(hd_rtcp_parse_rr(&p, &back), 0);
  assert_int_equal(back.rb_count, 31);
  assert_int_equal(back.rb[5].cumulative_lost, -5);
  assert_int_equal(back.rb[3].cumulative_lost, 0x7fffff);
  assert_int_equal(back.rb[30].ext_highest_seq, 1030);
  assert_int_equal(hd_rtcp_next(&it, &p), 1);
  assert_int_equal(p.pt, HD_RTCP_APP);
  assert_int_equal(hd_rtcp_next(&it, &p), 1);
  hd_rtcp_bye_t bye;
  assert_int_equal(hd_rtcp_parse_bye(&p, &bye), 0);
  assert_int_equal(bye.count, 2);
  assert_int_equal(bye.ssrcs[1], 43);
  assert_int_equal(bye.reason_len, 7);
  assert_memory_equal(bye.reason, "bye now", 7);
  assert_int_equal(hd_rtcp_next(&it, &p), 0);

  rr.rb_count = 32;
  assert_int_equal(hd_rtcp_build_rr(&rr, buf, sizeof buf), HD_EINVAL);
  /* BYE with a reason length past the end. */
  uint8_t b2[12] = {0x81, 203, 0, 2, 0, 0, 0, 1, 9, 'x', 0, 0};
  assert_int_equal(first_pkt(b2, sizeof b2, &p), 1);
  assert_int_equal(hd_rtcp_parse_bye(&p, &bye), HD_EPROTO);
  b2[8] = 0; /* zero-length reason = none */
  assert_int_equal(first_pkt(b2, sizeof b2, &p), 1);
  assert_int_equal(hd_rtcp_parse_bye(&p, &bye), 0);
  assert_null(bye.reason);
}

static void test_padding(void **st) {
  (void)st;
  /* RR without blocks plus 4 bytes of RTCP padding. */
  uint8_t b[12] = {0xa0, 201, 0, 2, 0, 0, 0, 7, 0, 0, 0, 4};
  hd_rtcp_pkt_t p;
  assert_int_equal(first_pkt(b, sizeof b, &p), 1);
  assert_int_equal(p.body_len, 4);
  hd_rtcp_rr_t rr;
  assert_int_equal(hd_rtcp_parse_rr(&p, &rr), 0);
  assert_int_equal(rr.ssrc, 7);
  b[11] = 0;
  assert_int_equal(first_pkt(b, sizeof b, &p), HD_EPROTO);
  b[11] = 9;
  assert_int_equal(first_pkt(b, sizeof b, &p), HD_EPROTO);
  b[11] = 8; /* eats the SSRC: body too short for RR */
  assert_int_equal(first_pkt(b, sizeof b, &p), 1);
  assert_int_equal(hd_rtcp_parse_rr(&p, &rr), HD_EPROTO);
}

static void test_nack(void **st) {
  (void)st;
  /* RFC 4585 §6.2.1: PID 100, BLP 0b101 -> 100, 101, 103. */
  const uint8_t k[] = {0x81, 205, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 100, 0x00, 0x05};
  hd_rtcp_pkt_t p;
  hd_rtcp_fb_t fb;
  assert_int_equal(first_pkt(k, sizeof k, &p), 1);
  assert_int_equal(hd_rtcp_parse_fb(&p, &fb), 0);
  assert_int_equal(fb.fmt, HD_RTCP_FMT_NACK);
  assert_int_equal(fb.sender_ssrc, 1);
  assert_int_equal(fb.media_ssrc, 2);
  uint16_t seqs[64];
  assert_int_equal(hd_rtcp_nack_expand(&fb, seqs, 64), 3);
  assert_int_equal(seqs[0], 100);
  assert_int_equal(seqs[1], 101);
  assert_int_equal(seqs[2], 103);
  assert_int_equal(hd_rtcp_nack_expand(&fb, seqs, 2), HD_ENOSPC);

  /* Compression: 100,101,103 | 117,118 | 200 ; wrap 65535,0,1,15 in one pair. */
  const uint16_t in[] = {100, 101, 101, 103, 117, 118, 200};
  uint8_t out[64];
  int n = hd_rtcp_build_nack(1, 2, in, 7, out, sizeof out);
  assert_int_equal(n, 12 + 3 * 4);
  assert_memory_equal(out + 4, k + 4, 12); /* SSRCs and the first PID/BLP */
  assert_int_equal(out[3], 5);
  assert_int_equal(first_pkt(out, (size_t)n, &p), 1);
  assert_int_equal(hd_rtcp_parse_fb(&p, &fb), 0);
  assert_int_equal(hd_rtcp_nack_expand(&fb, seqs, 64), 6);
  const uint16_t want[] = {100, 101, 103, 117, 118, 200};
  assert_memory_equal(seqs, want, sizeof want);

  const uint16_t w[] = {65535, 0, 1, 15};
  n = hd_rtcp_build_nack(1, 2, w, 4, out, sizeof out);
  assert_int_equal(n, 16);
  assert_int_equal(out[12], 0xff);
  assert_int_equal(out[13], 0xff);
  assert_int_equal(out[14], 0x80); /* bit 15: +16 */
  assert_int_equal(out[15], 0x03);
  /* 1000 scattered seqs: one pair each, expand gives them back. */
  uint16_t many[300];
  for (int i = 0; i < 300; i++)
    many[i] = (uint16_t)(65000 + i * 20);
  uint8_t big[2048];
  n = hd_rtcp_build_nack(1, 2, many, 300, big, sizeof big);
  assert_int_equal(n, 12 + 300 * 4);
  assert_int_equal(first_pkt(big, (size_t)n, &p), 1);
  assert_int_equal(hd_rtcp_parse_fb(&p, &fb), 0);
  uint16_t back[300];
  assert_int_equal(hd_rtcp_nack_expand(&fb, back, 300), 300);
  assert_memory_equal(back, many, sizeof many);
  assert_int_equal(hd_rtcp_build_nack(1, 2, many, 300, big, 100), HD_ENOSPC);
  assert_int_equal(hd_rtcp_build_nack(1, 2, many, 0, big, sizeof big), HD_EINVAL);
  /* FCI not a multiple of 4 / empty. */
  fb.fci_len = 3;
  assert_int_equal(hd_rtcp_nack_expand(&fb, seqs, 64), HD_EPROTO);
  fb.fci_len = 0;
  assert_int_equal(hd_rtcp_nack_expand(&fb, seqs, 64), HD_EPROTO);
}

static void test_pli_fir(void **st) {
  (void)st;
  uint8_t out[64];
  const uint8_t pli[] = {0x81, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2};
  assert_int_equal(hd_rtcp_build_pli(1, 2, out, sizeof out), 12);
  assert_memory_equal(out, pli, 12);
  hd_rtcp_pkt_t p;
  hd_rtcp_fb_t fb;
  assert_int_equal(first_pkt(out, 12, &p), 1);
  assert_int_equal(hd_rtcp_parse_fb(&p, &fb), 0);
  assert_int_equal(fb.pt, HD_RTCP_PSFB);
  assert_int_equal(fb.fmt, HD_RTCP_FMT_PLI);
  assert_int_equal(fb.fci_len, 0);
  assert_int_equal(hd_rtcp_validate(out, 12, 0), 1);

  /* RFC 5104 §4.3.1: FMT 4, media SSRC 0, FCI = SSRC + seq nr + 3 reserved. */
  const uint8_t fir[] = {0x84, 206, 0, 6, 0, 0, 0, 1, 0, 0,  0,   0, 0, 0,
                         0,    9,   7, 0, 0, 0, 0, 0, 0, 10, 255, 0, 0, 0};
  hd_rtcp_fir_entry_t e[2] = {{9, 7}, {10, 255}};
  assert_int_equal(hd_rtcp_build_fir(1, e, 2, out, sizeof out), (int)sizeof fir);
  assert_memory_equal(out, fir, sizeof fir);
  assert_int_equal(first_pkt(fir, sizeof fir, &p), 1);
  assert_int_equal(hd_rtcp_parse_fb(&p, &fb), 0);
  hd_rtcp_fir_entry_t got[4];
  assert_int_equal(hd_rtcp_fir_parse(&fb, got, 4), 2);
  assert_int_equal(got[1].ssrc, 10);
  assert_int_equal(got[1].seq_nr, 255);
  assert_int_equal(hd_rtcp_fir_parse(&fb, got, 1), HD_ENOSPC);
  fb.fci_len = 12;
  assert_int_equal(hd_rtcp_fir_parse(&fb, got, 4), HD_EPROTO);
  /* Feedback shorter than the two SSRCs. */
  const uint8_t shortfb[] = {0x81, 206, 0, 1, 0, 0, 0, 1};
  assert_int_equal(first_pkt(shortfb, sizeof shortfb, &p), 1);
  assert_int_equal(hd_rtcp_parse_fb(&p, &fb), HD_EPROTO);
}

/* REMB as in libwebrtc's remb_unittest: 0x3fb93 << 1 bps, three SSRCs. */
static const uint8_t k_remb[] = {0x8f, 206,  0x00, 0x07, 0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x00,
                                 0x00, 'R',  'E',  'M',  'B',  0x03, 0x07, 0xfb, 0x93, 0x23, 0x45,
                                 0x67, 0x89, 0x23, 0x45, 0x67, 0x8a, 0x23, 0x45, 0x67, 0x8b};

static void test_remb(void **st) {
  (void)st;
  hd_rtcp_pkt_t p;
  hd_rtcp_fb_t fb;
  hd_rtcp_remb_t r;
  assert_int_equal(first_pkt(k_remb, sizeof k_remb, &p), 1);
  assert_int_equal(hd_rtcp_parse_fb(&p, &fb), 0);
  assert_int_equal(hd_rtcp_remb_parse(&fb, &r), 0);
  assert_int_equal(r.bitrate_bps, 0x3fb93 * 2);
  assert_int_equal(r.ssrc_count, 3);
  assert_int_equal(r.ssrcs[2], 0x2345678b);
  uint8_t out[64];
  int n = hd_rtcp_build_remb(0x12345678, 0x3fb93 * 2, r.ssrcs, 3, out, sizeof out);
  assert_int_equal(n, (int)sizeof k_remb);
  assert_memory_equal(out, k_remb, sizeof k_remb);
  /* Large bitrate: rounded down to 18 bits of mantissa. */
  n = hd_rtcp_build_remb(1, 10000000001ull, NULL, 0, out, sizeof out);
  assert_int_equal(first_pkt(out, (size_t)n, &p), 1);
  assert_int_equal(hd_rtcp_parse_fb(&p, &fb), 0);
  assert_int_equal(hd_rtcp_remb_parse(&fb, &r), 0);
  assert_true(r.bitrate_bps <= 10000000001ull && r.bitrate_bps > 10000000001ull - 65536);
  /* exp 63 saturates instead of overflowing. */
  uint8_t ov[sizeof k_remb];
  memcpy(ov, k_remb, sizeof ov);
  ov[17] = 0xff;
  assert_int_equal(first_pkt(ov, sizeof ov, &p), 1);
  assert_int_equal(hd_rtcp_parse_fb(&p, &fb), 0);
  assert_int_equal(hd_rtcp_remb_parse(&fb, &r), 0);
  assert_true(r.bitrate_bps == UINT64_MAX);
  /* Count larger than the packet; not REMB. */
  memcpy(ov, k_remb, sizeof ov);
  ov[16] = 4;
  assert_int_equal(first_pkt(ov, sizeof ov, &p), 1);
  assert_int_equal(hd_rtcp_parse_fb(&p, &fb), 0);
  assert_int_equal(hd_rtcp_remb_parse(&fb, &r), HD_EPROTO);
  ov[12] = 'X';
  assert_int_equal(hd_rtcp_parse_fb(&p, &fb), 0);
  assert_int_equal(hd_rtcp_remb_parse(&fb, &r), HD_ENOTFOUND);
}

/* TWCC feedback captured from Chrome (as used in webrtc-rs / pion tests). */
static const uint8_t k_twcc1[] = {0xaf, 0xcd, 0x00, 0x05, 0xfa, 0x17, 0xfa, 0x17, 0x43, 0x03, 0x2f, 0xa0,
                                  0x00, 0x99, 0x00, 0x01, 0x3d, 0xe8, 0x02, 0x17, 0x20, 0x01, 0x94, 0x01};
static const uint8_t k_twcc4[] = {0xaf, 0xcd, 0x00, 0x07, 0xfa, 0x17, 0xfa, 0x17, 0x19, 0x3d, 0xd8,
                                  0xbb, 0x00, 0x04, 0x00, 0x07, 0x10, 0x63, 0x6e, 0x01, 0x20, 0x07,
                                  0x4c, 0x24, 0x24, 0x10, 0x0c, 0x0c, 0x10, 0x00, 0x00, 0x03};
static const uint8_t k_twcc6[] = {0xaf, 0xcd, 0x00, 0x07, 0x9b, 0x74, 0xf6, 0x1f, 0x93, 0x71, 0xdc,
                                  0xbc, 0x85, 0x3c, 0x00, 0x09, 0x63, 0xf9, 0x16, 0xb3, 0xd5, 0x52,
                                  0x00, 0x30, 0x9b, 0xaa, 0x6a, 0xaa, 0x7b, 0x01, 0x09, 0x01};

static int parse_twcc(const uint8_t *b, size_t n, hd_rtcp_twcc_t *t, hd_rtcp_twcc_pkt_t *pk, size_t cap) {
  hd_rtcp_pkt_t p;
  hd_rtcp_fb_t fb;
  int rc = first_pkt(b, n, &p);
  if (rc != 1) return rc < 0 ? rc : HD_EPROTO;
  rc = hd_rtcp_parse_fb(&p, &fb);
  if (rc) return rc;
  return hd_rtcp_twcc_parse(&fb, t, pk, cap);
}

static void test_twcc_known(void **st) {
  (void)st;
  hd_rtcp_twcc_t t;
  hd_rtcp_twcc_pkt_t pk[64];
  assert_int_equal(parse_twcc(k_twcc1, sizeof k_twcc1, &t, pk, 64), 1);
  assert_int_equal(t.sender_ssrc, 4195875351u);
  assert_int_equal(t.media_ssrc, 1124282272u);
  assert_int_equal(t.base_seq, 153);
  assert_int_equal(t.status_count, 1);
  assert_int_equal(t.ref_time, 4057090);
  assert_int_equal(t.fb_count, 23);
  assert_int_equal(pk[0].seq, 153);
  assert_int_equal(pk[0].status, HD_TWCC_SMALL_DELTA);
  assert_int_equal(pk[0].delta_us, 37000);
  assert_true(pk[0].recv_us == 4057090LL * 64000 + 37000);

  assert_int_equal(parse_twcc(k_twcc4, sizeof k_twcc4, &t, pk, 64), 7);
  assert_int_equal(t.base_seq, 4);
  assert_int_equal(t.ref_time, 1074030);
  assert_int_equal(t.fb_count, 1);
  const int32_t d4[] = {19000, 9000, 9000, 4000, 3000, 3000, 4000};
  int64_t acc = 1074030LL * 64000;
  for (int i = 0; i < 7; i++) {
    assert_int_equal(pk[i].seq, 4 + i);
    assert_int_equal(pk[i].status, HD_TWCC_SMALL_DELTA);
    assert_int_equal(pk[i].delta_us, d4[i]);
    acc += d4[i];
    assert_true(pk[i].recv_us == acc);
  }

  assert_int_equal(parse_twcc(k_twcc6, sizeof k_twcc6, &t, pk, 64), 9);
  assert_int_equal(t.base_seq, 34108);
  assert_int_equal(t.ref_time, 6551830);
  assert_int_equal(t.fb_count, 179);
  const uint8_t s6[] = {1, 1, 1, 1, 1, 0, 2, 0, 0};
  const int32_t d6[] = {38750, 42500, 26500, 42500, 30750, 0, 66250, 0, 0};
  for (int i = 0; i < 9; i++) {
    assert_int_equal(pk[i].status, s6[i]);
    assert_int_equal(pk[i].delta_us, d6[i]);
  }
  assert_int_equal(parse_twcc(k_twcc6, sizeof k_twcc6, &t, pk, 8), HD_ENOSPC);

  /* Building example 4 from its arrival times reproduces Chrome's bytes. */
  hd_rtcp_twcc_recv_t r[7];
  acc = 1074030LL * 64000;
  for (int i = 0; i < 7; i++) {
    acc += d4[i];
    r[i].seq = (uint16_t)(4 + i);
    r[i].arrival = acc;
  }
  uint8_t out[64];
  size_t used = 0;
  int n = hd_rtcp_build_twcc(0xfa17fa17, 0x193dd8bb, 1, r, 7, &used, out, sizeof out);
  assert_int_equal(n, (int)sizeof k_twcc4);
  assert_int_equal(used, 7);
  assert_memory_equal(out, k_twcc4, sizeof k_twcc4);
  /* And example 1. */
  r[0].seq = 153;
  r[0].arrival = 4057090LL * 64000 + 37000;
  n = hd_rtcp_build_twcc(4195875351u, 1124282272u, 23, r, 1, &used, out, sizeof out);
  assert_int_equal(n, (int)sizeof k_twcc1);
  assert_memory_equal(out, k_twcc1, sizeof k_twcc1);
}

static void test_twcc_malformed(void **st) {
  (void)st;
  hd_rtcp_twcc_t t;
  hd_rtcp_twcc_pkt_t pk[64];
  uint8_t b[sizeof k_twcc6];
  /* Missing deltas: claim more packets than the chunks/deltas carry. */
  memcpy(b, k_twcc4, sizeof b);
  b[15] = 9; /* status count 9 but chunk covers 7 and there is no 2nd chunk */
  assert_int_equal(parse_twcc(b, sizeof k_twcc4, &t, pk, 64), HD_EPROTO);
  /* Two-bit symbol 3 is reserved. */
  memcpy(b, k_twcc6, sizeof b);
  b[20] = 0xff;
  assert_int_equal(parse_twcc(b, sizeof b, &t, pk, 64), HD_EPROTO);
  /* Status count 0. */
  memcpy(b, k_twcc1, sizeof k_twcc1);
  b[15] = 0;
  assert_int_equal(parse_twcc(b, sizeof k_twcc1, &t, pk, 64), HD_EPROTO);
  /* FCI shorter than the fixed part. */
  const uint8_t s[] = {0x8f, 205, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 1, 0, 1};
  assert_int_equal(parse_twcc(s, sizeof s, &t, pk, 64), HD_EPROTO);
  /* Every truncation of a valid packet is rejected. */
  for (size_t n = 0; n < sizeof k_twcc6; n++) {
    memcpy(b, k_twcc6, n);
    if (n >= 4) b[3] = (uint8_t)(n / 4 ? n / 4 - 1 : 0);
    int rc = parse_twcc(b, n, &t, pk, 64);
    assert_true(rc < 0);
  }
}

/* Receiver-side generator: arrival times with gaps, reordering-free. */
static void twcc_roundtrip(const hd_rtcp_twcc_recv_t *r, size_t n) {
  uint8_t out[4096];
  size_t used = 0;
  int len = hd_rtcp_build_twcc(1, 2, 5, r, n, &used, out, sizeof out);
  assert_true(len > 0);
  assert_int_equal(used, n);
  assert_int_equal(len % 4, 0);
  assert_int_equal(hd_rtcp_validate(out, (size_t)len, 0), 1);
  static hd_rtcp_twcc_pkt_t pk[65536];
  hd_rtcp_twcc_t t;
  int cnt = parse_twcc(out, (size_t)len, &t, pk, 65536);
  uint16_t span = (uint16_t)(r[n - 1].seq - r[0].seq);
  assert_int_equal(cnt, span + 1);
  assert_int_equal(t.base_seq, r[0].seq);
  assert_int_equal(t.fb_count, 5);
  size_t j = 0;
  for (int k = 0; k < cnt; k++) {
    if (j < n && pk[k].seq == r[j].seq) {
      assert_int_not_equal(pk[k].status, HD_TWCC_NOT_RECEIVED);
      int64_t err = pk[k].recv_us - r[j].arrival;
      assert_true(err >= -125 && err <= 125); /* never drifts beyond one tick */
      j++;
    } else {
      assert_int_equal(pk[k].status, HD_TWCC_NOT_RECEIVED);
    }
  }
  assert_int_equal(j, n);
}

static void test_twcc_build(void **st) {
  (void)st;
  hd_rtcp_twcc_recv_t r[600];
  /* 1. Dense, small deltas (1-bit vectors / long runs), across seq wrap. */
  for (int i = 0; i < 100; i++) {
    r[i].seq = (uint16_t)(65500 + i);
    r[i].arrival = 1000000 + i * 1333;
  }
  twcc_roundtrip(r, 100);
  /* 2. Gaps of several lengths: short (vector) and long (run length of losses). */
  int n = 0;
  uint16_t s = 10;
  hd_time_t t = 5000;
  for (int i = 0; i < 200; i++) {
    s = (uint16_t)(s + 1 + (i % 7 == 0 ? 3 : 0) + (i % 50 == 0 ? 40 : 0));
    t += 700;
    r[n].seq = s;
    r[n].arrival = t;
    n++;
  }
  twcc_roundtrip(r, (size_t)n);
  /* 3. Large and negative deltas mixed with small ones (2-bit vectors). */
  n = 0;
  t = 64000 * 3 + 100;
  for (int i = 0; i < 150; i++) {
    r[n].seq = (uint16_t)(200 + i);
    if (i % 5 == 0)
      t += 80000; /* 80 ms: large */
    else if (i % 11 == 0)
      t -= 3000; /* reordered arrival: negative */
    else
      t += 250;
    r[n].arrival = t;
    n++;
  }
  twcc_roundtrip(r, (size_t)n);
  /* 4. Single packet. */
  twcc_roundtrip(r, 1);
  /* 5. Very long loss run (> 8191 statuses -> several run-length chunks). */
  r[0].seq = 0;
  r[0].arrival = 10;
  r[1].seq = 20000;
  r[1].arrival = 2000;
  twcc_roundtrip(r, 2);

  /* A delta beyond int16 * 250 µs ends the feedback early. */
  r[0].seq = 1;
  r[0].arrival = 0;
  r[1].seq = 2;
  r[1].arrival = 1000;
  r[2].seq = 3;
  r[2].arrival = 1000 + HD_SEC(9);
  uint8_t out[256];
  size_t used = 0;
  int len = hd_rtcp_build_twcc(1, 2, 0, r, 3, &used, out, sizeof out);
  assert_true(len > 0);
  assert_int_equal(used, 2);
  /* Errors. */
  r[2].seq = 2;
  assert_int_equal(hd_rtcp_build_twcc(1, 2, 0, r, 3, &used, out, sizeof out), HD_EINVAL);
  assert_int_equal(hd_rtcp_build_twcc(1, 2, 0, r, 0, &used, out, sizeof out), HD_EINVAL);
  r[2].seq = 3;
  assert_int_equal(hd_rtcp_build_twcc(1, 2, 0, r, 2, &used, out, 20), HD_ENOSPC);
}

static void test_ntp_rtt(void **st) {
  (void)st;
  /* Unix epoch is NTP 2208988800 s. */
  uint64_t ntp = hd_rtcp_ntp_from_time(0, 0);
  assert_true(ntp == (2208988800ull << 32));
  ntp = hd_rtcp_ntp_from_time(HD_MS(500), HD_SEC(1));
  assert_true(ntp == ((2208988801ull << 32) | 0x80000000ull));
  assert_int_equal(hd_rtcp_ntp_to_time(ntp, HD_SEC(1)), HD_MS(500));
  hd_time_t t = 1234567891;
  assert_int_equal(hd_rtcp_ntp_to_time(hd_rtcp_ntp_from_time(t, 42), 42), t);
  assert_int_equal(hd_rtcp_ntp_mid32(0x0000123456780000ull), 0x12345678);
  assert_int_equal(hd_rtcp_us_to_q16(HD_SEC(1)), 65536);
  assert_int_equal(hd_rtcp_us_to_q16(HD_MS(1500)), 0x18000);
  assert_int_equal(hd_rtcp_q16_to_us(0x8000), HD_MS(500));

  /* RFC 3550 §6.4.1 example: A = 0xb710:8000 (46864.500 s), LSR = 0xb705:2000
   * (46853.125 s), DLSR = 0x0005:4000 (5.250 s) -> RTT 6.125 s. */
  hd_rtcp_rb_t rb = {.lsr = 0xb7052000, .dlsr = 0x00054000};
  hd_time_t rtt = 0;
  assert_int_equal(hd_rtcp_rtt(0xb7108000, &rb, &rtt), 0);
  assert_int_equal(rtt, 6125000);
  rb.dlsr = 0x000c0000; /* larger than A - LSR: clamps */
  assert_int_equal(hd_rtcp_rtt(0xb7108000, &rb, &rtt), 0);
  assert_int_equal(rtt, 0);
  rb.lsr = 0;
  assert_int_equal(hd_rtcp_rtt(0xb7108000, &rb, &rtt), HD_ENOTFOUND);
}

static void test_sdes_full(void **st) {
  (void)st;
  hd_rtcp_sdes_t s;
  memset(&s, 0, sizeof s);
  s.chunk_count = 2;
  s.chunks[0].ssrc = 1;
  s.chunks[0].item_count = 2;
  s.chunks[0].items[0] = (hd_rtcp_sdes_item_t){HD_RTCP_SDES_CNAME, 3, (const uint8_t *)"abc"};
  s.chunks[0].items[1] = (hd_rtcp_sdes_item_t){HD_RTCP_SDES_TOOL, 4, (const uint8_t *)"hdng"};
  s.chunks[1].ssrc = 2; /* empty chunk: just END + padding */
  uint8_t out[128];
  int n = hd_rtcp_build_sdes(&s, out, sizeof out);
  /* 4 + (4 + 5 + 6 + 1 -> 16) + (4 + 4) */
  assert_int_equal(n, 28);
  hd_rtcp_pkt_t p;
  assert_int_equal(first_pkt(out, (size_t)n, &p), 1);
  hd_rtcp_sdes_t b;
  assert_int_equal(hd_rtcp_parse_sdes(&p, &b), 0);
  assert_int_equal(b.chunk_count, 2);
  assert_int_equal(b.chunks[0].item_count, 2);
  assert_int_equal(b.chunks[1].item_count, 0);
  const uint8_t *d;
  size_t l;
  assert_int_equal(hd_rtcp_sdes_find(&b, 1, HD_RTCP_SDES_TOOL, &d, &l), 0);
  assert_memory_equal(d, "hdng", 4);
  /* Too many items in a chunk. */
  uint8_t many[4 + 4 + 10 * 3 + 2];
  memset(many, 0, sizeof many);
  many[0] = 0x81;
  many[1] = 202;
  many[3] = (uint8_t)(sizeof many / 4 - 1);
  for (int i = 0; i < 10; i++) {
    many[8 + 3 * i] = 2;
    many[9 + 3 * i] = 1;
    many[10 + 3 * i] = 'x';
  }
  assert_int_equal(first_pkt(many, sizeof many, &p), 1);
  assert_int_equal(hd_rtcp_parse_sdes(&p, &b), HD_ENOSPC);
  assert_int_equal(hd_rtcp_build_sdes_cname(1, "", out, sizeof out), HD_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sr_sdes_known), cmocka_unit_test(test_rr_roundtrip_and_unknown),
      cmocka_unit_test(test_padding),       cmocka_unit_test(test_nack),
      cmocka_unit_test(test_pli_fir),       cmocka_unit_test(test_remb),
      cmocka_unit_test(test_twcc_known),    cmocka_unit_test(test_twcc_malformed),
      cmocka_unit_test(test_twcc_build),    cmocka_unit_test(test_ntp_rtt),
      cmocka_unit_test(test_sdes_full),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
