/* The client PeerConnection's world (pc_world.h). */
#include "pc_world.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "media/rtp_payload.h"
#include "proto/rtp.h"
#include "proto/sdp_negotiate.h"
#include "proto/token.h"
#include "sfu/signal.h"
#include "check.h"
#include "seeded_rand.h"
#include "signal_capture.h"

static const int64_t UNIX_NOW = 1800000000;

static pw_t *W;

/* The receiver's video jitter buffer, driven as client/client_media.c
 * drain_video does: the hold deadline from the pc's measured repair RTT,
 * a PLI on KEYFRAME_NEEDED; rendered frames are timed from capture. */
static void vjb_drain(pw_t *w, pw_ep_t *e, hd_time_t now) {
  int vt = -1;
  for (int i = 0; i < hd_pc_track_count(e->pc) && vt < 0; i++)
    if (hd_pc_track_kind(e->pc, i) == HD_PC_VIDEO) vt = i;
  if (vt < 0) return;
  hd_time_t rtt = hd_pc_track_repair_rtt(e->pc, vt);
  if (rtt > 0) hd_video_jb_set_rtt(e->vjb, rtt);
  hd_video_jb_event_t ev;
  e->v_drained = now;
  while (hd_video_jb_poll(e->vjb, now, &ev) == 1) {
    if (ev.type == HD_VIDEO_JB_KEYFRAME_NEEDED) {
      if (hd_pc_request_keyframe(e->pc, vt, now) == 0) e->v_plis++;
      continue;
    }
    e->v_out++;
    if (!ev.render) continue;
    e->v_rendered++;
    if (!e->v_first_render) e->v_first_render = now;
    e->v_last_render = now;
    hd_freeze_frame(&e->freeze, now);
    uint32_t n = ev.frame.ts / 3000;
    if (n < 4096 && w->sent_at[n] && e->v_delay_n < 4096) e->v_delay[e->v_delay_n++] = now - w->sent_at[n];
  }
}

static void on_event(void *ud, const hd_pc_event_t *ev) {
  pw_ep_t *e = ud;
  pw_app_t *a = &e->app;
  switch (ev->type) {
  case HD_PC_EV_STATE:
    if (ev->state == HD_PC_CONNECTED) a->connected = 1;
    if (ev->state == HD_PC_FAILED) a->failed = 1;
    break;
  case HD_PC_EV_KEYFRAME:
    a->keyframes++;
    e->force_key = 1;
    break;
  case HD_PC_EV_SEND_RATE:
    a->remb_events++;
    a->last_remb = ev->bitrate_bps;
    break;
  case HD_PC_EV_RTP: {
    int k = ev->rtp.kind;
    a->rtp[k]++;
    if (ev->rtp.rtx) a->rtx_rtp++;
    if (!a->first_ext[k]) a->first_ext[k] = ev->rtp.ext_seq;
    int64_t i = ev->rtp.ext_seq - a->first_ext[k];
    if (i >= 0 && i < PW_MAXSEQ) a->got[k][i]++;
    if (ev->rtp.ext_seq > a->max_ext[k]) a->max_ext[k] = ev->rtp.ext_seq;
    if (k == HD_PC_AUDIO && e->jb) {
      if (ev->rtp.rtx)
        hd_audio_jitter_push_repair(e->jb, ev->rtp.seq, ev->rtp.ts, ev->rtp.payload, ev->rtp.payload_len,
                                    ev->rtp.red, ev->rtp.codec_pt, ev->rtp.arrival);
      else if (ev->rtp.red)
        hd_audio_jitter_push_red(e->jb, ev->rtp.seq, ev->rtp.ts, ev->rtp.payload, ev->rtp.payload_len,
                                 ev->rtp.codec_pt, ev->rtp.arrival);
      else
        hd_audio_jitter_push(e->jb, ev->rtp.seq, ev->rtp.ts, ev->rtp.payload, ev->rtp.payload_len,
                             ev->rtp.arrival);
      if (!e->next_pull) e->next_pull = ev->rtp.arrival;
    }
    if (ev->rtp.red) {
      /* RED passed on by the node: the primary is what alice sent */
      uint8_t pt;
      const uint8_t *d;
      size_t dl;
      if (hd_red_primary(ev->rtp.payload, ev->rtp.payload_len, &pt, &d, &dl) == 0 && pt == ev->rtp.codec_pt &&
          dl == 60 && d[7] == 0x5A)
        a->red_rtp++;
      else
        a->bad_payload++;
      break;
    }
    if (ev->rtp.payload_len < 8 || ev->rtp.payload[7] != 0x5A) a->bad_payload++;
    if (k == HD_PC_VIDEO && e->vjb) {
      hd_frame_asm_pkt_t p = {.seq = ev->rtp.seq,
                              .ts = ev->rtp.ts,
                              .marker = ev->rtp.marker,
                              .payload = ev->rtp.payload,
                              .len = ev->rtp.payload_len};
      hd_video_jb_push(e->vjb, &p, ev->rtp.arrival);
      vjb_drain(W, e, ev->rtp.arrival);
    }
    break;
  }
  default: break;
  }
}

