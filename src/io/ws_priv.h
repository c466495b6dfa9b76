/* Glue between io/http.c (which owns the libwebsockets context and its HTTP
 * protocol) and io/ws.c (WebSocket endpoints on that context). Private to
 * src/io: nothing outside http.c and ws.c includes this. */
#ifndef HD_IO_WS_PRIV_H
#define HD_IO_WS_PRIV_H
#include <libwebsockets.h>
#include <uv.h>

#include "io/http.h"

typedef struct hd_ws_hub hd_ws_hub_t;

/* Name of the lws protocol that carries every WebSocket connection; it is the
 * vhost's default protocol, so upgrades without Sec-WebSocket-Protocol bind it. */
#define HD_WS_LWS_PROTOCOL "hudong-ws"
/* Per-connection receive buffer lws keeps (see http.c). */
#define HD_WS_LWS_RX_BUFFER 1024

int hd_ws__hub_new(hd_ws_hub_t **out, uv_loop_t *loop);
/* Before lws_context_destroy: close every connection with 1001 and turn the loop
 * (bounded) so the close handshakes can finish; stops the sweep timer. */
void hd_ws__hub_shutdown(hd_ws_hub_t *h);
/* After lws_context_destroy (every connection has been reported closed). */
void hd_ws__hub_free(hd_ws_hub_t *h);

/* LWS_CALLBACK_HTTP_CONFIRM_UPGRADE on the HTTP protocol: routes by path and
 * asks the endpoint's on_open. Returns 0 to let lws upgrade, -1 after having
 * written a refusal (404, 503 or the endpoint's status): lws hangs up. */
int hd_ws__confirm_upgrade(hd_ws_hub_t *h, struct lws *wsi, const char *upgrade);
/* The lws protocol callback of HD_WS_LWS_PROTOCOL. http.c also forwards the
 * WebSocket reasons and LWS_CALLBACK_WSI_DESTROY it receives to it, for
 * connections that bound the HTTP protocol by naming it as a subprotocol. */
int hd_ws__lws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len);

/* From http.c. */
hd_ws_hub_t *hd_http__hub(hd_http_server_t *s);
/* Every wsi's LWS_CALLBACK_WSI_DESTROY: the accept gate stops counting it. */
void hd_http__wsi_gone(struct lws *wsi);
int hd_http__send_response(struct lws *wsi, const hd_http_resp_t *r, int no_reuse);

#endif
