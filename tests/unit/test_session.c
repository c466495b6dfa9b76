/* Unit tests for a publisher session's track demultiplexing: several tracks of
 * one kind (camera + screen share, same payload type) told apart by SSRC from
 * the SDP, by the mid header extension for unknown SSRCs (RFC 9143 §15), or by
 * a payload type only one track uses; RTX (RFC 4588) mapped to its track. */
#include "hd_test.h"

#include "base/err.h"
#include "media/rtp_payload.h"
#include "overlay/link.h"
#include "proto/rtcp.h"
#include "proto/rtp.h"
#include "proto/srtp.h"
#include "rtc/flexfec.h"
#include "rtc/nack_gen.h"
#include "sfu/fec_in.h"
#include "sfu/layer_report.h"
#include "sfu/node.h"
#include "sfu/session.h"
#include "sfu/session_fec.h"
#include "sfu/session_pace.h"

static hd_session_t *g_s;

static void add_media(hd_session_t *s, int kind, const char *mid, uint8_t pt, uint8_t rtx_pt, uint32_t ssrc) {
  hd_sdp_media_negotiated_t *m = &s->neg.media[s->neg.n_media++];
  m->kind = kind;
  m->active = 1;
  snprintf(m->mid, sizeof m->mid, "%s", mid);
  m->pt = pt;
  m->rtx_pt = rtx_pt;
  snprintf(m->codec, sizeof m->codec, "%s", kind == HD_SDP_AUDIO ? "opus" : "VP8");
  m->clock = kind == HD_SDP_AUDIO ? 48000 : 90000;
  m->nack = kind == HD_SDP_VIDEO;
  m->ext_mid = 1;
  m->remote_ssrc = ssrc;
}

static int setup(void **st) {
  (void)st;
  g_s = calloc(1, sizeof *g_s);
  g_s->kind = HD_SESSION_PUBLISH;
  add_media(g_s, HD_SDP_AUDIO, "0", 111, 0, 0x1111);
  add_media(g_s, HD_SDP_VIDEO, "1", 96, 97, 0x2222); /* camera */
  add_media(g_s, HD_SDP_VIDEO, "2", 96, 97, 0);      /* screen: SSRC not in the SDP */
  return hd_session_setup_tracks(g_s, 0);
}

static int teardown(void **st) {
  (void)st;
  hd_session_free_tracks(g_s);
  free(g_s);
  return 0;
}

static int pkt(uint8_t *out, uint8_t pt, uint32_t ssrc, uint16_t seq, const char *mid) {
  uint8_t payload[20] = {1, 2, 3, 4};
  hd_rtp_ext_t ext = {1, mid ? (uint8_t)strlen(mid) : 0, (const uint8_t *)mid};
  hd_rtp_build_t b = {
      .pt = pt, .seq = seq, .ts = seq * 3000u, .ssrc = ssrc, .exts = &ext, .ext_count = mid ? 1 : 0};
  return hd_rtp_build(&b, payload, sizeof payload, out, 1500);
}

static int feed(uint8_t pt, uint32_t ssrc, uint16_t seq, const char *mid) {
  uint8_t buf[1500], scratch[1500];
  int n = pkt(buf, pt, ssrc, seq, mid);
  hd_rtp_hdr_t out;
  hd_session_counters_t c = {0};
  return hd_session_publisher_rtp(g_s, buf, (size_t)n, 1000, scratch, sizeof scratch, &out, &c);
}

static void test_demux(void **st) {
  (void)st;
  assert_int_equal(g_s->n_in, 3);
  assert_int_equal(hd_session_first_in(g_s, HD_TRACK_VIDEO), 1);
  /* SSRCs from the SDP */
  assert_int_equal(feed(111, 0x1111, 1, NULL), 0);
  assert_int_equal(feed(96, 0x2222, 1, NULL), 1);
  /* the screen's SSRC is unknown and pt 96 is shared: without mid it is ambiguous */
  assert_int_equal(feed(96, 0x3333, 1, NULL), HD_ENOTFOUND);
  /* with the mid extension it is learned, and then recognised without it */
  assert_int_equal(feed(96, 0x3333, 2, "2"), 2);
  assert_int_equal(feed(96, 0x3333, 3, NULL), 2);
  assert_int_equal(g_s->in[2].ssrc, 0x3333);
  /* camera packets still go to the camera */
  assert_int_equal(feed(96, 0x2222, 2, NULL), 1);
}

static void test_rtx_mapped_to_its_track(void **st) {
  (void)st;
  uint8_t orig[1500], rtx[1500], scratch[1500];
  int n = pkt(orig, 96, 0x3333, 7, NULL);
  int r = hd_rtp_rtx_build(orig, (size_t)n, 0x4444, 97, 1, rtx, sizeof rtx);
  assert_true(r > 0);
  hd_rtp_hdr_t oh;
  hd_session_counters_t c = {0};
  /* the RTX packet carries the screen's mid, so its unknown SSRC is learned */
  hd_rtp_hdr_t h;
  assert_int_equal(hd_rtp_parse(rtx, (size_t)r, &h), 0);
  hd_rtp_ext_t ext = {1, 1, (const uint8_t *)"2"};
  hd_rtp_build_t b = {.pt = 97, .seq = 1, .ts = h.ts, .ssrc = 0x4444, .exts = &ext, .ext_count = 1};
  uint8_t rtx2[1500];
  int r2 = hd_rtp_build(&b, h.payload, h.payload_len, rtx2, sizeof rtx2);
  assert_int_equal(hd_session_publisher_rtp(g_s, rtx2, (size_t)r2, 2000, scratch, sizeof scratch, &oh, &c),
                   2);
  /* the restored packet, payload without the OSN */
  assert_int_equal(oh.payload_len, h.payload_len - 2);
  assert_int_equal(oh.seq, 7);       /* the OSN */
  assert_int_equal(oh.ssrc, 0x3333); /* restored to the screen's SSRC */
  assert_int_equal(oh.pt, 96);
  assert_int_equal(g_s->in[2].rtx_ssrc, 0x4444);
}

/* A second answer to a repeated NACK is not forwarded again, and repairs do
 * not count as received in the RR to the publisher (RFC 4588 §8): the
 * publisher's congestion control must see the loss of its own leg. */
static void test_rtx_duplicate_dropped_and_rr_counts_network_loss(void **st) {
  (void)st;
  uint8_t buf[1500], rtx[1500], scratch[1500];
  hd_rtp_hdr_t oh;
  hd_session_counters_t c = {0};
  teardown(NULL); /* a fresh publisher session */
  assert_int_equal(setup(NULL), 0);
  for (uint16_t q = 10; q <= 20; q++) {
    if (q == 15) continue; /* lost on the way */
    int n = pkt(buf, 96, 0x2222, q, NULL);
    assert_int_equal(
        hd_session_publisher_rtp(g_s, buf, (size_t)n, 1000 + q, scratch, sizeof scratch, &oh, &c), 1);
  }
  int n = pkt(buf, 96, 0x2222, 15, NULL);
  int r = hd_rtp_rtx_build(buf, (size_t)n, 0x5555, 97, 1, rtx, sizeof rtx);
  g_s->in[1].rtx_ssrc = 0x5555;
  assert_int_equal(hd_session_publisher_rtp(g_s, rtx, (size_t)r, 2000, scratch, sizeof scratch, &oh, &c), 1);
  assert_int_equal(oh.seq, 15);
  r = hd_rtp_rtx_build(buf, (size_t)n, 0x5555, 97, 2, rtx, sizeof rtx);
  assert_int_equal(hd_session_publisher_rtp(g_s, rtx, (size_t)r, 2100, scratch, sizeof scratch, &oh, &c),
                   HD_EAGAIN);
  assert_int_equal(g_s->in[1].rtx_duplicates, 1);
  hd_rtcp_rb_t rb;
  assert_int_equal(hd_rtp_recv_stats_report(&g_s->in[1].stats, 3000, &rb), 0);
  assert_int_equal(rb.cumulative_lost, 1);
}

/* A publisher's bandwidth probes (the SDK's pc_probe_run, a browser's
 * probes): RTX copies of packets the node already has, and padding-only
 * packets on the RTX stream (RFC 3550 §5.1 P bit). Both are counted for
 * transport-wide feedback and neither is forwarded, taken as a repair (the
 * quality samples' "rtx", repairs received), nor seen as loss or NACKed. */
