/* `hudong sub`: the native SDK (include/hudong/client.h) from the command line:
 * joins a room, receives and decodes every remote track, writes audio to WAV
 * and video to Y4M (or IVF with --ivf) in --out, prints live stats once a
 * second and a summary at the end (JSON with --json). The summary also checks
 * content for the e2e tests: the test pattern's burnt-in counter
 * (media/test_signal.h) read from every decoded picture, and the dominant
 * frequency of each audio track (median of per-100 ms zero-crossing
 * estimates, robust to a few concealed frames). */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "cmd/cmd.h"
#include "hudong/client.h"
#include "media/i420.h"
#include "media/media_file.h"
#include "media/test_signal.h"
#include "media/vp8_codec.h"

#define MAX_TRACKS 32
#define BLOCK 4800 /* 100 ms at 48 kHz */
#define MAX_EST 6000

static volatile sig_atomic_t g_stop;
static void on_sig(int s) { g_stop = 1; }

typedef struct {
  char sid[64], identity[128], path[600];
  int kind;
  FILE *f;
  /* video */
  int w, h, ivf;
  uint64_t frames, frames_written, ivf_frames;
  int64_t counter_first, counter_last;
  uint64_t counter_read, counter_bad, counter_backwards, counter_distinct;
  uint32_t ivf_ts0;
  /* audio */
  uint64_t samples, data_bytes, concealed_frames, frames_audio;
  uint64_t conceal_run, longest_conceal_run; /* consecutive concealed frames: a speech gap */
  int16_t block[BLOCK];
  size_t bfill;
  float est[MAX_EST];
  size_t n_est;
  hd_client_track_stats_t last; /* latest stats */
  int have_stats;
} track_t;

typedef struct {
  const char *out;
  int json, ivf, quiet;
  track_t t[MAX_TRACKS];
  int n;
  hd_client_state_t state;
  int err;
  char reason[256];
  uint64_t data_msgs;
} sub_t;

static void usage(FILE *f) {
  fprintf(f, "usage: hudong sub (--url U | --cluster C) --token T --out DIR [--duration S] [--json] [--ivf]\n"
             "                  [--name N] [--quiet] [--fallback U2,U3,...] [--view WxH]\n"
             "  --view: the size video is shown at (default: full size); told to the node per video track\n"
             "  (track_settings), which then sends the smallest simulcast layer covering it\n"
             "  --fallback: other nodes of a cluster, rejoined in turn when the connection to U is lost\n"
             "  (with --cluster, the route's other nodes are added)\n"
             "  joins the room of token T at U (http://host:port, https://, ws:// or wss://; /rtc\n"
             "  optional), receives every remote track,\n"
             "  (--cluster C: any node of a cluster, http://host:port; the node is chosen by its /api/route\n"
             "  with the RTTs measured to the candidates, docs/overlay.md)\n"
             "  writes audio to DIR/<identity>_<track>.wav and video to .y4m (.ivf with --ivf),\n"
             "  prints live stats every second and a summary at the end (JSON with --json)\n");
}

