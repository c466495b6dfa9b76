/* Integration test: media through a real `hudong serve --dev` over UDP and HTTP
 * on 127.0.0.1 (started by run_with_server.sh, ports in HUDONG_HTTP /
 * HUDONG_RTC). One publisher (WHIP, RFC 9725) and two viewers (WHEP) built from
 * our own client cores (tests/support/rtc_client.h); each viewer must receive
 * ≥ 300 video packets in order, then DELETE ends every session and /metrics
 * reports none left.
 *
 * With --shards (server run with --media-workers 2 --media-shard-min 1,
 * io/worker_shards.h) the two viewers' packets are sealed and sent by both
 * workers (one by the room's, one by the other): besides the same in-order,
 * hole-free check, each viewer's NACK must be answered with RTX and its PLI
 * must reach the publisher and bring a keyframe to it, and /metrics must
 * show packets handed between the workers, none dropped, and every stream
 * retired after DELETE. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "proto/token.h"
#include "support/rtc_client.h"

#define N_CLIENTS 3
#define WANT_VIDEO 300

static int g_http_port;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "itest_media: FAIL: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

static hd_time_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (hd_time_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- minimal blocking HTTP/1.1 client ---- */

typedef struct {
  int status;
  char location[256];
  char *body; /* NUL-terminated, malloc'd */
  size_t body_len;
} http_resp_t;

static void http(const char *method, const char *path, const char *token, const char *ctype, const char *body,
                 http_resp_t *r) {
  memset(r, 0, sizeof *r);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket: %s", strerror(errno));
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_http_port)};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect: %s", strerror(errno));
  size_t blen = body ? strlen(body) : 0;
  size_t cap = blen + 8192;
  char *req = malloc(cap);
  /* keep-alive (the HTTP/1.1 default, as browsers do); we close after one
   * response read by its Content-Length */
  int n = snprintf(req, cap, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n", method, path,
                   g_http_port);
  if (token) n += snprintf(req + n, cap - (size_t)n, "Authorization: Bearer %s\r\n", token);
  if (ctype) n += snprintf(req + n, cap - (size_t)n, "Content-Type: %s\r\n", ctype);
  n += snprintf(req + n, cap - (size_t)n, "Content-Length: %zu\r\n\r\n", blen);
  if (blen) memcpy(req + n, body, blen);
  size_t total = (size_t)n + blen, off = 0;
  while (off < total) {
    ssize_t w = send(fd, req + off, total - off, MSG_NOSIGNAL);
    if (w <= 0) die("send: %s", strerror(errno));
    off += (size_t)w;
  }
  free(req);
  size_t rcap = 1 << 17, rlen = 0;
  char *resp = malloc(rcap + 1);
  char *hdr_end = NULL;
  long clen = -1;
  for (;;) {
    if (rlen == rcap) die("response too large");
    ssize_t got = recv(fd, resp + rlen, rcap - rlen, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) die("recv: %s", strerror(errno));
    if (got == 0) break;
    rlen += (size_t)got;
    resp[rlen] = 0;
    if (!hdr_end && (hdr_end = strstr(resp, "\r\n\r\n")) != NULL) {
      for (char *l = strstr(resp, "\r\n"); l && l < hdr_end; l = strstr(l + 2, "\r\n")) {
        if (!strncasecmp(l + 2, "content-length:", 15)) clen = strtol(l + 17, NULL, 10);
        if (!strncasecmp(l + 2, "location:", 9)) {
          const char *v = l + 11;
          while (*v == ' ')
            v++;
          size_t vl = strcspn(v, "\r\n");
          if (vl < sizeof r->location) memcpy(r->location, v, vl), r->location[vl] = 0;
        }
      }
    }
    if (hdr_end && clen >= 0 && rlen >= (size_t)(hdr_end + 4 - resp) + (size_t)clen) break;
  }
  close(fd);
  resp[rlen] = 0;
  if (sscanf(resp, "HTTP/1.%*d %d", &r->status) != 1 || !hdr_end)
    die("bad HTTP response to %s %s", method, path);
  r->body_len = rlen - (size_t)(hdr_end + 4 - resp);
  r->body = malloc(r->body_len + 1);
  memcpy(r->body, hdr_end + 4, r->body_len);
  r->body[r->body_len] = 0;
  free(resp);
}