static void test_probe_packets_counted_for_feedback_only(void **st) {
  (void)st;
  uint8_t buf[1500], rtx[1500], scratch[1500];
  hd_rtp_hdr_t oh;
  hd_session_counters_t c = {0};
  teardown(NULL);
  assert_int_equal(setup(NULL), 0);
  g_s->ext_twcc = 3;
  hd_twcc_recv_init(&g_s->twcc);
  uint16_t tw = 100;
  for (uint16_t q = 10; q <= 14; q++) {
    int n = pkt(buf, 96, 0x2222, q, NULL);
    assert_int_equal(
        hd_session_publisher_rtp(g_s, buf, (size_t)n, 1000 + q, scratch, sizeof scratch, &oh, &c), 1);
  }
  /* an RTX copy of seq 13 with a transport-wide seq of its own */
  int n = pkt(buf, 96, 0x2222, 13, NULL);
  int r = hd_rtp_rtx_build(buf, (size_t)n, 0x5555, 97, 1, rtx, sizeof rtx);
  assert_true(r > 0);
  hd_rtp_hdr_t h;
  assert_int_equal(hd_rtp_parse(rtx, (size_t)r, &h), 0);
  uint8_t twb[2];
  hd_rtp_twcc_seq_write(twb, tw++);
  hd_rtp_ext_t ext = {3, 2, twb};
  hd_rtp_build_t b = {.pt = 97, .seq = 1, .ts = h.ts, .ssrc = 0x5555, .exts = &ext, .ext_count = 1};
  uint8_t probe[1500];
  int pn = hd_rtp_build(&b, h.payload, h.payload_len, probe, sizeof probe);
  g_s->in[1].rtx_ssrc = 0x5555;
  assert_int_equal(hd_session_publisher_rtp(g_s, probe, (size_t)pn, 2000, scratch, sizeof scratch, &oh, &c),
                   HD_EAGAIN);
  /* padding only on the RTX stream */
  hd_rtp_twcc_seq_write(twb, tw++);
  hd_rtp_build_t pb = {.pt = 97, .seq = 2, .ssrc = 0x5555, .exts = &ext, .ext_count = 1, .pad_len = 255};
  pn = hd_rtp_build(&pb, NULL, 0, probe, sizeof probe);
  assert_true(pn > 255);
  assert_int_equal(hd_session_publisher_rtp(g_s, probe, (size_t)pn, 2005, scratch, sizeof scratch, &oh, &c),
                   HD_EAGAIN);
  assert_int_equal(g_s->twcc.n, 2);               /* both in the next feedback */
  assert_int_equal(g_s->in[1].rtx_packets, 0);    /* no repair */
  assert_int_equal(g_s->in[1].rtx_duplicates, 1); /* the copy */
  assert_int_equal(g_s->in[1].repairs, 0);
  assert_int_equal(g_s->in[1].packets, 5);
  hd_rtcp_rb_t rb;
  assert_int_equal(hd_rtp_recv_stats_report(&g_s->in[1].stats, 3000, &rb), 0);
  assert_int_equal(rb.cumulative_lost, 0);
  assert_int_equal(g_s->in[1].nack.requested, 0);
}

/* A subscriber session with one VP8 out track (SSRC 0xAAAA, RTX 0xBBBB). */
static hd_session_t *video_viewer(void) {
  hd_session_t *v = calloc(1, sizeof *v);
  v->kind = HD_SESSION_SUBSCRIBE;
  hd_sdp_media_negotiated_t *m = &v->neg.media[v->neg.n_media++];
  m->kind = HD_SDP_VIDEO;
  m->active = 1;
  snprintf(m->codec, sizeof m->codec, "VP8");
  m->clock = 90000;
  m->pt = 96;
  assert_int_equal(hd_session_setup_tracks(v, 0), 0);
  assert_int_equal(hd_session_add_out_track(v, 0, 0xAAAA, 0xBBBB), 0);
  return v;
}

/* The RTT to a viewer comes from its RR about an SR we sent, whatever clock
 * that SR's NTP time was in (RFC 3550 §6.4.1: A - LSR - DLSR, here with our
 * own send time for LSR). */
static void test_viewer_rtt_from_rr(void **st) {
  (void)st;
  hd_session_t *v = video_viewer();
  hd_out_track_t *t = &v->out[0];
  t->sr_mid32[0] = 0x12345678;
  t->sr_sent_at[0] = HD_SEC(10);
  hd_rtcp_rr_t rr = {.ssrc = 0x77, .rb_count = 1};
  rr.rb[0].ssrc = 0xAAAA;
  rr.rb[0].lsr = 0x12345678;
  rr.rb[0].dlsr = 0x8000; /* 0.5 s held by the viewer */
  uint8_t out[256];
  int n = hd_rtcp_build_rr(&rr, out, sizeof out);
  assert_true(n > 0);
  hd_session_counters_t c = {0};
  hd_session_rtcp(v, NULL, out, (size_t)n, HD_SEC(10) + HD_MS(580), &c);
  assert_int_equal(v->rtt_samples, 1);
  assert_true(v->rtt >= HD_MS(79) && v->rtt <= HD_MS(81));
  /* an RR about an SR we never sent gives nothing */
  rr.rb[0].lsr = 0x1111;
  n = hd_rtcp_build_rr(&rr, out, sizeof out);
  hd_session_rtcp(v, NULL, out, (size_t)n, HD_SEC(11), &c);
  assert_int_equal(v->rtt_samples, 1);
  hd_session_free_tracks(v);
  free(v);
}

/* A viewer of g_s's camera (single layer) for the gating tests. */
static hd_session_t *camera_viewer(void) {
  hd_session_t *v = video_viewer();
  v->out[0].src = g_s;
  v->out[0].src_in = 1;
  return v;
}

static uint16_t g_cam_seq = 1000;

/* The camera sends 100 packets a second (~30 kbit/s here) until `until`. */
static void camera_sends(hd_time_t from, hd_time_t until) {
  uint8_t buf[1500], scratch[1500];
  for (hd_time_t t = from; t < until; t += HD_MS(10)) {
    int n = pkt(buf, 96, 0x2222, g_cam_seq++, "1");
    hd_rtp_hdr_t out;
    hd_session_counters_t c = {0};
    assert_int_equal(hd_session_publisher_rtp(g_s, buf, (size_t)n, t, scratch, sizeof scratch, &out, &c), 1);
  }
}

/* The same on a lossy publisher leg: every `every`-th packet (every >= 2)
 * is lost, asked for, and comes every/2 x 10 ms late (repaired). */
static void camera_sends_lossy(hd_time_t from, hd_time_t until, int every) {
  uint8_t buf[1500], scratch[1500];
  int k = 0;
  uint16_t late = 0;
  int have_late = 0;
  for (hd_time_t t = from; t < until; t += HD_MS(10), k++) {
    hd_rtp_hdr_t out;
    hd_session_counters_t c = {0};
    if (have_late && k % every == every / 2) { /* the repair, every/2 x 10 ms later */
      int n = pkt(buf, 96, 0x2222, late, "1");
      hd_session_publisher_rtp(g_s, buf, (size_t)n, t, scratch, sizeof scratch, &out, &c);
      have_late = 0;
    }
    uint16_t s = g_cam_seq++;
    if (k % every == 0) {
      late = s;
      have_late = 1;
      continue;
    }
    int n = pkt(buf, 96, 0x2222, s, "1");
    hd_session_publisher_rtp(g_s, buf, (size_t)n, t, scratch, sizeof scratch, &out, &c);
    uint16_t asked[64]; /* the node's NACK timer (send_nacks) asks for the gap */
    hd_nack_gen_poll(&g_s->in[1].nack, t, asked, 64);
  }
}

/* Playout delay (issue 11): a viewer that negotiated the extension is asked
 * for both legs' round trips + HD_SESSION_PLAYOUT_SLACK while >= ~1% of its
 * source's packets arrive as repairs; not while the publisher's leg is clean,
 * and never with it turned off (HUDONG_PLAYOUT_DELAY=0). */