static track_t *track(sub_t *s, const char *sid, const char *identity, int kind) {
  if (!sid[0]) sid = "unknown";
  for (int i = 0; i < s->n; i++)
    if (!strcmp(s->t[i].sid, sid) && s->t[i].kind == kind) return &s->t[i];
  if (s->n == MAX_TRACKS) return NULL;
  track_t *t = &s->t[s->n++];
  memset(t, 0, sizeof *t);
  snprintf(t->sid, sizeof t->sid, "%s", sid[0] ? sid : "unknown");
  snprintf(t->identity, sizeof t->identity, "%s", identity[0] ? identity : "unknown");
  t->kind = kind;
  t->counter_first = t->counter_last = -1;
  t->ivf = s->ivf;
  /* identities come from tokens: keep file names tame */
  char id[64];
  size_t k = 0;
  for (const char *p = t->identity; *p && k < sizeof id - 1; p++)
    id[k++] =
        (char)((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-'
                   ? *p
                   : '_');
  id[k] = 0;
  char sidc[64], path[sizeof t->path];
  memcpy(sidc, t->sid, sizeof sidc);
  snprintf(path, sizeof path, "%s/%s_%s.%s", s->out, id, sidc,
           kind == HD_CLIENT_AUDIO ? "wav"
           : s->ivf                ? "ivf"
                                   : "y4m");
  memcpy(t->path, path, sizeof path);
  t->f = fopen(t->path, "wb");
  if (!t->f) fprintf(stderr, "hudong sub: %s: %s\n", t->path, strerror(errno));
  if (t->f && kind == HD_CLIENT_AUDIO) {
    uint8_t hdr[HD_WAV_HEADER_LEN];
    hd_wav_header_write(hdr, sizeof hdr, 48000, 1, 0);
    fwrite(hdr, 1, sizeof hdr, t->f);
  }
  return t;
}

static void on_audio(void *ud, const hd_client_audio_frame_t *f) {
  sub_t *s = ud;
  track_t *t = track(s, f->track_sid, f->identity, HD_CLIENT_AUDIO);
  if (!t) return;
  t->frames_audio++;
  t->concealed_frames += f->concealed != 0;
  t->conceal_run = f->concealed ? t->conceal_run + 1 : 0;
  if (t->conceal_run > t->longest_conceal_run) t->longest_conceal_run = t->conceal_run;
  t->samples += f->samples;
  if (t->f) {
    /* channel 0 only: the WAV is mono */
    int16_t mono[5760];
    for (size_t i = 0; i < f->samples && i < 5760; i++)
      mono[i] = f->pcm[i * (size_t)f->channels];
    fwrite(mono, 2, f->samples, t->f);
    t->data_bytes += f->samples * 2;
  }
  for (size_t i = 0; i < f->samples; i++) {
    t->block[t->bfill++] = f->pcm[i * (size_t)f->channels];
    if (t->bfill == BLOCK) {
      t->bfill = 0;
      if (hd_pcm_rms(t->block, BLOCK, 1) > 300 && t->n_est < MAX_EST) {
        double hz = hd_tone_estimate_freq(t->block, BLOCK, 1, 48000);
        if (hz > 0) t->est[t->n_est++] = (float)hz;
      }
    }
  }
}

static void on_video(void *ud, const hd_client_video_frame_t *f) {
  sub_t *s = ud;
  track_t *t = track(s, f->track_sid, f->identity, HD_CLIENT_VIDEO);
  if (!t) return;
  t->frames++;
  hd_i420_t pic = {.width = f->width, .height = f->height};
  for (int i = 0; i < 3; i++) {
    pic.plane[i] = (uint8_t *)f->plane[i];
    pic.stride[i] = f->stride[i];
  }
  int cnt = hd_test_pattern_read(&pic);
  if (cnt >= 0) {
    t->counter_read++;
    if (t->counter_last >= 0) {
      int d = (cnt - (int)t->counter_last) & 0xffff;
      if (d == 0) {
        /* same picture again */
      } else if (d < 0x8000) {
        t->counter_distinct++;
      } else {
        t->counter_backwards++;
      }
    } else {
      t->counter_first = cnt;
      t->counter_distinct = 1;
    }
    t->counter_last = cnt;
  } else {
    t->counter_bad++;
  }
  if (t->ivf || !t->f) return;
  if (!t->w) {
    t->w = f->width;
    t->h = f->height;
    char hdr[HD_Y4M_HEADER_MAX];
    int n = hd_y4m_header_write(hdr, sizeof hdr, t->w, t->h, 30, 1);
    fwrite(hdr, 1, (size_t)n, t->f);
  }
  if (f->width != t->w || f->height != t->h) return; /* a Y4M stream has one size */
  fputs("FRAME\n", t->f);
  for (int p = 0; p < 3; p++) {
    int pw = p ? hd_i420_chroma(f->width) : f->width, ph = p ? hd_i420_chroma(f->height) : f->height;
    for (int y = 0; y < ph; y++)
      fwrite(f->plane[p] + (size_t)y * (size_t)f->stride[p], 1, (size_t)pw, t->f);
  }
  t->frames_written++;
}

static void on_encoded(void *ud, const hd_client_encoded_frame_t *f) {
  sub_t *s = ud;
  if (f->kind != HD_CLIENT_VIDEO) return;
  track_t *t = track(s, f->track_sid, f->identity, HD_CLIENT_VIDEO);
  if (!t || !t->f) return;
  if (!t->ivf_frames) {
    if (!f->keyframe) return; /* an IVF file starts at a keyframe */
    int w = 0, h = 0;
    hd_vp8_keyframe_size(f->data, f->len, &w, &h);
    uint8_t hdr[HD_IVF_HEADER_LEN];
    hd_ivf_header_write(hdr, sizeof hdr, w, h, 90000, 1, 0);
    fwrite(hdr, 1, sizeof hdr, t->f);
    t->ivf_ts0 = f->rtp_timestamp;
  }
  uint8_t fh[HD_IVF_FRAME_HEADER_LEN];
  hd_ivf_frame_header_write(fh, sizeof fh, (uint32_t)f->len,
                            (uint64_t)(uint32_t)(f->rtp_timestamp - t->ivf_ts0));
  fwrite(fh, 1, sizeof fh, t->f);
  fwrite(f->data, 1, f->len, t->f);
  t->ivf_frames++;
  t->frames_written++;
}

static void on_state(void *ud, hd_client_state_t st, int err, const char *reason) {
  sub_t *s = ud;
  s->state = st;
  if (err) {
    s->err = err;
    snprintf(s->reason, sizeof s->reason, "%s", reason);
    fprintf(stderr, "hudong sub: %s: %s (%s)\n", hd_client_state_name(st), reason, hd_client_strerror(err));
  } else if (!s->quiet) {
    fprintf(stderr, "hudong sub: %s\n", hd_client_state_name(st));
  }
}

static void on_track(void *ud, const hd_client_track_info_t *t, int published) {
  sub_t *s = ud;
  if (!s->quiet)
    fprintf(stderr, "hudong sub: track %s %s %s from %s\n", t->track_sid,
            published ? "published" : "unpublished", t->kind == HD_CLIENT_AUDIO ? "audio" : "video",
            t->identity);
}

static void on_data(void *ud, const char *from, const char *payload, size_t len) {
  sub_t *s = ud;
  s->data_msgs++;
  if (!s->quiet)
    fprintf(stderr, "hudong sub: data from %s: %.*s\n", from, (int)(len > 200 ? 200 : len), payload);
}

static void on_stats(void *ud, const hd_client_stats_t *st) {
  sub_t *s = ud;
  for (int i = 0; i < st->n_tracks; i++) {
    const hd_client_track_stats_t *x = &st->tracks[i];
    if (x->local) continue;
    track_t *t = track(s, x->track_sid, x->identity, x->kind);
    if (!t) continue;
    t->last = *x;
    t->have_stats = 1;
    if (s->quiet) continue;
    if (x->kind == HD_CLIENT_VIDEO)
      fprintf(stderr,
              "sub %s video %7.1f kb/s loss %4.1f%% jitter %5.1f ms rtt %4.0f ms frames %llu %dx%d freezes "
              "%llu fec %llu rebuilt %llu\n",
              t->sid, x->bitrate_kbps, x->loss_pct, x->jitter_ms, x->rtt_ms, (unsigned long long)x->frames,
              x->width, x->height, (unsigned long long)x->freezes,
              (unsigned long long)x->fec_packets_received, (unsigned long long)x->fec_packets_recovered);
    else
      fprintf(stderr, "sub %s audio %7.1f kb/s loss %4.1f%% jitter %5.1f ms rtt %4.0f ms concealed %.2f%%\n",
              t->sid, x->bitrate_kbps, x->loss_pct, x->jitter_ms, x->rtt_ms, x->concealed_pct);
  }
}

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return x < y ? -1 : x > y;
}

