/* Client PeerConnection core of the native SDK (libhudong client, issue 6) and
 * of the load generator: one ICE/DTLS/SRTP transport with BUNDLE + rtcp-mux
 * carrying audio/video RTP, sans-IO (DESIGN §3 rule 1).
 *
 * - SDP (JSEP RFC 9429): creates Unified Plan offers (Opus 111, VP8 96 + RTX 97,
 *   mid / abs-send-time / transport-cc / ssrc-audio-level extensions) and applies
 *   the answer; or answers a remote offer (the node's subscriber offer, or any
 *   full WebRTC peer), keeping the offerer's payload types and extension ids.
 * - ICE (RFC 8445) full agent on one local socket: controlling when the peer is
 *   ICE-lite (§6.1.1) or when we offered to a full peer, controlled when we
 *   answered a full peer; answers Binding requests (MESSAGE-INTEGRITY +
 *   FINGERPRINT), learns peer-reflexive addresses, resolves role conflicts
 *   (487, §7.3.1.1), nominates aggressively (USE-CANDIDATE on every check;
 *   ICE-lite servers and full agents both accept it) and keeps consent
 *   (RFC 7675: a check every ~5 s, failed after 30 s without a response).
 * - DTLS-SRTP (RFC 5764): client when the remote setup is actpass/passive,
 *   server when it is active; SRTP keyed from the exporter.
 * - RTP out: hd_pc_send_rtp takes an encoded payload; SSRC, seq, header
 *   extensions and SRTP are ours. Video is kept in a send cache and NACKs
 *   (RFC 4585) are answered with RTX (RFC 4588). PLI/FIR become an event.
 * - RTP in: SRTP-decrypted, demultiplexed to transceivers by SSRC (a=ssrc,
 *   then the mid extension, then payload type), RTX unwrapped, duplicates
 *   dropped, NACKs generated for video (rtc/nack_gen), RR/SR every second
 *   (RFC 3550 §6.4) with RTT from the peer's report blocks (§6.4.1).
 * - REMB (draft-alvestrand-rmcat-remb) from the peer becomes a "send rate
 *   target" event; the application's encoder obeys it.
 *
 * Events are delivered through one callback (hd_pc_config_t.on_event), called
 * synchronously from hd_pc_feed / hd_pc_poll / hd_pc_handle_timeout. Data in an
 * event is lent for the call. The callback may call hd_pc_send_rtp,
 * hd_pc_request_keyframe and the accessors, but must not free the pc (set a
 * flag and free it after the outer call returns). Why callbacks rather than a
 * queue: received RTP would otherwise be copied into a bounded event queue
 * (1.5 KB per entry) for every packet; the load generator runs hundreds of
 * these. */
#ifndef HD_CLIENT_PC_H
#define HD_CLIENT_PC_H
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/time.h"
#include "proto/dtls.h"

#define HD_PC_MAX_TRANSCEIVERS 16 /* m= sections (= HD_SDP_MAX_MEDIA) */
#define HD_PC_MAX_REMOTE_CANDS 8  /* remote addresses checked (SDP + trickle + prflx) */
#define HD_PC_MID_MAX 32
#define HD_PC_MAX_LAYERS 3 /* simulcast layers per video track (RFC 8853) */
#define HD_PC_RID_MAX 8    /* rid length + 1 */
#define HD_PC_TXQ_CAP 1024 /* outgoing datagrams queued before hd_pc_poll drains them */

/* Default payload types of our offers. */
#define HD_PC_PT_OPUS 111
#define HD_PC_PT_RED 63 /* red/48000/2 over Opus (RFC 2198), as Chrome numbers it */
#define HD_PC_PT_VP8 96
#define HD_PC_PT_VP8_RTX 97
#define HD_PC_PT_H264 102 /* hd_pc_set_h264 */
#define HD_PC_PT_H264_RTX 103
#define HD_PC_PT_FLEXFEC 118 /* flexfec/90000 (RFC 8627 §5.1.1) protecting the video */

enum { HD_PC_AUDIO = 1, HD_PC_VIDEO = 2 }; /* = HD_SDP_AUDIO / HD_SDP_VIDEO */

/* Directions, from our side (= HD_SDP_SENDRECV ... HD_SDP_INACTIVE). */
enum { HD_PC_SENDRECV = 1, HD_PC_SENDONLY = 2, HD_PC_RECVONLY = 3, HD_PC_INACTIVE = 4 };