static void test_playout_delay_for_lossy_publisher_leg(void **st) {
  (void)st;
  hd_session_t *v = video_viewer();
  hd_out_track_t *t = &v->out[0];
  t->src = g_s;
  t->src_in = 1;
  t->ext_playout_delay = 5; /* as negotiated */
  v->rtt = HD_MS(60);
  hd_session_counters_t c = {0};
  camera_sends(HD_SEC(20), HD_SEC(22));
  hd_session_allocate(v, NULL, HD_SEC(22), &c);
  assert_int_equal(t->playout_min_ms, 0); /* clean: nothing asked */
  assert_int_equal(t->playout_on, 0);
  camera_sends_lossy(HD_SEC(22), HD_SEC(23), 20); /* 5% lost and repaired: Chrome's own buffer copes */
  hd_session_allocate(v, NULL, HD_SEC(23), &c);
  assert_int_equal(t->playout_min_ms, 0);
  for (hd_time_t now = HD_SEC(24); now <= HD_SEC(25); now += HD_SEC(1)) {
    camera_sends_lossy(now - HD_SEC(1), now, 6); /* 17% */
    hd_session_allocate(v, NULL, now, &c);
  }
  hd_time_t want = g_s->in[1].nack.rtt + HD_MS(60) + HD_SESSION_PLAYOUT_SLACK;
  print_message("playout delay asked: %u ms (repaired %u/256, publisher leg rtt %lld ms)\n",
                (unsigned)t->playout_min_ms, (unsigned)t->pd_loss_q8,
                (long long)(g_s->in[1].nack.rtt / 1000));
  assert_int_equal(t->playout_min_ms, (unsigned)(want / 1000) / 10 * 10);
  assert_int_equal(t->playout_on, 1);
  /* the publisher's leg clean again: the floor goes back to 0, the extension stays */
  for (hd_time_t now = HD_SEC(26); now <= HD_SEC(34); now += HD_SEC(1)) {
    camera_sends(now - HD_SEC(1), now);
    hd_session_allocate(v, NULL, now, &c);
  }
  assert_int_equal(t->playout_min_ms, 0);
  assert_int_equal(t->playout_on, 1);
  /* turned off: nothing asked however lossy */
  hd_session_set_playout_delay(0);
  camera_sends_lossy(HD_SEC(34), HD_SEC(36), 10);
  hd_session_allocate(v, NULL, HD_SEC(36), &c);
  assert_int_equal(t->playout_min_ms, 0);
  hd_session_set_playout_delay(1);
  hd_session_free_tracks(v);
  free(v);
}

/* Single-layer video: never paused without an estimate or before the
 * estimate has settled; paused once a settled estimate cannot carry it, and
 * resumed (after the allocator's hold) when it can; a hidden tile (track_settings
 * visible:false) is paused at once, estimate or not. */
static void test_single_layer_video_gated(void **st) {
  (void)st;
  hd_session_t *v = camera_viewer();
  hd_out_track_t *t = &v->out[0];
  hd_session_counters_t c = {0};
  camera_sends(HD_SEC(1), HD_SEC(2));
  hd_session_allocate(v, NULL, HD_SEC(2), &c); /* no estimate: forwarded as it comes */
  assert_int_equal(t->gated, 0);
  v->estimate_bps = 10000; /* 10 kbit/s: too little, but only just measured */
  v->estimate_first_at = HD_SEC(2);
  camera_sends(HD_SEC(2), HD_SEC(3));
  hd_session_allocate(v, NULL, HD_SEC(3), &c);
  assert_int_equal(t->gated, 0);
  camera_sends(HD_SEC(3), HD_MS(5100));
  hd_session_allocate(v, NULL, HD_MS(5100), &c); /* settled: under the allocator, */
  assert_int_equal(t->gated, 1);
  assert_int_equal(t->want_in, 1); /* which pauses only if it lasts (HD_ALLOC_DOWN_HOLD) */
  camera_sends(HD_MS(5100), HD_MS(5100) + HD_ALLOC_DOWN_HOLD);
  hd_session_allocate(v, NULL, HD_MS(5100) + HD_ALLOC_DOWN_HOLD, &c);
  assert_int_equal(t->want_in, -1);
  assert_int_equal(c.layer_pauses, 1);
  v->estimate_bps = 1000000;
  hd_time_t now = HD_MS(5100) + HD_ALLOC_DOWN_HOLD;
  for (; now < HD_SEC(10) && t->want_in < 0; now += HD_MS(100)) {
    camera_sends(now, now + HD_MS(100));
    hd_session_allocate(v, NULL, now + HD_MS(100), &c);
  }
  assert_int_equal(t->want_in, 1);
  assert_true(now - HD_MS(5100) - HD_ALLOC_DOWN_HOLD >= HD_ALLOC_UP_HOLD); /* not at once: hysteresis */
  /* the camera stalls: a gap shorter than HD_SESSION_CUR_LAYER_TIMEOUT keeps
   * the layer (an overloaded encoder skipping frames), a longer one pauses it */
  camera_sends(now, now + HD_MS(300));
  now += HD_MS(300);
  hd_session_allocate(v, NULL, now + HD_MS(1500), &c);
  assert_int_equal(t->want_in, 1);
  hd_session_allocate(v, NULL, now + HD_SEC(3), &c);
  assert_int_equal(t->want_in, -1);
  hd_session_free_tracks(v);
  free(v);

  v = camera_viewer(); /* hidden: paused without any estimate */
  v->out[0].alloc.visible = 0;
  camera_sends(HD_SEC(12), HD_SEC(13));
  uint64_t pauses = c.layer_pauses;
  hd_session_allocate(v, NULL, HD_SEC(13), &c);
  assert_int_equal(v->out[0].gated, 1);
  assert_int_equal(v->out[0].want_in, -1);
  assert_int_equal(c.layer_pauses, pauses); /* hidden is not a pause for bandwidth */
  hd_session_free_tracks(v);
  free(v);
}

/* A publisher of one simulcast video track, layers "h" (~160 kbit/s) and "f"
 * (~800 kbit/s), named by the rid extension (id 2; mid id 1). */
static hd_session_t *simulcast_pub(void) {
  hd_session_t *p = calloc(1, sizeof *p);
  p->kind = HD_SESSION_PUBLISH;
  add_media(p, HD_SDP_VIDEO, "0", 96, 0, 0);
  hd_sdp_media_negotiated_t *m = &p->neg.media[0];
  m->n_rids = 2;
  snprintf(m->rids[0], sizeof m->rids[0], "h");
  snprintf(m->rids[1], sizeof m->rids[1], "f");
  m->ext_rid = 2;
  assert_int_equal(hd_session_setup_tracks(p, 0), 0);
  assert_int_equal(p->n_in, 2);
  return p;
}

static uint16_t g_sc_seq[2] = {100, 5000};

/* Both layers send 100 packets a second until `until`. */
static void simulcast_sends(hd_session_t *p, hd_time_t from, hd_time_t until) {
  uint8_t buf[1500], scratch[1500], payload[1000] = {0};
  for (hd_time_t t = from; t < until; t += HD_MS(10))
    for (int l = 0; l < 2; l++) {
      const char *rid = l ? "f" : "h";
      hd_rtp_ext_t ext[2] = {{1, 1, (const uint8_t *)"0"}, {2, 1, (const uint8_t *)rid}};
      hd_rtp_build_t b = {.pt = 96,
                          .seq = g_sc_seq[l]++,
                          .ts = (uint32_t)(t / 11),
                          .ssrc = l ? 0xF0F0u : 0xE0E0u,
                          .exts = ext,
                          .ext_count = 2};
      int n = hd_rtp_build(&b, payload, l ? 1000 : 200, buf, sizeof buf);
      hd_rtp_hdr_t out;
      hd_session_counters_t c = {0};
      assert_int_equal(hd_session_publisher_rtp(p, buf, (size_t)n, t, scratch, sizeof scratch, &out, &c), l);
    }
}

/* A simulcast track gets the start-up settle a single-layer one gets
 * (HD_SESSION_SINGLE_SETTLE, issue 11): a first estimate far below its lowest
 * layer (Chromium's REMB starts near 80 kbit/s) does not pause it; only when
 * the estimate stays that low past the settle time does the allocator pause it. */
