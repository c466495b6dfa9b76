/* `hudong serve`: /admin, room administration with a roomAdmin token
 * (docs/api.md), quality data (docs/quality.md) and the cluster's links
 * (docs/overlay.md). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "cluster/registry.h"
#include "cmd/serve_internal.h"
#include "sfu/node.h"
#include "sfu/signal.h"

static void admin_create_room(server_t *s, const hd_http_req_t *req, hd_http_resp_t *resp,
                              const hd_token_claims_t *claims);

/* One /admin operation on the worker that owns the room (or, for the room
 * list, on each worker in turn). */
enum { ADMIN_LIST, ADMIN_CLOSE, ADMIN_PARTICIPANTS, ADMIN_REMOVE, ADMIN_CREATE, ADMIN_MUTE };
typedef struct {
  int op;
  const char *app, *room, *identity, *track_sid;
  int muted;
  const hd_room_opts_t *opts;
  int64_t unix_now;
  char *json;
  int rc;
} admin_job_t;

static void admin_job(hd_node_t *node, void *arg, hd_time_t now) {
  admin_job_t *j = arg;
  switch (j->op) {
  case ADMIN_LIST: j->json = hd_node_admin_rooms_json(node, j->app); break;
  case ADMIN_CLOSE: j->rc = hd_node_admin_close_room(node, j->app, j->room, now); break;
  case ADMIN_PARTICIPANTS:
    j->json = hd_node_admin_participants_json(node, j->app, j->room);
    if (!j->json) j->rc = HD_ENOTFOUND;
    break;
  case ADMIN_REMOVE: j->rc = hd_node_admin_remove(node, j->app, j->room, j->identity, now); break;
  case ADMIN_CREATE:
    j->rc = hd_node_admin_create_room(node, j->app, j->room, j->opts, j->unix_now, now, &j->json);
    break;
  case ADMIN_MUTE:
    j->rc = hd_node_admin_mute(node, j->app, j->room, j->identity, j->track_sid, j->muted, now);
    break;
  }
}

static void admin_call(server_t *s, admin_job_t *j) {
  hd_media_workers_call(s->workers, serve_room_worker(s, j->app, j->room), admin_job, j);
}

/* GET /admin/rooms: every worker's rooms of the app, as one {"rooms": [...]};
 * for a token scoped to one room (only_room non-empty), that room alone (from
 * the one worker that owns it): a room's admin never sees the tenant's other
 * rooms. */
static char *admin_list_rooms(server_t *s, const char *app, const char *only_room) {
  json_t *all = json_array();
  int scoped = only_room && only_room[0];
  int first = scoped ? serve_room_worker(s, app, only_room) : 0;
  int last = scoped ? first + 1 : hd_media_workers_count(s->workers);
  for (int i = first; i < last; i++) {
    admin_job_t j = {.op = ADMIN_LIST, .app = app};
    hd_media_workers_call(s->workers, i, admin_job, &j);
    json_t *part = j.json ? json_loads(j.json, 0, NULL) : NULL;
    json_t *rooms = json_object_get(part, "rooms");
    size_t k;
    json_t *r;
    json_array_foreach(rooms, k, r) {
      const char *name = json_string_value(json_object_get(r, "name"));
      if (!scoped || (name && !strcmp(name, only_room))) json_array_append(all, r);
    }
    json_decref(part);
    free(j.json);
  }
  json_t *o = json_pack("{s:o}", "rooms", all);
  char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  return text;
}

/* A room-scoped /admin request that found no such room here (issue 15 item
 * 2: "the admin API answers for the whole cluster from any node"; docs/
 * overlay.md "A room across nodes", *Admin API*): with --redis, 307 to the
 * same path and query on a node that holds the room (307, unlike 302, keeps
 * the method and body: a DELETE stays a DELETE), or 404 saying no node holds
 * it. Returns 1 if it answered, 0 if the caller gives its own 404 (no
 * cluster, or this node holds the room and the participant is what is
 * missing). */
