/* Unit tests for src/proto/rtp: RFC 3550 §5.1 header parsing, RFC 8285
 * extensions both forms, builder round trips, in-place rewriting, well-known
 * extension helpers, RTX (RFC 4588), demux (RFC 7983) and seq helpers. */
#include "hd_test.h"

#include "base/err.h"
#include "proto/rtp.h"

/* V=2 P=0 X=0 CC=0 M=1 PT=111 seq=0x1234 ts=0xdeadbeef ssrc=0x01020304, payload "abc". */
static const uint8_t k_simple[] = {0x80, 0xef, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef,
                                   0x01, 0x02, 0x03, 0x04, 'a',  'b',  'c'};

static void test_parse_simple(void **st) {
  (void)st;
  hd_rtp_hdr_t h;
  assert_int_equal(hd_rtp_parse(k_simple, sizeof k_simple, &h), 0);
  assert_int_equal(h.version, 2);
  assert_int_equal(h.marker, 1);
  assert_int_equal(h.pt, 111);
  assert_int_equal(h.seq, 0x1234);
  assert_int_equal(h.ts, 0xdeadbeef);
  assert_int_equal(h.ssrc, 0x01020304);
  assert_int_equal(h.csrc_count, 0);
  assert_int_equal(h.hdr_len, 12);
  assert_int_equal(h.payload_len, 3);
  assert_memory_equal(h.payload, "abc", 3);
  assert_null(h.ext_data);
  const uint8_t *d;
  size_t l;
  assert_int_equal(hd_rtp_ext_find(&h, 1, &d, &l), HD_ENOTFOUND);
}

/* CSRCs, padding and a one-byte extension block (RFC 8285 §4.2 example shape:
 * id 1 len 1, id 2 len 3, padding). */
static const uint8_t k_full[] = {
    0xb2, 0x60, 0x00, 0x05, 0x00, 0x00, 0x10, 0x00, 0xaa, 0xbb, 0xcc, 0xdd, /* P X CC=2 pt 96 */
    0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x22, 0x22,                         /* CSRCs */
    0xbe, 0xde, 0x00, 0x02,                                                 /* one-byte profile, 2 words */
    0x10, 0x7f, 0x22, 0x01, 0x02, 0x03, 0x00, 0x00, /* id1 L0 [7f], id2 L2 [01 02 03], pad */
    'x',  'y',  0x00, 0x00, 0x03                    /* payload "xy" + 3 bytes of padding */
};

static void test_parse_full(void **st) {
  (void)st;
  hd_rtp_hdr_t h;
  assert_int_equal(hd_rtp_parse(k_full, sizeof k_full, &h), 0);
  assert_int_equal(h.padding, 1);
  assert_int_equal(h.extension, 1);
  assert_int_equal(h.csrc_count, 2);
  assert_int_equal(h.csrcs[0], 0x11111111);
  assert_int_equal(h.csrcs[1], 0x22222222);
  assert_int_equal(h.pt, 96);
  assert_int_equal(h.marker, 0);
  assert_int_equal(h.ext_profile, 0xbede);
  assert_int_equal(h.ext_len, 8);
  assert_int_equal(h.ext_off, 24);
  assert_int_equal(h.hdr_len, 32);
  assert_int_equal(h.pad_len, 3);
  assert_int_equal(h.payload_len, 2);
  assert_memory_equal(h.payload, "xy", 2);

  const uint8_t *d;
  size_t l;
  assert_int_equal(hd_rtp_ext_find(&h, 1, &d, &l), 0);
  assert_int_equal(l, 1);
  assert_int_equal(d[0], 0x7f);
  assert_int_equal(hd_rtp_ext_find(&h, 2, &d, &l), 0);
  assert_int_equal(l, 3);
  assert_int_equal(d[2], 3);
  assert_int_equal(hd_rtp_ext_find(&h, 3, &d, &l), HD_ENOTFOUND);
  assert_int_equal(hd_rtp_ext_find(&h, 0, &d, &l), HD_EINVAL);

  hd_rtp_ext_iter_t it;
  hd_rtp_ext_iter_init(&it, &h);
  uint8_t id;
  assert_int_equal(hd_rtp_ext_next(&it, &id, &d, &l), 1);
  assert_int_equal(id, 1);
  assert_int_equal(hd_rtp_ext_next(&it, &id, &d, &l), 1);
  assert_int_equal(id, 2);
  assert_int_equal(hd_rtp_ext_next(&it, &id, &d, &l), 0);
}

