/* WAV, Y4M and IVF as in-memory transforms; see media_file.h. All multi-byte
 * fields of WAV (RIFF) and IVF are little-endian. */
#include "media/media_file.h"

#include <stdio.h>
#include <string.h>

#include "base/err.h"

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static void put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- WAV ---- */

static int wav_params_ok(int rate, int channels) {
  return rate >= 1 && rate <= 384000 && channels >= 1 && channels <= 8;
}

int hd_wav_header_write(uint8_t *out, size_t cap, int rate, int channels, uint32_t data_bytes) {
  if (!out || !wav_params_ok(rate, channels) || data_bytes > 0xFFFFFFFFu - 36) return HD_EINVAL;
  if (cap < HD_WAV_HEADER_LEN) return HD_ENOSPC;
  uint32_t block = (uint32_t)channels * 2;
  memcpy(out, "RIFF", 4);
  put32(out + 4, 36 + data_bytes);
  memcpy(out + 8, "WAVEfmt ", 8);
  put32(out + 16, 16);
  put16(out + 20, 1); /* PCM */
  put16(out + 22, (uint16_t)channels);
  put32(out + 24, (uint32_t)rate);
  put32(out + 28, (uint32_t)rate * block);
  put16(out + 32, (uint16_t)block);
  put16(out + 34, 16);
  memcpy(out + 36, "data", 4);
  put32(out + 40, data_bytes);
  return HD_WAV_HEADER_LEN;
}

int hd_wav_parse(const uint8_t *buf, size_t len, hd_wav_info_t *info) {
  if (!buf || !info) return HD_EINVAL;
  memset(info, 0, sizeof(*info));
  if (len < 12) return HD_ETRUNC;
  if (memcmp(buf, "RIFF", 4) != 0 || memcmp(buf + 8, "WAVE", 4) != 0) return HD_EPROTO;
  size_t off = 12;
  int have_fmt = 0;
  while (1) {
    if (len - off < 8) return HD_ETRUNC; /* ran out before the data chunk */
    const uint8_t *id = buf + off;
    uint32_t sz = le32(buf + off + 4);
    size_t body = off + 8;
    if (memcmp(id, "data", 4) == 0) {
      if (!have_fmt) return HD_EPROTO; /* samples before their format */
      size_t present = len - body;
      size_t n = (sz == 0 || sz == 0xFFFFFFFFu || sz > present) ? present : sz;
      size_t block = (size_t)info->channels * 2;
      info->data_off = body;
      info->data_len = n - n % block;
      info->data_declared = sz;
      return 0;
    }
    if (sz > len - body) return HD_ETRUNC;
    if (memcmp(id, "fmt ", 4) == 0) {
      if (sz < 16) return HD_EPROTO;
      const uint8_t *f = buf + body;
      uint16_t fmt = le16(f), ch = le16(f + 2), block = le16(f + 12), bits = le16(f + 14);
      uint32_t rate = le32(f + 4);
      if (fmt == 0xFFFE) {
        /* WAVE_FORMAT_EXTENSIBLE: the real format is the SubFormat GUID's first two bytes. */
        if (sz < 40) return HD_EPROTO;
        fmt = le16(f + 24);
      }
      if (fmt != 1 || bits != 16) return HD_EUNSUPPORTED;
      if (!wav_params_ok((int)(rate > 384000 ? 0 : rate), ch) || block != ch * 2) return HD_EPROTO;
      info->rate = (int)rate;
      info->channels = ch;
      have_fmt = 1;
    }
    /* RIFF chunks are padded to an even length. */
    size_t adv = (size_t)sz + (sz & 1);
    if (adv > len - body) return HD_ETRUNC;
    off = body + adv;
  }
}

/* ---- Y4M ---- */

int hd_y4m_header_write(char *out, size_t cap, int width, int height, int fps_num, int fps_den) {
  if (!out || !hd_i420_size(width, height) || fps_num < 1 || fps_den < 1) return HD_EINVAL;
  int n = snprintf(out, cap, "YUV4MPEG2 W%d H%d F%d:%d Ip A1:1 C420jpeg\n", width, height, fps_num, fps_den);
  if (n < 0 || (size_t)n >= cap) return HD_ENOSPC;
  return n;
}

