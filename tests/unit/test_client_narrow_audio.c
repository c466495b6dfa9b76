/* Audio on a narrow link, in virtual time (issue 11 item 3: "audio first and
 * never dropped"; issue 13 item 2): the SDK publisher pc (client/pc.h) sends
 * 20 ms audio packets and one VP8 stream that follows its send-side estimate
 * (the SDK's encoder: 90% of the target less audio) through an in-process
 * node to an SDK subscriber pc, both legs through `hudong netem --delay 25
 * --rate 300 --queue 200` (bench/weak_network --rates 300). The subscriber
 * plays audio through the NetEQ-class buffer (media/audio_jitter.h) on a
 * 20 ms clock as client_media.c does, and measures each audio packet's
 * capture -> arrival delay. Audio goes around every pacer queue; what it must
 * not do is wait behind video in the link's own queue, which only what the
 * senders put on the wire decides. The publisher's rates come from the SDK's
 * own policy (client_media.c: cl_local_init's start plan, cl_apply_send_rate
 * on each estimate, cl_audio_adapt on each receiver report), its payloads are
 * synthetic. The world (node, links, signaling) is test_client_downlink.c's,
 * with audio added. */
#include "hd_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>

#include "base/err.h"
#include "base/log.h"
#include "client/client_internal.h" /* the SDK's send budget (client_media.c) */
#include "client/client_quality.h"
#include "client/pc.h"
#include "client/pc_internal.h" /* the publisher's estimator, for the trace */
#include "client/rtc_signal.h"
#include "media/audio_jitter.h"
#include "media/rtp_payload.h"
#include "media/video_jitter.h"
#include "netem/link.h"
#include "netem/profile.h"
#include "proto/token.h"
#include "sfu/node.h"
#include "sfu/session.h"
#include "sfu/rooms_internal.h"
#include "sfu/signal.h"
#include "support/link.h"
#include "support/netem_world.h"
#include "support/signal_capture.h"

#define NODE_EP 2
#define NLAYERS 3

static hd_dtls_cert_t *g_cert_a, *g_cert_b, *g_cert_n;
static const int64_t UNIX_NOW = 1800000000;
static const char *const RIDS[NLAYERS] = {"q", "h", "f"};
/* layer bitrates of the synthetic encoder (payload bit/s) and picture sizes */
static const int LAYER_BPS[NLAYERS] = {150000, 450000, 1100000};
static const int LAYER_W[NLAYERS] = {320, 640, 1280}, LAYER_H[NLAYERS] = {180, 360, 720};

typedef struct {
  hd_pc_t *pc;
  struct sockaddr_in addr;
  /* publisher */
  int sending, vtrack, atrack;
  uint32_t frame, audio_n;
  int force_key[NLAYERS];
  uint16_t pid[NLAYERS];
  hd_time_t next_video, next_audio;
  /* subscriber */
  hd_video_jb_t jb;
  int have_jb, rtrack;
  hd_freeze_t fz;
  hd_time_t watch_from; /* frames and freezes counted from here */
  uint64_t rendered, keyreqs;
  int last_layer; /* layer of the last rendered frame, -1 none */
  uint64_t layer_frames[NLAYERS];
  hd_time_t first_frame_at, last_frame_at;
  hd_time_t *delays, *jb_delays; /* per rendered frame: capture -> render, and its jitter-buffer part */
  size_t n_delays;
  hd_time_t tr_last, tr_lo, tr_hi; /* trace: last frame delay, range before the jitter buffer */
  int n_layers;                    /* publisher: 1 (one stream) or NLAYERS (simulcast) */
  uint64_t send_rate;              /* publisher: latest SEND_RATE target; 0 = fixed LAYER_BPS */
  int adapt;                       /* publisher: one stream sized from send_rate as client_media.c does */
  /* publisher: the SDK's media policy (client_media.c) on a client with one
   * audio and one video track: start plan, send budget, audio protection */
  hd_client_t *sdk;
  uint64_t reports_seen;
  /* subscriber's audio: NetEQ-class buffer pulled every 20 ms (client_media.c) */
  hd_audio_jitter_t ajb;
  int have_ajb;
  hd_time_t next_pull;
  hd_time_t *adelays; /* per audio packet watched: capture -> arrival */
  size_t n_adelays;
  uint64_t a_lost_at_start; /* ajb concealed/played ms when the watch began */
  uint64_t a_conc0, a_played0, a_run0;
} ep_t;

typedef struct {
  ep_t ep[2]; /* 0 publisher, 1 subscriber */
  struct sockaddr_in node_addr;
  hd_node_t *node;
  hd_time_t now;
  char *msgs[2][64];
  int n_msgs[2];
  hd_participant_t *part[2];
  hd_netem_link_t *nl[3][3]; /* [from][to], NODE_EP = 2 */
  char *joined_text;         /* the node's "joined" to the subscriber, as sent */
  char cam_sid[64];          /* the camera's track sid, as the subscriber knows it */
} world_t;

