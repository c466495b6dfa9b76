/* Bounds-checked big-endian byte reader and writer. A reader or writer that
 * runs past its end sets `err` (sticky) and yields zeros, so a parser can read a
 * whole header and check once. */
#ifndef HD_BASE_BYTES_H
#define HD_BASE_BYTES_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/err.h"

typedef struct {
  const uint8_t *p;
  size_t len;
  size_t off;
  int err; /* 0 or HD_ETRUNC */
} hd_reader_t;

typedef struct {
  uint8_t *p;
  size_t cap;
  size_t len;
  int err; /* 0 or HD_ENOSPC */
} hd_writer_t;

static inline void hd_reader_init(hd_reader_t *r, const void *p, size_t len) {
  r->p = (const uint8_t *)p;
  r->len = len;
  r->off = 0;
  r->err = 0;
}
static inline size_t hd_rd_left(const hd_reader_t *r) { return r->err ? 0 : r->len - r->off; }
static inline int hd_rd_need(hd_reader_t *r, size_t n) {
  if (r->err || r->len - r->off < n) {
    r->err = HD_ETRUNC;
    return 0;
  }
  return 1;
}
static inline uint8_t hd_rd_u8(hd_reader_t *r) { return hd_rd_need(r, 1) ? r->p[r->off++] : 0; }
static inline uint16_t hd_rd_u16(hd_reader_t *r) {
  if (!hd_rd_need(r, 2)) return 0;
  uint16_t v = (uint16_t)((r->p[r->off] << 8) | r->p[r->off + 1]);
  r->off += 2;
  return v;
}
static inline uint32_t hd_rd_u24(hd_reader_t *r) {
  if (!hd_rd_need(r, 3)) return 0;
  uint32_t v = ((uint32_t)r->p[r->off] << 16) | ((uint32_t)r->p[r->off + 1] << 8) | r->p[r->off + 2];
  r->off += 3;
  return v;
}
static inline uint32_t hd_rd_u32(hd_reader_t *r) {
  if (!hd_rd_need(r, 4)) return 0;
  uint32_t v = ((uint32_t)r->p[r->off] << 24) | ((uint32_t)r->p[r->off + 1] << 16) |
               ((uint32_t)r->p[r->off + 2] << 8) | r->p[r->off + 3];
  r->off += 4;
  return v;
}
static inline uint64_t hd_rd_u64(hd_reader_t *r) {
  uint64_t hi = hd_rd_u32(r);
  return (hi << 32) | hd_rd_u32(r);
}
/* Returns a pointer to n bytes inside the input, or NULL (and sets err). */
static inline const uint8_t *hd_rd_bytes(hd_reader_t *r, size_t n) {
  if (!hd_rd_need(r, n)) return NULL;
  const uint8_t *p = r->p + r->off;
  r->off += n;
  return p;
}
static inline void hd_rd_skip(hd_reader_t *r, size_t n) { (void)hd_rd_bytes(r, n); }

static inline void hd_writer_init(hd_writer_t *w, void *p, size_t cap) {
  w->p = (uint8_t *)p;
  w->cap = cap;
  w->len = 0;
  w->err = 0;
}
static inline int hd_wr_need(hd_writer_t *w, size_t n) {
  if (w->err || w->cap - w->len < n) {
    w->err = HD_ENOSPC;
    return 0;
  }
  return 1;
}
static inline void hd_wr_u8(hd_writer_t *w, uint8_t v) {
  if (hd_wr_need(w, 1)) w->p[w->len++] = v;
}
static inline void hd_wr_u16(hd_writer_t *w, uint16_t v) {
  if (!hd_wr_need(w, 2)) return;
  w->p[w->len++] = (uint8_t)(v >> 8);
  w->p[w->len++] = (uint8_t)v;
}
static inline void hd_wr_u24(hd_writer_t *w, uint32_t v) {
  if (!hd_wr_need(w, 3)) return;
  w->p[w->len++] = (uint8_t)(v >> 16);
  w->p[w->len++] = (uint8_t)(v >> 8);
  w->p[w->len++] = (uint8_t)v;
}
static inline void hd_wr_u32(hd_writer_t *w, uint32_t v) {
  if (!hd_wr_need(w, 4)) return;
  w->p[w->len++] = (uint8_t)(v >> 24);
  w->p[w->len++] = (uint8_t)(v >> 16);
  w->p[w->len++] = (uint8_t)(v >> 8);
  w->p[w->len++] = (uint8_t)v;
}
static inline void hd_wr_u64(hd_writer_t *w, uint64_t v) {
  hd_wr_u32(w, (uint32_t)(v >> 32));
  hd_wr_u32(w, (uint32_t)v);
}
static inline void hd_wr_bytes(hd_writer_t *w, const void *p, size_t n) {
  if (n && hd_wr_need(w, n)) {
    memcpy(w->p + w->len, p, n);
    w->len += n;
  }
}
static inline void hd_wr_zeros(hd_writer_t *w, size_t n) {
  if (n && hd_wr_need(w, n)) {
    memset(w->p + w->len, 0, n);
    w->len += n;
  }
}
/* Big-endian helpers for patching already-written bytes. */
static inline void hd_put_u16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static inline void hd_put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}
static inline uint16_t hd_get_u16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t hd_get_u32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Unchecked big-endian loads and stores, for callers that checked the length
 * once (wire headers of fixed size). */
static inline void hd_put_be16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static inline void hd_put_be32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (24 - 8 * i));
}
static inline void hd_put_be64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (56 - 8 * i));
}
static inline uint16_t hd_get_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t hd_get_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t hd_get_be64(const uint8_t *p) {
  return (uint64_t)hd_get_be32(p) << 32 | hd_get_be32(p + 4);
}

#endif
