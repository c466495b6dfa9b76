/* RFC 4571 framing: packets over a TCP byte stream, each preceded by its
 * length as a 16-bit big-endian integer (RFC 4571 §2). ICE-TCP (RFC 6544 §3)
 * carries STUN, DTLS, SRTP and SRTCP this way. Pure functions, no state: the
 * caller keeps the bytes received so far and calls hd_rfc4571_next until it
 * asks for more. */
#ifndef HD_PROTO_RFC4571_H
#define HD_PROTO_RFC4571_H
#include <stddef.h>
#include <stdint.h>

#define HD_RFC4571_HDR 2
/* The largest length the 16-bit field can hold. */
#define HD_RFC4571_MAX 65535

/* Writes the 2-byte length and the packet to out. Returns the bytes written
 * (len + 2), HD_EINVAL for len 0 or len > HD_RFC4571_MAX, HD_ENOSPC when cap
 * is too small. */
int hd_rfc4571_frame(const uint8_t *pkt, size_t len, uint8_t *out, size_t cap);

/* Looks at the start of buf (len bytes received and not yet consumed) for one
 * complete frame. Returns:
 *   > 0        the bytes the frame takes (2 + its length); *pkt / *pkt_len
 *              point at the packet inside buf
 *   0          the frame is not complete yet: read more (len < 2, or fewer
 *              bytes than the length says)
 *   HD_EPROTO  the length is 0 or greater than max: not a stream we can
 *              follow — RFC 4571 has no way to resynchronise, so the
 *              connection is to be closed. */
int hd_rfc4571_next(const uint8_t *buf, size_t len, size_t max, const uint8_t **pkt, size_t *pkt_len);

#endif
