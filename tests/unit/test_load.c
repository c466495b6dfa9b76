/* Unit tests for src/client/load: payload round trip and malformed payloads,
 * the media pattern's rates (audio 50/s, video average ~ target with keyframe
 * bursts every 2 s and on request), the dedup / window accounting of a
 * receiver, histogram quantiles. Virtual time. */
#include "hd_test.h"

#include "base/err.h"
#include "client/load.h"

static void test_payload(void **st) {
  (void)st;
  uint8_t b[200];
  hd_load_hdr_t h = {.pub_id = 0x01020304,
                     .kind = HD_LOAD_VIDEO,
                     .flags = HD_LOAD_F_KEY,
                     .seq = 77,
                     .sent = 123456789012LL},
                o;
  assert_int_equal(hd_load_payload_write(b, sizeof b, 150, &h), 150);
  assert_int_equal(hd_load_payload_parse(b, 150, &o), 0);
  assert_int_equal(o.pub_id, h.pub_id);
  assert_int_equal(o.kind, HD_LOAD_VIDEO);
  assert_int_equal(o.flags, HD_LOAD_F_KEY);
  assert_int_equal(o.seq, 77);
  assert_true(o.sent == h.sent);
  /* truncated, short, bad magic, bad kind, bad args */
  assert_int_equal(hd_load_payload_parse(b, 149, &o), HD_ETRUNC);
  assert_int_equal(hd_load_payload_parse(b, 10, &o), HD_ETRUNC);
  b[0] ^= 1;
  assert_int_equal(hd_load_payload_parse(b, 150, &o), HD_EPROTO);
  b[0] ^= 1;
  b[8] = 9;
  assert_int_equal(hd_load_payload_parse(b, 150, &o), HD_EPROTO);
  assert_int_equal(hd_load_payload_write(b, sizeof b, 10, &h), HD_EINVAL);
  assert_int_equal(hd_load_payload_write(b, sizeof b, 300, &h), HD_ENOSPC);
}

static uint8_t g_bufs[64 * HD_LOAD_MAX_PAYLOAD];
static hd_load_pkt_t g_pkts[64];

static void test_source_rates(void **st) {
  (void)st;
  hd_load_source_t s;
  hd_load_source_cfg_t c = {.audio = 1, .video = 1, .video_kbps = 1000};
  assert_int_equal(hd_load_source_init(&s, &c, 5, 0), 0);
  hd_load_source_window(&s, HD_SEC(1), HD_SEC(9));
  uint64_t vbytes = 0, keys = 0, apk = 0, vpk = 0;
  int max_burst = 0;
  for (hd_time_t t = 0; t < HD_SEC(10); t += 1000) {
    int n = hd_load_source_poll(&s, t, g_bufs, HD_LOAD_MAX_PAYLOAD, g_pkts, 64);
    int burst = 0;
    for (int i = 0; i < n; i++) {
      hd_load_hdr_t h;
      assert_int_equal(hd_load_payload_parse(g_bufs + (size_t)i * HD_LOAD_MAX_PAYLOAD, g_pkts[i].len, &h), 0);
      assert_int_equal(h.pub_id, 5);
      assert_true(h.sent == t);
      if (g_pkts[i].kind == HD_LOAD_VIDEO) {
        vbytes += g_pkts[i].len;
        vpk++;
        burst++;
        keys += g_pkts[i].key && g_pkts[i].marker;
      } else {
        apk++;
        assert_int_equal(g_pkts[i].len, HD_LOAD_AUDIO_BYTES);
      }
    }
    if (burst > max_burst) max_burst = burst;
  }
  assert_int_equal(apk, 500); /* 50 packets/s */
  assert_int_equal(s.sent[HD_LOAD_AUDIO], 500);
  assert_int_equal(s.sent_in_window[HD_LOAD_AUDIO], 400);
  assert_int_equal(keys, 5); /* t = 0, 2, 4, 6, 8 s */
  double kbps = (double)vbytes * 8 / 10 / 1000;
  assert_true(kbps > 900 && kbps < 1100);
  assert_true(max_burst >= 12); /* a keyframe is a burst */
  assert_true(vpk > 900);
  /* a PLI: the next frame is a key */
  hd_load_source_request_key(&s);
  int n = hd_load_source_poll(&s, HD_SEC(10) + 40000, g_bufs, HD_LOAD_MAX_PAYLOAD, g_pkts, 64);
  assert_true(n > 0);
  int got_key = 0;
  for (int i = 0; i < n; i++)
    got_key |= g_pkts[i].kind == HD_LOAD_VIDEO && g_pkts[i].key;
  assert_true(got_key);
  /* bad configs */
  hd_load_source_cfg_t bad = {0};
  assert_int_equal(hd_load_source_init(&s, &bad, 1, 0), HD_EINVAL);
  bad.video = 1;
  bad.fps = 500;
  assert_int_equal(hd_load_source_init(&s, &bad, 1, 0), HD_EINVAL);
}

