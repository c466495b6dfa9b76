/* FlexFEC from the node to a viewer (sfu/session_fec.h), through the real
 * forwarding, pacing and repair paths of a viewer session, in virtual time,
 * the link a capture of the plain RTP the node hands to SRTP. The receiver is
 * the FlexFEC decoder both Hudong ends use (rtc/flexfec.h), fed as the SDK's
 * receive path feeds it (client/pc_fec.c: the transport-wide seq zeroed, an
 * RTX packet unwrapped, RFC 4588 §4).
 *
 * A repair packet covers the packets as the node first sent them; the viewer
 * rebuilds a lost one from the repair packet and the group's other packets as
 * it holds them, and one of those may have come as RTX. The node stamps
 * abs-send-time per send and may have turned the playout-delay extension on
 * since: an RTX copy rebuilt at repair time then unwraps to other bytes than
 * the ones protected (another abs-send-time; a longer header), and the packet
 * FlexFEC rebuilds from it is garbled. */
#include "hd_test.h"

#include "base/err.h"
#include "proto/rtcp.h"
#include "proto/rtp.h"
#include "rtc/flexfec.h"
#include "sfu/session.h"
#include "sfu/session_fec.h"
#include "sfu/session_pace.h"
#include "sfu/session_resend.h"

#define CAP_N 512
#define EXT_AST 2
#define EXT_TWCC 3
#define EXT_PD 5
#define FEC_PT 62
#define V_SSRC 0xAAAAu
#define V_RTX 0xBBBBu
#define V_FEC 0xCCCCu

typedef struct {
  uint8_t pkt[CAP_N][1500]; /* what the viewer got, in clear */
  size_t len[CAP_N];
  int n;
} capture_t;

static int capture_send(void *ud, const uint8_t *pkt, size_t len, int is_rtcp) {
  capture_t *k = ud;
  if (is_rtcp || k->n >= CAP_N) return 0;
  memcpy(k->pkt[k->n], pkt, len);
  k->len[k->n] = len;
  k->n++;
  return 0;
}

/* A publisher session with one VP8 camera (pt 96, RTX 97, SSRC 0x2222). */
static hd_session_t *camera(void) {
  hd_session_t *s = calloc(1, sizeof *s);
  assert_non_null(s);
  s->kind = HD_SESSION_PUBLISH;
  hd_sdp_media_negotiated_t *m = &s->neg.media[s->neg.n_media++];
  m->kind = HD_SDP_VIDEO;
  m->active = 1;
  snprintf(m->mid, sizeof m->mid, "0");
  snprintf(m->codec, sizeof m->codec, "VP8");
  m->clock = 90000;
  m->pt = 96;
  m->rtx_pt = 97;
  m->nack = 1;
  m->remote_ssrc = 0x2222;
  assert_int_equal(hd_session_setup_tracks(s, 0), 0);
  return s;
}

/* A viewer of pub's camera that negotiated NACK, RTX, FlexFEC, transport-wide
 * CC, abs-send-time and playout-delay, its link a capture. */
static hd_session_t *fec_viewer(hd_session_t *pub, capture_t *cap) {
  hd_session_t *v = calloc(1, sizeof *v);
  assert_non_null(v);
  v->kind = HD_SESSION_SUBSCRIBE;
  hd_sdp_media_negotiated_t *m = &v->neg.media[v->neg.n_media++];
  m->kind = HD_SDP_VIDEO;
  m->active = 1;
  snprintf(m->mid, sizeof m->mid, "0");
  snprintf(m->codec, sizeof m->codec, "VP8");
  m->clock = 90000;
  m->pt = 96;
  m->rtx_pt = 97;
  m->nack = 1;
  m->twcc_fb = 1;
  m->ext_twcc = EXT_TWCC;
  m->ext_abs_send_time = EXT_AST;
  m->ext_playout_delay = EXT_PD;
  m->fec_pt = FEC_PT;
  m->remote_fec_ssrc = V_FEC;
  assert_int_equal(hd_session_setup_tracks(v, 0), 0);
  assert_int_equal(hd_session_add_out_track(v, 0, V_SSRC, V_RTX), 0);
  hd_out_track_t *t = &v->out[0];
  assert_int_equal(t->fec_pt, FEC_PT);
  assert_true(t->rtx_enabled);
  t->src = pub;
  t->src_in = 0;
  assert_int_equal(hd_peer_set_link(&v->peer, capture_send, cap, 0), 0);
  /* a long round trip and 12.5% loss reported: one repair packet per 4 */
  v->rtt = HD_MS(200);
  v->rtt_samples = 1;
  for (int i = 0; i < 10; i++)
    hd_session_fec_on_report(v, t, 32);
  assert_int_equal(hd_session_fec_group(v, t), 4);
  return v;
}

