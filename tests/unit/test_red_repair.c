/* Unit tests for sfu/red_repair: the node rebuilds the RED audio packets its
 * publisher leg lost from the next packet's redundancy (seq, ts, primary and
 * the older blocks right), leaves non-uniform gaps (DTX) and late packets
 * alone, and on the link model (tests/support/link.h: two legs at 50 % random
 * loss each, RED depth 9 as the SDK sends at that loss) the frames the viewer
 * can play go from ~93 % to > 99 %. */
#include "hd_test.h"

#include "media/rtp_payload.h"
#include "proto/rtp.h"
#include "sfu/red_repair.h"
#include "support/link.h"

#define SSRC 0xabcdef01u
#define RED_PT 63
#define OPUS_PT 111
#define STEP 960 /* 20 ms at 48 kHz */

/* Frame f's bytes: 20 + f % 7 bytes, each derived from f. */
static size_t frame(uint32_t f, uint8_t *out) {
  size_t n = 20 + f % 7;
  for (size_t i = 0; i < n; i++)
    out[i] = (uint8_t)(f * 13 + i);
  return n;
}

/* The RED packet for frame f (seq = 1000 + f, ts = f * STEP) with depth d. */
static size_t red_pkt(uint32_t f, int d, uint8_t *pkt, size_t cap, uint32_t ts_of_f0) {
  uint8_t fr[16][64];
  hd_red_block_t b[16];
  int n = 0;
  for (int k = d; k >= 0; k--) {
    if ((int)f - k < 0) continue;
    size_t l = frame(f - (uint32_t)k, fr[n]);
    b[n] = (hd_red_block_t){OPUS_PT, (uint16_t)(k * STEP), fr[n], l};
    n++;
  }
  uint8_t pl[1200];
  int pn = hd_red_build(b, n, pl, sizeof pl);
  assert_true(pn > 0);
  hd_rtp_build_t bd = {.pt = RED_PT, .seq = (uint16_t)(1000 + f), .ts = ts_of_f0 + f * STEP, .ssrc = SSRC};
  int len = hd_rtp_build(&bd, pl, (size_t)pn, pkt, cap);
  assert_true(len > 0);
  return (size_t)len;
}

typedef struct {
  int n;
  uint16_t seq[16];
  uint32_t ts[16];
  int ok[16]; /* primary is the right frame, redundancy consistent */
} got_t;

static void on_pkt(void *ud, const uint8_t *pkt, size_t len) {
  got_t *g = ud;
  hd_rtp_hdr_t h;
  assert_int_equal(hd_rtp_parse(pkt, len, &h), 0);
  assert_int_equal(h.pt, RED_PT);
  assert_int_equal(h.ssrc, SSRC);
  int i = g->n++;
  g->seq[i] = h.seq;
  g->ts[i] = h.ts;
  hd_red_block_t b[HD_RED_MAX_BLOCKS];
  int nb = hd_red_parse(h.payload, h.payload_len, b);
  int ok = nb >= 1;
  uint32_t f = h.seq - 1000u;
  for (int k = 0; ok && k < nb; k++) {
    uint32_t ff = f - (k == nb - 1 ? 0 : b[k].ts_offset / STEP);
    uint8_t want[64];
    size_t wl = frame(ff, want);
    ok = b[k].pt == OPUS_PT && b[k].len == wl && !memcmp(b[k].data, want, wl);
  }
  g->ok[i] = ok;
}

static void feed(hd_red_repair_t *r, const uint8_t *pkt, size_t len, got_t *g) {
  hd_rtp_hdr_t h;
  assert_int_equal(hd_rtp_parse(pkt, len, &h), 0);
  hd_red_repair_feed(r, &h, on_pkt, g);
}

