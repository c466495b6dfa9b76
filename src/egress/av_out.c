/* Composite encoder and outputs (see av_out.h). */
#include "egress/av_out.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/log.h"

enum { OS_CONNECTING, OS_ACTIVE, OS_RETRYING, OS_FAILED, OS_FINISHED };
static const char *const os_names[] = {"connecting", "active", "retrying", "failed", "finished"};

typedef struct qpkt {
  struct qpkt *next;
  AVPacket *pkt;
} qpkt_t;

typedef struct {
  struct hd_av_out *owner;
  char url[1024];
  const char *fmt;
  int network;
  pthread_t th;
  int th_started;
  /* shared with the encoder thread, under mu */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  qpkt_t *head, *tail;
  size_t qn, qbytes;
  int state;
  int stop;
  int abort; /* interrupt a connect in progress (closing while not connected) */
  uint64_t attempts, bytes, packets, dropped;
  char error[256];
} output_t;

struct hd_av_out {
  hd_av_out_config_t cfg;
  AVCodecContext *venc, *aenc;
  AVFrame *vframe, *aframe;
  float *abuf; /* mono samples waiting for a whole AAC frame */
  int abuf_n, aframe_size;
  int64_t apts;
  output_t out[HD_AV_OUT_MAX_URLS];
  int n_out;
};

static const char *fmt_of(const char *url, int *network) {
  size_t n = strlen(url);
  *network = 0;
  if (!strncmp(url, "rtmp://", 7) || !strncmp(url, "rtmps://", 8)) {
    *network = 1;
    return "flv";
  }
  if (n > 4 && !strcmp(url + n - 4, ".mp4")) return "mp4";
  if (n > 5 && !strcmp(url + n - 5, ".m3u8")) return "hls";
  if (n > 4 && !strcmp(url + n - 4, ".flv")) return "flv";
  return NULL;
}

/* ---- output threads ---- */

static void q_clear(output_t *o) {
  while (o->head) {
    qpkt_t *q = o->head;
    o->head = q->next;
    av_packet_free(&q->pkt);
    free(q);
  }
  o->tail = NULL;
  o->qn = o->qbytes = 0;
}

static int interrupt_cb(void *ud) {
  output_t *o = ud;
  pthread_mutex_lock(&o->mu);
  int stop = o->abort;
  pthread_mutex_unlock(&o->mu);
  return stop;
}

static AVFormatContext *open_output(output_t *o, char *err, size_t cap) {
  hd_av_out_t *a = o->owner;
  AVFormatContext *oc = NULL;
  AVDictionary *opt = NULL;
  int rc = avformat_alloc_output_context2(&oc, NULL, o->fmt, o->url);
  if (rc < 0 || !oc) goto fail;
  oc->interrupt_callback = (AVIOInterruptCB){interrupt_cb, o};
  AVCodecContext *encs[2] = {a->venc, a->aenc};
  for (int i = 0; i < 2; i++) {
    if (!encs[i]) continue;
    AVStream *st = avformat_new_stream(oc, NULL);
    if (!st) {
      rc = AVERROR(ENOMEM);
      goto fail;
    }
    avcodec_parameters_from_context(st->codecpar, encs[i]);
    st->time_base = encs[i]->time_base;
  }
  if (!strcmp(o->fmt, "mp4")) av_dict_set(&opt, "movflags", "frag_keyframe+empty_moov+default_base_moof", 0);
  if (!strcmp(o->fmt, "hls")) {
    av_dict_set(&opt, "hls_time", "2", 0);
    av_dict_set(&opt, "hls_list_size", "0", 0);
  }
  if (!(oc->oformat->flags & AVFMT_NOFILE)) {
    AVDictionary *io = NULL;
    av_dict_set(&io, "rw_timeout", "5000000", 0); /* µs: a silent server is a failure, not a hang */
    rc = avio_open2(&oc->pb, o->url, AVIO_FLAG_WRITE, &oc->interrupt_callback, &io);
    av_dict_free(&io);
    if (rc < 0) goto fail;
  }
  rc = avformat_write_header(oc, &opt);
  if (rc < 0) goto fail;
  av_dict_free(&opt);
  return oc;
fail:
  av_strerror(rc, err, cap);
  av_dict_free(&opt);
  if (oc) {
    if (oc->pb && !(oc->oformat->flags & AVFMT_NOFILE)) avio_closep(&oc->pb);
    avformat_free_context(oc);
  }
  return NULL;
}