static void free_session(hd_session_t *s) {
  free(s->peer.link_buf);
  hd_session_free_tracks(s);
  free(s);
}

/* The camera's packet seq at `now`, forwarded to v: a VP8 payload of a
 * length and content of its own. */
static void camera_sends(hd_session_t *pub, hd_session_t *v, uint16_t seq, hd_time_t now,
                         hd_session_counters_t *c) {
  uint8_t payload[400], buf[1500], scratch[1500];
  size_t plen = 100 + (size_t)(seq % 7) * 37;
  payload[0] = 0x10; /* VP8 descriptor: S=1, partition 0 */
  for (size_t i = 1; i < plen; i++)
    payload[i] = (uint8_t)(seq * 31 + i);
  hd_rtp_build_t b = {.pt = 96, .seq = seq, .ts = seq * 3000u, .ssrc = 0x2222};
  int n = hd_rtp_build(&b, payload, plen, buf, sizeof buf);
  assert_true(n > 0);
  hd_rtp_hdr_t out;
  assert_int_equal(hd_session_publisher_rtp(pub, buf, (size_t)n, now, scratch, sizeof scratch, &out, c), 0);
  hd_session_forward(v, pub, 0, &out, now, c);
}

static void flush(hd_session_t *v, hd_time_t *now, hd_session_counters_t *c) {
  for (int i = 0; i < 200 && v->pacer && v->pacer->queued_packets; i++, *now += HD_MS(5))
    hd_session_pace_flush(v, *now, c);
}

static uint32_t ssrc_of(const uint8_t *p) {
  return (uint32_t)p[8] << 24 | (uint32_t)p[9] << 16 | (uint32_t)p[10] << 8 | p[11];
}
static uint16_t seq_of(const uint8_t *p) { return (uint16_t)(p[2] << 8 | p[3]); }

/* Index in cap of the packet on ssrc with seq (any seq: -1) from index from, or -1. */
static int find(const capture_t *cap, int from, uint32_t ssrc, int seq) {
  for (int k = from; k < cap->n; k++)
    if (cap->len[k] >= 12 && ssrc_of(cap->pkt[k]) == ssrc && (seq < 0 || seq_of(cap->pkt[k]) == seq))
      return k;
  return -1;
}

/* The 3-byte value of one-byte extension id in pkt, as a number (-1: none). */
static long ext3(const uint8_t *pkt, size_t len, uint8_t id) {
  hd_rtp_hdr_t h;
  const uint8_t *d;
  size_t dl;
  if (hd_rtp_parse(pkt, len, &h) < 0 || hd_rtp_ext_find(&h, id, &d, &dl) < 0 || dl != 3) return -1;
  return (long)d[0] << 16 | d[1] << 8 | d[2];
}

typedef struct {
  uint8_t pkt[1500];
  size_t len;
  int n;
} rebuilt_t;

static void on_rebuilt(void *ud, const uint8_t *pkt, size_t len) {
  rebuilt_t *r = ud;
  memcpy(r->pkt, pkt, len);
  r->len = len;
  r->n++;
}

/* The viewer's FlexFEC decoder gets packet p as the SDK's receive path gives
 * it (client/pc_fec.c): its transport-wide seq zeroed. */
static int dec_media(hd_flexfec_dec_t *d, const uint8_t *p, size_t len, rebuilt_t *r) {
  uint8_t copy[1500];
  memcpy(copy, p, len);
  hd_flexfec_zero_ext(copy, len, EXT_TWCC);
  return hd_flexfec_dec_media(d, copy, len, on_rebuilt, r);
}

