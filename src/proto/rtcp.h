/* RTCP (RFC 3550 §6): compound packet walking and the packet types an SFU
 * speaks: SR/RR report blocks, SDES, BYE, generic NACK (RFC 4585 §6.2.1), PLI
 * (RFC 4585 §6.3.1), FIR (RFC 5104 §4.3.1), REMB (draft-alvestrand-rmcat-remb)
 * and transport-wide congestion control feedback
 * (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1). Reduced-size RTCP
 * (RFC 5506) is accepted by the walker. Also NTP time helpers and the RTT
 * computation of RFC 3550 §6.4.1.
 *
 * Parsing never allocates: results point into the caller's buffer and every
 * list has a hard cap. Builders write one RTCP packet each; a compound packet is
 * built by calling them back to back on the same buffer. */
#ifndef HD_PROTO_RTCP_H
#define HD_PROTO_RTCP_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"

enum {
  HD_RTCP_SR = 200,
  HD_RTCP_RR = 201,
  HD_RTCP_SDES = 202,
  HD_RTCP_BYE = 203,
  HD_RTCP_APP = 204,
  HD_RTCP_RTPFB = 205, /* transport-layer feedback (RFC 4585) */
  HD_RTCP_PSFB = 206,  /* payload-specific feedback (RFC 4585) */
  HD_RTCP_XR = 207
};
/* FMT values. */
enum {
  HD_RTCP_FMT_NACK = 1,  /* RTPFB */
  HD_RTCP_FMT_TWCC = 15, /* RTPFB */
  HD_RTCP_FMT_PLI = 1,   /* PSFB */
  HD_RTCP_FMT_FIR = 4,   /* PSFB */
  HD_RTCP_FMT_AFB = 15   /* PSFB application layer feedback: REMB */
};
enum {
  HD_RTCP_SDES_END = 0,
  HD_RTCP_SDES_CNAME = 1,
  HD_RTCP_SDES_NAME = 2,
  HD_RTCP_SDES_EMAIL = 3,
  HD_RTCP_SDES_PHONE = 4,
  HD_RTCP_SDES_LOC = 5,
  HD_RTCP_SDES_TOOL = 6,
  HD_RTCP_SDES_NOTE = 7,
  HD_RTCP_SDES_PRIV = 8
};

#define HD_RTCP_MAX_RB 31 /* 5-bit report count */
#define HD_RTCP_MAX_SDES_CHUNKS 31
#define HD_RTCP_MAX_SDES_ITEMS 9 /* per chunk */
#define HD_RTCP_MAX_BYE_SSRCS 31
#define HD_RTCP_MAX_REMB_SSRCS 32

/* ---- walking a compound packet ---- */

typedef struct {
  uint8_t padding;     /* P bit */
  uint8_t count;       /* RC / SC / FMT (5 bits) */
  uint8_t pt;          /* packet type */
  const uint8_t *pkt;  /* start of this RTCP packet */
  size_t pkt_len;      /* whole packet incl. header and padding: (length+1)*4 */
  const uint8_t *body; /* after the 4-byte common header */
  size_t body_len;     /* excludes padding */
} hd_rtcp_pkt_t;

typedef struct {
  const uint8_t *p;
  size_t len;
  size_t off;
} hd_rtcp_iter_t;

void hd_rtcp_iter_init(hd_rtcp_iter_t *it, const uint8_t *buf, size_t len);
/* Next packet of the compound: 1 with *out set, 0 at the end, HD_EPROTO on a bad
 * version, padding or a length that runs past the buffer (HD_ETRUNC). Unknown
 * packet types are returned too; callers skip them. */
int hd_rtcp_next(hd_rtcp_iter_t *it, hd_rtcp_pkt_t *out);
/* Validates a whole datagram: every header well-formed and lengths add up
 * exactly (padding is tolerated on any packet: libwebrtc pads TWCC feedback that
 * way). With require_compound, the first packet must be
 * SR or RR (RFC 3550 §6.1); without it reduced-size RTCP (RFC 5506) passes too.
 * Returns the number of packets or a negative error. */
int hd_rtcp_validate(const uint8_t *buf, size_t len, int require_compound);

/* ---- SR / RR ---- */

typedef struct {
  uint32_t ssrc;           /* source this block reports on */
  uint8_t fraction_lost;   /* 8-bit fixed point: lost/expected * 256 */
  int32_t cumulative_lost; /* 24-bit signed */
  uint32_t ext_highest_seq;
  uint32_t jitter; /* RTP timestamp units */
  uint32_t lsr;    /* middle 32 bits of the last SR's NTP time, 0 if none */
  uint32_t dlsr;   /* delay since last SR, 1/65536 s */
} hd_rtcp_rb_t;

typedef struct {
  uint32_t ssrc; /* sender */
  uint64_t ntp;  /* NTP timestamp, 32.32 */
  uint32_t rtp_ts;
  uint32_t packet_count;
  uint32_t octet_count;
  uint8_t rb_count;
  hd_rtcp_rb_t rb[HD_RTCP_MAX_RB];
} hd_rtcp_sr_t;

