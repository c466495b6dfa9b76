/* HTTP/1.1 server for the node's API (WHIP/WHEP, /healthz, /metrics) and the
 * static web app, on libwebsockets driven by our libuv loop. Requests are handed
 * whole (headers + capped body) to one synchronous handler; the handler fills a
 * response. Static files under web_root are served for GET paths the handler
 * declines (status 0). */
#ifndef HD_IO_HTTP_H
#define HD_IO_HTTP_H
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct {
  const char *method; /* "GET", "POST", "DELETE", "OPTIONS", "PATCH", "PUT", "HEAD" */
  const char *path;   /* URL path without query */
  const char *query;  /* raw query string, may be "" */
  const char *authorization;
  const char *origin;
  const char *content_type;
  const char *if_match;
  const char *body;
  size_t body_len;
} hd_http_req_t;

#define HD_HTTP_MAX_HEADERS 8
typedef struct {
  int status; /* 0 = not handled (static file lookup for GET) */
  char content_type[96];
  int n_headers;
  char header_names[HD_HTTP_MAX_HEADERS][48];
  char header_values[HD_HTTP_MAX_HEADERS][320];
  char *body; /* malloc'd by the handler, freed by the server */
  size_t body_len;
} hd_http_resp_t;

typedef void (*hd_http_handler_fn)(void *ud, const hd_http_req_t *req, hd_http_resp_t *resp);

typedef struct hd_http_server hd_http_server_t;

/* Connection limits (docs/operations.md, "HTTP limits"): defaults for 0. */
#define HD_HTTP_DEFAULT_MAX_CONNS 10000       /* lowered to fit RLIMIT_NOFILE minus headroom */
#define HD_HTTP_DEFAULT_MAX_CONNS_PER_IP 2048 /* clients behind one NAT or proxy share an IP */
#define HD_HTTP_DEFAULT_HEADER_TIMEOUT_MS 10000
#define HD_HTTP_DEFAULT_BODY_TIMEOUT_MS 30000
#define HD_HTTP_FD_HEADROOM 256 /* descriptors kept for UDP, SQLite, webhooks, logs */

typedef struct {
  const char *host; /* listen address, e.g. "127.0.0.1" */
  int port;
  const char *web_root; /* directory of static files, may be NULL */
  size_t body_cap;      /* requests with larger bodies get 413 */
  hd_http_handler_fn handler;
  void *ud;
  /* Every connection (HTTP and WebSocket) counts against both caps from accept
   * to close; over a cap the connection gets "503" and is closed at once. 0 =
   * default; max_conns is also lowered to RLIMIT_NOFILE - HD_HTTP_FD_HEADROOM. */
  size_t max_conns;
  size_t max_conns_per_ip;
  int header_timeout_ms; /* request head complete within this, else 408 + close */
  int body_timeout_ms;   /* whole request body within this, else 408 + close */
  /* TLS (HTTPS/WSS on the same port): PEM certificate chain and key, as files or
   * in memory (cert_pem/key_pem, e.g. a generated self-signed pair); NULL = plain. */
  const char *tls_cert_file, *tls_key_file;
  const char *tls_cert_pem, *tls_key_pem;
} hd_http_config_t;

int hd_http_server_start(hd_http_server_t **out, uv_loop_t *loop, const hd_http_config_t *cfg);
void hd_http_server_stop(hd_http_server_t *s);

/* A self-signed certificate for development over TLS (ECDSA P-256, 30 days,
 * subjectAltName localhost, 127.0.0.1, ::1, host and every local IPv4 address),
 * as malloc'd PEM strings; fp gets its SHA-256 fingerprint "AB:CD:...".
 * Returns 0, HD_ECRYPTO or HD_ENOMEM. */
int hd_http_tls_self_signed(const char *host, char **cert_pem, char **key_pem, char fp[96]);

/* Connection gate counters (for /metrics and tests). */
typedef struct {
  size_t open; /* connections counted now (pending head + in lws) */
  size_t max_conns, max_conns_per_ip;
  uint64_t accepted;    /* handed to libwebsockets */
  uint64_t refused_cap; /* over max_conns */
  uint64_t refused_ip;  /* over max_conns_per_ip */
  uint64_t refused_fd;  /* accept failed: out of descriptors (EMFILE/ENFILE) */
  uint64_t bad_request; /* head refused by http_head (400/405/501/505/431) */
  uint64_t timed_out;   /* head not complete within header_timeout_ms */
} hd_http_gate_stats_t;
void hd_http_gate_stats(const hd_http_server_t *s, hd_http_gate_stats_t *out);
/* Appends the gate's Prometheus text to buf; returns bytes written (or < 0). */
int hd_http_metrics_text(const hd_http_server_t *s, char *buf, size_t cap);

/* Helpers for handlers. */
void hd_http_resp_header(hd_http_resp_t *r, const char *name, const char *value);
/* Sets status and a copy of a text body (content type text/plain unless set). */
void hd_http_resp_text(hd_http_resp_t *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void hd_http_resp_body(hd_http_resp_t *r, int status, const char *content_type, const char *body, size_t len);

#endif
