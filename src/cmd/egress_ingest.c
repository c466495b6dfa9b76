/* `hudong egress --ingest URL`: RTMP ingest (issue 18 item 3, docs/egress.md
 * "RTMP ingest"). An OBS-like encoder publishes H.264 + AAC over RTMP to the
 * RTMP front (nginx with libnginx-mod-rtmp), which asks the node whether the
 * stream key is good (on_publish); the node then starts this process, which
 * plays the stream from the front (libavformat) and publishes it into the
 * room as a participant with the native SDK:
 * - video: H.264 that browsers decode as sent (baseline, main or high
 *   profile, 8-bit 4:2:0, no B-frames) is passed through without decoding
 *   (Annex B via h264_mp4toannexb, hd_client_push_h264: RFC 6184 packets),
 *   offered with its own profile-level-id; anything else, or a key made with
 *   "video": "transcode", is decoded (libavcodec) and re-encoded to VP8 by
 *   the SDK. A passed-through stream switches to VP8 for good, mid-stream,
 *   when a viewer cannot decode it (the node's "track_refused"), when
 *   B-frames show up (a composition time offset), or when its keyframes come
 *   less often than --ingest-max-keyframe-ms (a passthrough viewer cannot
 *   get a keyframe on request, so the GOP is how long a new viewer waits);
 * - audio: AAC decoded, resampled to 48 kHz mono and encoded to Opus.
 * The stream's timing drives the pushes: frames are pushed when their
 * timestamps come due (as OBS sends in real time, this is its pace). */
#include <jansson.h>
#include <libavcodec/avcodec.h>
#include <libavcodec/bsf.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/imgutils.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd/egress_internal.h"
#include "hudong/client.h"

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int interrupt_cb(void *ud) {
  (void)ud;
  return hd_egress_stopping();
}

typedef struct {
  AVCodecContext *dec;
  int stream;
  int local; /* SDK local track */
} ing_stream_t;

static AVCodecContext *open_dec(AVFormatContext *ic, int idx) {
  const AVCodec *c = avcodec_find_decoder(ic->streams[idx]->codecpar->codec_id);
  AVCodecContext *d = c ? avcodec_alloc_context3(c) : NULL;
  if (!d) return NULL;
  if (avcodec_parameters_to_context(d, ic->streams[idx]->codecpar) < 0 || avcodec_open2(d, c, NULL) < 0) {
    avcodec_free_context(&d);
    return NULL;
  }
  d->pkt_timebase = ic->streams[idx]->time_base;
  return d;
}

/* Whether H.264 can go into the room as sent, and with which RFC 6184
 * profile-level-id (*plid). Baseline-compatible streams (profile_idc 66:
 * x264 never uses baseline's FMO/ASO/redundant slices; or Main/Extended with
 * constraint_set0, H.264 A.2.1.1) are offered as constrained baseline 42e01f,
 * what every WebRTC receiver decodes. Main (77) and High (100, also
 * "constrained high" with set4/set5) are offered with the stream's own
 * profile_idc, constraint flags and level (e.g. 64001f): browsers receive
 * Main (Chromium lists 4d001f) and most High (Google Chrome and Safari list
 * 64001f/640c1f; Debian's Chromium does not); a viewer that cannot refuses
 * the track and the ingest then transcodes. High 10, 4:2:2, 4:4:4 and other
 * profiles are transcoded from the start. B-frames: the
 * frames leave in decode order and WebRTC receivers expect pts = dts, so a
 * stream that declares reordering (video_delay) is transcoded, and one that
 * shows a composition time offset later switches (below). *why says which. */