static void test_parse_malformed(void **st) {
  (void)st;
  hd_rtp_hdr_t h;
  uint8_t b[sizeof k_full];
  /* Every truncation of the header is rejected (padding check may also fire). */
  for (size_t n = 0; n < 32; n++)
    assert_true(hd_rtp_parse(k_full, n, &h) < 0);
  /* Version 1. */
  memcpy(b, k_simple, sizeof k_simple);
  b[0] = 0x40;
  assert_int_equal(hd_rtp_parse(b, sizeof k_simple, &h), HD_EPROTO);
  /* Padding count 0 and larger than the payload. */
  memcpy(b, k_full, sizeof k_full);
  b[sizeof k_full - 1] = 0;
  assert_int_equal(hd_rtp_parse(b, sizeof k_full, &h), HD_EPROTO);
  b[sizeof k_full - 1] = 6; /* payload is 5 bytes incl. padding */
  assert_int_equal(hd_rtp_parse(b, sizeof k_full, &h), HD_EPROTO);
  b[sizeof k_full - 1] = 5; /* exactly all: empty payload, valid */
  assert_int_equal(hd_rtp_parse(b, sizeof k_full, &h), 0);
  assert_int_equal(h.payload_len, 0);
  /* Extension length running past the packet. */
  memcpy(b, k_full, sizeof k_full);
  b[23] = 9;
  assert_int_equal(hd_rtp_parse(b, sizeof k_full, &h), HD_ETRUNC);
  /* Element longer than the extension block. */
  memcpy(b, k_full, sizeof k_full);
  b[26] = 0x2f; /* id 2, 16 bytes */
  assert_int_equal(hd_rtp_parse(b, sizeof k_full, &h), 0);
  const uint8_t *d;
  size_t l;
  assert_int_equal(hd_rtp_ext_find(&h, 2, &d, &l), HD_EPROTO);
  assert_int_equal(hd_rtp_ext_find(&h, 1, &d, &l), 0); /* the one before is fine */
  /* One-byte id 15 stops the walk. */
  memcpy(b, k_full, sizeof k_full);
  b[24] = 0xf0;
  assert_int_equal(hd_rtp_parse(b, sizeof k_full, &h), 0);
  assert_int_equal(hd_rtp_ext_find(&h, 2, &d, &l), HD_ENOTFOUND);
}

static void test_two_byte_ext(void **st) {
  (void)st;
  /* RFC 8285 §4.3: 0x100 + appbits, id byte, len byte (may be 0). */
  const uint8_t pkt[] = {0x90, 0x60, 0,    1,    0,    0,    0,    1,    0,
                         0,    0,    2,    0x10, 0x05, 0x00, 0x03, 0x20, 0x00, /* id 32, empty */
                         0x01, 0x03, 0xaa, 0xbb, 0xcc,                         /* id 1 len 3 */
                         0x00,                                                 /* padding */
                         0xf0, 0x02, 0x12, 0x34,                               /* id 240 len 2 */
                         0x99};
  hd_rtp_hdr_t h;
  assert_int_equal(hd_rtp_parse(pkt, sizeof pkt, &h), 0);
  assert_int_equal(h.payload_len, 1);
  assert_true(hd_rtp_ext_is_rfc8285(&h));
  const uint8_t *d;
  size_t l;
  assert_int_equal(hd_rtp_ext_find(&h, 32, &d, &l), 0);
  assert_int_equal(l, 0);
  assert_int_equal(hd_rtp_ext_find(&h, 1, &d, &l), 0);
  assert_int_equal(l, 3);
  assert_int_equal(d[0], 0xaa);
  assert_int_equal(hd_rtp_ext_find(&h, 240, &d, &l), 0);
  assert_int_equal(l, 2);
  assert_int_equal(d[1], 0x34);
  /* Unknown profile: nothing iterated. */
  uint8_t b[sizeof pkt];
  memcpy(b, pkt, sizeof pkt);
  b[12] = 0x12;
  assert_int_equal(hd_rtp_parse(b, sizeof b, &h), 0);
  assert_false(hd_rtp_ext_is_rfc8285(&h));
  assert_int_equal(hd_rtp_ext_find(&h, 1, &d, &l), HD_ENOTFOUND);
}

