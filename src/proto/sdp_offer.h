/* SDP offerer for the node's subscriber PeerConnection (rooms): the node OFFERS the
 * tracks a participant subscribes to and the client (Chromium, GStreamer webrtcbin,
 * our SDK) answers; the node re-offers whenever subscriptions change. RFC 3264 §5/§8
 * (offers, modifying the session), JSEP RFC 9429 §5.2.1/§5.2.2 (initial and
 * subsequent offers, m= section recycling) and §5.10 (applying an answer), BUNDLE
 * RFC 9143, DTLS roles RFC 8842 §5, RTX RFC 4588, msid RFC 8830, ssrc RFC 5576.
 *
 * State: hd_sdp_offerer_t remembers the m= sections ("slots") across renegotiations.
 * Tracks are added/removed at any time (staged); hd_sdp_offerer_create_offer turns
 * the current slots into an offer; hd_sdp_offerer_apply_answer checks the answer
 * against that offer and reports what was agreed as an hd_sdp_negotiated_t (same
 * layout the WHIP/WHEP path produces, so src/sfu/session.c reads it the same way).
 *
 * Decisions (and why):
 * - No offer until the first track: a description with no m= section cannot carry
 *   ICE/DTLS, so create_offer returns HD_EAGAIN while there is no slot at all.
 * - Mids are "0", "1", "2"... assigned by us, never changed for a live m= section.
 * - Before the first offer, an audio track's section goes before the video ones, so
 *   m-line 0 (the BUNDLE tag) is one every client accepts: a client may refuse a
 *   video section it cannot decode (Debian's Chromium has no H.264 High), and
 *   Chromium fails the whole answer when the tag section is refused.
 * - Removing a track: the offerer-tagged BUNDLE section (RFC 9143 §7.2: the first m=
 *   section not rejected, normally m-line 0) is never rejected by us — it becomes
 *   a=inactive with its port and stays in BUNDLE, so the tag never moves and the
 *   transport never goes away even with zero subscriptions (mediasoup does the same).
 *   Any other m= section is rejected: port 0, a=inactive, out of the BUNDLE group (the
 *   client stops its transceiver). A section the client's answer rejects (port 0)
 *   becomes rejected too; the caller sees active = 0 for it.
 * - Adding a track reuses, in this order: an inactive (non-rejected) slot of the same
 *   kind, keeping its mid (just a direction change); a slot of the same kind whose
 *   port-0 rejection has completed an offer/answer, with a NEW mid (JSEP §5.2.2:
 *   a recycled m= section gets a new mid; the client still has a stopped
 *   transceiver under the old one); else a new m= section at the end. Recycling is
 *   limited to the same kind because not every client handles a kind change.
 * - Payload types are ours and stable for the offerer's life: opus 111, VP8 96 + rtx
 *   97, H264 102 + rtx 103. A second, different configuration of the same codec (e.g.
 *   another H.264 profile) gets other PTs, because bundled m= sections must not give
 *   one PT two meanings (RFC 9143 §7.5.1; Chrome rejects such "codec collisions").
 * - Header extension ids are ours and the same in every m= section (BUNDLE needs
 *   that): 1 ssrc-audio-level (audio), 2 abs-send-time, 3 transport-wide-cc (if
 *   enabled), 4 mid, 5 playout-delay (video).
 * - DTLS: the first offer says a=setup:actpass; once an answer fixed the roles,
 *   later offers state our role (RFC 8842 §5.5: passive if we are the DTLS server,
 *   active if client), and an answer that would swap roles is refused.
 * Sans-IO; the offerer is a plain caller-owned struct (~25 KB, no allocation). */
#ifndef HD_PROTO_SDP_OFFER_H
#define HD_PROTO_SDP_OFFER_H

#include "proto/sdp.h"
#include "proto/sdp_negotiate.h"

/* Our fixed payload types (first choice for each codec). */
#define HD_SDP_OFFER_PT_OPUS 111
#define HD_SDP_OFFER_PT_VP8 96
#define HD_SDP_OFFER_PT_VP8_RTX 97
#define HD_SDP_OFFER_PT_H264 102
#define HD_SDP_OFFER_PT_H264_RTX 103
/* RED over Opus (RFC 2198), offered with an audio track whose publisher sends
 * RED, so that a viewer that takes it gets the redundancy passed on (kept out
 * of the free-PT pool). */
#define HD_SDP_OFFER_PT_RED 63
/* FlexFEC (RFC 8627 §5.1.1 "flexfec/90000"), offered with a video track when
 * the subscriber asked for it (its join's "flexfec"): the node then protects
 * what it sends that viewer (sfu/session_fec.h). Kept out of the free-PT pool. */
#define HD_SDP_OFFER_PT_FLEXFEC 62
#define HD_SDP_OFFER_FEC_REPAIR_WINDOW_US 200000 /* a=fmtp repair-window (RFC 8627 §5.1.1) */

