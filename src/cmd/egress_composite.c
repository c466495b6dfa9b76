/* `hudong egress --composite`: the room composite (issue 18 item 2,
 * docs/egress.md "Room composite"). The recorder joins as a hidden subscriber
 * with decoding on: the SDK decodes every video (VP8) and audio (Opus, with
 * its jitter buffer and concealment) track and hands over pictures and 20 ms
 * PCM blocks; this file keeps the latest picture and an audio ring per
 * participant, and its main thread, at the output frame rate, lays the
 * pictures out (egress/layout.h), mixes the audio under a limiter and
 * encodes H.264 + AAC to every output (egress/av_out.h: files, HLS, RTMP,
 * each on its own thread).
 *
 * Audio-only rooms: the output has video only if a participant published
 * video within 2 s of the first track (then the layout shows the video
 * participants; later joins are placed as they come).
 *
 * Live layout changes: one JSON line on stdin {"layout": <spec>} (the node
 * writes it for PATCH /admin/egress/{id}). */
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "cmd/egress_internal.h"
#include "egress/av_out.h"
#include "egress/layout.h"
#include "hudong/client.h"
#include "media/i420.h"

#define CP_MAX 16            /* participants composed (more are not shown or heard) */
#define CP_RING (48000 * 2)  /* 2 s of mono audio per participant */
#define CP_MAX_LAG 4800      /* 100 ms: more audio queued than this (clock drift) is cut to CP_CUT_TO */
#define CP_CUT_TO 1920       /* 40 ms */
#define CP_DECIDE_US 2000000 /* wait for a video track this long after the first track */

typedef struct {
  int used;
  char identity[128];
  int has_video;
  hd_i420_t pic;
  int pic_valid;
  int16_t *ring;
  size_t r_head, r_n;
  int had_audio;
  double loud;
  uint64_t order;
} cp_part_t;

typedef struct {
  pthread_mutex_t mu;
  cp_part_t p[CP_MAX];
  uint64_t next_order;
  int64_t first_track_us;
  int any_video;
  int ended, end_err;
  char end_reason[256];
  hd_layout_t layout;
  int layout_changed;
  uint64_t layout_changes;
} cp_t;

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static cp_part_t *part(cp_t *c, const char *identity, int create) {
  cp_part_t *free_slot = NULL;
  for (int i = 0; i < CP_MAX; i++) {
    if (c->p[i].used && !strcmp(c->p[i].identity, identity)) return &c->p[i];
    if (!c->p[i].used && !free_slot) free_slot = &c->p[i];
  }
  if (!create || !free_slot) return NULL;
  int16_t *ring = calloc(CP_RING, sizeof *ring);
  if (!ring) return NULL;
  memset(free_slot, 0, sizeof *free_slot);
  free_slot->used = 1;
  free_slot->ring = ring;
  free_slot->order = c->next_order++;
  snprintf(free_slot->identity, sizeof free_slot->identity, "%s", identity);
  return free_slot;
}

static void drop_part(cp_part_t *p) {
  hd_i420_free(&p->pic);
  free(p->ring);
  memset(p, 0, sizeof *p);
}

static void on_video(void *ud, const hd_client_video_frame_t *f) {
  cp_t *c = ud;
  pthread_mutex_lock(&c->mu);
  cp_part_t *p = part(c, f->identity ? f->identity : "", 1);
  if (p) {
    if (p->pic.width != f->width || p->pic.height != f->height) {
      hd_i420_free(&p->pic);
      p->pic_valid = hd_i420_alloc(&p->pic, f->width, f->height) == 0 ? 0 : -1;
    }
    if (p->pic_valid >= 0 && p->pic.plane[0]) {
      hd_i420_t src = {.width = f->width, .height = f->height};
      for (int i = 0; i < 3; i++) {
        src.plane[i] = (uint8_t *)f->plane[i];
        src.stride[i] = f->stride[i];
      }
      p->pic_valid = hd_i420_copy(&p->pic, &src) == 0;
    }
    p->has_video = 1;
  }
  pthread_mutex_unlock(&c->mu);
}

