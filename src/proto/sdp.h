/* SDP: the Session Description Protocol (RFC 8866) as WebRTC uses it — Unified Plan
 * offers/answers with the attributes of JSEP (RFC 9429): ICE (RFC 8839), DTLS
 * fingerprint/setup (RFC 8122, RFC 5763), BUNDLE (RFC 9143), rtcp-mux (RFC 5761),
 * rtcp-rsize (RFC 5506), msid (RFC 8830), extmap (RFC 8285), ssrc / ssrc-group
 * (RFC 5576), rid (RFC 8851), simulcast (RFC 8853), SCTP (RFC 8841).
 *
 * Sans-IO and allocation-free: hd_sdp_t is a caller-owned, fixed-size struct. Every
 * string and list has a hard cap; input that does not fit is an error with a
 * readable reason, never a truncation or an overflow. hd_sdp_t is large (~0.5 MB:
 * 16 media sections x 32 codecs with fmtp strings), so allocate it on the heap or
 * statically, not on a worker thread's stack. */
#ifndef HD_PROTO_SDP_H
#define HD_PROTO_SDP_H

#include <stddef.h>
#include <stdint.h>

/* ---- caps ---- */
#define HD_SDP_MAX_MEDIA 16  /* m= sections */
#define HD_SDP_MAX_FMT 64    /* formats on one m= line */
#define HD_SDP_MAX_CODECS 64 /* rtpmap/fmtp/rtcp-fb entries per section */
#define HD_SDP_MAX_FB 8      /* rtcp-fb lines per codec (and for "*") */
#define HD_SDP_MAX_EXTMAPS 16
#define HD_SDP_MAX_SSRCS 16
#define HD_SDP_MAX_SSRC_GROUPS 8
#define HD_SDP_MAX_GROUP_SSRCS 8
#define HD_SDP_MAX_RIDS 8
#define HD_SDP_MAX_CANDIDATES 32

/* ---- string caps (bytes including the NUL) ---- */
#define HD_SDP_TOKEN_MAX 32 /* mid, codec name, fmt, rtcp-fb, rid id, semantics */
#define HD_SDP_ADDR_MAX 64  /* IPv4/IPv6 address or FQDN */
#define HD_SDP_ICE_MAX 128  /* ice-ufrag, ice-pwd */
#define HD_SDP_FP_MAX 192   /* fingerprint value; sha-512 needs 191 */
#define HD_SDP_FMTP_MAX 256
#define HD_SDP_URI_MAX 128
#define HD_SDP_TEXT_MAX 128 /* msid ids, msid-semantic, simulcast, rid params, ... */

enum { /* hd_sdp_media_t.kind */
       HD_SDP_KIND_OTHER = 0,
       HD_SDP_AUDIO = 1,
       HD_SDP_VIDEO = 2,
       HD_SDP_APPLICATION = 3
};

enum { /* direction attributes; UNSET = no attribute (effective default sendrecv) */
       HD_SDP_DIR_UNSET = 0,
       HD_SDP_SENDRECV = 1,
       HD_SDP_SENDONLY = 2,
       HD_SDP_RECVONLY = 3,
       HD_SDP_INACTIVE = 4
};

enum { /* a=setup (RFC 4145 §4) */
       HD_SDP_SETUP_NONE = 0,
       HD_SDP_SETUP_ACTPASS = 1,
       HD_SDP_SETUP_ACTIVE = 2,
       HD_SDP_SETUP_PASSIVE = 3,
       HD_SDP_SETUP_HOLDCONN = 4
};

enum { /* a=rid direction (RFC 8851) */
       HD_SDP_RID_SEND = 1,
       HD_SDP_RID_RECV = 2
};

/* a=fingerprint:<hash> <value>; hash is lower-cased ("sha-256"), value kept as given. */
typedef struct {
  char hash[16];
  char value[HD_SDP_FP_MAX];
} hd_sdp_fingerprint_t;

/* One payload type: a=rtpmap + a=fmtp + a=rtcp-fb:<pt>. A static PT without rtpmap
 * has name "" and clock 0. */
typedef struct {
  uint8_t pt;
  char name[HD_SDP_TOKEN_MAX]; /* as written, e.g. "opus", "VP8", "H264", "rtx" */
  uint32_t clock;
  uint8_t channels;           /* 0 = not given (means 1) */
  char fmtp[HD_SDP_FMTP_MAX]; /* parameters after "a=fmtp:<pt> ", "" if none */
  int n_fb;
  char fb[HD_SDP_MAX_FB][HD_SDP_TOKEN_MAX]; /* "nack", "nack pli", "ccm fir", "transport-cc" */
} hd_sdp_codec_t;

/* a=extmap:<id>[/<direction>] <uri> [<attributes>] (RFC 8285 §8). */
typedef struct {
  uint16_t id;   /* 1..14 one-byte, up to 255 two-byte */
  int direction; /* HD_SDP_DIR_UNSET if not given */
  char uri[HD_SDP_URI_MAX];
  char attrs[64];
} hd_sdp_extmap_t;

