/* One recorded track written with libavformat (see track_file.h). */
#include "egress/track_file.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <opus/opus.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/err.h"
#include "base/log.h"
#include "media/h264_depay.h"
#include "media/vp8_codec.h"

struct hd_track_file {
  char *path;
  hd_track_codec_t codec;
  hd_track_container_t container;
  AVFormatContext *oc;
  AVStream *st;
  int opened; /* header written */
  int failed; /* the muxer failed: further frames are dropped */
  int64_t first_us, last_us, last_end_us;
  int64_t last_dts; /* in the stream's time base; INT64_MIN before the first packet */
  hd_track_file_stats_t st_out;
};

int hd_track_file_open(hd_track_file_t **out, const char *path, hd_track_codec_t codec,
                       hd_track_container_t container) {
  if (!out || !path ||
      (codec != HD_TRACK_CODEC_OPUS && codec != HD_TRACK_CODEC_VP8 && codec != HD_TRACK_CODEC_H264) ||
      (container != HD_TRACK_CONTAINER_WEBM && container != HD_TRACK_CONTAINER_OGG &&
       container != HD_TRACK_CONTAINER_MP4) ||
      (container == HD_TRACK_CONTAINER_OGG && codec != HD_TRACK_CODEC_OPUS) ||
      ((container == HD_TRACK_CONTAINER_MP4) != (codec == HD_TRACK_CODEC_H264)))
    return HD_EINVAL;
  hd_track_file_t *f = calloc(1, sizeof *f);
  if (!f) return HD_ENOMEM;
  f->last_dts = INT64_MIN;
  f->path = strdup(path);
  if (!f->path) {
    free(f);
    return HD_ENOMEM;
  }
  f->codec = codec;
  f->container = container;
  f->first_us = -1;
  f->st_out.start_us = -1;
  /* create the file now so that a bad folder is an error at start, not later */
  AVIOContext *pb = NULL;
  if (avio_open(&pb, path, AVIO_FLAG_WRITE) < 0) {
    HD_LOGE("egress", "cannot create %s", path);
    free(f->path);
    free(f);
    return HD_EIO;
  }
  avio_closep(&pb);
  *out = f;
  return 0;
}

/* OpusHead (RFC 7845 §5.1): version 1, channels, pre-skip 0 (the packets are
 * the sender's as they were sent; its encoder delay is not known here), the
 * input rate 48 kHz, gain 0, mapping family 0. */
static int opus_head(uint8_t *h, int channels) {
  memcpy(h, "OpusHead", 8);
  h[8] = 1;
  h[9] = (uint8_t)channels;
  h[10] = h[11] = 0;
  h[12] = 0x80;
  h[13] = 0xbb;
  h[14] = h[15] = 0; /* 48000 little-endian */
  h[16] = h[17] = 0;
  h[18] = 0;
  return 19;
}

/* Width and height from the SPS, through libavcodec's H.264 parser (it reads
 * the SPS of the AVCC access unit once it has the extradata). */
static void h264_size(const uint8_t *au, size_t len, int *w, int *h) {
  *w = *h = 0;
  const AVCodec *dec = avcodec_find_decoder(AV_CODEC_ID_H264);
  AVCodecParserContext *pc = av_parser_init(AV_CODEC_ID_H264);
  AVCodecContext *cc = dec ? avcodec_alloc_context3(dec) : NULL;
  uint8_t *copy = av_mallocz(len + AV_INPUT_BUFFER_PADDING_SIZE);
  if (pc && cc && copy) {
    /* Annex-B copy: the parser splits on start codes */
    size_t off = 0;
    while (len - off >= 4) {
      size_t n = (size_t)au[off] << 24 | (size_t)au[off + 1] << 16 | (size_t)au[off + 2] << 8 | au[off + 3];
      if (n > len - off - 4) break;
      copy[off] = copy[off + 1] = copy[off + 2] = 0;
      copy[off + 3] = 1;
      memcpy(copy + off + 4, au + off + 4, n);
      off += 4 + n;
    }
    uint8_t *o = NULL;
    int olen = 0;
    av_parser_parse2(pc, cc, &o, &olen, copy, (int)off, 0, 0, 0);
    av_parser_parse2(pc, cc, &o, &olen, NULL, 0, 0, 0, 0); /* flush */
    if (pc->width > 0 && pc->height > 0) {
      *w = pc->width;
      *h = pc->height;
    } else if (cc->width > 0 && cc->height > 0) {
      *w = cc->width;
      *h = cc->height;
    }
  }
  av_free(copy);
  avcodec_free_context(&cc);
  if (pc) av_parser_close(pc);
}