void pw_mkaddr(struct sockaddr_in *a, const char *ip, uint16_t port) {
  memset(a, 0, sizeof *a);
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  inet_pton(AF_INET, ip, &a->sin_addr);
}

void pw_ep_init(pw_t *w, int i, const char *ip, uint16_t port, double loss, hd_dtls_cert_t *cert) {
  pw_ep_t *e = &w->ep[i];
  pw_mkaddr(&e->addr, ip, port);
  hd_link_params_t lp = {.delay = PW_DELAY, .loss = loss};
  hd_link_init(&e->up, &lp, 100 + (uint64_t)i);
  hd_link_init(&e->down, &lp, 200 + (uint64_t)i);
  e->vtrack = e->atrack = -1;
  if (i == PW_NODE) return;
  hd_pc_config_t cfg = {.cert = cert,
                        .local_ip = ip,
                        .local_port = port,
                        .wall_offset = HD_SEC(1700000000),
                        .no_red = w->no_red,
                        .no_nack = w->no_nack,
                        .no_fec = w->no_fec,
                        .on_event = on_event,
                        .ud = e};
  CHECK((hd_pc_new(&e->pc, &cfg)) == (0));
}

static int ep_of(pw_t *w, const struct sockaddr_storage *ss) {
  const struct sockaddr_in *b = (const struct sockaddr_in *)ss;
  for (int i = 0; i < PW_NEP; i++)
    if (b->sin_port == w->ep[i].addr.sin_port && b->sin_addr.s_addr == w->ep[i].addr.sin_addr.s_addr)
      return i;
  return -1;
}

static void push(pw_t *w, int from, int to, const uint8_t *data, size_t len) {
  hd_time_t at;
  if (to < 0) return;
  w->trace_n++;
  w->trace_hash = cw_trace_mix(w->trace_hash, w->now, from, to, len);
  if (w->nl[from][to]) {
    hd_netem_link_send(w->nl[from][to], data, len, w->now);
    return;
  }
  hd_time_t dep = w->now;
  if (from == 0 && w->up_rate) {
    dep = (w->up_busy > w->now ? w->up_busy : w->now) + (hd_time_t)((len + 28) * 8 * 1000000 / w->up_rate);
    if (dep - w->now > HD_MS(200)) {
      w->up_drops++;
      return;
    }
    w->up_busy = dep;
    w->up_sent++;
  }
  if (!hd_link_send(&w->ep[from].up, dep, &at)) return;
  if (!hd_link_send(&w->ep[to].down, at, &at)) return;
  CHECK((hd_wire_push(&w->wire, at, to, (struct sockaddr *)&w->ep[from].addr, sizeof w->ep[from].addr, data,
                      len)) == (0));
}

static void send_to(void *ctx, int from, const struct sockaddr_storage *to, const uint8_t *data, size_t len) {
  pw_t *w = ctx;
  hd_rtp_hdr_t h; /* SRTP leaves the header in clear (RFC 3711 §3.1) */
  if (w->push_bps && from == 0 && len >= 12 && (data[1] & 0x7f) == HD_PC_PT_VP8 &&
      hd_rtp_parse(data, len, &h) == 0 && h.ts / 3000 < 4096 && w->vwait_n < 16384)
    w->vwait[w->vwait_n++] = w->now - w->sent_at[h.ts / 3000];
  push(w, from, ep_of(w, to), data, len);
}

static void drain(pw_t *w) {
  hd_pc_t *const pcs[2] = {w->ep[0].pc, w->ep[1].pc};
  cw_pump(w->node, PW_NODE, pcs, w->now, send_to, w);
}

