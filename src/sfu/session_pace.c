/* Pacing of what the node sends a viewer (see session_pace.h). */
#include "sfu/session_pace.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "sfu/session_resend.h"
#include "sfu/session_fec.h"

static int g_pacer = 1;
static unsigned g_pacer_factor = HD_PACER_DEFAULT_FACTOR_PCT;
void hd_session_set_pacer(int on, unsigned factor_pct) {
  g_pacer = on ? 1 : 0;
  g_pacer_factor = factor_pct >= 100 ? factor_pct : HD_PACER_DEFAULT_FACTOR_PCT;
}

/* A packet carrying v->tw_seq went out on track t: report it to the
 * estimator (created on the first one) and move to the next seq. */
static void tw_sent(hd_session_t *v, const hd_out_track_t *t, size_t len, hd_time_t now) {
  if (!t->ext_twcc) return;
  if (!v->bwe) {
    v->bwe = calloc(1, sizeof *v->bwe);
    hd_bwe_config_t bc;
    hd_bwe_config_init(&bc);
    bc.initial_probes = HD_BWE_PROBES_GATED; /* a narrow viewer leg's queue takes no 6x burst */
    /* headroom above what a viewer gets is probed for (held back), not assumed */
    bc.app_limit_factor = HD_BWE_APP_LIMIT_PROBING;
    if (!v->bwe || hd_bwe_init(v->bwe, &bc, now) < 0) {
      free(v->bwe);
      v->bwe = NULL;
    }
  }
  if (v->bwe) hd_bwe_on_packet_sent(v->bwe, v->tw_seq, len, now, v->cluster_id);
  v->tw_seq++;
}

/* ---- pacing (rtc/pacer.h) ----
 * A packet is built in the tx queue slot as before; the viewer's pacer then
 * says whether it goes now (committed: SRTP and the tx queue) or waits (the
 * pacer keeps a copy and the slot is left uncommitted). A packet that waited
 * gets its transport-wide seq and abs-send-time when it really leaves, so the
 * estimators on both ends see the send time, not the forwarding time. */

static hd_pacer_t *viewer_pacer(hd_session_t *v, hd_time_t now) {
  if (!v->pacer && g_pacer) {
    hd_pacer_cfg_t cfg;
    hd_pacer_cfg_default(&cfg);
    cfg.factor_pct = g_pacer_factor;
    v->pacer = calloc(1, sizeof *v->pacer);
    if (v->pacer && hd_pacer_init(v->pacer, &cfg, now) < 0) {
      free(v->pacer);
      v->pacer = NULL;
    }
    if (v->pacer && v->cluster.id) hd_pacer_set_probe_rate(v->pacer, v->cluster.rate_bps);
  }
  if (v->pacer) hd_pacer_set_estimate(v->pacer, v->estimate_bps);
  return v->pacer;
}

/* Pacer tag bit of a resend that is the first send's exact bytes
 * (hd_session_pace_send_exact): left as it is when it leaves. */
#define TAG_EXACT 0x80000000u
/* Pacer tag bit of an RTX copy of a first send's exact bytes
 * (hd_session_pace_send_rtx_copy): its transport-wide seq is stamped as it
 * leaves, its abs-send-time is the first send's. */
#define TAG_KEEP_TIME 0x40000000u
#define TAG_INDEX 0x3fffffffu

/* What went out on t's media SSRC is recorded, byte for byte: where its
 * repairs go on that SSRC (no RTX: same SRTP index, sfu/resend_cache.h), and
 * where FlexFEC protects it (an RTX copy must unwrap to the bytes the repair
 * packets covered, hd_session_pace_send_rtx_copy). */
static int records(const hd_out_track_t *t) {
  /* RTX copies go without NACK too: probe bytes (sfu/probe.h) */
  return (t->nack && !t->rtx_enabled) || (t->rtx_enabled && t->fec_pt && t->kind == HD_TRACK_VIDEO);
}

/* 1 if pkt is on one of t's SSRCs (media, RTX, FlexFEC): a packet queued for
 * a track whose slot was reused by another since is not (hd_session_pace_flush). */
static int of_track(const hd_out_track_t *t, const uint8_t *pkt, size_t len) {
  if (len < 12) return 0;
  uint32_t s = (uint32_t)pkt[8] << 24 | (uint32_t)pkt[9] << 16 | (uint32_t)pkt[10] << 8 | pkt[11];
  return s == t->ssrc || (t->rtx_ssrc && s == t->rtx_ssrc) || (t->fec_ssrc && s == t->fec_ssrc);
}

/* 1 if pkt is on t's media SSRC (not its RTX stream). */
static int on_media_ssrc(const hd_out_track_t *t, const uint8_t *pkt, size_t len) {
  return len >= 12 &&
         ((uint32_t)pkt[8] << 24 | (uint32_t)pkt[9] << 16 | (uint32_t)pkt[10] << 8 | pkt[11]) == t->ssrc;
}

