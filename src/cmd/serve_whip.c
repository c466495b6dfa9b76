/* `hudong serve`: WHIP (RFC 9725) and WHEP resources, each created,
 * patched and deleted by a job on the media worker that owns the room. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "cmd/serve_internal.h"
#include "sfu/node.h"
#include "sfu/signal.h"

/* OPTIONS on a WHIP/WHEP URL: CORS preflight and what the resource accepts. */
static void handle_options(server_t *s, const hd_http_req_t *req, hd_http_resp_t *resp) {
  resp->status = 204;
  serve_add_cors(s, req, resp);
  if (req->origin[0] && resp->n_headers) {
    hd_http_resp_header(resp, "Access-Control-Allow-Methods", "POST, PATCH, DELETE, OPTIONS");
    hd_http_resp_header(resp, "Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match");
    hd_http_resp_header(resp, "Access-Control-Max-Age", "600");
  }
  hd_http_resp_header(resp, "Accept-Post", "application/sdp");
  hd_http_resp_header(resp, "Allow", "POST, PATCH, DELETE, OPTIONS");
}

/* ---- jobs run on the media worker that owns the room ---- */

/* One WHIP/WHEP resource operation: create (offer -> answer), delete, or look
 * up for a trickle PATCH (the remote ufrag is copied out for the check). */
typedef struct {
  int kind;
  const char *app, *room, *id;
  const char *identity; /* create: the token's identity (per-identity session cap) */
  const char *body;
  size_t body_len;
  char *answer;
  size_t answer_cap;
  char err[512], sid[HD_SESSION_ID_LEN + 1];
  char remote_ufrag[128];
  int rc;
} wish_job_t;

static void create_session_job(hd_node_t *node, void *arg, hd_time_t now) {
  wish_job_t *j = arg;
  j->rc = hd_node_create_session_as(node, j->kind, j->app, j->identity, j->room, j->body, j->body_len, now,
                                    j->answer, j->answer_cap, j->sid, j->err, sizeof j->err);
}

static void delete_session_job(hd_node_t *node, void *arg, hd_time_t now) {
  wish_job_t *j = arg;
  j->rc = hd_node_delete_session(node, j->kind, j->app, j->room, j->id, now);
}

static void find_session_job(hd_node_t *node, void *arg, hd_time_t now) {
  (void)now;
  wish_job_t *j = arg;
  hd_session_t *sess = hd_node_find_session(node, j->kind, j->app, j->room, j->id);
  j->rc = sess ? 0 : HD_ENOTFOUND;
  if (sess) snprintf(j->remote_ufrag, sizeof j->remote_ufrag, "%s", sess->neg.remote_ufrag);
}

int serve_room_worker(server_t *s, const char *app, const char *room) {
  return hd_media_workers_for_room(s->workers, app, room);
}