static void close_output(AVFormatContext *oc, int trailer) {
  if (!oc) return;
  if (trailer) av_write_trailer(oc);
  if (oc->pb && !(oc->oformat->flags & AVFMT_NOFILE)) avio_closep(&oc->pb);
  avformat_free_context(oc);
}

static void *output_main(void *ud) {
  output_t *o = ud;
  hd_av_out_t *a = o->owner;
  AVFormatContext *oc = NULL;
  int backoff = a->cfg.backoff_first_ms > 0 ? a->cfg.backoff_first_ms : 1000;
  int need_key = 1;
  for (;;) {
    if (!oc) {
      pthread_mutex_lock(&o->mu);
      int stop = o->stop;
      o->attempts++;
      pthread_mutex_unlock(&o->mu);
      if (stop) break;
      char err[200] = "";
      oc = open_output(o, err, sizeof err);
      pthread_mutex_lock(&o->mu);
      if (oc) {
        o->state = OS_ACTIVE;
        o->error[0] = 0;
        need_key = 1;
        backoff = a->cfg.backoff_first_ms > 0 ? a->cfg.backoff_first_ms : 1000;
        pthread_mutex_unlock(&o->mu);
        continue;
      }
      snprintf(o->error, sizeof o->error, "%s: %s", o->network ? "cannot connect" : "cannot open", err);
      if (!o->network) { /* a file that cannot be written will not get better */
        o->state = OS_FAILED;
        pthread_mutex_unlock(&o->mu);
        HD_LOGE("egress", "output %s: %s", o->url, o->error);
        break;
      }
      o->state = OS_RETRYING;
      HD_LOGW("egress", "output %s: %s; retrying in %d ms", o->url, o->error, backoff);
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_sec += backoff / 1000;
      ts.tv_nsec += (long)(backoff % 1000) * 1000000;
      if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
      }
      while (!o->stop && pthread_cond_timedwait(&o->cv, &o->mu, &ts) == 0) {
      }
      backoff = backoff * 2 > HD_AV_OUT_BACKOFF_MAX_MS ? HD_AV_OUT_BACKOFF_MAX_MS : backoff * 2;
      pthread_mutex_unlock(&o->mu);
      continue;
    }
    pthread_mutex_lock(&o->mu);
    while (!o->head && !o->stop)
      pthread_cond_wait(&o->cv, &o->mu);
    qpkt_t *q = o->head;
    if (q) {
      o->head = q->next;
      if (!o->head) o->tail = NULL;
      o->qn--;
      o->qbytes -= (size_t)q->pkt->size;
    }
    pthread_mutex_unlock(&o->mu);
    if (!q) break; /* stopped and drained */
    AVPacket *p = q->pkt;
    free(q);
    if (need_key && a->venc) {
      if (p->stream_index != 0 || !(p->flags & AV_PKT_FLAG_KEY)) {
        av_packet_free(&p);
        continue;
      }
      need_key = 0;
    }
    AVCodecContext *enc = p->stream_index == 0 && a->venc ? a->venc : a->aenc;
    av_packet_rescale_ts(p, enc->time_base, oc->streams[p->stream_index]->time_base);
    int size = p->size;
    int rc = av_interleaved_write_frame(oc, p);
    av_packet_free(&p);
    pthread_mutex_lock(&o->mu);
    if (rc < 0) {
      char err[200];
      av_strerror(rc, err, sizeof err);
      snprintf(o->error, sizeof o->error, "write failed: %s", err);
      o->dropped++;
      if (o->network) {
        o->state = OS_RETRYING;
        q_clear(o);
        pthread_mutex_unlock(&o->mu);
        HD_LOGW("egress", "output %s: %s; reconnecting", o->url, o->error);
        close_output(oc, 0);
        oc = NULL;
        continue;
      }
      o->state = OS_FAILED;
      pthread_mutex_unlock(&o->mu);
      break;
    }
    o->packets++;
    o->bytes += (uint64_t)size;
    pthread_mutex_unlock(&o->mu);
  }
  if (oc) close_output(oc, 1);
  pthread_mutex_lock(&o->mu);
  if (o->state == OS_ACTIVE || o->state == OS_CONNECTING) o->state = OS_FINISHED;
  q_clear(o);
  pthread_mutex_unlock(&o->mu);
  return NULL;
}

