/* Blocking HTTP/1.1 client: see http_sync.h. The deadline is applied by
 * setting SO_RCVTIMEO/SO_SNDTIMEO to the time left before each system call
 * (SO_SNDTIMEO also bounds connect() on Linux), so a peer that trickles bytes
 * cannot hold the caller past the deadline. */
#include "io/http_sync.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"

int64_t hd_http_sync_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Arms fd's timeouts with the time left; HD_ETIMEDOUT if none is. */
static int arm(int fd, int64_t deadline_ms) {
  int64_t left = deadline_ms - hd_http_sync_now_ms();
  if (left <= 0) return HD_ETIMEDOUT;
  struct timeval tv = {.tv_sec = (time_t)(left / 1000), .tv_usec = (suseconds_t)(left % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return 0;
}

static int io_err(void) {
  return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINPROGRESS ? HD_ETIMEDOUT : HD_EIO;
}

int hd_http_sync_connect(const hd_http_url_t *u, int64_t deadline_ms) {
  char port[8];
  snprintf(port, sizeof port, "%d", u->port);
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
  if (getaddrinfo(u->host, port, &hints, &res) != 0) return HD_ENOTFOUND;
  int fd = -1, rc = HD_EIO;
  for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    if ((rc = arm(fd, deadline_ms)) == 0 && connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
    if (rc == 0) rc = io_err();
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  return fd >= 0 ? fd : rc;
}

const char *hd_http_sync_connect_error(int rc) {
  return rc == HD_ENOTFOUND   ? "the host name does not resolve"
         : rc == HD_ETIMEDOUT ? "connect timed out"
                              : "connection refused or host unreachable";
}

int hd_http_sync_path(const hd_http_url_t *u, const char *path, char *out, size_t cap) {
  size_t pl = strlen(u->path);
  while (pl > 0 && u->path[pl - 1] == '/')
    pl--;
  int n = snprintf(out, cap, "%.*s%s", (int)pl, u->path, path);
  return n < 0 || (size_t)n >= cap ? HD_ENOSPC : 0;
}

/* recv with the deadline: > 0 bytes, or a negative HD_E*. */
static int recv_some(int fd, char *buf, size_t n, int64_t deadline_ms) {
  int rc = arm(fd, deadline_ms);
  if (rc < 0) return rc;
  ssize_t r = recv(fd, buf, n, 0);
  if (r > 0) return (int)r;
  return r == 0 ? HD_EIO : io_err();
}

int hd_http_sync_request(int fd, const char *method, const hd_http_url_t *u, const char *path,
                         const char *token, char *body, size_t cap, int64_t deadline_ms) {
  char req[HD_HTTPC_PATH_MAX + HD_HTTPC_HOST_MAX + 4096];
  int is_get = !strcmp(method, "GET");
  int n =
      snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: %s%s%s:%d\r\n%s%s%s%sConnection: keep-alive\r\n\r\n",
               method, path, u->ipv6_literal ? "[" : "", u->host, u->ipv6_literal ? "]" : "", u->port,
               token ? "Authorization: Bearer " : "", token ? token : "", token ? "\r\n" : "",
               is_get ? "" : "Content-Length: 0\r\n");
  if (n < 0 || (size_t)n >= sizeof req || cap < 2) return HD_ENOSPC;
  for (int sent = 0; sent < n;) {
    int rc = arm(fd, deadline_ms);
    if (rc < 0) return rc;
    ssize_t w = send(fd, req + sent, (size_t)(n - sent), MSG_NOSIGNAL);
    if (w <= 0) return io_err();
    sent += (int)w;
  }
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
  if (st < 0)
    snprintf(err, errcap, "%s:%d: no valid HTTP answer within %d ms (%s)", u.host, u.port, timeout_ms,
             hd_strerror(st));
  return st;
}