static int h264_passthrough_ok(const AVCodecParameters *cp, uint32_t *plid, char *why, size_t cap) {
  if (cp->codec_id != AV_CODEC_ID_H264) {
    snprintf(why, cap, "video is %s, not H.264: transcoded to VP8", avcodec_get_name(cp->codec_id));
    return 0;
  }
  int idc = -1, flags = 0, level = 0;
  if (cp->extradata_size >= 4 && cp->extradata[0] == 1) { /* avcC (ISO/IEC 14496-15 §5.3.3.1) */
    idc = cp->extradata[1];
    flags = cp->extradata[2];
    level = cp->extradata[3];
  } else if (cp->profile != FF_PROFILE_UNKNOWN) {
    idc = cp->profile & 0xff;
    flags = cp->profile & FF_PROFILE_H264_CONSTRAINED ? 0xC0 : 0; /* FFmpeg's flag: set0 and set1 */
    level = cp->level > 0 ? cp->level : 0;
  }
  if (level <= 0 || level > 0xff) level = 0x1f;
  /* constrained-baseline compatible (RFC 6184 §8.1 profile-iop): Baseline
   * (66), or Main/Extended (77/88) with constraint_set0 (0x80, "obeys the
   * Baseline constraints"); set1 alone only says Main, which x264 sets on
   * every Main stream, CABAC included, that Baseline decoders cannot read */
  int cb = idc == 66 || ((idc == 77 || idc == 88) && (flags & 0x80));
  if (!cb && idc != 77 && idc != 100) {
    snprintf(why, cap,
             "H.264 profile_idc %d is not baseline, main or high (8-bit 4:2:0), which browsers decode: "
             "transcoded to VP8",
             idc);
    return 0;
  }
  if (cp->video_delay > 0) {
    snprintf(why, cap, "H.264 with B-frames: transcoded to VP8");
    return 0;
  }
  *plid = cb ? 0x42e01fu : (uint32_t)idc << 16 | (uint32_t)flags << 8 | (uint32_t)level;
  if (cb)
    snprintf(why, cap, "H.264 profile_idc %d%s: passed through", idc, flags & 0x40 ? " constrained" : "");
  else
    snprintf(why, cap, "H.264 %s (profile-level-id %06x): passed through", idc == 100 ? "High" : "Main",
             (unsigned)*plid);
  return 1;
}

/* Video of the stream: passed through (*bsf: AVCC -> Annex B) or decoded
 * for VP8 (v->dec), and why (*vwhy, also in the status). */
static void open_video(AVFormatContext *ic, ing_stream_t *v, const hd_egress_args_t *a, AVBSFContext **bsf,
                       uint32_t *plid, char *vwhy, size_t cap) {
  const AVCodecParameters *cp = ic->streams[v->stream]->codecpar;
  if (a->ingest_transcode)
    snprintf(vwhy, cap, "transcoded to VP8 (the stream key asks for it)");
  else if (h264_passthrough_ok(cp, plid, vwhy, cap)) {
    const AVBitStreamFilter *f = av_bsf_get_by_name("h264_mp4toannexb");
    if (!f || av_bsf_alloc(f, bsf) < 0 || avcodec_parameters_copy((*bsf)->par_in, cp) < 0 ||
        ((*bsf)->time_base_in = ic->streams[v->stream]->time_base, av_bsf_init(*bsf)) < 0) {
      av_bsf_free(bsf);
      snprintf(vwhy, cap, "no h264_mp4toannexb filter: transcoded to VP8");
    }
  }
  if (!*bsf) v->dec = open_dec(ic, v->stream);
  if (*bsf || v->dec) hd_egress_ingest_video_mode(*bsf ? "H264" : "VP8", *bsf != NULL, vwhy);
  fprintf(stderr, "hudong egress: ingest video: %s\n", vwhy);
}

typedef struct ing_refusal ing_refusal_t;
static void publish_video(hd_client_t *cl, AVFormatContext *ic, ing_stream_t *v, const AVBSFContext *bsf,
                          uint32_t plid, hd_client_publish_t *vpub, ing_refusal_t *refusal);

/* A viewer refused the passed-through track (on_track_refused, SDK thread). */
struct ing_refusal {
  atomic_int video_local; /* the passthrough track's index, -1 none */
  atomic_int claimed, refused;
  char who[128], codec[16];
};

static void on_track_refused(void *ud, int local, const char *codec, const char *identity) {
  ing_refusal_t *r = ud;
  if (local < 0 || local != atomic_load(&r->video_local) || atomic_exchange(&r->claimed, 1)) return;
  snprintf(r->who, sizeof r->who, "%s", identity ? identity : "?");
  snprintf(r->codec, sizeof r->codec, "%s", codec ? codec : "?");
  atomic_store(&r->refused, 1);
}

/* Publishes the video track: H.264 with the stream's profile (passthrough)
 * or VP8 pushed as I420; the size is the stream's (640x360 if unknown). */
static void publish_video(hd_client_t *cl, AVFormatContext *ic, ing_stream_t *v, const AVBSFContext *bsf,
                          uint32_t plid, hd_client_publish_t *vpub, ing_refusal_t *refusal) {
  const AVCodecParameters *cp = ic->streams[v->stream]->codecpar;
  *vpub = (hd_client_publish_t){.kind = HD_CLIENT_VIDEO,
                                .from = HD_CLIENT_SOURCE_PUSH,
                                .width = cp->width > 0 ? cp->width : 640,
                                .height = cp->height > 0 ? cp->height : 360,
                                .fps = 30,
                                .bitrate_bps = 800000,
                                .h264 = bsf != NULL,
                                .h264_profile_level_id = bsf ? plid : 0};
  v->local = hd_client_publish(cl, vpub);
  if (bsf) atomic_store(&refusal->video_local, v->local);
}