static world_t *W;

/* ---- synthetic VP8 (RFC 7741): descriptor with a 15-bit PictureID; the
 * payload header's P bit says keyframe; a keyframe carries its size ---- */

static size_t vp8_payload(uint8_t *out, int layer, uint16_t pid, int first, int key, size_t len) {
  hd_vp8_desc_t d;
  memset(&d, 0, sizeof d);
  d.start = (uint8_t)first;
  d.picture_id = pid & 0x7fff;
  d.picture_id_bits = 15;
  d.tl0picidx = -1;
  d.tid = -1;
  d.keyidx = -1;
  int dl = hd_vp8_desc_write(&d, out, 64);
  assert_true(dl > 0);
  memset(out + dl, 0x5A, len - (size_t)dl);
  uint8_t *p = out + dl;
  if (first) {
    p[0] = key ? 0x10 : 0x11; /* frame tag: P bit (bit 0) 0 = keyframe, show_frame */
    p[1] = p[2] = 0;
    if (key) {
      p[3] = 0x9d, p[4] = 0x01, p[5] = 0x2a;
      p[6] = (uint8_t)LAYER_W[layer], p[7] = (uint8_t)(LAYER_W[layer] >> 8);
      p[8] = (uint8_t)LAYER_H[layer], p[9] = (uint8_t)(LAYER_H[layer] >> 8);
    }
  }
  out[len - 1] = (uint8_t)layer; /* the subscriber tells the layers apart by this */
  return len;
}

/* The frame's capture time at the publisher, in the payload's last bytes
 * before the layer (the subscriber measures end-to-end delay from it). */
static void stamp_capture(uint8_t *out, size_t len, hd_time_t at) {
  uint64_t v = (uint64_t)at;
  for (int i = 0; i < 8; i++)
    out[len - 9 + i] = (uint8_t)(v >> (8 * i));
}
static hd_time_t read_capture(const uint8_t *f, size_t len) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v |= (uint64_t)f[len - 9 + i] << (8 * i);
  return (hd_time_t)v;
}

/* ---- events ---- */

static void on_event(void *ud, const hd_pc_event_t *ev) {
  ep_t *e = ud;
  if (ev->type == HD_PC_EV_SEND_RATE) {
    e->send_rate = ev->bitrate_bps;
    if (e->sdk) cl_apply_send_rate(e->sdk, ev->bitrate_bps);
    return;
  }
  if (ev->type == HD_PC_EV_KEYFRAME) {
    int l = ev->layer >= 0 && ev->layer < NLAYERS ? ev->layer : 0;
    e->force_key[l] = 1;
    return;
  }
  if (ev->type == HD_PC_EV_RTP && ev->rtp.kind == HD_PC_AUDIO && e->have_ajb && ev->rtp.payload_len >= 16) {
    if (!ev->rtp.rtx && W->now >= e->watch_from && e->n_adelays < 8192)
      e->adelays[e->n_adelays++] = W->now - read_capture(ev->rtp.payload, ev->rtp.payload_len);
    if (!e->next_pull) e->next_pull = W->now;
    if (ev->rtp.rtx)
      hd_audio_jitter_push_repair(&e->ajb, ev->rtp.seq, ev->rtp.ts, ev->rtp.payload, ev->rtp.payload_len, 0,
                                  0, W->now);
    else
      hd_audio_jitter_push(&e->ajb, ev->rtp.seq, ev->rtp.ts, ev->rtp.payload, ev->rtp.payload_len, W->now);
    return;
  }
  if (ev->type != HD_PC_EV_RTP || ev->rtp.kind != HD_PC_VIDEO || !e->have_jb) return;
  e->rtrack = ev->rtp.track;
  hd_frame_asm_pkt_t k = {.seq = ev->rtp.seq,
                          .ts = ev->rtp.ts,
                          .marker = ev->rtp.marker,
                          .payload = ev->rtp.payload,
                          .len = ev->rtp.payload_len};
  hd_video_jb_push(&e->jb, &k, W->now);
}

