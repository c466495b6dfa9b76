/* Minimal HTTP/1.1 client (see http_client.h): resolve → connect (addresses in
 * order) → write the whole request → read until the end of the response
 * header block (RFC 9112 §2.2, §4, §5) → callback → close. One uv_timer holds
 * the earlier of the connect and overall deadlines. The object frees itself
 * once its handles are closed and any getaddrinfo request has come back. */
#include "io/http_client.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"

struct hd_http_client {
  uv_loop_t *loop;
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_getaddrinfo_t gai;
  uv_connect_t conn;
  uv_write_t wr;
  hd_http_url_t url;
  hd_http_client_cb cb;
  void *ud;
  char *reqbuf;
  size_t reqlen;
  struct addrinfo *ai;                 /* resolved list (owned) */
  struct addrinfo *next;               /* next address to try */
  struct sockaddr_storage lit;         /* literal address */
  uint64_t connect_deadline, deadline; /* loop ms */
  int last_uv_err;
  int deferred_err, deferred_uv_err; /* a failure found inside hd_http_client_request */
  int open_handles;
  int tcp_inited;
  int gai_pending;
  int reconnect; /* tcp is closing to try the next address */
  int connected;
  int done; /* result delivered or cancelled: no more callbacks */
  size_t headlen;
  char head[HD_HTTPC_RESP_HEAD_MAX + 1];
};

/* ---- URL ---- */

int hd_http_url_parse(const char *url, hd_http_url_t *out) {
  if (!url) return HD_EINVAL;
  if (!strncasecmp(url, "https://", 8)) return HD_EUNSUPPORTED;
  if (strncasecmp(url, "http://", 7) != 0) return strstr(url, "://") ? HD_EUNSUPPORTED : HD_EINVAL;
  memset(out, 0, sizeof *out);
  out->port = 80;
  const char *a = url + 7;
  size_t alen = strcspn(a, "/?#");
  const char *rest = a + alen;
  if (alen == 0 || memchr(a, '@', alen)) return HD_EINVAL;
  const char *portp = NULL;
  if (a[0] == '[') {
    const char *rb = memchr(a, ']', alen);
    if (!rb) return HD_EINVAL;
    size_t hl = (size_t)(rb - a - 1);
    if (hl == 0 || hl >= sizeof out->host) return HD_EINVAL;
    memcpy(out->host, a + 1, hl);
    out->host[hl] = 0;
    unsigned char tmp[16];
    if (uv_inet_pton(AF_INET6, out->host, tmp) != 0) return HD_EINVAL;
    out->ipv6_literal = 1;
    if (rb + 1 < rest) {
      if (rb[1] != ':') return HD_EINVAL;
      portp = rb + 2;
    }
  } else {
    const char *colon = memchr(a, ':', alen);
    size_t hl = colon ? (size_t)(colon - a) : alen;
    if (hl == 0 || hl >= sizeof out->host) return HD_EINVAL;
    for (size_t i = 0; i < hl; i++)
      if (!isalnum((unsigned char)a[i]) && a[i] != '-' && a[i] != '.' && a[i] != '_') return HD_EINVAL;
    memcpy(out->host, a, hl);
    out->host[hl] = 0;
    if (colon) portp = colon + 1;
  }
  if (portp) {
    long p = 0;
    if (portp >= rest) return HD_EINVAL;
    for (const char *q = portp; q < rest; q++) {
      if (!isdigit((unsigned char)*q) || q - portp > 5) return HD_EINVAL;
      p = p * 10 + (*q - '0');
    }
    if (p < 1 || p > 65535) return HD_EINVAL;
    out->port = (int)p;
  }
  size_t pl = strcspn(rest, "#"); /* the fragment is never sent */
  for (size_t i = 0; i < pl; i++)
    if ((unsigned char)rest[i] <= 0x20 || rest[i] == 0x7f) return HD_EINVAL;
  int n = snprintf(out->path, sizeof out->path, "%s%.*s", rest[0] == '/' ? "" : "/", (int)pl, rest);
  if (n < 0 || (size_t)n >= sizeof out->path) return HD_EINVAL;
  return 0;
}

/* ---- lifecycle ---- */

static void maybe_free(hd_http_client_t *c) {
  if (!c->done || c->open_handles || c->gai_pending) return;
  if (c->ai) uv_freeaddrinfo(c->ai);
  free(c->reqbuf);
  free(c);
}

static void on_close(uv_handle_t *h);
static void start_connect(hd_http_client_t *c);

