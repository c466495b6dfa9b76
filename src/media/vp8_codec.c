/* VP8 wrapper over libvpx (RFC 6386; see vp8_codec.h). The encoder settings
 * follow what libwebrtc uses for real-time VP8: CBR, lag 0, error resilient,
 * static threshold and speed for low CPU, undershoot/overshoot tuned for RTC. */
#include "media/vp8_codec.h"

#include <stdlib.h>
#include <string.h>
#include <vpx/vp8cx.h>
#include <vpx/vp8dx.h>
#include <vpx/vpx_decoder.h>
#include <vpx/vpx_encoder.h>

#include "base/err.h"

struct hd_vp8_enc_impl {
  vpx_codec_ctx_t ctx;
  vpx_codec_enc_cfg_t cfg;
  vpx_image_t img; /* wrapper whose plane pointers we point at the caller's picture */
  int force_key;
};

struct hd_vp8_dec_impl {
  vpx_codec_ctx_t ctx;
};

void hd_vp8_enc_config_default(hd_vp8_enc_config_t *c) {
  memset(c, 0, sizeof(*c));
  c->width = 640;
  c->height = 360;
  c->fps = 30;
  c->bitrate = 500000;
  c->keyframe_max = 0;
  c->cpu_used = 8;
  c->threads = 1;
  c->allow_drop = 0;
  c->error_resilient = 1;
}

int hd_vp8_enc_init(hd_vp8_enc_t *e, const hd_vp8_enc_config_t *c) {
  if (!e || !c) return HD_EINVAL;
  memset(e, 0, sizeof(*e));
  if (c->width < 2 || c->height < 2 || c->width > HD_I420_MAX_DIM || c->height > HD_I420_MAX_DIM ||
      c->fps < 1 || c->fps > 240 || c->bitrate < 10000 || c->keyframe_max < 0 || c->cpu_used < -16 ||
      c->cpu_used > 16 || c->threads < 1 || c->threads > 16)
    return HD_EINVAL;
  struct hd_vp8_enc_impl *im = calloc(1, sizeof(*im));
  if (!im) return HD_ENOMEM;
  int rc = HD_EUNSUPPORTED;
  if (vpx_codec_enc_config_default(vpx_codec_vp8_cx(), &im->cfg, 0) != VPX_CODEC_OK) goto fail;
  vpx_codec_enc_cfg_t *cfg = &im->cfg;
  cfg->g_w = (unsigned)c->width;
  cfg->g_h = (unsigned)c->height;
  cfg->g_timebase.num = 1;
  cfg->g_timebase.den = c->fps;
  cfg->g_threads = (unsigned)c->threads;
  cfg->g_lag_in_frames = 0; /* real time: no look-ahead */
  cfg->g_pass = VPX_RC_ONE_PASS;
  cfg->g_error_resilient = c->error_resilient ? VPX_ERROR_RESILIENT_DEFAULT : 0;
  cfg->rc_end_usage = VPX_CBR;
  cfg->rc_target_bitrate = (unsigned)(c->bitrate / 1000);
  cfg->rc_min_quantizer = 2;
  cfg->rc_max_quantizer = 56;
  cfg->rc_undershoot_pct = 100;
  cfg->rc_overshoot_pct = 15;
  cfg->rc_buf_initial_sz = 500;
  cfg->rc_buf_optimal_sz = 600;
  cfg->rc_buf_sz = 1000;
  cfg->rc_dropframe_thresh = c->allow_drop ? 30 : 0;
  cfg->rc_resize_allowed = 0;
  if (c->keyframe_max > 0) {
    cfg->kf_mode = VPX_KF_AUTO;
    cfg->kf_min_dist = 0;
    cfg->kf_max_dist = (unsigned)c->keyframe_max;
  } else {
    cfg->kf_mode = VPX_KF_DISABLED; /* keyframes only on request (and the first) */
  }
  if (vpx_codec_enc_init(&im->ctx, vpx_codec_vp8_cx(), cfg, 0) != VPX_CODEC_OK) goto fail;
  if (vpx_codec_control(&im->ctx, VP8E_SET_CPUUSED, c->cpu_used) != VPX_CODEC_OK ||
      vpx_codec_control(&im->ctx, VP8E_SET_STATIC_THRESHOLD, 1) != VPX_CODEC_OK ||
      vpx_codec_control(&im->ctx, VP8E_SET_NOISE_SENSITIVITY, 0) != VPX_CODEC_OK ||
      vpx_codec_control(&im->ctx, VP8E_SET_TOKEN_PARTITIONS, VP8_ONE_TOKENPARTITION) != VPX_CODEC_OK ||
      vpx_codec_control(&im->ctx, VP8E_SET_MAX_INTRA_BITRATE_PCT, 300) != VPX_CODEC_OK) {
    vpx_codec_destroy(&im->ctx);
    goto fail;
  }
  e->impl = im;
  e->width = c->width;
  e->height = c->height;
  return 0;
fail:
  free(im);
  return rc;
}

void hd_vp8_enc_free(hd_vp8_enc_t *e) {
  if (!e || !e->impl) return;
  vpx_codec_destroy(&e->impl->ctx);
  free(e->impl);
  e->impl = NULL;
}

int hd_vp8_enc_set_bitrate(hd_vp8_enc_t *e, int bps) {
  if (!e || !e->impl || bps < 10000) return HD_EINVAL;
  e->impl->cfg.rc_target_bitrate = (unsigned)(bps / 1000);
  return vpx_codec_enc_config_set(&e->impl->ctx, &e->impl->cfg) == VPX_CODEC_OK ? 0 : HD_EINVAL;
}

