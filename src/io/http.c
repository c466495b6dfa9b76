/* libwebsockets HTTP server on a foreign libuv loop. One lws protocol handles all
 * HTTP: it gathers method, path, a few headers and a capped body, calls the
 * handler, and writes the response. Static files are served with
 * lws_serve_http_file after path sanitising. WebSocket upgrades are routed to
 * io/ws.c (second protocol, the vhost's default for upgrades) from
 * LWS_CALLBACK_HTTP_CONFIRM_UPGRADE.
 *
 * The accept gate (issue 12 items 2 and 9): lws does not listen itself (its
 * accept loop spins at 100% CPU on EMFILE and has no per-IP limit). We accept,
 * count every connection against a global and a per-IP cap (refused with 503
 * and closed), keep one descriptor in reserve so that EMFILE still lets us
 * accept-and-close instead of spinning, read the first request head within a
 * deadline and check it (io/http_head.h), then adopt the socket into lws with
 * the bytes already read. TLS connections are adopted at once (lws does the
 * handshake under its own timeout). A connection stops counting when lws
 * destroys its wsi (hd_http__wsi_gone, from io/ws.c's WSI_DESTROY). */
#include "io/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <libwebsockets.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "base/err.h"
#include "base/log.h"
#include "base/map.h"
#include "io/http_head.h"
#include "io/ws_priv.h"

typedef struct gate_conn gate_conn_t;

/* The vhost's retry and idle policy: no lws "validity" timer. By default lws
 * 4.1 gives every connection a 300 s validity timer and re-inserts it into
 * its sorted timer list (lws_dll2_add_sorted, a walk over every other
 * connection's timer) on every received WebSocket message, so a node with N
 * connections spent O(N) per message: ~7-15% of the node's CPU in the RTM
 * benchmark at 2,000-4,000 connections (issue 17). io/ws.c does its own idle
 * timeout and pings with one sweep timer, and io/http.c its own head/body
 * deadlines, so the lws timer only duplicated them. */
static const lws_retry_bo_t no_validity = {.secs_since_valid_ping = 0, .secs_since_valid_hangup = 0};

/* Who a counted connection belongs to (value in the wsi map). */
typedef struct {
  uint8_t ip[16];
  uint8_t iplen;
} conn_tag_t;

