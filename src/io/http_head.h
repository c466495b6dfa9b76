/* Checks the head (request line + header fields) of the first HTTP/1.1 request
 * on a connection before libwebsockets parses it (io/http.c's accept gate).
 * Sans-IO: bytes in, a verdict out.
 *
 * Why a second parser: libwebsockets 4.1 accepts what RFC 9112 says to reject
 * and hangs on some valid input:
 *  - Content-Length "5x", "+5", "5, 40" or twice: lws takes atoll() of the first
 *    value, and the rest of the body is then read as a second request (request
 *    smuggling behind a proxy). RFC 9112 §6.3 (item 5): an invalid
 *    Content-Length is an unrecoverable error: 400 and close.
 *  - a header name that is a proper prefix of a name lws knows ("X-Forwarded:",
 *    "Content:", "If:", "T:"): its lexer loses the ':' and reads the rest of the
 *    head as the header's name, so the request never completes. The node uses
 *    none of those names: the line is removed before lws sees it.
 *  - CONNECT: lws turns the connection into a raw socket with no timeout; the
 *    node is not a proxy, so it is refused (405).
 * Also refused: a request line that is not "METHOD SP target SP HTTP/1.x",
 * header names that are not tokens or have whitespace before the colon
 * (RFC 9112 §5.1), obsolete line folding (§5.2), Transfer-Encoding together with
 * Content-Length (§6.1). */
#ifndef HD_IO_HTTP_HEAD_H
#define HD_IO_HTTP_HEAD_H
#include <stddef.h>

/* Largest request head accepted (request line + headers + blank line); a
 * longer one gets 431. Same as the lws header buffer (io/http.c). */
#define HD_HTTP_HEAD_MAX 8192

/* Length of the head in buf[0..len) including the terminating empty line
 * (CRLF CRLF, or LF LF from lenient clients), or 0 if it is not complete yet. */
size_t hd_http_head_length(const char *buf, size_t len);

/* What hd_http_head_check saw besides its verdict. */
typedef struct {
  int dropped;  /* header lines removed (lws lexer traps) */
  int has_body; /* Content-Length > 0 or Transfer-Encoding */
  int upgrade;  /* an Upgrade header */
  char first_dropped[48];
} hd_http_head_info_t;

/* Checks the complete head buf[0..*head_len) and removes, in place, header lines
 * lws would mis-parse; bytes after the head (the start of a body) are moved
 * along: *total is the length of everything in buf and is updated too.
 * Returns 0 when the request may go on, else the HTTP status to answer with
 * (400, 405, 501, 505), why being filled with a one-line reason that says what
 * to do. info (may be NULL) is filled in both cases. */
int hd_http_head_check(char *buf, size_t *head_len, size_t *total, char *why, size_t whycap,
                       hd_http_head_info_t *info);

#endif
