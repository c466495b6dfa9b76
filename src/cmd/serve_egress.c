/* Egress control of `hudong serve` (see serve_egress.h, docs/egress.md).
 *
 *   POST   /admin/egress        {"room", "kind": "track", "audio_format"?: "ogg"|"webm"}
 *   GET    /admin/egress        the app's recordings (a room-scoped token: its room's)
 *   GET    /admin/egress/{id}
 *   DELETE /admin/egress/{id}   stop: the recorder finishes its files and exits
 *   PATCH  /admin/egress/{id}   {"layout": ...} a composite's layout, live
 *
 * Each recording is one `hudong egress` child process (this binary,
 * /proc/self/exe) that joins the room as a hidden subscriber with a token
 * minted here; its stdout is a pipe of JSON status lines read on the control
 * loop. The node's media workers only ever forward to it like to any other
 * subscriber: a recorder that stalls, crashes or is killed costs the workers
 * nothing more than a subscriber that went away. */
#include "cmd/serve_egress.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/log.h"
#include "base/rand.h"
#include "egress/layout.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "sfu/webhook.h"

#define LINE_MAX_BYTES (256 * 1024) /* a status line longer than this is dropped */
#define KILL_AFTER_MS 10000         /* SIGTERM -> SIGKILL */
#define HD_EGRESS_LAYOUT_MAX 8192
#define HD_EGRESS_OUTPUTS 4

enum { ST_STARTING, ST_ACTIVE, ST_ENDING, ST_COMPLETE, ST_FAILED };
static const char *const state_names[] = {"starting", "active", "ending", "complete", "failed"};

typedef struct eg {
  struct hd_serve_egress *owner;
  int used;
  char id[24], app[64], room[72], dir[600], audio[8];
  int state;
  char error[300];
  int64_t started_ms, ended_ms; /* unix ms */
  int composite;
  int ingest;                  /* an RTMP ingest: the process publishes into the room */
  int transcode;               /* ingest: its key asks for VP8 always (no H.264 passthrough) */
  char identity[72], key[300]; /* ingest: who it publishes as; its stream key */
  char layout[HD_EGRESS_LAYOUT_MAX], size[16];
  int fps;
  char outputs[HD_EGRESS_OUTPUTS][700]; /* composite: files in dir, or RTMP URLs */
  int n_outputs;
  char out_states[256]; /* the outputs' states at the last status (a change -> egress_updated) */
  uv_process_t proc;
  uv_pipe_t out, in;
  uv_timer_t kill_timer;
  int handles_open; /* uv handles not yet closed */
  int proc_running, pipe_reading, ended_line;
  char *line;
  size_t line_len;
  int line_overflow;
  json_t *last;  /* the last "status"/"ended" line */
  json_t *files; /* track lines seen ({"track_sid","path",...}), for files not yet in a status */
} eg_t;

struct hd_serve_egress {
  hd_serve_egress_config_t cfg;
  char exe[1024];
  eg_t *eg; /* HD_EGRESS_HISTORY */
  uint64_t started, refused_limit, refused_disk, failed;
};

static int64_t unix_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int hd_serve_egress_start(hd_serve_egress_t **out, const hd_serve_egress_config_t *cfg) {
  hd_serve_egress_t *e = calloc(1, sizeof *e);
  if (!e) return HD_ENOMEM;
  e->eg = calloc(HD_EGRESS_HISTORY, sizeof *e->eg);
  if (!e->eg) {
    free(e);
    return HD_ENOMEM;
  }
  e->cfg = *cfg;
  size_t n = sizeof e->exe;
  if (uv_exepath(e->exe, &n) != 0) snprintf(e->exe, sizeof e->exe, "/proc/self/exe");
  *out = e;
  return 0;
}

static int running(const eg_t *g) { return g->used && g->state <= ST_ENDING; }

/* ---- JSON of one recording ---- */

static json_t *files_json(const eg_t *g) {
  json_t *arr = json_array();
  if (g->composite) { /* the local outputs: the MP4 file, the HLS playlist */
    json_t *cst = g->last ? json_object_get(g->last, "composite") : NULL;
    json_int_t frames = json_integer_value(json_object_get(cst, "frames"));
    json_int_t audio_ms = json_integer_value(json_object_get(cst, "audio_ms"));
    int video = json_is_true(json_object_get(cst, "video"));
    for (int i = 0; i < g->n_outputs; i++) {
      if (strstr(g->outputs[i], "://")) continue;
      struct stat sb;
      json_int_t bytes = stat(g->outputs[i], &sb) == 0 ? (json_int_t)sb.st_size : 0;
      json_array_append_new(arr, json_pack("{s:s,s:s,s:I,s:I}", "kind", "composite", "path", g->outputs[i],
                                           "duration_ms", video && g->fps ? frames * 1000 / g->fps : audio_ms,
                                           "bytes", bytes));
    }
    return arr;
  }
  json_t *tracks = g->last ? json_object_get(g->last, "tracks") : NULL;
  size_t i;
  json_t *t;
  json_array_foreach(tracks, i, t) {
    json_t *c = json_deep_copy(t);
    /* the size on disk now (after a kill -9 the last status is up to 1 s old) */
    const char *p = json_string_value(json_object_get(c, "path"));
    struct stat sb;
    if (p && stat(p, &sb) == 0) json_object_set_new(c, "bytes", json_integer((json_int_t)sb.st_size));
    json_array_append_new(arr, c);
  }
  /* files announced but not yet in a status line */
  json_array_foreach(g->files, i, t) {
    const char *p = json_string_value(json_object_get(t, "path"));
    int seen = 0;
    size_t k;
    json_t *x;
    json_array_foreach(arr, k, x) {
      const char *q = json_string_value(json_object_get(x, "path"));
      if (p && q && !strcmp(p, q)) seen = 1;
    }
    if (seen) continue;
    json_t *c = json_deep_copy(t);
    json_object_del(c, "type");
    struct stat sb;
    json_object_set_new(c, "bytes", json_integer(p && stat(p, &sb) == 0 ? (json_int_t)sb.st_size : 0));
    json_object_set_new(c, "duration_ms", json_integer(0));
    json_array_append_new(arr, c);
  }
  return arr;
}

