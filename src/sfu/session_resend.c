/* Repairs and probe bytes a node sends a viewer (see session_resend.h). */
#include "sfu/session_resend.h"

#include <string.h>

#include "base/err.h"
#include "sfu/session_forward.h"
#include "sfu/session_pace.h"

void hd_session_rtx_hist_mark(hd_out_track_t *t, uint16_t out_seq, hd_time_t now) {
  size_t i = out_seq & (HD_OUT_RTX_HIST - 1);
  t->rtx_hist_seq[i] = out_seq;
  t->rtx_hist_at[i] = now;
}

/* Wraps an RTP packet (already in the viewer's numbering) as RTX (RFC 4588 §4)
 * into out. Returns the length or a negative error. */
int hd_session_wrap_rtx(hd_out_track_t *t, const uint8_t *pkt, size_t len, uint8_t *out, size_t cap) {
  int n = hd_rtp_rtx_build(pkt, len, t->rtx_ssrc, t->rtx_pt, t->rtx_seq, out, cap);
  if (n >= 0) t->rtx_seq++;
  return n;
}

/* The publisher session and track an out track follows right now (src may be NULL). */
hd_in_track_t *hd_session_source_of(const hd_out_track_t *t, hd_session_t *room_pub, hd_session_t **pub_out) {
  hd_session_t *pub = t->src ? t->src : (t->follow_room_pub ? room_pub : NULL);
  int idx = hd_session_followed_head(t, pub);
  /* a simulcast source: the layer being forwarded */
  if (idx >= 0 && t->cur_in >= 0 && t->cur_in < pub->n_in && pub->in[t->cur_in].head == idx) idx = t->cur_in;
  *pub_out = pub;
  return pub && idx >= 0 && idx < pub->n_in ? &pub->in[idx] : NULL;
}

hd_out_track_t *hd_session_out_by_ssrc(hd_session_t *s, uint32_t ssrc) {
  for (int i = 0; i < s->n_out; i++)
    if (s->out[i].active && s->out[i].ssrc == ssrc) return &s->out[i];
  return NULL;
}

/* How soon the same seq may be resent to one viewer: a repeated NACK inside
 * about one round trip crossed our answer in flight. */
static hd_time_t resend_interval(const hd_session_t *v) {
  if (v->rtt <= 0) return HD_RTP_CACHE_DEFAULT_RESEND;
  hd_time_t iv = v->rtt * 3 / 4;
  return iv < HD_MS(5) ? HD_MS(5) : iv;
}

static int send_copy(hd_session_t *v, hd_out_track_t *t, hd_session_t *pub, const uint8_t *orig, size_t olen,
                     uint16_t out_seq, int cls, hd_time_t now, hd_session_counters_t *c);

/* The viewer reports more than ~2% loss (HD_SESSION_LOSSY_Q8): repairs go twice
 * -- unless it loses because it is sent more than it carries (hd_bwe_congested). */
static int lossy_leg(const hd_session_t *v) {
  return v->loss_q8 >= HD_SESSION_LOSSY_Q8 && !hd_bwe_congested(v->bwe);
}

/* 1 if out seq `out_seq` of t is a packet the publisher's leg lost and the
 * node is still asking the publisher for (its repair is forwarded to t the
 * moment it arrives, forward_one). */
static int repairing_upstream(hd_out_track_t *t, hd_session_t *room_pub, uint16_t out_seq) {
  uint16_t src_seq;
  hd_session_t *pub;
  hd_in_track_t *src = hd_session_source_of(t, room_pub, &pub);
  if (!src || !src->nack_enabled || hd_rewriter_unmap_seq(&t->rw, out_seq, &src_seq) < 0) return 0;
  if (t->tl && hd_tl_filter_unmap(t->tl, src_seq, &src_seq) != HD_TL_FORWARD) return 0;
  return hd_nack_gen_is_missing(&src->nack, src_seq);
}

/* A repair on t's media SSRC (no RTX): the same seq is the same SRTP index,
 * so it is the first send's exact bytes (sfu/resend_cache.h) or nothing. */
