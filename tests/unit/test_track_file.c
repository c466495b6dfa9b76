/* Tests for one recorded track (egress/track_file.h) with real codecs and
 * FFmpeg's demuxers as the reader: Opus into Ogg and WebM, VP8 into WebM;
 * the file starts at the first keyframe; durations and frame counts read back
 * right; timestamps that do not advance are moved forward; and a file copied
 * while still being written (what a kill -9 leaves) opens and decodes. */
#include "hd_test.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "egress/track_file.h"
#include "media/h264_depay.h"
#include "media/i420.h"
#include "media/opus_codec.h"
#include "media/test_signal.h"
#include "media/vp8_codec.h"

static char dir[64];

static int setup(void **state) {
  snprintf(dir, sizeof dir, "/tmp/hd-track-file-XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) == 0 ? 0 : -1;
}

typedef struct {
  int packets, keyframes;
  double duration_s; /* container duration, -1 if none */
  double last_pts_s;
  int dts_not_increasing; /* packets whose dts is not above the one before (an invalid MP4) */
  enum AVCodecID codec;
  int width, height;
} probe_t;

static int probe(const char *path, probe_t *p) {
  memset(p, 0, sizeof *p);
  AVFormatContext *ic = NULL;
  if (avformat_open_input(&ic, path, NULL, NULL) < 0) return -1;
  if (avformat_find_stream_info(ic, NULL) < 0) {
    avformat_close_input(&ic);
    return -1;
  }
  AVStream *st = ic->streams[0];
  p->codec = st->codecpar->codec_id;
  p->width = st->codecpar->width;
  p->height = st->codecpar->height;
  p->duration_s = ic->duration == AV_NOPTS_VALUE ? -1 : ic->duration / (double)AV_TIME_BASE;
  AVPacket *pkt = av_packet_alloc();
  int64_t last_dts = AV_NOPTS_VALUE;
  while (av_read_frame(ic, pkt) >= 0) {
    if (pkt->dts != AV_NOPTS_VALUE && last_dts != AV_NOPTS_VALUE && pkt->dts <= last_dts)
      p->dts_not_increasing++;
    if (pkt->dts != AV_NOPTS_VALUE) last_dts = pkt->dts;
    p->packets++;
    p->keyframes += (pkt->flags & AV_PKT_FLAG_KEY) != 0;
    if (pkt->pts != AV_NOPTS_VALUE) p->last_pts_s = pkt->pts * av_q2d(st->time_base);
    av_packet_unref(pkt);
  }
  av_packet_free(&pkt);
  avformat_close_input(&ic);
  return 0;
}

static void opus_file(hd_track_container_t cont, const char *name) {
  char path[128];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  hd_opus_enc_config_t oc;
  hd_opus_enc_config_default(&oc);
  hd_opus_enc_t enc;
  assert_int_equal(hd_opus_enc_init(&enc, &oc), 0);
  hd_tone_t tone;
  assert_int_equal(hd_tone_init(&tone, 440, 0.3, 48000, 1), 0);
  hd_track_file_t *f;
  assert_int_equal(hd_track_file_open(&f, path, HD_TRACK_CODEC_OPUS, cont), 0);
  int16_t pcm[960];
  uint8_t pkt[HD_OPUS_MAX_PACKET];
  for (int i = 0; i < 250; i++) { /* 5 s */
    hd_tone_fill(&tone, pcm, 960);
    int n = hd_opus_encode(&enc, pcm, pkt, sizeof pkt);
    assert_true(n > 0);
    assert_int_equal(hd_track_file_write(f, pkt, (size_t)n, 0, 1000000 + i * 20000), 1);
  }
  hd_track_file_stats_t st;
  assert_int_equal(hd_track_file_close(f, &st), 0);
  assert_int_equal(st.frames, 250);
  assert_int_equal(st.start_us, 1000000);
  assert_int_equal(st.duration_us, 5000000);
  struct stat sb;
  assert_int_equal(stat(path, &sb), 0);
  assert_int_equal((uint64_t)sb.st_size, st.bytes);
  probe_t p;
  assert_int_equal(probe(path, &p), 0);
  assert_int_equal(p.codec, AV_CODEC_ID_OPUS);
  assert_int_equal(p.packets, 250);
  assert_true(p.duration_s > 4.9 && p.duration_s < 5.1);
  hd_opus_enc_free(&enc);
}

static void test_opus_ogg(void **state) { opus_file(HD_TRACK_CONTAINER_OGG, "a.ogg"); }
static void test_opus_webm(void **state) { opus_file(HD_TRACK_CONTAINER_WEBM, "a.webm"); }

/* DTX / a muted stretch: 1 s without packets is filled with 50 silence
 * frames, so the packets after it play at their time (readers play audio
 * packets back to back). */
static void test_opus_gap_filled(void **state) {
  char path[128];
  snprintf(path, sizeof path, "%s/gap.ogg", dir);
  hd_opus_enc_config_t oc;
  hd_opus_enc_config_default(&oc);
  hd_opus_enc_t enc;
  assert_int_equal(hd_opus_enc_init(&enc, &oc), 0);
  hd_tone_t tone;
  assert_int_equal(hd_tone_init(&tone, 440, 0.3, 48000, 1), 0);
  hd_track_file_t *f;
  assert_int_equal(hd_track_file_open(&f, path, HD_TRACK_CODEC_OPUS, HD_TRACK_CONTAINER_OGG), 0);
  int16_t pcm[960];
  uint8_t pkt[HD_OPUS_MAX_PACKET];
  for (int i = 0; i < 100; i++) { /* 1 s, a 1 s gap, 1 s */
    hd_tone_fill(&tone, pcm, 960);
    int n = hd_opus_encode(&enc, pcm, pkt, sizeof pkt);
    int64_t t = i * 20000 + (i >= 50 ? 1000000 : 0);
    assert_int_equal(hd_track_file_write(f, pkt, (size_t)n, 0, t), 1);
  }
  hd_track_file_stats_t st;
  assert_int_equal(hd_track_file_close(f, &st), 0);
  assert_int_equal(st.frames, 100);
  assert_int_equal(st.silence, 50);
  assert_int_equal(st.duration_us, 3000000);
  probe_t p;
  assert_int_equal(probe(path, &p), 0);
  assert_int_equal(p.packets, 150);
  assert_true(p.duration_s > 2.9 && p.duration_s < 3.1);
  hd_opus_enc_free(&enc);
}

static void copy_file(const char *from, const char *to) {
  FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
  assert_non_null(a);
  assert_non_null(b);
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, a)) > 0)
    assert_int_equal(fwrite(buf, 1, n, b), n);
  fclose(a);
  fclose(b);
}

