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
/* /metrics lines (nothing without --redis); returns the length written. */
int hd_serve_cluster_metrics_text(hd_serve_cluster_t *c, char *out, size_t cap);

#endif
