/* --cluster of `hudong pub` and `sub` (issue 15 item 4; docs/overlay.md
 * "Routing: the client side"): the same steps as web/route.js, blocking, on
 * plain sockets (this runs once before the client starts):
 *   1. GET <cluster>/api/route?room=R with the token: candidates;
 *   2. RTT to each eligible candidate (at most 8), one thread per candidate:
 *      3 GET /api/ping on one kept-alive connection, the smallest time (the
 *      TCP handshake is not in it), 1 s timeout per request;
 *   3. GET /api/route again with rtt=id:ms,...: the node to use;
 *   4. the chosen node if it answered a ping, else the fastest that did.
 * http:// only (the node's own TLS is not spoken here): for https clusters
 * give the node with --url. */
#include <errno.h>
#include <jansson.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "base/base64.h"
#include "base/err.h"
#include "cmd/cmd.h"
#include "io/http_client.h"

#define ROUTE_MAX_PROBE 8
#define ROUTE_PING_SAMPLES 3
#define ROUTE_TIMEOUT_MS 1000
#define ROUTE_BODY_MAX (256 * 1024)

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A TCP connection to host:port with send/receive timeouts; -1 on failure. */
static int tcp_open(const hd_http_url_t *u, int timeout_ms) {
  char port[8];
  snprintf(port, sizeof port, "%d", u->port);
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
  if (getaddrinfo(u->host, port, &hints, &res) != 0) return -1;
  int fd = -1;
  for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv); /* also bounds connect() on Linux */
    if (connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(res);
  return fd;
}

/* One GET on fd (kept alive); the body (NUL-terminated, Content-Length
 * framed) into body. Returns the status, or -1 on a transport error. */
static int http_req(int fd, const char *method, const hd_http_url_t *u, const char *path, const char *token,
                    char *body, size_t cap) {
  char req[8192];
  int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: %s:%d\r\n%s%s%s%sConnection: keep-alive\r\n\r\n",
                   method, path, u->host, u->port, token ? "Authorization: Bearer " : "", token ? token : "",
                   token ? "\r\n" : "", strcmp(method, "GET") ? "Content-Length: 0\r\n" : "");
  if (n < 0 || (size_t)n >= sizeof req || send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) return -1;
  size_t got = 0;
  char *hend = NULL;
  while (!hend) {
    if (got + 1 >= cap) return -1;
    ssize_t r = recv(fd, body + got, cap - 1 - got, 0);
    if (r <= 0) return -1;
    got += (size_t)r;
    body[got] = 0;
    hend = strstr(body, "\r\n\r\n");
  }
  int status = 0;
  if (sscanf(body, "HTTP/1.%*d %d", &status) != 1) return -1;
  long clen = -1;
  for (char *p = body; p < hend; p = strstr(p, "\r\n") + 2)
    if (!strncasecmp(p, "content-length:", 15)) clen = strtol(p + 15, NULL, 10);
  size_t head = (size_t)(hend + 4 - body);
  size_t have = got - head;
  memmove(body, hend + 4, have);
  if (clen < 0 || (size_t)clen >= cap) return -1;
  while (have < (size_t)clen) {
    ssize_t r = recv(fd, body + have, (size_t)clen - have, 0);
    if (r <= 0) return -1;
    have += (size_t)r;
  }
  body[clen] = 0;
  return status;
}

static int http_get(int fd, const hd_http_url_t *u, const char *path, const char *token, char *body,
                    size_t cap) {
  return http_req(fd, "GET", u, path, token, body, cap);
}

int hd_cli_http(const char *method, const char *base, const char *path, const char *token, char *body,
                size_t cap, char *err, size_t errcap) {
  hd_http_url_t u;
  int rc = hd_http_url_parse(base, &u);
  if (rc < 0) {
    snprintf(err, errcap, "'%s': %s", base,
             rc == HD_EUNSUPPORTED ? "only http:// URLs here" : "not an http://host:port URL");
    return -1;
  }
  char full[HD_HTTPC_PATH_MAX + 256];
  size_t pl = strlen(u.path);
  while (pl > 0 && u.path[pl - 1] == '/')
    pl--;
  snprintf(full, sizeof full, "%.*s%s", (int)pl, u.path, path);
  int fd = tcp_open(&u, 3000);
  if (fd < 0) {
    snprintf(err, errcap, "no answer from %s:%d", u.host, u.port);
    return -1;
  }
  int st = http_req(fd, method, &u, full, token, body, cap);
  close(fd);
  if (st < 0) snprintf(err, errcap, "%s:%d: no valid HTTP answer", u.host, u.port);
  return st;
}

