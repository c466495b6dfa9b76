/* `hudong serve`: one node. The control loop (this thread) serves the HTTP API
 * (WHIP/WHEP, health, metrics, admin, dev token endpoint, static web app), the
 * /rtc and /rtm WebSockets and webhooks; the media plane runs on media workers
 * (io/media_workers.h), one thread and UDP port each, every room pinned to one
 * of them. */
#include <errno.h>
#include <jansson.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "base/err.h"
#include "base/log.h"
#include "cmd/cmd.h"
#include "cmd/config.h"
#include "cmd/serve_internal.h"
#include "cmd/serve_board.h"
#include "cmd/serve_quality.h"
#include "cmd/serve_cluster.h"
#include "io/http.h"
#include "io/media_workers.h"
#include "io/rtc_udp.h"
#include "io/webhook_sender.h"
#include "cmd/serve_egress.h"
#include "io/ws.h"
#include "proto/dtls.h"
#include "base/map.h"
#include "proto/token.h"
#include "rtm/broker.h"
#include "io/rtm_redis.h"
#include "sfu/node.h"
#include "sfu/signal.h"

static const char *secret_lookup(void *ud, const char *key) {
  return hd_config_secret(&((server_t *)ud)->cfg, key);
}

int serve_valid_room(const char *r, size_t n) {
  if (n == 0 || n > 64) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = r[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_' || c == '.'))
      return 0;
  }
  return 1;
}

/* 1 if the Content-Type header names media type `mt` (case-insensitive),
 * optionally followed by parameters: "application/sdp; charset=utf-8" matches,
 * "application/sdpx" does not (RFC 9110 §8.3). */
int serve_media_type_is(const char *ct, const char *mt) {
  while (*ct == ' ' || *ct == '\t')
    ct++;
  size_t n = strlen(mt);
  if (strncasecmp(ct, mt, n) != 0) return 0;
  return ct[n] == 0 || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t';
}

void serve_add_cors(server_t *s, const hd_http_req_t *req, hd_http_resp_t *resp) {
  if (!req->origin[0]) return;
  int ok = s->cfg.dev;
  for (int i = 0; !ok && i < s->cfg.n_origins; i++)
    ok = !strcmp(s->cfg.origins[i], req->origin);
  if (!ok) return;
  hd_http_resp_header(resp, "Access-Control-Allow-Origin",
                      s->cfg.dev && !s->cfg.n_origins ? "*" : req->origin);
  hd_http_resp_header(resp, "Access-Control-Expose-Headers",
                      "Location, Link, ETag, Accept-Patch, Retry-After");
  hd_http_resp_header(resp, "Vary", "Origin");
}

/* Verifies the bearer token for `room` with grant `needed`. On failure fills
 * resp (401 for a missing/invalid/expired token, 403 for a wrong room or
 * missing grant) and returns -1. */
int serve_authorize(server_t *s, const hd_http_req_t *req, const char *room, int needed,
                    hd_token_claims_t *claims, hd_http_resp_t *resp) {
  const char *tok;
  size_t tl;
  char why[256];
  if (!req->authorization[0]) {
    hd_http_resp_text(resp, 401, "missing Authorization: Bearer <token>\n");
    goto unauth;
  }
  if (hd_token_from_bearer(req->authorization, &tok, &tl) < 0) {
    hd_http_resp_text(resp, 401, "malformed Authorization header (want 'Bearer <token>')\n");
    goto unauth;
  }
  int rc = hd_token_verify(tok, tl, secret_lookup, s, (int64_t)time(NULL), s->cfg.token_leeway, claims, why,
                           sizeof why);
  if (rc < 0) {
    hd_http_resp_text(resp, 401, "invalid token: %s\n", why);
    goto unauth;
  }
  if (hd_token_authorize(claims, room, needed, why, sizeof why) < 0) {
    s->auth_failures++;
    hd_http_resp_text(resp, 403, "forbidden: %s\n", why);
    return -1;
  }
  return 0;
unauth:
  s->auth_failures++;
  hd_http_resp_header(resp, "WWW-Authenticate", "Bearer realm=\"hudong\"");
  return -1;
}

int serve_authorize_operator(server_t *s, const hd_http_req_t *req, const char *what,
                             hd_token_claims_t *claims, hd_http_resp_t *resp) {
  if (serve_authorize(s, req, NULL, HD_GRANT_ADMIN, claims, resp) < 0) return -1;
  if (!claims->room[0]) return 0;
  s->auth_failures++;
  hd_http_resp_text(resp, 403, "forbidden: %s an app-wide roomAdmin token (no room grant)\n", what);
  return -1;
}

int serve_authorize_room_query(server_t *s, const hd_http_req_t *req, char *room, size_t room_cap,
                               hd_token_claims_t *claims, hd_http_resp_t *resp) {
  room[0] = 0;
  for (const char *p = req->query; *p;) {
    const char *e = strchr(p, '&');
    size_t l = e ? (size_t)(e - p) : strlen(p);
    if (l > 5 && !strncmp(p, "room=", 5) && l - 5 < room_cap) {
      memcpy(room, p + 5, l - 5);
      room[l - 5] = 0;
    }
    p += l + (e ? 1 : 0);
  }
  if (!serve_valid_room(room, strlen(room))) {
    hd_http_resp_text(resp, 400, "query needs room=<name> (1-64 characters of A-Z a-z 0-9 - _ .)\n");
    return -1;
  }
  return serve_authorize(s, req, room, 0, claims, resp);
}

/* GET /api/dev-token?room=R&identity=U — only with --dev: mints a token with
 * publish+subscribe for the demo pages. */