struct hd_http_server {
  struct lws_context *ctx;
  struct lws_vhost *vh;
  hd_http_config_t cfg;
  char web_root[512];
  char host[64];
  void *loops[1];
  uv_loop_t *loop;
  hd_ws_hub_t *ws;
  int tls;
  /* accept gate */
  int lfd, reserve_fd;
  uv_poll_t *lpoll;
  uv_timer_t *sweep;
  int listen_paused;
  uint64_t paused_until;
  gate_conn_t *pending;
  hd_map_t per_ip; /* ip bytes -> count (as a pointer-sized integer) */
  hd_map_t wsis;   /* struct lws * -> conn_tag_t * */
  conn_tag_t *adopting;
  hd_http_gate_stats_t st;
  uint64_t closes_since_trim, last_trim, last_fd_warn;
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
  int chunked;      /* Transfer-Encoding request: refused with 411, rest discarded */
  int bad_length;   /* invalid Content-Length: refused with 400, rest never parsed */
  uint64_t body_t0; /* when the head of a request with a body came in (loop ms) */
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
  int no_reuse = c->chunked || c->bad_length;
  c->body = NULL;
  c->body_len = 0;
  hd_http_resp_t resp;
  memset(&resp, 0, sizeof resp);
  if (c->bad_length) {
    /* RFC 9112 §6.3 item 5: unrecoverable; lws took atoll() of the value, so the
     * connection must never be reused (request smuggling). */
    hd_http_resp_text(&resp, 400, "invalid Content-Length: send exactly one decimal number of bytes\n");
    hd_http_resp_header(&resp, "Connection", "close");
  } else if (c->chunked) {
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
    int cl_len = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    copy_hdr(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, cl, sizeof cl);
    /* The gate checked the first request's head; later requests on a kept-alive
     * connection only pass lws's parser, which joins a repeated header with ','
     * and takes atoll() of "5x" or "+5": 1*DIGIT or 400 + close. */
    int cl_ok = cl_len == 0 || (cl_len < 16 && (size_t)cl_len == strlen(cl));
    for (const char *d = cl; cl_ok && *d; d++)
      if (*d < '0' || *d > '9') cl_ok = 0;
    if (!cl_ok) {
      /* Answer, then close at once: keeping the connection in "no reuse" mode
       * with the rest of the data buffered makes lws 4.1 spin in its rxflow
       * service. lws has already read what the client sent, so the close sends
       * no RST over the answer. */
      c->bad_length = 1;
      dispatch(s, wsi, c);
      return -1;
    }
    long long clen = cl[0] ? atoll(cl) : 0;
    if (clen > 0) {
      if ((size_t)clen > s->cfg.body_cap) {
        c->too_large = 1;
        return dispatch(s, wsi, c) ? -1 : 0;
      }
      /* The whole body within body_timeout_ms (lws's own timeout restarts on
       * every read, so a trickle could hold the connection forever). */
      c->body_t0 = uv_now(s->loop);
      lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT, (s->cfg.body_timeout_ms + 999) / 1000);
      return 0; /* body follows: LWS_CALLBACK_HTTP_BODY */
    }
    /* no body (no Content-Length, or 0): lws sends no BODY_COMPLETION then */
    return dispatch(s, wsi, c) ? -1 : 0;
  }
  case LWS_CALLBACK_HTTP_BODY: {
    if (c->too_large || c->chunked || c->bad_length) return 0;
    if (c->body_t0 && uv_now(s->loop) - c->body_t0 > (uint64_t)s->cfg.body_timeout_ms) {
      hd_http_resp_t resp;
      memset(&resp, 0, sizeof resp);
      hd_http_resp_text(&resp, 408, "request body not received within %d ms; send it at once\n",
                        s->cfg.body_timeout_ms);
      hd_http_resp_header(&resp, "Connection", "close");
      send_response(wsi, &resp, 1);
      free(resp.body);
      return -1;
    }
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
    if (c->chunked || c->bad_length) return 0; /* already answered 411 / 400 */
    return dispatch(s, wsi, c) ? -1 : 0;
  case LWS_CALLBACK_HTTP_FILE_COMPLETION: return lws_http_transaction_completed(wsi) ? -1 : 0;
  case LWS_CALLBACK_RAW_ADOPT: {
    /* lws turns a CONNECT (after a first request on a kept-alive connection; the
     * gate refuses it on the first) into a raw socket with no timeout at all:
     * refuse and close. */
    static const char msg[] = "HTTP/1.1 405 Method Not Allowed\r\nConnection: close\r\n"
                              "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 53\r\n\r\n"
                              "method CONNECT is not supported: this is not a proxy\n";
    unsigned char buf[LWS_PRE + sizeof msg];
    memcpy(buf + LWS_PRE, msg, sizeof msg - 1);
    lws_write(wsi, buf + LWS_PRE, sizeof msg - 1, LWS_WRITE_RAW);
    return -1;
  }
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

/* ------------------------------------------------------------ accept gate */

struct gate_conn {
  uv_poll_t poll; /* first: the handle's memory is the connection's */
  hd_http_server_t *s;
  int fd;
  conn_tag_t tag;
  uint64_t deadline;
  size_t len;
  gate_conn_t *prev, *next;
  char buf[HD_HTTP_HEAD_MAX + 1];
};

static void ip_key(const struct sockaddr_storage *ss, conn_tag_t *t) {
  memset(t, 0, sizeof *t);
  if (ss->ss_family == AF_INET) {
    memcpy(t->ip, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    t->iplen = 4;
  } else if (ss->ss_family == AF_INET6) {
    const uint8_t *a = ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (!memcmp(a, v4mapped, 12)) {
      memcpy(t->ip, a + 12, 4);
      t->iplen = 4;
    } else {
      memcpy(t->ip, a, 16);
      t->iplen = 16;
    }
  } else {
    t->iplen = 1; /* AF_UNIX etc.: one bucket */
  }
}

static size_t ip_count(hd_http_server_t *s, const conn_tag_t *t) {
  return (size_t)(uintptr_t)hd_map_get(&s->per_ip, t->ip, t->iplen);
}

/* Counts a new connection; 0 when over a cap (nothing counted). */
static int count_in(hd_http_server_t *s, const conn_tag_t *t) {
  if (s->st.open >= s->st.max_conns) {
    s->st.refused_cap++;
    return 0;
  }
  size_t n = ip_count(s, t);
  if (n >= s->st.max_conns_per_ip) {
    s->st.refused_ip++;
    return 0;
  }
  if (hd_map_put(&s->per_ip, t->ip, t->iplen, (void *)(uintptr_t)(n + 1)) < 0) {
    s->st.refused_cap++;
    return 0;
  }
  s->st.open++;
  return 1;
}

static void count_out(hd_http_server_t *s, const conn_tag_t *t) {
  size_t n = ip_count(s, t);
  if (n <= 1)
    hd_map_del(&s->per_ip, t->ip, t->iplen);
  else
    hd_map_put(&s->per_ip, t->ip, t->iplen, (void *)(uintptr_t)(n - 1));
  if (s->st.open) s->st.open--;
  s->closes_since_trim++;
}

void hd_http__wsi_gone(struct lws *wsi) {
  struct lws_context *ctx = wsi ? lws_get_context(wsi) : NULL;
  hd_http_server_t *s = ctx ? lws_context_user(ctx) : NULL;
  if (!s) return;
  conn_tag_t *t = hd_map_get(&s->wsis, &wsi, sizeof wsi);
  if (t) {
    hd_map_del(&s->wsis, &wsi, sizeof wsi);
  } else if (s->adopting) { /* destroyed inside lws_adopt_*: not in the map yet */
    t = s->adopting;
    s->adopting = NULL;
  } else {
    return;
  }
  count_out(s, t);
  free(t);
}

/* Answers a connection we will not keep and closes it. What the client already
 * sent is read first: closing with unread bytes would send a TCP RST, which can
 * destroy the answer before the client reads it. */
static void refuse_fd(int fd, int status, const char *phrase, const char *body) {
  char junk[4096];
  for (int i = 0; i < 16 && recv(fd, junk, sizeof junk, MSG_DONTWAIT) > 0; i++) {
  }
  char msg[768];
  int n = snprintf(msg, sizeof msg,
                   "HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n"
                   "%sContent-Length: %zu\r\n\r\n%s",
                   status, phrase, status == 503 ? "Retry-After: 5\r\n" : "", strlen(body), body);
  if (n > 0) {
    ssize_t w =
        send(fd, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)w;
  }
  shutdown(fd, SHUT_WR);
  close(fd);
}

static const char *phrase_of(int status) {
  switch (status) {
  case 400: return "Bad Request";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 431: return "Request Header Fields Too Large";
  case 501: return "Not Implemented";
  case 503: return "Service Unavailable";
  case 505: return "HTTP Version Not Supported";
  default: return "Error";
  }
}

static void gate_conn_freed(uv_handle_t *h) { free(h); }

/* Unlinks a pending connection; keep_fd: the fd now belongs to lws. */
static void gate_conn_drop(gate_conn_t *g, int keep_fd, int counted_out) {
  hd_http_server_t *s = g->s;
  if (g->prev)
    g->prev->next = g->next;
  else
    s->pending = g->next;
  if (g->next) g->next->prev = g->prev;
  uv_poll_stop(&g->poll);
  if (!keep_fd) close(g->fd);
  if (!counted_out) count_out(s, &g->tag);
  uv_close((uv_handle_t *)&g->poll, gate_conn_freed);
}

/* Answers a pending connection and drops it (the poll stops before the close:
 * libuv must not watch a closed descriptor). */
static void gate_refuse(gate_conn_t *g, int status, const char *body) {
  uv_poll_stop(&g->poll);
  refuse_fd(g->fd, status, phrase_of(status), body);
  gate_conn_drop(g, 1, 0);
}

/* Hands an accepted socket to lws with the bytes already read (plaintext) or
 * none (TLS). The connection stays counted until its wsi is destroyed. */
static void adopt(hd_http_server_t *s, int fd, const conn_tag_t *tag, const char *buf, size_t len) {
  conn_tag_t *t = malloc(sizeof *t);
  if (!t) {
    refuse_fd(fd, 503, "Service Unavailable", "out of memory; try again later\n");
    count_out(s, tag);
    return;
  }
  *t = *tag;
  s->adopting = t;
  struct lws *wsi;
  if (len) {
    wsi = lws_adopt_socket_vhost_readbuf(s->vh, fd, buf, len);
  } else {
    lws_sock_file_fd_type sfd;
    sfd.sockfd = fd;
    wsi = lws_adopt_descriptor_vhost(
        s->vh, LWS_ADOPT_SOCKET | LWS_ADOPT_HTTP | (s->tls ? LWS_ADOPT_ALLOW_SSL : 0), sfd, NULL, NULL);
  }
  if (!s->adopting) return; /* already destroyed (and uncounted) inside the call */
  s->adopting = NULL;
  if (!wsi || hd_map_put(&s->wsis, &wsi, sizeof wsi, t) < 0) {
    /* lws closed the fd (NULL); a full map cannot happen (sized to the cap) */
    count_out(s, t);
    free(t);
    return;
  }
  s->st.accepted++;
}

static void gate_readable(uv_poll_t *h, int status, int events) {
  gate_conn_t *g = (gate_conn_t *)h;
  hd_http_server_t *s = g->s;
  if (status < 0) {
    gate_conn_drop(g, 0, 0);
    return;
  }
  /* Look without taking: lws reads the request from the socket itself (lws 4.1
   * replays bytes handed over in an adoption read buffer as the request body). */
  ssize_t r = recv(g->fd, g->buf, HD_HTTP_HEAD_MAX, MSG_PEEK);
  if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
    gate_conn_drop(g, 0, 0);
    return;
  }
  if (r < 0) return;
  if (s->tls) {
    /* TLS: lws does the handshake (under its own timeout) and parses requests
     * after it. A plain-HTTP client on the TLS port gets told, in plain text. */
    int fd = g->fd;
    conn_tag_t tag = g->tag;
    if ((uint8_t)g->buf[0] != 0x16) { /* not a TLS handshake record (RFC 8446 §5.1) */
      s->st.bad_request++;
      char body[200];
      snprintf(body, sizeof body, "this port serves HTTPS and WSS only: use https://%s:%d/ (or wss://)\n",
               s->host, s->cfg.port);
      gate_refuse(g, 400, body);
      return;
    }
    gate_conn_drop(g, 1, 1);
    adopt(s, fd, &tag, NULL, 0);
    return;
  }
  g->len = (size_t)r;
  size_t head = hd_http_head_length(g->buf, g->len);
  if (!head) {
    if (events & UV_DISCONNECT) {
      /* the client half-closed without finishing its head: nothing more can
       * come, and the socket would stay readable (a FIN) forever */
      gate_conn_drop(g, 0, 0);
      return;
    }
    if (g->len == HD_HTTP_HEAD_MAX) {
      s->st.bad_request++;
      gate_refuse(g, 431, "request head larger than 8192 bytes\n");
      return;
    }
    /* Nothing was consumed, so the socket stays readable: wake up again only
     * when more than we have seen arrives (Linux TCP poll honours SO_RCVLOWAT;
     * a FIN still wakes us). */
    int low = (int)g->len + 1;
    setsockopt(g->fd, SOL_SOCKET, SO_RCVLOWAT, &low, sizeof low);
    return;
  }
  int one = 1;
  setsockopt(g->fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one);
  size_t orig_head = head, total = g->len;
  char why[256];
  hd_http_head_info_t info;
  int st = hd_http_head_check(g->buf, &head, &total, why, sizeof why, &info);
  if (!st && info.dropped && (info.has_body || info.upgrade)) {
    /* the head can only be rewritten when nothing follows it (see above) */
    st = 400;
    snprintf(why, sizeof why,
             "header name '%s' is not accepted here (a prefix of a standard name: the parser cannot "
             "tell them apart); rename or drop it\n",
             info.first_dropped);
  }
  if (st) {
    s->st.bad_request++;
    gate_refuse(g, st, why);
    return;
  }
  int fd = g->fd;
  conn_tag_t tag = g->tag;
  char *copy = NULL;
  size_t len = 0;
  if (info.dropped) {
    /* Take the original head out of the socket; lws gets the rewritten one. */
    char junk[HD_HTTP_HEAD_MAX];
    copy = malloc(head);
    if (!copy || recv(fd, junk, orig_head, 0) != (ssize_t)orig_head) {
      free(copy);
      s->st.bad_request++;
      gate_refuse(g, 400, "request head could not be read; send it again\n");
      return;
    }
    memcpy(copy, g->buf, head);
    len = head;
  }
  /* Stop watching before lws starts its own uv_poll on the same fd. */
  gate_conn_drop(g, 1, 1); /* still counted: adopt() takes it over */
  adopt(s, fd, &tag, copy, len);
  free(copy);
}

static void listen_cb(uv_poll_t *h, int status, int events);

static void listen_pause(hd_http_server_t *s, uint64_t ms) {
  if (s->listen_paused) return;
  uv_poll_stop(s->lpoll);
  s->listen_paused = 1;
  s->paused_until = uv_now(s->loop) + ms;
}

static void accept_one(hd_http_server_t *s, int fd, const struct sockaddr_storage *ss) {
  conn_tag_t tag;
  ip_key(ss, &tag);
  if (!count_in(s, &tag)) {
    int per_ip = s->st.open < s->st.max_conns;
    char body[192];
    snprintf(body, sizeof body, "%s; try again later\n",
             per_ip ? "too many connections from your address" : "the node is at its connection limit");
    refuse_fd(fd, 503, phrase_of(503), body);
    return;
  }
  gate_conn_t *g = malloc(sizeof *g);
  if (!g || uv_poll_init(s->loop, &g->poll, fd) != 0) {
    free(g);
    refuse_fd(fd, 503, phrase_of(503), "out of memory; try again later\n");
    count_out(s, &tag);
    return;
  }
  g->s = s;
  g->fd = fd;
  g->tag = tag;
  g->len = 0;
  g->deadline = uv_now(s->loop) + (uint64_t)s->cfg.header_timeout_ms;
  g->prev = NULL;
  g->next = s->pending;
  if (s->pending) s->pending->prev = g;
  s->pending = g;
  uv_poll_start(&g->poll, UV_READABLE | UV_DISCONNECT, gate_readable);
}

static void listen_cb(uv_poll_t *h, int status, int events) {
  hd_http_server_t *s = h->data;
  (void)status, (void)events;
  for (int i = 0; i < 64; i++) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = accept4(s->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      accept_one(s, fd, &ss);
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno == EMFILE || errno == ENFILE) {
      /* Out of descriptors: the listening socket stays readable, and retrying
       * at once is the 100% CPU spin. Spend the reserve descriptor to accept and
       * refuse the clients waiting in the backlog, one at a time, then stop
       * accepting for 100 ms. */
      int err = errno;
      if (s->reserve_fd >= 0) {
        close(s->reserve_fd);
        s->reserve_fd = -1;
        for (int k = 0; k < 64; k++) {
          int c = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break;
          s->st.refused_fd++;
          refuse_fd(c, 503, phrase_of(503), "the node is out of file descriptors; try again later\n");
        }
        s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
      }
      uint64_t now = uv_now(s->loop);
      if (!s->last_fd_warn || now - s->last_fd_warn >= 10000) {
        s->last_fd_warn = now;
        HD_LOGW("http", "accept: out of file descriptors (%s); %zu connections open; refusing with 503",
                strerror(err), s->st.open);
      }
      listen_pause(s, 100);
    }
    return; /* EAGAIN or another error */
  }
}