static int resend_exact(hd_session_t *v, hd_out_track_t *t, hd_session_t *room_pub, uint16_t out_seq,
                        int probe, hd_time_t now, hd_session_counters_t *c) {
  const uint8_t *pkt;
  size_t len;
  if (!t->sent || hd_resend_cache_get(t->sent, out_seq, now, &pkt, &len) < 0) {
    if (probe) return 0; /* unasked: no NACK went unanswered */
    t->nacks_unanswered++;
    if (!(t->sent && hd_resend_cache_sent(t->sent, out_seq, now)) &&
        repairing_upstream(t, room_pub, out_seq)) {
      t->nacks_deferred++;
      c->nack_deferred++;
    } else { /* never sent, or its bytes are gone: nothing may go under that seq */
      c->nack_unrepairable++;
    }
    return 0;
  }
  /* on a lossy viewer leg twice, as retransmit does (the same bytes again) */
  int copies = lossy_leg(v) ? 2 : 1, sent = 0;
  for (int i = 0; i < copies; i++) {
    size_t cap;
    uint8_t *out = hd_peer_tx_begin(&v->peer, &cap);
    if (!out || len > cap) break;
    memcpy(out, pkt, len);
    if (hd_session_pace_send_exact(v, t, out, len, now, c) < 0) break;
    sent++;
  }
  if (!sent) return 0;
  if (sent == 2) c->repairs_doubled++;
  if (!probe) hd_session_rtx_hist_mark(t, out_seq, now);
  t->retransmits++;
  c->retransmitted++;
  c->resent_exact++;
  return 1;
}

/* A NACK that could not be answered (probe: a tail-loss probe, which no
 * NACK asked for, so none went unanswered). */
static void unanswered(hd_out_track_t *t, int probe, hd_session_counters_t *c) {
  if (probe) return;
  t->nacks_unanswered++;
  c->nack_unrepairable++;
}

/* Resends out seq out_seq of viewer track t, for a NACK or (probe) as a
 * tail-loss probe. A probe's resend is not noted in the resend history: a
 * NACK for the seq right after it (the probe may be lost as well, and the
 * NACK is the real repair) is answered. Returns 1 when it went out. */
static int resend(hd_session_t *v, hd_out_track_t *t, hd_session_t *room_pub, uint16_t out_seq, int probe,
                  hd_time_t now, hd_session_counters_t *c) {
  size_t slot = out_seq & (HD_OUT_RTX_HIST - 1);
  if (t->rtx_hist_seq[slot] == out_seq && t->rtx_hist_at[slot] != 0 &&
      now - t->rtx_hist_at[slot] < resend_interval(v))
    return 0; /* just sent: the answer is on its way */
  if (!t->rtx_enabled) return resend_exact(v, t, room_pub, out_seq, probe, now, c);
  uint16_t src_seq;
  hd_session_t *pub;
  hd_in_track_t *src = hd_session_source_of(t, room_pub, &pub);
  if (!src || !src->have_cache || hd_rewriter_unmap_seq(&t->rw, out_seq, &src_seq) < 0) {
    unanswered(t, probe, c);
    return 0;
  }
  if (t->tl) { /* through the temporal filter's history (sfu/temporal.h) */
    uint16_t kept = src_seq;
    int tv = hd_tl_filter_unmap(t->tl, kept, &src_seq);
    if (tv == HD_TL_PAD) { /* went out as padding: again (as RTX) */
      if (hd_session_send_media_padding(v, t, out_seq, t->rw.last_out_ts, 1, now, c) < 0) {
        unanswered(t, probe, c);
        return 0;
      }
      return 1;
    }
    if (tv < 0) {
      unanswered(t, probe, c);
      return 0;
    }
  }
  const uint8_t *orig;
  size_t olen;
  /* per viewer, not per cache: one viewer's repair must not hold back another's */
  if (hd_rtp_cache_peek(&src->cache, src_seq, now, &orig, &olen) < 0) {
    if (probe) return 0;
    t->nacks_unanswered++;
    if (src->nack_enabled && hd_nack_gen_is_missing(&src->nack, src_seq)) {
      /* lost on the publisher's leg too and being repaired there: the repair
       * goes to this viewer as RTX the moment it arrives (forward_one) */
      t->nacks_deferred++;
      c->nack_deferred++;
    } else {
      c->nack_unrepairable++;
    }
    return 0;
  }
  int n = send_copy(v, t, pub, orig, olen, out_seq, HD_PACE_RTX, now, c);
  if (n == HD_EPROTO) unanswered(t, probe, c);
  if (n < 0) return 0;
  /* on a lossy viewer leg a lost repair costs the viewer another round trip
   * (and a freeze): send it twice (two losses in a row are p^2) */
  if (lossy_leg(v) && send_copy(v, t, pub, orig, olen, out_seq, HD_PACE_RTX, now, c) > 0)
    c->repairs_doubled++;
  if (!probe) hd_session_rtx_hist_mark(t, out_seq, now);
  t->retransmits++;
  c->retransmitted++;
  return 1;
}