static void teardown(hd_http_client_t *c) {
  c->done = 1;
  uv_timer_stop(&c->timer);
  if (!uv_is_closing((uv_handle_t *)&c->timer)) uv_close((uv_handle_t *)&c->timer, on_close);
  if (c->tcp_inited && !uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, on_close);
  if (c->gai_pending) uv_cancel((uv_req_t *)&c->gai); /* may fail if already running; on_resolved frees */
  maybe_free(c);
}

static void finish(hd_http_client_t *c, hd_http_client_result_t *r) {
  if (c->done) return;
  c->done = 1; /* before the callback: it may not re-enter us */
  c->cb(c->ud, r);
  teardown(c);
}

static void fail(hd_http_client_t *c, int err, int uv_err) {
  hd_http_client_result_t r;
  memset(&r, 0, sizeof r);
  r.err = err;
  r.uv_err = uv_err;
  finish(c, &r);
}

static void on_close(uv_handle_t *h) {
  hd_http_client_t *c = h->data;
  c->open_handles--;
  if (h == (uv_handle_t *)&c->tcp) {
    c->tcp_inited = 0;
    if (c->reconnect && !c->done) {
      c->reconnect = 0;
      start_connect(c);
      return;
    }
  }
  maybe_free(c);
}

void hd_http_client_cancel(hd_http_client_t *c) {
  if (!c || c->done) return;
  teardown(c);
}

static void on_timer(uv_timer_t *t) {
  hd_http_client_t *c = t->data;
  if (c->deferred_err)
    fail(c, c->deferred_err, c->deferred_uv_err);
  else
    fail(c, HD_ETIMEDOUT, UV_ETIMEDOUT);
}

/* Fails on the next loop turn: a callback never runs inside
 * hd_http_client_request, whose caller may not be ready to be re-entered. */
static void fail_later(hd_http_client_t *c, int err, int uv_err) {
  c->deferred_err = err;
  c->deferred_uv_err = uv_err;
  uv_timer_start(&c->timer, on_timer, 0, 0);
}

static void arm_timer(hd_http_client_t *c) {
  uint64_t now = uv_now(c->loop);
  uint64_t at =
      c->connected ? c->deadline : (c->connect_deadline < c->deadline ? c->connect_deadline : c->deadline);
  uv_timer_start(&c->timer, on_timer, at > now ? at - now : 0, 0);
}

/* ---- response parsing ---- */

/* Finds the end of a header block starting at p: returns the offset just past
 * the empty line, or 0 if not complete. Bare LF line ends are accepted (RFC
 * 9112 §2.2). */
static size_t block_end(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (p[i] != '\n') continue;
    if (i + 1 < n && p[i + 1] == '\n') return i + 2;
    if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n') return i + 3;
  }
  return 0;
}

static char *trim(char *s, char *e) {
  while (s < e && (*s == ' ' || *s == '\t'))
    s++;
  while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
    e--;
  *e = 0;
  return s;
}

/* Parses one block [p, p+n) (NUL-terminating lines in place). Returns 0 and
 * fills r, or HD_EPROTO. */
static int parse_block(char *p, size_t n, hd_http_client_result_t *r) {
  memset(r, 0, sizeof r[0]);
  char *end = p + n;
  char *nl = memchr(p, '\n', n);
  if (!nl) return HD_EPROTO;
  char *line = p;
  char *le = nl;
  if (le > line && le[-1] == '\r') le--;
  *le = 0;
  /* status-line = HTTP-version SP 3DIGIT SP [reason] */
  if (strncmp(line, "HTTP/1.", 7) || !isdigit((unsigned char)line[7]) || line[8] != ' ' ||
      !isdigit((unsigned char)line[9]) || !isdigit((unsigned char)line[10]) ||
      !isdigit((unsigned char)line[11]) || (line[12] != ' ' && line[12] != 0))
    return HD_EPROTO;
  r->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
  if (r->status < 100 || r->status > 599) return HD_EPROTO;
  if (line[12]) snprintf(r->reason, sizeof r->reason, "%s", line + 13);
  for (char *q = nl + 1; q < end;) {
    char *e = memchr(q, '\n', (size_t)(end - q));
    if (!e) return HD_EPROTO;
    char *ve = e;
    if (ve > q && ve[-1] == '\r') ve--;
    if (ve == q) break;                            /* empty line: end of block */
    if (*q == ' ' || *q == '\t') return HD_EPROTO; /* obs-fold is refused (RFC 9112 §5.2) */
    char *colon = memchr(q, ':', (size_t)(ve - q));
    if (!colon || colon == q) return HD_EPROTO;
    for (char *k = q; k < colon; k++)
      if (!isgraph((unsigned char)*k)) return HD_EPROTO; /* no space before ':' (§5.1) */
    *colon = 0;
    char *v = trim(colon + 1, ve);
    if (r->n_headers < HD_HTTPC_MAX_RESP_HEADERS) {
      r->header_names[r->n_headers] = q;
      r->header_values[r->n_headers] = v;
      r->n_headers++;
    }
    q = e + 1;
  }
  return 0;
}

