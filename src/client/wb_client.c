/* Native whiteboard client (wb_client.h). */
#include "client/wb_client.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/rand.h"
#include "base/str.h"
#include "client/rtm_client.h"
#include "io/http_client.h"

#define HD_RTM_MAX_CHANNEL_WBC 65 /* a channel name and its NUL */

/* One GET with the whole answer read (the node answers with Content-Length
 * or chunked; Connection: close, so the body ends at EOF at the latest). */
typedef struct get {
  hd_wbc_t *w;
  uv_tcp_t tcp;
  uv_connect_t conn;
  uv_write_t wr;
  char *req;
  char *buf;
  size_t n, cap;
  int closing, done;
  void (*cb)(hd_wbc_t *w, int status, const char *body, size_t len);
} get_t;

typedef struct {
  char *text;
  int64_t seq;
} held_t;

struct hd_wbc {
  uv_loop_t *loop;
  hd_wbc_config_t cfg;
  char *token, *room, ch[HD_RTM_MAX_CHANNEL_WBC];
  hd_http_url_t api;
  hd_rtmc_t *rtm;
  hd_board_t *b;
  int ready, loading; /* loading: a GET in flight; live entries are held */
  held_t held[HD_WBC_MAX_HELD];
  int n_held;
  get_t *get;
  char idbase[8];
  unsigned idn;
};

/* ---------------------------------------------------------------- HTTP GET */

static void get_closed(uv_handle_t *h) {
  get_t *g = h->data;
  free(g->req);
  free(g->buf);
  free(g);
}

static void get_finish(get_t *g, int status, const char *body, size_t len) {
  if (g->done) return;
  g->done = 1;
  if (g->w) {
    g->w->get = NULL;
    g->cb(g->w, status, body, len);
  }
  if (!g->closing) {
    g->closing = 1;
    uv_close((uv_handle_t *)&g->tcp, get_closed);
  }
}

/* De-chunks body[0..len) in place (RFC 9112 §7.1); returns the new length or -1. */
static long dechunk(char *p, size_t len) {
  size_t r = 0, w = 0;
  for (;;) {
    char *end;
    unsigned long n = strtoul(p + r, &end, 16);
    char *crlf = memmem(end, len - (size_t)(end - p), "\r\n", 2);
    if (!crlf || end == p + r) return -1;
    r = (size_t)(crlf - p) + 2;
    if (n == 0) return (long)w;
    if (r + n + 2 > len) return -1;
    memmove(p + w, p + r, n);
    w += n;
    r += n + 2;
  }
}

static void get_parse(get_t *g) {
  hd_http_client_result_t res;
  int hl = hd_http_response_head_parse(g->buf, g->n, &res);
  if (hl <= 0) {
    get_finish(g, HD_EPROTO, "no HTTP response", 16);
    return;
  }
  char *body = g->buf + hl;
  size_t blen = g->n - (size_t)hl;
  const char *te = hd_http_client_header(&res, "transfer-encoding");
  const char *cl = hd_http_client_header(&res, "content-length");
  if (te && strstr(te, "chunked")) {
    long l = dechunk(body, blen);
    if (l < 0) {
      get_finish(g, HD_EPROTO, "bad chunked body", 16);
      return;
    }
    blen = (size_t)l;
  } else if (cl && (size_t)strtoull(cl, NULL, 10) < blen)
    blen = (size_t)strtoull(cl, NULL, 10);
  body[blen] = 0;
  get_finish(g, res.status, body, blen);
}

static void get_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b) {
  get_t *g = h->data;
  (void)sz;
  if (g->cap - g->n < 65536 + 1) {
    size_t nc = g->cap ? g->cap * 2 : 262144;
    char *q = nc <= HD_WBC_MAX_BODY + 65536 ? realloc(g->buf, nc) : NULL;
    if (!q) {
      b->base = NULL;
      b->len = 0;
      return;
    }
    g->buf = q;
    g->cap = nc;
  }
  b->base = g->buf + g->n;
  b->len = g->cap - g->n - 1;
}

static void get_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
  get_t *g = s->data;
  (void)b;
  if (nread > 0) {
    g->n += (size_t)nread;
    return;
  }
  if (nread == UV_EOF)
    get_parse(g);
  else if (nread < 0)
    get_finish(g, nread == UV_ENOBUFS ? HD_ENOSPC : HD_EIO, "read failed", 11);
}

static void get_written(uv_write_t *wr, int st) {
  get_t *g = wr->data;
  if (st < 0)
    get_finish(g, HD_EIO, "write failed", 12);
  else
    uv_read_start((uv_stream_t *)&g->tcp, get_alloc, get_read);
}