/* Our header extension ids (one-byte form, RFC 8285 §4.2). */
#define HD_SDP_OFFER_EXTID_AUDIO_LEVEL 1
#define HD_SDP_OFFER_EXTID_ABS_SEND_TIME 2
#define HD_SDP_OFFER_EXTID_TWCC 3
#define HD_SDP_OFFER_EXTID_MID 4
#define HD_SDP_OFFER_EXTID_PLAYOUT_DELAY 5

#define HD_SDP_OFFER_ID_MAX 64    /* msid stream/track id, cname (bytes incl. NUL) */
#define HD_SDP_OFFER_MAX_PTMAP 24 /* distinct codec configurations over the offerer's life */

/* One outgoing track (what the node sends on the subscriber PC). */
typedef struct {
  int kind;                            /* HD_SDP_AUDIO / HD_SDP_VIDEO */
  char codec[16];                      /* "opus", "VP8", "H264" (case-insensitive on input) */
  uint32_t clock;                      /* 48000 / 90000 */
  uint8_t channels;                    /* opus: 2; 0 = not given */
  char fmtp[HD_SDP_FMTP_MAX];          /* carried as is, e.g. the publisher's H.264 profile */
  uint32_t ssrc;                       /* our media SSRC (non-zero) */
  uint32_t rtx_ssrc;                   /* our RTX SSRC, 0 = no RTX (always 0 for audio) */
  char stream_id[HD_SDP_OFFER_ID_MAX]; /* msid stream id = publisher participant id */
  char track_id[HD_SDP_OFFER_ID_MAX];  /* msid track id */
  int red;                             /* audio: offer RED too (the source sends it) */
  uint32_t fec_ssrc;                   /* video: our FlexFEC SSRC (offer flexfec, FEC-FR), 0 = none */
} hd_sdp_out_track_t;

/* Fills *t from the publisher's negotiated section (codec, clock, channels, fmtp;
 * RTX only for video and only when rtx_ssrc != 0; RED for audio when the
 * publisher negotiated it). Returns 0, HD_EINVAL for bad
 * arguments (NULL, ssrc 0, ids too long or containing spaces), HD_EUNSUPPORTED for a
 * codec we cannot offer (only opus/48000, VP8/90000, H264/90000). */
int hd_sdp_out_track_from_negotiated(hd_sdp_out_track_t *t, const hd_sdp_media_negotiated_t *src,
                                     uint32_t ssrc, uint32_t rtx_ssrc, const char *stream_id,
                                     const char *track_id);

typedef struct {
  const char *ice_ufrag, *ice_pwd; /* ours (ICE-lite), copied */
  const char *fingerprint_sha256;  /* ours, "AB:CD:..." (95 chars) */
  const char *cand_ip;             /* our single UDP host candidate */
  uint16_t cand_port;
  uint16_t cand_tcp_port; /* our ICE-TCP passive candidate (RFC 6544) on cand_ip; 0 = none */
  const char *cname;      /* a=ssrc cname; NULL = "hudong" */
  int twcc;               /* 1: offer transport-wide-cc (rtcp-fb transport-cc + extension) */
} hd_sdp_offerer_params_t;

enum {                           /* hd_sdp_offer_slot_t.state */
       HD_SDP_SLOT_ACTIVE = 1,   /* carries a track, sendonly */
       HD_SDP_SLOT_INACTIVE = 2, /* no track, a=inactive, port kept, in BUNDLE */
       HD_SDP_SLOT_REJECTED = 3  /* no track, port 0 (removed, or refused by the answer) */
};

/* One m= section of the subscriber PC. */
typedef struct {
  int state; /* HD_SDP_SLOT_* */
  int kind;  /* HD_SDP_AUDIO / HD_SDP_VIDEO */
  char mid[HD_SDP_TOKEN_MAX];
  hd_sdp_out_track_t track;       /* valid when ACTIVE; the last track otherwise (for its codec) */
  uint8_t pt, rtx_pt;             /* our PTs for track's codec (rtx_pt 0 = none) */
  int offered;                    /* has appeared in an offer with this mid */
  int settled_rejected;           /* REJECTED and that was completed by an answer: recyclable */
  int accepted;                   /* the last applied answer accepted it (port != 0, recvonly) */
  char old_mid[HD_SDP_TOKEN_MAX]; /* recycled but not yet offered: the mid to restore */
  int old_state;
} hd_sdp_offer_slot_t;

typedef struct {
  char name[16];
  uint32_t clock;
  uint8_t channels;
  char fmtp[HD_SDP_FMTP_MAX];
  uint8_t pt, rtx_pt;
} hd_sdp_offer_ptmap_t;