/* A group of 4 loses two packets on the viewer's leg; the viewer NACKs the
 * second, which comes as RTX 100 ms later (another abs-send-time; with
 * `playout`, after the node turned the playout-delay extension on for the
 * track, so a rebuilt copy's header would be 4 bytes longer); the repair
 * packet then rebuilds the first from the group's other packets and the
 * unwrapped RTX copy. The rebuilt packet is the first send byte for byte (its
 * transport-wide seq zero: both ends zero it before the XOR, the pacer stamps
 * it after the repair packet is computed). Sent at once and through the
 * pacer. Before, the RTX copy was rebuilt at repair time: the rebuilt
 * packet's abs-send-time was garbled, and with playout-delay switched on in
 * between its length and every byte after the fixed header. */
static void test_rebuilt_from_rtx_member_is_first_send(void **st) {
  (void)st;
  for (int playout = 0; playout < 2; playout++)
    for (int paced = 0; paced < 2; paced++) {
      hd_session_set_pacer(paced, 0);
      capture_t *cap = calloc(1, sizeof *cap);
      assert_non_null(cap);
      hd_session_t *pub = camera(), *v = fec_viewer(pub, cap);
      hd_out_track_t *t = &v->out[0];
      hd_session_counters_t c = {0};
      hd_time_t now = HD_SEC(100);
      if (paced) v->estimate_bps = 300000; /* ~160 kbit/s of video + repair: some of it waits */
      for (uint16_t q = 1000; q < 1012; q++, now += HD_MS(10)) {
        camera_sends(pub, v, q, now, &c);
        if (v->pacer) hd_session_pace_flush(v, now, &c);
      }
      flush(v, &now, &c);
      if (paced) assert_true(c.paced > 0);
      assert_true(c.fec_sent >= 2);
      /* the first repair packet and the four packets it covers */
      int kf = find(cap, 0, V_FEC, -1);
      assert_true(kf >= 0);
      hd_flexfec_hdr_t fh;
      assert_int_equal(hd_flexfec_parse(cap->pkt[kf], cap->len[kf], &fh), 0);
      assert_int_equal(fh.protected_ssrc, V_SSRC);
      int km[4], nm = 0;
      for (int b = 0; b < fh.mask_bits; b++)
        if (hd_flexfec_covers(&fh, (uint16_t)(fh.sn_base + b))) {
          assert_true(nm < 4);
          km[nm] = find(cap, 0, V_SSRC, (uint16_t)(fh.sn_base + b));
          assert_true(km[nm] >= 0);
          nm++;
        }
      assert_int_equal(nm, 4);
      const uint8_t *lost = cap->pkt[km[1]], *nacked = cap->pkt[km[2]];
      size_t lost_len = cap->len[km[1]], nacked_len = cap->len[km[2]];

      if (playout) { /* the allocator asks this viewer for a playout floor from now on */
        t->playout_on = 1;
        t->playout_min_ms = 120;
      }
      now += HD_MS(100);
      uint16_t ask = seq_of(nacked);
      uint8_t rtcp[64];
      int rn = hd_rtcp_build_nack(0x77, V_SSRC, &ask, 1, rtcp, sizeof rtcp);
      assert_true(rn > 0);
      int before = cap->n;
      hd_session_rtcp(v, pub, rtcp, (size_t)rn, now, &c);
      flush(v, &now, &c);
      int kr = find(cap, before, V_RTX, -1);
      assert_true(kr >= 0);
      assert_int_equal(t->retransmits, 1);
      /* the viewer unwraps it (RFC 4588 §4) */
      uint8_t unwrapped[1500];
      int ul = hd_rtp_rtx_decode(cap->pkt[kr], cap->len[kr], V_SSRC, 96, unwrapped, sizeof unwrapped, NULL);
      assert_true(ul > 0);
      assert_int_equal(seq_of(unwrapped), ask);

      /* the viewer's decoder: the two packets that arrived, the RTX copy, the repair packet */
      hd_flexfec_dec_t *d = malloc(sizeof *d);
      assert_non_null(d);
      hd_flexfec_dec_init(d, V_SSRC);
      rebuilt_t r = {0};
      assert_int_equal(dec_media(d, cap->pkt[km[0]], cap->len[km[0]], &r), 0);
      assert_int_equal(dec_media(d, cap->pkt[km[3]], cap->len[km[3]], &r), 0);
      assert_int_equal(dec_media(d, unwrapped, (size_t)ul, &r), 0);
      assert_int_equal(hd_flexfec_dec_fec(d, cap->pkt[kf], cap->len[kf], on_rebuilt, &r), 1);
      assert_int_equal(r.n, 1);
      uint8_t want[1500];
      memcpy(want, lost, lost_len);
      hd_flexfec_zero_ext(want, lost_len, EXT_TWCC);
      print_message("playout-delay %s, %s: rebuilt %zu bytes (first send %zu), abs-send-time %06lx (%06lx)\n",
                    playout ? "on since" : "unchanged", paced ? "paced" : "sent at once", r.len, lost_len,
                    ext3(r.pkt, r.len, EXT_AST), ext3(lost, lost_len, EXT_AST));
      assert_int_equal(r.len, lost_len);
      assert_memory_equal(r.pkt, want, lost_len);
      /* the RTX copy has a transport-wide seq of its own (the estimator sees
       * its bytes), the first send's abs-send-time */
      hd_rtp_hdr_t h1, h2;
      const uint8_t *d1, *d2;
      size_t l1, l2;
      assert_int_equal(hd_rtp_parse(nacked, nacked_len, &h1), 0);
      assert_int_equal(hd_rtp_parse(cap->pkt[kr], cap->len[kr], &h2), 0);
      assert_int_equal(hd_rtp_ext_find(&h1, EXT_TWCC, &d1, &l1), 0);
      assert_int_equal(hd_rtp_ext_find(&h2, EXT_TWCC, &d2, &l2), 0);
      assert_true(memcmp(d1, d2, 2) != 0);
      assert_int_equal(ext3(cap->pkt[kr], cap->len[kr], EXT_AST), ext3(nacked, nacked_len, EXT_AST));
      free(d);
      free_session(v);
      free_session(pub);
      free(cap);
    }
  hd_session_set_pacer(1, 0);
}

