/* Per-session media handling for the forwarding node (see session.h): tracks,
 * the publisher's packets in, RTCP, the allocator and timers. The forward
 * path is session_forward.c, repairs and probes session_resend.c, pacing
 * session_pace.c. */
#include "sfu/session.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/log.h"
#include "base/rand.h"
#include "media/rtp_payload.h"
#include "proto/rtcp.h"
#include "proto/rtp.h"
#include "sfu/fec_in.h"
#include "sfu/session_fec.h"
#include "sfu/session_forward.h"
#include "sfu/session_internal.h"
#include "sfu/session_pace.h"
#include "sfu/session_resend.h"

#define RTCP_INTERVAL HD_SEC(1)
#define TWCC_INTERVAL HD_MS(100)
#define PLI_MIN_INTERVAL HD_MS(300)
#define RTX_CACHE_SLOTS 1024
#define REMB_RETRY HD_MS(100) /* no SSRC known yet: look again soon */
#define CLUSTER_TICK HD_MS(2) /* probe cluster bytes are released this often */
/* a cluster waits at most this many ticks for its padding to leave the pacer */
#define CLUSTER_DRAIN_TICKS 50

static int g_twcc = 1, g_adapt = 1, g_playout = 1;
void hd_session_set_twcc(int on) { g_twcc = on ? 1 : 0; }
int hd_session_twcc_enabled(void) { return g_twcc; }
void hd_session_set_adapt(int on) { g_adapt = on ? 1 : 0; }
void hd_session_set_playout_delay(int on) { g_playout = on ? 1 : 0; }

/* Bounded string copy between fields of one session (snprintf would alias). */
static void copy_str(char *dst, size_t cap, const char *src) {
  size_t n = strnlen(src, cap - 1);
  memmove(dst, src, n);
  dst[n] = 0;
}

/* Codec names as numbers (CODEC_*, session_internal.h). */
static uint8_t codec_id(const char *name) {
  static const char *const names[] = {"", "VP8", "VP9", "H264", "AV1", "opus"};
  for (uint8_t i = 1; i < sizeof names / sizeof names[0]; i++)
    if (!strcasecmp(name, names[i])) return i;
  return CODEC_OTHER;
}

static int kind_of(int sdp_kind) {
  return sdp_kind == HD_SDP_AUDIO ? HD_TRACK_AUDIO : sdp_kind == HD_SDP_VIDEO ? HD_TRACK_VIDEO : -1;
}

/* Fills in[idx] for media section i (one simulcast layer `rid`, or "" for none). */
static int init_in_track(hd_session_t *s, int idx, int i, int k, const char *rid, int head) {
  const hd_sdp_media_negotiated_t *m = &s->neg.media[i];
  hd_in_track_t *t = &s->in[idx];
  memset(t, 0, sizeof *t);
  t->active = 1;
  copy_str(t->rid, sizeof t->rid, rid);
  t->head = head;
  t->n_layers = 1;
  t->layers[0] = idx;
  t->kind = k;
  t->media_index = i;
  copy_str(t->mid, sizeof t->mid, m->mid);
  t->pt = m->pt;
  t->rtx_pt = m->rtx_pt;
  t->red_pt = m->red_pt;
  t->clock = m->clock;
  copy_str(t->codec, sizeof t->codec, m->codec);
  t->codec_id = codec_id(t->codec);
  t->max_tid = -1;
  copy_str(t->fmtp, sizeof t->fmtp, m->fmtp);
  /* a simulcast section's a=ssrc lines (if any) do not say which layer is which */
  t->ssrc = rid[0] ? 0 : m->remote_ssrc;
  t->rtx_ssrc = rid[0] ? 0 : m->remote_rtx_ssrc;
  t->have_ssrc = t->ssrc != 0;
  hd_rtp_recv_stats_init(&t->stats, t->ssrc);
  t->last_pli = -HD_SEC(10);
  if (m->nack) {
    t->nack_enabled = 1;
    hd_nack_gen_init(&t->nack);
    /* the publisher leg's RTT times our retries; we only receive on this leg,
     * so it is measured from our own NACK -> RTX round trips */
    t->nack.learn_rtt = 1;
    if (k == HD_TRACK_VIDEO) t->nack.max_age = HD_SESSION_REPAIR_DEADLINE;
  }
  t->fec_pt = k == HD_TRACK_VIDEO && !rid[0] ? m->fec_pt : 0;
  t->fec_ssrc = t->fec_pt ? m->remote_fec_ssrc : 0;
  if (k == HD_TRACK_VIDEO || m->nack) {
    int rc = hd_rtp_cache_init(&t->cache, RTX_CACHE_SLOTS);
    if (rc) return rc;
    t->have_cache = 1;
  }
  return 0;
}

int hd_session_add_in_track(hd_session_t *s, int i) {
  const hd_sdp_media_negotiated_t *m = &s->neg.media[i];
  int k = kind_of(m->kind);
  if (!m->active || k < 0) return HD_EINVAL;
  int nl = k == HD_TRACK_VIDEO && m->n_rids > 1 ? m->n_rids : 1;
  if (nl > HD_SESSION_MAX_LAYERS) nl = HD_SESSION_MAX_LAYERS;
  if (s->n_in + nl > HD_SESSION_MAX_TRACKS) return HD_ENOSPC;
  int head = s->n_in;
  for (int l = 0; l < nl; l++) {
    int rc = init_in_track(s, head + l, i, k, nl > 1 ? m->rids[l] : "", head);
    if (rc < 0) {
      for (int j = head; j < head + l; j++)
        if (s->in[j].have_cache) hd_rtp_cache_free(&s->in[j].cache);
      s->n_in = head;
      return rc;
    }
    s->in[head].layers[l] = head + l;
  }
  s->in[head].n_layers = nl;
  s->n_in = head + nl;
  if (m->ext_twcc) s->ext_twcc = m->ext_twcc;
  if (m->ext_mid) s->ext_mid_in = m->ext_mid;
  if (m->ext_audio_level) s->ext_audio_level_in = m->ext_audio_level;
  if (m->ext_rid) s->ext_rid_in = m->ext_rid;
  if (m->ext_rrid) s->ext_rrid_in = m->ext_rrid;
  return head;
}

int hd_session_add_out_track(hd_session_t *s, int i, uint32_t ssrc, uint32_t rtx_ssrc) {
  const hd_sdp_media_negotiated_t *m = &s->neg.media[i];
  int k = kind_of(m->kind);
  if (!m->active || k < 0) return HD_EINVAL;
  int idx = -1;
  for (int j = 0; j < s->n_out; j++) /* reuse a slot whose track has ended */
    if (!s->out[j].active) {
      idx = j;
      break;
    }
  if (idx < 0) {
    if (s->n_out >= HD_SESSION_MAX_OUT) return HD_ENOSPC;
    idx = s->n_out++;
  }
  hd_out_track_t *t = &s->out[idx];
  free(t->tl); /* a reused slot's (a fresh one is zero) */
  if (t->sent) hd_resend_cache_free(t->sent);
  free(t->sent);
  free(t->fec);
  memset(t, 0, sizeof *t);
  t->active = 1;
  t->kind = k;
  t->media_index = i;
  t->src = NULL;
  t->src_in = -1;
  t->ssrc = ssrc;
  t->rtx_ssrc = k == HD_TRACK_VIDEO ? rtx_ssrc : 0;
  t->pt = m->pt;
  t->rtx_pt = m->rtx_pt;
  t->red_pt = m->red_pt;
  t->clock = m->clock;
  copy_str(t->codec, sizeof t->codec, m->codec);
  t->codec_id = codec_id(t->codec);
  copy_str(t->fmtp, sizeof t->fmtp, m->fmtp);
  copy_str(t->mid, sizeof t->mid, m->mid);
  t->ext_mid = m->ext_mid;
  t->ext_abs_send_time = m->ext_abs_send_time;
  t->ext_audio_level = m->ext_audio_level;
  t->ext_twcc = g_twcc && m->twcc_fb ? m->ext_twcc : 0;
  t->ext_playout_delay = m->kind == HD_SDP_VIDEO ? m->ext_playout_delay : 0;
  t->playout_min_ms = 0;
  t->playout_on = 0;
  t->pd_loss_q8 = 0;
  t->pd_packets = t->pd_repairs = 0;
  t->nack = m->nack;
  t->rtx_enabled = m->rtx_pt != 0 && t->rtx_ssrc != 0;
  /* FlexFEC the viewer's answer took (proto/sdp_offer.h: our repair SSRC) */
  t->fec_pt = k == HD_TRACK_VIDEO && m->remote_fec_ssrc && m->remote_fec_ssrc != ssrc ? m->fec_pt : 0;
  t->fec_ssrc = t->fec_pt ? m->remote_fec_ssrc : 0;
  t->cur_in = t->want_in = -1;
  hd_alloc_track_init(&t->alloc);
  hd_vp8_rewriter_init(&t->vp8);
  t->want_tid = HD_TL_ALL;
  s->next_alloc = 0; /* a new track: choose its layer at the next timer */
  hd_rewriter_init(&t->rw, t->ssrc, t->clock);
  hd_rtp_send_stats_init(&t->sstats, t->ssrc, t->clock);
  t->rtx_seq = (uint16_t)hd_random_u32();
  return idx;
}