static json_t *eg_json(const eg_t *g) {
  json_t *files = files_json(g);
  json_int_t bytes = 0, dropped = 0;
  size_t i;
  json_t *t;
  json_array_foreach(files, i, t) {
    bytes += json_integer_value(json_object_get(t, "bytes"));
    dropped += json_integer_value(json_object_get(t, "dropped_frames"));
  }
  if (g->last) dropped += json_integer_value(json_object_get(g->last, "queue_dropped_frames"));
  int64_t end = g->ended_ms ? g->ended_ms : unix_ms();
  int64_t dur = end - g->started_ms;
  json_t *o =
      json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:f,s:I,s:s,s:o}", "egress_id", g->id, "room", g->room,
                "kind", "track", "state", state_names[g->state], "started_at", (json_int_t)g->started_ms,
                "ended_at", (json_int_t)g->ended_ms, "duration_ms", (json_int_t)dur, "bytes", bytes,
                "bitrate_kbps", dur > 0 ? (double)bytes * 8.0 / (double)dur : 0.0, "dropped_frames", dropped,
                "dir", g->dir, "files", files);
  if (g->error[0]) json_object_set_new(o, "error", json_string(g->error));
  if (g->ingest) {
    json_object_set_new(o, "kind", json_string("ingest"));
    json_object_set_new(o, "identity", json_string(g->identity));
    json_t *ist = g->last ? json_object_get(g->last, "ingest") : NULL;
    json_object_set_new(o, "ingest", ist ? json_deep_copy(ist) : json_object());
  }
  if (g->composite) {
    json_object_set_new(o, "kind", json_string("composite"));
    json_t *cst = g->last ? json_object_get(g->last, "composite") : NULL;
    json_t *lj = json_loads(g->layout, 0, NULL);
    json_object_set_new(o, "layout", lj ? lj : json_string(g->layout));
    json_object_set_new(o, "size", json_string(g->size));
    json_object_set_new(o, "fps", json_integer(g->fps));
    json_object_set_new(o, "video", json_boolean(json_is_true(json_object_get(cst, "video"))));
    const char *num[] = {"frames", "skipped_frames", "layout_changes", "audio_ms"};
    for (size_t q = 0; q < sizeof num / sizeof num[0]; q++)
      json_object_set_new(o, num[q], json_integer(json_integer_value(json_object_get(cst, num[q]))));
    json_t *outs = json_object_get(cst, "outputs");
    json_object_set_new(o, "outputs", outs ? json_deep_copy(outs) : json_array());
  }
  if (g->proc_running) json_object_set_new(o, "pid", json_integer(g->proc.pid)); /* the recorder process */
  return o;
}

static void webhook(hd_serve_egress_t *e, eg_t *g, hd_webhook_event_type_t type) {
  if (!e->cfg.webhooks) return;
  json_t *o = eg_json(g);
  char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(o);
  if (!s) return;
  hd_webhook_event_t ev = {.type = type, .app = g->app, .room_name = g->room, .egress_json = s};
  if (hd_webhook_sender_push(e->cfg.webhooks, &ev) < 0) HD_LOGW("egress", "%s: webhook not queued", g->id);
  free(s);
}

/* ---- child process ---- */

static void on_handle_closed(uv_handle_t *h) {
  eg_t *g = h->data;
  g->handles_open--;
}

static void close_handles(eg_t *g) {
  if (g->pipe_reading) {
    uv_read_stop((uv_stream_t *)&g->out);
    g->pipe_reading = 0;
  }
  uv_handle_t *hs[] = {(uv_handle_t *)&g->out, (uv_handle_t *)&g->kill_timer, (uv_handle_t *)&g->proc,
                       (uv_handle_t *)&g->in};
  for (size_t i = 0; i < 4; i++)
    if (hs[i]->loop && !uv_is_closing(hs[i])) uv_close(hs[i], on_handle_closed);
}

static void finish(eg_t *g) {
  /* both the exit status and the end of its output are in */
  if (g->proc_running || g->pipe_reading) return;
  hd_serve_egress_t *e = g->owner;
  g->ended_ms = unix_ms();
  if (g->state != ST_FAILED) g->state = g->ended_line && !g->error[0] ? ST_COMPLETE : ST_FAILED;
  if (g->state == ST_FAILED) e->failed++;
  HD_LOGI("egress", "%s (room %s) %s%s%s", g->id, g->room, state_names[g->state], g->error[0] ? ": " : "",
          g->error);
  webhook(e, g, HD_WEBHOOK_EGRESS_ENDED);
  close_handles(g);
  free(g->line);
  g->line = NULL;
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig) {
  eg_t *g = p->data;
  g->proc_running = 0;
  uv_timer_stop(&g->kill_timer);
  if (sig && !g->error[0])
    snprintf(g->error, sizeof g->error, "recorder killed by signal %d (files are playable up to the kill)",
             sig);
  else if (status && !g->error[0]) {
    const char *why = g->last ? json_string_value(json_object_get(g->last, "reason")) : NULL;
    snprintf(g->error, sizeof g->error, "recorder exited with status %lld%s%s", (long long)status,
             why ? ": " : "", why ? why : "");
  }
  finish(g);
}

