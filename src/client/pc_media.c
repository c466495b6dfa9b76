/* Client PeerConnection media (see pc.h): RTP out with header extensions
 * (RFC 8285: mid RFC 9143 §15, abs-send-time, transport-wide-cc, audio level
 * RFC 6464), the retransmission cache answering generic NACKs with RTX
 * (RFC 4585 §6.2.1, RFC 4588 §4); RTP in demultiplexed by SSRC / mid / payload
 * type (RFC 9143 §9.2), RTX unwrapped, duplicates dropped, NACK generation; RTCP
 * SR/RR + SDES compound reports (RFC 3550 §6.4, §6.5), RTT (§6.4.1), PLI/FIR
 * (RFC 4585 §6.3.1, RFC 5104 §4.3.1) and REMB (draft-alvestrand-rmcat-remb). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "client/pc_fec.h"
#include "client/pc_internal.h"
#include "proto/rtcp.h"

#define NACK_BATCH 64
#define TWCC_MAX_PKTS 1024
#define PACE_BURST_US 10000 /* the bucket holds 10 ms at the pacing rate: the loop ticks every 5 ms */
/* The pacer holds at most this much (pc_pace_rate's drain rule). It was
 * 250 ms: with repairs in the queue the receiver's NACK retries (every
 * 1.25 x its rtt, which does not count this queue) came while the copies
 * still waited, each retry queued more copies, and on a lossy leg at
 * 1.5 Mbit/s the repairs grew to ~4 per loss and filled the queue (video
 * refused, the viewer stalled: docs/bwe.md "The SDK publisher's probes",
 * test_client_publisher_probe test_lossy_uplink_no_stall) */
#define PACE_MAX_QUEUE_US 100000

/* ---- send-side estimate and pacing ---- */

static void bwe_start(hd_pc_t *pc, hd_time_t now) {
  if (pc->bwe) return;
  hd_bwe_t *b = malloc(sizeof *b);
  if (!b) return;
  hd_bwe_config_t bc;
  hd_bwe_config_init(&bc);
  /* Probes (pc_probe_run): the start-up clusters at 3x / 6x the start rate,
   * the 6x one only after the 3x one's result and not into a path under a
   * quarter of it, as the node's viewer legs (HD_BWE_PROBES_GATED); without
   * them the estimate climbed from 300 kbit/s with the media alone (AIMD,
   * 8 %/s: ~15-20 s to 1.5 Mbit/s, docs/bwe.md) */
  bc.initial_probes = pc->cfg.probe ? HD_BWE_PROBES_GATED : 0;
  if (!pc->cfg.probe || pc->cfg.probe_interval < 0)
    bc.probe_interval = 0;
  else if (pc->cfg.probe_interval > 0)
    bc.probe_interval = pc->cfg.probe_interval;
  if (pc->cfg.app_limit_factor > 0) bc.app_limit_factor = pc->cfg.app_limit_factor;
  if (hd_bwe_init(b, &bc, now) < 0) {
    free(b);
    return;
  }
  if (pc->desired_bps) hd_bwe_set_desired(b, pc->desired_bps);
  pc->bwe = b;
  pc->pace_last = now;
}

void hd_pc_set_send_desired(hd_pc_t *pc, uint64_t bps) {
  if (!pc) return;
  pc->desired_bps = bps;
  if (pc->bwe) hd_bwe_set_desired(pc->bwe, bps ? bps : pc->bwe->cfg.max_bps);
}

uint64_t pc_pace_rate(const hd_pc_t *pc) {
  /* no feedback yet (a peer that does not send transport-wide feedback): no
   * estimate to pace at */
  if (!pc->bwe || pc->cfg.no_pacing || !pc->st.twcc_received) return 0;
  uint64_t r = hd_bwe_pacing_rate(pc->bwe);
  /* a probe cluster leaves at its rate, and the media queued with it too */
  if (pc->probe.id && pc->probe.rate_bps > r) r = pc->probe.rate_bps;
  /* never hold video longer than PACE_MAX_QUEUE_US: a queue the estimate
   * cannot drain in time (RTX on a lossy path, a keyframe at a low rate)
   * goes out faster rather than late or dropped (as libwebrtc's pacer) */
  uint64_t drain = (uint64_t)((double)pc->pq_bytes * 8 * 1e6 / PACE_MAX_QUEUE_US);
  return drain > r ? drain : r;
}

double pc_pace_burst(const hd_pc_t *pc) {
  double cap = (double)pc_pace_rate(pc) / 8 * PACE_BURST_US / 1e6;
  return cap < 2 * PC_DGRAM_MAX ? 2 * PC_DGRAM_MAX : cap;
}

void pc_pace_refill(hd_pc_t *pc, hd_time_t now) {
  uint64_t r = pc_pace_rate(pc);
  if (!r || now <= pc->pace_last) return;
  double cap = pc_pace_burst(pc);
  pc->pace_budget += (double)r / 8 * (double)(now - pc->pace_last) / 1e6;
  if (pc->pace_budget > cap) pc->pace_budget = cap;
  pc->pace_last = now;
}

hd_time_t pc_pace_due(const hd_pc_t *pc) {
  uint64_t r = pc_pace_rate(pc);
  if (!r || pc->pace_budget >= 0 || pc->pq_fixed) return pc->pace_last;
  return pc->pace_last + (hd_time_t)(-pc->pace_budget * 8e6 / (double)r) + 1;
}

static void emit_send_rate(hd_pc_t *pc) {
  uint64_t bps = pc->bwe ? hd_bwe_target(pc->bwe) : pc->remb_bps;
  /* FlexFEC is inside the estimate: with one repair packet per N media
   * packets the encoder gets N/(N+1) of it */
  for (int i = 0; i < pc->n_tr; i++) {
    int g = pc->tr[i].kind == HD_PC_VIDEO ? pc_fec_group(pc, &pc->tr[i]) : 0;
    if (g > 0) {
      bps = bps * (uint64_t)g / (uint64_t)(g + 1);
      break;
    }
  }
  hd_pc_event_t ev = {.type = HD_PC_EV_SEND_RATE, .bitrate_bps = bps, .track = -1};
  pc_emit(pc, &ev);
}

/* ---- sending ---- */

/* Offset of the transport-wide seq extension's 2 bytes in RTP packet pkt, 0 = none. */
static uint16_t twcc_offset(const pc_trx_t *t, const uint8_t *pkt, size_t len) {
  hd_rtp_hdr_t h;
  const uint8_t *d;
  size_t dl;
  if (!t->ext_twcc || hd_rtp_parse(pkt, len, &h) < 0 || hd_rtp_ext_find(&h, t->ext_twcc, &d, &dl) < 0 ||
      dl != 2)
    return 0;
  return (uint16_t)(d - pkt);
}

static int protect_and_send(hd_pc_t *pc, uint8_t *pkt, size_t len, size_t cap, int rtcp) {
  if (!rtcp && pc->tx_paced && pc->tx_twcc_off && pc_pace_rate(pc)) /* stamped and protected as it leaves */
    return pc_send_dgram(pc, pkt, len);
  pc->tx_twcc_off = 0;
  int n = rtcp ? hd_srtp_protect_rtcp(pc->srtp, pkt, len, cap) : hd_srtp_protect(pc->srtp, pkt, len, cap);
  if (n < 0) return n;
  return pc_send_dgram(pc, pkt, (size_t)n);
}