int hd_session_out_track_renegotiated(hd_session_t *s, int idx, int mi) {
  if (idx < 0 || idx >= s->n_out || mi < 0 || mi >= s->neg.n_media) return HD_EINVAL;
  hd_out_track_t *t = &s->out[idx];
  t->media_index = mi;
  return hd_session_fec_renegotiated(t, &s->neg.media[mi]);
}

int hd_session_track_by_mid(const hd_session_t *s, const char *mid) {
  if (s->kind == HD_SESSION_PUBLISH) {
    for (int i = 0; i < s->n_in; i++)
      if (s->in[i].active && !strcmp(s->in[i].mid, mid)) return i;
  } else {
    for (int i = 0; i < s->n_out; i++)
      if (s->out[i].active && !strcmp(s->out[i].mid, mid)) return i;
  }
  return -1;
}

void hd_session_unbind_source(hd_session_t *s, const hd_session_t *src) {
  for (int i = 0; i < s->n_out; i++)
    if (s->out[i].src == src) {
      s->out[i].src = NULL;
      s->out[i].active = 0;
    }
}

int hd_session_setup_tracks(hd_session_t *s, hd_time_t now) {
  s->rtcp_ssrc = hd_random_u32() | 1;
  hd_probe_init(&s->probe);
  s->next_rtcp = now + RTCP_INTERVAL;
  s->next_twcc = now + TWCC_INTERVAL;
  hd_twcc_recv_init(&s->twcc);
  if (s->kind == HD_SESSION_SUBSCRIBE) return 0; /* out tracks are added as subscriptions are answered */
  for (int i = 0; i < s->neg.n_media; i++) {
    const hd_sdp_media_negotiated_t *m = &s->neg.media[i];
    int k = kind_of(m->kind);
    if (!m->active || k < 0) continue;
    if (s->kind == HD_SESSION_PUBLISH) {
      int rc = hd_session_add_in_track(s, i);
      if (rc == HD_ENOSPC) continue;
      if (rc < 0) return rc;
    } else {
      /* WHEP promises one SSRC per kind in its answer; a second track of a kind gets fresh ones */
      int first_of_kind = 1;
      for (int j = 0; j < s->n_out; j++)
        if (s->out[j].kind == k) first_of_kind = 0;
      uint32_t ssrc = first_of_kind && s->want_ssrc[k] ? s->want_ssrc[k] : (hd_random_u32() | 1);
      uint32_t rtx = first_of_kind && s->want_rtx_ssrc ? s->want_rtx_ssrc : (hd_random_u32() | 1);
      int rc = hd_session_add_out_track(s, i, ssrc, rtx);
      if (rc >= 0) s->out[rc].follow_room_pub = 1;
    }
  }
  return 0;
}

void hd_session_free_tracks(hd_session_t *s) {
  free(s->bwe);
  s->bwe = NULL;
  for (int i = 0; i < s->n_out; i++) {
    free(s->out[i].tl);
    s->out[i].tl = NULL;
    if (s->out[i].sent) hd_resend_cache_free(s->out[i].sent);
    free(s->out[i].sent);
    s->out[i].sent = NULL;
    free(s->out[i].fec);
    s->out[i].fec = NULL;
  }
  if (s->pacer) {
    hd_pacer_free(s->pacer);
    free(s->pacer);
    s->pacer = NULL;
  }
  for (int i = 0; i < s->n_in; i++) {
    if (s->in[i].have_cache) {
      hd_rtp_cache_free(&s->in[i].cache);
      s->in[i].have_cache = 0;
    }
    hd_fec_in_free(s->in[i].fec);
    s->in[i].fec = NULL;
  }
}

int hd_session_first_in(const hd_session_t *pub, int kind) {
  for (int i = 0; i < pub->n_in; i++)
    if (pub->in[i].active && pub->in[i].kind == kind) return i;
  return -1;
}

/* FlexFEC of kept track t as negotiated section m says (the rule of
 * init_in_track). A repair SSRC the offer does not name stays as learned
 * from the repair packets. Returns 1 if it changed. */
static int in_track_fec_renegotiated(hd_in_track_t *t, const hd_sdp_media_negotiated_t *m) {
  uint8_t pt = t->kind == HD_TRACK_VIDEO && !t->rid[0] ? m->fec_pt : 0;
  uint32_t ssrc = pt ? m->remote_fec_ssrc : 0;
  if (pt == t->fec_pt && (!ssrc || ssrc == t->fec_ssrc)) return 0;
  t->fec_pt = pt;
  t->fec_ssrc = ssrc;
  /* another repair stream, or none: what the receiver holds is the old one's */
  hd_fec_in_free(t->fec);
  t->fec = NULL;
  /* none: no repair packet is coming, new holes are NACKed after
   * reorder_wait from now on, not HD_NACK_FEC_HOLD after the last one */
  if (!pt) t->nack.fec_until = 0;
  return 1;
}

int hd_session_publisher_renegotiated(hd_session_t *s) {
  int changed = 0;
  for (int i = 0; i < s->n_in; i++) {
    hd_in_track_t *t = &s->in[i];
    if (!t->active) continue;
    if (t->media_index >= s->neg.n_media || !s->neg.media[t->media_index].active) {
      t->active = 0;
      /* no packet of it is taken any more (in_track_for): its FEC
       * receiver (~260 KB) goes now, not with the session */
      hd_fec_in_free(t->fec);
      t->fec = NULL;
    } else
      changed += in_track_fec_renegotiated(t, &s->neg.media[t->media_index]);
  }
  for (int i = 0; i < s->neg.n_media; i++) {
    const hd_sdp_media_negotiated_t *m = &s->neg.media[i];
    if (m->active && (m->kind == HD_SDP_AUDIO || m->kind == HD_SDP_VIDEO) &&
        hd_session_track_by_mid(s, m->mid) < 0)
      hd_session_add_in_track(s, i);
  }
  return changed;
}

/* The track's media payload types: its codec, and RED over it (RFC 2198) when negotiated. */
static int media_pt(const hd_in_track_t *t, uint8_t pt) {
  return pt == t->pt || (t->red_pt && pt == t->red_pt);
}

/* Which track a publisher packet belongs to (see hd_in_track_t). Sets *is_rtx. */
static int in_track_for(hd_session_t *s, const hd_rtp_hdr_t *h, int *is_rtx) {
  *is_rtx = 0;
  for (int i = 0; i < s->n_in; i++) {
    hd_in_track_t *t = &s->in[i];
    if (!t->active) continue;
    if (t->have_ssrc && t->ssrc == h->ssrc && media_pt(t, h->pt)) return i;
    if (t->rtx_pt && h->pt == t->rtx_pt && t->rtx_ssrc && t->rtx_ssrc == h->ssrc) {
      *is_rtx = 1;
      return i;
    }
    /* FlexFEC repair stream (no mid on it): its own pt, one per section */
    if (t->fec_pt && h->pt == t->fec_pt && (!t->fec_ssrc || t->fec_ssrc == h->ssrc)) {
      t->fec_ssrc = h->ssrc;
      *is_rtx = 2;
      return i;
    }
  }
  /* unknown SSRC: the mid extension names the media section, and in a
   * simulcast section the rid (media) or repaired-rid (RTX) names the layer
   * (RFC 8852 §3.1-3.2) */
  if (s->ext_mid_in || s->ext_rid_in) {
    const uint8_t *d;
    size_t dl;
    char mid[32] = "", rid[16] = "", rrid[16] = "";
    if (s->ext_mid_in && hd_rtp_ext_find(h, s->ext_mid_in, &d, &dl) == 0)
      hd_rtp_ext_string(d, dl, mid, sizeof mid);
    if (s->ext_rid_in && hd_rtp_ext_find(h, s->ext_rid_in, &d, &dl) == 0)
      hd_rtp_ext_string(d, dl, rid, sizeof rid);
    if (s->ext_rrid_in && hd_rtp_ext_find(h, s->ext_rrid_in, &d, &dl) == 0)
      hd_rtp_ext_string(d, dl, rrid, sizeof rrid);
    for (int i = 0; i < s->n_in && (mid[0] || rid[0] || rrid[0]); i++) {
      hd_in_track_t *t = &s->in[i];
      if (!t->active || (mid[0] && strcmp(t->mid, mid))) continue;
      if (!mid[0] && !t->rid[0]) continue; /* without mid only a rid can name a track */
      if (media_pt(t, h->pt) && (!t->rid[0] || !strcmp(t->rid, rid))) return i;
      if (t->rtx_pt && h->pt == t->rtx_pt && (!t->rid[0] || !strcmp(t->rid, rrid[0] ? rrid : rid))) {
        *is_rtx = 1;
        return i;
      }
    }
  }
  /* no mid: a payload type only one track uses */
  int found = -1, rtx = 0;
  for (int i = 0; i < s->n_in; i++) {
    hd_in_track_t *t = &s->in[i];
    if (!t->active) continue;
    if (media_pt(t, h->pt) || (t->rtx_pt && h->pt == t->rtx_pt)) {
      if (found >= 0) return -1; /* ambiguous */
      found = i;
      rtx = !media_pt(t, h->pt);
    }
  }
  *is_rtx = rtx;
  return found;
}