static void json_str(FILE *o, const char *s) {
  fputc('"', o);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\')
      fprintf(o, "\\%c", *s);
    else if ((unsigned char)*s < 0x20)
      fprintf(o, "\\u%04x", *s);
    else
      fputc(*s, o);
  }
  fputc('"', o);
}

static void summary(sub_t *s, double secs, FILE *o) {
  fprintf(o, "{\"duration_s\":%.2f,\"state\":\"%s\",\"error\":", secs, hd_client_state_name(s->state));
  json_str(o, s->err ? s->reason : "");
  fprintf(o, ",\"data_messages\":%llu,\"tracks\":[", (unsigned long long)s->data_msgs);
  for (int i = 0; i < s->n; i++) {
    track_t *t = &s->t[i];
    const hd_client_track_stats_t *x = &t->last;
    fprintf(o, "%s{\"track_sid\":", i ? "," : "");
    json_str(o, t->sid);
    fprintf(o, ",\"identity\":");
    json_str(o, t->identity);
    fprintf(o, ",\"kind\":\"%s\",\"file\":", t->kind == HD_CLIENT_AUDIO ? "audio" : "video");
    json_str(o, t->path);
    fprintf(o,
            ",\"packets\":%llu,\"packets_lost\":%lld,\"loss_pct\":%.2f,\"jitter_ms\":%.2f,\"rtt_ms\":%.1f,"
            "\"nacks\":%llu,\"retransmits\":%llu",
            (unsigned long long)x->packets, (long long)x->packets_lost, x->loss_pct, x->jitter_ms, x->rtt_ms,
            (unsigned long long)x->nacks, (unsigned long long)x->retransmits);
    /* the same statistics under the browser's getStats names (W3C webrtc-stats) */
    fprintf(o,
            ",\"roundTripTime\":%.4f,\"nackCount\":%llu,\"retransmittedPacketsReceived\":%llu,"
            "\"packetsLost\":%lld,\"packetsLostBeforeRepair\":%llu,\"lossBeforeRepairPct\":%.2f,"
            "\"lossAfterRepairPct\":%.2f",
            x->round_trip_time, (unsigned long long)x->nack_count,
            (unsigned long long)x->retransmitted_packets, (long long)x->packets_lost,
            (unsigned long long)x->packets_lost_before_repair, x->loss_before_repair_pct,
            x->loss_after_repair_pct);
    fprintf(o, ",\"e2e_delay_ms\":%.1f,\"av_sync_ms\":%.1f", x->e2e_delay_ms, x->av_sync_ms);
    if (t->kind == HD_CLIENT_VIDEO) {
      fprintf(
          o,
          ",\"framesDecoded\":%llu,\"framesDropped\":%llu,\"framesRendered\":%llu,\"freezeCount\":%llu,"
          "\"totalFreezesDuration\":%.3f,\"watched_ms\":%.0f,\"stall_pct\":%.2f,\"jitterBufferDelay\":%.3f,"
          "\"jitterBufferTargetDelay\":%.3f,\"jitterBufferEmittedCount\":%llu,"
          "\"jitter_buffer_delay_ms\":%.1f,\"pliCount\":%llu,\"fecPacketsReceived\":%llu,"
          "\"fec_packets_recovered\":%llu",
          (unsigned long long)x->frames_decoded, (unsigned long long)x->frames_dropped,
          (unsigned long long)x->frames_rendered, (unsigned long long)x->freeze_count,
          x->total_freezes_duration, x->total_watched * 1000,
          x->total_watched > 0 ? 100.0 * x->total_freezes_duration / x->total_watched : 0,
          x->jitter_buffer_delay, x->jitter_buffer_target_delay,
          (unsigned long long)x->jitter_buffer_emitted_count,
          x->jitter_buffer_emitted_count
              ? 1000.0 * x->jitter_buffer_delay / (double)x->jitter_buffer_emitted_count
              : 0,
          (unsigned long long)x->keyframe_requests_sent, (unsigned long long)x->fec_packets_received,
          (unsigned long long)x->fec_packets_recovered);
      fprintf(o,
              ",\"frames_decoded\":%llu,\"frames_written\":%llu,\"width\":%d,\"height\":%d,\"freezes\":%llu,"
              "\"freeze_ms\":%.0f,\"keyframe_requests\":%llu,\"counter\":{\"read\":%llu,\"unreadable\":%llu,"
              "\"first\":%lld,\"last\":%lld,\"distinct\":%llu,\"backwards\":%llu,\"monotonic\":%s}}",
              (unsigned long long)t->frames, (unsigned long long)t->frames_written, x->width, x->height,
              (unsigned long long)x->freezes, x->freeze_ms, (unsigned long long)x->keyframes,
              (unsigned long long)t->counter_read, (unsigned long long)t->counter_bad,
              (long long)t->counter_first, (long long)t->counter_last,
              (unsigned long long)t->counter_distinct, (unsigned long long)t->counter_backwards,
              t->counter_read && !t->counter_backwards ? "true" : "false");
    } else {
      double hz = 0;
      if (t->n_est) {
        qsort(t->est, t->n_est, sizeof t->est[0], cmp_float);
        hz = t->est[t->n_est / 2];
      }
      fprintf(o,
              ",\"seconds\":%.2f,\"tone_hz\":%.1f,\"tone_blocks\":%zu,\"concealed_pct\":%.2f,\"concealed_"
              "frames\":%llu,"
              "\"longest_concealed_ms\":%llu,\"played_ms\":%llu",
              (double)t->samples / 48000.0, hz, t->n_est, x->concealed_pct,
              (unsigned long long)t->concealed_frames, (unsigned long long)t->longest_conceal_run * 20,
              (unsigned long long)x->played_ms);
      /* the getStats names (RTCInboundRtpStreamStats), snake case */
      fprintf(
          o,
          ",\"total_samples_received\":%llu,\"concealed_samples\":%llu,\"silent_concealed_samples\":%llu,"
          "\"concealment_events\":%llu,\"inserted_samples_for_deceleration\":%llu,"
          "\"removed_samples_for_acceleration\":%llu,\"jitter_buffer_delay\":%.3f,"
          "\"jitter_buffer_emitted_count\":%llu,\"jitter_buffer_target_delay_ms\":%.1f,\"fec_ms\":%llu,"
          "\"red_ms\":%llu,\"red_depth\":%d,\"longest_gap_ms\":%llu}",
          (unsigned long long)x->audio.total_samples_received, (unsigned long long)x->audio.concealed_samples,
          (unsigned long long)x->audio.silent_concealed_samples,
          (unsigned long long)x->audio.concealment_events,
          (unsigned long long)x->audio.inserted_samples_for_deceleration,
          (unsigned long long)x->audio.removed_samples_for_acceleration, x->audio.jitter_buffer_delay,
          (unsigned long long)x->audio.jitter_buffer_emitted_count, x->audio.jitter_buffer_target_delay_ms,
          (unsigned long long)x->audio.fec_ms, (unsigned long long)x->audio.red_ms, x->audio.red_depth,
          (unsigned long long)x->audio.longest_gap_ms);
    }
  }
  fprintf(o, "]}\n");
}

