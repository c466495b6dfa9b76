/* A WHIP (publish) or WHEP (play) session: one peer transport plus the media
 * tracks negotiated on it, and the per-track RTP machinery of a forwarding node:
 *  - publisher side: SSRC learning, RTX unwrapping (RFC 4588), receive stats and
 *    RR (RFC 3550 §6.4.2), a retransmission cache, TWCC feedback
 *    (draft-holmer-rmcat-transport-wide-cc-extensions-01), PLI on request;
 *  - viewer side: per-track SSRC/seq/ts rewriting, NACK answered from the
 *    publisher's cache as RTX when negotiated, SR (RFC 3550 §6.4.1) generated
 *    from the publisher's SR so lip sync survives the hop.
 * Sans-IO: packets in, packets into the tx queue out. */
#ifndef HD_SFU_SESSION_H
#define HD_SFU_SESSION_H
#include <stdint.h>

#include "proto/rtcp.h"
#include "proto/rtp.h"
#include "proto/sdp_negotiate.h"
#include "rtc/bwe.h"
#include "rtc/nack_gen.h"
#include "rtc/pacer.h"
#include "rtc/rtp_cache.h"
#include "rtc/rtp_stats.h"
#include "rtc/twcc_recv.h"
#include "sfu/peer.h"
#include "sfu/probe.h"
#include "sfu/red_repair.h"
#include "sfu/resend_cache.h"
#include "sfu/allocator.h"
#include "sfu/rewriter.h"
#include "sfu/temporal.h"
#include "sfu/vp8_rewriter.h"

/* PUBLISH: client offers, we receive (WHIP, or a room participant's publisher
 * PC). PLAY: client offers, we send (WHEP). SUBSCRIBE: we offer, we send (a room
 * participant's subscriber PC). */
enum { HD_SESSION_PUBLISH = 1, HD_SESSION_PLAY = 2, HD_SESSION_SUBSCRIBE = 3 };
enum { HD_TRACK_AUDIO = 0, HD_TRACK_VIDEO = 1, HD_TRACK_KINDS = 2 };

#define HD_SESSION_ID_LEN 16
#define HD_SESSION_MAX_TRACKS                                                                                \
  12 /* tracks a session receives (mic, camera, screen, ...; a simulcast layer counts as one) */
#define HD_SESSION_MAX_LAYERS 3                  /* simulcast layers of one track (RFC 8853) */
#define HD_SESSION_RATE_WINDOW HD_MS(500)        /* a layer's bitrate is measured over this */
#define HD_SESSION_LAYER_TIMEOUT HD_SEC(1)       /* a layer that sent nothing this long is not live */
#define HD_SESSION_CUR_LAYER_TIMEOUT HD_MS(2500) /* ... except for a subscriber that gets it now */
#define HD_SESSION_ALLOC_INTERVAL HD_MS(500)     /* the allocator runs at least this often per subscriber */
#define HD_SESSION_START_BPS 1000000 /* the allocator's budget before a subscriber's first estimate */
/* A single-layer video track has no lower layer to fall back to: the
 * allocator may pause it only once the subscriber's estimate has had this
 * long (start-up probes) to find the link, and never without an estimate (a
 * WHEP player that sends no feedback keeps everything). */
#define HD_SESSION_SINGLE_SETTLE HD_SEC(3)
#define HD_SESSION_MAX_OUT 32 /* tracks a session sends (a subscriber sees many publishers) */
#define HD_SESSION_REMB_INTERVAL HD_SEC(1)
#define HD_OUT_RTX_HIST 64 /* recent retransmissions remembered per viewer track (power of two) */
#define HD_OUT_SR_HIST 4   /* recent SRs remembered per viewer track, for RTT from its RR */
/* A video packet the publisher could not repair within this long is given up
 * and replaced by one keyframe request: by then the viewer's decoder has been
 * waiting on it, and a keyframe ends the freeze sooner than its own timers. */
#define HD_SESSION_REPAIR_DEADLINE HD_MS(500)
/* A keyframe request with no keyframe after this long (or 3 x the leg's RTT,
 * if longer) is repeated: PLI is not acknowledged (RFC 4585 §6.3.1) and is
 * lost like any packet on a lossy uplink. */
