/* Whiteboard benchmark (issue 19 item 6, docs/whiteboard.md "Measured"): N
 * writers and M readers on one board of one node, all native RTM clients
 * (client/rtm_client.h) on one libuv loop in this process. Each writer draws
 * like a person: a live message every 16 ms (4 new points) and every 30th
 * tick the stroke committed as one element (120 points). Measured over the
 * window: operations accepted per second (committed + live), deliveries per
 * second, delivery latency (publish -> a reader's callback; one process, one
 * clock) p50/p99 for live points and committed entries, the node's CPU
 * (/proc/PID/stat of --pid). Then a board of --elements elements is built on
 * another channel and loaded by the C SDK (client/wb_client.h: login,
 * subscribe, GET /api/board, parse, apply): the time to a ready board.
 *
 *   whiteboard_bench --port P --pid PID [--writers 20] [--readers 200]
 *                    [--seconds 10] [--elements 10000] [--procs 3] [--live-ms 16] [--json FILE]
 * --live-ms: a writer's tick (a live message each, a committed stroke every
 * 30th); --procs: processes (readers spread over all but the first);
 * readers are lean raw-WebSocket clients (no JSON parse), --sdk-readers
 * makes them the library's RTM client (hd_rtmc, a jansson parse each).
 * (bench/whiteboard starts the node and runs this.) */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "base/err.h"
#include "client/rtm_client.h"
#include "client/wb_client.h"
#include "proto/token.h"

#define ROOM "bench"
#define CH "wb:bench:main"
#define BIG "wb:bench:big"
#define MAX_SAMPLES (8u << 20)

typedef struct {
  hd_rtmc_t *c;
  int idx, writer, ready, ticks, strokes;
  uv_timer_t t;
} cl_t;

static uv_loop_t *loop;
static cl_t *cls;
static int n_writers = 20, n_readers = 200, seconds = 10, n_elements = 10000, port, pid, procs = 3,
           live_ms = 16, lean = 1;
static int lo, hi; /* this process's clients [lo, hi) */
static int n_ready, measuring;
static uint64_t t_start, live_sent, adds_sent, adds_ok, live_got, entries_got, refused;
static int32_t *lat_live, *lat_entry;
static size_t n_lat_live, n_lat_entry;

static uint64_t now_us(void) { return uv_hrtime() / 1000; }

static char *mint(const char *id, int writer) {
  hd_token_claims_t c = {0};
  snprintf(c.key, sizeof c.key, "devkey");
  snprintf(c.identity, sizeof c.identity, "%s", id);
  snprintf(c.room, sizeof c.room, ROOM);
  c.rtm = 1;
  c.room_join = 1;
  c.can_publish_data = writer;
  c.exp = time(NULL) + 3600;
  static char tok[HD_TOKEN_MAX];
  return hd_token_mint(&c, "devsecret", tok, sizeof tok) > 0 ? tok : NULL;
}

static long cpu_ticks(void) {
  char p[64], buf[1024];
  snprintf(p, sizeof p, "/proc/%d/stat", pid);
  FILE *f = fopen(p, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *s = strrchr(buf, ')'); /* fields after the command name */
  long ut = 0, st = 0;
  if (!s || sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &ut, &st) != 2) return -1;
  return ut + st;
}

static void on_msg(void *ud, const char *ch, int64_t cseq, const char *from, const char *data, size_t len) {
  cl_t *me = ud;
  (void)cseq, (void)from, (void)len;
  if (me->writer || !measuring || strcmp(ch, CH)) return;
  uint64_t t = now_us();
  const char *p = strstr(data, "\"bts\":");
  if (p) { /* a live message: its send time rides in it */
    uint64_t ts = strtoull(p + 6, NULL, 10);
    live_got++;
    if (n_lat_live < MAX_SAMPLES) lat_live[n_lat_live++] = (int32_t)(t - ts);
    return;
  }
  const char *c = strstr(data, "\"cid\":\"w");
  if (!c) return;
  int w = 0, n = 0;
  unsigned long long ts = 0; /* the cid carries the publish time: any process can time it */
  if (sscanf(c + 8, "%d-%d-%llu", &w, &n, &ts) != 3) return;
  entries_got++;
  if (n_lat_entry < MAX_SAMPLES) lat_entry[n_lat_entry++] = (int32_t)(t - ts);
}

