/* Internals of the client PeerConnection (pc.h), shared by pc.c (transport:
 * ICE, DTLS, timers, I/O), pc_sdp.c (offer/answer) and pc_media.c (RTP/RTCP).
 * Not a public interface. */
#ifndef HD_CLIENT_PC_INTERNAL_H
#define HD_CLIENT_PC_INTERNAL_H
#include <stdint.h>
#include <sys/socket.h>

#include "client/pc.h"
#include "proto/rtp.h"
#include "proto/sdp.h"
#include "proto/srtp.h"
#include "proto/stun.h"
#include "rtc/bwe.h"
#include "rtc/twcc_recv.h"
#include "rtc/nack_gen.h"
#include "rtc/rtp_cache.h"
#include "rtc/rtp_stats.h"

#define PC_DGRAM_MAX 1500
/* Connectivity checks we sent, remembered so that a success response matches
 * the transaction it answers (RFC 8445 §7.2.5.2) however late it comes, as
 * long as the check is at most PC_TX_KEEP old (RFC 8489 §6.2.1's default
 * transaction lifetime is 39.5 s with retransmissions; we never retransmit, a
 * fresh check goes every 50 ms, so 5 s bounds how late an answer may be) and
 * among the last PC_TX_CAP sent. At the 50 ms check pace 128 entries span
 * 6.4 s, so the time bound is the one that applies; 128 x 24 B = 3 KB per pc.
 * Issue 17: a loaded node answered > 1.6 s late and a ring of 16 (0.8 s of
 * checks) dropped every answer: the pc never left "checking". */
#define PC_TX_CAP 128
#define PC_TX_KEEP HD_SEC(5)
#define PC_SEEN_WINDOW 1024    /* received seqs remembered per stream, for duplicate drops */
#define PC_RTX_TWICE_LOSS 0.02 /* the peer reports this much loss on a stream we send: repairs go twice */
#define PC_RTX_TWICE_HOLD HD_SEC(10) /* ... for this long after the last such report */

/* issue 13: FlexFEC and audio NACK */
#define PC_FEC_REPAIR_WINDOW_US 4000000u /* FlexFEC a=fmtp repair-window we announce (RFC 8627 §5.1.1) */
#define PC_FEC_NACK_WAIT                                                                                     \
  HD_MS(35) /* with FlexFEC coming, a hole waits at most this (and rtt/2) before its NACK */
#define PC_AUDIO_NACK_LEARN HD_MS(250) /* audio NACK give-up age while no RTT is known */
#define PC_NACK_TWICE_Q8 26            /* our receive loss (x/256, 10%) from which NACKs go twice */

typedef struct {
  size_t len;
  int twcc;         /* transport-wide seq to report to the estimator when it leaves, -1 none */
  uint8_t paced;    /* RTP: waits for the pacer */
  uint16_t rtp_len; /* RTP size (header + payload) reported to the estimator */
  /* paced RTP is queued unprotected: when the pacer releases it, its
   * transport-wide seq is written at twcc_off (0 = none) and it is SRTP-
   * protected then, so seqs leave in order (a receiver reads a paced packet
   * that overtook... that was overtaken by unpaced audio as lost) */
  uint8_t protect_later;
  uint8_t fixed_rate; /* paced RTP of a source we cannot slow: the pacer lets it out at once */
  uint16_t twcc_off;
  int16_t cluster; /* probe cluster id reported with it (rtc/bwe.h), 0 = media */
  socklen_t tolen;
  struct sockaddr_storage to;
  uint8_t data[PC_DGRAM_MAX];
} pc_dgram_t;

/* The send state of one simulcast layer beyond the first (layer 0 lives in
 * pc_trx_t's own fields; pc_layer_swap exchanges them for one send). */
typedef struct {
  uint32_t ssrc, rtx_ssrc;
  uint16_t seq, rtx_seq;
  hd_rtp_send_stats_t sst;
  hd_rtp_cache_t cache;
  int have_cache;
} pc_layer_t;