/* VP8 at 30 fps with a keyframe every 30 frames; the first 5 frames are
 * deltas (the recording joined mid-stream): dropped until the keyframe. A
 * copy taken after 3 s, before the close, stands for a kill -9. */
static void test_vp8_webm_and_crash_copy(void **state) {
  char path[128], crash[128];
  snprintf(path, sizeof path, "%s/v.webm", dir);
  snprintf(crash, sizeof crash, "%s/v_killed.webm", dir);
  hd_vp8_enc_config_t c;
  hd_vp8_enc_config_default(&c);
  c.width = 320;
  c.height = 240;
  c.keyframe_max = 30;
  hd_vp8_enc_t enc;
  assert_int_equal(hd_vp8_enc_init(&enc, &c), 0);
  hd_i420_t pic;
  assert_int_equal(hd_i420_alloc(&pic, 320, 240), 0);
  hd_track_file_t *f;
  assert_int_equal(hd_track_file_open(&f, path, HD_TRACK_CODEC_VP8, HD_TRACK_CONTAINER_WEBM), 0);
  static uint8_t out[1 << 20];
  int written = 0;
  for (int i = 0; i < 155; i++) {
    hd_test_pattern_draw(&pic, (uint32_t)i);
    int key = 0;
    int n = hd_vp8_encode(&enc, &pic, i, out, sizeof out, &key);
    assert_true(n > 0);
    if (i < 5) key = 0; /* pretend the stream was joined after its keyframe */
    if (i < 5) {
      assert_int_equal(hd_track_file_write(f, out + 0, (size_t)n, 0, i * 33333), 0);
      continue;
    }
    int64_t t = i * 33333;
    if (i == 100) t -= 40000; /* goes back in time: moved forward */
    assert_int_equal(hd_track_file_write(f, out, (size_t)n, key, t), i < 30 && !key ? 0 : 1);
    written += i >= 30 || key;
    if (i == 95) copy_file(path, crash);
  }
  hd_track_file_stats_t st;
  assert_int_equal(hd_track_file_close(f, &st), 0);
  assert_int_equal(st.frames, (uint64_t)written);
  assert_int_equal(st.frames, 125); /* from the keyframe at 30 */
  assert_int_equal(st.dropped, 30);
  assert_int_equal(st.adjusted, 1);
  assert_int_equal(st.width, 320);
  assert_int_equal(st.start_us, 30 * 33333);
  probe_t p;
  assert_int_equal(probe(path, &p), 0);
  assert_int_equal(p.codec, AV_CODEC_ID_VP8);
  assert_int_equal(p.width, 320);
  assert_int_equal(p.packets, 125);
  assert_true(p.keyframes >= 5);
  assert_true(p.duration_s > 4.0 && p.duration_s < 4.3); /* 124 intervals of 33 ms */
  /* the interrupted copy: no trailer, still readable up to the last cluster */
  probe_t k;
  assert_int_equal(probe(crash, &k), 0);
  assert_int_equal(k.codec, AV_CODEC_ID_VP8);
  assert_true(k.packets >= 30); /* at least the clusters closed before the copy */
  assert_true(k.last_pts_s > 1.0);
  hd_i420_free(&pic);
  hd_vp8_enc_free(&enc);
}