static int send_rtp(hd_pc_t *pc, pc_trx_t *t, const hd_pc_rtp_send_t *p, hd_time_t now);

int hd_pc_send_rtp(hd_pc_t *pc, const hd_pc_rtp_send_t *p, hd_time_t now) {
  if (!pc || !p || p->track < 0 || p->track >= pc->n_tr || p->len > HD_PC_MAX_PAYLOAD ||
      (p->len && !p->payload))
    return HD_EINVAL;
  pc_trx_t *t = &pc->tr[p->track];
  if (pc->state != HD_PC_CONNECTED || !t->negotiated || t->rejected ||
      !(t->dir == HD_PC_SENDONLY || t->dir == HD_PC_SENDRECV))
    return HD_ESTATE;
  if (p->layer < 0 || p->layer >= (t->sim > 1 ? t->sim : 1)) return HD_EINVAL;
  pc_layer_swap(t, p->layer);
  int rc = send_rtp(pc, t, p, now);
  pc_layer_swap(t, p->layer);
  return rc;
}

static int send_rtp(hd_pc_t *pc, pc_trx_t *t, const hd_pc_rtp_send_t *p, hd_time_t now) {
  uint8_t mid[HD_PC_MID_MAX], ast[3], tw[2], lvl[1], rid[HD_PC_RID_MAX];
  hd_rtp_ext_t exts[5];
  size_t ne = 0;
  if (t->sim > 1) { /* RFC 8852 §3.1: the rid names the layer */
    size_t rl = strlen(t->rids[p->layer]);
    memcpy(rid, t->rids[p->layer], rl);
    exts[ne++] = (hd_rtp_ext_t){t->ext_rid, (uint8_t)rl, rid};
  }
  if (t->ext_mid) {
    size_t ml = strlen(t->mid);
    memcpy(mid, t->mid, ml);
    exts[ne++] = (hd_rtp_ext_t){t->ext_mid, (uint8_t)ml, mid};
  }
  if (t->ext_ast) {
    hd_rtp_abs_send_time_write(ast, hd_rtp_abs_send_time_from_us(now));
    exts[ne++] = (hd_rtp_ext_t){t->ext_ast, 3, ast};
  }
  int twcc = -1;
  if (t->ext_twcc) {
    if (t->twcc_fb) bwe_start(pc, now);
    if (t->kind == HD_PC_VIDEO && pc_pace_rate(pc)) {
      hd_rtp_twcc_seq_write(tw, 0); /* paced: its seq is written as it leaves (hd_pc_poll) */
    } else {
      twcc = pc->twcc_seq;
      hd_rtp_twcc_seq_write(tw, pc->twcc_seq++);
    }
    exts[ne++] = (hd_rtp_ext_t){t->ext_twcc, 2, tw};
  }
  if (t->ext_level && p->audio_level >= 0 && p->audio_level <= 127) {
    hd_rtp_audio_level_write(lvl, p->voice, (uint8_t)p->audio_level);
    exts[ne++] = (hd_rtp_ext_t){t->ext_level, 1, lvl};
  }
  hd_rtp_build_t b = {.pt = p->pt ? p->pt : t->pt,
                      .marker = (uint8_t)(p->marker != 0),
                      .seq = t->seq,
                      .ts = p->ts,
                      .ssrc = t->ssrc,
                      .exts = exts,
                      .ext_count = ne};
  uint8_t pkt[PC_DGRAM_MAX];
  int n = hd_rtp_build(&b, p->payload, p->len, pkt, sizeof pkt - HD_SRTP_MAX_TRAILER);
  if (n < 0) return n;
  if (t->nack) { /* video for RTX, audio for plain resends */
    if (!t->have_cache && hd_rtp_cache_init(&t->cache, pc->cfg.send_cache) == 0) t->have_cache = 1;
    if (t->have_cache) hd_rtp_cache_put(&t->cache, pkt, (size_t)n, now);
  }
  /* FlexFEC: the group's repair packet follows this one (layer 0 only) */
  uint8_t fpk[PC_DGRAM_MAX];
  int fl = t->fec_pt && t->kind == HD_PC_VIDEO && p->layer == 0
               ? pc_fec_sent(pc, t, pkt, (size_t)n, p->marker, fpk, sizeof fpk - HD_SRTP_MAX_TRAILER)
               : 0;
  if (!t->sst.ssrc) hd_rtp_send_stats_init(&t->sst, t->ssrc, t->clock ? t->clock : 90000);
  hd_rtp_send_stats_update(&t->sst, p->ts, p->len, now);
  t->seq++;
  pc->tx_twcc = pc->bwe ? twcc : -1;
  pc->tx_paced = t->kind == HD_PC_VIDEO; /* audio is small and steady: it never waits */
  pc->tx_fixed = p->fixed_rate != 0;
  pc->tx_rtp_len = (size_t)n;
  pc->tx_twcc_off = pc->tx_paced && twcc < 0 ? twcc_offset(t, pkt, (size_t)n) : 0;
  int rc = protect_and_send(pc, pkt, (size_t)n, sizeof pkt, 0);
  pc->tx_twcc = -1; /* consumed by the enqueue, or dropped with a failed send */
  pc->tx_paced = pc->tx_fixed = 0;
  if (rc < 0) return rc;
  t->st.packets_sent++;
  t->st.bytes_sent += p->len;
  if (fl > 0) {
    /* paced behind the media, with a transport-wide seq of its own: the
     * estimator must see the repair bytes acknowledged, or it reads the
     * link's rate low by their share (issue 13 item 4) */
    pc->tx_paced = 1;
    pc->tx_fixed = p->fixed_rate != 0; /* its rate follows the media's */
    pc->tx_rtp_len = (size_t)fl;
    uint16_t off = twcc_offset(t, fpk, (size_t)fl);
    if (off && pc_pace_rate(pc)) {
      pc->tx_twcc_off = off; /* stamped as it leaves */
    } else if (off) {
      pc->tx_twcc = pc->bwe ? pc->twcc_seq : -1;
      hd_rtp_twcc_seq_write(fpk + off, pc->twcc_seq++);
    }
    if (protect_and_send(pc, fpk, (size_t)fl, sizeof fpk, 0) == 0) t->st.fec_sent++;
    pc->tx_paced = pc->tx_fixed = 0;
    pc->tx_twcc = -1;
  }
  return 0;
}

/* Answers one NACKed seq of track t with RTX from the send cache. Without a
 * negotiated RTX payload type nothing is resent: libsrtp refuses to protect
 * the same seq twice, and a receiver would drop it as a replay anyway. */