typedef struct {
  uint32_t ssrc; /* reporter */
  uint8_t rb_count;
  hd_rtcp_rb_t rb[HD_RTCP_MAX_RB];
} hd_rtcp_rr_t;

/* Parse p (pt must be SR / RR). Extension data after the blocks is ignored.
 * Returns 0, HD_EINVAL (wrong type) or HD_EPROTO (length too short for count). */
int hd_rtcp_parse_sr(const hd_rtcp_pkt_t *p, hd_rtcp_sr_t *out);
int hd_rtcp_parse_rr(const hd_rtcp_pkt_t *p, hd_rtcp_rr_t *out);
/* Builders return the bytes written, HD_ENOSPC or HD_EINVAL (rb_count > 31). */
int hd_rtcp_build_sr(const hd_rtcp_sr_t *sr, uint8_t *out, size_t cap);
int hd_rtcp_build_rr(const hd_rtcp_rr_t *rr, uint8_t *out, size_t cap);

/* ---- SDES ---- */

typedef struct {
  uint8_t type;
  uint8_t len;
  const uint8_t *data; /* not NUL-terminated */
} hd_rtcp_sdes_item_t;

typedef struct {
  uint32_t ssrc;
  uint8_t item_count;
  hd_rtcp_sdes_item_t items[HD_RTCP_MAX_SDES_ITEMS];
} hd_rtcp_sdes_chunk_t;

typedef struct {
  uint8_t chunk_count;
  hd_rtcp_sdes_chunk_t chunks[HD_RTCP_MAX_SDES_CHUNKS];
} hd_rtcp_sdes_t;

/* Parses every chunk and item. HD_EPROTO on an item past the end or a missing
 * END item; HD_ENOSPC if a chunk has more than HD_RTCP_MAX_SDES_ITEMS items. */
int hd_rtcp_parse_sdes(const hd_rtcp_pkt_t *p, hd_rtcp_sdes_t *out);
/* Finds an item of `type` for `ssrc`: 0 with data/len set, or HD_ENOTFOUND. */
int hd_rtcp_sdes_find(const hd_rtcp_sdes_t *s, uint32_t ssrc, uint8_t type, const uint8_t **data,
                      size_t *len);
/* Builds an SDES with one chunk holding one CNAME item (cname NUL-terminated,
 * 1..255 bytes). */
int hd_rtcp_build_sdes_cname(uint32_t ssrc, const char *cname, uint8_t *out, size_t cap);
/* Builds an SDES from s (items' len and data used as given). */
int hd_rtcp_build_sdes(const hd_rtcp_sdes_t *s, uint8_t *out, size_t cap);

/* ---- BYE ---- */

typedef struct {
  uint8_t count;
  uint32_t ssrcs[HD_RTCP_MAX_BYE_SSRCS];
  const uint8_t *reason; /* NULL when absent */
  uint8_t reason_len;
} hd_rtcp_bye_t;

int hd_rtcp_parse_bye(const hd_rtcp_pkt_t *p, hd_rtcp_bye_t *out);
/* reason may be NULL; at most 255 bytes. */
int hd_rtcp_build_bye(const uint32_t *ssrcs, size_t n, const char *reason, uint8_t *out, size_t cap);

/* ---- feedback (RFC 4585 §6.1 common format) ---- */

typedef struct {
  uint8_t pt; /* RTPFB or PSFB */
  uint8_t fmt;
  uint32_t sender_ssrc;
  uint32_t media_ssrc;
  const uint8_t *fci;
  size_t fci_len;
} hd_rtcp_fb_t;

/* p must be RTPFB or PSFB with at least the two SSRCs. 0 / HD_EINVAL / HD_EPROTO. */
int hd_rtcp_parse_fb(const hd_rtcp_pkt_t *p, hd_rtcp_fb_t *out);

/* Generic NACK: expands every PID/BLP pair into seqs (in FCI order, PID first then
 * BLP bits low to high). Returns the count, HD_EPROTO (FCI not a multiple of 4),
 * or HD_ENOSPC when more than cap seqs. */
int hd_rtcp_nack_expand(const hd_rtcp_fb_t *fb, uint16_t *seqs, size_t cap);
/* Builds a generic NACK; seqs ascending in RTP order (wrap allowed, duplicates
 * fine) are packed into as few PID/BLP pairs as possible. n >= 1. */
int hd_rtcp_build_nack(uint32_t sender_ssrc, uint32_t media_ssrc, const uint16_t *seqs, size_t n,
                       uint8_t *out, size_t cap);

/* PLI: no FCI. */
int hd_rtcp_build_pli(uint32_t sender_ssrc, uint32_t media_ssrc, uint8_t *out, size_t cap);

/* FIR (RFC 5104 §4.3.1): media_ssrc in the common header is 0; each entry names
 * the SSRC to refresh and a command sequence number. */
typedef struct {
  uint32_t ssrc;
  uint8_t seq_nr;
} hd_rtcp_fir_entry_t;
/* Returns the number of entries, HD_EPROTO, or HD_ENOSPC. */
int hd_rtcp_fir_parse(const hd_rtcp_fb_t *fb, hd_rtcp_fir_entry_t *entries, size_t cap);
int hd_rtcp_build_fir(uint32_t sender_ssrc, const hd_rtcp_fir_entry_t *entries, size_t n, uint8_t *out,
                      size_t cap);

