/* Unit tests for the forwarding node (src/sfu/node.h) on a virtual clock: the
 * node and our own client endpoints joined by the in-process link model
 * (tests/support/node_world.h). Covers WHIP/WHEP session setup,
 * forwarding with per-viewer rewriting (RFC 3550 §5.1), keyframe requests (PLI,
 * RFC 4585 §6.3.1), NACK answered with RTX (RFC 4588), consent freshness
 * (RFC 7675 §5.1), publisher restarts, garbage input and tenant isolation. */
#include "hd_test.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>

#include "base/err.h"
#include "base/log.h"
#include "proto/stun.h"
#include "sfu/session.h"
#include "sfu/node.h"
#include "support/link.h"
#include "support/node_world.h"
#include "support/rtc_client.h"

/* Checks a viewer's video/audio reception: continuous, in order, its own
 * SSRCs and payload types. Returns the number of video packets. */
static uint64_t check_clean(world_t *w, int i) {
  hd_rtc_client_t *c = w->p[i].c;
  for (int k = 0; k < 2; k++) {
    const hd_rtc_stream_stats_t *s = hd_rtc_client_rx(c, k);
    assert_true(s->packets > 0);
    assert_int_equal(s->max_jump, 1);
    assert_int_equal(s->out_of_order, 0);
    assert_int_equal(s->duplicates, 0);
    assert_int_equal(s->unique, (uint64_t)(s->max_ext - s->first_ext + 1));
    assert_int_equal(s->ssrc, hd_rtc_client_answer_ssrc(c, k));
    assert_int_equal(s->ssrc_changes, 0);
    assert_int_equal(s->pt, hd_rtc_client_pt(c, k));
    assert_int_equal(s->wrong_pt, 0);
  }
  return hd_rtc_client_rx(c, HD_RTC_VIDEO)->packets;
}

/* ---- (a) publish + 2 viewers ---- */

static void test_forward_two_viewers(void **st) {
  (void)st;
  world_t *w = calloc(1, sizeof *w);
  world_init(w);
  assert_int_equal(join(w, 0, HD_SESSION_PUBLISH, "r"), 0);
  run_for(w, HD_SEC(1));
  assert_true(hd_rtc_client_connected(w->p[0].c));
  assert_int_equal(join(w, 1, HD_SESSION_PLAY, "r"), 0);
  /* the second viewer numbers its payload types differently */
  hd_rtc_client_config_t cfg = {.audio_pt = 109, .video_pt = 100, .rtx_pt = 101};
  assert_int_equal(join_ex(w, 2, HD_SESSION_PLAY, "app", "r", cfg), 0);
  assert_int_equal(hd_node_session_count(w->node, HD_SESSION_PLAY), 2);
  assert_int_equal(hd_node_session_count(w->node, HD_SESSION_PUBLISH), 1);
  run_for(w, HD_SEC(5));
  for (int i = 1; i <= 2; i++) {
    assert_true(hd_rtc_client_connected(w->p[i].c));
    uint64_t n = check_clean(w, i);
    assert_true(n >= 4 * 30 * 3); /* ≥ 4 s of 30 fps x 3 packets */
    assert_true(hd_rtc_client_rx(w->p[i].c, HD_RTC_VIDEO)->keyframes >= 1);
    assert_true(hd_rtc_client_rx(w->p[i].c, HD_RTC_AUDIO)->packets >= 4 * 50);
  }
  /* each viewer has its own SSRCs (as in its answer) */
  assert_int_not_equal(hd_rtc_client_answer_ssrc(w->p[1].c, HD_RTC_VIDEO),
                       hd_rtc_client_answer_ssrc(w->p[2].c, HD_RTC_VIDEO));
  assert_int_not_equal(hd_rtc_client_answer_ssrc(w->p[1].c, HD_RTC_VIDEO),
                       hd_rtc_client_send_ssrc(w->p[0].c, HD_RTC_VIDEO));
  assert_int_equal(hd_rtc_client_rx(w->p[2].c, HD_RTC_VIDEO)->pt, 100);
  assert_int_equal(hd_rtc_client_rx(w->p[2].c, HD_RTC_AUDIO)->pt, 109);
  /* the node sent reports: SR to viewers, RR/TWCC to the publisher */
  assert_true(hd_rtc_client_stats(w->p[1].c)->sr_rx > 0);
  assert_true(hd_rtc_client_stats(w->p[0].c)->rr_rx > 0);
  assert_true(hd_rtc_client_stats(w->p[0].c)->twcc_rx > 0);
  hd_node_stats_t *ns = hd_node_stats(w->node);
  assert_int_equal(ns->drop_unknown_source, 0);
  assert_int_equal(ns->drop_srtp_auth, 0);
  assert_int_equal(ns->media.drop_unknown_pt, 0);
  assert_int_equal(w->to_nowhere, 0);
  char metrics[16384];
  assert_true(hd_node_metrics_text(w->node, metrics, sizeof metrics) > 0);
  assert_non_null(strstr(metrics, "hudong_sessions{kind=\"play\"} 2\n"));
  world_free(w);
  free(w);
}