static void resend(hd_pc_t *pc, pc_trx_t *t, uint16_t seq, hd_time_t now) {
  const uint8_t *orig;
  size_t olen;
  if (t->kind == HD_PC_AUDIO && t->have_cache && hd_rtp_cache_get(&t->cache, seq, now, &orig, &olen) == 0) {
    /* Audio NACK has no RTX (RFC 4588 is not negotiated for Opus): the same
     * packet goes again, byte for byte; SRTP re-protects an index already
     * sent only with identical bytes (same IV), so nothing in it is
     * rewritten, not even its transport-wide seq (not reported again). */
    uint8_t pkt[PC_DGRAM_MAX];
    if (olen + HD_SRTP_MAX_TRAILER > sizeof pkt) return;
    memcpy(pkt, orig, olen);
    if (protect_and_send(pc, pkt, olen, sizeof pkt, 0) == 0) t->st.rtx_sent++;
    return;
  }
  if (!t->have_cache || !t->rtx_pt || hd_rtp_cache_get(&t->cache, seq, now, &orig, &olen) < 0) return;
  /* On a leg the peer reports lossy, a lost repair costs another round trip
   * and, after a few, the receiver's hold (a keyframe request, a freeze): the
   * repair goes twice, as the node does towards a lossy viewer. At 30 % loss
   * one repair round fails 51 % of the time with one copy, 36 % with two.
   * Held PC_RTX_TWICE_HOLD after the last such report: one interval may read
   * low (an SDK peer's reports count repaired packets as received; the node's
   * count its media SSRC only, the loss before repair). */
  int copies = now < t->rtx_twice_until ? 2 : 1;
  for (int k = 0; k < copies; k++) {
    uint8_t pkt[PC_DGRAM_MAX];
    int n = hd_rtp_rtx_build(orig, olen, t->rtx_ssrc, t->rtx_pt, t->rtx_seq, pkt,
                             sizeof pkt - HD_SRTP_MAX_TRAILER);
    if (n < 0) return;
    t->rtx_seq++;
    pc->tx_paced = 1;
    /* paced: the copy gets a transport-wide seq of its own as it leaves (its
     * size is on the link too); unpaced it keeps the original's, unreported */
    pc->tx_twcc_off = twcc_offset(t, pkt, (size_t)n);
    pc->tx_rtp_len = (size_t)n;
    if (protect_and_send(pc, pkt, (size_t)n, sizeof pkt, 0) == 0) {
      t->st.rtx_sent++;
      if (k) t->st.rtx_doubled++;
    }
    pc->tx_paced = 0;
  }
}

/* ---- bandwidth probes (rtc/bwe.h hd_bwe_next_probe) ---- */

#define PROBE_TICK HD_MS(5)   /* a cluster's packets are queued tick by tick at its rate */
#define PROBE_MAX_BYTES 64000 /* one cluster at most (1.5x 8 Mbit/s for 40 ms) */
#define PROBE_DRAIN_TICKS 20  /* a cluster queued in full ends when it left the pacer, at most this later */
#define PC_PROBE_COPIES 64    /* RTX copies cycle back through the newest this many video packets */
#define PROBE_PAD 255         /* padding bytes of a padding-only probe packet */

/* The video transceiver whose RTX stream carries probes: sending, with RTX
 * (RFC 4588) and transport-wide seqs negotiated; NULL when there is none. */
static pc_trx_t *probe_track(const hd_pc_t *pc) {
  for (int i = 0; i < pc->n_tr; i++) {
    const pc_trx_t *t = &pc->tr[i];
    if (t->kind == HD_PC_VIDEO && t->negotiated && !t->rejected &&
        (t->dir == HD_PC_SENDONLY || t->dir == HD_PC_SENDRECV) && t->rtx_pt && t->rtx_ssrc && t->ext_twcc &&
        t->twcc_fb)
      return (pc_trx_t *)t;
  }
  return NULL;
}

static int probing(const hd_pc_t *pc) {
  return pc->bwe && pc->cfg.probe && pc->bwe->twcc_seen && pc_pace_rate(pc) && probe_track(pc);
}

/* One probe packet into the pacer's queue, tagged with the running cluster:
 * an RTX copy (RFC 4588 §4) of a recent video packet from the send cache
 * (the receiver drops it as a duplicate, or takes it as a repair), else
 * padding only (RFC 3550 §5.1 P bit) on the RTX stream, which receivers
 * count for feedback and drop. Returns its RTP size or < 0. */
static int probe_packet(hd_pc_t *pc, pc_trx_t *t, hd_time_t now) {
  uint8_t pkt[PC_DGRAM_MAX];
  int n = -1;
  for (int k = 0; t->have_cache && k < 2 && n < 0; k++) {
    uint16_t seq = (uint16_t)(t->seq - 1u - pc->probe.cursor % PC_PROBE_COPIES);
    const uint8_t *orig;
    size_t olen;
    if (hd_rtp_cache_peek(&t->cache, seq, now, &orig, &olen) == 0) {
      n = hd_rtp_rtx_build(orig, olen, t->rtx_ssrc, t->rtx_pt, t->rtx_seq, pkt,
                           sizeof pkt - HD_SRTP_MAX_TRAILER);
      pc->probe.cursor++;
    } else {
      pc->probe.cursor = 0; /* fewer sent (or kept) than that: the newest again */
    }
  }
  if (n < 0 || !twcc_offset(t, pkt, (size_t)n)) {
    uint8_t mid[HD_PC_MID_MAX], rid[HD_PC_RID_MAX], tw[2] = {0, 0};
    hd_rtp_ext_t exts[3];
    size_t ne = 0;
    if (t->ext_mid) { /* the receiver finds the stream by its mid (RFC 9143 §15) */
      size_t ml = strlen(t->mid);
      memcpy(mid, t->mid, ml);
      exts[ne++] = (hd_rtp_ext_t){t->ext_mid, (uint8_t)ml, mid};
    }
    if (t->sim > 1 && t->ext_rid) { /* and its layer (RFC 8852 §3.1) */
      size_t rl = strlen(t->rids[0]);
      memcpy(rid, t->rids[0], rl);
      exts[ne++] = (hd_rtp_ext_t){t->ext_rid, (uint8_t)rl, rid};
    }
    exts[ne++] = (hd_rtp_ext_t){t->ext_twcc, 2, tw};
    hd_rtp_build_t b = {.pt = t->rtx_pt,
                        .seq = t->rtx_seq,
                        .ssrc = t->rtx_ssrc,
                        .exts = exts,
                        .ext_count = ne,
                        .pad_len = PROBE_PAD};
    n = hd_rtp_build(&b, NULL, 0, pkt, sizeof pkt - HD_SRTP_MAX_TRAILER);
  }
  if (n < 0) return n;
  uint16_t off = twcc_offset(t, pkt, (size_t)n);
  if (!off) return HD_EINVAL;
  t->rtx_seq++;
  pc->tx_paced = 1; /* stamped with a transport-wide seq as it leaves */
  pc->tx_twcc_off = off;
  pc->tx_rtp_len = (size_t)n;
  pc->tx_cluster = pc->probe.id;
  int rc = protect_and_send(pc, pkt, (size_t)n, sizeof pkt, 0);
  pc->tx_paced = pc->tx_cluster = 0;
  pc->tx_twcc_off = 0;
  if (rc < 0) return rc;
  pc->st.probe_bytes += (uint64_t)n;
  return n;
}

static void probe_end(hd_pc_t *pc) { pc->probe.id = 0; }

