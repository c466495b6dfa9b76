/* `hudong egress`: the recorder process (issue 18 items 1 and 5,
 * docs/egress.md). It joins a room as a hidden subscriber with the native SDK
 * (include/hudong/client.h) and writes every published track, as it arrives,
 * to its own file without transcoding: Opus to Ogg (or WebM), VP8 to WebM,
 * H.264 to fragmented MP4 (the SDK depacketises it: media/h264_depay.h).
 * What it records is the repaired stream: the SDK's NACK/RTX, jitter buffers
 * and keyframe requests run before a frame is handed over (encoded_frames).
 * Timestamps: RTP + RTCP sender reports (egress/timeline.h).
 *
 * Why a child process of the node (not a thread of it): a muxer or a disk
 * that stalls, or a crash in a codec library, can only stop this process;
 * the node's media workers forward to it like to any subscriber, with the
 * same per-subscriber caps, and a slow subscriber never holds them up.
 *
 * Threads: the SDK's loop thread hands frames over through a bounded queue
 * (EG_QUEUE_FRAMES / EG_QUEUE_BYTES; beyond that a frame is dropped and
 * counted) to the main thread, which owns the timeline and the files.
 * Status goes to stdout as one JSON object per line (the node reads them):
 *   {"type":"track", ...}   a track's file was opened
 *   {"type":"status", ...}  every --status-interval ms
 *   {"type":"ended", ...}   the last line: files closed
 * SIGTERM/SIGINT finish the files cleanly; the process also ends when the
 * room closes or the node goes away (and on the parent's death). */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "cmd/cmd.h"
#include "cmd/egress_internal.h"
#include "egress/timeline.h"
#include "egress/track_file.h"
#include "hudong/client.h"

#define EG_QUEUE_FRAMES 4096
#define EG_QUEUE_BYTES (64u << 20)
#define EG_MAX_TRACKS 32
#define EG_HOLD_US 3000000 /* wait for a track's first sender report (timeline.h) */

static volatile sig_atomic_t g_stop;
static void on_sig(int s) {
  (void)s;
  g_stop = 1;
}

typedef struct qitem {
  struct qitem *next;
  int close; /* 1: the track was unpublished: finish its file */
  char sid[64], identity[128];
  int kind, keyframe, have_sr;
  int h264; /* video: H.264 (else VP8) */
  uint32_t ts, sr_rtp;
  uint64_t sr_ntp;
  int64_t arrival_us;
  size_t len;
  uint8_t data[];
} qitem_t;

typedef struct {
  char sid[64], identity[128], path[700];
  int kind, tl_track, h264;
  hd_track_file_t *f;
  hd_track_file_stats_t last; /* stats when closed */
  int closed;
} eg_track_t;

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  qitem_t *head, *tail;
  size_t qn, bytes;
  uint64_t queue_drops;
  int state_end; /* the client failed or left */
  int end_err;
  char end_reason[256];
  /* main thread */
  const char *out, *audio_ext;
  hd_track_container_t audio_container;
  hd_eg_timeline_t tl;
  eg_track_t t[EG_MAX_TRACKS];
  int n;
  int64_t start_us;
} eg_t;

static int64_t unix_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void enqueue(eg_t *e, qitem_t *it) {
  pthread_mutex_lock(&e->mu);
  if (!it->close && (e->qn >= EG_QUEUE_FRAMES || e->bytes + it->len > EG_QUEUE_BYTES)) {
    e->queue_drops++; /* the writer is behind: drop rather than grow */
    pthread_mutex_unlock(&e->mu);
    free(it);
    return;
  }
  if (e->tail)
    e->tail->next = it;
  else
    e->head = it;
  e->tail = it;
  e->qn++;
  e->bytes += it->len;
  pthread_cond_signal(&e->cv);
  pthread_mutex_unlock(&e->mu);
}