/* A copy with its own data: each output thread then owns its bytes outright
 * (a shared refcounted buffer would be freed by whichever thread drops the
 * last reference, ordered only by libavutil's atomics, which ThreadSanitizer
 * cannot see). */
static AVPacket *deep_copy(const AVPacket *in) {
  AVPacket *c = av_packet_alloc();
  if (!c) return NULL;
  if (av_new_packet(c, in->size) < 0 || av_packet_copy_props(c, in) < 0) {
    av_packet_free(&c);
    return NULL;
  }
  memcpy(c->data, in->data, (size_t)in->size);
  c->stream_index = in->stream_index;
  return c;
}

/* hands a copy of the packet to every output that is connected */
static void fan_out(hd_av_out_t *a, const AVPacket *pkt) {
  for (int i = 0; i < a->n_out; i++) {
    output_t *o = &a->out[i];
    pthread_mutex_lock(&o->mu);
    if (o->state != OS_ACTIVE) {
      pthread_mutex_unlock(&o->mu);
      continue;
    }
    if (o->qn >= HD_AV_OUT_QUEUE || o->qbytes + (size_t)pkt->size > HD_AV_OUT_QUEUE_BYTES) {
      o->dropped++; /* the output is behind: its receiver sees a gap, the encoder never waits */
      pthread_mutex_unlock(&o->mu);
      continue;
    }
    qpkt_t *q = malloc(sizeof *q);
    AVPacket *c = q ? deep_copy(pkt) : NULL;
    if (!c) {
      free(q);
      o->dropped++;
      pthread_mutex_unlock(&o->mu);
      continue;
    }
    q->pkt = c;
    q->next = NULL;
    if (o->tail)
      o->tail->next = q;
    else
      o->head = q;
    o->tail = q;
    o->qn++;
    o->qbytes += (size_t)c->size;
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
  }
}

static int drain(hd_av_out_t *a, AVCodecContext *enc, int stream) {
  AVPacket *pkt = av_packet_alloc();
  if (!pkt) return HD_ENOMEM;
  int rc;
  while ((rc = avcodec_receive_packet(enc, pkt)) == 0) {
    pkt->stream_index = stream;
    fan_out(a, pkt);
    av_packet_unref(pkt);
  }
  av_packet_free(&pkt);
  return rc == AVERROR(EAGAIN) || rc == AVERROR_EOF ? 0 : HD_EIO;
}

/* ---- encoders ---- */