/* ---- (b) a late viewer triggers a PLI within one round trip ---- */

static void test_late_viewer_pli(void **st) {
  (void)st;
  world_t *w = calloc(1, sizeof *w);
  world_init(w);
  assert_int_equal(join(w, 0, HD_SESSION_PUBLISH, "r"), 0);
  assert_int_equal(join(w, 1, HD_SESSION_PLAY, "r"), 0);
  run_for(w, HD_SEC(3));
  const hd_rtc_client_stats_t *ps = hd_rtc_client_stats(w->p[0].c);
  uint64_t plis = ps->pli_rx;
  assert_true(plis >= 1); /* the first viewer got its keyframe that way too */
  assert_int_equal(join(w, 2, HD_SESSION_PLAY, "r"), 0);
  run_for(w, HD_SEC(2));
  const hd_rtc_client_stats_t *vs = hd_rtc_client_stats(w->p[2].c);
  assert_true(vs->connected_at > 0);
  assert_int_equal(ps->pli_rx, plis + 1);
  /* the node is DTLS server: it is connected one delay before the viewer, and its
   * PLI needs one delay to reach the publisher */
  assert_true(ps->last_pli_at >= vs->connected_at - DELAY);
  assert_true(ps->last_pli_at <= vs->connected_at + 2 * DELAY);
  /* and the viewer sees a keyframe one frame interval + one RTT later at most */
  const hd_rtc_stream_stats_t *rx = hd_rtc_client_rx(w->p[2].c, HD_RTC_VIDEO);
  assert_true(rx->keyframes >= 1);
  assert_true(rx->first_keyframe_at - ps->last_pli_at <= HD_MS(34) + 2 * DELAY);
  check_clean(w, 2);

  /* two more viewers connecting 100 ms apart: each gets a keyframe promptly even
   * though the PLI rate limit would have swallowed the second request */
  assert_int_equal(join(w, 3, HD_SESSION_PLAY, "r"), 0);
  run_for(w, HD_MS(100));
  assert_int_equal(join(w, 4, HD_SESSION_PLAY, "r"), 0);
  run_for(w, HD_SEC(2));
  for (int i = 3; i <= 4; i++) {
    const hd_rtc_stream_stats_t *r = hd_rtc_client_rx(w->p[i].c, HD_RTC_VIDEO);
    hd_time_t conn = hd_rtc_client_stats(w->p[i].c)->connected_at;
    assert_true(r->keyframes >= 1);
    assert_true(r->first_keyframe_at - conn <= HD_MS(300) + HD_MS(34) + 4 * DELAY);
  }
  world_free(w);
  free(w);
}

/* ---- (c) 5% loss on a viewer's downlink is repaired with RTX ---- */

static void test_nack_rtx_recovery(void **st) {
  (void)st;
  world_t *w = calloc(1, sizeof *w);
  world_init(w);
  assert_int_equal(join(w, 0, HD_SESSION_PUBLISH, "r"), 0);
  hd_rtc_client_config_t cfg = {.auto_nack = 1, .nack_interval = HD_MS(60)};
  assert_int_equal(join_ex(w, 1, HD_SESSION_PLAY, "app", "r", cfg), 0);
  /* a viewer that did not offer RTX gets plain retransmissions on the media SSRC */
  hd_rtc_client_config_t cfg_plain = {.auto_nack = 1, .nack_interval = HD_MS(60), .no_rtx = 1};
  assert_int_equal(join_ex(w, 2, HD_SESSION_PLAY, "app", "r", cfg_plain), 0);
  run_for(w, HD_SEC(1));
  assert_true(hd_rtc_client_connected(w->p[1].c));
  assert_true(hd_rtc_client_connected(w->p[2].c));
  assert_int_equal(hd_rtc_client_answer_rtx_ssrc(w->p[2].c), 0);
  hd_link_params_t lossy = {.delay = DELAY, .loss = 0.05};
  hd_link_set(&w->p[1].down, &lossy);
  hd_link_set(&w->p[2].down, &lossy);
  run_for(w, HD_SEC(10));
  hd_rtc_client_set_sending(w->p[0].c, 0);
  run_for(w, HD_SEC(1)); /* let the last repairs land */
  const hd_rtc_stream_stats_t *v = hd_rtc_client_rx(w->p[1].c, HD_RTC_VIDEO);
  uint64_t span = (uint64_t)(v->max_ext - v->first_ext + 1);
  assert_true(w->p[1].down.dropped > 50);
  assert_true(span > 900);
  assert_true(v->rtx_packets > 0);
  assert_true(v->rtx_recovered > 0);
  assert_int_equal(v->rtx_bad, 0); /* every OSN named the right original packet */
  assert_int_equal(v->rtx_ssrc, hd_rtc_client_answer_rtx_ssrc(w->p[1].c));
  assert_int_equal(v->ssrc_changes, 0);
  print_message("video: %llu of %llu seqs, %llu rtx, %llu lost on the link\n", (unsigned long long)v->unique,
                (unsigned long long)span, (unsigned long long)v->rtx_packets,
                (unsigned long long)w->p[1].down.dropped);
  assert_true(v->unique * 100 >= span * 99);
  hd_node_stats_t *ns = hd_node_stats(w->node);
  assert_true(ns->media.nack_received > 0);
  assert_true(ns->media.retransmitted > 0);
  assert_true(hd_rtc_client_stats(w->p[1].c)->nack_sent > 0);
  const hd_rtc_stream_stats_t *p2 = hd_rtc_client_rx(w->p[2].c, HD_RTC_VIDEO);
  uint64_t span2 = (uint64_t)(p2->max_ext - p2->first_ext + 1);
  assert_true(w->p[2].down.dropped > 50);
  assert_int_equal(p2->rtx_packets, 0);
  assert_true(p2->out_of_order > 0); /* the repairs, on the media stream itself */
  assert_int_equal(p2->ssrc_changes, 0);
  assert_int_equal(p2->wrong_pt, 0);
  assert_true(p2->unique * 100 >= span2 * 99);
  world_free(w);
  free(w);
}