static int admin_elsewhere(server_t *s, const hd_http_req_t *req, hd_http_resp_t *resp, const char *app,
                           const char *room) {
  char url[HD_CLUSTER_URL_MAX], loc[HD_CLUSTER_URL_MAX + 1024];
  int n = 0;
  int rc = hd_serve_cluster_holder(s->cluster, app, room, url, sizeof url, &n);
  if (rc == HD_ENOTFOUND) {
    hd_http_resp_text(resp, 404,
                      "no such room: no node of the cluster holds room '%s' (%d node(s) in the registry); "
                      "create it with POST /admin/rooms or join it first\n",
                      room, n);
    return 1;
  }
  if (rc != 0) return 0;
  size_t ul = strlen(url);
  while (ul > 0 && url[ul - 1] == '/')
    url[--ul] = 0;
  int l = snprintf(loc, sizeof loc, "%s%s%s%s", url, req->path, req->query && req->query[0] ? "?" : "",
                   req->query ? req->query : "");
  if (l < 0 || (size_t)l >= sizeof loc || (size_t)l >= sizeof resp->header_values[0]) {
    hd_http_resp_text(resp, 404, "room '%s' is held by the node at %s: send the request there\n", room, url);
    return 1;
  }
  hd_http_resp_header(resp, "Location", loc);
  hd_http_resp_text(resp, 307,
                    "room '%s' is held by another node: repeat the request (same method, body and "
                    "Authorization header) at %s\n",
                    room, loc);
  return 1;
}

/* ---- /admin: room administration with a roomAdmin token ----
 *   GET    /admin/rooms
 *   POST   /admin/rooms      {"name", "empty_timeout_s"?, "max_participants"?, "metadata"?}
 *   GET    /admin/rooms/{room}/participants
 *   DELETE /admin/rooms/{room}/participants/{identity}
 *   POST   /admin/rooms/{room}/participants/{identity}/mute   {"track_sid": "...", "muted": true}
 *   DELETE /admin/rooms/{room}                                                                 */
void serve_handle_admin(server_t *s, const hd_http_req_t *req, hd_http_resp_t *resp) {
  char parts[4][130];
  int np = 0;
  const char *q = req->path + strlen("/admin/");
  while (*q && np < 4) {
    const char *e = strchr(q, '/');
    size_t l = e ? (size_t)(e - q) : strlen(q);
    if (l == 0 || l >= sizeof parts[0]) break;
    memcpy(parts[np], q, l);
    parts[np][l] = 0;
    np++;
    q = e ? e + 1 : q + l;
  }
  if (np == 0 || strcmp(parts[0], "rooms") || *q) {
    hd_http_resp_text(resp, 404, "not found: %s\n", req->path);
    return;
  }
  serve_add_cors(s, req, resp);
  const char *room = np >= 2 ? parts[1] : "";
  if (np >= 2 && !serve_valid_room(room, strlen(room))) {
    hd_http_resp_text(resp, 400, "bad room name\n");
    return;
  }
  hd_token_claims_t claims;
  if (serve_authorize(s, req, room[0] ? room : NULL, HD_GRANT_ADMIN, &claims, resp) < 0) return;
  char *json = NULL;
  int rc = 0;
  admin_job_t j = {.app = claims.key, .room = room, .identity = np >= 4 ? parts[3] : NULL};
  if (np == 1 && !strcmp(req->method, "GET")) {
    json = admin_list_rooms(s, claims.key, claims.room);
    if (!json) rc = HD_ENOMEM;
  } else if (np == 1 && !strcmp(req->method, "POST")) {
    admin_create_room(s, req, resp, &claims);
    return;
  } else if (np == 2 && !strcmp(req->method, "DELETE")) {
    j.op = ADMIN_CLOSE;
    admin_call(s, &j);
    rc = j.rc;
  } else if (np == 3 && !strcmp(parts[2], "participants") && !strcmp(req->method, "GET")) {
    j.op = ADMIN_PARTICIPANTS;
    admin_call(s, &j);
    rc = j.rc;
    json = j.json;
  } else if (np == 4 && !strcmp(parts[2], "participants") && !strcmp(req->method, "DELETE")) {
    j.op = ADMIN_REMOVE;
    admin_call(s, &j);
    rc = j.rc;
  } else {
    hd_http_resp_text(resp, 405, "%s is not allowed on %s\n", req->method, req->path);
    return;
  }
  if (rc == HD_ENOTFOUND && room[0] && admin_elsewhere(s, req, resp, claims.key, room)) {
    /* answered: 307 to a holder, or 404 held nowhere */
  } else if (rc == HD_ENOTFOUND)
    hd_http_resp_text(resp, 404, "no such room or participant\n");
  else if (rc < 0)
    hd_http_resp_text(resp, 400, "%s\n", hd_strerror(rc));
  else if (json)
    hd_http_resp_body(resp, 200, "application/json", json, strlen(json));
  else
    hd_http_resp_body(resp, 200, "application/json", "{\"ok\":true}", 11);
  free(json);
}

