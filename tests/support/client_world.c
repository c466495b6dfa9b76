/* The SDK publisher -> node -> SDK subscriber world (client_world.h). */
#include "client_world.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "media/rtp_payload.h"
#include "proto/sdp_offer.h"
#include "proto/token.h"
#include "check.h"
#include "netem_world.h"
#include "seeded_rand.h"
#include "signal_capture.h"

hd_dtls_cert_t *cw_cert_a, *cw_cert_b, *cw_cert_n;
static const int64_t UNIX_NOW = 1800000000;
static const char *const RIDS[CW_LAYERS] = {"q", "h", "f"};
/* layer bitrates of the synthetic encoder (payload bit/s) and picture sizes */
static const int LAYER_BPS[CW_LAYERS] = {150000, 450000, 1100000};
static const int LAYER_W[CW_LAYERS] = {320, 640, 1280}, LAYER_H[CW_LAYERS] = {180, 360, 720};

/* the signaling callbacks carry no world: one world at a time */
static cw_t *g_world;

int cw_setup_all(void **st) {
  (void)st;
  hd_log_set_level(HD_LOG_ERROR);
  /* The same three certificates every run (keys, ECDSA nonces, validity dates):
   * a handshake flight's size depends on the DER length of the signatures in it,
   * the certificate's own included (docs/testing.md, "Determinism"). */
  hd_test_rand_seed(CW_RAND_SEED);
  CHECK(hd_dtls_cert_generate_at(&cw_cert_a, UNIX_NOW) == 0);
  CHECK(hd_dtls_cert_generate_at(&cw_cert_b, UNIX_NOW) == 0);
  CHECK(hd_dtls_cert_generate_at(&cw_cert_n, UNIX_NOW) == 0);
  return 0;
}

int cw_teardown_all(void **st) {
  (void)st;
  hd_dtls_cert_free(cw_cert_a);
  hd_dtls_cert_free(cw_cert_b);
  hd_dtls_cert_free(cw_cert_n);
  return 0;
}

/* ---- synthetic VP8 (RFC 7741): descriptor with a 15-bit PictureID; the
 * payload header's P bit says keyframe; a keyframe carries its size ---- */