static void test_build_roundtrip_one_byte(void **st) {
  (void)st;
  uint8_t ast[3], tw[2], lvl[1];
  hd_rtp_abs_send_time_write(ast, 0x123456);
  hd_rtp_twcc_seq_write(tw, 0xfffe);
  hd_rtp_audio_level_write(lvl, 1, 42);
  hd_rtp_ext_t ex[] = {{3, 3, ast}, {5, 2, tw}, {1, 1, lvl}, {4, 4, (const uint8_t *)"mid0"}};
  uint32_t csrcs[] = {7, 8, 9};
  hd_rtp_build_t b = {.pt = 100,
                      .marker = 1,
                      .seq = 65535,
                      .ts = 90000,
                      .ssrc = 0xcafebabe,
                      .csrcs = csrcs,
                      .csrc_count = 3,
                      .exts = ex,
                      .ext_count = 4};
  uint8_t out[256];
  int n = hd_rtp_build(&b, (const uint8_t *)"hello", 5, out, sizeof out);
  /* 12 + 12 + 4 + (4+3+1+4 = 16 bytes of elements: 1+3, 1+2, 1+1, 1+4 = 14 -> 16) + 5 */
  assert_int_equal(n, 12 + 12 + 4 + 16 + 5);
  assert_int_equal(out[28], 0x32); /* id 3, len-1 = 2 */
  hd_rtp_hdr_t h;
  assert_int_equal(hd_rtp_parse(out, (size_t)n, &h), 0);
  assert_int_equal(h.ext_profile, 0xbede);
  assert_int_equal(h.seq, 65535);
  assert_int_equal(h.marker, 1);
  assert_int_equal(h.csrcs[2], 9);
  assert_memory_equal(h.payload, "hello", 5);
  const uint8_t *d;
  size_t l;
  uint32_t v;
  assert_int_equal(hd_rtp_ext_find(&h, 3, &d, &l), 0);
  assert_int_equal(hd_rtp_abs_send_time_parse(d, l, &v), 0);
  assert_int_equal(v, 0x123456);
  uint16_t s;
  assert_int_equal(hd_rtp_ext_find(&h, 5, &d, &l), 0);
  assert_int_equal(hd_rtp_twcc_seq_parse(d, l, &s), 0);
  assert_int_equal(s, 0xfffe);
  int voice;
  uint8_t level;
  assert_int_equal(hd_rtp_ext_find(&h, 1, &d, &l), 0);
  assert_int_equal(hd_rtp_audio_level_parse(d, l, &voice, &level), 0);
  assert_int_equal(voice, 1);
  assert_int_equal(level, 42);
  char mid[8];
  assert_int_equal(hd_rtp_ext_find(&h, 4, &d, &l), 0);
  assert_int_equal(hd_rtp_ext_string(d, l, mid, sizeof mid), 4);
  assert_string_equal(mid, "mid0");
  assert_int_equal(hd_rtp_ext_string(d, l, mid, 4), HD_ENOSPC);
}

static void test_build_two_byte_and_padding(void **st) {
  (void)st;
  uint8_t big[20];
  memset(big, 0x5a, sizeof big);
  /* len 20 > 16 forces two-byte; also id 20 > 14 and a 0-length element. */
  hd_rtp_ext_t ex[] = {{1, 20, big}, {20, 1, (const uint8_t *)"r"}, {2, 0, NULL}};
  hd_rtp_build_t b = {.pt = 96, .seq = 1, .ts = 2, .ssrc = 3, .exts = ex, .ext_count = 3, .pad_len = 4};
  uint8_t out[128];
  int n = hd_rtp_build(&b, (const uint8_t *)"p", 1, out, sizeof out);
  assert_true(n > 0);
  hd_rtp_hdr_t h;
  assert_int_equal(hd_rtp_parse(out, (size_t)n, &h), 0);
  assert_int_equal(h.ext_profile, 0x1000);
  assert_int_equal(h.padding, 1);
  assert_int_equal(h.pad_len, 4);
  assert_int_equal(h.payload_len, 1);
  const uint8_t *d;
  size_t l;
  assert_int_equal(hd_rtp_ext_find(&h, 1, &d, &l), 0);
  assert_int_equal(l, 20);
  assert_memory_equal(d, big, 20);
  assert_int_equal(hd_rtp_ext_find(&h, 20, &d, &l), 0);
  assert_int_equal(l, 1);
  assert_int_equal(hd_rtp_ext_find(&h, 2, &d, &l), 0);
  assert_int_equal(l, 0);

  /* Builder failures: too small buffer, bad pt, id 0. */
  assert_int_equal(hd_rtp_build(&b, (const uint8_t *)"p", 1, out, 20), HD_ENOSPC);
  hd_rtp_build_t bad = b;
  bad.pt = 128;
  assert_int_equal(hd_rtp_build(&bad, NULL, 0, out, sizeof out), HD_EINVAL);
  hd_rtp_ext_t ex0 = {0, 1, big};
  bad = b;
  bad.exts = &ex0;
  bad.ext_count = 1;
  assert_int_equal(hd_rtp_build(&bad, NULL, 0, out, sizeof out), HD_EINVAL);
}