/* 1 if pkt is a first send on t's media SSRC of a seq that already went out. */
static int seq_taken(const hd_out_track_t *t, const uint8_t *pkt, size_t len, hd_time_t now) {
  return t->sent && on_media_ssrc(t, pkt, len) &&
         hd_resend_cache_sent(t->sent, (uint16_t)(pkt[2] << 8 | pkt[3]), now);
}

int64_t hd_session_out_seq_ext(const hd_out_track_t *t, uint16_t seq) {
  if (!t->media_any) return seq;
  return t->media_last_ext + (int16_t)(uint16_t)(seq - (uint16_t)t->media_last_ext);
}

/* Notes the first send of seq on t's media SSRC. */
static void first_sent(hd_out_track_t *t, uint16_t seq) {
  int64_t ext = hd_session_out_seq_ext(t, seq);
  if (!t->media_any || ext > t->media_last_ext) t->media_last_ext = ext;
  t->media_any = 1;
}

/* The last step before the packet pkt of track t is committed (sealed):
 * a packet on t's media SSRC whose seq already went out is refused (one SRTP
 * index, RFC 3711 §3.3.1, must never seal two plaintexts: RFC 7714 §8.3),
 * else recorded where t's repairs need its exact bytes. A resend of those
 * exact bytes (exact) passes. Returns 0 or HD_EREPLAY. */
static int before_commit(hd_out_track_t *t, const uint8_t *pkt, size_t len, int exact, hd_time_t now,
                         hd_session_counters_t *c) {
  if (exact || !on_media_ssrc(t, pkt, len)) return 0;
  uint16_t seq = (uint16_t)(pkt[2] << 8 | pkt[3]);
  if (!records(t)) {
    first_sent(t, seq);
    return 0;
  }
  if (!t->sent) {
    t->sent = malloc(sizeof *t->sent);
    int audio = t->kind == HD_TRACK_AUDIO;
    if (t->sent && hd_resend_cache_init(t->sent, audio ? HD_RESEND_AUDIO_SLOTS : HD_RESEND_VIDEO_SLOTS,
                                        audio ? HD_RESEND_AUDIO_BYTES : HD_RESEND_VIDEO_BYTES) < 0) {
      free(t->sent);
      t->sent = NULL;
    }
    if (!t->sent) { /* no memory: sent, and never resent (retransmit finds nothing) */
      first_sent(t, seq);
      return 0;
    }
  }
  if (seq_taken(t, pkt, len, now)) {
    if (c) c->same_index_refused++;
    return HD_EREPLAY;
  }
  /* FlexFEC: which seqs went out at all, so that a copy of one whose bytes
   * are gone is refused and one that never left is rebuilt (send_copy;
   * without memory for it copies are rebuilt, as before) */
  if (t->fec_pt && !t->sent->went) hd_resend_cache_keep_seqs(t->sent);
  hd_resend_cache_put(t->sent, seq, pkt, len, now);
  first_sent(t, seq);
  return 0;
}

/* 1 if pkt, committed now, is one FlexFEC to this viewer protects: a first
 * send on t's media SSRC (sfu/session_fec.h), in its final bytes. */
static int protects(const hd_out_track_t *t, const uint8_t *pkt, size_t len, int exact) {
  return t->fec_pt && !exact && on_media_ssrc(t, pkt, len);
}

static int pace_send(hd_session_t *v, hd_out_track_t *t, uint8_t *out, size_t n, int cls, int exact,
                     int keep_time, hd_time_t now, hd_session_counters_t *c) {
  /* no estimate yet (and nothing waiting): not paced, and not a cycle spent on it */
  hd_pacer_t *pc =
      g_pacer && (v->estimate_bps || (v->pacer && v->pacer->queued_packets)) ? viewer_pacer(v, now) : NULL;
  if (pc) {
    /* a seq already sent is refused here too, so that it does not take a place in the queue */
    if (!exact && seq_taken(t, out, n, now)) {
      if (c) c->same_index_refused++;
      return HD_EREPLAY;
    }
    uint32_t tag = (uint32_t)(t - v->out) | (exact ? TAG_EXACT : 0) | (keep_time ? TAG_KEEP_TIME : 0);
    int rc = hd_pacer_enqueue(pc, cls, out, n, tag, now);
    if (rc == 0) {
      if (c) c->paced++;
      return (int)n;
    }
    if (rc < 0) {
      if (c && cls == HD_PACE_PADDING) c->pacer_padding_refused++;
      if (c && cls != HD_PACE_PADDING) c->pacer_dropped++;
      return rc;
    }
  }
  int rc = before_commit(t, out, n, exact, now, c);
  if (rc < 0) return rc;
  hd_session_note_sent(t, out, n, !exact && t->ext_twcc ? v->tw_seq : -1, now); /* before SRTP seals it */
  uint8_t rep[HD_DATAGRAM_MAX]; /* its FlexFEC repair packet, if it closes a group */
  int rn = protects(t, out, n, exact) ? hd_session_fec_protect(v, t, out, n, rep, sizeof rep) : 0;
  rc = hd_peer_tx_commit(&v->peer, n, 0);
  if (rc < 0) return rc;
  if (!exact) tw_sent(v, t, n, now); /* an exact resend carries the first send's transport-wide seq */
  if (rn > 0) hd_session_fec_send(v, t, rep, (size_t)rn, now, c);
  return (int)n;
}