/* The FLV packets since the last IDR while passing through: fed to the
 * decoder when the stream switches to VP8 mid-GOP, so the transcode starts
 * with the next frame rather than at the next IDR (which may be seconds
 * away: a long GOP is one reason to switch). References, not copies;
 * capped: past the cap the decoder waits for the next IDR instead. */
#define ING_GOP_PKTS 1024
#define ING_GOP_BYTES (32u << 20)
typedef struct {
  AVPacket *p[ING_GOP_PKTS];
  int n;
  size_t bytes;
  int overflow;
} ing_gop_t;

static void gop_clear(ing_gop_t *g) {
  for (int i = 0; i < g->n; i++)
    av_packet_free(&g->p[i]);
  g->n = 0;
  g->bytes = 0;
  g->overflow = 0;
}

static void gop_add(ing_gop_t *g, const AVPacket *pkt) {
  if (pkt->flags & AV_PKT_FLAG_KEY) gop_clear(g);
  if (g->overflow) return;
  if (g->n >= ING_GOP_PKTS || g->bytes + (size_t)pkt->size > ING_GOP_BYTES ||
      !(g->p[g->n] = av_packet_clone(pkt))) {
    gop_clear(g);
    g->overflow = 1;
    return;
  }
  g->bytes += (size_t)pkt->size;
  g->n++;
}