static void test_rebuilds_gap(void **st) {
  (void)st;
  hd_red_repair_t r;
  hd_red_repair_init(&r);
  uint8_t p[1500];
  got_t g = {0};
  for (uint32_t f = 0; f < 5; f++)
    feed(&r, p, red_pkt(f, 3, p, sizeof p, 0), &g);
  assert_int_equal(g.n, 0);
  /* 5 and 6 lost, 7 carries them (depth 3: 4, 5, 6) */
  feed(&r, p, red_pkt(7, 3, p, sizeof p, 0), &g);
  assert_int_equal(g.n, 2);
  assert_int_equal(g.seq[0], 1005);
  assert_int_equal(g.ts[0], 5 * STEP);
  assert_int_equal(g.seq[1], 1006);
  assert_int_equal(g.ts[1], 6 * STEP);
  assert_true(g.ok[0] && g.ok[1]);
  assert_int_equal(r.repaired, 2);
  /* 8..12 lost (5 > depth 3): 10, 11, 12 rebuilt from 13, 8 and 9 counted */
  g.n = 0;
  feed(&r, p, red_pkt(13, 3, p, sizeof p, 0), &g);
  assert_int_equal(g.n, 3);
  assert_int_equal(g.seq[0], 1010);
  assert_true(g.ok[0] && g.ok[1] && g.ok[2]);
  assert_int_equal(r.unrepaired, 2);
  /* late / repeated packets pass through */
  g.n = 0;
  feed(&r, p, red_pkt(12, 3, p, sizeof p, 0), &g);
  feed(&r, p, red_pkt(13, 3, p, sizeof p, 0), &g);
  assert_int_equal(g.n, 0);
  /* a gap across a timestamp jump (DTX pause): the seq of a block cannot be told */
  feed(&r, p, red_pkt(15, 3, p, sizeof p, 480000), &g);
  assert_int_equal(g.n, 0);
  assert_int_equal(r.unrepaired, 3);
  /* without redundancy (a primary-only RED packet) nothing to rebuild from */
  feed(&r, p, red_pkt(17, 0, p, sizeof p, 480000), &g);
  assert_int_equal(g.n, 0);
  assert_int_equal(r.unrepaired, 4);
}

/* Frames the viewer can play over two legs with loss p each: a frame counts
 * when a packet that carries it (as primary or redundancy) reaches the viewer. */
static double playable(int repair, double p, int depth, uint64_t seed) {
  hd_link_params_t lp = {.delay = HD_MS(25), .loss = p};
  hd_link_t up, down;
  hd_link_init(&up, &lp, seed);
  hd_link_init(&down, &lp, seed + 1);
  hd_red_repair_t r;
  hd_red_repair_init(&r);
  enum { FRAMES = 3000 };
  static uint8_t have[FRAMES];
  memset(have, 0, sizeof have);
  uint8_t p1[1500];
  hd_time_t at;
  for (uint32_t f = 0; f < FRAMES; f++) {
    size_t l = red_pkt(f, depth, p1, sizeof p1, 0);
    if (!hd_link_send(&up, (hd_time_t)f * HD_MS(20), &at)) continue;
    /* what the node sends on: the rebuilt packets first, then this one */
    got_t g = {0};
    hd_rtp_hdr_t h;
    assert_int_equal(hd_rtp_parse(p1, l, &h), 0);
    if (repair) hd_red_repair_feed(&r, &h, on_pkt, &g);
    for (int i = 0; i <= g.n; i++) {
      uint32_t pf = i < g.n ? g.seq[i] - 1000u : f;
      if (i < g.n) assert_true(g.ok[i]);
      if (!hd_link_send(&down, (hd_time_t)f * HD_MS(20), &at)) continue;
      for (int k = 0; k <= depth && (int)pf - k >= 0; k++) {
        /* a rebuilt packet carries its frame and the older ones the carrier had */
        if (i < g.n && pf - (uint32_t)k + (uint32_t)depth < f) break;
        have[pf - (uint32_t)k] = 1;
      }
    }
  }
  int n = 0;
  for (int f = 0; f < FRAMES; f++)
    n += have[f];
  return 100.0 * n / FRAMES;
}

static void test_two_legs_link_model(void **st) {
  (void)st;
  double off = playable(0, 0.5, 9, 11), on = playable(1, 0.5, 9, 11);
  print_message("RED depth 9, 50%% loss on each leg: frames playable %.2f%% passed through, %.2f%% with "
                "the node's repair\n",
                off, on);
  assert_true(off < 97.0); /* 1 - 0.75^10 = 94.4 % */
  /* each leg alone would lose 0.5^10 = 0.1 %; a bit more, as a rebuilt
   * packet carries only the blocks its carrier had (none older) */
  assert_true(on > 99.0);
  double off30 = playable(0, 0.3, 6, 21), on30 = playable(1, 0.3, 6, 21);
  print_message("RED depth 6 (the SDK's at this loss), 30%% loss on each leg: %.2f%% -> %.2f%%\n", off30,
                on30);
  assert_true(on30 > off30);
  assert_true(on30 > 99.0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rebuilds_gap),
      cmocka_unit_test(test_two_legs_link_model),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