/* ---- (c2) uplink repair: the node NACKs the publisher, which answers with RTX ---- */
static void test_uplink_nack_repair(void **st) {
  (void)st;
  world_t *w = calloc(1, sizeof *w);
  world_init(w);
  assert_int_equal(join(w, 0, HD_SESSION_PUBLISH, "r"), 0);
  assert_int_equal(join(w, 1, HD_SESSION_PLAY, "r"), 0);
  run_for(w, HD_SEC(1));
  assert_true(hd_rtc_client_connected(w->p[1].c));
  hd_link_params_t lossy = {.delay = DELAY, .loss = 0.05};
  hd_link_set(&w->p[0].up, &lossy); /* publisher -> node loses 5% */
  run_for(w, HD_SEC(10));
  hd_rtc_client_set_sending(w->p[0].c, 0);
  run_for(w, HD_SEC(1));
  const hd_rtc_client_stats_t *ps = hd_rtc_client_stats(w->p[0].c);
  const hd_rtc_stream_stats_t *v = hd_rtc_client_rx(w->p[1].c, HD_RTC_VIDEO);
  uint64_t span = (uint64_t)(v->max_ext - v->first_ext + 1);
  print_message(
      "uplink: %llu lost on the link, %llu seqs NACKed by the node, %llu RTX sent; viewer got %llu of %llu\n",
      (unsigned long long)w->p[0].up.dropped, (unsigned long long)ps->nack_seqs_rx,
      (unsigned long long)ps->rtx_sent, (unsigned long long)v->unique, (unsigned long long)span);
  assert_true(w->p[0].up.dropped > 50);
  assert_true(ps->nack_rx > 0);
  assert_true(ps->rtx_sent > 0);
  assert_true(hd_node_stats(w->node)->media.nack_sent > 0);
  assert_int_equal(v->rtx_bad, 0);
  /* the viewer sees the repaired stream: nearly everything, though some repairs arrive out of order */
  assert_true(v->unique * 100 >= span * 99);
  world_free(w);
  free(w);
}

/* ---- (d) consent freshness ---- */

static void test_consent_expiry(void **st) {
  (void)st;
  world_t *w = calloc(1, sizeof *w);
  world_init(w);
  assert_int_equal(join(w, 0, HD_SESSION_PUBLISH, "r"), 0);
  assert_int_equal(join(w, 1, HD_SESSION_PLAY, "r"), 0);
  run_for(w, HD_SEC(6)); /* at least one consent check after connecting */
  hd_rtc_client_set_consent(w->p[1].c, 0);
  hd_time_t last = hd_rtc_client_stats(w->p[1].c)->last_consent_sent;
  assert_true(last > 0);
  hd_time_t expiry = last + DELAY + HD_ICE_CONSENT_TIMEOUT; /* last check's arrival + 30 s */
  run_until(w, expiry - HD_MS(1));
  assert_non_null(hd_node_session(w->node, w->p[1].id));
  assert_int_equal(hd_node_session_count(w->node, HD_SESSION_PLAY), 1);
  assert_false(hd_rtc_client_closed(w->p[1].c));
  uint64_t got = hd_rtc_client_rx(w->p[1].c, HD_RTC_VIDEO)->packets;
  run_until(w, expiry + HD_MS(1));
  assert_null(hd_node_session(w->node, w->p[1].id));
  assert_int_equal(hd_node_session_count(w->node, HD_SESSION_PLAY), 0);
  assert_int_equal(hd_node_session_count(w->node, HD_SESSION_PUBLISH), 1);
  assert_int_equal(hd_node_room_count(w->node), 1);
  /* RFC 7675 §5.1: without consent nothing more may be sent on the path, not
   * even a close_notify; the viewer just stops hearing from the node */
  run_for(w, DELAY); /* what was in flight lands */
  uint64_t rx_pkts = hd_rtc_client_stats(w->p[1].c)->rx_packets;
  run_for(w, HD_SEC(1));
  assert_false(hd_rtc_client_closed(w->p[1].c));
  assert_int_equal(hd_rtc_client_stats(w->p[1].c)->rx_packets, rx_pkts);
  assert_true(hd_rtc_client_rx(w->p[1].c, HD_RTC_VIDEO)->packets > got);
  assert_int_equal(hd_node_stats(w->node)->sessions_failed, 1);
  /* the publisher goes silent too: the room is freed with its last session */
  hd_rtc_client_set_consent(w->p[0].c, 0);
  run_for(w, HD_SEC(36));
  assert_int_equal(hd_node_session_count(w->node, 0), 0);
  assert_int_equal(hd_node_room_count(w->node), 0);
  assert_int_equal(hd_node_room_has_publisher(w->node, "app", "r"), 0);
  assert_int_equal(hd_node_next_timeout(w->node), HD_TIME_NEVER);
  world_free(w);
  free(w);
}