static void on_encoded(void *ud, const hd_client_encoded_frame_t *f) {
  eg_t *e = ud;
  if (!f->len) return;
  qitem_t *it = calloc(1, sizeof *it + f->len);
  if (!it) return;
  snprintf(it->sid, sizeof it->sid, "%s", f->track_sid ? f->track_sid : "");
  snprintf(it->identity, sizeof it->identity, "%s", f->identity ? f->identity : "");
  it->kind = f->kind;
  it->h264 = f->codec && !strcmp(f->codec, "H264");
  it->keyframe = f->keyframe;
  it->ts = f->rtp_timestamp;
  it->have_sr = f->have_sr;
  it->sr_ntp = f->sr_ntp;
  it->sr_rtp = f->sr_rtp;
  it->arrival_us = unix_us();
  it->len = f->len;
  memcpy(it->data, f->data, f->len);
  enqueue(e, it);
}

static void on_track(void *ud, const hd_client_track_info_t *t, int published) {
  eg_t *e = ud;
  if (published) return;
  qitem_t *it = calloc(1, sizeof *it);
  if (!it) return;
  it->close = 1;
  it->kind = t->kind;
  snprintf(it->sid, sizeof it->sid, "%s", t->track_sid ? t->track_sid : "");
  enqueue(e, it);
}

static void on_state(void *ud, hd_client_state_t st, int err, const char *reason) {
  eg_t *e = ud;
  if (st != HD_CLIENT_FAILED && st != HD_CLIENT_DISCONNECTED) return;
  pthread_mutex_lock(&e->mu);
  e->state_end = 1;
  e->end_err = err;
  snprintf(e->end_reason, sizeof e->end_reason, "%s%s%s", hd_client_strerror(err),
           reason && reason[0] ? ": " : "", reason ? reason : "");
  pthread_cond_signal(&e->cv);
  pthread_mutex_unlock(&e->mu);
}

/* identities and sids come from tokens and the node: keep file names tame */
static void tame(char *dst, size_t cap, const char *src) {
  size_t k = 0;
  for (const char *p = src; *p && k + 1 < cap && k < 64; p++)
    dst[k++] =
        (char)((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-'
                   ? *p
                   : '_');
  dst[k] = 0;
  if (!k) snprintf(dst, cap, "unknown");
}

static json_t *track_json(eg_t *e, eg_track_t *t) {
  hd_track_file_stats_t s;
  if (t->closed)
    s = t->last;
  else
    hd_track_file_stats(t->f, &s);
  const hd_eg_tl_track_t *tt = &e->tl.tr[t->tl_track];
  return json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:b,s:b}", "track_sid", t->sid, "identity",
                   t->identity, "kind", t->kind == HD_CLIENT_AUDIO ? "audio" : "video", "codec",
                   t->kind == HD_CLIENT_AUDIO ? "opus"
                   : t->h264                  ? "h264"
                                              : "vp8",
                   "path", t->path, "start_ms", (json_int_t)(s.start_us < 0 ? -1 : s.start_us / 1000),
                   "duration_ms", (json_int_t)(s.duration_us / 1000), "bytes", (json_int_t)s.bytes, "frames",
                   (json_int_t)s.frames, "dropped_frames", (json_int_t)s.dropped, "sr_sync", !tt->no_sr,
                   "finished", t->closed);
}

int hd_egress_stopping(void) { return g_stop != 0; }

static void emit(json_t *o);

void hd_egress_emit_composite(json_t *st, int final, int failed) {
  json_t *o =
      json_pack("{s:s,s:o}", "type", final ? "ended" : "status", "composite", st ? st : json_object());
  if (failed) json_object_set_new(o, "failed", json_true());
  emit(o);
}

static const char *g_ing_codec;
static int g_ing_passthrough;
static char g_ing_why[320];

void hd_egress_ingest_video_mode(const char *codec, int passthrough, const char *why) {
  g_ing_codec = codec;
  g_ing_passthrough = passthrough;
  snprintf(g_ing_why, sizeof g_ing_why, "%s", why ? why : "");
}