typedef struct {
  int kind;     /* HD_PC_AUDIO / HD_PC_VIDEO */
  int want_dir; /* what the app asked for (offerer) / what the offer allows (answerer) */
  int dir;      /* negotiated, our side (HD_PC_*; INACTIVE when rejected) */
  int rejected; /* port 0 */
  char mid[HD_PC_MID_MAX];
  char media[16]; /* m= media name, kept for rejected sections */
  /* negotiated codec */
  int negotiated;
  uint8_t pt, rtx_pt;
  uint8_t red_pt; /* audio: red/48000 whose blocks are pt (RFC 2198), 0 = none */
  uint32_t clock;
  uint8_t channels;
  char codec[HD_SDP_TOKEN_MAX];
  char fmtp[HD_SDP_FMTP_MAX];
  int nack, pli, fir, remb, twcc_fb, rsize;
  int send_h264;      /* offerer: H.264 instead of VP8 (hd_pc_set_h264) */
  uint32_t h264_plid; /* its RFC 6184 profile-level-id (hd_pc_set_h264_profile; 0 = 42e01f) */
  uint8_t ext_mid, ext_ast, ext_twcc, ext_level;
  /* sending */
  uint32_t ssrc, rtx_ssrc;
  uint16_t seq, rtx_seq;
  hd_rtp_send_stats_t sst;
  hd_rtp_cache_t cache;
  int have_cache;
  /* simulcast (RFC 8853): n_rids layers offered (hd_pc_set_simulcast), sim =
   * layers negotiated (0 = one stream); layer L > 0 sends from lay[L] */
  int n_rids, sim;
  char rids[HD_PC_MAX_LAYERS][HD_PC_RID_MAX];
  uint8_t ext_rid;
  pc_layer_t lay[HD_PC_MAX_LAYERS];
  /* FlexFEC (RFC 8627, client/pc_fec.h): fec_pt negotiated = 0 none; we send
   * repair packets on fec_ssrc, the peer's come on r_fec_ssrc */
  uint8_t fec_pt;
  uint32_t fec_ssrc, r_fec_ssrc;
  uint16_t fec_seq;
  struct pc_fec *fec;        /* allocated when used */
  hd_time_t rtx_twice_until; /* repairs go twice until then (a lossy report, PC_RTX_TWICE_LOSS) */
  /* receiving */
  uint32_t r_ssrc, r_rtx_ssrc; /* from the remote SDP, or learned */
  int r_started;
  hd_rtp_recv_stats_t rst;
  uint64_t r_sr_ntp; /* latest sender report: NTP 32.32 <-> RTP timestamp (RFC 3550 §6.4.1) */
  uint32_t r_sr_rtp;
  int r_have_sr;
  hd_nack_gen_t ng;
  hd_time_t nack_window; /* audio: hd_pc_set_nack_window, 0 = not set (no audio NACK) */
  /* loss before repair on what we receive (seqs found missing / packets), per
   * report interval, smoothed x/256: our NACKs go twice at PC_NACK_TWICE_Q8 */
  unsigned r_loss_q8;
  uint64_t r_loss_noticed, r_loss_packets;
  int64_t r_max_ext;
  uint8_t seen[PC_SEEN_WINDOW / 8];
  /* stats */
  hd_pc_track_stats_t st;
} pc_trx_t;

typedef struct {
  struct sockaddr_storage addr;
  socklen_t len;
  int valid;     /* a check of ours to it succeeded, or a valid check came from it */
  int nominated; /* the controlling peer sent USE-CANDIDATE from it */
} pc_cand_t;

