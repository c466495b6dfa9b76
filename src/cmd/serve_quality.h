/* `hudong serve`'s quality pipeline (issue 14, docs/quality.md), kept out of
 * serve.c: the store and its writer thread, the collector fed by the /rtc
 * connections (quality_report / quality_join) and by node samples taken every
 * sample interval from each media worker, participant events from the node's
 * lifecycle events, the alert timer (webhook quality_alert), the
 * /admin/quality API and the /metrics series. Control thread only. */
#ifndef HD_CMD_SERVE_QUALITY_H
#define HD_CMD_SERVE_QUALITY_H
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "cmd/config.h"
#include "io/http.h"
#include "io/media_workers.h"
#include "io/webhook_sender.h"
#include "proto/token.h"
#include "rtm/broker.h"
#include "sfu/webhook.h"

typedef struct hd_serve_quality hd_serve_quality_t;

typedef struct {
  const hd_config_t *cfg;
  uv_loop_t *loop;
  hd_media_workers_t *workers;
  hd_webhook_sender_t *webhooks; /* NULL = none configured */
  hd_rtm_broker_t *rtm;          /* delivery rate per app, sampled with the node (NULL = none) */
  hd_token_secret_fn lookup;
  void *lookup_ud;
} hd_serve_quality_config_t;

/* Opens the store (err says why not) and starts the writer and timers. */
int hd_serve_quality_start(hd_serve_quality_t **out, const hd_serve_quality_config_t *cfg, char *err,
                           size_t errcap);
/* Writes what is queued and stops. NULL ok. */
void hd_serve_quality_stop(hd_serve_quality_t *q);

/* A /rtc text message from connection conn. Returns 1 if it was a quality
 * message, handled here (an error reply, if any, is written to reply as a
 * signaling "error" and *reply_len set), 0 to pass it to the node. */
int hd_serve_quality_rtc_message(hd_serve_quality_t *q, uint64_t conn, const char *text, size_t len,
                                 char *reply, size_t cap, size_t *reply_len);
/* A message the node sends to conn (a "joined" registers the connection). */
void hd_serve_quality_rtc_sent(hd_serve_quality_t *q, uint64_t conn, const char *text, size_t len);
void hd_serve_quality_rtc_closed(hd_serve_quality_t *q, uint64_t conn);
/* A node lifecycle event (participant joined/left, track published ...). */
void hd_serve_quality_event(hd_serve_quality_t *q, const hd_webhook_event_t *ev);

/* GET /admin/quality/... for tenant app (the caller checked an app-wide roomAdmin token). */
void hd_serve_quality_http(hd_serve_quality_t *q, const char *app, const hd_http_req_t *req,
                           hd_http_resp_t *resp);
/* Appends the /metrics series; length written (0 when it does not fit). */
int hd_serve_quality_metrics(hd_serve_quality_t *q, char *out, size_t cap);

#endif
