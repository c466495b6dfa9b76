/* Tests for the H.264 reorder window (media/h264_reorder.h) in virtual time:
 * a 30 fps stream (IDR with STAP-A SPS/PPS every 2 s, FU-A slices) over a
 * link that loses packets and delivers their NACK repairs late, after the
 * packets that overtook them (what the node forwards when the publisher's
 * leg lost a packet). Within the window: every access unit comes out, in
 * order, no keyframe request, no frozen span. Past the window: the gap is
 * given up (drop to the next IDR + PLI), so the window stays bounded. The
 * same scenario through the bare depacketiser (the recorder before the
 * window) freezes and asks for keyframes. */
#include "hd_test.h"

#include <string.h>

#include "base/err.h"
#include "media/h264_depay.h"
#include "media/h264_reorder.h"

static const uint8_t SPS[] = {0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8};
static const uint8_t PPS[] = {0x68, 0xce, 0x3c, 0x80};

typedef struct {
  uint16_t seq;
  uint32_t ts;
  int marker;
  uint8_t p[64];
  size_t len;
  hd_time_t at; /* arrival */
} pkt_t;

#define FRAMES 300 /* 10 s at 30 fps */
#define PER_FRAME 4
#define MAXPK (FRAMES * PER_FRAME)

/* frame f: an IDR every 60 frames (STAP-A SPS+PPS + 3 FU-A), else a P slice
 * in 3 FU-A packets; one packet every 5 ms inside the frame */
static size_t make_stream(pkt_t *out, uint16_t seq0) {
  size_t n = 0;
  uint16_t seq = seq0;
  for (int f = 0; f < FRAMES; f++) {
    uint32_t ts = (uint32_t)f * 3000;
    hd_time_t t0 = HD_MS(1000) + (hd_time_t)f * 33333;
    int idr = f % 60 == 0;
    if (idr) {
      pkt_t *k = &out[n++];
      memset(k, 0, sizeof *k);
      k->p[0] = 0x78;
      k->p[2] = sizeof SPS;
      memcpy(k->p + 3, SPS, sizeof SPS);
      k->p[3 + sizeof SPS + 1] = sizeof PPS;
      memcpy(k->p + 5 + sizeof SPS, PPS, sizeof PPS);
      k->len = 5 + sizeof SPS + sizeof PPS;
      k->seq = seq++;
      k->ts = ts;
      k->at = t0;
    }
    for (int j = 0; j < 3; j++) {
      pkt_t *k = &out[n++];
      memset(k, 0, sizeof *k);
      k->p[0] = idr ? 0x7c : 0x5c;
      k->p[1] = (uint8_t)((j == 0 ? 0x80 : j == 2 ? 0x40 : 0) | (idr ? 5 : 1));
      k->p[2] = (uint8_t)f;
      k->p[3] = (uint8_t)j;
      memset(k->p + 4, 0xab, 20);
      k->len = 24;
      k->seq = seq++;
      k->ts = ts;
      k->marker = j == 2;
      k->at = t0 + HD_MS(5) * (j + 1);
    }
  }
  return n;
}

/* deterministic loss: every 13th packet (~7.7%, spread over every frame
 * position) reaches the receiver only as a repair, `repair_after` late */
static void lose_and_repair(pkt_t *pk, size_t n, hd_time_t repair_after) {
  for (size_t i = 5; i < n; i += 13)
    pk[i].at += repair_after;
}

/* arrival order: by time, stable */
static void sort_by_arrival(pkt_t *pk, size_t n) {
  for (size_t i = 1; i < n; i++) {
    pkt_t k = pk[i];
    size_t j = i;
    while (j > 0 && pk[j - 1].at > k.at) {
      pk[j] = pk[j - 1];
      j--;
    }
    pk[j] = k;
  }
}

typedef struct {
  int aus, keys, key_requests;
  uint32_t last_ts;
  uint32_t max_step; /* largest RTP-time step between AUs handed out: a frozen span */
  int out_of_order;
} result_t;

static void on_au(result_t *res, const hd_h264_au_t *au) {
  if (res->aus) {
    uint32_t step = au->ts - res->last_ts;
    if ((int32_t)step <= 0) res->out_of_order++;
    if (step > res->max_step) res->max_step = step;
  }
  res->last_ts = au->ts;
  res->aus++;
  if (au->keyframe) res->keys++;
}