/* A layer's bitrate over HD_SESSION_RATE_WINDOW windows, for the allocator;
 * with VP8 temporal layers (tid >= 0) also each TID's. */
static void layer_rate_update(hd_in_track_t *t, size_t len, int tid, hd_time_t now) {
  t->last_packet_at = now;
  if (!t->rate_start) t->rate_start = now;
  t->rate_bytes += len;
  if (tid >= 0 && tid <= HD_TL_ALL) {
    t->tid_bytes[tid] += len;
    t->tid_seen_at[tid] = now;
  }
  hd_time_t el = now - t->rate_start;
  if (el >= HD_SESSION_RATE_WINDOW) {
    /* smoothed over ~2 s: keyframes make single windows jump, and the
     * allocator must not flap on them */
    uint32_t w = (uint32_t)(t->rate_bytes * 8 * 1000000 / (uint64_t)el);
    t->bps = t->bps ? (uint32_t)((t->bps * 3ull + w) / 4) : w;
    t->max_tid = -1;
    for (int k = 0; k <= HD_TL_ALL; k++) {
      uint32_t wk = (uint32_t)(t->tid_bytes[k] * 8 * 1000000 / (uint64_t)el);
      t->tid_bps[k] = t->tid_bps[k] ? (uint32_t)((t->tid_bps[k] * 3ull + wk) / 4) : wk;
      if (t->tid_seen_at[k] && now - t->tid_seen_at[k] <= HD_SESSION_LAYER_TIMEOUT) t->max_tid = k;
      t->tid_bytes[k] = 0;
    }
    t->rate_start = now;
    t->rate_bytes = 0;
  }
}

/* The TID of a VP8 packet (-1: none, or not VP8). */
static int packet_tid(const hd_in_track_t *t, const uint8_t *payload, size_t len) {
  hd_vp8_desc_t d;
  if (t->codec_id != CODEC_VP8 || hd_vp8_depay_parse(payload, len, &d) < 0) return -1;
  return d.tid;
}

/* Whether this packet starts a keyframe (kept for the viewers' layer switches),
 * and what a wanted keyframe's arrival settles. */
static void note_keyframe(hd_in_track_t *t, const uint8_t *payload, size_t len) {
  t->last_pkt_key = t->kind == HD_TRACK_VIDEO && hd_rtp_keyframe_start(t->codec, payload, len) == 1;
  if (!t->last_pkt_key) return;
  t->key_wanted_since = 0;
  hd_vp8_desc_t d;
  if (t->codec_id == CODEC_VP8 && hd_vp8_depay_parse(payload, len, &d) == 0 && d.width > 0) {
    t->width = d.width;
    t->height = d.height;
  }
}

/* While the publisher's repair packets come, a hole waits for its group's
 * repair packet (sent at the group's or the frame's end) before it is NACKed:
 * at most HD_FEC_IN_NACK_WAIT and half the leg's round trip, and only until
 * HD_NACK_FEC_HOLD after the last one (a publisher that stopped FEC costs no
 * NACK delay; rtc/nack_gen.h). What this repair packet covers and could not
 * rebuild is due at once: FEC can no longer repair it. The packets it did
 * rebuild are fed back (hd_session_publisher_recovered) before the NACK
 * timer runs, so they are not asked for. */
static void fec_hold(hd_in_track_t *t, const uint8_t *buf, size_t len, hd_time_t now) {
  hd_time_t wait = t->nack.rtt / 2 < HD_FEC_IN_NACK_WAIT ? t->nack.rtt / 2 : HD_FEC_IN_NACK_WAIT;
  hd_nack_gen_fec_seen(&t->nack, wait, now);
  hd_flexfec_hdr_t fh;
  if (hd_flexfec_parse(buf, len, &fh) < 0) return;
  int last = -1;
  for (int b = 0; b < fh.mask_bits; b++)
    if (hd_flexfec_covers(&fh, (uint16_t)(fh.sn_base + b))) last = b;
  if (last >= 0) hd_nack_gen_fec_covered(&t->nack, fh.sn_base, (uint16_t)(fh.sn_base + last), now);
}

/* recovered: a packet rebuilt from FlexFEC, not one from the wire */
static int publisher_rtp(hd_session_t *s, uint8_t *buf, size_t len, hd_time_t now, uint8_t *scratch,
                         size_t scratch_cap, hd_rtp_hdr_t *out, hd_session_counters_t *c, int recovered);

int hd_session_publisher_rtp(hd_session_t *s, uint8_t *buf, size_t len, hd_time_t now, uint8_t *scratch,
                             size_t scratch_cap, hd_rtp_hdr_t *out, hd_session_counters_t *c) {
  return publisher_rtp(s, buf, len, now, scratch, scratch_cap, out, c, 0);
}

int hd_session_publisher_recovered(hd_session_t *s, uint8_t *buf, size_t cap, hd_time_t now, uint8_t *scratch,
                                   size_t scratch_cap, hd_rtp_hdr_t *out, hd_session_counters_t *c) {
  for (int i = 0; i < s->n_in; i++) {
    int n;
    while (s->in[i].fec && (n = hd_fec_in_pop(s->in[i].fec, buf, cap)) != 0) {
      if (n < 0) continue;
      int k = publisher_rtp(s, buf, (size_t)n, now, scratch, scratch_cap, out, c, 1);
      if (k >= 0) return k;
    }
  }
  return -1;
}

static int publisher_rtp(hd_session_t *s, uint8_t *buf, size_t len, hd_time_t now, uint8_t *scratch,
                         size_t scratch_cap, hd_rtp_hdr_t *out, hd_session_counters_t *c, int recovered) {
  hd_rtp_hdr_t h;
  if (hd_rtp_parse(buf, len, &h) < 0) {
    c->drop_malformed_rtp++;
    return HD_EPROTO;
  }
  if (s->ext_twcc && !recovered) {
    const uint8_t *d;
    size_t dl;
    uint16_t tseq;
    if (hd_rtp_ext_find(&h, s->ext_twcc, &d, &dl) == 0 && hd_rtp_twcc_seq_parse(d, dl, &tseq) == 0)
      hd_twcc_recv_add(&s->twcc, tseq, now);
  }
  int is_rtx;
  int k = in_track_for(s, &h, &is_rtx);
  if (k >= 0) {
    hd_in_track_t *t = &s->in[k];
    if (is_rtx == 2) { /* a FlexFEC repair packet: rebuilds into the queue */
      if (recovered) return HD_EAGAIN;
      if (!t->fec) t->fec = hd_fec_in_new(t->have_ssrc ? t->ssrc : 0, s->ext_twcc);
      if (t->fec && hd_fec_in_repair(t->fec, buf, len) >= 0) {
        c->fec_received++;
        if (t->nack_enabled) fec_hold(t, buf, len, now);
      }
      return HD_EAGAIN;
    }
    if (recovered) {
      const uint8_t *have;
      size_t have_len;
      if (!t->have_ssrc || h.ssrc != t->ssrc ||
          (t->have_cache && hd_rtp_cache_peek(&t->cache, h.seq, now, &have, &have_len) == 0))
        return HD_EAGAIN; /* another stream's, or here already */
      c->fec_recovered++;
    }
    if (!is_rtx) {
      if (!t->have_ssrc || t->ssrc != h.ssrc) {
        if (t->have_ssrc)
          HD_LOGI("sfu", "session %s: track %s SSRC changed %08x -> %08x", s->id, t->mid, t->ssrc, h.ssrc);
        t->ssrc = h.ssrc;
        t->have_ssrc = 1;
        hd_rtp_recv_stats_init(&t->stats, h.ssrc);
        if (t->have_cache) hd_rtp_cache_clear(&t->cache);
        if (t->nack_enabled) hd_nack_gen_reset(&t->nack);
        if (t->fec) hd_flexfec_dec_init(&t->fec->dec, h.ssrc); /* it protected the old stream */
        /* a new source (encoder restart): make sure viewers get a keyframe of it */
        if (t->have_sr && t->kind == HD_TRACK_VIDEO) t->pli_pending = 1;
        t->have_sr = 0;
      }
      int resent = t->nack_enabled && hd_nack_gen_on_packet(&t->nack, h.seq, now);
      if (resent) t->repairs++;
      /* Neither a packet rebuilt from FEC nor one resent on the media SSRC
       * (audio NACK has no RTX) was received in RFC 3550's sense: our reports
       * keep the leg's loss before repair, as for RTX (RFC 4588 §8), since
       * the publisher sizes its FEC, RED depth and Opus FEC from them. */
      if (!recovered && !resent) hd_rtp_recv_stats_update(&t->stats, h.seq, h.ts, now, t->clock);
      if (t->kind == HD_TRACK_AUDIO && s->ext_audio_level_in) {
        const uint8_t *d;
        size_t dl;
        int voice;
        uint8_t level;
        if (hd_rtp_ext_find(&h, s->ext_audio_level_in, &d, &dl) == 0 &&
            hd_rtp_audio_level_parse(d, dl, &voice, &level) == 0) {
          t->level_acc += 127u - level;
          t->level_cnt++;
        }
      }
      t->packets++;
      t->bytes += len;
      layer_rate_update(t, len, t->kind == HD_TRACK_VIDEO ? packet_tid(t, h.payload, h.payload_len) : -1,
                        now);
      if (h.payload_len == 0) return HD_EAGAIN; /* padding-only probe: nothing to forward */
      const uint8_t *have;
      size_t have_len;
      if (!recovered && t->have_cache && hd_rtp_cache_peek(&t->cache, h.seq, now, &have, &have_len) == 0) {
        /* here already (the publisher's resend on the media SSRC crossed the
         * original, or a duplicate): forwarded again, a viewer's copy would
         * go out under the seq (SRTP index) it already used, with other
         * bytes (a new transport-wide seq): RFC 7714 §8.3 */
        t->rtx_duplicates++;
        return HD_EAGAIN;
      }
      note_keyframe(t, h.payload, h.payload_len);
      if (t->have_cache) hd_rtp_cache_put(&t->cache, buf, len, now);
      if (t->fec && !recovered) hd_fec_in_media(t->fec, buf, len);
      *out = h;
      return k;
    }
    t->rtx_ssrc = h.ssrc;
    if (!t->have_ssrc || h.payload_len < 2) return HD_EAGAIN; /* padding probe or unknown base */
    uint16_t osn;
    int n = hd_rtp_rtx_decode(buf, len, t->ssrc, t->pt, scratch, scratch_cap, &osn);
    if (n < 0) return HD_EAGAIN;
    hd_rtp_hdr_t oh;
    if (hd_rtp_parse(scratch, (size_t)n, &oh) < 0) return HD_EPROTO; /* payload now in scratch */
    const uint8_t *have;
    size_t have_len;
    if (t->have_cache && hd_rtp_cache_peek(&t->cache, oh.seq, now, &have, &have_len) == 0) {
      /* already here (a second answer to a repeated NACK, or a bandwidth
       * probe: an SDK or browser publisher probes with RTX copies of recent
       * packets): forwarding it again would only duplicate what every viewer
       * got, and it repaired nothing (not in rtx_packets, the quality
       * samples' "repairs received") */
      t->rtx_duplicates++;
      return HD_EAGAIN;
    }
    t->rtx_packets++;
    /* The receive statistics (and so our RR to the publisher) count what came
     * on the media SSRC only: a repair on the RTX SSRC does not undo the loss
     * the publisher's congestion control must see (RFC 4588 §8: the
     * retransmission stream has its own SSRC and reports). */
    if (t->nack_enabled && hd_nack_gen_on_packet(&t->nack, oh.seq, now)) t->repairs++;
    if (t->have_cache) hd_rtp_cache_put(&t->cache, scratch, (size_t)n, now);
    if (t->fec) hd_fec_in_media(t->fec, scratch, (size_t)n);
    note_keyframe(t, oh.payload, oh.payload_len);
    *out = oh;
    return k;
  }
  c->drop_unknown_pt++;
  return HD_ENOTFOUND;
}