/* Every 250 ms: head deadlines, resuming a paused listener, returning freed
 * memory to the kernel after a burst of closes. */
static void sweep_cb(uv_timer_t *t) {
  hd_http_server_t *s = t->data;
  uint64_t now = uv_now(s->loop);
  for (gate_conn_t *g = s->pending, *next; g; g = next) {
    next = g->next;
    if (now < g->deadline) continue;
    s->st.timed_out++;
    if (s->tls) { /* nothing readable to say before a TLS handshake */
      gate_conn_drop(g, 0, 0);
      continue;
    }
    char body[160];
    snprintf(body, sizeof body, "request head not received within %d ms\n", s->cfg.header_timeout_ms);
    gate_refuse(g, 408, body);
  }
  if (s->listen_paused && now >= s->paused_until) {
    s->listen_paused = 0;
    uv_poll_start(s->lpoll, UV_READABLE, listen_cb);
  }
  /* glibc keeps freed per-connection buffers (request bodies, lws header
   * tables) in its heap: after 500 unfinished uploads closed, RSS stayed 4x
   * higher. Trim once a burst of connections is gone (issue 12 item 9). */
  if (s->closes_since_trim >= 32 && now - s->last_trim >= 2000) {
    s->closes_since_trim = 0;
    s->last_trim = now;
    malloc_trim(0);
  }
}