/* Synthetic encoder: audio 50 packets/s, video 30 fps x 3 packets (6 on a
 * keyframe). Payload byte 7 = 0x5A as a check mark. */
/* The app's side of audio NACK, as client/client_media.c does it: the
 * buffer makes room for a repair round trip, the pc asks only while a repair
 * can still be played; then one 20 ms playout step. */
static void pull_audio(pw_t *w, pw_ep_t *e) {
  while (e->jb && e->next_pull && e->next_pull <= w->now) {
    int at = -1;
    for (int i = 0; i < hd_pc_track_count(e->pc) && at < 0; i++)
      if (hd_pc_track_kind(e->pc, i) == HD_PC_AUDIO) at = i;
    hd_time_t rtt = at >= 0 ? hd_pc_track_repair_rtt(e->pc, at) : -1;
    if (rtt >= 0) {
      hd_audio_jitter_set_repair_rtt(e->jb, rtt);
      CHECK((hd_pc_set_nack_window(e->pc, at, hd_audio_jitter_repair_window(e->jb))) == (0));
    }
    hd_audio_jitter_out_t o;
    hd_audio_jitter_pull(e->jb, e->next_pull, &o);
    e->next_pull += HD_MS(20);
  }
}

static void media(pw_t *w, pw_ep_t *e) {
  pull_audio(w, e);
  if (e->vjb && hd_video_jb_next_timeout(e->vjb) <= w->now) vjb_drain(w, e, w->now);
  if (!e->sending || hd_pc_state(e->pc) != HD_PC_CONNECTED) return;
  uint8_t pl[1100];
  size_t pl_max = w->push_bps ? sizeof pl : 600;
  memset(pl, 0x5A, sizeof pl);
  if (!e->next_video) e->next_video = e->next_audio = w->now; /* start of media */
  while (e->atrack >= 0 && e->next_audio <= w->now) {
    hd_pc_rtp_send_t p = {.track = e->atrack,
                          .ts = e->audio_n++ * 960,
                          .payload = pl,
                          .len = 60,
                          .audio_level = 30,
                          .voice = 1};
    uint8_t red[200];
    uint8_t red_pt = hd_pc_track_red_pt(e->pc, e->atrack);
    if (red_pt && e->audio_n > 1) { /* RED: the previous frame + this one */
      hd_red_block_t b[2] = {{HD_PC_PT_OPUS, 960, pl, 60}, {HD_PC_PT_OPUS, 0, pl, 60}};
      p.pt = red_pt;
      p.payload = red;
      p.len = (size_t)hd_red_build(b, 2, red, sizeof red);
    }
    hd_pc_send_rtp(e->pc, &p, w->now);
    e->next_audio += HD_MS(20);
  }
  while (e->vtrack >= 0 && e->next_video <= w->now) {
    int key = e->force_key || e->frame == 0, n = key ? 6 : 3;
    size_t plen = pl_max;
    if (w->push_bps && e == &w->ep[0]) { /* fixed rate: the estimate does not size it */
      key = e->frame % 60 == 0;
      size_t bytes = (size_t)(w->push_bps / 8 / 30) * (key ? 4 : 1);
      n = (int)((bytes + pl_max - 1) / pl_max);
      plen = bytes / (size_t)n;
    }
    if (w->adapt) {
      /* an encoder at the target: 90% of it minus audio (24 kbit/s of
       * payload, twice that as RED with one copy), 30 fps; under 100 kbit/s
       * of video 15 fps, back at 130 (client/client_media.c adapt_video) */
      int64_t target = e->app.last_remb ? (int64_t)e->app.last_remb : 300000; /* the estimator's start */
      int64_t audio = hd_pc_track_red_pt(e->pc, e->atrack) ? 48000 : 24000;
      int64_t vbps = target * 9 / 10 - audio;
      if (!e->half_fps && vbps < 100000) e->half_fps = 1;
      if (e->half_fps && vbps > 130000) e->half_fps = 0;
      if (e->half_fps && !key && (e->frame & 1)) {
        e->frame++;
        e->next_video += HD_MS(33);
        continue;
      }
      int64_t bytes = vbps / 8 / (e->half_fps ? 15 : 30);
      if (bytes < 300) bytes = 300;
      n = (int)((bytes + pl_max - 1) / pl_max) * (key ? 2 : 1);
      plen = (size_t)(bytes * (key ? 2 : 1) / n);
      if (plen < 8) plen = 8;
    }
    e->force_key = 0;
    pl[0] = (uint8_t)key;
    pl[1] = (uint8_t)!key; /* VP8 payload header P bit (RFC 7741 §4.3) when w->vp8 */
    if (e->frame < 4096) w->sent_at[e->frame] = w->now;
    for (int i = 0; i < n; i++) {
      if (w->vp8) pl[0] = i == 0 ? 0x10 : 0x00; /* S=1 PartID=0 on a frame's first packet */
      hd_pc_rtp_send_t p = {.track = e->vtrack,
                            .ts = e->frame * 3000,
                            .marker = i == n - 1,
                            .payload = pl,
                            .len = plen,
                            .audio_level = -1,
                            .fixed_rate = w->push_bps && e == &w->ep[0] && w->push_fixed};
      CHECK((hd_pc_send_rtp(e->pc, &p, w->now)) == (0));
    }
    e->frame++;
    e->next_video += HD_MS(33);
  }
}