static void test_errors(void **state) {
  hd_track_file_t *f;
  assert_int_equal(hd_track_file_open(&f, "/tmp/x.ogg", HD_TRACK_CODEC_VP8, HD_TRACK_CONTAINER_OGG),
                   HD_EINVAL);
  assert_int_equal(
      hd_track_file_open(&f, "/nonexistent-dir/x.webm", HD_TRACK_CODEC_VP8, HD_TRACK_CONTAINER_WEBM), HD_EIO);
  assert_int_equal(hd_track_file_open(&f, "/tmp/x.mp4", HD_TRACK_CODEC_VP8, HD_TRACK_CONTAINER_MP4),
                   HD_EINVAL);
  assert_int_equal(hd_track_file_open(&f, "/tmp/x.webm", HD_TRACK_CODEC_H264, HD_TRACK_CONTAINER_WEBM),
                   HD_EINVAL);
  /* an H.264 keyframe without SPS/PPS cannot start the file: dropped, the
   * file waits for one that has them (it does not fail) */
  char path[128];
  snprintf(path, sizeof path, "%s/nosps.mp4", dir);
  assert_int_equal(hd_track_file_open(&f, path, HD_TRACK_CODEC_H264, HD_TRACK_CONTAINER_MP4), 0);
  const uint8_t idr_only[] = {0, 0, 0, 3, 0x65, 0x88, 0x80};
  assert_int_equal(hd_track_file_write(f, idr_only, sizeof idr_only, 1, 0), 0);
  hd_track_file_stats_t st;
  assert_int_equal(hd_track_file_close(f, &st), 0);
  assert_int_equal(st.dropped, 1);
  assert_int_equal(hd_track_file_close(NULL, NULL), 0);
}

/* RTP packets of one Annex-B access unit as a WebRTC sender makes them (RFC
 * 6184 mode 1): SPS + PPS in one STAP-A, NAL units up to 1000 bytes whole,
 * bigger ones in FU-A fragments; the marker on the last. */
typedef struct {
  uint8_t p[64][1100];
  size_t len[64];
  int n;
} pkts_t;