static void add_done(void *ud, void *req, const hd_rtmc_result_t *r) {
  (void)ud, (void)req;
  if (r->code)
    refused++;
  else if (measuring)
    adds_ok++;
}

static void tick(uv_timer_t *t) {
  cl_t *w = t->data;
  if (!measuring) return;
  char buf[8192];
  int base = 20 + w->idx * 40, k = w->ticks % 30;
  if (k < 29) {
    snprintf(buf, sizeof buf,
             "{\"op\":\"live\",\"id\":\"s%d_%d\",\"page\":\"p1\",\"pts\":[%d,%d,50,%d,%d,%d,50,%d,%d,%d,50,%"
             "d,%d,%d,50,"
             "%d],\"c\":\"#1971c2\",\"sw\":3,\"bts\":%llu}",
             w->idx, w->strokes, base + k * 4, 100, k * 16, base + k * 4 + 1, 101, k * 16 + 4,
             base + k * 4 + 2, 102, k * 16 + 8, base + k * 4 + 3, 103, k * 16 + 12,
             (unsigned long long)now_us());
    if (hd_rtmc_publish(w->c, CH, buf, strlen(buf), 0, NULL, NULL) == 0) live_sent++;
  } else { /* pen up: the stroke as one element */
    int n = snprintf(
        buf, sizeof buf,
        "{\"op\":\"add\",\"cid\":\"w%d-%d-%llu\",\"page\":\"p1\",\"el\":{\"id\":\"s%d_%d\","
        "\"k\":\"stroke\",\"x\":%d,\"y\":100,\"w\":120,\"h\":40,\"c\":\"#1971c2\",\"sw\":3,\"pts\":[",
        w->idx, w->strokes, (unsigned long long)now_us(), w->idx, w->strokes, base);
    for (int i = 0; i < 120; i++)
      n += snprintf(buf + n, sizeof buf - (size_t)n, "%s%d,%d,50,%d", i ? "," : "", i, i % 40, i * 4);
    snprintf(buf + n, sizeof buf - (size_t)n, "]}}");
    if (hd_rtmc_publish(w->c, CH, buf, strlen(buf), 0, add_done, NULL) == 0) adds_sent++;
    w->strokes++;
  }
  w->ticks++;
}

static void subscribed(void *ud, void *req, const hd_rtmc_result_t *r) {
  cl_t *c = ud;
  (void)req;
  if (r->code) {
    fprintf(stderr, "subscribe %d: %d %s\n", c->idx, r->code, r->message);
    exit(1);
  }
  c->ready = 1;
  n_ready++;
}

static void logged_in(void *ud, void *req, const hd_rtmc_result_t *r) {
  cl_t *c = ud;
  (void)req;
  if (r->code) {
    fprintf(stderr, "login %d: %d %s\n", c->idx, r->code, r->message);
    exit(1);
  }
  if (c->writer) { /* writers publish only: their own deliveries would load this process */
    c->ready = 1;
    n_ready++;
    return;
  }
  hd_rtmc_subscribe(c->c, CH, subscribed, NULL);
}

/* ---- a lean reader: the node's deliveries read off a raw WebSocket (RFC
 * 6455 §5.2 frames; client frames masked, §5.3), one cumulative ack per read
 * burst (docs/rtm.md "Reliability"), no JSON parse: the library client
 * (jansson per message) would measure itself rather than the node. ---- */
typedef struct {
  uv_tcp_t tcp;
  uv_connect_t conn;
  int idx, upgraded, state; /* state: 0 login sent, 1 sub sent, 2 subscribed */
  char *buf;
  size_t n, cap;
  unsigned long long last_s, acked_s;
} rd_t;

static void rd_write_done(uv_write_t *w, int st) {
  (void)st;
  free(w->data);
  free(w);
}