static void test_rx_accounting(void **st) {
  (void)st;
  hd_load_rx_t r;
  static hd_load_hist_t hist;
  hd_load_rx_init(&r, 9, HD_LOAD_AUDIO);
  hd_load_hdr_t h = {.pub_id = 9, .kind = HD_LOAD_AUDIO};
  /* 100 packets sent every 20 ms, window [0.5 s, 1.5 s): 50 expected; drop seq 30..39 and 60 */
  for (uint32_t i = 0; i < 100; i++) {
    if ((i >= 30 && i < 40) || i == 60) continue;
    h.seq = i;
    h.sent = (hd_time_t)i * 20000 + 500000;
    assert_int_equal(hd_load_rx_feed(&r, &h, h.sent + 300 + i, 500000, 1500000, &hist), 1);
  }
  /* a duplicate, and a late packet that fills a hole */
  h.seq = 50;
  h.sent = 50 * 20000 + 500000;
  assert_int_equal(hd_load_rx_feed(&r, &h, h.sent + 100, 500000, 1500000, &hist), 0);
  assert_int_equal(r.duplicates, 1);
  h.seq = 60;
  h.sent = 60 * 20000 + 500000;
  assert_int_equal(hd_load_rx_feed(&r, &h, h.sent + 5000, 500000, 1500000, &hist), 1);
  assert_int_equal(r.received, 90);
  assert_int_equal(r.in_window, 40); /* 0..49 minus 30..39 */
  assert_true(hd_load_loss(50, r.in_window) == 0.2);
  assert_true(hd_load_loss(0, 0) == 0);
  assert_true(hd_load_loss(10, 12) == 0);
  /* another stream's packet */
  h.pub_id = 8;
  assert_int_equal(hd_load_rx_feed(&r, &h, 0, 0, 1, NULL), HD_EINVAL);
  /* far-old packet: never counted twice */
  h.pub_id = 9;
  h.seq = 5000;
  assert_int_equal(hd_load_rx_feed(&r, &h, 0, 0, 1, NULL), 1);
  h.seq = 10;
  assert_int_equal(hd_load_rx_feed(&r, &h, 0, 0, 1, NULL), 0);
}

static void test_hist(void **st) {
  (void)st;
  static hd_load_hist_t h, m;
  assert_int_equal(hd_load_hist_quantile(&h, 0.99), 0);
  for (int i = 0; i < 990; i++)
    hd_load_hist_add(&h, 95); /* bucket [90, 100) */
  for (int i = 0; i < 10; i++)
    hd_load_hist_add(&h, 25000); /* coarse bucket [25 ms, 26 ms) */
  assert_int_equal(hd_load_hist_quantile(&h, 0.5), 100);
  assert_int_equal(hd_load_hist_quantile(&h, 0.98), 100);
  assert_int_equal(hd_load_hist_quantile(&h, 0.995), 26000);
  hd_load_hist_add(&h, HD_SEC(5)); /* overflow */
  hd_load_hist_add(&h, -3);        /* clock oddity: counted as 0 */
  assert_int_equal(h.overflow, 1);
  assert_int_equal(h.negative, 1);
  assert_true(hd_load_hist_quantile(&h, 1.0) == HD_SEC(5));
  hd_load_hist_merge(&m, &h);
  assert_int_equal(m.n, 1002);
  assert_int_equal(hd_load_hist_quantile(&m, 0.5), 100);
}

/* count-only accounting: gaps are loss, wrap, reordering, duplicates, the window */
static void test_seq_gaps(void **st) {
  (void)st;
  hd_load_seq_t s;
  hd_load_seq_init(&s, 0x1234, 96);
  /* before the window: 65500..65509 */
  for (uint16_t q = 65500; q < 65510; q++)
    assert_int_equal(hd_load_seq_feed(&s, q), 1);
  hd_load_seq_window_start(&s);
  /* in the window: 65510 .. 65535, 0 .. 99 across the wrap (126 packets), minus
   * 65530, 3, 4 and 50; 10 and 11 swapped; 20 twice */
  uint16_t q = 65510;
  for (int i = 0; i < 126; i++, q++) {
    if (q == 65530 || q == 3 || q == 4 || q == 50 || q == 10) continue;
    if (q == 11) {
      assert_int_equal(hd_load_seq_feed(&s, 11), 1);
      assert_int_equal(hd_load_seq_feed(&s, 10), 1); /* late: still counted */
      continue;
    }
    assert_int_equal(hd_load_seq_feed(&s, q), 1);
    if (q == 20) assert_int_equal(hd_load_seq_feed(&s, 20), 0);
  }
  assert_int_equal(s.duplicates, 1);
  hd_load_seq_window_end(&s);
  assert_int_equal(hd_load_seq_expected(&s), 126);
  assert_int_equal(s.in_window, 122);
  assert_int_equal(s.arrived, 122);
  /* grace: 50 arrives late (counted in the window, not as arrived in it); 100 is after the window */
  assert_int_equal(hd_load_seq_feed(&s, 50), 1);
  assert_int_equal(hd_load_seq_feed(&s, 100), 1);
  assert_int_equal(s.in_window, 123);
  assert_int_equal(s.arrived, 122);
  assert_true(hd_load_loss(hd_load_seq_expected(&s), s.in_window) * 126 > 2.99);
  /* far behind (beyond the dedup window): ignored, never double counted */
  assert_int_equal(hd_load_seq_feed(&s, (uint16_t)(100 - HD_LOAD_SEQ_WINDOW - 5)), 0);
  assert_int_equal(s.too_old, 1);
  assert_int_equal(s.received, 10 + 122 + 2);
}