/* Raises the soft RLIMIT_NOFILE to the hard limit (logged) and returns the
 * descriptor limit now in force. */
static size_t raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  if (rl.rlim_cur < rl.rlim_max) {
    rlim_t old = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
      HD_LOGI("http", "raised the open-file limit (RLIMIT_NOFILE) from %llu to %llu", (unsigned long long)old,
              (unsigned long long)rl.rlim_cur);
    else
      getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur == RLIM_INFINITY ? (size_t)1 << 20 : (size_t)rl.rlim_cur;
}

static int open_listener(hd_http_server_t *s) {
  char port[16];
  snprintf(port, sizeof port, "%d", s->cfg.port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
  if (getaddrinfo(s->host, port, &hints, &res) != 0) return HD_EIO;
  int fd = -1;
  for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, 511) != 0) {
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(res);
  if (fd < 0) return HD_EIO;
  s->lfd = fd;
  return 0;
}

void hd_http_gate_stats(const hd_http_server_t *s, hd_http_gate_stats_t *out) {
  if (s) *out = s->st;
}

int hd_http_metrics_text(const hd_http_server_t *s, char *buf, size_t cap) {
  int n = snprintf(buf, cap,
                   "# HELP hudong_http_connections Open HTTP/WebSocket connections (counted against "
                   "max_connections).\n# TYPE hudong_http_connections gauge\nhudong_http_connections %zu\n"
                   "# HELP hudong_http_connections_refused_total Connections refused, by reason.\n"
                   "# TYPE hudong_http_connections_refused_total counter\n"
                   "hudong_http_connections_refused_total{reason=\"max_connections\"} %llu\n"
                   "hudong_http_connections_refused_total{reason=\"max_connections_per_ip\"} %llu\n"
                   "hudong_http_connections_refused_total{reason=\"out_of_descriptors\"} %llu\n"
                   "hudong_http_connections_refused_total{reason=\"bad_request\"} %llu\n"
                   "hudong_http_connections_refused_total{reason=\"header_timeout\"} %llu\n",
                   s->st.open, (unsigned long long)s->st.refused_cap, (unsigned long long)s->st.refused_ip,
                   (unsigned long long)s->st.refused_fd, (unsigned long long)s->st.bad_request,
                   (unsigned long long)s->st.timed_out);
  return n < 0 || (size_t)n >= cap ? HD_ENOSPC : n;
}