/* Connection state (ICE + DTLS together). */
enum {
  HD_PC_NEW = 0,       /* no remote description yet */
  HD_PC_CHECKING = 1,  /* ICE checks running */
  HD_PC_DTLS = 2,      /* ICE path found, DTLS handshaking */
  HD_PC_CONNECTED = 3, /* SRTP keyed: media flows */
  HD_PC_FAILED = 4,    /* ICE timeout, consent lost, DTLS failure */
  HD_PC_CLOSED = 5     /* peer's close_notify, or hd_pc_close */
};

enum {
  HD_PC_EV_STATE = 1,       /* state changed: ev->state, ev->reason when FAILED/CLOSED */
  HD_PC_EV_RTP = 2,         /* a received RTP packet: ev->rtp */
  HD_PC_EV_KEYFRAME = 3,    /* the peer asked for a keyframe (PLI/FIR) on ev->track */
  HD_PC_EV_SEND_RATE = 4,   /* the send rate target, ev->bitrate_bps: the send-side estimate on the
                               peer's transport-wide feedback (rtc/bwe.h), capped by its REMB; REMB
                               alone where transport-cc is not negotiated */
  HD_PC_EV_REMOTE_SSRC = 5, /* a new remote media SSRC on ev->track: ev->rtp.ssrc (no payload) */
};

/* One received RTP packet (RTX already unwrapped to the original seq/ssrc/pt). */
typedef struct {
  int track;              /* transceiver index */
  const char *mid;        /* its mid */
  int kind;               /* HD_PC_AUDIO / HD_PC_VIDEO */
  uint32_t ssrc;          /* media SSRC */
  uint8_t pt;             /* media payload type */
  uint16_t seq;           /* original sequence number */
  int64_t ext_seq;        /* extended (unwrapped) sequence number */
  uint32_t ts;            /* RTP timestamp */
  int marker;             /* M bit */
  int rtx;                /* 1: from RTX; audio under NACK: came after a newer seq (a repair) */
  int red;                /* 1: the payload is RED (RFC 2198) whose blocks are codec_pt */
  uint8_t codec_pt;       /* the negotiated codec's payload type */
  int audio_level;        /* RFC 6464 level 0..127, -1 if absent */
  const uint8_t *payload; /* lent for the callback */
  size_t payload_len;
  hd_time_t arrival;
} hd_pc_rtp_t;

typedef struct {
  int type;             /* HD_PC_EV_* */
  int state;            /* STATE: new state */
  const char *reason;   /* STATE FAILED/CLOSED: why; "" otherwise */
  int track;            /* KEYFRAME, REMOTE_SSRC: transceiver index */
  int layer;            /* KEYFRAME: the simulcast layer asked for (0 without simulcast) */
  uint64_t bitrate_bps; /* SEND_RATE */
  hd_pc_rtp_t rtp;      /* RTP, REMOTE_SSRC */
} hd_pc_event_t;

typedef void (*hd_pc_event_fn)(void *ud, const hd_pc_event_t *ev);

typedef struct {
  hd_dtls_cert_t *cert; /* borrowed; NULL = generate (and own) one */
  const char *cname;    /* RTCP CNAME / a=ssrc cname; NULL = random */
  const char *local_ip; /* host candidate written into our SDP; NULL = none (fine against ICE-lite) */
  uint16_t local_port;
  hd_time_t wall_offset;      /* unix_us = now + wall_offset (RTCP NTP times) */
  hd_time_t consent_interval; /* 0 = 5 s */
  hd_time_t connect_timeout;  /* ICE+DTLS must finish within this; 0 = 20 s */
  hd_time_t rtcp_interval;    /* 0 = 1 s */
  int no_nack;                /* 1: do not NACK received media, nor offer NACK for audio */
  int no_rtx;                 /* 1: offer/accept video without RTX */
  int no_red;                 /* 1: offer/accept audio without RED (RFC 2198) */
  int no_twcc;                /* 1: leave transport-cc out of our offer */
  int accept_h264;            /* 1: as answerer, accept H.264 (packetization-mode 1) video too */
  int no_pacing;              /* 1: send RTP at once instead of at the estimate's pacing rate */
  int probe;                  /* 1: bandwidth probes (RTX copies / padding, docs/bwe.md); env HUDONG_PROBE=1.
                                 Off by default: on a 300 kbit/s uplink the start-up cluster took the
                                 viewer's delay from ~100 to ~500 ms, at 20 % loss the pc's queue filled */
  hd_time_t probe_interval;   /* periodic probes while under the desired rate: 0 = default, < 0 = off */
  double app_limit_factor;    /* the estimator's increase bound (rtc/bwe.h); 0 = default */
  int no_fec;                 /* 1: offer/accept video without FlexFEC (RFC 8627); env HUDONG_FEC=0 */
  int no_audio_nack;          /* 1: no NACK for audio (offer, requests); env HUDONG_AUDIO_NACK=0 */
  size_t send_cache;          /* video packets kept for NACK/RTX per track, power of 2; 0 = 512 */
  hd_pc_event_fn on_event;    /* may be NULL */
  void *ud;
} hd_pc_config_t;