static void rd_send(rd_t *r, const char *text) {
  size_t n = strlen(text), hl = 2;
  uint8_t *f = malloc(n + 14);
  static const uint8_t mask[4] = {0x11, 0x22, 0x33, 0x44};
  f[0] = 0x81;
  if (n < 126)
    f[1] = (uint8_t)(0x80 | n);
  else {
    f[1] = 0x80 | 126;
    f[2] = (uint8_t)(n >> 8);
    f[3] = (uint8_t)n;
    hl = 4;
  }
  memcpy(f + hl, mask, 4);
  for (size_t i = 0; i < n; i++)
    f[hl + 4 + i] = (uint8_t)text[i] ^ mask[i & 3];
  uv_write_t *w = malloc(sizeof *w);
  w->data = f;
  uv_buf_t b = uv_buf_init((char *)f, (unsigned)(hl + 4 + n));
  if (uv_write(w, (uv_stream_t *)&r->tcp, &b, 1, rd_write_done) < 0) rd_write_done(w, 0);
}

static void rd_frame(rd_t *r, const char *p, size_t n) {
  uint64_t t = now_us();
  if (r->state < 2) {
    if (r->state == 0 && memmem(p, n, "\"welcome\"", 9)) {
      rd_send(r, "{\"type\":\"sub\",\"id\":\"s\",\"ch\":\"" CH "\"}");
      r->state = 1;
    } else if (r->state == 1 && memmem(p, n, "\"type\":\"ok\"", 11)) {
      r->state = 2;
      n_ready++;
    }
  }
  const char *sp = NULL; /* the session sequence: the last "s" of the object */
  for (const char *q = p; (q = memmem(q, n - (size_t)(q - p), "\"s\":", 4)); q += 4)
    sp = q;
  if (sp) {
    unsigned long long s = strtoull(sp + 4, NULL, 10);
    if (s > r->last_s) r->last_s = s;
  }
  if (!measuring || n < 14 || memcmp(p, "{\"type\":\"msg\"", 13)) return;
  const char *b = memmem(p, n, "bts\\\":", 6);
  if (b) {
    live_got++;
    if (n_lat_live < MAX_SAMPLES) lat_live[n_lat_live++] = (int32_t)(t - strtoull(b + 6, NULL, 10));
    return;
  }
  const char *c = memmem(p, n, "cid\\\":\\\"w", 9);
  int w, k;
  unsigned long long ts;
  if (c && sscanf(c + 9, "%d-%d-%llu", &w, &k, &ts) == 3) {
    entries_got++;
    if (n_lat_entry < MAX_SAMPLES) lat_entry[n_lat_entry++] = (int32_t)(t - ts);
  }
}

static void rd_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b) {
  rd_t *r = h->data;
  (void)sz;
  if (r->cap - r->n < 65536) {
    r->cap = r->cap ? r->cap * 2 : 262144;
    r->buf = realloc(r->buf, r->cap);
  }
  *b = uv_buf_init(r->buf + r->n, (unsigned)(r->cap - r->n));
}

static void rd_read(uv_stream_t *st, ssize_t nr, const uv_buf_t *b) {
  rd_t *r = st->data;
  (void)b;
  if (nr < 0) {
    fprintf(stderr, "reader %d: connection lost (%s)\n", r->idx, uv_strerror((int)nr));
    uv_close((uv_handle_t *)st, NULL);
    return;
  }
  r->n += (size_t)nr;
  size_t off = 0;
  if (!r->upgraded) {
    char *e = memmem(r->buf, r->n, "\r\n\r\n", 4);
    if (!e) return;
    off = (size_t)(e - r->buf) + 4;
    r->upgraded = 1;
    char login[HD_TOKEN_MAX + 64];
    char id[32];
    snprintf(id, sizeof id, "r%d", r->idx);
    snprintf(login, sizeof login, "{\"type\":\"login\",\"id\":\"l\",\"token\":\"%s\"}", mint(id, 0));
    rd_send(r, login);
  }
  for (;;) {
    if (r->n - off < 2) break;
    const uint8_t *h = (const uint8_t *)r->buf + off;
    uint64_t len = h[1] & 0x7f;
    size_t hl = 2;
    if (len == 126) {
      if (r->n - off < 4) break;
      len = (uint64_t)h[2] << 8 | h[3];
      hl = 4;
    } else if (len == 127) {
      if (r->n - off < 10) break;
      len = 0;
      for (int i = 0; i < 8; i++)
        len = len << 8 | h[2 + i];
      hl = 10;
    }
    if (r->n - off < hl + len) break;
    if ((h[0] & 0x0f) == 1) rd_frame(r, r->buf + off + hl, (size_t)len);
    off += hl + (size_t)len;
  }
  memmove(r->buf, r->buf + off, r->n - off);
  r->n -= off;
  if (r->last_s > r->acked_s) { /* one cumulative ack per read burst */
    char a[64];
    snprintf(a, sizeof a, "{\"type\":\"ack\",\"s\":%llu}", r->last_s);
    rd_send(r, a);
    r->acked_s = r->last_s;
  }
}