/* a=ssrc:<ssrc> cname:... / msid:... (RFC 5576). Other attributes are ignored. */
typedef struct {
  uint32_t ssrc;
  char cname[64];
  char msid[HD_SDP_TEXT_MAX]; /* "<stream id> <track id>" as given */
} hd_sdp_ssrc_t;

/* a=ssrc-group:<semantics> <ssrc>... (FID for RTX, SIM, FEC-FR). */
typedef struct {
  char semantics[16];
  int n_ssrcs;
  uint32_t ssrcs[HD_SDP_MAX_GROUP_SSRCS];
} hd_sdp_ssrc_group_t;

/* a=rid:<id> <send|recv> [<params>] (RFC 8851). */
typedef struct {
  char id[HD_SDP_TOKEN_MAX];
  int direction;                /* HD_SDP_RID_SEND / HD_SDP_RID_RECV */
  char params[HD_SDP_TEXT_MAX]; /* e.g. "pt=96;max-width=1280", "" if none */
} hd_sdp_rid_t;

/* a=candidate (RFC 8839 §5.1). Extension attributes (generation, network-id...) are
 * not kept. */
typedef struct {
  char foundation[33];
  uint16_t component;
  char transport[8]; /* "udp" / "tcp" (lower-cased) */
  uint32_t priority;
  char addr[HD_SDP_ADDR_MAX];
  uint16_t port;
  char type[8];                /* "host", "srflx", "prflx", "relay" */
  char raddr[HD_SDP_ADDR_MAX]; /* "" if absent */
  uint16_t rport;
  char tcptype[8]; /* "active"/"passive"/"so" or "" */
} hd_sdp_candidate_t;

/* One m= section. Attributes that may also appear at session level (ICE, DTLS,
 * direction) are stored as written here; use the hd_sdp_eff_* accessors for the
 * effective value. */
typedef struct {
  int kind;       /* HD_SDP_AUDIO ... (from media[]) */
  char media[16]; /* "audio", "video", "application", or other as written */
  uint16_t port;  /* 0 = rejected / bundle-only */
  char proto[32]; /* "UDP/TLS/RTP/SAVPF", "UDP/DTLS/SCTP", ... */
  int n_fmt;
  char fmt[HD_SDP_MAX_FMT][HD_SDP_TOKEN_MAX]; /* RTP: payload types 0..127 as text */

  int has_conn;          /* c=IN <addrtype> <addr> */
  char conn_addrtype[8]; /* "IP4" / "IP6" */
  char conn_addr[HD_SDP_ADDR_MAX];

  char mid[HD_SDP_TOKEN_MAX]; /* "" if absent */
  int direction;              /* HD_SDP_DIR_UNSET if absent */
  int rtcp_mux, rtcp_rsize, bundle_only, extmap_allow_mixed;

  char ice_ufrag[HD_SDP_ICE_MAX];
  char ice_pwd[HD_SDP_ICE_MAX];
  char ice_options[64];
  hd_sdp_fingerprint_t fingerprint; /* hash "" if absent */
  int setup;                        /* HD_SDP_SETUP_NONE if absent */

  int n_codecs;
  hd_sdp_codec_t codecs[HD_SDP_MAX_CODECS];
  int n_fb_any; /* a=rtcp-fb:* ... (applies to every codec) */
  char fb_any[HD_SDP_MAX_FB][HD_SDP_TOKEN_MAX];

  int n_extmaps;
  hd_sdp_extmap_t extmaps[HD_SDP_MAX_EXTMAPS];

  int n_ssrcs;
  hd_sdp_ssrc_t ssrcs[HD_SDP_MAX_SSRCS];
  int n_ssrc_groups;
  hd_sdp_ssrc_group_t ssrc_groups[HD_SDP_MAX_SSRC_GROUPS];

  int has_msid; /* a=msid:<stream id> [<track id>] (first one kept) */
  char msid_stream[64];
  char msid_track[64];

  int n_rids;
  hd_sdp_rid_t rids[HD_SDP_MAX_RIDS];
  char simulcast[HD_SDP_TEXT_MAX]; /* value of a=simulcast, "" if absent */

  int n_candidates;
  hd_sdp_candidate_t candidates[HD_SDP_MAX_CANDIDATES];
  int end_of_candidates;

  uint16_t sctp_port;        /* a=sctp-port, 0 if absent */
  uint64_t max_message_size; /* a=max-message-size, 0 if absent */
} hd_sdp_media_t;