/* POST /admin/rooms: creates a room ahead of the first join (201 with the
 * room's JSON; 409 if it exists; 400 on a bad body). */
static void admin_create_room(server_t *s, const hd_http_req_t *req, hd_http_resp_t *resp,
                              const hd_token_claims_t *claims) {
  json_error_t je;
  json_t *b = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
  static const char *const keys[] = {"name", "empty_timeout_s", "max_participants", "metadata"};
  const char *bad = NULL;
  if (!json_is_object(b)) bad = "body must be a JSON object";
  const char *k;
  json_t *kv;
  if (!bad) json_object_foreach(b, k, kv) {
      size_t i = 0;
      while (i < sizeof keys / sizeof keys[0] && strcmp(k, keys[i]))
        i++;
      if (i == sizeof keys / sizeof keys[0])
        bad = "unknown member (allowed: name, empty_timeout_s, max_participants, metadata)";
    }
  json_t *nm = b ? json_object_get(b, "name") : NULL, *to = b ? json_object_get(b, "empty_timeout_s") : NULL;
  json_t *mp = b ? json_object_get(b, "max_participants") : NULL,
         *md = b ? json_object_get(b, "metadata") : NULL;
  if (!bad && (!json_is_string(nm) || !serve_valid_room(json_string_value(nm), json_string_length(nm))))
    bad = "\"name\" must be a room name (1-64 characters of A-Z a-z 0-9 - _ .)";
  if (!bad && to && (!json_is_integer(to) || json_integer_value(to) < 1 || json_integer_value(to) > 86400))
    bad = "\"empty_timeout_s\" must be an integer in [1, 86400]";
  if (!bad && mp && (!json_is_integer(mp) || json_integer_value(mp) < 1 || json_integer_value(mp) > 100000))
    bad = "\"max_participants\" must be an integer in [1, 100000]";
  if (!bad && md && (!json_is_string(md) || json_string_length(md) >= HD_NODE_ROOM_METADATA_MAX))
    bad = "\"metadata\" must be a string shorter than 1024 bytes";
  if (bad) {
    hd_http_resp_text(resp, 400, "%s\n", bad);
    json_decref(b);
    return;
  }
  const char *name = json_string_value(nm);
  char why[256];
  if (hd_token_authorize(claims, name, HD_GRANT_ADMIN, why, sizeof why) < 0) {
    s->auth_failures++;
    hd_http_resp_text(resp, 403, "forbidden: %s\n", why);
    json_decref(b);
    return;
  }
  hd_room_opts_t o = {.empty_timeout = to ? HD_SEC(json_integer_value(to)) : -1,
                      .max_participants = mp ? (size_t)json_integer_value(mp) : 0,
                      .metadata = md ? json_string_value(md) : NULL};
  admin_job_t j = {.op = ADMIN_CREATE, .app = claims->key, .room = name, .opts = &o, .unix_now = time(NULL)};
  admin_call(s, &j);
  char *json = j.json;
  int rc = j.rc;
  if (rc == HD_ESTATE)
    hd_http_resp_text(resp, 409, "room '%s' already exists\n", name);
  else if (rc == HD_EINVAL)
    hd_http_resp_text(resp, 400,
                      "the room would close at once: give \"empty_timeout_s\" (the node's "
                      "room_empty_timeout_s is 0)\n");
  else if (rc < 0)
    hd_http_resp_text(resp, 500, "%s\n", hd_strerror(rc));
  else
    hd_http_resp_body(resp, 201, "application/json", json, strlen(json));
  free(json);
  json_decref(b);
}