/* /whip/{room}[/{id}] and /whep/{room}[/{id}] (RFC 9725 §4). */
void serve_handle_wish(server_t *s, const hd_http_req_t *req, hd_http_resp_t *resp, int kind,
                       const char *rest) {
  char room[80] = "", id[64] = "";
  const char *slash = strchr(rest, '/');
  size_t rl = slash ? (size_t)(slash - rest) : strlen(rest);
  if (!serve_valid_room(rest, rl)) {
    serve_add_cors(s, req, resp); /* so that a page can read the reason */
    hd_http_resp_text(resp, 400, "bad room name (1-64 characters of A-Z a-z 0-9 - _ .)\n");
    return;
  }
  memcpy(room, rest, rl);
  if (slash) snprintf(id, sizeof id, "%s", slash + 1);
  const char *ep = kind == HD_SESSION_PUBLISH ? "whip" : "whep";
  int grant = kind == HD_SESSION_PUBLISH ? HD_GRANT_PUBLISH : HD_GRANT_SUBSCRIBE;

  if (!strcmp(req->method, "OPTIONS")) {
    handle_options(s, req, resp);
    return;
  }
  serve_add_cors(s, req, resp);
  hd_token_claims_t claims;
  if (!strcmp(req->method, "POST") && !id[0]) {
    if (!serve_media_type_is(req->content_type, "application/sdp")) {
      hd_http_resp_text(resp, 415, "Content-Type must be application/sdp\n");
      return;
    }
    if (serve_authorize(s, req, room, grant, &claims, resp) < 0) return;
    char *answer = malloc(65536);
    char err[512] = "", sid[HD_SESSION_ID_LEN + 1];
    if (!answer) {
      hd_http_resp_text(resp, 500, "out of memory\n");
      return;
    }
    wish_job_t j = {.kind = kind,
                    .app = claims.key,
                    .identity = claims.identity,
                    .room = room,
                    .body = req->body,
                    .body_len = req->body_len,
                    .answer = answer,
                    .answer_cap = 65536};
    hd_media_workers_call(s->workers, serve_room_worker(s, claims.key, room), create_session_job, &j);
    int rc = j.rc;
    snprintf(err, sizeof err, "%s", j.err);
    snprintf(sid, sizeof sid, "%s", j.sid);
    if (rc < 0) {
      int status = rc == HD_ENOTFOUND ? 404 : rc == HD_ESTATE ? 409 : rc == HD_ENOSPC ? 503 : 400;
      if (rc == HD_ENOMEM) status = 500;
      hd_http_resp_text(resp, status, "%s\n", err[0] ? err : hd_strerror(rc));
      if (status == 503) { /* every capacity refusal says when to come back (RFC 9110 §10.2.3) */
        char ra[16];
        snprintf(ra, sizeof ra, "%d", HD_NODE_RETRY_AFTER_S);
        hd_http_resp_header(resp, "Retry-After", ra);
      }
      free(answer);
      return;
    }
    char loc[256];
    snprintf(loc, sizeof loc, "/%s/%s/%s", ep, room, sid);
    hd_http_resp_body(resp, 201, "application/sdp", answer, strlen(answer));
    hd_http_resp_header(resp, "Location", loc);
    hd_http_resp_header(resp, "ETag", "\"1\"");
    hd_http_resp_header(resp, "Accept-Patch", "application/trickle-ice-sdpfrag");
    free(answer);
    return;
  }
  if (!id[0]) {
    hd_http_resp_header(resp, "Allow", "POST, OPTIONS");
    hd_http_resp_text(resp, 405, "%s on /%s/{room} is not allowed\n", req->method, ep);
    return;
  }
  if (!strcmp(req->method, "DELETE")) {
    if (serve_authorize(s, req, room, grant, &claims, resp) < 0) return;
    wish_job_t j = {.kind = kind, .app = claims.key, .room = room, .id = id};
    hd_media_workers_call(s->workers, serve_room_worker(s, claims.key, room), delete_session_job, &j);
    if (j.rc < 0) {
      hd_http_resp_text(resp, 404, "no such session\n");
      return;
    }
    hd_http_resp_text(resp, 200, "session ended\n");
    return;
  }
  if (!strcmp(req->method, "PATCH")) {
    /* Trickle ICE (RFC 9725 §4.3): as an ICE-lite server we learn the client's
     * address from its checks, so remote candidates need no action. */
    if (serve_authorize(s, req, room, grant, &claims, resp) < 0) return;
    /* scoped to the token's tenant and room, and to WHIP vs WHEP */
    wish_job_t j = {.kind = kind, .app = claims.key, .room = room, .id = id};
    hd_media_workers_call(s->workers, serve_room_worker(s, claims.key, room), find_session_job, &j);
    if (j.rc < 0) {
      hd_http_resp_text(resp, 404, "no such session\n");
      return;
    }
    if (!serve_media_type_is(req->content_type, "application/trickle-ice-sdpfrag")) {
      hd_http_resp_text(resp, 415, "Content-Type must be application/trickle-ice-sdpfrag\n");
      return;
    }
    if (strstr(req->body, "a=ice-ufrag:") && !strstr(req->body, j.remote_ufrag)) {
      hd_http_resp_text(resp, 422, "ICE restart is not supported; create a new session\n");
      return;
    }
    resp->status = 204;
    return;
  }
  hd_http_resp_header(resp, "Allow", "PATCH, DELETE, OPTIONS");
  hd_http_resp_text(resp, 405, "%s on a session is not allowed\n", req->method);
}