static void on_line(eg_t *g, const char *s, size_t n) {
  json_t *o = json_loadb(s, n, 0, NULL);
  const char *type = json_string_value(json_object_get(o, "type"));
  if (!type) {
    json_decref(o);
    return;
  }
  hd_serve_egress_t *e = g->owner;
  if (!strcmp(type, "track")) {
    json_array_append(g->files, o);
    if (g->state == ST_STARTING) g->state = ST_ACTIVE;
    webhook(e, g, HD_WEBHOOK_EGRESS_UPDATED);
  } else if (!strcmp(type, "status") || !strcmp(type, "ended")) {
    json_decref(g->last);
    g->last = json_incref(o);
    json_t *outs = json_object_get(json_object_get(o, "composite"), "outputs");
    if (outs && !strcmp(type, "status")) { /* an output connected, failed, is retrying: egress_updated */
      char sig[sizeof g->out_states] = "";
      size_t i, l = 0;
      json_t *x;
      json_array_foreach(outs, i, x) {
        const char *st = json_string_value(json_object_get(x, "state"));
        if (l < sizeof sig) l += (size_t)snprintf(sig + l, sizeof sig - l, "%s,", st ? st : "");
      }
      if (strcmp(sig, g->out_states)) {
        snprintf(g->out_states, sizeof g->out_states, "%s", sig);
        if (g->state == ST_STARTING) g->state = ST_ACTIVE;
        webhook(e, g, HD_WEBHOOK_EGRESS_UPDATED);
      }
    }
    if (!strcmp(type, "ended")) g->ended_line = 1;
    if (json_is_true(json_object_get(o, "failed")) && !g->error[0])
      snprintf(g->error, sizeof g->error, "%s",
               json_string_value(json_object_get(o, "reason"))
                   ? json_string_value(json_object_get(o, "reason"))
                   : "failed");
    if (g->state == ST_STARTING) g->state = ST_ACTIVE;
    /* disk floor while recording: stop cleanly before the disk is full */
    struct statvfs vs;
    if (g->state == ST_ACTIVE && e->cfg.cfg->egress_min_free_mb > 0 && statvfs(g->dir, &vs) == 0 &&
        (uint64_t)vs.f_bavail * vs.f_frsize / (1024 * 1024) < (uint64_t)e->cfg.cfg->egress_min_free_mb / 2) {
      snprintf(g->error, sizeof g->error,
               "stopped: free disk space fell below half the floor of %ld MB (config egress_min_free_mb)",
               e->cfg.cfg->egress_min_free_mb);
      g->state = ST_ENDING;
      if (g->proc_running) uv_process_kill(&g->proc, SIGTERM);
    }
  }
  json_decref(o);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  static char slab[65536];
  (void)h;
  (void)suggested;
  buf->base = slab;
  buf->len = sizeof slab;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  eg_t *g = st->data;
  if (nread < 0) {
    uv_read_stop(st);
    g->pipe_reading = 0;
    finish(g);
    return;
  }
  for (ssize_t i = 0; i < nread; i++) {
    char c = buf->base[i];
    if (c == '\n') {
      if (!g->line_overflow && g->line_len) on_line(g, g->line, g->line_len);
      g->line_len = 0;
      g->line_overflow = 0;
    } else if (g->line_len < LINE_MAX_BYTES) {
      g->line[g->line_len++] = c;
    } else {
      g->line_overflow = 1;
    }
  }
}

static void on_kill_timer(uv_timer_t *t) {
  eg_t *g = t->data;
  if (g->proc_running) {
    HD_LOGW("egress", "%s: recorder did not stop within %d ms: SIGKILL", g->id, KILL_AFTER_MS);
    uv_process_kill(&g->proc, SIGKILL);
  }
}

static eg_t *slot(hd_serve_egress_t *e) {
  eg_t *oldest = NULL;
  for (int i = 0; i < HD_EGRESS_HISTORY; i++) {
    eg_t *g = &e->eg[i];
    if (!g->used && !g->handles_open) return g;
    if (!running(g) && !g->handles_open && (!oldest || g->ended_ms < oldest->ended_ms)) oldest = g;
  }
  if (oldest) {
    json_decref(oldest->last);
    json_decref(oldest->files);
  }
  return oldest;
}

static int spawn(hd_serve_egress_t *e, eg_t *g, const char *token, char *err, size_t errcap) {
  const hd_config_t *c = e->cfg.cfg;
  const char *host = c->listen_host;
  if (!host[0] || !strcmp(host, "0.0.0.0") || !strcmp(host, "::")) host = "127.0.0.1";
  char url[200];
  snprintf(url, sizeof url, "%s://%s:%d/rtc", c->tls_cert[0] || c->tls_dev ? "wss" : "ws", host,
           c->listen_port);
  char *args[32] = {e->exe, "egress", "--url", url, "--token", (char *)token};
  int na = 6;
  char fps[16];
  snprintf(fps, sizeof fps, "%d", g->fps);
  char ingest_url[900], gop_ms[24];
  if (g->ingest) {
    snprintf(ingest_url, sizeof ingest_url, "%s/%s", c->ingest_rtmp_url, g->key);
    args[na++] = "--ingest";
    args[na++] = ingest_url;
    if (g->transcode) {
      args[na++] = "--ingest-video";
      args[na++] = "transcode";
    }
    snprintf(gop_ms, sizeof gop_ms, "%ld", c->ingest_max_keyframe_interval_ms);
    args[na++] = "--ingest-max-keyframe-ms";
    args[na++] = gop_ms;
  } else if (g->composite) {
    char *extra[] = {"--composite", "--stdin-control", "--layout", g->layout,
                     "--size",      g->size,           "--fps",    fps};
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
      args[na++] = extra[i];
    for (int i = 0; i < g->n_outputs; i++) {
      args[na++] = "--output";
      args[na++] = g->outputs[i];
    }
  } else {
    char *extra[] = {"--out", g->dir, "--audio", g->audio};
    for (size_t i = 0; i < 4; i++)
      args[na++] = extra[i];
  }
  args[na] = NULL;
  uv_pipe_init(e->cfg.loop, &g->out, 0);
  g->out.data = g;
  g->handles_open++;
  uv_pipe_init(e->cfg.loop, &g->in, 0);
  g->in.data = g;
  g->handles_open++;
  uv_timer_init(e->cfg.loop, &g->kill_timer);
  g->kill_timer.data = g;
  g->handles_open++;
  uv_stdio_container_t io[3] = {
      {.flags = UV_CREATE_PIPE | UV_READABLE_PIPE, .data.stream = (uv_stream_t *)&g->in},
      {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&g->out},
      {.flags = UV_INHERIT_FD, .data.fd = 2}};
  uv_process_options_t po = {
      .exit_cb = on_exit_cb, .file = e->exe, .args = args, .stdio_count = 3, .stdio = io};
  g->proc.data = g;
  int rc = uv_spawn(e->cfg.loop, &g->proc, &po);
  g->handles_open++; /* initialized even when the spawn fails: closed either way */
  if (rc != 0) {
    snprintf(err, errcap, "cannot start the recorder process: %s", uv_strerror(rc));
    close_handles(g);
    return HD_EIO;
  }
  g->proc_running = 1;
  g->line = malloc(LINE_MAX_BYTES);
  if (!g->line || uv_read_start((uv_stream_t *)&g->out, alloc_cb, on_read) != 0) {
    snprintf(err, errcap, "cannot read the recorder's output");
    uv_process_kill(&g->proc, SIGKILL);
    return HD_EIO;
  }
  g->pipe_reading = 1;
  return 0;
}

