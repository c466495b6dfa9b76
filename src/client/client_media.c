/* Media side of the SDK client (include/hudong/client.h), on the loop thread:
 *
 * - Local tracks: PCM in 20 ms frames -> Opus (in-band FEC, DTX; RFC 6716,
 *   RFC 7587 payload) -> RED (RFC 2198) where negotiated -> RTP; the FEC's
 *   expected loss and the RED depth follow the receiver's reports; I420 -> VP8
 *   (libvpx, real-time CBR) -> RFC 7741 packets -> RTP. A PLI/FIR from the
 *   node forces a keyframe; the video encoder's bitrate follows the send-rate
 *   event (the send-side estimate on the node's transport-wide feedback, or
 *   its REMB), capped by the config. Built-in sources (tone, test pattern with
 *   a frame counter) are clocked by the loop.
 * - Remote tracks (one per subscriber m-section): audio goes through the
 *   adaptive jitter buffer (media/audio_jitter: RED, FEC, PLC, time-stretched
 *   playout delay) and the Opus decoder on a 20 ms playout clock; video
 *   through the video jitter buffer (media/video_jitter: reorder, hold for
 *   NACK repair as long as the measured RTT says a retransmission can still
 *   come, PLI only when it cannot, temporal-layer skips, render pacing) and
 *   the VP8 decoder.
 * - Statistics per track, including DESIGN §6's stall rates: video freezes by
 *   the W3C freezeCount rule (an inter-frame gap >= max(3 x average interval,
 *   average + 150 ms)) and audio concealed time over played time. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "base/rand.h"
#include "client/client_internal.h"
#include "rtc/bwe.h"
#include "proto/rtcp.h"

#define VIDEO_MIN_BPS 50000
#define CATCHUP_US 200000
/* Below these targets the encoder gets half the pixels / half the frames:
 * VP8 at 640x360 under ~200 kbit/s is all blocks, and under ~100 kbit/s
 * even 320x180 at 30 fps is. Up again only 30% above, and a resolution
 * switch (a keyframe) at most every CL_ADAPT_HOLD_US. */
#define CL_HALF_RES_BPS 200000
#define CL_HALF_FPS_BPS 100000
#define CL_ADAPT_UP 1.3
#define CL_ADAPT_HOLD_US 5000000
/* Audio with all its RED copies takes at most this share of the send
 * estimate (cl_audio_base_bps) */
#define CL_AUDIO_SHARE_MAX 0.4

/* ---- local tracks ---- */

static void budget_video(hd_client_t *c, uint64_t bps);

int cl_local_init(hd_client_t *c, int i, const hd_client_publish_t *o) {
  cl_local_t *l = &c->local[i];
  cl_local_free(l);
  l->opt = *o;
  snprintf(l->source, sizeof l->source, "%s",
           o->source && o->source[0]    ? o->source
           : o->kind == HD_CLIENT_AUDIO ? "microphone"
                                        : "camera");
  l->opt.source = l->source;
  snprintf(l->cid, sizeof l->cid, "%c%d-%04x", o->kind == HD_CLIENT_AUDIO ? 'a' : 'v', i,
           (unsigned)(hd_random_u32() & 0xffff));
  int rc = 0;
  if (o->kind == HD_CLIENT_AUDIO) {
    if (!l->opt.channels) l->opt.channels = 1;
    if (l->opt.tone_hz <= 0) l->opt.tone_hz = 440;
    hd_opus_enc_config_t oc;
    hd_opus_enc_config_default(&oc);
    oc.channels = l->opt.channels;
    oc.bitrate = (int)c->cfg.audio_bps;
    oc.fec = 1;
    oc.expected_loss = HD_AUDIO_PROTECT_START_LOSS_PCT; /* until the first receiver report */
    oc.dtx = 1;
    if ((rc = hd_opus_enc_init(&l->opus, &oc)) < 0) goto fail;
    hd_opus_pay_init(&l->opay, hd_random_u32());
    if (o->from == HD_CLIENT_SOURCE_TONE &&
        (rc = hd_tone_init(&l->tone, l->opt.tone_hz, 8000, HD_OPUS_RATE, l->opt.channels)) < 0)
      goto fail;
    l->target_bps = c->cfg.audio_bps;
    hd_audio_protect_init(&l->protect, l->target_bps);
    l->red_depth = l->protect.red_depth;
    if (hd_opus_enc_set_bitrate(&l->opus, (int)l->protect.bps) == 0) l->target_bps = l->protect.bps;
    l->fec_loss_pct = oc.expected_loss;
  } else {
    if (!l->opt.width) l->opt.width = 640;
    if (!l->opt.height) l->opt.height = 360;
    if (!l->opt.fps) l->opt.fps = 30;
    /* the send-side estimator's start rate (rtc/bwe.h): starting above it
     * fills a narrow link's queue before the first feedback, and the
     * estimator then reads the overflow as random loss */
    if (!l->opt.bitrate_bps) l->opt.bitrate_bps = 300000;
    l->target_bps = l->opt.bitrate_bps < c->cfg.max_video_bps ? l->opt.bitrate_bps : c->cfg.max_video_bps;
    if (!(l->vout = malloc(CL_VIDEO_OUT_MAX))) {
      rc = HD_ENOMEM;
      goto fail;
    }
    if ((rc = hd_vp8_pay_init(&l->vpay, HD_PC_MAX_PAYLOAD, (uint16_t)hd_random_u32())) < 0) goto fail;
    if (o->h264) {
      if (!(l->hpay = malloc(sizeof *l->hpay))) {
        rc = HD_ENOMEM;
        goto fail;
      }
      if ((rc = hd_h264_pay_init(l->hpay, HD_PC_MAX_PAYLOAD)) < 0) goto fail;
    }
    if (o->from == HD_CLIENT_SOURCE_PATTERN &&
        (rc = hd_i420_alloc(&l->pattern, l->opt.width, l->opt.height)) < 0)
      goto fail;
    l->ts_base = hd_random_u32();
    /* off unless asked (hudong pub asks from 540p, docs/sdk.md "Simulcast") */
    if (l->opt.simulcast > 0 && !o->h264 && l->opt.width >= 64 && l->opt.height >= 64)
      l->sim_n = l->opt.height >= 540 ? 3 : 2;
    for (int k = 0; k < l->sim_n; k++) {
      struct cl_sim *y = &l->sim[k];
      y->active = y->force_key = 1;
      if ((rc = hd_vp8_pay_init(&y->pay, HD_PC_MAX_PAYLOAD, (uint16_t)hd_random_u32())) < 0) goto fail;
    }
    cl_sim_split(l);
  }
  l->used = 1;
  l->pc_track = -1;
  l->force_key = 1;
  if (!c->send_rate_bps) {
    /* Before the first estimate the pc's estimator assumes its start rate
     * (rtc/bwe.h): video gets what that leaves after audio, as it will once
     * the estimate comes. The configured video bitrate (300 kbit/s) beside
     * audio at its start-up RED depth (5 x ~26 kbit/s) put ~430 kbit/s on
     * the wire for the first feedback round trips; on a 300 kbit/s path that
     * filled the bottleneck queue and the first seconds of audio waited
     * behind it (unit/test_client_narrow_audio). */
    hd_bwe_config_t bc;
    hd_bwe_config_init(&bc);
    budget_video(c, bc.start_bps);
  }
  return 0;
fail:
  HD_LOGW("client", "publish: cannot set up the %s track: %s", l->source, hd_strerror(rc));
  cl_local_free(l);
  return rc;
}

