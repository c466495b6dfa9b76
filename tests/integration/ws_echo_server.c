/* Test server for the WebSocket endpoint API (io/ws.h), driven by
 * tests/integration/test_ws.py. Endpoints on one listener:
 *   /echo   echoes every message; ?reject=1 is refused with 403, ?auth=1 needs
 *           "Authorization: Bearer good" (401 otherwise). Default caps (64 KiB).
 *   /bcast  every message goes to every /bcast connection (the sender too).
 *   /flood  after the message "go", the server sends 16 KiB messages every
 *           millisecond until hd_ws_send refuses: the outbound cap (256 KiB)
 *           must close a client that stopped reading.
 *   /idle   echo with idle timeout 600 ms and server pings every 150 ms.
 * HTTP: GET /stats gives "<path> <field> <value>" lines (path "all" = summed),
 * GET /metrics the Prometheus text. Prints "ready" once listening; SIGTERM or
 * SIGINT stops it through hd_http_server_stop and exits 0.
 * usage: ws_echo_server PORT */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/err.h"
#include "io/http.h"
#include "io/ws.h"

typedef struct member {
  struct member *prev, *next;
  hd_ws_conn_t *c;
  int flooding;
} member_t;

typedef struct {
  uv_loop_t *loop;
  hd_http_server_t *http;
  member_t *bcast, *flood; /* members of /bcast and /flood */
  uv_timer_t flood_timer;
  uv_signal_t sigint, sigterm;
  int opens, closes;
} app_t;

static app_t app;

static void list_add(member_t **head, member_t *m) {
  m->prev = NULL;
  m->next = *head;
  if (*head) (*head)->prev = m;
  *head = m;
}

static void list_del(member_t **head, member_t *m) {
  if (m->prev)
    m->prev->next = m->next;
  else
    *head = m->next;
  if (m->next) m->next->prev = m->prev;
}

static int has_param(const char *query, const char *kv) {
  size_t n = strlen(kv);
  for (const char *p = query; (p = strstr(p, kv)); p += n)
    if ((p == query || p[-1] == '&') && (p[n] == 0 || p[n] == '&')) return 1;
  return 0;
}

static void echo_open(void *ud, hd_ws_conn_t *c, const hd_ws_req_t *req, hd_http_resp_t *reject) {
  if (has_param(req->query, "reject=1")) {
    hd_http_resp_text(reject, 403, "rejected by test (origin '%s')\n", req->origin);
    return;
  }
  if (has_param(req->query, "auth=1") && strcmp(req->authorization, "Bearer good")) {
    hd_http_resp_header(reject, "WWW-Authenticate", "Bearer realm=\"test\"");
    hd_http_resp_text(reject, 401, "missing or bad token\n");
    return;
  }
  app.opens++;
}

static void echo_message(void *ud, hd_ws_conn_t *c, const char *text, size_t len) {
  if (text[len] != 0) abort(); /* promised NUL termination */
  hd_ws_send(c, text, len);
}

static void count_close(void *ud, hd_ws_conn_t *c, int code) { app.closes++; }

static void member_open(void *ud, hd_ws_conn_t *c, const hd_ws_req_t *req, hd_http_resp_t *reject) {
  member_t *m = calloc(1, sizeof *m);
  if (!m) {
    hd_http_resp_text(reject, 503, "out of memory\n");
    return;
  }
  m->c = c;
  list_add(ud == (void *)&app.bcast ? &app.bcast : &app.flood, m);
  hd_ws_set_user(c, m);
  app.opens++;
}

static void member_close(void *ud, hd_ws_conn_t *c, int code) {
  member_t *m = hd_ws_user(c);
  list_del(ud == (void *)&app.bcast ? &app.bcast : &app.flood, m);
  free(m);
  app.closes++;
}

static void bcast_message(void *ud, hd_ws_conn_t *c, const char *text, size_t len) {
  for (member_t *m = app.bcast; m; m = m->next)
    hd_ws_send(m->c, text, len);
}

static void flood_message(void *ud, hd_ws_conn_t *c, const char *text, size_t len) {
  member_t *m = hd_ws_user(c);
  if (!strcmp(text, "go")) m->flooding = 1;
}

static void flood_tick(uv_timer_t *t) {
  static char chunk[16 * 1024];
  if (!chunk[0]) memset(chunk, 'x', sizeof chunk);
  for (member_t *m = app.flood; m; m = m->next) {
    for (int i = 0; m->flooding && i < 8; i++)
      if (hd_ws_send(m->c, chunk, sizeof chunk) < 0) m->flooding = 0;
  }
}