static void test_simulcast_settle(void **st) {
  (void)st;
  hd_session_t *p = simulcast_pub();
  hd_session_t *v = video_viewer();
  hd_out_track_t *t = &v->out[0];
  t->src = p;
  t->src_in = 0;
  hd_session_counters_t c = {0};
  simulcast_sends(p, HD_SEC(1), HD_SEC(2));
  v->estimate_bps = 80000; /* just measured */
  v->estimate_first_at = HD_SEC(2);
  hd_time_t now = HD_SEC(2);
  for (; now < HD_MS(4800); now += HD_MS(100)) {
    simulcast_sends(p, now, now + HD_MS(100));
    hd_session_allocate(v, NULL, now + HD_MS(100), &c);
    assert_int_equal(t->want_in, 0); /* the low layer, not a pause */
  }
  assert_int_equal(c.layer_pauses, 0);
  for (; now < HD_SEC(5) + HD_ALLOC_DOWN_HOLD + HD_MS(500); now += HD_MS(100)) {
    simulcast_sends(p, now, now + HD_MS(100));
    hd_session_allocate(v, NULL, now + HD_MS(100), &c);
  }
  assert_int_equal(t->want_in, -1); /* settled, and still short: paused */
  assert_int_equal(c.layer_pauses, 1);
  hd_session_free_tracks(v);
  free(v);
  hd_session_free_tracks(p);
  free(p);
}

/* ---- VP8 temporal layers through the forwarding path ---- */

typedef struct {
  uint8_t pkt[64][1500]; /* what the viewer got (in clear: the link stand-in) */
  size_t len[64];
  int n;
} capture_t;

static int capture_send(void *ud, const uint8_t *pkt, size_t len, int is_rtcp) {
  capture_t *k = ud;
  if (is_rtcp) return 0;
  int i = k->n % 64;
  memcpy(k->pkt[i], pkt, len);
  k->len[i] = len;
  k->n++;
  return 0;
}

static const int L1T3_TIDS[4] = {0, 2, 1, 2};
static const int L1T3_SYNC[4] = {0, 1, 1, 0};
static int g_l1t3_frame;
static hd_session_counters_t g_fwd_c; /* what forwarding the frames counted */

/* The camera of g_s (in[1]) sends one L1T3 frame (two packets) at `at`:
 * TL0 frames 600-byte payloads, TL1 400, TL2 300; PictureID = frame number. */
static void l1t3_frame(hd_session_t *v, hd_time_t at, int key) {
  int f = g_l1t3_frame++, tid = key ? 0 : L1T3_TIDS[f % 4];
  for (int k = 0; k < 2; k++) {
    uint8_t payload[700] = {0}, buf[1500], scratch[1500];
    hd_vp8_desc_t d;
    memset(&d, 0, sizeof d);
    d.start = (uint8_t)(k == 0);
    d.picture_id = f & 0x7fff;
    d.picture_id_bits = 15;
    d.tl0picidx = (f / 4) & 0xff;
    d.tid = tid;
    d.layer_sync = (uint8_t)(!key && L1T3_SYNC[f % 4]);
    d.keyidx = -1;
    int dl = hd_vp8_desc_write(&d, payload, sizeof payload);
    payload[dl] = key ? 0x00 : 0x01;
    size_t plen = tid == 0 ? 600 : tid == 1 ? 400 : 300;
    hd_rtp_ext_t ext = {1, 1, (const uint8_t *)"1"};
    hd_rtp_build_t b = {.pt = 96,
                        .marker = (uint8_t)(k == 1),
                        .seq = g_cam_seq++,
                        .ts = (uint32_t)(f * 3000),
                        .ssrc = 0x2222,
                        .exts = &ext,
                        .ext_count = 1};
    int n = hd_rtp_build(&b, payload, plen, buf, sizeof buf);
    hd_rtp_hdr_t out;
    hd_session_counters_t c = {0};
    assert_int_equal(hd_session_publisher_rtp(g_s, buf, (size_t)n, at, scratch, sizeof scratch, &out, &c), 1);
    if (v) hd_session_forward(v, g_s, 1, &out, at, &g_fwd_c);
  }
}

/* A viewer of a single-layer VP8 camera with three temporal layers (L1T3)
 * whose downlink fits TL0+TL1 only gets 15 of the 30 fps, with no keyframe
 * asked of the publisher; its sequence numbers and PictureIDs have no gaps;
 * a NACK of one of its seqs is answered with the right source packet; and
 * when the estimate allows, all three layers come back at a layer-sync frame
 * (issue 11 items 1 and 3, sfu/temporal.h). */
static void test_vp8_temporal_layers(void **st) {
  (void)st;
  hd_session_set_pacer(0, 0);
  capture_t *cap = calloc(1, sizeof *cap);
  hd_session_t *v = camera_viewer();
  hd_out_track_t *t = &v->out[0];
  t->nack = 1;
  assert_int_equal(hd_peer_set_link(&v->peer, capture_send, cap, 0), 0);
  hd_session_counters_t c = {0};
  hd_time_t now = HD_SEC(40);
  uint64_t plis = g_s->in[1].plis_sent;
  l1t3_frame(v, now, 1);
  v->estimate_bps = 150000; /* L1T3 here: TL0 ~76, +TL1 ~128, all ~207 kbit/s */
  v->estimate_first_at = now - HD_SEC(10);
  int frames_out = 0, frames_from = -1;
  uint16_t last_seq = 0;
  int last_pid = -1, have = 0;
  for (int i = 1; i < 30 * 6; i++) {
    now += HD_MS(33);
    int before = cap->n;
    l1t3_frame(v, now, 0);
    if (i % 3 == 0) hd_session_allocate(v, NULL, now, &c);
    for (int k = before; k < cap->n; k++) {
      hd_rtp_hdr_t h;
      assert_int_equal(hd_rtp_parse(cap->pkt[k % 64], cap->len[k % 64], &h), 0);
      if (have) assert_int_equal(h.seq, (uint16_t)(last_seq + 1)); /* no seq gap, ever */
      last_seq = h.seq;
      hd_vp8_desc_t d;
      assert_int_equal(hd_vp8_depay_parse(h.payload, h.payload_len, &d), 0);
      if (d.frame_start) {
        if (last_pid >= 0) assert_int_equal(d.picture_id, (last_pid + 1) & 0x7fff); /* nor PictureID gap */
        last_pid = d.picture_id;
        if (frames_from >= 0) frames_out++;
      }
      have = 1;
    }
    if (i == 30 * 3) frames_from = i; /* the last 3 s: settled at TL0+TL1 */
  }
  assert_int_equal(t->want_tid, 1);
  assert_int_equal(t->want_in, 1);
  assert_true(frames_out >= 43 && frames_out <= 47); /* 15 fps x 3 s */
  assert_true(t->tl && t->tl->dropped > 0);
  /* counted, and exported in /metrics (hudong_temporal_dropped_total) */
  assert_true(g_fwd_c.temporal_dropped > 0);
  hd_node_metrics_t *mm = calloc(1, sizeof *mm);
  char *text = malloc(65536), line[96];
  assert_true(mm && text);
  mm->stats.media = g_fwd_c;
  assert_true(hd_node_metrics_format(mm, text, 65536) > 0);
  snprintf(line, sizeof line, "\nhudong_temporal_dropped_total %llu\n",
           (unsigned long long)g_fwd_c.temporal_dropped);
  assert_non_null(strstr(text, line));
  assert_non_null(strstr(text, "# TYPE hudong_temporal_dropped_total counter\n"));
  free(mm);
  free(text);
  assert_int_equal(g_s->in[1].plis_sent, plis); /* no keyframe for it */
  assert_true(g_s->in[1].max_tid == 2 && g_s->in[1].tid_bps[2] > 0);

  /* the viewer lost the newest packet: its NACK gets that packet again */
  hd_rtp_hdr_t lost;
  int li = (cap->n - 1) % 64;
  uint8_t lost_pkt[1500];
  size_t lost_len = cap->len[li];
  memcpy(lost_pkt, cap->pkt[li], lost_len);
  assert_int_equal(hd_rtp_parse(lost_pkt, lost_len, &lost), 0);
  uint8_t rtcp[64];
  int rn = hd_rtcp_build_nack(0x77, 0xAAAA, &lost.seq, 1, rtcp, sizeof rtcp);
  int before = cap->n;
  hd_session_rtcp(v, NULL, rtcp, (size_t)rn, now + HD_MS(20), &c);
  assert_int_equal(cap->n, before + 1);
  hd_rtp_hdr_t again;
  assert_int_equal(hd_rtp_parse(cap->pkt[before % 64], cap->len[before % 64], &again), 0);
  assert_int_equal(again.seq, lost.seq);
  assert_int_equal(again.payload_len, lost.payload_len);
  assert_memory_equal(again.payload, lost.payload, lost.payload_len); /* same descriptor, same PictureID */

  /* room for all: back to 30 fps at a layer-sync frame, still no keyframe */
  v->estimate_bps = 400000;
  frames_out = 0;
  for (int i = 0; i < 30 * 4; i++) {
    now += HD_MS(33);
    int b2 = cap->n;
    l1t3_frame(v, now, 0);
    if (i % 3 == 0) hd_session_allocate(v, NULL, now, &c);
    for (int k = b2; k < cap->n; k++) {
      hd_rtp_hdr_t h;
      assert_int_equal(hd_rtp_parse(cap->pkt[k % 64], cap->len[k % 64], &h), 0);
      assert_int_equal(h.seq, (uint16_t)(last_seq + 1));
      last_seq = h.seq;
      hd_vp8_desc_t d;
      assert_int_equal(hd_vp8_depay_parse(h.payload, h.payload_len, &d), 0);
      if (d.frame_start) {
        assert_int_equal(d.picture_id, (last_pid + 1) & 0x7fff);
        last_pid = d.picture_id;
        if (i >= 30 * 3) frames_out++;
      }
    }
  }
  assert_int_equal(t->want_tid, HD_TL_ALL);
  assert_int_equal(frames_out, 30);
  assert_int_equal(g_s->in[1].plis_sent, plis);
  free(v->peer.link_buf);
  hd_session_free_tracks(v);
  free(v);
  free(cap);
  hd_session_set_pacer(1, 0);
}