static void packetize(const uint8_t *au, size_t len, pkts_t *o) {
  o->n = 0;
  const uint8_t *nal[64];
  size_t nl[64];
  int k = 0;
  for (size_t i = 0; i + 3 <= len && k < 64;) {
    if (au[i] == 0 && au[i + 1] == 0 && au[i + 2] == 1) {
      if (k) nl[k - 1] = i - (size_t)(nal[k - 1] - au) - (i > 0 && au[i - 1] == 0 ? 1 : 0);
      nal[k++] = au + i + 3;
      i += 3;
    } else
      i++;
  }
  assert_true(k > 0);
  nl[k - 1] = len - (size_t)(nal[k - 1] - au);
  for (int j = 0; j < k; j++) {
    int type = nal[j][0] & 0x1f;
    if (type == 7 && j + 1 < k && (nal[j + 1][0] & 0x1f) == 8) {
      uint8_t *p = o->p[o->n];
      size_t w = 0;
      p[w++] = 0x78;
      for (int m = j; m <= j + 1; m++) {
        p[w++] = (uint8_t)(nl[m] >> 8);
        p[w++] = (uint8_t)nl[m];
        memcpy(p + w, nal[m], nl[m]);
        w += nl[m];
      }
      o->len[o->n++] = w;
      j++;
    } else if (nl[j] <= 1000) {
      memcpy(o->p[o->n], nal[j], nl[j]);
      o->len[o->n++] = nl[j];
    } else {
      for (size_t off = 1; off < nl[j] && o->n < 64; off += 1000) {
        size_t n = nl[j] - off < 1000 ? nl[j] - off : 1000;
        uint8_t *p = o->p[o->n];
        p[0] = (uint8_t)((nal[j][0] & 0xe0) | 28);
        p[1] = (uint8_t)((off == 1 ? 0x80 : 0) | (off + n == nl[j] ? 0x40 : 0) | type);
        memcpy(p + 2, nal[j] + off, n);
        o->len[o->n++] = n + 2;
      }
    }
  }
}

/* H.264 (libx264, a keyframe every 30 frames) through RTP packets and the
 * depacketiser into fragmented MP4: joined after the first IDR (frames 5..29
 * dropped), a packet of frame 70 lost (dropped until the IDR at 90), a copy
 * after frame 95 stands for a kill -9. */