static void get_connected(uv_connect_t *c, int st) {
  get_t *g = c->data;
  if (st < 0) {
    get_finish(g, HD_EIO, "cannot connect", 14);
    return;
  }
  uv_buf_t b = uv_buf_init(g->req, (unsigned)strlen(g->req));
  g->wr.data = g;
  if (uv_write(&g->wr, (uv_stream_t *)&g->tcp, &b, 1, get_written) < 0)
    get_finish(g, HD_EIO, "write failed", 12);
}

static int http_get(hd_wbc_t *w, const char *path, void (*cb)(hd_wbc_t *, int, const char *, size_t)) {
  struct sockaddr_in sa;
  if (w->get || uv_ip4_addr(w->api.host, w->api.port, &sa) < 0) return HD_EINVAL;
  get_t *g = calloc(1, sizeof *g);
  size_t rl = strlen(path) + strlen(w->token) + 256;
  if (!g || !(g->req = malloc(rl))) {
    free(g);
    return HD_ENOMEM;
  }
  snprintf(g->req, rl,
           "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n", path,
           w->api.host, w->api.port, w->token);
  g->w = w;
  g->cb = cb;
  uv_tcp_init(w->loop, &g->tcp);
  g->tcp.data = g;
  g->conn.data = g;
  if (uv_tcp_connect(&g->conn, &g->tcp, (const struct sockaddr *)&sa, get_connected) < 0) {
    g->w = NULL;
    g->done = g->closing = 1;
    uv_close((uv_handle_t *)&g->tcp, get_closed);
    return HD_EIO;
  }
  w->get = g;
  return 0;
}

/* ---------------------------------------------------------------- board */

static void apply_held(hd_wbc_t *w);

static void apply_entry(hd_wbc_t *w, const char *text, size_t len, int64_t seq) {
  if (seq <= hd_board_seq(w->b)) return; /* a duplicate (refill + live) */
  if (hd_board_apply_entry(w->b, text, len) == 0 && w->cfg.on_entry)
    w->cfg.on_entry(w->cfg.ud, seq, text, len);
}

static int64_t entry_seq(const char *text, size_t len) {
  json_t *o = json_loadb(text, len, 0, NULL);
  json_t *s = json_object_get(o, "seq");
  int64_t seq = json_is_integer(s) ? json_integer_value(s) : -1;
  json_decref(o);
  return seq;
}

static void hold(hd_wbc_t *w, const char *text, size_t len, int64_t seq) {
  if (w->n_held >= HD_WBC_MAX_HELD) return; /* the refill covers it */
  char *c = malloc(len + 1);
  if (!c) return;
  memcpy(c, text, len);
  c[len] = 0;
  w->held[w->n_held].text = c;
  w->held[w->n_held++].seq = seq;
}

static void refill(hd_wbc_t *w);

static void loaded(hd_wbc_t *w, int status, const char *body, size_t len) {
  w->loading = 0;
  json_t *o = status == 200 ? json_loadb(body, len, 0, NULL) : NULL;
  json_t *snap = json_object_get(o, "snapshot"), *ops = json_object_get(o, "ops");
  int rc = 0;
  if (!o || !json_is_array(ops))
    rc = status < 0 ? status : status != 200 ? status : HD_EPROTO;
  else if (snap) {
    char *t = json_dumps(snap, JSON_COMPACT);
    rc = t ? hd_board_load_snapshot(w->b, t, strlen(t)) : HD_ENOMEM;
    free(t);
  }
  size_t i;
  json_t *e;
  if (rc == 0) json_array_foreach(ops, i, e) {
      char *t = json_dumps(e, JSON_COMPACT);
      if (t) apply_entry(w, t, strlen(t), json_integer_value(json_object_get(e, "seq")));
      free(t);
    }
  json_decref(o);
  if (rc != 0) {
    if (!w->ready && w->cfg.on_ready) w->cfg.on_ready(w->cfg.ud, rc, status > 0 ? body : hd_strerror(rc));
    return;
  }
  int first = !w->ready;
  w->ready = 1;
  if (first && w->cfg.on_ready) w->cfg.on_ready(w->cfg.ud, 0, "");
  apply_held(w);
}

static void apply_held(hd_wbc_t *w) {
  /* in seq order; a gap left means another refill */
  for (int i = 1; i < w->n_held; i++)
    for (int j = i; j > 0 && w->held[j - 1].seq > w->held[j].seq; j--) {
      held_t t = w->held[j];
      w->held[j] = w->held[j - 1];
      w->held[j - 1] = t;
    }
  int gap = 0;
  for (int i = 0; i < w->n_held; i++) {
    if (w->held[i].seq > hd_board_seq(w->b) + 1) gap = 1;
    if (!gap) apply_entry(w, w->held[i].text, strlen(w->held[i].text), w->held[i].seq);
    free(w->held[i].text);
  }
  w->n_held = 0;
  if (gap) refill(w);
}