/* ---- HTTP ---- */

static void reply_json(hd_http_resp_t *resp, int status, json_t *o) {
  char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(o);
  if (!s) {
    hd_http_resp_text(resp, 500, "out of memory\n");
    return;
  }
  hd_http_resp_body(resp, status, "application/json", s, strlen(s));
  free(s);
}

static const char *secret_of(const hd_config_t *c, const char *app) {
  for (int i = 0; i < c->n_apps; i++)
    if (!strcmp(c->apps[i].key, app)) return c->apps[i].secret;
  return NULL;
}

static int valid_room(const char *r) {
  size_t n = strlen(r);
  if (n == 0 || n > 64) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = r[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_' || c == '.'))
      return 0;
  }
  return 1;
}

static void create(hd_serve_egress_t *e, const hd_token_claims_t *claims, const hd_http_req_t *req,
                   hd_http_resp_t *resp) {
  const hd_config_t *c = e->cfg.cfg;
  json_error_t je;
  json_t *b = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
  const char *bad = NULL, *k;
  json_t *kv;
  if (!json_is_object(b))
    bad = "body must be a JSON object {\"room\", \"kind\": \"track\" | \"composite\", ...}";
  const char *room = json_string_value(json_object_get(b, "room"));
  const char *kind = json_string_value(json_object_get(b, "kind"));
  const char *af = json_string_value(json_object_get(b, "audio_format"));
  int composite = kind && !strcmp(kind, "composite");
  if (!bad) json_object_foreach(b, k, kv) {
      if (strcmp(k, "room") && strcmp(k, "kind") &&
          (composite ? strcmp(k, "layout") && strcmp(k, "outputs") && strcmp(k, "size") && strcmp(k, "fps")
                     : strcmp(k, "audio_format")))
        bad = composite ? "unknown member (allowed for a composite: room, kind, layout, outputs, size, fps)"
                        : "unknown member (allowed for kind track: room, kind, audio_format)";
    }
  if (!bad && (!room || !valid_room(room)))
    bad = "\"room\" must be a room name (1-64 characters of A-Z a-z 0-9 - _ .)";
  if (!bad && json_object_get(b, "kind") && (!kind || (strcmp(kind, "track") && !composite)))
    bad = "\"kind\" must be \"track\" (a file per track) or \"composite\" (one mixed H.264 + AAC stream)";
  if (!bad && json_object_get(b, "audio_format") && (!af || (strcmp(af, "ogg") && strcmp(af, "webm"))))
    bad = "\"audio_format\" must be \"ogg\" (default) or \"webm\"";
  /* composite: layout, outputs, size, fps */
  char layout[HD_EGRESS_LAYOUT_MAX] = "grid", size[16] = "1280x720", lwhy[200];
  long fps = 30;
  json_t *outs = json_object_get(b, "outputs"), *lj = json_object_get(b, "layout");
  if (!bad && composite) {
    if (lj) {
      char *t = json_is_string(lj)   ? strdup(json_string_value(lj))
                : json_is_object(lj) ? json_dumps(lj, JSON_COMPACT)
                                     : NULL;
      hd_layout_t l;
      if (!t || strlen(t) >= sizeof layout)
        bad = "\"layout\" must be \"grid\", \"speaker\" or a layout object of at most 8 KiB (docs/egress.md)";
      else if (hd_layout_parse(&l, t, lwhy, sizeof lwhy) < 0)
        bad = lwhy;
      else
        snprintf(layout, sizeof layout, "%s", t);
      free(t);
    }
    json_t *sz = json_object_get(b, "size"), *fp = json_object_get(b, "fps");
    int w = 0, h = 0;
    if (!bad && sz &&
        (!json_is_string(sz) || sscanf(json_string_value(sz), "%dx%d", &w, &h) != 2 || w < 16 || h < 16 ||
         w > 1920 || h > 1080 || (w | h) & 1))
      bad = "\"size\" must be \"WxH\", even, from 16x16 to 1920x1080 (default 1280x720)";
    if (!bad && sz) snprintf(size, sizeof size, "%dx%d", w, h);
    if (!bad && fp && (!json_is_integer(fp) || json_integer_value(fp) < 1 || json_integer_value(fp) > 60))
      bad = "\"fps\" must be an integer 1..60 (default 30)";
    if (!bad && fp) fps = (long)json_integer_value(fp);
    if (!bad &&
        (!json_is_array(outs) || json_array_size(outs) < 1 || json_array_size(outs) > HD_EGRESS_OUTPUTS))
      bad = "\"outputs\" must be an array of 1..4 of \"mp4\", \"hls\", \"rtmp://...\", \"rtmps://...\"";
    size_t i;
    json_t *x;
    if (!bad) json_array_foreach(outs, i, x) {
        const char *u = json_string_value(x);
        if (!u ||
            (strcmp(u, "mp4") && strcmp(u, "hls") && strncmp(u, "rtmp://", 7) && strncmp(u, "rtmps://", 8)) ||
            strlen(u) >= 600)
          bad =
              "each output must be \"mp4\" (a file), \"hls\" (playlist + segments) or an rtmp:// / rtmps:// "
              "URL shorter than 600 bytes";
      }
  }
  if (bad) {
    hd_http_resp_text(resp, 400, "%s\n", bad);
    json_decref(b);
    return;
  }
  char why[256];
  if (hd_token_authorize(claims, room, HD_GRANT_RECORD, why, sizeof why) < 0) {
    hd_http_resp_text(resp, 403, "forbidden: %s\n", why);
    json_decref(b);
    return;
  }
  int n_running = 0;
  for (int i = 0; i < HD_EGRESS_HISTORY; i++)
    n_running += running(&e->eg[i]);
  if (n_running >= c->egress_max) {
    e->refused_limit++;
    hd_http_resp_text(resp, 429,
                      "egress limit reached: %d recording(s) running on this node (config egress_max = %ld); "
                      "stop one (DELETE /admin/egress/{id}) or raise the limit\n",
                      n_running, c->egress_max);
    json_decref(b);
    return;
  }
  if (mkdir(c->egress_dir, 0755) < 0 && errno != EEXIST) {
    hd_http_resp_text(resp, 500, "cannot create the egress folder %s: %s (config egress_dir)\n",
                      c->egress_dir, strerror(errno));
    json_decref(b);
    return;
  }
  struct statvfs vs;
  if (c->egress_min_free_mb > 0 && statvfs(c->egress_dir, &vs) == 0) {
    uint64_t free_mb = (uint64_t)vs.f_bavail * vs.f_frsize / (1024 * 1024);
    if (free_mb < (uint64_t)c->egress_min_free_mb) {
      e->refused_disk++;
      hd_http_resp_text(resp, 507,
                        "not enough disk space to record: %llu MB free in %s, the floor is %ld MB (config "
                        "egress_min_free_mb); free some space or lower the floor\n",
                        (unsigned long long)free_mb, c->egress_dir, c->egress_min_free_mb);
      json_decref(b);
      return;
    }
  }
  const char *secret = secret_of(c, claims->key);
  eg_t *g = secret ? slot(e) : NULL;
  if (!g) {
    hd_http_resp_text(resp, 503, "%s\n",
                      secret ? "too many recordings remembered; retry when one has ended"
                             : "unknown app key");
    json_decref(b);
    return;
  }
  memset(g, 0, sizeof *g);
  g->owner = e;
  g->used = 1;
  snprintf(g->id, sizeof g->id, "EG_");
  hd_random_token(g->id + 3, 12);
  snprintf(g->app, sizeof g->app, "%s", claims->key);
  snprintf(g->room, sizeof g->room, "%s", room);
  snprintf(g->dir, sizeof g->dir, "%s/%s", c->egress_dir, g->id);
  snprintf(g->audio, sizeof g->audio, "%s", af ? af : "ogg");
  g->started_ms = unix_ms();
  g->files = json_array();
  if (composite) {
    g->composite = 1;
    snprintf(g->layout, sizeof g->layout, "%s", layout);
    snprintf(g->size, sizeof g->size, "%s", size);
    g->fps = (int)fps;
    size_t i;
    json_t *x;
    json_array_foreach(outs, i, x) {
      const char *u = json_string_value(x);
      if (!strcmp(u, "mp4"))
        snprintf(g->outputs[g->n_outputs++], sizeof g->outputs[0], "%s/composite.mp4", g->dir);
      else if (!strcmp(u, "hls"))
        snprintf(g->outputs[g->n_outputs++], sizeof g->outputs[0], "%s/hls/index.m3u8", g->dir);
      else
        snprintf(g->outputs[g->n_outputs++], sizeof g->outputs[0], "%s", u);
    }
    char hls[700];
    snprintf(hls, sizeof hls, "%s/hls", g->dir);
    mkdir(g->dir, 0755);
    mkdir(hls, 0755);
  }
  json_decref(b);
  /* the recorder's own token: a hidden subscriber of this room only */
  hd_token_claims_t t;
  memset(&t, 0, sizeof t);
  snprintf(t.key, sizeof t.key, "%s", g->app);
  snprintf(t.identity, sizeof t.identity, "%s", g->id);
  snprintf(t.room, sizeof t.room, "%s", g->room);
  t.room_join = t.can_subscribe = t.hidden = 1;
  t.iat = t.nbf = (int64_t)time(NULL);
  int64_t life = hd_token_max_lifetime() > 0 ? hd_token_max_lifetime() : 24 * 3600;
  t.exp = t.iat + life;
  char tok[HD_TOKEN_MAX], err[256];
  if (hd_token_mint(&t, secret, tok, sizeof tok) < 0) {
    g->used = 0;
    hd_http_resp_text(resp, 500, "cannot mint the recorder's token\n");
    return;
  }
  if (spawn(e, g, tok, err, sizeof err) < 0) {
    g->state = ST_FAILED;
    snprintf(g->error, sizeof g->error, "%s", err);
    g->ended_ms = unix_ms();
    e->failed++;
    hd_http_resp_text(resp, 500, "%s\n", err);
    return;
  }
  e->started++;
  HD_LOGI("egress", "%s: recording room %s into %s (pid %d)", g->id, g->room, g->dir, g->proc.pid);
  webhook(e, g, HD_WEBHOOK_EGRESS_STARTED);
  reply_json(resp, 201, eg_json(g));
}