/* feeds the packets in arrival order, polling every packet and every 5 ms tick */
static result_t run_window(pkt_t *pk, size_t n, hd_time_t wait, hd_h264_reorder_stats_t *st) {
  static hd_h264_reorder_t r;
  assert_int_equal(hd_h264_reorder_init(&r, wait, 0), 0);
  result_t res = {0};
  hd_h264_au_t au;
  size_t i = 0;
  for (hd_time_t now = 0; now < HD_SEC(14); now += HD_MS(1)) {
    while (i < n && pk[i].at <= now) {
      assert_int_equal(hd_h264_reorder_push(&r, pk[i].seq, pk[i].ts, pk[i].marker, pk[i].p, pk[i].len, now),
                       0);
      i++;
    }
    int rc;
    while ((rc = hd_h264_reorder_poll(&r, now, &au)) == 1)
      on_au(&res, &au);
    assert_int_equal(rc, 0);
    if (hd_h264_reorder_take_key_request(&r)) res.key_requests++;
  }
  if (st) *st = r.stats;
  hd_h264_reorder_free(&r);
  return res;
}

/* what the recorder did before the window: straight into the depacketiser */
static result_t run_bare(pkt_t *pk, size_t n) {
  static hd_h264_depay_t d;
  assert_int_equal(hd_h264_depay_init(&d, 0), 0);
  result_t res = {0};
  hd_h264_au_t au;
  for (size_t i = 0; i < n; i++) {
    if (hd_h264_depay_push(&d, pk[i].seq, pk[i].ts, pk[i].marker, pk[i].p, pk[i].len, &au) == 1)
      on_au(&res, &au);
    if (hd_h264_depay_take_key_request(&d)) res.key_requests++;
  }
  hd_h264_depay_free(&d);
  return res;
}

static pkt_t PK[MAXPK];

/* repairs 80 ms late (one RTT through the node) with the default 500 ms
 * window: nothing is lost, nothing frozen, no PLI */
static void test_late_repairs_put_in_place(void **st) {
  (void)st;
  size_t n = make_stream(PK, 65000); /* the sequence numbers wrap inside */
  lose_and_repair(PK, n, HD_MS(80));
  sort_by_arrival(PK, n);
  hd_h264_reorder_stats_t s;
  result_t res = run_window(PK, n, 0, &s);
  assert_int_equal(res.key_requests, 0);
  assert_int_equal(res.aus, FRAMES);
  assert_int_equal(res.keys, FRAMES / 60);
  assert_int_equal(res.out_of_order, 0);
  assert_int_equal(res.max_step, 3000); /* no frozen span: every frame, one after the other */
  assert_true(s.repaired >= n / 13 - 1);
  assert_int_equal(s.skipped, 0);
  assert_int_equal(s.late, 0);
}

/* the same arrivals through the bare depacketiser (before): each late repair
 * drops everything to the next IDR and asks for a keyframe */
static void test_without_window_freezes(void **st) {
  (void)st;
  size_t n = make_stream(PK, 65000);
  lose_and_repair(PK, n, HD_MS(80));
  sort_by_arrival(PK, n);
  result_t bare = run_bare(PK, n);
  assert_true(bare.key_requests >= 1);
  assert_true(bare.aus < FRAMES / 2);
  assert_true(bare.max_step >= 30 * 3000);
  /* and a window turned off (negative wait) behaves the same */
  result_t off = run_window(PK, n, -1, NULL);
  assert_true(off.key_requests >= 1);
  assert_int_equal(off.aus, bare.aus);
}

/* repairs later than the window: the gap is given up after `wait` (bounded
 * delay), the stream drops to the next IDR with a PLI, and the repair that
 * finally comes is counted late, not put out of order */
static void test_repair_past_window_gives_up(void **st) {
  (void)st;
  size_t n = make_stream(PK, 100);
  lose_and_repair(PK, n, HD_MS(400));
  sort_by_arrival(PK, n);
  hd_h264_reorder_stats_t s;
  result_t res = run_window(PK, n, HD_MS(100), &s);
  assert_true(res.key_requests >= 1);
  assert_true(s.skipped >= 1);
  assert_true(s.late >= 1);
  assert_int_equal(res.out_of_order, 0);
}

static void push1(hd_h264_reorder_t *r, uint16_t seq, uint32_t ts, hd_time_t now) {
  const uint8_t p[] = {0x41, 0x9a, 0x01};
  assert_int_equal(hd_h264_reorder_push(r, seq, ts, 1, p, sizeof p, now), 0);
}

