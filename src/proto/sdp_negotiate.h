/* SDP offer/answer for the SFU side (RFC 3264, JSEP RFC 9429 §5.3) used by WHIP
 * (RFC 9725, ingest) and WHEP (playback). We are always the answerer, an ICE-lite
 * agent (RFC 8445 §2.5) with one host candidate, and by default the DTLS server
 * (RFC 5763 §5: answer a=setup:passive to actpass/active, active to passive).
 *
 * Policy: BUNDLE (RFC 9143), rtcp-mux, ICE credentials and a sha-256 fingerprint are
 * required. Audio is Opus 48000/2; video is VP8, else H.264 constrained baseline
 * packetization-mode=1 (RFC 6184 §8.1), each with its RTX (RFC 4588) when offered.
 * Sections we cannot serve (other codecs; data channels unless asked for) are rejected
 * with port 0. A data channel section (RFC 8841: "m=application <port>
 * UDP/DTLS/SCTP webrtc-datachannel", a=sctp-port, a=max-message-size) is accepted
 * when hd_sdp_answer_params_t.datachannel is set (room participants' publisher PCs).
 * Sans-IO: fills caller-owned structs only. */
#ifndef HD_PROTO_SDP_NEGOTIATE_H
#define HD_PROTO_SDP_NEGOTIATE_H

#include "proto/sdp.h"

/* Header extension URIs we negotiate (RFC 8285). */
#define HD_SDP_EXT_MID "urn:ietf:params:rtp-hdrext:sdes:mid"
#define HD_SDP_EXT_ABS_SEND_TIME "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
#define HD_SDP_EXT_TWCC "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
#define HD_SDP_EXT_AUDIO_LEVEL "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
#define HD_SDP_EXT_RID "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
#define HD_SDP_EXT_RRID "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
#define HD_SDP_EXT_PLAYOUT_DELAY "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"

/* What was agreed for one media section (same index as the offer's m= line). */
typedef struct {
  int kind; /* HD_SDP_AUDIO / HD_SDP_VIDEO / ... */
  char mid[HD_SDP_TOKEN_MAX];
  int active;     /* 0: rejected m-line (port 0); the rest is then unset */
  int direction;  /* our direction in the answer (HD_SDP_RECVONLY / SENDONLY) */
  uint8_t pt;     /* payload type (the remote's numbering) */
  char codec[16]; /* "opus", "VP8", "H264" as the offer spelled it */
  uint32_t clock;
  uint8_t channels;
  char fmtp[HD_SDP_FMTP_MAX];        /* fmtp we put in the answer */
  uint8_t rtx_pt;                    /* 0 if none */
  uint8_t red_pt;                    /* audio: RED (RFC 2198) over the Opus pt, 0 if not offered */
  uint8_t ulpfec_pt;                 /* always 0 for now: not negotiated */
  int nack, pli, fir, twcc_fb, remb; /* rtcp-fb negotiated for pt */
  uint8_t ext_mid, ext_abs_send_time, ext_twcc, ext_audio_level, ext_rid, ext_rrid; /* 0 = absent */
  uint8_t ext_playout_delay; /* video we send: bounds on the receiver's playout delay, 0 = absent */
  uint32_t remote_ssrc, remote_rtx_ssrc; /* from a=ssrc / FID group, 0 if absent */
  int n_rids;                            /* simulcast layers the remote sends (WHIP), in a=simulcast order */
  /* FlexFEC (RFC 8627, "flexfec/90000") on video a publisher sends us, 0 if
   * not offered (or simulcast, WHEP); its repair SSRC from a=ssrc-group:FEC-FR.
   * In a subscriber answer (proto/sdp_offer.h): the FlexFEC the viewer takes
   * from us, and OUR repair SSRC (the offer's FEC-FR group) */
  uint8_t fec_pt;
  uint32_t remote_fec_ssrc;
  char rids[HD_SDP_MAX_RIDS][HD_SDP_TOKEN_MAX];
} hd_sdp_media_negotiated_t;

/* The whole agreement: per-section results plus the remote transport parameters
 * (taken from the BUNDLE-tag section, i.e. the first mid of the offer's group). */
typedef struct {
  hd_sdp_media_negotiated_t media[HD_SDP_MAX_MEDIA];
  int n_media;
  char remote_ufrag[HD_SDP_ICE_MAX];
  char remote_pwd[HD_SDP_ICE_MAX];
  char remote_fingerprint[HD_SDP_FP_MAX]; /* sha-256, "AB:CD:..." as the offer wrote it */
  int remote_setup;                       /* HD_SDP_SETUP_* of the offer */
  int dtls_server;                        /* 1: we answered passive (remote is the DTLS client) */
  /* Data channels (RFC 8841), when a section was accepted (params.datachannel): */
  int sctp;                    /* 1: an SCTP association is expected over the DTLS transport */
  uint16_t remote_sctp_port;   /* the offer's a=sctp-port (5000 when absent) */
  uint64_t remote_max_message; /* the offer's a=max-message-size (65536 when absent, RFC 8841 §6.1) */
} hd_sdp_negotiated_t;

typedef struct {
  const char *ice_ufrag, *ice_pwd; /* ours */
  const char *fingerprint_sha256;  /* ours, "AB:CD:..." */
  const char *cand_ip;             /* our single UDP host candidate */
  uint16_t cand_port;
  uint16_t cand_tcp_port; /* our ICE-TCP passive candidate (RFC 6544) on cand_ip; 0 = none */
  int direction;          /* HD_SDP_RECVONLY (WHIP) or HD_SDP_SENDONLY (WHEP) */
  /* WHEP: what the publisher sends, so the viewer gets the same codec. NULL for WHIP;
   * if NULL with SENDONLY, the normal codec preference applies. */
  const hd_sdp_negotiated_t *source;
  uint32_t send_ssrc_audio, send_ssrc_video, send_ssrc_video_rtx; /* WHEP: our SSRCs */
  const char *cname, *stream_id; /* WHEP: a=ssrc cname / msid; NULL = "hudong" */
  /* 1: accept one data channel section (answered with our a=sctp-port 5000 and
   * a=max-message-size HD_SDP_MAX_MESSAGE_SIZE); 0: reject it like any other
   * section we do not serve (WHIP/WHEP). */
  int datachannel;
} hd_sdp_answer_params_t;

/* a=max-message-size we answer for data channels (= HD_SCTP_MAX_MESSAGE). */
#define HD_SDP_MAX_MESSAGE_SIZE (256 * 1024)

/* Builds our answer to `offer` into *answer (overwritten; write it with hd_sdp_write)
 * and what was agreed into *out. Every offered section appears in the answer, in
 * order, with its mid; the ones we cannot serve get port 0. Returns 0 on success;
 * HD_EUNSUPPORTED when the offer is valid but unusable (no BUNDLE, no rtcp-mux, no
 * ICE credentials, no sha-256 fingerprint, no section we can serve), HD_EPROTO for a
 * malformed offer, HD_EINVAL for bad params; err then holds a reason suitable for an
 * HTTP 400 body. */
int hd_sdp_negotiate(const hd_sdp_t *offer, const hd_sdp_answer_params_t *p, hd_sdp_t *answer,
                     hd_sdp_negotiated_t *out, char *err, size_t errcap);

/* H.264 profile-level-id compatibility for payload matching (RFC 6184 §8.1): 1 if two
 * fmtp strings describe the same profile (constrained baseline variants are equal;
 * level is ignored) and the same packetization-mode. */
int hd_sdp_h264_same_profile(const char *fmtp_a, const char *fmtp_b);

#endif