int hd_session_pace_send(hd_session_t *v, hd_out_track_t *t, uint8_t *out, size_t n, int cls, hd_time_t now,
                         hd_session_counters_t *c) {
  return pace_send(v, t, out, n, cls, 0, 0, now, c);
}

int hd_session_pace_send_rtx_copy(hd_session_t *v, hd_out_track_t *t, uint8_t *out, size_t n, int cls,
                                  hd_time_t now, hd_session_counters_t *c) {
  if (t->ext_twcc) { /* its transport-wide seq if it goes now (restamped if it waits) */
    uint8_t tw[2];
    hd_rtp_twcc_seq_write(tw, v->tw_seq);
    hd_rtp_ext_rewrite(out, n, t->ext_twcc, tw, sizeof tw);
  }
  return pace_send(v, t, out, n, cls, 0, 1, now, c);
}

int hd_session_pace_send_exact(hd_session_t *v, hd_out_track_t *t, uint8_t *out, size_t n, hd_time_t now,
                               hd_session_counters_t *c) {
  return pace_send(v, t, out, n, HD_PACE_RTX, 1, 0, now, c);
}

/* Writes the send-time header extensions of a packet leaving the pacer
 * (keep_time: the transport-wide seq only). */
static void restamp(const hd_session_t *v, const hd_out_track_t *t, uint8_t *pkt, size_t len, int keep_time,
                    hd_time_t now) {
  if (!t->ext_twcc && !t->ext_abs_send_time) return;
  hd_rtp_hdr_t h;
  const uint8_t *d;
  size_t dl;
  if (hd_rtp_parse(pkt, len, &h) < 0) return;
  if (t->ext_twcc && hd_rtp_ext_find(&h, t->ext_twcc, &d, &dl) == 0 && dl == 2)
    hd_rtp_twcc_seq_write(pkt + (d - pkt), v->tw_seq);
  if (!keep_time && t->ext_abs_send_time && hd_rtp_ext_find(&h, t->ext_abs_send_time, &d, &dl) == 0 &&
      dl == 3)
    hd_rtp_abs_send_time_write(pkt + (d - pkt), hd_rtp_abs_send_time_from_us(now));
}

/* Releases what v's pacer lets go at `now` into the tx queue. During a probe
 * cluster what leaves (media first, then the cluster's padding) leaves at the
 * cluster's rate and is the probe: tagged with its id. */
void hd_session_pace_flush(hd_session_t *v, hd_time_t now, hd_session_counters_t *c) {
  const hd_pacer_pkt_t *k;
  uint8_t rep[HD_DATAGRAM_MAX]; /* a FlexFEC repair packet a released packet completes */
  hd_pacer_set_estimate(v->pacer, v->estimate_bps);
  int saved_cluster = v->cluster_id;
  v->cluster_id = v->cluster.id;
  while ((k = hd_pacer_peek(v->pacer, now))) {
    size_t cap;
    uint8_t *out = hd_peer_tx_begin(&v->peer, &cap);
    if (!out) break; /* tx queue full: the rest after it drains (the deadline stays due) */
    uint32_t idx = k->tag & TAG_INDEX;
    int exact = (k->tag & TAG_EXACT) != 0;
    /* its track is gone (its slot may carry another track since) */
    if (idx >= (uint32_t)v->n_out || !v->out[idx].active || k->len > cap ||
        !of_track(&v->out[idx], k->data, k->len)) {
      hd_pacer_sent(v->pacer, now);
      continue;
    }
    hd_out_track_t *t = &v->out[idx];
    size_t len = k->len;
    memcpy(out, k->data, len);
    if (!exact) restamp(v, t, out, len, (k->tag & TAG_KEEP_TIME) != 0, now);
    hd_pacer_sent(v->pacer, now);
    if (before_commit(t, out, len, exact, now, c) < 0) {
      if (c) c->pacer_dropped++;
      continue;
    }
    hd_session_note_sent(t, out, len, !exact && t->ext_twcc ? v->tw_seq : -1, now);
    int rn = protects(t, out, len, exact) ? hd_session_fec_protect(v, t, out, len, rep, sizeof rep) : 0;
    if (hd_peer_tx_commit(&v->peer, len, 0) < 0) {
      if (c) c->pacer_dropped++;
      continue;
    }
    if (!exact) tw_sent(v, t, len, now);
    /* queued behind what is due now (the pacer's retransmission class) */
    if (rn > 0) hd_session_fec_send(v, t, rep, (size_t)rn, now, c);
  }
  v->cluster_id = saved_cluster;
}
