/* Blocking HTTP/1.1 client: see http_sync.h. The socket is non-blocking and
 * every wait is a poll() on the time left before the deadline, so a peer that
 * trickles bytes cannot hold the caller past it, and a signal (EINTR) only
 * costs a retry of the wait, never the request. */
#include "io/http_sync.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "proto/token.h"

int64_t hd_http_sync_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for events, or the deadline: 0, HD_ETIMEDOUT, or
 * HD_EIO. A signal retries the wait with the time then left. */
static int wait_fd(int fd, short events, int64_t deadline_ms) {
  for (;;) {
    int64_t left = deadline_ms - hd_http_sync_now_ms();
    if (left <= 0) return HD_ETIMEDOUT;
    struct pollfd p = {.fd = fd, .events = events};
    int r = poll(&p, 1, left > 60000 ? 60000 : (int)left);
    if (r > 0) return 0; /* ready, or an error/hang-up the next call reports */
    if (r < 0 && errno != EINTR) return HD_EIO;
  }
}

/* connect() of a non-blocking socket within the deadline: 0 or HD_E*. */
static int connect_by(int fd, const struct sockaddr *sa, socklen_t len, int64_t deadline_ms) {
  if (connect(fd, sa, len) == 0) return 0;
  if (errno != EINPROGRESS && errno != EINTR) return HD_EIO; /* EINTR: it goes on in the background */
  int rc = wait_fd(fd, POLLOUT, deadline_ms);
  if (rc < 0) return rc;
  int soerr = 0;
  socklen_t sl = sizeof soerr;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) return HD_EIO;
  return 0;
}

int hd_http_sync_connect(const hd_http_url_t *u, int64_t deadline_ms) {
  char port[8];
  snprintf(port, sizeof port, "%d", u->port);
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
  if (getaddrinfo(u->host, port, &hints, &res) != 0) return HD_ENOTFOUND;
  int fd = -1, rc = HD_EIO;
  for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) continue;
    if ((rc = connect_by(fd, a->ai_addr, a->ai_addrlen, deadline_ms)) == 0) break;
    close(fd);
    fd = -1;
    if (rc == HD_ETIMEDOUT) break; /* no time left for the next address */
  }
  freeaddrinfo(res);
  return fd >= 0 ? fd : rc;
}

const char *hd_http_sync_connect_error(int rc) {
  return rc == HD_ENOTFOUND   ? "the host name does not resolve"
         : rc == HD_ETIMEDOUT ? "connect timed out"
                              : "connection refused or host unreachable";
}

const char *hd_http_sync_request_error(int rc) {
  switch (rc) {
  case HD_ETIMEDOUT: return "no complete answer before the deadline (the server is slow or is not HTTP)";
  case HD_EIO: return "the connection closed or failed before a complete answer";
  case HD_EPROTO: return "the answer is not HTTP/1.x with a Content-Length";
  case HD_ENOSPC: return "the answer is larger than the buffer for it";
  case HD_EINVAL: return "the request is too large (an over-long token or path)";
  }
  return hd_strerror(rc);
}

int hd_http_sync_path(const hd_http_url_t *u, const char *path, char *out, size_t cap) {
  size_t pl = strlen(u->path);
  while (pl > 0 && u->path[pl - 1] == '/')
    pl--;
  int n = snprintf(out, cap, "%.*s%s", (int)pl, u->path, path);
  return n < 0 || (size_t)n >= cap ? HD_ENOSPC : 0;
}

/* recv within the deadline: > 0 bytes, or a negative HD_E*. */
static int recv_some(int fd, char *buf, size_t n, int64_t deadline_ms) {
  for (;;) {
    ssize_t r = recv(fd, buf, n, MSG_DONTWAIT);
    if (r > 0) return (int)r;
    if (r == 0) return HD_EIO;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return HD_EIO;
    int rc = wait_fd(fd, POLLIN, deadline_ms);
    if (rc < 0) return rc;
  }
}

/* The request head: the longest path hd_http_sync_path makes, the host, a
 * token of up to HD_TOKEN_MAX bytes, the fixed headers. */
#define REQ_MAX (2 * HD_HTTPC_PATH_MAX + 1024 + HD_HTTPC_HOST_MAX + HD_TOKEN_MAX + 512)

