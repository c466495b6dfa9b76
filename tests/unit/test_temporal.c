/* Unit tests for VP8 temporal layer selection (sfu/temporal.h, RFC 7741 §4.2):
 * a 3-layer (L1T3) stream, TIDs 0,2,1,2 with layer sync on the first TL2 and
 * TL1 frame after each TL0 frame, two packets a frame. Dropping layers keeps
 * the output's sequence numbers and PictureIDs gap-free, going up waits for a
 * layer-sync frame or a keyframe, a late packet of a dropped frame fills its
 * reserved seq as padding, and NACKed out seqs map back to the source. */
#include "hd_test.h"

#include "base/err.h"
#include "media/rtp_payload.h"
#include "sfu/temporal.h"

static const int TIDS[4] = {0, 2, 1, 2};
static const int SYNC[4] = {0, 1, 1, 0};

typedef struct {
  hd_tl_filter_t f;
  uint16_t seq;  /* next source seq */
  int pic;       /* next source PictureID */
  int tl0;       /* TL0PICIDX of the current group */
  int frame;     /* frames sent */
  int fwd_pics;  /* forwarded pictures (first packets) */
  int have_last; /* last forwarded out seq / out pid known */
  uint16_t last_out;
  int last_pid;
} src_t;

/* One packet of frame (pid, tid, sync); start = first packet. Writes the
 * payload to p (descriptor + 2 data bytes) and returns its length. */
static size_t payload(uint8_t *p, int pid, int tl0, int tid, int sync, int start, int key) {
  hd_vp8_desc_t d;
  memset(&d, 0, sizeof d);
  d.start = (uint8_t)start;
  d.picture_id = pid & 0x7fff;
  d.picture_id_bits = 15;
  d.tl0picidx = tl0 & 0xff;
  d.tid = tid;
  d.layer_sync = (uint8_t)sync;
  d.keyidx = -1;
  int n = hd_vp8_desc_write(&d, p, 16);
  assert_true(n > 0);
  p[n] = key ? 0x00 : 0x01; /* VP8 payload header P bit: 0 = keyframe */
  p[n + 1] = 0x55;
  return (size_t)n + 2;
}

static int feed(hd_tl_filter_t *f, uint32_t ssrc, uint16_t seq, uint8_t *p, size_t len, uint16_t *out) {
  hd_tl_pkt_t k;
  assert_int_equal(hd_tl_pkt_from_vp8(p, len, &k), 0);
  return hd_tl_filter_feed(f, ssrc, seq, &k, out);
}

static int pid_of(const uint8_t *p) { return ((p[2] & 0x7f) << 8) | p[3]; }

/* Sends one frame (two packets) of the pattern and checks that what is
 * forwarded continues the output without gaps. Returns 1 if forwarded. */
static int send_frame(src_t *s, int key) {
  int i = s->frame % 4, tid = key ? 0 : TIDS[i];
  if (tid == 0) s->tl0++;
  int fwd = 0;
  for (int k = 0; k < 2; k++) {
    uint8_t p[32];
    size_t len = payload(p, s->pic, s->tl0, tid, key ? 0 : SYNC[i], k == 0, key);
    uint16_t out;
    int v = feed(&s->f, 0xAAAA, s->seq++, p, len, &out);
    assert_true(v == HD_TL_FORWARD || v == HD_TL_DROP);
    if (v != HD_TL_FORWARD) continue;
    fwd = 1;
    if (s->have_last) assert_int_equal(out, (uint16_t)(s->last_out + 1)); /* no gap */
    s->last_out = out;
    assert_int_equal(hd_tl_filter_rewrite_pid(&s->f, p, len), 0);
    if (k == 0) {
      if (s->have_last) assert_int_equal(pid_of(p), (s->last_pid + 1) & 0x7fff); /* no PictureID gap */
      s->last_pid = pid_of(p);
      s->fwd_pics++;
    }
    assert_int_equal(p[4], s->tl0 & 0xff); /* TL0PICIDX untouched */
    s->have_last = 1;
  }
  s->pic++;
  s->frame++;
  return fwd;
}