typedef struct {
  const char *id;
  char url[300];
  double rtt; /* ms; < 0 = no answer */
} probe_t;

static void *probe_thread(void *arg) {
  probe_t *p = arg;
  p->rtt = -1;
  hd_http_url_t u;
  if (hd_http_url_parse(p->url, &u) < 0) return NULL;
  int fd = tcp_open(&u, ROUTE_TIMEOUT_MS);
  if (fd < 0) return NULL;
  char body[512], path[HD_HTTPC_PATH_MAX + 16];
  size_t pl = strlen(u.path);
  while (pl > 0 && u.path[pl - 1] == '/')
    pl--;
  snprintf(path, sizeof path, "%.*s/api/ping", (int)pl, u.path);
  for (int i = 0; i < ROUTE_PING_SAMPLES; i++) {
    double t0 = now_ms();
    if (http_get(fd, &u, path, NULL, body, sizeof body) != 200) break;
    double ms = now_ms() - t0;
    if (p->rtt < 0 || ms < p->rtt) p->rtt = ms;
  }
  close(fd);
  return NULL;
}

/* The room of a token (grants.room), unverified: the node checks it. */
static int token_room(const char *token, char *room, size_t cap) {
  const char *a = strchr(token, '.'), *b = a ? strchr(a + 1, '.') : NULL;
  if (!b) return -1;
  uint8_t buf[4096];
  int n = hd_base64_decode(a + 1, (size_t)(b - a - 1), buf, sizeof buf - 1);
  if (n < 0) return -1;
  json_t *o = json_loadb((const char *)buf, (size_t)n, 0, NULL);
  const char *r = json_string_value(json_object_get(json_object_get(o, "grants"), "room"));
  int rc = r && r[0] && strlen(r) < cap ? 0 : -1;
  if (!rc) snprintf(room, cap, "%s", r);
  json_decref(o);
  return rc;
}

static json_t *ask(const hd_http_url_t *u, const char *room, const char *token, const char *rtt, char *err,
                   size_t errcap) {
  char *body = malloc(ROUTE_BODY_MAX);
  char path[HD_HTTPC_PATH_MAX + 1200];
  size_t pl = strlen(u->path);
  while (pl > 0 && u->path[pl - 1] == '/')
    pl--;
  snprintf(path, sizeof path, "%.*s/api/route?room=%s%s%s", (int)pl, u->path, room, rtt[0] ? "&rtt=" : "",
           rtt);
  int fd = body ? tcp_open(u, 3000) : -1;
  int st = fd >= 0 ? http_get(fd, u, path, token, body, ROUTE_BODY_MAX) : -1;
  if (fd >= 0) close(fd);
  json_t *o = st > 0 ? json_loads(body, 0, NULL) : NULL;
  if (st < 0)
    snprintf(err, errcap, "--cluster: no answer from %s:%d (is a node running there?)", u->host, u->port);
  else if (st != 200 && st != 503)
    snprintf(err, errcap, "--cluster: /api/route answered %d: %.200s", st, body);
  else if (!o)
    snprintf(err, errcap, "--cluster: /api/route answered %d without JSON", st);
  free(body);
  if (st != 200 && st != 503) {
    json_decref(o);
    return NULL;
  }
  return o;
}

int hd_cli_url_list(const char *list, char (*out)[1024], int max, char *err, size_t errcap) {
  char buf[8192];
  snprintf(buf, sizeof buf, "%s", list ? list : "");
  int n = 0;
  for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    if (n == max) {
      snprintf(err, errcap, "at most %d fallback URLs", max);
      return -1;
    }
    if (hd_cli_rtc_url(t, out[n], sizeof out[0], err, errcap) < 0) return -1;
    n++;
  }
  return n;
}