static void on_written(uv_write_t *w, int status) {
  (void)status;
  free(w->data);
  free(w);
}

/* PATCH {"layout": ...}: handed to the running composite as a stdin line */
static void patch_layout(eg_t *g, const hd_http_req_t *req, hd_http_resp_t *resp) {
  if (!g->composite || !running(g) || !g->proc_running) {
    hd_http_resp_text(resp, 409, "egress %s is not a running composite: its layout cannot change\n", g->id);
    return;
  }
  json_t *b = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, NULL);
  json_t *lj = json_object_get(b, "layout");
  char *t = json_is_string(lj)   ? strdup(json_string_value(lj))
            : json_is_object(lj) ? json_dumps(lj, JSON_COMPACT)
                                 : NULL;
  char why[200] = "body must be {\"layout\": \"grid\" | \"speaker\" | {...}}";
  hd_layout_t l;
  if (!t || json_object_size(b) != 1 || strlen(t) >= sizeof g->layout ||
      hd_layout_parse(&l, t, why, sizeof why) < 0) {
    hd_http_resp_text(resp, 400, "%s\n", why);
    free(t);
    json_decref(b);
    return;
  }
  json_decref(b);
  json_t *line = json_pack("{s:s}", "layout", t);
  char *ls = json_dumps(line, JSON_COMPACT);
  json_decref(line);
  size_t n = ls ? strlen(ls) : 0;
  char *buf = ls ? malloc(n + 1) : NULL;
  uv_write_t *w = buf ? malloc(sizeof *w) : NULL;
  if (!w) {
    free(buf);
    free(ls);
    free(t);
    hd_http_resp_text(resp, 500, "out of memory\n");
    return;
  }
  memcpy(buf, ls, n);
  buf[n] = '\n';
  free(ls);
  w->data = buf;
  uv_buf_t ub = uv_buf_init(buf, (unsigned)n + 1);
  if (uv_write(w, (uv_stream_t *)&g->in, &ub, 1, on_written) != 0) {
    free(buf);
    free(w);
    free(t);
    hd_http_resp_text(resp, 500, "cannot reach the recorder\n");
    return;
  }
  snprintf(g->layout, sizeof g->layout, "%s", t);
  free(t);
  reply_json(resp, 200, eg_json(g));
}