void hd_egress_emit_ingest(const char *type, const char *reason, unsigned long long vframes,
                           unsigned long long audio_ms, int failed) {
  json_t *o = json_pack("{s:s,s:{s:I,s:I}}", "type", type, "ingest", "video_frames", (json_int_t)vframes,
                        "audio_ms", (json_int_t)audio_ms);
  if (g_ing_codec) { /* what the room gets, and why (docs/egress.md "H.264 passthrough") */
    json_t *i = json_object_get(o, "ingest");
    json_object_set_new(i, "video_codec", json_string(g_ing_codec));
    json_object_set_new(i, "passthrough", json_boolean(g_ing_passthrough));
    if (g_ing_why[0]) json_object_set_new(i, "video_mode", json_string(g_ing_why));
  }
  if (reason) json_object_set_new(o, "reason", json_string(reason));
  if (failed) json_object_set_new(o, "failed", json_true());
  emit(o);
}

static void emit(json_t *o) {
  char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(o);
  if (!s) return;
  printf("%s\n", s);
  fflush(stdout);
  free(s);
}

static void emit_status(eg_t *e, const char *type, const char *reason) {
  json_t *arr = json_array();
  uint64_t bytes = 0;
  for (int i = 0; i < e->n; i++) {
    json_t *tj = track_json(e, &e->t[i]);
    bytes += (uint64_t)json_integer_value(json_object_get(tj, "bytes"));
    json_array_append_new(arr, tj);
  }
  pthread_mutex_lock(&e->mu);
  uint64_t drops = e->queue_drops;
  pthread_mutex_unlock(&e->mu);
  json_t *o = json_pack("{s:s,s:I,s:I,s:I,s:o}", "type", type, "duration_ms",
                        (json_int_t)((unix_us() - e->start_us) / 1000), "bytes", (json_int_t)bytes,
                        "queue_dropped_frames", (json_int_t)drops, "tracks", arr);
  if (reason) json_object_set_new(o, "reason", json_string(reason));
  emit(o);
}

static eg_track_t *track_for(eg_t *e, const qitem_t *it) {
  for (int i = 0; i < e->n; i++)
    if (!strcmp(e->t[i].sid, it->sid) && e->t[i].kind == it->kind && !e->t[i].closed) return &e->t[i];
  if (it->close || e->n == EG_MAX_TRACKS) return NULL;
  eg_track_t *t = &e->t[e->n];
  memset(t, 0, sizeof *t);
  snprintf(t->sid, sizeof t->sid, "%s", it->sid);
  snprintf(t->identity, sizeof t->identity, "%s", it->identity);
  t->kind = it->kind;
  t->h264 = it->kind == HD_CLIENT_VIDEO && it->h264;
  char id[72], sid[72];
  tame(id, sizeof id, it->identity);
  tame(sid, sizeof sid, it->sid);
  int audio = it->kind == HD_CLIENT_AUDIO;
  const char *vext = t->h264 ? "mp4" : "webm";
  /* a track published again after unpublishing gets a new file */
  for (int k = 0;; k++) {
    struct stat sb;
    if (k == 0)
      snprintf(t->path, sizeof t->path, "%s/%s_%s.%s", e->out, id, sid, audio ? e->audio_ext : vext);
    else
      snprintf(t->path, sizeof t->path, "%s/%s_%s_%d.%s", e->out, id, sid, k, audio ? e->audio_ext : vext);
    if (stat(t->path, &sb) != 0 || k > 100) break;
  }
  int rc = hd_track_file_open(&t->f, t->path,
                              audio     ? HD_TRACK_CODEC_OPUS
                              : t->h264 ? HD_TRACK_CODEC_H264
                                        : HD_TRACK_CODEC_VP8,
                              audio     ? e->audio_container
                              : t->h264 ? HD_TRACK_CONTAINER_MP4
                                        : HD_TRACK_CONTAINER_WEBM);
  if (rc < 0) {
    fprintf(stderr, "hudong egress: %s: %s\n", t->path, hd_strerror(rc));
    return NULL;
  }
  t->tl_track = hd_eg_tl_add_track(&e->tl, it->identity, audio ? 48000 : 90000);
  if (t->tl_track < 0) {
    hd_track_file_close(t->f, NULL);
    return NULL;
  }
  e->n++;
  emit(json_pack("{s:s,s:s,s:s,s:s,s:s}", "type", "track", "track_sid", t->sid, "identity", t->identity,
                 "kind", audio ? "audio" : "video", "path", t->path));
  return t;
}

