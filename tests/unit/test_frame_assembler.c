/* Frame assembler: in-order, reordered and duplicated packets give every frame
 * once in decode order; a lost packet blocks for nack_wait, a retransmission in
 * time heals it, otherwise a (rate-limited) keyframe request and dropped
 * deltas until the keyframe; caps; and a real VP8 stream over a deterministic
 * lossy, reordering link whose decoded burnt-in counters only ever increase. */
#include "hd_test.h"

#include "base/err.h"
#include "media/frame_assembler.h"
#include "media/rtp_payload.h"
#include "media/test_signal.h"
#include "media/vp8_codec.h"

typedef struct {
  uint16_t seq;
  uint32_t ts;
  int marker;
  uint8_t buf[64];
  size_t len;
} tpkt_t;

/* Synthetic frame `f` of `n` packets starting at seq: descriptor S bit on the
 * first, VP8 header P bit = !key, the data bytes encode (frame, index). */
static int make_frame(tpkt_t *out, uint16_t seq, int f, int n, int key) {
  for (int i = 0; i < n; i++) {
    tpkt_t *p = &out[i];
    p->seq = (uint16_t)(seq + i);
    p->ts = (uint32_t)f * 3000u;
    p->marker = i == n - 1;
    p->buf[0] = (uint8_t)(i == 0 ? 0x10 : 0x00);
    p->buf[1] = (uint8_t)(i == 0 ? (key ? 0x00 : 0x01) : 0xaa);
    p->buf[2] = (uint8_t)f;
    p->buf[3] = (uint8_t)i;
    p->len = 4;
  }
  return n;
}

static int push(hd_frame_asm_t *fa, const tpkt_t *p, hd_time_t now) {
  hd_frame_asm_pkt_t k = {p->seq, p->ts, p->marker, p->buf, p->len};
  return hd_frame_asm_push(fa, &k, now);
}

/* Drains poll: records emitted frame numbers (data[1]: data[0] is the VP8 header byte) and
 * counts keyframe requests. */
static int drain(hd_frame_asm_t *fa, hd_time_t now, int *frames, int *nf, int *kreq) {
  hd_frame_asm_event_t ev;
  int r, got = 0;
  while ((r = hd_frame_asm_poll(fa, now, &ev)) == 1) {
    if (ev.type == HD_FRAME_ASM_FRAME) {
      assert_true(ev.frame.len >= 3);
      frames[(*nf)++] = ev.frame.data[1];
      got++;
    } else {
      assert_int_equal(ev.type, HD_FRAME_ASM_KEYFRAME_NEEDED);
      (*kreq)++;
    }
  }
  assert_int_equal(r, 0);
  return got;
}

static void test_in_order_and_reordered(void **state) {
  static tpkt_t pk[200];
  int n = 0;
  uint16_t seq = 65530; /* crosses the wrap */
  for (int f = 0; f < 20; f++) {
    int np = 1 + f % 4;
    n += make_frame(pk + n, (uint16_t)(seq + n), f, np, f == 0);
  }
  for (int mode = 0; mode < 2; mode++) {
    hd_frame_asm_t fa;
    assert_int_equal(hd_frame_asm_init(&fa, NULL), 0);
    int frames[64], nf = 0, kreq = 0;
    if (mode == 0) {
      for (int i = 0; i < n; i++) {
        assert_int_equal(push(&fa, &pk[i], HD_MS(i)), 0);
        drain(&fa, HD_MS(i), frames, &nf, &kreq);
      }
    } else {
      /* swap neighbours in blocks of 3, and send every 5th packet twice */
      for (int i = 0; i < n; i += 3) {
        int idx[3] = {i + 2, i, i + 1};
        for (int k = 0; k < 3; k++) {
          if (idx[k] >= n) continue;
          assert_int_equal(push(&fa, &pk[idx[k]], HD_MS(i)), 0);
          if (idx[k] % 5 == 0) assert_int_equal(push(&fa, &pk[idx[k]], HD_MS(i)), 1);
          drain(&fa, HD_MS(i), frames, &nf, &kreq);
        }
      }
      assert_true(fa.stats.duplicates > 0);
    }
    assert_int_equal(nf, 20);
    for (int f = 0; f < 20; f++)
      assert_int_equal(frames[f], f);
    assert_int_equal(kreq, 0);
    assert_int_equal(fa.stats.frames, 20);
    assert_int_equal(fa.stats.keyframes, 1);
    assert_int_equal(fa.n_packets, 0);
    /* a packet of an already emitted frame is late */
    assert_int_equal(push(&fa, &pk[3], HD_MS(100)), 1);
    assert_int_equal(hd_frame_asm_next_timeout(&fa), HD_TIME_NEVER);
    hd_frame_asm_free(&fa);
  }
}