void cl_local_free(cl_local_t *l) {
  for (int k = 0; k < HD_PC_MAX_LAYERS; k++) {
    if (l->sim[k].enc_ok) hd_vp8_enc_free(&l->sim[k].enc);
    hd_i420_free(&l->sim[k].pic);
  }
  hd_opus_enc_free(&l->opus);
  if (l->venc_ok) hd_vp8_enc_free(&l->vp8);
  free(l->vout);
  free(l->hpay);
  hd_i420_free(&l->pattern);
  hd_i420_free(&l->half);
  memset(l, 0, sizeof *l);
  l->pc_track = -1;
}

static int sendable(hd_client_t *c, const cl_local_t *l) {
  cl_session_t *s = c->s;
  return s && !s->closing && l->pc_track >= 0 && !l->muted && hd_pc_state(s->pc[0]) == HD_PC_CONNECTED;
}

/* RED (RFC 2198): the new frame as the primary after up to red_depth earlier
 * frames (those within red_depth frames of it: a DTX pause leaves nothing to
 * repeat), oldest first; the oldest go first when the packet would not fit.
 * Remembers the frame for the next packets. Returns the payload length. */
static int red_wrap(cl_local_t *l, const uint8_t *pkt, size_t n, uint32_t ts, uint8_t *out, size_t cap) {
  hd_red_block_t b[CL_RED_MAX + 1];
  int nb = 0;
  for (int back = l->red_depth; back >= 1; back--) {
    if (back > l->red_n) continue;
    int i = (l->red_pos - back + CL_RED_MAX) % CL_RED_MAX;
    uint32_t off = ts - l->red_ts[i];
    if (off == 0 || off > (uint32_t)l->red_depth * HD_OPUS_FRAME_SAMPLES || l->red_len[i] >= 1024) continue;
    b[nb++] = (hd_red_block_t){HD_PC_PT_OPUS, (uint16_t)off, l->red_hist[i], l->red_len[i]};
  }
  int first = 0, len;
  do {
    b[nb] = (hd_red_block_t){HD_PC_PT_OPUS, 0, pkt, n};
    len = hd_red_build(b + first, nb - first + 1, out, cap);
  } while (len == HD_ENOSPC && first++ < nb);
  memcpy(l->red_hist[l->red_pos], pkt, n);
  l->red_len[l->red_pos] = n;
  l->red_ts[l->red_pos] = ts;
  l->red_pos = (l->red_pos + 1) % CL_RED_MAX;
  if (l->red_n < CL_RED_MAX) l->red_n++;
  return len;
}

uint64_t cl_audio_base_bps(const hd_client_t *c) {
  /* audio_protect keeps all RED copies within 4x this: at most
   * CL_AUDIO_SHARE_MAX of the estimate. At 20% loss (RED depth 4) the
   * configured 32 kbit/s made 128 kbit/s of audio out of a ~200 kbit/s
   * estimate and left video at its floor, 15 fps (bench/weak_network) */
  uint64_t b = c->cfg.audio_bps;
  uint64_t cap = (uint64_t)((double)c->send_rate_bps * CL_AUDIO_SHARE_MAX / 4);
  if (c->send_rate_bps && cap < b) b = cap;
  return b < HD_AUDIO_PROTECT_MIN_BPS ? HD_AUDIO_PROTECT_MIN_BPS : b;
}

/* The receiver's report on what we send sets the Opus FEC's expected loss,
 * the RED depth and the Opus bitrate (rtc/audio_protect.h). */
void cl_audio_adapt(cl_local_t *l, double fraction_lost, uint64_t base_bps) {
  if (hd_audio_protect_report(&l->protect, fraction_lost, base_bps) != 1) return;
  const hd_audio_protect_t *p = &l->protect;
  l->red_depth = p->red_depth;
  if (p->fec_loss_pct != l->fec_loss_pct && hd_opus_enc_set_fec(&l->opus, 1, p->fec_loss_pct) == 0)
    l->fec_loss_pct = p->fec_loss_pct;
  if (p->bps != l->target_bps && hd_opus_enc_set_bitrate(&l->opus, (int)p->bps) == 0) l->target_bps = p->bps;
}

static void encode_audio(hd_client_t *c, cl_local_t *l, hd_time_t now) {
  if (!sendable(c, l)) return;
  uint8_t pkt[HD_OPUS_MAX_PACKET];
  int n = hd_opus_encode(&l->opus, l->abuf, pkt, sizeof pkt);
  if (n <= 0) return;
  uint32_t ts;
  int marker;
  if (hd_opus_pay_frame(&l->opay, pkt, (size_t)n, HD_OPUS_FRAME_SAMPLES, &ts, &marker) != 1) return;
  double rms = hd_pcm_rms(l->abuf, HD_OPUS_FRAME_SAMPLES, l->opt.channels);
  int level = rms < 1 ? 127 : (int)(-20.0 * log10(rms / 32768.0));
  if (level < 0) level = 0;
  if (level > 127) level = 127;
  hd_pc_rtp_send_t p = {.track = l->pc_track,
                        .marker = marker,
                        .ts = ts,
                        .payload = pkt,
                        .len = (size_t)n,
                        .audio_level = level,
                        .voice = level < 60};
  double fl;
  uint64_t reports;
  if (hd_pc_track_loss_report(c->s->pc[0], l->pc_track, &fl, &reports) == 0 && reports != l->reports_seen) {
    l->reports_seen = reports; /* a new receiver report: adapt at once, not at the next stats tick */
    cl_audio_adapt(l, fl, cl_audio_base_bps(c));
  }
  uint8_t red[HD_PC_MAX_PAYLOAD];
  uint8_t red_pt = hd_pc_track_red_pt(c->s->pc[0], l->pc_track);
  if (red_pt) {
    int len = red_wrap(l, pkt, (size_t)n, ts, red, sizeof red);
    if (len > 0) {
      p.pt = red_pt;
      p.payload = red;
      p.len = (size_t)len;
    }
  }
  if (hd_pc_send_rtp(c->s->pc[0], &p, now) == 0) l->frames++;
}

void cl_local_push_audio(hd_client_t *c, cl_local_t *l, const int16_t *pcm, size_t samples, hd_time_t now) {
  size_t ch = (size_t)l->opt.channels;
  while (samples) {
    size_t take = HD_OPUS_FRAME_SAMPLES - l->afill;
    if (take > samples) take = samples;
    memcpy(l->abuf + l->afill * ch, pcm, take * ch * sizeof(int16_t));
    l->afill += take;
    pcm += take * ch;
    samples -= take;
    if (l->afill == HD_OPUS_FRAME_SAMPLES) {
      encode_audio(c, l, now);
      l->afill = 0;
    }
  }
}

