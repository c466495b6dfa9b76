/* VP8 encoder/decoder wrapper (RFC 6386) over libvpx, configured for real-time
 * communication: one-pass CBR, no lag (one frame in, one frame out), error
 * resilient mode (so a decoder can continue after a lost non-reference
 * frame), speed tuned for real time. The bitrate follows bandwidth estimation
 * at runtime and a keyframe can be forced when a receiver asks (PLI/FIR).
 *
 * The encoder consumes hd_i420_t pictures and produces one compressed frame
 * per call; the decoder turns compressed frames back into I420. Pure
 * transforms: no I/O, no clock (timestamps are whatever the caller passes). */
#ifndef HD_MEDIA_VP8_CODEC_H
#define HD_MEDIA_VP8_CODEC_H
#include <stddef.h>
#include <stdint.h>

#include "media/i420.h"

typedef struct {
  int width, height;   /* 2..HD_I420_MAX_DIM */
  int fps;             /* nominal frame rate (rate control), 1..240 */
  int bitrate;         /* target bits/s, >= 10000 */
  int keyframe_max;    /* at most this many frames between keyframes; 0 = only on request */
  int cpu_used;        /* libvpx speed -16..16 (higher = faster, lower quality) */
  int threads;         /* encoder threads, 1..16 */
  int allow_drop;      /* 1: rate control may skip frames under pressure */
  int error_resilient; /* 1 (default): VPX_ERROR_RESILIENT_DEFAULT */
} hd_vp8_enc_config_t;

typedef struct {
  struct hd_vp8_enc_impl *impl;
  int width, height;
  int64_t frames_in, frames_out, keyframes_out;
} hd_vp8_enc_t;

typedef struct {
  struct hd_vp8_dec_impl *impl;
  int64_t frames_out, errors;
} hd_vp8_dec_t;

/* Defaults: 640x360, 30 fps, 500 kb/s, keyframe_max 0 (on request; a WebRTC
 * receiver asks with PLI), cpu_used 8, 1 thread, allow_drop 0, error resilient. */
void hd_vp8_enc_config_default(hd_vp8_enc_config_t *c);

/* Creates an encoder. HD_EINVAL on a bad config, HD_ENOMEM, HD_EUNSUPPORTED if
 * libvpx refuses it. */
int hd_vp8_enc_init(hd_vp8_enc_t *e, const hd_vp8_enc_config_t *c);
void hd_vp8_enc_free(hd_vp8_enc_t *e);

/* Changes the target bitrate (bits/s, >= 10000) from the next frame. 0 or HD_EINVAL. */
int hd_vp8_enc_set_bitrate(hd_vp8_enc_t *e, int bps);
/* Makes the next encoded frame a keyframe. */
void hd_vp8_enc_force_keyframe(hd_vp8_enc_t *e);

/* Encodes one picture (its size must equal the configured size). pts is the
 * picture's index in 1/fps units (any increasing count works; the caller keeps
 * the RTP timestamp itself). Writes the compressed frame to
 * out and sets *keyframe. Returns the frame length, 0 when rate control
 * dropped the frame (only with allow_drop), HD_ENOSPC when cap is too small,
 * HD_EINVAL on a size mismatch, HD_EPROTO if libvpx fails. */
int hd_vp8_encode(hd_vp8_enc_t *e, const hd_i420_t *pic, int64_t pts, uint8_t *out, size_t cap,
                  int *keyframe);

/* Creates a decoder (1 thread). HD_ENOMEM / HD_EUNSUPPORTED. */
int hd_vp8_dec_init(hd_vp8_dec_t *d);
void hd_vp8_dec_free(hd_vp8_dec_t *d);

/* Decodes one compressed frame. On 1, *out is a view of the decoded picture,
 * lent until the next decode/free. Returns 1 (picture out), 0 (no picture,
 * e.g. an invisible altref frame), HD_EPROTO on a corrupt frame (the caller
 * should request a keyframe), HD_EINVAL on bad arguments. */
int hd_vp8_decode(hd_vp8_dec_t *d, const uint8_t *frame, size_t len, hd_i420_t *out);

/* Bitstream helpers (RFC 6386 §9.1): 1 if the compressed frame is a keyframe,
 * 0 if an interframe, HD_ETRUNC/HD_EPROTO when too short / bad start code. */
int hd_vp8_frame_is_keyframe(const uint8_t *frame, size_t len);
/* Dimensions from a keyframe header; HD_EPROTO if not a keyframe. */
int hd_vp8_keyframe_size(const uint8_t *frame, size_t len, int *w, int *h);

#endif