int hd_egress_ingest(const hd_egress_args_t *a) {
  AVFormatContext *ic = avformat_alloc_context();
  if (!ic) return 1;
  ic->interrupt_callback = (AVIOInterruptCB){interrupt_cb, NULL};
  AVDictionary *opt = NULL;
  av_dict_set(&opt, "rw_timeout", "10000000", 0); /* a publisher that goes silent ends the ingest */
  int rc = avformat_open_input(&ic, a->ingest, NULL, &opt);
  av_dict_free(&opt);
  if (rc < 0) {
    char e[128];
    av_strerror(rc, e, sizeof e);
    fprintf(stderr, "hudong egress: cannot play %s: %s\n", a->ingest, e);
    hd_egress_emit_ingest("ended", e, 0, 0, 1);
    return 1;
  }
  if (avformat_find_stream_info(ic, NULL) < 0) fprintf(stderr, "hudong egress: no stream info\n");
  ing_stream_t v = {.stream = av_find_best_stream(ic, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0), .local = -1};
  ing_stream_t au = {.stream = av_find_best_stream(ic, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0), .local = -1};
  AVBSFContext *bsf = NULL; /* passthrough: AVCC (FLV) -> Annex B with SPS/PPS at each IDR */
  char vwhy[200] = "";
  uint32_t plid = 0;
  if (v.stream >= 0) open_video(ic, &v, a, &bsf, &plid, vwhy, sizeof vwhy);
  if (au.stream >= 0) au.dec = open_dec(ic, au.stream);
  if (!v.dec && !bsf && !au.dec) {
    fprintf(stderr, "hudong egress: the RTMP stream has no audio or video we can decode\n");
    hd_egress_emit_ingest("ended", "no decodable audio or video", 0, 0, 1);
    avformat_close_input(&ic);
    return 1;
  }
  static ing_refusal_t refusal; /* outlives the client's thread: static */
  atomic_store(&refusal.video_local, -1);
  hd_client_config_t cfg = {.url = a->url,
                            .token = a->token,
                            .no_quality_reports = 1,
                            .cb = {.on_track_refused = on_track_refused, .ud = &refusal}};
  hd_client_t *cl = NULL;
  rc = hd_client_new(&cl, &cfg);
  if (rc == 0) rc = hd_client_join(cl);
  if (rc < 0) {
    fprintf(stderr, "hudong egress: %s\n", hd_client_strerror(rc));
    hd_client_free(cl);
    avformat_close_input(&ic);
    return 1;
  }
  hd_client_publish_t vpub = {0};
  if (v.dec || bsf) publish_video(cl, ic, &v, bsf, plid, &vpub, &refusal);
  if (au.dec) {
    hd_client_publish_t p = {.kind = HD_CLIENT_AUDIO, .from = HD_CLIENT_SOURCE_PUSH, .channels = 1};
    au.local = hd_client_publish(cl, &p);
  }
  AVPacket *pkt = av_packet_alloc();
  AVFrame *fr = av_frame_alloc();
  struct SwsContext *sws = NULL;
  SwrContext *swr = NULL;
  uint8_t *yuv[4] = {0};
  int yuv_ls[4] = {0}, yw = 0, yh = 0;
  int16_t *pcm = NULL;
  int pcm_cap = 0;
  int64_t t0 = 0, ts0 = AV_NOPTS_VALUE, next_status = now_us() + 1000000;
  int64_t last_key_us = AV_NOPTS_VALUE; /* passthrough: pts of the last IDR (or of the first packet) */
  int dec_wait_key = 0;                 /* the decoder starts at the next IDR */
  static ing_gop_t gop;                 /* ~8 KiB of pointers: not on the stack */
  uint64_t vframes = 0, asamples = 0;
  const char *why = "stopped";
  int joined = 0;
  while (!hd_egress_stopping()) {
    hd_client_state_t cs = hd_client_state(cl); /* thread-safe */
    if (cs == HD_CLIENT_JOINED) joined = 1;
    if (cs == HD_CLIENT_FAILED || (cs == HD_CLIENT_DISCONNECTED && joined)) {
      why = "left the room";
      break;
    }
    rc = av_read_frame(ic, pkt);
    if (rc < 0) {
      why = rc == AVERROR_EOF ? "the publisher stopped" : "the RTMP stream broke";
      break;
    }
    if (v.stream < 0 && pkt->stream_index >= 0 && pkt->stream_index < (int)ic->nb_streams &&
        ic->streams[pkt->stream_index]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO) {
      /* video that started after the stream probe (5 s): nginx-rtmp sends a
       * player that joined mid-GOP no video until the next IDR, so a long GOP
       * and an ingest that started after the publisher's first IDR look
       * audio-only at first */
      v.stream = pkt->stream_index;
      open_video(ic, &v, a, &bsf, &plid, vwhy, sizeof vwhy);
      if (v.dec || bsf) publish_video(cl, ic, &v, bsf, plid, &vpub, &refusal);
      last_key_us = AV_NOPTS_VALUE;
      hd_egress_emit_ingest("status", NULL, vframes, asamples / 48, 0);
    }
    ing_stream_t *s = pkt->stream_index == v.stream ? &v : pkt->stream_index == au.stream ? &au : NULL;
    if (!s || (!s->dec && !(s == &v && bsf)) || s->local < 0) {
      av_packet_unref(pkt);
      continue;
    }
    /* pace by the stream's timestamps (a live publisher already is) */
    int64_t pts_us =
        pkt->pts == AV_NOPTS_VALUE
            ? AV_NOPTS_VALUE
            : av_rescale_q(pkt->pts, ic->streams[pkt->stream_index]->time_base, (AVRational){1, 1000000});
    if (pts_us != AV_NOPTS_VALUE) {
      if (ts0 == AV_NOPTS_VALUE) {
        ts0 = pts_us;
        t0 = now_us();
      }
      int64_t due = t0 + (pts_us - ts0), now = now_us();
      if (due > now && due - now < 2000000) usleep((useconds_t)(due - now));
    }
    if (s == &v && bsf) {
      /* passthrough, unless it must stop: a viewer cannot decode it, B-frames,
       * or keyframes too rare for a viewer to wait for (none of which the
       * source can be asked to change) */
      char sw[200] = "";
      if (atomic_load(&refusal.refused))
        snprintf(sw, sizeof sw, "viewer %s cannot decode H.264 %06x: transcoded to VP8", refusal.who,
                 (unsigned)(plid ? plid : 0x42e01f));
      else if (pkt->pts != AV_NOPTS_VALUE && pkt->dts != AV_NOPTS_VALUE && pkt->pts != pkt->dts)
        snprintf(sw, sizeof sw, "H.264 with B-frames (composition time offsets): transcoded to VP8");
      else if (pts_us != AV_NOPTS_VALUE) {
        if ((pkt->flags & AV_PKT_FLAG_KEY) || last_key_us == AV_NOPTS_VALUE) last_key_us = pts_us;
        if (a->ingest_max_key_ms > 0 && pts_us - last_key_us > a->ingest_max_key_ms * 1000)
          snprintf(sw, sizeof sw,
                   "H.264 keyframes more than %ld ms apart (a passed-through stream cannot be asked for one: "
                   "a viewer would wait that long for a picture; set a keyframe interval of 1-2 s): "
                   "transcoded to VP8",
                   a->ingest_max_key_ms);
      }
      if (sw[0]) { /* for good: unpublish the H.264 track, publish VP8 */
        av_bsf_free(&bsf);
        atomic_store(&refusal.video_local, -1);
        v.dec = open_dec(ic, v.stream);
        hd_client_unpublish(cl, v.local);
        v.local = -1;
        if (v.dec) {
          vpub.h264 = 0;
          vpub.h264_profile_level_id = 0;
          v.local = hd_client_publish(cl, &vpub);
          /* the GOP so far primes the decoder: the next frame decodes */
          dec_wait_key = gop.overflow || gop.n == 0;
          for (int i = 0; i < gop.n && !dec_wait_key; i++)
            if (avcodec_send_packet(v.dec, gop.p[i]) == 0)
              while (avcodec_receive_frame(v.dec, fr) == 0)
                av_frame_unref(fr); /* already shown through the passthrough */
        }
        gop_clear(&gop);
        hd_egress_ingest_video_mode("VP8", 0, sw);
        fprintf(stderr, "hudong egress: ingest video: %s\n", sw);
        hd_egress_emit_ingest("status", NULL, vframes, asamples / 48, 0);
        if (!v.dec || v.local < 0) {
          av_packet_unref(pkt);
          continue;
        }
      } else {
        gop_add(&gop, pkt);
        if (av_bsf_send_packet(bsf, pkt) < 0) {
          av_packet_unref(pkt);
          continue;
        }
        while (av_bsf_receive_packet(bsf, pkt) == 0) {
          if (hd_client_push_h264(cl, v.local, pkt->data, (size_t)pkt->size, pts_us) == 0) vframes++;
          av_packet_unref(pkt);
        }
        continue;
      }
    }
    if (s == &v && dec_wait_key) {
      if (!(pkt->flags & AV_PKT_FLAG_KEY)) {
        av_packet_unref(pkt);
        continue;
      }
      dec_wait_key = 0;
    }
    if (avcodec_send_packet(s->dec, pkt) < 0) {
      av_packet_unref(pkt);
      continue;
    }
    av_packet_unref(pkt);
    while (avcodec_receive_frame(s->dec, fr) == 0) {
      if (s == &v) {
        if (fr->width != yw || fr->height != yh || !sws) {
          av_freep(&yuv[0]);
          sws_freeContext(sws);
          yw = fr->width;
          yh = fr->height;
          sws =
              sws_getContext(yw, yh, fr->format, yw, yh, AV_PIX_FMT_YUV420P, SWS_BILINEAR, NULL, NULL, NULL);
          if (!sws || av_image_alloc(yuv, yuv_ls, yw, yh, AV_PIX_FMT_YUV420P, 32) < 0) break;
        }
        sws_scale(sws, (const uint8_t *const *)fr->data, fr->linesize, 0, yh, yuv, yuv_ls);
        const uint8_t *planes[3] = {yuv[0], yuv[1], yuv[2]};
        int strides[3] = {yuv_ls[0], yuv_ls[1], yuv_ls[2]};
        if (hd_client_push_video(cl, v.local, yw, yh, planes, strides) == 0) vframes++;
      } else {
        if (!swr) {
          AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
          if (swr_alloc_set_opts2(&swr, &mono, AV_SAMPLE_FMT_S16, 48000, &fr->ch_layout, fr->format,
                                  fr->sample_rate, 0, NULL) < 0 ||
              swr_init(swr) < 0)
            break;
        }
        int out_n = swr_get_out_samples(swr, fr->nb_samples);
        if (out_n > pcm_cap) {
          free(pcm);
          pcm_cap = out_n;
          pcm = malloc(sizeof *pcm * (size_t)pcm_cap);
          if (!pcm) break;
        }
        uint8_t *outp[1] = {(uint8_t *)pcm};
        int n = swr_convert(swr, outp, pcm_cap, (const uint8_t **)fr->extended_data, fr->nb_samples);
        if (n > 0 && hd_client_push_audio(cl, au.local, pcm, (size_t)n) == 0) asamples += (uint64_t)n;
      }
      av_frame_unref(fr);
    }
    if (now_us() >= next_status) {
      next_status += 1000000;
      hd_egress_emit_ingest("status", NULL, vframes, asamples / 48, 0);
    }
  }
  hd_egress_emit_ingest("ended", why, vframes, asamples / 48, 0);
  hd_client_free(cl);
  gop_clear(&gop);
  av_packet_free(&pkt);
  av_frame_free(&fr);
  sws_freeContext(sws);
  swr_free(&swr);
  av_freep(&yuv[0]);
  free(pcm);
  av_bsf_free(&bsf);
  avcodec_free_context(&v.dec);
  avcodec_free_context(&au.dec);
  avformat_close_input(&ic);
  return 0;
}