/* ---- RTMP ingest (docs/egress.md "RTMP ingest") ---- */

static int key_chars(const char *v, int dots) {
  if (!*v) return 0;
  for (const char *p = v; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
          *p == '_' || (dots && *p == '.')))
      return 0;
  return 1;
}

/* The stream key: <app>~<room>~<identity>~<mac>, mac = the first 32 hex
 * digits of HMAC-SHA256(app secret, "hudong-ingest|app|room|identity"); with
 * "video": "transcode" <app>~<room>~<identity>~t~<mac> and "|transcode"
 * appended to the MAC input, so the policy cannot be taken off the key. Any
 * node with the app's secret checks it without state; a new secret revokes
 * every key. */
static int ingest_key(const char *secret, const char *app, const char *room, const char *identity,
                      int transcode, char *out, size_t cap) {
  char msg[400];
  int n = snprintf(msg, sizeof msg, "hudong-ingest|%s|%s|%s%s", app, room, identity,
                   transcode ? "|transcode" : "");
  if (n < 0 || (size_t)n >= sizeof msg) return HD_EINVAL;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int ml = 0;
  if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)msg, (size_t)n, mac, &ml))
    return HD_ECRYPTO;
  char hex[33];
  for (int i = 0; i < 16; i++)
    snprintf(hex + 2 * i, 3, "%02x", mac[i]);
  n = snprintf(out, cap, "%s~%s~%s~%s%s", app, room, identity, transcode ? "t~" : "", hex);
  return n > 0 && (size_t)n < cap ? 0 : HD_ENOSPC;
}

/* POST /admin/ingress {"room", "identity", "video"?}: a stream key for OBS
 * (roomAdmin). video: "auto" (default: H.264 constrained-baseline
 * compatible passes through, the rest is transcoded to VP8) or "transcode"
 * (always VP8, for rooms whose viewers cannot decode H.264). */
static void ingress_create(hd_serve_egress_t *e, const hd_token_claims_t *claims, const hd_http_req_t *req,
                           hd_http_resp_t *resp) {
  const hd_config_t *c = e->cfg.cfg;
  json_t *b = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, NULL);
  const char *room = json_string_value(json_object_get(b, "room"));
  const char *id = json_string_value(json_object_get(b, "identity"));
  json_t *jv = json_object_get(b, "video");
  const char *video = jv ? json_string_value(jv) : "auto";
  if (!json_is_object(b) || json_object_size(b) != 2u + (jv != NULL) || !room || !valid_room(room) || !id ||
      strlen(id) > 64 || !key_chars(id, 0) || !video ||
      (strcmp(video, "auto") && strcmp(video, "transcode"))) {
    hd_http_resp_text(resp, 400,
                      "body must be {\"room\": <room name>, \"identity\": <1-64 of A-Z a-z 0-9 - _>, "
                      "\"video\"?: \"auto\" (default: H.264 baseline passes through) or \"transcode\" "
                      "(always VP8)}\n");
    json_decref(b);
    return;
  }
  char why[256];
  if (hd_token_authorize(claims, room, HD_GRANT_ADMIN, why, sizeof why) < 0) {
    hd_http_resp_text(resp, 403, "forbidden: %s\n", why);
    json_decref(b);
    return;
  }
  const char *secret = secret_of(c, claims->key);
  char key[300];
  if (!c->ingest_rtmp_url[0]) {
    hd_http_resp_text(resp, 501, "RTMP ingest is off: set ingest_rtmp_url in the config (docs/egress.md)\n");
  } else if (!key_chars(claims->key, 0)) {
    hd_http_resp_text(resp, 400, "RTMP ingest needs an app key of A-Z a-z 0-9 - _ only\n");
  } else if (!secret ||
             ingest_key(secret, claims->key, room, id, !strcmp(video, "transcode"), key, sizeof key) < 0) {
    hd_http_resp_text(resp, 500, "cannot make a stream key\n");
  } else {
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s++,s:s}", "room", room, "identity", id, "stream_key", key,
                          "server", c->ingest_rtmp_url, "url", c->ingest_rtmp_url, "/", key, "video", video);
    reply_json(resp, 201, o);
  }
  json_decref(b);
}

