/* The forward path of a session: each viewer's copy of a publisher's packet
 * (see session_forward.h). */
#include "sfu/session_forward.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "media/rtp_payload.h"
#include "sfu/session_pace.h"
#include "sfu/session_resend.h"

/* Builds the viewer's version of a source packet with the given out seq/ts. */
int hd_session_build_out(const hd_session_t *v, const hd_out_track_t *t, const hd_session_t *pub,
                         const hd_rtp_hdr_t *h, uint16_t seq, uint32_t ts, hd_time_t now, uint8_t *out,
                         size_t cap) {
  hd_rtp_ext_t exts[5];
  size_t n = 0;
  uint8_t ast[3], lvl[1], tw[2], pd[3];
  if (t->ext_twcc) { /* the seq of this packet: tw_sent() counts it once it is committed */
    hd_rtp_twcc_seq_write(tw, v->tw_seq);
    exts[n].id = t->ext_twcc;
    exts[n].len = 2;
    exts[n].data = tw;
    n++;
  }
  if (t->ext_mid && t->mid[0]) {
    exts[n].id = t->ext_mid;
    exts[n].len = (uint8_t)strlen(t->mid);
    exts[n].data = (const uint8_t *)t->mid;
    n++;
  }
  if (t->ext_abs_send_time) {
    hd_rtp_abs_send_time_write(ast, hd_rtp_abs_send_time_from_us(now));
    exts[n].id = t->ext_abs_send_time;
    exts[n].len = 3;
    exts[n].data = ast;
    n++;
  }
  if (t->ext_playout_delay && t->playout_on) { /* see update_playout_delay */
    hd_rtp_playout_delay_write(pd, t->playout_min_ms, HD_SEC(10) / 1000);
    exts[n].id = t->ext_playout_delay;
    exts[n].len = 3;
    exts[n].data = pd;
    n++;
  }
  if (t->ext_audio_level && pub && pub->ext_audio_level_in) {
    const uint8_t *d;
    size_t dl;
    if (hd_rtp_ext_find(h, pub->ext_audio_level_in, &d, &dl) == 0 && dl >= 1) {
      lvl[0] = d[0];
      exts[n].id = t->ext_audio_level;
      exts[n].len = 1;
      exts[n].data = lvl;
      n++;
    }
  }
  /* RED from the publisher (RFC 2198): passed on to a viewer that negotiated
   * it (block payload types in the viewer's numbering), else unwrapped to its
   * primary block, plain Opus */
  uint8_t pt = t->pt;
  const uint8_t *pl = h->payload;
  size_t plen = h->payload_len;
  const hd_in_track_t *red_src = NULL;
  for (int i = 0; t->kind == HD_TRACK_AUDIO && pub && i < pub->n_in; i++)
    if (pub->in[i].red_pt && h->pt == pub->in[i].red_pt && pub->in[i].ssrc == h->ssrc) red_src = &pub->in[i];
  int red_in = red_src != NULL;
  if (red_in && t->red_pt) {
    pt = t->red_pt;
  } else if (red_in) {
    uint8_t bpt;
    if (hd_red_primary(h->payload, h->payload_len, &bpt, &pl, &plen) < 0 || plen == 0) return HD_EPROTO;
  }
  hd_rtp_build_t b = {
      .pt = pt, .marker = h->marker, .seq = seq, .ts = ts, .ssrc = t->ssrc, .exts = exts, .ext_count = n};
  int len = hd_rtp_build(&b, pl, plen, out, cap);
  if (len > 0 && red_in && t->red_pt && red_src->pt != t->pt)
    hd_red_rewrite_pt(out + len - plen, plen, red_src->pt, t->pt);
  return len;
}

static int codec_matches(const hd_out_track_t *o, const hd_in_track_t *i) {
  if (o->codec_id != i->codec_id || o->clock != i->clock) return 0;
  if (o->codec_id == CODEC_OTHER && strcasecmp(o->codec, i->codec) != 0) return 0;
  if (o->codec_id == CODEC_H264) return hd_sdp_h264_same_profile(o->fmtp, i->fmtp);
  return 1;
}

/* 1 if viewer track t follows publisher pub's track in_idx (any layer of it). */
static int follows(const hd_out_track_t *t, const hd_session_t *pub, int in_idx) {
  if (!t->active) return 0;
  int head = pub->in[in_idx].head;
  if (t->src) return t->src == pub && t->src_in == head;
  if (!t->follow_room_pub || !pub->room_publisher) return 0;
  return pub->in[in_idx].kind == t->kind && hd_session_first_in(pub, t->kind) == head;
}

/* The group head an out track follows in pub (src_in, or for WHEP the room
 * publisher's first track of its kind), or -1. */