/* ---- a subscriber capped to a lower temporal layer ---- */

static uint16_t g_tl_seq[2] = {300, 7000};

/* simulcast_pub()'s two layers send VP8 L1T3 at 30 fps from `from` to
 * `until`: "h" one packet a frame (TL0 150 bytes of payload, TL1 100, TL2
 * 75), "f" two (600, 400, 300): ~37 and ~260 kbit/s with headers, TL0 ~37% of each. With
 * f_rate_only, "f" sends nothing and is kept live with its rate alone, as
 * room_remote.c keeps a layer of a publisher on another node that does not
 * cross the overlay link (its LAYERS report: rate and size, no TIDs). */
static int g_h_flat; /* "h"'s frames all one size (150 bytes): its TL0 a quarter of its rate */
static int g_l1t1;   /* the encoder has gone to one temporal layer: every frame TL0 */

static void l1t3_simulcast_sends(hd_session_t *p, hd_time_t from, hd_time_t until, int f_rate_only,
                                 hd_session_t *h_too) {
  static int frame;
  for (hd_time_t t = from; t < until; t += HD_MS(33)) {
    int f = frame++, tid = g_l1t1 ? 0 : L1T3_TIDS[f % 4];
    for (int l = 0; l < 2; l++) {
      if (l == 1 && f_rate_only) {
        p->in[1].last_packet_at = t;
        p->in[1].bps = 200000;
        continue;
      }
      for (int k = 0; k < (l ? 2 : 1); k++) {
        uint8_t payload[700] = {0}, buf[1500], scratch[1500];
        hd_vp8_desc_t d;
        memset(&d, 0, sizeof d);
        d.start = (uint8_t)(k == 0);
        d.picture_id = f & 0x7fff;
        d.picture_id_bits = 15;
        d.tl0picidx = (f / 4) & 0xff;
        d.tid = tid;
        d.layer_sync = (uint8_t)L1T3_SYNC[f % 4];
        d.keyidx = -1;
        int dl = hd_vp8_desc_write(&d, payload, sizeof payload);
        payload[dl] = 0x01;
        size_t plen = g_h_flat && !l ? 150 : (size_t)(tid == 0 ? 600 : tid == 1 ? 400 : 300) / (l ? 1 : 4);
        const char *rid = l ? "f" : "h";
        hd_rtp_ext_t ext[2] = {{1, 1, (const uint8_t *)"0"}, {2, 1, (const uint8_t *)rid}};
        hd_rtp_build_t b = {.pt = 96,
                            .marker = (uint8_t)(k == (l ? 1 : 0)),
                            .seq = g_tl_seq[l]++,
                            .ts = (uint32_t)(f * 3000),
                            .ssrc = l ? 0xF1F1u : 0xE1E1u,
                            .exts = ext,
                            .ext_count = 2};
        int n = hd_rtp_build(&b, payload, plen, buf, sizeof buf);
        uint8_t copy[1500];
        memcpy(copy, buf, (size_t)n);
        hd_rtp_hdr_t out;
        hd_session_counters_t c = {0};
        assert_int_equal(hd_session_publisher_rtp(p, buf, (size_t)n, t, scratch, sizeof scratch, &out, &c),
                         l);
        if (!l && h_too) /* the same packet at another node (h crosses the link) */
          assert_int_equal(
              hd_session_publisher_rtp(h_too, copy, (size_t)n, t, scratch, sizeof scratch, &out, &c), 0);
      }
    }
  }
}

/* The layer a viewer of simulcast_pub() capped to `lim_tid` TIDs
 * (track_settings max_temporal_layer + 1; 0 = no cap) is given at an
 * estimate of 150 kbit/s; *f_cost: what the allocator budgets "f" at. */
static int capped_viewer_layer(int lim_tid, int f_rate_only, uint32_t *f_cost) {
  hd_session_t *p = simulcast_pub();
  hd_session_t *v = video_viewer();
  hd_out_track_t *t = &v->out[0];
  t->src = p;
  t->src_in = 0;
  t->lim_tid = lim_tid;
  hd_session_counters_t c = {0};
  hd_time_t now = HD_SEC(1);
  l1t3_simulcast_sends(p, now, now + HD_SEC(3), f_rate_only, NULL);
  now += HD_SEC(3);
  v->estimate_bps = 150000;
  v->estimate_first_at = now - HD_SEC(10);
  for (hd_time_t end = now + HD_SEC(4); now < end; now += HD_MS(100)) {
    l1t3_simulcast_sends(p, now, now + HD_MS(100), f_rate_only, NULL);
    hd_session_allocate(v, NULL, now + HD_MS(100), &c);
  }
  assert_true(p->in[0].max_tid == 2 && p->in[0].tid_bps[0] > 0);
  *f_cost = t->alloc.bps[t->alloc.n_layers - 1];
  int want = t->want_in;
  print_message("temporal cap %d%s: layer %d (h %u bps, f %u bps budgeted of %u)\n", lim_tid,
                f_rate_only ? ", f known by its rate only" : "", want, p->in[0].bps, *f_cost, p->in[1].bps);
  hd_session_free_tracks(v);
  free(v);
  hd_session_free_tracks(p);
  free(p);
  return want;
}

/* A subscriber capped to TL0 (track_settings max_temporal_layer 0) gets only
 * "f"'s TL0 frames, ~96 of its ~260 kbit/s: the allocator budgets "f" at that
 * (from the per-TID rates measured on the publisher's stream), so at 150
 * kbit/s it gets "f" at 7.5 fps rather than "h". It budgeted the whole
 * layer before, and kept it on "h". A layer known by its rate only (a
 * remote publisher's layer that does not cross the overlay link) is split
 * as the track's other layer is. Without the cap "f" does not fit. */
static void test_temporal_cap_budget(void **st) {
  (void)st;
  uint32_t cost;
  assert_int_equal(capped_viewer_layer(0, 0, &cost), 0); /* no cap: f does not fit, h */
  assert_true(cost > 150000);
  assert_int_equal(capped_viewer_layer(1, 0, &cost), 1); /* TL0 only: f fits */
  assert_true(cost > 70000 && cost < 120000);
  assert_int_equal(capped_viewer_layer(1, 1, &cost), 1); /* f's TIDs inferred from h's */
  assert_true(cost > 60000 && cost < 90000);
  assert_int_equal(capped_viewer_layer(2, 0, &cost), 0); /* TL0+TL1: ~160 kbit/s, does not fit */
  assert_true(cost > 130000 && cost < 190000);
}

/* Node A's LAYERS report of its publisher pa's "f" to node B at link
 * version `ver`, through the link's encoder and parser, applied to B's
 * stand-in pb as room_remote.c applies it. */