void hd_session_request_keyframe(hd_session_t *pub, hd_time_t now, hd_session_counters_t *c) {
  for (int i = 0; i < pub->n_in; i++)
    if (pub->in[i].kind == HD_TRACK_VIDEO) hd_session_request_keyframe_track(pub, i, now, c);
}

void hd_session_request_keyframe_track(hd_session_t *pub, int in_idx, hd_time_t now,
                                       hd_session_counters_t *c) {
  if (in_idx < 0 || in_idx >= pub->n_in) return;
  hd_in_track_t *t = &pub->in[in_idx];
  if (!t->active || t->kind != HD_TRACK_VIDEO || !t->have_ssrc || pub->peer.state != HD_PEER_CONNECTED)
    return;
  if (now - t->last_pli < PLI_MIN_INTERVAL) {
    /* Not dropped: a viewer that connects just after another one still needs
     * its keyframe; one PLI at the end of the interval serves every request. */
    t->pli_pending = 1;
    return;
  }
  size_t cap;
  uint8_t *out = hd_peer_tx_begin(&pub->peer, &cap);
  if (!out) return;
  int n = hd_rtcp_build_pli(pub->rtcp_ssrc, t->ssrc, out, cap);
  if (n < 0 || hd_peer_tx_commit(&pub->peer, (size_t)n, 1) < 0) return;
  t->last_pli = now;
  t->pli_pending = 0;
  t->plis_sent++;
  /* only codecs whose keyframes we can recognise are watched for an answer */
  if (!t->key_wanted_since && hd_rtp_keyframe_start(t->codec, NULL, 0) != HD_EUNSUPPORTED)
    t->key_wanted_since = now;
  c->pli_forwarded++;
}

/* RTT to a viewer from a report block about one of our streams (RFC 3550
 * §6.4.1): arrival - send time of the SR it names - DLSR. The SR's NTP may be
 * the publisher's clock (lip sync), so we match it by value and use our own
 * send time rather than comparing clocks. */
static void viewer_rtt_sample(hd_session_t *v, const hd_rtcp_rb_t *rb, hd_time_t now) {
  hd_out_track_t *t = hd_session_out_by_ssrc(v, rb->ssrc);
  if (!t) return;
  if (t->kind == HD_TRACK_VIDEO) /* the viewer leg's loss, smoothed (fraction of 256) */
    v->loss_q8 = v->loss_q8 ? (v->loss_q8 * 3 + rb->fraction_lost) / 4 : rb->fraction_lost;
  hd_session_fec_on_report(v, t, rb->fraction_lost); /* its FlexFEC plan (sfu/session_fec.h) */
  if (rb->lsr == 0) return;
  for (int i = 0; i < HD_OUT_SR_HIST; i++) {
    if (t->sr_sent_at[i] == 0 || t->sr_mid32[i] != rb->lsr) continue;
    hd_time_t rtt = now - t->sr_sent_at[i] - hd_rtcp_q16_to_us(rb->dlsr);
    if (rtt < 0) rtt = 0;
    if (rtt > HD_SEC(5)) return;
    v->rtt = v->rtt_samples == 0 ? rtt : v->rtt + (rtt - v->rtt) / 8;
    v->rtt_samples++;
    return;
  }
}

void hd_session_rtcp(hd_session_t *s, hd_session_t *pub, const uint8_t *buf, size_t len, hd_time_t now,
                     hd_session_counters_t *c) {
  hd_rtcp_iter_t it;
  hd_rtcp_pkt_t p;
  hd_rtcp_iter_init(&it, buf, len);
  int rc;
  while ((rc = hd_rtcp_next(&it, &p)) == 1) {
    if (p.pt == HD_RTCP_SR && s->kind == HD_SESSION_PUBLISH) {
      hd_rtcp_sr_t sr;
      if (hd_rtcp_parse_sr(&p, &sr) < 0) continue;
      for (int i = 0; i < s->n_in; i++) {
        hd_in_track_t *t = &s->in[i];
        if (t->active && t->have_ssrc && t->ssrc == sr.ssrc) {
          t->have_sr = 1;
          t->sr_ntp = sr.ntp;
          t->sr_rtp = sr.rtp_ts;
          t->sr_arrival = now;
          hd_rtp_recv_stats_on_sr(&t->stats, sr.ntp, now);
        }
      }
    } else if ((p.pt == HD_RTCP_RR || p.pt == HD_RTCP_SR) && s->kind != HD_SESSION_PUBLISH) {
      hd_rtcp_rr_t rr;
      hd_rtcp_sr_t vsr;
      const hd_rtcp_rb_t *rb = NULL;
      int nrb = 0;
      if (p.pt == HD_RTCP_RR && hd_rtcp_parse_rr(&p, &rr) == 0) {
        rb = rr.rb;
        nrb = rr.rb_count;
      } else if (p.pt == HD_RTCP_SR && hd_rtcp_parse_sr(&p, &vsr) == 0) {
        rb = vsr.rb;
        nrb = vsr.rb_count;
      }
      for (int i = 0; i < nrb; i++)
        viewer_rtt_sample(s, &rb[i], now);
    } else if ((p.pt == HD_RTCP_RTPFB || p.pt == HD_RTCP_PSFB) && s->kind != HD_SESSION_PUBLISH) {
      hd_rtcp_fb_t fb;
      if (hd_rtcp_parse_fb(&p, &fb) < 0) continue;
      if (fb.pt == HD_RTCP_RTPFB && fb.fmt == 1) { /* generic NACK, RFC 4585 §6.2.1 */
        hd_out_track_t *t = hd_session_out_by_ssrc(s, fb.media_ssrc);
        uint16_t seqs[256];
        int n = hd_rtcp_nack_expand(&fb, seqs, 256);
        if (!t || n < 0) continue;
        c->nack_received += (uint64_t)n;
        for (int i = 0; i < n; i++)
          hd_session_retransmit(s, t, pub, seqs[i], now, c);
      } else if (fb.pt == HD_RTCP_RTPFB && fb.fmt == HD_RTCP_FMT_TWCC && s->bwe) {
        /* transport-wide feedback on what we sent this viewer: the send-side estimate */
        hd_rtcp_twcc_t tw;
        hd_rtcp_twcc_pkt_t pkts[1024];
        int np = hd_rtcp_twcc_parse(&fb, &tw, pkts, 1024);
        if (np < 0) {
          c->drop_malformed_rtcp++;
          continue;
        }
        hd_bwe_on_twcc(s->bwe, &tw, pkts, (size_t)np, now);
        hd_session_tail_acked(s, &tw, pkts, (size_t)np, c);
        c->twcc_received++;
        s->estimate_bps = hd_bwe_target(s->bwe);
        s->estimate_at = now;
        if (!s->estimate_first_at) s->estimate_first_at = now;
        hd_session_allocate(s, pub, now, c);
      } else if (fb.pt == HD_RTCP_PSFB && fb.fmt == 15) { /* REMB: the viewer's own downlink estimate */
        hd_rtcp_remb_t remb;
        if (hd_rtcp_remb_parse(&fb, &remb) == 0) {
          c->remb_received++;
          if (s->bwe) { /* caps the send-side estimate */
            hd_bwe_on_remb(s->bwe, remb.bitrate_bps, now);
            s->estimate_bps = hd_bwe_target(s->bwe);
          } else {
            s->estimate_bps = remb.bitrate_bps;
            hd_probe_on_estimate(&s->probe, s->estimate_bps, now);
          }
          s->estimate_at = now;
          if (!s->estimate_first_at) s->estimate_first_at = now;
          hd_session_allocate(s, pub, now, c);
        }
      } else if (fb.pt == HD_RTCP_PSFB && (fb.fmt == 1 || fb.fmt == 4)) { /* PLI / FIR, RFC 5104 */
        /* the keyframe of the track the viewer asks about (FIR names it in its FCI;
         * Chrome puts it in media_ssrc for PLI); unknown: all video of the publisher */
        uint32_t media = fb.media_ssrc;
        if (fb.fmt == 4) {
          hd_rtcp_fir_entry_t fe[4];
          if (hd_rtcp_fir_parse(&fb, fe, 4) > 0) media = fe[0].ssrc;
        }
        hd_out_track_t *t = hd_session_out_by_ssrc(s, media);
        hd_session_t *src_pub;
        hd_in_track_t *src = t ? hd_session_source_of(t, pub, &src_pub) : NULL;
        if (src)
          hd_session_request_keyframe_track(src_pub, (int)(src - src_pub->in), now, c);
        else if (pub)
          hd_session_request_keyframe(pub, now, c);
      }
    }
  }
  if (rc < 0) c->drop_malformed_rtcp++;
}