static int start(hd_track_file_t *f, const uint8_t *data, size_t len) {
  const char *fmt = f->container == HD_TRACK_CONTAINER_OGG   ? "ogg"
                    : f->container == HD_TRACK_CONTAINER_MP4 ? "mp4"
                                                             : "webm";
  if (avformat_alloc_output_context2(&f->oc, NULL, fmt, f->path) < 0 || !f->oc) return HD_ENOMEM;
  f->st = avformat_new_stream(f->oc, NULL);
  if (!f->st) return HD_ENOMEM;
  AVCodecParameters *par = f->st->codecpar;
  if (f->codec == HD_TRACK_CODEC_OPUS) {
    int ch = len > 0 && (data[0] & 0x04) ? 2 : 1; /* TOC stereo bit (RFC 6716 §3.1) */
    par->codec_type = AVMEDIA_TYPE_AUDIO;
    par->codec_id = AV_CODEC_ID_OPUS;
    par->sample_rate = 48000;
    av_channel_layout_default(&par->ch_layout, ch);
    par->extradata = av_mallocz(19 + AV_INPUT_BUFFER_PADDING_SIZE);
    if (!par->extradata) return HD_ENOMEM;
    par->extradata_size = opus_head(par->extradata, ch);
    f->st->time_base = (AVRational){1, 48000};
  } else if (f->codec == HD_TRACK_CODEC_H264) {
    uint8_t cfg[2 * HD_H264_PARAM_MAX + 16];
    int n = hd_h264_avcc_from_au(data, len, cfg, sizeof cfg);
    if (n < 0) return n == HD_ENOMEM ? HD_ENOMEM : HD_EPROTO; /* a keyframe without SPS/PPS */
    par->codec_type = AVMEDIA_TYPE_VIDEO;
    par->codec_id = AV_CODEC_ID_H264;
    par->extradata = av_mallocz((size_t)n + AV_INPUT_BUFFER_PADDING_SIZE);
    if (!par->extradata) return HD_ENOMEM;
    memcpy(par->extradata, cfg, (size_t)n);
    par->extradata_size = n;
    h264_size(data, len, &par->width, &par->height);
    f->st_out.width = par->width;
    f->st_out.height = par->height;
    f->st->time_base = (AVRational){1, 90000};
  } else {
    int w = 0, h = 0;
    hd_vp8_keyframe_size(data, len, &w, &h);
    par->codec_type = AVMEDIA_TYPE_VIDEO;
    par->codec_id = AV_CODEC_ID_VP8;
    par->width = w;
    par->height = h;
    f->st_out.width = w;
    f->st_out.height = h;
    f->st->time_base = (AVRational){1, 1000};
  }
  if (avio_open(&f->oc->pb, f->path, AVIO_FLAG_WRITE) < 0) return HD_EIO;
  /* flush after every packet: the bytes are in the file (page cache) even if
   * the process dies the next moment */
  f->oc->flags |= AVFMT_FLAG_FLUSH_PACKETS;
  AVDictionary *opt = NULL;
  if (f->container == HD_TRACK_CONTAINER_MP4) {
    av_dict_set(&opt, "movflags", "frag_keyframe+empty_moov+default_base_moof", 0);
    av_dict_set(&opt, "frag_duration", "1000000", 0); /* µs: a fragment at least every second */
  } else if (f->container == HD_TRACK_CONTAINER_WEBM) {
    av_dict_set(&opt, "cluster_time_limit", "1000", 0);
  } else {
    av_dict_set(&opt, "page_duration", "1000000", 0); /* µs */
  }
  int rc = avformat_write_header(f->oc, &opt);
  av_dict_free(&opt);
  if (rc < 0) return HD_EIO;
  f->opened = 1;
  return 0;
}

static int64_t frame_dur_us(const hd_track_file_t *f, const uint8_t *data, size_t len) {
  if (f->codec == HD_TRACK_CODEC_OPUS) {
    int n = opus_packet_get_nb_samples(data, (opus_int32)len, 48000);
    return n > 0 ? (int64_t)n * 1000000 / 48000 : 20000;
  }
  return 0; /* video: the gap to the next frame */
}

#define SILENCE_MAX 180000 /* one hour of 20 ms frames in one gap */

