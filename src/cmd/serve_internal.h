/* What the files of `hudong serve` share (serve.c: the loop, /rtc, /rtm,
 * routing of HTTP requests, draining; serve_whip.c: WHIP/WHEP resources;
 * serve_admin.c: /admin). Internal to src/cmd. */
#ifndef HD_CMD_SERVE_INTERNAL_H
#define HD_CMD_SERVE_INTERNAL_H
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/map.h"
#include "cmd/config.h"
#include "cmd/serve_board.h"
#include "cmd/serve_cluster.h"
#include "cmd/serve_egress.h"
#include "cmd/serve_quality.h"
#include "io/http.h"
#include "io/media_workers.h"
#include "io/rtm_redis.h"
#include "io/webhook_sender.h"
#include "proto/dtls.h"
#include "proto/token.h"
#include "rtm/broker.h"

typedef struct {
  hd_config_t cfg;
  uv_loop_t *loop;
  hd_media_workers_t *workers;
  hd_map_t rtc_conns; /* /rtc connection id -> hd_ws_conn_t (worker output finds its socket) */
  hd_http_server_t *http;
  hd_dtls_cert_t *cert;
  uv_signal_t sigint, sigterm;
  uint64_t http_requests, http_errors;
  uint64_t auth_failures;
  hd_webhook_sender_t *webhooks; /* NULL when no webhook URL is configured */
  /* /rtm: the messaging broker, its store, its timer and conn id -> connection */
  hd_rtm_store_t *rtm_store;
  hd_rtm_broker_t *rtm;
  hd_rtm_redis_t *rtm_redis; /* RTM across nodes (--redis; docs/overlay.md), else NULL */
  hd_map_t rtm_conns;
  uv_timer_t rtm_timer;
  hd_serve_quality_t *quality; /* quality data (docs/quality.md) */
  hd_serve_board_t *board;     /* whiteboards (docs/whiteboard.md) */
  hd_serve_cluster_t *cluster; /* registry + /api/route (docs/overlay.md) */
  hd_serve_egress_t *egress;   /* recordings: /admin/egress (docs/egress.md) */
  /* draining (docs/overlay.md "Draining"): joins refused with a redirect,
   * participants told to move; the node stops when empty or at the deadline */
  int draining;
  hd_time_t drain_deadline, drain_linger_until;
  uv_timer_t drain_timer;
} server_t;

/* Shared helpers (serve.c). */
void serve_add_cors(server_t *s, const hd_http_req_t *req, hd_http_resp_t *resp);
/* Checks the Bearer token for `room` (NULL: any) and the grant bits `needed`;
 * on failure answers resp (401/403) and returns < 0. */
int serve_authorize(server_t *s, const hd_http_req_t *req, const char *room, int needed,
                    hd_token_claims_t *claims, hd_http_resp_t *resp);
/* serve_authorize for operator data (drain, quality, cluster links): an
 * app-wide roomAdmin token; a room-scoped one gets 403 "forbidden: <what>
 * an app-wide roomAdmin token" (what: "draining a node needs"). */
int serve_authorize_operator(server_t *s, const hd_http_req_t *req, const char *what,
                             hd_token_claims_t *claims, hd_http_resp_t *resp);
/* Reads room=<name> from the query into room[room_cap] and authorizes a
 * token for it; on failure answers resp (400/401/403) and returns < 0. */
int serve_authorize_room_query(server_t *s, const hd_http_req_t *req, char *room, size_t room_cap,
                               hd_token_claims_t *claims, hd_http_resp_t *resp);
/* 1 when r[0..n) is a valid room name (docs/api.md). */
int serve_valid_room(const char *r, size_t n);
int serve_media_type_is(const char *ct, const char *mt);
/* The media worker that owns app/room. */
int serve_room_worker(server_t *s, const char *app, const char *room);

/* WHIP/WHEP resources (serve_whip.c): `rest` is the path after /whip/ or
 * /whep/: "{room}" (POST, OPTIONS) or "{room}/{id}" (PATCH, DELETE). */
void serve_handle_wish(server_t *s, const hd_http_req_t *req, hd_http_resp_t *resp, int kind,
                       const char *rest);

/* /admin (serve_admin.c). */
void serve_handle_admin(server_t *s, const hd_http_req_t *req, hd_http_resp_t *resp);
void serve_handle_admin_mute(server_t *s, const hd_http_req_t *req, hd_http_resp_t *resp);
void serve_handle_admin_quality(server_t *s, const hd_http_req_t *req, hd_http_resp_t *resp);
void serve_handle_cluster_links(server_t *s, const hd_http_req_t *req, hd_http_resp_t *resp);

#endif