/* The subscriber's video path as client_media.c drain_video runs it. */
static void sub_drain(world_t *w, ep_t *e) {
  if (!e->have_jb) return;
  while (e->have_ajb && e->next_pull && e->next_pull <= w->now) { /* the SDK's 20 ms playout clock */
    hd_audio_jitter_out_t o;
    hd_audio_jitter_pull(&e->ajb, e->next_pull, &o);
    e->next_pull += HD_MS(20);
  }
  hd_pc_stats_t *ps = malloc(sizeof *ps);
  assert_non_null(ps);
  hd_pc_stats(e->pc, ps);
  if (e->rtrack < ps->n_tracks && ps->tracks[e->rtrack].repair_rtt > 0)
    hd_video_jb_set_rtt(&e->jb, ps->tracks[e->rtrack].repair_rtt);
  else if (ps->rtt > 0)
    hd_video_jb_set_rtt(&e->jb, ps->rtt);
  free(ps);
  hd_video_jb_event_t ev;
  while (hd_video_jb_poll(&e->jb, w->now, &ev) == 1) {
    if (ev.type == HD_VIDEO_JB_KEYFRAME_NEEDED) {
      if (hd_pc_request_keyframe(e->pc, e->rtrack, w->now) == 0) e->keyreqs++;
      continue;
    }
    if (ev.render && ev.frame.len >= 10) { /* for the trace, watched or not */
      hd_time_t d = w->now - read_capture(ev.frame.data, ev.frame.len);
      e->tr_last = d;
      if (d - ev.jb_delay < e->tr_lo) e->tr_lo = d - ev.jb_delay;
      if (d - ev.jb_delay > e->tr_hi) e->tr_hi = d - ev.jb_delay;
    }
    if (!ev.render || w->now < e->watch_from) continue;
    int layer = ev.frame.len ? ev.frame.data[ev.frame.len - 1] : -1;
    e->rendered++;
    if (layer >= 0 && layer < NLAYERS) e->layer_frames[layer]++;
    e->last_layer = layer;
    if (ev.frame.len >= 10 && e->n_delays < 8192) {
      e->jb_delays[e->n_delays] = ev.jb_delay;
      e->delays[e->n_delays++] = w->now - read_capture(ev.frame.data, ev.frame.len);
    }
    if (!e->first_frame_at) e->first_frame_at = w->now;
    e->last_frame_at = w->now;
    hd_freeze_frame(&e->fz, w->now);
  }
}

/* ---- wire ---- */

static int ep_of(world_t *w, const struct sockaddr_storage *ss) {
  const struct sockaddr_in *b = (const struct sockaddr_in *)ss;
  for (int i = 0; i < 2; i++)
    if (b->sin_port == w->ep[i].addr.sin_port && b->sin_addr.s_addr == w->ep[i].addr.sin_addr.s_addr)
      return i;
  if (b->sin_port == w->node_addr.sin_port) return NODE_EP;
  return -1;
}

static const struct sockaddr_in *addr_of(world_t *w, int i) {
  return i == NODE_EP ? &w->node_addr : &w->ep[i].addr;
}

static uint64_t g_pt_bytes[256], g_pt_pkts[256];
static void push(world_t *w, int from, int to, const uint8_t *data, size_t len) {
  if (to < 0) return;
  if (from == NODE_EP && to == 1 && len > 12 && (data[0] & 0xc0) == 0x80) {
    int pt = data[1] >= 192 && data[1] <= 223 ? 255 : data[1] & 0x7f;
    g_pt_bytes[pt] += len;
    g_pt_pkts[pt]++;
  }
  hd_netem_link_send(w->nl[from][to], data, len, w->now);
}

static void drain(world_t *w) {
  hd_txq_t *q = hd_node_txq(w->node);
  hd_datagram_t *d;
  while ((d = hd_txq_peek(q)) != NULL) {
    push(w, NODE_EP, ep_of(w, &d->to), d->data, d->len);
    hd_txq_pop(q);
  }
  for (int i = 0; i < 2; i++) {
    uint8_t buf[1500];
    struct sockaddr_storage to;
    socklen_t tl;
    int n;
    while ((n = hd_pc_poll(w->ep[i].pc, buf, sizeof buf, &to, &tl, w->now)) > 0)
      push(w, i, ep_of(w, &to), buf, (size_t)n);
  }
}

/* The publisher's synthetic encoder: audio 50 packets/s; video 30 fps on
 * every layer, each frame LAYER_BPS/30 bytes in packets of <= 1000 (a
 * keyframe 3x that), the first frame of each layer and any asked for a
 * keyframe. */
