/* RTP payload formats: VP8 (RFC 7741) packetize/depacketize round trip, MTU
 * split, PictureID wrap, descriptor vectors and malformed input; Opus
 * (RFC 7587) timestamps, DTX and marker. */
#include "hd_test.h"

#include "base/err.h"
#include "media/rtp_payload.h"

static void test_vp8_split_and_reassemble(void **state) {
  static uint8_t frame[5000], out[1500], again[5000];
  for (size_t i = 0; i < sizeof(frame); i++)
    frame[i] = (uint8_t)(i * 7 + 3);
  frame[0] = 0x10; /* P=0: keyframe */
  hd_vp8_pay_t p;
  assert_int_equal(hd_vp8_pay_init(&p, 0, 0x7ffe), 0);
  assert_int_equal(p.max_payload, 1200);
  int n = hd_vp8_pay_begin(&p, frame, sizeof(frame));
  assert_int_equal(n, 5); /* ceil(5000 / 1196) */
  size_t got = 0;
  int count = 0, marker = 0, len, minlen = 10000, maxlen = 0;
  while ((len = hd_vp8_pay_next(&p, out, sizeof(out), &marker)) > 0) {
    assert_true(len <= 1200);
    if (len < minlen) minlen = len;
    if (len > maxlen) maxlen = len;
    hd_vp8_desc_t d;
    assert_int_equal(hd_vp8_depay_parse(out, (size_t)len, &d), 0);
    assert_int_equal(d.start, count == 0);
    assert_int_equal(d.frame_start, count == 0);
    assert_int_equal(d.keyframe, count == 0);
    assert_int_equal(d.part_id, 0);
    assert_int_equal(d.picture_id, 0x7ffe);
    assert_int_equal(d.picture_id_bits, 15);
    assert_int_equal(d.desc_len, 4);
    memcpy(again + got, d.data, d.data_len);
    got += d.data_len;
    count++;
    assert_int_equal(marker, count == n);
  }
  assert_int_equal(len, 0);
  assert_int_equal(count, 5);
  assert_true(maxlen - minlen <= 1); /* near-equal split */
  assert_int_equal(got, sizeof(frame));
  assert_memory_equal(again, frame, sizeof(frame));
  /* the PictureID advances per frame and wraps at 15 bits */
  frame[0] = 0x11; /* interframe */
  assert_int_equal(hd_vp8_pay_begin(&p, frame, 100), 1);
  len = hd_vp8_pay_next(&p, out, sizeof(out), &marker);
  assert_int_equal(len, 104);
  assert_int_equal(marker, 1);
  hd_vp8_desc_t d;
  assert_int_equal(hd_vp8_depay_parse(out, (size_t)len, &d), 0);
  assert_int_equal(d.picture_id, 0x7fff);
  assert_int_equal(d.keyframe, 0);
  assert_int_equal(hd_vp8_pay_begin(&p, frame, 1), 1);
  len = hd_vp8_pay_next(&p, out, sizeof(out), &marker);
  assert_int_equal(hd_vp8_depay_parse(out, (size_t)len, &d), 0);
  assert_int_equal(d.picture_id, 0);
  /* small MTU and caps */
  assert_int_equal(hd_vp8_pay_init(&p, 4, 0), HD_EINVAL);
  assert_int_equal(hd_vp8_pay_init(&p, 5, 0), 0);
  assert_int_equal(hd_vp8_pay_begin(&p, frame, 1024), 1024);
  assert_int_equal(hd_vp8_pay_begin(&p, frame, 1025), HD_ENOSPC);
  assert_int_equal(hd_vp8_pay_begin(&p, frame, 0), HD_EINVAL);
  assert_int_equal(hd_vp8_pay_init(&p, 100, 0), 0);
  assert_int_equal(hd_vp8_pay_begin(&p, frame, 500), 6);
  assert_int_equal(hd_vp8_pay_next(&p, out, 50, &marker), HD_ENOSPC);
}