/* ------------------------------------------------------- self-signed TLS */

static char *bio_string(BIO *b) {
  char *data;
  long n = BIO_get_mem_data(b, &data);
  char *out = n > 0 ? malloc((size_t)n + 1) : NULL;
  if (out) {
    memcpy(out, data, (size_t)n);
    out[n] = 0;
  }
  return out;
}

int hd_http_tls_self_signed(const char *host, char **cert_pem, char **key_pem, char fp[96]) {
  *cert_pem = *key_pem = NULL;
  int rc = HD_ECRYPTO;
  X509_EXTENSION *ext = NULL;
  EVP_PKEY *pkey = EVP_EC_gen("P-256");
  X509 *x = X509_new();
  BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_mem());
  if (!pkey || !x || !cb || !kb) goto out;
  /* subjectAltName: localhost, loopback, the listen host, and every local IPv4
   * address, so that a phone on the LAN can open https://<this machine's IP>/ */
  char san[2048];
  size_t n = (size_t)snprintf(san, sizeof san, "DNS:localhost,IP:127.0.0.1,IP:::1");
  struct in_addr a4;
  struct in6_addr a6;
  if (host && *host && strcmp(host, "0.0.0.0") && strcmp(host, "::") && strcmp(host, "localhost") &&
      strcmp(host, "127.0.0.1") && n < sizeof san)
    n += (size_t)snprintf(
        san + n, sizeof san - n, ",%s:%s",
        inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1 ? "IP" : "DNS", host);
  struct ifaddrs *ifs = NULL;
  if (getifaddrs(&ifs) == 0) {
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
      char ip[INET_ADDRSTRLEN];
      if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
      inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, ip, sizeof ip);
      if (strcmp(ip, "127.0.0.1") && (!host || strcmp(ip, host)) && n + 24 < sizeof san)
        n += (size_t)snprintf(san + n, sizeof san - n, ",IP:%s", ip);
    }
    freeifaddrs(ifs);
  }
  uint64_t serial;
  RAND_bytes((unsigned char *)&serial, sizeof serial);
  X509_NAME *name = X509_get_subject_name(x);
  X509V3_CTX v3;
  if (!X509_set_version(x, 2) || !ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial >> 1) ||
      !X509_gmtime_adj(X509_getm_notBefore(x), -24L * 3600) ||
      !X509_gmtime_adj(X509_getm_notAfter(x), 30L * 24 * 3600) ||
      !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"hudong dev (self-signed)",
                                  -1, -1, 0) ||
      !X509_set_issuer_name(x, name) || !X509_set_pubkey(x, pkey))
    goto out;
  X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
  ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
  if (!ext || !X509_add_ext(x, ext, -1) || !X509_sign(x, pkey, EVP_sha256())) goto out;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (!X509_digest(x, EVP_sha256(), md, &mdlen) || mdlen != 32) goto out;
  for (unsigned i = 0; i < 32; i++)
    snprintf(fp + 3 * i, 4, "%02X%s", md[i], i < 31 ? ":" : "");
  if (!PEM_write_bio_X509(cb, x) || !PEM_write_bio_PrivateKey(kb, pkey, NULL, NULL, 0, NULL, NULL)) goto out;
  *cert_pem = bio_string(cb);
  *key_pem = bio_string(kb);
  rc = *cert_pem && *key_pem ? 0 : HD_ENOMEM;