#define HD_SESSION_KEY_RETRY HD_MS(500)
/* A viewer whose RRs report at least this loss (x/256, ~2%) gets every repair twice. */
#define HD_SESSION_LOSSY_Q8 5
/* a publisher leg our reports show losing >= 10% (x/256): our NACKs to it go twice */
#define HD_SESSION_NACK_TWICE_Q8 26
/* Playout delay (the playout-delay header extension, where the viewer
 * negotiated it): a packet lost on the publisher's leg is repaired over
 * that leg first, which the viewer's jitter buffer knows nothing of. When
 * at least this share (x/256, ~8%) of a video source's packets arrive as
 * repairs, the viewer is asked to wait at least both legs' round trips plus
 * HD_SESSION_PLAYOUT_SLACK (capped at HD_SESSION_PLAYOUT_MAX) before it
 * renders; HUDONG_PLAYOUT_DELAY=0 turns it off. (At 10% loss per leg it
 * cut the stall from 7-11% to 2-3.5%; at 5%, where Chrome's own buffer
 * copes, it cost stall in both runs: docs/performance.md.) */
#define HD_SESSION_PLAYOUT_LOSSY_Q8 20
#define HD_SESSION_PLAYOUT_SLACK HD_MS(30)
#define HD_SESSION_PLAYOUT_MAX HD_MS(400)
/* The viewer's own leg: Chrome as a receive-only viewer behaves as if it
 * knew no RTT (measured: NACK retries every ~100 ms, its default, and a jitter
 * buffer target of 12-40 ms), so a frame that waits for a repair of a packet
 * lost on the viewer's leg comes late; Chrome then drops it, and the frames
 * that reference it, once a newer frame can be decoded (framesDropped 32-43
 * per 25 s), and that gap is a freeze (7-12% stall at 20% loss with a clean
 * publisher, docs/performance.md). So when the viewer's own reports (RR
 * fraction lost, counted before repair) show at least
 * HD_SESSION_PLAYOUT_LOSSY_Q8, it is asked for at least its leg's RTT +
 * HD_SESSION_PLAYOUT_DETECT + HD_SESSION_PLAYOUT_SLACK: the time one repair
 * takes from the moment the receiver can see the gap. The lost last packet
 * of a frame shows only when the next frame starts: one frame interval,
 * 67 ms at 15 fps. */
#define HD_SESSION_PLAYOUT_DETECT HD_MS(70)
/* Tail-loss probe (as TCP's, RFC 8985 §7): the lost last packet of a frame
 * shows only when the next packet arrives, and a publisher whose encoder
 * skips frames (a loaded host: 150-290 ms gaps measured) leaves the viewer
 * without one. When nothing follows the last packet of a video frame within
 * HD_SESSION_PLAYOUT_DETECT on a lossy viewer leg, the node resends it (as a
 * NACK would have it), so that detection never takes longer than the playout
 * floor above allows for. */
#define HD_SESSION_TAIL_PROBE HD_SESSION_PLAYOUT_DETECT
/* The probe waits max(HD_SESSION_TAIL_PROBE, HD_SESSION_TAIL_PROBE_RTT_PCT %
 * of the viewer's RTT). RFC 8985 §7.2 waits ~2*SRTT: long enough for the
 * ACK of the tail to come back, which cancels the probe. Our ACK is the
 * viewer's transport-wide feedback (hd_session_tail_acked): on a long leg a
 * fixed 70 ms would probe every tail before its feedback could arrive. 1.5
 * rather than 2 x RTT: on short legs the 70 ms floor governs anyway, and on
 * long ones the repair still has to land within the playout floor the node
 * asked for (RTT + HD_SESSION_PLAYOUT_DETECT + slack). */
#define HD_SESSION_TAIL_PROBE_RTT_PCT 150

/* A track a publisher sends us. Packets are matched to it by SSRC (from the
 * SDP or learned), else by the mid header extension (RFC 9143 §15), else by a
 * payload type only this track uses.
 *
 * A simulcast track (RFC 8853: several RIDs in one media section) is one
 * hd_in_track_t per layer, each with its own SSRC, cache, NACK and stats; the
 * first is the group's head (what rooms and subscriptions refer to), and
 * packets of the others are told apart by the rid / repaired-rid header
 * extensions (RFC 8852) until their SSRCs are learned. */