/* REMB: PSFB FMT 15 with "REMB" identifier; bitrate = mantissa(18) << exp(6). */
typedef struct {
  uint64_t bitrate_bps;
  uint8_t ssrc_count;
  uint32_t ssrcs[HD_RTCP_MAX_REMB_SSRCS];
} hd_rtcp_remb_t;
/* HD_ENOTFOUND if the AFB message is not REMB; HD_EPROTO if malformed;
 * HD_ENOSPC if it lists more than HD_RTCP_MAX_REMB_SSRCS. */
int hd_rtcp_remb_parse(const hd_rtcp_fb_t *fb, hd_rtcp_remb_t *out);
/* Bitrate is rounded down to what 18 bits of mantissa can express. */
int hd_rtcp_build_remb(uint32_t sender_ssrc, uint64_t bitrate_bps, const uint32_t *ssrcs, size_t n,
                       uint8_t *out, size_t cap);

/* ---- transport-wide CC feedback ---- */

#define HD_TWCC_DELTA_US 250 /* receive delta tick */
#define HD_TWCC_REF_US 64000 /* reference time tick */

enum { HD_TWCC_NOT_RECEIVED = 0, HD_TWCC_SMALL_DELTA = 1, HD_TWCC_LARGE_DELTA = 2 };

typedef struct {
  uint16_t seq;
  uint8_t status;   /* HD_TWCC_* */
  int32_t delta_us; /* receive delta in µs (multiple of 250); 0 if not received */
  int64_t recv_us;  /* arrival on the feedback's clock: ref_time*64000 + sum of
                       deltas up to here; 0 if not received */
} hd_rtcp_twcc_pkt_t;

typedef struct {
  uint32_t sender_ssrc;
  uint32_t media_ssrc;
  uint16_t base_seq;
  uint16_t status_count;
  int32_t ref_time; /* 24-bit signed, units of 64 ms */
  uint8_t fb_count;
} hd_rtcp_twcc_t;

/* Parses TWCC feedback: header into *out, then one entry per reported packet
 * (status_count of them) into pkts. Returns the number of entries, HD_EPROTO when
 * chunks/deltas are missing or inconsistent, HD_ENOSPC when more than cap. */
int hd_rtcp_twcc_parse(const hd_rtcp_fb_t *fb, hd_rtcp_twcc_t *out, hd_rtcp_twcc_pkt_t *pkts, size_t cap);

/* One received packet for the builder. */
typedef struct {
  uint16_t seq;      /* transport-wide seq */
  hd_time_t arrival; /* receiver clock, µs, >= 0 */
} hd_rtcp_twcc_recv_t;

/* Builds TWCC feedback from received packets, ascending in seq (wrap allowed, no
 * duplicates); gaps are reported as not received. base_seq = recv[0].seq, the
 * reference time = recv[0].arrival / 64 ms. Chunks are chosen among run-length
 * and 1-/2-bit status vectors. If a delta between consecutive packets does not
 * fit 16 bits of 250 µs (or the seq span exceeds 16 bits) the packet ends early:
 * *used (may be NULL) tells how many of recv went in (the caller sends the rest in the next
 * feedback). Returns the bytes written, HD_ENOSPC, or HD_EINVAL (n == 0,
 * not ascending). */
int hd_rtcp_build_twcc(uint32_t sender_ssrc, uint32_t media_ssrc, uint8_t fb_count,
                       const hd_rtcp_twcc_recv_t *recv, size_t n, size_t *used, uint8_t *out, size_t cap);

/* ---- NTP time (RFC 3550 §4) and RTT (§6.4.1) ---- */

/* NTP 32.32 timestamp for monotonic time t, where wall_offset_us maps the
 * caller's clock to Unix time in µs (unix_us = t + wall_offset_us). */
uint64_t hd_rtcp_ntp_from_time(hd_time_t t, hd_time_t wall_offset_us);
/* Inverse of hd_rtcp_ntp_from_time (µs precision). */
hd_time_t hd_rtcp_ntp_to_time(uint64_t ntp, hd_time_t wall_offset_us);
/* Middle 32 bits (16.16), as used by LSR / DLSR. */
static inline uint32_t hd_rtcp_ntp_mid32(uint64_t ntp) { return (uint32_t)(ntp >> 16); }
/* Converts a µs duration to 1/65536 s units (for DLSR) and back. */
uint32_t hd_rtcp_us_to_q16(hd_time_t us);
hd_time_t hd_rtcp_q16_to_us(uint32_t q16);
/* RTT from a report block received at arrival (its NTP middle 32 bits):
 * A - LSR - DLSR, in µs. HD_ENOTFOUND if lsr is 0 (no SR seen yet); a negative
 * result (clock skew) is clamped to 0. */
int hd_rtcp_rtt(uint32_t arrival_mid32, const hd_rtcp_rb_t *rb, hd_time_t *rtt_us);

#endif