int hd_session_followed_head(const hd_out_track_t *t, const hd_session_t *pub) {
  if (!pub) return -1;
  int idx = t->src ? t->src_in : hd_session_first_in(pub, t->kind);
  return idx >= 0 && idx < pub->n_in ? idx : -1;
}

/* Layer gate of a simulcast source: 1 if in_idx's packet goes to t now. A
 * switch to the wanted layer happens on its keyframe (the subscriber's decoder
 * cannot start a VP8/H.264 stream anywhere else). */
static int layer_pass(hd_out_track_t *t, const hd_session_t *pub, int in_idx, hd_session_counters_t *c) {
  const hd_in_track_t *head = &pub->in[pub->in[in_idx].head];
  if (head->n_layers <= 1 && !t->gated) return 1;
  if (t->cur_in >= 0 && (t->cur_in >= pub->n_in || pub->in[t->cur_in].head != pub->in[in_idx].head))
    t->cur_in = -1;     /* bound to another source since */
  if (t->want_in < 0) { /* paused: nothing fits */
    t->cur_in = -1;
    return 0;
  }
  if (in_idx == t->cur_in) return 1;
  if (in_idx != t->want_in || !pub->in[in_idx].last_pkt_key) return 0;
  t->cur_in = in_idx;
  if (c) c->layer_switches++;
  return 1;
}
/* A padding-only packet on t's media stream as out seq `seq` (a seq the
 * temporal filter kept for a packet of a layer this viewer does not get,
 * sfu/temporal.h): fills the viewer's sequence without a payload. */
int hd_session_send_media_padding(hd_session_t *v, hd_out_track_t *t, uint16_t seq, uint32_t ts, int again,
                                  hd_time_t now, hd_session_counters_t *c) {
  size_t cap;
  uint8_t *out = hd_peer_tx_begin(&v->peer, &cap);
  if (!out) return HD_ENOSPC;
  hd_rtp_ext_t ext[1];
  uint8_t tw[2];
  size_t ne = 0;
  if (t->ext_twcc) {
    hd_rtp_twcc_seq_write(tw, v->tw_seq);
    ext[ne++] = (hd_rtp_ext_t){t->ext_twcc, 2, tw};
  }
  hd_rtp_build_t b = {
      .pt = t->pt, .seq = seq, .ts = ts, .ssrc = t->ssrc, .exts = ext, .ext_count = ne, .pad_len = 4};
  uint8_t tmp[64];
  int n = hd_rtp_build(&b, NULL, 0, again ? tmp : out, again ? sizeof tmp : cap);
  if (n < 0 || !again) return n < 0 ? n : hd_session_pace_send(v, t, out, (size_t)n, HD_PACE_RTX, now, c);
  /* again: only as RTX. The same seq on the media SSRC is the same SRTP index
   * and these bytes differ from the first send (a new transport-wide seq):
   * under AES-GCM one IV for two plaintexts gives the tag key away (RFC 7714
   * §8.3); without RTX the placeholder is not sent again */
  if (!t->rtx_enabled) return HD_EPROTO;
  if ((n = hd_session_wrap_rtx(t, tmp, (size_t)n, out, cap)) < 0) return n;
  return hd_session_pace_send(v, t, out, (size_t)n, HD_PACE_RTX, now, c);
}

/* The temporal layer filter's verdict on a VP8 packet for t (HD_TL_*), with
 * the seq to hand to the rewriter in *seq. Without temporal layers in the
 * stream, or all of them wanted and none dropped so far: forwarded as is. */
static int temporal_pass(hd_out_track_t *t, const hd_rtp_hdr_t *h, uint16_t *seq) {
  *seq = h->seq;
  if (t->codec_id != CODEC_VP8 || (!t->tl && t->want_tid >= HD_TL_ALL)) return HD_TL_FORWARD;
  hd_tl_pkt_t k;
  if (hd_tl_pkt_from_vp8(h->payload, h->payload_len, &k) < 0 || (!t->tl && k.tid < 0)) return HD_TL_FORWARD;
  if (!t->tl) {
    t->tl = malloc(sizeof *t->tl);
    if (!t->tl) return HD_TL_FORWARD;
    hd_tl_filter_init(t->tl);
    hd_tl_filter_set_target(t->tl, t->want_tid);
  }
  return hd_tl_filter_feed(t->tl, h->ssrc, h->seq, &k, seq);
}

/* The PictureID and TL0PICIDX the viewer sees, in the packet built at out. */
void hd_session_vp8_out(hd_out_track_t *t, uint32_t src_ssrc, uint8_t *payload, size_t len, int advance) {
  if (t->tl) hd_tl_filter_rewrite_pid(t->tl, payload, len);
  hd_vp8_rewrite(&t->vp8, src_ssrc, payload, len, advance);
}