static void test_vp8_descriptor_vectors(void **state) {
  hd_vp8_desc_t d;
  /* RFC 7741 §4.2 layout: X|R|N|S|R|PID, then I|L|T|K, M|PictureID(15),
   * TL0PICIDX, TID|Y|KEYIDX, then the VP8 payload header of a keyframe
   * (P=0, start code 9d 01 2a, 640x360). */
  const uint8_t full[] = {0xb0, 0xf0, 0x81, 0x23, 0x42, 0x65, 0x50, 0x00,
                          0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01};
  assert_int_equal(hd_vp8_depay_parse(full, sizeof(full), &d), 0);
  assert_int_equal(d.non_ref, 1);
  assert_int_equal(d.start, 1);
  assert_int_equal(d.part_id, 0);
  assert_int_equal(d.picture_id, 0x123);
  assert_int_equal(d.picture_id_bits, 15);
  assert_int_equal(d.tl0picidx, 0x42);
  assert_int_equal(d.tid, 1);
  assert_int_equal(d.layer_sync, 1);
  assert_int_equal(d.keyidx, 5);
  assert_int_equal(d.desc_len, 6);
  assert_int_equal(d.data_len, 10);
  assert_int_equal(d.keyframe, 1);
  assert_int_equal(d.width, 640);
  assert_int_equal(d.height, 360);
  uint8_t w[8];
  assert_int_equal(hd_vp8_desc_write(&d, w, sizeof(w)), 6);
  assert_memory_equal(w, full, 6);
  assert_int_equal(hd_vp8_desc_write(&d, w, 5), HD_ENOSPC);
  /* minimal: no X, S=0, PartID 2, 7-bit PictureID form via write */
  const uint8_t min[] = {0x02, 0xaa};
  assert_int_equal(hd_vp8_depay_parse(min, sizeof(min), &d), 0);
  assert_int_equal(d.picture_id, -1);
  assert_int_equal(d.tid, -1);
  assert_int_equal(d.frame_start, 0);
  assert_int_equal(d.part_id, 2);
  d.picture_id = 0x55;
  d.picture_id_bits = 7;
  assert_int_equal(hd_vp8_desc_write(&d, w, sizeof(w)), 3);
  assert_int_equal(w[0], 0x82);
  assert_int_equal(w[1], 0x80);
  assert_int_equal(w[2], 0x55);
  const uint8_t pid7[] = {0x90, 0x80, 0x55, 0x01};
  assert_int_equal(hd_vp8_depay_parse(pid7, sizeof(pid7), &d), 0);
  assert_int_equal(d.picture_id, 0x55);
  assert_int_equal(d.picture_id_bits, 7);
  assert_int_equal(d.frame_start, 1);
  assert_int_equal(d.keyframe, 0);
  /* truncations at every field and a PartID > 8 */
  for (size_t l = 0; l < sizeof(full) - 10 + 1; l++)
    assert_int_equal(hd_vp8_depay_parse(full, l, &d), HD_ETRUNC);
  const uint8_t badpid[] = {0x09, 0x00};
  assert_int_equal(hd_vp8_depay_parse(badpid, sizeof(badpid), &d), HD_EPROTO);
  /* K only: the TID|Y|KEYIDX byte is present, tid stays absent */
  const uint8_t konly[] = {0x80, 0x10, 0x1f, 0x01};
  assert_int_equal(hd_vp8_depay_parse(konly, sizeof(konly), &d), 0);
  assert_int_equal(d.tid, -1);
  assert_int_equal(d.keyidx, 31);
}

static void test_opus(void **state) {
  hd_opus_pay_t p;
  hd_opus_pay_init(&p, 0xfffffc40u); /* wraps after 1 packet */
  uint8_t pkt[40] = {0x78, 1, 2, 3};
  uint8_t dtx[1] = {0x78};
  uint32_t ts = 0;
  int m = -1;
  assert_int_equal(hd_opus_pay_frame(&p, pkt, 40, 960, &ts, &m), 1);
  assert_int_equal(ts, 0xfffffc40u);
  assert_int_equal(m, 0);
  assert_int_equal(hd_opus_pay_frame(&p, pkt, 40, 960, &ts, &m), 1);
  assert_int_equal(ts, 0);
  assert_int_equal(hd_opus_pay_frame(&p, dtx, 1, 960, &ts, &m), 0);
  assert_int_equal(hd_opus_pay_frame(&p, dtx, 1, 960, &ts, &m), 0);
  assert_int_equal(hd_opus_pay_frame(&p, pkt, 40, 960, &ts, &m), 1);
  assert_int_equal(ts, 3 * 960); /* the clock ran through the pause */
  assert_int_equal(m, 1);        /* first packet of a talkspurt */
  assert_int_equal(hd_opus_pay_frame(&p, pkt, 40, 960, &ts, &m), 1);
  assert_int_equal(m, 0);
  assert_int_equal(hd_opus_pay_frame(&p, pkt, 0, 960, &ts, &m), HD_EINVAL);
  assert_int_equal(hd_opus_depay(pkt, 40), 960);
  uint8_t two20[] = {0x79, 1, 2}; /* code 1: two equal frames of 20 ms */
  assert_int_equal(hd_opus_depay(two20, sizeof(two20)), 1920);
  assert_int_equal(hd_opus_depay(pkt, 0), HD_ETRUNC);
  uint8_t bad[] = {0x7b, 0x00}; /* code 3, 0 frames */
  assert_int_equal(hd_opus_depay(bad, sizeof(bad)), HD_EPROTO);
}