static void test_rewrite_in_place(void **st) {
  (void)st;
  uint8_t ast[3] = {1, 2, 3};
  uint8_t tw[2] = {0, 7};
  hd_rtp_ext_t ex[] = {{2, 3, ast}, {3, 2, tw}};
  hd_rtp_build_t b = {.pt = 96, .seq = 10, .ts = 20, .ssrc = 30, .exts = ex, .ext_count = 2};
  uint8_t out[64];
  int n = hd_rtp_build(&b, (const uint8_t *)"zz", 2, out, sizeof out);
  assert_true(n > 0);
  size_t len = (size_t)n;
  assert_int_equal(hd_rtp_set_seq(out, len, 0xabcd), 0);
  assert_int_equal(hd_rtp_set_ts(out, len, 0x11223344), 0);
  assert_int_equal(hd_rtp_set_ssrc(out, len, 0x55667788), 0);
  assert_int_equal(hd_rtp_set_pt(out, len, 111), 0);
  assert_int_equal(hd_rtp_set_marker(out, len, 1), 0);
  assert_int_equal(hd_rtp_set_pt(out, len, 200), HD_EINVAL);
  uint8_t nv[3];
  hd_rtp_abs_send_time_write(nv, 0xfedcba);
  assert_int_equal(hd_rtp_ext_rewrite(out, len, 2, nv, 3), 0);
  assert_int_equal(hd_rtp_ext_rewrite(out, len, 2, nv, 2), HD_EINVAL);
  assert_int_equal(hd_rtp_ext_rewrite(out, len, 9, nv, 3), HD_ENOTFOUND);
  assert_int_equal(hd_rtp_ext_blank(out, len, 3), 0);
  assert_int_equal(hd_rtp_ext_blank(out, len, 3), HD_ENOTFOUND);

  hd_rtp_hdr_t h;
  assert_int_equal(hd_rtp_parse(out, len, &h), 0);
  assert_int_equal(h.seq, 0xabcd);
  assert_int_equal(h.ts, 0x11223344);
  assert_int_equal(h.ssrc, 0x55667788);
  assert_int_equal(h.pt, 111);
  assert_int_equal(h.marker, 1);
  assert_memory_equal(h.payload, "zz", 2);
  const uint8_t *d;
  size_t l;
  uint32_t v;
  assert_int_equal(hd_rtp_ext_find(&h, 2, &d, &l), 0);
  assert_int_equal(hd_rtp_abs_send_time_parse(d, l, &v), 0);
  assert_int_equal(v, 0xfedcba);
  assert_int_equal(hd_rtp_ext_find(&h, 3, &d, &l), HD_ENOTFOUND);

  uint8_t junk[12] = {0};
  assert_int_equal(hd_rtp_set_seq(junk, sizeof junk, 1), HD_EPROTO);
  assert_int_equal(hd_rtp_set_seq(out, 11, 1), HD_ETRUNC);
}

/* playout-delay: 12 bits of min and max in 10 ms units, clamped */
static void test_playout_delay(void **st) {
  (void)st;
  uint8_t d[3];
  unsigned lo, hi;
  hd_rtp_playout_delay_write(d, 150, 10000);
  assert_int_equal(d[0], 0x00);
  assert_int_equal(d[1], 0xf3);
  assert_int_equal(d[2], 0xe8); /* 15 = 0x00f, 1000 = 0x3e8 */
  assert_int_equal(hd_rtp_playout_delay_parse(d, 3, &lo, &hi), 0);
  assert_int_equal(lo, 150);
  assert_int_equal(hi, 10000);
  hd_rtp_playout_delay_write(d, 99999, 99999);
  assert_int_equal(hd_rtp_playout_delay_parse(d, 3, &lo, &hi), 0);
  assert_int_equal(lo, 40950);
  assert_int_equal(hi, 40950);
  assert_int_equal(hd_rtp_playout_delay_parse(d, 2, &lo, &hi), HD_EPROTO);
}