static void src_init(src_t *s) {
  memset(s, 0, sizeof *s);
  hd_tl_filter_init(&s->f);
  s->seq = 65500; /* wraps during the test */
  s->pic = 32700;
}

static void test_all_layers_is_identity(void **st) {
  (void)st;
  src_t s;
  src_init(&s);
  send_frame(&s, 1);
  for (int i = 0; i < 40; i++)
    assert_int_equal(send_frame(&s, 0), 1);
  assert_int_equal(s.f.engaged, 0); /* no history kept */
  assert_int_equal(s.last_out, (uint16_t)(s.seq - 1));
  assert_int_equal(s.last_pid, (s.pic - 1) & 0x7fff);
  uint16_t src;
  assert_int_equal(hd_tl_filter_unmap(&s.f, 1234, &src), HD_TL_FORWARD);
  assert_int_equal(src, 1234);
}

static void test_drop_and_come_back(void **st) {
  (void)st;
  src_t s;
  src_init(&s);
  send_frame(&s, 1);
  for (int i = 0; i < 7; i++) /* frames 1..7 */
    send_frame(&s, 0);
  /* base layer only: 1 frame in 4 (30 -> 7.5 fps) */
  hd_tl_filter_set_target(&s.f, 0);
  int fwd = s.fwd_pics;
  for (int i = 0; i < 16; i++)
    send_frame(&s, 0);
  assert_int_equal(s.fwd_pics - fwd, 4);
  assert_int_equal(s.f.cur, 0);
  /* a NACK for the newest out seq maps to the source seq of the last TL0 packet */
  uint16_t src;
  assert_int_equal(hd_tl_filter_unmap(&s.f, s.last_out, &src), HD_TL_FORWARD);
  assert_int_equal(src, (uint16_t)(s.seq - 7)); /* frames 20 (TL0), 21, 22, 23 (dropped): 2 + 6 back */
  /* up to TL1 (15 fps): not at the TL2 sync frame, at the TL1 one */
  hd_tl_filter_set_target(&s.f, 1);
  assert_int_equal(s.frame % 4, 0);
  assert_int_equal(send_frame(&s, 0), 1); /* TL0 */
  assert_int_equal(send_frame(&s, 0), 0); /* TL2, sync: above the target */
  assert_int_equal(send_frame(&s, 0), 1); /* TL1, sync: the switch */
  assert_int_equal(s.f.cur, 1);
  assert_int_equal(send_frame(&s, 0), 0); /* TL2 */
  /* up to all (30 fps) just before a TL2 frame that is not a sync frame: it
   * references the TL1 frame, so it waits for the next TL2 sync frame */
  assert_int_equal(send_frame(&s, 0), 1); /* TL0 */
  assert_int_equal(send_frame(&s, 0), 0); /* TL2 sync, still at 1 */
  assert_int_equal(send_frame(&s, 0), 1); /* TL1 */
  hd_tl_filter_set_target(&s.f, HD_TL_ALL);
  assert_int_equal(send_frame(&s, 0), 0); /* TL2, not sync: dropped */
  assert_int_equal(send_frame(&s, 0), 1); /* TL0 */
  assert_int_equal(send_frame(&s, 0), 1); /* TL2 sync: up */
  assert_int_equal(s.f.cur, 2);
  for (int i = 0; i < 8; i++)
    assert_int_equal(send_frame(&s, 0), 1);
  assert_int_equal(s.f.up_switches, 2);
  assert_int_equal(s.f.down_switches, 1);
  /* down to 0 and back up at a keyframe (no sync frame needed) */
  hd_tl_filter_set_target(&s.f, 0);
  send_frame(&s, 0);
  send_frame(&s, 0);
  hd_tl_filter_set_target(&s.f, HD_TL_ALL);
  send_frame(&s, 1);
  assert_int_equal(s.f.cur, HD_TL_ALL);
  assert_int_equal(send_frame(&s, 0), 1);
}