void hd_session_retransmit(hd_session_t *v, hd_out_track_t *t, hd_session_t *room_pub, uint16_t out_seq,
                           hd_time_t now, hd_session_counters_t *c) {
  resend(v, t, room_pub, out_seq, 0, now, c);
}

void hd_session_note_sent(hd_out_track_t *t, const uint8_t *pkt, size_t len, int32_t tw_seq, hd_time_t now) {
  if (t->kind != HD_TRACK_VIDEO || len < 12) return;
  uint32_t ssrc = (uint32_t)pkt[8] << 24 | (uint32_t)pkt[9] << 16 | (uint32_t)pkt[10] << 8 | pkt[11];
  uint16_t seq = (uint16_t)(pkt[2] << 8 | pkt[3]);
  /* RTX fills a gap and reveals none; the same seq again is a resend (no RTX) */
  if (ssrc != t->ssrc || seq == t->tail_seq) return;
  t->tail_at = pkt[1] & 0x80 ? now : 0;
  t->tail_seq = seq;
  t->tail_tw_known = tw_seq >= 0;
  t->tail_tw = (uint16_t)(tw_seq >= 0 ? tw_seq : 0);
}

void hd_session_tail_acked(hd_session_t *v, const hd_rtcp_twcc_t *fb, const hd_rtcp_twcc_pkt_t *pkts,
                           size_t n, hd_session_counters_t *c) {
  for (int i = 0; i < v->n_out; i++) {
    hd_out_track_t *t = &v->out[i];
    if (!t->active || !t->tail_at || !t->tail_tw_known) continue;
    size_t k = (uint16_t)(t->tail_tw - fb->base_seq); /* pkts[k] reports base_seq + k */
    if (k >= n || pkts[k].seq != t->tail_tw || pkts[k].status == HD_TWCC_NOT_RECEIVED) continue;
    t->tail_at = 0; /* it arrived: nothing to probe (an ACK cancels a pending probe, RFC 8985 §7) */
    c->tail_probes_acked++;
  }
}

/* How long a tail packet waits for what follows it (HD_SESSION_TAIL_PROBE_RTT_PCT). */
static hd_time_t tail_delay(const hd_session_t *v) {
  hd_time_t d = v->rtt > 0 ? v->rtt * HD_SESSION_TAIL_PROBE_RTT_PCT / 100 : 0;
  return d > HD_SESSION_TAIL_PROBE ? d : HD_SESSION_TAIL_PROBE;
}

hd_time_t hd_session_tail_probe_at(const hd_session_t *v) {
  hd_time_t at = HD_TIME_NEVER;
  if (!lossy_leg(v)) return at;
  hd_time_t d = tail_delay(v);
  for (int i = 0; i < v->n_out; i++)
    if (v->out[i].active && v->out[i].tail_at) at = hd_time_min(at, v->out[i].tail_at + d);
  return at;
}