static void test_seq_window_edges(void **st) {
  (void)st;
  hd_load_seq_t s;
  /* a stream whose first packet comes after the start: the window starts there */
  hd_load_seq_init(&s, 1, 111);
  hd_load_seq_window_start(&s);
  for (uint16_t q = 500; q < 600; q++)
    if (q != 550) hd_load_seq_feed(&s, q);
  hd_load_seq_window_end(&s);
  assert_int_equal(hd_load_seq_expected(&s), 100);
  assert_int_equal(s.in_window, 99);
  /* a stream that never came: nothing expected here (the caller compares with the senders) */
  hd_load_seq_init(&s, 2, 111);
  hd_load_seq_window_start(&s);
  hd_load_seq_window_end(&s);
  assert_int_equal(hd_load_seq_expected(&s), 0);
  assert_int_equal(hd_load_seq_feed(&s, 7), 1);
  assert_int_equal(s.in_window, 0);
  assert_int_equal(hd_load_seq_expected(&s), 0);
  /* a large gap (longer than the dedup window) is all loss, and the slots are reset */
  hd_load_seq_init(&s, 3, 96);
  hd_load_seq_feed(&s, 0);
  hd_load_seq_window_start(&s);
  hd_load_seq_feed(&s, 1);
  hd_load_seq_feed(&s, 3001);
  assert_int_equal(hd_load_seq_feed(&s, 3001 - 1000), 1); /* late, its slot reset by the jump: new */
  hd_load_seq_window_end(&s);
  assert_int_equal(hd_load_seq_expected(&s), 3001);
  assert_int_equal(s.in_window, 3);
}

static void test_rtp_peek(void **st) {
  (void)st;
  uint8_t p[20] = {0x90, 0x80 | 96, 0x12, 0x34, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef};
  uint32_t ssrc;
  uint16_t seq;
  int pt;
  assert_int_equal(hd_load_rtp_peek(p, sizeof p, &ssrc, &seq, &pt), 1);
  assert_int_equal(ssrc, 0xdeadbeef);
  assert_int_equal(seq, 0x1234);
  assert_int_equal(pt, 96);
  p[1] = 200; /* RTCP SR */
  assert_int_equal(hd_load_rtp_peek(p, sizeof p, &ssrc, &seq, &pt), 0);
  p[1] = 96;
  assert_int_equal(hd_load_rtp_peek(p, 11, &ssrc, &seq, &pt), 0); /* short */
  p[0] = 22;                                                      /* DTLS */
  assert_int_equal(hd_load_rtp_peek(p, sizeof p, &ssrc, &seq, &pt), 0);
}

static void test_room_balance(void **st) {
  (void)st;
  /* FNV-1a values computed independently (Python) for app "devkey" */
  assert_int_equal(hd_load_room_worker("devkey", "bench-0", 3), 1622027623u % 3);
  assert_int_equal(hd_load_room_worker("devkey", "bench-1", 3), 1605250004u % 3);
  assert_int_equal(hd_load_room_worker("devkey", "bench", 2), 2118686930u % 2);
  for (int n = 1; n <= 4; n++) {
    int per[4] = {0};
    char names[8][32];
    for (int i = 0; i < 8; i++) {
      assert_int_equal(hd_load_balanced_room("devkey", "bench", i, n, names[i], sizeof names[i]), 0);
      per[hd_load_room_worker("devkey", names[i], n)]++;
      for (int k = 0; k < i; k++)
        assert_string_not_equal(names[k], names[i]);
    }
    for (int w = 0; w < n; w++)
      assert_true(per[w] == 8 / n || per[w] == 8 / n + 1);
  }
  char small[4];
  assert_int_equal(hd_load_balanced_room("devkey", "bench", 0, 2, small, sizeof small), HD_ENOSPC);
  assert_int_equal(hd_load_balanced_room("devkey", "bench", 0, 0, small, sizeof small), HD_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_payload),       cmocka_unit_test(test_source_rates),
      cmocka_unit_test(test_rx_accounting), cmocka_unit_test(test_hist),
      cmocka_unit_test(test_seq_gaps),      cmocka_unit_test(test_seq_window_edges),
      cmocka_unit_test(test_rtp_peek),      cmocka_unit_test(test_room_balance),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
