/* DCEP codec (RFC 8832 §5): DATA_CHANNEL_OPEN and DATA_CHANNEL_ACK. */
#include "proto/dcep.h"

#include <string.h>

#include "base/bytes.h"
#include "base/err.h"

int hd_dcep_type_valid(uint8_t t) {
  switch (t) {
  case HD_DCEP_RELIABLE:
  case HD_DCEP_PARTIAL_RELIABLE_REXMIT:
  case HD_DCEP_PARTIAL_RELIABLE_TIMED:
  case HD_DCEP_RELIABLE_UNORDERED:
  case HD_DCEP_PARTIAL_RELIABLE_REXMIT_UNORDERED:
  case HD_DCEP_PARTIAL_RELIABLE_TIMED_UNORDERED: return 1;
  default: return 0;
  }
}

/* Copies a length-prefixed string field, refusing embedded NULs (we hand the
 * label out as a C string; a NUL would silently truncate it). */
static int copy_field(char *dst, size_t cap, const uint8_t *src, size_t len) {
  if (len >= cap) return HD_ENOSPC;
  if (len && memchr(src, 0, len)) return HD_EPROTO;
  if (len) memcpy(dst, src, len);
  dst[len] = 0;
  return 0;
}

int hd_dcep_parse(const uint8_t *buf, size_t len, hd_dcep_open_t *open) {
  if (!buf || len < 1) return HD_ETRUNC;
  if (buf[0] == HD_DCEP_ACK) return len == 1 ? HD_DCEP_ACK : HD_EPROTO;
  if (buf[0] != HD_DCEP_OPEN) return HD_EPROTO;
  hd_reader_t r;
  hd_reader_init(&r, buf, len);
  hd_rd_skip(&r, 1);
  uint8_t type = hd_rd_u8(&r);
  uint16_t prio = hd_rd_u16(&r);
  uint32_t rel = hd_rd_u32(&r);
  uint16_t llen = hd_rd_u16(&r);
  uint16_t plen = hd_rd_u16(&r);
  if (r.err) return HD_ETRUNC;
  if (!hd_dcep_type_valid(type)) return HD_EPROTO;
  const uint8_t *label = hd_rd_bytes(&r, llen);
  const uint8_t *proto = hd_rd_bytes(&r, plen);
  if (r.err) return HD_ETRUNC;
  if (hd_rd_left(&r)) return HD_EPROTO;
  if (!open) return HD_EINVAL;
  hd_dcep_open_t o;
  memset(&o, 0, sizeof o);
  o.channel_type = type;
  o.priority = prio;
  /* RFC 8832 §5.1: ignored for reliable channels; keep it 0 so callers can rely on it */
  o.reliability = hd_dcep_reliable(type) ? 0 : rel;
  int rc = copy_field(o.label, sizeof o.label, label, llen);
  if (!rc) rc = copy_field(o.protocol, sizeof o.protocol, proto, plen);
  if (rc) return rc;
  *open = o;
  return HD_DCEP_OPEN;
}

int hd_dcep_build_open(const hd_dcep_open_t *open, uint8_t *out, size_t cap) {
  if (!open || !hd_dcep_type_valid(open->channel_type)) return HD_EINVAL;
  size_t llen = strnlen(open->label, sizeof open->label);
  size_t plen = strnlen(open->protocol, sizeof open->protocol);
  if (llen > HD_DCEP_MAX_LABEL || plen > HD_DCEP_MAX_PROTOCOL) return HD_EINVAL;
  hd_writer_t w;
  hd_writer_init(&w, out, cap);
  hd_wr_u8(&w, HD_DCEP_OPEN);
  hd_wr_u8(&w, open->channel_type);
  hd_wr_u16(&w, open->priority);
  hd_wr_u32(&w, hd_dcep_reliable(open->channel_type) ? 0 : open->reliability);
  hd_wr_u16(&w, (uint16_t)llen);
  hd_wr_u16(&w, (uint16_t)plen);
  hd_wr_bytes(&w, open->label, llen);
  hd_wr_bytes(&w, open->protocol, plen);
  if (w.err) return HD_ENOSPC;
  return (int)w.len;
}

int hd_dcep_build_ack(uint8_t *out, size_t cap) {
  if (!out || cap < 1) return HD_ENOSPC;
  out[0] = HD_DCEP_ACK;
  return 1;
}