static void media(world_t *w, ep_t *e) {
  if (!e->sending || hd_pc_state(e->pc) != HD_PC_CONNECTED) return;
  uint8_t pl[1100];
  if (!e->next_video) e->next_video = e->next_audio = w->now;
  while (e->next_audio <= w->now) {
    size_t alen = 60;
    if (e->sdk) {
      /* RED (RFC 2198) of 1 + red_depth Opus frames at the planned rate,
       * the plan following the node's receiver reports as encode_audio does */
      cl_local_t *a = &e->sdk->local[0];
      double fl;
      uint64_t reports;
      if (hd_pc_track_loss_report(e->pc, e->atrack, &fl, &reports) == 0 && reports != e->reports_seen) {
        e->reports_seen = reports;
        cl_audio_adapt(a, fl, cl_audio_base_bps(e->sdk));
      }
      size_t frame = (size_t)(a->target_bps / 50 / 8);
      alen = (size_t)(1 + a->red_depth) * frame + 4 * (size_t)a->red_depth + 1;
      if (alen > sizeof pl) alen = sizeof pl;
    }
    memset(pl, 0x5A, alen);
    stamp_capture(pl, alen, e->next_audio);
    hd_pc_rtp_send_t p = {.track = e->atrack,
                          .ts = e->audio_n++ * 960,
                          .payload = pl,
                          .len = alen,
                          .audio_level = 30,
                          .voice = 1};
    hd_pc_send_rtp(e->pc, &p, w->now);
    e->next_audio += HD_MS(20);
  }
  while (e->next_video <= w->now) {
    for (int l = 0; l < e->n_layers; l++) {
      int key = e->frame == 0 || e->force_key[l];
      e->force_key[l] = 0;
      int64_t bps = LAYER_BPS[e->n_layers == 1 ? 1 : l];
      if (e->sdk) { /* the SDK's video target: cl_local_init, then cl_apply_send_rate */
        bps = (int64_t)e->sdk->local[1].target_bps;
      } else if (e->adapt) { /* cl_apply_send_rate: 90% of the target less audio */
        bps = (int64_t)(e->send_rate ? e->send_rate : 300000) * 9 / 10 - 24000;
        if (bps < 50000) bps = 50000;
        if (bps > LAYER_BPS[2]) bps = LAYER_BPS[2];
      }
      size_t bytes = (size_t)bps / 8 / 30 * (key ? 3 : 1);
      int n = (int)((bytes + 999) / 1000);
      size_t each = bytes / (size_t)n;
      for (int i = 0; i < n; i++) {
        size_t len = vp8_payload(pl, l, e->pid[l], i == 0, key, each);
        if (i == n - 1) stamp_capture(pl, len, e->next_video);
        hd_pc_rtp_send_t p = {.track = e->vtrack,
                              .ts = e->frame * 3000,
                              .marker = i == n - 1,
                              .payload = pl,
                              .len = len,
                              .audio_level = -1,
                              .layer = e->n_layers > 1 ? l : 0};
        assert_int_equal(hd_pc_send_rtp(e->pc, &p, w->now), 0);
      }
      e->pid[l]++;
    }
    e->frame++;
    e->next_video += HD_MS(33);
  }
}

static void run_until(world_t *w, hd_time_t end) {
  for (long guard = 0;; guard++) {
    assert_true(guard < 50000000);
    drain(w);
    hd_time_t t = hd_node_next_timeout(w->node);
    for (int i = 0; i < 2; i++) {
      ep_t *e = &w->ep[i];
      t = hd_time_min(t, hd_pc_next_timeout(e->pc));
      if (e->sending && hd_pc_state(e->pc) == HD_PC_CONNECTED)
        t = hd_time_min(
            t, hd_time_min(e->next_video ? e->next_video : w->now, e->next_audio ? e->next_audio : w->now));
      if (e->have_jb) { /* polled at least 1 ms apart, as the SDK's 5 ms tick does (a due time the
                         * buffer keeps after a poll would spin this loop) */
        hd_time_t j = hd_video_jb_next_timeout(&e->jb);
        t = hd_time_min(t, j > w->now ? j : w->now + HD_MS(1));
      }
      if (e->have_ajb && e->next_pull) t = hd_time_min(t, e->next_pull);
    }
    for (int f = 0; f < 3; f++)
      for (int d = 0; d < 3; d++)
        if (w->nl[f][d]) t = hd_time_min(t, hd_netem_link_next_timeout(w->nl[f][d]));
    if (t > end) break;
    if (t > w->now) w->now = t;
    for (int f = 0; f < 3; f++)
      for (int d = 0; d < 3; d++) {
        const uint8_t *data;
        uint8_t tmp[2048];
        int n;
        while (w->nl[f][d] && (n = hd_netem_link_poll(w->nl[f][d], w->now, &data)) > 0) {
          memcpy(tmp, data, (size_t)n); /* both ends decrypt in place */
          const struct sockaddr_in *from = addr_of(w, f);
          if (d == NODE_EP)
            hd_node_feed(w->node, tmp, (size_t)n, (const struct sockaddr *)from, sizeof *from, w->now);
          else
            hd_pc_feed(w->ep[d].pc, tmp, (size_t)n, (const struct sockaddr *)from, sizeof *from, w->now);
          drain(w);
        }
      }
    if (hd_node_next_timeout(w->node) <= w->now) hd_node_handle_timeout(w->node, w->now);
    for (int i = 0; i < 2; i++) {
      if (hd_pc_next_timeout(w->ep[i].pc) <= w->now) hd_pc_handle_timeout(w->ep[i].pc, w->now);
      media(w, &w->ep[i]);
      sub_drain(w, &w->ep[i]);
    }
  }
  w->now = end;
}

/* ---- signaling ---- */

