/* RTP packets (RFC 3550 §5.1) with RFC 8285 header extensions, RTX (RFC 4588 §4)
 * and RTP/RTCP demultiplexing on one port (RFC 5761 §4, RFC 7983).
 *
 * Parsing never allocates: hd_rtp_hdr_t points into the caller's buffer. The SFU
 * forwards packets by rewriting a few header fields in place, so the rewriters
 * take the raw packet bytes and touch only the bytes they name. */
#ifndef HD_PROTO_RTP_H
#define HD_PROTO_RTP_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"

#define HD_RTP_HDR_MIN 12
#define HD_RTP_MAX_CSRC 15
/* RFC 8285 §4.2 / §4.3 "defined by profile" values. */
#define HD_RTP_EXT_ONE_BYTE 0xBEDE
#define HD_RTP_EXT_TWO_BYTE 0x1000 /* upper 12 bits; low 4 bits are app bits */
/* Caps for the builder: ids 1..255, at most this many elements per packet. */
#define HD_RTP_MAX_EXTS 16

typedef struct {
  uint8_t version;   /* always 2 after a successful parse */
  uint8_t padding;   /* P bit */
  uint8_t extension; /* X bit */
  uint8_t marker;
  uint8_t pt;
  uint8_t csrc_count;
  uint16_t seq;
  uint32_t ts;
  uint32_t ssrc;
  uint32_t csrcs[HD_RTP_MAX_CSRC];
  uint16_t ext_profile;    /* 0 when no extension */
  const uint8_t *ext_data; /* extension body after its 4-byte header, or NULL */
  size_t ext_len;          /* bytes (multiple of 4) */
  size_t ext_off;          /* offset of ext_data inside the packet (for in-place rewrites) */
  size_t hdr_len;          /* fixed header + CSRCs + extension */
  const uint8_t *payload;
  size_t payload_len; /* excludes padding */
  uint8_t pad_len;    /* number of padding bytes at the end (incl. the count byte) */
} hd_rtp_hdr_t;

/* RFC 7983 / RFC 5761 §4 demux. Both need the first byte in 128..191 (version 2).
 * hd_rtp_is_rtcp: second byte in 192..223 and len >= 8.
 * hd_rtp_is_rtp: second byte not in 192..223 and len >= 12. Return 1 or 0. */
int hd_rtp_is_rtcp(const uint8_t *buf, size_t len);
int hd_rtp_is_rtp(const uint8_t *buf, size_t len);

/* Parses an RTP packet. Returns 0; HD_ETRUNC when shorter than its header says;
 * HD_EPROTO on version != 2, bad padding count or malformed extension header. */
int hd_rtp_parse(const uint8_t *buf, size_t len, hd_rtp_hdr_t *h);

/* ---- header extensions (RFC 8285) ---- */

/* Returns 1 if the packet carries one-byte (0xBEDE) or two-byte (0x100X) extensions. */
int hd_rtp_ext_is_rfc8285(const hd_rtp_hdr_t *h);

/* Iterator over RFC 8285 elements. Padding bytes are skipped; a one-byte id 15
 * ends the walk (RFC 8285 §4.2). */
typedef struct {
  const uint8_t *p;
  size_t len;
  size_t off;
  int two_byte;
} hd_rtp_ext_iter_t;

/* Starts iterating h's extensions. If h has none or an unknown profile the
 * iterator yields nothing. */
void hd_rtp_ext_iter_init(hd_rtp_ext_iter_t *it, const hd_rtp_hdr_t *h);
/* Next element: returns 1 with id/data/len set, 0 at the end, HD_EPROTO when an
 * element runs past the extension block. data points into the packet. */
int hd_rtp_ext_next(hd_rtp_ext_iter_t *it, uint8_t *id, const uint8_t **data, size_t *len);

/* Finds extension `id` (1..14 one-byte, 1..255 two-byte). Returns 0 and sets
 * data/len, HD_ENOTFOUND, or HD_EPROTO if the block is malformed before it. */