static void refill(hd_wbc_t *w) {
  if (w->loading) return;
  char path[512];
  snprintf(path, sizeof path, "/api/board?room=%s&board=%s&after=%lld", w->room, w->ch + 4 + strlen(w->room),
           (long long)hd_board_seq(w->b));
  if (http_get(w, path, loaded) == 0) w->loading = 1;
}

static void on_msg(void *ud, const char *ch, int64_t cseq, const char *from, const char *data, size_t len) {
  hd_wbc_t *w = ud;
  (void)cseq;
  if (strcmp(ch, w->ch)) return;
  int64_t seq = entry_seq(data, len);
  if (seq < 0) {
    if (w->cfg.on_ephemeral && w->ready) w->cfg.on_ephemeral(w->cfg.ud, from, data, len);
    return;
  }
  if (!w->ready || w->loading) {
    hold(w, data, len, seq);
    return;
  }
  if (seq > hd_board_seq(w->b) + 1) { /* a gap: the RTM session was lost */
    hold(w, data, len, seq);
    refill(w);
    return;
  }
  apply_entry(w, data, len, seq);
}

static void subscribed(void *ud, void *req_ud, const hd_rtmc_result_t *r) {
  hd_wbc_t *w = ud;
  (void)req_ud;
  if (r->code) {
    if (w->cfg.on_ready) w->cfg.on_ready(w->cfg.ud, r->code, r->message ? r->message : "subscribe failed");
    return;
  }
  char path[512];
  snprintf(path, sizeof path, "/api/board?room=%s&board=%s", w->room, w->ch + 4 + strlen(w->room));
  int rc = http_get(w, path, loaded);
  if (rc < 0 && w->cfg.on_ready)
    w->cfg.on_ready(w->cfg.ud, rc, "cannot reach the API");
  else
    w->loading = 1;
}

static void logged_in(void *ud, void *req_ud, const hd_rtmc_result_t *r) {
  hd_wbc_t *w = ud;
  (void)req_ud;
  if (r->code) {
    if (w->cfg.on_ready) w->cfg.on_ready(w->cfg.ud, r->code, r->message ? r->message : "login failed");
    return;
  }
  hd_rtmc_subscribe(w->rtm, w->ch, subscribed, NULL);
}

static void on_state(void *ud, hd_rtmc_state_t st, const char *reason) {
  hd_wbc_t *w = ud;
  (void)reason;
  /* back after a cut: ask for what may have been missed */
  if (st == HD_RTMC_CONNECTED && w->ready) refill(w);
}

static void on_error(void *ud, int code, const char *reason, const char *message) {
  hd_wbc_t *w = ud;
  if (w->cfg.on_refused) w->cfg.on_refused(w->cfg.ud, code, reason, message);
}

int hd_wbc_join(hd_wbc_t **out, uv_loop_t *loop, const hd_wbc_config_t *cfg) {
  if (!cfg || !cfg->rtm_url || !cfg->api_url || !cfg->token || !cfg->room) return HD_EINVAL;
  hd_wbc_t *w = calloc(1, sizeof *w);
  if (!w) return HD_ENOMEM;
  w->loop = loop;
  w->cfg = *cfg;
  const char *board = cfg->board ? cfg->board : "main";
  int n = snprintf(w->ch, sizeof w->ch, "wb:%s:%s", cfg->room, board);
  int rc = HD_EINVAL;
  if (n <= 0 || n > HD_RTM_MAX_CHANNEL_WBC - 1 || hd_http_url_parse(cfg->api_url, &w->api) < 0) goto fail;
  for (const char *c = board; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_' ||
          *c == '-'))
      goto fail;
  rc = HD_ENOMEM;
  w->token = strdup(cfg->token);
  w->room = strdup(cfg->room);
  if (!w->token || !w->room || hd_board_new(&w->b, NULL) < 0) goto fail;
  hd_random_token(w->idbase, sizeof w->idbase - 1);
  for (char *c = w->idbase; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9'))) *c = 'x';
  hd_rtmc_config_t rc_cfg = {.url = cfg->rtm_url,
                             .token = cfg->token,
                             .on_message = on_msg,
                             .on_state = on_state,
                             .on_error = on_error,
                             .ud = w};
  if ((rc = hd_rtmc_new(&w->rtm, loop, &rc_cfg)) < 0) goto fail;
  if ((rc = hd_rtmc_login(w->rtm, logged_in, NULL)) < 0) goto fail;
  *out = w;
  return 0;
fail:
  hd_wbc_free(w);
  return rc;
}