/* Per-transceiver statistics. RTT, fraction_lost and remote_jitter come from
 * the peer's report blocks about what we send; lost and jitter from our own
 * receive statistics (RFC 3550 A.3, A.8). */
typedef struct {
  int kind, direction;
  char mid[HD_PC_MID_MAX];
  uint32_t send_ssrc, send_rtx_ssrc, recv_ssrc;
  uint8_t pt, rtx_pt; /* negotiated (0 = not yet) */
  uint8_t red_pt;     /* audio: RED over pt negotiated (RFC 2198), 0 = none */
  /* sending */
  uint64_t packets_sent, bytes_sent; /* media RTP (not RTX); bytes = payload */
  uint64_t rtx_sent, nack_received, keyframe_requests, reports_received; /* report blocks on what we send */
  uint64_t rtx_doubled;   /* repairs sent a second time (the peer reports >= PC_RTX_TWICE_LOSS loss) */
  hd_time_t rtt;          /* from the latest RR/SR report block, -1 if none */
  double fraction_lost;   /* peer's view, 0..1, -1 if none */
  int64_t remote_lost;    /* peer's cumulative lost */
  uint32_t remote_jitter; /* peer's jitter, RTP units */
  /* receiving */
  uint64_t packets_received, bytes_received; /* unique media packets delivered (RTX-recovered included) */
  uint64_t rtx_received, rtx_recovered, duplicates;
  int64_t lost;    /* expected - received (A.3) */
  uint32_t jitter; /* RTP units (A.8) */
  uint64_t nack_sent, nack_seqs_sent, pli_sent, nack_gave_up;
  uint64_t sr_received;
  uint64_t missing;     /* seqs found missing on arrival, before any repair (video with NACK) */
  hd_time_t repair_rtt; /* NACK -> repair round trip learned by the NACK generator, -1 none */
  /* FlexFEC (RFC 8627, video): repair packets sent / received, media
   * packets rebuilt from them, current packets per repair packet (0 = off) */
  uint64_t fec_sent, fec_received, fec_recovered;
  int fec_group;
  uint64_t nack_doubled; /* NACK messages sent twice (our receive loss >= 10% before repair) */
} hd_pc_track_stats_t;

typedef struct {
  int state;
  int ice_controlling;
  uint64_t datagrams_in, datagrams_out, bytes_in, bytes_out;
  uint64_t stun_checks_sent, stun_responses, stun_requests_answered, role_conflicts;
  uint64_t rtcp_sent, rtcp_received, remb_received;
  uint64_t drop_srtp, drop_unknown, drop_malformed, drop_txq;
  /* queued video, RTX or FlexFEC dropped unsent: an answer applied while it
   * waited in the pacer no longer allows it (FlexFEC declined, the section
   * no longer sending) */
  uint64_t drop_unnegotiated;
  uint64_t send_rate_bps;  /* latest REMB, 0 if none */
  uint64_t bwe_bps;        /* send-side estimate from transport-wide feedback, 0 if none */
  uint64_t pacing_bps;     /* pacer drain rate, 0 when not pacing */
  uint64_t twcc_received;  /* transport-wide feedback messages */
  uint64_t twcc_sent;      /* transport-wide feedback we sent (as a receiver) */
  uint64_t paced_waits;    /* times the pacer held the queue */
  uint64_t pace_bypassed;  /* paced datagrams let out past the budget for a fixed-rate source */
  uint64_t probe_clusters; /* bandwidth probe clusters sent (rtc/bwe.h hd_bwe_next_probe) */
  uint64_t probe_bytes;    /* ... their RTP bytes (RTX copies of recent video, or padding) */
  hd_time_t rtt;           /* latest RTT over all tracks, -1 if none */
  hd_time_t ice_rtt;       /* latest ICE check -> success response round trip, -1 if none */
  int n_tracks;
  hd_pc_track_stats_t tracks[HD_PC_MAX_TRANSCEIVERS];
} hd_pc_stats_t;