int hd_rtp_ext_find(const hd_rtp_hdr_t *h, uint8_t id, const uint8_t **data, size_t *len);

/* One element for the builder. */
typedef struct {
  uint8_t id;  /* 1..255; > 14 forces the two-byte form */
  uint8_t len; /* 0..255; 0 or > 16 forces the two-byte form */
  const uint8_t *data;
} hd_rtp_ext_t;

/* Everything to write an RTP header. */
typedef struct {
  uint8_t pt; /* 0..127 */
  uint8_t marker;
  uint16_t seq;
  uint32_t ts;
  uint32_t ssrc;
  const uint32_t *csrcs;
  size_t csrc_count; /* <= 15 */
  const hd_rtp_ext_t *exts;
  size_t ext_count; /* <= HD_RTP_MAX_EXTS; one-byte form when every id <= 14 and
                       every len is 1..16, else two-byte (0x1000) form */
  uint8_t pad_len;  /* 0 = no padding; else total padding bytes appended (>= 1) */
} hd_rtp_build_t;

/* Writes a header (fixed part, CSRCs, extensions) to out. Returns the header
 * length, HD_ENOSPC, or HD_EINVAL on a bad field (pt > 127, id 0, too many).
 * Padding is not written here (see hd_rtp_build). */
int hd_rtp_build_hdr(const hd_rtp_build_t *b, uint8_t *out, size_t cap);
/* Writes header + payload + padding (P bit set when b->pad_len > 0). Returns
 * total length or a negative error. payload may be NULL when plen is 0. */
int hd_rtp_build(const hd_rtp_build_t *b, const uint8_t *payload, size_t plen, uint8_t *out, size_t cap);

/* ---- in-place rewriters for forwarding. pkt must be a valid RTP packet of at
 * least 12 bytes; return 0, or HD_EPROTO/HD_EINVAL when it is not. ---- */
int hd_rtp_set_seq(uint8_t *pkt, size_t len, uint16_t seq);
int hd_rtp_set_ts(uint8_t *pkt, size_t len, uint32_t ts);
int hd_rtp_set_ssrc(uint8_t *pkt, size_t len, uint32_t ssrc);
int hd_rtp_set_pt(uint8_t *pkt, size_t len, uint8_t pt); /* keeps the marker bit */
int hd_rtp_set_marker(uint8_t *pkt, size_t len, int marker);
/* Overwrites the value of an existing extension element. val_len must equal the
 * element's current length (sizes never change in place). Returns 0,
 * HD_ENOTFOUND, HD_EINVAL (length differs) or HD_EPROTO. */
int hd_rtp_ext_rewrite(uint8_t *pkt, size_t len, uint8_t id, const uint8_t *val, size_t val_len);
/* Turns an existing element into padding bytes (zeros) so receivers ignore it,
 * e.g. to drop an extension the receiver did not negotiate. 0 / HD_ENOTFOUND. */
int hd_rtp_ext_blank(uint8_t *pkt, size_t len, uint8_t id);

/* ---- well-known extensions ---- */

/* abs-send-time (http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time):
 * 24-bit 6.18 fixed-point seconds, wrapping every 64 s. */
uint32_t hd_rtp_abs_send_time_from_us(hd_time_t t);
/* Converts a 24-bit value to microseconds in [0, 64 s). */
hd_time_t hd_rtp_abs_send_time_to_us(uint32_t ast);
int hd_rtp_abs_send_time_parse(const uint8_t *d, size_t len, uint32_t *ast); /* len must be 3 */
void hd_rtp_abs_send_time_write(uint8_t out[3], uint32_t ast);

/* playout-delay (http://www.webrtc.org/experiments/rtp-hdrext/playout-delay):
 * the sender's bounds on the receiver's playout delay, 12 bits each of min
 * and max in 10 ms units (0..40.95 s; larger values are clamped). */