typedef struct {
  int active;
  char rid[16];                      /* simulcast layer id, "" when the section has no simulcast */
  int head;                          /* in[] index of the group's first layer (itself without simulcast) */
  int n_layers;                      /* head only: layers of the group (1 without simulcast) */
  int layers[HD_SESSION_MAX_LAYERS]; /* head only: in[] index of each layer, a=simulcast order */
  /* measured: bits per second over the last HD_SESSION_RATE_WINDOW, and when the layer last sent */
  uint32_t bps;
  hd_time_t rate_start, last_packet_at;
  uint64_t rate_bytes;
  /* VP8 temporal layers (RFC 7741 TID): bytes per TID in the rate window,
   * their smoothed bitrates, and the highest TID lately (-1 = the stream
   * has no temporal layers; an encoder that skips frames under load may
   * send a window without its top TID: that does not merge the layers) */
  uint64_t tid_bytes[HD_TL_ALL + 1];
  uint32_t tid_bps[HD_TL_ALL + 1];
  hd_time_t tid_seen_at[HD_TL_ALL + 1]; /* last packet of each TID */
  int max_tid;                          /* highest TID seen within HD_SESSION_LAYER_TIMEOUT */
  int width, height;                    /* VP8: from the last keyframe */
  int last_pkt_key;                     /* the packet just handed out starts a keyframe */
  int kind;                             /* HD_TRACK_AUDIO / HD_TRACK_VIDEO */
  int media_index;                      /* into negotiated.media */
  char mid[32];
  uint8_t pt, rtx_pt;
  uint8_t red_pt; /* audio: RED (RFC 2198) over pt, as browsers send Opus; 0 = not negotiated */
  char codec[16];
  uint8_t codec_id; /* codec as a number (session.c codec_id), so the packet path compares no strings */
  char fmtp[256];
  uint32_t clock;
  uint32_t ssrc, rtx_ssrc; /* learned from packets (or SDP) */
  int have_ssrc;
  hd_rtp_recv_stats_t stats;
  hd_rtp_cache_t cache;
  int have_cache;
  /* last SR from the publisher for this SSRC (lip sync for viewers) */
  int have_sr;
  uint64_t sr_ntp;
  uint32_t sr_rtp;
  hd_time_t sr_arrival;
  hd_time_t last_pli;
  int pli_pending; /* a keyframe request held back by the rate limit, sent when it allows */
  /* a keyframe was asked for and has not started arriving (0 = none wanted):
   * a PLI lost on the way, or ignored, is sent again (see HD_SESSION_KEY_RETRY) */
  hd_time_t key_wanted_since;
  int nack_enabled; /* nack negotiated: we ask the publisher to repair uplink loss */
  hd_nack_gen_t nack;
  uint64_t nack_gave_up_seen; /* nack.gave_up already answered with a keyframe request */
  /* rtx_packets: RTX that repaired something (not duplicates: probes, a
   * second answer to a repeated NACK, counted in rtx_duplicates) */
  uint64_t packets, bytes, rtx_packets, repairs, rtx_duplicates;
  uint64_t plis_sent;            /* keyframe requests sent for this track (quality samples, sfu/qsample.h) */
  uint32_t level_acc, level_cnt; /* audio: sum of (127 - RFC 6464 level) since last read */
  int muted;                     /* not forwarded while set (participant or admin mute) */
  hd_red_repair_t red_fix;       /* audio RED: packets of our leg's gaps rebuilt (sfu/red_repair.h) */
  /* video FlexFEC from the publisher (RFC 8627, sfu/fec_in.h): negotiated pt
   * (0 = none), repair SSRC (from SDP or the first repair packet), receiver */
  uint8_t fec_pt;
  uint32_t fec_ssrc;
  struct hd_fec_in *fec;
  uint16_t leg_loss_q8; /* loss our RRs report on this stream (before repair), smoothed (x/256) */
} hd_in_track_t;

/* A track we send a viewer. It follows one publisher track: `src`/`src_in`,
 * or with src NULL the room publisher's first track of the same kind (WHEP). */