static hd_time_t key_retry_at(const hd_in_track_t *t) {
  hd_time_t iv = 3 * t->nack.rtt;
  if (!t->nack_enabled || iv < HD_SESSION_KEY_RETRY) iv = HD_SESSION_KEY_RETRY;
  return t->last_pli + iv;
}

/* A layer's bitrate for the allocator: measured, or while the first window is
 * still open what it sent so far; 0 when it has not sent for a while. */
static uint32_t layer_bps(const hd_in_track_t *t, hd_time_t now) {
  if (!t->active || !t->last_packet_at || now - t->last_packet_at > HD_SESSION_LAYER_TIMEOUT) return 0;
  if (t->bps) return t->bps;
  hd_time_t el = now - t->rate_start;
  uint64_t b = el > HD_MS(50) ? t->rate_bytes * 8 * 1000000 / (uint64_t)el : 0;
  return b ? (uint32_t)b : 1;
}

/* The layer whose per-TID rates (VP8 temporal layers, RFC 7741 TID) say how
 * layer `lt` of the group headed by `head` splits by TID: lt itself when it
 * has them, else another layer of the same track that has (the encoder's
 * temporal structure is the same in every simulcast layer): a layer of a
 * remote publisher that does not cross the overlay link now is known here
 * by its LAYERS report (layer_report.h), with its own TID shares from a
 * node of link version 3, by its rate and size alone from an older one.
 * NULL when no layer of the track has them. */
static const hd_in_track_t *tid_rates_of(const hd_session_t *pub, int head, const hd_in_track_t *lt) {
  const hd_in_track_t *ht = &pub->in[head];
  for (int l = -1; l < (ht->n_layers > 1 ? ht->n_layers : 1); l++) {
    const hd_in_track_t *x = l < 0 ? lt : &pub->in[ht->n_layers > 1 ? ht->layers[l] : head];
    if (x->max_tid <= 0) continue;
    for (int k = 0; k <= x->max_tid && k <= HD_TL_ALL; k++)
      if (x->tid_bps[k]) return x;
  }
  return NULL;
}

/* What layer lt (rate lb) costs a subscriber that gets its TIDs up to
 * `cap` only (track_settings max_temporal_layer): lb x the share of those
 * TIDs in its measured per-TID rates. Budgeting the whole layer kept a
 * subscriber capped to TL0 on a smaller layer whose TL0 alone it had room for
 * (or paused it). lb when nothing is dropped or no rates say by how much. */
static uint32_t tid_capped_bps(const hd_session_t *pub, int head, const hd_in_track_t *lt, uint32_t lb,
                               int cap) {
  if (cap >= HD_TL_ALL || lb <= 1) return lb;
  const hd_in_track_t *x = tid_rates_of(pub, head, lt);
  if (!x || cap >= x->max_tid) return lb;
  uint64_t all = 0, fwd = 0;
  for (int k = 0; k <= x->max_tid && k <= HD_TL_ALL; k++) {
    all += x->tid_bps[k];
    if (k <= cap) fwd += x->tid_bps[k];
  }
  return all ? (uint32_t)((uint64_t)lb * fwd / all) + 1 : lb;
}

/* pub's layers of the group headed by `head` in ascending size: by the
 * keyframe sizes when every layer has sent one, else by measured bitrate (the
 * a=simulcast order says nothing of size). A paused layer keeps its last size,
 * so the order holds while the publisher does not send it. */
int hd_session_layer_order(const hd_session_t *pub, int head, hd_time_t now, int *order) {
  const hd_in_track_t *ht = &pub->in[head];
  int nl = ht->n_layers > 1 ? ht->n_layers : 1, by_size = 1;
  for (int l = 0; l < nl; l++) {
    const hd_in_track_t *x = &pub->in[ht->n_layers > 1 ? ht->layers[l] : head];
    if (x->width <= 0 || x->height <= 0) by_size = 0;
  }
  for (int l = 0; l < nl; l++) {
    int idx = ht->n_layers > 1 ? ht->layers[l] : head, j = l;
    while (j > 0) {
      const hd_in_track_t *a = &pub->in[order[j - 1]], *b = &pub->in[idx];
      int after =
          by_size ? a->width * a->height > b->width * b->height : layer_bps(a, now) > layer_bps(b, now);
      if (!after) break;
      order[j] = order[j - 1];
      j--;
    }
    order[j] = idx;
  }
  return nl;
}

/* The playout delay asked of a viewer for video track t (HD_SESSION_PLAYOUT_*):
 * from the share of the source's packets that arrived as repairs since the
 * last evaluation and the loss the viewer reports on its own leg, and the
 * round trips of both legs: long enough for one repair on either leg. */
static void update_playout_delay(const hd_session_t *v, hd_out_track_t *t, const hd_in_track_t *src) {
  if (!t->ext_playout_delay || !src) return;
  if (src->packets < t->pd_packets || src->repairs < t->pd_repairs) { /* another source since */
    t->pd_packets = src->packets;
    t->pd_repairs = src->repairs;
  }
  uint64_t dp = src->packets - t->pd_packets, dr = src->repairs - t->pd_repairs;
  if (dp >= 100) { /* this runs on every feedback: judge windows of 100 packets */
    unsigned q8 = (unsigned)(dr * 256 / dp);
    t->pd_loss_q8 = (uint16_t)(t->pd_loss_q8 ? (t->pd_loss_q8 * 3u + q8) / 4 : q8);
    t->pd_packets = src->packets;
    t->pd_repairs = src->repairs;
  }
  hd_time_t want = 0, own_rtt = v->rtt > 0 ? v->rtt : HD_MS(100);
  if (g_playout && t->pd_loss_q8 >= HD_SESSION_PLAYOUT_LOSSY_Q8) { /* the publisher's leg */
    hd_time_t up = src->nack_enabled ? src->nack.rtt : HD_MS(100);
    want = up + own_rtt + HD_SESSION_PLAYOUT_SLACK;
  }
  if (g_playout && v->loss_q8 >= HD_SESSION_PLAYOUT_LOSSY_Q8) { /* the viewer's own */
    hd_time_t own = own_rtt + HD_SESSION_PLAYOUT_DETECT + HD_SESSION_PLAYOUT_SLACK;
    if (own > want) want = own;
  }
  if (want > HD_SESSION_PLAYOUT_MAX) want = HD_SESSION_PLAYOUT_MAX;
  unsigned ms = (unsigned)(want / 1000);
  /* in 10 ms steps (the extension's unit), and only when it moved by more
   * than one: each change makes the receiver re-time its buffer. Once
   * asked, the extension stays on every packet (a browser keeps the last
   * bounds it saw; min 0 lifts the floor again) */
  unsigned cur = t->playout_min_ms / 10u;
  if ((ms == 0 || ms / 10 > cur + 1 || ms / 10 + 1 < cur) && t->playout_min_ms != ms / 10 * 10) {
    HD_LOGD(
        "sfu",
        "session %s: track %s playout delay %u -> %u ms (repaired %u/256 of the source, own leg lost %u/256)",
        v->id, t->mid, (unsigned)t->playout_min_ms, ms / 10 * 10, (unsigned)t->pd_loss_q8, v->loss_q8);
    t->playout_min_ms = (uint16_t)(ms / 10 * 10);
  }
  if (t->playout_min_ms) t->playout_on = 1;
}