/* Picks resolution and frame rate for the current target (hysteresis). */
static void adapt_video(cl_local_t *l, hd_time_t now) {
  uint64_t t = l->target_bps;
  if (!l->half_fps && t < CL_HALF_FPS_BPS) l->half_fps = 1;
  if (l->half_fps && t > CL_HALF_FPS_BPS * CL_ADAPT_UP) l->half_fps = 0;
  if (l->adapt_at && now - l->adapt_at < CL_ADAPT_HOLD_US) return;
  int want = l->half_res;
  if (!l->half_res && t < CL_HALF_RES_BPS) want = 1;
  if (l->half_res && t > CL_HALF_RES_BPS * CL_ADAPT_UP) want = 0;
  if (want != l->half_res) {
    l->half_res = want;
    l->adapt_at = now;
  }
}

static const char *const SIM_RIDS3[] = {"q", "h", "f"}, *const SIM_RIDS2[] = {"h", "f"};
const char *const *cl_sim_rids(const cl_local_t *l) { return l->sim_n == 3 ? SIM_RIDS3 : SIM_RIDS2; }

void cl_sim_set_active(cl_local_t *l, const char *const *rids, int n) {
  const char *const *mine = cl_sim_rids(l);
  for (int k = 0; k < l->sim_n; k++) {
    int on = 0;
    for (int i = 0; i < n && !on; i++)
      on = !strcmp(rids[i], mine[k]);
    if (on && !l->sim[k].active) l->sim[k].force_key = 1; /* a resumed layer starts decodable */
    l->sim[k].active = on;
  }
  cl_sim_split(l);
}

static void send_frame(hd_client_t *c, cl_local_t *l, hd_vp8_pay_t *pay, const uint8_t *frame, size_t n,
                       int layer, hd_time_t now) {
  if (!l->t0) l->t0 = now;
  uint32_t ts = l->ts_base + (uint32_t)((uint64_t)(now - l->t0) * 9 / 100);
  if (hd_vp8_pay_begin(pay, frame, n) < 0) return;
  uint8_t buf[HD_PC_MAX_PAYLOAD];
  int marker, len;
  while ((len = hd_vp8_pay_next(pay, buf, sizeof buf, &marker)) > 0) {
    hd_pc_rtp_send_t p = {.track = l->pc_track,
                          .marker = marker,
                          .ts = ts,
                          .payload = buf,
                          .len = (size_t)len,
                          .audio_level = -1,
                          .layer = layer};
    hd_pc_send_rtp(c->s->pc[0], &p, now);
  }
}

/* Simulcast: layer k (of n, lowest first) gets the picture halved n-1-k
 * times and its share of the target (cl_apply_send_rate); a paused layer
 * costs no encoding at all. The single-stream adaptation (half resolution /
 * frame rate) does not apply: the node picks a lower layer instead. */
static void push_simulcast(hd_client_t *c, cl_local_t *l, const hd_i420_t *full, hd_time_t now) {
  const hd_i420_t *src[HD_PC_MAX_LAYERS];
  src[l->sim_n - 1] = full;
  for (int k = l->sim_n - 2; k >= 0; k--) {
    struct cl_sim *y = &l->sim[k];
    const hd_i420_t *up = src[k + 1];
    src[k] = NULL;
    if (!up || up->width < 32 || up->height < 32) continue;
    if (y->pic.width != up->width / 2 || y->pic.height != up->height / 2) {
      hd_i420_free(&y->pic);
      if (hd_i420_alloc(&y->pic, up->width / 2, up->height / 2) < 0) continue;
    }
    if (hd_i420_half(&y->pic, up) == 0) src[k] = &y->pic;
  }
  int64_t pts = l->pts++;
  for (int k = 0; k < l->sim_n; k++) {
    struct cl_sim *y = &l->sim[k];
    const hd_i420_t *pic = src[k];
    if (!pic || !y->active || y->starved) continue;
    if (y->enc_ok && (y->enc.width != pic->width || y->enc.height != pic->height)) {
      hd_vp8_enc_free(&y->enc);
      y->enc_ok = 0;
    }
    if (!y->enc_ok) {
      hd_vp8_enc_config_t vc;
      hd_vp8_enc_config_default(&vc);
      vc.width = pic->width;
      vc.height = pic->height;
      vc.fps = l->opt.fps;
      vc.bitrate = (int)(y->bps > VIDEO_MIN_BPS ? y->bps : VIDEO_MIN_BPS);
      vc.keyframe_max = l->opt.fps * 10;
      int rc = hd_vp8_enc_init(&y->enc, &vc);
      if (rc < 0) {
        HD_LOGW("client", "vp8 encoder %dx%d: %s", pic->width, pic->height, hd_strerror(rc));
        continue;
      }
      y->enc_ok = 1;
      y->force_key = 1;
    }
    if (y->force_key || l->force_key) hd_vp8_enc_force_keyframe(&y->enc);
    y->force_key = 0;
    int key = 0;
    int n = hd_vp8_encode(&y->enc, pic, pts, l->vout, CL_VIDEO_OUT_MAX, &key);
    if (n <= 0) continue;
    send_frame(c, l, &y->pay, l->vout, (size_t)n, k, now);
    y->frames++;
    l->keyframes += key != 0;
  }
  l->force_key = 0;
  l->frames++;
}

/* An H.264 access unit the application encoded (opt.h264): RFC 6184
 * packets (media/h264_pay.h) on the RTP clock of its pts, sent as is. No
 * keyframe can be forced: the receivers wait for the source's next IDR. */
void cl_local_push_h264(hd_client_t *c, cl_local_t *l, const uint8_t *au, size_t len, int64_t pts_us,
                        hd_time_t now) {
  if (!l->hpay || !sendable(c, l)) return;
  int key = hd_h264_annexb_has_idr(au, len);
  int n = key < 0 ? key : hd_h264_pay_begin(l->hpay, au, len);
  if (n < 0) {
    l->frames_skipped++;
    if (l->frames_skipped == 1) HD_LOGW("client", "H.264 push: access unit refused: %s", hd_strerror(n));
    return;
  }
  if (pts_us < 0) pts_us = now;
  if (!l->h264_have_pts0) {
    l->h264_have_pts0 = 1;
    l->h264_pts0 = pts_us;
  }
  if (pts_us < l->h264_pts0) { /* the source's clock went back (an RTMP reconnect): go on from here */
    l->ts_base += (uint32_t)((l->h264_last_pts - l->h264_pts0) * 9 / 100) + 3000;
    l->h264_pts0 = pts_us;
  }
  l->h264_last_pts = pts_us;
  uint32_t ts = l->ts_base + (uint32_t)((pts_us - l->h264_pts0) * 9 / 100);
  uint8_t buf[HD_PC_MAX_PAYLOAD];
  int marker, plen;
  while ((plen = hd_h264_pay_next(l->hpay, buf, sizeof buf, &marker)) > 0) {
    hd_pc_rtp_send_t p = {.track = l->pc_track,
                          .marker = marker,
                          .ts = ts,
                          .payload = buf,
                          .len = (size_t)plen,
                          .audio_level = -1,
                          .fixed_rate = 1}; /* the app's encoder sets its rate: not held by the pacer */
    hd_pc_send_rtp(c->s->pc[0], &p, now);
  }
  l->frames++;
  l->keyframes += key == 1;
}