/* A whole session description. */
typedef struct {
  int version;          /* v= (always 0) */
  char origin_user[64]; /* o=<username> <sess-id> <sess-version> IN <addrtype> <addr> */
  char origin_sess_id[32];
  uint64_t origin_sess_version;
  char origin_addrtype[8];
  char origin_addr[HD_SDP_ADDR_MAX];
  char session_name[64];          /* s= */
  uint64_t time_start, time_stop; /* t= */

  int has_conn; /* session-level c= */
  char conn_addrtype[8];
  char conn_addr[HD_SDP_ADDR_MAX];

  char ice_ufrag[HD_SDP_ICE_MAX];
  char ice_pwd[HD_SDP_ICE_MAX];
  int ice_lite;
  char ice_options[64]; /* e.g. "trickle" */
  hd_sdp_fingerprint_t fingerprint;
  int setup;
  int direction; /* session-level direction attribute, rarely used */

  int has_bundle; /* a=group:BUNDLE ... (other group semantics ignored) */
  int n_bundle;
  char bundle[HD_SDP_MAX_MEDIA][HD_SDP_TOKEN_MAX];

  char msid_semantic[HD_SDP_TEXT_MAX]; /* value after "a=msid-semantic:", trimmed, "" if absent */
  int extmap_allow_mixed;

  int n_media;
  hd_sdp_media_t media[HD_SDP_MAX_MEDIA];
} hd_sdp_t;

/* Zeroes an SDP and sets v=0, t=0 0, s=- so a builder can fill in the rest. */
void hd_sdp_init(hd_sdp_t *sdp);

/* Parses SDP text (lines ended by \r\n or \n; a missing final newline is fine).
 * Unknown line types and attributes are ignored. On failure returns HD_EPROTO and, if
 * err/errcap are given, writes a NUL-terminated reason such as "line 7: bad m= line"
 * or "line 30: too many codecs in m= section (max 32)". *sdp is valid only on success.
 * Safe on any input bytes. */
int hd_sdp_parse(hd_sdp_t *sdp, const char *text, size_t len, char *err, size_t errcap);

/* Serializes with \r\n line ends and NUL-terminates. Returns the length (without the
 * NUL), HD_ENOSPC if cap is too small, HD_EINVAL on NULL arguments.
 * hd_sdp_parse(hd_sdp_write(x)) reproduces x for any x produced by hd_sdp_parse. */
int hd_sdp_write(const hd_sdp_t *sdp, char *out, size_t cap);

/* Our host candidates in section m (RFC 8839 §5.1): UDP at ip:udp_port and,
 * when tcp_port is non-zero, an ICE-TCP passive one at ip:tcp_port (RFC 6544
 * §4.5 "tcptype passive": we accept, never connect). Priorities per RFC 8445
 * §5.1.2.1 and RFC 6544 §4.2: the same host type preference, the TCP one with
 * the lower local preference of a passive host candidate, so an agent that
 * can reach both nominates UDP. HD_ENOSPC if m has no room for them. */
#define HD_SDP_PRIO_HOST_UDP 2130706431u /* type pref 126, local pref 65535, component 1 */
#define HD_SDP_PRIO_HOST_TCP                                                                                 \
  2113942527u /* type pref 126, local pref 2^13*4 + 8191 (passive), component 1                              \
               */
int hd_sdp_add_host_candidates(hd_sdp_media_t *m, const char *ip, uint16_t udp_port, uint16_t tcp_port);

/* ---- effective values: media-level attribute if present, else session-level ---- */

/* Effective a=ice-ufrag / a=ice-pwd of media section `mi`; "" if neither level has one. */
const char *hd_sdp_eff_ice_ufrag(const hd_sdp_t *sdp, int mi);
const char *hd_sdp_eff_ice_pwd(const hd_sdp_t *sdp, int mi);
/* Effective fingerprint of section `mi`, NULL if none at either level. */
const hd_sdp_fingerprint_t *hd_sdp_eff_fingerprint(const hd_sdp_t *sdp, int mi);
/* Effective a=setup of section `mi` (HD_SDP_SETUP_NONE if absent at both levels). */
int hd_sdp_eff_setup(const hd_sdp_t *sdp, int mi);
/* Effective direction of section `mi`; HD_SDP_SENDRECV when absent at both levels. */
int hd_sdp_eff_direction(const hd_sdp_t *sdp, int mi);

/* ---- lookups ---- */

/* Codec entry for payload type pt, NULL if none. */
const hd_sdp_codec_t *hd_sdp_codec_by_pt(const hd_sdp_media_t *m, int pt);
/* 1 if codec c (of section m) has rtcp-fb `fb` (exact, e.g. "nack pli"), counting "*". */
int hd_sdp_codec_has_fb(const hd_sdp_media_t *m, const hd_sdp_codec_t *c, const char *fb);
/* Value of parameter `key` in an fmtp string ("a=b;c=d"), copied into out (NUL-terminated).
 * Returns the value length, or HD_ENOTFOUND / HD_ENOSPC. Keys compare case-insensitively. */
int hd_sdp_fmtp_param(const char *fmtp, const char *key, char *out, size_t cap);
/* Index of the media section with this mid, or HD_ENOTFOUND. */
int hd_sdp_media_by_mid(const hd_sdp_t *sdp, const char *mid);
/* Index of the first extmap with this URI in m, or HD_ENOTFOUND. */
int hd_sdp_extmap_by_uri(const hd_sdp_media_t *m, const char *uri);

/* Names for the enums ("sendrecv", "actpass", ...); "" for UNSET/NONE. */
const char *hd_sdp_direction_name(int dir);
const char *hd_sdp_setup_name(int setup);

#endif