void hd_wbc_free(hd_wbc_t *w) {
  if (!w) return;
  if (w->get) { /* its callback must not run */
    w->get->w = NULL;
    w->get->done = 1;
    if (!w->get->closing) {
      w->get->closing = 1;
      uv_close((uv_handle_t *)&w->get->tcp, get_closed);
    }
  }
  if (w->rtm) {
    hd_rtmc_logout(w->rtm, NULL, NULL);
    hd_rtmc_free(w->rtm);
  }
  for (int i = 0; i < w->n_held; i++)
    free(w->held[i].text);
  hd_board_free(w->b);
  free(w->token);
  free(w->room);
  free(w);
}

const hd_board_t *hd_wbc_board(const hd_wbc_t *w) { return w->b; }
int hd_wbc_ready(const hd_wbc_t *w) { return w->ready; }

static void sent(void *ud, void *req_ud, const hd_rtmc_result_t *r) {
  hd_wbc_t *w = ud;
  (void)req_ud;
  if (r->code && w->cfg.on_refused) w->cfg.on_refused(w->cfg.ud, r->code, r->reason, r->message);
}

int hd_wbc_send(hd_wbc_t *w, const char *op_json) {
  if (!w->ready) return HD_ESTATE;
  return hd_rtmc_publish(w->rtm, w->ch, op_json, strlen(op_json), 0, sent, NULL);
}

static int send_obj(hd_wbc_t *w, json_t *o) {
  char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  if (!t) return HD_ENOMEM;
  int rc = hd_wbc_send(w, t);
  free(t);
  return rc;
}

static void new_id(hd_wbc_t *w, char *out, size_t cap, char kind) {
  snprintf(out, cap, "%c%s%x", kind, w->idbase, w->idn++);
}

int hd_wbc_stroke(hd_wbc_t *w, const char *page, const int32_t (*pts)[4], int n, const char *color,
                  int width) {
  if (n < 1) return HD_EINVAL;
  int32_t x0 = pts[0][0], y0 = pts[0][1], x1 = x0, y1 = y0;
  for (int i = 1; i < n; i++) {
    if (pts[i][0] < x0) x0 = pts[i][0];
    if (pts[i][1] < y0) y0 = pts[i][1];
    if (pts[i][0] > x1) x1 = pts[i][0];
    if (pts[i][1] > y1) y1 = pts[i][1];
  }
  json_t *a = json_array();
  for (int i = 0; i < n; i++) {
    json_array_append_new(a, json_integer(pts[i][0] - x0));
    json_array_append_new(a, json_integer(pts[i][1] - y0));
    json_array_append_new(a, json_integer(pts[i][2]));
    json_array_append_new(a, json_integer(pts[i][3] - pts[0][3]));
  }
  char id[32];
  new_id(w, id, sizeof id, 's');
  return send_obj(w,
                  json_pack("{s:s,s:s,s:{s:s,s:s,s:i,s:i,s:i,s:i,s:o,s:s,s:i}}", "op", "add", "page", page,
                            "el", "id", id, "k", "stroke", "x", x0, "y", y0, "w", x1 - x0 > 0 ? x1 - x0 : 1,
                            "h", y1 - y0 > 0 ? y1 - y0 : 1, "pts", a, "c", color, "sw", width));
}

int hd_wbc_shape(hd_wbc_t *w, const char *page, const char *kind, int x0, int y0, int x1, int y1,
                 const char *color, int width) {
  int x = x0 < x1 ? x0 : x1, y = y0 < y1 ? y0 : y1;
  char id[32];
  new_id(w, id, sizeof id, kind[0]);
  json_t *el = json_pack("{s:s,s:s,s:i,s:i,s:i,s:i,s:s,s:i}", "id", id, "k", kind, "x", x, "y", y, "w",
                         abs(x1 - x0), "h", abs(y1 - y0), "c", color, "sw", width);
  if (el && (!strcmp(kind, "line") || !strcmp(kind, "arrow")))
    json_object_set_new(el, "pts", json_pack("[i,i,i,i]", x0 - x, y0 - y, x1 - x, y1 - y));
  return send_obj(w, json_pack("{s:s,s:s,s:o}", "op", "add", "page", page, "el", el));
}

int hd_wbc_cursor(hd_wbc_t *w, const char *page, int x, int y, int laser) {
  return send_obj(
      w, json_pack("{s:s,s:s,s:i,s:i,s:b}", "op", "cur", "page", page, "x", x, "y", y, "laser", laser));
}