void hd_rtp_playout_delay_write(uint8_t out[3], unsigned min_ms, unsigned max_ms);
int hd_rtp_playout_delay_parse(const uint8_t *d, size_t len, unsigned *min_ms, unsigned *max_ms); /* len 3 */

/* transport-wide-cc sequence number (draft-holmer-rmcat-transport-wide-cc-extensions §2). */
int hd_rtp_twcc_seq_parse(const uint8_t *d, size_t len, uint16_t *seq); /* len must be 2 */
void hd_rtp_twcc_seq_write(uint8_t out[2], uint16_t seq);

/* RFC 6464 client-to-mixer audio level: V flag and level 0..127 (-dBov). The
 * element is 1 byte (padded forms with len up to 4 are accepted). */
int hd_rtp_audio_level_parse(const uint8_t *d, size_t len, int *voice, uint8_t *level);
void hd_rtp_audio_level_write(uint8_t out[1], int voice, uint8_t level);

/* mid (RFC 9143 §15) / rid (RFC 8852 §3) string values: copies into out with a
 * NUL. Trailing NUL bytes (seen in the wild as padding) are dropped. Returns the
 * string length, HD_EPROTO if empty or not printable ASCII, HD_ENOSPC if cap is small. */
int hd_rtp_ext_string(const uint8_t *d, size_t len, char *out, size_t cap);

/* ---- RTX (RFC 4588 §4) ---- */

/* Builds the retransmission of `orig` (a full RTP packet) on the RTX stream: same
 * header (CSRCs, extensions, marker, timestamp), rtx ssrc/pt/seq, OSN (original
 * seq) as the first 2 payload bytes, original payload; padding is dropped.
 * Returns the RTX packet length, HD_ENOSPC or a parse error. */
int hd_rtp_rtx_build(const uint8_t *orig, size_t len, uint32_t rtx_ssrc, uint8_t rtx_pt, uint16_t rtx_seq,
                     uint8_t *out, size_t cap);
/* Restores the original packet from an RTX packet: ssrc/pt given by the caller
 * (from the SDP apt / ssrc-group), seq = OSN, payload without the OSN; padding
 * is dropped. Sets *osn. Returns the length; HD_EPROTO when the payload has no OSN
 * (e.g. a padding-only RTX probe). */
int hd_rtp_rtx_decode(const uint8_t *rtx, size_t len, uint32_t orig_ssrc, uint8_t orig_pt, uint8_t *out,
                      size_t cap, uint16_t *osn);

/* ---- sequence numbers ---- */

/* 1 if 16-bit sequence number a is newer than b (RFC 1982 serial arithmetic). */
static inline int hd_seq_newer(uint16_t a, uint16_t b) { return a != b && (uint16_t)(a - b) < 0x8000; }
/* Same for 32-bit RTP timestamps. */
static inline int hd_ts_newer(uint32_t a, uint32_t b) { return a != b && (uint32_t)(a - b) < 0x80000000u; }

/* Extends 16-bit sequence numbers to 64 bits. The first value maps to itself
 * (0..65535); later values map to the extended number nearest the highest seen,
 * so an older packet across a wrap may map below 0. */
typedef struct {
  int64_t last; /* highest extended value so far */
  int started;
} hd_seq_unwrapper_t;

static inline void hd_seq_unwrapper_init(hd_seq_unwrapper_t *u) {
  u->last = 0;
  u->started = 0;
}
int64_t hd_seq_unwrap(hd_seq_unwrapper_t *u, uint16_t seq);

/* The extended sequence number of `seq` nearest to the extended reference `ref`
 * (stateless form of the unwrapper, for code that keeps its own reference). */
static inline int64_t hd_seq_extend(int64_t ref, uint16_t seq) {
  int64_t cand = (ref & ~(int64_t)0xffff) | seq;
  if (cand - ref > 0x8000)
    cand -= 0x10000;
  else if (ref - cand > 0x8000)
    cand += 0x10000;
  return cand;
}

#endif