static void handle_dev_token(server_t *s, const hd_http_req_t *req, hd_http_resp_t *resp) {
  if (!s->cfg.dev) {
    hd_http_resp_text(resp, 404, "the dev token endpoint is only served with --dev\n");
    return;
  }
  hd_token_claims_t c;
  memset(&c, 0, sizeof c);
  char q[512];
  snprintf(q, sizeof q, "%s", req->query);
  for (char *save = NULL, *kv = strtok_r(q, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
    if (!strncmp(kv, "room=", 5))
      snprintf(c.room, sizeof c.room, "%s", kv + 5);
    else if (!strncmp(kv, "identity=", 9))
      snprintf(c.identity, sizeof c.identity, "%s", kv + 9);
  }
  /* admin=1: an app-wide roomAdmin token for the quality dashboard (docs/quality.md) */
  int admin = strstr(req->query, "admin=1") != NULL;
  if (!admin && !serve_valid_room(c.room, strlen(c.room))) {
    hd_http_resp_text(resp, 400, "query needs room=<name> (or admin=1 for the dashboard)\n");
    return;
  }
  if (!c.identity[0]) snprintf(c.identity, sizeof c.identity, "dev-user");
  snprintf(c.key, sizeof c.key, "%s", s->cfg.apps[0].key);
  c.room_join = c.can_publish = c.can_subscribe = c.can_publish_data = 1;
  c.rtm = 1; /* the demo app's chat and presence use /rtm (docs/rtm.md) with the same token */
  if (admin) {
    c.room[0] = 0;
    c.room_join = c.can_publish = c.can_subscribe = c.can_publish_data = c.rtm = 0;
    c.room_admin = 1;
  }
  c.iat = c.nbf = (int64_t)time(NULL);
  c.exp = c.iat + 6 * 3600;
  char tok[HD_TOKEN_MAX];
  if (hd_token_mint(&c, s->cfg.apps[0].secret, tok, sizeof tok) < 0) {
    hd_http_resp_text(resp, 500, "token mint failed\n");
    return;
  }
  char body[HD_TOKEN_MAX + 64];
  int n = snprintf(body, sizeof body, "{\"token\":\"%s\"}", tok);
  serve_add_cors(s, req, resp);
  hd_http_resp_body(resp, 200, "application/json", body, (size_t)n);
}

/* GET /api/route?room=R[&region=X][&labels=k=v][&rtt=node:ms,...]: the node a
 * client should use for room R (docs/overlay.md "Routing"); any valid token
 * for the room. */
static void handle_route(server_t *s, const hd_http_req_t *req, hd_http_resp_t *resp) {
  serve_add_cors(s, req, resp);
  if (!strcmp(req->method, "OPTIONS")) { /* CORS preflight: the request carries Authorization */
    resp->status = 204;
    if (req->origin[0] && resp->n_headers) {
      hd_http_resp_header(resp, "Access-Control-Allow-Methods", "GET, OPTIONS");
      hd_http_resp_header(resp, "Access-Control-Allow-Headers", "Authorization");
      hd_http_resp_header(resp, "Access-Control-Max-Age", "600");
    }
    hd_http_resp_header(resp, "Allow", "GET, OPTIONS");
    return;
  }
  if (strcmp(req->method, "GET")) {
    hd_http_resp_header(resp, "Allow", "GET");
    hd_http_resp_text(resp, 405, "use GET /api/route?room=<name>\n");
    return;
  }
  char room[80];
  hd_token_claims_t claims;
  if (serve_authorize_room_query(s, req, room, sizeof room, &claims, resp) < 0) return;
  hd_serve_cluster_route(s->cluster, claims.key, room, req->query, resp);
}

/* ---- webhooks: node lifecycle events to the configured URLs ---- */
static void emit_event(void *ud, const hd_webhook_event_t *ev) {
  server_t *s = ud;
  if (s->webhooks) hd_webhook_sender_push(s->webhooks, ev);
  if (s->quality) hd_serve_quality_event(s->quality, ev);
}

static void on_node_event(void *ud, const hd_webhook_event_t *ev) {
  server_t *s = ud;
  /* in a cluster, room_started / room_finished once for all nodes */
  if (hd_serve_cluster_event(s->cluster, ev, emit_event, s)) return;
  emit_event(s, ev);
}

/* ---- /rtc: room signaling over WebSocket (docs/protocol.md "Rooms") ---- */

/* A connection is pinned to the worker of the room it joins; its hd_ws user
 * value is that worker's index + 1 (0 = not routed yet). The worker keeps the
 * participant; this side only knows connection ids. */

static void signal_send(void *ud, uint64_t conn, const char *text, size_t len) {
  server_t *s = ud;
  hd_ws_conn_t *c = hd_map_get(&s->rtc_conns, &conn, sizeof conn);
  if (c && hd_ws_send(c, text, len) < 0)
    HD_LOGW("rtc", "signaling message dropped (connection closing or full)");
  if (c && s->quality) hd_serve_quality_rtc_sent(s->quality, conn, text, len);
}

/* The node removed the connection's participant: close the socket. */
static void signal_close(void *ud, uint64_t conn, int code, const char *reason) {
  server_t *s = ud;
  hd_ws_conn_t *c = hd_map_get(&s->rtc_conns, &conn, sizeof conn);
  if (c) hd_ws_close(c, code, reason);
}

/* The worker for a connection's first message: the room named by its join
 * token (verified again, with the reply, by the worker), else worker 0, which
 * refuses it with the right error. */
static int join_worker(server_t *s, const char *text, size_t len) {
  hd_signal_msg_t m;
  hd_signal_error_t e;
  int w = 0;
  if (hd_signal_parse(text, len, HD_SIGNAL_FROM_CLIENT, &m, &e) < 0) return 0;
  hd_token_claims_t c;
  char why[128];
  if (m.type == HD_SIGNAL_JOIN && m.join.token &&
      hd_token_verify(m.join.token, strlen(m.join.token), secret_lookup, s, (int64_t)time(NULL),
                      s->cfg.token_leeway, &c, why, sizeof why) == 0 &&
      c.room[0])
    w = serve_room_worker(s, c.key, c.room);
  hd_signal_msg_free(&m);
  return w;
}

/* A draining node answers a connection's first message with 503
 * node_draining naming the node to go to instead (the one /api/route would
 * pick for the token's room), and closes it (docs/protocol.md "Error codes"). */
static void drain_refuse(server_t *s, hd_ws_conn_t *c, const char *text, size_t len) {
  hd_signal_msg_t m;
  hd_signal_error_t e;
  hd_token_claims_t cl = {0};
  char why[128], id[80] = "", out[1024];
  int have_id = 0;
  if (hd_signal_parse(text, len, HD_SIGNAL_FROM_CLIENT, &m, &e) == 0) {
    if (m.id) {
      snprintf(id, sizeof id, "%s", m.id);
      have_id = 1;
    }
    if (m.type == HD_SIGNAL_JOIN && m.join.token &&
        hd_token_verify(m.join.token, strlen(m.join.token), secret_lookup, s, (int64_t)time(NULL),
                        s->cfg.token_leeway, &cl, why, sizeof why) < 0)
      memset(&cl, 0, sizeof cl);
    hd_signal_msg_free(&m);
  }
  int n = hd_serve_cluster_drain_error(s->cluster, have_id ? id : NULL, cl.key, cl.room, out, sizeof out);
  if (n > 0) hd_ws_send(c, out, (size_t)n);
  hd_ws_close(c, HD_WS_CLOSE_TRY_LATER, "node draining");
}

static void rtc_open(void *ud, hd_ws_conn_t *c, const hd_ws_req_t *req, hd_http_resp_t *reject) {
  server_t *s = ud;
  if (req->origin && req->origin[0] && !s->cfg.dev) {
    int ok = 0;
    for (int i = 0; i < s->cfg.n_origins; i++)
      ok |= !strcmp(s->cfg.origins[i], req->origin);
    /* same-origin pages (the demo app served by this node) are always fine */
    char self[160];
    const char *scheme = s->cfg.tls_cert[0] || s->cfg.tls_dev ? "https" : "http";
    snprintf(self, sizeof self, "%s://%s:%d", scheme, s->cfg.listen_host, s->cfg.listen_port);
    if (!ok && strcmp(req->origin, self) && req->host) {
      char hostself[300];
      snprintf(hostself, sizeof hostself, "%s://%s", scheme, req->host);
      ok = !strcmp(req->origin, hostself);
    }
    if (!ok && strcmp(req->origin, self))
      hd_http_resp_text(reject, 403, "origin %s is not allowed\n", req->origin);
  }
}

static void rtc_ws_open(void *ud, hd_ws_conn_t *c, const hd_ws_req_t *req, hd_http_resp_t *reject) {
  server_t *s = ud;
  rtc_open(ud, c, req, reject);
  if (reject->status) return;
  uint64_t id = hd_ws_id(c);
  if (hd_map_put(&s->rtc_conns, &id, sizeof id, c) < 0) {
    hd_http_resp_text(reject, 503, "too many connections\n");
    char ra[16];
    snprintf(ra, sizeof ra, "%d", HD_NODE_RETRY_AFTER_S);
    hd_http_resp_header(reject, "Retry-After", ra);
  }
}

static void rtc_message(void *ud, hd_ws_conn_t *c, const char *text, size_t len) {
  server_t *s = ud;
  char qreply[512];
  size_t qlen;
  /* quality_report / quality_join are the quality pipeline's (docs/quality.md), not the node's */
  if (s->quality &&
      hd_serve_quality_rtc_message(s->quality, hd_ws_id(c), text, len, qreply, sizeof qreply, &qlen)) {
    if (qlen) hd_ws_send(c, qreply, qlen);
    return;
  }
  int w = (int)(intptr_t)hd_ws_user(c) - 1;
  if (w < 0 && s->draining) {
    drain_refuse(s, c, text, len);
    return;
  }
  if (w < 0) {
    w = join_worker(s, text, len);
    hd_ws_set_user(c, (void *)(intptr_t)(w + 1));
  }
  /* posted, not waited for: the worker answers (and closes a refused
   * connection) through its outbox, so a busy worker never stalls this loop */
  if (hd_media_workers_rtc_post(s->workers, w, hd_ws_id(c), text, len, secret_lookup, s,
                                (int64_t)time(NULL)) < 0)
    hd_ws_close(c, HD_WS_CLOSE_INTERNAL, "internal error");
}

static void rtc_close(void *ud, hd_ws_conn_t *c, int code) {
  server_t *s = ud;
  uint64_t id = hd_ws_id(c);
  int w = (int)(intptr_t)hd_ws_user(c) - 1;
  hd_ws_set_user(c, NULL);
  hd_map_del(&s->rtc_conns, &id, sizeof id);
  if (s->quality) hd_serve_quality_rtc_closed(s->quality, id);
  if (w >= 0) hd_media_workers_rtc_post_closed(s->workers, w, id);
}

/* Webhook delivery counters (sfu/webhook.h hd_webhook_stats_t); all 0 when no
 * receiver is configured, so dashboards need no special case. */
static int webhook_metrics(server_t *s, char *out, size_t cap) {
  hd_webhook_stats_t st;
  memset(&st, 0, sizeof st);
  if (s->webhooks) hd_webhook_stats(hd_webhook_sender_core(s->webhooks), &st);
  int n = snprintf(
      out, cap,
      "# HELP hudong_webhook_events_total Events accepted for delivery (one per event, any number of "
      "receivers).\n"
      "# TYPE hudong_webhook_events_total counter\nhudong_webhook_events_total %llu\n"
      "# HELP hudong_webhook_queued Deliveries waiting or in flight, over all receivers.\n"
      "# TYPE hudong_webhook_queued gauge\nhudong_webhook_queued %llu\n"
      "# HELP hudong_webhook_attempts_total HTTP requests made to webhook receivers.\n"
      "# TYPE hudong_webhook_attempts_total counter\nhudong_webhook_attempts_total %llu\n"
      "# HELP hudong_webhook_deliveries_total Deliveries by outcome: delivered (2xx), failed (given up), "
      "dropped (receiver queue full).\n"
      "# TYPE hudong_webhook_deliveries_total counter\n"
      "hudong_webhook_deliveries_total{outcome=\"delivered\"} %llu\n"
      "hudong_webhook_deliveries_total{outcome=\"failed\"} %llu\n"
      "hudong_webhook_deliveries_total{outcome=\"dropped\"} %llu\n"
      "# HELP hudong_webhook_attempt_failures_total Attempts that failed (error status or transport error).\n"
      "# TYPE hudong_webhook_attempt_failures_total counter\nhudong_webhook_attempt_failures_total %llu\n"
      "# HELP hudong_webhook_retries_total Failed attempts followed by a retry.\n"
      "# TYPE hudong_webhook_retries_total counter\nhudong_webhook_retries_total %llu\n",
      (unsigned long long)st.pushed, (unsigned long long)st.queued, (unsigned long long)st.attempts,
      (unsigned long long)st.delivered, (unsigned long long)st.failed, (unsigned long long)st.dropped,
      (unsigned long long)st.attempt_failures, (unsigned long long)st.retries);
  return n > 0 && (size_t)n < cap ? n : 0;
}

/* The Prometheus text of /metrics into buf. HD_ENOSPC when it does not fit
 * in cap (the caller renders again into a larger buffer). */
#define METRICS_MAX (4 << 20)
/* Adds a section's result to *n: HD_ENOSPC when it did not fit (or filled the
 * buffer to the last byte, which a truncating writer also does); a section
 * that fails otherwise is left out, as before. */
static int metrics_add(int w, int *n, size_t cap) {
  if (w == HD_ENOSPC || (w > 0 && (size_t)*n + (size_t)w + 1 >= cap)) return HD_ENOSPC;
  if (w > 0) *n += w;
  return 0;
}

static int metrics_render(server_t *s, char *buf, size_t cap) {
  int n = hd_media_workers_metrics_text(s->workers, buf, cap);
  if (n < 0) return n;
  int m = snprintf(buf + n, cap - (size_t)n,
                   "# HELP hudong_http_requests_total HTTP requests routed to the API handler.\n"
                   "# TYPE hudong_http_requests_total counter\nhudong_http_requests_total %llu\n"
                   "# HELP hudong_http_errors_total API requests answered with a status >= 400.\n"
                   "# TYPE hudong_http_errors_total counter\nhudong_http_errors_total %llu\n"
                   "# HELP hudong_auth_failures_total Requests refused for a bad token or grant.\n"
                   "# TYPE hudong_auth_failures_total counter\nhudong_auth_failures_total %llu\n",
                   (unsigned long long)s->http_requests, (unsigned long long)s->http_errors,
                   (unsigned long long)s->auth_failures);
  if (m < 0 || metrics_add(m, &n, cap)) return HD_ENOSPC;
  if (metrics_add(hd_ws_metrics_text(s->http, buf + n, cap - (size_t)n), &n, cap)) return HD_ENOSPC;
  if (metrics_add(hd_http_metrics_text(s->http, buf + n, cap - (size_t)n), &n, cap)) return HD_ENOSPC;
  if (metrics_add(webhook_metrics(s, buf + n, cap - (size_t)n), &n, cap)) return HD_ENOSPC;
  if (metrics_add(hd_rtm_metrics_text(s->rtm, buf + n, cap - (size_t)n), &n, cap)) return HD_ENOSPC;
  if (s->rtm_redis && metrics_add(hd_rtm_redis_metrics_text(s->rtm_redis, buf + n, cap - (size_t)n), &n, cap))
    return HD_ENOSPC;
  if (s->quality && metrics_add(hd_serve_quality_metrics(s->quality, buf + n, cap - (size_t)n), &n, cap))
    return HD_ENOSPC;
  if (metrics_add(hd_serve_cluster_metrics_text(s->cluster, buf + n, cap - (size_t)n), &n, cap))
    return HD_ENOSPC;
  if (metrics_add(hd_serve_cluster_links_metrics(s->cluster, buf + n, cap - (size_t)n), &n, cap))
    return HD_ENOSPC;
  if (metrics_add(hd_serve_egress_metrics(s->egress, buf + n, cap - (size_t)n), &n, cap)) return HD_ENOSPC;
  if (metrics_add(hd_serve_board_metrics(s->board, buf + n, cap - (size_t)n), &n, cap)) return HD_ENOSPC;
  return n;
}

/* ---- /rtm: real-time messaging (docs/rtm.md) ----
 * A separate endpoint from /rtc: an RTM session lives without a room and
 * survives reconnects (resume), a room participant does not. */

static void rtm_arm(server_t *s);

static void rtm_send(void *ud, uint64_t conn, const char *text, size_t len) {
  server_t *s = ud;
  hd_ws_conn_t *c = hd_map_get(&s->rtm_conns, &conn, sizeof conn);
  /* a full queue closes the connection (1008); the session waits for a resume */
  if (c) hd_ws_send(c, text, len);
}

static void rtm_close_cb(void *ud, uint64_t conn, int code, const char *reason) {
  server_t *s = ud;
  hd_ws_conn_t *c = hd_map_get(&s->rtm_conns, &conn, sizeof conn);
  if (c) hd_ws_close(c, code, reason);
}

static void rtm_on_timer(uv_timer_t *t) {
  server_t *s = t->data;
  hd_rtm_tick(s->rtm, hd_io_now(s->loop));
  rtm_arm(s);
}

static void rtm_arm(server_t *s) {
  hd_time_t next = hd_rtm_next_timeout(s->rtm);
  if (next == HD_TIME_NEVER) {
    uv_timer_stop(&s->rtm_timer);
    return;
  }
  hd_time_t now = hd_io_now(s->loop);
  uint64_t ms = next > now ? (uint64_t)((next - now) / 1000 + 1) : 0;
  uv_timer_start(&s->rtm_timer, rtm_on_timer, ms, 0);
}

static void rtm_ws_open(void *ud, hd_ws_conn_t *c, const hd_ws_req_t *req, hd_http_resp_t *reject) {
  server_t *s = ud;
  rtc_open(ud, c, req, reject); /* the same Origin policy as /rtc */
  if (reject->status) return;
  uint64_t id = hd_ws_id(c);
  if (hd_map_put(&s->rtm_conns, &id, sizeof id, c) < 0 ||
      hd_rtm_conn_open(s->rtm, id, hd_io_now(s->loop)) < 0) {
    hd_map_del(&s->rtm_conns, &id, sizeof id);
    hd_http_resp_text(reject, 503, "too many connections\n");
  }
}

static void rtm_turn_end(void *ud) {
  server_t *s = ud;
  hd_rtm_turn_end(s->rtm);
  rtm_arm(s);
}

static void rtm_ws_message(void *ud, hd_ws_conn_t *c, const char *text, size_t len) {
  server_t *s = ud;
  hd_rtm_conn_message(s->rtm, hd_ws_id(c), text, len, hd_io_now(s->loop));
  /* stored publishes held for one commit at the end of the turn (docs/rtm.md "Storage") */
  if (hd_rtm_pending(s->rtm)) hd_ws_at_turn_end(c, rtm_turn_end, s);
  rtm_arm(s);
}

static void rtm_ws_close(void *ud, hd_ws_conn_t *c, int code) {
  server_t *s = ud;
  uint64_t id = hd_ws_id(c);
  hd_map_del(&s->rtm_conns, &id, sizeof id);
  hd_rtm_conn_closed(s->rtm, id, hd_io_now(s->loop));
  rtm_arm(s);
}

static void handle_drain(server_t *s, const hd_http_req_t *req, hd_http_resp_t *resp);

/* /api/board...: the room's whiteboards (docs/whiteboard.md "HTTP API"); any
 * token valid for ?room=R (uploads need canPublishData); images by hash need none. */
static void handle_board(server_t *s, const hd_http_req_t *req, hd_http_resp_t *resp) {
  serve_add_cors(s, req, resp);
  if (!strcmp(req->method, "OPTIONS")) {
    resp->status = 204;
    if (req->origin[0] && resp->n_headers) {
      hd_http_resp_header(resp, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      hd_http_resp_header(resp, "Access-Control-Allow-Headers", "Authorization, Content-Type");
    }
    return;
  }
  if (hd_serve_board_image_get(s->board, req, resp)) return;
  char room[80];
  hd_token_claims_t claims;
  if (serve_authorize_room_query(s, req, room, sizeof room, &claims, resp) < 0) return;
  hd_serve_board_http(s->board, &claims, room, req, resp);
}

static void handler(void *ud, const hd_http_req_t *req, hd_http_resp_t *resp) {
  server_t *s = ud;
  s->http_requests++;
  if (!strncmp(req->path, "/whip/", 6))
    serve_handle_wish(s, req, resp, HD_SESSION_PUBLISH, req->path + 6);
  else if (!strncmp(req->path, "/whep/", 6))
    serve_handle_wish(s, req, resp, HD_SESSION_PLAY, req->path + 6);
  else if (!strcmp(req->path, "/healthz"))
    hd_http_resp_text(resp, 200, "ok\n");
  else if (!strcmp(req->path, "/api/ping")) {
    /* for clients measuring their RTT to candidate nodes (docs/overlay.md
     * "Routing"): tiny, uncached, readable from any origin, no token */
    hd_http_resp_header(resp, "Access-Control-Allow-Origin", "*");
    hd_http_resp_header(resp, "Cache-Control", "no-store");
    hd_http_resp_text(resp, 200, "pong\n");
  } else if (!strcmp(req->path, "/metrics")) {
    /* The text grows with workers, links and features: start at 16 KiB and
     * render again into a buffer twice as large while a section does not fit
     * (a node's text is ~24 KiB today, so every scrape in the tests takes the
     * retry path). */
    int n = HD_ENOSPC;
    char *buf = NULL;
    for (size_t cap = 16384; n == HD_ENOSPC && cap <= METRICS_MAX; cap *= 2) {
      free(buf);
      buf = malloc(cap);
      n = buf ? metrics_render(s, buf, cap) : HD_ENOMEM;
    }
    if (n < 0) {
      hd_http_resp_text(resp, 500, "metrics: %s (the text exceeds %d bytes: report this as a bug)\n",
                        hd_strerror(n), METRICS_MAX);
      free(buf);
      return;
    }
    hd_http_resp_body(resp, 200, "text/plain; version=0.0.4", buf, (size_t)n);
    free(buf);
  } else if (!strncmp(req->path, "/admin/rooms/", 13) && strstr(req->path, "/mute") &&
             !strcmp(req->method, "POST"))
    serve_handle_admin_mute(s, req, resp);
  else if (!strncmp(req->path, "/admin/quality/", 15))
    serve_handle_admin_quality(s, req, resp);
  else if (!strcmp(req->path, "/admin/drain"))
    handle_drain(s, req, resp);
  else if (!strcmp(req->path, "/admin/cluster/links"))
    serve_handle_cluster_links(s, req, resp);
  else if (!strncmp(req->path, "/api/rtmp/", 10))
    hd_serve_egress_rtmp_http(s->egress, req, resp);
  else if ((!strncmp(req->path, "/admin/egress", 13) && (!req->path[13] || req->path[13] == '/')) ||
           !strcmp(req->path, "/admin/ingress")) {
    hd_token_claims_t claims; /* the grant is checked per room by serve_egress */
    serve_add_cors(s, req, resp);
    if (serve_authorize(s, req, NULL, 0, &claims, resp) == 0)
      hd_serve_egress_http(s->egress, &claims, req, resp);
  } else if (!strncmp(req->path, "/admin/", 7))
    serve_handle_admin(s, req, resp);
  else if (!strcmp(req->path, "/dashboard") && !strcmp(req->method, "GET")) {
    char loc[300];
    snprintf(loc, sizeof loc, "/dashboard.html%s%.280s", req->query[0] ? "?" : "", req->query);
    hd_http_resp_header(resp, "Location", loc);
    hd_http_resp_text(resp, 302, "the quality dashboard is at /dashboard.html\n");
  } else if (!strcmp(req->path, "/api/dev-token"))
    handle_dev_token(s, req, resp);
  else if (!strcmp(req->path, "/api/route"))
    handle_route(s, req, resp);
  else if (!strcmp(req->path, "/api/board") || !strncmp(req->path, "/api/board/", 11))
    handle_board(s, req, resp);
  else if (!strcmp(req->path, "/whip") || !strcmp(req->path, "/whep"))
    hd_http_resp_text(resp, 400, "the endpoint is %s/{room}\n", req->path);
  if (resp->status >= 400) s->http_errors++;
}

/* ---- draining (issue 15 item 6; docs/overlay.md "Draining") ---- */

#define DRAIN_LINGER_MS 2000 /* two registry reads: every peer has seen "draining" */

static void drain_tick(uv_timer_t *t) {
  server_t *s = t->data;
  size_t left = hd_map_count(&s->rtc_conns);
  hd_time_t now = hd_io_now(s->loop);
  /* even when empty, stay DRAIN_LINGER: the other nodes read the registry
   * once a second, so for about that long they may still send clients here;
   * they get a redirect instead of a refused connection */
  if ((left || now < s->drain_linger_until) && now < s->drain_deadline) return;
  if (left)
    HD_LOGW("serve", "drain: grace period over with %zu /rtc connection(s) left; stopping", left);
  else
    HD_LOGI("serve", "drain: no participant left; stopping");
  uv_stop(s->loop);
}

/* Puts the node in draining state: out of routing (registry "draining"),
 * new joins refused with a redirect, every /rtc participant told to move
 * (`left` node_draining with a redirect, then the socket closes); the node
 * stops once no /rtc connection is left or after grace_s seconds. */
static void drain_start(server_t *s, long grace_s, const char *why) {
  if (s->draining) return;
  s->draining = 1;
  s->drain_deadline = hd_io_now(s->loop) + (hd_time_t)grace_s * 1000000;
  s->drain_linger_until = hd_io_now(s->loop) + DRAIN_LINGER_MS * 1000;
  hd_serve_cluster_set_draining(s->cluster);
  char left[1024];
  int n = hd_serve_cluster_drain_left(s->cluster, left, sizeof left);
  size_t cnt = hd_map_count(&s->rtc_conns), k = 0;
  HD_LOGI("serve", "drain (%s): %zu /rtc connection(s) told to move; stopping when empty or in %ld s", why,
          cnt, grace_s);
  /* collected first: closing a socket may remove it from the map */
  hd_ws_conn_t **conns = cnt ? calloc(cnt, sizeof *conns) : NULL;
  for (size_t i = 0; conns && i < s->rtc_conns.n_slots && k < cnt; i++)
    if (s->rtc_conns.slots[i].klen) conns[k++] = s->rtc_conns.slots[i].value;
  for (size_t i = 0; i < k; i++) {
    if (n > 0) hd_ws_send(conns[i], left, (size_t)n);
    hd_ws_close(conns[i], HD_WS_CLOSE_GOING_AWAY, "node draining");
  }
  free(conns);
  uv_timer_start(&s->drain_timer, drain_tick, 100, 100);
}

/* POST /admin/drain[?grace=S]: drain this node (an operator action: any
 * app-wide roomAdmin token of a configured app; docs/operations.md). */
static void handle_drain(server_t *s, const hd_http_req_t *req, hd_http_resp_t *resp) {
  serve_add_cors(s, req, resp);
  if (strcmp(req->method, "POST")) {
    hd_http_resp_header(resp, "Allow", "POST");
    hd_http_resp_text(resp, 405, "use POST /admin/drain[?grace=SECONDS]\n");
    return;
  }
  hd_token_claims_t claims;
  if (serve_authorize_operator(s, req, "draining a node needs", &claims, resp) < 0) return;
  long grace = s->cfg.drain_grace_s > 0 ? s->cfg.drain_grace_s : 30;
  const char *g = strstr(req->query, "grace=");
  if (g && (g == req->query || g[-1] == '&')) {
    char *end;
    grace = strtol(g + 6, &end, 10);
    if (end == g + 6 || (*end && *end != '&') || grace < 0 || grace > 3600) {
      hd_http_resp_text(resp, 400, "grace must be 0..3600 seconds\n");
      return;
    }
  }
  size_t n = hd_map_count(&s->rtc_conns);
  int already = s->draining;
  drain_start(s, grace, "admin API");
  char body[200];
  int l =
      snprintf(body, sizeof body, "{\"draining\":true,\"already\":%s,\"grace_s\":%ld,\"participants\":%zu}",
               already ? "true" : "false", grace, n);
  hd_http_resp_body(resp, 202, "application/json", body, (size_t)l);
}

static void on_signal(uv_signal_t *h, int sig) {
  server_t *s = h->data;
  if (sig == SIGTERM && s->cfg.drain_grace_s > 0 && !s->draining) {
    HD_LOGI("serve", "signal %d: draining (up to %ld s; a second signal stops at once)", sig,
            s->cfg.drain_grace_s);
    drain_start(s, s->cfg.drain_grace_s, "SIGTERM");
    return;
  }
  HD_LOGI("serve", "signal %d: shutting down", sig);
  uv_stop(s->loop);
}

static int dir_has(const char *dir, const char *file) {
  char p[1024];
  struct stat st;
  snprintf(p, sizeof p, "%s/%s", dir, file);
  return stat(p, &st) == 0;
}

/* Finds web/: --config or ./web, else next to the binary (build/../web). */
static void find_web_root(hd_config_t *c, const char *argv0) {
  if (c->web_root[0]) return;
  if (dir_has("web", "publish.html")) {
    snprintf(c->web_root, sizeof c->web_root, "web");
    return;
  }
  char exe[400];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = 0;
    char *sl = strrchr(exe, '/');
    if (sl) {
      *sl = 0;
      char cand[600];
      snprintf(cand, sizeof cand, "%s/../web", exe);
      if (strlen(cand) < sizeof c->web_root && dir_has(cand, "publish.html")) {
        memcpy(c->web_root, cand, strlen(cand) + 1);
        return;
      }
    }
  }
  (void)argv0;
}

static void usage_serve(FILE *f) {
  fprintf(
      f,
      "usage: hudong serve [--listen HOST:PORT] [--rtc-port PORT] [--rtc-ip IP] [--rtc-announce-port PORT]\n"
      "                    [--room-empty-timeout S] [--max-publish-bitrate KBPS] [--rtm-db FILE]\n"
      "                    [--media-workers N] [--media-shard-min N]\n"
      "                    [--max-connections N] [--max-connections-per-ip N] [--max-token-lifetime S]\n"
      "                    [--tls-cert FILE --tls-key FILE] [--tls]\n"
      "                    [--redis URL] [--node-id ID] [--region R] [--labels K=V,..] [--announce-url URL]\n"
      "                    [--peer-addr ID=IP:PORT]... [--drain-grace S]\n"
      "                    [--config FILE] [--dev]\n"
      "  --rtm-db  messaging store (SQLite file, default ./hudong-rtm.db; :memory: keeps nothing)\n"
      "  --quality-db  quality store: SQLite file (default hudong-quality.db next to the RTM database)\n"
      "            or postgres://... (docs/quality.md)\n"
      "  defaults: --listen 127.0.0.1:7880, UDP media on --rtc-port 7881\n"
      "  --rtc-ip / --rtc-announce-port: the address put in ICE candidates, when clients reach\n"
      "            the media port through NAT, a port mapping or a relay (hudong netem)\n"
      "  --room-empty-timeout S: seconds an empty room keeps its sid before it closes (default 20; 0 = at "
      "once)\n"
      "  --max-publish-bitrate KBPS: bitrate cap sent to publishers as REMB (default 0 = no cap)\n"
      "  --media-workers N: media threads (default 0 = one per CPU core); worker i uses UDP port\n"
      "            rtc-port + i (and announces rtc-announce-port + i when that is set)\n"
      "  --media-shard-min N: viewers joining a room of >= N subscribers are sealed and sent by the\n"
      "            least-loaded media worker (default 0 = off; config media_shard_min_room)\n"
      "  --max-connections N / --max-connections-per-ip N: open HTTP/WebSocket connections,\n"
      "            over either cap a connection gets 503 (defaults 10000, lowered to fit the\n"
      "            open-file limit, and 2048)\n"
      "  --max-token-lifetime S: refuse tokens valid longer than S seconds (default 86400; 0 = no limit)\n"
      "  --drain-grace S: SIGTERM drains the node (participants sent to other nodes) for up to S\n"
      "            seconds before stopping (default 0: stop at once; config drain_grace_s)\n"
      "  --tls-cert FILE --tls-key FILE: serve HTTPS/WSS on the listen port (PEM files)\n"
      "  --tls     with --dev and no files: HTTPS/WSS with a generated self-signed certificate\n"
      "  --redis redis://[:password@]host:port[/db]: join the cluster whose registry is in\n"
      "            that Redis (docs/overlay.md); without it the node runs alone\n"
      "  --node-id ID (default hostname:port), --region R, --labels k=v,k=v, --announce-url URL\n"
      "            (default http(s)://listen-host:port): this node in the cluster registry\n"
      "  --peer-addr ID=IP:PORT (repeatable; config peer_addrs): send the node link to peer ID at\n"
      "            this address instead of the one it announces (a netem relay on one pair: test beds)\n"
      "  --dev     development mode: API key devkey / secret devsecret, any CORS origin,\n"
      "            and a token endpoint for the demo pages (GET /api/dev-token)\n");
}

/* Whether HOST:PORT can be listened on, tried with a socket of our own before
 * the HTTP server starts: libwebsockets reports a failed bind only in its log
 * and runs on without a listener (issue 12 item 11). 0, or -1 with the reason
 * in why. */
static int can_listen(const char *host, int port, char *why, size_t whycap) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE},
                  *ai = NULL;
  char ps[8];
  snprintf(ps, sizeof ps, "%d", port);
  int g = getaddrinfo(host, ps, &hints, &ai);
  if (g != 0) {
    snprintf(why, whycap, "%s", gai_strerror(g));
    return -1;
  }
  int rc = -1, fd = socket(ai->ai_family, SOCK_STREAM, 0), one = 1;
  if (fd < 0) {
    snprintf(why, whycap, "%s", strerror(errno));
  } else {
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); /* as the server: TIME_WAIT is no clash */
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1) < 0)
      snprintf(why, whycap, "%s", strerror(errno));
    else
      rc = 0;
    close(fd);
  }
  freeaddrinfo(ai);
  return rc;
}