void cl_local_push_video(hd_client_t *c, cl_local_t *l, const hd_i420_t *pic, hd_time_t now) {
  if (l->opt.h264) return; /* its frames come encoded (hd_client_push_h264) */
  if (!sendable(c, l)) {
    l->force_key = 1;
    return;
  }
  if (l->sim_n > 1 && hd_pc_track_layers(c->s->pc[0], l->pc_track) == l->sim_n) {
    push_simulcast(c, l, pic, now);
    return;
  }
  adapt_video(l, now);
  if (l->half_fps && !l->force_key && (l->counter_in++ & 1)) {
    l->frames_skipped++;
    l->pts++; /* the encoder's clock still advances: its rate control sees the real frame rate */
    return;
  }
  if (l->half_res && pic->width >= 4 && pic->height >= 4) {
    if (l->half.width != pic->width / 2 || l->half.height != pic->height / 2) {
      hd_i420_free(&l->half);
      if (hd_i420_alloc(&l->half, pic->width / 2, pic->height / 2) < 0) return;
    }
    if (hd_i420_half(&l->half, pic) == 0) pic = &l->half;
  }
  if (l->venc_ok && (l->vp8.width != pic->width || l->vp8.height != pic->height)) {
    hd_vp8_enc_free(&l->vp8);
    l->venc_ok = 0;
  }
  if (!l->venc_ok) {
    hd_vp8_enc_config_t vc;
    hd_vp8_enc_config_default(&vc);
    vc.width = pic->width;
    vc.height = pic->height;
    vc.fps = l->opt.fps;
    vc.bitrate = (int)(l->target_bps > VIDEO_MIN_BPS ? l->target_bps : VIDEO_MIN_BPS);
    vc.keyframe_max = l->opt.fps * 10; /* PLI-driven, with a safety net */
    int rc = hd_vp8_enc_init(&l->vp8, &vc);
    if (rc < 0) {
      HD_LOGW("client", "vp8 encoder %dx%d: %s", pic->width, pic->height, hd_strerror(rc));
      return;
    }
    l->venc_ok = 1;
    l->force_key = 1;
  }
  if (l->force_key) hd_vp8_enc_force_keyframe(&l->vp8);
  l->force_key = 0;
  int key = 0;
  int n = hd_vp8_encode(&l->vp8, pic, l->pts++, l->vout, CL_VIDEO_OUT_MAX, &key);
  if (n <= 0) return;
  if (!l->t0) l->t0 = now;
  uint32_t ts = l->ts_base + (uint32_t)((uint64_t)(now - l->t0) * 9 / 100);
  if (hd_vp8_pay_begin(&l->vpay, l->vout, (size_t)n) < 0) return;
  uint8_t buf[HD_PC_MAX_PAYLOAD];
  int marker, len;
  while ((len = hd_vp8_pay_next(&l->vpay, buf, sizeof buf, &marker)) > 0) {
    hd_pc_rtp_send_t p = {.track = l->pc_track,
                          .marker = marker,
                          .ts = ts,
                          .payload = buf,
                          .len = (size_t)len,
                          .audio_level = -1};
    hd_pc_send_rtp(c->s->pc[0], &p, now);
  }
  l->frames++;
  l->keyframes += key != 0;
}

void cl_local_sources(hd_client_t *c, hd_time_t now) {
  for (int i = 0; i < HD_CLIENT_MAX_LOCAL_TRACKS; i++) {
    cl_local_t *l = &c->local[i];
    if (!l->used || l->opt.from == HD_CLIENT_SOURCE_PUSH) continue;
    if (!l->next_frame || now - l->next_frame > CATCHUP_US) l->next_frame = now;
    if (l->opt.kind == HD_CLIENT_AUDIO) {
      while (l->next_frame <= now) {
        hd_tone_fill(&l->tone, l->abuf, HD_OPUS_FRAME_SAMPLES);
        encode_audio(c, l, now);
        l->next_frame += HD_OPUS_FRAME_MS * 1000;
      }
    } else if (l->next_frame <= now) {
      /* one picture per tick at most: a late loop skips frames, it does not burst */
      hd_test_pattern_draw(&l->pattern, l->counter++);
      cl_local_push_video(c, l, &l->pattern, now);
      l->next_frame += 1000000 / l->opt.fps;
      if (l->next_frame <= now) l->next_frame = now + 1000000 / l->opt.fps;
    }
  }
}

/* Simulcast: the track's target split over its active layers. First each
 * layer, lowest first, gets its floor (30 kbit/s up to 320x240, else 150):
 * below it VP8 cannot hold its rate at that size, so a layer whose floor
 * does not fit is not encoded (starved, as browsers drop their top layers;
 * the lowest always runs). Then the rest goes lowest first up to each
 * layer's cap by its size (200 kbit/s up to 320x240, 700 up to 640x360,
 * 1200 above: about what browsers give those sizes), the track's top
 * layer taking what remains. A layer keeps its cap while the layers above it are paused:
 * the node's allocator picks layers by their measured bitrate, and a low
 * layer grown to the whole estimate would no longer fit a narrow viewer. */
void cl_sim_split(cl_local_t *l) {
  uint64_t cap[HD_PC_MAX_LAYERS], min[HD_PC_MAX_LAYERS];
  for (int k = 0; k < l->sim_n; k++) {
    int shift = l->sim_n - 1 - k;
    long px = (long)(l->opt.width >> shift) * (l->opt.height >> shift);
    cap[k] = px <= 320 * 240 ? 200000 : px <= 640 * 360 ? 700000 : 1200000;
    min[k] = px <= 320 * 240 ? 30000 : 150000;
  }
  uint64_t left = l->target_bps, b[HD_PC_MAX_LAYERS] = {0};
  int top = -1;
  for (int k = 0; k < l->sim_n; k++) {
    struct cl_sim *y = &l->sim[k];
    int was = y->starved;
    /* 10 % above the floor to come back: a keyframe each time */
    uint64_t need = was ? min[k] + min[k] / 10 : min[k];
    y->starved = y->active && top >= 0 && left < need;
    if (!y->active || y->starved) continue;
    if (was) y->force_key = 1;
    b[k] = min[k];
    left = left > min[k] ? left - min[k] : 0;
    top = k;
  }
  for (int k = 0; k <= top; k++) {
    if (!b[k]) continue;
    /* only the track's own top layer goes past its cap: a lower layer that
     * is the highest sent (the ones above paused or starved) taking the
     * whole target grew past the budget of the narrow viewers it was left
     * for, and the node paused them (e2e/sdk_chromium) */
    uint64_t more = k == l->sim_n - 1 ? left : (left < cap[k] - b[k] ? left : cap[k] - b[k]);
    b[k] += more;
    left -= more;
  }
  for (int k = 0; k < l->sim_n; k++) {
    struct cl_sim *y = &l->sim[k];
    if (!b[k] || b[k] == y->bps) continue;
    y->bps = b[k];
    if (y->enc_ok) hd_vp8_enc_set_bitrate(&y->enc, (int)b[k]);
  }
}