typedef struct {
  /* params (copied) */
  char ice_ufrag[HD_SDP_ICE_MAX], ice_pwd[HD_SDP_ICE_MAX];
  char fingerprint[HD_SDP_FP_MAX];
  char cand_ip[HD_SDP_ADDR_MAX];
  uint16_t cand_port;
  uint16_t cand_tcp_port;
  char cname[HD_SDP_OFFER_ID_MAX];
  int twcc;

  char sess_id[24];
  uint64_t version; /* o= version of the last offer created (0 = none yet) */
  unsigned next_mid;
  int n_slots;
  hd_sdp_offer_slot_t slots[HD_SDP_MAX_MEDIA];
  int n_ptmap;
  hd_sdp_offer_ptmap_t ptmap[HD_SDP_OFFER_MAX_PTMAP];
  int dirty; /* changes since the last offer */

  /* the outstanding offer (have-local-offer), checked by apply_answer */
  int pending;
  int n_pending;
  hd_sdp_offer_slot_t pending_slots[HD_SDP_MAX_MEDIA];

  /* established by the first applied answer */
  int established;
  int dtls_server; /* 1: we are the DTLS server (client answered setup:active) */
  char remote_fingerprint[HD_SDP_FP_MAX];
  char remote_ufrag[HD_SDP_ICE_MAX];
} hd_sdp_offerer_t;

/* Initializes an offerer with our transport parameters and a random o= session id.
 * Returns 0 or HD_EINVAL (missing/over-long credentials, fingerprint not 95 chars,
 * bad candidate address). */
int hd_sdp_offerer_init(hd_sdp_offerer_t *o, const hd_sdp_offerer_params_t *p);

/* Adds a track; it goes into the next offer. Picks the slot by the rules in the file
 * comment and writes the track's mid into mid_out (cap >= HD_SDP_TOKEN_MAX is
 * enough). Returns the m-line index (>= 0), HD_EINVAL for a bad track (kind, ssrc 0,
 * ids with spaces, audio with RTX), HD_EUNSUPPORTED for a codec we cannot offer,
 * HD_ENOSPC when all HD_SDP_MAX_MEDIA slots are live or no payload type is left. */
int hd_sdp_offerer_add_track(hd_sdp_offerer_t *o, const hd_sdp_out_track_t *t, char *mid_out, size_t cap);

/* Removes the track with this mid (it goes into the next offer as inactive or port 0).
 * Returns 0, HD_ENOTFOUND if no active track has this mid. */
int hd_sdp_offerer_remove_track(hd_sdp_offerer_t *o, const char *mid);

/* New ICE credentials for the next offer (ICE restart, RFC 8445 §9). 0 or HD_EINVAL. */
int hd_sdp_offerer_restart_ice(hd_sdp_offerer_t *o, const char *ufrag, const char *pwd);

/* 1 if slots changed since the last offer (a renegotiation is due), else 0. */
int hd_sdp_offerer_needs_offer(const hd_sdp_offerer_t *o);

/* Builds the next offer into *offer (overwritten; serialize with hd_sdp_write) and
 * increments the o= session version. The offer becomes pending until an answer is
 * applied or hd_sdp_offerer_rollback is called. Returns 0; HD_EAGAIN when there is
 * no m= section yet (no track ever added); HD_ESTATE while another offer is pending. */
int hd_sdp_offerer_create_offer(hd_sdp_offerer_t *o, hd_sdp_t *offer);

/* Forgets the pending offer (the client refused it); staged changes stay, so the
 * next create_offer offers them again. 0, or HD_ESTATE if nothing is pending. */
int hd_sdp_offerer_rollback(hd_sdp_offerer_t *o);

/* Applies the client's answer to the pending offer. Checks that it answers every m=
 * section in order with the same mids, has ICE ufrag/pwd, a sha-256 fingerprint,
 * a=setup active or passive (absent = active, RFC 4145 §4), BUNDLE and rtcp-mux on the
 * accepted sections, accepted sections recvonly (inactive = not accepted), and keeps
 * only payload types we offered. Fills *out like hd_sdp_negotiate does, one entry per
 * m-line: active = the client will receive it; direction = HD_SDP_SENDONLY (ours);
 * pt/codec/clock/channels/fmtp = what we send; rtx_pt if the answer kept RTX;
 * nack/pli/fir/twcc_fb = rtcp-fb kept by the answer; ext_* = extension ids kept (only
 * ids 1..14); remote_ssrc = the answer's a=ssrc if any. out->remote_* / dtls_server
 * describe the client's transport. Slots the answer rejected become REJECTED.
 * Returns 0; HD_ESTATE if no offer is pending; HD_EPROTO for an answer that does not
 * match the offer; HD_EUNSUPPORTED for a valid but unusable one (no fingerprint,
 * no rtcp-mux, DTLS role or fingerprint change). On failure err holds a reason for a
 * signaling error message and the offer stays pending. */
int hd_sdp_offerer_apply_answer(hd_sdp_offerer_t *o, const hd_sdp_t *answer, hd_sdp_negotiated_t *out,
                                char *err, size_t errcap);

/* Slot access: the slot at m-line index i (NULL if out of range), the index of a mid
 * (HD_ENOTFOUND), the active track with this mid (NULL if none). */
const hd_sdp_offer_slot_t *hd_sdp_offerer_slot(const hd_sdp_offerer_t *o, int i);
int hd_sdp_offerer_find_mid(const hd_sdp_offerer_t *o, const char *mid);
const hd_sdp_out_track_t *hd_sdp_offerer_track(const hd_sdp_offerer_t *o, const char *mid);

#endif