/* A viewer's track ends while its packets wait in the viewer's pacer, and a
 * new track (a re-subscription: new SSRCs) takes its out-track slot before
 * they leave: what waited for the old track (media, RTX, its FlexFEC repair
 * packets) is dropped, not sent under SSRCs the viewer's current offer no
 * longer has. Before, the pacer knew a packet's track only by slot index and
 * sent them once the slot was active again. */
static void test_pacer_drops_ended_track(void **st) {
  (void)st;
  hd_session_set_pacer(1, 0);
  capture_t *cap = calloc(1, sizeof *cap);
  assert_non_null(cap);
  hd_session_t *pub = camera(), *v = fec_viewer(pub, cap);
  hd_session_counters_t c = {0};
  hd_time_t now = HD_SEC(300);
  v->estimate_bps = 40000; /* far below the video: most of it waits */
  for (uint16_t q = 2000; q < 2024; q++, now += HD_MS(10)) {
    camera_sends(pub, v, q, now, &c);
    hd_session_pace_flush(v, now, &c);
  }
  assert_true(v->pacer && v->pacer->queued_packets > 4);
  assert_true(c.fec_sent > 0);
  /* the subscription ends (rooms.c sub_remove_at) and a new one is answered
   * into the same slot, with SSRCs of its own */
  v->out[0].active = 0;
  v->out[0].src = NULL;
  v->neg.media[0].remote_fec_ssrc = 0xFFFF;
  assert_int_equal(hd_session_add_out_track(v, 0, 0xDDDD, 0xEEEE), 0);
  assert_int_equal(v->out[0].fec_ssrc, 0xFFFF);
  v->out[0].src = pub;
  v->out[0].src_in = 0;
  int before = cap->n;
  v->estimate_bps = 5000000;
  for (int i = 0; i < 200 && v->pacer->queued_packets; i++, now += HD_MS(5))
    hd_session_pace_flush(v, now, &c);
  assert_int_equal(v->pacer->queued_packets, 0);
  int old = 0;
  for (int k = before; k < cap->n; k++) {
    uint32_t s = ssrc_of(cap->pkt[k]);
    old += s == V_SSRC || s == V_RTX || s == V_FEC;
  }
  print_message("after the slot was reused: %d packets sent, %d of them on the ended track's SSRCs\n",
                cap->n - before, old);
  assert_int_equal(old, 0);
  free_session(v);
  free_session(pub);
  free(cap);
}