/* Shares bps (the send estimate) between the video tracks, after audio with
 * its RED copies. */
static void budget_video(hd_client_t *c, uint64_t bps) {
  int nv = 0;
  int64_t audio = 0;
  for (int i = 0; i < HD_CLIENT_MAX_LOCAL_TRACKS; i++)
    if (c->local[i].used && !c->local[i].muted) {
      if (c->local[i].opt.kind == HD_CLIENT_VIDEO)
        nv++;
      else /* each RED copy costs the frame again (RFC 2198), at the Opus rate set now
            * (audio_adapt lowers it from RED depth 3: counting the configured
            * rate left video at its floor at 20% loss) */
        audio += (int64_t)(c->local[i].target_bps ? c->local[i].target_bps : c->cfg.audio_bps) *
                 (1 + (c->local[i].red_depth > 0 ? c->local[i].red_depth : 0));
    }
  if (!nv) return;
  /* leave ~10 % for RTP/SRTP headers, RTX and RTCP */
  int64_t avail = (int64_t)(bps * 9 / 10) - audio;
  int64_t per = avail / nv;
  if (per < VIDEO_MIN_BPS) per = VIDEO_MIN_BPS;
  for (int i = 0; i < HD_CLIENT_MAX_LOCAL_TRACKS; i++) {
    cl_local_t *l = &c->local[i];
    if (!l->used || l->opt.kind != HD_CLIENT_VIDEO) continue;
    uint64_t cap = l->opt.bitrate_bps > c->cfg.max_video_bps ? l->opt.bitrate_bps : c->cfg.max_video_bps;
    uint64_t t = (uint64_t)per < cap ? (uint64_t)per : cap;
    /* the estimate moves with every feedback: re-tune the encoder on a 5% change */
    if (t == l->target_bps || (t * 20 > l->target_bps * 19 && t * 20 < l->target_bps * 21)) continue;
    l->target_bps = t;
    if (l->venc_ok) hd_vp8_enc_set_bitrate(&l->vp8, (int)t);
    cl_sim_split(l);
  }
}

void cl_apply_send_rate(hd_client_t *c, uint64_t bps) {
  c->send_rate_bps = bps;
  budget_video(c, bps);
}

uint64_t cl_send_desired(const hd_client_t *c) {
  uint64_t video = 0, audio = 0;
  for (int i = 0; i < HD_CLIENT_MAX_LOCAL_TRACKS; i++) {
    const cl_local_t *l = &c->local[i];
    if (!l->used || l->muted) continue;
    if (l->opt.kind == HD_CLIENT_VIDEO)
      video += l->opt.bitrate_bps > c->cfg.max_video_bps ? l->opt.bitrate_bps : c->cfg.max_video_bps;
    else
      audio += (l->target_bps ? l->target_bps : c->cfg.audio_bps) *
               (uint64_t)(1 + (l->red_depth > 0 ? l->red_depth : 0));
  }
  if (!video) return 0;
  /* budget_video's inverse: the estimate at which every video track gets its
   * cap (it leaves 10 % for headers, RTX and RTCP, then audio) */
  return (video + audio) * 10 / 9;
}

/* ---- remote tracks ---- */

void cl_remote_free(cl_remote_t *r) {
  if (!r->used) return;
  if (r->kind == HD_PC_AUDIO) {
    hd_audio_jitter_free(&r->jb);
    hd_opus_dec_free(&r->dec);
  } else {
    hd_video_jb_free(&r->vjb);
    if (r->video_ok) hd_vp8_dec_free(&r->vdec);
    if (r->h264) hd_h264_reorder_free(r->h264);
    free(r->h264);
  }
  memset(r, 0, sizeof *r);
}

void cl_remotes_clear(hd_client_t *c) {
  for (int i = 0; i < HD_CLIENT_MAX_REMOTE_TRACKS; i++)
    cl_remote_free(&c->remote[i]);
}

static void remote_names(hd_client_t *c, cl_remote_t *r) {
  cl_session_t *s = c->s;
  if (r->track_sid[0] || !s) return;
  const hd_rtc_signal_sub_track_t *st =
      hd_rtc_signal_sub_track(s->sig, hd_pc_track_mid(s->pc[1], r->pc_track));
  if (!st) return;
  snprintf(r->track_sid, sizeof r->track_sid, "%s", st->track_sid);
  snprintf(r->participant_sid, sizeof r->participant_sid, "%s", st->participant_sid);
  const hd_rtc_signal_participant_t *p = hd_rtc_signal_find_participant(s->sig, st->participant_sid);
  if (p) snprintf(r->identity, sizeof r->identity, "%s", p->identity);
}

static cl_remote_t *remote_get(hd_client_t *c, int track, int kind) {
  cl_remote_t *freeslot = NULL;
  for (int i = 0; i < HD_CLIENT_MAX_REMOTE_TRACKS; i++) {
    cl_remote_t *r = &c->remote[i];
    if (r->used && r->pc_track == track) {
      if (r->kind == kind) {
        remote_names(c, r);
        return r;
      }
      cl_remote_free(r); /* the m-section was reused for another kind */
    }
    if (!r->used && !freeslot) freeslot = r;
  }
  if (!freeslot) return NULL;
  cl_remote_t *r = freeslot;
  memset(r, 0, sizeof *r);
  r->pc_track = track;
  r->kind = kind;
  if (kind == HD_PC_AUDIO) {
    if (hd_audio_jitter_init(&r->jb, NULL) < 0) return NULL;
    if (!c->cfg.no_decode && hd_opus_dec_init(&r->dec, 1) < 0) {
      hd_audio_jitter_free(&r->jb);
      return NULL;
    }
  } else {
    if (hd_video_jb_init(&r->vjb, NULL) < 0) return NULL;
    if (!c->cfg.no_decode) r->video_ok = hd_vp8_dec_init(&r->vdec) == 0;
  }
  r->used = 1;
  remote_names(c, r);
  return r;
}

/* One end-to-end delay sample of remote r: RTP timestamp ts played or
 * rendered at now, its capture time from the sender's latest SR (the node
 * passes the publisher's NTP time on in its own SRs). Without an SR yet,
 * nothing. */
static void e2e_sample(hd_client_t *c, cl_remote_t *r, uint32_t ts, hd_time_t now) {
  uint64_t ntp;
  uint32_t srts;
  if (!c->s || hd_pc_track_sr(c->s->pc[1], r->pc_track, &ntp, &srts) < 0) return;
  double clock = r->kind == HD_PC_AUDIO ? 48000.0 : 90000.0;
  hd_time_t cap =
      hd_rtcp_ntp_to_time(ntp, c->wall_offset) + (hd_time_t)((double)(int32_t)(ts - srts) * 1e6 / clock);
  hd_time_t d = now - cap;
  r->e2e = r->have_e2e ? r->e2e + (d - r->e2e) / 8 : d;
  r->have_e2e = 1;
  int64_t b = d / CL_E2E_BIN_US;
  if (b < 0) b = 0;
  if (b >= CL_E2E_BINS) b = CL_E2E_BINS - 1;
  r->e2e_hist[b]++;
  r->e2e_n++;
}