/* Packets that come late: one of a dropped frame fills its reserved seq as
 * padding; one of a forwarded frame takes its reserved seq. */
static void test_late_packets(void **st) {
  (void)st;
  hd_tl_filter_t f;
  hd_tl_filter_init(&f);
  hd_tl_filter_set_target(&f, 0);
  uint8_t p[32];
  uint16_t out, src;
  size_t len;
  /* keyframe (seq 10, 11) */
  len = payload(p, 1, 1, 0, 0, 1, 1);
  assert_int_equal(feed(&f, 0xB, 10, p, len, &out), HD_TL_FORWARD);
  len = payload(p, 1, 1, 0, 0, 0, 1);
  assert_int_equal(feed(&f, 0xB, 11, p, len, &out), HD_TL_FORWARD);
  /* TL2 frame (seq 12, 13): 12 lost for now, 13 dropped */
  len = payload(p, 2, 1, 2, 1, 0, 0);
  assert_int_equal(feed(&f, 0xB, 13, p, len, &out), HD_TL_DROP);
  /* TL0 frame (seq 14, 15): 14 lost for now, 15 forwarded */
  len = payload(p, 3, 2, 0, 0, 0, 0);
  assert_int_equal(feed(&f, 0xB, 15, p, len, &out), HD_TL_FORWARD);
  uint16_t out15 = out;
  /* 12 was reserved at 12, 14 at 13 (13 was dropped): 15 goes out as 14 */
  assert_int_equal(out15, 14);
  /* the subscriber NACKs 12 and 13: both map to their source seqs, not yet here */
  assert_int_equal(hd_tl_filter_unmap(&f, 12, &src), HD_TL_FORWARD);
  assert_int_equal(src, 12);
  assert_int_equal(hd_tl_filter_unmap(&f, 13, &src), HD_TL_FORWARD);
  assert_int_equal(src, 14);
  /* 12 comes (TL2: dropped layer): padding at 12 */
  len = payload(p, 2, 1, 2, 1, 1, 0);
  assert_int_equal(feed(&f, 0xB, 12, p, len, &out), HD_TL_PAD);
  assert_int_equal(out, 12);
  assert_int_equal(hd_tl_filter_unmap(&f, 12, &src), HD_TL_PAD);
  /* 14 comes (TL0): forwarded at 13 */
  len = payload(p, 3, 2, 0, 0, 1, 0);
  assert_int_equal(feed(&f, 0xB, 14, p, len, &out), HD_TL_FORWARD);
  assert_int_equal(out, 13);
  /* again (a duplicate repair): the same out seq; a dropped one stays dropped */
  assert_int_equal(feed(&f, 0xB, 14, p, len, &out), HD_TL_FORWARD);
  assert_int_equal(out, 13);
  len = payload(p, 2, 1, 2, 1, 0, 0);
  assert_int_equal(feed(&f, 0xB, 13, p, len, &out), HD_TL_DROP);
  assert_int_equal(hd_tl_filter_map(&f, 15, &out), 0);
  assert_int_equal(out, 14);
  assert_int_equal(hd_tl_filter_map(&f, 13, &out), HD_ENOTFOUND);
  assert_int_equal(f.padded, 1);
  /* a PictureID of the dropped picture is not used: picture 3 goes out as 2 */
  len = payload(p, 3, 2, 0, 0, 1, 0);
  assert_int_equal(hd_tl_filter_rewrite_pid(&f, p, len), 0);
  assert_int_equal(pid_of(p), 2);
  /* out of the history: unmappable */
  for (uint16_t q = 16; q < 16 + 2 * HD_TL_HIST; q++) {
    len = payload(p, 4 + q, 3 + q, 0, 0, 1, 0);
    feed(&f, 0xB, q, p, len, &out);
  }
  assert_int_equal(hd_tl_filter_unmap(&f, 13, &src), HD_ENOTFOUND);
  len = payload(p, 3, 2, 0, 0, 1, 0);
  assert_int_equal(feed(&f, 0xB, 14, p, len, &out), HD_TL_DROP);
}