struct hd_pc {
  hd_pc_config_t cfg;
  hd_dtls_cert_t *cert;
  int own_cert;
  char ufrag[9], pwd[25], cname[64], sess_id[24];
  char local_ip[64]; /* host candidate for our SDP, "" = none */
  unsigned sdp_version;
  /* remote description */
  char r_ufrag[HD_SDP_ICE_MAX], r_pwd[HD_SDP_ICE_MAX], r_fp[HD_SDP_FP_MAX];
  int r_lite;
  int have_remote;   /* a remote description was applied */
  int answerer;      /* 1: the remote side offers (it owns the m= lines) */
  int offer_pending; /* our offer awaits its answer */
  int state;
  char err[128];
  hd_time_t started; /* remote description applied (connect timeout anchor) */
  /* ICE */
  int controlling, lite_peer;
  uint64_t tie;
  pc_cand_t cands[HD_PC_MAX_REMOTE_CANDS];
  int n_cands, next_cand;
  int selected; /* index into cands, -1 none */
  struct {
    uint8_t txid[HD_STUN_TXID_LEN];
    int cand;       /* -1: free (never sent, answered or expired) */
    hd_time_t sent; /* when the check left: its answer's RTT */
  } txs[PC_TX_CAP];
  int tx_pos;
  hd_time_t ice_rtt; /* check -> success response, latest; -1 none */
  hd_time_t next_check, last_consent;
  /* DTLS / SRTP */
  hd_dtls_t *dtls;
  int dtls_client;
  hd_srtp_t *srtp;
  /* transceivers */
  pc_trx_t tr[HD_PC_MAX_TRANSCEIVERS];
  int n_tr;
  uint32_t rtcp_ssrc;
  uint16_t twcc_seq;
  hd_time_t next_rtcp;
  uint64_t remb_bps;
  hd_time_t rtt;
  /* tx queues: q for what leaves at once (audio, RTCP, ICE, DTLS), pq for
   * video RTP and RTX, drained by the pacer */
  pc_dgram_t *q, *pq;
  size_t q_cap, q_head, q_count;
  size_t pq_head, pq_count, pq_bytes;
  size_t pq_fixed;                 /* fixed-rate datagrams in pq: while > 0 the pacer does not hold */
  int tx_twcc, tx_paced, tx_fixed; /* metadata for the next enqueued datagram (set by hd_pc_send_rtp) */
  int tx_cluster;                  /* ... the probe cluster it belongs to, 0 none */
  uint16_t tx_twcc_off;            /* ... offset of its transport-wide seq, 0 = none */
  size_t tx_rtp_len;
  /* send-side bandwidth estimation (rtc/bwe.h) and pacing, once transport-cc is
   * negotiated on a sending track */
  hd_bwe_t *bwe;
  /* receive side of transport-wide CC (rtc/twcc_recv.h): feedback to the node
   * about what it sends us, so its per-subscriber estimate (and layer choice)
   * works for SDK subscribers too; allocated on the first stamped packet */
  hd_twcc_recv_t *twcc_rx;
  hd_time_t next_twcc_fb;
  double pace_budget; /* bytes that may leave now (leaky bucket) */
  hd_time_t pace_last;
  /* the probe cluster being sent (rtc/bwe.h hd_bwe_next_probe, pc_media.c
   * pc_probe_run): id 0 = none; while one runs the pacer drains at its rate */
  struct {
    int id;
    uint64_t rate_bps;
    int64_t bytes_left;
    int pkts_left, drain;
    double credit;
    hd_time_t next_tick, last, next_ask;
    unsigned cursor; /* RTX copies cycle back through the newest PC_PROBE_COPIES video packets */
  } probe;
  size_t pq_probe;      /* probe datagrams in pq */
  uint64_t desired_bps; /* hd_pc_set_send_desired, 0 = none */
  hd_pc_stats_t st;     /* pc-wide counters (tracks[] filled by hd_pc_stats) */
};

/* pc.c */
void pc_emit(hd_pc_t *pc, hd_pc_event_t *ev);
void pc_set_state(hd_pc_t *pc, int state, const char *reason);
/* Queues a datagram to the selected remote address; HD_ESTATE if none, HD_ENOSPC. */
int pc_send_dgram(hd_pc_t *pc, const uint8_t *data, size_t len);
/* Starts ICE/DTLS after the first remote description. */
int pc_start_transport(hd_pc_t *pc, int remote_setup, hd_time_t now);
int pc_add_cand(hd_pc_t *pc, const struct sockaddr *a, socklen_t len);
void pc_trx_init(hd_pc_t *pc, pc_trx_t *t, int kind, const char *mid);
void pc_trx_free(pc_trx_t *t);
/* Exchanges layer L's send state (ssrc, seqs, stats, cache) with the
 * transceiver's own fields, so the single-stream send path serves it; call
 * again to restore. L = 0 does nothing. */
void pc_layer_swap(pc_trx_t *t, int L);

/* pc_media.c */
/* The pacer (a leaky bucket drained at the estimate's pacing rate): its rate
 * in bit/s (0 = not pacing), the refill up to `now`, and when the bucket
 * lets the next paced datagram go. */
uint64_t pc_pace_rate(const hd_pc_t *pc);
void pc_pace_refill(hd_pc_t *pc, hd_time_t now);
double pc_pace_burst(const hd_pc_t *pc); /* the bucket's size in bytes */
hd_time_t pc_pace_due(const hd_pc_t *pc);
/* Starts and sends the estimator's probe clusters (called with the media timeouts). */
void pc_probe_run(hd_pc_t *pc, hd_time_t now);
hd_time_t pc_probe_next_timeout(const hd_pc_t *pc);
void pc_media_on_srtp(hd_pc_t *pc, const uint8_t *buf, size_t len, hd_time_t now);
hd_time_t pc_media_next_timeout(const hd_pc_t *pc);
void pc_media_timeout(hd_pc_t *pc, hd_time_t now);
/* Resets a transceiver's receive state (new remote SSRC). */
void pc_trx_recv_reset(pc_trx_t *t, uint32_t ssrc);
/* 0 if RTP packet pkt (queued before the latest answer; header in clear,
 * SRTP-protected or not) may no longer go: a FlexFEC repair packet of a
 * track whose answer declined FlexFEC, or a packet of a track that no
 * longer sends. 1 otherwise (also RTCP and what is no track's). */
int pc_media_may_send(const hd_pc_t *pc, const uint8_t *pkt, size_t len);

#endif