/* Checks frame payload contents: frame f of np packets = (f, 0) (f, 1)... */
static void test_frame_bytes(void **state) {
  tpkt_t pk[4];
  make_frame(pk, 100, 7, 3, 1);
  hd_frame_asm_t fa;
  assert_int_equal(hd_frame_asm_init(&fa, NULL), 0);
  push(&fa, &pk[2], 0);
  push(&fa, &pk[0], 0);
  hd_frame_asm_event_t ev;
  assert_int_equal(hd_frame_asm_poll(&fa, 0, &ev), 0); /* incomplete, still in start-up grace */
  push(&fa, &pk[1], 0);
  assert_int_equal(hd_frame_asm_poll(&fa, 0, &ev), 1);
  assert_int_equal(ev.type, HD_FRAME_ASM_FRAME);
  const uint8_t want[] = {0x00, 7, 0, 0xaa, 7, 1, 0xaa, 7, 2};
  assert_int_equal(ev.frame.len, sizeof(want));
  assert_memory_equal(ev.frame.data, want, sizeof(want));
  assert_int_equal(ev.frame.keyframe, 1);
  assert_int_equal(ev.frame.first_seq, 100);
  assert_int_equal(ev.frame.last_seq, 102);
  assert_int_equal(ev.frame.ts, 21000);
  assert_int_equal(ev.frame.picture_id, -1);
  assert_int_equal(ev.frame.after_gap, 0);
  hd_frame_asm_free(&fa);
}

static void test_loss_retransmitted_in_time(void **state) {
  static tpkt_t pk[64];
  int n = 0;
  for (int f = 0; f < 10; f++)
    n += make_frame(pk + n, (uint16_t)(1000 + n), f, 2, f == 0);
  hd_frame_asm_t fa;
  assert_int_equal(hd_frame_asm_init(&fa, NULL), 0);
  int frames[32], nf = 0, kreq = 0;
  hd_time_t t = 0;
  for (int i = 0; i < n; i++, t += HD_MS(5)) {
    if (i == 7) continue; /* frame 3's second packet is lost ... */
    push(&fa, &pk[i], t);
    drain(&fa, t, frames, &nf, &kreq);
  }
  assert_int_equal(nf, 3);
  hd_time_t due = hd_frame_asm_next_timeout(&fa);
  assert_true(due != HD_TIME_NEVER && due <= t + HD_MS(150));
  /* ... and retransmitted before nack_wait runs out */
  push(&fa, &pk[7], due - 1);
  drain(&fa, due - 1, frames, &nf, &kreq);
  assert_int_equal(nf, 10);
  assert_int_equal(kreq, 0);
  assert_int_equal(fa.stats.chain_breaks, 0);
  hd_frame_asm_free(&fa);
}

static void test_loss_breaks_chain(void **state) {
  static tpkt_t pk[128];
  int n = 0, start[40];
  for (int f = 0; f < 40; f++) {
    start[f] = n;
    n += make_frame(pk + n, (uint16_t)(n), f, 2, f == 0 || f == 30);
  }
  hd_frame_asm_t fa;
  assert_int_equal(hd_frame_asm_init(&fa, NULL), 0);
  int frames[64], nf = 0, kreq = 0;
  hd_time_t t = 0;
  hd_time_t req_at[8];
  for (int f = 0; f < 40; f++) {
    for (int i = start[f]; i < start[f] + 2; i++) {
      if (i == start[5]) continue; /* frame 5's first packet never arrives */
      push(&fa, &pk[i], t);
    }
    /* poll at every ms of the 33 ms frame interval, as an I/O loop would on
     * next_timeout */
    for (int ms = 0; ms < 33; ms++, t += HD_MS(1)) {
      int before = kreq;
      drain(&fa, t, frames, &nf, &kreq);
      if (kreq > before) req_at[kreq - 1] = t;
    }
  }
  /* frames 0..4, then nothing until the keyframe at 30, then 30..39 */
  assert_int_equal(nf, 5 + 10);
  assert_int_equal(frames[4], 4);
  assert_int_equal(frames[5], 30); /* the keyframe */
  /* the first request came nack_wait after the gap was seen, then every 500 ms */
  assert_true(kreq == 2);
  assert_true(req_at[0] >= 6 * HD_MS(33) + HD_MS(150) - HD_MS(33) && req_at[0] <= 6 * HD_MS(33) + HD_MS(150));
  assert_int_equal(req_at[1] - req_at[0], HD_MS(500));
  assert_int_equal(fa.stats.chain_breaks, 1);
  assert_true(fa.stats.frames_dropped >= 20);
  assert_int_equal(fa.need_key, 0);
  assert_int_equal(hd_frame_asm_next_timeout(&fa), HD_TIME_NEVER);
  hd_frame_asm_free(&fa);
}