static void sig_send(void *ud, void *conn, const char *text, size_t len) {
  (void)ud;
  int c = (int)(intptr_t)conn;
  if (W->n_msgs[c] < 64) W->msgs[c][W->n_msgs[c]++] = strndup(text, len);
}
static void sig_close(void *ud, void *conn, int code, const char *reason) {
  (void)ud, (void)conn, (void)code, (void)reason;
}
static const char *lookup(void *ud, const char *key) {
  (void)ud;
  return !strcmp(key, "app") ? "secret" : NULL;
}

static int rtc_msg(world_t *w, int c, const char *text) {
  return hd_node_rtc_message(w->node, (void *)(intptr_t)c, &w->part[c], text, strlen(text), lookup, NULL,
                             UNIX_NOW, w->now);
}

static int take(world_t *w, int c, hd_signal_type_t type, hd_signal_msg_t *m) {
  return hd_test_take_signal(w->msgs[c], &w->n_msgs[c], type, m);
}

static void join_room(world_t *w, int c, const char *identity) {
  char msg[HD_TOKEN_MAX + 256];
  assert_true(hd_test_join_msg(identity, UNIX_NOW, msg, sizeof msg) > 0);
  assert_int_equal(rtc_msg(w, c, msg), 0);
  for (int i = 0; c == 1 && i < w->n_msgs[c]; i++)
    if (strstr(w->msgs[c][i], "\"type\":\"joined\"")) w->joined_text = strdup(w->msgs[c][i]);
  hd_signal_msg_t m;
  assert_int_equal(take(w, c, HD_SIGNAL_JOINED, &m), 0);
  hd_signal_msg_free(&m);
}

static void mkaddr(struct sockaddr_in *a, const char *ip, uint16_t port) {
  memset(a, 0, sizeof *a);
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  inet_pton(AF_INET, ip, &a->sin_addr);
}

/* `hudong netem` options for the link from -> to. */
static void set_link(world_t *w, int from, int to, const char *const *argv, size_t argc) {
  hd_netem_opts_t o;
  netem_opts_from(&o, argv, argc);
  assert_int_equal(hd_netem_link_new(&w->nl[from][to], &o.dir[0], 7 + (uint64_t)(from * 3 + to), w->now), 0);
}

/* The publisher (simulcast camera + microphone) and the subscriber in one
 * room; the subscriber's downlink through `down` (netem options), every
 * other link 25 ms one way. sub_no_twcc: the subscriber declines transport-cc
 * as the SDK client did before (client.c). */
typedef struct {
  const char *const *up, *const *down; /* netem options of the publisher's uplink, the viewer's downlink */
  size_t nup, ndown;
  int n_layers, adapt, sub_no_twcc;
  int sdk; /* the publisher follows the SDK's media policy (ep_t.sdk) */
} room_cfg_t;