static void report_f(const hd_session_t *pa, hd_session_t *pb, int ver, hd_time_t now) {
  hd_link_layers_t m = {.room = 1, .n = 1}, got;
  m.l[0].pub = 7;
  m.l[0].in_idx = 1;
  hd_layer_report_of(&pa->in[1], &m.l[0]);
  uint8_t b[1500];
  int n = hd_link_layers_write(&m, ver, b, sizeof b);
  assert_true(n > 0);
  assert_int_equal(hd_link_layers_parse(b, (size_t)n, &got), 0);
  assert_int_equal(got.ver, ver >= 3 ? 3 : 2);
  hd_layer_report_apply(&pb->in[1], &got.l[0], got.ver, now);
}

/* A viewer capped to TL0 (track_settings max_temporal_layer 0) on node B of
 * a publisher on node A whose "f" does not cross the link (only "h" does,
 * for another viewer of B): B knows "f" by A's LAYERS reports alone. From a
 * node of link version 3 they carry f's TID shares, and B budgets f as A
 * does for the same viewer (its TL0, ~37% of its rate); before (and still
 * from a node of version 2) B took h's shares (a quarter here: h's frames
 * are all one size), budgeted f's TL0 at ~2/3 of what it costs, and at 92
 * kbit/s gave the viewer f, which does not fit, where A gives h. */
static void test_remote_temporal_cap_budget(void **st) {
  (void)st;
  g_h_flat = 1;
  uint32_t cost[3];
  int layer[3];
  /* k = 0: the viewer on node A; 1: on B, A of link version 3; 2: on B, A of version 2 */
  for (int k = 0; k < 3; k++) {
    hd_session_t *pa = simulcast_pub(), *pb = simulcast_pub(), *v = video_viewer();
    hd_out_track_t *t = &v->out[0];
    t->src = k ? pb : pa;
    t->src_in = 0;
    t->lim_tid = 1;
    hd_session_counters_t c = {0};
    hd_time_t now = HD_SEC(1);
    for (int step = 0; step < 70; step++, now += HD_MS(100)) {
      l1t3_simulcast_sends(pa, now, now + HD_MS(100), 0, pb);
      if (k) report_f(pa, pb, k == 1 ? HD_LINK_VERSION : 2, now + HD_MS(100)); /* a node: every 250 ms */
      if (step == 30) {
        v->estimate_bps = 92000;
        v->estimate_first_at = now - HD_SEC(10);
      }
      if (step >= 30) hd_session_allocate(v, NULL, now + HD_MS(100), &c);
    }
    assert_true(pa->in[1].max_tid == 2 && pb->in[0].max_tid == 2);
    cost[k] = t->alloc.bps[t->alloc.n_layers - 1];
    layer[k] = t->want_in;
    print_message("TL0-capped viewer %s: f (%u bps at A) budgeted at %u bps, layer %d\n",
                  k == 0   ? "on A"
                  : k == 1 ? "on B (A: link 3)"
                           : "on B (A: link 2)",
                  pa->in[1].bps, cost[k], layer[k]);
    hd_session_free_tracks(v);
    free(v);
    hd_session_free_tracks(pb);
    free(pb);
    hd_session_free_tracks(pa);
    free(pa);
  }
  g_h_flat = 0;
  assert_int_equal(layer[0], 0); /* f's TL0 does not fit 92 kbit/s: h */
  assert_true(cost[1] > cost[0] * 95 / 100 && cost[1] < cost[0] * 105 / 100);
  assert_int_equal(layer[1], 0);
  assert_true(cost[2] < cost[0] * 80 / 100); /* h's shares: the fallback, as before */
  assert_int_equal(layer[2], 1);
}

/* The publisher on node A goes from three temporal layers to one (a
 * version-3 LAYERS report of "f" then has no TID shares, n_tids 0): node B
 * drops what the earlier reports said of f's TIDs, and budgets a TL0-capped
 * viewer at f's whole rate (it is all TL0 now). Before, B kept f's old
 * shares (nothing else clears them on a layer that does not cross the
 * link) and budgeted f at ~37% of its rate: the viewer over-sent. */
static void test_remote_temporal_layers_gone(void **st) {
  (void)st;
  hd_session_t *pa = simulcast_pub(), *pb = simulcast_pub(), *v = video_viewer();
  hd_out_track_t *t = &v->out[0];
  t->src = pb;
  t->src_in = 0;
  t->lim_tid = 1;
  hd_session_counters_t c = {0};
  hd_time_t now = HD_SEC(1);
  v->estimate_bps = 2000000;
  v->estimate_first_at = now - HD_SEC(10);
  for (int step = 0; step < 80; step++, now += HD_MS(100)) {
    g_l1t1 = step >= 30;
    l1t3_simulcast_sends(pa, now, now + HD_MS(100), 0, pb);
    report_f(pa, pb, HD_LINK_VERSION, now + HD_MS(100));
    hd_session_allocate(v, NULL, now + HD_MS(100), &c);
    if (step == 29) { /* three TIDs: B has f's shares, and budgets its TL0 */
      assert_int_equal(pb->in[1].max_tid, 2);
      assert_true(t->alloc.bps[t->alloc.n_layers - 1] < pb->in[1].bps * 60 / 100);
    }
  }
  g_l1t1 = 0;
  uint32_t cost = t->alloc.bps[t->alloc.n_layers - 1];
  print_message(
      "after A's encoder went to one TID: B's f max_tid %d (A's %d), TL0-capped viewer budgets f at %u "
      "of %u bps\n",
      pb->in[1].max_tid, pa->in[1].max_tid, cost, pb->in[1].bps);
  assert_int_equal(pa->in[1].max_tid, 0);
  assert_int_equal(pb->in[1].max_tid, -1);
  for (int k = 0; k <= HD_TL_ALL; k++)
    assert_int_equal(pb->in[1].tid_bps[k], 0);
  assert_true(cost >= pb->in[1].bps);
  hd_session_free_tracks(v);
  free(v);
  hd_session_free_tracks(pb);
  free(pb);
  hd_session_free_tracks(pa);
  free(pa);
}

/* A viewer of g_s's track in_idx (kind HD_SDP_AUDIO: Opus from the mic;
 * HD_SDP_VIDEO: VP8 from the camera) that negotiated NACK but no RTX, with
 * the header extensions the node stamps per send (transport-wide seq and
 * abs-send-time): its repairs go on the media SSRC 0xAAAA. */
static hd_session_t *no_rtx_viewer(int kind, capture_t *cap) {
  hd_session_t *v = calloc(1, sizeof *v);
  v->kind = HD_SESSION_SUBSCRIBE;
  hd_sdp_media_negotiated_t *m = &v->neg.media[v->neg.n_media++];
  m->kind = kind;
  m->active = 1;
  snprintf(m->codec, sizeof m->codec, "%s", kind == HD_SDP_AUDIO ? "opus" : "VP8");
  m->clock = kind == HD_SDP_AUDIO ? 48000 : 90000;
  m->pt = kind == HD_SDP_AUDIO ? 111 : 96;
  m->nack = 1;
  m->twcc_fb = 1;
  m->ext_twcc = 3;
  m->ext_abs_send_time = 2;
  assert_int_equal(hd_session_setup_tracks(v, 0), 0);
  assert_int_equal(hd_session_add_out_track(v, 0, 0xAAAA, 0), 0);
  v->out[0].src = g_s;
  v->out[0].src_in = kind == HD_SDP_AUDIO ? 0 : 1;
  assert_int_equal(hd_peer_set_link(&v->peer, capture_send, cap, 0), 0);
  return v;
}

static void free_viewer(hd_session_t *v) {
  free(v->peer.link_buf);
  hd_session_free_tracks(v);
  free(v);
}

/* The publisher's track in_idx sends seq `seq` at `now`, forwarded to v. */
static void send_one(hd_session_t *v, int in_idx, uint16_t seq, hd_time_t now, hd_session_counters_t *c) {
  uint8_t buf[1500], scratch[1500];
  int n = in_idx == 0 ? pkt(buf, 111, 0x1111, seq, "0") : pkt(buf, 96, 0x2222, seq, "1");
  hd_rtp_hdr_t out;
  assert_int_equal(hd_session_publisher_rtp(g_s, buf, (size_t)n, now, scratch, sizeof scratch, &out, c),
                   in_idx);
  hd_session_forward(v, g_s, in_idx, &out, now, c);
}

/* The captured packet with seq on SSRC 0xAAAA sent after capture index from, or -1. */
static int captured(const capture_t *cap, int from, uint16_t seq) {
  for (int k = from; k < cap->n; k++) {
    hd_rtp_hdr_t h;
    if (hd_rtp_parse(cap->pkt[k % 64], cap->len[k % 64], &h) == 0 && h.ssrc == 0xAAAA && h.seq == seq)
      return k;
  }
  return -1;
}

