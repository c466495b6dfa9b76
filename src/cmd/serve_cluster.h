/* `hudong serve`'s cluster side (issue 15 items 1 and 4; docs/overlay.md):
 * this node's registry entry built from its media workers, the Redis link
 * when --redis is given (io/cluster_redis.h), and GET /api/route. Without
 * --redis the node is a cluster of one: /api/route answers with itself. */
#ifndef HD_CMD_SERVE_CLUSTER_H
#define HD_CMD_SERVE_CLUSTER_H
#include <stddef.h>

#include "cmd/config.h"
#include "io/http.h"
#include "io/media_workers.h"
#include "sfu/webhook.h"

typedef struct hd_serve_cluster hd_serve_cluster_t;

/* cfg must outlive the object (node_id and announce_url already defaulted:
 * hd_serve_cluster_defaults). err says what is wrong on failure. */
int hd_serve_cluster_start(hd_serve_cluster_t **out, uv_loop_t *loop, const hd_config_t *cfg,
                           hd_media_workers_t *workers, char *err, size_t errcap);
/* Fills node_id (hostname:listen_port) and announce_url (scheme://host:port)
 * when the config leaves them empty. */
void hd_serve_cluster_defaults(hd_config_t *cfg, const char *scheme);
void hd_serve_cluster_stop(hd_serve_cluster_t *c);
/* GET /api/route for (app, room) once the token is checked; query is the raw
 * query string (region, labels, rtt). */
void hd_serve_cluster_route(hd_serve_cluster_t *c, const char *app, const char *room, const char *query,
                            hd_http_resp_t *resp);
/* Draining (issue 15 item 6; docs/overlay.md "Draining"): from now on this
 * node's registry entry says "draining": true, so no node's /api/route picks
 * it. There is no way back: a drained node stops. */
void hd_serve_cluster_set_draining(hd_serve_cluster_t *c);
/* Where a client of (app, room) should go instead of this node: the URL of the
 * node /api/route would pick for the room (without client RTTs) among the
 * others; room may be "" (then by load). url = "" when no other node is
 * known (no --redis, or every other node full or draining). */
void hd_serve_cluster_redirect(hd_serve_cluster_t *c, const char *app, const char *room, char *url,
                               size_t cap);
/* The admin API for a room this node does not hold (issue 15 item 2;
 * docs/overlay.md "A room across nodes", *Admin API*): from the registry this
 * node already keeps in memory (its peers' entries, refreshed by every
 * heartbeat read, so no blocking Redis call on the HTTP thread). Returns 1 if
 * this node holds the room, 0 with url = the announced URL of a peer that
 * holds it (the least loaded one), HD_ENOTFOUND if no node of the registry
 * does (*n_nodes = how many nodes were looked at), HD_EUNSUPPORTED without
 * --redis. */
int hd_serve_cluster_holder(hd_serve_cluster_t *c, const char *app, const char *room, char *url, size_t cap,
                            int *n_nodes);
/* The /rtc messages of a draining node (docs/protocol.md): the `error` 503
 * node_draining refusing a join (id = the join's id or NULL) and the `left`
 * node_draining telling a participant to move, both with `redirect` when
 * another node is known. Return the length, or -1 if cap is too small. */
int hd_serve_cluster_drain_error(hd_serve_cluster_t *c, const char *id, const char *app, const char *room,
                                 char *out, size_t cap);
int hd_serve_cluster_drain_left(hd_serve_cluster_t *c, char *out, size_t cap);
/* Room events once per cluster (docs/overlay.md "Room events"): a node's
 * webhook event ev goes through here first. 0: not taken, emit it as it is
 * (no --redis, or no room event of ev's room waits). 1: taken; emit(ud, ...)
 * gets it later, or never for a room_started / room_finished another node of
 * the cluster fires, and with the room's cluster-wide sid. */
typedef void (*hd_serve_event_fn)(void *ud, const hd_webhook_event_t *ev);
int hd_serve_cluster_event(hd_serve_cluster_t *c, const hd_webhook_event_t *ev, hd_serve_event_fn emit,
                           void *ud);
/* Where the cluster side sends events of its own: room_finished of a room
 * whose last node was killed (noticed by this node in Redis). */
void hd_serve_cluster_set_emit(hd_serve_cluster_t *c, hd_serve_event_fn emit, void *ud);
/* /metrics lines (nothing without --redis); returns the length written. */
int hd_serve_cluster_metrics_text(hd_serve_cluster_t *c, char *out, size_t cap);
/* GET /admin/cluster/links: this node's measured links and its route per
 * destination node, as of the last heartbeat (docs/overlay.md "Link measurement"). */
void hd_serve_cluster_links(hd_serve_cluster_t *c, hd_http_resp_t *resp);
/* hudong_link_* lines for /metrics; the length, or HD_ENOSPC. */
int hd_serve_cluster_links_metrics(hd_serve_cluster_t *c, char *out, size_t cap);

#endif
