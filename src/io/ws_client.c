/* WebSocket client over uv_tcp (see ws_client.h): RFC 6455 §4.1 opening
 * handshake (Sec-WebSocket-Key / Accept with SHA-1 + base64), §5.2 framing,
 * §5.3 client masking, §5.4 fragmentation, §5.5 control frames, §7 closing.
 * wss:// runs the same bytes through OpenSSL over two memory BIOs: what the
 * socket reads goes into rbio, SSL_read gives the plaintext the parser sees;
 * SSL_write fills wbio, whose bytes are written to the socket. */
#include "io/ws_client.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/base64.h"
#include "base/err.h"
#include "base/rand.h"

enum { ST_CONNECTING = 0, ST_HANDSHAKE, ST_OPEN, ST_CLOSING, ST_DONE };

struct hd_ws_client {
  uv_loop_t *loop;
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_connect_t conn;
  hd_ws_client_config_t cfg;
  int state;
  int handles_open; /* uv handles not yet closed */
  int freed;        /* hd_ws_client_free called: no more callbacks */
  char host[64], path[256], accept[32];
  uint16_t port;
  /* inbound */
  uint8_t *in;
  size_t in_len, in_cap;
  char *msg; /* fragments of the current message */
  size_t msg_len;
  int in_msg;
  size_t queued;
  /* wss:// */
  int tls, tls_up;
  SSL_CTX *tls_ctx;
  SSL *ssl;
  BIO *rbio, *wbio; /* owned by ssl */
  uint8_t *raw;     /* ciphertext read from the socket */
};

typedef struct {
  uv_write_t req;
  hd_ws_client_t *c;
  size_t len;
  uint8_t data[];
} wreq_t;

/* ---- lifecycle ---- */

static void free_client(hd_ws_client_t *c) {
  SSL_free(c->ssl);
  SSL_CTX_free(c->tls_ctx);
  free(c->raw);
  free(c->in);
  free(c->msg);
  free(c);
}

static void on_handle_closed(uv_handle_t *h) {
  hd_ws_client_t *c = h->data;
  if (--c->handles_open == 0 && c->freed) free_client(c);
}