/* deadlines, duplicates, a sequence jump, the ring cap, bad input */
static void test_edges(void **st) {
  (void)st;
  static hd_h264_reorder_t r;
  assert_int_equal(hd_h264_reorder_init(&r, HD_MS(200), 0), 0);
  hd_h264_au_t au;
  assert_int_equal(hd_h264_reorder_next_timeout(&r), HD_TIME_NEVER);
  /* an IDR with SPS/PPS as single NAL packets */
  uint8_t idr[] = {0x65, 0x88, 0x80};
  assert_int_equal(hd_h264_reorder_push(&r, 10, 0, 0, SPS, sizeof SPS, 0), 0);
  assert_int_equal(hd_h264_reorder_push(&r, 11, 0, 0, PPS, sizeof PPS, 0), 0);
  assert_int_equal(hd_h264_reorder_push(&r, 12, 0, 1, idr, sizeof idr, 0), 0);
  assert_int_equal(hd_h264_reorder_poll(&r, 0, &au), 1);
  assert_true(au.keyframe);
  assert_int_equal(hd_h264_reorder_poll(&r, 0, &au), 0);
  /* 13 missing; 14 held until 13 comes or 200 ms after 14 arrived */
  push1(&r, 14, 6000, HD_MS(10));
  push1(&r, 14, 6000, HD_MS(11)); /* duplicate */
  assert_int_equal(r.stats.duplicate, 1);
  assert_int_equal(hd_h264_reorder_poll(&r, HD_MS(11), &au), 0);
  assert_int_equal(hd_h264_reorder_next_timeout(&r), HD_MS(210));
  push1(&r, 13, 3000, HD_MS(100));
  assert_int_equal(hd_h264_reorder_poll(&r, HD_MS(100), &au), 1);
  assert_int_equal(au.ts, 3000);
  assert_int_equal(hd_h264_reorder_poll(&r, HD_MS(100), &au), 1);
  assert_int_equal(au.ts, 6000);
  assert_int_equal(r.stats.repaired, 1);
  /* 15 never comes: given up at 16's arrival + 200 ms */
  push1(&r, 16, 12000, HD_MS(200));
  assert_int_equal(hd_h264_reorder_poll(&r, HD_MS(399), &au), 0);
  assert_int_equal(hd_h264_reorder_take_key_request(&r), 0);
  assert_int_equal(hd_h264_reorder_poll(&r, HD_MS(400), &au), 0); /* P after a loss: dropped */
  assert_int_equal(hd_h264_reorder_take_key_request(&r), 1);
  assert_int_equal(r.stats.skipped, 1);
  push1(&r, 15, 9000, HD_MS(401)); /* too late */
  assert_int_equal(r.stats.late, 1);
  /* a jump of 20000: held as pending, the window moves to it */
  assert_int_equal(hd_h264_reorder_push(&r, 20017, 100000, 0, SPS, sizeof SPS, HD_MS(500)), 0);
  assert_int_equal(hd_h264_reorder_poll(&r, HD_MS(500), &au), 0);
  assert_int_equal(hd_h264_reorder_push(&r, 20018, 100000, 0, PPS, sizeof PPS, HD_MS(500)), 0);
  assert_int_equal(hd_h264_reorder_push(&r, 20019, 100000, 1, idr, sizeof idr, HD_MS(500)), 0);
  assert_int_equal(hd_h264_reorder_poll(&r, HD_MS(500), &au), 1);
  assert_true(au.keyframe);
  /* the ring is full: a packet SLOTS ahead forces the older gap out at once */
  push1(&r, 20021, 103000, HD_MS(600));
  push1(&r, (uint16_t)(20020 + HD_H264_REORDER_SLOTS + 5), 200000, HD_MS(600));
  assert_int_equal(hd_h264_reorder_poll(&r, HD_MS(600), &au), 0); /* dropped: after a loss */
  assert_true(r.stats.skipped >= 2);
  assert_int_equal(r.pend, 0);
  assert_int_equal(r.count, 0);
  /* a jump back (a sender restarting its sequence numbers): the window
   * follows it, and the depacketiser takes it for a gap, not for late
   * packets (found by fuzz_h264_reorder) */
  assert_int_equal(hd_h264_reorder_push(&r, 3000, 300000, 0, SPS, sizeof SPS, HD_MS(700)), 0);
  assert_int_equal(hd_h264_reorder_poll(&r, HD_MS(700), &au), 0);
  assert_int_equal(hd_h264_reorder_push(&r, 3001, 300000, 0, PPS, sizeof PPS, HD_MS(700)), 0);
  assert_int_equal(hd_h264_reorder_push(&r, 3002, 300000, 1, idr, sizeof idr, HD_MS(700)), 0);
  assert_int_equal(hd_h264_reorder_poll(&r, HD_MS(700), &au), 1);
  assert_true(au.keyframe);
  assert_int_equal(au.ts, 300000);
  assert_int_equal(r.depay.stats.late, 0);
  /* bad input */
  uint8_t big[HD_H264_REORDER_MAX_PAYLOAD + 1] = {0x41};
  assert_int_equal(hd_h264_reorder_push(&r, 1, 0, 0, big, sizeof big, 0), HD_ENOSPC);
  assert_int_equal(hd_h264_reorder_push(NULL, 1, 0, 0, big, 1, 0), HD_EINVAL);
  assert_int_equal(hd_h264_reorder_poll(&r, 0, NULL), HD_EINVAL);
  hd_h264_reorder_free(&r);
  hd_h264_reorder_free(&r); /* twice is fine */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_late_repairs_put_in_place),
      cmocka_unit_test(test_without_window_freezes),
      cmocka_unit_test(test_repair_past_window_gives_up),
      cmocka_unit_test(test_edges),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