static void write_ready(eg_t *e, int64_t now) {
  hd_eg_tl_frame_t fr;
  while (hd_eg_tl_poll(&e->tl, now, &fr) == 1) {
    for (int i = 0; i < e->n; i++)
      if (e->t[i].tl_track == fr.track && !e->t[i].closed) {
        hd_track_file_write(e->t[i].f, fr.data, fr.len, fr.keyframe, fr.t_us);
        break;
      }
  }
}

static void close_track(eg_t *e, eg_track_t *t) {
  hd_track_file_close(t->f, &t->last);
  t->f = NULL;
  t->closed = 1;
  (void)e;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: hudong egress --url U --token T --out DIR [--audio ogg|webm] [--status-interval MS]\n"
          "       hudong egress --ingest rtmp://... --url U --token T [--ingest-video auto|transcode]\n"
          "                     [--ingest-max-keyframe-ms MS (default 2500, 0 = no limit)]\n"
          "       hudong egress --composite --url U --token T --output O [--output O ...] [--layout L]\n"
          "                     [--size WxH] [--fps N] [--video-kbps K] [--backoff-ms MS] [--stdin-control]\n"
          "  --composite: decodes every track, lays the videos out (L: grid (default), speaker, or a\n"
          "  JSON object {\"regions\": [...]}), mixes the audio, encodes H.264 + AAC (default 1280x720\n"
          "  at 30 fps, 2000 kbit/s) to up to 4 outputs O: FILE.mp4 (fragmented), FILE.m3u8 (HLS),\n"
          "  FILE.flv, rtmp:// or rtmps:// URLs (retried with backoff from --backoff-ms, default 1000).\n"
          "  joins the room of token T at U (ws://host:port/rtc) as a subscriber and records\n"
          "  every track as it arrives, without transcoding: Opus to DIR/<identity>_<track>.ogg\n"
          "  (or .webm), VP8 to .webm, H.264 to fragmented .mp4; prints one JSON status line per interval "
          "(default 1000 ms).\n"
          "  SIGTERM finishes the files. Normally started by `hudong serve` (POST /admin/egress,\n"
          "  docs/egress.md).\n");
}