static void forward_one(hd_session_t *v, hd_out_track_t *t, const hd_session_t *pub, int in_idx,
                        const hd_rtp_hdr_t *h, hd_time_t now, hd_session_counters_t *c) {
  if (!codec_matches(t, &pub->in[in_idx])) return;
  if (!layer_pass(t, pub, in_idx, c)) return;
  uint16_t seq, newest = t->rw.last_out_seq, src_seq;
  uint32_t ts;
  int sent_before = t->rw.started && t->rw.packets > 0;
  int tv = temporal_pass(t, h, &src_seq);
  if (tv == HD_TL_DROP) {
    if (c) c->temporal_dropped++;
    return;
  }
  if (hd_rewriter_map(&t->rw, h->ssrc, src_seq, h->ts, now, &seq, &ts) < 0) return;
  if (tv == HD_TL_PAD) { /* a late packet of a dropped layer: its kept seq goes out empty */
    hd_session_send_media_padding(v, t, seq, ts, 0, now, c);
    return;
  }
  /* Older than what this viewer already got: it saw the gap and is waiting
   * for exactly this packet (it came late, or as the publisher's repair).
   * Sent as RTX where negotiated, so the viewer counts it as a repair and not
   * as network reordering (a receiver that thinks the path reorders delays
   * its own NACKs). */
  int late = sent_before && (int16_t)(seq - newest) < 0;
  size_t cap;
  uint8_t *out = hd_peer_tx_begin(&v->peer, &cap);
  if (!out) return;
  int n;
  int vp8 = t->codec_id == CODEC_VP8;
  if (late && t->rtx_enabled) {
    uint8_t tmp[HD_DATAGRAM_MAX];
    n = hd_session_build_out(v, t, pub, h, seq, ts, now, tmp, sizeof tmp);
    if (n >= 0 && vp8) hd_session_vp8_out(t, h->ssrc, tmp + n - h->payload_len, h->payload_len, 1);
    if (n >= 0) n = hd_session_wrap_rtx(t, tmp, (size_t)n, out, cap);
  } else {
    n = hd_session_build_out(v, t, pub, h, seq, ts, now, out, cap);
    if (n >= 0 && vp8) hd_session_vp8_out(t, h->ssrc, out + n - h->payload_len, h->payload_len, 1);
  }
  if (n < 0) return;
  int cls = late ? HD_PACE_RTX : t->kind == HD_TRACK_AUDIO ? HD_PACE_AUDIO : HD_PACE_VIDEO;
  if (hd_session_pace_send(v, t, out, (size_t)n, cls, now, c) < 0) return;
  t->packets++;
  t->bytes += (size_t)n;
  if (late && t->rtx_enabled && v->loss_q8 >= HD_SESSION_LOSSY_Q8 && !hd_bwe_congested(v->bwe)) {
    /* the publisher's repair, sent twice on a lossy viewer leg (see retransmit) */
    uint8_t *o2 = hd_peer_tx_begin(&v->peer, &cap);
    uint8_t tmp[HD_DATAGRAM_MAX];
    int m = o2 ? hd_session_build_out(v, t, pub, h, seq, ts, now, tmp, sizeof tmp) : -1;
    if (m >= 0 && vp8) hd_session_vp8_out(t, h->ssrc, tmp + m - h->payload_len, h->payload_len, 0);
    if (m >= 0) m = hd_session_wrap_rtx(t, tmp, (size_t)m, o2, cap);
    if (m >= 0 && hd_session_pace_send(v, t, o2, (size_t)m, HD_PACE_RTX, now, c) >= 0 && c)
      c->repairs_doubled++;
  }
  if (late) {
    hd_session_rtx_hist_mark(t, seq, now);
    t->repairs_forwarded++;
    if (c) c->repair_forwarded++;
    return; /* the SR's packet/octet counts are the media SSRC's first transmissions */
  }
  hd_rtp_send_stats_update(&t->sstats, ts, h->payload_len, now);
}

void hd_session_forward(hd_session_t *v, const hd_session_t *pub, int in_idx, const hd_rtp_hdr_t *h,
                        hd_time_t now, hd_session_counters_t *c) {
  if (v->peer.state != HD_PEER_CONNECTED || v->closing || in_idx < 0 || in_idx >= pub->n_in) return;
  if (pub->in[pub->in[in_idx].head].muted) return;
  for (int i = 0; i < v->n_out; i++)
    if (follows(&v->out[i], pub, in_idx)) forward_one(v, &v->out[i], pub, in_idx, h, now, c);
}