int hd_cli_route(const char *cluster, const char *token, char *node_url, size_t cap, char *err, size_t errcap,
                 int verbose, char *others, size_t others_cap) {
  hd_http_url_t u;
  int rc = hd_http_url_parse(cluster, &u);
  if (rc < 0) {
    snprintf(err, errcap, "--cluster '%s': %s", cluster,
             rc == HD_EUNSUPPORTED ? "only http:// here (for an https cluster give the node with --url)"
                                   : "not an http://host:port URL");
    return -1;
  }
  char room[128];
  if (token_room(token, room, sizeof room) < 0) {
    snprintf(err, errcap, "--cluster: the token names no room (grants.room)");
    return -1;
  }
  json_t *first = ask(&u, room, token, "", err, errcap);
  if (!first) return -1;
  probe_t probes[ROUTE_MAX_PROBE];
  pthread_t th[ROUTE_MAX_PROBE];
  int np = 0;
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(first, "candidates"), i, c) {
    const char *id = json_string_value(json_object_get(c, "id"));
    const char *url = json_string_value(json_object_get(c, "url"));
    if (np == ROUTE_MAX_PROBE || !id || !url || !json_is_true(json_object_get(c, "eligible"))) continue;
    probes[np].id = id;
    snprintf(probes[np].url, sizeof probes[np].url, "%s", url);
    if (pthread_create(&th[np], NULL, probe_thread, &probes[np]) == 0) np++;
  }
  for (int k = 0; k < np; k++)
    pthread_join(th[k], NULL);
  char rtt[1024] = "";
  size_t rl = 0;
  for (int k = 0; k < np; k++)
    if (probes[k].rtt >= 0 && rl + 100 < sizeof rtt)
      rl += (size_t)snprintf(rtt + rl, sizeof rtt - rl, "%s%s%%3A%d", rl ? "%2C" : "", probes[k].id,
                             (int)(probes[k].rtt + 0.5));
  json_t *answer = rl ? ask(&u, room, token, rtt, err, errcap) : NULL;
  if (!answer) answer = json_incref(first);
  const char *nid = json_string_value(json_object_get(json_object_get(answer, "node"), "id"));
  const char *nurl = json_string_value(json_object_get(json_object_get(answer, "node"), "url"));
  const char *reason = json_string_value(json_object_get(answer, "reason"));
  /* the chosen node unless it did not answer our pings: then the fastest that did */
  int best = -1, chosen_ok = 0;
  for (int k = 0; k < np; k++) {
    if (probes[k].rtt < 0) continue;
    if (nid && !strcmp(probes[k].id, nid)) chosen_ok = 1;
    if (best < 0 || probes[k].rtt < probes[best].rtt) best = k;
  }
  rc = 0;
  if (nurl && (chosen_ok || np == 0 || best < 0)) {
    snprintf(node_url, cap, "%s", nurl);
  } else if (best >= 0) {
    if (verbose)
      fprintf(stderr, "hudong: route: %s did not answer a ping; using %s\n", nid ? nid : "?",
              probes[best].id);
    snprintf(node_url, cap, "%s", probes[best].url);
    nid = probes[best].id;
  } else {
    const char *e = json_string_value(json_object_get(answer, "error"));
    snprintf(err, errcap, "--cluster: %s", e ? e : "no node to join");
    rc = -1;
  }
  if (!rc && verbose) {
    fprintf(stderr, "hudong: route: room %s -> node %s (%s), reason %s; RTT", room, nid ? nid : "?", node_url,
            reason ? reason : "?");
    for (int k = 0; k < np; k++)
      fprintf(stderr, k ? ", %s %.1f ms" : " %s %.1f ms", probes[k].id, probes[k].rtt);
    fprintf(stderr, "%s\n", np ? "" : " not measured");
  }
  if (!rc && others && others_cap) { /* the other nodes that answered, for the client's fallbacks */
    size_t ol = 0;
    others[0] = 0;
    for (int k = 0; k < np; k++)
      if (probes[k].rtt >= 0 && (!nid || strcmp(probes[k].id, nid)) &&
          ol + strlen(probes[k].url) + 2 < others_cap)
        ol += (size_t)snprintf(others + ol, others_cap - ol, "%s%s", ol ? "," : "", probes[k].url);
  }
  json_decref(first);
  json_decref(answer);
  return rc;
}