void pc_probe_run(hd_pc_t *pc, hd_time_t now) {
  if (!probing(pc)) {
    probe_end(pc);
    return;
  }
  pc_trx_t *t = probe_track(pc);
  if (!pc->probe.id && now >= pc->probe.next_ask && hd_bwe_next_timeout(pc->bwe) <= now) {
    hd_bwe_probe_t pr;
    if (hd_bwe_next_probe(pc->bwe, now, &pr) == 1) {
      pc->probe.id = pr.id;
      pc->probe.rate_bps = pr.bitrate_bps;
      pc->probe.bytes_left = (int64_t)(pr.min_bytes < PROBE_MAX_BYTES ? pr.min_bytes : PROBE_MAX_BYTES);
      pc->probe.pkts_left = pr.min_packets;
      pc->probe.drain = 0;
      pc->probe.credit = 1; /* the first tick sends one */
      pc->probe.next_tick = pc->probe.last = now;
      pc->st.probe_clusters++;
      pc_pace_refill(pc, now); /* the budget so far at the old rate */
    } else {
      pc->probe.next_ask = now + PROBE_TICK; /* the state changes with feedback: not before a tick */
    }
  }
  if (!pc->probe.id || now < pc->probe.next_tick) return;
  pc->probe.next_tick = now + PROBE_TICK;
  if (pc->probe.bytes_left <= 0 && pc->probe.pkts_left <= 0) {
    /* all of it queued: the cluster (and its rate in the pacer) ends when its
     * last packet has left */
    if (pc->pq_probe && ++pc->probe.drain < PROBE_DRAIN_TICKS) return;
    probe_end(pc);
    return;
  }
  pc->probe.credit += (double)pc->probe.rate_bps * (double)(now - pc->probe.last) / 8e6;
  pc->probe.last = now;
  while (pc->probe.credit > 0 && (pc->probe.bytes_left > 0 || pc->probe.pkts_left > 0)) {
    /* probes take at most half the pacer's queue: media never finds it full for them */
    int n = pc->pq_count < pc->q_cap / 2 ? probe_packet(pc, t, now) : HD_ENOSPC;
    if (n <= 0) { /* what went is the cluster */
      pc->probe.bytes_left = 0, pc->probe.pkts_left = 0;
      break;
    }
    pc->probe.credit -= n;
    pc->probe.bytes_left -= n;
    if (pc->probe.pkts_left > 0) pc->probe.pkts_left--;
  }
}

hd_time_t pc_probe_next_timeout(const hd_pc_t *pc) {
  if (!probing(pc)) return HD_TIME_NEVER;
  if (pc->probe.id) return pc->probe.next_tick;
  hd_time_t t = hd_bwe_next_timeout(pc->bwe);
  return t < pc->probe.next_ask ? pc->probe.next_ask : t;
}

int pc_media_may_send(const hd_pc_t *pc, const uint8_t *pkt, size_t len) {
  if (len < 12 || (pkt[0] & 0xc0) != 0x80) return 1;
  if (pkt[1] >= 192 && pkt[1] <= 223) return 1; /* RTCP (RFC 5761 §4) */
  uint32_t ssrc = (uint32_t)pkt[8] << 24 | (uint32_t)pkt[9] << 16 | (uint32_t)pkt[10] << 8 | pkt[11];
  uint8_t pt = pkt[1] & 0x7f;
  for (int i = 0; i < pc->n_tr; i++) {
    const pc_trx_t *t = &pc->tr[i];
    int sends = t->dir == HD_PC_SENDONLY || t->dir == HD_PC_SENDRECV;
    if (t->kind == HD_PC_VIDEO && ssrc == t->fec_ssrc) return sends && t->fec_pt && pt == t->fec_pt;
    int mine = ssrc == t->ssrc || ssrc == t->rtx_ssrc;
    for (int l = 1; l < HD_PC_MAX_LAYERS && !mine; l++)
      mine = t->lay[l].ssrc && (ssrc == t->lay[l].ssrc || ssrc == t->lay[l].rtx_ssrc);
    if (mine) return sends;
  }
  return 1;
}

static int send_rtcp(hd_pc_t *pc, const uint8_t *buf, size_t len) {
  uint8_t pkt[PC_DGRAM_MAX];
  if (len + HD_SRTP_MAX_TRAILER > sizeof pkt) return HD_ENOSPC;
  memcpy(pkt, buf, len);
  int rc = protect_and_send(pc, pkt, len, sizeof pkt, 1);
  if (rc == 0) pc->st.rtcp_sent++;
  return rc;
}

static int receiving(const pc_trx_t *t) {
  return t->negotiated && !t->rejected && (t->dir == HD_PC_RECVONLY || t->dir == HD_PC_SENDRECV);
}
/* A receiving track we NACK: video with nack negotiated; audio too once the
 * app has said how long a repair stays useful (hd_pc_set_nack_window). */
static int nacking(const pc_trx_t *t) {
  return receiving(t) && t->nack && (t->kind == HD_PC_VIDEO || t->nack_window > 0);
}
static int sending(const pc_trx_t *t) {
  return t->negotiated && !t->rejected && (t->dir == HD_PC_SENDONLY || t->dir == HD_PC_SENDRECV) &&
         t->sst.ssrc;
}

int hd_pc_request_keyframe(hd_pc_t *pc, int track, hd_time_t now) {
  if (!pc || track < 0 || track >= pc->n_tr) return HD_EINVAL;
  pc_trx_t *t = &pc->tr[track];
  if (pc->state != HD_PC_CONNECTED || !t->r_ssrc) return HD_ESTATE;
  uint8_t buf[64];
  int n = hd_rtcp_build_pli(pc->rtcp_ssrc, t->r_ssrc, buf, sizeof buf);
  if (n < 0) return n;
  int rc = send_rtcp(pc, buf, (size_t)n);
  if (rc == 0) t->st.pli_sent++;
  (void)now;
  return rc;
}

int hd_pc_send_remb(hd_pc_t *pc, uint64_t bitrate_bps, hd_time_t now) {
  if (!pc) return HD_EINVAL;
  if (pc->state != HD_PC_CONNECTED) return HD_ESTATE;
  uint32_t ssrcs[HD_PC_MAX_TRANSCEIVERS];
  size_t n = 0;
  for (int i = 0; i < pc->n_tr; i++)
    if (receiving(&pc->tr[i]) && pc->tr[i].r_ssrc) ssrcs[n++] = pc->tr[i].r_ssrc;
  if (!n) return HD_ESTATE;
  uint8_t buf[256];
  int len = hd_rtcp_build_remb(pc->rtcp_ssrc, bitrate_bps, ssrcs, n, buf, sizeof buf);
  if (len < 0) return len;
  (void)now;
  return send_rtcp(pc, buf, (size_t)len);
}

/* Compound report (RFC 3550 §6.1): SR per sending stream (the first carries the
 * report blocks) or one RR, then SDES CNAME. */
