/* `hudong bench load --target janus`: drives the Janus VideoRoom plugin
 * (janus.plugin.videoroom, Janus 1.x) over Janus's HTTP REST API with the same
 * legs and media as the Hudong target.
 *
 * One Janus session for the whole run, one plugin handle per leg (= one
 * PeerConnection), one long poll (GET /janus/<session>?maxev=N) in flight that
 * brings every handle's events ("sender" = handle id). Rooms are created here
 * and destroyed at the end.
 *   publisher:  attach -> "joinandconfigure" (ptype publisher, id = feed) with our
 *               offer (hd_pc is the offerer; Janus is a full ICE agent, we are
 *               controlling) -> event "joined" + jsep answer.
 *   subscriber: attach -> "join" (ptype subscriber, streams = its feeds) ->
 *               event "attached" + jsep offer -> hd_pc answers (controlled) ->
 *               "start" with the answer.
 * Candidates are in the SDPs (Janus half-trickle, ours host on 127.0.0.1); a
 * trickle "completed" follows each of our descriptions.
 *
 * HTTP: a minimal client on uv_tcp, one request per connection (Connection:
 * close), body read to EOF and parsed with jansson. Janus answers requests in
 * a few ms; the long poll holds its connection up to 30 s. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "base/err.h"
#include "cmd/bench_load.h"
#include "io/http_client.h"

#define J_RESP_MAX (4u << 20)
#define J_SDP_MAX 65536

typedef struct jrun jrun_t;
typedef void (*jreq_cb)(jrun_t *j, bl_leg_t *l, int status, json_t *body);

typedef struct {
  uv_tcp_t tcp;
  uv_connect_t conn;
  uv_write_t wr;
  jrun_t *j;
  bl_leg_t *leg;
  jreq_cb cb;
  char *out;
  size_t out_len;
  char *in;
  size_t in_len, in_cap;
  int done;
} jreq_t;

struct jrun {
  bl_run_t *r;
  hd_http_url_t url;
  struct sockaddr_in addr;
  uint64_t session, admin_handle;
  uint64_t room_base;
  int rooms_created, rooms_failed, destroyed;
  int polling, inflight;
  uint64_t txn;
  hd_time_t last_keepalive;
};

typedef struct {
  uint64_t handle;
  int attached, answered;
} jleg_t;

/* ---- HTTP ---- */

static void jreq_closed(uv_handle_t *h) {
  jreq_t *q = h->data;
  q->j->inflight--;
  free(q->out);
  free(q->in);
  free(q);
}

/* Decodes a chunked body (RFC 9112 §7.1) in place; returns its length, or -1. */
static long dechunk(char *b, size_t len) {
  size_t in = 0, out = 0;
  for (;;) {
    char *end;
    if (in >= len) return -1;
    unsigned long n = strtoul(b + in, &end, 16);
    char *crlf = memmem(b + in, len - in, "\r\n", 2);
    if (!crlf || end > crlf) return -1;
    in = (size_t)(crlf + 2 - b);
    if (n == 0) return (long)out;
    if (n > len - in) return -1;
    memmove(b + out, b + in, n);
    out += n;
    in += n + 2;
  }
}

static void jreq_finish(jreq_t *q, int err) {
  if (q->done) return;
  q->done = 1;
  int status = 0;
  json_t *body = NULL;
  if (!err && q->in_len > 12 && !strncmp(q->in, "HTTP/1.", 7)) {
    status = atoi(q->in + 9);
    char *b = memmem(q->in, q->in_len, "\r\n\r\n", 4);
    if (b) {
      *b = 0; /* headers end here */
      char *bs = b + 4;
      long blen = (long)(q->in_len - (size_t)(bs - q->in));
      if (strcasestr(q->in, "transfer-encoding: chunked")) blen = dechunk(bs, (size_t)blen);
      if (blen >= 0) body = json_loadb(bs, (size_t)blen, 0, NULL);
    }
  }
  if (q->cb) q->cb(q->j, q->leg, status, body);
  json_decref(body);
  uv_close((uv_handle_t *)&q->tcp, jreq_closed);
}

static void jreq_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  jreq_t *q = h->data;
  if (q->in_cap - q->in_len < 16384 && q->in_cap < J_RESP_MAX) {
    size_t nc = q->in_cap ? q->in_cap * 2 : 32768;
    char *n = realloc(q->in, nc);
    if (n) q->in = n, q->in_cap = nc;
  }
  *b = uv_buf_init(q->in + q->in_len, (unsigned)(q->in_cap - q->in_len));
}

