/* libwebsockets HTTP server on a foreign libuv loop. One lws protocol handles all
 * HTTP: it gathers method, path, a few headers and a capped body, calls the
 * handler, and writes the response. Static files are served with
 * lws_serve_http_file after path sanitising. WebSocket upgrades are routed to
 * io/ws.c (second protocol, the vhost's default for upgrades) from
 * LWS_CALLBACK_HTTP_CONFIRM_UPGRADE. */
#include "io/http.h"

#include <libwebsockets.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/err.h"
#include "base/log.h"
#include "io/ws_priv.h"

struct hd_http_server {
  struct lws_context *ctx;
  hd_http_config_t cfg;
  char web_root[512];
  char host[64];
  void *loops[1];
  hd_ws_hub_t *ws;
};

hd_ws_hub_t *hd_http__hub(hd_http_server_t *s) { return s->ws; }

typedef struct {
  char method[8];
  char path[512];
  char query[512];
  char authorization[4200];
  char origin[256];
  char content_type[128];
  char if_match[128];
  char *body;
  size_t body_len;
  int too_large;
  int chunked; /* Transfer-Encoding request: refused with 411, rest discarded */
  /* pending response */
  unsigned char *out;
  size_t out_len;
} conn_t;

void hd_http_resp_header(hd_http_resp_t *r, const char *name, const char *value) {
  if (r->n_headers >= HD_HTTP_MAX_HEADERS) return;
  snprintf(r->header_names[r->n_headers], sizeof r->header_names[0], "%s", name);
  snprintf(r->header_values[r->n_headers], sizeof r->header_values[0], "%s", value);
  r->n_headers++;
}

void hd_http_resp_body(hd_http_resp_t *r, int status, const char *content_type, const char *body,
                       size_t len) {
  free(r->body);
  r->body = malloc(len + 1);
  if (!r->body) {
    r->status = 500;
    r->body_len = 0;
    return;
  }
  memcpy(r->body, body, len);
  r->body[len] = 0;
  r->body_len = len;
  r->status = status;
  snprintf(r->content_type, sizeof r->content_type, "%s", content_type);
}

void hd_http_resp_text(hd_http_resp_t *r, int status, const char *fmt, ...) {
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if ((size_t)n >= sizeof buf) n = sizeof buf - 1;
  hd_http_resp_body(r, status, "text/plain; charset=utf-8", buf, (size_t)n);
}

static void copy_hdr(struct lws *wsi, enum lws_token_indexes t, char *dst, size_t cap) {
  dst[0] = 0;
  if (lws_hdr_total_length(wsi, t) > 0 && (size_t)lws_hdr_total_length(wsi, t) < cap)
    lws_hdr_copy(wsi, dst, (int)cap, t);
}

static const char *mime_for(const char *path) {
  const char *dot = strrchr(path, '.');
  if (!dot) return "application/octet-stream";
  if (!strcmp(dot, ".html")) return "text/html; charset=utf-8";
  if (!strcmp(dot, ".js") || !strcmp(dot, ".mjs")) return "text/javascript; charset=utf-8";
  if (!strcmp(dot, ".css")) return "text/css; charset=utf-8";
  if (!strcmp(dot, ".json")) return "application/json";
  if (!strcmp(dot, ".svg")) return "image/svg+xml";
  if (!strcmp(dot, ".png")) return "image/png";
  if (!strcmp(dot, ".ico")) return "image/x-icon";
  return "application/octet-stream";
}

/* Writes status line, headers and body; returns -1 to close, 0 to keep alive.
 * With `no_reuse` the transaction is not completed: the client was told
 * "Connection: close" and unread request bytes must never be parsed as a next
 * request (closing at once could turn into a TCP RST that loses the reply). */