static void rd_connected(uv_connect_t *c, int st) {
  rd_t *r = c->data;
  if (st < 0) {
    fprintf(stderr, "reader %d: %s\n", r->idx, uv_strerror(st));
    exit(1);
  }
  char req[256];
  snprintf(req, sizeof req,
           "GET /rtm HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
           port);
  uv_write_t *w = malloc(sizeof *w);
  w->data = strdup(req);
  uv_buf_t b = uv_buf_init(w->data, (unsigned)strlen(req));
  uv_write(w, (uv_stream_t *)&r->tcp, &b, 1, rd_write_done);
  uv_read_start((uv_stream_t *)&r->tcp, rd_alloc, rd_read);
}

static void rd_start(rd_t *r, int idx) {
  struct sockaddr_in sa;
  uv_ip4_addr("127.0.0.1", port, &sa);
  r->idx = idx;
  uv_tcp_init(loop, &r->tcp);
  uv_tcp_nodelay(&r->tcp, 1);
  r->tcp.data = r;
  r->conn.data = r;
  uv_tcp_connect(&r->conn, &r->tcp, (const struct sockaddr *)&sa, rd_connected);
}

static int cmp32(const void *a, const void *b) { return *(const int32_t *)a - *(const int32_t *)b; }
static double pct(int32_t *a, size_t n, double p) {
  if (!n) return -1;
  return a[(size_t)((double)(n - 1) * p / 100.0)] / 1000.0;
}

/* ---- the 10 000-element board ---- */
static int big_pending, big_sent, big_done;
static hd_rtmc_t *loader;
static void big_pump(void);
static void big_ok(void *ud, void *req, const hd_rtmc_result_t *r) {
  (void)ud, (void)req;
  if (r->code) {
    fprintf(stderr, "loader: %d %s %s\n", r->code, r->reason, r->message);
    exit(1);
  }
  big_pending--;
  big_done++;
  big_pump();
}
static void big_pump(void) {
  char buf[2048];
  while (big_pending < 200 && big_sent < n_elements) {
    int i = big_sent, x = (i % 100) * 20, y = (i / 100) * 20;
    if (i % 2)
      snprintf(buf, sizeof buf,
               "{\"op\":\"add\",\"page\":\"p1\",\"el\":{\"id\":\"b%d\",\"k\":\"rect\",\"x\":%d,\"y\":%d,"
               "\"w\":15,\"h\":15,"
               "\"c\":\"#2f9e44\"}}",
               i, x, y);
    else {
      int n = snprintf(buf, sizeof buf,
                       "{\"op\":\"add\",\"page\":\"p1\",\"el\":{\"id\":\"b%d\",\"k\":\"stroke\",\"x\":%d,"
                       "\"y\":%d,\"w\":16,"
                       "\"h\":16,\"pts\":[",
                       i, x, y);
      for (int k = 0; k < 16; k++)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "%s%d,%d,50,%d", k ? "," : "", k, (k * 7) % 16, k * 8);
      snprintf(buf + n, sizeof buf - (size_t)n, "]}}");
    }
    if (hd_rtmc_publish(loader, BIG, buf, strlen(buf), 0, big_ok, NULL) < 0) break;
    big_pending++;
    big_sent++;
  }
  if (big_done == n_elements) uv_stop(loop);
}
static void loader_sub(void *ud, void *req, const hd_rtmc_result_t *r) {
  (void)ud, (void)req, (void)r;
  big_pump();
}
static void loader_in(void *ud, void *req, const hd_rtmc_result_t *r) {
  (void)ud, (void)req;
  if (r->code) exit(1);
  hd_rtmc_subscribe(loader, BIG, loader_sub, NULL);
}
static uint64_t join_t0, join_t1;
static int join_err;
static void big_ready(void *ud, int err, const char *why) {
  (void)ud;
  join_t1 = now_us();
  join_err = err;
  if (err) fprintf(stderr, "load: %d %s\n", err, why);
  uv_stop(loop);
}