/* the value of name in an application/x-www-form-urlencoded body */
static int form_value(const char *body, size_t len, const char *name, char *out, size_t cap) {
  size_t nl = strlen(name), k = 0;
  for (size_t i = 0; i < len;) {
    size_t j = i;
    while (j < len && body[j] != '&')
      j++;
    if (j - i > nl && !strncmp(body + i, name, nl) && body[i + nl] == '=') {
      for (size_t p = i + nl + 1; p < j && k + 1 < cap; p++) {
        if (body[p] == '%' && p + 2 < j) {
          unsigned v;
          if (sscanf(body + p + 1, "%2x", &v) != 1) return -1;
          out[k++] = (char)v;
          p += 2;
        } else {
          out[k++] = body[p] == '+' ? ' ' : body[p];
        }
      }
      out[k] = 0;
      return 0;
    }
    i = j + 1;
  }
  return -1;
}

/* nginx-rtmp on_publish / on_publish_done (form bodies with name=<key>):
 * 2xx lets the publisher in, 403 refuses it. */
static void rtmp_callback(hd_serve_egress_t *e, const hd_http_req_t *req, hd_http_resp_t *resp) {
  const hd_config_t *c = e->cfg.cfg;
  char key[300], parts[5][130] = {{0}};
  if (strcmp(req->method, "POST") || form_value(req->body, req->body_len, "name", key, sizeof key) < 0) {
    hd_http_resp_text(resp, 400, "want a POST form with name=<stream key> (nginx-rtmp on_publish)\n");
    return;
  }
  int np = 0;
  for (char *save = NULL, *t = strtok_r(strcpy((char[300]){0}, key), "~", &save); t && np < 5;
       t = strtok_r(NULL, "~", &save))
    snprintf(parts[np++], sizeof parts[0], "%s", t);
  char want[300];
  int transcode = np == 5 && !strcmp(parts[3], "t"); /* <app>~<room>~<identity>~t~<mac> */
  const char *secret = np == 4 || transcode ? secret_of(c, parts[0]) : NULL;
  int ok = secret && valid_room(parts[1]) && key_chars(parts[2], 0) && strlen(parts[2]) <= 64 &&
           ingest_key(secret, parts[0], parts[1], parts[2], transcode, want, sizeof want) == 0 &&
           CRYPTO_memcmp(want, key, strlen(want) + 1) == 0;
  int done = !strcmp(req->path, "/api/rtmp/on_publish_done");
  if (!ok) {
    HD_LOGW("egress", "RTMP publish refused: bad stream key");
    hd_http_resp_text(resp, 403, "bad stream key\n");
    return;
  }
  for (int i = 0; i < HD_EGRESS_HISTORY; i++) { /* one ingest per key */
    eg_t *g = &e->eg[i];
    if (g->used && g->ingest && running(g) && !strcmp(g->key, key)) {
      if (done && g->proc_running && g->state != ST_ENDING) {
        g->state = ST_ENDING;
        uv_process_kill(&g->proc, SIGTERM);
        uv_timer_start(&g->kill_timer, on_kill_timer, KILL_AFTER_MS, 0);
      }
      hd_http_resp_text(resp, done ? 200 : 409, done ? "ok\n" : "this stream key is already publishing\n");
      return;
    }
  }
  if (done) {
    hd_http_resp_text(resp, 200, "ok\n");
    return;
  }
  int n_running = 0;
  for (int i = 0; i < HD_EGRESS_HISTORY; i++)
    n_running += running(&e->eg[i]);
  eg_t *g = n_running < c->egress_max ? slot(e) : NULL;
  if (!g) {
    e->refused_limit++;
    hd_http_resp_text(resp, 503, "egress limit reached (config egress_max = %ld)\n", c->egress_max);
    return;
  }
  memset(g, 0, sizeof *g);
  g->owner = e;
  g->used = 1;
  g->ingest = 1;
  g->transcode = transcode;
  snprintf(g->id, sizeof g->id, "IN_");
  hd_random_token(g->id + 3, 12);
  snprintf(g->app, sizeof g->app, "%.63s", parts[0]);
  snprintf(g->room, sizeof g->room, "%.71s", parts[1]);
  snprintf(g->identity, sizeof g->identity, "%.71s", parts[2]);
  snprintf(g->key, sizeof g->key, "%s", key);
  snprintf(g->dir, sizeof g->dir, "-");
  g->started_ms = unix_ms();
  g->files = json_array();
  hd_token_claims_t t;
  memset(&t, 0, sizeof t);
  snprintf(t.key, sizeof t.key, "%s", g->app);
  snprintf(t.identity, sizeof t.identity, "%s", g->identity);
  snprintf(t.room, sizeof t.room, "%s", g->room);
  t.room_join = t.can_publish = 1;
  t.iat = t.nbf = (int64_t)time(NULL);
  t.exp = t.iat + (hd_token_max_lifetime() > 0 ? hd_token_max_lifetime() : 24 * 3600);
  char tok[HD_TOKEN_MAX], err[256];
  if (hd_token_mint(&t, secret, tok, sizeof tok) < 0 || spawn(e, g, tok, err, sizeof err) < 0) {
    g->state = ST_FAILED;
    snprintf(g->error, sizeof g->error, "cannot start the ingest process");
    g->ended_ms = unix_ms();
    e->failed++;
    hd_http_resp_text(resp, 500, "cannot start the ingest\n");
    return;
  }
  e->started++;
  HD_LOGI("egress", "%s: RTMP ingest into room %s as %s (pid %d)", g->id, g->room, g->identity, g->proc.pid);
  webhook(e, g, HD_WEBHOOK_EGRESS_STARTED);
  hd_http_resp_text(resp, 200, "ok\n");
}

void hd_serve_egress_rtmp_http(hd_serve_egress_t *e, const hd_http_req_t *req, hd_http_resp_t *resp) {
  if (!strcmp(req->path, "/api/rtmp/on_publish") || !strcmp(req->path, "/api/rtmp/on_publish_done"))
    rtmp_callback(e, req, resp);
  else
    hd_http_resp_text(resp, 404, "not found: %s (on_publish, on_publish_done)\n", req->path);
}