/* A WHIP publisher that still sends keeps its room against another identity
 * (409) however long it lives; once nothing arrives from it for 5 s, a new
 * publish replaces it, and the viewer carries on with the new publisher
 * (issue 12 item 12: a tab closed without DELETE must not block the room). */
static void test_whip_takeover_of_silent_publisher(void **st) {
  (void)st;
  world_t *w = calloc(1, sizeof *w);
  world_init(w);
  assert_int_equal(join(w, 0, HD_SESSION_PUBLISH, "r"), 0);
  assert_int_equal(join(w, 1, HD_SESSION_PLAY, "r"), 0);
  run_for(w, HD_SEC(8)); /* well past HD_NODE_WHIP_STALE since the session was created */
  char err[512], id[HD_SESSION_ID_LEN + 1];
  static char answer[65536];
  static char offer[16384];
  assert_true(hd_rtc_client_offer(w->p[0].c, offer, sizeof offer) > 0);
  assert_int_equal(hd_node_create_session_as(w->node, HD_SESSION_PUBLISH, "app", "someone-else", "r", offer,
                                             strlen(offer), w->now, answer, sizeof answer, id, err,
                                             sizeof err),
                   HD_ESTATE);
  assert_non_null(strstr(err, "already has a publisher"));
  /* the publisher's uplink goes dead (tab closed: no media, no consent) */
  hd_link_params_t dead = {.delay = DELAY, .loss = 1.0};
  hd_link_set(&w->p[0].up, &dead);
  run_for(w, HD_SEC(4));
  assert_int_equal(hd_node_create_session_as(w->node, HD_SESSION_PUBLISH, "app", "someone-else", "r", offer,
                                             strlen(offer), w->now, answer, sizeof answer, id, err,
                                             sizeof err),
                   HD_ESTATE); /* 4 s of silence: not yet */
  run_for(w, HD_SEC(2));
  assert_int_equal(hd_node_create_session_as(w->node, HD_SESSION_PUBLISH, "app", "someone-else", "r", offer,
                                             strlen(offer), w->now, answer, sizeof answer, id, err,
                                             sizeof err),
                   0);
  assert_null(hd_node_session(w->node, w->p[0].id)); /* the old one is gone */
  assert_non_null(hd_node_session(w->node, id));
  assert_int_equal(hd_node_session_count(w->node, HD_SESSION_PUBLISH), 1);
  assert_non_null(hd_node_session(w->node, w->p[1].id)); /* the viewer stays */
  world_free(w);
  free(w);
}

/* ---- (e) publisher restarts ---- */

static void test_publisher_restart(void **st) {
  (void)st;
  world_t *w = calloc(1, sizeof *w);
  world_init(w);
  assert_int_equal(join(w, 0, HD_SESSION_PUBLISH, "r"), 0);
  assert_int_equal(join(w, 1, HD_SESSION_PLAY, "r"), 0);
  run_for(w, HD_SEC(2));
  uint64_t before = hd_rtc_client_rx(w->p[1].c, HD_RTC_VIDEO)->packets;
  assert_true(before > 100);
  /* encoder restart in the same session: new SSRC, seq and timestamp bases */
  uint32_t old = hd_rtc_client_send_ssrc(w->p[0].c, HD_RTC_VIDEO);
  hd_rtc_client_restart_source(w->p[0].c);
  assert_int_not_equal(old, hd_rtc_client_send_ssrc(w->p[0].c, HD_RTC_VIDEO));
  run_for(w, HD_SEC(2));
  assert_true(hd_rtc_client_rx(w->p[1].c, HD_RTC_VIDEO)->packets > before + 100);
  check_clean(w, 1);
  /* a new publisher session replaces the old one in the room */
  leave(w, 0);
  assert_int_equal(hd_node_room_count(w->node), 1); /* the viewer keeps the room */
  run_for(w, HD_MS(500));
  before = hd_rtc_client_rx(w->p[1].c, HD_RTC_VIDEO)->packets;
  assert_int_equal(join(w, 0, HD_SESSION_PUBLISH, "r"), 0);
  run_for(w, HD_SEC(2));
  assert_true(hd_rtc_client_rx(w->p[1].c, HD_RTC_VIDEO)->packets > before + 100);
  check_clean(w, 1);
  world_free(w);
  free(w);
}

