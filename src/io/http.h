/* HTTP/1.1 server for the node's API (WHIP/WHEP, /healthz, /metrics) and the
 * static web app, on libwebsockets driven by our libuv loop. Requests are handed
 * whole (headers + capped body) to one synchronous handler; the handler fills a
 * response. Static files under web_root are served for GET paths the handler
 * declines (status 0). */
#ifndef HD_IO_HTTP_H
#define HD_IO_HTTP_H
#include <stddef.h>
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

typedef struct {
  const char *host; /* listen address, e.g. "127.0.0.1" */
  int port;
  const char *web_root; /* directory of static files, may be NULL */
  size_t body_cap;      /* requests with larger bodies get 413 */
  hd_http_handler_fn handler;
  void *ud;
} hd_http_config_t;

int hd_http_server_start(hd_http_server_t **out, uv_loop_t *loop, const hd_http_config_t *cfg);
void hd_http_server_stop(hd_http_server_t *s);

/* Helpers for handlers. */
void hd_http_resp_header(hd_http_resp_t *r, const char *name, const char *value);
/* Sets status and a copy of a text body (content type text/plain unless set). */
void hd_http_resp_text(hd_http_resp_t *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void hd_http_resp_body(hd_http_resp_t *r, int status, const char *content_type, const char *body, size_t len);

#endif