void hd_session_allocate(hd_session_t *v, hd_session_t *room_pub, hd_time_t now, hd_session_counters_t *c) {
  if (v->kind == HD_SESSION_PUBLISH) return;
  for (int i = 0; i < v->n_out; i++) {
    hd_out_track_t *t = &v->out[i];
    hd_session_t *pub = t->src ? t->src : (t->follow_room_pub ? room_pub : NULL);
    int h = t->active && t->kind == HD_TRACK_VIDEO ? hd_session_followed_head(t, pub) : -1;
    if (h < 0) continue;
    int cur = t->cur_in >= 0 && t->cur_in < pub->n_in && pub->in[t->cur_in].head == h ? t->cur_in : h;
    update_playout_delay(v, t, &pub->in[cur]);
  }
  hd_alloc_track_t a[HD_SESSION_MAX_OUT];
  /* the allocator's layers of each track: (in[] index, highest TID) pairs,
   * spatial layers in ascending size, each split into its temporal layers
   * (VP8 TID) when it has them */
  int order[HD_SESSION_MAX_OUT][HD_ALLOC_MAX_LAYERS], tids[HD_SESSION_MAX_OUT][HD_ALLOC_MAX_LAYERS],
      which[HD_SESSION_MAX_OUT];
  size_t n = 0;
  uint64_t fixed = 0; /* audio and single-layer video not (yet) gated: forwarded whatever the estimate */
  int settled = g_adapt && v->estimate_bps && v->estimate_first_at &&
                now - v->estimate_first_at >= HD_SESSION_SINGLE_SETTLE;
  for (int i = 0; i < v->n_out; i++) {
    hd_out_track_t *t = &v->out[i];
    hd_session_t *pub = t->src ? t->src : (t->follow_room_pub ? room_pub : NULL);
    int h = t->active ? hd_session_followed_head(t, pub) : -1;
    if (h < 0) continue;
    const hd_in_track_t *head = &pub->in[h];
    if (t->want_in >= 0 && (t->want_in >= pub->n_in || pub->in[t->want_in].head != h)) {
      /* bound to another source since: choose afresh */
      t->want_in = t->cur_in = -1;
      t->gated = 0;
      t->alloc.cur = t->alloc.up_target = -1;
      t->alloc.switches = 0;
    }
    int cap = t->lim_tid ? t->lim_tid - 1 : HD_TL_ALL; /* the highest TID it may get */
    if (head->n_layers <= 1 && !t->gated) {
      if (t->kind != HD_TRACK_VIDEO || (!settled && t->alloc.visible)) {
        fixed += t->kind == HD_TRACK_VIDEO ? tid_capped_bps(pub, h, head, layer_bps(head, now), cap)
                                           : layer_bps(head, now);
        continue;
      }
      /* from now on the allocator decides; it starts from what flows */
      t->gated = 1;
      t->cur_in = t->want_in = h;
    }
    int sp[HD_SESSION_MAX_LAYERS];
    int ns = hd_session_layer_order(pub, h, now, sp);
    hd_alloc_track_t *x = &a[n];
    *x = t->alloc;
    x->cur = -1;
    int w[HD_SESSION_MAX_LAYERS], hh[HD_SESSION_MAX_LAYERS];
    for (int l = 0; l < ns; l++) {
      w[l] = pub->in[sp[l]].width;
      hh[l] = pub->in[sp[l]].height;
    }
    int tile = hd_alloc_tile_layer(w, hh, ns, t->tile_w, t->tile_h), nl = 0;
    if (t->lim_spatial && tile > t->lim_spatial - 1) tile = t->lim_spatial - 1; /* track_settings cap */
    for (int l = 0; l < ns; l++) {
      const hd_in_track_t *lt = &pub->in[sp[l]];
      uint32_t lb = layer_bps(lt, now);
      /* the layer this subscriber gets stays live through a short gap (an
       * overloaded encoder skipping frames of its top layer): leaving it
       * costs a keyframe of the lower layer now and of this one after */
      if (sp[l] == t->want_in && !lb && lt->active && lt->last_packet_at &&
          now - lt->last_packet_at <= HD_SESSION_CUR_LAYER_TIMEOUT)
        lb = lt->bps ? lt->bps : 1;
      /* VP8 temporal layers: each TID's share of the layer's rate, measured
       * (the lower ones cost what their frames cost, not a fixed fraction).
       * Only the lowest spatial layer is split: a smaller picture at the full
       * frame rate watches better than a bigger one at 7-15 fps (with the
       * larger layers split too, the 600 kbit/s phase of
       * e2e/simulcast_chromium got 540p at 7 fps instead of 270p at 18), so
       * a lower frame rate is the step before a pause, not before a smaller
       * layer */
      int mt = l == 0 && lt->max_tid > 0 && lt->max_tid < HD_TL_ALL ? lt->max_tid : 0;
      uint64_t tot = 0, cum = 0;
      for (int k = 0; k <= mt; k++)
        tot += lt->tid_bps[k];
      if (mt > cap) mt = cap; /* TIDs above the subscriber's cap are never sent: no entries for them */
      if (!tot || nl + mt + 1 > HD_ALLOC_MAX_LAYERS - (ns - 1 - l)) mt = 0;
      /* the layer's last entry: what it costs with the TIDs the cap leaves */
      uint32_t lbc = tid_capped_bps(pub, h, lt, lb, cap);
      for (int k = 0; k <= mt; k++) {
        cum += lt->tid_bps[k];
        order[n][nl] = sp[l];
        tids[n][nl] = k == mt ? HD_TL_ALL : k;
        x->bps[nl] = k == mt ? lbc : !lb ? lb : (uint32_t)((uint64_t)lb * cum / tot) + 1;
        /* the current choice: the first of its layer's entries that gives
         * at least the TIDs it gets now */
        if (sp[l] == t->want_in && x->cur < 0 && tids[n][nl] >= t->want_tid) x->cur = nl;
        nl++;
      }
      if (l == tile) x->max_layer = nl - 1;
    }
    if (nl != x->n_layers) x->up_target = -1; /* the layers were split or merged since */
    x->n_layers = nl;
    if (x->up_target >= nl) x->up_target = -1;
    which[n++] = i;
  }
  if (n == 0) return;
  /* no estimate yet: the best layers (the first estimate corrects it within a second) */
  /* no estimate yet: start where a browser's estimator starts (its first
   * feedback or REMB comes within ~100 ms, and the start-up probes lift it);
   * sending the top layers blind floods a narrow link before the first
   * estimate and crashes it */
  uint64_t budget = g_adapt ? HD_SESSION_START_BPS : UINT64_MAX / 4;
  if (v->estimate_bps && g_adapt) {
    uint64_t usable = v->estimate_bps * 9 / 10; /* headroom for RTX and RTCP */
    budget = usable > fixed ? usable - fixed : 0;
    /* FlexFEC to this viewer is inside the estimate: with one repair packet
     * per g video packets the layers get g/(g+1) of the video budget */
    int g = hd_session_fec_min_group(v);
    if (g > 0) budget = budget * (uint64_t)g / (uint64_t)(g + 1);
  }
  if (!settled && budget < UINT64_MAX / 4) {
    /* the same start-up settle a single-layer track gets: a first estimate
     * (REMB from Chromium starts near 80 kbit/s) says little for
     * HD_SESSION_SINGLE_SETTLE, so no visible simulcast track is paused for
     * it: each keeps at least its lowest live layer meanwhile */
    uint64_t lowest = 0;
    for (size_t k = 0; k < n; k++) {
      if (!a[k].visible) continue;
      for (int l = 0; l < a[k].n_layers; l++)
        if (a[k].bps[l]) {
          lowest += a[k].bps[l];
          break;
        }
    }
    if (budget < lowest) budget = lowest;
  }
  hd_alloc_run(a, n, budget, now);
  /* held back by the estimate? probe for the next step of the first track
   * (by priority) that could go higher */
  uint64_t sending = fixed + hd_alloc_used(a, n), goal = 0;
  int best_prio = INT32_MIN;
  for (size_t k = 0; k < n; k++) {
    const hd_alloc_track_t *x = &a[k];
    if (!x->visible || x->priority <= best_prio) continue;
    int top = x->max_layer < x->n_layers - 1 ? x->max_layer : x->n_layers - 1;
    for (int l = x->cur + 1; l <= top; l++) {
      if (!x->bps[l]) continue;
      uint64_t extra = x->bps[l] - (x->cur >= 0 && x->bps[x->cur] < x->bps[l] ? x->bps[x->cur] : 0);
      /* the estimate at which the allocator takes the upgrade: past its
       * headroom (9/10) and its upgrade margin */
      goal = (uint64_t)((double)(sending + extra) / (0.9 * HD_ALLOC_UP_MARGIN));
      best_prio = x->priority;
      break;
    }
  }
  if (v->bwe) {
    hd_bwe_set_desired(v->bwe, goal ? goal + goal / 10 : sending); /* its probes stop at what we would use */
    hd_bwe_set_held_back(v->bwe, goal != 0); /* and may lift it past 2x what we send now */
  } else if (goal && v->estimate_bps && c && hd_probe_want(&v->probe, v->estimate_bps, sending, goal, now))
    c->probes_started++;
  for (size_t k = 0; k < n; k++) {
    hd_out_track_t *t = &v->out[which[k]];
    hd_session_t *pub = t->src ? t->src : room_pub;
    uint64_t pauses = t->alloc.pauses;
    t->alloc = a[k];
    if (c && a[k].pauses > pauses && a[k].visible) c->layer_pauses++; /* for lack of bandwidth */
    int want = a[k].cur >= 0 ? order[k][a[k].cur] : -1;
    int want_tid = a[k].cur >= 0 ? tids[k][a[k].cur] : HD_TL_ALL;
    if (t->lim_tid && want_tid > t->lim_tid - 1) want_tid = t->lim_tid - 1; /* track_settings cap */
    if (want_tid != t->want_tid) { /* a frame rate change: no keyframe needed (sfu/temporal.h) */
      HD_LOGD("sfu", "session %s: track %s temporal layers <= %d -> <= %d", v->id, t->mid, t->want_tid,
              want_tid);
      t->want_tid = want_tid;
      if (t->tl) hd_tl_filter_set_target(t->tl, want_tid);
    }
    if (want == t->want_in) continue;
    HD_LOGD("sfu",
            "session %s: track %s layer %d -> %d (estimate %llu bps, budget %llu, layers %u/%u/%u bps)",
            v->id, t->mid, t->want_in, want, (unsigned long long)v->estimate_bps, (unsigned long long)budget,
            a[k].bps[0], a[k].n_layers > 1 ? a[k].bps[1] : 0, a[k].n_layers > 2 ? a[k].bps[2] : 0);
    t->want_in = want;
    /* the wanted layer starts at its next keyframe: ask for one now */
    if (want >= 0 && want != t->cur_in && c) hd_session_request_keyframe_track(pub, want, now, c);
  }
}