/* A new source (a simulcast layer switch) starts the filter afresh at its
 * keyframe, with the target kept; a stream without temporal layers passes. */
static void test_new_source_and_no_tid(void **st) {
  (void)st;
  hd_tl_filter_t f;
  hd_tl_filter_init(&f);
  hd_tl_filter_set_target(&f, 1);
  uint8_t p[32];
  uint16_t out;
  size_t len = payload(p, 5, 5, 2, 0, 1, 0);
  assert_int_equal(feed(&f, 0xC, 100, p, len, &out), HD_TL_DROP); /* starts at target 1: TL2 dropped */
  len = payload(p, 9, 9, 0, 0, 1, 1);
  assert_int_equal(feed(&f, 0xD, 7, p, len, &out), HD_TL_FORWARD); /* new source */
  assert_int_equal(out, 7);
  assert_int_equal(f.drops, 0);
  hd_tl_pkt_t k = {.tid = -1, .picture_id = -1};
  hd_tl_filter_set_target(&f, 0);
  assert_int_equal(hd_tl_filter_feed(&f, 0xE, 50, &k, &out), HD_TL_FORWARD);
  assert_int_equal(out, 50);
  /* a payload that does not parse */
  uint8_t bad[1] = {0x80};
  assert_true(hd_tl_pkt_from_vp8(bad, sizeof bad, &k) < 0);
  assert_true(hd_tl_filter_rewrite_pid(&f, bad, sizeof bad) < 0 || !f.engaged);
}

/* A late first packet of a picture of a dropped layer (review finding): it
 * fills its reserved seq as padding but must not count as a dropped PictureID
 * after later pictures were numbered, or a later picture would get the
 * PictureID an earlier one already went out with. */
static void test_late_dropped_picture_keeps_pids_unique(void **st) {
  (void)st;
  hd_tl_filter_t f;
  hd_tl_filter_init(&f);
  hd_tl_filter_set_target(&f, 1);
  uint8_t p[32], q[32];
  uint16_t out;
  size_t n;
  n = payload(p, 8, 1, 0, 0, 1, 1); /* TL0 keyframe */
  assert_int_equal(feed(&f, 1, 96, p, n, &out), HD_TL_FORWARD);
  n = payload(p, 9, 1, 2, 1, 1, 0); /* TL2: dropped, the filter engages */
  assert_int_equal(feed(&f, 1, 97, p, n, &out), HD_TL_DROP);
  n = payload(p, 10, 2, 0, 0, 1, 0);
  assert_int_equal(feed(&f, 1, 98, p, n, &out), HD_TL_FORWARD);
  /* 99 (pic 11, TL2) is late: 100 (pic 12, TL1) goes first */
  n = payload(q, 12, 2, 1, 1, 1, 0);
  assert_int_equal(feed(&f, 1, 100, q, n, &out), HD_TL_FORWARD);
  n = payload(p, 13, 2, 2, 0, 1, 0);
  assert_int_equal(feed(&f, 1, 101, p, n, &out), HD_TL_DROP);
  n = payload(p, 11, 2, 2, 1, 1, 0); /* the late one: padding in its place */
  assert_int_equal(feed(&f, 1, 99, p, n, &out), HD_TL_PAD);
  n = payload(p, 14, 3, 0, 0, 1, 0);
  assert_int_equal(feed(&f, 1, 102, p, n, &out), HD_TL_FORWARD);
  assert_int_equal(hd_tl_filter_rewrite_pid(&f, q, sizeof q), 0);
  assert_int_equal(hd_tl_filter_rewrite_pid(&f, p, n), 0);
  /* pic 12 and pic 14 go out with different PictureIDs, in order */
  assert_true(pid_of(p) != pid_of(q));
  assert_true(pid_of(p) > pid_of(q));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_all_layers_is_identity),
      cmocka_unit_test(test_drop_and_come_back),
      cmocka_unit_test(test_late_packets),
      cmocka_unit_test(test_late_dropped_picture_keeps_pids_unique),
      cmocka_unit_test(test_new_source_and_no_tid),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