static void wait_until(int *flag, int want, int timeout_s) {
  uint64_t t0 = now_us();
  while (*flag < want && now_us() - t0 < (uint64_t)timeout_s * 1000000)
    uv_run(loop, UV_RUN_ONCE);
}

int main(int argc, char **argv) {
  const char *json = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--port") && i + 1 < argc)
      port = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--pid") && i + 1 < argc)
      pid = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--writers") && i + 1 < argc)
      n_writers = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--readers") && i + 1 < argc)
      n_readers = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
      seconds = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--elements") && i + 1 < argc)
      n_elements = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--json") && i + 1 < argc)
      json = argv[++i];
    else if (!strcmp(argv[i], "--procs") && i + 1 < argc)
      procs = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--sdk-readers"))
      lean = 0;
    else if (!strcmp(argv[i], "--live-ms") && i + 1 < argc)
      live_ms = atoi(argv[++i]);
    else {
      fprintf(stderr,
              "usage: %s --port P --pid PID [--writers N] [--readers N] [--seconds S] [--elements N] "
              "[--procs N] [--live-ms MS] [--sdk-readers] [--json F]\n",
              argv[0]);
      return 2;
    }
  }
  if (!port || n_writers < 1 || n_readers < 1 || n_writers + n_readers > 5000) return 2;
  char url[128], api[128];
  snprintf(url, sizeof url, "ws://127.0.0.1:%d/rtm", port);
  snprintf(api, sizeof api, "http://127.0.0.1:%d", port);
  lat_live = malloc(MAX_SAMPLES * sizeof *lat_live);
  lat_entry = malloc(MAX_SAMPLES * sizeof *lat_entry);
  int n = n_writers + n_readers;
  cls = calloc((size_t)n, sizeof *cls);
  /* with procs > 1 the writers run in this process and the readers are
   * spread over procs - 1 child processes (one loop each: a client parses
   * every delivery); the clock (monotonic) is the same in all */
  if (procs < 1) procs = 1;
  char tmpl[] = "/tmp/wb-bench-XXXXXX";
  const char *tdir = mkdtemp(tmpl);
  int child = -1;
  pid_t kids[64];
  for (int k = 1; k < procs && k < 64; k++) {
    pid_t p = fork();
    if (p == 0) {
      child = k;
      break;
    }
    kids[k] = p;
  }
  int me = child < 0 ? 0 : child;
  if (procs == 1) { /* one process: everything */
    lo = 0;
    hi = n;
  } else if (child < 0) { /* the parent: the writers only, so that they keep their pace */
    lo = 0;
    hi = n_writers;
  } else { /* reader process k of procs - 1 */
    int share = n_readers / (procs - 1);
    lo = n_writers + (child - 1) * share;
    hi = child == procs - 1 ? n : lo + share;
  }
  int n_mine = hi - lo;
  loop = uv_default_loop(); /* after the fork: one loop per process */
  uint64_t sync_at = 0;
  rd_t *rds = lean ? calloc((size_t)n, sizeof *rds) : NULL;
  for (int i = lo; i < hi; i++) {
    if (lean && i >= n_writers) { /* a lean reader */
      rd_start(&rds[i], i);
      continue;
    }
    cl_t *c = &cls[i];
    c->idx = i;
    c->writer = i < n_writers;
    char id[32];
    snprintf(id, sizeof id, "%s%d", c->writer ? "w" : "r", i);
    hd_rtmc_config_t cfg = {
        .url = url, .token = mint(id, c->writer), .on_message = on_msg, .ud = c, .max_pending = 1024};
    if (hd_rtmc_new(&c->c, loop, &cfg) < 0 || hd_rtmc_login(c->c, logged_in, NULL) < 0) return 1;
  }
  wait_until(&n_ready, n_mine, 60);
  if (n_ready < n_mine) {
    fprintf(stderr, "only %d of %d clients ready\n", n_ready, n_mine);
    return 1;
  }
  /* every process ready: a file each; then all start together */
  char fp[256];
  snprintf(fp, sizeof fp, "%s/ready.%d", tdir, me);
  fclose(fopen(fp, "w"));
  for (int k = 0; k < procs; k++) {
    snprintf(fp, sizeof fp, "%s/ready.%d", tdir, k);
    while (access(fp, F_OK) != 0)
      uv_run(loop, UV_RUN_NOWAIT), usleep(2000);
  }
  (void)sync_at;
  if (child < 0)
    printf("%d writers (a live message every %d ms, a stroke every %d ms) + %d readers on %s in %d "
           "processes, %d s\n",
           n_writers, live_ms, live_ms * 30, n_readers, CH, procs, seconds);
  for (int i = 0; i < n_writers && child < 0; i++) {
    uv_timer_init(loop, &cls[i].t);
    cls[i].t.data = &cls[i];
    uv_timer_start(&cls[i].t, tick, (uint64_t)live_ms + (uint64_t)(i * live_ms / n_writers),
                   (uint64_t)live_ms);
  }
  measuring = 1;
  t_start = now_us();
  long c0 = cpu_ticks();
  while (now_us() - t_start < (uint64_t)seconds * 1000000)
    uv_run(loop, UV_RUN_ONCE);
  long c1 = cpu_ticks();
  double el = (double)(now_us() - t_start) / 1e6;
  for (int i = 0; i < n_writers && child < 0; i++)
    uv_timer_stop(&cls[i].t);
  /* let the last deliveries arrive (not counted in the rates) */
  uint64_t t1 = now_us();
  while (now_us() - t1 < 1000000)
    uv_run(loop, UV_RUN_NOWAIT), usleep(1000);
  measuring = 0;
  if (child >= 0) { /* a reader process: its counts and samples to the parent */
    snprintf(fp, sizeof fp, "%s/res.%d", tdir, child);
    FILE *f = fopen(fp, "wb");
    uint64_t h[4] = {live_got, entries_got, n_lat_live, n_lat_entry};
    fwrite(h, sizeof h, 1, f);
    fwrite(lat_live, sizeof *lat_live, n_lat_live, f);
    fwrite(lat_entry, sizeof *lat_entry, n_lat_entry, f);
    fclose(f);
    _exit(0);
  }
  for (int k = 1; k < procs && k < 64; k++) {
    int stc;
    waitpid(kids[k], &stc, 0);
    snprintf(fp, sizeof fp, "%s/res.%d", tdir, k);
    FILE *f = fopen(fp, "rb");
    uint64_t h[4];
    if (!f || fread(h, sizeof h, 1, f) != 1) continue;
    live_got += h[0];
    entries_got += h[1];
    size_t a = h[2] < MAX_SAMPLES - n_lat_live ? h[2] : MAX_SAMPLES - n_lat_live;
    size_t r1 = fread(lat_live + n_lat_live, sizeof *lat_live, a, f);
    n_lat_live += r1;
    if (a < h[2]) fseek(f, (long)((h[2] - a) * sizeof *lat_live), SEEK_CUR);
    size_t b = h[3] < MAX_SAMPLES - n_lat_entry ? h[3] : MAX_SAMPLES - n_lat_entry;
    n_lat_entry += fread(lat_entry + n_lat_entry, sizeof *lat_entry, b, f);
    fclose(f);
    unlink(fp);
  }
  for (int k = 0; k < procs; k++) {
    snprintf(fp, sizeof fp, "%s/ready.%d", tdir, k);
    unlink(fp);
  }
  rmdir(tdir);
  qsort(lat_live, n_lat_live, sizeof *lat_live, cmp32);
  qsort(lat_entry, n_lat_entry, sizeof *lat_entry, cmp32);
  double cpu = c0 >= 0 && c1 >= 0 ? (double)(c1 - c0) / (double)sysconf(_SC_CLK_TCK) / el * 100 : -1;
  double ops = (double)(live_sent + adds_ok) / el, dl = (double)(live_got + entries_got) / el;
  printf("operations accepted: %.0f/s (live %.0f/s, committed strokes %.0f/s); refused %llu\n", ops,
         (double)live_sent / el, (double)adds_ok / el, (unsigned long long)refused);
  printf("deliveries: %.0f/s to %d readers (live %llu, entries %llu; expected %.0f%%)\n", dl, n_readers,
         (unsigned long long)live_got, (unsigned long long)entries_got,
         100.0 * (double)(live_got + entries_got) / ((double)(live_sent + adds_ok) * n_readers + 1e-9));
  printf("delivery latency live points: p50 %.1f ms, p99 %.1f ms (%zu samples)\n",
         pct(lat_live, n_lat_live, 50), pct(lat_live, n_lat_live, 99), n_lat_live);
  printf("delivery latency committed strokes: p50 %.1f ms, p99 %.1f ms (%zu samples)\n",
         pct(lat_entry, n_lat_entry, 50), pct(lat_entry, n_lat_entry, 99), n_lat_entry);
  printf("node CPU: %.0f%% of one core\n", cpu);
  for (int i = lo; i < hi; i++)
    hd_rtmc_free(cls[i].c);
  for (int i = 0; i < n_writers; i++)
    uv_close((uv_handle_t *)&cls[i].t, NULL);
  uv_run(loop, UV_RUN_NOWAIT);

  /* the big board */
  double load_ms = -1, build_s = -1;
  int big_els = 0;
  if (n_elements > 0) {
    hd_rtmc_config_t lc = {.url = url, .token = mint("loader", 1), .max_pending = 1024};
    hd_rtmc_new(&loader, loop, &lc);
    uint64_t b0 = now_us();
    hd_rtmc_login(loader, loader_in, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    build_s = (double)(now_us() - b0) / 1e6;
    hd_wbc_t *w;
    hd_wbc_config_t wc = {.rtm_url = url,
                          .api_url = api,
                          .token = mint("viewer", 0),
                          .room = ROOM,
                          .board = "big",
                          .on_ready = big_ready};
    join_t0 = now_us();
    if (hd_wbc_join(&w, loop, &wc) == 0) {
      uv_run(loop, UV_RUN_DEFAULT);
      hd_board_count(hd_wbc_board(w), NULL, &big_els);
      load_ms = join_err ? -1 : (double)(join_t1 - join_t0) / 1000;
      hd_wbc_free(w);
    }
    hd_rtmc_free(loader);
    uv_run(loop, UV_RUN_NOWAIT);
    printf("board of %d elements: built in %.1f s; C SDK join (login, subscribe, GET /api/board, parse, "
           "apply) %.0f ms\n",
           big_els, build_s, load_ms);
  }
  if (json) {
    FILE *f = fopen(json, "w");
    if (f) {
      fprintf(f,
              "{\"writers\":%d,\"readers\":%d,\"live_ms\":%d,\"seconds\":%.1f,\"ops_per_s\":%.0f,\"live_per_"
              "s\":%.0f,"
              "\"commits_per_s\":%.1f,\"deliveries_per_s\":%.0f,\"refused\":%llu,\"live_p50_ms\":%.2f,\"live_"
              "p99_ms\":%.2f,"
              "\"entry_p50_ms\":%.2f,\"entry_p99_ms\":%.2f,\"node_cpu_pct\":%.0f,\"big_elements\":%d,\"big_"
              "load_ms\":%.0f}\n",
              n_writers, n_readers, live_ms, el, ops, (double)live_sent / el, (double)adds_ok / el, dl,
              (unsigned long long)refused, pct(lat_live, n_lat_live, 50), pct(lat_live, n_lat_live, 99),
              pct(lat_entry, n_lat_entry, 50), pct(lat_entry, n_lat_entry, 99), cpu, big_els, load_ms);
      fclose(f);
    }
  }
  return 0;
}