int hd_http_sync_request(int fd, const char *method, const hd_http_url_t *u, const char *path,
                         const char *token, char *body, size_t cap, int64_t deadline_ms) {
  char *req = malloc(REQ_MAX);
  if (!req) return HD_ENOMEM;
  int is_get = !strcmp(method, "GET");
  int n =
      snprintf(req, REQ_MAX, "%s %s HTTP/1.1\r\nHost: %s%s%s:%d\r\n%s%s%s%sConnection: keep-alive\r\n\r\n",
               method, path, u->ipv6_literal ? "[" : "", u->host, u->ipv6_literal ? "]" : "", u->port,
               token ? "Authorization: Bearer " : "", token ? token : "", token ? "\r\n" : "",
               is_get ? "" : "Content-Length: 0\r\n");
  int rc = n < 0 || n >= REQ_MAX ? HD_EINVAL : cap < 2 ? HD_ENOSPC : 0;
  for (int sent = 0; rc == 0 && sent < n;) {
    ssize_t w = send(fd, req + sent, (size_t)(n - sent), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0)
      sent += (int)w;
    else if (w < 0 && errno == EINTR)
      continue;
    else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      rc = wait_fd(fd, POLLOUT, deadline_ms);
    else
      rc = HD_EIO;
  }
  free(req);
  if (rc < 0) return rc;
  size_t got = 0;
  char *hend = NULL;
  while (!hend) {
    if (got + 1 >= cap) return HD_ENOSPC;
    int r = recv_some(fd, body + got, cap - 1 - got, deadline_ms);
    if (r < 0) return r;
    got += (size_t)r;
    body[got] = 0;
    hend = strstr(body, "\r\n\r\n");
  }
  int status = 0;
  if (sscanf(body, "HTTP/1.%*d %d", &status) != 1 || status < 100 || status > 599) return HD_EPROTO;
  long clen = -1;
  for (char *p = body; p && p < hend; p = strstr(p, "\r\n"), p = p ? p + 2 : NULL)
    if (!strncasecmp(p, "content-length:", 15)) clen = strtol(p + 15, NULL, 10);
  if (clen < 0) return HD_EPROTO;
  if ((size_t)clen >= cap) return HD_ENOSPC;
  size_t head = (size_t)(hend + 4 - body);
  size_t have = got - head;
  memmove(body, hend + 4, have);
  if (have > (size_t)clen) have = (size_t)clen; /* nothing is pipelined: extra bytes are not ours */
  while (have < (size_t)clen) {
    int r = recv_some(fd, body + have, (size_t)clen - have, deadline_ms);
    if (r < 0) return r;
    have += (size_t)r;
  }
  body[clen] = 0;
  return status;
}

int hd_http_sync(const char *method, const char *base, const char *path, const char *token, char *body,
                 size_t cap, int timeout_ms, char *err, size_t errcap) {
  int64_t deadline = hd_http_sync_now_ms() + timeout_ms;
  hd_http_url_t u;
  int rc = hd_http_url_parse(base, &u);
  if (rc < 0) {
    snprintf(err, errcap, "'%s': %s", base,
             rc == HD_EUNSUPPORTED ? "only http:// URLs here (give the node's plain http:// address)"
                                   : "not an http://host:port URL (e.g. http://127.0.0.1:7880)");
    return rc;
  }
  char full[HD_HTTPC_PATH_MAX + 256];
  if ((rc = hd_http_sync_path(&u, path, full, sizeof full)) < 0) {
    snprintf(err, errcap, "'%s': the URL's path is too long", base);
    return rc;
  }
  int fd = hd_http_sync_connect(&u, deadline);
  if (fd < 0) {
    snprintf(err, errcap, "no answer from %s:%d (%s): is a hudong node running there?", u.host, u.port,
             hd_http_sync_connect_error(fd));
    return fd;
  }
  int st = hd_http_sync_request(fd, method, &u, full, token, body, cap, deadline);
  close(fd);
  if (st == HD_ETIMEDOUT)
    snprintf(err, errcap, "%s:%d: no complete HTTP answer within %d ms: is it a hudong node's HTTP port?",
             u.host, u.port, timeout_ms);
  else if (st < 0)
    snprintf(err, errcap, "%s:%d: %s", u.host, u.port, hd_http_sync_request_error(st));
  return st;
}