/* Parses a positive decimal of at most 9 digits at p[0..n); -1 if invalid. */
static long parse_uint(const char *p, size_t n) {
  if (n == 0 || n > 9) return -1;
  long v = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] < '0' || p[i] > '9') return -1;
    v = v * 10 + (p[i] - '0');
  }
  return v;
}

static int parse_ratio(const char *p, size_t n, int *num, int *den) {
  const char *colon = memchr(p, ':', n);
  if (!colon) return -1;
  long a = parse_uint(p, (size_t)(colon - p)), b = parse_uint(colon + 1, n - (size_t)(colon - p) - 1);
  if (a < 0 || b < 0) return -1;
  *num = (int)a;
  *den = (int)b;
  return 0;
}

static int tok_is(const char *t, size_t n, const char *s) { return strlen(s) == n && memcmp(t, s, n) == 0; }

int hd_y4m_parse_header(const uint8_t *buf, size_t len, hd_y4m_info_t *info) {
  if (!buf || !info) return HD_EINVAL;
  memset(info, 0, sizeof(*info));
  size_t lim = len < HD_Y4M_HEADER_MAX ? len : HD_Y4M_HEADER_MAX;
  const uint8_t *nl = memchr(buf, '\n', lim);
  if (!nl) return len < HD_Y4M_HEADER_MAX ? HD_ETRUNC : HD_EPROTO;
  size_t hl = (size_t)(nl - buf);
  const char *h = (const char *)buf;
  if (hl < 9 || memcmp(h, "YUV4MPEG2", 9) != 0 || (hl > 9 && h[9] != ' ')) return HD_EPROTO;
  long w = -1, ht = -1;
  int fn = 30, fd = 1;
  size_t i = 9;
  while (i < hl) {
    while (i < hl && h[i] == ' ')
      i++;
    size_t s = i;
    while (i < hl && h[i] != ' ')
      i++;
    if (i == s) break;
    const char *t = h + s;
    size_t n = i - s;
    switch (t[0]) {
    case 'W': w = parse_uint(t + 1, n - 1); break;
    case 'H': ht = parse_uint(t + 1, n - 1); break;
    case 'F':
      if (parse_ratio(t + 1, n - 1, &fn, &fd) < 0 || fn < 1 || fd < 1) return HD_EPROTO;
      break;
    case 'I':
      if (n != 2) return HD_EPROTO;
      if (t[1] == 'm') return HD_EUNSUPPORTED; /* per-frame interlacing changes the layout story */
      break;
    case 'C':
      if (!tok_is(t, n, "C420") && !tok_is(t, n, "C420jpeg") && !tok_is(t, n, "C420paldv") &&
          !tok_is(t, n, "C420mpeg2"))
        return HD_EUNSUPPORTED;
      break;
    default: break; /* A (aspect), X (extensions): irrelevant to the samples */
    }
  }
  if (w < 1 || ht < 1 || w > HD_I420_MAX_DIM || ht > HD_I420_MAX_DIM) return HD_EPROTO;
  info->width = (int)w;
  info->height = (int)ht;
  info->fps_num = fn;
  info->fps_den = fd;
  info->header_len = hl + 1;
  info->frame_size = hd_i420_size((int)w, (int)ht);
  return 0;
}

int hd_y4m_parse_frame(const uint8_t *buf, size_t len, const hd_y4m_info_t *info, hd_i420_t *f) {
  if (!buf || !info || !f || !info->frame_size) return HD_EINVAL;
  size_t lim = len < HD_Y4M_HEADER_MAX ? len : HD_Y4M_HEADER_MAX;
  if (lim < 5) return memcmp(buf, "FRAME", lim) == 0 ? HD_ETRUNC : HD_EPROTO;
  if (memcmp(buf, "FRAME", 5) != 0) return HD_EPROTO;
  const uint8_t *nl = memchr(buf, '\n', lim);
  if (!nl) return len < HD_Y4M_HEADER_MAX ? HD_ETRUNC : HD_EPROTO;
  size_t hl = (size_t)(nl - buf) + 1;
  if (hl > 6 && buf[5] != ' ') return HD_EPROTO;
  if (len - hl < info->frame_size) return HD_ETRUNC;
  int rc = hd_i420_wrap(f, buf + hl, info->frame_size, info->width, info->height);
  if (rc < 0) return rc;
  return (int)(hl + info->frame_size);
}