/* The send-side estimator's probe clusters (rtc/bwe.h): started when it asks,
 * released at the cluster's rate every CLUSTER_TICK, each packet tagged with
 * the cluster id so its feedback measures the cluster. */
static void run_clusters(hd_session_t *v, hd_session_t *room_pub, hd_time_t now, hd_session_counters_t *c) {
  /* a viewer that never sent feedback would learn nothing from a probe */
  if (!v->bwe->twcc_seen) return;
  if (!v->cluster.id && hd_bwe_next_timeout(v->bwe) <= now) {
    hd_bwe_probe_t pr;
    if (hd_bwe_next_probe(v->bwe, now, &pr) == 1) {
      v->cluster.id = pr.id;
      v->cluster.rate_bps = pr.bitrate_bps;
      v->cluster.bytes_left = (int64_t)pr.min_bytes;
      v->cluster.pkts_left = pr.min_packets;
      v->cluster.next_tick = now;
      v->cluster.credit = 0;
      c->probes_started++;
      if (v->pacer) hd_pacer_set_probe_rate(v->pacer, pr.bitrate_bps); /* media waiting goes at its rate */
    }
  }
  if (!v->cluster.id || now < v->cluster.next_tick) return;
  if (v->cluster.bytes_left <= 0 && v->cluster.pkts_left <= 0) {
    /* all of it is in the pacer: the cluster (and its rate there) ends when
     * its last padding has left, so what leaves until then is tagged as the
     * probe; at most CLUSTER_DRAIN_TICKS more ticks */
    v->cluster.next_tick = now + CLUSTER_TICK;
    if (v->pacer && v->pacer->count[HD_PACE_PADDING] && --v->cluster.pkts_left > -CLUSTER_DRAIN_TICKS) return;
    v->cluster.id = 0;
    if (v->pacer) hd_pacer_set_probe_rate(v->pacer, 0);
    return;
  }
  v->cluster.credit += (double)v->cluster.rate_bps * (double)CLUSTER_TICK / 8e6;
  if (v->cluster.credit < 300) { /* not a packet's worth yet: a slow cluster keeps its rate */
    v->cluster.next_tick = now + CLUSTER_TICK;
    return;
  }
  uint64_t due = (uint64_t)v->cluster.credit;
  uint64_t before = c->probe_bytes;
  v->cluster_id = v->cluster.id;
  hd_session_send_probe(v, room_pub, due, now, c);
  v->cluster_id = 0;
  uint64_t sent = c->probe_bytes - before;
  v->cluster.credit -= (double)sent;
  if (v->cluster.credit < 0) v->cluster.credit = 0;
  v->cluster.bytes_left -= (int64_t)sent;
  v->cluster.pkts_left -= sent ? (int)(sent / 300 + 1) : 0;
  if (v->cluster.pkts_left < 0) v->cluster.pkts_left = 0;
  v->cluster.next_tick = now + CLUSTER_TICK;
  if (sent == 0 || (v->cluster.bytes_left <= 0 && !(v->pacer && v->pacer->count[HD_PACE_PADDING]))) {
    v->cluster.id = 0;
    if (v->pacer) hd_pacer_set_probe_rate(v->pacer, 0);
  }
}

hd_time_t hd_session_next_timeout(const hd_session_t *s) {
  hd_time_t t = hd_peer_next_timeout(&s->peer);
  if (s->peer.state == HD_PEER_CONNECTED) {
    t = hd_time_min(t, s->next_rtcp);
    if (s->kind == HD_SESSION_PUBLISH && s->twcc.n) t = hd_time_min(t, s->next_twcc);
    if (s->kind == HD_SESSION_PUBLISH && s->remb_bps) t = hd_time_min(t, s->next_remb);
    if (s->kind != HD_SESSION_PUBLISH && s->n_out) {
      t = hd_time_min(t, s->next_alloc);
      t = hd_time_min(t, hd_probe_next_timeout(&s->probe));
      if (s->bwe && s->bwe->twcc_seen)
        t = hd_time_min(t, s->cluster.id ? s->cluster.next_tick : hd_bwe_next_timeout(s->bwe));
      if (s->pacer) t = hd_time_min(t, hd_pacer_next_timeout(s->pacer));
      t = hd_time_min(t, hd_session_tail_probe_at(s));
    }
    for (int i = 0; i < s->n_in; i++) {
      const hd_in_track_t *in = &s->in[i];
      if (in->pli_pending) t = hd_time_min(t, in->last_pli + PLI_MIN_INTERVAL);
      if (in->key_wanted_since) t = hd_time_min(t, key_retry_at(in));
      if (in->active && in->nack_enabled) t = hd_time_min(t, hd_nack_gen_next_timeout(&in->nack));
    }
  }
  return t;
}

static void send_twcc(hd_session_t *s, hd_session_counters_t *c) {
  uint32_t media_ssrc = 0;
  for (int i = s->n_in - 1; i >= 0; i--) /* any media SSRC of the session; prefer the first */
    if (s->in[i].have_ssrc) media_ssrc = s->in[i].ssrc;
  while (s->twcc.n) {
    size_t cap;
    uint8_t *out = hd_peer_tx_begin(&s->peer, &cap);
    if (!out) break;
    int n = hd_twcc_recv_build(&s->twcc, s->rtcp_ssrc, media_ssrc, out, cap);
    if (n <= 0 || hd_peer_tx_commit(&s->peer, (size_t)n, 1) < 0) break;
    c->twcc_sent++;
  }
  s->twcc.n = 0; /* what did not fit this time is not worth a late report */
}

/* Bitrate cap for the publisher (draft-alvestrand-rmcat-remb §2): REMB names
 * the SSRCs it applies to; senders treat it as a limit on the whole transport
 * (Chrome caps its TWCC-based target with it). */
static int send_remb(hd_session_t *s, hd_session_counters_t *c) {
  uint32_t ssrcs[HD_SESSION_MAX_TRACKS];
  size_t n = 0;
  for (int i = 0; i < s->n_in && n < HD_SESSION_MAX_TRACKS; i++)
    if (s->in[i].active && s->in[i].have_ssrc) ssrcs[n++] = s->in[i].ssrc;
  if (n == 0) return HD_EAGAIN; /* nothing received yet: no SSRC to name */
  size_t cap;
  uint8_t *out = hd_peer_tx_begin(&s->peer, &cap);
  if (!out) return HD_ENOSPC;
  int len = hd_rtcp_build_remb(s->rtcp_ssrc, s->remb_bps, ssrcs, n, out, cap);
  if (len < 0) return len;
  int rc = hd_peer_tx_commit(&s->peer, (size_t)len, 1);
  if (rc < 0) return rc;
  c->remb_sent++;
  return 0;
}