/* ---- (f) garbage is dropped, counted, and harmless ---- */

static void inject(world_t *w, const struct sockaddr_in *from, const uint8_t *buf, size_t len) {
  uint8_t tmp[HD_WIRE_MTU];
  memcpy(tmp, buf, len);
  hd_node_feed(w->node, tmp, len, (const struct sockaddr *)from, sizeof *from, w->now);
  drain(w);
}

static void test_garbage(void **st) {
  (void)st;
  world_t *w = calloc(1, sizeof *w);
  world_init(w);
  w->tap_client = 0;
  assert_int_equal(join(w, 0, HD_SESSION_PUBLISH, "r"), 0);
  assert_int_equal(join(w, 1, HD_SESSION_PLAY, "r"), 0);
  run_for(w, HD_SEC(2));
  hd_node_stats_t *ns = hd_node_stats(w->node);
  hd_node_stats_t s0 = *ns;
  hd_link_t rng;
  hd_link_init(&rng, &(hd_link_params_t){0}, 42);
  struct sockaddr_in stranger;
  mkaddr(&stranger, "192.0.2.7", 4444);
  uint8_t buf[1200];
  /* unknown source: random bytes of every first-byte class, and a STUN check
   * for a ufrag nobody has */
  for (int i = 0; i < 256; i++) {
    size_t len = 1 + hd_link_rand(&rng) % sizeof buf;
    for (size_t j = 0; j < len; j++)
      buf[j] = (uint8_t)hd_link_rand(&rng);
    buf[0] = (uint8_t)i;
    inject(w, &stranger, buf, len);
  }
  static const uint8_t stun_hdr[20] = {0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1,  2,
                                       3, 4, 5, 6, 7,    8,    9,    10,   11, 12};
  inject(w, &stranger, stun_hdr, sizeof stun_hdr);
  assert_int_equal(ns->drop_unknown_source - s0.drop_unknown_source, 257);
  run_for(w, HD_MS(500));

  /* known source (the viewer's address): fake RTP/RTCP, fake STUN, fake DTLS
   * records (incl. a plaintext fatal alert), bytes outside every RFC 7983 range */
  struct sockaddr_in known = w->p[1].addr;
  hd_node_stats_t s1 = *hd_node_stats(w->node);
  for (int i = 0; i < 50; i++) {
    size_t len = 40 + hd_link_rand(&rng) % 400;
    for (size_t j = 0; j < len; j++)
      buf[j] = (uint8_t)hd_link_rand(&rng);
    buf[0] = 0x80;
    buf[1] = (uint8_t)(i & 1 ? 96 : 200); /* RTP and RTCP */
    inject(w, &known, buf, len);
  }
  ns = hd_node_stats(w->node);
  assert_int_equal(ns->drop_srtp_auth + ns->drop_malformed - s1.drop_srtp_auth - s1.drop_malformed, 50);
  s1 = *ns;
  uint8_t stun[20];
  memcpy(stun, stun_hdr, 20);
  inject(w, &known, stun, sizeof stun); /* request without USERNAME/MESSAGE-INTEGRITY */
  buf[0] = 0x40;
  inject(w, &known, buf, 100); /* 64..127: nothing */
  static const uint8_t alert[] = {21, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 9, 0, 2, 2, 40};
  inject(w, &known, alert, sizeof alert);
  for (size_t j = 0; j < 200; j++)
    buf[j] = (uint8_t)hd_link_rand(&rng);
  buf[0] = 23;
  buf[1] = 0xfe;
  buf[2] = 0xfd;
  inject(w, &known, buf, 200); /* application data with a bad MAC */
  ns = hd_node_stats(w->node);
  assert_true(ns->drop_malformed + ns->drop_stun_auth + ns->drop_dtls - s1.drop_malformed -
                  s1.drop_stun_auth - s1.drop_dtls >=
              2);
  /* a well-formed Binding request for the viewer's session (right USERNAME)
   * whose MESSAGE-INTEGRITY uses the wrong password: dropped as stun_auth and
   * not answered (RFC 8445 §7.3), from a stranger and from the viewer's own
   * address alike; the stranger does not become the session's path */
  hd_session_t *vs = hd_node_session(w->node, w->p[1].id);
  assert_non_null(vs);
  char user[80];
  int ul = snprintf(user, sizeof user, "%s:%s", vs->peer.ice.local_ufrag, vs->peer.ice.remote_ufrag);
  static const uint8_t txid[12] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2};
  uint8_t bad_mi[256];
  hd_stun_builder_t b;
  assert_int_equal(hd_stun_build_start(&b, bad_mi, sizeof bad_mi, HD_STUN_BINDING_REQUEST, txid), 0);
  assert_int_equal(hd_stun_add_username(&b, user, (size_t)ul), 0);
  assert_int_equal(hd_stun_add_priority(&b, 0x6e0001ff), 0);
  assert_int_equal(hd_stun_add_ice_controlling(&b, 42), 0);
  int bl = hd_stun_build_finish(&b, (const uint8_t *)"not-the-password", 16, 1);
  assert_true(bl > 0);
  s1 = *hd_node_stats(w->node);
  const struct sockaddr_in *from[2] = {&stranger, &known};
  for (int k = 0; k < 2; k++) {
    uint8_t tmp[256];
    memcpy(tmp, bad_mi, (size_t)bl);
    assert_null(hd_txq_peek(hd_node_txq(w->node)));
    hd_node_feed(w->node, tmp, (size_t)bl, (const struct sockaddr *)from[k], sizeof *from[k], w->now);
    assert_null(hd_txq_peek(hd_node_txq(w->node))); /* no response, no error response */
  }
  ns = hd_node_stats(w->node);
  assert_int_equal(ns->drop_stun_auth - s1.drop_stun_auth, 2);
  assert_int_equal(ns->drop_unknown_source, s1.drop_unknown_source);
  /* an SRTP packet the publisher really sent (and the node got), replayed */
  assert_true(w->tap_len > 0);
  w->tap_client = -1;
  run_for(w, 2 * DELAY);
  uint64_t replay0 = ns->drop_srtp_replay;
  inject(w, &w->p[0].addr, w->tap, w->tap_len);
  assert_int_equal(hd_node_stats(w->node)->drop_srtp_replay, replay0 + 1);

  run_for(w, HD_SEC(2));
  assert_true(hd_rtc_client_connected(w->p[1].c));
  assert_non_null(hd_node_session(w->node, w->p[1].id));
  assert_int_equal(hd_node_session_count(w->node, 0), 2);
  check_clean(w, 1);
  char metrics[16384];
  assert_true(hd_node_metrics_text(w->node, metrics, sizeof metrics) > 0);
  assert_non_null(strstr(metrics, "hudong_packets_dropped_total{reason=\"unknown_source\"} 257\n"));
  world_free(w);
  free(w);
}