static world_t *room_new(const room_cfg_t *rc) {
  world_t *w = calloc(1, sizeof *w);
  assert_non_null(w);
  W = w;
  w->now = HD_SEC(500);
  hd_node_config_t ncfg = {.rtc_ip = "10.0.0.1",
                           .rtc_port = 7881,
                           .wall_offset = HD_SEC(1700000000),
                           .signal_send = sig_send,
                           .signal_close = sig_close};
  assert_int_equal(hd_node_new(&w->node, &ncfg, g_cert_n), 0);
  mkaddr(&w->node_addr, "10.0.0.1", 7881);
  const char *plain[] = {"--delay", "25"};
  set_link(w, 0, NODE_EP, rc->up ? rc->up : plain, rc->up ? rc->nup : 2);
  set_link(w, NODE_EP, 0, plain, 2);
  set_link(w, 1, NODE_EP, plain, 2);
  set_link(w, NODE_EP, 1, rc->down ? rc->down : plain, rc->down ? rc->ndown : 2);
  int sub_no_twcc = rc->sub_no_twcc;
  for (int i = 0; i < 2; i++) {
    ep_t *e = &w->ep[i];
    char ip[32];
    snprintf(ip, sizeof ip, "10.0.0.%d", i + 2);
    mkaddr(&e->addr, ip, (uint16_t)(5000 + i));
    e->vtrack = e->atrack = e->rtrack = e->last_layer = -1;
    hd_pc_config_t cfg = {.cert = i ? g_cert_b : g_cert_a,
                          .local_ip = ip,
                          .local_port = (uint16_t)(5000 + i),
                          .wall_offset = HD_SEC(1700000000),
                          .no_fec = 1,
                          /* the encoder here does not follow the uplink estimate */
                          .no_pacing = i == 0 && !rc->adapt,
                          .no_twcc = i == 1 && sub_no_twcc,
                          .on_event = on_event,
                          .ud = e};
    assert_int_equal(hd_pc_new(&e->pc, &cfg), 0);
  }
  join_room(w, 0, "alice");
  join_room(w, 1, "bob");

  ep_t *pub = &w->ep[0], *sub = &w->ep[1];
  pub->atrack = hd_pc_add_transceiver(pub->pc, HD_PC_AUDIO, HD_PC_SENDONLY);
  pub->vtrack = hd_pc_add_transceiver(pub->pc, HD_PC_VIDEO, HD_PC_SENDONLY);
  pub->n_layers = rc->n_layers;
  pub->adapt = rc->adapt;
  if (rc->sdk) { /* as hudong pub publishes: microphone, then camera 640x360@30 */
    pub->sdk = calloc(1, sizeof *pub->sdk);
    assert_non_null(pub->sdk);
    pub->sdk->cfg.audio_bps = 32000;
    pub->sdk->cfg.max_video_bps = 1500000;
    hd_client_publish_t a = {.kind = HD_CLIENT_AUDIO}, v = {.kind = HD_CLIENT_VIDEO};
    assert_int_equal(cl_local_init(pub->sdk, 0, &a), 0);
    assert_int_equal(cl_local_init(pub->sdk, 1, &v), 0);
  }
  if (rc->n_layers > 1) assert_int_equal(hd_pc_set_simulcast(pub->pc, pub->vtrack, NLAYERS, RIDS), 0);
  static char sdp[32768], msg[65536];
  assert_true(hd_pc_create_offer(pub->pc, sdp, sizeof sdp, w->now) > 0);
  hd_signal_pub_track_t tr[2] = {{.cid = "mic",
                                  .mid = hd_pc_track_mid(pub->pc, 0),
                                  .kind = HD_SIGNAL_KIND_AUDIO,
                                  .source = HD_SIGNAL_SOURCE_MICROPHONE},
                                 {.cid = "cam",
                                  .mid = hd_pc_track_mid(pub->pc, 1),
                                  .kind = HD_SIGNAL_KIND_VIDEO,
                                  .source = HD_SIGNAL_SOURCE_CAMERA}};
  assert_true(hd_signal_write_publish_offer("p1", sdp, tr, 2, msg, sizeof msg) > 0);
  assert_int_equal(rtc_msg(w, 0, msg), 0);
  hd_signal_msg_t m;
  assert_int_equal(take(w, 0, HD_SIGNAL_PUBLISH_ANSWER, &m), 0);
  assert_int_equal(
      hd_pc_set_remote_answer(pub->pc, m.publish_answer.sdp, strlen(m.publish_answer.sdp), w->now), 0);
  hd_signal_msg_free(&m);
  assert_int_equal(hd_pc_track_layers(pub->pc, pub->vtrack), rc->n_layers);
  pub->sending = 1;

  assert_int_equal(take(w, 1, HD_SIGNAL_SUBSCRIBER_OFFER, &m), 0);
  for (size_t i = 0; i < m.subscriber_offer.n_tracks; i++)
    if (!strcmp(m.subscriber_offer.tracks[i].mid, "1") || i == 1)
      snprintf(w->cam_sid, sizeof w->cam_sid, "%s", m.subscriber_offer.tracks[i].track_sid);
  int n = hd_pc_answer_offer(sub->pc, m.subscriber_offer.sdp, strlen(m.subscriber_offer.sdp), sdp, sizeof sdp,
                             w->now);
  hd_signal_msg_free(&m);
  assert_true(n > 0);
  assert_int_equal(strstr(sdp, "transport-cc") != NULL, !sub_no_twcc);
  assert_true(hd_signal_write_subscriber_answer(NULL, sdp, msg, sizeof msg) > 0);
  assert_int_equal(rtc_msg(w, 1, msg), 0);
  assert_int_equal(hd_video_jb_init(&sub->jb, NULL), 0);
  sub->have_jb = 1;
  sub->delays = calloc(8192, sizeof *sub->delays);
  sub->jb_delays = calloc(8192, sizeof *sub->jb_delays);
  sub->adelays = calloc(8192, sizeof *sub->adelays);
  assert_true(sub->delays && sub->jb_delays && sub->adelays);
  assert_int_equal(hd_audio_jitter_init(&sub->ajb, NULL), 0);
  sub->have_ajb = 1;
  return w;
}

static void world_free(world_t *w) {
  for (int i = 0; i < 2; i++) {
    hd_pc_free(w->ep[i].pc);
    if (w->ep[i].sdk) {
      for (int k = 0; k < HD_CLIENT_MAX_LOCAL_TRACKS; k++)
        cl_local_free(&w->ep[i].sdk->local[k]);
      free(w->ep[i].sdk);
    }
    if (w->ep[i].have_jb) hd_video_jb_free(&w->ep[i].jb);
    free(w->ep[i].delays);
    free(w->ep[i].jb_delays);
    free(w->ep[i].adelays);
    if (w->ep[i].have_ajb) hd_audio_jitter_free(&w->ep[i].ajb);
  }
  for (int f = 0; f < 3; f++)
    for (int d = 0; d < 3; d++)
      hd_netem_link_free(w->nl[f][d]);
  hd_node_free(w->node);
  free(w->joined_text);
  for (int c = 0; c < 2; c++)
    for (int i = 0; i < w->n_msgs[c]; i++)
      free(w->msgs[c][i]);
  free(w);
}