out:
  if (rc) {
    free(*cert_pem);
    free(*key_pem);
    *cert_pem = *key_pem = NULL;
  }
  X509_EXTENSION_free(ext);
  BIO_free(cb);
  BIO_free(kb);
  X509_free(x);
  EVP_PKEY_free(pkey);
  ERR_clear_error();
  return rc;
}

static void handle_freed(uv_handle_t *h) { free(h); }

static void free_server(hd_http_server_t *s) {
  hd_map_free(&s->per_ip);
  hd_map_free(&s->wsis);
  free(s);
}

int hd_http_server_start(hd_http_server_t **out, uv_loop_t *loop, const hd_http_config_t *cfg) {
  hd_http_server_t *s = calloc(1, sizeof *s);
  if (!s) return HD_ENOMEM;
  s->cfg = *cfg;
  s->loop = loop;
  s->lfd = s->reserve_fd = -1;
  if (!s->cfg.header_timeout_ms) s->cfg.header_timeout_ms = HD_HTTP_DEFAULT_HEADER_TIMEOUT_MS;
  if (!s->cfg.body_timeout_ms) s->cfg.body_timeout_ms = HD_HTTP_DEFAULT_BODY_TIMEOUT_MS;
  size_t nofile = raise_nofile();
  size_t max = cfg->max_conns ? cfg->max_conns : HD_HTTP_DEFAULT_MAX_CONNS;
  /* each connection is one descriptor; keep headroom for everything else */
  size_t fit = nofile > HD_HTTP_FD_HEADROOM + 64 ? nofile - HD_HTTP_FD_HEADROOM : 64;
  if (max > fit) {
    HD_LOGW("http", "max_connections %zu lowered to %zu to fit the open-file limit %zu", max, fit, nofile);
    max = fit;
  }
  s->st.max_conns = max;
  s->st.max_conns_per_ip = cfg->max_conns_per_ip ? cfg->max_conns_per_ip : HD_HTTP_DEFAULT_MAX_CONNS_PER_IP;
  s->tls = (cfg->tls_cert_file && cfg->tls_key_file) || (cfg->tls_cert_pem && cfg->tls_key_pem);
  if (hd_map_init(&s->per_ip, max + 16) < 0 || hd_map_init(&s->wsis, max + 16) < 0) {
    free_server(s);
    return HD_ENOMEM;
  }
  if (cfg->web_root) snprintf(s->web_root, sizeof s->web_root, "%s", cfg->web_root);
  snprintf(s->host, sizeof s->host, "%s", cfg->host ? cfg->host : "127.0.0.1");
  if (open_listener(s) < 0) {
    HD_LOGE("http", "cannot listen on %s:%d (address in use or not local)", s->host, cfg->port);
    free_server(s);
    return HD_EIO;
  }
  if (hd_ws__hub_new(&s->ws, loop) < 0) {
    close(s->lfd);
    free_server(s);
    return HD_ENOMEM;
  }
  lws_set_log_level(hd_log_level() >= HD_LOG_DEBUG ? (LLL_ERR | LLL_WARN | LLL_NOTICE) : LLL_ERR,
                    lws_log_bridge);

  struct lws_context_creation_info info;
  memset(&info, 0, sizeof info);
  info.port = CONTEXT_PORT_NO_LISTEN_SERVER; /* the gate accepts (see top) */
  info.protocols = protocols;
  info.pvo = &pvo_ws;
  info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_DISABLE_IPV6;
  s->loops[0] = loop;
  info.foreign_loops = s->loops;
  info.user = s;
  info.timeout_secs = (unsigned)(s->cfg.body_timeout_ms + 999) / 1000;
  info.fd_limit_per_thread = (unsigned)(max + HD_HTTP_FD_HEADROOM);
  if (s->tls) {
    /* TLS 1.2+ with ECDHE and AEAD suites only (Mozilla "intermediate"). */
    info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.ssl_cert_filepath = cfg->tls_cert_file;
    info.ssl_private_key_filepath = cfg->tls_key_file;
    if (cfg->tls_cert_pem) {
      info.server_ssl_cert_mem = cfg->tls_cert_pem;
      info.server_ssl_cert_mem_len = (unsigned)strlen(cfg->tls_cert_pem);
      info.server_ssl_private_key_mem = cfg->tls_key_pem;
      info.server_ssl_private_key_mem_len = (unsigned)strlen(cfg->tls_key_pem);
    }
    info.ssl_cipher_list = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                           "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                           "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
    /* HTTP/1.1 only: our handler and io/ws.c speak h1 (lws would offer h2 by ALPN) */
    info.alpn = "http/1.1";
    info.ssl_options_set = SSL_OP_NO_SSLv2 | SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 |
                           SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE;
  }
  info.max_http_header_data = 8192;
  info.vhost_name = "hudong";
  info.retry_and_idle_policy = &no_validity;
  s->ctx = lws_create_context(&info);
  s->cfg.tls_cert_pem = s->cfg.tls_key_pem = NULL; /* lent for the creation only */
  if (!s->ctx) {
    HD_LOGE("http", "cannot start the HTTP server on %s:%d (%s)", s->host, cfg->port,
            s->tls ? "TLS certificate or key not usable" : "libwebsockets libuv support missing");
    hd_ws__hub_shutdown(s->ws);
    hd_ws__hub_free(s->ws);
    close(s->lfd);
    free_server(s);
    return HD_EIO;
  }
  s->vh = lws_get_vhost_by_name(s->ctx, "hudong");
  s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  s->lpoll = malloc(sizeof *s->lpoll);
  s->sweep = malloc(sizeof *s->sweep);
  if (!s->vh || !s->lpoll || !s->sweep || uv_poll_init(loop, s->lpoll, s->lfd) != 0) {
    free(s->lpoll);
    free(s->sweep);
    s->lpoll = NULL;
    s->sweep = NULL;
    hd_http_server_stop(s);
    return HD_EIO;
  }
  s->lpoll->data = s;
  uv_poll_start(s->lpoll, UV_READABLE, listen_cb);
  uv_timer_init(loop, s->sweep);
  s->sweep->data = s;
  uv_timer_start(s->sweep, sweep_cb, 250, 250);
  HD_LOGI("http",
          "accepting on %s:%d%s: at most %zu connections, %zu per IP, head within %d ms, body within %d ms",
          s->host, cfg->port, s->tls ? " (TLS)" : "", s->st.max_conns, s->st.max_conns_per_ip,
          s->cfg.header_timeout_ms, s->cfg.body_timeout_ms);
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
  /* the gate first: no new connections, pending heads dropped */
  if (s->lpoll) {
    uv_poll_stop(s->lpoll);
    uv_close((uv_handle_t *)s->lpoll, handle_freed);
    s->lpoll = NULL;
  }
  if (s->sweep) {
    uv_timer_stop(s->sweep);
    uv_close((uv_handle_t *)s->sweep, handle_freed);
    s->sweep = NULL;
  }
  while (s->pending)
    gate_conn_drop(s->pending, 0, 0);
  if (s->lfd >= 0) close(s->lfd);
  if (s->reserve_fd >= 0) close(s->reserve_fd);
  s->lfd = s->reserve_fd = -1;
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
  free_server(s);
}
