/* WebSocket server endpoints (RFC 6455) on the node's HTTP listener (io/http.h).
 *
 * One libwebsockets context serves HTTP and WebSocket on the same port. An
 * endpoint is registered by exact URL path ("/rtc", "/rtm"); an upgrade request
 * for a path without an endpoint gets 404. Each endpoint has three callbacks:
 *
 *   on_open    request line + headers (query, Origin, Authorization, ...) before
 *              the 101: accept, or reject with an HTTP status and body (§4.2.2).
 *   on_message one complete UTF-8 text message, fragments reassembled (§5.4),
 *              capped at max_message bytes: a larger message closes with 1009.
 *              Binary messages close with 1003; invalid UTF-8 closes with 1007.
 *   on_close   exactly once for every accepted connection, with the close code.
 *
 * Outbound: hd_ws_send frames the message into a bounded per-connection queue
 * (caps in bytes and in messages); each LWS_CALLBACK_SERVER_WRITEABLE writes
 * every queued message (up to 64 KiB of frames) in one write. A consumer too slow to keep the queue under its
 * caps is closed with 1008 ("slow consumer") and its queue is freed at once, so
 * a stalled client costs at most the caps plus the kernel's socket buffers.
 *
 * Liveness: a connection with no inbound frame (data or pong) for
 * idle_timeout_ms is closed with 1001 "idle timeout"; when ping_interval_ms is
 * set, a ping is sent after that much silence so that a live peer (every browser
 * answers pings) is never idle. Pings from the peer are answered by lws.
 *
 * THREADING: everything here runs on the loop thread of the hd_http_server_t
 * (the uv_loop passed to hd_http_server_start). Callbacks are called on it, and
 * every hd_ws_* function must be called on it, including from inside callbacks.
 * No function is thread-safe; other threads post work to the loop (uv_async).
 *
 * Ownership: a hd_ws_conn_t is owned by the server. It is valid from on_open
 * until on_close returns (on a rejected open: until on_open returns); keep your
 * per-connection state behind hd_ws_set_user and free it in on_close. Strings in
 * hd_ws_req_t and message text are lent for the duration of the call.
 *
 * Shutdown: hd_http_server_stop closes every open connection with 1001
 * "server shutdown", gives the close handshakes a short bounded time on the
 * loop, then calls on_close for every connection still open (code 1001) before
 * freeing it. The endpoint's ud must therefore outlive hd_http_server_stop. */
#ifndef HD_IO_WS_H
#define HD_IO_WS_H
#include <stddef.h>
#include <stdint.h>

#include "io/http.h"

typedef struct hd_ws_conn hd_ws_conn_t;

/* Close codes (RFC 6455 §7.4.1) used by this module. */
#define HD_WS_CLOSE_NORMAL 1000
#define HD_WS_CLOSE_GOING_AWAY 1001 /* idle timeout, server shutdown */
#define HD_WS_CLOSE_PROTOCOL 1002
#define HD_WS_CLOSE_UNSUPPORTED 1003 /* binary frame */
#define HD_WS_CLOSE_ABNORMAL 1006    /* reported only: TCP dropped without a close frame */
#define HD_WS_CLOSE_BAD_DATA 1007    /* invalid UTF-8 */
#define HD_WS_CLOSE_POLICY 1008      /* slow consumer (outbound queue overflow) */
#define HD_WS_CLOSE_TOO_BIG 1009     /* inbound message over max_message */
#define HD_WS_CLOSE_INTERNAL 1011
#define HD_WS_CLOSE_TRY_LATER 1013

/* Defaults applied when a config field is 0. */
#define HD_WS_DEFAULT_MAX_MESSAGE (64 * 1024)
#define HD_WS_DEFAULT_OUT_MAX_BYTES (1024 * 1024)
#define HD_WS_DEFAULT_OUT_MAX_MSGS 1024
#define HD_WS_DEFAULT_IDLE_TIMEOUT_MS 60000
#define HD_WS_DEFAULT_PING_INTERVAL_MS 20000
#define HD_WS_MAX_ENDPOINTS 16
#define HD_WS_MAX_REASON 123 /* close reason bytes that fit a control frame (§5.5) */