static hd_time_t media_due(const pw_ep_t *e) {
  hd_time_t t = e->jb && e->next_pull ? e->next_pull : HD_TIME_NEVER;
  if (e->vjb) { /* a deadline the buffer has just been polled at waits for news (1 ms steps) */
    hd_time_t v = hd_video_jb_next_timeout(e->vjb);
    t = hd_time_min(t, v > e->v_drained ? v : e->v_drained + HD_MS(1));
  }
  if (!e->sending || !e->pc || hd_pc_state(e->pc) != HD_PC_CONNECTED) return t;
  if (e->atrack >= 0) t = hd_time_min(t, e->next_audio);
  if (e->vtrack >= 0) t = hd_time_min(t, e->next_video);
  return t;
}

void pw_run_until(pw_t *w, hd_time_t end) {
  hd_wire_pkt_t *pkt = malloc(sizeof *pkt);
  CHECK(pkt);
  for (long guard = 0;; guard++) {
    CHECK(guard < 10000000);
    drain(w);
    hd_time_t t = hd_wire_next(&w->wire);
    if (w->node) t = hd_time_min(t, hd_node_next_timeout(w->node));
    for (int i = 0; i < 2; i++)
      if (w->ep[i].pc) t = hd_time_min(t, hd_time_min(hd_pc_next_timeout(w->ep[i].pc), media_due(&w->ep[i])));
    for (int f = 0; f < PW_NEP; f++)
      for (int d = 0; d < PW_NEP; d++)
        if (w->nl[f][d]) t = hd_time_min(t, hd_netem_link_next_timeout(w->nl[f][d]));
    if (t > end) break;
    if (t > w->now) w->now = t;
    for (int f = 0; f < PW_NEP; f++)
      for (int d = 0; d < PW_NEP; d++) {
        const uint8_t *data;
        int n;
        while (w->nl[f][d] && (n = hd_netem_link_poll(w->nl[f][d], w->now, &data)) > 0)
          CHECK((hd_wire_push(&w->wire, w->now, d, (struct sockaddr *)&w->ep[f].addr, sizeof w->ep[f].addr,
                              data, (size_t)n)) == (0));
      }
    while (hd_wire_pop(&w->wire, w->now, pkt)) {
      if (pkt->dst == PW_NODE)
        hd_node_feed(w->node, pkt->data, pkt->len, (struct sockaddr *)&pkt->from, pkt->fromlen, w->now);
      else
        hd_pc_feed(w->ep[pkt->dst].pc, pkt->data, pkt->len, (struct sockaddr *)&pkt->from, pkt->fromlen,
                   w->now);
      drain(w);
    }
    if (w->node && hd_node_next_timeout(w->node) <= w->now) hd_node_handle_timeout(w->node, w->now);
    for (int i = 0; i < 2; i++)
      if (w->ep[i].pc) {
        if (hd_pc_next_timeout(w->ep[i].pc) <= w->now) hd_pc_handle_timeout(w->ep[i].pc, w->now);
        media(w, &w->ep[i]);
      }
  }
  w->now = end;
  free(pkt);
}

pw_t *pw_new(void) {
  pw_t *w = calloc(1, sizeof *w);
  CHECK(w);
  CHECK((hd_wire_init(&w->wire, 1 << 16)) == (0));
  w->now = HD_SEC(500);
  hd_test_rand_seed(CW_RAND_SEED + 1); /* as cw_new: the same world every run */
  W = w;
  return w;
}