int hd_av_out_open(hd_av_out_t **out, const hd_av_out_config_t *cfg, char *why, size_t whycap) {
  if (!out || !cfg || cfg->n_urls < 1 || cfg->n_urls > HD_AV_OUT_MAX_URLS) {
    snprintf(why, whycap, "1..%d outputs", HD_AV_OUT_MAX_URLS);
    return HD_EINVAL;
  }
  if (cfg->video && (cfg->width < 16 || cfg->height < 16 || cfg->width > 3840 || cfg->height > 2160 ||
                     (cfg->width | cfg->height) & 1 || cfg->fps < 1 || cfg->fps > 60)) {
    snprintf(why, whycap, "video size must be even, 16x16..3840x2160, fps 1..60");
    return HD_EINVAL;
  }
  for (int i = 0; i < cfg->n_urls; i++) {
    int net;
    if (!cfg->urls[i] || strlen(cfg->urls[i]) >= 1024 || !fmt_of(cfg->urls[i], &net)) {
      snprintf(why, whycap,
               "output %d: want a path ending in .mp4, .m3u8 or .flv, or an rtmp:// / rtmps:// URL", i);
      return HD_EINVAL;
    }
  }
  hd_av_out_t *a = calloc(1, sizeof *a);
  if (!a) return HD_ENOMEM;
  a->cfg = *cfg;
  int rc = HD_EUNSUPPORTED;
  if (cfg->video) {
    const AVCodec *vc = avcodec_find_encoder_by_name("libx264");
    if (!vc) {
      snprintf(why, whycap, "FFmpeg has no libx264 encoder");
      goto fail;
    }
    a->venc = avcodec_alloc_context3(vc);
    if (!a->venc) goto nomem;
    a->venc->width = cfg->width;
    a->venc->height = cfg->height;
    a->venc->time_base = (AVRational){1, cfg->fps};
    a->venc->framerate = (AVRational){cfg->fps, 1};
    a->venc->pix_fmt = AV_PIX_FMT_YUV420P;
    a->venc->gop_size = cfg->fps * 2; /* a keyframe every 2 s: HLS segments, RTMP joins */
    a->venc->max_b_frames = 0;
    a->venc->bit_rate = (int64_t)(cfg->video_kbps > 0 ? cfg->video_kbps : 2000) * 1000;
    a->venc->thread_count = 2;
    a->venc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    AVDictionary *o = NULL;
    av_dict_set(&o, "preset", "veryfast", 0);
    av_dict_set(&o, "tune", "zerolatency", 0);
    int r = avcodec_open2(a->venc, vc, &o);
    av_dict_free(&o);
    if (r < 0) {
      snprintf(why, whycap, "cannot open the H.264 encoder");
      goto fail;
    }
    a->vframe = av_frame_alloc();
    if (!a->vframe) goto nomem;
  }
  const AVCodec *ac = avcodec_find_encoder(AV_CODEC_ID_AAC);
  if (!ac) {
    snprintf(why, whycap, "FFmpeg has no AAC encoder");
    goto fail;
  }
  a->aenc = avcodec_alloc_context3(ac);
  if (!a->aenc) goto nomem;
  a->aenc->sample_fmt = AV_SAMPLE_FMT_FLTP;
  a->aenc->sample_rate = 48000;
  av_channel_layout_default(&a->aenc->ch_layout, 1);
  a->aenc->bit_rate = (int64_t)(cfg->audio_kbps > 0 ? cfg->audio_kbps : 64) * 1000;
  a->aenc->time_base = (AVRational){1, 48000};
  a->aenc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  if (avcodec_open2(a->aenc, ac, NULL) < 0) {
    snprintf(why, whycap, "cannot open the AAC encoder");
    goto fail;
  }
  a->aframe_size = a->aenc->frame_size > 0 ? a->aenc->frame_size : 1024;
  a->abuf = calloc((size_t)a->aframe_size, sizeof *a->abuf);
  a->aframe = av_frame_alloc();
  if (!a->abuf || !a->aframe) goto nomem;
  for (int i = 0; i < cfg->n_urls; i++) {
    output_t *o = &a->out[i];
    o->owner = a;
    snprintf(o->url, sizeof o->url, "%s", cfg->urls[i]);
    o->fmt = fmt_of(o->url, &o->network);
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cv, NULL);
    o->state = OS_CONNECTING;
    a->n_out++;
    if (pthread_create(&o->th, NULL, output_main, o) != 0) goto nomem;
    o->th_started = 1;
  }
  *out = a;
  return 0;
nomem:
  rc = HD_ENOMEM;
  snprintf(why, whycap, "out of memory");
fail:
  hd_av_out_close(a, NULL);
  return rc;
}