static void send_reports(hd_pc_t *pc, hd_time_t now) {
  hd_rtcp_rb_t rbs[HD_RTCP_MAX_RB];
  uint8_t n_rb = 0;
  for (int i = 0; i < pc->n_tr && n_rb < HD_RTCP_MAX_RB; i++) {
    pc_trx_t *t = &pc->tr[i];
    if (receiving(t) && t->r_started && hd_rtp_recv_stats_report(&t->rst, now, &rbs[n_rb]) == 0) n_rb++;
    uint64_t dn = t->ng.noticed - t->r_loss_noticed, dp = t->st.packets_received - t->r_loss_packets;
    if (dp >= 20) { /* loss before repair this interval (our reports count repairs as received) */
      unsigned q8 = dn >= dp ? 255u : (unsigned)(dn * 256 / dp);
      t->r_loss_q8 = t->r_loss_q8 ? (t->r_loss_q8 * 3 + q8) / 4 : q8;
      t->r_loss_noticed = t->ng.noticed;
      t->r_loss_packets = t->st.packets_received;
    }
  }
  uint8_t buf[1200];
  size_t off = 0;
  int first = 1, n;
  uint32_t sdes_ssrc = pc->rtcp_ssrc;
  for (int i = 0; i < pc->n_tr; i++) {
    pc_trx_t *t = &pc->tr[i];
    hd_rtcp_sr_t sr;
    if (!sending(t) || hd_rtp_send_stats_sr(&t->sst, now, pc->cfg.wall_offset, &sr) < 0) continue;
    if (first) {
      sr.rb_count = n_rb;
      memcpy(sr.rb, rbs, n_rb * sizeof rbs[0]);
      sdes_ssrc = t->ssrc;
    }
    if ((n = hd_rtcp_build_sr(&sr, buf + off, sizeof buf - off - 200)) < 0) break;
    off += (size_t)n;
    first = 0;
    for (int l = 1; l < t->sim; l++) /* each simulcast layer is a stream of its own (RFC 3550 §6.4.1) */
      if (t->lay[l].sst.ssrc && hd_rtp_send_stats_sr(&t->lay[l].sst, now, pc->cfg.wall_offset, &sr) == 0 &&
          (n = hd_rtcp_build_sr(&sr, buf + off, sizeof buf - off - 200)) > 0)
        off += (size_t)n;
  }
  if (first) {
    if (!n_rb) return; /* nothing sent, nothing received: no report yet */
    hd_rtcp_rr_t rr = {.ssrc = pc->rtcp_ssrc, .rb_count = n_rb};
    memcpy(rr.rb, rbs, n_rb * sizeof rbs[0]);
    if ((n = hd_rtcp_build_rr(&rr, buf, sizeof buf)) < 0) return;
    off = (size_t)n;
  }
  if ((n = hd_rtcp_build_sdes_cname(sdes_ssrc, pc->cname, buf + off, sizeof buf - off)) > 0) off += (size_t)n;
  send_rtcp(pc, buf, off);
}

/* Transport-wide feedback every HD_TWCC_RECV_INTERVAL while packets come. */
static void send_twcc_feedback(hd_pc_t *pc, hd_time_t now) {
  pc->next_twcc_fb = now + HD_TWCC_RECV_INTERVAL;
  uint32_t media_ssrc = 0;
  for (int i = 0; i < pc->n_tr && !media_ssrc; i++)
    if (receiving(&pc->tr[i])) media_ssrc = pc->tr[i].r_ssrc;
  uint8_t buf[1200];
  int n;
  while ((n = hd_twcc_recv_build(pc->twcc_rx, pc->rtcp_ssrc, media_ssrc, buf, sizeof buf)) > 0)
    if (send_rtcp(pc, buf, (size_t)n) == 0) pc->st.twcc_sent++;
  pc->twcc_rx->n = 0;
}

hd_time_t pc_media_next_timeout(const hd_pc_t *pc) {
  hd_time_t t = pc->next_rtcp;
  t = hd_time_min(t, pc_probe_next_timeout(pc));
  if (pc->twcc_rx && pc->twcc_rx->n) t = hd_time_min(t, pc->next_twcc_fb);
  if (pc->cfg.no_nack) return t;
  for (int i = 0; i < pc->n_tr; i++)
    if (nacking(&pc->tr[i])) t = hd_time_min(t, hd_nack_gen_next_timeout(&pc->tr[i].ng));
  return t;
}

/* The repair round trip for t: its own learned one, else another track's
 * (same path to the same peer), else the report blocks' RTT; 0 = unknown. */
static hd_time_t repair_rtt(const hd_pc_t *pc, const pc_trx_t *t) {
  if (t->ng.rtt_samples) return t->ng.rtt;
  for (int i = 0; i < pc->n_tr; i++)
    if (pc->tr[i].ng.rtt_samples) return pc->tr[i].ng.rtt;
  return pc->rtt > 0 ? pc->rtt : 0;
}

hd_time_t hd_pc_track_repair_rtt(const hd_pc_t *pc, int track) {
  if (!pc || track < 0 || track >= pc->n_tr) return HD_EINVAL;
  const pc_trx_t *t = &pc->tr[track];
  if (!receiving(t) || !t->nack || pc->cfg.no_nack) return HD_ESTATE;
  return repair_rtt(pc, t);
}

int hd_pc_set_nack_window(hd_pc_t *pc, int track, hd_time_t window) {
  if (!pc || track < 0 || track >= pc->n_tr || window < 0) return HD_EINVAL;
  pc_trx_t *t = &pc->tr[track];
  if (t->kind != HD_PC_AUDIO || !receiving(t) || !t->nack || pc->cfg.no_nack) return HD_ESTATE;
  t->nack_window = window;
  /* NetEQ's rule: ask only while the answer can still be played. A hole is
   * noticed when the next packet arrives; asking at `first + age` brings the
   * repair at `first + age + rtt`, which must be before the slot plays
   * (`first + window`). With no room left, give up at once (max_age 1 us:
   * the generator drops the seq before its first request). Before any RTT
   * is known, at least PC_AUDIO_NACK_LEARN: the first repairs teach it (a
   * request given up before its answer arrives teaches nothing). */
  hd_time_t rtt = repair_rtt(pc, t);
  hd_time_t age = rtt ? window - rtt : window > PC_AUDIO_NACK_LEARN ? window : PC_AUDIO_NACK_LEARN;
  t->ng.max_age = age > 0 ? age : 1;
  return 0;
}

void pc_media_timeout(hd_pc_t *pc, hd_time_t now) {
  pc_probe_run(pc, now);
  if (now >= pc->next_rtcp) {
    send_reports(pc, now);
    pc->next_rtcp = now + pc->cfg.rtcp_interval;
  }
  if (pc->twcc_rx && pc->twcc_rx->n && now >= pc->next_twcc_fb) send_twcc_feedback(pc, now);
  if (pc->cfg.no_nack) return;
  for (int i = 0; i < pc->n_tr; i++) {
    pc_trx_t *t = &pc->tr[i];
    if (!nacking(t) || !t->r_ssrc) continue;
    if (hd_nack_gen_next_timeout(&t->ng) > now) continue;
    if (t->kind == HD_PC_AUDIO) {
      hd_time_t r = repair_rtt(pc, t);
      if (r > 0 && !t->ng.rtt_samples) hd_nack_gen_set_rtt(&t->ng, r);
    } else if (pc->rtt > 0 && !t->ng.rtt_samples) {
      hd_nack_gen_set_rtt(&t->ng, pc->rtt);
    }
    uint16_t seqs[NACK_BATCH];
    size_t n = hd_nack_gen_poll(&t->ng, now, seqs, NACK_BATCH);
    if (!n) continue;
    uint8_t buf[512];
    int len = hd_rtcp_build_nack(pc->rtcp_ssrc, t->r_ssrc, seqs, n, buf, sizeof buf);
    if (len > 0 && send_rtcp(pc, buf, (size_t)len) == 0) {
      t->st.nack_sent++;
      t->st.nack_seqs_sent += n;
      /* a lossy leg: a repair round needs the NACK and a repair through; the
       * node sends repairs twice there, the NACK goes twice too (as the node
       * does towards a lossy publisher, sfu/session.c send_nacks) */
      if (t->r_loss_q8 >= PC_NACK_TWICE_Q8 && send_rtcp(pc, buf, (size_t)len) == 0) t->st.nack_doubled++;
    }
  }
}

