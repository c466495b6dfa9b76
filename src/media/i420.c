/* I420 picture helpers (see i420.h). */
#include "media/i420.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

static int dims_ok(int w, int h) { return w >= 1 && h >= 1 && w <= HD_I420_MAX_DIM && h <= HD_I420_MAX_DIM; }

size_t hd_i420_size(int w, int h) {
  if (!dims_ok(w, h)) return 0;
  size_t cw = (size_t)hd_i420_chroma(w), ch = (size_t)hd_i420_chroma(h);
  return (size_t)w * (size_t)h + 2 * cw * ch;
}

static void set_packed(hd_i420_t *f, uint8_t *buf, int w, int h) {
  int cw = hd_i420_chroma(w), ch = hd_i420_chroma(h);
  f->width = w;
  f->height = h;
  f->plane[0] = buf;
  f->plane[1] = buf + (size_t)w * (size_t)h;
  f->plane[2] = f->plane[1] + (size_t)cw * (size_t)ch;
  f->stride[0] = w;
  f->stride[1] = cw;
  f->stride[2] = cw;
}

int hd_i420_alloc(hd_i420_t *f, int w, int h) {
  if (!f) return HD_EINVAL;
  memset(f, 0, sizeof(*f));
  size_t n = hd_i420_size(w, h);
  if (!n) return HD_EINVAL;
  uint8_t *buf = malloc(n);
  if (!buf) return HD_ENOMEM;
  set_packed(f, buf, w, h);
  memset(buf, 0, (size_t)w * (size_t)h);
  memset(f->plane[1], 128, n - (size_t)w * (size_t)h);
  f->buf = buf;
  return 0;
}

void hd_i420_free(hd_i420_t *f) {
  if (!f) return;
  free(f->buf);
  memset(f, 0, sizeof(*f));
}

int hd_i420_wrap(hd_i420_t *f, const uint8_t *buf, size_t len, int w, int h) {
  size_t n = hd_i420_size(w, h);
  if (!f || !buf || !n) return HD_EINVAL;
  if (len < n) return HD_ETRUNC;
  memset(f, 0, sizeof(*f));
  set_packed(f, (uint8_t *)buf, w, h); /* a view: the caller promises not to write through it */
  return 0;
}

static int plane_w(const hd_i420_t *f, int p) { return p ? hd_i420_chroma(f->width) : f->width; }
static int plane_h(const hd_i420_t *f, int p) { return p ? hd_i420_chroma(f->height) : f->height; }

int hd_i420_copy(hd_i420_t *dst, const hd_i420_t *src) {
  if (!dst || !src || dst->width != src->width || dst->height != src->height ||
      !dims_ok(src->width, src->height))
    return HD_EINVAL;
  for (int p = 0; p < 3; p++)
    for (int y = 0; y < plane_h(src, p); y++)
      memcpy(dst->plane[p] + (size_t)y * (size_t)dst->stride[p],
             src->plane[p] + (size_t)y * (size_t)src->stride[p], (size_t)plane_w(src, p));
  return 0;
}

int hd_i420_pack(const hd_i420_t *f, uint8_t *out, size_t cap) {
  if (!f || !out) return HD_EINVAL;
  size_t n = hd_i420_size(f->width, f->height);
  if (!n) return HD_EINVAL;
  if (cap < n) return HD_ENOSPC;
  size_t off = 0;
  for (int p = 0; p < 3; p++)
    for (int y = 0; y < plane_h(f, p); y++) {
      memcpy(out + off, f->plane[p] + (size_t)y * (size_t)f->stride[p], (size_t)plane_w(f, p));
      off += (size_t)plane_w(f, p);
    }
  return (int)n;
}

double hd_i420_psnr(const hd_i420_t *a, const hd_i420_t *b) {
  if (!a || !b || a->width != b->width || a->height != b->height || !dims_ok(a->width, a->height))
    return -1.0;
  double sse = 0;
  double count = 0;
  for (int p = 0; p < 3; p++) {
    int w = plane_w(a, p), h = plane_h(a, p);
    for (int y = 0; y < h; y++) {
      const uint8_t *ra = a->plane[p] + (size_t)y * (size_t)a->stride[p];
      const uint8_t *rb = b->plane[p] + (size_t)y * (size_t)b->stride[p];
      for (int x = 0; x < w; x++) {
        int d = ra[x] - rb[x];
        sse += (double)(d * d);
      }
    }
    count += (double)w * h;
  }
  if (sse <= 0) return 99.0;
  double psnr = 10.0 * log10(255.0 * 255.0 * count / sse);
  return psnr > 99.0 ? 99.0 : psnr;
}

int hd_i420_half(hd_i420_t *dst, const hd_i420_t *src) {
  if (!dst || !src || src->width < 4 || src->height < 4 || dst->width != src->width / 2 ||
      dst->height != src->height / 2)
    return HD_EINVAL;
  for (int p = 0; p < 3; p++) {
    int dw = p ? hd_i420_chroma(dst->width) : dst->width, dh = p ? hd_i420_chroma(dst->height) : dst->height;
    int sw = p ? hd_i420_chroma(src->width) : src->width, sh = p ? hd_i420_chroma(src->height) : src->height;
    for (int y = 0; y < dh; y++) {
      const uint8_t *r0 = src->plane[p] + (size_t)(2 * y < sh ? 2 * y : sh - 1) * (size_t)src->stride[p];
      const uint8_t *r1 =
          src->plane[p] + (size_t)(2 * y + 1 < sh ? 2 * y + 1 : sh - 1) * (size_t)src->stride[p];
      uint8_t *o = dst->plane[p] + (size_t)y * (size_t)dst->stride[p];
      for (int x = 0; x < dw; x++) {
        int x0 = 2 * x < sw ? 2 * x : sw - 1, x1 = 2 * x + 1 < sw ? 2 * x + 1 : sw - 1;
        o[x] = (uint8_t)((r0[x0] + r0[x1] + r1[x0] + r1[x1] + 2) / 4);
      }
    }
  }
  return 0;
}
