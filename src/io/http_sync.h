/* Blocking HTTP/1.1 over plain TCP (http:// only; RFC 9112), for code that
 * runs outside an event loop: the SDK's cluster routing (client/client_route.c,
 * hd_client_route) and the CLI's admin calls (`hudong drain`, `hudong cluster
 * links`). One request at a time on a kept-alive connection, responses framed
 * by Content-Length (what a hudong node sends), every step bounded by a
 * deadline on the monotonic clock (non-blocking socket + poll; a signal
 * retries the wait, it does not fail the request). The event-loop client is io/http_client.h.
 * Host names go through getaddrinfo, whose own timeouts are the resolver's:
 * the deadline bounds connect, send and receive. */
#ifndef HD_IO_HTTP_SYNC_H
#define HD_IO_HTTP_SYNC_H
#include <stddef.h>
#include <stdint.h>

#include "io/http_client.h"

/* The monotonic clock in ms, the time base of the deadlines below. */
int64_t hd_http_sync_now_ms(void);

/* A TCP connection to u's host:port, made before deadline_ms. The socket
 * (>= 0), or HD_ENOTFOUND (name did not resolve), HD_ETIMEDOUT, HD_EIO
 * (refused, unreachable). The caller closes it. */
int hd_http_sync_connect(const hd_http_url_t *u, int64_t deadline_ms);
/* What hd_http_sync_connect's error means, in words, for messages. */
const char *hd_http_sync_connect_error(int rc);

/* One request on fd (kept alive: several may follow on it). path is the
 * request target ("/api/ping"); token, if not NULL, goes as a Bearer
 * Authorization. The response body, NUL-terminated, into body[0..cap).
 * Returns the status (100..599), or HD_ETIMEDOUT (deadline passed), HD_EIO
 * (connection closed or failed), HD_EPROTO (not an HTTP/1.x response or no
 * Content-Length), HD_ENOSPC (head or body does not fit in cap), HD_EINVAL
 * (the request itself is too large: a token over HD_TOKEN_MAX bytes or an
 * over-long path), HD_ENOMEM. */
int hd_http_sync_request(int fd, const char *method, const hd_http_url_t *u, const char *path,
                         const char *token, char *body, size_t cap, int64_t deadline_ms);
/* What hd_http_sync_request's error means, in words, for messages. */
const char *hd_http_sync_request_error(int rc);

/* u's own path (a proxy prefix such as /hudong, trailing slashes dropped)
 * followed by path, into out. 0, or HD_ENOSPC. */
int hd_http_sync_path(const hd_http_url_t *u, const char *path, char *out, size_t cap);

/* One request to base + path on a connection of its own, all within
 * timeout_ms. The status, or a negative HD_E* with a sentence in err that
 * says what to do (https URL, malformed URL, no answer, bad answer). */
int hd_http_sync(const char *method, const char *base, const char *path, const char *token, char *body,
                 size_t cap, int timeout_ms, char *err, size_t errcap);

#endif