/* a and b sealed by one AES-GCM SRTP session (the viewer's): the same bytes? */
static int sealed_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
  static const uint8_t key[28] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14,
                                  15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28};
  hd_srtp_t *srtp;
  assert_int_equal(hd_srtp_new(&srtp, HD_SRTP_AEAD_AES_128_GCM, key, key, sizeof key), 0);
  uint8_t x[1600], y[1600];
  memcpy(x, a, alen);
  memcpy(y, b, blen);
  int nx = hd_srtp_protect(srtp, x, alen, sizeof x), ny = hd_srtp_protect(srtp, y, blen, sizeof y);
  hd_srtp_free(srtp);
  assert_true(nx > 0 && ny > 0);
  return nx == ny && memcmp(x, y, (size_t)nx) == 0;
}

/* Security (RFC 7714 §8.3, RFC 3711 §9.1): a repair on the media SSRC (a
 * viewer without RTX) has the first send's seq, so SRTP seals it under the
 * same index (same AES-GCM IV); it must be the first send byte for byte,
 * although the node stamps a new transport-wide seq and abs-send-time on
 * everything else it sends, sent at once or after waiting in the pacer. */
static void test_resend_same_index_is_byte_identical(void **st) {
  (void)st;
  for (int paced = 0; paced < 2; paced++) {
    hd_session_set_pacer(1, 0);
    capture_t *cap = calloc(1, sizeof *cap);
    hd_session_t *v = no_rtx_viewer(HD_SDP_VIDEO, cap);
    hd_session_counters_t c = {0};
    hd_time_t now = HD_SEC(200 + 10 * paced);
    if (paced) v->estimate_bps = 20000; /* ~46 kbit/s of video: it waits in the pacer */
    uint16_t first = g_cam_seq;
    for (int i = 0; i < 30; i++, now += HD_MS(10)) {
      send_one(v, 1, g_cam_seq++, now, &c);
      if (v->pacer) hd_session_pace_flush(v, now, &c);
    }
    for (int i = 0; i < 100 && v->pacer && v->pacer->queued_packets; i++, now += HD_MS(10))
      hd_session_pace_flush(v, now, &c);
    if (paced) assert_true(c.paced > 0);
    uint16_t lost = (uint16_t)(first + 20); /* its out seq: the source's (no switch) */
    int k1 = captured(cap, 0, lost);
    assert_true(k1 >= 0);
    uint8_t firstsend[1500];
    size_t flen = cap->len[k1 % 64];
    memcpy(firstsend, cap->pkt[k1 % 64], flen);
    /* the viewer NACKs it 100 ms later */
    uint8_t rtcp[64];
    int rn = hd_rtcp_build_nack(0x77, 0xAAAA, &lost, 1, rtcp, sizeof rtcp);
    int before = cap->n;
    now += HD_MS(100);
    hd_session_rtcp(v, g_s, rtcp, (size_t)rn, now, &c);
    for (int i = 0; i < 100 && v->pacer && v->pacer->queued_packets; i++, now += HD_MS(10))
      hd_session_pace_flush(v, now, &c);
    int k2 = captured(cap, before, lost);
    assert_true(k2 >= 0);
    assert_int_equal(cap->len[k2 % 64], flen);
    assert_memory_equal(cap->pkt[k2 % 64], firstsend, flen);
    assert_true(sealed_equal(firstsend, flen, cap->pkt[k2 % 64], cap->len[k2 % 64]));
    assert_int_equal(c.resent_exact, 1);
    assert_int_equal(v->out[0].retransmits, 1);
    /* a publisher's packet the node already has (its resend crossed the
     * original) is not forwarded again */
    uint8_t buf[1500], scratch[1500];
    int n = pkt(buf, 96, 0x2222, (uint16_t)(first + 29), "1");
    hd_rtp_hdr_t h;
    assert_int_equal(hd_session_publisher_rtp(g_s, buf, (size_t)n, now, scratch, sizeof scratch, &h, &c),
                     HD_EAGAIN);
    /* the same out seq never goes out again with other bytes: a second
     * forward of that source packet (bypassing the publisher's duplicate
     * check) is refused */
    assert_int_equal(hd_rtp_parse(buf, (size_t)n, &h), 0);
    before = cap->n;
    hd_session_forward(v, g_s, 1, &h, now, &c);
    for (int i = 0; i < 100 && v->pacer && v->pacer->queued_packets; i++, now += HD_MS(10))
      hd_session_pace_flush(v, now, &c);
    assert_int_equal(captured(cap, before, (uint16_t)(first + 29)), -1);
    assert_int_equal(c.same_index_refused, 1);
    free_viewer(v);
    free(cap);
  }
}

/* Audio NACK to viewers (Opus has no RTX): the node answers a viewer's NACK
 * with the first send's exact bytes from its own record, as long as it has
 * them (HD_RESEND_AUDIO_*); a seq it never sent gets nothing. */
static void test_viewer_audio_nack_answered(void **st) {
  (void)st;
  hd_session_set_pacer(0, 0);
  capture_t *cap = calloc(1, sizeof *cap);
  hd_session_t *v = no_rtx_viewer(HD_SDP_AUDIO, cap);
  hd_session_counters_t c = {0};
  hd_time_t now = HD_SEC(300);
  uint16_t seq = 5000;
  for (int i = 0; i < 25; i++, now += HD_MS(20))
    send_one(v, 0, seq++, now, &c);
  uint16_t asked[2] = {5010, 6000}; /* one sent, one never */
  int k1 = captured(cap, 0, 5010);
  assert_true(k1 >= 0);
  uint8_t firstsend[1500];
  size_t flen = cap->len[k1 % 64];
  memcpy(firstsend, cap->pkt[k1 % 64], flen);
  uint8_t rtcp[64];
  int rn = hd_rtcp_build_nack(0x77, 0xAAAA, asked, 2, rtcp, sizeof rtcp);
  int before = cap->n;
  hd_session_rtcp(v, g_s, rtcp, (size_t)rn, now + HD_MS(60), &c);
  assert_int_equal(cap->n, before + 1);
  assert_int_equal(cap->len[before % 64], flen);
  assert_memory_equal(cap->pkt[before % 64], firstsend, flen);
  assert_int_equal(c.resent_exact, 1);
  assert_int_equal(v->out[0].nacks_unanswered, 1);
  free_viewer(v);
  free(cap);
  hd_session_set_pacer(1, 0);
}

/* FlexFEC on the publisher's leg (issue 13): while repair packets come, a
 * hole waits for its group's repair before the node NACKs it; the wait ends
 * HD_NACK_FEC_HOLD after the last repair packet (it used to stay 35 ms for
 * good once one had come); holes a repair packet covered but could not
 * rebuild are due at once. */