static void close_handles(hd_ws_client_t *c) {
  uv_timer_stop(&c->timer);
  if (!uv_is_closing((uv_handle_t *)&c->timer)) uv_close((uv_handle_t *)&c->timer, on_handle_closed);
  if (!uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

/* Ends the connection and reports it once. The caller must not touch c after. */
static void finish(hd_ws_client_t *c, int code, const char *reason) {
  if (c->state == ST_DONE) return;
  c->state = ST_DONE;
  close_handles(c);
  if (!c->freed && c->cfg.on_close) c->cfg.on_close(c->cfg.ud, c, code, reason);
}

void hd_ws_client_free(hd_ws_client_t *c) {
  if (!c || c->freed) return;
  c->freed = 1;
  c->state = ST_DONE;
  if (c->handles_open == 0) { /* already closed (on_close came and libuv finished) */
    free_client(c);
    return;
  }
  close_handles(c); /* on_handle_closed frees once both are closed */
}

/* ---- writing ---- */

static void on_write(uv_write_t *w, int status) {
  wreq_t *r = (wreq_t *)w;
  r->c->queued -= r->len;
  free(r);
}

static int uv_send(hd_ws_client_t *c, const uint8_t *data, size_t len) {
  wreq_t *r = malloc(sizeof *r + len);
  if (!r) return HD_ENOMEM;
  memcpy(r->data, data, len);
  r->c = c;
  r->len = len;
  uv_buf_t b = uv_buf_init((char *)r->data, (unsigned)len);
  if (uv_write(&r->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0) {
    free(r);
    return HD_EIO;
  }
  c->queued += len;
  return 0;
}

/* Writes what OpenSSL has produced (handshake records, encrypted data). */
static int tls_flush(hd_ws_client_t *c) {
  char *p;
  long n = BIO_get_mem_data(c->wbio, &p);
  if (n <= 0) return 0;
  int rc = uv_send(c, (const uint8_t *)p, (size_t)n);
  (void)BIO_reset(c->wbio);
  return rc;
}

/* Sends bytes of the WebSocket stream: as they are, or through TLS. */
static int send_bytes(hd_ws_client_t *c, const uint8_t *data, size_t len) {
  if (!c->tls) return uv_send(c, data, len);
  if (SSL_write(c->ssl, data, (int)len) != (int)len) {
    ERR_clear_error();
    return HD_EIO;
  }
  return tls_flush(c);
}

/* Writes one frame (FIN set, masked per §5.3). */
static int send_frame(hd_ws_client_t *c, int opcode, const uint8_t *payload, size_t len) {
  if (c->queued + len > c->cfg.out_max_bytes) return HD_ENOSPC;
  wreq_t *r = malloc(sizeof *r + len + 14);
  if (!r) return HD_ENOMEM;
  uint8_t *p = r->data;
  size_t h = 0;
  p[h++] = (uint8_t)(0x80 | opcode);
  if (len < 126) {
    p[h++] = (uint8_t)(0x80 | len);
  } else if (len <= 0xffff) {
    p[h++] = 0x80 | 126;
    p[h++] = (uint8_t)(len >> 8);
    p[h++] = (uint8_t)len;
  } else {
    p[h++] = 0x80 | 127;
    for (int i = 7; i >= 0; i--)
      p[h++] = (uint8_t)((uint64_t)len >> (8 * i));
  }
  uint8_t mask[4];
  hd_random_bytes(mask, 4);
  memcpy(p + h, mask, 4);
  h += 4;
  for (size_t i = 0; i < len; i++)
    p[h + i] = payload[i] ^ mask[i & 3];
  if (c->tls) { /* the frame goes through SSL_write, which copies it */
    int rc = send_bytes(c, p, h + len);
    free(r);
    return rc;
  }
  r->c = c;
  r->len = h + len;
  uv_buf_t b = uv_buf_init((char *)p, (unsigned)r->len);
  int rc = uv_write(&r->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
  if (rc < 0) {
    free(r);
    return HD_EIO;
  }
  c->queued += r->len;
  return 0;
}

int hd_ws_client_send(hd_ws_client_t *c, const char *text, size_t len) {
  if (!c || (!text && len)) return HD_EINVAL;
  if (c->state != ST_OPEN) return HD_ESTATE;
  return send_frame(c, 0x1, (const uint8_t *)text, len);
}

static void on_timer(uv_timer_t *t) {
  hd_ws_client_t *c = t->data;
  char why[64];
  if (c->state == ST_CLOSING) {
    finish(c, HD_WS_CLIENT_ABNORMAL, "close handshake timed out");
  } else {
    snprintf(why, sizeof why, "connect timeout after %u ms", c->cfg.connect_timeout_ms);
    finish(c, HD_WS_CLIENT_ABNORMAL, why);
  }
}

int hd_ws_client_close(hd_ws_client_t *c, int code, const char *reason) {
  if (!c || code < 1000 || code > 4999) return HD_EINVAL;
  if (c->state == ST_CLOSING || c->state == ST_DONE) return HD_ESTATE;
  if (c->state != ST_OPEN) {
    finish(c, HD_WS_CLIENT_ABNORMAL, "closed by client");
    return 0;
  }
  uint8_t p[2 + 123];
  size_t rl = reason ? strlen(reason) : 0;
  if (rl > 123) rl = 123;
  p[0] = (uint8_t)(code >> 8);
  p[1] = (uint8_t)code;
  if (rl) memcpy(p + 2, reason, rl);
  c->state = ST_CLOSING;
  int rc = send_frame(c, 0x8, p, 2 + rl);
  uv_timer_start(&c->timer, on_timer, HD_WS_CLIENT_CLOSE_TIMEOUT_MS, 0);
  return rc < 0 ? rc : 0;
}

int hd_ws_client_is_open(const hd_ws_client_t *c) { return c->state == ST_OPEN; }
size_t hd_ws_client_queued(const hd_ws_client_t *c) { return c->queued; }

/* ---- reading ---- */

/* Finds header `name` in the response head; copies its value. */
static int header(const char *head, const char *name, char *out, size_t cap) {
  size_t nl = strlen(name);
  for (const char *p = strstr(head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
    const char *l = p + 2;
    if (!strncasecmp(l, name, nl) && l[nl] == ':') {
      l += nl + 1;
      while (*l == ' ' || *l == '\t')
        l++;
      size_t n = strcspn(l, "\r\n");
      while (n && (l[n - 1] == ' ' || l[n - 1] == '\t'))
        n--;
      if (n >= cap) return HD_ENOSPC;
      memcpy(out, l, n);
      out[n] = 0;
      return 0;
    }
  }
  return HD_ENOTFOUND;
}

/* Returns 1 when the handshake completed, 0 when more bytes are needed, <0 on failure (finished). */
static int parse_handshake(hd_ws_client_t *c) {
  uint8_t *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
  if (!end) {
    if (c->in_len > 16384) finish(c, HD_WS_CLIENT_ABNORMAL, "handshake: response head too long");
    return c->in_len > 16384 ? -1 : 0;
  }
  size_t hl = (size_t)(end - c->in) + 4;
  char *head = malloc(hl + 1);
  if (!head) {
    finish(c, HD_WS_CLIENT_ABNORMAL, "out of memory");
    return -1;
  }
  memcpy(head, c->in, hl);
  head[hl] = 0;
  char why[160], v[128];
  int ok = 0;
  size_t sl = strcspn(head, "\r\n");
  if (strncmp(head, "HTTP/1.1 101", 12)) {
    snprintf(why, sizeof why, "handshake: %.*s", (int)(sl < 100 ? sl : 100), head);
  } else if (header(head, "Upgrade", v, sizeof v) < 0 || strcasecmp(v, "websocket")) {
    snprintf(why, sizeof why, "handshake: no Upgrade: websocket");
  } else if (header(head, "Sec-WebSocket-Accept", v, sizeof v) < 0 || strcmp(v, c->accept)) {
    snprintf(why, sizeof why, "handshake: bad Sec-WebSocket-Accept");
  } else {
    ok = 1;
  }
  free(head);
  if (!ok) {
    finish(c, HD_WS_CLIENT_ABNORMAL, why);
    return -1;
  }
  memmove(c->in, c->in + hl, c->in_len - hl);
  c->in_len -= hl;
  c->state = ST_OPEN;
  uv_timer_stop(&c->timer);
  return 1;
}

/* Parses and handles frames in c->in. Returns -1 if the client finished (or
 * was freed) during a callback, else 0. */
static int parse_frames(hd_ws_client_t *c) {
  size_t off = 0;
  while (c->state == ST_OPEN || c->state == ST_CLOSING) {
    uint8_t *p = c->in + off;
    size_t avail = c->in_len - off;
    if (avail < 2) break;
    int fin = p[0] & 0x80, op = p[0] & 0x0f, masked = p[1] & 0x80;
    uint64_t len = p[1] & 0x7f;
    size_t h = 2;
    if (p[0] & 0x70 || masked) { /* no extensions negotiated; a server never masks (§5.1) */
      finish(c, HD_WS_CLIENT_ABNORMAL, "protocol error: reserved bits or masked frame");
      return -1;
    }
    if (len == 126) {
      if (avail < 4) break;
      len = (uint64_t)p[2] << 8 | p[3];
      h = 4;
    } else if (len == 127) {
      if (avail < 10) break;
      len = 0;
      for (int i = 0; i < 8; i++)
        len = len << 8 | p[2 + i];
      h = 10;
    }
    if (len > c->cfg.max_message) {
      char why[64];
      snprintf(why, sizeof why, "message over %zu bytes", c->cfg.max_message);
      finish(c, HD_WS_CLIENT_ABNORMAL, why);
      return -1;
    }
    if (avail < h + len) break;
    const uint8_t *pl = p + h;
    off += h + (size_t)len;
    if (op == 0x8) { /* close: echo and finish (§5.5.1) */
      int code = len >= 2 ? (pl[0] << 8 | pl[1]) : 1005;
      char reason[128];
      size_t rl = len > 2 ? (size_t)len - 2 : 0;
      if (rl > 123) rl = 123;
      memcpy(reason, pl + 2, rl);
      reason[rl] = 0;
      if (c->state == ST_OPEN) send_frame(c, 0x8, pl, len >= 2 ? 2 : 0);
      finish(c, code, reason);
      return -1;
    } else if (op == 0x9) {
      send_frame(c, 0xA, pl, (size_t)len);
    } else if (op == 0xA) {
      /* pong: nothing to do */
    } else if (op == 0x1 || op == 0x0) {
      if ((op == 0x1) == c->in_msg || op == 0x2) {
        finish(c, HD_WS_CLIENT_ABNORMAL, "protocol error: bad fragment sequence");
        return -1;
      }
      if (c->msg_len + len > c->cfg.max_message) {
        char why[64];
        snprintf(why, sizeof why, "message over %zu bytes", c->cfg.max_message);
        finish(c, HD_WS_CLIENT_ABNORMAL, why);
        return -1;
      }
      char *m = realloc(c->msg, c->msg_len + (size_t)len + 1);
      if (!m) {
        finish(c, HD_WS_CLIENT_ABNORMAL, "out of memory");
        return -1;
      }
      c->msg = m;
      memcpy(c->msg + c->msg_len, pl, (size_t)len);
      c->msg_len += (size_t)len;
      c->in_msg = 1;
      if (fin) {
        c->in_msg = 0;
        size_t ml = c->msg_len;
        c->msg_len = 0;
        if (c->state == ST_OPEN && c->cfg.on_message) {
          c->cfg.on_message(c->cfg.ud, c, c->msg, ml);
          if (c->freed || c->state == ST_DONE) return -1;
        }
      }
    } else { /* binary or unknown: we speak text only */
      finish(c, HD_WS_CLIENT_ABNORMAL, "unsupported frame (binary or unknown opcode)");
      return -1;
    }
  }
  memmove(c->in, c->in + off, c->in_len - off);
  c->in_len -= off;
  return 0;
}

#define RAW_CAP 65536

static int grow_in(hd_ws_client_t *c, size_t want) {
  if (want <= c->in_cap) return 0;
  uint8_t *n = realloc(c->in, want);
  if (!n) return HD_ENOMEM;
  c->in = n;
  c->in_cap = want;
  return 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  hd_ws_client_t *c = h->data;
  (void)suggested;
  if (c->tls) {
    *buf = uv_buf_init((char *)c->raw, RAW_CAP);
    return;
  }
  size_t want = c->in_len + 65536;
  if (want > c->in_cap) {
    uint8_t *n = realloc(c->in, want);
    if (!n) {
      *buf = uv_buf_init(NULL, 0);
      return;
    }
    c->in = n;
    c->in_cap = want;
  }
  *buf = uv_buf_init((char *)c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

static void send_upgrade(hd_ws_client_t *c);

/* TLS failure reason: OpenSSL's, with the certificate verdict when there is one. */
static void tls_fail(hd_ws_client_t *c, const char *what) {
  char why[256];
  long v = c->ssl ? SSL_get_verify_result(c->ssl) : X509_V_OK;
  unsigned long e = ERR_peek_last_error();
  if (v != X509_V_OK)
    snprintf(why, sizeof why,
             "%s: certificate not trusted (%s); pass a CA file, or skip verification for "
             "development (HUDONG_TLS_INSECURE=1)",
             what, X509_verify_cert_error_string(v));
  else
    snprintf(why, sizeof why, "%s: %s", what, e ? ERR_reason_error_string(e) : "connection failed");
  ERR_clear_error();
  finish(c, HD_WS_CLIENT_ABNORMAL, why);
}

/* Ciphertext in; plaintext appended to c->in. Returns 0, or < 0 after finish(). */
static int tls_input(hd_ws_client_t *c, const uint8_t *data, size_t n) {
  if (BIO_write(c->rbio, data, (int)n) != (int)n) {
    finish(c, HD_WS_CLIENT_ABNORMAL, "out of memory");
    return -1;
  }
  if (!c->tls_up) {
    int r = SSL_do_handshake(c->ssl);
    tls_flush(c);
    if (r != 1) {
      int e = SSL_get_error(c->ssl, r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
      tls_fail(c, "tls handshake");
      return -1;
    }
    c->tls_up = 1;
    send_upgrade(c);
    if (c->state == ST_DONE) return -1;
  }
  for (;;) {
    if (grow_in(c, c->in_len + 16384) < 0) {
      finish(c, HD_WS_CLIENT_ABNORMAL, "out of memory");
      return -1;
    }
    int r = SSL_read(c->ssl, c->in + c->in_len, (int)(c->in_cap - c->in_len));
    if (r > 0) {
      c->in_len += (size_t)r;
      continue;
    }
    int e = SSL_get_error(c->ssl, r);
    tls_flush(c); /* e.g. a key update answer */
    if (e == SSL_ERROR_WANT_READ) return 0;
    if (e == SSL_ERROR_ZERO_RETURN) {
      ERR_clear_error();
      finish(c, HD_WS_CLIENT_ABNORMAL, "connection closed without a close frame");
      return -1;
    }
    tls_fail(c, "tls read");
    return -1;
  }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  hd_ws_client_t *c = s->data;
  if (c->state == ST_DONE) return;
  if (nread < 0) {
    finish(c, HD_WS_CLIENT_ABNORMAL,
           nread == UV_EOF ? "connection closed without a close frame" : uv_strerror((int)nread));
    return;
  }
  if (c->tls) {
    if (tls_input(c, (const uint8_t *)buf->base, (size_t)nread) < 0 || c->state < ST_HANDSHAKE) return;
  } else {
    c->in_len += (size_t)nread;
  }
  if (c->state == ST_HANDSHAKE) {
    int rc = parse_handshake(c);
    if (rc <= 0) return;
    if (c->cfg.on_open) {
      c->cfg.on_open(c->cfg.ud, c);
      if (c->freed || c->state == ST_DONE) return;
    }
  }
  parse_frames(c);
}

static void on_connect(uv_connect_t *req, int status) {
  hd_ws_client_t *c = req->data;
  if (c->state == ST_DONE) return;
  if (status < 0) {
    char why[128];
    snprintf(why, sizeof why, "connect: %s", uv_strerror(status));
    finish(c, HD_WS_CLIENT_ABNORMAL, why);
    return;
  }
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
    finish(c, HD_WS_CLIENT_ABNORMAL, "connect: read failed");
    return;
  }
  if (!c->tls) {
    send_upgrade(c);
    return;
  }
  int r = SSL_do_handshake(c->ssl); /* ClientHello */
  if (r != 1 && SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ) {
    tls_fail(c, "tls handshake");
    return;
  }
  tls_flush(c);
}

/* The opening handshake request (§4.1), once the transport is up. */
static void send_upgrade(hd_ws_client_t *c) {
  uint8_t key[16];
  char key64[32], req_text[1024];
  hd_random_bytes(key, sizeof key);
  hd_base64_encode(key, sizeof key, key64, sizeof key64, 0);
  /* expected Sec-WebSocket-Accept: base64(SHA-1(key + GUID)) (§4.2.2 item 5.4) */
  char cat[96];
  int cl = snprintf(cat, sizeof cat, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key64);
  uint8_t sha[SHA_DIGEST_LENGTH];
  SHA1((const uint8_t *)cat, (size_t)cl, sha);
  hd_base64_encode(sha, sizeof sha, c->accept, sizeof c->accept, 0);
  int n = snprintf(req_text, sizeof req_text,
                   "GET %s HTTP/1.1\r\nHost: %s:%u\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nUser-Agent: libhudong\r\n\r\n",
                   c->path, c->host, c->port, key64);
  c->state = ST_HANDSHAKE;
  if (send_bytes(c, (const uint8_t *)req_text, (size_t)n) < 0)
    finish(c, HD_WS_CLIENT_ABNORMAL, "connect: write failed");
}

/* ---- connect ---- */

static int parse_url(hd_ws_client_t *c, const char *url, struct sockaddr_storage *ss) {
  if (!strncmp(url, "wss://", 6))
    c->tls = 1;
  else if (strncmp(url, "ws://", 5))
    return HD_EINVAL;
  const char *h = url + (c->tls ? 6 : 5), *hend, *p;
  if (*h == '[') {
    hend = strchr(h, ']');
    if (!hend) return HD_EINVAL;
    h++;
    p = hend + 1;
  } else {
    hend = h + strcspn(h, ":/");
    p = hend;
  }
  size_t hl = (size_t)(hend - h);
  if (!hl || hl >= sizeof c->host) return HD_EINVAL;
  memcpy(c->host, h, hl);
  c->host[hl] = 0;
  c->port = c->tls ? 443 : 80;
  if (*p == ':') {
    char *e;
    long port = strtol(p + 1, &e, 10);
    if (port < 1 || port > 65535 || e == p + 1) return HD_EINVAL;
    c->port = (uint16_t)port;
    p = e;
  }
  if (*p && *p != '/') return HD_EINVAL;
  snprintf(c->path, sizeof c->path, "%s", *p ? p : "/");
  if (strlen(p) >= sizeof c->path) return HD_EINVAL;
  const char *ip = !strcmp(c->host, "localhost") ? "127.0.0.1" : c->host;
  memset(ss, 0, sizeof *ss);
  if (uv_ip4_addr(ip, c->port, (struct sockaddr_in *)ss) == 0) return 0;
  if (uv_ip6_addr(ip, c->port, (struct sockaddr_in6 *)ss) == 0) return 0;
  return HD_EUNSUPPORTED;
}

/* wss://: a client SSL over memory BIOs. TLS 1.2+, the peer's certificate checked
 * against the system store or cfg.ca_file, and its name against the URL's host
 * (RFC 6125), unless cfg.tls_insecure (development, self-signed certificates).
 * Environment fallbacks for programs that do not set them: HUDONG_TLS_CA_FILE,
 * HUDONG_TLS_INSECURE=1. */
static int tls_setup(hd_ws_client_t *c) {
  const char *ca = c->cfg.tls_ca_file;
  int insecure = c->cfg.tls_insecure;
  const char *env = getenv("HUDONG_TLS_INSECURE");
  if (!insecure && env && !strcmp(env, "1")) insecure = 1;
  if (!ca) ca = getenv("HUDONG_TLS_CA_FILE");
  c->tls_ctx = SSL_CTX_new(TLS_client_method());
  if (!c->tls_ctx || !SSL_CTX_set_min_proto_version(c->tls_ctx, TLS1_2_VERSION)) goto fail;
  if (!insecure) {
    if (ca && *ca ? SSL_CTX_load_verify_locations(c->tls_ctx, ca, NULL) != 1
                  : SSL_CTX_set_default_verify_paths(c->tls_ctx) != 1)
      goto fail;
    SSL_CTX_set_verify(c->tls_ctx, SSL_VERIFY_PEER, NULL);
  }
  c->ssl = SSL_new(c->tls_ctx);
  c->rbio = BIO_new(BIO_s_mem());
  c->wbio = BIO_new(BIO_s_mem());
  c->raw = malloc(RAW_CAP);
  if (!c->ssl || !c->rbio || !c->wbio || !c->raw) {
    BIO_free(c->rbio);
    BIO_free(c->wbio);
    c->rbio = c->wbio = NULL;
    goto fail;
  }
  SSL_set_bio(c->ssl, c->rbio, c->wbio);
  SSL_set_connect_state(c->ssl);
  unsigned char ip[16];
  int is_ip = inet_pton(AF_INET, c->host, ip) == 1 || inet_pton(AF_INET6, c->host, ip) == 1;
  if (!is_ip) SSL_set_tlsext_host_name(c->ssl, c->host); /* SNI (RFC 6066 §3): names only */
  if (!insecure) {
    X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
    if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, c->host) != 1
              : X509_VERIFY_PARAM_set1_host(vp, c->host, 0) != 1)
      goto fail;
  }
  static const unsigned char alpn[] = "\x08http/1.1";
  SSL_set_alpn_protos(c->ssl, alpn, sizeof alpn - 1);
  return 0;
fail:
  ERR_clear_error();
  return HD_ECRYPTO;
}

int hd_ws_client_connect(hd_ws_client_t **out, uv_loop_t *loop, const char *url,
                         const hd_ws_client_config_t *cfg) {
  if (!out || !loop || !url || !cfg) return HD_EINVAL;
  hd_ws_client_t *c = calloc(1, sizeof *c);
  if (!c) return HD_ENOMEM;
  c->loop = loop;
  c->cfg = *cfg;
  if (!c->cfg.connect_timeout_ms) c->cfg.connect_timeout_ms = HD_WS_CLIENT_DEFAULT_CONNECT_TIMEOUT_MS;
  if (!c->cfg.max_message) c->cfg.max_message = HD_WS_CLIENT_DEFAULT_MAX_MESSAGE;
  if (!c->cfg.out_max_bytes) c->cfg.out_max_bytes = HD_WS_CLIENT_DEFAULT_OUT_MAX_BYTES;
  struct sockaddr_storage ss;
  int rc = parse_url(c, url, &ss);
  if (rc == 0 && c->tls) rc = tls_setup(c);
  if (rc < 0) {
    free_client(c);
    return rc;
  }
  if (uv_tcp_init(loop, &c->tcp) < 0) {
    free(c);
    return HD_EIO;
  }
  c->handles_open = 1;
  c->tcp.data = c;
  uv_timer_init(loop, &c->timer);
  c->handles_open = 2;
  c->timer.data = c;
  c->conn.data = c;
  uv_tcp_nodelay(&c->tcp, 1);
  if (uv_tcp_connect(&c->conn, &c->tcp, (struct sockaddr *)&ss, on_connect) < 0) {
    c->freed = 1;
    close_handles(c);
    return HD_EIO;
  }
  uv_timer_start(&c->timer, on_timer, c->cfg.connect_timeout_ms, 0);
  *out = c;
  return 0;
}
