/* Drives the sans-IO webhook core (sfu/webhook.h) on a libuv loop: polls it
 * for due requests, performs them with the HTTP client (io/http_client.h),
 * reports the results, and keeps one uv_timer at the core's next deadline.
 * serve.c owns one sender and pushes events from room/session changes. */
#ifndef HD_IO_WEBHOOK_SENDER_H
#define HD_IO_WEBHOOK_SENDER_H
#include <stdint.h>
#include <uv.h>

#include "sfu/webhook.h"

typedef struct {
  hd_webhook_config_t core;    /* queue, attempts, backoff */
  uint64_t connect_timeout_ms; /* per attempt, DNS + TCP connect (default 5000) */
  uint64_t timeout_ms;         /* per attempt, whole request (default 10000) */
} hd_webhook_sender_config_t;

void hd_webhook_sender_config_defaults(hd_webhook_sender_config_t *cfg);

typedef struct hd_webhook_sender hd_webhook_sender_t;

/* Creates the sender and its core (cfg NULL = defaults). Add apps and URLs
 * with hd_webhook_add_app/hd_webhook_add_url on hd_webhook_sender_core(). */
int hd_webhook_sender_start(hd_webhook_sender_t **out, uv_loop_t *loop,
                            const hd_webhook_sender_config_t *cfg);

/* The core, for adding apps/URLs and reading stats. Owned by the sender. */
hd_webhook_t *hd_webhook_sender_core(hd_webhook_sender_t *s);

/* Pushes an event with the loop's clock and the wall clock, then starts any
 * request now due. Returns what hd_webhook_push returns. */
int hd_webhook_sender_push(hd_webhook_sender_t *s, const hd_webhook_event_t *ev);

/* Requests in flight right now (for tests and shutdown logging). */
int hd_webhook_sender_inflight(const hd_webhook_sender_t *s);

/* Stops: cancels requests in flight (their events are lost, as are queued
 * ones: webhooks are not persisted), closes the timer, frees everything once
 * the loop has run the closes. NULL is fine. */
void hd_webhook_sender_stop(hd_webhook_sender_t *s);

#endif