static void send_reports(hd_session_t *s, hd_session_t *pub, hd_time_t now, hd_time_t wall,
                         hd_session_counters_t *c) {
  size_t cap;
  uint8_t *out = hd_peer_tx_begin(&s->peer, &cap);
  if (!out) return;
  size_t off = 0;
  int n;
  if (s->kind == HD_SESSION_PUBLISH) {
    hd_rtcp_rr_t rr;
    memset(&rr, 0, sizeof rr);
    rr.ssrc = s->rtcp_ssrc;
    for (int i = 0; i < s->n_in && rr.rb_count < HD_RTCP_MAX_RB; i++) {
      hd_in_track_t *t = &s->in[i];
      if (t->active && t->have_ssrc && t->packets > 0 &&
          hd_rtp_recv_stats_report(&t->stats, now, &rr.rb[rr.rb_count]) == 0) {
        uint8_t q8 = rr.rb[rr.rb_count].fraction_lost;
        t->leg_loss_q8 = (uint16_t)(t->leg_loss_q8 ? (t->leg_loss_q8 * 3u + q8) / 4 : q8);
        rr.rb_count++;
      }
    }
    n = hd_rtcp_build_rr(&rr, out, cap);
    if (n < 0) return;
    off = (size_t)n;
    c->rr_sent++;
  } else {
    for (int i = 0; i < s->n_out; i++) {
      hd_out_track_t *t = &s->out[i];
      if (!t->active || t->packets == 0) continue;
      hd_rtcp_sr_t sr;
      memset(&sr, 0, sizeof sr);
      hd_session_t *src_pub;
      const hd_in_track_t *src = hd_session_source_of(t, pub, &src_pub);
      if (src && src->have_sr && src->ssrc == t->rw.src_ssrc) {
        /* Extrapolate the publisher's own NTP<->RTP mapping (RFC 3550 §6.4.1) so
         * the viewer syncs audio and video exactly as the publisher stamped them. */
        hd_time_t el = now - src->sr_arrival;
        sr.ssrc = t->ssrc;
        sr.ntp = src->sr_ntp + (uint64_t)(((__int128)el << 32) / 1000000);
        sr.rtp_ts = hd_rewriter_map_ts(&t->rw, src->sr_rtp + (uint32_t)((el * (int64_t)t->clock) / 1000000));
        sr.packet_count = t->sstats.packets;
        sr.octet_count = t->sstats.octets;
      } else if (hd_rtp_send_stats_sr(&t->sstats, now, wall, &sr) < 0) {
        continue;
      }
      n = hd_rtcp_build_sr(&sr, out + off, cap - off);
      if (n < 0) break;
      off += (size_t)n;
      c->sr_sent++;
      t->sr_mid32[t->sr_next] = hd_rtcp_ntp_mid32(sr.ntp);
      t->sr_sent_at[t->sr_next] = now;
      t->sr_next = (uint8_t)((t->sr_next + 1) % HD_OUT_SR_HIST);
    }
    if (off == 0) { /* nothing sent yet: an empty RR keeps the compound valid */
      hd_rtcp_rr_t rr;
      memset(&rr, 0, sizeof rr);
      rr.ssrc = s->rtcp_ssrc;
      n = hd_rtcp_build_rr(&rr, out, cap);
      if (n < 0) return;
      off = (size_t)n;
    }
  }
  n = hd_rtcp_build_sdes_cname(s->kind == HD_SESSION_PUBLISH || s->n_out == 0 ? s->rtcp_ssrc : s->out[0].ssrc,
                               "hudong", out + off, cap - off);
  if (n > 0) off += (size_t)n;
  hd_peer_tx_commit(&s->peer, off, 1);
}

/* Uplink repair: asks the publisher for what it sent but we did not get
 * (RFC 4585 §6.2.1); its RTX answers come back through the RTX path. */
static void send_nacks(hd_session_t *s, hd_in_track_t *t, hd_time_t now, hd_session_counters_t *c) {
  uint16_t seqs[64];
  size_t n = hd_nack_gen_poll(&t->nack, now, seqs, 64);
  if (n == 0) return;
  size_t cap;
  uint8_t *out = hd_peer_tx_begin(&s->peer, &cap);
  if (!out) return;
  int len = hd_rtcp_build_nack(s->rtcp_ssrc, t->ssrc, seqs, n, out, cap);
  if (len < 0 || hd_peer_tx_commit(&s->peer, (size_t)len, 1) < 0) return;
  c->nack_sent += n;
  /* On a publisher leg that loses HD_SESSION_NACK_TWICE_Q8 or more, a repair
   * round needs the NACK and a repair to get through: at 50% each way with
   * the repair sent twice (as the SDK does on a lossy leg) one round works
   * 37.5% of the time, and seven rounds in the 500 ms repair deadline all fail
   * for 3.7% of the lost packets (a keyframe request each). The NACK goes
   * twice too (a few dozen bytes): 56% a round, 0.3% all fail. */
  if (t->leg_loss_q8 < HD_SESSION_NACK_TWICE_Q8) return;
  uint8_t *again = hd_peer_tx_begin(&s->peer, &cap);
  if (!again || (size_t)len > cap) return;
  if (hd_rtcp_build_nack(s->rtcp_ssrc, t->ssrc, seqs, n, again, cap) == len &&
      hd_peer_tx_commit(&s->peer, (size_t)len, 1) >= 0)
    c->nacks_doubled++;
}

void hd_session_handle_timeout(hd_session_t *s, hd_session_t *pub, hd_time_t now, hd_time_t wall,
                               hd_session_counters_t *c) {
  hd_peer_handle_timeout(&s->peer, now);
  if (s->peer.state != HD_PEER_CONNECTED) return;
  if (s->kind == HD_SESSION_PUBLISH && s->twcc.n && now >= s->next_twcc) {
    send_twcc(s, c);
    s->next_twcc = now + TWCC_INTERVAL;
  } else if (s->kind == HD_SESSION_PUBLISH && now >= s->next_twcc) {
    s->next_twcc = now + TWCC_INTERVAL;
  }
  if (s->kind == HD_SESSION_PUBLISH && s->remb_bps && now >= s->next_remb)
    s->next_remb = now + (send_remb(s, c) == HD_EAGAIN ? REMB_RETRY : HD_SESSION_REMB_INTERVAL);
  for (int i = 0; i < s->n_in; i++) {
    hd_in_track_t *in = &s->in[i];
    if (in->pli_pending && now - in->last_pli >= PLI_MIN_INTERVAL)
      hd_session_request_keyframe_track(s, i, now, c);
    if (in->key_wanted_since && now >= key_retry_at(in)) {
      hd_time_t last = in->last_pli;
      hd_session_request_keyframe_track(s, i, now, c);
      if (in->last_pli != last)
        c->pli_retried++;
      else
        in->key_wanted_since = 0; /* cannot ask now (not connected, queue full): stop waiting */
    }
    if (in->active && in->nack_enabled && in->have_ssrc && hd_nack_gen_next_timeout(&in->nack) <= now)
      send_nacks(s, in, now, c);
    if (in->nack_enabled && in->nack.gave_up != in->nack_gave_up_seen) {
      /* a loss we could not repair in time: the viewers' decoders are stuck on
       * it, so one keyframe request now (rate-limited, merged with others) */
      in->nack_gave_up_seen = in->nack.gave_up;
      if (in->kind == HD_TRACK_VIDEO) {
        c->pli_unrepairable++;
        hd_session_request_keyframe_track(s, i, now, c);
      }
    }
  }
  if (s->pacer) hd_session_pace_flush(s, now, c); /* due media first: a probe behind it is refused */
  if (s->kind != HD_SESSION_PUBLISH && s->n_out) hd_session_tail_probe(s, pub, now, c);
  if (s->kind != HD_SESSION_PUBLISH && s->n_out && now >= s->next_alloc) {
    hd_session_allocate(s, pub, now, c);
    s->next_alloc = now + HD_SESSION_ALLOC_INTERVAL;
  }
  if (s->kind != HD_SESSION_PUBLISH && s->probe.active) {
    uint64_t due = hd_probe_due(&s->probe, now);
    if (due) hd_session_send_probe(s, pub, due, now, c);
  }
  if (s->bwe) run_clusters(s, pub, now, c);
  if (now >= s->next_rtcp) {
    send_reports(s, pub, now, wall, c);
    s->next_rtcp = now + RTCP_INTERVAL;
  }
}

void hd_session_count_estimate(hd_session_counters_t *c, uint64_t bps) {
  static const uint64_t bounds[] = HD_ESTIMATE_BOUNDS;
  size_t b = 0;
  while (b < sizeof bounds / sizeof bounds[0] && bps > bounds[b])
    b++;
  c->estimate_bucket[b]++;
  c->estimate_count++;
  c->estimate_sum += bps;
}