static void test_abs_send_time(void **st) {
  (void)st;
  assert_int_equal(hd_rtp_abs_send_time_from_us(0), 0);
  assert_int_equal(hd_rtp_abs_send_time_from_us(HD_SEC(1)), 1 << 18);
  assert_int_equal(hd_rtp_abs_send_time_from_us(HD_MS(500)), 1 << 17);
  assert_int_equal(hd_rtp_abs_send_time_from_us(HD_SEC(65)), 1 << 18); /* wraps at 64 s */
  assert_int_equal(hd_rtp_abs_send_time_to_us(1 << 18), HD_SEC(1));
  assert_int_equal(hd_rtp_abs_send_time_to_us(3 << 16), HD_MS(750));
  hd_time_t t = 12345678;
  hd_time_t back = hd_rtp_abs_send_time_to_us(hd_rtp_abs_send_time_from_us(t));
  assert_true(back - t <= 4 && t - back <= 4); /* 1/2^18 s = 3.8 µs */
  uint32_t v;
  assert_int_equal(hd_rtp_abs_send_time_parse((const uint8_t *)"ab", 2, &v), HD_EPROTO);
  uint16_t s;
  assert_int_equal(hd_rtp_twcc_seq_parse((const uint8_t *)"abc", 3, &s), HD_EPROTO);
  int voice;
  uint8_t level;
  assert_int_equal(hd_rtp_audio_level_parse(NULL, 0, &voice, &level), HD_EPROTO);
  const uint8_t al = 0x05;
  assert_int_equal(hd_rtp_audio_level_parse(&al, 1, &voice, &level), 0);
  assert_int_equal(voice, 0);
  assert_int_equal(level, 5);
  char out[8];
  assert_int_equal(hd_rtp_ext_string((const uint8_t *)"a\0", 2, out, sizeof out), 1);
  assert_int_equal(hd_rtp_ext_string((const uint8_t *)"\0", 1, out, sizeof out), HD_EPROTO);
  assert_int_equal(hd_rtp_ext_string((const uint8_t *)"a b", 3, out, sizeof out), HD_EPROTO);
}

static void test_rtx(void **st) {
  (void)st;
  uint8_t ast[3] = {9, 9, 9};
  hd_rtp_ext_t ex[] = {{2, 3, ast}};
  hd_rtp_build_t b = {.pt = 96,
                      .marker = 1,
                      .seq = 4321,
                      .ts = 777,
                      .ssrc = 0x1111,
                      .exts = ex,
                      .ext_count = 1,
                      .pad_len = 3};
  uint8_t orig[64], rtx[64], back[64];
  int n = hd_rtp_build(&b, (const uint8_t *)"media", 5, orig, sizeof orig);
  assert_true(n > 0);
  int rn = hd_rtp_rtx_build(orig, (size_t)n, 0x2222, 97, 50, rtx, sizeof rtx);
  assert_int_equal(rn, n - 3 + 2);
  hd_rtp_hdr_t h;
  assert_int_equal(hd_rtp_parse(rtx, (size_t)rn, &h), 0);
  assert_int_equal(h.ssrc, 0x2222);
  assert_int_equal(h.pt, 97);
  assert_int_equal(h.seq, 50);
  assert_int_equal(h.ts, 777);
  assert_int_equal(h.marker, 1);
  assert_int_equal(h.padding, 0);
  assert_int_equal(h.payload_len, 7);
  assert_int_equal(h.payload[0], 4321 >> 8);
  assert_int_equal(h.payload[1], 4321 & 0xff);
  const uint8_t *d;
  size_t l;
  assert_int_equal(hd_rtp_ext_find(&h, 2, &d, &l), 0);

  uint16_t osn = 0;
  int bn = hd_rtp_rtx_decode(rtx, (size_t)rn, 0x1111, 96, back, sizeof back, &osn);
  assert_int_equal(bn, n - 3);
  assert_int_equal(osn, 4321);
  assert_int_equal(hd_rtp_parse(back, (size_t)bn, &h), 0);
  assert_int_equal(h.seq, 4321);
  assert_int_equal(h.ssrc, 0x1111);
  assert_int_equal(h.pt, 96);
  assert_int_equal(h.payload_len, 5);
  assert_memory_equal(h.payload, "media", 5);

  assert_int_equal(hd_rtp_rtx_build(orig, (size_t)n, 1, 97, 1, rtx, 10), HD_ENOSPC);
  /* Padding-only RTX packet has no OSN. */
  hd_rtp_build_t p = {.pt = 97, .seq = 1, .ssrc = 2, .pad_len = 200};
  uint8_t probe[256];
  int pn = hd_rtp_build(&p, NULL, 0, probe, sizeof probe);
  assert_int_equal(pn, 212);
  assert_int_equal(hd_rtp_rtx_decode(probe, (size_t)pn, 1, 96, back, sizeof back, &osn), HD_EPROTO);
}