static size_t vp8_payload(uint8_t *out, int w, int h, uint16_t pid, int first, int key, size_t len) {
  hd_vp8_desc_t d;
  memset(&d, 0, sizeof d);
  d.start = (uint8_t)first;
  d.picture_id = pid & 0x7fff;
  d.picture_id_bits = 15;
  d.tl0picidx = -1;
  d.tid = -1;
  d.keyidx = -1;
  int dl = hd_vp8_desc_write(&d, out, 64);
  CHECK(dl > 0);
  memset(out + dl, 0x5A, len - (size_t)dl);
  uint8_t *p = out + dl;
  if (first) {
    p[0] = key ? 0x10 : 0x11; /* frame tag: P bit (bit 0) 0 = keyframe, show_frame */
    p[1] = p[2] = 0;
    if (key) {
      p[3] = 0x9d, p[4] = 0x01, p[5] = 0x2a;
      p[6] = (uint8_t)w, p[7] = (uint8_t)(w >> 8);
      p[8] = (uint8_t)h, p[9] = (uint8_t)(h >> 8);
    }
  }
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

static int cmp_time(const void *a, const void *b) {
  hd_time_t x = *(const hd_time_t *)a, y = *(const hd_time_t *)b;
  return x < y ? -1 : x > y;
}
hd_time_t cw_pctl(hd_time_t *v, size_t n, int p) {
  if (!n) return 0;
  qsort(v, n, sizeof *v, cmp_time);
  return v[(n - 1) * (size_t)p / 100];
}

/* ---- events ---- */

static void on_event(void *ud, const hd_pc_event_t *ev) {
  cw_ep_t *e = ud;
  cw_t *w = e->world;
  if (ev->type == HD_PC_EV_SEND_RATE) {
    e->send_rate = ev->bitrate_bps;
    if (e->sdk) { /* as client.c */
      cl_apply_send_rate(e->sdk, ev->bitrate_bps);
      hd_pc_set_send_desired(e->pc, cl_send_desired(e->sdk));
    }
    return;
  }
  if (ev->type == HD_PC_EV_KEYFRAME) {
    int l = ev->layer >= 0 && ev->layer < CW_LAYERS ? ev->layer : 0;
    e->force_key[l] = 1;
    return;
  }
  if (ev->type == HD_PC_EV_RTP && ev->rtp.kind == HD_PC_AUDIO && e->have_ajb && ev->rtp.payload_len >= 16) {
    if (!ev->rtp.rtx && w->now >= e->watch_from && e->n_adelays < CW_MAXDELAYS)
      e->adelays[e->n_adelays++] = w->now - read_capture(ev->rtp.payload, ev->rtp.payload_len);
    if (!e->next_pull) e->next_pull = w->now;
    if (ev->rtp.rtx)
      hd_audio_jitter_push_repair(&e->ajb, ev->rtp.seq, ev->rtp.ts, ev->rtp.payload, ev->rtp.payload_len, 0,
                                  0, w->now);
    else
      hd_audio_jitter_push(&e->ajb, ev->rtp.seq, ev->rtp.ts, ev->rtp.payload, ev->rtp.payload_len, w->now);
    return;
  }
  if (ev->type != HD_PC_EV_RTP || ev->rtp.kind != HD_PC_VIDEO || !e->have_jb) return;
  e->rtrack = ev->rtp.track;
  if (!e->first_ext) e->first_ext = ev->rtp.ext_seq;
  int64_t i = ev->rtp.ext_seq - e->first_ext;
  if (i >= 0 && i < CW_MAXSEQ) e->got[i] = 1;
  if (ev->rtp.ext_seq > e->max_ext) e->max_ext = ev->rtp.ext_seq;
  hd_frame_asm_pkt_t k = {.seq = ev->rtp.seq,
                          .ts = ev->rtp.ts,
                          .marker = ev->rtp.marker,
                          .payload = ev->rtp.payload,
                          .len = ev->rtp.payload_len};
  hd_video_jb_push(&e->jb, &k, w->now);
}

/* The subscriber's audio and video paths as client_media.c runs them. */
static void sub_drain(cw_t *w, cw_ep_t *e) {
  if (!e->have_jb) return;
  while (e->have_ajb && e->next_pull && e->next_pull <= w->now) { /* the SDK's 20 ms playout clock */
    hd_audio_jitter_out_t o;
    hd_audio_jitter_pull(&e->ajb, e->next_pull, &o);
    e->next_pull += HD_MS(20);
  }
  if (w->cfg.rtt_track_only) {
    if (e->rtrack >= 0) {
      hd_time_t rtt = hd_pc_track_repair_rtt(e->pc, e->rtrack);
      if (rtt > 0) hd_video_jb_set_rtt(&e->jb, rtt);
    }
  } else {
    hd_pc_stats_t *ps = malloc(sizeof *ps);
    CHECK(ps);
    hd_pc_stats(e->pc, ps);
    if (e->rtrack < ps->n_tracks && ps->tracks[e->rtrack].repair_rtt > 0)
      hd_video_jb_set_rtt(&e->jb, ps->tracks[e->rtrack].repair_rtt);
    else if (ps->rtt > 0)
      hd_video_jb_set_rtt(&e->jb, ps->rtt);
    free(ps);
  }
  int tagged = !w->cfg.untagged;
  hd_video_jb_event_t ev;
  while (hd_video_jb_poll(&e->jb, w->now, &ev) == 1) {
    if (ev.type == HD_VIDEO_JB_KEYFRAME_NEEDED) {
      if (hd_pc_request_keyframe(e->pc, e->rtrack, w->now) == 0) e->keyreqs++;
      continue;
    }
    if (tagged && ev.render && ev.frame.len >= 10) { /* for the trace, watched or not */
      hd_time_t d = w->now - read_capture(ev.frame.data, ev.frame.len);
      e->tr_last = d;
      if (d - ev.jb_delay < e->tr_lo) e->tr_lo = d - ev.jb_delay;
      if (d - ev.jb_delay > e->tr_hi) e->tr_hi = d - ev.jb_delay;
    }
    if (!ev.render || w->now < e->watch_from) continue;
    e->rendered++;
    if (tagged) {
      int layer = ev.frame.len ? ev.frame.data[ev.frame.len - 1] : -1;
      if (layer >= 0 && layer < CW_LAYERS) e->layer_frames[layer]++;
      e->last_layer = layer;
      if (ev.frame.len >= 10 && e->n_delays < CW_MAXDELAYS) {
        e->jb_delays[e->n_delays] = ev.jb_delay;
        e->delays[e->n_delays++] = w->now - read_capture(ev.frame.data, ev.frame.len);
      }
    }
    if (!e->first_frame_at) e->first_frame_at = w->now;
    e->last_frame_at = w->now;
    hd_freeze_frame(&e->fz, w->now);
  }
}

/* ---- wire ---- */

static int ep_of(cw_t *w, const struct sockaddr_storage *ss) {
  const struct sockaddr_in *b = (const struct sockaddr_in *)ss;
  for (int i = 0; i < 2; i++)
    if (b->sin_port == w->ep[i].addr.sin_port && b->sin_addr.s_addr == w->ep[i].addr.sin_addr.s_addr)
      return i;
  if (b->sin_port == w->node_addr.sin_port) return CW_NODE;
  return -1;
}

static const struct sockaddr_in *addr_of(cw_t *w, int i) {
  return i == CW_NODE ? &w->node_addr : &w->ep[i].addr;
}

uint64_t cw_trace_mix(uint64_t h, hd_time_t now, int from, int to, size_t len) {
  uint64_t v[4] = {(uint64_t)now, (uint64_t)from, (uint64_t)to, (uint64_t)len};
  if (!h) h = 0xcbf29ce484222325ull;
  for (int i = 0; i < 4; i++)
    for (int b = 0; b < 8; b++) {
      h ^= (v[i] >> (8 * b)) & 0xff;
      h *= 0x100000001b3ull;
    }
  return h;
}

/* The pub_fec_out slot of a publisher datagram that is a FlexFEC repair
 * packet (the SDK's pt; the RTP header is in clear under SRTP), -1 if not
 * one or no slot is left. */
static int pub_fec_slot(cw_t *w, const uint8_t *data, size_t len) {
  if (len <= 12 || (data[0] & 0xc0) != 0x80 || (data[1] & 0x7f) != HD_PC_PT_FLEXFEC) return -1;
  uint32_t ssrc = (uint32_t)data[8] << 24 | (uint32_t)data[9] << 16 | (uint32_t)data[10] << 8 | data[11];
  int k = 0;
  while (k < w->n_pub_fec_out && w->pub_fec_out[k].ssrc != ssrc)
    k++;
  if (k == w->n_pub_fec_out && k < CW_MAX_FEC_SSRCS) w->pub_fec_out[w->n_pub_fec_out++].ssrc = ssrc;
  return k < w->n_pub_fec_out ? k : -1;
}

static void push(cw_t *w, int from, int to, const uint8_t *data, size_t len) {
  if (to < 0) return;
  w->trace_n++;
  w->trace_hash = cw_trace_mix(w->trace_hash, w->now, from, to, len);
  if (from == CW_NODE && to == 1 && len > 12 && (data[0] & 0xc0) == 0x80) {
    int pt = data[1] >= 192 && data[1] <= 223 ? 255 : data[1] & 0x7f;
    w->pt_bytes[pt] += len;
    w->pt_pkts[pt]++;
    if (pt == HD_SDP_OFFER_PT_FLEXFEC) { /* the RTP header is in clear under SRTP */
      uint32_t ssrc = (uint32_t)data[8] << 24 | (uint32_t)data[9] << 16 | (uint32_t)data[10] << 8 | data[11];
      int k = 0;
      while (k < w->n_fec_out && w->fec_out[k].ssrc != ssrc)
        k++;
      if (k == w->n_fec_out && k < CW_MAX_FEC_SSRCS) w->fec_out[w->n_fec_out++].ssrc = ssrc;
      if (k < w->n_fec_out) {
        w->fec_out[k].pkts++;
        w->fec_out[k].last = w->now;
      }
    }
  }
  int k = from == 0 && to == CW_NODE ? pub_fec_slot(w, data, len) : -1;
  if (k >= 0) {
    uint16_t seq = (uint16_t)(data[2] << 8 | data[3]);
    if (!w->pub_fec_out[k].pkts) w->pub_fec_out[k].max_seq = (uint16_t)(seq - 1);
    if ((int16_t)(seq - w->pub_fec_out[k].max_seq) > 0)
      w->pub_fec_out[k].max_seq = seq;
    else
      w->pub_fec_out[k].not_ahead++;
    w->pub_fec_out[k].pkts++;
    w->pub_fec_out[k].last = w->now;
  }
  hd_netem_link_send(w->nl[from][to], data, len, w->now);
}

void cw_pump(hd_node_t *node, int node_index, hd_pc_t *const pcs[2], hd_time_t now, cw_send_fn send,
             void *ctx) {
  if (node) {
    hd_txq_t *q = hd_node_txq(node);
    hd_datagram_t *d;
    while ((d = hd_txq_peek(q)) != NULL) {
      send(ctx, node_index, &d->to, d->data, d->len);
      hd_txq_pop(q);
    }
  }
  for (int i = 0; i < 2; i++) {
    uint8_t buf[1500];
    struct sockaddr_storage to;
    socklen_t tl;
    int n;
    while (pcs[i] && (n = hd_pc_poll(pcs[i], buf, sizeof buf, &to, &tl, now)) > 0)
      send(ctx, i, &to, buf, (size_t)n);
  }
}

static void send_to(void *ctx, int from, const struct sockaddr_storage *to, const uint8_t *data, size_t len) {
  cw_t *w = ctx;
  push(w, from, ep_of(w, to), data, len);
}

static void drain(cw_t *w) {
  hd_pc_t *const pcs[2] = {w->ep[0].pc, w->ep[1].pc};
  cw_pump(w->node, CW_NODE, pcs, w->now, send_to, w);
}

/* The publisher's synthetic encoder: audio 50 packets/s (with the SDK's
 * policy: RED of its planned rate); video 30 fps on every layer, each frame
 * its layer's rate / 30 bytes (one stream: 450 kbit/s, or what follows the
 * estimate) in packets of <= 1000 (a keyframe 3x that), the first frame of
 * each layer and any asked for a keyframe. */
static void media(cw_t *w, cw_ep_t *e) {
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
    if (w->cfg.sub_audio) stamp_capture(pl, alen, e->next_audio);
    hd_pc_rtp_send_t p = {.track = e->atrack,
                          .ts = e->audio_n++ * 960,
                          .payload = pl,
                          .len = alen,
                          .audio_level = 30,
                          .voice = 1};
    hd_pc_send_rtp(e->pc, &p, w->now);
    e->next_audio += HD_MS(20);
  }
  int tagged = !w->cfg.untagged;
  int64_t adapt_max = w->cfg.adapt_max ? w->cfg.adapt_max : LAYER_BPS[2];
  while (e->next_video <= w->now) {
    for (int l = 0; l < e->n_layers && !e->video_off; l++) {
      int key = e->frame == 0 || e->force_key[l];
      e->force_key[l] = 0;
      int64_t bps = LAYER_BPS[e->n_layers == 1 ? 1 : l];
      if (e->sdk) { /* the SDK's video target: cl_local_init, then cl_apply_send_rate */
        bps = (int64_t)e->sdk->local[1].target_bps;
      } else if (e->adapt) { /* cl_apply_send_rate: 90% of the target less audio */
        bps = (int64_t)(e->send_rate ? e->send_rate : 300000) * 9 / 10 - 24000;
        if (bps < 50000) bps = 50000;
        if (bps > adapt_max) bps = adapt_max;
      }
      size_t bytes = (size_t)bps / 8 / 30 * (key ? 3 : 1);
      int n = (int)((bytes + 999) / 1000);
      size_t each = bytes / (size_t)n;
      for (int i = 0; i < n; i++) {
        size_t len = tagged ? vp8_payload(pl, LAYER_W[l], LAYER_H[l], e->pid[l], i == 0, key, each)
                            : vp8_payload(pl, 640, 360, e->pid[l], i == 0, key, each);
        if (tagged) {
          pl[len - 1] = (uint8_t)l; /* the subscriber tells the layers apart by this */
          if (i == n - 1) stamp_capture(pl, len, e->next_video);
        }
        hd_pc_rtp_send_t p = {.track = e->vtrack,
                              .ts = e->frame * 3000,
                              .marker = i == n - 1,
                              .payload = pl,
                              .len = len,
                              .audio_level = -1,
                              .layer = e->n_layers > 1 ? l : 0};
        int src = hd_pc_send_rtp(e->pc, &p, w->now);
        if (src == HD_ENOSPC) { /* the pc's queue is full: the packet is lost, as in an app */
          e->send_full++;
          continue;
        }
        CHECK(src == 0);
      }
      e->pid[l]++;
    }
    e->frame++;
    e->next_video += HD_MS(33);
  }
}