void pw_free(pw_t *w) {
  for (int i = 0; i < 2; i++) {
    hd_pc_free(w->ep[i].pc);
    if (w->ep[i].jb) hd_audio_jitter_free(w->ep[i].jb);
    free(w->ep[i].jb);
    if (w->ep[i].vjb) hd_video_jb_free(w->ep[i].vjb);
    free(w->ep[i].vjb);
  }
  for (int f = 0; f < PW_NEP; f++)
    for (int d = 0; d < PW_NEP; d++)
      hd_netem_link_free(w->nl[f][d]);
  hd_node_free(w->node);
  for (int c = 0; c < 2; c++)
    for (int i = 0; i < w->n_msgs[c]; i++)
      free(w->msgs[c][i]);
  hd_wire_free(&w->wire);
  free(w);
}

/* Counts ext seqs missing between the first and `tail` before the last one. */
int64_t pw_holes(const pw_app_t *a, int k, int64_t tail) {
  int64_t n = 0;
  for (int64_t i = 0; i <= a->max_ext[k] - a->first_ext[k] - tail && i < PW_MAXSEQ; i++)
    n += a->got[k][i] == 0;
  return n;
}

/* ---- (a) through a node room ---- */

static void sig_send(void *ud, void *conn, const char *text, size_t len) {
  int c = (int)(intptr_t)conn;
  if (W->n_msgs[c] < 64) W->msgs[c][W->n_msgs[c]++] = strndup(text, len);
}
static void sig_close(void *ud, void *conn, int code, const char *reason) {}
static const char *lookup(void *ud, const char *key) { return !strcmp(key, "app") ? "secret" : NULL; }

static int rtc_msg(pw_t *w, int c, const char *text) {
  return hd_node_rtc_message(w->node, (void *)(intptr_t)c, &w->part[c], text, strlen(text), lookup, NULL,
                             UNIX_NOW, w->now);
}

/* Parses the first captured node message of `type` for connection c (and drops it). */
static int take(pw_t *w, int c, hd_signal_type_t type, hd_signal_msg_t *m) {
  return hd_test_take_signal(w->msgs[c], &w->n_msgs[c], type, m);
}

static void join_room(pw_t *w, int c, const char *identity) {
  char msg[HD_TOKEN_MAX + 256];
  CHECK(hd_test_join_msg(identity, UNIX_NOW, msg, sizeof msg) > 0);
  CHECK((rtc_msg(w, c, msg)) == (0));
  hd_signal_msg_t m;
  CHECK((take(w, c, HD_SIGNAL_JOINED, &m)) == (0));
  hd_signal_msg_free(&m);
}

/* alice publishes, bob subscribes, through the node; runs `secs` seconds */
pw_t *pw_room_run(double loss, int secs, uint64_t up_rate) {
  pw_t *w = pw_new();
  w->up_rate = up_rate;
  w->adapt = up_rate != 0;
  pw_room_start(w, loss, secs);
  return w;
}