static int send_response(struct lws *wsi, const hd_http_resp_t *r, int no_reuse) {
  size_t cap = LWS_PRE + 4096 + r->body_len;
  unsigned char *buf = malloc(cap);
  if (!buf) return -1;
  unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + cap - 1;
  int rc = -1;
  if (lws_add_http_header_status(wsi, (unsigned)r->status, &p, end)) goto out;
  const char *ct = r->content_type[0] ? r->content_type : "text/plain; charset=utf-8";
  if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, (const unsigned char *)ct,
                                   (int)strlen(ct), &p, end))
    goto out;
  for (int i = 0; i < r->n_headers; i++) {
    char name[64];
    snprintf(name, sizeof name, "%s:", r->header_names[i]);
    if (lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                    (const unsigned char *)r->header_values[i],
                                    (int)strlen(r->header_values[i]), &p, end))
      goto out;
  }
  if (lws_add_http_header_content_length(wsi, r->body_len, &p, end)) goto out;
  if (lws_finalize_http_header(wsi, &p, end)) goto out;
  if (r->body_len) {
    memcpy(p, r->body, r->body_len);
    p += r->body_len;
  }
  if (lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_FINAL) != (int)(p - start)) goto out;
  rc = no_reuse ? 0 : lws_http_transaction_completed(wsi) ? -1 : 0;
out:
  free(buf);
  return rc;
}

int hd_http__send_response(struct lws *wsi, const hd_http_resp_t *r, int no_reuse) {
  return send_response(wsi, r, no_reuse);
}

static int serve_static(hd_http_server_t *s, struct lws *wsi, const char *path) {
  if (!s->web_root[0] || strstr(path, "..") || path[0] != '/') return 1;
  char file[1024];
  const char *rel = path;
  if (!strcmp(path, "/")) rel = "/index.html";
  snprintf(file, sizeof file, "%s%s", s->web_root, rel);
  struct stat st;
  if (stat(file, &st) != 0 || !S_ISREG(st.st_mode)) return 1;
  static const char extra[] = "cache-control: no-cache\r\n";
  int n = lws_serve_http_file(wsi, file, mime_for(file), extra, (int)strlen(extra));
  if (n < 0 || (n > 0 && lws_http_transaction_completed(wsi))) return -1;
  return 0;
}

static int dispatch(hd_http_server_t *s, struct lws *wsi, conn_t *c) {
  hd_http_req_t req = {.method = c->method,
                       .path = c->path,
                       .query = c->query,
                       .authorization = c->authorization,
                       .origin = c->origin,
                       .content_type = c->content_type,
                       .if_match = c->if_match,
                       .body = c->body ? c->body : "",
                       .body_len = c->body_len};
  /* Completing the transaction lets lws free the per-connection user data (c),
   * so everything needed from c is taken out before any response is sent. */
  char *body = c->body;
  int no_reuse = c->chunked;
  c->body = NULL;
  c->body_len = 0;
  hd_http_resp_t resp;
  memset(&resp, 0, sizeof resp);
  if (c->chunked) {
    /* libwebsockets 4.x hands a chunked request body over undecoded and never
     * completes it, so we ask for a Content-Length instead (RFC 9110 §15.5.12). */
    hd_http_resp_text(&resp, 411, "chunked request bodies are not supported; send a Content-Length\n");
    hd_http_resp_header(&resp, "Connection", "close");
  } else if (c->too_large) {
    hd_http_resp_text(&resp, 413, "request body exceeds %zu bytes\n", s->cfg.body_cap);
  } else {
    s->cfg.handler(s->cfg.ud, &req, &resp);
  }
  int rc;
  if (resp.status == 0) {
    rc = (!strcmp(c->method, "GET") || !strcmp(c->method, "HEAD")) ? serve_static(s, wsi, c->path) : 1;
    if (rc == 1) {
      hd_http_resp_text(&resp, 404, "not found: %s\n", c->path);
      rc = send_response(wsi, &resp, 0);
    }
  } else {
    rc = send_response(wsi, &resp, no_reuse);
  }
  free(resp.body);
  free(body); /* req.body pointed here */
  return rc;
}