static void test_start_mid_stream_and_explicit_request(void **state) {
  tpkt_t pk[8];
  hd_frame_asm_t fa;
  assert_int_equal(hd_frame_asm_init(&fa, NULL), 0);
  int frames[8], nf = 0, kreq = 0;
  assert_int_equal(hd_frame_asm_next_timeout(&fa), HD_TIME_NEVER);
  /* joined mid-stream: the first complete frame is a delta -> ask at once */
  make_frame(pk, 500, 1, 1, 0);
  push(&fa, &pk[0], HD_MS(10));
  drain(&fa, HD_MS(10), frames, &nf, &kreq);
  assert_int_equal(nf, 0);
  assert_int_equal(kreq, 1);
  assert_int_equal(fa.stats.frames_dropped, 1);
  make_frame(pk, 501, 2, 2, 1);
  push(&fa, &pk[0], HD_MS(20));
  push(&fa, &pk[1], HD_MS(20));
  drain(&fa, HD_MS(20), frames, &nf, &kreq);
  assert_int_equal(nf, 1);
  /* decoder trouble: explicit request, rate-limited against the last one */
  hd_frame_asm_request_keyframe(&fa, HD_MS(30));
  drain(&fa, HD_MS(30), frames, &nf, &kreq);
  assert_int_equal(kreq, 1);
  assert_int_equal(hd_frame_asm_next_timeout(&fa), HD_MS(510));
  drain(&fa, HD_MS(510), frames, &nf, &kreq);
  assert_int_equal(kreq, 2);
  /* a delta after the request is dropped; the keyframe is flagged after_gap */
  make_frame(pk, 503, 3, 1, 0);
  push(&fa, &pk[0], HD_MS(520));
  drain(&fa, HD_MS(520), frames, &nf, &kreq);
  assert_int_equal(nf, 1);
  make_frame(pk, 504, 4, 1, 1);
  push(&fa, &pk[0], HD_MS(530));
  hd_frame_asm_event_t ev;
  assert_int_equal(hd_frame_asm_poll(&fa, HD_MS(530), &ev), 1);
  assert_int_equal(ev.frame.keyframe, 1);
  assert_int_equal(ev.frame.after_gap, 1);
  hd_frame_asm_free(&fa);
}

static void test_caps_and_errors(void **state) {
  hd_frame_asm_config_t c;
  hd_frame_asm_config_default(&c);
  c.max_packets = 8;
  hd_frame_asm_t fa;
  c.max_packets = 0;
  assert_int_equal(hd_frame_asm_init(&fa, &c), HD_EINVAL);
  c.max_packets = HD_FRAME_ASM_SLOTS + 1;
  assert_int_equal(hd_frame_asm_init(&fa, &c), HD_EINVAL);
  c.max_packets = 8;
  assert_int_equal(hd_frame_asm_init(&fa, &c), 0);
  static tpkt_t pk[32];
  make_frame(pk, 0, 0, 1, 1);
  make_frame(pk + 1, 1, 1, 20, 0); /* a frame bigger than the packet cap */
  int frames[8], nf = 0, kreq = 0;
  for (int i = 0; i < 21; i++) {
    push(&fa, &pk[i], 0);
    drain(&fa, 0, frames, &nf, &kreq);
  }
  assert_true(fa.stats.cap_overflows > 0);
  assert_true(fa.n_packets <= 8);
  assert_int_equal(nf, 1);
  /* malformed and invalid input */
  uint8_t bad[] = {0x09, 0x00};
  hd_frame_asm_pkt_t k = {50, 0, 1, bad, sizeof(bad)};
  assert_int_equal(hd_frame_asm_push(&fa, &k, 0), HD_EPROTO);
  k.len = 1;
  bad[0] = 0x80;
  assert_int_equal(hd_frame_asm_push(&fa, &k, 0), HD_ETRUNC);
  k.len = 0;
  assert_int_equal(hd_frame_asm_push(&fa, &k, 0), HD_EINVAL);
  k.len = HD_FRAME_ASM_MAX_PAYLOAD + 1;
  assert_int_equal(hd_frame_asm_push(&fa, &k, 0), HD_EINVAL);
  assert_int_equal(fa.stats.malformed, 2);
  /* a jump far ahead (sender restart) breaks the chain instead of aliasing */
  tpkt_t far;
  make_frame(&far, 30000, 9, 1, 1);
  assert_int_equal(push(&fa, &far, 0), 0);
  hd_frame_asm_event_t ev;
  assert_int_equal(hd_frame_asm_poll(&fa, 0, &ev), 1);
  assert_int_equal(ev.frame.first_seq, 30000);
  hd_frame_asm_free(&fa);
  hd_frame_asm_free(&fa);
}

