/* FlexFEC from the node to its viewers: see session_fec.h. */
#include "sfu/session_fec.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/rand.h"
#include "proto/rtp.h"
#include "rtc/flexfec_send.h"
#include "sfu/session_pace.h"

static hd_flexfec_send_t *sender(hd_out_track_t *t) {
  if (!t->fec && (t->fec = malloc(sizeof *t->fec)) != NULL)
    hd_flexfec_send_init(t->fec, (uint16_t)hd_random_u32());
  return t->fec;
}

/* The leg's loss from transport-wide feedback: the interval open since the
 * last one closed, if it now holds HD_SESSION_FEC_LOSS_PKTS reported
 * packets, closes; its loss stays until the next one closes. */
static void tw_interval(hd_session_t *v) {
  if (!v->bwe) return;
  uint64_t acked = v->bwe->st.acked, lost = v->bwe->st.lost;
  if (acked < v->fec_tw_acked0 || lost < v->fec_tw_lost0) { /* the estimator started afresh */
    v->fec_tw_acked0 = acked;
    v->fec_tw_lost0 = lost;
    return;
  }
  uint64_t n = (acked - v->fec_tw_acked0) + (lost - v->fec_tw_lost0);
  if (n < HD_SESSION_FEC_LOSS_PKTS) return;
  v->fec_tw_loss = (double)(lost - v->fec_tw_lost0) / (double)n;
  v->fec_tw_have = 1;
  v->fec_tw_acked0 = acked;
  v->fec_tw_lost0 = lost;
}

void hd_session_fec_on_report(hd_session_t *v, hd_out_track_t *t, uint8_t fraction_lost) {
  if (!t->fec_pt) return;
  hd_flexfec_send_t *f = sender(t);
  if (!f) return;
  double loss = fraction_lost / 256.0;
  tw_interval(v);
  if (v->fec_tw_have && v->fec_tw_loss > loss) loss = v->fec_tw_loss;
  hd_flexfec_send_on_report(f, loss);
}

int hd_session_fec_group(const hd_session_t *v, const hd_out_track_t *t) {
  if (!t->active || !t->fec_pt || !t->fec) return 0;
  return hd_flexfec_send_group(t->fec, v->rtt_samples ? v->rtt : 0, t->nack);
}

int hd_session_fec_min_group(const hd_session_t *v) {
  int g = 0;
  for (int i = 0; i < v->n_out; i++) {
    int k = hd_session_fec_group(v, &v->out[i]);
    if (k > 0 && (g == 0 || k < g)) g = k;
  }
  return g;
}

int hd_session_fec_renegotiated(hd_out_track_t *t, const hd_sdp_media_negotiated_t *m) {
  /* the rule of hd_session_add_out_track */
  uint8_t pt =
      t->kind == HD_TRACK_VIDEO && m->remote_fec_ssrc && m->remote_fec_ssrc != t->ssrc ? m->fec_pt : 0;
  uint32_t ssrc = pt ? m->remote_fec_ssrc : 0;
  if (pt == t->fec_pt && ssrc == t->fec_ssrc) return 0;
  t->fec_pt = pt;
  t->fec_ssrc = ssrc;
  if (t->fec) {
    /* the open group and the plan go; the repair seq goes on: a repair
     * stream on the same SSRC that restarted at a random seq would reuse
     * SRTP indices already sent, and SRTP refuses those (RFC 3711 §3.3.1) */
    uint64_t sent = t->fec->sent;
    hd_flexfec_send_init(t->fec, t->fec->seq);
    t->fec->sent = sent;
  }
  return 1;
}

int hd_session_fec_protect(hd_session_t *v, hd_out_track_t *t, const uint8_t *pkt, size_t len, uint8_t *out,
                           size_t cap) {
  if (!t->fec_pt || t->kind != HD_TRACK_VIDEO) return 0;
  int group = hd_session_fec_group(v, t);
  if (!group && !t->fec) return 0;
  hd_flexfec_send_t *f = sender(t);
  if (!f) return HD_ENOMEM;
  int marker = len >= 2 && (pkt[1] & 0x80);
  return hd_flexfec_send_add(f, group, pkt, len, marker, t->ext_twcc, t->fec_pt, t->fec_ssrc, out, cap);
}

void hd_session_fec_send(hd_session_t *v, hd_out_track_t *t, const uint8_t *rep, size_t rn, hd_time_t now,
                         hd_session_counters_t *c) {
  size_t cap;
  uint8_t *out = hd_peer_tx_begin(&v->peer, &cap);
  if (!out || rn > cap) return;
  memcpy(out, rep, rn);
  if (t->ext_twcc) { /* its transport-wide seq if it goes now (the pacer restamps it if it waits) */
    uint8_t tw[2];
    hd_rtp_twcc_seq_write(tw, v->tw_seq);
    hd_rtp_ext_rewrite(out, rn, t->ext_twcc, tw, sizeof tw);
  }
  /* a retransmission's class: it leaves right behind the group it repairs,
   * before video queued after that group */
  if (hd_session_pace_send(v, t, out, rn, HD_PACE_RTX, now, c) < 0) return;
  t->fec_sent++;
  if (c) c->fec_sent++;
}