/* POST /admin/rooms/{room}/participants/{identity}/mute */
void serve_handle_admin_mute(server_t *s, const hd_http_req_t *req, hd_http_resp_t *resp) {
  char room[80] = "", identity[130] = "";
  const char *p = req->path + strlen("/admin/rooms/");
  const char *e = strchr(p, '/');
  if (!e || (size_t)(e - p) >= sizeof room || strncmp(e, "/participants/", 14)) {
    hd_http_resp_text(resp, 404, "not found\n");
    return;
  }
  memcpy(room, p, (size_t)(e - p));
  const char *id = e + 14;
  const char *e2 = strstr(id, "/mute");
  if (!e2 || strcmp(e2, "/mute") || (size_t)(e2 - id) >= sizeof identity || e2 == id) {
    hd_http_resp_text(resp, 404, "not found\n");
    return;
  }
  memcpy(identity, id, (size_t)(e2 - id));
  serve_add_cors(s, req, resp);
  if (!serve_valid_room(room, strlen(room))) {
    hd_http_resp_text(resp, 400, "bad room name\n");
    return;
  }
  hd_token_claims_t claims;
  if (serve_authorize(s, req, room, HD_GRANT_ADMIN, &claims, resp) < 0) return;
  json_error_t je;
  json_t *b = json_loadb(req->body, req->body_len, 0, &je);
  json_t *ts = b ? json_object_get(b, "track_sid") : NULL;
  json_t *mu = b ? json_object_get(b, "muted") : NULL;
  if (!json_is_string(ts) || (mu && !json_is_boolean(mu))) {
    json_decref(b);
    hd_http_resp_text(resp, 400, "body must be {\"track_sid\": string, \"muted\": boolean}\n");
    return;
  }
  admin_job_t j = {.op = ADMIN_MUTE,
                   .app = claims.key,
                   .room = room,
                   .identity = identity,
                   .track_sid = json_string_value(ts),
                   .muted = mu ? json_is_true(mu) : 1};
  admin_call(s, &j);
  int rc = j.rc;
  json_decref(b);
  if (rc == HD_ENOTFOUND && admin_elsewhere(s, req, resp, claims.key, room)) {
    /* answered: 307 to a holder, or 404 held nowhere */
  } else if (rc < 0)
    hd_http_resp_text(resp, 404, "no such participant or track\n");
  else
    hd_http_resp_body(resp, 200, "application/json", "{\"ok\":true}", 11);
}

/* GET /admin/quality/...: quality data of the token's app (docs/quality.md);
 * needs an app-wide roomAdmin token (room ""), as a call spans rooms and users. */
void serve_handle_admin_quality(server_t *s, const hd_http_req_t *req, hd_http_resp_t *resp) {
  serve_add_cors(s, req, resp);
  hd_token_claims_t claims;
  if (serve_authorize_operator(s, req, "quality data needs", &claims, resp) < 0) return;
  hd_serve_quality_http(s->quality, claims.key, req, resp);
}

/* GET /admin/cluster/links: the node links' measurements and routes (issue
 * 16 item 3; docs/overlay.md "Link measurement"): operator data, so an
 * app-wide roomAdmin token, as /admin/drain. */
void serve_handle_cluster_links(server_t *s, const hd_http_req_t *req, hd_http_resp_t *resp) {
  serve_add_cors(s, req, resp);
  if (strcmp(req->method, "GET")) {
    hd_http_resp_header(resp, "Allow", "GET");
    hd_http_resp_text(resp, 405, "use GET /admin/cluster/links\n");
    return;
  }
  hd_token_claims_t claims;
  if (serve_authorize_operator(s, req, "the cluster's links need", &claims, resp) < 0) return;
  hd_serve_cluster_links(s->cluster, resp);
}