void hd_session_tail_probe(hd_session_t *v, hd_session_t *room_pub, hd_time_t now, hd_session_counters_t *c) {
  if (!lossy_leg(v)) return;
  hd_time_t d = tail_delay(v);
  for (int i = 0; i < v->n_out; i++) {
    hd_out_track_t *t = &v->out[i];
    if (!t->active || !t->tail_at || now - t->tail_at < d) continue;
    hd_time_t waited = now - t->tail_at;
    t->tail_at = 0;
    if (waited > HD_RTP_CACHE_DEFAULT_MAX_AGE) continue; /* the leg turned lossy since: stale */
    /* from its cache, RTX, twice on this leg -- as for a NACK, but counted apart */
    if (resend(v, t, room_pub, t->tail_seq, 1, now, c))
      c->tail_probes++;
    else
      c->tail_probes_failed++;
  }
}

/* Sends the viewer its copy of the cached source packet orig as out_seq, as
 * RTX (RFC 4588 §4: its own SSRC and seq, so a new SRTP index); on a track
 * FlexFEC protects, the first send's exact bytes as RTX. Without RTX a copy
 * would be rebuilt under the first send's index: see resend_exact.
 * Returns the bytes sent, HD_EPROTO when the packet is not of the stream
 * being sent, t has no RTX or (FlexFEC) the first send's bytes are gone,
 * HD_EAGAIN (FlexFEC) when out_seq has not gone out on the media SSRC yet,
 * or another negative error. */
static int send_copy(hd_session_t *v, hd_out_track_t *t, hd_session_t *pub, const uint8_t *orig, size_t olen,
                     uint16_t out_seq, int cls, hd_time_t now, hd_session_counters_t *c) {
  hd_rtp_hdr_t h;
  if (!t->rtx_enabled || hd_rtp_parse(orig, olen, &h) < 0 || h.ssrc != t->rw.src_ssrc) return HD_EPROTO;
  size_t cap;
  uint8_t *out = hd_peer_tx_begin(&v->peer, &cap);
  if (!out) return HD_ENOSPC;
  if (t->fec_pt && t->kind == HD_TRACK_VIDEO) {
    /* FlexFEC covered the first send's bytes (sfu/session_fec.h): a copy
     * rebuilt now would carry another abs-send-time, maybe a playout-delay
     * element the first send lacked (a longer header), and a repair packet
     * that counts on the viewer's unwrapped copy would rebuild its missing
     * packet wrong. The first send's bytes as RTX, or nothing. */
    const uint8_t *first;
    size_t flen;
    if (t->sent && hd_resend_cache_get(t->sent, out_seq, now, &first, &flen) == 0) {
      int n = hd_session_wrap_rtx(t, first, flen, out, cap);
      return n < 0 ? n : hd_session_pace_send_rtx_copy(v, t, out, (size_t)n, cls, now, c);
    }
    int64_t ext = hd_session_out_seq_ext(t, out_seq);
    /* not sent on the media SSRC yet (it waits in the pacer, built with the
     * header state of then): its final bytes do not exist yet; it is on its
     * way, so a NACK needs no answer and a probe takes another packet */
    if (!t->media_any || ext > t->media_last_ext) return HD_EAGAIN;
    /* it went out and its record is gone (its slot taken by a newer seq,
     * the arena wrapped, or too old): those bytes cannot be made again */
    if (hd_resend_cache_went_out(t->sent, out_seq)) {
      if (c) c->fec_copy_refused++;
      return HD_EPROTO;
    }
    /* it never left on the media SSRC (dropped from the pacer or the tx
     * queue) or left before its bytes were recorded: FlexFEC never covered
     * it, a rebuilt copy is the only one */
  }
  uint8_t tmp[HD_DATAGRAM_MAX];
  int n =
      hd_session_build_out(v, t, pub, &h, out_seq, hd_rewriter_map_ts(&t->rw, h.ts), now, tmp, sizeof tmp);
  if (n < 0) return n;
  if (t->codec_id == CODEC_VP8) hd_session_vp8_out(t, h.ssrc, tmp + n - h.payload_len, h.payload_len, 0);
  n = hd_session_wrap_rtx(t, tmp, (size_t)n, out, cap);
  if (n < 0) return n;
  return hd_session_pace_send(v, t, out, (size_t)n, cls, now, c);
}

/* One padding-only packet on t's RTX stream: the largest padding RTP allows
 * (a 1-byte count, so 255 bytes), with abs-send-time for the receiver's
 * estimator. Returns the bytes sent or a negative error. */