/* ---- real VP8 over a lossy, reordering link ---- */

#define MAXQ 4096
typedef struct {
  hd_time_t at;
  uint16_t seq;
  uint32_t ts;
  int marker;
  size_t len;
  uint8_t data[1200];
} flight_t;

static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void test_vp8_over_lossy_link(void **state) {
  const int W = 320, H = 180, FRAMES = 300;
  hd_vp8_enc_config_t c;
  hd_vp8_enc_config_default(&c);
  c.width = W;
  c.height = H;
  c.bitrate = 300000;
  /* a negative speed is fixed; a positive one lets libvpx's realtime mode
   * re-pick it from how long frames take, which made this test depend on the
   * machine's load */
  c.cpu_used = -8;
  hd_vp8_enc_t enc;
  hd_vp8_dec_t dec;
  assert_int_equal(hd_vp8_enc_init(&enc, &c), 0);
  assert_int_equal(hd_vp8_dec_init(&dec), 0);
  hd_vp8_pay_t pay;
  assert_int_equal(hd_vp8_pay_init(&pay, 300, 1234), 0); /* small MTU: several packets per frame */
  hd_frame_asm_t fa;
  assert_int_equal(hd_frame_asm_init(&fa, NULL), 0);
  hd_i420_t pic;
  assert_int_equal(hd_i420_alloc(&pic, W, H), 0);
  static flight_t q[MAXQ];
  static uint8_t enc_buf[256 * 1024];
  size_t nq = 0;
  uint64_t rng = 42;
  uint16_t seq = 65000;
  int decoded = 0, last_counter = -1, requests = 0, lost = 0, rtx = 0;
  hd_time_t key_req_at = HD_TIME_NEVER;
  for (hd_time_t t = 0; t < HD_MS(33) * FRAMES + HD_MS(500); t += HD_MS(1)) {
    int fi = (int)(t / HD_MS(33));
    if (t % HD_MS(33) == 0 && fi < FRAMES) {
      /* sender: a keyframe request reaches it 20 ms after it was made */
      if (key_req_at != HD_TIME_NEVER && t >= key_req_at + HD_MS(20)) {
        hd_vp8_enc_force_keyframe(&enc);
        key_req_at = HD_TIME_NEVER;
      }
      hd_test_pattern_draw(&pic, (uint32_t)fi);
      int key = 0;
      int n = hd_vp8_encode(&enc, &pic, fi, enc_buf, sizeof(enc_buf), &key);
      assert_true(n > 0);
      assert_true(hd_vp8_pay_begin(&pay, enc_buf, (size_t)n) > 0);
      int marker = 0, len, k = 0;
      flight_t tmp;
      while ((len = hd_vp8_pay_next(&pay, tmp.data, sizeof(tmp.data), &marker)) > 0) {
        tmp.seq = seq++;
        tmp.ts = (uint32_t)fi * 3000u;
        tmp.marker = marker;
        tmp.len = (size_t)len;
        /* paced 1 ms apart, 30 ms delay, 0..20 ms jitter (reorders), 2 % loss
         * of which 3/4 is repaired by a retransmission 80 ms later */
        tmp.at = t + HD_MS(k++) + HD_MS(30) + (hd_time_t)(rng_next(&rng) % 20000);
        uint64_t r = rng_next(&rng) % 1000;
        if (r < 20) {
          lost++;
          if (r < 5) continue;
          tmp.at += HD_MS(80);
          rtx++;
        }
        assert_true(nq < MAXQ);
        q[nq++] = tmp;
      }
    }
    /* receiver: deliver everything due by t (any order among due ones is fine) */
    for (size_t i = 0; i < nq;) {
      if (q[i].at <= t) {
        hd_frame_asm_pkt_t p = {q[i].seq, q[i].ts, q[i].marker, q[i].data, q[i].len};
        int r = hd_frame_asm_push(&fa, &p, t);
        assert_true(r == 0 || r == 1);
        q[i] = q[--nq];
      } else {
        i++;
      }
    }
    hd_frame_asm_event_t ev;
    while (hd_frame_asm_poll(&fa, t, &ev) == 1) {
      if (ev.type == HD_FRAME_ASM_KEYFRAME_NEEDED) {
        requests++;
        key_req_at = t;
        continue;
      }
      hd_i420_t out;
      int r = hd_vp8_decode(&dec, ev.frame.data, ev.frame.len, &out);
      assert_int_equal(r, 1); /* never fed an undecodable frame */
      int counter = hd_test_pattern_read(&out);
      assert_true(counter > last_counter); /* decode order, no repeats */
      last_counter = counter;
      decoded++;
    }
  }
  printf("lossy link: decoded %d/%d, lost %d (rtx %d), key requests %d, chain breaks %llu, dropped %llu\n",
         decoded, FRAMES, lost, rtx, requests, (unsigned long long)fa.stats.chain_breaks,
         (unsigned long long)fa.stats.frames_dropped);
  assert_true(lost > 10 && rtx > 5);
  assert_true(requests >= 1);
  assert_true(decoded > FRAMES * 7 / 10);
  assert_int_equal(last_counter, FRAMES - 1);
  assert_true(fa.stats.frames == (uint64_t)decoded);
  hd_i420_free(&pic);
  hd_vp8_enc_free(&enc);
  hd_vp8_dec_free(&dec);
  hd_frame_asm_free(&fa);
}