int hd_http_response_head_parse(char *buf, size_t len, hd_http_client_result_t *out) {
  size_t n = block_end(buf, len);
  if (!n) return 0;
  if (n > (size_t)INT32_MAX) return HD_EPROTO;
  int rc = parse_block(buf, n, out);
  return rc < 0 ? rc : (int)n;
}

const char *hd_http_client_header(const hd_http_client_result_t *res, const char *name) {
  for (int i = 0; i < res->n_headers; i++)
    if (!strcasecmp(res->header_names[i], name)) return res->header_values[i];
  return NULL;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  hd_http_client_t *c = h->data;
  buf->base = c->head + c->headlen;
  buf->len = HD_HTTPC_RESP_HEAD_MAX - c->headlen;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  hd_http_client_t *c = s->data;
  if (c->done) return;
  if (nread < 0) {
    /* EOF or reset before a complete header block */
    fail(c, nread == UV_EOF ? HD_EPROTO : HD_EIO, (int)nread);
    return;
  }
  c->headlen += (size_t)nread;
  for (;;) {
    hd_http_client_result_t r;
    int rc = hd_http_response_head_parse(c->head, c->headlen, &r);
    if (rc == 0) break;
    if (rc < 0) {
      fail(c, HD_EPROTO, 0);
      return;
    }
    size_t n = (size_t)rc;
    if (r.status >= 100 && r.status <= 199) {
      if (r.status == 101) { /* we never asked to switch protocols */
        fail(c, HD_EPROTO, 0);
        return;
      }
      /* interim response (RFC 9110 §15.2): drop it, the final one follows */
      memmove(c->head, c->head + n, c->headlen - n);
      c->headlen -= n;
      continue;
    }
    finish(c, &r);
    return;
  }
  if (c->headlen >= HD_HTTPC_RESP_HEAD_MAX) fail(c, HD_EPROTO, 0);
}

/* ---- connect / write ---- */

static void on_write(uv_write_t *w, int status) {
  hd_http_client_t *c = w->data;
  if (status < 0 && status != UV_ECANCELED && !c->done) fail(c, HD_EIO, status);
}

static void on_connect(uv_connect_t *req, int status) {
  hd_http_client_t *c = req->data;
  if (c->done || status == UV_ECANCELED) return;
  if (status < 0) {
    c->last_uv_err = status;
    if (c->next) { /* try the next resolved address on a fresh handle */
      c->reconnect = 1;
      uv_close((uv_handle_t *)&c->tcp, on_close);
      return;
    }
    fail(c, HD_EIO, status);
    return;
  }
  c->connected = 1;
  arm_timer(c);
  uv_buf_t b = uv_buf_init(c->reqbuf, (unsigned)c->reqlen);
  c->wr.data = c;
  int rc = uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_write);
  if (rc == 0) rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (rc < 0) fail(c, HD_EIO, rc);
}

static void start_connect(hd_http_client_t *c) {
  const struct sockaddr *sa = (const struct sockaddr *)&c->lit;
  if (c->ai) {
    while (c->next && c->next->ai_family != AF_INET && c->next->ai_family != AF_INET6)
      c->next = c->next->ai_next;
    if (!c->next) {
      fail_later(c, HD_EIO, c->last_uv_err ? c->last_uv_err : UV_EAI_NONAME);
      return;
    }
    sa = c->next->ai_addr;
    c->next = c->next->ai_next;
  }
  int rc = uv_tcp_init(c->loop, &c->tcp);
  if (rc < 0) {
    fail_later(c, HD_EIO, rc);
    return;
  }
  c->tcp.data = c;
  c->tcp_inited = 1;
  c->open_handles++;
  uv_tcp_nodelay(&c->tcp, 1);
  c->conn.data = c;
  rc = uv_tcp_connect(&c->conn, &c->tcp, sa, on_connect);
  if (rc < 0) {
    c->last_uv_err = rc;
    if (c->next) {
      c->reconnect = 1;
      uv_close((uv_handle_t *)&c->tcp, on_close);
      return;
    }
    fail_later(c, HD_EIO, rc);
  }
}

static void on_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *res) {
  hd_http_client_t *c = g->data;
  c->gai_pending = 0;
  if (c->done) {
    if (res) uv_freeaddrinfo(res);
    maybe_free(c);
    return;
  }
  if (status < 0 || !res) {
    if (res) uv_freeaddrinfo(res);
    fail(c, HD_ENOTFOUND, status);
    return;
  }
  c->ai = c->next = res;
  start_connect(c);
}