static void on_audio(void *ud, const hd_client_audio_frame_t *f) {
  cp_t *c = ud;
  pthread_mutex_lock(&c->mu);
  cp_part_t *p = part(c, f->identity ? f->identity : "", 1);
  if (p) {
    /* no prefill: an underrun at a tick (the 20 ms blocks vs our frame
     * ticks) mixes silence once and the ring then holds that much more, so
     * the delay settles at the least that absorbs the phase -- every ms of
     * queue here is audio behind the video (A/V sync) */
    p->had_audio = 1;
    for (size_t i = 0; i < f->samples; i++) {
      if (p->r_n == CP_RING) break; /* 2 s behind: drop (never happens while the mixer runs) */
      p->ring[(p->r_head + p->r_n++) % CP_RING] = f->pcm[i * (size_t)f->channels];
    }
  }
  pthread_mutex_unlock(&c->mu);
}

static void on_track(void *ud, const hd_client_track_info_t *t, int published) {
  cp_t *c = ud;
  pthread_mutex_lock(&c->mu);
  if (published && !c->first_track_us) c->first_track_us = now_us();
  if (published && t->kind == HD_CLIENT_VIDEO) c->any_video = 1;
  if (!published && t->kind == HD_CLIENT_VIDEO) {
    cp_part_t *p = part(c, t->identity ? t->identity : "", 0);
    if (p) p->has_video = 0;
  }
  pthread_mutex_unlock(&c->mu);
}

static void on_participant(void *ud, const char *psid, const char *identity, int joined) {
  cp_t *c = ud;
  (void)psid;
  if (joined) return;
  pthread_mutex_lock(&c->mu);
  cp_part_t *p = part(c, identity ? identity : "", 0);
  if (p) drop_part(p);
  pthread_mutex_unlock(&c->mu);
}

static void on_state(void *ud, hd_client_state_t st, int err, const char *reason) {
  cp_t *c = ud;
  if (st != HD_CLIENT_FAILED && st != HD_CLIENT_DISCONNECTED) return;
  pthread_mutex_lock(&c->mu);
  c->ended = 1;
  c->end_err = err;
  snprintf(c->end_reason, sizeof c->end_reason, "%s%s%s", hd_client_strerror(err),
           reason && reason[0] ? ": " : "", reason ? reason : "");
  pthread_mutex_unlock(&c->mu);
}

/* stdin: {"layout": "grid" | "speaker" | {...}} per line */
static void *stdin_main(void *ud) {
  cp_t *c = ud;
  char line[HD_LAYOUT_JSON_MAX + 64];
  while (fgets(line, sizeof line, stdin)) {
    json_t *o = json_loads(line, 0, NULL);
    json_t *l = json_object_get(o, "layout");
    char *spec = json_is_string(l) ? strdup(json_string_value(l)) : l ? json_dumps(l, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!spec) continue;
    hd_layout_t nl;
    char why[200];
    if (hd_layout_parse(&nl, spec, why, sizeof why) == 0) {
      pthread_mutex_lock(&c->mu);
      c->layout = nl;
      c->layout_changes++;
      pthread_mutex_unlock(&c->mu);
    } else {
      fprintf(stderr, "hudong egress: layout refused: %s\n", why);
    }
    free(spec);
  }
  return NULL;
}

/* one canvas: layout of the participants with a picture */
static void compose(cp_t *c, hd_i420_t *canvas) {
  const char *ids[CP_MAX];
  double loud[CP_MAX];
  cp_part_t *who[CP_MAX];
  int n = 0;
  /* join order */
  for (uint64_t ord = 0, seen = 0; seen < CP_MAX && ord < c->next_order; ord++)
    for (int i = 0; i < CP_MAX; i++)
      if (c->p[i].used && c->p[i].order == ord) {
        seen++;
        if (c->p[i].has_video && c->p[i].pic_valid > 0) {
          ids[n] = c->p[i].identity;
          loud[n] = c->p[i].loud;
          who[n++] = &c->p[i];
        }
      }
  hd_canvas_fill(canvas, c->layout.bg_y, c->layout.bg_u, c->layout.bg_v);
  hd_layout_cell_t cells[HD_LAYOUT_MAX_REGIONS];
  int k =
      hd_layout_place(&c->layout, canvas->width, canvas->height, ids, loud, n, cells, HD_LAYOUT_MAX_REGIONS);
  int scale = canvas->height >= 720 ? 3 : 2;
  for (int i = 0; i < k; i++) {
    hd_canvas_blit(canvas, &who[cells[i].who]->pic, cells[i].x, cells[i].y, cells[i].w, cells[i].h);
    if (c->layout.names && cells[i].h > 10 * scale)
      hd_canvas_text(canvas, cells[i].x + 2 * scale, cells[i].y + cells[i].h - 9 * scale, scale,
                     ids[cells[i].who]);
  }
}