/* Median of r's end-to-end delay samples in ms (bin centre), -1 if none. */
static double e2e_median_ms(const cl_remote_t *r) {
  if (!r->e2e_n) return -1;
  uint64_t acc = 0;
  for (int b = 0; b < CL_E2E_BINS; b++) {
    acc += r->e2e_hist[b];
    if (2 * acc >= r->e2e_n) return (b + 0.5) * CL_E2E_BIN_US / 1000.0;
  }
  return -1;
}

/* Lip sync (media/av_sync.h): once a second, a video track and the audio of
 * the same participant are brought to the same end-to-end delay by holding
 * the one that is ahead in its jitter buffer. */
static void av_sync(hd_client_t *c, cl_remote_t *v, hd_time_t now) {
  if (!v->have_e2e || now < v->next_sync) return;
  v->next_sync = now + HD_SEC(1);
  for (int i = 0; i < HD_CLIENT_MAX_REMOTE_TRACKS; i++) {
    cl_remote_t *a = &c->remote[i];
    if (!a->used || a->kind != HD_PC_AUDIO || !a->have_e2e || strcmp(a->participant_sid, v->participant_sid))
      continue;
    if (hd_av_sync_update(&v->sync, a->e2e, v->e2e)) {
      hd_audio_jitter_set_sync_delay(&a->jb, v->sync.audio_extra);
      hd_video_jb_set_sync_delay(&v->vjb, v->sync.video_extra);
    }
    return;
  }
}

static void rendered(cl_remote_t *r, hd_time_t now) {
  r->frames++;
  if (!r->first_frame_at) r->first_frame_at = now;
  r->last_frame_at = now;
  hd_freeze_frame(&r->freeze, now);
}

static void drain_video(hd_client_t *c, cl_remote_t *r, hd_time_t now) {
  hd_video_jb_event_t ev;
  const hd_client_callbacks_t *cb = &c->cfg.cb;
  if (c->s) {
    /* hold-for-repair deadline from the NACK generator's measured round trip */
    int tr = r->pc_track;
    hd_pc_stats_t *ps = &c->vstats_scratch;
    hd_pc_stats(c->s->pc[1], ps);
    if (tr >= 0 && tr < ps->n_tracks && ps->tracks[tr].repair_rtt > 0)
      hd_video_jb_set_rtt(&r->vjb, ps->tracks[tr].repair_rtt);
    else if (ps->rtt > 0)
      hd_video_jb_set_rtt(&r->vjb, ps->rtt);
  }
  while (hd_video_jb_poll(&r->vjb, now, &ev) == 1) {
    if (ev.type == HD_VIDEO_JB_KEYFRAME_NEEDED) {
      if (c->s && hd_pc_request_keyframe(c->s->pc[1], r->pc_track, now) == 0) r->keyframe_requests++;
      continue;
    }
    if (c->cfg.encoded_frames && cb->on_encoded) {
      hd_client_encoded_frame_t f = {.track_sid = r->track_sid,
                                     .identity = r->identity,
                                     .kind = HD_CLIENT_VIDEO,
                                     .data = ev.frame.data,
                                     .len = ev.frame.len,
                                     .rtp_timestamp = ev.frame.ts,
                                     .keyframe = ev.frame.keyframe,
                                     .codec = "VP8"};
      if (c->s) f.have_sr = hd_pc_track_sr(c->s->pc[1], r->pc_track, &f.sr_ntp, &f.sr_rtp) == 0;
      cb->on_encoded(cb->ud, &f);
    }
    if (!r->video_ok) {
      r->frames_decoded++;
      if (ev.render)
        rendered(r, now);
      else
        r->frames_dropped++;
      continue;
    }
    hd_i420_t pic;
    int rc = hd_vp8_decode(&r->vdec, ev.frame.data, ev.frame.len, &pic);
    if (rc < 0) {
      hd_video_jb_request_keyframe(&r->vjb, now);
      r->frames_dropped++;
      continue;
    }
    if (rc == 0) continue;
    r->frames_decoded++;
    r->width = pic.width;
    r->height = pic.height;
    if (!ev.render) { /* due together with a later frame: decoded for its references, not shown */
      r->frames_dropped++;
      continue;
    }
    rendered(r, now);
    e2e_sample(c, r, ev.frame.ts, now);
    if (cb->on_video) {
      hd_client_video_frame_t f = {.track_sid = r->track_sid,
                                   .identity = r->identity,
                                   .width = pic.width,
                                   .height = pic.height,
                                   .rtp_timestamp = ev.frame.ts};
      for (int i = 0; i < 3; i++) {
        f.plane[i] = pic.plane[i];
        f.stride[i] = pic.stride[i];
      }
      cb->on_video(cb->ud, &f);
    }
  }
}

/* An H.264 track (cfg.accept_h264, the recorder): a reorder window that
 * puts late NACK repairs in place, then RFC 6184 depacketising straight to
 * on_encoded, no decoder and no VP8 jitter buffer; a loss the window gives up
 * on waits for the next IDR and asks for it (media/h264_reorder.h). */
static void h264_drain(hd_client_t *c, cl_remote_t *r, hd_time_t now) {
  hd_h264_au_t au;
  for (;;) {
    int rc = hd_h264_reorder_poll(r->h264, now, &au);
    if (hd_h264_reorder_take_key_request(r->h264) && c->s &&
        hd_pc_request_keyframe(c->s->pc[1], r->pc_track, now) == 0)
      r->keyframe_requests++;
    if (rc != 1) return;
    r->frames_decoded++; /* handed over whole (nothing decodes here) */
    rendered(r, now);
    const hd_client_callbacks_t *cb = &c->cfg.cb;
    if (!c->cfg.encoded_frames || !cb->on_encoded) continue;
    hd_client_encoded_frame_t f = {.track_sid = r->track_sid,
                                   .identity = r->identity,
                                   .kind = HD_CLIENT_VIDEO,
                                   .data = au.data,
                                   .len = au.len,
                                   .rtp_timestamp = au.ts,
                                   .keyframe = au.keyframe,
                                   .codec = "H264"};
    if (c->s) f.have_sr = hd_pc_track_sr(c->s->pc[1], r->pc_track, &f.sr_ntp, &f.sr_rtp) == 0;
    cb->on_encoded(cb->ud, &f);
  }
}

static void h264_rtp(hd_client_t *c, cl_remote_t *r, const hd_pc_rtp_t *p, hd_time_t now) {
  if (!r->h264) {
    r->h264 = calloc(1, sizeof *r->h264);
    if (!r->h264 || hd_h264_reorder_init(r->h264, HD_MS(c->cfg.h264_reorder_ms), 0) < 0) {
      free(r->h264);
      r->h264 = NULL;
      return;
    }
  }
  hd_h264_reorder_push(r->h264, p->seq, p->ts, p->marker, p->payload, p->payload_len, now);
  h264_drain(c, r, now);
}