/* The upgrade request as seen by on_open. Every field is non-NULL ("" when the
 * header is absent). Headers longer than their buffers are given as "" except
 * authorization, which is then "oversized". */
typedef struct {
  const char *path;          /* URL path without query, e.g. "/rtc" */
  const char *query;         /* raw query string without '?', e.g. "access_token=...&v=1" */
  const char *origin;        /* Origin (browsers always send it; check it against an allow-list) */
  const char *authorization; /* Authorization (native clients; browsers cannot set it) */
  const char *host;          /* Host */
  const char *user_agent;    /* User-Agent */
  const char *protocol;      /* always "": an upgrade naming a subprotocol is refused with 400 */
  const char *peer;          /* peer IP address, e.g. "127.0.0.1" */
} hd_ws_req_t;

/* Accept by leaving reject->status at 0; reject by filling it (status >= 400,
 * e.g. hd_http_resp_text(reject, 401, "...") plus headers such as
 * WWW-Authenticate): the response is sent, the connection closed, and on_close
 * is NOT called. On accept, hd_ws_set_user / hd_ws_send may be called here
 * (messages are queued until the handshake completes). */
typedef void (*hd_ws_open_fn)(void *ud, hd_ws_conn_t *c, const hd_ws_req_t *req, hd_http_resp_t *reject);
/* One complete text message; text[len] == 0; lent for the call. */
typedef void (*hd_ws_message_fn)(void *ud, hd_ws_conn_t *c, const char *text, size_t len);
/* Connection gone. code: the peer's close code when it closed (1005 when its
 * close frame had none), ours when we closed (hd_ws_close, 1008, 1009, 1003,
 * 1001 idle/shutdown), 1006 when the TCP connection dropped or lws failed it
 * (protocol error, invalid UTF-8: lws sends the peer 1002/1007). c is freed
 * after this returns; hd_ws_send on it fails with HD_ECLOSED from here on. */
typedef void (*hd_ws_close_fn)(void *ud, hd_ws_conn_t *c, int code);

typedef struct {
  const char *path;            /* exact path, starts with '/', at most 63 bytes */
  hd_ws_open_fn on_open;       /* may be NULL: accept everything */
  hd_ws_message_fn on_message; /* may be NULL: messages are dropped */
  hd_ws_close_fn on_close;     /* may be NULL */
  void *ud;
  size_t max_message;   /* inbound cap per message, bytes; 0 = 64 KiB */
  size_t out_max_bytes; /* outbound queue cap per connection, bytes; 0 = 1 MiB */
  size_t out_max_msgs;  /* outbound queue cap per connection, messages; 0 = 1024 */
  int idle_timeout_ms;  /* 0 = 60 s; < 0 = never */
  int ping_interval_ms; /* 0 = 20 s; < 0 = no server pings */
  /* Inbound rate per connection, token bucket of msg_burst at msg_rate messages/s
   * (0 = unlimited). Applies to every complete message before on_message, valid
   * or not; messages over it are dropped without a reply (counted in
   * rate_dropped): a flood costs no parsing and no error replies. */
  double msg_rate, msg_burst;
} hd_ws_endpoint_config_t;

/* Registers a WebSocket endpoint on a running server. The config is copied
 * (path included). Returns 0, HD_EINVAL (bad path or caps), HD_ESTATE (path
 * already registered), HD_ENOSPC (more than HD_WS_MAX_ENDPOINTS). */
int hd_ws_endpoint_add(hd_http_server_t *s, const hd_ws_endpoint_config_t *cfg);