typedef struct {
  int active;
  int kind;
  int media_index;
  struct hd_session *src;
  int src_in;
  int follow_room_pub; /* WHEP: src NULL means "the room's WHIP publisher" */
  uint8_t pt, rtx_pt;
  uint8_t red_pt; /* audio: the viewer takes RED (passed on); 0 = it gets plain Opus (unwrapped) */
  char codec[16];
  uint8_t codec_id; /* as hd_in_track_t's */
  char fmtp[256];
  uint32_t clock;
  uint32_t ssrc, rtx_ssrc;
  uint16_t rtx_seq;
  uint8_t ext_mid, ext_abs_send_time, ext_audio_level;
  uint8_t ext_twcc; /* transport-wide seq extension id, with transport-cc feedback negotiated */
  uint8_t ext_playout_delay;
  uint16_t playout_min_ms;         /* the floor asked of the viewer now (playout-delay), 0 = none */
  int playout_on;                  /* the extension goes on every video packet (once asked) */
  uint16_t pd_loss_q8;             /* smoothed share of the source's packets that came as repairs */
  uint64_t pd_packets, pd_repairs; /* the source's counters at the last evaluation */
  char mid[32];
  /* layer selection (simulcast sources): the layer forwarded now and the one
   * the allocator wants (in[] indexes of the source; -1 = none / paused). A
   * switch happens on a keyframe of the wanted layer. */
  int cur_in, want_in;
  hd_alloc_track_t alloc; /* rooms set alloc.visible / alloc.priority (track_settings, speakers) */
  /* the subscriber's tile for this track in device pixels (track_settings), 0 = not given */
  int tile_w, tile_h;
  int lim_spatial, lim_tid; /* the subscriber's caps (track_settings max_*_layer) + 1; 0 = none */
  /* single-layer video under the allocator: paused when it does not fit (see
   * HD_SESSION_SINGLE_SETTLE); simulcast tracks always are */
  int gated;
  hd_vp8_rewriter_t vp8;
  /* VP8 temporal layers: the highest TID the allocator wants (HD_TL_ALL =
   * all), and the filter dropping the others (created when first needed) */
  int want_tid;
  hd_tl_filter_t *tl;
  hd_rewriter_t rw;
  hd_rtp_send_stats_t sstats;
  int nack, rtx_enabled;
  /* what went out on the media SSRC, byte for byte (sfu/resend_cache.h), for
   * tracks whose repairs go on it (nack without RTX: Opus, or video to a
   * viewer without RTX); created on the first packet, NULL otherwise. A
   * resend under the same SRTP index is this copy or nothing. */
  hd_resend_cache_t *sent;
  /* the newest first send on the media SSRC as a wrap-aware extended seq
   * (media_any once one left): on a FlexFEC track a seq past it still waits
   * in the pacer, and an RTX copy of it waits too (hd_session_send_probe) */
  int64_t media_last_ext;
  int media_any;
  /* the last packet sent on the media SSRC ended a frame (RTP marker): its seq
   * and when it left, 0 when something followed or transport-wide feedback
   * said it arrived (HD_SESSION_TAIL_PROBE); its transport-wide seq, when it
   * carried one (tail_tw_known) */
  uint16_t tail_seq, tail_tw;
  int tail_tw_known;
  hd_time_t tail_at;
  /* per-viewer resend limit: out seq -> when last retransmitted (slot seq & mask) */
  uint16_t rtx_hist_seq[HD_OUT_RTX_HIST];
  hd_time_t rtx_hist_at[HD_OUT_RTX_HIST];
  /* our last SRs (NTP middle 32 bits, local send time): RTT from the viewer's RR */
  uint32_t sr_mid32[HD_OUT_SR_HIST];
  hd_time_t sr_sent_at[HD_OUT_SR_HIST];
  uint8_t sr_next;
  uint64_t packets, bytes, retransmits, nacks_unanswered, nacks_deferred, repairs_forwarded;
  /* FlexFEC (RFC 8627) to this viewer (sfu/session_fec.h): negotiated pt
   * (0 = none) and our repair SSRC; the sender is allocated on first use */
  uint8_t fec_pt;
  uint32_t fec_ssrc;
  struct hd_flexfec_send *fec;
  uint64_t fec_sent;
} hd_out_track_t;

typedef struct hd_session hd_session_t;
struct hd_room;