/* one packet into the muxer at timeline time t_us */
static int put(hd_track_file_t *f, const uint8_t *data, size_t len, int keyframe, int64_t t_us, int64_t dur,
               int counted) {
  AVPacket *pkt = av_packet_alloc();
  if (!pkt) return HD_ENOMEM;
  if (av_new_packet(pkt, (int)len) < 0) {
    av_packet_free(&pkt);
    return HD_ENOMEM;
  }
  memcpy(pkt->data, data, len);
  AVRational us = {1, 1000000};
  int64_t rel = t_us - f->first_us;
  pkt->pts = pkt->dts = av_rescale_q(rel, us, f->st->time_base);
  /* later in microseconds is not always later in the stream's ticks (1/90000
   * for H.264): the muxer refuses an equal dts, so move it one tick on */
  if (pkt->dts <= f->last_dts) {
    pkt->pts = pkt->dts = f->last_dts + 1;
    if (!counted) f->st_out.adjusted++;
  }
  pkt->duration = av_rescale_q(dur, us, f->st->time_base);
  pkt->stream_index = 0;
  if (keyframe || f->codec == HD_TRACK_CODEC_OPUS) pkt->flags |= AV_PKT_FLAG_KEY;
  int64_t dts = pkt->dts;
  int rc = av_write_frame(f->oc, pkt);
  av_packet_free(&pkt);
  if (rc < 0) return HD_EIO;
  f->last_dts = dts;
  f->last_us = t_us;
  int64_t end = t_us + dur;
  if (end > f->last_end_us) f->last_end_us = end;
  f->st_out.duration_us = f->last_end_us - f->first_us;
  int64_t pos = avio_tell(f->oc->pb);
  if (pos > 0) f->st_out.bytes = (uint64_t)pos;
  return 0;
}

int hd_track_file_write(hd_track_file_t *f, const uint8_t *data, size_t len, int keyframe, int64_t t_us) {
  if (!f || !data || !len) return HD_EINVAL;
  if (f->failed) {
    f->st_out.dropped++;
    return HD_EIO;
  }
  if (!f->opened) {
    if (f->codec != HD_TRACK_CODEC_OPUS && !keyframe) { /* a video file starts at a keyframe */
      f->st_out.dropped++;
      return 0;
    }
    uint8_t cfg[2 * HD_H264_PARAM_MAX + 16];
    if (f->codec == HD_TRACK_CODEC_H264 && hd_h264_avcc_from_au(data, len, cfg, sizeof cfg) < 0) {
      f->st_out.dropped++; /* no SPS/PPS in it: wait for a keyframe that has them */
      return 0;
    }
    int rc = start(f, data, len);
    if (rc < 0) {
      HD_LOGE("egress", "cannot start %s: %s", f->path, hd_strerror(rc));
      f->failed = 1;
      f->st_out.dropped++;
      return HD_EIO;
    }
    f->first_us = t_us;
    f->st_out.start_us = t_us;
    f->last_us = t_us - 1;
  }
  int adjusted = t_us <= f->last_us;
  if (adjusted) {
    t_us = f->last_us + 1;
    f->st_out.adjusted++;
  }
  if (f->codec == HD_TRACK_CODEC_OPUS && f->st_out.frames && t_us - f->last_end_us >= 30000) {
    /* a gap: 20 ms CELT silence frames (TOC 0xF8: fullband 20 ms mono, RFC 6716 §3.1) */
    static const uint8_t silence[3] = {0xf8, 0xff, 0xfe};
    int64_t t = f->last_end_us;
    for (int k = 0; t + 20000 <= t_us + 5000 && k < SILENCE_MAX; k++, t += 20000)
      if (put(f, silence, sizeof silence, 0, t, 20000, 0) == 0) f->st_out.silence++;
  }
  int rc = put(f, data, len, keyframe, t_us, frame_dur_us(f, data, len), adjusted);
  if (rc < 0) {
    f->st_out.dropped++;
    return rc;
  }
  f->st_out.frames++;
  return 1;
}

void hd_track_file_stats(const hd_track_file_t *f, hd_track_file_stats_t *out) {
  if (f && out) *out = f->st_out;
}

int hd_track_file_close(hd_track_file_t *f, hd_track_file_stats_t *out) {
  if (!f) return 0;
  int rc = 0;
  if (f->opened) {
    if (av_write_trailer(f->oc) < 0) rc = HD_EIO;
    int64_t pos = avio_tell(f->oc->pb);
    if (pos > 0) f->st_out.bytes = (uint64_t)pos;
  }
  if (f->oc) {
    if (f->oc->pb) avio_closep(&f->oc->pb);
    avformat_free_context(f->oc);
  }
  struct stat sb; /* the trailer seeks back (Duration, Cues): the size is the file's */
  if (stat(f->path, &sb) == 0) f->st_out.bytes = (uint64_t)sb.st_size;
  if (out) *out = f->st_out;
  free(f->path);
  free(f);
  return rc;
}