static int send_padding(hd_session_t *v, hd_out_track_t *t, hd_time_t now, hd_session_counters_t *c) {
  size_t cap;
  uint8_t *out = hd_peer_tx_begin(&v->peer, &cap);
  if (!out) return HD_ENOSPC;
  hd_rtp_ext_t ext[2];
  uint8_t ast[3], tw[2];
  size_t ne = 0;
  if (t->ext_twcc) {
    hd_rtp_twcc_seq_write(tw, v->tw_seq);
    ext[ne++] = (hd_rtp_ext_t){t->ext_twcc, 2, tw};
  }
  if (t->ext_abs_send_time) {
    hd_rtp_abs_send_time_write(ast, hd_rtp_abs_send_time_from_us(now));
    ext[ne++] = (hd_rtp_ext_t){t->ext_abs_send_time, 3, ast};
  }
  hd_rtp_build_t b = {.pt = t->rtx_pt,
                      .seq = t->rtx_seq,
                      .ts = t->rw.last_out_ts,
                      .ssrc = t->rtx_ssrc,
                      .exts = ext,
                      .ext_count = ne,
                      .pad_len = 255};
  int n = hd_rtp_build(&b, NULL, 0, out, cap);
  if (n < 0) return n;
  int rc = hd_session_pace_send(v, t, out, (size_t)n, HD_PACE_PADDING, now, c);
  if (rc < 0) return rc;
  t->rtx_seq++;
  return n;
}

/* Probe bytes (sfu/probe.h): RTX copies of the newest packets of the video
 * the viewer receives, cycling back through the last 64. */
void hd_session_send_probe(hd_session_t *v, hd_session_t *room_pub, uint64_t due, hd_time_t now,
                           hd_session_counters_t *c) {
  uint64_t sent = 0;
  for (int round = 0; round < 64 && sent < due; round++) {
    int any = 0;
    for (int i = 0; i < v->n_out && sent < due; i++) {
      hd_out_track_t *t = &v->out[i];
      hd_session_t *pub;
      hd_in_track_t *src = t->active && t->kind == HD_TRACK_VIDEO && t->rtx_enabled && t->packets
                               ? hd_session_source_of(t, room_pub, &pub)
                               : NULL;
      if (!src || !src->have_cache) continue;
      int64_t ext = t->rw.src_max_ext - (int64_t)((v->probe_cursor + (unsigned)round) % 64);
      if (ext < t->rw.src_base_ext) continue;
      const uint8_t *orig;
      size_t olen;
      /* the rewriter's input seq; under the temporal filter not the source's */
      uint16_t kept = (uint16_t)ext, src_seq = kept;
      if (t->tl && hd_tl_filter_unmap(t->tl, kept, &src_seq) != HD_TL_FORWARD) continue;
      if (hd_rtp_cache_peek(&src->cache, src_seq, now, &orig, &olen) < 0) continue;
      int n = send_copy(v, t, pub, orig, olen, (uint16_t)(kept + t->rw.seq_offset), HD_PACE_PADDING, now, c);
      if (n == HD_ENOSPC) return;  /* the tx queue or the pacer is full */
      if (n == HD_EAGAIN) any = 1; /* still in the pacer (FlexFEC): an older one next round */
      if (n > 0) {
        sent += (uint64_t)n;
        any = 1;
      }
    }
    if (!any && round > 0 && sent == 0) break;
  }
  /* nothing to copy (the track is paused, or nothing sent yet): padding-only
   * RTX packets (RFC 3550 §5.1 padding, RFC 4588 RTX SSRC), which receivers
   * count toward their estimate and otherwise drop */
  for (int i = 0; i < v->n_out && sent < due; i++) {
    hd_out_track_t *t = &v->out[i];
    if (!t->active || t->kind != HD_TRACK_VIDEO || !t->rtx_enabled) continue;
    for (int k = 0; k < 64 && sent < due; k++) {
      int n = send_padding(v, t, now, c);
      if (n <= 0) break;
      sent += (uint64_t)n;
    }
    break;
  }
  v->probe_cursor++;
  v->probe.bytes_sent += sent;
  c->probe_bytes += sent;
}