/* n samples of the mix */
static void mix(cp_t *c, hd_limiter_t *lim, int16_t *out, int32_t *acc, size_t n) {
  memset(acc, 0, n * sizeof *acc);
  for (int i = 0; i < CP_MAX; i++) {
    cp_part_t *p = &c->p[i];
    if (!p->used || !p->had_audio) continue;
    double e = 0;
    size_t take = p->r_n < n ? p->r_n : n; /* an underrun is silence */
    for (size_t k = 0; k < take; k++) {
      int16_t s = p->ring[(p->r_head + k) % CP_RING];
      acc[k] += s;
      e += (double)s * s;
    }
    p->r_head = (p->r_head + take) % CP_RING;
    p->r_n -= take;
    if (p->r_n > CP_MAX_LAG) { /* the sender's clock runs fast against ours: catch up */
      p->r_head = (p->r_head + (p->r_n - CP_CUT_TO)) % CP_RING;
      p->r_n = CP_CUT_TO;
    }
    double rms = take ? sqrt(e / (double)take) : 0;
    p->loud = 0.9 * p->loud + 0.1 * rms;
  }
  hd_limiter_run(lim, acc, out, n);
}

int hd_egress_composite(const hd_egress_args_t *a) {
  static cp_t c;
  pthread_mutex_init(&c.mu, NULL);
  char why[256];
  if (hd_layout_parse(&c.layout, a->layout, why, sizeof why) < 0) {
    fprintf(stderr, "hudong egress: --layout: %s\n", why);
    return 2;
  }
  hd_client_config_t cfg = {.url = a->url,
                            .token = a->token,
                            .no_quality_reports = 1,
                            .cb = {.on_state = on_state,
                                   .on_track = on_track,
                                   .on_participant = on_participant,
                                   .on_audio = on_audio,
                                   .on_video = on_video,
                                   .ud = &c}};
  hd_client_t *cl = NULL;
  int rc = hd_client_new(&cl, &cfg);
  if (rc == 0) rc = hd_client_join(cl);
  if (rc < 0) {
    fprintf(stderr, "hudong egress: %s\n", hd_client_strerror(rc));
    hd_client_free(cl);
    return 1;
  }
  pthread_t in_th;
  int in_started = a->stdin_control && pthread_create(&in_th, NULL, stdin_main, &c) == 0;
  if (in_started) pthread_detach(in_th);

  /* wait for the first track, then a little for a video one */
  int video = 0, ended_early = 0;
  int64_t t_wait = now_us();
  char reason[300] = "stopped";
  for (;;) {
    pthread_mutex_lock(&c.mu);
    int64_t first = c.first_track_us;
    video = c.any_video;
    int ended = c.ended;
    if (ended) {
      snprintf(reason, sizeof reason, "%s", c.end_reason);
      if (c.end_err != HD_CLIENT_ECLOSED && c.end_err != 0) rc = HD_EIO;
    }
    pthread_mutex_unlock(&c.mu);
    ended_early = ended;
    if (hd_egress_stopping() || ended) break;
    if (first && (video || now_us() - first >= CP_DECIDE_US)) break;
    if (now_us() - t_wait > 1000000 && (now_us() - t_wait) % 1000000 < 20000)
      hd_egress_emit_composite(NULL, 0, 0);
    usleep(20000);
  }
  hd_av_out_t *av = NULL;
  int64_t t0 = now_us(), frames = 0, samples = 0;
  if (!hd_egress_stopping() && !ended_early) {
    hd_av_out_config_t oc = {.video = video,
                             .width = a->width,
                             .height = a->height,
                             .fps = a->fps,
                             .video_kbps = a->video_kbps,
                             .audio_kbps = 64,
                             .n_urls = a->n_outputs,
                             .backoff_first_ms = a->backoff_ms};
    for (int i = 0; i < a->n_outputs; i++)
      oc.urls[i] = a->outputs[i];
    rc = hd_av_out_open(&av, &oc, why, sizeof why);
    if (rc < 0) {
      fprintf(stderr, "hudong egress: %s\n", why);
      snprintf(reason, sizeof reason, "%s", why);
    }
  }
  hd_i420_t canvas = {0};
  if (av && video && hd_i420_alloc(&canvas, a->width, a->height) < 0) rc = HD_ENOMEM;
  hd_limiter_t lim;
  hd_limiter_init(&lim);
  int16_t pcm[48000 / 10];
  int32_t acc[48000 / 10];
  int64_t next_status = now_us() + 1000000;
  int64_t compose_us = 0, encode_us = 0;
  uint64_t late = 0;
  t0 = now_us();
  while (av && rc == 0 && !hd_egress_stopping()) {
    pthread_mutex_lock(&c.mu);
    int ended = c.ended, end_err = c.end_err;
    if (ended) snprintf(reason, sizeof reason, "%s", c.end_reason);
    pthread_mutex_unlock(&c.mu);
    if (ended) {
      if (end_err != HD_CLIENT_ECLOSED && end_err != 0) rc = HD_EIO;
      break;
    }
    int64_t now = now_us();
    if (video) {
      int64_t due = t0 + frames * 1000000 / a->fps;
      if (now < due) {
        usleep((useconds_t)(due - now));
        continue;
      }
      /* behind real time (a loaded machine): skip the frames that are past,
       * so the video keeps the wall clock, like the audio (A/V sync) */
      int64_t index = (now - t0) * a->fps / 1000000;
      if (index > frames) {
        late += (uint64_t)(index - frames);
        frames = index;
      }
      int64_t s0 = now_us();
      pthread_mutex_lock(&c.mu);
      compose(&c, &canvas);
      pthread_mutex_unlock(&c.mu);
      int64_t s1 = now_us();
      hd_av_out_video(av, &canvas, frames);
      encode_us += now_us() - s1;
      compose_us += s1 - s0;
      frames++;
    } else {
      usleep(20000);
    }
    /* audio up to now, in blocks of at most 100 ms */
    int64_t want = (now_us() - t0) * 48 / 1000;
    while (samples < want) {
      size_t n = (size_t)(want - samples) < sizeof pcm / sizeof pcm[0] ? (size_t)(want - samples)
                                                                       : sizeof pcm / sizeof pcm[0];
      pthread_mutex_lock(&c.mu);
      mix(&c, &lim, pcm, acc, n);
      pthread_mutex_unlock(&c.mu);
      hd_av_out_audio(av, pcm, n);
      samples += (int64_t)n;
    }
    if (now_us() >= next_status) {
      next_status += 1000000;
      json_t *outs = json_array();
      hd_av_out_status(av, outs);
      json_t *st = json_pack("{s:I,s:I,s:I,s:f,s:f}", "frames", (json_int_t)frames, "audio_ms",
                             (json_int_t)(samples / 48), "skipped_frames", (json_int_t)late, "compose_ms_avg",
                             frames ? compose_us / 1000.0 / (double)frames : 0.0, "encode_ms_avg",
                             frames ? encode_us / 1000.0 / (double)frames : 0.0);
      json_object_set_new(st, "video", json_boolean(video));
      pthread_mutex_lock(&c.mu);
      json_object_set_new(st, "layout_changes", json_integer((json_int_t)c.layout_changes));
      pthread_mutex_unlock(&c.mu);
      json_object_set_new(st, "outputs", outs);
      hd_egress_emit_composite(st, 0, 0);
    }
  }
  hd_client_free(cl); /* no callback after this */
  pthread_mutex_lock(&c.mu);
  uint64_t layout_changes = c.layout_changes; /* the stdin thread may still run */
  pthread_mutex_unlock(&c.mu);
  json_t *outs = json_array();
  int crc = hd_av_out_close(av, outs);
  json_t *st = json_pack("{s:I,s:I,s:I,s:b,s:I}", "frames", (json_int_t)frames, "audio_ms",
                         (json_int_t)(samples / 48), "skipped_frames", (json_int_t)late, "video", video,
                         "layout_changes", (json_int_t)layout_changes);
  json_object_set_new(st, "outputs", outs);
  json_object_set_new(st, "reason", json_string(reason));
  hd_egress_emit_composite(st, 1, rc < 0);
  hd_i420_free(&canvas);
  for (int i = 0; i < CP_MAX; i++)
    if (c.p[i].used) drop_part(&c.p[i]);
  (void)crc;
  return rc < 0 ? 1 : 0;
}