void cl_remote_rtp(hd_client_t *c, const hd_pc_rtp_t *p, hd_time_t now) {
  cl_remote_t *r = remote_get(c, p->track, p->kind);
  if (!r || !p->payload_len) return;
  if (r->kind == HD_PC_VIDEO && c->cfg.accept_h264 && c->s &&
      !strcmp(hd_pc_track_codec(c->s->pc[1], p->track), "H264")) {
    h264_rtp(c, r, p, now);
    return;
  }
  if (r->kind == HD_PC_AUDIO) {
    if (p->rtx) /* a NACK repair (pc.h): fills its hole, does not teach the delay */
      hd_audio_jitter_push_repair(&r->jb, p->seq, p->ts, p->payload, p->payload_len, p->red, p->codec_pt,
                                  now);
    else if (p->red)
      hd_audio_jitter_push_red(&r->jb, p->seq, p->ts, p->payload, p->payload_len, p->codec_pt, now);
    else
      hd_audio_jitter_push(&r->jb, p->seq, p->ts, p->payload, p->payload_len, now);
    if (!r->next_pull) r->next_pull = now;
  } else {
    hd_frame_asm_pkt_t k = {
        .seq = p->seq, .ts = p->ts, .marker = p->marker, .payload = p->payload, .len = p->payload_len};
    hd_video_jb_push(&r->vjb, &k, now);
    drain_video(c, r, now);
  }
}

typedef struct {
  hd_client_t *c;
  cl_remote_t *r;
} play_ctx_t;

static void on_audio_packet(void *ud, const hd_audio_jitter_out_t *o) {
  play_ctx_t *x = ud;
  const hd_client_callbacks_t *cb = &x->c->cfg.cb;
  hd_client_encoded_frame_t f = {.track_sid = x->r->track_sid,
                                 .identity = x->r->identity,
                                 .kind = HD_CLIENT_AUDIO,
                                 .data = o->data,
                                 .len = o->len,
                                 .rtp_timestamp = o->ts,
                                 .codec = "opus"};
  if (x->c->s) f.have_sr = hd_pc_track_sr(x->c->s->pc[1], x->r->pc_track, &f.sr_ntp, &f.sr_rtp) == 0;
  cb->on_encoded(cb->ud, &f);
}

/* Audio NACK (NetEQ's coupling of NACK and buffer): the buffer makes room
 * for one repair round trip while losses are seen, and the pc asks for a
 * lost packet only while its repair can still be played. */
static void audio_nack(hd_client_t *c, cl_remote_t *r) {
  if (!c->s) return;
  hd_time_t rtt = hd_pc_track_repair_rtt(c->s->pc[1], r->pc_track);
  if (rtt < 0) return; /* no NACK negotiated on this track */
  hd_audio_jitter_set_repair_rtt(&r->jb, rtt);
  hd_pc_set_nack_window(c->s->pc[1], r->pc_track, hd_audio_jitter_repair_window(&r->jb));
}

static void play_audio(hd_client_t *c, cl_remote_t *r, hd_time_t now) {
  const hd_client_callbacks_t *cb = &c->cfg.cb;
  int want_encoded = c->cfg.encoded_frames && cb->on_encoded;
  audio_nack(c, r);
  if (c->cfg.no_decode) {
    /* no PCM to stretch: the buffer steers by whole frames */
    hd_audio_jitter_out_t o;
    int k = hd_audio_jitter_pull(&r->jb, now, &o);
    if (k == HD_AUDIO_JITTER_PLAY && want_encoded) {
      play_ctx_t x = {c, r};
      on_audio_packet(&x, &o);
    }
    return;
  }
  if (!r->jb.started && !r->jb.have_first) return; /* nothing yet */
  int16_t pcm[HD_OPUS_FRAME_SAMPLES];
  const int fs = HD_OPUS_FRAME_SAMPLES;
  int k = HD_AUDIO_JITTER_EMPTY;
  play_ctx_t x = {c, r};
  int n = hd_audio_jitter_pull_pcm_cb(&r->jb, now, &r->dec, pcm, fs, &k,
                                      want_encoded ? on_audio_packet : NULL, &x);
  if (n != fs || k == HD_AUDIO_JITTER_EMPTY) return; /* still buffering */
  if (k != HD_AUDIO_JITTER_CNG) e2e_sample(c, r, (uint32_t)(r->jb.play_ts - fs), now);
  if (cb->on_audio) {
    hd_client_audio_frame_t f = {.track_sid = r->track_sid,
                                 .identity = r->identity,
                                 .pcm = pcm,
                                 .samples = (size_t)fs,
                                 .channels = 1,
                                 .concealed = k == HD_AUDIO_JITTER_PLC};
    cb->on_audio(cb->ud, &f);
  }
}

void cl_remote_tick(hd_client_t *c, hd_time_t now) {
  for (int i = 0; i < HD_CLIENT_MAX_REMOTE_TRACKS; i++) {
    cl_remote_t *r = &c->remote[i];
    if (!r->used) continue;
    if (r->kind == HD_PC_VIDEO) {
      if (r->h264 && hd_h264_reorder_next_timeout(r->h264) <= now) h264_drain(c, r, now);
      if (hd_video_jb_next_timeout(&r->vjb) <= now) drain_video(c, r, now);
      av_sync(c, r, now);
      continue;
    }
    if (!r->next_pull) continue;
    if (now - r->next_pull > CATCHUP_US) r->next_pull = now; /* the loop stalled: do not burst */
    while (r->used && r->next_pull <= now) {
      play_audio(c, r, now);
      r->next_pull += HD_OPUS_FRAME_MS * 1000;
    }
  }
}

/* ---- statistics ---- */