static eg_t *find(hd_serve_egress_t *e, const char *app, const char *id) {
  for (int i = 0; i < HD_EGRESS_HISTORY; i++)
    if (e->eg[i].used && !strcmp(e->eg[i].id, id) && !strcmp(e->eg[i].app, app)) return &e->eg[i];
  return NULL;
}

void hd_serve_egress_http(hd_serve_egress_t *e, const hd_token_claims_t *claims, const hd_http_req_t *req,
                          hd_http_resp_t *resp) {
  if (!strcmp(req->path, "/admin/ingress")) {
    if (strcmp(req->method, "POST"))
      hd_http_resp_text(resp, 405, "POST /admin/ingress {\"room\", \"identity\"}\n");
    else
      ingress_create(e, claims, req, resp);
    return;
  }
  const char *rest = req->path + strlen("/admin/egress");
  if (!*rest && !strcmp(req->method, "POST")) {
    create(e, claims, req, resp);
    return;
  }
  char why[256];
  if (!*rest && !strcmp(req->method, "GET")) {
    json_t *arr = json_array();
    for (int i = 0; i < HD_EGRESS_HISTORY; i++) {
      eg_t *g = &e->eg[i];
      if (g->used && !strcmp(g->app, claims->key) &&
          hd_token_authorize(claims, g->room, HD_GRANT_RECORD, NULL, 0) == 0)
        json_array_append_new(arr, eg_json(g));
    }
    reply_json(resp, 200, json_pack("{s:o}", "egresses", arr));
    return;
  }
  if (rest[0] != '/' || !rest[1] || strchr(rest + 1, '/')) {
    hd_http_resp_text(resp, 404, "not found: %s (want /admin/egress or /admin/egress/{id})\n", req->path);
    return;
  }
  eg_t *g = find(e, claims->key, rest + 1);
  if (!g) {
    hd_http_resp_text(resp, 404, "no such egress: %s\n", rest + 1);
    return;
  }
  if (hd_token_authorize(claims, g->room, HD_GRANT_RECORD, why, sizeof why) < 0) {
    hd_http_resp_text(resp, 403, "forbidden: %s\n", why);
    return;
  }
  if (!strcmp(req->method, "GET")) {
    reply_json(resp, 200, eg_json(g));
  } else if (!strcmp(req->method, "PATCH")) {
    patch_layout(g, req, resp);
  } else if (!strcmp(req->method, "DELETE")) {
    if (!running(g)) {
      hd_http_resp_text(resp, 409, "egress %s has already ended (state %s)\n", g->id, state_names[g->state]);
      return;
    }
    if (g->state != ST_ENDING) {
      g->state = ST_ENDING;
      uv_process_kill(&g->proc, SIGTERM); /* the recorder finishes its files */
      uv_timer_start(&g->kill_timer, on_kill_timer, KILL_AFTER_MS, 0);
    }
    reply_json(resp, 200, eg_json(g));
  } else {
    hd_http_resp_text(resp, 405, "%s is not allowed on %s (GET, PATCH, DELETE)\n", req->method, req->path);
  }
}

int hd_serve_egress_metrics(hd_serve_egress_t *e, char *out, size_t cap) {
  if (!e) return 0;
  int n_running = 0;
  for (int i = 0; i < HD_EGRESS_HISTORY; i++)
    n_running += running(&e->eg[i]);
  int n = snprintf(out, cap,
                   "# HELP hudong_egress_running Recordings running (one `hudong egress` process each).\n"
                   "# TYPE hudong_egress_running gauge\nhudong_egress_running %d\n"
                   "# HELP hudong_egress_started_total Recordings started.\n"
                   "# TYPE hudong_egress_started_total counter\nhudong_egress_started_total %llu\n"
                   "# HELP hudong_egress_failed_total Recordings that ended in failure (recorder crashed or "
                   "killed, could not join).\n"
                   "# TYPE hudong_egress_failed_total counter\nhudong_egress_failed_total %llu\n"
                   "# HELP hudong_egress_refused_total Recordings refused by a limit.\n"
                   "# TYPE hudong_egress_refused_total counter\n"
                   "hudong_egress_refused_total{limit=\"egress_max\"} %llu\n"
                   "hudong_egress_refused_total{limit=\"disk\"} %llu\n",
                   n_running, (unsigned long long)e->started, (unsigned long long)e->failed,
                   (unsigned long long)e->refused_limit, (unsigned long long)e->refused_disk);
  return n >= 0 && (size_t)n < cap ? n : HD_ENOSPC; /* /metrics renders again, larger */
}

void hd_serve_egress_stop(hd_serve_egress_t *e) {
  if (!e) return;
  /* SIGTERM every recorder, give them 5 s together to finish their files */
  for (int i = 0; i < HD_EGRESS_HISTORY; i++)
    if (e->eg[i].used && e->eg[i].proc_running) kill(e->eg[i].proc.pid, SIGTERM);
  for (int ms = 0; ms < 5000; ms += 50) {
    int left = 0;
    for (int i = 0; i < HD_EGRESS_HISTORY; i++) {
      eg_t *g = &e->eg[i];
      if (!g->used || !g->proc_running) continue;
      if (waitpid(g->proc.pid, NULL, WNOHANG) == g->proc.pid)
        g->proc_running = 0;
      else
        left++;
    }
    if (!left) break;
    usleep(50000);
  }
  for (int i = 0; i < HD_EGRESS_HISTORY; i++) {
    eg_t *g = &e->eg[i];
    if (g->used && g->proc_running) {
      kill(g->proc.pid, SIGKILL);
      waitpid(g->proc.pid, NULL, 0);
      g->proc_running = 0;
    }
    if (g->handles_open) {
      g->pipe_reading = 0;
      close_handles(g);
    }
  }
  uv_run(e->cfg.loop, UV_RUN_NOWAIT); /* the close callbacks */
  for (int i = 0; i < HD_EGRESS_HISTORY; i++) {
    json_decref(e->eg[i].last);
    json_decref(e->eg[i].files);
    free(e->eg[i].line);
  }
  free(e->eg);
  free(e);
}
