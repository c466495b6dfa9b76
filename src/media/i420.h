/* Planar YUV 4:2:0 (I420) picture: the raw video format shared by the VP8
 * wrapper, the test-signal generator/reader and the Y4M reader/writer.
 *
 * A hd_i420_t is either a view (plane pointers into someone else's memory,
 * e.g. a decoder's output or a Y4M buffer) or owns its storage (made by
 * hd_i420_alloc, released by hd_i420_free). Chroma planes are
 * ceil(w/2) x ceil(h/2). */
#ifndef HD_MEDIA_I420_H
#define HD_MEDIA_I420_H
#include <stddef.h>
#include <stdint.h>

/* Largest width/height accepted anywhere in src/media (a cap, not a codec limit). */
#define HD_I420_MAX_DIM 4096

typedef struct {
  int width, height;
  uint8_t *plane[3]; /* Y, U, V */
  int stride[3];     /* bytes per row of each plane */
  uint8_t *buf;      /* owned storage (hd_i420_alloc), NULL for a view */
} hd_i420_t;

/* Chroma plane dimension for a luma dimension n: (n + 1) / 2. */
static inline int hd_i420_chroma(int n) { return (n + 1) / 2; }
/* Downscales src by 2 in each direction into dst (2x2 box filter), which must
 * be src->width/2 x src->height/2 (src at least 4x4). 0 or HD_EINVAL. */
int hd_i420_half(hd_i420_t *dst, const hd_i420_t *src);
/* Bytes of a tightly packed I420 picture (Y then U then V, no row padding),
 * 0 when w/h is outside 1..HD_I420_MAX_DIM. */
size_t hd_i420_size(int w, int h);

/* Allocates a tightly packed w x h picture (strides = plane widths), zeroed
 * luma and neutral (128) chroma. HD_EINVAL on bad dimensions, HD_ENOMEM. */
int hd_i420_alloc(hd_i420_t *f, int w, int h);
/* Releases storage from hd_i420_alloc; a view is only cleared. NULL-safe. */
void hd_i420_free(hd_i420_t *f);

/* Makes f a view over a tightly packed I420 buffer of hd_i420_size(w, h) bytes.
 * HD_EINVAL on bad dimensions, HD_ETRUNC if len is too small. */
int hd_i420_wrap(hd_i420_t *f, const uint8_t *buf, size_t len, int w, int h);

/* Copies src's pixels into dst (same dimensions, any strides). HD_EINVAL on a
 * size mismatch. */
int hd_i420_copy(hd_i420_t *dst, const hd_i420_t *src);

/* Writes the picture tightly packed into out. Returns bytes written
 * (hd_i420_size), HD_ENOSPC when cap is too small. */
int hd_i420_pack(const hd_i420_t *f, uint8_t *out, size_t cap);

/* PSNR in dB over all three planes (sum of squared errors over all samples,
 * peak 255). Identical pictures give 99.0 (a cap, not infinity); a size
 * mismatch gives -1.0. */
double hd_i420_psnr(const hd_i420_t *a, const hd_i420_t *b);

#endif