void cl_stats(hd_client_t *c, hd_time_t now, int emit) {
  hd_client_stats_t *st = calloc(1, sizeof *st);
  if (!st) return;
  double dt = c->last_stats ? (double)(now - c->last_stats) / 1e6 : 0;
  c->last_stats = now;
  st->state = c->state;
  st->rtt_ms = -1;
  st->reconnects = c->reconnects;
  cl_session_t *s = c->s && !c->s->closing ? c->s : NULL;
  static __thread hd_pc_stats_t ps[2];
  if (s) {
    hd_pc_stats(s->pc[0], &ps[0]);
    hd_pc_stats(s->pc[1], &ps[1]);
    if (ps[0].rtt >= 0)
      st->rtt_ms = (double)ps[0].rtt / 1000.0;
    else if (ps[1].rtt >= 0)
      st->rtt_ms = (double)ps[1].rtt / 1000.0;
    else if (c->sig_rtt > 0)
      st->rtt_ms = (double)c->sig_rtt / 1000.0;
  }
  for (int i = 0; i < HD_CLIENT_MAX_LOCAL_TRACKS; i++) {
    cl_local_t *l = &c->local[i];
    if (!l->used) continue;
    hd_client_track_stats_t *t = &st->tracks[st->n_tracks++];
    t->local = 1;
    t->kind = l->opt.kind;
    t->rtt_ms = st->rtt_ms;
    t->target_bps = l->target_bps;
    t->target_bitrate = l->target_bps;
    t->available_outgoing_bitrate = c->send_rate_bps;
    t->round_trip_time = st->rtt_ms >= 0 ? st->rtt_ms / 1000 : -1;
    t->frames = l->frames;
    t->keyframes = l->keyframes;
    if (l->venc_ok) {
      t->width = l->vp8.width;
      t->height = l->vp8.height;
    } else if (l->opt.h264) { /* pushed encoded: the size it was published with */
      t->width = l->opt.width;
      t->height = l->opt.height;
    }
    if (!s || l->pc_track < 0 || l->pc_track >= ps[0].n_tracks) continue;
    const char *sid = hd_rtc_signal_pub_sid(s->sig, l->cid);
    if (sid) snprintf(t->track_sid, sizeof t->track_sid, "%s", sid);
    const hd_pc_track_stats_t *p = &ps[0].tracks[l->pc_track];
    if (dt > 0 && p->bytes_sent >= l->last_bytes)
      t->bitrate_kbps = (double)(p->bytes_sent - l->last_bytes) * 8 / dt / 1000;
    l->last_bytes = p->bytes_sent;
    t->packets = p->packets_sent;
    t->packets_lost = p->remote_lost;
    t->loss_pct = p->fraction_lost >= 0 ? p->fraction_lost * 100 : 0;
    t->jitter_ms = (double)p->remote_jitter * 1000.0 / (l->opt.kind == HD_CLIENT_AUDIO ? 48000 : 90000);
    if (p->rtt >= 0) t->rtt_ms = (double)p->rtt / 1000.0;
    t->nacks = p->nack_received;
    t->retransmits = p->rtx_sent;
    t->nack_count = p->nack_received;
    t->retransmitted_packets = p->rtx_sent;
    t->actual_bitrate = t->bitrate_kbps * 1000;
    if (l->opt.kind == HD_CLIENT_AUDIO) {
      t->audio.red_depth = p->red_pt ? l->red_depth : 0;
      t->audio.fec_expected_loss = l->fec_loss_pct;
    }
  }
  for (int i = 0; i < HD_CLIENT_MAX_REMOTE_TRACKS; i++) {
    cl_remote_t *r = &c->remote[i];
    if (!r->used) continue;
    hd_client_track_stats_t *t = &st->tracks[st->n_tracks++];
    t->kind = r->kind == HD_PC_AUDIO ? HD_CLIENT_AUDIO : HD_CLIENT_VIDEO;
    snprintf(t->track_sid, sizeof t->track_sid, "%s", r->track_sid);
    snprintf(t->identity, sizeof t->identity, "%s", r->identity);
    t->rtt_ms = st->rtt_ms;
    if (s && r->pc_track < ps[1].n_tracks) {
      const hd_pc_track_stats_t *p = &ps[1].tracks[r->pc_track];
      if (dt > 0 && p->bytes_received >= r->last_bytes)
        t->bitrate_kbps = (double)(p->bytes_received - r->last_bytes) * 8 / dt / 1000;
      r->last_bytes = p->bytes_received;
      t->packets = p->packets_received;
      t->packets_lost = p->lost > 0 ? p->lost : 0;
      uint64_t exp = p->packets_received + (uint64_t)t->packets_lost;
      t->loss_pct = exp ? 100.0 * (double)t->packets_lost / (double)exp : 0;
      t->jitter_ms = (double)p->jitter * 1000.0 / (r->kind == HD_PC_AUDIO ? 48000 : 90000);
      t->nacks = p->nack_sent;
      t->retransmits = p->rtx_received;
      t->nack_count = p->nack_sent;
      t->retransmitted_packets = p->rtx_received;
      t->packets_lost_before_repair = p->missing;
      t->fec_packets_received = p->fec_received; /* FlexFEC: video only */
      t->fec_packets_recovered = p->fec_recovered;
      t->loss_before_repair_pct = exp ? 100.0 * (double)p->missing / (double)exp : 0;
      /* after NACK and FlexFEC repair: a packet rebuilt from FEC is missing
       * from the RTP statistics (our reports give the loss before it) */
      int64_t left = t->packets_lost - (int64_t)p->fec_recovered;
      t->loss_after_repair_pct = exp && left > 0 ? 100.0 * (double)left / (double)exp : 0;
      if (p->repair_rtt > 0) t->rtt_ms = (double)p->repair_rtt / 1000.0;
    }
    t->round_trip_time = t->rtt_ms >= 0 ? t->rtt_ms / 1000 : -1;
    t->e2e_delay_ms = e2e_median_ms(r);
    t->av_sync_ms = r->kind == HD_PC_VIDEO && r->sync.have_diff ? (double)r->sync.diff / 1000.0 : 0;
    if (r->kind == HD_PC_VIDEO) {
      t->frames = r->frames;
      t->keyframes = r->keyframe_requests;
      t->freezes = r->freeze.freezes;
      t->freeze_ms = r->freeze.freeze_us / 1000.0;
      t->width = r->width;
      t->height = r->height;
      const hd_video_jb_t *jb = &r->vjb;
      t->frames_decoded = r->frames_decoded;
      t->frames_dropped = r->frames_dropped + jb->fa.stats.frames_dropped;
      t->frames_rendered = r->frames;
      t->freeze_count = r->freeze.freezes;
      t->total_freezes_duration = r->freeze.freeze_us / 1e6;
      t->total_watched = r->first_frame_at ? (double)(now - r->first_frame_at) / 1e6 : 0;
      t->jitter_buffer_delay = jb->st.jitter_buffer_delay_s;
      t->jitter_buffer_target_delay = jb->st.jitter_buffer_target_s;
      t->jitter_buffer_emitted_count = jb->st.jitter_buffer_emitted;
      t->keyframe_requests_sent = r->keyframe_requests;
    } else {
      const hd_audio_jitter_stats_t *js = &r->jb.stats;
      t->concealed_pct = 100.0 * hd_audio_jitter_stall_rate(&r->jb);
      t->played_ms = js->played_ms;
      t->audio.total_samples_received = js->total_samples_received;
      t->audio.concealed_samples = js->concealed_samples;
      t->audio.silent_concealed_samples = js->silent_concealed_samples;
      t->audio.concealment_events = js->concealment_events;
      t->audio.inserted_samples_for_deceleration = js->inserted_samples_for_deceleration;
      t->audio.removed_samples_for_acceleration = js->removed_samples_for_acceleration;
      t->audio.jitter_buffer_delay = js->jitter_buffer_delay_s;
      t->audio.jitter_buffer_emitted_count = js->jitter_buffer_emitted_count;
      t->audio.jitter_buffer_target_delay_ms = (double)js->target_delay / 1000.0;
      t->audio.fec_ms = js->fec_ms;
      t->audio.red_ms = js->red_ms;
      t->audio.longest_gap_ms = js->max_concealed_run_ms;
      t->audio.red_depth = r->jb.red_depth;
    }
  }
  uv_mutex_lock(&c->mu);
  c->snap = *st;
  uv_mutex_unlock(&c->mu);
  if (emit && c->cfg.cb.on_stats) c->cfg.cb.on_stats(c->cfg.cb.ud, st);
  free(st);
}