static int http_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
  conn_t *c = user;
  struct lws_context *ctx = lws_get_context(wsi);
  hd_http_server_t *s = ctx ? lws_context_user(ctx) : NULL;
  switch (reason) {
  case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: return s ? hd_ws__confirm_upgrade(s->ws, wsi, in) : -1;
  /* A client that names "http" in Sec-WebSocket-Protocol binds this protocol
   * for its WebSocket: hand those reasons to ws.c all the same. */
  case LWS_CALLBACK_ESTABLISHED:
  case LWS_CALLBACK_RECEIVE:
  case LWS_CALLBACK_RECEIVE_PONG:
  case LWS_CALLBACK_SERVER_WRITEABLE:
  case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
  case LWS_CALLBACK_CLOSED:
  case LWS_CALLBACK_WSI_DESTROY: return hd_ws__lws_cb(wsi, reason, NULL, in, len);
  case LWS_CALLBACK_HTTP: {
    memset(c, 0, sizeof *c);
    static const struct {
      enum lws_token_indexes t;
      const char *m;
    } methods[] = {{WSI_TOKEN_GET_URI, "GET"},         {WSI_TOKEN_POST_URI, "POST"},
                   {WSI_TOKEN_OPTIONS_URI, "OPTIONS"}, {WSI_TOKEN_DELETE_URI, "DELETE"},
                   {WSI_TOKEN_PATCH_URI, "PATCH"},     {WSI_TOKEN_PUT_URI, "PUT"},
                   {WSI_TOKEN_HEAD_URI, "HEAD"}};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
      if (lws_hdr_total_length(wsi, methods[i].t) > 0) {
        snprintf(c->method, sizeof c->method, "%s", methods[i].m);
        copy_hdr(wsi, methods[i].t, c->path, sizeof c->path);
        break;
      }
    }
    if (!c->method[0]) return -1;
    if (!c->path[0]) snprintf(c->path, sizeof c->path, "%s", (const char *)in);
    char *q = strchr(c->path, '?');
    if (q) *q = 0;
    /* lws splits the query into URI_ARGS fragments; rebuild a raw query */
    int frag = 0;
    size_t qo = 0;
    char arg[256];
    while (lws_hdr_copy_fragment(wsi, arg, sizeof arg, WSI_TOKEN_HTTP_URI_ARGS, frag) > 0) {
      int n = snprintf(c->query + qo, sizeof c->query - qo, "%s%s", frag ? "&" : "", arg);
      if (n < 0 || (size_t)n >= sizeof c->query - qo) break;
      qo += (size_t)n;
      frag++;
    }
    copy_hdr(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, c->authorization, sizeof c->authorization);
    copy_hdr(wsi, WSI_TOKEN_ORIGIN, c->origin, sizeof c->origin);
    copy_hdr(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, c->content_type, sizeof c->content_type);
    copy_hdr(wsi, WSI_TOKEN_HTTP_IF_MATCH, c->if_match, sizeof c->if_match);
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION) >= (int)sizeof c->authorization)
      snprintf(c->authorization, sizeof c->authorization, "oversized");
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
      c->chunked = 1;
      return dispatch(s, wsi, c) ? -1 : 0;
    }
    char cl[32] = "";
    copy_hdr(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, cl, sizeof cl);
    long long clen = cl[0] ? atoll(cl) : 0;
    if (clen > 0) {
      if ((size_t)clen > s->cfg.body_cap) {
        c->too_large = 1;
        return dispatch(s, wsi, c) ? -1 : 0;
      }
      return 0; /* body follows: LWS_CALLBACK_HTTP_BODY */
    }
    /* no body (no Content-Length, or 0): lws sends no BODY_COMPLETION then */
    return dispatch(s, wsi, c) ? -1 : 0;
  }
  case LWS_CALLBACK_HTTP_BODY: {
    if (c->too_large || c->chunked) return 0;
    if (c->body_len + len > s->cfg.body_cap) {
      c->too_large = 1;
      free(c->body);
      c->body = NULL;
      c->body_len = 0;
      return 0;
    }
    char *nb = realloc(c->body, c->body_len + len + 1);
    if (!nb) return -1;
    c->body = nb;
    memcpy(c->body + c->body_len, in, len);
    c->body_len += len;
    c->body[c->body_len] = 0;
    return 0;
  }
  case LWS_CALLBACK_HTTP_BODY_COMPLETION:
    if (c->chunked) return 0; /* already answered 411 */
    return dispatch(s, wsi, c) ? -1 : 0;
  case LWS_CALLBACK_HTTP_FILE_COMPLETION: return lws_http_transaction_completed(wsi) ? -1 : 0;
  case LWS_CALLBACK_CLOSED_HTTP:
    if (c) {
      free(c->body);
      c->body = NULL;
    }
    return 0;
  default: break;
  }
  return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
    {"http", http_cb, sizeof(conn_t), 0, 0, NULL, 0},
    /* rx_buffer_size: lws allocates this much (+ LWS_PRE) per WebSocket
     * connection for its whole life; larger frames arrive in pieces that
     * io/ws.c reassembles. 1 KiB instead of the 4 KiB default: memory per
     * idle connection (RTM goal: <= 10 KB). */
    {HD_WS_LWS_PROTOCOL, hd_ws__lws_cb, 0, HD_WS_LWS_RX_BUFFER, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Makes HD_WS_LWS_PROTOCOL the protocol that WebSocket upgrades without a
 * Sec-WebSocket-Protocol header (what browsers send) are bound to. */
static const struct lws_protocol_vhost_options pvo_ws_default = {NULL, NULL, "default", "1"};
static const struct lws_protocol_vhost_options pvo_ws = {NULL, &pvo_ws_default, HD_WS_LWS_PROTOCOL, ""};

static void lws_log_bridge(int level, const char *line) {
  size_t n = strlen(line);
  while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
    n--;
  HD_LOGD("lws", "%.*s", (int)n, line);
}

int hd_http_server_start(hd_http_server_t **out, uv_loop_t *loop, const hd_http_config_t *cfg) {
  hd_http_server_t *s = calloc(1, sizeof *s);
  if (!s) return HD_ENOMEM;
  s->cfg = *cfg;
  if (cfg->web_root) snprintf(s->web_root, sizeof s->web_root, "%s", cfg->web_root);
  snprintf(s->host, sizeof s->host, "%s", cfg->host ? cfg->host : "127.0.0.1");
  if (hd_ws__hub_new(&s->ws, loop) < 0) {
    free(s);
    return HD_ENOMEM;
  }
  lws_set_log_level(hd_log_level() >= HD_LOG_DEBUG ? (LLL_ERR | LLL_WARN | LLL_NOTICE) : LLL_ERR,
                    lws_log_bridge);

  struct lws_context_creation_info info;
  memset(&info, 0, sizeof info);
  info.port = cfg->port;
  info.iface = s->host;
  info.protocols = protocols;
  info.pvo = &pvo_ws;
  info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_DISABLE_IPV6;
  s->loops[0] = loop;
  info.foreign_loops = s->loops;
  info.user = s;
  info.timeout_secs = 30;
  info.max_http_header_data = 8192;
  info.vhost_name = "hudong";
  s->ctx = lws_create_context(&info);
  if (!s->ctx) {
    HD_LOGE("http", "cannot listen on %s:%d (port in use, or libwebsockets libuv support missing)", s->host,
            cfg->port);
    hd_ws__hub_shutdown(s->ws);
    hd_ws__hub_free(s->ws);
    free(s);
    return HD_EIO;
  }
  *out = s;
  return 0;
}

static void settle_fired(uv_timer_t *t) { *(int *)t->data = 1; }
static void settle_closed(uv_handle_t *h) { free(h); }

/* Turns the loop for ms milliseconds. libuv finishes a handle close one loop
 * turn after uv_close; lws reports a connection closed (LWS_CALLBACK_CLOSED)
 * before its uv_poll handle has finished closing, and starting the context
 * destroy in that window made uv__io_poll abort on an epoll_ctl for a closed
 * fd (about one shutdown in 100 under load). */
static void settle(uv_loop_t *loop, uint64_t ms) {
  uv_timer_t *t = malloc(sizeof *t);
  int done = 0;
  if (!t || uv_timer_init(loop, t) != 0) {
    free(t);
    return;
  }
  t->data = &done;
  uv_timer_start(t, settle_fired, ms, 0);
  while (!done && uv_run(loop, UV_RUN_ONCE)) {
  }
  uv_close((uv_handle_t *)t, settle_closed);
  uv_run(loop, UV_RUN_NOWAIT);
}

void hd_http_server_stop(hd_http_server_t *s) {
  if (!s) return;
  /* WebSocket connections first get a close frame (1001) and a moment for the
   * close handshake; whatever is left is cut by the destroy below and reported
   * to its endpoint from LWS_CALLBACK_WSI_DESTROY. */
  hd_ws__hub_shutdown(s->ws);
  settle(s->loops[0], 20);
  /* On a foreign libuv loop the first destroy only starts closing lws's uv
   * handles; the closes complete as the loop turns, and a second destroy then
   * frees the context (one call leaks every connection and the vhost). */
  lws_context_destroy(s->ctx);
  for (int i = 0; i < 16 && uv_run(s->loops[0], UV_RUN_NOWAIT); i++) {
  }
  lws_context_destroy(s->ctx);
  hd_ws__hub_free(s->ws);
  free(s);
}