int hd_av_out_video(hd_av_out_t *a, const hd_i420_t *pic, int64_t index) {
  if (!a || !a->venc) return HD_EINVAL;
  AVFrame *f = a->vframe;
  f->format = AV_PIX_FMT_YUV420P;
  f->width = pic->width;
  f->height = pic->height;
  for (int i = 0; i < 3; i++) {
    f->data[i] = pic->plane[i];
    f->linesize[i] = pic->stride[i];
  }
  f->pts = index;
  if (avcodec_send_frame(a->venc, f) < 0) return HD_EIO;
  return drain(a, a->venc, 0);
}

int hd_av_out_audio(hd_av_out_t *a, const int16_t *pcm, size_t n) {
  if (!a) return HD_EINVAL;
  int stream = a->venc ? 1 : 0;
  for (size_t i = 0; i < n; i++) {
    a->abuf[a->abuf_n++] = (float)pcm[i] / 32768.0f;
    if (a->abuf_n < a->aframe_size) continue;
    AVFrame *f = a->aframe;
    av_frame_unref(f);
    f->format = AV_SAMPLE_FMT_FLTP;
    f->nb_samples = a->aframe_size;
    f->sample_rate = 48000;
    av_channel_layout_default(&f->ch_layout, 1);
    if (av_frame_get_buffer(f, 0) < 0) return HD_ENOMEM;
    memcpy(f->data[0], a->abuf, sizeof(float) * (size_t)a->aframe_size);
    f->pts = a->apts;
    a->apts += a->aframe_size;
    a->abuf_n = 0;
    if (avcodec_send_frame(a->aenc, f) < 0) return HD_EIO;
    int rc = drain(a, a->aenc, stream);
    if (rc < 0) return rc;
  }
  return 0;
}

void hd_av_out_status(hd_av_out_t *a, json_t *arr) {
  if (!a) return;
  for (int i = 0; i < a->n_out; i++) {
    output_t *o = &a->out[i];
    pthread_mutex_lock(&o->mu);
    json_t *j = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I}", "url", o->url, "state", os_names[o->state], "attempts",
                          (json_int_t)o->attempts, "bytes", (json_int_t)o->bytes, "packets",
                          (json_int_t)o->packets, "dropped_packets", (json_int_t)o->dropped);
    if (o->error[0]) json_object_set_new(j, "error", json_string(o->error));
    pthread_mutex_unlock(&o->mu);
    json_array_append_new(arr, j);
  }
}

int hd_av_out_close(hd_av_out_t *a, json_t *final_status) {
  if (!a) return 0;
  /* flush the encoders: the last frames reach the outputs */
  if (a->venc && avcodec_is_open(a->venc) && avcodec_send_frame(a->venc, NULL) == 0) drain(a, a->venc, 0);
  if (a->aenc && avcodec_is_open(a->aenc) && a->abuf) {
    if (a->abuf_n > 0) { /* pad the last frame with silence */
      int16_t z[2048] = {0};
      hd_av_out_audio(a, z, (size_t)(a->aframe_size - a->abuf_n));
    }
    if (avcodec_send_frame(a->aenc, NULL) == 0) drain(a, a->aenc, a->venc ? 1 : 0);
  }
  int rc = 0;
  for (int i = 0; i < a->n_out; i++) {
    output_t *o = &a->out[i];
    pthread_mutex_lock(&o->mu);
    o->stop = 1;
    if (o->state != OS_ACTIVE) o->abort = 1; /* an active output drains its queue first */
    pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
    if (o->th_started) pthread_join(o->th, NULL);
    if (o->state == OS_FAILED) rc = HD_EIO;
  }
  if (final_status) hd_av_out_status(a, final_status);
  for (int i = 0; i < a->n_out; i++) {
    pthread_mutex_destroy(&a->out[i].mu);
    pthread_cond_destroy(&a->out[i].cv);
  }
  avcodec_free_context(&a->venc);
  avcodec_free_context(&a->aenc);
  av_frame_free(&a->vframe);
  av_frame_free(&a->aframe);
  free(a->abuf);
  free(a);
  return rc;
}