struct hd_session {
  char id[HD_SESSION_ID_LEN + 1];
  int kind;
  struct hd_room *room;
  hd_peer_t peer;
  hd_sdp_negotiated_t neg;
  char local_ufrag[24], local_pwd[40];
  uint32_t rtcp_ssrc; /* sender SSRC of our RTCP to this peer */
  hd_time_t created, next_rtcp;
  hd_in_track_t in[HD_SESSION_MAX_TRACKS];
  int n_in;
  hd_out_track_t out[HD_SESSION_MAX_OUT];
  int n_out;
  uint32_t want_ssrc[HD_TRACK_KINDS], want_rtx_ssrc; /* play: SSRCs promised in the answer */
  uint8_t ext_twcc;   /* publisher: transport-wide seq extension id (bundle-wide) */
  uint8_t ext_mid_in; /* publisher: mid extension id, for demux of unknown SSRCs */
  uint8_t ext_audio_level_in;
  uint8_t ext_rid_in, ext_rrid_in; /* publisher: rid / repaired-rid extension ids (simulcast) */
  /* TWCC feedback state (publisher) */
  hd_twcc_recv_t twcc;
  hd_time_t next_twcc;
  int pli_requested_on_connect;
  /* publisher: bitrate cap sent as REMB (draft-alvestrand-rmcat-remb) every
   * HD_SESSION_REMB_INTERVAL while connected; 0 = no REMB */
  uint64_t remb_bps;
  hd_time_t next_remb;
  /* viewer: round trip to this peer from its RR (RFC 3550 §6.4.1 LSR/DLSR), 0 = unknown */
  hd_time_t rtt;
  uint64_t rtt_samples;
  unsigned loss_q8; /* viewer: loss its RRs report on our video, smoothed (x/256) */
  /* viewer: the transport-wide loss its FlexFEC is planned from
   * (sfu/session_fec.h): the estimator's acked/lost counts where the open
   * interval began, and the loss of the last closed interval (valid when
   * fec_tw_have) */
  uint64_t fec_tw_acked0, fec_tw_lost0;
  double fec_tw_loss;
  int fec_tw_have;
  /* viewer: downlink estimate (REMB from the viewer for now), 0 = none yet; the
   * allocator runs on each new estimate and every HD_SESSION_ALLOC_INTERVAL */
  uint64_t estimate_bps;
  hd_time_t estimate_at, next_alloc;
  hd_time_t estimate_first_at; /* when the first estimate came (0 = none yet) */
  hd_probe_t probe;            /* viewer: probing for headroom when the estimate holds layers back */
  unsigned probe_cursor;
  /* viewer with transport-wide CC: every packet we send it carries a
   * transport-wide seq, its feedback drives a send-side estimator (rtc/bwe.h,
   * allocated on the first such packet), whose probe clusters go out as RTX
   * copies / padding tagged with the cluster id */
  hd_bwe_t *bwe;
  uint16_t tw_seq;
  int cluster_id; /* cluster of the packets being sent now, 0 = none */
  struct {
    int id;
    uint64_t rate_bps;
    int64_t bytes_left;
    int pkts_left;
    hd_time_t next_tick;
    double credit;
  } cluster;
  /* viewer: what we send it is paced at a little above its estimate
   * (rtc/pacer.h; allocated on the first packet, NULL with pacing off) */
  hd_pacer_t *pacer;
  int closing;
  int room_publisher; /* the WHIP publisher of its room (what WHEP viewers follow) */
  void *owner;        /* room participant owning this session, or NULL (WHIP/WHEP) */
  hd_session_t *next_in_room;
};