static void print_stats(hd_http_resp_t *resp) {
  static const char *paths[] = {NULL, "/echo", "/bcast", "/flood", "/idle"};
  char *buf = malloc(8192);
  size_t n = 0;
  if (!buf) return;
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
    hd_ws_stats_t st;
    if (hd_ws_stats(app.http, paths[i], &st) < 0) continue;
    const char *p = paths[i] ? paths[i] : "all";
    n += (size_t)snprintf(buf + n, 8192 - n,
                          "%s open %llu\n%s accepted %llu\n%s rejected %llu\n%s msgs_in %llu\n"
                          "%s msgs_out %llu\n%s queued_bytes %llu\n%s queued_peak %llu\n",
                          p, (unsigned long long)st.open, p, (unsigned long long)st.accepted, p,
                          (unsigned long long)st.rejected, p, (unsigned long long)st.msgs_in, p,
                          (unsigned long long)st.msgs_out, p, (unsigned long long)st.queued_bytes, p,
                          (unsigned long long)st.queued_peak);
    for (int r = 0; r < HD_WS_CR_COUNT; r++)
      n += (size_t)snprintf(buf + n, 8192 - n, "%s close_%s %llu\n", p, hd_ws_close_reason_name(r),
                            (unsigned long long)st.closes[r]);
  }
  n += (size_t)snprintf(buf + n, 8192 - n, "app opens %d\napp closes %d\n", app.opens, app.closes);
  hd_http_resp_body(resp, 200, "text/plain", buf, n);
  free(buf);
}

static void handler(void *ud, const hd_http_req_t *req, hd_http_resp_t *resp) {
  if (!strcmp(req->path, "/stats")) {
    print_stats(resp);
  } else if (!strcmp(req->path, "/metrics")) {
    char buf[16384];
    int n = hd_ws_metrics_text(app.http, buf, sizeof buf);
    if (n < 0)
      hd_http_resp_text(resp, 500, "%s\n", hd_strerror(n));
    else
      hd_http_resp_body(resp, 200, "text/plain; version=0.0.4", buf, (size_t)n);
  }
}

static void on_signal(uv_signal_t *h, int sig) { uv_stop(app.loop); }

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: ws_echo_server PORT\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  app.loop = uv_default_loop();
  hd_http_config_t hc = {.host = "127.0.0.1", .port = atoi(argv[1]), .body_cap = 4096, .handler = handler};
  if (hd_http_server_start(&app.http, app.loop, &hc) < 0) return 3;

  hd_ws_endpoint_config_t echo = {
      .path = "/echo", .on_open = echo_open, .on_message = echo_message, .on_close = count_close};
  hd_ws_endpoint_config_t bcast = {.path = "/bcast",
                                   .on_open = member_open,
                                   .on_message = bcast_message,
                                   .on_close = member_close,
                                   .ud = &app.bcast};
  hd_ws_endpoint_config_t flood = {.path = "/flood",
                                   .on_open = member_open,
                                   .on_message = flood_message,
                                   .on_close = member_close,
                                   .ud = &app.flood,
                                   .out_max_bytes = 256 * 1024,
                                   .out_max_msgs = 4096};
  hd_ws_endpoint_config_t idle = {.path = "/idle",
                                  .on_open = echo_open,
                                  .on_message = echo_message,
                                  .on_close = count_close,
                                  .idle_timeout_ms = 600,
                                  .ping_interval_ms = 150};
  int bad = 0;
  bad |= hd_ws_endpoint_add(app.http, &echo) != 0;
  bad |= hd_ws_endpoint_add(app.http, &bcast) != 0;
  bad |= hd_ws_endpoint_add(app.http, &flood) != 0;
  bad |= hd_ws_endpoint_add(app.http, &idle) != 0;
  /* API misuse is refused */
  bad |= hd_ws_endpoint_add(app.http, &echo) != HD_ESTATE;
  hd_ws_endpoint_config_t nopath = {.path = "echo"};
  bad |= hd_ws_endpoint_add(app.http, &nopath) != HD_EINVAL;
  if (bad) {
    fprintf(stderr, "ws_echo_server: endpoint registration misbehaved\n");
    return 4;
  }

  uv_timer_init(app.loop, &app.flood_timer);
  uv_timer_start(&app.flood_timer, flood_tick, 1, 1);
  uv_signal_init(app.loop, &app.sigint);
  uv_signal_init(app.loop, &app.sigterm);
  uv_signal_start(&app.sigint, on_signal, SIGINT);
  uv_signal_start(&app.sigterm, on_signal, SIGTERM);
  printf("ready\n");
  fflush(stdout);
  uv_run(app.loop, UV_RUN_DEFAULT);

  hd_http_server_stop(app.http); /* closes every WebSocket: on_close for each */
  int left = app.bcast || app.flood || app.opens != app.closes;
  fprintf(stderr, "ws_echo_server: stopped (opens %d closes %d)\n", app.opens, app.closes);
  uv_timer_stop(&app.flood_timer);
  uv_close((uv_handle_t *)&app.flood_timer, NULL);
  uv_close((uv_handle_t *)&app.sigint, NULL);
  uv_close((uv_handle_t *)&app.sigterm, NULL);
  uv_run(app.loop, UV_RUN_DEFAULT);
  uv_loop_close(app.loop);
  if (left) {
    fprintf(stderr, "ws_echo_server: connections left open after stop\n");
    return 5;
  }
  return 0;
}