int hd_cmd_egress(int argc, char **argv) {
  const char *url = NULL, *token = NULL, *out = NULL, *audio = "ogg";
  long interval = 1000;
  int composite = 0;
  hd_egress_args_t ca = {.layout = "grid",
                         .width = 1280,
                         .height = 720,
                         .fps = 30,
                         .video_kbps = 2000,
                         .backoff_ms = 1000,
                         .ingest_max_key_ms = 2500};
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--composite"))
      composite = 1;
    else if (!strcmp(argv[i], "--ingest") && i + 1 < argc)
      ca.ingest = argv[++i];
    else if (!strcmp(argv[i], "--ingest-video") && i + 1 < argc) {
      const char *v = argv[++i];
      if (strcmp(v, "auto") && strcmp(v, "transcode")) {
        fprintf(stderr, "hudong egress: --ingest-video is auto or transcode, not '%s'\n", v);
        return 2;
      }
      ca.ingest_transcode = !strcmp(v, "transcode");
    } else if (!strcmp(argv[i], "--ingest-max-keyframe-ms") && i + 1 < argc) {
      char *end;
      ca.ingest_max_key_ms = strtol(argv[++i], &end, 10);
      if (*end || ca.ingest_max_key_ms < 0) {
        fprintf(stderr,
                "hudong egress: --ingest-max-keyframe-ms is a number of milliseconds >= 0, not '%s'\n",
                argv[i]);
        return 2;
      }
    } else if (!strcmp(argv[i], "--layout") && i + 1 < argc)
      ca.layout = argv[++i];
    else if (!strcmp(argv[i], "--size") && i + 1 < argc) {
      if (sscanf(argv[++i], "%dx%d", &ca.width, &ca.height) != 2) ca.width = 0;
    } else if (!strcmp(argv[i], "--fps") && i + 1 < argc)
      ca.fps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--video-kbps") && i + 1 < argc)
      ca.video_kbps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--backoff-ms") && i + 1 < argc)
      ca.backoff_ms = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--stdin-control"))
      ca.stdin_control = 1;
    else if (!strcmp(argv[i], "--output") && i + 1 < argc) {
      if (ca.n_outputs == HD_EGRESS_MAX_OUTPUTS) {
        fprintf(stderr, "hudong egress: at most %d --output\n", HD_EGRESS_MAX_OUTPUTS);
        return 2;
      }
      ca.outputs[ca.n_outputs++] = argv[++i];
    } else if (!strcmp(argv[i], "--url") && i + 1 < argc)
      url = argv[++i];
    else if (!strcmp(argv[i], "--token") && i + 1 < argc)
      token = argv[++i];
    else if (!strcmp(argv[i], "--out") && i + 1 < argc)
      out = argv[++i];
    else if (!strcmp(argv[i], "--audio") && i + 1 < argc)
      audio = argv[++i];
    else if (!strcmp(argv[i], "--status-interval") && i + 1 < argc)
      interval = atol(argv[++i]);
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout);
      return 0;
    } else {
      fprintf(stderr, "hudong egress: unknown or incomplete option '%s'\n", argv[i]);
      usage(stderr);
      return 2;
    }
  }
  if (ca.ingest) {
    if (!url || !token || strncmp(ca.ingest, "rtmp://", 7)) {
      fprintf(stderr, "hudong egress: --ingest needs an rtmp:// URL, --url and --token\n");
      return 2;
    }
    ca.url = url;
    ca.token = token;
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    signal(SIGTERM, on_sig);
    signal(SIGINT, on_sig);
    signal(SIGPIPE, SIG_IGN);
    return hd_egress_ingest(&ca) ? 1 : 0;
  }
  if (composite) {
    if (!url || !token || !ca.n_outputs) {
      fprintf(stderr, "hudong egress: --composite needs --url, --token and at least one --output\n");
      usage(stderr);
      return 2;
    }
    if (ca.width < 16 || ca.height < 16 || ca.width > 3840 || ca.height > 2160 ||
        (ca.width | ca.height) & 1 || ca.fps < 1 || ca.fps > 60 || ca.video_kbps < 100 ||
        ca.video_kbps > 50000 || ca.backoff_ms < 10) {
      fprintf(stderr, "hudong egress: --size is even WxH in 16x16..3840x2160, --fps 1..60, --video-kbps "
                      "100..50000, --backoff-ms >= 10\n");
      return 2;
    }
    ca.url = url;
    ca.token = token;
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    signal(SIGTERM, on_sig);
    signal(SIGINT, on_sig);
    signal(SIGPIPE, SIG_IGN);
    return hd_egress_composite(&ca);
  }
  if (!url || !token || !out) {
    fprintf(stderr, "hudong egress: --url, --token and --out are required\n");
    usage(stderr);
    return 2;
  }
  if (strcmp(audio, "ogg") && strcmp(audio, "webm")) {
    fprintf(stderr, "hudong egress: --audio is 'ogg' or 'webm'\n");
    return 2;
  }
  if (interval < 100 || interval > 60000) {
    fprintf(stderr, "hudong egress: --status-interval is in 100..60000 ms\n");
    return 2;
  }
  if (mkdir(out, 0755) < 0 && errno != EEXIST) {
    fprintf(stderr, "hudong egress: cannot create %s: %s\n", out, strerror(errno));
    return 1;
  }
  prctl(PR_SET_PDEATHSIG, SIGTERM); /* the node went away: finish the files */
  signal(SIGTERM, on_sig);
  signal(SIGINT, on_sig);
  signal(SIGPIPE, SIG_IGN);

  static eg_t e;
  pthread_mutex_init(&e.mu, NULL);
  pthread_condattr_t cattr;
  pthread_condattr_init(&cattr);
  pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
  pthread_cond_init(&e.cv, &cattr);
  e.out = out;
  e.audio_ext = audio;
  e.audio_container = strcmp(audio, "ogg") ? HD_TRACK_CONTAINER_WEBM : HD_TRACK_CONTAINER_OGG;
  e.start_us = unix_us();
  hd_eg_tl_init(&e.tl, e.start_us, EG_HOLD_US);

  hd_client_config_t cfg = {
      .url = url,
      .token = token,
      .no_quality_reports = 1,
      .encoded_frames = 1,
      .no_decode = 1,
      .accept_h264 = 1,
      .cb = {.on_state = on_state, .on_track = on_track, .on_encoded = on_encoded, .ud = &e}};
  hd_client_t *c = NULL;
  int rc = hd_client_new(&c, &cfg);
  if (rc == 0) rc = hd_client_join(c);
  if (rc < 0) {
    fprintf(stderr, "hudong egress: %s\n", hd_client_strerror(rc));
    emit_status(&e, "ended", hd_client_strerror(rc));
    hd_client_free(c);
    return 1;
  }
  int64_t next_status = unix_us() + interval * 1000;
  char reason[300] = "stopped";
  int failed = 0;
  for (;;) {
    pthread_mutex_lock(&e.mu);
    if (!e.head && !e.state_end && !g_stop) {
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      ts.tv_nsec += 50 * 1000000;
      if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
      }
      pthread_cond_timedwait(&e.cv, &e.mu, &ts);
    }
    qitem_t *list = e.head;
    e.head = e.tail = NULL;
    e.qn = 0;
    e.bytes = 0;
    int ended = e.state_end, end_err = e.end_err;
    if (ended) snprintf(reason, sizeof reason, "%s", e.end_reason);
    pthread_mutex_unlock(&e.mu);
    while (list) {
      qitem_t *it = list;
      list = it->next;
      eg_track_t *t = track_for(&e, it);
      if (t && it->close) {
        write_ready(&e, INT64_MAX); /* what is held for this track goes out first */
        hd_eg_tl_flush(&e.tl);
        write_ready(&e, INT64_MAX);
        close_track(&e, t);
      } else if (t) {
        hd_eg_tl_push(&e.tl, t->tl_track, it->data, it->len, it->keyframe, it->ts, it->have_sr, it->sr_ntp,
                      it->sr_rtp, it->arrival_us);
      }
      free(it);
      write_ready(&e, unix_us());
    }
    write_ready(&e, unix_us());
    if (g_stop || ended) {
      failed = ended && !g_stop && end_err != HD_CLIENT_ECLOSED && end_err != 0;
      break;
    }
    if (unix_us() >= next_status) {
      emit_status(&e, "status", NULL);
      next_status += interval * 1000;
    }
  }
  hd_client_free(c); /* no callback after this */
  hd_eg_tl_flush(&e.tl);
  write_ready(&e, INT64_MAX);
  for (int i = 0; i < e.n; i++)
    if (!e.t[i].closed) close_track(&e, &e.t[i]);
  emit_status(&e, "ended", reason);
  hd_eg_tl_free(&e.tl);
  for (qitem_t *it = e.head; it;) {
    qitem_t *n = it->next;
    free(it);
    it = n;
  }
  return failed ? 1 : 0;
}