/* Probe bytes (sfu/probe.h) go as RTX copies of recent packets, and the
 * viewer unwraps and keeps them like any RTX (one may stand in for a lost
 * original in a FlexFEC group): on a FEC track each is the first send's
 * bytes but for its own transport-wide seq, even with playout-delay switched
 * on since. */
static void test_probe_copies_are_first_sends(void **st) {
  (void)st;
  hd_session_set_pacer(0, 0);
  capture_t *cap = calloc(1, sizeof *cap);
  assert_non_null(cap);
  hd_session_t *pub = camera(), *v = fec_viewer(pub, cap);
  hd_session_counters_t c = {0};
  hd_time_t now = HD_SEC(400);
  for (uint16_t q = 3000; q < 3010; q++, now += HD_MS(10))
    camera_sends(pub, v, q, now, &c);
  v->out[0].playout_on = 1;
  v->out[0].playout_min_ms = 200;
  now += HD_MS(300);
  int before = cap->n;
  hd_session_send_probe(v, pub, 3000, now, &c);
  int copies = 0;
  for (int k = before; k < cap->n; k++) {
    if (ssrc_of(cap->pkt[k]) != V_RTX || (cap->pkt[k][0] & 0x20)) continue; /* padding-only probes */
    uint8_t un[1500];
    int ul = hd_rtp_rtx_decode(cap->pkt[k], cap->len[k], V_SSRC, 96, un, sizeof un, NULL);
    assert_true(ul > 0);
    int kf = find(cap, 0, V_SSRC, seq_of(un));
    assert_true(kf >= 0 && kf < before);
    uint8_t want[1500];
    memcpy(want, cap->pkt[kf], cap->len[kf]);
    hd_flexfec_zero_ext(want, cap->len[kf], EXT_TWCC);
    hd_flexfec_zero_ext(un, (size_t)ul, EXT_TWCC);
    assert_int_equal((size_t)ul, cap->len[kf]);
    assert_memory_equal(un, want, cap->len[kf]);
    copies++;
  }
  print_message("%d probe copies, each the first send's bytes\n", copies);
  assert_true(copies >= 5);
  free_session(v);
  free_session(pub);
  free(cap);
  hd_session_set_pacer(1, 0);
}

/* Probe copies while the newest packets still wait in the pacer:
 * the copy of a seq not yet sent on the media SSRC is rebuilt (t->sent has
 * no record of it yet), so the viewer's unwrapped copy differs from the
 * first send FlexFEC protects when it leaves later. */
static void test_probe_skips_copies_of_queued_packets(void **st) {
  (void)st;
  hd_session_set_pacer(1, 0);
  capture_t *cap = calloc(1, sizeof *cap);
  assert_non_null(cap);
  hd_session_t *pub = camera(), *v = fec_viewer(pub, cap);
  hd_session_counters_t c = {0};
  hd_time_t now = HD_SEC(500);
  v->estimate_bps = 40000; /* far below the video: most of it waits */
  for (uint16_t q = 4000; q < 4012; q++, now += HD_MS(10)) {
    camera_sends(pub, v, q, now, &c);
    hd_session_pace_flush(v, now, &c);
  }
  print_message("queued before the probe: %d\n", (int)v->pacer->queued_packets);
  v->out[0].playout_on = 1;
  v->out[0].playout_min_ms = 200;
  now += HD_MS(20);
  int before = cap->n;
  hd_session_send_probe(v, pub, 3000, now, &c);
  v->estimate_bps = 5000000;
  for (int i = 0; i < 400 && v->pacer->queued_packets; i++, now += HD_MS(5))
    hd_session_pace_flush(v, now, &c);
  int copies = 0, bad = 0;
  for (int k = before; k < cap->n; k++) {
    if (ssrc_of(cap->pkt[k]) != V_RTX || (cap->pkt[k][0] & 0x20)) continue;
    uint8_t un[1500];
    int ul = hd_rtp_rtx_decode(cap->pkt[k], cap->len[k], V_SSRC, 96, un, sizeof un, NULL);
    assert_true(ul > 0);
    int kf = find(cap, 0, V_SSRC, seq_of(un));
    if (kf < 0) continue;
    uint8_t want[1500];
    memcpy(want, cap->pkt[kf], cap->len[kf]);
    hd_flexfec_zero_ext(want, cap->len[kf], EXT_TWCC);
    hd_flexfec_zero_ext(un, (size_t)ul, EXT_TWCC);
    copies++;
    if ((size_t)ul != cap->len[kf] || memcmp(un, want, cap->len[kf])) {
      bad++;
      print_message(
          "seq %u: RTX copy %d bytes, first send %zu bytes (copy sent at index %d, first send at %d)\n",
          seq_of(un), ul, cap->len[kf], k, kf);
    }
  }
  print_message("%d probe copies, %d of them not the first send's bytes\n", copies, bad);
  assert_int_equal(bad, 0);
  assert_true(copies > 0); /* the packets already sent were copied: the probe moved past the queued ones */
  free_session(v);
  free_session(pub);
  free(cap);
}