static void jreq_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  jreq_t *q = s->data;
  if (n > 0) {
    q->in_len += (size_t)n;
    if (q->in_len >= q->in_cap && q->in_cap >= J_RESP_MAX) jreq_finish(q, 1);
    return;
  }
  if (n < 0) jreq_finish(q, n != UV_EOF);
}

static void jreq_written(uv_write_t *w, int st) {
  jreq_t *q = w->data;
  if (st < 0) jreq_finish(q, 1);
}

static void jreq_connected(uv_connect_t *c, int st) {
  jreq_t *q = c->data;
  if (st < 0) {
    jreq_finish(q, 1);
    return;
  }
  uv_read_start((uv_stream_t *)&q->tcp, jreq_alloc, jreq_read);
  uv_buf_t b = uv_buf_init(q->out, (unsigned)q->out_len);
  q->wr.data = q;
  if (uv_write(&q->wr, (uv_stream_t *)&q->tcp, &b, 1, jreq_written) < 0) jreq_finish(q, 1);
}

/* Sends method path with body (a JSON object, consumed; NULL for GET). */
static int jhttp(jrun_t *j, bl_leg_t *l, const char *method, const char *path, json_t *body, jreq_cb cb) {
  char *js = body ? json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
  size_t blen = js ? strlen(js) : 0;
  jreq_t *q = calloc(1, sizeof *q);
  if (!q) {
    free(js);
    return HD_ENOMEM;
  }
  q->j = j;
  q->leg = l;
  q->cb = cb;
  q->out = malloc(blen + 512 + strlen(path));
  if (!q->out) {
    free(js);
    free(q);
    return HD_ENOMEM;
  }
  q->out_len = (size_t)sprintf(q->out,
                               "%s %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n"
                               "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                               method, path, j->url.host, j->url.port, blen);
  if (js) memcpy(q->out + q->out_len, js, blen), q->out_len += blen;
  free(js);
  uv_tcp_init(j->r->loop, &q->tcp);
  q->tcp.data = q;
  q->conn.data = q;
  j->inflight++;
  if (uv_tcp_connect(&q->conn, &q->tcp, (const struct sockaddr *)&j->addr, jreq_connected) < 0) {
    q->done = 1;
    uv_close((uv_handle_t *)&q->tcp, jreq_closed);
    return HD_EIO;
  }
  return 0;
}

static json_t *jmsg(jrun_t *j, const char *janus) {
  char t[32];
  snprintf(t, sizeof t, "t%llu", (unsigned long long)++j->txn);
  return json_pack("{s:s, s:s}", "janus", janus, "transaction", t);
}

static const char *jstr(json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "";
}

static void session_path(jrun_t *j, char *p, size_t cap, uint64_t handle) {
  if (handle)
    snprintf(p, cap, "%s/%llu/%llu", j->url.path, (unsigned long long)j->session, (unsigned long long)handle);
  else
    snprintf(p, cap, "%s/%llu", j->url.path, (unsigned long long)j->session);
}

/* ---- events (long poll) ---- */

static bl_leg_t *leg_by_handle(jrun_t *j, uint64_t h) {
  bl_run_t *r = j->r;
  bl_leg_t *sets[2] = {r->pubs, r->subs};
  int ns[2] = {r->n_pubs, r->n_subs};
  for (int k = 0; k < 2; k++)
    for (int i = 0; i < ns[k]; i++) {
      jleg_t *t = sets[k][i].t;
      if (t && t->handle == h) return &sets[k][i];
    }
  return NULL;
}

static void send_trickle_done(jrun_t *j, bl_leg_t *l) {
  jleg_t *t = l->t;
  char p[HD_HTTPC_PATH_MAX + 64];
  session_path(j, p, sizeof p, t->handle);
  json_t *m = jmsg(j, "trickle");
  json_object_set_new(m, "candidate", json_pack("{s:b}", "completed", 1));
  jhttp(j, l, "POST", p, m, NULL);
}

static void on_ack(jrun_t *j, bl_leg_t *l, int status, json_t *b) {
  if (status != 200 || !b || (strcmp(jstr(b, "janus"), "ack") && strcmp(jstr(b, "janus"), "success")))
    bl_leg_fail(l, "janus request: HTTP %d %s", status, b ? jstr(b, "janus") : "(no body)");
}

static void handle_event(jrun_t *j, json_t *ev) {
  if (getenv("HD_BENCH_DEBUG")) {
    char *d = json_dumps(ev, JSON_COMPACT);
    fprintf(stderr, "janus event: %s\n", d ? d : "");
    free(d);
  }
  const char *type = jstr(ev, "janus");
  uint64_t sender = (uint64_t)json_integer_value(json_object_get(ev, "sender"));
  bl_leg_t *l = sender ? leg_by_handle(j, sender) : NULL;
  if (!l) return;
  jleg_t *t = l->t;
  if (!strcmp(type, "hangup") || !strcmp(type, "detached")) {
    if (!j->r->stopping) bl_leg_fail(l, "janus %s: %s", type, jstr(ev, "reason"));
    return;
  }
  if (strcmp(type, "event")) return; /* webrtcup, media, slowlink, ... */
  json_t *data = json_object_get(json_object_get(ev, "plugindata"), "data");
  json_t *jsep = json_object_get(ev, "jsep");
  const char *vr = jstr(data, "videoroom");
  if (json_object_get(data, "error")) {
    bl_leg_fail(l, "videoroom error %lld: %s",
                (long long)json_integer_value(json_object_get(data, "error_code")), jstr(data, "error"));
    return;
  }
  hd_time_t now = bl_now();
  if (l->is_pub && jsep && !strcmp(jstr(jsep, "type"), "answer") && !t->answered) {
    const char *sdp = jstr(jsep, "sdp");
    int rc = hd_pc_set_remote_answer(l->pc, sdp, strlen(sdp), now);
    if (rc < 0) {
      bl_leg_fail(l, "janus answer: %s", hd_strerror(rc));
      return;
    }
    t->answered = 1;
    l->ready = 1;
    bl_leg_flush(l);
  } else if (!l->is_pub && jsep && !strcmp(jstr(jsep, "type"), "offer") && !t->answered) {
    const char *sdp = jstr(jsep, "sdp");
    char *ans = malloc(J_SDP_MAX);
    if (!ans) return;
    int rc = hd_pc_answer_offer(l->pc, sdp, strlen(sdp), ans, J_SDP_MAX, now);
    if (rc < 0) {
      bl_leg_fail(l, "janus offer (%s): %s", vr, hd_strerror(rc));
      free(ans);
      return;
    }
    t->answered = 1;
    char p[HD_HTTPC_PATH_MAX + 64];
    session_path(j, p, sizeof p, t->handle);
    json_t *m = jmsg(j, "message");
    json_object_set_new(m, "body", json_pack("{s:s}", "request", "start"));
    json_object_set_new(m, "jsep", json_pack("{s:s, s:s}", "type", "answer", "sdp", ans));
    free(ans);
    jhttp(j, l, "POST", p, m, on_ack);
    send_trickle_done(j, l);
    bl_leg_flush(l);
  }
}

static void poll_events(jrun_t *j);

static void on_poll(jrun_t *j, bl_leg_t *unused, int status, json_t *b) {
  j->polling = 0;
  if (j->destroyed) return;
  if (status == 200 && b) {
    if (json_is_array(b)) {
      size_t i;
      json_t *e;
      json_array_foreach(b, i, e) handle_event(j, e);
    } else {
      handle_event(j, b);
    }
  } else if (!j->r->stopping) {
    fprintf(stderr, "bench load: janus long poll: HTTP %d\n", status);
  }
  poll_events(j);
}

static void poll_events(jrun_t *j) {
  if (j->polling || j->destroyed || !j->session) return;
  char p[HD_HTTPC_PATH_MAX + 64], q[HD_HTTPC_PATH_MAX + 96];
  session_path(j, p, sizeof p, 0);
  snprintf(q, sizeof q, "%s?maxev=100", p);
  j->polling = 1;
  if (jhttp(j, NULL, "GET", q, NULL, on_poll) < 0) j->polling = 0;
}

/* ---- setup: session, admin handle, rooms ---- */

static uint64_t data_id(json_t *b) {
  return (uint64_t)json_integer_value(json_object_get(json_object_get(b, "data"), "id"));
}

static void on_session(jrun_t *j, bl_leg_t *l, int status, json_t *b) {
  j->session = status == 200 && b ? data_id(b) : 0;
  if (!j->session) j->rooms_failed = 1;
}
static void on_admin(jrun_t *j, bl_leg_t *l, int status, json_t *b) {
  j->admin_handle = status == 200 && b ? data_id(b) : 0;
  if (!j->admin_handle) j->rooms_failed = 1;
}
static void on_room(jrun_t *j, bl_leg_t *l, int status, json_t *b) {
  json_t *d = json_object_get(json_object_get(b, "plugindata"), "data");
  if (status == 200 && !strcmp(jstr(d, "videoroom"), "created"))
    j->rooms_created++;
  else {
    fprintf(stderr, "bench load: janus create room: HTTP %d %s\n", status, d ? jstr(d, "error") : "");
    j->rooms_failed = 1;
  }
}

static int wait_until(jrun_t *j, int *flag_a, int want, hd_time_t timeout) {
  hd_time_t end = bl_now() + timeout;
  while (bl_now() < end && *flag_a < want && !j->rooms_failed)
    uv_run(j->r->loop, UV_RUN_ONCE);
  return *flag_a >= want && !j->rooms_failed ? 0 : HD_ETIMEDOUT;
}

int bl_janus_init(bl_run_t *r) {
  jrun_t *j = calloc(1, sizeof *j);
  if (!j) return HD_ENOMEM;
  r->janus = j;
  j->r = r;
  int rc = hd_http_url_parse(r->o.url, &j->url);
  if (rc < 0) return rc;
  if (uv_ip4_addr(j->url.host, j->url.port, &j->addr) < 0) return HD_EUNSUPPORTED;
  j->room_base = (uint64_t)(getpid() % 100000) * 1000 + 1000000;
  if ((rc = jhttp(j, NULL, "POST", j->url.path, jmsg(j, "create"), on_session)) < 0) return rc;
  hd_time_t end = bl_now() + HD_SEC(10);
  while (!j->session && !j->rooms_failed && bl_now() < end)
    uv_run(r->loop, UV_RUN_ONCE);
  if (!j->session) return HD_EIO;
  char p[HD_HTTPC_PATH_MAX + 64];
  session_path(j, p, sizeof p, 0);
  json_t *m = jmsg(j, "attach");
  json_object_set_new(m, "plugin", json_string("janus.plugin.videoroom"));
  jhttp(j, NULL, "POST", p, m, on_admin);
  while (!j->admin_handle && !j->rooms_failed && bl_now() < end)
    uv_run(r->loop, UV_RUN_ONCE);
  if (!j->admin_handle) return HD_EIO;
  session_path(j, p, sizeof p, j->admin_handle);
  for (int i = 0; i < r->o.rooms; i++) {
    m = jmsg(j, "message");
    /* NACK/RTX comparable to Hudong's: Janus retransmits on NACK from its own
     * buffer (nack_queue in janus.jcfg); no recording, no transcoding. */
    json_object_set_new(m, "body",
                        json_pack("{s:s, s:I, s:i, s:s, s:s, s:i, s:b, s:b}", "request", "create", "room",
                                  (json_int_t)(j->room_base + (uint64_t)i), "publishers", r->o.publishers + 1,
                                  "audiocodec", "opus", "videocodec", "vp8", "bitrate", 0, "notify_joining",
                                  0, "permanent", 0));
    jhttp(j, NULL, "POST", p, m, on_room);
  }
  if (wait_until(j, &j->rooms_created, r->o.rooms, HD_SEC(10)) < 0) return HD_EIO;
  poll_events(j);
  return 0;
}

static void on_attach(jrun_t *j, bl_leg_t *l, int status, json_t *b) {
  jleg_t *t = l->t;
  t->handle = status == 200 && b ? data_id(b) : 0;
  if (!t->handle) {
    bl_leg_fail(l, "janus attach: HTTP %d", status);
    return;
  }
  t->attached = 1;
  bl_run_t *r = j->r;
  char p[HD_HTTPC_PATH_MAX + 64];
  session_path(j, p, sizeof p, t->handle);
  json_int_t room = (json_int_t)(j->room_base + (uint64_t)l->room);
  json_t *m = jmsg(j, "message");
  if (l->is_pub) {
    l->atrack = hd_pc_add_transceiver(l->pc, HD_PC_AUDIO, HD_PC_SENDONLY);
    if (!r->o.audio_only) l->vtrack = hd_pc_add_transceiver(l->pc, HD_PC_VIDEO, HD_PC_SENDONLY);
    char *offer = malloc(J_SDP_MAX);
    if (!offer) return;
    int rc = hd_pc_create_offer(l->pc, offer, J_SDP_MAX, bl_now());
    if (rc < 0) {
      bl_leg_fail(l, "create offer: %s", hd_strerror(rc));
      free(offer);
      json_decref(m);
      return;
    }
    json_object_set_new(m, "body",
                        json_pack("{s:s, s:s, s:I, s:I, s:s, s:b, s:b}", "request", "joinandconfigure",
                                  "ptype", "publisher", "room", room, "id", (json_int_t)l->pub_id, "display",
                                  l->identity, "audio", 1, "video", !r->o.audio_only));
    json_object_set_new(m, "jsep", json_pack("{s:s, s:s}", "type", "offer", "sdp", offer));
    free(offer);
    jhttp(j, l, "POST", p, m, on_ack);
    send_trickle_done(j, l);
  } else {
    json_t *streams = json_array();
    for (int i = 0; i < r->o.publishers; i++)
      if (bl_leg_wants(l, i))
        json_array_append_new(streams, json_pack("{s:I}", "feed", (json_int_t)(l->room * 1000 + i + 1)));
    json_object_set_new(m, "body",
                        json_pack("{s:s, s:s, s:I, s:o}", "request", "join", "ptype", "subscriber", "room",
                                  room, "streams", streams));
    jhttp(j, l, "POST", p, m, on_ack);
  }
}

int bl_janus_start(bl_leg_t *l) {
  jrun_t *j = l->run->janus;
  jleg_t *t = calloc(1, sizeof *t);
  if (!t) return HD_ENOMEM;
  l->t = t;
  char p[HD_HTTPC_PATH_MAX + 64];
  session_path(j, p, sizeof p, 0);
  json_t *m = jmsg(j, "attach");
  json_object_set_new(m, "plugin", json_string("janus.plugin.videoroom"));
  return jhttp(j, l, "POST", p, m, on_attach);
}

void bl_janus_tick(bl_run_t *r, hd_time_t now) {
  jrun_t *j = r->janus;
  if (!j || !j->session || j->destroyed) return;
  poll_events(j);
  /* the long poll keeps the session alive; a keepalive as well, in case the
   * configured session_timeout is short */
  if (now - j->last_keepalive > HD_SEC(15)) {
    j->last_keepalive = now;
    char p[HD_HTTPC_PATH_MAX + 64];
    session_path(j, p, sizeof p, 0);
    jhttp(j, NULL, "POST", p, jmsg(j, "keepalive"), NULL);
  }
}

void bl_janus_stop(bl_run_t *r) {
  jrun_t *j = r->janus;
  if (!j) return;
  if (j->session) {
    char p[HD_HTTPC_PATH_MAX + 64];
    if (j->admin_handle) {
      session_path(j, p, sizeof p, j->admin_handle);
      for (int i = 0; i < r->o.rooms; i++) {
        json_t *m = jmsg(j, "message");
        json_object_set_new(
            m, "body",
            json_pack("{s:s, s:I}", "request", "destroy", "room", (json_int_t)(j->room_base + (uint64_t)i)));
        jhttp(j, NULL, "POST", p, m, NULL);
      }
    }
    hd_time_t end = bl_now() + HD_SEC(3);
    while (j->inflight > (j->polling ? 1 : 0) && bl_now() < end)
      uv_run(r->loop, UV_RUN_ONCE);
    session_path(j, p, sizeof p, 0);
    jhttp(j, NULL, "POST", p, jmsg(j, "destroy"), NULL);
    j->destroyed = 1;
    end = bl_now() + HD_SEC(5);
    while (j->inflight > 0 && bl_now() < end)
      uv_run(r->loop, UV_RUN_ONCE);
  }
  bl_leg_t *sets[2] = {r->pubs, r->subs};
  int ns[2] = {r->n_pubs, r->n_subs};
  for (int k = 0; k < 2; k++)
    for (int i = 0; i < ns[k]; i++) {
      free(sets[k][i].t);
      sets[k][i].t = NULL;
    }
  /* a request still in flight keeps j (its callback sees destroyed) */
  if (!j->inflight) {
    free(j);
    r->janus = NULL;
  }
}