static int cmp_time(const void *a, const void *b) {
  hd_time_t x = *(const hd_time_t *)a, y = *(const hd_time_t *)b;
  return x < y ? -1 : x > y;
}
static hd_time_t pctl(hd_time_t *v, size_t n, int p) {
  if (!n) return 0;
  qsort(v, n, sizeof *v, cmp_time);
  return v[(n - 1) * (size_t)p / 100];
}

typedef struct {
  hd_time_t a_p50, a_p95, a_max; /* audio capture -> arrival */
  hd_time_t a_target;            /* the audio buffer's target at the end */
  double a_concealed_pct;        /* concealed over played, watched part */
  uint64_t a_longest_run_ms;
  hd_time_t v_p50, v_p95; /* video capture -> render */
  double stall_pct, fps;
} aud_outcome_t;

/* Runs `secs` seconds, counting from `watch_from_s`. */
static void watch_audio(world_t *w, int secs, int watch_from_s, aud_outcome_t *o, const char *label) {
  ep_t *sub = &w->ep[1];
  hd_time_t t0 = w->now;
  memset(o, 0, sizeof *o);
  run_until(w, t0 + HD_SEC(watch_from_s));
  sub->watch_from = w->now;
  sub->n_adelays = sub->n_delays = 0;
  sub->rendered = 0;
  memset(&sub->fz, 0, sizeof sub->fz);
  uint64_t conc0 = sub->ajb.stats.concealed_ms, played0 = sub->ajb.stats.played_ms;
  hd_time_t from = w->now;
  for (int s = watch_from_s * 10 + 1; s <= secs * 10; s++) {
    run_until(w, t0 + HD_MS(100) * s);
    uint64_t est = 0;
    if (getenv("HD_TEST_TRACE")) {
      char *js = hd_node_admin_participants_json(w->node, "app", "room1");
      const char *b = js ? strstr(js, "\"identity\":\"bob\"") : NULL;
      const char *e = b ? strstr(b, "\"estimate_bps\":") : NULL;
      est = e ? strtoull(e + 15, NULL, 10) : 0;
      free(js);
      hd_netem_stats_t a, b2;
      hd_netem_link_stats(w->nl[0][NODE_EP], &a);
      hd_netem_link_stats(w->nl[NODE_EP][1], &b2);
      printf("   in up %llu B down %llu B; node est %llu; pub RED depth %d, video %llu\n",
             (unsigned long long)a.bytes_in, (unsigned long long)b2.bytes_in, (unsigned long long)est,
             w->ep[0].sdk ? w->ep[0].sdk->local[0].red_depth : -1,
             (unsigned long long)(w->ep[0].sdk ? w->ep[0].sdk->local[1].target_bps : 0));
      if (w->ep[0].pc->bwe) {
        hd_bwe_stats_t bs;
        hd_bwe_stats(w->ep[0].pc->bwe, &bs);
        printf("   pub bwe: target %llu delay %llu loss %llu acked %llu sent %llu usage %d thr %.1f fb %llu "
               "overuses %llu rtt %lld\n",
               (unsigned long long)bs.target_bps, (unsigned long long)bs.delay_bps,
               (unsigned long long)bs.loss_bps, (unsigned long long)bs.acked_bps,
               (unsigned long long)bs.sent_bps, (int)bs.usage, bs.threshold, (unsigned long long)bs.feedbacks,
               (unsigned long long)bs.overuses, (long long)bs.rtt);
      }
    }
    if (getenv("HD_TEST_TRACE"))
      printf("%s t=%4.1f pub_rate=%7llu held up %zu down %zu, audio target %lld ms last %lld ms\n", label,
             s / 10.0, (unsigned long long)w->ep[0].send_rate, hd_netem_link_held(w->nl[0][NODE_EP]),
             hd_netem_link_held(w->nl[NODE_EP][1]), (long long)(sub->ajb.stats.target_delay / 1000),
             (long long)(sub->n_adelays ? sub->adelays[sub->n_adelays - 1] / 1000 : -1));
  }
  hd_netem_stats_t up, down;
  hd_netem_link_stats(w->nl[0][NODE_EP], &up);
  hd_netem_link_stats(w->nl[NODE_EP][1], &down);
  printf("%s: link queueing delay p95 up %.0f ms, down %.0f ms; queue drops up %llu down %llu\n", label,
         (double)up.qdelay_p95 / 1e3, (double)down.qdelay_p95 / 1e3, (unsigned long long)up.drop_queue,
         (unsigned long long)down.drop_queue);
  double watched = (double)(w->now - from) / 1e6;
  o->stall_pct = watched > 0 ? 100.0 * sub->fz.freeze_us / 1e6 / watched : 0;
  o->fps = watched > 0 ? (double)sub->rendered / watched : 0;
  uint64_t played = sub->ajb.stats.played_ms - played0;
  o->a_concealed_pct = played ? 100.0 * (double)(sub->ajb.stats.concealed_ms - conc0) / (double)played : 100;
  o->a_longest_run_ms = sub->ajb.stats.max_concealed_run_ms;
  o->a_target = sub->ajb.stats.target_delay;
  o->a_p50 = pctl(sub->adelays, sub->n_adelays, 50);
  o->a_p95 = pctl(sub->adelays, sub->n_adelays, 95);
  o->a_max = pctl(sub->adelays, sub->n_adelays, 100);
  o->v_p50 = pctl(sub->delays, sub->n_delays, 50);
  o->v_p95 = pctl(sub->delays, sub->n_delays, 95);
  printf("%s: audio capture->arrival p50 %.0f p95 %.0f max %.0f ms, buffer target %.0f ms, concealed %.2f%% "
         "(longest run %llu ms); video capture->render p50 %.0f p95 %.0f ms, stall %.2f%%, %.1f fps\n",
         label, (double)o->a_p50 / 1e3, (double)o->a_p95 / 1e3, (double)o->a_max / 1e3,
         (double)o->a_target / 1e3, o->a_concealed_pct, (unsigned long long)o->a_longest_run_ms,
         (double)o->v_p50 / 1e3, (double)o->v_p95 / 1e3, o->stall_pct, o->fps);
}