int hd_y4m_frame_write(const hd_i420_t *f, uint8_t *out, size_t cap) {
  if (!f || !out) return HD_EINVAL;
  size_t n = hd_i420_size(f->width, f->height);
  if (!n) return HD_EINVAL;
  if (cap < 6 || cap - 6 < n) return HD_ENOSPC;
  memcpy(out, "FRAME\n", 6);
  int rc = hd_i420_pack(f, out + 6, cap - 6);
  return rc < 0 ? rc : rc + 6;
}

/* ---- IVF ---- */

int hd_ivf_header_write(uint8_t *out, size_t cap, int width, int height, uint32_t rate, uint32_t scale,
                        uint32_t frames) {
  if (!out || width < 1 || height < 1 || width > 65535 || height > 65535 || rate == 0 || scale == 0)
    return HD_EINVAL;
  if (cap < HD_IVF_HEADER_LEN) return HD_ENOSPC;
  memcpy(out, "DKIF", 4);
  put16(out + 4, 0);
  put16(out + 6, HD_IVF_HEADER_LEN);
  memcpy(out + 8, "VP80", 4);
  put16(out + 12, (uint16_t)width);
  put16(out + 14, (uint16_t)height);
  put32(out + 16, rate);
  put32(out + 20, scale);
  put32(out + 24, frames);
  put32(out + 28, 0);
  return HD_IVF_HEADER_LEN;
}

int hd_ivf_frame_header_write(uint8_t *out, size_t cap, uint32_t frame_size, uint64_t pts) {
  if (!out || frame_size > HD_IVF_MAX_FRAME) return HD_EINVAL;
  if (cap < HD_IVF_FRAME_HEADER_LEN) return HD_ENOSPC;
  put32(out, frame_size);
  put32(out + 4, (uint32_t)pts);
  put32(out + 8, (uint32_t)(pts >> 32));
  return HD_IVF_FRAME_HEADER_LEN;
}

int hd_ivf_parse_header(const uint8_t *buf, size_t len, hd_ivf_info_t *info) {
  if (!buf || !info) return HD_EINVAL;
  memset(info, 0, sizeof(*info));
  if (len < HD_IVF_HEADER_LEN) return HD_ETRUNC;
  if (memcmp(buf, "DKIF", 4) != 0 || le16(buf + 4) != 0 || le16(buf + 6) < HD_IVF_HEADER_LEN)
    return HD_EPROTO;
  memcpy(info->fourcc, buf + 8, 4);
  info->fourcc[4] = 0;
  info->width = le16(buf + 12);
  info->height = le16(buf + 14);
  info->rate = le32(buf + 16);
  info->scale = le32(buf + 20);
  info->frames = le32(buf + 24);
  info->header_len = le16(buf + 6);
  if (info->header_len > len) return HD_ETRUNC;
  return 0;
}

int hd_ivf_parse_frame(const uint8_t *buf, size_t len, const uint8_t **data, size_t *size, uint64_t *pts) {
  if (!buf || !data || !size || !pts) return HD_EINVAL;
  if (len < HD_IVF_FRAME_HEADER_LEN) return HD_ETRUNC;
  uint32_t sz = le32(buf);
  if (sz > HD_IVF_MAX_FRAME) return HD_EPROTO;
  if (len - HD_IVF_FRAME_HEADER_LEN < sz) return HD_ETRUNC;
  *data = buf + HD_IVF_FRAME_HEADER_LEN;
  *size = sz;
  *pts = (uint64_t)le32(buf + 4) | ((uint64_t)le32(buf + 8) << 32);
  return (int)(HD_IVF_FRAME_HEADER_LEN + sz);
}