static void test_demux(void **st) {
  (void)st;
  uint8_t rtcp[8] = {0x80, 200, 0, 1, 0, 0, 0, 0};
  assert_true(hd_rtp_is_rtcp(rtcp, 8));
  assert_false(hd_rtp_is_rtp(rtcp, 12));
  rtcp[1] = 223;
  assert_true(hd_rtp_is_rtcp(rtcp, 8));
  rtcp[1] = 224;
  assert_false(hd_rtp_is_rtcp(rtcp, 8));
  assert_true(hd_rtp_is_rtp(k_simple, sizeof k_simple));
  assert_false(hd_rtp_is_rtcp(k_simple, sizeof k_simple));
  assert_false(hd_rtp_is_rtp(k_simple, 11));
  const uint8_t stun[12] = {0x00, 0x01};
  assert_false(hd_rtp_is_rtp(stun, 12));
  assert_false(hd_rtp_is_rtcp(stun, 12));
  /* PT 72 with marker = 200 on the wire: RTCP per RFC 5761 §4. */
  uint8_t rtp_m[12] = {0x80, 0x80 | 72};
  assert_true(hd_rtp_is_rtcp(rtp_m, 12));
}

static void test_seq(void **st) {
  (void)st;
  assert_true(hd_seq_newer(1, 0));
  assert_true(hd_seq_newer(0, 65535));
  assert_false(hd_seq_newer(65535, 0));
  assert_false(hd_seq_newer(5, 5));
  assert_true(hd_seq_newer(0x7fff, 0));
  assert_false(hd_seq_newer(0x8000, 0));
  assert_true(hd_ts_newer(1, 0xffffffffu));

  hd_seq_unwrapper_t u;
  hd_seq_unwrapper_init(&u);
  assert_int_equal(hd_seq_unwrap(&u, 65530), 65530);
  assert_int_equal(hd_seq_unwrap(&u, 65535), 65535);
  assert_int_equal(hd_seq_unwrap(&u, 2), 65538);
  assert_int_equal(hd_seq_unwrap(&u, 65534), 65534); /* late, before the wrap */
  assert_int_equal(hd_seq_unwrap(&u, 3), 65539);
  /* Many wraps forward. */
  int64_t v = 0;
  for (int i = 0; i < 5 * 65536; i += 1000)
    v = hd_seq_unwrap(&u, (uint16_t)(3 + i));
  assert_int_equal(v, 65539 + 327000);
  hd_seq_unwrapper_init(&u);
  assert_int_equal(hd_seq_unwrap(&u, 5), 5);
  assert_int_equal(hd_seq_unwrap(&u, 65534), -2); /* older across the wrap */
  assert_int_equal(hd_seq_unwrap(&u, 6), 6);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_simple),
      cmocka_unit_test(test_parse_full),
      cmocka_unit_test(test_parse_malformed),
      cmocka_unit_test(test_two_byte_ext),
      cmocka_unit_test(test_build_roundtrip_one_byte),
      cmocka_unit_test(test_build_two_byte_and_padding),
      cmocka_unit_test(test_rewrite_in_place),
      cmocka_unit_test(test_abs_send_time),
      cmocka_unit_test(test_playout_delay),
      cmocka_unit_test(test_rtx),
      cmocka_unit_test(test_demux),
      cmocka_unit_test(test_seq),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