/* Queues a copy of a text message (text need not be NUL-terminated; it should
 * be UTF-8). Returns 0; HD_ECLOSED if the connection is closing or closed;
 * HD_EINVAL if len exceeds out_max_bytes; HD_ENOSPC if the queue is over its
 * caps, in which case the connection is being closed with 1008 "slow consumer"
 * (on_close follows later) and everything queued is dropped. */
int hd_ws_send(hd_ws_conn_t *c, const char *text, size_t len);
/* Runs fn(ud) once at the end of this loop turn, before the frames queued in
 * the turn are written (the RTM group commit: docs/rtm.md "Storage"); what
 * fn sends goes out in the same turn. One pending fn per server: a second
 * call in the same turn replaces it. During shutdown fn runs at once. */
void hd_ws_at_turn_end(hd_ws_conn_t *c, void (*fn)(void *ud), void *ud);

/* Starts a close: messages already queued are sent first, then a close frame
 * with code (1000..4999, not 1005/1006/1015; other values become 1000) and
 * reason (truncated to HD_WS_MAX_REASON bytes, may be NULL). A peer that does
 * not drain its queue and answer within a few seconds is disconnected.
 * on_close follows with this code. Returns 0, or HD_ECLOSED if already closing. */
int hd_ws_close(hd_ws_conn_t *c, int code, const char *reason);

/* Per-connection user pointer, NULL until set. */
void hd_ws_set_user(hd_ws_conn_t *c, void *user);
void *hd_ws_user(const hd_ws_conn_t *c);
/* Connection id: unique for the server's lifetime, starts at 1. */
uint64_t hd_ws_id(const hd_ws_conn_t *c);
/* The endpoint path the connection came in on. */
const char *hd_ws_path(const hd_ws_conn_t *c);
/* Bytes currently queued for sending. */
size_t hd_ws_queued_bytes(const hd_ws_conn_t *c);

/* Why connections closed, for hd_ws_stats_t.closes[]. */
enum {
  HD_WS_CR_PEER = 0, /* the peer sent a close frame */
  HD_WS_CR_APP,      /* hd_ws_close */
  HD_WS_CR_TOO_BIG,  /* 1009 */
  HD_WS_CR_BINARY,   /* 1003 */
  HD_WS_CR_SLOW,     /* 1008 outbound queue overflow */
  HD_WS_CR_IDLE,     /* 1001 idle timeout */
  HD_WS_CR_SHUTDOWN, /* 1001 server shutdown */
  HD_WS_CR_ABNORMAL, /* TCP dropped, protocol error, invalid UTF-8 */
  HD_WS_CR_COUNT
};

/* Counters of one endpoint (or, for path NULL, all endpoints summed). */
typedef struct {
  uint64_t open;                /* connections open now (gauge) */
  uint64_t accepted;            /* upgrades accepted */
  uint64_t rejected;            /* upgrades refused by on_open */
  uint64_t msgs_in, msgs_out;   /* complete messages received / written to lws */
  uint64_t rate_dropped;        /* received messages dropped over msg_rate */
  uint64_t bytes_in, bytes_out; /* their payload bytes */
  uint64_t queued_bytes;        /* outbound bytes queued now, all connections (gauge) */
  uint64_t queued_peak;         /* highest queued bytes one connection ever had */
  uint64_t closes[HD_WS_CR_COUNT];
} hd_ws_stats_t;

/* Fills *out for the endpoint at path (NULL: sum of all endpoints).
 * Returns 0 or HD_ENOTFOUND. */
int hd_ws_stats(hd_http_server_t *s, const char *path, hd_ws_stats_t *out);

/* Appends Prometheus text (hudong_ws_* with a path label) for every endpoint to
 * buf. Returns the number of bytes written (buf is NUL-terminated), 0 when no
 * endpoint is registered, or HD_ENOSPC if cap is too small. */
int hd_ws_metrics_text(hd_http_server_t *s, char *buf, size_t cap);

/* Name of a HD_WS_CR_* value ("peer", "app", "too_big", ...), never NULL. */
const char *hd_ws_close_reason_name(int cr);

#endif