typedef struct hd_pc hd_pc_t;

/* Creates a PeerConnection. Returns 0, HD_EINVAL, HD_ENOMEM or HD_ECRYPTO. */
int hd_pc_new(hd_pc_t **out, const hd_pc_config_t *cfg);
/* Frees it (no close_notify; call hd_pc_close and drain hd_pc_poll first for a
 * clean end). NULL is a no-op. */
void hd_pc_free(hd_pc_t *pc);

/* ---- offerer side ---- */

/* Adds a transceiver (m= section) for the next offer: kind HD_PC_AUDIO/VIDEO,
 * direction HD_PC_SENDONLY/RECVONLY/SENDRECV. Its mid is "0", "1", ... in order.
 * Returns the transceiver index (>= 0), HD_EINVAL, HD_ENOSPC (16 reached) or
 * HD_ESTATE (the pc answered an offer: the remote side owns the m= lines). */
int hd_pc_add_transceiver(hd_pc_t *pc, int kind, int direction);

/* Writes an offer with every transceiver (NUL-terminated). A later call (after
 * the answer) is a renegotiation: same ICE credentials and DTLS role. Returns the
 * length, HD_ESTATE (no transceiver, or an offer is pending), HD_ENOSPC. */
/* Offers video track `track` as n (2..HD_PC_MAX_LAYERS) simulcast layers
 * named rids (1-7 letters/digits, lowest resolution first): a=rid send lines,
 * a=simulcast:send and the rid header extension (RFC 8851, 8853, 8852). Each
 * layer has its own SSRC, sequence numbers, RTX and NACK cache; the rid
 * extension on every packet names it. Call before hd_pc_create_offer.
 * Returns 0, HD_EINVAL (bad track / not video / bad n or rid), HD_ESTATE
 * (answerer). */
int hd_pc_set_simulcast(hd_pc_t *pc, int track, int n, const char *const *rids);
/* Simulcast layers negotiated on a track: the offered count when the answer
 * accepted them (a=simulcast:recv), else 1. */
int hd_pc_track_layers(const hd_pc_t *pc, int track);

/* Offers H.264 instead of VP8 on video track `track`: the application sends
 * H.264 it encoded itself (RFC 6184 packetization-mode 1, media/h264_pay.h),
 * offered as constrained baseline (profile-level-id 42e01f), what every
 * WebRTC receiver decodes. Call before hd_pc_create_offer. Returns 0,
 * HD_EINVAL (bad track / not video), HD_ESTATE (answerer). */
int hd_pc_set_h264(hd_pc_t *pc, int track);
/* Offers H.264 on `track` with the stream's own profile-level-id (RFC 6184
 * §8.1: profile_idc, constraint flags, level_idc, e.g. 0x64001f High 3.1),
 * for a sender that passes through what another encoder made (the RTMP
 * ingest): receivers that cannot decode that profile refuse the section.
 * Returns as hd_pc_set_h264, and HD_EINVAL for a value over 24 bits or 0. */
int hd_pc_set_h264_profile(hd_pc_t *pc, int track, uint32_t profile_level_id);

int hd_pc_create_offer(hd_pc_t *pc, char *out, size_t cap, hd_time_t now);

/* Applies the answer to our pending offer: ICE credentials and candidates,
 * ice-lite, fingerprint, setup, per-section payload types / extension ids /
 * remote SSRCs. Starts ICE (and DTLS) on the first answer. Returns 0,
 * HD_ESTATE (no pending offer), HD_EPROTO (unparsable or does not match the
 * offer), HD_EUNSUPPORTED (no credentials / fingerprint, no common codec). */
int hd_pc_set_remote_answer(hd_pc_t *pc, const char *sdp, size_t len, hd_time_t now);

/* Forgets the pending offer (the remote refused it, e.g. a signaling error);
 * the next hd_pc_create_offer makes a new one. 0 or HD_ESTATE (none pending). */
int hd_pc_rollback_offer(hd_pc_t *pc);

/* ---- answerer side ---- */

