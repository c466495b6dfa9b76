/* `hudong serve`'s egress control (issue 18 items 4 and 5, docs/egress.md),
 * kept out of serve.c: the /admin/egress API, one `hudong egress` child
 * process per recording (spawned and watched on the control loop, never on a
 * media worker), its status lines, the limits (concurrent recordings, disk
 * floor) and the egress_started / egress_updated / egress_ended webhooks.
 * Control thread only. */
#ifndef HD_CMD_SERVE_EGRESS_H
#define HD_CMD_SERVE_EGRESS_H
#include <stddef.h>
#include <uv.h>

#include "cmd/config.h"
#include "io/http.h"
#include "io/webhook_sender.h"
#include "proto/token.h"

#define HD_EGRESS_HISTORY 256 /* recordings remembered (running + ended; the oldest ended go first) */

typedef struct hd_serve_egress hd_serve_egress_t;

typedef struct {
  const hd_config_t *cfg;
  uv_loop_t *loop;
  hd_webhook_sender_t *webhooks; /* NULL = none configured */
} hd_serve_egress_config_t;

int hd_serve_egress_start(hd_serve_egress_t **out, const hd_serve_egress_config_t *cfg);
/* Stops every running recording (SIGTERM: files finished; SIGKILL after 5 s),
 * waits for the children and frees. NULL ok. */
void hd_serve_egress_stop(hd_serve_egress_t *e);

/* /admin/egress[/{id}] and /admin/ingress for a token the caller verified
 * (claims); this checks the canRecord (or roomAdmin) grant for the room. */
void hd_serve_egress_http(hd_serve_egress_t *e, const hd_token_claims_t *claims, const hd_http_req_t *req,
                          hd_http_resp_t *resp);
/* /api/rtmp/on_publish and on_publish_done: the RTMP front's callbacks
 * (no token: the stream key in the form body is the credential). */
void hd_serve_egress_rtmp_http(hd_serve_egress_t *e, const hd_http_req_t *req, hd_http_resp_t *resp);
/* Appends the /metrics series; length written, HD_ENOSPC when it does not fit. */
int hd_serve_egress_metrics(hd_serve_egress_t *e, char *out, size_t cap);

#endif