/* ---- (f2) issue 12 item 1: spoofed DTLS alerts from a client's address ---- */

static void test_spoofed_dtls_alert(void **st) {
  (void)st;
  world_t *w = calloc(1, sizeof *w);
  world_init(w);
  assert_int_equal(join(w, 0, HD_SESSION_PUBLISH, "r"), 0);
  assert_int_equal(join(w, 1, HD_SESSION_PLAY, "r"), 0);
  run_for(w, HD_SEC(2));
  assert_true(hd_rtc_client_connected(w->p[1].c));
  uint64_t d0 = hd_node_stats(w->node)->drop_dtls;
  /* the reproducer: 8 datagrams of one 15-byte epoch-1 fatal alert record, from
   * the publisher's and the viewer's own addresses; then a plaintext epoch-0 one */
  for (int k = 0; k < 2; k++) {
    for (int i = 0; i < 8; i++) {
      const uint8_t alert[] = {21, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, (uint8_t)(40 + i), 0, 2, 2, 40};
      inject(w, &w->p[k].addr, alert, sizeof alert);
    }
    static const uint8_t plain[] = {21, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 77, 0, 2, 2, 40};
    inject(w, &w->p[k].addr, plain, sizeof plain);
  }
  assert_int_equal(hd_node_stats(w->node)->drop_dtls - d0, 18);
  run_for(w, HD_SEC(2));
  for (int k = 0; k < 2; k++) {
    hd_session_t *s = hd_node_session(w->node, w->p[k].id);
    assert_non_null(s);
    assert_int_equal(s->peer.state, HD_PEER_CONNECTED);
    assert_true(hd_rtc_client_connected(w->p[k].c));
  }
  check_clean(w, 1);
  world_free(w);
  free(w);
}

/* ---- (g) session errors and tenant isolation ---- */

