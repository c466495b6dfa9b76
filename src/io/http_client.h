/* Minimal HTTP/1.1 client on libuv TCP, for webhooks: one request per
 * connection ("Connection: close"), a request with headers and a body, and the
 * response's status line and headers (RFC 9112 §4, §5). The response body is
 * not read: the connection is closed once the header block has arrived.
 * Plain http:// only — no TLS: an https receiver needs a TLS-terminating proxy
 * in front of it for now. Hosts: IPv4 literal, [IPv6] literal or a name
 * (resolved with uv_getaddrinfo, addresses tried in order). Every buffer has a
 * cap; a connect timeout (DNS + TCP) and an overall timeout bound each request. */
#ifndef HD_IO_HTTP_CLIENT_H
#define HD_IO_HTTP_CLIENT_H
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define HD_HTTPC_HOST_MAX 256
#define HD_HTTPC_PATH_MAX 1024
#define HD_HTTPC_MAX_REQ_HEADERS 16
#define HD_HTTPC_REQ_MAX (1 << 20)   /* whole request (head + body) */
#define HD_HTTPC_RESP_HEAD_MAX 8192  /* response status line + headers */
#define HD_HTTPC_MAX_RESP_HEADERS 32 /* more are parsed for syntax but not kept */

/* A parsed http:// URL. */
typedef struct {
  char host[HD_HTTPC_HOST_MAX]; /* without brackets for IPv6 */
  int port;                     /* default 80 */
  char path[HD_HTTPC_PATH_MAX]; /* "/..." including any query; "/" if empty */
  int ipv6_literal;
} hd_http_url_t;

/* Parses "http://host[:port][/path]"; HD_EUNSUPPORTED for https:// or another
 * scheme, HD_EINVAL for anything malformed or over a cap (userinfo refused). */
int hd_http_url_parse(const char *url, hd_http_url_t *out);

typedef struct {
  const char *method; /* e.g. "POST" */
  const char *url;    /* http:// URL */
  int n_headers;      /* extra headers; Host, Content-Length, Connection are added */
  const char *const *header_names;
  const char *const *header_values;
  const char *body;
  size_t body_len;
  uint64_t connect_timeout_ms; /* name resolution + TCP connect; 0 = 5000 */
  uint64_t timeout_ms;         /* whole request; 0 = 10000 */
} hd_http_client_req_t;

typedef struct {
  int err;    /* 0 = a response arrived; else HD_ETIMEDOUT, HD_EIO (connect/read/write
               * failed, e.g. refused), HD_ENOTFOUND (name did not resolve),
               * HD_EPROTO (not an HTTP/1.x response or over a cap) */
  int uv_err; /* the libuv error behind HD_EIO/HD_ENOTFOUND, for logs; else 0 */
  int status; /* 100..599 when err == 0 (interim 1xx responses are skipped) */
  char reason[64];
  int n_headers;
  /* lent for the callback only; values trimmed */
  const char *header_names[HD_HTTPC_MAX_RESP_HEADERS];
  const char *header_values[HD_HTTPC_MAX_RESP_HEADERS];
} hd_http_client_result_t;

typedef void (*hd_http_client_cb)(void *ud, const hd_http_client_result_t *res);

typedef struct hd_http_client hd_http_client_t;

/* Starts a request on loop. Everything in req is copied. On success *out (may
 * be NULL if unwanted) is the handle and cb is called exactly once, later, from
 * the loop — unless hd_http_client_cancel is called first. On failure (bad URL
 * HD_EINVAL/HD_EUNSUPPORTED, header with CR/LF HD_EINVAL, over HD_HTTPC_REQ_MAX
 * HD_ENOSPC, HD_ENOMEM) cb is never called. */
int hd_http_client_request(hd_http_client_t **out, uv_loop_t *loop, const hd_http_client_req_t *req,
                           hd_http_client_cb cb, void *ud);

/* Aborts a request whose callback has not run yet: the callback will not run;
 * the handle frees itself once libuv has closed it. */
void hd_http_client_cancel(hd_http_client_t *c);

/* Parses the response header block at the start of buf[0..len) (status line
 * and header fields, RFC 9112 §4, §5), NUL-terminating inside buf, which must
 * stay alive while out is used. Returns the bytes the block takes (> 0), 0 if
 * the block is not complete yet, HD_EPROTO if malformed (bad status line,
 * obs-fold, a header without ':'). Interim 1xx blocks are returned like any
 * other: the caller skips them. Sans-IO; used by the client and the fuzzer. */
int hd_http_response_head_parse(char *buf, size_t len, hd_http_client_result_t *out);

/* Case-insensitive lookup in a result's headers; NULL if absent. */
const char *hd_http_client_header(const hd_http_client_result_t *res, const char *name);

#endif