/* Counters a session reports to the node's /metrics. */
typedef struct {
  uint64_t drop_unknown_pt, drop_malformed_rtp, drop_malformed_rtcp;
  uint64_t nack_received, nack_sent, retransmitted, pli_forwarded, twcc_sent, rr_sent, sr_sent, remb_sent;
  /* repair across two legs (issue 11 item 0): publisher repairs passed on to
   * viewers that had already seen the gap; viewer NACKs waiting for such a
   * repair; viewer NACKs for what the node no longer has or never will;
   * keyframe requests made because a loss could not be repaired in time */
  uint64_t repair_forwarded, nack_deferred, nack_unrepairable, pli_unrepairable, pli_retried;
  uint64_t repairs_doubled; /* repairs sent a second time to a lossy viewer leg */
  uint64_t tail_probes;     /* last packets of frames resent unasked (HD_SESSION_TAIL_PROBE) */
  /* tail-loss probes not sent: feedback had reported the packet received
   * before the probe was due; or it could not be resent (bytes gone, just
   * resent for a NACK); kept apart from the NACK counters above */
  uint64_t tail_probes_acked, tail_probes_failed;
  uint64_t red_rebuilt; /* audio packets our publisher leg lost, rebuilt from RED (sfu/red_repair.h) */
  uint64_t fec_received, fec_recovered; /* FlexFEC repair packets from publishers, media packets rebuilt */
  uint64_t fec_sent;                    /* FlexFEC repair packets the node sent viewers (sfu/session_fec.h) */
  uint64_t nacks_doubled;               /* NACK messages sent twice to a publisher whose leg loses >= 10% */
  /* layer selection: layer switches done, tracks paused for lack of bandwidth, estimates received */
  uint64_t layer_switches, layer_pauses, remb_received;
  uint64_t temporal_dropped; /* VP8 packets of temporal layers a viewer does not get (sfu/temporal.h) */
  uint64_t probes_started, probe_bytes; /* probing for headroom (sfu/probe.h, rtc/bwe.h clusters) */
  uint64_t twcc_received;               /* transport-wide feedback from subscribers */
  uint64_t publisher_layer_changes; /* publish_layers sent: simulcast layers paused/resumed at publishers */
  /* downlink estimates sampled once a second per subscriber, for the
   * hudong_downlink_estimate_bps histogram: count per bucket of
   * HD_ESTIMATE_BOUNDS (the last is +Inf), their number and sum */
  uint64_t estimate_bucket[9], estimate_count, estimate_sum;
  /* pacing (issue 11 item 5): packets that waited in a subscriber's pacer,
   * video dropped to its caps, probe padding dropped to them */
  uint64_t paced, pacer_dropped, pacer_padding_refused;
  /* repairs on the media SSRC sent as the first send's exact bytes, and
   * packets refused because their seq already went out with other bytes
   * (one SRTP index, two plaintexts: sfu/resend_cache.h) */
  uint64_t resent_exact, same_index_refused;
  /* RTX copies not sent on a FlexFEC track: the first send's bytes are gone
   * and a rebuilt copy could differ from what the repair packets covered */
  uint64_t fec_copy_refused;
} hd_session_counters_t;
#define HD_ESTIMATE_BOUNDS                                                                                   \
  { 100000, 250000, 500000, 1000000, 1500000, 2500000, 5000000, 10000000 }
/* Adds one estimate sample to c's histogram. */
void hd_session_count_estimate(hd_session_counters_t *c, uint64_t bps);

/* Sets up tracks from the negotiation result. */
int hd_session_setup_tracks(hd_session_t *s, hd_time_t now);
/* Adds a publisher track for negotiated media section `mi`; returns its index. */
int hd_session_add_in_track(hd_session_t *s, int mi);
/* The publisher's re-offer was answered and s->neg holds the new result (m=
 * lines keep their order, JSEP): a track whose section went inactive stops,
 * a kept track takes FlexFEC as this negotiation says (dropped, taken up, a
 * new repair SSRC from a=ssrc-group:FEC-FR; its receiver starts afresh when
 * that changes, sfu/fec_in.h), a new section gets a new track. Returns how
 * many kept tracks changed FlexFEC. */
int hd_session_publisher_renegotiated(hd_session_t *s);
/* Adds a track we send for negotiated media section `mi` with our SSRCs;
 * returns its index. */
int hd_session_add_out_track(hd_session_t *s, int mi, uint32_t ssrc, uint32_t rtx_ssrc);
/* The viewer answered a re-offer that kept out track idx (same mid, same
 * SSRCs) in negotiated media section `mi`: the track takes FlexFEC as that
 * answer says (dropped, taken up, another repair SSRC), its sender state
 * starting afresh when it changes (sfu/session_fec.h). Returns 1 if FlexFEC
 * changed, 0 if not, HD_EINVAL for a bad index. */
int hd_session_out_track_renegotiated(hd_session_t *s, int idx, int mi);
/* Index of the track (in or out, by session kind) carried in media section `mid`, or -1. */
int hd_session_track_by_mid(const hd_session_t *s, const char *mid);
/* Stops forwarding from `src` into any track of s (src is going away). */
void hd_session_unbind_source(hd_session_t *s, const hd_session_t *src);
/* Handles decrypted RTP from a publisher: returns the index (into s->in) of the track it belongs to
 * and parses the normalised original packet (RTX unwrapped) into *out (its payload
 * may point into `scratch`), or a negative error for a packet to drop. */