static void test_h264_mp4_and_crash_copy(void **state) {
  const AVCodec *vc = avcodec_find_encoder_by_name("libx264");
  if (!vc) skip();
  av_log_set_level(AV_LOG_ERROR);
  char path[128], crash[128];
  snprintf(path, sizeof path, "%s/v.mp4", dir);
  snprintf(crash, sizeof crash, "%s/v_killed.mp4", dir);
  AVCodecContext *cc = avcodec_alloc_context3(vc);
  cc->width = 320;
  cc->height = 240;
  cc->pix_fmt = AV_PIX_FMT_YUV420P;
  cc->time_base = (AVRational){1, 30};
  cc->gop_size = 30;
  cc->max_b_frames = 0;
  AVDictionary *o = NULL;
  av_dict_set(&o, "preset", "ultrafast", 0);
  av_dict_set(&o, "tune", "zerolatency", 0);
  av_dict_set(&o, "profile", "baseline", 0);
  assert_int_equal(avcodec_open2(cc, vc, &o), 0);
  av_dict_free(&o);
  AVFrame *fr = av_frame_alloc();
  fr->width = 320;
  fr->height = 240;
  fr->format = AV_PIX_FMT_YUV420P;
  assert_int_equal(av_frame_get_buffer(fr, 0), 0);
  hd_i420_t pic;
  assert_int_equal(hd_i420_alloc(&pic, 320, 240), 0);
  hd_h264_depay_t d;
  assert_int_equal(hd_h264_depay_init(&d, 0), 0);
  hd_track_file_t *f;
  assert_int_equal(hd_track_file_open(&f, path, HD_TRACK_CODEC_H264, HD_TRACK_CONTAINER_MP4), 0);
  AVPacket *pkt = av_packet_alloc();
  static pkts_t ps;
  uint16_t seq = 100;
  int written = 0, key_requests = 0;
  for (int i = 0; i < 155; i++) {
    hd_test_pattern_draw(&pic, (uint32_t)i);
    assert_int_equal(av_frame_make_writable(fr), 0);
    for (int y = 0; y < 240; y++)
      memcpy(fr->data[0] + y * fr->linesize[0], pic.plane[0] + y * pic.stride[0], 320);
    for (int y = 0; y < 120; y++) {
      memcpy(fr->data[1] + y * fr->linesize[1], pic.plane[1] + y * pic.stride[1], 160);
      memcpy(fr->data[2] + y * fr->linesize[2], pic.plane[2] + y * pic.stride[2], 160);
    }
    fr->pts = i;
    assert_int_equal(avcodec_send_frame(cc, fr), 0);
    assert_int_equal(avcodec_receive_packet(cc, pkt), 0); /* zerolatency: one out per frame */
    packetize(pkt->data, (size_t)pkt->size, &ps);
    av_packet_unref(pkt);
    if (i < 5) { /* before the recorder joined */
      seq = (uint16_t)(seq + ps.n);
      continue;
    }
    uint32_t ts = (uint32_t)i * 3000;
    for (int j = 0; j < ps.n; j++) {
      if (i == 70 && j == 0) { /* lost */
        seq++;
        continue;
      }
      hd_h264_au_t au;
      int rc = hd_h264_depay_push(&d, seq++, ts, j == ps.n - 1, ps.p[j], ps.len[j], &au);
      assert_true(rc == 0 || rc == 1);
      key_requests += hd_h264_depay_take_key_request(&d);
      if (rc == 1) {
        assert_int_equal(au.ts, ts);
        assert_int_equal(hd_track_file_write(f, au.data, au.len, au.keyframe, (int64_t)au.ts * 100 / 9), 1);
        written++;
        /* an access unit that maps to (nearly) the same time as the one before
         * (a second AU with the same RTP timestamp; found by
         * e2e/egress_h264_loss_chromium): it must still get a later dts in
         * the 90 kHz stream, not just a later microsecond */
        if (i == 100)
          assert_int_equal(hd_track_file_write(f, au.data, au.len, 0, (int64_t)au.ts * 100 / 9 + 2), 1);
      }
    }
    if (i == 95) copy_file(path, crash);
  }
  assert_int_equal(written, 40 + 65); /* 30..69 and 90..154 */
  assert_true(key_requests >= 2);     /* at the start (mid-GOP) and after the loss */
  hd_track_file_stats_t st;
  assert_int_equal(hd_track_file_close(f, &st), 0);
  assert_int_equal(st.frames, 106);
  assert_int_equal(st.width, 320);
  assert_int_equal(st.height, 240);
  probe_t p;
  assert_int_equal(probe(path, &p), 0);
  assert_int_equal(p.codec, AV_CODEC_ID_H264);
  assert_int_equal(p.width, 320);
  assert_int_equal(p.height, 240);
  assert_int_equal(p.packets, 106);
  assert_int_equal(p.dts_not_increasing, 0);
  assert_int_equal(p.keyframes, 5);                      /* IDRs at 30, 60, 90, 120, 150 */
  assert_true(p.duration_s > 4.0 && p.duration_s < 4.3); /* 30 .. 154 at 30 fps */
  probe_t k;
  assert_int_equal(probe(crash, &k), 0);
  assert_int_equal(k.codec, AV_CODEC_ID_H264);
  assert_true(k.packets >= 40); /* the fragments closed before the copy */
  assert_true(k.last_pts_s > 1.0);
  av_packet_free(&pkt);
  av_frame_free(&fr);
  avcodec_free_context(&cc);
  hd_h264_depay_free(&d);
  hd_i420_free(&pic);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_opus_ogg),
      cmocka_unit_test(test_opus_webm),
      cmocka_unit_test(test_opus_gap_filled),
      cmocka_unit_test(test_vp8_webm_and_crash_copy),
      cmocka_unit_test(test_h264_mp4_and_crash_copy),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