static void test_keyframe_start(void **state) {
  (void)state;
  /* VP8: S=1 PartID 0 and P=0 in the payload header (RFC 7741 §4.3) */
  const uint8_t vp8_key[] = {0x10, 0x00, 0x9d, 0x01, 0x2a};
  const uint8_t vp8_inter[] = {0x10, 0x01, 0x00};
  const uint8_t vp8_cont[] = {0x00, 0x00, 0x00};                /* not a frame start */
  const uint8_t vp8_ext_key[] = {0x90, 0x80, 0x81, 0x23, 0x00}; /* X, I, 15-bit PictureID */
  assert_int_equal(hd_rtp_keyframe_start("VP8", vp8_key, sizeof vp8_key), 1);
  assert_int_equal(hd_rtp_keyframe_start("vp8", vp8_inter, sizeof vp8_inter), 0);
  assert_int_equal(hd_rtp_keyframe_start("VP8", vp8_cont, sizeof vp8_cont), 0);
  assert_int_equal(hd_rtp_keyframe_start("VP8", vp8_ext_key, sizeof vp8_ext_key), 1);
  assert_int_equal(hd_rtp_keyframe_start("VP8", vp8_ext_key, 2), 0); /* truncated */
  /* H.264 (RFC 6184): single NAL IDR / SPS, non-IDR slice, STAP-A with SPS,
   * FU-A start of an IDR, FU-A middle, a STAP-A whose size overruns */
  const uint8_t idr[] = {0x65, 0x88};
  const uint8_t sps[] = {0x67, 0x42};
  const uint8_t slice[] = {0x41, 0x9a};
  const uint8_t stap[] = {0x18, 0x00, 0x02, 0x09, 0x10, 0x00, 0x02, 0x67, 0x42};
  const uint8_t stap_slice[] = {0x18, 0x00, 0x02, 0x41, 0x9a};
  const uint8_t fu_start[] = {0x7c, 0x85, 0x00};
  const uint8_t fu_mid[] = {0x7c, 0x05, 0x00};
  const uint8_t stap_bad[] = {0x18, 0x00, 0x40, 0x65};
  assert_int_equal(hd_rtp_keyframe_start("H264", idr, sizeof idr), 1);
  assert_int_equal(hd_rtp_keyframe_start("H264", sps, sizeof sps), 1);
  assert_int_equal(hd_rtp_keyframe_start("H264", slice, sizeof slice), 0);
  assert_int_equal(hd_rtp_keyframe_start("H264", stap, sizeof stap), 1);
  assert_int_equal(hd_rtp_keyframe_start("H264", stap_slice, sizeof stap_slice), 0);
  assert_int_equal(hd_rtp_keyframe_start("H264", fu_start, sizeof fu_start), 1);
  assert_int_equal(hd_rtp_keyframe_start("H264", fu_mid, sizeof fu_mid), 0);
  assert_int_equal(hd_rtp_keyframe_start("H264", stap_bad, sizeof stap_bad), 0);
  assert_int_equal(hd_rtp_keyframe_start("H264", NULL, 0), 0);
  assert_int_equal(hd_rtp_keyframe_start("VP9", vp8_key, sizeof vp8_key), HD_EUNSUPPORTED);
}

/* RFC 2198 §3: two blocks, a redundant one (F=1, PT 111, offset 960, 3 bytes)
 * and the primary (F=0, PT 111); malformed ones are refused. */
