/* RFC 4571 §2 framing (see rfc4571.h). */
#include "proto/rfc4571.h"

#include <string.h>

#include "base/err.h"

int hd_rfc4571_frame(const uint8_t *pkt, size_t len, uint8_t *out, size_t cap) {
  if ((!pkt && len) || len == 0 || len > HD_RFC4571_MAX) return HD_EINVAL;
  if (!out || cap < len + HD_RFC4571_HDR) return HD_ENOSPC;
  out[0] = (uint8_t)(len >> 8);
  out[1] = (uint8_t)len;
  memmove(out + HD_RFC4571_HDR, pkt, len); /* memmove: the caller may frame in place */
  return (int)(len + HD_RFC4571_HDR);
}

int hd_rfc4571_next(const uint8_t *buf, size_t len, size_t max, const uint8_t **pkt, size_t *pkt_len) {
  if (!buf || len < HD_RFC4571_HDR) return 0;
  size_t n = (size_t)buf[0] << 8 | buf[1];
  /* a zero-length frame carries no packet of any protocol ICE-TCP muxes
   * (RFC 7983), and one longer than the caller's cap cannot be buffered */
  if (n == 0 || n > max) return HD_EPROTO;
  if (len < HD_RFC4571_HDR + n) return 0;
  *pkt = buf + HD_RFC4571_HDR;
  *pkt_len = n;
  return (int)(HD_RFC4571_HDR + n);
}