static void test_fec_nack_hold(void **st) {
  (void)st;
  hd_session_t *s = calloc(1, sizeof *s);
  s->kind = HD_SESSION_PUBLISH;
  hd_session_t *saved = g_s;
  g_s = s;
  add_media(s, HD_SDP_VIDEO, "0", 96, 97, 0x2222);
  s->neg.media[0].fec_pt = 118;
  s->neg.media[0].remote_fec_ssrc = 0x3333;
  assert_int_equal(hd_session_setup_tracks(s, 0), 0);
  hd_in_track_t *t = &s->in[0];
  assert_true(t->nack_enabled);
  uint8_t pkts[5][1500], buf[1500], scratch[1500];
  size_t lens[5];
  const uint8_t *ptrs[5];
  hd_time_t now = HD_MS(1000);
  hd_rtp_hdr_t out;
  hd_session_counters_t c = {0};
  for (uint16_t q = 0; q < 5; q++) { /* a group of 5, all received, then its repair packet */
    lens[q] = (size_t)pkt(pkts[q], 96, 0x2222, q, NULL);
    ptrs[q] = pkts[q];
    hd_session_publisher_rtp(s, pkts[q], lens[q], now, scratch, sizeof scratch, &out, &c);
  }
  assert_int_equal(hd_nack_gen_first_wait(&t->nack, now), t->nack.reorder_wait);
  int n = hd_flexfec_encode(ptrs, lens, 5, 118, 0, 0, 0x3333, buf, sizeof buf);
  assert_true(n > 0);
  hd_session_publisher_rtp(s, buf, (size_t)n, now, scratch, sizeof scratch, &out, &c);
  assert_int_equal(c.fec_received, 1);
  assert_int_equal(hd_nack_gen_first_wait(&t->nack, now), HD_FEC_IN_NACK_WAIT);

  /* the next group 5..9 loses 7 and 8: the repair cannot rebuild two, so
   * both are due as soon as it has come, not 35 ms later */
  now += HD_MS(10);
  for (uint16_t q = 5; q < 10; q++) {
    lens[q - 5] = (size_t)pkt(pkts[q - 5], 96, 0x2222, q, NULL);
    ptrs[q - 5] = pkts[q - 5];
    if (q != 7 && q != 8)
      hd_session_publisher_rtp(s, pkts[q - 5], lens[q - 5], now, scratch, sizeof scratch, &out, &c);
  }
  uint16_t asked[64];
  assert_int_equal(hd_nack_gen_poll(&t->nack, now + HD_MS(6), asked, 64), 0); /* waiting for the repair */
  n = hd_flexfec_encode(ptrs, lens, 5, 118, 1, 0, 0x3333, buf, sizeof buf);
  hd_session_publisher_rtp(s, buf, (size_t)n, now + HD_MS(6), scratch, sizeof scratch, &out, &c);
  assert_int_equal(hd_nack_gen_poll(&t->nack, now + HD_MS(6), asked, 64), 2);
  assert_int_equal(asked[0], 7);
  assert_int_equal(asked[1], 8);

  /* the publisher stops FEC: after the hold a hole waits only reorder_wait */
  now += HD_NACK_FEC_HOLD + HD_MS(100);
  assert_int_equal(hd_nack_gen_first_wait(&t->nack, now), t->nack.reorder_wait);
  assert_true(t->nack.reorder_wait < HD_FEC_IN_NACK_WAIT);
  g_s = saved;
  hd_session_free_tracks(s);
  free(s);
}

/* A publisher track with FlexFEC whose section a renegotiation leaves
 * inactive (rejected, RFC 3264 §8.2) frees its FEC receiver (~260 KB,
 * sfu/fec_in.h; up to HD_SESSION_MAX_TRACKS a session), and a repair packet
 * that still comes makes no new one. Before, an inactive track kept its
 * receiver for the session's life. */
static void test_inactive_track_frees_fec(void **st) {
  (void)st;
  hd_session_t *s = calloc(1, sizeof *s);
  s->kind = HD_SESSION_PUBLISH;
  add_media(s, HD_SDP_VIDEO, "0", 96, 97, 0x2222);
  s->neg.media[0].fec_pt = 118;
  s->neg.media[0].remote_fec_ssrc = 0x3333;
  assert_int_equal(hd_session_setup_tracks(s, 0), 0);
  hd_in_track_t *t = &s->in[0];
  uint8_t pkts[3][1500], buf[1500], scratch[1500];
  size_t lens[3];
  const uint8_t *ptrs[3];
  hd_rtp_hdr_t out;
  hd_session_counters_t c = {0};
  for (uint16_t q = 0; q < 3; q++) {
    lens[q] = (size_t)pkt(pkts[q], 96, 0x2222, q, NULL);
    ptrs[q] = pkts[q];
    hd_session_publisher_rtp(s, pkts[q], lens[q], HD_SEC(1), scratch, sizeof scratch, &out, &c);
  }
  int n = hd_flexfec_encode(ptrs, lens, 3, 118, 0, 0, 0x3333, buf, sizeof buf);
  assert_true(n > 0);
  hd_session_publisher_rtp(s, buf, (size_t)n, HD_SEC(1), scratch, sizeof scratch, &out, &c);
  assert_int_equal(c.fec_received, 1);
  assert_non_null(t->fec);
  s->neg.media[0].active = 0; /* the re-offer's section rejected */
  hd_session_publisher_renegotiated(s);
  assert_false(t->active);
  assert_null(t->fec);
  n = hd_flexfec_encode(ptrs, lens, 3, 118, 1, 0, 0x3333, buf, sizeof buf);
  hd_session_publisher_rtp(s, buf, (size_t)n, HD_SEC(2), scratch, sizeof scratch, &out, &c);
  assert_null(t->fec);
  assert_int_equal(c.fec_received, 1);
  assert_int_equal(
      hd_session_publisher_recovered(s, buf, sizeof buf, HD_SEC(2), scratch, sizeof scratch, &out, &c), -1);
  hd_session_free_tracks(s);
  free(s);
}

/* FlexFEC to a viewer is inside its estimate (issue 13 item 4, sfu/session_fec.h):
 * with one repair packet per g video packets the allocator gives the layers
 * g/(g+1) of the budget. A camera whose rate the budget just carries keeps
 * flowing without FEC; with the viewer's FEC at g = 2 (25% loss reported,
 * 200 ms RTT) the same estimate leaves it 2/3 of that, short by more than
 * HD_ALLOC_DOWN_SLACK: paused after HD_ALLOC_DOWN_HOLD. */
static void test_viewer_fec_inside_budget(void **st) {
  (void)st;
  for (int fec = 0; fec < 2; fec++) {
    hd_session_t *v = camera_viewer();
    hd_out_track_t *t = &v->out[0];
    hd_session_counters_t c = {0};
    hd_time_t t0 = HD_SEC(100 + 20 * fec);
    if (fec) { /* negotiated, and planned from the viewer's reports and RTT */
      t->fec_pt = 62;
      t->fec_ssrc = 0xCCCC;
      v->rtt = HD_MS(200);
      v->rtt_samples = 1;
      for (int i = 0; i < 8; i++)
        hd_session_fec_on_report(v, t, 64); /* 25% */
      assert_int_equal(hd_session_fec_group(v, t), 2);
      assert_int_equal(hd_session_fec_min_group(v), 2);
    } else {
      assert_int_equal(hd_session_fec_min_group(v), 0);
    }
    camera_sends(t0, t0 + HD_SEC(1));
    hd_session_allocate(v, NULL, t0 + HD_SEC(1), &c);
    uint64_t bps = g_s->in[1].bps ? g_s->in[1].bps : 1;
    /* the usable 90% of the estimate carries the camera with 5% to spare */
    v->estimate_bps = bps * 10 / 9 * 105 / 100;
    v->estimate_first_at = t0 + HD_SEC(1);
    camera_sends(t0 + HD_SEC(1), t0 + HD_MS(4100));
    hd_session_allocate(v, NULL, t0 + HD_MS(4100), &c); /* settled: under the allocator */
    assert_int_equal(t->gated, 1);
    camera_sends(t0 + HD_MS(4100), t0 + HD_MS(4100) + HD_ALLOC_DOWN_HOLD);
    hd_session_allocate(v, NULL, t0 + HD_MS(4100) + HD_ALLOC_DOWN_HOLD, &c);
    print_message("camera %llu bit/s, estimate %llu, FEC group %d: %s\n", (unsigned long long)bps,
                  (unsigned long long)v->estimate_bps, hd_session_fec_min_group(v),
                  t->want_in < 0 ? "paused" : "sent");
    assert_int_equal(t->want_in, fec ? -1 : 1);
    hd_session_free_tracks(v);
    free(v);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_demux),
      cmocka_unit_test(test_rtx_mapped_to_its_track),
      cmocka_unit_test(test_rtx_duplicate_dropped_and_rr_counts_network_loss),
      cmocka_unit_test(test_probe_packets_counted_for_feedback_only),
      cmocka_unit_test(test_viewer_rtt_from_rr),
      cmocka_unit_test(test_single_layer_video_gated),
      cmocka_unit_test(test_simulcast_settle),
      cmocka_unit_test(test_vp8_temporal_layers),
      cmocka_unit_test(test_temporal_cap_budget),
      cmocka_unit_test(test_remote_temporal_cap_budget),
      cmocka_unit_test(test_remote_temporal_layers_gone),
      cmocka_unit_test(test_inactive_track_frees_fec),
      cmocka_unit_test(test_playout_delay_for_lossy_publisher_leg),
      cmocka_unit_test(test_resend_same_index_is_byte_identical),
      cmocka_unit_test(test_viewer_audio_nack_answered),
      cmocka_unit_test(test_fec_nack_hold),
      cmocka_unit_test(test_viewer_fec_inside_budget),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