static void test_errors_and_isolation(void **st) {
  (void)st;
  world_t *w = calloc(1, sizeof *w);
  world_init(w);
  assert_int_equal(join(w, 1, HD_SESSION_PLAY, "r"), HD_ENOTFOUND);
  assert_int_equal(hd_node_room_count(w->node), 0);
  assert_int_equal(join(w, 0, HD_SESSION_PUBLISH, "r"), 0);
  assert_int_equal(join(w, 1, HD_SESSION_PUBLISH, "r"), HD_ESTATE);
  assert_int_equal(hd_node_session_count(w->node, 0), 1);
  /* tenant B does not see tenant A's room of the same name */
  hd_rtc_client_config_t none = {0};
  assert_int_equal(join_ex(w, 1, HD_SESSION_PLAY, "B", "r", none), HD_ENOTFOUND);
  assert_int_equal(hd_node_room_has_publisher(w->node, "B", "r"), 0);
  assert_int_equal(hd_node_room_has_publisher(w->node, "app", "r"), 1);
  assert_int_equal(hd_node_delete_session(w->node, HD_SESSION_PUBLISH, "B", "r", w->p[0].id, w->now),
                   HD_ENOTFOUND);
  assert_int_equal(hd_node_delete_session(w->node, HD_SESSION_PLAY, "app", "r", w->p[0].id, w->now),
                   HD_ENOTFOUND);
  assert_int_equal(hd_node_delete_session(w->node, HD_SESSION_PUBLISH, "app", "r2", w->p[0].id, w->now),
                   HD_ENOTFOUND);
  /* B can publish its own "r", and each tenant's viewer gets only its publisher */
  hd_rtc_client_config_t tag_a = {.tag = 1}, tag_b = {.tag = 2};
  hd_rtc_client_free(w->p[0].c);
  w->p[0].c = NULL;
  assert_int_equal(hd_node_delete_session(w->node, HD_SESSION_PUBLISH, "app", "r", w->p[0].id, w->now), 0);
  assert_int_equal(join_ex(w, 0, HD_SESSION_PUBLISH, "A", "r", tag_a), 0);
  assert_int_equal(join_ex(w, 1, HD_SESSION_PUBLISH, "B", "r", tag_b), 0);
  assert_int_equal(hd_node_room_count(w->node), 2);
  assert_int_equal(join_ex(w, 2, HD_SESSION_PLAY, "A", "r", none), 0);
  assert_int_equal(join_ex(w, 3, HD_SESSION_PLAY, "B", "r", none), 0);
  run_for(w, HD_SEC(2));
  assert_int_equal(hd_rtc_client_rx(w->p[2].c, HD_RTC_VIDEO)->tags_seen, 1u << 1);
  assert_int_equal(hd_rtc_client_rx(w->p[3].c, HD_RTC_VIDEO)->tags_seen, 1u << 2);
  assert_int_equal(hd_rtc_client_rx(w->p[2].c, HD_RTC_AUDIO)->tags_seen, 1u << 1);
  assert_int_equal(hd_rtc_client_rx(w->p[3].c, HD_RTC_AUDIO)->tags_seen, 1u << 2);
  check_clean(w, 2);
  check_clean(w, 3);
  /* a bad offer is refused with a reason */
  char ans[256], id[HD_SESSION_ID_LEN + 1], err[256] = "";
  assert_int_equal(hd_node_create_session(w->node, HD_SESSION_PUBLISH, "A", "x", "v=0\r\nbogus", 11, w->now,
                                          ans, sizeof ans, id, err, sizeof err) < 0,
                   1);
  assert_true(err[0] != 0);
  assert_int_equal(hd_node_room_count(w->node), 2);
  world_free(w);
  free(w);
}

/* ---- REMB: a bitrate cap for publishers (draft-alvestrand-rmcat-remb) ---- */

static void test_remb_cap(void **st) {
  (void)st;
  world_t *w = calloc(1, sizeof *w);
  hd_node_config_t extra = {.max_publish_bitrate = 300000};
  world_init_cfg(w, &extra);
  assert_int_equal(join(w, 0, HD_SESSION_PUBLISH, "r"), 0);
  run_for(w, HD_SEC(1));
  assert_true(hd_rtc_client_connected(w->p[0].c));
  uint64_t before = hd_rtc_client_stats(w->p[0].c)->remb_rx;
  run_for(w, HD_SEC(5));
  const hd_rtc_client_stats_t *cs = hd_rtc_client_stats(w->p[0].c);
  /* about once a second: 5 s give 4..6 */
  assert_true(cs->remb_rx - before >= 4 && cs->remb_rx - before <= 6);
  /* parsed back by the client with hd_rtcp_remb_parse: the configured cap... */
  assert_int_equal(cs->remb_last_bps, 300000);
  /* ... naming exactly the publisher's SSRCs (audio and video, any order) */
  assert_int_equal(cs->remb_last_n, 2);
  for (int k = 0; k < 2; k++) {
    uint32_t want = hd_rtc_client_send_ssrc(w->p[0].c, k);
    assert_true(cs->remb_last_ssrcs[0] == want || cs->remb_last_ssrcs[1] == want);
  }
  assert_true(hd_node_stats(w->node)->media.remb_sent >= cs->remb_rx);
  char metrics[16384];
  assert_true(hd_node_metrics_text(w->node, metrics, sizeof metrics) > 0);
  assert_null(strstr(metrics, "hudong_rtcp_sent_total{type=\"remb\"} 0\n"));
  /* viewers never get REMB from us */
  assert_int_equal(join(w, 1, HD_SESSION_PLAY, "r"), 0);
  run_for(w, HD_SEC(3));
  assert_true(hd_rtc_client_connected(w->p[1].c));
  assert_int_equal(hd_rtc_client_stats(w->p[1].c)->remb_rx, 0);
  world_free(w);
  free(w);

  /* no cap configured: no REMB at all (TWCC alone drives the publisher) */
  w = calloc(1, sizeof *w);
  world_init(w);
  assert_int_equal(join(w, 0, HD_SESSION_PUBLISH, "r"), 0);
  run_for(w, HD_SEC(4));
  assert_true(hd_rtc_client_connected(w->p[0].c));
  assert_true(hd_rtc_client_stats(w->p[0].c)->twcc_rx > 0);
  assert_int_equal(hd_rtc_client_stats(w->p[0].c)->remb_rx, 0);
  world_free(w);
  free(w);
}