/* ---- receiving RTP ---- */

void pc_trx_recv_reset(pc_trx_t *t, uint32_t ssrc) {
  t->r_ssrc = ssrc;
  if (t->fec && t->fec->dec) hd_flexfec_dec_init(t->fec->dec, ssrc); /* it protects the old stream */
  t->r_started = 0;
  t->r_have_sr = 0;
  hd_nack_gen_reset(&t->ng);
  memset(t->seen, 0, sizeof t->seen);
}

static int find_by_mid(hd_pc_t *pc, const hd_rtp_hdr_t *h) {
  for (int i = 0; i < pc->n_tr; i++) {
    const pc_trx_t *t = &pc->tr[i];
    const uint8_t *d;
    size_t dl;
    char mid[HD_PC_MID_MAX];
    if (!t->ext_mid || hd_rtp_ext_find(h, t->ext_mid, &d, &dl) < 0) continue;
    if (hd_rtp_ext_string(d, dl, mid, sizeof mid) < 0) return -1;
    return hd_pc_find_mid(pc, mid) >= 0 ? hd_pc_find_mid(pc, mid) : -1;
  }
  return -1;
}

/* Which transceiver a packet belongs to, and whether it is RTX (RFC 9143 §9.2:
 * SSRC first, then the mid extension, then a payload type only one receiving
 * section uses). */
static int demux(hd_pc_t *pc, const hd_rtp_hdr_t *h, int *is_rtx) {
  for (int i = 0; i < pc->n_tr; i++) {
    pc_trx_t *t = &pc->tr[i];
    if (!receiving(t)) continue;
    if (t->r_ssrc && h->ssrc == t->r_ssrc) return *is_rtx = 0, i;
    if (t->r_rtx_ssrc && h->ssrc == t->r_rtx_ssrc) return *is_rtx = 1, i;
    if (t->fec_pt && h->pt == t->fec_pt && (!t->r_fec_ssrc || h->ssrc == t->r_fec_ssrc)) {
      t->r_fec_ssrc = h->ssrc; /* FlexFEC repair stream (no mid extension on it) */
      return *is_rtx = 2, i;
    }
  }
  int i = find_by_mid(pc, h);
  if (i < 0) {
    int found = -1;
    for (int k = 0; k < pc->n_tr; k++) {
      if (!receiving(&pc->tr[k]) || (h->pt != pc->tr[k].pt && h->pt != pc->tr[k].rtx_pt &&
                                     (!pc->tr[k].red_pt || h->pt != pc->tr[k].red_pt)))
        continue;
      if (found >= 0) return -1; /* ambiguous */
      found = k;
    }
    i = found;
  }
  if (i < 0 || !receiving(&pc->tr[i])) return -1;
  pc_trx_t *t = &pc->tr[i];
  if (t->rtx_pt && h->pt == t->rtx_pt) {
    t->r_rtx_ssrc = h->ssrc;
    return *is_rtx = 1, i;
  }
  if (h->pt != t->pt && (!t->red_pt || h->pt != t->red_pt)) return -1;
  /* a new media SSRC for this section: the source restarted or was never signalled */
  pc_trx_recv_reset(t, h->ssrc);
  hd_pc_event_t ev = {.type = HD_PC_EV_REMOTE_SSRC, .track = i};
  ev.rtp.track = i;
  ev.rtp.mid = t->mid;
  ev.rtp.kind = t->kind;
  ev.rtp.ssrc = h->ssrc;
  ev.rtp.pt = h->pt;
  ev.rtp.audio_level = -1;
  pc_emit(pc, &ev);
  *is_rtx = 0;
  return i;
}

/* Duplicate filter over the last PC_SEEN_WINDOW seqs. Returns 1 if new. */
static int mark_seen(pc_trx_t *t, int64_t ext) {
  if (ext > t->r_max_ext) {
    for (int64_t e = t->r_max_ext + 1; e <= ext && e - t->r_max_ext <= PC_SEEN_WINDOW; e++)
      t->seen[(e % PC_SEEN_WINDOW) / 8] &= (uint8_t) ~(1u << (e % 8));
    if (ext - t->r_max_ext > PC_SEEN_WINDOW) memset(t->seen, 0, sizeof t->seen);
    t->r_max_ext = ext;
  } else if (t->r_max_ext - ext >= PC_SEEN_WINDOW) {
    return 0; /* too old to tell: treat as a duplicate */
  }
  uint8_t *b = &t->seen[(ext % PC_SEEN_WINDOW) / 8];
  uint8_t bit = (uint8_t)(1u << (ext % 8));
  if (*b & bit) return 0;
  *b |= bit;
  return 1;
}

/* A packet the node stamped with a transport-wide seq (it does so when our
 * answer kept transport-cc): its arrival goes into the next feedback. */
static void twcc_record(hd_pc_t *pc, const pc_trx_t *t, const hd_rtp_hdr_t *h, hd_time_t now) {
  /* the seq is transport-wide: every stamped packet counts, whatever its track
   * (an unrecorded audio packet would read as lost to the sender); feedback is
   * sent once any receiving track negotiated transport-cc */
  uint8_t id = t->ext_twcc;
  int fb = 0;
  for (int i = 0; i < pc->n_tr; i++) {
    if (!id) id = pc->tr[i].ext_twcc;
    fb |= pc->tr[i].twcc_fb && receiving(&pc->tr[i]);
  }
  const uint8_t *d;
  size_t dl;
  uint16_t seq;
  if (!id || !fb || hd_rtp_ext_find(h, id, &d, &dl) < 0 || hd_rtp_twcc_seq_parse(d, dl, &seq) < 0) return;
  if (!pc->twcc_rx) {
    pc->twcc_rx = malloc(sizeof *pc->twcc_rx);
    if (!pc->twcc_rx) return;
    hd_twcc_recv_init(pc->twcc_rx);
    pc->next_twcc_fb = now + HD_TWCC_RECV_INTERVAL;
  }
  hd_twcc_recv_add(pc->twcc_rx, seq, now);
}

typedef struct {
  hd_pc_t *pc;
  hd_time_t now;
} fec_ctx_t;

static void on_rtp_pkt(hd_pc_t *pc, const uint8_t *buf, size_t len, hd_time_t now, int recovered);