void hd_vp8_enc_force_keyframe(hd_vp8_enc_t *e) {
  if (e && e->impl) e->impl->force_key = 1;
}

int hd_vp8_encode(hd_vp8_enc_t *e, const hd_i420_t *pic, int64_t pts, uint8_t *out, size_t cap,
                  int *keyframe) {
  if (!e || !e->impl || !pic || !out || !keyframe) return HD_EINVAL;
  if (pic->width != e->width || pic->height != e->height) return HD_EINVAL;
  struct hd_vp8_enc_impl *im = e->impl;
  vpx_image_t *img = &im->img;
  /* Wrap the caller's planes without copying; libvpx only reads them. */
  if (!vpx_img_wrap(img, VPX_IMG_FMT_I420, (unsigned)pic->width, (unsigned)pic->height, 1, pic->plane[0]))
    return HD_EINVAL;
  for (int p = 0; p < 3; p++) {
    img->planes[p] = pic->plane[p];
    img->stride[p] = pic->stride[p];
  }
  vpx_enc_frame_flags_t flags = im->force_key ? VPX_EFLAG_FORCE_KF : 0;
  e->frames_in++;
  if (vpx_codec_encode(&im->ctx, img, pts, 1, flags, VPX_DL_REALTIME) != VPX_CODEC_OK) return HD_EPROTO;
  im->force_key = 0;
  const vpx_codec_cx_pkt_t *pkt;
  vpx_codec_iter_t iter = NULL;
  size_t len = 0;
  int key = 0, nospc = 0;
  /* Lag 0 and no partition output: at most one frame packet per call. Drain all
   * anyway so the iterator is left empty. */
  while ((pkt = vpx_codec_get_cx_data(&im->ctx, &iter)) != NULL) {
    if (pkt->kind != VPX_CODEC_CX_FRAME_PKT) continue;
    if (len + pkt->data.frame.sz > cap) {
      nospc = 1;
      continue;
    }
    memcpy(out + len, pkt->data.frame.buf, pkt->data.frame.sz);
    len += pkt->data.frame.sz;
    if (pkt->data.frame.flags & VPX_FRAME_IS_KEY) key = 1;
  }
  if (nospc) {
    im->force_key = 1; /* the lost frame broke the chain: start over cleanly */
    return HD_ENOSPC;
  }
  if (len == 0) return 0;
  e->frames_out++;
  if (key) e->keyframes_out++;
  *keyframe = key;
  return (int)len;
}

int hd_vp8_dec_init(hd_vp8_dec_t *d) {
  if (!d) return HD_EINVAL;
  memset(d, 0, sizeof(*d));
  struct hd_vp8_dec_impl *im = calloc(1, sizeof(*im));
  if (!im) return HD_ENOMEM;
  vpx_codec_dec_cfg_t cfg = {.threads = 1, .w = 0, .h = 0};
  if (vpx_codec_dec_init(&im->ctx, vpx_codec_vp8_dx(), &cfg, 0) != VPX_CODEC_OK) {
    free(im);
    return HD_EUNSUPPORTED;
  }
  d->impl = im;
  return 0;
}

void hd_vp8_dec_free(hd_vp8_dec_t *d) {
  if (!d || !d->impl) return;
  vpx_codec_destroy(&d->impl->ctx);
  free(d->impl);
  d->impl = NULL;
}

int hd_vp8_decode(hd_vp8_dec_t *d, const uint8_t *frame, size_t len, hd_i420_t *out) {
  if (!d || !d->impl || !frame || !out || len == 0 || len > UINT32_MAX) return HD_EINVAL;
  if (vpx_codec_decode(&d->impl->ctx, frame, (unsigned)len, NULL, 0) != VPX_CODEC_OK) {
    d->errors++;
    return HD_EPROTO;
  }
  vpx_codec_iter_t iter = NULL;
  vpx_image_t *img = vpx_codec_get_frame(&d->impl->ctx, &iter);
  if (!img) return 0;
  if (img->fmt != VPX_IMG_FMT_I420 || img->d_w < 1 || img->d_h < 1 || img->d_w > HD_I420_MAX_DIM ||
      img->d_h > HD_I420_MAX_DIM)
    return HD_EPROTO;
  memset(out, 0, sizeof(*out));
  out->width = (int)img->d_w;
  out->height = (int)img->d_h;
  for (int p = 0; p < 3; p++) {
    out->plane[p] = img->planes[p];
    out->stride[p] = img->stride[p];
  }
  d->frames_out++;
  return 1;
}

int hd_vp8_frame_is_keyframe(const uint8_t *frame, size_t len) {
  if (!frame || len < 3) return HD_ETRUNC;
  int key = !(frame[0] & 1); /* RFC 6386 §9.1: frame type bit, 0 = key frame */
  if (!key) return 0;
  if (len < 10) return HD_ETRUNC;
  if (frame[3] != 0x9d || frame[4] != 0x01 || frame[5] != 0x2a) return HD_EPROTO;
  return 1;
}

int hd_vp8_keyframe_size(const uint8_t *frame, size_t len, int *w, int *h) {
  int k = hd_vp8_frame_is_keyframe(frame, len);
  if (k < 0) return k;
  if (k == 0) return HD_EPROTO;
  /* 14-bit dimensions, top 2 bits are the scaling mode. */
  int ww = (frame[6] | (frame[7] << 8)) & 0x3fff;
  int hh = (frame[8] | (frame[9] << 8)) & 0x3fff;
  if (ww == 0 || hh == 0) return HD_EPROTO;
  if (w) *w = ww;
  if (h) *h = hh;
  return 0;
}