/* ---- empty rooms are kept for room_empty_timeout, on the virtual clock ---- */

/* The sid of room `room` of "app" as the admin list gives it ("" if not listed). */
static void room_sid(world_t *w, const char *room, char out[24]) {
  out[0] = 0;
  char *js = hd_node_admin_rooms_json(w->node, "app");
  json_t *j = json_loads(js, 0, NULL), *r;
  size_t i;
  json_array_foreach(json_object_get(j, "rooms"), i, r) {
    if (!strcmp(json_string_value(json_object_get(r, "name")), room))
      snprintf(out, 24, "%s", json_string_value(json_object_get(r, "sid")));
  }
  json_decref(j);
  free(js);
}

static void test_empty_room_timeout(void **st) {
  (void)st;
  world_t *w = calloc(1, sizeof *w);
  hd_node_config_t extra = {.room_empty_timeout = HD_SEC(5)};
  world_init_cfg(w, &extra);
  assert_int_equal(join(w, 0, HD_SESSION_PUBLISH, "r"), 0);
  run_for(w, HD_SEC(1));
  char sid[24], sid2[24];
  room_sid(w, "r", sid);
  assert_true(sid[0] != 0);
  leave(w, 0);
  hd_time_t left_at = w->now;
  /* empty but kept: listed with its sid, the node wakes up when it is due */
  assert_int_equal(hd_node_room_count(w->node), 1);
  assert_int_equal(hd_node_next_timeout(w->node), left_at + HD_SEC(5));
  char *js = hd_node_admin_rooms_json(w->node, "app");
  assert_non_null(strstr(js, sid));
  assert_non_null(strstr(js, "\"closes_in_s\":5"));
  free(js);
  char metrics[16384];
  assert_true(hd_node_metrics_text(w->node, metrics, sizeof metrics) > 0);
  assert_non_null(strstr(metrics, "hudong_rooms 1\n"));
  assert_non_null(strstr(metrics, "hudong_rooms_empty 1\n"));
  /* a new publisher within the timeout reuses the room (same sid) */
  run_for(w, HD_SEC(4));
  assert_int_equal(hd_node_room_count(w->node), 1);
  assert_int_equal(join(w, 1, HD_SESSION_PUBLISH, "r"), 0);
  room_sid(w, "r", sid2);
  assert_string_equal(sid2, sid);
  run_for(w, HD_SEC(3)); /* past the first timeout: in use, so still there */
  assert_int_equal(hd_node_room_count(w->node), 1);
  assert_true(hd_node_metrics_text(w->node, metrics, sizeof metrics) > 0);
  assert_non_null(strstr(metrics, "hudong_rooms_empty 0\n"));
  /* empty again: the timer starts over from this leave */
  leave(w, 1);
  left_at = w->now;
  run_until(w, left_at + HD_SEC(5) - 1);
  assert_int_equal(hd_node_room_count(w->node), 1);
  run_until(w, left_at + HD_SEC(5));
  assert_int_equal(hd_node_room_count(w->node), 0);
  assert_int_equal(hd_node_next_timeout(w->node), HD_TIME_NEVER);
  /* after that, the same name is a new room */
  assert_int_equal(join(w, 2, HD_SESSION_PUBLISH, "r"), 0);
  room_sid(w, "r", sid2);
  assert_true(sid2[0] && strcmp(sid2, sid));
  /* admin close does not wait for the timeout */
  leave(w, 2);
  assert_int_equal(hd_node_room_count(w->node), 1);
  assert_int_equal(hd_node_admin_close_room(w->node, "app", "r", w->now), 0);
  assert_int_equal(hd_node_room_count(w->node), 0);
  /* nor does shutdown: an empty room waiting for its timeout is freed (ASan checks) */
  assert_int_equal(join(w, 3, HD_SESSION_PUBLISH, "q"), 0);
  leave(w, 3);
  assert_int_equal(hd_node_room_count(w->node), 1);
  world_free(w);
  free(w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_forward_two_viewers),
      cmocka_unit_test(test_late_viewer_pli),
      cmocka_unit_test(test_nack_rtx_recovery),
      cmocka_unit_test(test_uplink_nack_repair),
      cmocka_unit_test(test_consent_expiry),
      cmocka_unit_test(test_whip_takeover_of_silent_publisher),
      cmocka_unit_test(test_publisher_restart),
      cmocka_unit_test(test_garbage),
      cmocka_unit_test(test_spoofed_dtls_alert),
      cmocka_unit_test(test_errors_and_isolation),
      cmocka_unit_test(test_remb_cap),
      cmocka_unit_test(test_empty_room_timeout),
  };
  return cmocka_run_group_tests(tests, node_world_setup_all, node_world_teardown_all);
}