/* A media packet rebuilt from FlexFEC: delivered like a received one. */
static void on_recovered(void *ud, const uint8_t *pkt, size_t len) {
  fec_ctx_t *x = ud;
  on_rtp_pkt(x->pc, pkt, len, x->now, 1);
}

static void on_rtp(hd_pc_t *pc, const uint8_t *buf, size_t len, hd_time_t now) {
  on_rtp_pkt(pc, buf, len, now, 0);
}

/* recovered: rebuilt from FlexFEC (not on the wire: no transport-wide
 * report, not counted as received in our reports, not fed back to FEC) */
static void on_rtp_pkt(hd_pc_t *pc, const uint8_t *buf, size_t len, hd_time_t now, int recovered) {
  hd_rtp_hdr_t h;
  if (hd_rtp_parse(buf, len, &h) < 0) {
    pc->st.drop_malformed++;
    return;
  }
  int is_rtx = 0;
  int i = demux(pc, &h, &is_rtx);
  if (i < 0 || (recovered && is_rtx)) {
    pc->st.drop_unknown++;
    return;
  }
  pc_trx_t *t = &pc->tr[i];
  /* every stamped packet, probe padding and FlexFEC repair packets included */
  if (!recovered) twcc_record(pc, t, &h, now);
  if (is_rtx == 2) { /* a FlexFEC repair packet */
    t->st.fec_received++;
    /* While repair packets come, a hole waits for its group's repair packet
     * before it is NACKed: at most PC_FEC_NACK_WAIT and half a round trip
     * (a NACK round is cheap on a short path), and only for
     * HD_NACK_FEC_HOLD after the last one (a sender that stopped FEC costs
     * no NACK delay; rtc/nack_gen.h) */
    hd_time_t rtt = t->ng.rtt_samples ? t->ng.rtt : pc->rtt;
    hd_time_t wait = rtt > 0 && rtt / 2 < PC_FEC_NACK_WAIT ? rtt / 2 : PC_FEC_NACK_WAIT;
    hd_nack_gen_fec_seen(&t->ng, wait, now);
    fec_ctx_t x = {pc, now};
    pc_fec_repair(t, buf, len, on_recovered, &x);
    /* what this repair packet covers and could not rebuild is asked for now */
    hd_flexfec_hdr_t fh;
    if (hd_flexfec_parse(buf, len, &fh) == 0) {
      int last = -1;
      for (int b = 0; b < fh.mask_bits; b++)
        if (hd_flexfec_covers(&fh, (uint16_t)(fh.sn_base + b))) last = b;
      if (last >= 0) hd_nack_gen_fec_covered(&t->ng, fh.sn_base, (uint16_t)(fh.sn_base + last), now);
    }
    return;
  }
  const uint8_t *plain = buf; /* the media packet, RTX unwrapped */
  size_t plain_len = len;
  uint8_t orig[PC_DGRAM_MAX];
  if (is_rtx) {
    t->st.rtx_received++;
    uint16_t osn;
    int n;
    if (!t->r_ssrc || (n = hd_rtp_rtx_decode(buf, len, t->r_ssrc, t->pt, orig, sizeof orig, &osn)) < 0 ||
        hd_rtp_parse(orig, (size_t)n, &h) < 0) {
      pc->st.drop_malformed++; /* padding-only probes end here too */
      return;
    }
    plain = orig;
    plain_len = (size_t)n;
  }
  if (!t->r_started) {
    t->r_started = 1;
    hd_rtp_recv_stats_init(&t->rst, t->r_ssrc);
    hd_rtp_recv_stats_set_probation(&t->rst, 0);
    t->r_max_ext = h.seq + 0x10000; /* room below for packets older than the first */
    hd_nack_gen_reset(&t->ng);
  }
  int64_t ext = hd_seq_extend(t->r_max_ext, h.seq);
  /* Audio under NACK: a packet older than the newest one seen filled a hole
   * (our repair, the node's repair from the publisher, a second answer):
   * it is flagged as a repair so that the jitter buffer does not read its
   * lateness as network jitter (NetEQ keeps reordered packets out of its
   * delay estimate too); without that, at 20% loss the few repairs that come
   * after the give-up pushed the target to 200 ms. */
  int repaired = t->kind == HD_PC_AUDIO && t->nack_window > 0 && t->r_started && ext < t->r_max_ext;
  if (!mark_seen(t, ext)) {
    t->st.duplicates++;
    return;
  }
  if (is_rtx) t->st.rtx_recovered++;
  if (recovered)
    t->st.fec_recovered++;
  else
    hd_rtp_recv_stats_update(&t->rst, h.seq, h.ts, now, t->clock ? t->clock : 90000);
  if (t->nack && !pc->cfg.no_nack && (t->kind == HD_PC_VIDEO || t->nack_window)) {
    /* only a retransmission is a round-trip sample: an original that was
     * merely late (reordered, or queued behind a burst) would read as a
     * 1 ms RTT and make the retries a NACK storm. Audio repairs are the
     * packet itself (no RTX): a hole filled after its request counts (a
     * request waits reorder_wait first, so plain reordering is not one). */
    int learn = t->ng.learn_rtt;
    if (!is_rtx && t->kind == HD_PC_VIDEO) t->ng.learn_rtt = 0;
    if (hd_nack_gen_on_packet(&t->ng, h.seq, now) && t->kind == HD_PC_AUDIO) {
      t->st.rtx_received++; /* the answer to our NACK */
      t->st.rtx_recovered++;
    }
    t->ng.learn_rtt = learn;
  }
  t->st.packets_received++;
  t->st.bytes_received += h.payload_len;
  hd_pc_event_t ev = {.type = HD_PC_EV_RTP, .track = i};
  hd_pc_rtp_t *r = &ev.rtp;
  r->track = i;
  r->mid = t->mid;
  r->kind = t->kind;
  r->ssrc = h.ssrc;
  r->pt = h.pt;
  r->seq = h.seq;
  r->ext_seq = ext;
  r->ts = h.ts;
  r->marker = h.marker;
  r->rtx = is_rtx || repaired || recovered;
  r->red = t->red_pt && h.pt == t->red_pt;
  r->codec_pt = t->pt;
  r->audio_level = -1;
  const uint8_t *d;
  size_t dl;
  int voice;
  uint8_t lvl;
  if (t->ext_level && hd_rtp_ext_find(&h, t->ext_level, &d, &dl) == 0 &&
      hd_rtp_audio_level_parse(d, dl, &voice, &lvl) == 0)
    r->audio_level = lvl;
  r->payload = h.payload;
  r->payload_len = h.payload_len;
  r->arrival = now;
  pc_emit(pc, &ev);
  if (t->fec_pt && !recovered) {
    fec_ctx_t x = {pc, now};
    pc_fec_media(t, plain, plain_len, on_recovered, &x);
  }
}

/* ---- receiving RTCP ---- */

static pc_trx_t *by_send_ssrc_layer(hd_pc_t *pc, uint32_t ssrc, int *idx, int *layer) {
  for (int i = 0; i < pc->n_tr; i++) {
    pc_trx_t *t = &pc->tr[i];
    if (!t->negotiated) continue;
    for (int l = 0; l < (t->sim > 1 ? t->sim : 1); l++)
      if ((l ? t->lay[l].ssrc : t->ssrc) == ssrc) {
        if (idx) *idx = i;
        if (layer) *layer = l;
        return t;
      }
  }
  return NULL;
}
static pc_trx_t *by_send_ssrc(hd_pc_t *pc, uint32_t ssrc, int *idx) {
  return by_send_ssrc_layer(pc, ssrc, idx, NULL);
}

