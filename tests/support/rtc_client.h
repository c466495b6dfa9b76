/* Test support (not shipped): a minimal client-side WebRTC endpoint built from
 * our own protocol cores, to drive the node without a browser. It offers
 * Unified Plan SDP (Opus + VP8/RTX, BUNDLE, rtcp-mux; JSEP RFC 9429), runs ICE
 * as the controlling full agent against an ICE-lite server (RFC 8445 §7.2.4,
 * aggressive nomination with USE-CANDIDATE) with consent checks every 5 s
 * (RFC 7675), DTLS client + SRTP (RFC 5764), sends synthetic RTP and records
 * what it receives (seqs, RTX per RFC 4588, NACK/PLI per RFC 4585).
 *
 * Sans-IO like the rest of the tree: hd_rtc_client_feed() takes a datagram and
 * its source address, hd_rtc_client_poll() hands out datagrams to send with
 * their destination, time comes in as hd_time_t.
 *
 * Synthetic media: audio 50 packets/s (20 ms Opus frames, 960 ticks), video 30
 * frames/s of `video_pkts_per_frame` packets (keyframes bigger), timestamps
 * at 90 kHz. Video payloads start with two VP8 bytes (descriptor with S/PartID
 * and the payload header's P bit, RFC 7741) so keyframes look like a
 * browser's; then, as audio payloads do: byte 0 flags (bit 0 = keyframe,
 * bit 1 = last packet of the frame), bytes 1..4
 * frame counter (big endian), byte 5 packet index in frame, bytes 6..7 the
 * sender's original seq (to check RTX OSNs), byte 8 a tag, bytes 9..16 the
 * frame's send time in µs (big endian, when the payload is that long), then
 * filler. A player logs every video frame (sent, completed) so a test can
 * replay it through a decoder model and the W3C freeze rule. */
#ifndef HD_TEST_RTC_CLIENT_H
#define HD_TEST_RTC_CLIENT_H
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/time.h"
#include "proto/dtls.h"
#include "proto/sctp.h"

enum { HD_RTC_CLIENT_PUBLISH = 1, HD_RTC_CLIENT_PLAY = 2 };
enum { HD_RTC_AUDIO = 0, HD_RTC_VIDEO = 1 };

#define HD_RTC_CLIENT_SEQ_WINDOW 65536 /* extended seqs tracked per received stream */
#define HD_RTC_CLIENT_NACK_MAX 512     /* outstanding missing seqs tracked for NACK */
#define HD_RTC_CLIENT_FRAMES 16384     /* video frames logged by a player (~9 min at 30 fps) */

typedef struct {
  int kind;                           /* HD_RTC_CLIENT_PUBLISH or HD_RTC_CLIENT_PLAY */
  hd_dtls_cert_t *cert;               /* borrowed; NULL = generate (and own) one */
  uint8_t audio_pt, video_pt, rtx_pt; /* 0 = 111 / 96 / 97 */
  int no_audio, no_video, no_rtx;     /* leave sections / RTX out of the offer */
  int video_pkts_per_frame;           /* 0 = 3 (keyframes get twice as many) */
  int key_factor;                     /* keyframes get this many times the packets; 0 = 2 */
  size_t video_payload;               /* bytes per video packet, 0 = 800 */
  int auto_nack;                      /* play: NACK gaps in the video stream */
  hd_time_t nack_interval;            /* between NACKs of one seq; 0 = 50 ms */
  int nack_max_tries;                 /* 0 = 10 */
  hd_time_t consent_interval;         /* 0 = 5 s */
  const char *cname;                  /* NULL = "client" */
  uint8_t tag;                        /* publisher: written in payload byte 8 (receivers record it) */
  int datachannel;                    /* offer a data channel section (RFC 8841); SCTP once DTLS is up */
  int playout_ext;                    /* play: offer the playout-delay header extension, as Chrome does, and
                                         honour the floor it carries (hd_rtc_client_video_quality) */
  hd_time_t twcc_fb_interval;         /* play: send transport-wide feedback (rtc/twcc_recv.h) this often on
                                         what arrived; 0 = none */
} hd_rtc_client_config_t;