/* Answers a remote offer: one transceiver per offered m= section (audio/video;
 * others rejected with port 0), our direction the complement of the offer's
 * (sendonly -> recvonly, ...), Opus / VP8 (+ RTX) with the offer's payload
 * types, the offer's extension ids for mid / abs-send-time / transport-cc /
 * audio level. DTLS: client (setup:active) unless the offer says active. ICE:
 * controlling if the offer is ice-lite, else controlled. A later offer from the
 * same peer (renegotiation: sections added, reused, set inactive) updates the
 * transceivers; the transport stays. Writes the answer (NUL-terminated), returns
 * its length, or HD_EPROTO (unparsable), HD_EUNSUPPORTED (no BUNDLE / rtcp-mux /
 * credentials / fingerprint, or a changed fingerprint), HD_ESTATE (we have an
 * offer pending), HD_ENOSPC. */
int hd_pc_answer_offer(hd_pc_t *pc, const char *offer, size_t len, char *answer, size_t cap, hd_time_t now);

/* Adds a remote candidate address (trickle ICE, or when the SDP carried none).
 * Returns 0, HD_ENOSPC (cap reached) or HD_EINVAL. */
int hd_pc_add_remote_candidate(hd_pc_t *pc, const struct sockaddr *addr, socklen_t len);

/* ---- transceivers ---- */

/* Number of transceivers; index of the one with `mid` (HD_ENOTFOUND). */
int hd_pc_track_count(const hd_pc_t *pc);
int hd_pc_find_mid(const hd_pc_t *pc, const char *mid);
/* Mid / kind / negotiated direction (ours) of transceiver i; NULL / 0 if out of range. */
const char *hd_pc_track_mid(const hd_pc_t *pc, int i);
int hd_pc_track_kind(const hd_pc_t *pc, int i);
int hd_pc_track_direction(const hd_pc_t *pc, int i);

/* ---- I/O ---- */

/* Feeds one datagram received on our socket from `from`. Events may fire.
 * Returns 0, or a negative error when the datagram was dropped (counted). */
int hd_pc_feed(hd_pc_t *pc, const uint8_t *buf, size_t len, const struct sockaddr *from, socklen_t fromlen,
               hd_time_t now);
/* Runs due timers at `now`, then takes the next datagram to send into out with
 * its destination. Returns its length, 0 when nothing is queued, HD_ENOSPC if
 * cap is too small (1500 is always enough; the datagram stays queued). */
int hd_pc_poll(hd_pc_t *pc, uint8_t *out, size_t cap, struct sockaddr_storage *to, socklen_t *tolen,
               hd_time_t now);
/* Next time hd_pc_handle_timeout (or hd_pc_poll) has work; HD_TIME_NEVER if none.
 * Queued datagrams are not signalled here: drain hd_pc_poll after every feed,
 * send or timeout call. */
hd_time_t hd_pc_next_timeout(const hd_pc_t *pc);
/* Runs timers due at `now`: ICE checks and consent, DTLS retransmission,
 * RTCP reports, NACK retries, connect / consent timeouts. */
void hd_pc_handle_timeout(hd_pc_t *pc, hd_time_t now);

/* ---- media ---- */

typedef struct {
  int track;  /* transceiver index; must send (sendonly/sendrecv) */
  uint8_t pt; /* 0 = the negotiated codec's payload type */
  int marker;
  uint32_t ts; /* RTP timestamp (the caller's media clock) */
  const uint8_t *payload;
  size_t len;      /* <= HD_PC_MAX_PAYLOAD */
  int audio_level; /* RFC 6464 0..127 (-dBov) for audio, -1 = do not send the extension */
  int voice;       /* V flag of the audio level */
  int layer;       /* simulcast layer (hd_pc_set_simulcast order), 0 without simulcast */
  /* set: the application's encoder, not ours, sets this media's bitrate
   * (pushed H.264): the estimate cannot slow it, so the pacer does not
   * hold it; it (and what is queued before it) leaves at once, counted in
   * the pacer's budget and stamped for the estimator as it leaves */
  int fixed_rate;
} hd_pc_rtp_send_t;

#define HD_PC_MAX_PAYLOAD 1100

/* The RED payload type negotiated on a track (RFC 2198 over its Opus pt), 0
 * if none or not negotiated yet. */
uint8_t hd_pc_track_red_pt(const hd_pc_t *pc, int track);
/* The negotiated codec name of a track ("opus", "VP8", "H264"), "" before. */
const char *hd_pc_track_codec(const hd_pc_t *pc, int track);