static void mint(const char *room, const char *who, int publish, char *out, size_t cap) {
  hd_token_claims_t c;
  memset(&c, 0, sizeof c);
  snprintf(c.key, sizeof c.key, "devkey");
  snprintf(c.identity, sizeof c.identity, "%s", who);
  snprintf(c.room, sizeof c.room, "%s", room);
  c.room_join = 1;
  c.can_publish = publish;
  c.can_subscribe = !publish;
  c.iat = c.nbf = (int64_t)time(NULL) - 5;
  c.exp = c.iat + 3600;
  if (hd_token_mint(&c, "devsecret", out, cap) < 0) die("token mint failed");
}

/* ---- clients on real sockets ---- */

typedef struct {
  hd_rtc_client_t *c;
  int fd;
  char token[HD_TOKEN_MAX];
  char location[256];
} client_t;

static void client_open(client_t *cl, int kind, hd_dtls_cert_t *cert, const char *room, const char *who) {
  hd_rtc_client_config_t cfg = {.kind = kind, .cert = cert, .auto_nack = 1};
  if (hd_rtc_client_new(&cl->c, &cfg) < 0) die("client init");
  cl->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (cl->fd < 0 || bind(cl->fd, (struct sockaddr *)&a, sizeof a) < 0) die("udp socket: %s", strerror(errno));
  int sz = 1 << 20;
  setsockopt(cl->fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  mint(room, who, kind == HD_RTC_CLIENT_PUBLISH, cl->token, sizeof cl->token);
  char offer[8192], path[128];
  if (hd_rtc_client_offer(cl->c, offer, sizeof offer) < 0) die("offer");
  snprintf(path, sizeof path, "/%s/%s", kind == HD_RTC_CLIENT_PUBLISH ? "whip" : "whep", room);
  http_resp_t r;
  http("POST", path, cl->token, "application/sdp", offer, &r);
  if (r.status != 201) die("POST %s: %d %s", path, r.status, r.body);
  if (!r.location[0]) die("POST %s: no Location", path);
  snprintf(cl->location, sizeof cl->location, "%s", r.location);
  if (hd_rtc_client_apply_answer(cl->c, r.body, r.body_len, now_us()) < 0) die("bad answer: %s", r.body);
  free(r.body);
}

static void client_close(client_t *cl) {
  hd_rtc_client_free(cl->c);
  if (cl->fd >= 0) close(cl->fd);
  cl->c = NULL;
  cl->fd = -1;
}

/* Runs every open client for up to `for_us`, returning early when done() says so. */
static void pump(client_t *cls, int n, hd_time_t for_us, int (*done)(client_t *, int)) {
  hd_time_t end = now_us() + for_us;
  uint8_t buf[2048];
  while (now_us() < end) {
    if (done && done(cls, n)) return;
    hd_time_t now = now_us(), next = end;
    for (int i = 0; i < n; i++)
      if (cls[i].c) next = hd_time_min(next, hd_rtc_client_next_timeout(cls[i].c));
    int ms = next <= now ? 0 : (int)((next - now + 999) / 1000);
    if (ms > 10) ms = 10;
    struct pollfd pfd[N_CLIENTS];
    for (int i = 0; i < n; i++)
      pfd[i] = (struct pollfd){.fd = cls[i].c ? cls[i].fd : -1, .events = POLLIN};
    poll(pfd, (nfds_t)n, ms);
    now = now_us();
    for (int i = 0; i < n; i++) {
      if (!cls[i].c) continue;
      for (;;) {
        struct sockaddr_storage from;
        socklen_t fl = sizeof from;
        ssize_t got = recvfrom(cls[i].fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
        if (got < 0) break;
        hd_rtc_client_feed(cls[i].c, buf, (size_t)got, (struct sockaddr *)&from, fl, now);
      }
      if (hd_rtc_client_next_timeout(cls[i].c) <= now) hd_rtc_client_handle_timeout(cls[i].c, now);
      struct sockaddr_storage to;
      socklen_t tl;
      int len;
      while ((len = hd_rtc_client_poll(cls[i].c, buf, sizeof buf, &to, &tl)) > 0)
        if (sendto(cls[i].fd, buf, (size_t)len, 0, (struct sockaddr *)&to, tl) < 0 && errno != EAGAIN)
          die("sendto: %s", strerror(errno));
    }
  }
}

static int pub_connected(client_t *cls, int n) { return hd_rtc_client_connected(cls[0].c); }

static int viewers_done(client_t *cls, int n) {
  for (int i = 1; i < n; i++)
    if (hd_rtc_client_rx(cls[i].c, HD_RTC_VIDEO)->packets < WANT_VIDEO) return 0;
  return 1;
}

/* Value of the sample line starting with `name` (not the # HELP line). */
static long metric(const char *text, const char *name) {
  char key[128];
  snprintf(key, sizeof key, "\n%s", name);
  const char *p = strstr(text, key);
  if (!p) die("metric %s missing", name);
  return strtol(p + strlen(key), NULL, 10);
}

/* Sum of the samples of a per-worker family ("name{worker=..."), and how many are non-zero. */
static long metric_workers(const char *text, const char *name, int *nonzero) {
  char key[128];
  snprintf(key, sizeof key, "\n%s{worker=\"", name);
  long sum = 0;
  *nonzero = 0;
  for (const char *p = strstr(text, key); p; p = strstr(p + 1, key)) {
    const char *v = strchr(p, '}');
    if (!v) break;
    long x = strtol(v + 1, NULL, 10);
    sum += x;
    if (x) (*nonzero)++;
  }
  return sum;
}

static int g_want_who;
static uint64_t g_want_pli, g_want_rtx, g_want_key;
static int pli_reached(client_t *cls, int n) {
  (void)n;
  return hd_rtc_client_stats(cls[0].c)->pli_rx >= g_want_pli &&
         hd_rtc_client_rx(cls[g_want_who].c, HD_RTC_VIDEO)->keyframes >= g_want_key;
}
static int rtx_reached(client_t *cls, int n) {
  (void)n;
  return hd_rtc_client_rx(cls[g_want_who].c, HD_RTC_VIDEO)->rtx_packets >= g_want_rtx;
}

/* Both viewers, one after the other: NACK of three packets it has -> RTX;
 * PLI -> the publisher gets it and a new keyframe reaches the viewer. */
static void check_feedback(client_t *cls) {
  for (int i = 1; i < N_CLIENTS; i++) {
    g_want_who = i;
    const hd_rtc_stream_stats_t *v = hd_rtc_client_rx(cls[i].c, HD_RTC_VIDEO);
    uint16_t seqs[3];
    for (int j = 0; j < 3; j++)
      seqs[j] = (uint16_t)(v->max_ext - 4 + j);
    g_want_rtx = v->rtx_packets + 3;
    if (hd_rtc_client_send_nack(cls[i].c, HD_RTC_VIDEO, seqs, 3) < 0) die("viewer %d: NACK not sent", i);
    pump(cls, N_CLIENTS, HD_SEC(3), rtx_reached);
    if (v->rtx_packets < g_want_rtx)
      die("viewer %d: NACK of 3 packets answered with %llu RTX", i,
          (unsigned long long)(v->rtx_packets - (g_want_rtx - 3)));
    g_want_pli = hd_rtc_client_stats(cls[0].c)->pli_rx + 1;
    g_want_key = v->keyframes + 1;
    /* the node limits keyframe requests per publisher: ask again until one passes */
    for (int tries = 0; tries < 6 && !pli_reached(cls, N_CLIENTS); tries++) {
      if (hd_rtc_client_send_pli(cls[i].c) < 0) die("viewer %d: PLI not sent", i);
      pump(cls, N_CLIENTS, HD_MS(700), pli_reached);
    }
    if (!pli_reached(cls, N_CLIENTS))
      die("viewer %d: PLI did not bring a keyframe (publisher PLIs %llu, want %llu; keyframes %llu)", i,
          (unsigned long long)hd_rtc_client_stats(cls[0].c)->pli_rx, (unsigned long long)g_want_pli,
          (unsigned long long)v->keyframes);
    printf("viewer %d: NACK -> %llu RTX, PLI -> keyframe\n", i, (unsigned long long)v->rtx_packets);
  }
}

int main(int argc, char **argv) {
  int shards = argc > 1 && !strcmp(argv[1], "--shards");
  const char *hp = getenv("HUDONG_HTTP"), *rp = getenv("HUDONG_RTC");
  if (!hp || !rp) die("HUDONG_HTTP / HUDONG_RTC not set (run through run_with_server.sh)");
  g_http_port = atoi(hp);
  int rtc_port = atoi(rp);
  hd_time_t t0 = now_us();
  hd_dtls_cert_t *cert;
  if (hd_dtls_cert_generate(&cert) < 0) die("cert");
  client_t cls[N_CLIENTS];
  memset(cls, 0, sizeof cls);
  for (int i = 0; i < N_CLIENTS; i++)
    cls[i].fd = -1;

  /* WHEP before any publisher: 404 */
  char tok[HD_TOKEN_MAX];
  mint("itest", "early", 0, tok, sizeof tok);
  http_resp_t r;
  http("POST", "/whep/itest", tok, "application/sdp", "v=0\r\n", &r);
  if (r.status != 404) die("early WHEP: %d", r.status);
  free(r.body);

  client_open(&cls[0], HD_RTC_CLIENT_PUBLISH, cert, "itest", "pub");
  socklen_t rl;
  const struct sockaddr_in *srv = (const struct sockaddr_in *)hd_rtc_client_remote(cls[0].c, &rl);
  /* media worker i serves on rtc_port + i; the room's worker is one of them */
  if (ntohs(srv->sin_port) < rtc_port || ntohs(srv->sin_port) >= rtc_port + 64)
    die("answer candidate port %d, want one of the workers' ports %d + i", ntohs(srv->sin_port), rtc_port);
  pump(cls, 1, HD_SEC(5), pub_connected);
  if (!hd_rtc_client_connected(cls[0].c)) die("publisher did not connect");

  client_open(&cls[1], HD_RTC_CLIENT_PLAY, cert, "itest", "v1");
  client_open(&cls[2], HD_RTC_CLIENT_PLAY, cert, "itest", "v2");
  pump(cls, N_CLIENTS, HD_SEC(12), viewers_done);

  for (int i = 1; i < N_CLIENTS; i++) {
    const hd_rtc_stream_stats_t *v = hd_rtc_client_rx(cls[i].c, HD_RTC_VIDEO);
    const hd_rtc_stream_stats_t *a = hd_rtc_client_rx(cls[i].c, HD_RTC_AUDIO);
    printf(
        "viewer %d: video %llu pkts (%llu unique, max jump %llu, %llu out of order, %llu rtx), audio %llu\n",
        i, (unsigned long long)v->packets, (unsigned long long)v->unique, (unsigned long long)v->max_jump,
        (unsigned long long)v->out_of_order, (unsigned long long)v->rtx_packets,
        (unsigned long long)a->packets);
    if (v->packets < WANT_VIDEO) die("viewer %d got %llu video packets", i, (unsigned long long)v->packets);
    if (v->out_of_order || v->duplicates) die("viewer %d: video out of order", i);
    if (v->unique != (uint64_t)(v->max_ext - v->first_ext + 1)) die("viewer %d: video has holes", i);
    if (v->ssrc != hd_rtc_client_answer_ssrc(cls[i].c, HD_RTC_VIDEO) || v->ssrc_changes || v->wrong_pt)
      die("viewer %d: wrong SSRC or payload type", i);
    if (v->keyframes < 1) die("viewer %d: no keyframe", i);
    if (a->packets < 50) die("viewer %d: audio missing", i);
  }
  if (shards) {
    check_feedback(cls);
    http("GET", "/metrics", NULL, NULL, NULL, &r);
    int nz_streams, nz_handed, nz_sent, nz;
    long streams = metric_workers(r.body, "hudong_shard_streams", &nz_streams);
    long handed = metric_workers(r.body, "hudong_shard_handed_total", &nz_handed);
    long sent = metric_workers(r.body, "hudong_shard_sent_total", &nz_sent);
    long dropped = metric_workers(r.body, "hudong_shard_dropped_total", &nz);
    long seal = metric_workers(r.body, "hudong_shard_seal_errors_total", &nz);
    /* issue 17: the waits for a full ring are exported per worker too (how
     * many depends on the machine's load: only their presence is checked) */
    long waits = metric_workers(r.body, "hudong_shard_full_waits_total", &nz);
    int waits_lines = 0;
    for (const char *p = strstr(r.body, "\nhudong_shard_full_waits_total{worker=\""); p;
         p = strstr(p + 1, "\nhudong_shard_full_waits_total{worker=\""))
      waits_lines++;
    if (waits_lines != 2 || !strstr(r.body, "# TYPE hudong_shard_full_waits_total counter\n"))
      die("want hudong_shard_full_waits_total for each of 2 workers:\n%s", r.body);
    printf("shards: streams %ld on %d workers, handed %ld, sent %ld, dropped %ld, full waits %ld\n", streams,
           nz_streams, handed, sent, dropped, waits);
    if (streams != 2 || nz_streams != 2) die("want one viewer stream on each of 2 workers:\n%s", r.body);
    if (handed < WANT_VIDEO || nz_handed != 1 || sent < WANT_VIDEO || nz_sent != 1)
      die("want packets handed by the room's worker and sent by the other");
    if (dropped || seal) die("shard packets dropped (%ld) or unsealed (%ld)", dropped, seal);
    free(r.body);
  }

  /* DELETE ends the sessions */
  for (int i = N_CLIENTS - 1; i >= 0; i--) {
    http("DELETE", cls[i].location, cls[i].token, NULL, NULL, &r);
    if (r.status != 200) die("DELETE %s: %d %s", cls[i].location, r.status, r.body);
    free(r.body);
    http("DELETE", cls[i].location, cls[i].token, NULL, NULL, &r);
    if (r.status != 404) die("second DELETE %s: %d", cls[i].location, r.status);
    free(r.body);
  }
  pump(cls, N_CLIENTS, HD_MS(300), NULL); /* close_notify alerts arrive */
  for (int i = 0; i < N_CLIENTS; i++)
    if (!hd_rtc_client_closed(cls[i].c)) die("client %d did not see the session end", i);
  http("GET", "/metrics", NULL, NULL, NULL, &r);
  if (r.status != 200) die("/metrics: %d", r.status);
  if (metric(r.body, "hudong_sessions{kind=\"publish\"} ") != 0 ||
      metric(r.body, "hudong_sessions{kind=\"play\"} ") != 0)
    die("sessions left after DELETE:\n%s", r.body);
  if (metric(r.body, "hudong_rooms ") != 0) die("room left after DELETE");
  if (metric(r.body, "hudong_sessions_created_total ") != 3) die("sessions_created_total != 3");
  int nz;
  if (shards && metric_workers(r.body, "hudong_shard_streams", &nz) != 0)
    die("shard streams left after DELETE");
  free(r.body);

  for (int i = 0; i < N_CLIENTS; i++)
    client_close(&cls[i]);
  hd_dtls_cert_free(cert);
  printf("itest_media: OK in %.1f s\n", (double)(now_us() - t0) / 1e6);
  return 0;
}