/* bench/weak_network --rates 300 in virtual time: 300 kbit/s each way, a
 * 200 ms queue on both legs, watched from the start as the bench does. The
 * SDK started its video at the configured 300 kbit/s beside audio at its
 * start-up RED depth (5 x ~26 kbit/s): ~430 kbit/s into the uplink until the
 * first feedback, both queues filled, audio arrived up to 380 ms after
 * capture and played a 380 ms concealment run (the bench's "longest audio
 * gap" of 380-420 ms); now video starts at what the estimator's start rate
 * leaves after audio (client_media.c cl_local_init). */
static void test_audio_300k_start(void **st) {
  (void)st;
  const char *lim[] = {"--delay", "25", "--rate", "300", "--queue", "200"};
  room_cfg_t rc = {.up = lim, .nup = 6, .down = lim, .ndown = 6, .n_layers = 1, .adapt = 1, .sdk = 1};
  world_t *w = room_new(&rc);
  /* the budget before any estimate: video + audio with its RED copies within 90% of the start rate */
  const cl_local_t *a = &w->ep[0].sdk->local[0], *v = &w->ep[0].sdk->local[1];
  uint64_t audio = a->target_bps * (uint64_t)(1 + a->red_depth);
  printf("start plan: video %llu bit/s, audio %llu bit/s x %d\n", (unsigned long long)v->target_bps,
         (unsigned long long)a->target_bps, 1 + a->red_depth);
  uint64_t planned = v->target_bps + audio;
  aud_outcome_t o;
  watch_audio(w, 15, 0, &o, "300k both legs, from the start");
  assert_true(o.a_longest_run_ms <= 200);
  assert_true(o.a_p95 < HD_MS(300));
  assert_true(o.stall_pct < 2.0);
  assert_true(o.fps > 25);
  assert_true(planned <= 300000 * 9 / 10 + 1000);
  world_free(w);
}

/* The same link once settled (from 5 s to 30 s): audio goes around both
 * pacers and its arrival stays within ~60 ms of the propagation delay at the
 * 95th percentile, nothing is concealed, video keeps its frame rate. */
static void test_audio_300k_steady(void **st) {
  (void)st;
  const char *lim[] = {"--delay", "25", "--rate", "300", "--queue", "200"};
  room_cfg_t rc = {.up = lim, .nup = 6, .down = lim, .ndown = 6, .n_layers = 1, .adapt = 1, .sdk = 1};
  world_t *w = room_new(&rc);
  aud_outcome_t o;
  watch_audio(w, 30, 5, &o, "300k both legs, 5-30 s");
  assert_true(o.a_p95 < HD_MS(150));
  assert_true(o.a_concealed_pct < 0.5);
  assert_true(o.stall_pct < 2.0);
  assert_true(o.fps > 25);
  world_free(w);
}

static int group_setup(void **st) {
  (void)st;
  hd_log_set_level(HD_LOG_ERROR);
  assert_int_equal(hd_dtls_cert_generate(&g_cert_a), 0);
  assert_int_equal(hd_dtls_cert_generate(&g_cert_b), 0);
  assert_int_equal(hd_dtls_cert_generate(&g_cert_n), 0);
  return 0;
}

static int group_teardown(void **st) {
  (void)st;
  hd_dtls_cert_free(g_cert_a);
  hd_dtls_cert_free(g_cert_b);
  hd_dtls_cert_free(g_cert_n);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_audio_300k_start),
      cmocka_unit_test(test_audio_300k_steady),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