static void test_red(void **state) {
  (void)state;
  uint8_t red[] = {
      0x80 | 111, (960 >> 6) & 0xff, (uint8_t)((960 & 0x3f) << 2), 3, 111, 0xA1, 0xA2, 0xA3, 0xB1, 0xB2};
  uint8_t pt;
  const uint8_t *d;
  size_t n;
  assert_int_equal(hd_red_primary(red, sizeof red, &pt, &d, &n), 0);
  assert_int_equal(pt, 111);
  assert_int_equal(n, 2);
  assert_int_equal(d[0], 0xB1);
  /* the viewer numbers Opus 109: both block headers rewritten */
  assert_int_equal(hd_red_rewrite_pt(red, sizeof red, 111, 109), 2);
  assert_int_equal(red[0], 0x80 | 109);
  assert_int_equal(red[4], 109);
  assert_int_equal(hd_red_primary(red, sizeof red, &pt, &d, &n), 0);
  assert_int_equal(pt, 109);
  /* a primary alone (1-byte header) */
  uint8_t solo[] = {111, 0xC1};
  assert_int_equal(hd_red_primary(solo, sizeof solo, &pt, &d, &n), 0);
  assert_int_equal(n, 1);
  /* a block longer than what follows; no primary header; empty */
  uint8_t longb[] = {0x80 | 111, 0, 0, 200, 111, 1, 2};
  assert_int_equal(hd_red_primary(longb, sizeof longb, &pt, &d, &n), HD_EPROTO);
  uint8_t nofinal[] = {0x80 | 111, 0, 0, 0};
  assert_int_equal(hd_red_primary(nofinal, sizeof nofinal, &pt, &d, &n), HD_EPROTO);
  assert_int_equal(hd_red_primary(red, 0, &pt, &d, &n), HD_EPROTO);
  assert_int_equal(hd_red_rewrite_pt(longb, sizeof longb, 111, 109), HD_EPROTO);
}

/* hd_red_build / hd_red_parse round trip with two redundant blocks (RFC 2198
 * §3 field layout: 14-bit offset, 10-bit length), and the field-width limits. */
static void test_red_build_parse(void **state) {
  (void)state;
  uint8_t a[] = {1, 2, 3}, b[] = {4, 5}, c[] = {6, 7, 8, 9};
  hd_red_block_t in[3] = {{111, 1920, a, sizeof a}, {111, 960, b, sizeof b}, {111, 0, c, sizeof c}};
  uint8_t out[64];
  int n = hd_red_build(in, 3, out, sizeof out);
  assert_int_equal(n, 4 + 4 + 1 + 3 + 2 + 4);
  /* the node's own primary parser agrees */
  uint8_t pt;
  const uint8_t *d;
  size_t dl;
  assert_int_equal(hd_red_primary(out, (size_t)n, &pt, &d, &dl), 0);
  assert_int_equal(dl, 4);
  assert_memory_equal(d, c, 4);
  hd_red_block_t got[HD_RED_MAX_BLOCKS];
  assert_int_equal(hd_red_parse(out, (size_t)n, got), 3);
  assert_int_equal(got[0].ts_offset, 1920);
  assert_int_equal(got[1].ts_offset, 960);
  assert_int_equal(got[2].ts_offset, 0);
  assert_int_equal(got[0].len, 3);
  assert_memory_equal(got[0].data, a, 3);
  assert_int_equal(got[1].len, 2);
  assert_memory_equal(got[1].data, b, 2);
  assert_int_equal(got[2].pt, 111);
  /* a primary alone */
  assert_int_equal(hd_red_build(&in[2], 1, out, sizeof out), 5);
  assert_int_equal(hd_red_parse(out, 5, got), 1);
  /* limits */
  assert_int_equal(hd_red_build(in, 3, out, 10), HD_ENOSPC);
  hd_red_block_t wide = {111, 1u << 14, a, 3};
  hd_red_block_t two[2] = {wide, in[2]};
  assert_int_equal(hd_red_build(two, 2, out, sizeof out), HD_EINVAL);
  assert_int_equal(hd_red_build(in, 0, out, sizeof out), HD_EINVAL);
  uint8_t bad[] = {0x80 | 111, 0, 0, 200, 111, 1};
  assert_int_equal(hd_red_parse(bad, sizeof bad, got), HD_EPROTO);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_vp8_split_and_reassemble),
      cmocka_unit_test(test_vp8_descriptor_vectors),
      cmocka_unit_test(test_opus),
      cmocka_unit_test(test_keyframe_start),
      cmocka_unit_test(test_red),
      cmocka_unit_test(test_red_build_parse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