static void on_report_blocks(hd_pc_t *pc, const hd_rtcp_rb_t *rb, int n, hd_time_t now) {
  uint32_t arrival = hd_rtcp_ntp_mid32(hd_rtcp_ntp_from_time(now, pc->cfg.wall_offset));
  for (int k = 0; k < n; k++) {
    pc_trx_t *t = by_send_ssrc(pc, rb[k].ssrc, NULL);
    if (!t) continue;
    t->st.fraction_lost = rb[k].fraction_lost / 256.0;
    pc_fec_on_report(t, t->st.fraction_lost);
    if (t->st.fraction_lost >= PC_RTX_TWICE_LOSS) t->rtx_twice_until = now + PC_RTX_TWICE_HOLD;
    t->st.reports_received++;
    t->st.remote_lost = rb[k].cumulative_lost;
    t->st.remote_jitter = rb[k].jitter;
    hd_time_t rtt;
    if (hd_rtcp_rtt(arrival, &rb[k], &rtt) == 0) {
      t->st.rtt = rtt;
      pc->rtt = rtt;
    }
  }
}

static void on_feedback(hd_pc_t *pc, const hd_rtcp_pkt_t *p, hd_time_t now) {
  hd_rtcp_fb_t fb;
  if (hd_rtcp_parse_fb(p, &fb) < 0) return;
  int idx = -1;
  if (fb.pt == HD_RTCP_RTPFB && fb.fmt == HD_RTCP_FMT_NACK) {
    int layer = 0;
    pc_trx_t *t = by_send_ssrc_layer(pc, fb.media_ssrc, NULL, &layer);
    uint16_t seqs[256];
    int n = hd_rtcp_nack_expand(&fb, seqs, 256);
    if (!t || n < 0) return;
    t->st.nack_received++;
    pc_layer_swap(t, layer); /* that layer's cache and RTX stream */
    for (int i = 0; i < n; i++)
      resend(pc, t, seqs[i], now);
    pc_layer_swap(t, layer);
  } else if (fb.pt == HD_RTCP_PSFB && (fb.fmt == HD_RTCP_FMT_PLI || fb.fmt == HD_RTCP_FMT_FIR)) {
    uint32_t ssrc = fb.media_ssrc;
    if (fb.fmt == HD_RTCP_FMT_FIR) {
      hd_rtcp_fir_entry_t e[4];
      int n = hd_rtcp_fir_parse(&fb, e, 4);
      ssrc = 0;
      for (int i = 0; i < n && !ssrc; i++)
        if (by_send_ssrc(pc, e[i].ssrc, NULL)) ssrc = e[i].ssrc;
    }
    int layer = 0;
    pc_trx_t *t = by_send_ssrc_layer(pc, ssrc, &idx, &layer);
    if (!t) return;
    t->st.keyframe_requests++;
    hd_pc_event_t ev = {.type = HD_PC_EV_KEYFRAME, .track = idx, .layer = layer};
    pc_emit(pc, &ev);
  } else if (fb.pt == HD_RTCP_PSFB && fb.fmt == HD_RTCP_FMT_AFB) {
    hd_rtcp_remb_t r;
    if (hd_rtcp_remb_parse(&fb, &r) < 0) return;
    pc->st.remb_received++;
    pc->remb_bps = r.bitrate_bps;
    if (pc->bwe) hd_bwe_on_remb(pc->bwe, r.bitrate_bps, now);
    emit_send_rate(pc);
  } else if (fb.pt == HD_RTCP_RTPFB && fb.fmt == HD_RTCP_FMT_TWCC && pc->bwe) {
    static __thread hd_rtcp_twcc_pkt_t pkts[TWCC_MAX_PKTS];
    hd_rtcp_twcc_t tw;
    int np = hd_rtcp_twcc_parse(&fb, &tw, pkts, TWCC_MAX_PKTS);
    if (np < 0) return;
    pc->st.twcc_received++;
    if (pc->rtt > 0) hd_bwe_set_rtt(pc->bwe, pc->rtt);
    hd_bwe_on_twcc(pc->bwe, &tw, pkts, (size_t)np, now);
    emit_send_rate(pc);
  }
}

static void on_rtcp(hd_pc_t *pc, const uint8_t *buf, size_t len, hd_time_t now) {
  hd_rtcp_iter_t it;
  hd_rtcp_pkt_t p;
  pc->st.rtcp_received++;
  hd_rtcp_iter_init(&it, buf, len);
  while (hd_rtcp_next(&it, &p) == 1) {
    if (p.pt == HD_RTCP_SR) {
      hd_rtcp_sr_t sr;
      if (hd_rtcp_parse_sr(&p, &sr) < 0) continue;
      for (int i = 0; i < pc->n_tr; i++) {
        pc_trx_t *t = &pc->tr[i];
        if (t->r_started && t->r_ssrc == sr.ssrc) {
          hd_rtp_recv_stats_on_sr(&t->rst, sr.ntp, now);
          t->st.sr_received++;
          t->r_sr_ntp = sr.ntp;
          t->r_sr_rtp = sr.rtp_ts;
          t->r_have_sr = 1;
        }
      }
      on_report_blocks(pc, sr.rb, sr.rb_count, now);
    } else if (p.pt == HD_RTCP_RR) {
      hd_rtcp_rr_t rr;
      if (hd_rtcp_parse_rr(&p, &rr) == 0) on_report_blocks(pc, rr.rb, rr.rb_count, now);
    } else if (p.pt == HD_RTCP_RTPFB || p.pt == HD_RTCP_PSFB) {
      on_feedback(pc, &p, now);
    }
  }
}

void pc_media_on_srtp(hd_pc_t *pc, const uint8_t *buf, size_t len, hd_time_t now) {
  uint8_t tmp[PC_DGRAM_MAX];
  if (len > sizeof tmp) {
    pc->st.drop_malformed++;
    return;
  }
  memcpy(tmp, buf, len);
  int rtcp = hd_rtp_is_rtcp(buf, len);
  int n = rtcp ? hd_srtp_unprotect_rtcp(pc->srtp, tmp, len) : hd_srtp_unprotect(pc->srtp, tmp, len);
  if (n < 0) {
    pc->st.drop_srtp++;
    return;
  }
  if (rtcp)
    on_rtcp(pc, tmp, (size_t)n, now);
  else
    on_rtp(pc, tmp, (size_t)n, now);
}

int hd_pc_track_sr(const hd_pc_t *pc, int track, uint64_t *ntp, uint32_t *rtp_ts) {
  if (!pc || track < 0 || track >= pc->n_tr || !ntp || !rtp_ts) return HD_EINVAL;
  const pc_trx_t *t = &pc->tr[track];
  if (!t->r_have_sr) return HD_ENOTFOUND;
  *ntp = t->r_sr_ntp;
  *rtp_ts = t->r_sr_rtp;
  return 0;
}