/* ---- request ---- */

static int is_token(const char *s, size_t max) {
  size_t n = 0;
  for (; s[n]; n++)
    if (n >= max || !(isalnum((unsigned char)s[n]) || strchr("!#$%&'*+-.^_`|~", s[n]))) return 0;
  return n > 0;
}

static int append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int append(char *buf, size_t cap, size_t *len, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= cap - *len) return HD_ENOSPC;
  *len += (size_t)n;
  return 0;
}

static int build_request(hd_http_client_t *c, const hd_http_client_req_t *req) {
  if (!req->method || !is_token(req->method, 16)) return HD_EINVAL;
  if (req->n_headers < 0 || req->n_headers > HD_HTTPC_MAX_REQ_HEADERS) return HD_EINVAL;
  if (req->n_headers && (!req->header_names || !req->header_values)) return HD_EINVAL;
  if (req->body_len && !req->body) return HD_EINVAL;
  size_t cap = 1024 + strlen(c->url.path) + req->body_len;
  for (int i = 0; i < req->n_headers; i++) {
    const char *n = req->header_names[i], *v = req->header_values[i];
    if (!n || !v || !is_token(n, 64) || strpbrk(v, "\r\n")) return HD_EINVAL;
    /* framing headers are ours: a caller's copy could desynchronise the stream */
    if (!strcasecmp(n, "Host") || !strcasecmp(n, "Content-Length") || !strcasecmp(n, "Connection") ||
        !strcasecmp(n, "Transfer-Encoding"))
      return HD_EINVAL;
    cap += strlen(n) + strlen(v) + 4;
  }
  if (cap > HD_HTTPC_REQ_MAX) return HD_ENOSPC;
  c->reqbuf = malloc(cap);
  if (!c->reqbuf) return HD_ENOMEM;
  size_t len = 0;
  int rc = append(c->reqbuf, cap, &len, "%s %s HTTP/1.1\r\nHost: %s%s%s", req->method, c->url.path,
                  c->url.ipv6_literal ? "[" : "", c->url.host, c->url.ipv6_literal ? "]" : "");
  if (!rc && c->url.port != 80) rc = append(c->reqbuf, cap, &len, ":%d", c->url.port);
  if (!rc) rc = append(c->reqbuf, cap, &len, "\r\n");
  for (int i = 0; i < req->n_headers && !rc; i++)
    rc = append(c->reqbuf, cap, &len, "%s: %s\r\n", req->header_names[i], req->header_values[i]);
  if (!rc)
    rc = append(c->reqbuf, cap, &len, "Content-Length: %zu\r\nConnection: close\r\n\r\n", req->body_len);
  if (rc) return rc;
  if (len + req->body_len > cap) return HD_ENOSPC;
  if (req->body_len) memcpy(c->reqbuf + len, req->body, req->body_len);
  c->reqlen = len + req->body_len;
  return 0;
}

int hd_http_client_request(hd_http_client_t **out, uv_loop_t *loop, const hd_http_client_req_t *req,
                           hd_http_client_cb cb, void *ud) {
  if (!req || !cb) return HD_EINVAL;
  hd_http_client_t *c = calloc(1, sizeof *c);
  if (!c) return HD_ENOMEM;
  c->loop = loop;
  c->cb = cb;
  c->ud = ud;
  int rc = hd_http_url_parse(req->url, &c->url);
  if (rc == 0) rc = build_request(c, req);
  if (rc < 0) {
    free(c->reqbuf);
    free(c);
    return rc;
  }
  /* literal addresses skip the resolver */
  int literal = 0;
  if (uv_ip4_addr(c->url.host, c->url.port, (struct sockaddr_in *)&c->lit) == 0 ||
      uv_ip6_addr(c->url.host, c->url.port, (struct sockaddr_in6 *)&c->lit) == 0)
    literal = 1;
  uint64_t now = uv_now(loop);
  c->connect_deadline = now + (req->connect_timeout_ms ? req->connect_timeout_ms : 5000);
  c->deadline = now + (req->timeout_ms ? req->timeout_ms : 10000);
  uv_timer_init(loop, &c->timer);
  c->timer.data = c;
  c->open_handles = 1;
  arm_timer(c);
  if (out) *out = c;
  if (literal) {
    start_connect(c);
  } else {
    char port[8];
    snprintf(port, sizeof port, "%d", c->url.port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
    c->gai.data = c;
    rc = uv_getaddrinfo(loop, &c->gai, on_resolved, c->url.host, port, &hints);
    if (rc < 0)
      fail_later(c, HD_ENOTFOUND, rc);
    else
      c->gai_pending = 1;
  }
  return 0;
}