void cw_run_until(cw_t *w, hd_time_t end) {
  for (long guard = 0;; guard++) {
    CHECK(guard < 50000000);
    drain(w);
    hd_time_t t = hd_node_next_timeout(w->node);
    for (int i = 0; i < 2; i++) {
      cw_ep_t *e = &w->ep[i];
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
          int k = f == 0 && d == CW_NODE ? pub_fec_slot(w, tmp, (size_t)n) : -1;
          if (k >= 0) w->pub_fec_out[k].delivered++;
          if (d == CW_NODE)
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
  if (g_world->n_msgs[c] < 64) g_world->msgs[c][g_world->n_msgs[c]++] = strndup(text, len);
}
static void sig_close(void *ud, void *conn, int code, const char *reason) {
  (void)ud, (void)conn, (void)code, (void)reason;
}
static const char *lookup(void *ud, const char *key) {
  (void)ud;
  return !strcmp(key, "app") ? "secret" : NULL;
}

int cw_rtc_msg(cw_t *w, int c, const char *text) {
  return hd_node_rtc_message(w->node, (void *)(intptr_t)c, &w->part[c], text, strlen(text), lookup, NULL,
                             UNIX_NOW, w->now);
}

int cw_take(cw_t *w, int c, hd_signal_type_t type, hd_signal_msg_t *m) {
  return hd_test_take_signal(w->msgs[c], &w->n_msgs[c], type, m);
}

/* Joins as `identity`; flexfec: with "flexfec":true, as the SDK client joins
 * when its subscriber pc takes FlexFEC (client/rtc_signal.c). */
static void join_room(cw_t *w, int c, const char *identity, int flexfec) {
  char msg[HD_TOKEN_MAX + 256], fmsg[HD_TOKEN_MAX + 300];
  CHECK(hd_test_join_msg(identity, UNIX_NOW, msg, sizeof msg) > 0);
  CHECK(msg[0] == '{');
  snprintf(fmsg, sizeof fmsg, "{\"flexfec\":true,%s", msg + 1);
  CHECK(cw_rtc_msg(w, c, flexfec ? fmsg : msg) == 0);
  for (int i = 0; c == 1 && i < w->n_msgs[c]; i++)
    if (strstr(w->msgs[c][i], "\"type\":\"joined\"")) w->joined_text = strdup(w->msgs[c][i]);
  hd_signal_msg_t m;
  CHECK(cw_take(w, c, HD_SIGNAL_JOINED, &m) == 0);
  hd_signal_msg_free(&m);
}

static void drop_fec(char *sdp, int fec_pt);

/* The publisher's (re)negotiation: an offer from its pc naming the
 * microphone and, with cam_cid, the camera (its current transceiver); the
 * node's answer applied (FlexFEC taken out of either as w says). */
static void publish(cw_t *w, const char *mic_cid, const char *cam_cid) {
  static char sdp[32768], msg[65536];
  cw_ep_t *e = &w->ep[0];
  hd_pc_t *pc = e->pc;
  CHECK(hd_pc_create_offer(pc, sdp, sizeof sdp, w->now) > 0);
  if (w->pub_offer_drop_fec) drop_fec(sdp, HD_PC_PT_FLEXFEC);
  snprintf(w->pub_offer, sizeof w->pub_offer, "%s", sdp);
  hd_signal_pub_track_t tr[2];
  size_t nt = 0;
  if (mic_cid)
    tr[nt++] = (hd_signal_pub_track_t){.cid = mic_cid,
                                       .mid = hd_pc_track_mid(pc, e->atrack),
                                       .kind = HD_SIGNAL_KIND_AUDIO,
                                       .source = HD_SIGNAL_SOURCE_MICROPHONE};
  if (cam_cid)
    tr[nt++] = (hd_signal_pub_track_t){.cid = cam_cid,
                                       .mid = hd_pc_track_mid(pc, e->vtrack),
                                       .kind = HD_SIGNAL_KIND_VIDEO,
                                       .source = HD_SIGNAL_SOURCE_CAMERA};
  CHECK(hd_signal_write_publish_offer("p1", sdp, tr, nt, msg, sizeof msg) > 0);
  CHECK(cw_rtc_msg(w, 0, msg) == 0);
  hd_signal_msg_t m;
  CHECK(cw_take(w, 0, HD_SIGNAL_PUBLISH_ANSWER, &m) == 0);
  snprintf(w->pub_answer, sizeof w->pub_answer, "%s", m.publish_answer.sdp);
  hd_signal_msg_free(&m);
  if (w->pub_answer_drop_fec) drop_fec(w->pub_answer, HD_PC_PT_FLEXFEC);
  if (w->pub_before_answer) w->pub_before_answer(w);
  CHECK(hd_pc_set_remote_answer(pc, w->pub_answer, strlen(w->pub_answer), w->now) == 0);
}

void cw_publish(cw_t *w, const char *cam_cid) { cw_publish2(w, "mic", cam_cid); }

void cw_publish2(cw_t *w, const char *mic_cid, const char *cam_cid) {
  publish(w, mic_cid, cam_cid);
  cw_answer_subscriber(w);
}

/* Takes FlexFEC payload type fec_pt out of SDP text sdp (in place): from the
 * m= lines, its rtpmap/fmtp lines, and the FEC-FR ssrc-groups (RFC 8627
 * §5.1.3) with them. */
static void drop_fec(char *sdp, int fec_pt) {
  char pt[8], *p;
  int pl = snprintf(pt, sizeof pt, " %d", fec_pt);
  for (char *m = sdp; (m = strstr(m, "m=video ")) != NULL; m++) {
    char *eol = strstr(m, "\r\n");
    if (eol && (p = strstr(m, pt)) && p < eol && (p[pl] == '\r' || p[pl] == ' '))
      memmove(p, p + pl, strlen(p + pl) + 1);
  }
  char key[32];
  for (int k = 0; k < 3; k++) {
    if (k == 2)
      snprintf(key, sizeof key, "a=ssrc-group:FEC-FR ");
    else
      snprintf(key, sizeof key, k ? "a=fmtp:%d " : "a=rtpmap:%d ", fec_pt);
    while ((p = strstr(sdp, key)) != NULL) {
      char *eol = strstr(p, "\r\n");
      CHECK(eol);
      memmove(p, eol + 2, strlen(eol + 2) + 1);
    }
  }
}

int cw_answer_subscriber(cw_t *w) {
  static char sdp[32768], msg[65536];
  int answered = 0;
  hd_signal_msg_t m;
  while (cw_take(w, 1, HD_SIGNAL_SUBSCRIBER_OFFER, &m) == 0) {
    snprintf(w->offer, sizeof w->offer, "%s", m.subscriber_offer.sdp);
    int n = hd_pc_answer_offer(w->ep[1].pc, m.subscriber_offer.sdp, strlen(m.subscriber_offer.sdp), sdp,
                               sizeof sdp, w->now);
    hd_signal_msg_free(&m);
    CHECK(n > 0);
    if (w->answer_drop_fec) drop_fec(sdp, HD_SDP_OFFER_PT_FLEXFEC);
    snprintf(w->answer, sizeof w->answer, "%s", sdp);
    CHECK(hd_signal_write_subscriber_answer(NULL, sdp, msg, sizeof msg) > 0);
    CHECK(cw_rtc_msg(w, 1, msg) == 0);
    CHECK(cw_take(w, 1, HD_SIGNAL_ERROR, &m) == HD_ENOTFOUND);
    answered++;
  }
  return answered;
}

void cw_unpublish_camera(cw_t *w) {
  w->ep[0].video_off = 1;
  cw_publish2(w, "mic", NULL);
}

void cw_republish_camera(cw_t *w, const char *cam_cid) {
  cw_ep_t *e = &w->ep[0];
  CHECK(e->n_layers == 1); /* one stream: a simulcast camera would need its rids set again */
  int t = hd_pc_add_transceiver(e->pc, HD_PC_VIDEO, HD_PC_SENDONLY);
  CHECK(t >= 0);
  e->vtrack = t;
  e->video_off = 0;
  e->force_key[0] = 1; /* a new stream starts with a keyframe */
  cw_publish2(w, "mic", cam_cid);
}

uint64_t cw_pub_fec_out(const cw_t *w, uint32_t ssrc) {
  for (int k = 0; k < w->n_pub_fec_out; k++)
    if (w->pub_fec_out[k].ssrc == ssrc) return w->pub_fec_out[k].pkts;
  return 0;
}

uint64_t cw_pub_fec_delivered(const cw_t *w, uint32_t ssrc) {
  for (int k = 0; k < w->n_pub_fec_out; k++)
    if (w->pub_fec_out[k].ssrc == ssrc) return w->pub_fec_out[k].delivered;
  return 0;
}

uint64_t cw_fec_out(const cw_t *w, uint32_t ssrc) {
  for (int k = 0; k < w->n_fec_out; k++)
    if (w->fec_out[k].ssrc == ssrc) return w->fec_out[k].pkts;
  return 0;
}

static void mkaddr(struct sockaddr_in *a, const char *ip, uint16_t port) {
  memset(a, 0, sizeof *a);
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  inet_pton(AF_INET, ip, &a->sin_addr);
}

/* `hudong netem` options for the link from -> to (seeded by direction and seed). */
static void set_link(cw_t *w, int from, int to, const char *const *argv, size_t argc) {
  static const char *const plain[] = {"--delay", "25"};
  hd_netem_opts_t o;
  if (argv)
    netem_opts_from(&o, argv, argc);
  else
    netem_opts_from(&o, plain, 2);
  CHECK(hd_netem_link_new(&w->nl[from][to], &o.dir[0], w->cfg.seed * 16 + 7 + (uint64_t)(from * 3 + to),
                          w->now) == 0);
}

cw_t *cw_new(const cw_cfg_t *cfg) {
  cw_t *w = calloc(1, sizeof *w);
  CHECK(w);
  g_world = w;
  w->cfg = *cfg;
  /* every SSRC, ufrag, sequence start, DTLS/SRTP key from one stream per world:
   * a world is the same whatever ran before it in the process */
  hd_test_rand_seed(CW_RAND_SEED ^ (cfg->seed * 0x9e3779b97f4a7c15ull));
  if (!w->cfg.n_layers) w->cfg.n_layers = CW_LAYERS;
  const cw_cfg_t *rc = &w->cfg;
  w->now = HD_SEC(500);
  hd_node_config_t ncfg = {.rtc_ip = "10.0.0.1",
                           .rtc_port = 7881,
                           .wall_offset = HD_SEC(1700000000),
                           .signal_send = sig_send,
                           .signal_close = sig_close};
  CHECK(hd_node_new(&w->node, &ncfg, cw_cert_n) == 0);
  mkaddr(&w->node_addr, "10.0.0.1", 7881);
  set_link(w, 0, CW_NODE, rc->up, rc->nup);
  set_link(w, CW_NODE, 0, rc->pdown, rc->npdown);
  set_link(w, 1, CW_NODE, rc->vup, rc->nvup);
  set_link(w, CW_NODE, 1, rc->down, rc->ndown);
  for (int i = 0; i < 2; i++) {
    cw_ep_t *e = &w->ep[i];
    e->world = w;
    char ip[32];
    snprintf(ip, sizeof ip, "10.0.0.%d", i + 2);
    mkaddr(&e->addr, ip, (uint16_t)(5000 + i));
    e->vtrack = e->atrack = e->rtrack = e->last_layer = -1;
    hd_pc_config_t pcfg = {.cert = i ? cw_cert_b : cw_cert_a,
                           .local_ip = ip,
                           .local_port = (uint16_t)(5000 + i),
                           .wall_offset = HD_SEC(1700000000),
                           .no_fec = i == 0 ? !rc->pub_fec : !rc->sub_fec,
                           /* an encoder that does not follow the uplink estimate is not paced */
                           .no_pacing = i == 0 && !rc->adapt,
                           .probe = i == 0 && rc->pub_probe,
                           .probe_interval = i == 0 ? rc->pub_probe_interval : 0,
                           .app_limit_factor = i == 0 ? rc->pub_app_limit : 0,
                           .no_twcc = i == 1 && rc->sub_no_twcc,
                           .on_event = on_event,
                           .ud = e};
    CHECK(hd_pc_new(&e->pc, &pcfg) == 0);
  }
  join_room(w, 0, "alice", 0);
  join_room(w, 1, "bob", rc->sub_fec);

  cw_ep_t *pub = &w->ep[0], *sub = &w->ep[1];
  pub->atrack = hd_pc_add_transceiver(pub->pc, HD_PC_AUDIO, HD_PC_SENDONLY);
  pub->vtrack = hd_pc_add_transceiver(pub->pc, HD_PC_VIDEO, HD_PC_SENDONLY);
  pub->n_layers = rc->n_layers;
  pub->adapt = rc->adapt;
  if (rc->n_layers > 1) CHECK(hd_pc_set_simulcast(pub->pc, pub->vtrack, CW_LAYERS, RIDS) == 0);
  if (rc->sdk) { /* as hudong pub publishes: microphone, then camera 640x360@30 */
    pub->sdk = calloc(1, sizeof *pub->sdk);
    CHECK(pub->sdk);
    pub->sdk->cfg.audio_bps = 32000;
    pub->sdk->cfg.max_video_bps = 1500000;
    hd_client_publish_t a = {.kind = HD_CLIENT_AUDIO}, v = {.kind = HD_CLIENT_VIDEO};
    CHECK(cl_local_init(pub->sdk, 0, &a) == 0);
    CHECK(cl_local_init(pub->sdk, 1, &v) == 0);
  }
  static char sdp[32768], msg[65536];
  w->pub_offer_drop_fec = rc->pub_fec_later;
  publish(w, "mic", rc->mic_only_first ? NULL : "cam");
  w->pub_offer_drop_fec = 0;
  CHECK(hd_pc_track_layers(pub->pc, pub->vtrack) == rc->n_layers);
  pub->sending = 1;
  hd_signal_msg_t m;

  CHECK(cw_take(w, 1, HD_SIGNAL_SUBSCRIBER_OFFER, &m) == 0);
  for (size_t i = 0; i < m.subscriber_offer.n_tracks; i++)
    if (!strcmp(m.subscriber_offer.tracks[i].mid, "1") || i == 1)
      snprintf(w->cam_sid, sizeof w->cam_sid, "%s", m.subscriber_offer.tracks[i].track_sid);
  snprintf(w->offer, sizeof w->offer, "%s", m.subscriber_offer.sdp);
  int n = hd_pc_answer_offer(sub->pc, m.subscriber_offer.sdp, strlen(m.subscriber_offer.sdp), sdp, sizeof sdp,
                             w->now);
  hd_signal_msg_free(&m);
  CHECK(n > 0);
  snprintf(w->answer, sizeof w->answer, "%s", sdp);
  CHECK((strstr(sdp, "transport-cc") != NULL) == !rc->sub_no_twcc);
  CHECK(hd_signal_write_subscriber_answer(NULL, sdp, msg, sizeof msg) > 0);
  CHECK(cw_rtc_msg(w, 1, msg) == 0);
  CHECK(cw_take(w, 1, HD_SIGNAL_ERROR, &m) == HD_ENOTFOUND);
  CHECK(hd_video_jb_init(&sub->jb, NULL) == 0);
  sub->have_jb = 1;
  sub->delays = calloc(CW_MAXDELAYS, sizeof *sub->delays);
  sub->jb_delays = calloc(CW_MAXDELAYS, sizeof *sub->jb_delays);
  CHECK(sub->delays && sub->jb_delays);
  if (rc->sub_audio) {
    sub->adelays = calloc(CW_MAXDELAYS, sizeof *sub->adelays);
    CHECK(sub->adelays);
    CHECK(hd_audio_jitter_init(&sub->ajb, NULL) == 0);
    sub->have_ajb = 1;
  }
  return w;
}

void cw_free(cw_t *w) {
  for (int i = 0; i < 2; i++) {
    cw_ep_t *e = &w->ep[i];
    if (e->sdk) {
      for (int k = 0; k < HD_CLIENT_MAX_LOCAL_TRACKS; k++)
        cl_local_free(&e->sdk->local[k]);
      free(e->sdk);
    }
    hd_pc_free(e->pc);
    if (e->have_jb) hd_video_jb_free(&e->jb);
    if (e->have_ajb) hd_audio_jitter_free(&e->ajb);
    free(e->delays);
    free(e->jb_delays);
    free(e->adelays);
  }
  for (int f = 0; f < 3; f++)
    for (int d = 0; d < 3; d++)
      hd_netem_link_free(w->nl[f][d]);
  hd_node_free(w->node);
  free(w->joined_text);
  for (int c = 0; c < 2; c++)
    for (int i = 0; i < w->n_msgs[c]; i++)
      free(w->msgs[c][i]);
  if (g_world == w) g_world = NULL;
  free(w);
}

uint64_t cw_estimate(cw_t *w, int *paused) {
  char *js = hd_node_admin_participants_json(w->node, "app", "room1");
  const char *b = js ? strstr(js, "\"identity\":\"bob\"") : NULL;
  const char *e = b ? strstr(b, "\"estimate_bps\":") : NULL;
  uint64_t est = e ? strtoull(e + 15, NULL, 10) : 0;
  if (paused) *paused = b && strstr(b, "\"paused\":true") != NULL;
  free(js);
  return est;
}

double cw_stall_pct(cw_t *w) {
  const cw_ep_t *sub = &w->ep[1];
  hd_time_t watched = w->now - sub->watch_from;
  double frozen = sub->fz.freeze_us;
  if (sub->last_frame_at && w->now - sub->last_frame_at > HD_MS(500))
    frozen += (double)(w->now - sub->last_frame_at);
  if (!sub->last_frame_at) frozen = (double)watched;
  return 100.0 * frozen / (double)watched;
}