/* What a received stream (one payload type family) looked like. */
typedef struct {
  uint32_t ssrc;          /* current media SSRC */
  uint32_t rtx_ssrc;      /* SSRC of the last RTX packet */
  int ssrc_changes;       /* times the media SSRC changed */
  uint8_t pt;             /* last media payload type seen */
  uint64_t packets;       /* media packets (not RTX), duplicates included */
  uint64_t rtx_packets;   /* RTX packets received */
  uint64_t rtx_recovered; /* RTX packets that filled a hole */
  uint64_t duplicates;    /* seqs received twice (media or RTX) */
  uint64_t out_of_order;  /* media packets older than the highest seq seen */
  uint64_t max_jump;      /* largest forward step of the highest seq (1 = none) */
  uint64_t wrong_pt;      /* packets whose pt is neither media nor rtx pt */
  uint64_t rtx_bad;       /* RTX undecodable or whose OSN does not match its payload */
  uint32_t tags_seen;     /* bit t set when payload tag t (< 32) was received */
  int started;
  int64_t first_ext, max_ext; /* extended seqs */
  uint64_t unique;            /* distinct seqs received (media or RTX) */
  uint8_t *seen;              /* bitmap over [first_ext, first_ext + SEQ_WINDOW) */
  /* video only: frames */
  uint64_t keyframes; /* packets flagged keyframe (first of frame) */
  hd_time_t first_keyframe_at;
  uint32_t last_frame;
} hd_rtc_stream_stats_t;

typedef struct {
  uint64_t tx_packets, rx_packets;
  uint64_t stun_req_sent, stun_resp_ok;
  uint64_t rtp_sent[2], rtcp_sent;
  uint64_t rtcp_rx, sr_rx, rr_rx, twcc_rx, remb_rx;
  uint64_t remb_last_bps;      /* the last REMB: its bitrate ... */
  uint32_t remb_last_ssrcs[8]; /* ... and the SSRCs it names */
  int remb_last_n;
  uint64_t nack_rx, nack_seqs_rx; /* publisher: NACKs from the node */
  uint64_t pli_rx, fir_rx;        /* publisher: keyframe requests */
  hd_time_t first_pli_at, last_pli_at;
  uint64_t nack_sent, nack_seqs_sent, pli_sent;
  uint64_t rtx_sent; /* publisher: RTX answers to the node's NACKs */
  uint64_t nack_gave_up;
  uint64_t drop_srtp, drop_other;
  /* player: packets carrying the sender's transport-wide seq, and those whose
   * seq is not the previous one + 1 (on an in-order path: a sender that
   * stamped seqs out of send order) */
  uint64_t tw_rx, tw_not_next;
  uint16_t tw_last;
  hd_time_t playout_min_last,
      playout_min_max;         /* player: the playout-delay floor the node asks (last, highest) */
  hd_time_t last_consent_sent; /* time of the last ICE check we sent */
  hd_time_t connected_at;      /* DTLS+SRTP ready */
} hd_rtc_client_stats_t;

typedef struct hd_rtc_client hd_rtc_client_t;

/* Creates an endpoint. local address is only informational (we never bind). */
int hd_rtc_client_new(hd_rtc_client_t **out, const hd_rtc_client_config_t *cfg);
void hd_rtc_client_free(hd_rtc_client_t *c);

/* Writes the SDP offer (NUL-terminated). Returns its length or HD_ENOSPC. */
int hd_rtc_client_offer(hd_rtc_client_t *c, char *out, size_t cap);
/* Applies the answer: ICE credentials, fingerprint, setup, candidate, and for a
 * player the SSRCs and payload types the node will send. Starts ICE. Returns 0,
 * HD_EPROTO (unparsable), HD_EUNSUPPORTED (no candidate / credentials). */
int hd_rtc_client_apply_answer(hd_rtc_client_t *c, const char *sdp, size_t len, hd_time_t now);

/* Feeds one received datagram from `from`. Returns 0 or a negative error (dropped). */
int hd_rtc_client_feed(hd_rtc_client_t *c, const uint8_t *buf, size_t len, const struct sockaddr *from,
                       socklen_t fromlen, hd_time_t now);
/* Takes the next datagram to send: its length (0 when none) and destination. */
int hd_rtc_client_poll(hd_rtc_client_t *c, uint8_t *out, size_t cap, struct sockaddr_storage *to,
                       socklen_t *tolen);
