/* WebSocket client (RFC 6455) on a libuv loop, for the native SDK's signaling
 * (/rtc) and the load generator: connect ws://host:port/path, send and receive
 * text messages, close with a code.
 *
 * Why uv_tcp plus our own small RFC 6455 client instead of a libwebsockets
 * client context: the client needs only the opening handshake (§4.1), masked
 * text frames out (§5.3), unmasked frames in with fragment reassembly (§5.4),
 * ping/pong (§5.5.2) and the close handshake (§7); that is a few hundred lines.
 * An lws client context with a foreign libuv loop costs a context per loop, has
 * shutdown ordering hazards on a shared loop (see io/http.c), and a load
 * generator with hundreds of connections wants each to be just a uv_tcp_t.
 * wss:// (TLS 1.2+) runs over OpenSSL memory BIOs (like proto/dtls): the
 * server's certificate is verified against the system CA store or tls_ca_file
 * and its name against the URL's host; tls_insecure skips that (development
 * with a self-signed certificate). Programs that do not set these get them from
 * the environment: HUDONG_TLS_CA_FILE=FILE, HUDONG_TLS_INSECURE=1.
 *
 * Host names: numeric IPv4/IPv6 addresses and "localhost" (no DNS here).
 *
 * THREADING: everything runs on the loop passed to hd_ws_client_connect;
 * callbacks are called on it and every function must be called on it.
 *
 * Lifetime: on_close is called exactly once (after a close handshake, a
 * dropped connection, a failed or timed-out connect, or a protocol error),
 * unless hd_ws_client_free came first. The client may be freed at any time,
 * including inside a callback; no callback follows a free, and the memory is
 * released once libuv has closed the handles. */
#ifndef HD_IO_WS_CLIENT_H
#define HD_IO_WS_CLIENT_H
#include <stddef.h>
#include <uv.h>

#define HD_WS_CLIENT_DEFAULT_CONNECT_TIMEOUT_MS 5000
#define HD_WS_CLIENT_DEFAULT_MAX_MESSAGE (1u << 20) /* a node -> client message is at most 1 MiB */
#define HD_WS_CLIENT_DEFAULT_OUT_MAX_BYTES (4u << 20)
#define HD_WS_CLIENT_CLOSE_TIMEOUT_MS 2000 /* wait for the server's close frame */

/* Close codes reported by on_close besides the server's own (§7.4.1). */
#define HD_WS_CLIENT_ABNORMAL 1006 /* connection dropped / failed / timed out: no close frame */

typedef struct hd_ws_client hd_ws_client_t;

typedef struct {
  void (*on_open)(void *ud, hd_ws_client_t *c);
  /* One complete text message (not NUL-terminated), lent for the call. */
  void (*on_message)(void *ud, hd_ws_client_t *c, const char *text, size_t len);
  /* code: the server's close code (1005 if its frame had none), or 1006 with a
   * reason such as "connect timeout after 5000 ms", "connect: connection refused",
   * "handshake: HTTP/1.1 404 Not Found", "message over 1048576 bytes". */
  void (*on_close)(void *ud, hd_ws_client_t *c, int code, const char *reason);
  void *ud;
  unsigned connect_timeout_ms; /* TCP connect + opening handshake; 0 = default */
  size_t max_message;          /* inbound cap (reassembled); over it: close 1009; 0 = default */
  size_t out_max_bytes;        /* bytes queued for writing; over it hd_ws_client_send fails; 0 = default */
  const char *tls_ca_file;     /* wss://: PEM CA bundle to trust instead of the system's; NULL = system */
  int tls_insecure;            /* wss://: 1 = do not verify the certificate (development only) */
} hd_ws_client_config_t;

/* Starts connecting to url ("ws://127.0.0.1:7880/rtc", "wss://[::1]:7880/rtc").
 * Returns 0 (the outcome arrives as on_open or on_close; a TLS failure is a 1006
 * whose reason says why, e.g. "certificate not trusted"), HD_EINVAL (malformed
 * url), HD_EUNSUPPORTED (a host name that is not an address / localhost),
 * HD_ECRYPTO (TLS setup, unreadable CA file), HD_ENOMEM, HD_EIO. */
int hd_ws_client_connect(hd_ws_client_t **out, uv_loop_t *loop, const char *url,
                         const hd_ws_client_config_t *cfg);

/* Queues a text message (must be UTF-8; not checked). Returns 0, HD_ESTATE (not
 * open, or closing), HD_ENOSPC (out_max_bytes reached; nothing queued), HD_ENOMEM. */
int hd_ws_client_send(hd_ws_client_t *c, const char *text, size_t len);

/* Starts the close handshake with code (1000..4999) and a reason (<= 123
 * bytes, may be NULL); on_close follows when the server answers or after
 * HD_WS_CLIENT_CLOSE_TIMEOUT_MS. Before the connection is open it aborts the
 * connect (on_close 1006 "closed by client"). HD_ESTATE if already closing. */
int hd_ws_client_close(hd_ws_client_t *c, int code, const char *reason);

/* 1 once the opening handshake completed and until close starts. */
int hd_ws_client_is_open(const hd_ws_client_t *c);

/* Bytes queued for writing and not yet written. */
size_t hd_ws_client_queued(const hd_ws_client_t *c);

/* Frees the client (closes the socket without a handshake if still open). */
void hd_ws_client_free(hd_ws_client_t *c);

#endif