/* room_run on a world set up by the caller (w->no_video: audio only) */
void pw_room_start(pw_t *w, double loss, int secs) {
  hd_node_config_t ncfg = {.rtc_ip = "10.0.0.1",
                           .rtc_port = 7881,
                           .wall_offset = HD_SEC(1700000000),
                           .signal_send = sig_send,
                           .signal_close = sig_close};
  CHECK((hd_node_new(&w->node, &ncfg, cw_cert_n)) == (0));
  pw_ep_init(w, 0, "10.0.0.2", 5000, loss, cw_cert_a);
  pw_ep_init(w, 1, "10.0.0.3", 5001, loss, cw_cert_b);
  pw_ep_init(w, PW_NODE, "10.0.0.1", 7881, 0.0, NULL);
  join_room(w, 0, "alice");
  join_room(w, 1, "bob");

  /* alice publishes microphone + camera */
  pw_ep_t *pub = &w->ep[0], *sub = &w->ep[1];
  int nt = w->no_video ? 1 : 2;
  pub->atrack = hd_pc_add_transceiver(pub->pc, HD_PC_AUDIO, HD_PC_SENDONLY);
  if (!w->no_video) pub->vtrack = hd_pc_add_transceiver(pub->pc, HD_PC_VIDEO, HD_PC_SENDONLY);
  CHECK((pub->atrack) == (0));
  if (!w->no_video) CHECK((pub->vtrack) == (1));
  static char sdp[32768], msg[65536];
  CHECK(hd_pc_create_offer(pub->pc, sdp, sizeof sdp, w->now) > 0);
  CHECK((hd_pc_create_offer(pub->pc, sdp, sizeof sdp, w->now)) == (HD_ESTATE)); /* one pending */
  hd_signal_pub_track_t tr[2] = {{.cid = "mic",
                                  .mid = hd_pc_track_mid(pub->pc, 0),
                                  .kind = HD_SIGNAL_KIND_AUDIO,
                                  .source = HD_SIGNAL_SOURCE_MICROPHONE},
                                 {.cid = "cam",
                                  .mid = w->no_video ? "" : hd_pc_track_mid(pub->pc, 1),
                                  .kind = HD_SIGNAL_KIND_VIDEO,
                                  .source = HD_SIGNAL_SOURCE_CAMERA}};
  CHECK(hd_signal_write_publish_offer("p1", sdp, tr, (size_t)nt, msg, sizeof msg) > 0);
  CHECK((rtc_msg(w, 0, msg)) == (0));
  hd_signal_msg_t m;
  CHECK((take(w, 0, HD_SIGNAL_PUBLISH_ANSWER, &m)) == (0));
  CHECK((hd_pc_set_remote_answer(pub->pc, m.publish_answer.sdp, strlen(m.publish_answer.sdp), w->now)) ==
        (0));
  hd_signal_msg_free(&m);
  CHECK((hd_pc_state(pub->pc)) == (HD_PC_CHECKING));
  CHECK(hd_pc_ice_controlling(pub->pc)); /* the node is ICE-lite */
  CHECK(hd_pc_dtls_client(pub->pc));
  pub->sending = 1;

  /* bob answers the node's subscriber offer */
  CHECK((take(w, 1, HD_SIGNAL_SUBSCRIBER_OFFER, &m)) == (0));
  CHECK(m.subscriber_offer.n_tracks == (size_t)nt);
  int n = hd_pc_answer_offer(sub->pc, m.subscriber_offer.sdp, strlen(m.subscriber_offer.sdp), sdp, sizeof sdp,
                             w->now);
  hd_signal_msg_free(&m);
  CHECK(n > 0);
  CHECK(hd_pc_ice_controlling(sub->pc)); /* lite offerer: we control */
  CHECK((hd_pc_track_count(sub->pc)) == (nt));
  CHECK((hd_pc_track_direction(sub->pc, 0)) == (HD_PC_RECVONLY));
  CHECK(hd_signal_write_subscriber_answer(NULL, sdp, msg, sizeof msg) > 0);
  CHECK((rtc_msg(w, 1, msg)) == (0));
  CHECK((take(w, 1, HD_SIGNAL_ERROR, &m)) == (HD_ENOTFOUND));

  pw_run_until(w, w->now + HD_SEC(secs));
}

/* ---- (b) two full agents, directly ---- */

void pw_connect_direct(pw_t *w, double loss, int a_dir, int b_audio) {
  pw_ep_init(w, 0, "10.0.0.2", 5000, loss, cw_cert_a);
  pw_ep_init(w, 1, "10.0.0.3", 6000, loss, cw_cert_b);
  pw_ep_t *a = &w->ep[0], *b = &w->ep[1];
  if (b_audio) a->atrack = hd_pc_add_transceiver(a->pc, HD_PC_AUDIO, HD_PC_SENDRECV);
  a->vtrack = hd_pc_add_transceiver(a->pc, HD_PC_VIDEO, a_dir);
  char *offer = w->offer, *answer = w->answer;
  CHECK(hd_pc_create_offer(a->pc, offer, sizeof w->offer, w->now) > 0);
  CHECK(strstr(offer, "a=candidate:1 1 udp 2130706431 10.0.0.2 5000 typ host"));
  CHECK(NULL == strstr(offer, "ice-lite"));
  CHECK(hd_pc_answer_offer(b->pc, offer, strlen(offer), answer, sizeof w->answer, w->now) > 0);
  CHECK(strstr(answer, "a=setup:active"));
  CHECK((hd_pc_set_remote_answer(a->pc, answer, strlen(answer), w->now)) == (0));
  CHECK(hd_pc_ice_controlling(a->pc));
  CHECK(!(hd_pc_ice_controlling(b->pc))); /* answerer of a full agent: controlled */
  CHECK(!(hd_pc_dtls_client(a->pc)));     /* b answered active */
  CHECK(hd_pc_dtls_client(b->pc));
}