/* A non-negative integer option value, or -2 for anything else. */
static long nonneg_arg(const char *s) {
  char *end;
  long v = strtol(s, &end, 10);
  return *s && !*end && v >= 0 ? v : -2;
}

int hd_cmd_serve(int argc, char **argv) {
  server_t s;
  memset(&s, 0, sizeof s);
  hd_config_defaults(&s.cfg);
  const char *config = NULL, *listen = NULL, *rtc_ip = NULL, *rtm_db = NULL, *quality_db = NULL;
  int rtc_port = -1, announce_port = -1;
  long workers = -1, shard_min = -1;
  long empty_timeout = -1, max_pub_kbps = -1;
  long max_conns = -1, max_conns_ip = -1, max_token_life = -1, drain_grace = -1;
  const char *tls_cert = NULL, *tls_key = NULL;
  int tls_flag = 0;
  const char *cl_redis = NULL, *cl_id = NULL, *cl_region = NULL, *cl_labels = NULL, *cl_url = NULL;
  char cl_peer[sizeof s.cfg.peer_addrs] = "";
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--config") && i + 1 < argc)
      config = argv[++i];
    else if (!strcmp(argv[i], "--listen") && i + 1 < argc)
      listen = argv[++i];
    else if (!strcmp(argv[i], "--rtc-port") && i + 1 < argc)
      rtc_port = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--rtc-ip") && i + 1 < argc)
      rtc_ip = argv[++i];
    else if (!strcmp(argv[i], "--rtm-db") && i + 1 < argc)
      rtm_db = argv[++i];
    else if (!strcmp(argv[i], "--quality-db") && i + 1 < argc)
      quality_db = argv[++i];
    else if (!strcmp(argv[i], "--rtc-announce-port") && i + 1 < argc)
      announce_port = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--room-empty-timeout") && i + 1 < argc)
      empty_timeout = nonneg_arg(argv[++i]);
    else if (!strcmp(argv[i], "--max-publish-bitrate") && i + 1 < argc)
      max_pub_kbps = nonneg_arg(argv[++i]);
    else if (!strcmp(argv[i], "--media-workers") && i + 1 < argc)
      workers = nonneg_arg(argv[++i]);
    else if (!strcmp(argv[i], "--media-shard-min") && i + 1 < argc)
      shard_min = nonneg_arg(argv[++i]);
    else if (!strcmp(argv[i], "--max-connections") && i + 1 < argc)
      max_conns = nonneg_arg(argv[++i]);
    else if (!strcmp(argv[i], "--max-connections-per-ip") && i + 1 < argc)
      max_conns_ip = nonneg_arg(argv[++i]);
    else if (!strcmp(argv[i], "--max-token-lifetime") && i + 1 < argc)
      max_token_life = nonneg_arg(argv[++i]);
    else if (!strcmp(argv[i], "--drain-grace") && i + 1 < argc)
      drain_grace = nonneg_arg(argv[++i]);
    else if (!strcmp(argv[i], "--tls-cert") && i + 1 < argc)
      tls_cert = argv[++i];
    else if (!strcmp(argv[i], "--tls-key") && i + 1 < argc)
      tls_key = argv[++i];
    else if (!strcmp(argv[i], "--tls"))
      tls_flag = 1;
    else if (!strcmp(argv[i], "--redis") && i + 1 < argc)
      cl_redis = argv[++i];
    else if (!strcmp(argv[i], "--node-id") && i + 1 < argc)
      cl_id = argv[++i];
    else if (!strcmp(argv[i], "--region") && i + 1 < argc)
      cl_region = argv[++i];
    else if (!strcmp(argv[i], "--labels") && i + 1 < argc)
      cl_labels = argv[++i];
    else if (!strcmp(argv[i], "--announce-url") && i + 1 < argc)
      cl_url = argv[++i];
    else if (!strcmp(argv[i], "--peer-addr") && i + 1 < argc) {
      /* repeatable; appended to the config's "peer_addrs" once the file is read */
      size_t l = strlen(cl_peer);
      if (snprintf(cl_peer + l, sizeof cl_peer - l, "%s%s", l ? "," : "", argv[++i]) >=
          (int)(sizeof cl_peer - l)) {
        fprintf(stderr, "hudong serve: --peer-addr values are longer than %zu bytes together\n",
                sizeof cl_peer - 1);
        return 2;
      }
    } else if (!strcmp(argv[i], "--dev"))
      s.cfg.dev = 1;
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage_serve(stdout);
      return 0;
    } else {
      fprintf(stderr, "hudong serve: unknown option '%s'\n", argv[i]);
      usage_serve(stderr);
      return 2;
    }
  }
  char err[512] = "";
  if (config && hd_config_load(&s.cfg, config, err, sizeof err) < 0) {
    fprintf(stderr, "hudong serve: %s\n", err);
    return 2;
  }
  if (listen &&
      hd_config_parse_hostport(listen, s.cfg.listen_host, sizeof s.cfg.listen_host, &s.cfg.listen_port)) {
    fprintf(stderr, "hudong serve: bad --listen '%s' (want HOST:PORT)\n", listen);
    return 2;
  }
  if (rtc_port >= 0) s.cfg.rtc_port = rtc_port;
  if (empty_timeout == -2 || max_pub_kbps == -2 || empty_timeout > 86400 || max_pub_kbps > 1000000) {
    fprintf(stderr, "hudong serve: --room-empty-timeout is an integer in 0..86400, --max-publish-bitrate in "
                    "0..1000000\n");
    return 2;
  }
  if (workers == -2 || workers > HD_MEDIA_WORKERS_MAX) {
    fprintf(stderr, "hudong serve: --media-workers is an integer in 0..%d (0 = one per CPU core)\n",
            HD_MEDIA_WORKERS_MAX);
    return 2;
  }
  if (shard_min == -2 || shard_min > 1000000) {
    fprintf(stderr, "hudong serve: --media-shard-min is an integer in 0..1000000 (0 = off)\n");
    return 2;
  }
  if (shard_min >= 0) s.cfg.media_shard_min_room = shard_min;
  if (workers >= 0) s.cfg.media_workers = (int)workers;
  if (empty_timeout >= 0) s.cfg.room_empty_timeout = empty_timeout;
  if (max_pub_kbps >= 0) s.cfg.max_publish_bitrate_kbps = max_pub_kbps;
  if (announce_port >= 0) s.cfg.rtc_announce_port = announce_port;
  if (s.cfg.rtc_port < 0 || s.cfg.rtc_port > 65535 || s.cfg.rtc_announce_port < 0 ||
      s.cfg.rtc_announce_port > 65535) {
    fprintf(stderr, "hudong serve: ports must be in 0..65535\n");
    return 2;
  }
  if (rtc_ip) snprintf(s.cfg.rtc_ip, sizeof s.cfg.rtc_ip, "%s", rtc_ip);
  if (max_conns == -2 || max_conns_ip == -2 || max_token_life == -2 || (max_conns >= 0 && max_conns < 16) ||
      max_conns_ip == 0) {
    fprintf(stderr, "hudong serve: --max-connections is an integer >= 16, --max-connections-per-ip >= 1, "
                    "--max-token-lifetime >= 0 seconds (0 = no limit)\n");
    return 2;
  }
  if (max_conns > 0) s.cfg.http_max_conns = max_conns;
  if (max_conns_ip > 0) s.cfg.http_max_conns_per_ip = max_conns_ip;
  if (max_token_life >= 0) s.cfg.max_token_lifetime = max_token_life;
  if (drain_grace == -2 || drain_grace > 3600) {
    fprintf(stderr, "hudong serve: --drain-grace is 0..3600 seconds (0 = SIGTERM stops at once)\n");
    return 2;
  }
  if (drain_grace >= 0) s.cfg.drain_grace_s = drain_grace;
  if (tls_cert) snprintf(s.cfg.tls_cert, sizeof s.cfg.tls_cert, "%s", tls_cert);
  if (tls_key) snprintf(s.cfg.tls_key, sizeof s.cfg.tls_key, "%s", tls_key);
  if (!s.cfg.tls_cert[0] != !s.cfg.tls_key[0]) {
    fprintf(stderr, "hudong serve: give both --tls-cert and --tls-key (or http.tls_cert and http.tls_key)\n");
    return 2;
  }
  if (tls_flag && !s.cfg.tls_cert[0]) {
    if (!s.cfg.dev) {
      fprintf(stderr,
              "hudong serve: --tls needs --tls-cert FILE --tls-key FILE (a self-signed certificate is "
              "generated only with --dev)\n");
      return 2;
    }
    s.cfg.tls_dev = 1;
  }
  hd_token_set_max_lifetime(s.cfg.max_token_lifetime);
  struct {
    const char *v;
    char *dst;
    size_t cap;
    const char *flag;
  } cl[] = {{cl_redis, s.cfg.redis, sizeof s.cfg.redis, "--redis"},
            {cl_id, s.cfg.node_id, sizeof s.cfg.node_id, "--node-id"},
            {cl_region, s.cfg.region, sizeof s.cfg.region, "--region"},
            {cl_labels, s.cfg.labels, sizeof s.cfg.labels, "--labels"},
            {cl_url, s.cfg.announce_url, sizeof s.cfg.announce_url, "--announce-url"}};
  for (size_t i = 0; i < sizeof cl / sizeof cl[0]; i++) {
    if (!cl[i].v) continue;
    if (strlen(cl[i].v) >= cl[i].cap) {
      fprintf(stderr, "hudong serve: %s is longer than %zu bytes\n", cl[i].flag, cl[i].cap - 1);
      return 2;
    }
    snprintf(cl[i].dst, cl[i].cap, "%s", cl[i].v);
  }
  if (cl_peer[0]) {
    size_t l = strlen(s.cfg.peer_addrs);
    if (snprintf(s.cfg.peer_addrs + l, sizeof s.cfg.peer_addrs - l, "%s%s", l ? "," : "", cl_peer) >=
        (int)(sizeof s.cfg.peer_addrs - l)) {
      fprintf(stderr, "hudong serve: peer_addrs and --peer-addr are longer than %zu bytes together\n",
              sizeof s.cfg.peer_addrs - 1);
      return 2;
    }
  }
  if (hd_config_check_cluster(&s.cfg, err, sizeof err) < 0) {
    fprintf(stderr, "hudong serve: %s\n", err);
    return 2;
  }
  if (rtm_db) snprintf(s.cfg.rtm_db, sizeof s.cfg.rtm_db, "%s", rtm_db);
  if (quality_db) snprintf(s.cfg.quality_db, sizeof s.cfg.quality_db, "%s", quality_db);
  if (s.cfg.dev) {
    int have = 0;
    for (int i = 0; i < s.cfg.n_apps; i++)
      have |= !strcmp(s.cfg.apps[i].key, "devkey");
    if (!have && s.cfg.n_apps < HD_MAX_APPS) {
      memmove(&s.cfg.apps[1], &s.cfg.apps[0], (size_t)s.cfg.n_apps * sizeof s.cfg.apps[0]);
      memset(&s.cfg.apps[0], 0, sizeof s.cfg.apps[0]); /* no inherited per-app settings */
      snprintf(s.cfg.apps[0].key, sizeof s.cfg.apps[0].key, "devkey");
      snprintf(s.cfg.apps[0].secret, sizeof s.cfg.apps[0].secret, "devsecret");
      s.cfg.n_apps++;
    }
    fprintf(stderr, "hudong: DEVELOPMENT MODE: API key 'devkey', secret 'devsecret'; any CORS origin; "
                    "token endpoint /api/dev-token is on. Do not use in production.\n");
  }
  if (s.cfg.n_apps == 0) {
    fprintf(stderr, "hudong serve: no apps configured: give --dev, or a --config with \"apps\": "
                    "[{\"key\": ..., \"secret\": ...}]\n");
    return 2;
  }
  if (!s.cfg.rtc_bind[0]) snprintf(s.cfg.rtc_bind, sizeof s.cfg.rtc_bind, "%s", s.cfg.listen_host);
  if (!s.cfg.rtc_ip[0])
    snprintf(s.cfg.rtc_ip, sizeof s.cfg.rtc_ip, "%s",
             strcmp(s.cfg.rtc_bind, "0.0.0.0") ? s.cfg.rtc_bind : "127.0.0.1");
  find_web_root(&s.cfg, argv[0]);

  char why[256];
  if (can_listen(s.cfg.listen_host, s.cfg.listen_port, why, sizeof why) < 0) {
    fprintf(stderr, "hudong serve: cannot listen on %s:%d: %s\n", s.cfg.listen_host, s.cfg.listen_port, why);
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  s.loop = uv_default_loop();
  int rc = hd_dtls_cert_generate(&s.cert);
  if (rc < 0) {
    fprintf(stderr, "hudong serve: certificate generation failed: %s\n", hd_strerror(rc));
    return 1;
  }
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  hd_time_t wall_now = (hd_time_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
  hd_node_config_t ncfg = {.rtc_ip = s.cfg.rtc_ip,
                           .max_sessions = s.cfg.max_sessions,
                           /* one app may take all of the node; with several, half each at most */
                           .max_sessions_per_app = s.cfg.max_sessions_per_app ? s.cfg.max_sessions_per_app
                                                   : s.cfg.n_apps > 1         ? s.cfg.max_sessions / 2
                                                                              : 0,
                           .max_sessions_per_identity = s.cfg.max_sessions_per_identity,
                           .max_viewers = s.cfg.max_viewers,
                           .wall_offset = wall_now - hd_io_now(s.loop),
                           .room_empty_timeout = HD_SEC(s.cfg.room_empty_timeout),
                           .sid_wait = HD_MS(s.cfg.cluster_sid_wait_ms),
                           .max_publish_bitrate = (uint64_t)s.cfg.max_publish_bitrate_kbps * 1000,
                           .token_leeway = s.cfg.token_leeway};
  const char *turn_urls[HD_MAX_TURN_URLS]; /* docs/turn.md */
  for (int i = 0; i < s.cfg.n_turn_urls; i++)
    turn_urls[i] = s.cfg.turn_urls[i];
  ncfg.turn_urls = turn_urls;
  ncfg.n_turn_urls = (size_t)s.cfg.n_turn_urls;
  ncfg.turn_secret = s.cfg.turn_secret;
  ncfg.turn_ttl = s.cfg.turn_ttl;
  if (hd_config_webhooks_start(&s.cfg, s.loop, &s.webhooks) < 0) {
    fprintf(stderr, "hudong serve: cannot start webhook delivery\n");
    return 1;
  }
  hd_serve_egress_config_t ecfg = {.cfg = &s.cfg, .loop = s.loop, .webhooks = s.webhooks};
  if (hd_serve_egress_start(&s.egress, &ecfg) < 0) {
    fprintf(stderr, "hudong serve: out of memory (egress)\n");
    return 1;
  }
  int n_workers = s.cfg.media_workers;
  if (n_workers <= 0) n_workers = (int)uv_available_parallelism();
  if (n_workers > HD_MEDIA_WORKERS_MAX) n_workers = HD_MEDIA_WORKERS_MAX;
  if (s.cfg.rtc_port && s.cfg.rtc_port + n_workers - 1 > 65535) {
    fprintf(stderr, "hudong serve: rtc_port %d + %d media workers goes past port 65535\n", s.cfg.rtc_port,
            n_workers);
    return 2;
  }
  if ((rc = hd_map_init(&s.rtc_conns, 1u << 20)) < 0) {
    fprintf(stderr, "hudong serve: out of memory\n");
    return 1;
  }
  hd_media_workers_config_t wcfg = {.n = n_workers,
                                    .bind_host = s.cfg.rtc_bind,
                                    .base_port = s.cfg.rtc_port,
                                    .announce_port = s.cfg.rtc_announce_port,
                                    .node = ncfg,
                                    .cert = s.cert,
                                    .control_loop = s.loop,
                                    .signal_send = signal_send,
                                    .signal_close = signal_close,
                                    .on_event = on_node_event,
                                    .ud = &s};
  wcfg.ice_tcp = s.cfg.ice_tcp; /* docs/operations.md "ICE-TCP" */
  wcfg.shard_min_room =
      (size_t)s.cfg.media_shard_min_room; /* docs/performance.md "A room across every core" */
  wcfg.shard_ring = (size_t)s.cfg.media_shard_ring;
  wcfg.ice_tcp_cfg = (hd_ice_tcp_config_t){.max_conns = (size_t)s.cfg.ice_tcp_max_conns,
                                           .check_timeout = (hd_time_t)s.cfg.ice_tcp_check_timeout * 1000,
                                           .idle_timeout = HD_SEC(s.cfg.ice_tcp_idle_timeout),
                                           .max_out_bytes = (size_t)s.cfg.ice_tcp_max_buffer};
  /* HUDONG_TWCC=0: subscribers are estimated from their REMB only (no
   * transport-wide seq on what we send them, no send-side estimator) */
  const char *twcc_env = getenv("HUDONG_TWCC");
  hd_session_set_twcc(!(twcc_env && !strcmp(twcc_env, "0")));
  /* HUDONG_ADAPT=0: no layer choice by estimate (a baseline for measurements) */
  const char *adapt_env = getenv("HUDONG_ADAPT");
  hd_session_set_adapt(!(adapt_env && !strcmp(adapt_env, "0")));
  /* HUDONG_PLAYOUT_DELAY=0: never ask viewers for a playout delay (a baseline) */
  const char *playout_env = getenv("HUDONG_PLAYOUT_DELAY");
  hd_session_set_playout_delay(!(playout_env && !strcmp(playout_env, "0")));
  /* HUDONG_PACER=0: no per-subscriber pacing (packets leave as they are
   * forwarded); HUDONG_PACER_FACTOR=1.5: the pacing rate over the estimate */
  const char *pacer_env = getenv("HUDONG_PACER"), *factor_env = getenv("HUDONG_PACER_FACTOR");
  double factor = factor_env ? strtod(factor_env, NULL) : 0;
  if (factor_env && (factor < 1.0 || factor > 10.0)) {
    fprintf(stderr, "hudong serve: HUDONG_PACER_FACTOR=%s: give a number from 1.0 to 10.0 (default 1.5)\n",
            factor_env);
    return 1;
  }
  hd_session_set_pacer(!(pacer_env && !strcmp(pacer_env, "0")), (unsigned)(factor * 100 + 0.5));
  if ((rc = hd_media_workers_start(&s.workers, &wcfg, err, sizeof err)) < 0) {
    fprintf(stderr, "hudong serve: %s\n", err);
    return 1;
  }
  if (s.cfg.rtc_port == 0) s.cfg.rtc_port = hd_media_workers_port(s.workers, 0);
  hd_serve_cluster_defaults(&s.cfg, s.cfg.tls_cert[0] || s.cfg.tls_dev ? "https" : "http");
  if (hd_serve_cluster_start(&s.cluster, s.loop, &s.cfg, s.workers, err, sizeof err) < 0) {
    fprintf(stderr, "hudong serve: %s\n", err);
    return 1;
  }
  hd_serve_cluster_set_emit(s.cluster, emit_event, &s); /* room_finished of a room a killed node held */
  hd_http_config_t hcfg = {.host = s.cfg.listen_host,
                           .port = s.cfg.listen_port,
                           .web_root = s.cfg.web_root[0] ? s.cfg.web_root : NULL,
                           .body_cap = s.cfg.body_cap,
                           .handler = handler,
                           .ud = &s,
                           .max_conns = (size_t)s.cfg.http_max_conns,
                           .max_conns_per_ip = (size_t)s.cfg.http_max_conns_per_ip,
                           .header_timeout_ms = (int)s.cfg.http_header_timeout_ms,
                           .body_timeout_ms = (int)s.cfg.http_body_timeout_ms,
                           .tls_cert_file = s.cfg.tls_cert[0] ? s.cfg.tls_cert : NULL,
                           .tls_key_file = s.cfg.tls_key[0] ? s.cfg.tls_key : NULL};
  char *dev_cert = NULL, *dev_key = NULL;
  if (s.cfg.tls_dev) {
    /* --dev --tls without files: a throwaway certificate for LAN testing (browsers
     * need a secure context for camera and microphone on another machine) */
    char fp[96];
    if (hd_http_tls_self_signed(s.cfg.listen_host, &dev_cert, &dev_key, fp) < 0) {
      fprintf(stderr, "hudong serve: cannot generate a self-signed TLS certificate\n");
      return 1;
    }
    hcfg.tls_cert_pem = dev_cert;
    hcfg.tls_key_pem = dev_key;
    fprintf(stderr,
            "hudong: TLS with a generated self-signed certificate (development only), SHA-256 %s; browsers "
            "will warn once\n",
            fp);
  }
  rc = hd_http_server_start(&s.http, s.loop, &hcfg);
  free(dev_cert);
  free(dev_key);
  if (rc < 0) {
    if (hcfg.tls_cert_file)
      fprintf(stderr, "hudong serve: cannot listen on %s:%d, or cannot use the TLS certificate %s / key %s\n",
              s.cfg.listen_host, s.cfg.listen_port, hcfg.tls_cert_file, hcfg.tls_key_file);
    else
      fprintf(stderr, "hudong serve: cannot listen on %s:%d\n", s.cfg.listen_host, s.cfg.listen_port);
    return 1;
  }
  hd_ws_endpoint_config_t rtc = {.path = "/rtc",
                                 .on_open = rtc_ws_open,
                                 .on_message = rtc_message,
                                 .on_close = rtc_close,
                                 .ud = &s,
                                 /* messages over 64 KiB get 413 from the node and the
                                  * connection stays (docs/protocol.md Limits); only beyond
                                  * 1 MiB does the WebSocket layer close with 1009 */
                                 .max_message = 1024 * 1024,
                                 .idle_timeout_ms = 30000,
                                 .ping_interval_ms = 10000,
                                 /* every message, valid or not, before it is parsed:
                                  * 100/s, bursts of 400, beyond dropped unanswered
                                  * (docs/protocol.md Limits). Twice the burst of the
                                  * room's own limit (200, which answers 429): valid
                                  * traffic meets that one first, whatever the timing */
                                 .msg_rate = 100,
                                 .msg_burst = 400};
  if ((rc = hd_ws_endpoint_add(s.http, &rtc)) < 0) {
    fprintf(stderr, "hudong serve: cannot add the /rtc WebSocket endpoint: %s\n", hd_strerror(rc));
    return 1;
  }
  if ((rc = hd_rtm_store_sqlite_new(&s.rtm_store, s.cfg.rtm_db, err, sizeof err)) < 0) {
    fprintf(stderr, "hudong serve: rtm store: %s\n", err);
    return 1;
  }
  if ((rc = hd_serve_board_start(&s.board, &s.cfg, err, sizeof err)) < 0) {
    fprintf(stderr, "hudong serve: whiteboard store: %s\n", err);
    return 1;
  }
  if ((rc = hd_serve_board_share_start(s.board, s.loop, &s.cfg, err, sizeof err)) < 0) {
    fprintf(stderr, "hudong serve: whiteboard sharing: %s\n", err);
    return 1;
  }
  hd_rtm_config_t rcfg = {.send = rtm_send,
                          .hook_prefix = HD_BOARD_PREFIX,
                          .pub_hook = hd_board_server_pub_hook,
                          .hook_ud = hd_serve_board_server(s.board),
                          .close = rtm_close_cb,
                          .ud = &s,
                          .secret_lookup = secret_lookup,
                          .secret_ud = &s,
                          .token_leeway = s.cfg.token_leeway,
                          .store = s.rtm_store,
                          .wall_offset = wall_now - hd_io_now(s.loop),
                          .max_msg = (size_t)s.cfg.rtm_max_message,
                          .window_msgs = (size_t)s.cfg.rtm_window_messages,
                          .window_bytes = (size_t)s.cfg.rtm_window_bytes,
                          .resume_grace = HD_SEC(s.cfg.rtm_resume_grace),
                          .rate = (double)s.cfg.rtm_rate,
                          .burst = (double)s.cfg.rtm_burst,
                          .max_sessions = (size_t)s.cfg.rtm_max_sessions,
                          .max_sessions_per_app = (size_t)s.cfg.rtm_max_sessions_per_app,
                          .max_sessions_per_user = (size_t)s.cfg.rtm_max_sessions_per_user,
                          /* 0 in the config = no quota / no floor; the broker's "none" is < 0 */
                          .quota_channels = s.cfg.rtm_quota_channels ? s.cfg.rtm_quota_channels : -1,
                          .quota_bytes = s.cfg.rtm_quota_mb ? (int64_t)s.cfg.rtm_quota_mb << 20 : -1,
                          .min_free_bytes = s.cfg.rtm_min_free_mb ? (int64_t)s.cfg.rtm_min_free_mb << 20 : -1,
                          .presence_max = s.cfg.rtm_presence_max ? (int)s.cfg.rtm_presence_max : -1,
                          .group_commit = 1};
  if (s.cfg.redis[0]) { /* RTM channels, presence, attributes and locks shared by the cluster */
    hd_rtm_redis_config_t rr = {.node_id = s.cfg.node_id,
                                .log_max = (int)s.cfg.rtm_cluster_log,
                                .dedupe_max = (int)s.cfg.rtm_cluster_dedupe};
    if (hd_redis_url_parse(s.cfg.redis, &rr.url, err, sizeof err) < 0 ||
        (rc = hd_rtm_redis_new(&s.rtm_redis, s.loop, &rr)) < 0) {
      fprintf(stderr, "hudong serve: rtm cluster: %s\n", err);
      return 1;
    }
    rcfg.cluster = hd_rtm_redis_ops(s.rtm_redis);
  }
  if ((rc = hd_rtm_broker_new(&s.rtm, &rcfg, hd_io_now(s.loop))) < 0 ||
      (rc = hd_map_init(&s.rtm_conns, (size_t)s.cfg.rtm_max_sessions * 2 + 16)) < 0) {
    fprintf(stderr, "hudong serve: rtm broker: %s\n", hd_strerror(rc));
    return 1;
  }
  if (s.rtm_redis) hd_rtm_redis_start(s.rtm_redis, s.rtm);
  uv_timer_init(s.loop, &s.rtm_timer);
  s.rtm_timer.data = &s;
  rtm_arm(&s);
  hd_serve_quality_config_t qcfg = {.cfg = &s.cfg,
                                    .loop = s.loop,
                                    .workers = s.workers,
                                    .webhooks = s.webhooks,
                                    .rtm = s.rtm,
                                    .lookup = secret_lookup,
                                    .lookup_ud = &s};
  if ((rc = hd_serve_quality_start(&s.quality, &qcfg, err, sizeof err)) < 0) {
    fprintf(stderr, "hudong serve: quality store: %s\n", err);
    return 1;
  }
  hd_ws_endpoint_config_t rtmep = {.path = "/rtm",
                                   .on_open = rtm_ws_open,
                                   .on_message = rtm_ws_message,
                                   .on_close = rtm_ws_close,
                                   .ud = &s,
                                   /* over rtm.max_message the broker answers 413 and the
                                    * connection stays; only beyond 1 MiB does ws close (1009) */
                                   .max_message = 1024 * 1024,
                                   /* the broker's window is the real bound; the socket
                                    * queue holds a full window plus one big reply */
                                   .out_max_bytes = (size_t)s.cfg.rtm_window_bytes + HD_RTM_MAX_OUT,
                                   .out_max_msgs = (size_t)s.cfg.rtm_window_messages * 2 + 16,
                                   .idle_timeout_ms = 30000,
                                   .ping_interval_ms = 10000};
  if ((rc = hd_ws_endpoint_add(s.http, &rtmep)) < 0) {
    fprintf(stderr, "hudong serve: cannot add the /rtm WebSocket endpoint: %s\n", hd_strerror(rc));
    return 1;
  }
  uv_timer_init(s.loop, &s.drain_timer);
  s.drain_timer.data = &s;
  uv_signal_init(s.loop, &s.sigint);
  uv_signal_init(s.loop, &s.sigterm);
  s.sigint.data = s.sigterm.data = &s;
  uv_signal_start(&s.sigint, on_signal, SIGINT);
  uv_signal_start(&s.sigterm, on_signal, SIGTERM);
  char ports[256] = "";
  for (int i = 0, l = 0; i < n_workers && l < (int)sizeof ports - 8; i++)
    l += snprintf(ports + l, sizeof ports - (size_t)l, "%s%d", i ? "," : "",
                  hd_media_workers_port(s.workers, i));
  const char *scheme = s.cfg.tls_cert[0] || s.cfg.tls_dev ? "https" : "http";
  fprintf(stderr, "hudong: serving %s://%s:%d (web: %s), media UDP %s ports %s (%d workers, announced %s)\n",
          scheme, s.cfg.listen_host, s.cfg.listen_port, s.cfg.web_root[0] ? s.cfg.web_root : "none",
          s.cfg.rtc_bind, ports, n_workers, s.cfg.rtc_ip);
  fprintf(stderr, "hudong: publish: %s://%s:%d/publish.html  play: %s://%s:%d/play.html\n", scheme,
          s.cfg.listen_host, s.cfg.listen_port, scheme, s.cfg.listen_host, s.cfg.listen_port);
  uv_run(s.loop, UV_RUN_DEFAULT);

  /* orderly shutdown: sessions closed (close_notify sent), handles closed */
  /* recorders first: they finish their files while the room still exists */
  hd_serve_egress_stop(s.egress);
  s.egress = NULL;
  /* out of the registry first: the other nodes stop routing clients here */
  hd_serve_cluster_stop(s.cluster);
  s.cluster = NULL; /* the rooms' last events go out as each node's own */
  /* participants get "left", then their sockets close */
  hd_media_workers_close_all(s.workers, "node shutdown");
  hd_rtm_shutdown(s.rtm); /* RTM clients get 4010 and resume elsewhere/later */
  hd_http_server_stop(s.http);
  hd_media_workers_stop(s.workers); /* each drains its close_notify alerts first */
  hd_map_free(&s.rtc_conns);
  hd_rtm_redis_free(s.rtm_redis); /* no more log entries for the broker */
  hd_rtm_broker_free(s.rtm);
  hd_serve_board_stop(s.board);
  hd_rtm_store_free(s.rtm_store);
  hd_serve_quality_stop(s.quality);
  s.quality = NULL;
  hd_map_free(&s.rtm_conns);
  uv_close((uv_handle_t *)&s.rtm_timer, NULL);
  hd_webhook_sender_stop(s.webhooks);
  uv_close((uv_handle_t *)&s.sigint, NULL);
  uv_close((uv_handle_t *)&s.sigterm, NULL);
  uv_close((uv_handle_t *)&s.drain_timer, NULL);
  uv_run(s.loop, UV_RUN_DEFAULT);
  uv_loop_close(s.loop);
  hd_dtls_cert_free(s.cert);
  fprintf(stderr, "hudong: stopped\n");
  return 0;
}