/* The first keyframe misses a packet while later deltas complete: they wait
 * for its repair (no keyframe request, nothing dropped), and once it is in,
 * everything comes out in order. Before issue 13 the deltas were dropped and
 * a keyframe requested at once, though the repair was on its way. */
static void test_incomplete_keyframe_waits_for_repair(void **state) {
  static tpkt_t pk[32];
  int n = 0;
  for (int f = 0; f < 6; f++)
    n += make_frame(pk + n, (uint16_t)(500 + n), f, f == 0 ? 4 : 2, f == 0);
  hd_frame_asm_t fa;
  assert_int_equal(hd_frame_asm_init(&fa, NULL), 0);
  int frames[16], nf = 0, kreq = 0;
  for (int i = 0; i < n; i++) {
    if (i == 2) continue; /* the keyframe's third packet is lost */
    assert_int_equal(push(&fa, &pk[i], HD_MS(i * 5)), 0);
    drain(&fa, HD_MS(i * 5), frames, &nf, &kreq);
  }
  drain(&fa, HD_MS(100), frames, &nf, &kreq);
  assert_int_equal(nf, 0);
  assert_int_equal(kreq, 0);
  assert_int_equal(fa.stats.frames_dropped, 0);
  assert_int_equal(push(&fa, &pk[2], HD_MS(110)), 0); /* the retransmission */
  drain(&fa, HD_MS(110), frames, &nf, &kreq);
  assert_int_equal(nf, 6);
  for (int f = 0; f < 6; f++)
    assert_int_equal(frames[f], f);
  assert_int_equal(kreq, 0);
  hd_frame_asm_free(&fa);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_in_order_and_reordered),
      cmocka_unit_test(test_frame_bytes),
      cmocka_unit_test(test_loss_retransmitted_in_time),
      cmocka_unit_test(test_loss_breaks_chain),
      cmocka_unit_test(test_start_mid_stream_and_explicit_request),
      cmocka_unit_test(test_caps_and_errors),
      cmocka_unit_test(test_vp8_over_lossy_link),
      cmocka_unit_test(test_incomplete_keyframe_waits_for_repair),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