hd_time_t hd_rtc_client_next_timeout(const hd_rtc_client_t *c);
void hd_rtc_client_handle_timeout(hd_rtc_client_t *c, hd_time_t now);

/* 1 once DTLS is done and SRTP keyed. */
int hd_rtc_client_connected(const hd_rtc_client_t *c);
/* 1 if DTLS failed or was closed by the node (close_notify). */
int hd_rtc_client_closed(const hd_rtc_client_t *c);
/* Publisher: start / stop sending synthetic media (on by default once connected). */
void hd_rtc_client_set_sending(hd_rtc_client_t *c, int on);
/* Stops (0) or resumes (1) the periodic ICE consent checks. */
void hd_rtc_client_set_consent(hd_rtc_client_t *c, int on);
/* Publisher: simulates an encoder restart: new SSRCs, random seq and timestamp
 * bases, next video frame is a keyframe. */
void hd_rtc_client_restart_source(hd_rtc_client_t *c);
/* Sends a generic NACK for `seqs` (ascending) of the received stream `kind`. */
int hd_rtc_client_send_nack(hd_rtc_client_t *c, int kind, const uint16_t *seqs, size_t n);
/* Sends a PLI for the received video stream. */
int hd_rtc_client_send_pli(hd_rtc_client_t *c);
/* Sends a REMB (draft-alvestrand-rmcat-remb) of bitrate_bps naming the received video stream. */
int hd_rtc_client_send_remb(hd_rtc_client_t *c, uint64_t bitrate_bps);

const hd_rtc_client_stats_t *hd_rtc_client_stats(const hd_rtc_client_t *c);

/* A player's view of its received video as a viewer would see it: frames are
 * decoded in order once complete (all packets, original or RTX), a frame after
 * an incomplete one only from the next keyframe on (VP8-style references);
 * each is rendered at max(complete, sent + playout_delay, previous render),
 * and the gaps between renders go through the W3C freeze rule (DESIGN §6).
 * With playout_ext, a frame that came with a playout-delay floor F from the
 * node is due no sooner than sent + the path's delay (the lowest complete -
 * sent of the run) + F, as a browser renders it. */
typedef struct {
  uint64_t frames;   /* frames seen (first to last frame number logged) */
  uint64_t complete; /* frames whose every packet arrived */
  uint64_t decoded;  /* frames rendered */
  uint64_t late;     /* complete after sent + playout_delay (rendered late) */
  hd_time_t delay_p50, delay_p95, delay_p99, delay_max; /* complete - sent, over complete frames */
  uint64_t freezes;
  double freeze_ms, watched_ms, stall_rate; /* stall_rate = freeze_ms / watched_ms */
} hd_rtc_video_quality_t;
int hd_rtc_client_video_quality(const hd_rtc_client_t *c, hd_time_t playout_delay, hd_rtc_video_quality_t *q);
/* Receive statistics of stream `kind` (HD_RTC_AUDIO / HD_RTC_VIDEO). */
const hd_rtc_stream_stats_t *hd_rtc_client_rx(const hd_rtc_client_t *c, int kind);
/* 1 if extended seq `ext` of stream `kind` was received. */
int hd_rtc_client_rx_has(const hd_rtc_client_t *c, int kind, int64_t ext);
/* What the answer said the node sends (player) / what we send (publisher). */
uint32_t hd_rtc_client_answer_ssrc(const hd_rtc_client_t *c, int kind);
uint32_t hd_rtc_client_answer_rtx_ssrc(const hd_rtc_client_t *c);
uint8_t hd_rtc_client_pt(const hd_rtc_client_t *c, int kind);
/* Publisher: our current media SSRC of `kind`, and packets sent. */
uint32_t hd_rtc_client_send_ssrc(const hd_rtc_client_t *c, int kind);
/* Data channels (cfg.datachannel): the SCTP association once DTLS is up (we
 * are the DTLS client: even stream ids), else NULL. Open channels, send and
 * drain its events directly; call hd_rtc_client_sctp_flush after sending. */
hd_sctp_t *hd_rtc_client_sctp(hd_rtc_client_t *c);
void hd_rtc_client_sctp_flush(hd_rtc_client_t *c);
/* The node's address from the answer's candidate. */
const struct sockaddr *hd_rtc_client_remote(const hd_rtc_client_t *c, socklen_t *len);

#endif