/* The peer's latest report on what track sends: *fraction_lost (0..1) and
 * *count, the report blocks received so far (a new report when it changes).
 * 0, or HD_ENOTFOUND before the first report / for a bad track. */
int hd_pc_track_loss_report(const hd_pc_t *pc, int track, double *fraction_lost, uint64_t *count);

/* Audio NACK (RFC 4585 generic NACK on Opus, negotiated with
 * "a=rtcp-fb:<opus pt> nack"; the sender resends the same packet, no RTX):
 * a lost audio packet is only worth asking for if its repair can arrive
 * before the jitter buffer plays its slot. window: how long after a hole is
 * noticed a repair is still played (the audio buffer's current delay minus
 * one frame, media/audio_jitter.h hd_audio_jitter_repair_window); a request
 * is sent only while window - RTT has not passed since the hole was noticed,
 * so with window <= RTT nothing is asked. Until the app sets a window no
 * audio NACK is sent. Returns 0, HD_EINVAL (bad track), HD_ESTATE (not an
 * audio track receiving with NACK negotiated). */
int hd_pc_set_nack_window(hd_pc_t *pc, int track, hd_time_t window);
/* The NACK -> repair round trip known for a receiving track: learned from
 * its own repairs, else from the other tracks', else the RTT from report
 * blocks; 0 when none is known yet; HD_ESTATE/HD_EINVAL as above (any kind). */
hd_time_t hd_pc_track_repair_rtt(const hd_pc_t *pc, int track);

/* Sends one RTP packet (SSRC, seq, extensions and SRTP done here). Returns 0,
 * HD_ESTATE (not CONNECTED, or the track does not send), HD_EINVAL (bad track,
 * payload too long), HD_ENOSPC (send queue full; counted). */
int hd_pc_send_rtp(hd_pc_t *pc, const hd_pc_rtp_send_t *p, hd_time_t now);
/* The rate the app would send at if the estimate allowed (its encoders' caps
 * with audio and overhead), bit/s: the send-side estimator probes only while
 * under it (rtc/bwe.h hd_bwe_set_desired). 0 = no limit (the default). */
void hd_pc_set_send_desired(hd_pc_t *pc, uint64_t bps);

/* Asks the sender of received track i for a keyframe (PLI, RFC 4585 §6.3.1).
 * Returns 0, HD_ESTATE (not connected / nothing received yet), HD_EINVAL. */
int hd_pc_request_keyframe(hd_pc_t *pc, int track, hd_time_t now);
/* The latest RTCP sender report received for a track's incoming stream: its
 * NTP time (32.32) and the RTP timestamp that goes with it (RFC 3550 §6.4.1),
 * for lip sync and recording timestamps. 0, HD_ENOTFOUND before the first SR,
 * HD_EINVAL. */
int hd_pc_track_sr(const hd_pc_t *pc, int track, uint64_t *ntp, uint32_t *rtp_ts);

/* Tells the sender of the received streams our estimated receive bandwidth
 * (REMB). Returns 0, HD_ESTATE, HD_EINVAL. */
int hd_pc_send_remb(hd_pc_t *pc, uint64_t bitrate_bps, hd_time_t now);

/* The latest REMB bitrate from the peer (bps), 0 if none yet. */
uint64_t hd_pc_send_rate_target(const hd_pc_t *pc);

/* Sends DTLS close_notify (take it with hd_pc_poll); state CLOSED. */
int hd_pc_close(hd_pc_t *pc);

/* ---- state and stats ---- */

int hd_pc_state(const hd_pc_t *pc);
/* Why the pc failed/closed; "" otherwise. */
const char *hd_pc_error(const hd_pc_t *pc);
/* 1 if we are the ICE controlling agent. */
int hd_pc_ice_controlling(const hd_pc_t *pc);
/* 1 if we are the DTLS client (meaningful once the remote description is applied). */
int hd_pc_dtls_client(const hd_pc_t *pc);
/* 1 if this pc offers/accepts FlexFEC on video (not no_fec, not HUDONG_FEC=0). */
int hd_pc_fec_enabled(const hd_pc_t *pc);
/* The selected remote address (NULL until ICE found one). */
const struct sockaddr *hd_pc_remote_addr(const hd_pc_t *pc, socklen_t *len);
/* Fills *out at `now`. */
void hd_pc_stats(const hd_pc_t *pc, hd_pc_stats_t *out);

const char *hd_pc_state_name(int state);

#endif