/* A NACK for a seq whose resend-cache slot was taken by a newer seq
 * (512 slots) while the publisher's cache (1024 slots) still holds it: on a
 * FEC track the copy is rebuilt, not the first send's bytes. */
static void test_nack_after_slot_eviction_refused(void **st) {
  (void)st;
  hd_session_set_pacer(0, 0);
  capture_t *cap = calloc(1, sizeof *cap);
  assert_non_null(cap);
  hd_session_t *pub = camera(), *v = fec_viewer(pub, cap);
  hd_out_track_t *t = &v->out[0];
  hd_session_counters_t c = {0};
  hd_time_t now = HD_SEC(600);
  uint16_t first = 65000; /* across the seq wrap too */
  int first_idx = -1;
  for (int i = 0; i < 600; i++, now += HD_MS(1)) {
    camera_sends(pub, v, (uint16_t)(first + i), now, &c);
    if (i == 0) first_idx = cap->n - 1;
    if (cap->n >= CAP_N - 8) cap->n = first_idx + 1; /* keep the first send, recycle the rest */
  }
  const uint8_t *fs = cap->pkt[first_idx];
  size_t fl = cap->len[first_idx];
  uint16_t ask = seq_of(fs);
  t->playout_on = 1;
  t->playout_min_ms = 200;
  now += HD_MS(50);
  uint8_t rtcp[64];
  int rn = hd_rtcp_build_nack(0x77, V_SSRC, &ask, 1, rtcp, sizeof rtcp);
  int before = cap->n;
  hd_session_rtcp(v, pub, rtcp, (size_t)rn, now, &c);
  int kr = find(cap, before, V_RTX, -1);
  print_message("NACK for seq %u (600 packets, 650 ms ago): RTX copy %s\n", ask,
                kr >= 0 ? "sent" : "not sent");
  /* its first send's bytes are gone: refused, and counted */
  assert_true(kr < 0);
  assert_int_equal(c.fec_copy_refused, 1);
  assert_int_equal(t->nacks_unanswered, 1);
  if (kr >= 0) {
    uint8_t un[1500], want[1500];
    int ul = hd_rtp_rtx_decode(cap->pkt[kr], cap->len[kr], V_SSRC, 96, un, sizeof un, NULL);
    memcpy(want, fs, fl);
    hd_flexfec_zero_ext(want, fl, EXT_TWCC);
    hd_flexfec_zero_ext(un, (size_t)ul, EXT_TWCC);
    print_message("unwrapped %d bytes, first send %zu bytes, equal %d\n", ul, fl,
                  (size_t)ul == fl && !memcmp(un, want, fl));
    assert_true((size_t)ul == fl && !memcmp(un, want, fl));
  }
  free_session(v);
  free_session(pub);
  free(cap);
  hd_session_set_pacer(1, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rebuilt_from_rtx_member_is_first_send),
      cmocka_unit_test(test_pacer_drops_ended_track),
      cmocka_unit_test(test_probe_copies_are_first_sends),
      cmocka_unit_test(test_probe_skips_copies_of_queued_packets),
      cmocka_unit_test(test_nack_after_slot_eviction_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