static double mono_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int hd_cmd_sub(int argc, char **argv) {
  static sub_t s; /* big (per-track estimate buffers); one per process */
  const char *url = NULL, *token = NULL, *name = NULL, *cluster = NULL, *fallback = NULL;
  double duration = 0;
  int view_w = 0, view_h = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--json"))
      s.json = 1;
    else if (!strcmp(a, "--ivf"))
      s.ivf = 1;
    else if (!strcmp(a, "--quiet"))
      s.quiet = 1;
    else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    } else if (!v) {
      fprintf(stderr, "hudong sub: %s needs a value\n", a);
      usage(stderr);
      return 2;
    } else {
      if (!strcmp(a, "--url"))
        url = v;
      else if (!strcmp(a, "--fallback"))
        fallback = v;
      else if (!strcmp(a, "--cluster"))
        cluster = v;
      else if (!strcmp(a, "--token"))
        token = v;
      else if (!strcmp(a, "--out"))
        s.out = v;
      else if (!strcmp(a, "--name"))
        name = v;
      else if (!strcmp(a, "--view")) {
        char x;
        if (sscanf(v, "%d%c%d", &view_w, &x, &view_h) != 3 || (x != 'x' && x != 'X') || view_w < 1 ||
            view_h < 1 || view_w > 16384 || view_h > 16384) {
          fprintf(stderr, "hudong sub: --view wants WIDTHxHEIGHT in pixels (1..16384 each), e.g. 320x180\n");
          return 2;
        }
      } else if (!strcmp(a, "--duration")) {
        duration = atof(v);
        if (duration < 0) {
          fprintf(stderr, "hudong sub: --duration must be >= 0\n");
          return 2;
        }
      } else {
        fprintf(stderr, "hudong sub: unknown option %s\n", a);
        usage(stderr);
        return 2;
      }
      i++;
    }
  }
  if (!(url || cluster) || !token || !s.out) {
    fprintf(stderr, "hudong sub: --url (or --cluster), --token and --out are required\n");
    usage(stderr);
    return 2;
  }
  char rtc_url[1024], uerr[1200];
  static hd_client_route_result_t routed; /* static: large, and fallback_urls point into it */
  if (cluster) {                          /* the node to use, from the cluster's /api/route and our RTTs */
    if (url) {
      fprintf(stderr, "hudong sub: give --url (one node) or --cluster (any node of a cluster), not both\n");
      return 2;
    }
    if (hd_cli_route(cluster, token, &routed, uerr, sizeof uerr, !s.quiet) < 0) {
      fprintf(stderr, "hudong sub: %s\n", uerr);
      return 1;
    }
    url = routed.node.url;
  }
  if (hd_cli_rtc_url(url, rtc_url, sizeof rtc_url, uerr, sizeof uerr) < 0) {
    fprintf(stderr, "hudong sub: %s\n", uerr);
    return 2;
  }
  url = rtc_url;

  if (mkdir(s.out, 0755) < 0 && errno != EEXIST) {
    fprintf(stderr, "hudong sub: %s: %s\n", s.out, strerror(errno));
    return 1;
  }
  /* the cluster's other nodes: where the client rejoins when its node is lost (docs/overlay.md) */
  static char fb_urls[HD_CLIENT_MAX_FALLBACK_URLS][1024];
  const char *fb[HD_CLIENT_MAX_FALLBACK_URLS];
  char fb_list[8192];
  snprintf(fb_list, sizeof fb_list, "%s", fallback ? fallback : "");
  int n_fb = hd_cli_url_list(fb_list, fb_urls, HD_CLIENT_MAX_FALLBACK_URLS, uerr, sizeof uerr);
  if (n_fb < 0) {
    fprintf(stderr, "hudong sub: --fallback: %s\n", uerr);
    return 2;
  }
  for (int i = 0; i < n_fb; i++)
    fb[i] = fb_urls[i];
  for (int i = 0; i < routed.n_others && n_fb < HD_CLIENT_MAX_FALLBACK_URLS;
       i++) /* then the route's others */
    fb[n_fb++] = routed.fallback_urls[i];
  hd_client_config_t cfg = {.url = url,
                            .fallback_urls = fb,
                            .n_fallback_urls = n_fb,
                            .token = token,
                            .name = name,
                            .view_width = view_w,
                            .view_height = view_h,
                            .encoded_frames = s.ivf,
                            .cb = {.on_state = on_state,
                                   .on_track = on_track,
                                   .on_audio = on_audio,
                                   .on_video = on_video,
                                   .on_encoded = on_encoded,
                                   .on_data = on_data,
                                   .on_stats = on_stats,
                                   .ud = &s}};
  hd_client_t *c;
  int rc = hd_client_new(&c, &cfg);
  if (rc < 0) {
    fprintf(stderr, "hudong sub: %s\n", hd_client_strerror(rc));
    return 1;
  }
  signal(SIGINT, on_sig);
  signal(SIGTERM, on_sig);
  hd_client_join(c);
  double t0 = mono_s();
  int status = 0;
  while (!g_stop) {
    hd_client_state_t st = hd_client_state(c);
    if (st == HD_CLIENT_FAILED) {
      status = 1;
      break;
    }
    if (duration > 0 && mono_s() - t0 >= duration) break;
    usleep(20000);
  }
  hd_client_stats_t *fin = calloc(1, sizeof *fin);
  if (fin) hd_client_get_stats(c, fin);
  hd_client_leave(c);
  for (int i = 0; i < 100 && hd_client_state(c) == HD_CLIENT_JOINED; i++)
    usleep(10000);
  hd_client_free(c); /* loop thread joined: the track table is ours now */
  if (fin) {
    for (int i = 0; i < fin->n_tracks; i++) {
      if (fin->tracks[i].local) continue;
      track_t *t = track(&s, fin->tracks[i].track_sid, fin->tracks[i].identity, fin->tracks[i].kind);
      if (t) t->last = fin->tracks[i];
    }
    free(fin);
  }
  for (int i = 0; i < s.n; i++) {
    track_t *t = &s.t[i];
    if (!t->f) continue;
    if (t->kind == HD_CLIENT_AUDIO) { /* the final header with the real length */
      uint8_t hdr[HD_WAV_HEADER_LEN];
      hd_wav_header_write(hdr, sizeof hdr, 48000, 1, (uint32_t)t->data_bytes);
      fseek(t->f, 0, SEEK_SET);
      fwrite(hdr, 1, sizeof hdr, t->f);
    }
    fclose(t->f);
  }
  double secs = mono_s() - t0;
  if (s.json) {
    summary(&s, secs, stdout);
  } else {
    printf("hudong sub: %.1f s, %d tracks\n", secs, s.n);
    summary(&s, secs, stdout);
  }
  return status;
}