int hd_session_publisher_rtp(hd_session_t *s, uint8_t *buf, size_t len, hd_time_t now, uint8_t *scratch,
                             size_t scratch_cap, hd_rtp_hdr_t *out, hd_session_counters_t *c);
/* After hd_session_publisher_rtp: the next media packet rebuilt from the
 * publisher's FlexFEC (sfu/fec_in.h), copied into buf (HD_DATAGRAM_MAX) and
 * handled like a received repair (not counted as received in our reports,
 * no transport-wide feedback). Returns its track index with *out as
 * hd_session_publisher_rtp, or -1 when none is waiting. Call until -1. */
int hd_session_publisher_recovered(hd_session_t *s, uint8_t *buf, size_t cap, hd_time_t now, uint8_t *scratch,
                                   size_t scratch_cap, hd_rtp_hdr_t *out, hd_session_counters_t *c);
/* Sends a packet of publisher `pub`'s track `in_idx` to every track of viewer v
 * that follows it. */
void hd_session_forward(hd_session_t *v, const hd_session_t *pub, int in_idx, const hd_rtp_hdr_t *h,
                        hd_time_t now, hd_session_counters_t *c);
/* Process-wide switch (set once at start, before any session): 1 (default)
 * = viewers that negotiate transport-cc get the send-side estimator, 0 = they
 * are treated as REMB-only. */
void hd_session_set_twcc(int on);
/* 1 while transport-wide CC is on (rooms offer it to their subscribers then). */
int hd_session_twcc_enabled(void);
/* Process-wide pacing switch (set once at start): on (default) = every
 * subscriber's packets go through a pacer at factor_pct percent of its
 * estimate (rtc/pacer.h); off = sent as they are forwarded, as before issue 11
 * item 5. factor_pct 0 keeps the default (150). */
void hd_session_set_pacer(int on, unsigned factor_pct);
/* Process-wide switch for measurements side by side: 0 = the allocator ignores
 * estimates (every subscriber gets the top layers, as before issue 11). */
void hd_session_set_adapt(int on);
/* 0: never ask viewers for a playout delay (HUDONG_PLAYOUT_DELAY=0; see HD_SESSION_PLAYOUT_LOSSY_Q8). */
void hd_session_set_playout_delay(int on);
/* Runs the stream allocator for viewer v now (normally from the timer and on
 * each estimate); exposed for tests. */
void hd_session_allocate(hd_session_t *v, hd_session_t *room_pub, hd_time_t now, hd_session_counters_t *c);
/* pub's simulcast layers of the group headed by `head` (in[] indexes) in
 * ascending size into order[HD_SESSION_MAX_LAYERS]; returns their number (1
 * without simulcast: the head itself). */
int hd_session_layer_order(const hd_session_t *pub, int head, hd_time_t now, int *order);
/* Index of pub's first active track of `kind`, or -1. */
int hd_session_first_in(const hd_session_t *pub, int kind);
/* Handles decrypted RTCP from any session. For a viewer, `pub` is the room's
 * publisher (may be NULL): NACKs are answered from its cache, PLI/FIR forwarded. */
void hd_session_rtcp(hd_session_t *s, hd_session_t *pub, const uint8_t *buf, size_t len, hd_time_t now,
                     hd_session_counters_t *c);
/* Asks the publisher for a keyframe of every video track (rate-limited per track). */
void hd_session_request_keyframe(hd_session_t *pub, hd_time_t now, hd_session_counters_t *c);
/* Asks for a keyframe of one track. */
void hd_session_request_keyframe_track(hd_session_t *pub, int in_idx, hd_time_t now,
                                       hd_session_counters_t *c);
hd_time_t hd_session_next_timeout(const hd_session_t *s);
/* Periodic work: peer timers, RTCP reports, TWCC feedback. */
void hd_session_handle_timeout(hd_session_t *s, hd_session_t *pub, hd_time_t now, hd_time_t wall_offset,
                               hd_session_counters_t *c);
void hd_session_free_tracks(hd_session_t *s);

#endif
