/* rtm_bench driver: Hudong RTM (docs/rtm.md) over a WebSocket client written
 * here (RFC 6455: upgrade §4.1, masked client frames §5.3). Login with a
 * minted rtm-grant token, subscribe, publish (the node acks each publish),
 * and cumulative acks for the deliveries (docs/rtm.md "Reliability"): one
 * per read burst by default, or as the shipped clients send them (every 32
 * messages or 100 ms after the first unacked one: --ack-ms 100). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/token.h"
#include "rtm_bench_proto.h"

#define BENCH_KEY "bench"
#define BENCH_SECRET "rtm-bench-secret-0123456789abcdef"

static int g_port;
void bench_proto_set_port(int port) { g_port = port; }

int bench_hudong_write_config(const char *path, const char *listen) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  /* the per-connection and per-address limits are raised so that the broker,
   * not the limits, is measured (all clients come from 127.0.0.1): a publisher here sends up to thousands of
   * messages/s; and all connections are one app, so its session cap is the node's */
  fprintf(f,
          "{\"listen\": \"%s\", \"rtc_port\": 0,\n"
          " \"http\": {\"max_connections\": 1000000, \"max_connections_per_ip\": 1000000},\n"
          " \"apps\": [{\"key\": \"%s\", \"secret\": \"%s\"}],\n"
          " \"rtm\": {\"db\": \":memory:\", \"rate\": 100000, \"burst\": 1000000,"
          " \"max_sessions\": 200000, \"max_sessions_per_app\": 200000}}\n",
          listen, BENCH_KEY, BENCH_SECRET);
  return fclose(f) == 0 ? 0 : -1;
}

typedef struct {
  int upgraded;
  unsigned long long last_s, acked_s; /* highest delivery "s" seen / acked */
  unsigned req;
  int64_t unacked_since; /* ns of the first message after the last ack; 0 = all acked */
  int queued;            /* on the ack queue */
  int64_t qtime;         /* unacked_since when it was queued (it moved: requeue) */
} ws_state_t;

static int g_ack_every = 32, g_ack_ms = 0;
void bench_hudong_set_ack(int every, int delay_ms) {
  g_ack_every = every;
  g_ack_ms = delay_ms;
}
/* connections with unacked messages, by the time of their first (so by
 * deadline): a ring of pointers (a connection is on it at most once) */
static bench_conn_t **g_q;
static size_t g_q_cap, g_q_head, g_q_n;

static void q_push(bench_conn_t *c, ws_state_t *st) {
  if (g_q_n == g_q_cap) {
    size_t cap = g_q_cap ? g_q_cap * 2 : 1024;
    bench_conn_t **n = malloc(cap * sizeof *n);
    if (!n) return; /* not queued: acked at its next read burst with 32 */
    for (size_t i = 0; i < g_q_n; i++)
      n[i] = g_q[(g_q_head + i) % g_q_cap];
    free(g_q);
    g_q = n;
    g_q_cap = cap;
    g_q_head = 0;
  }
  g_q[(g_q_head + g_q_n++) % g_q_cap] = c;
  st->queued = 1;
  st->qtime = st->unacked_since;
}

static ws_state_t *st_of(bench_conn_t *c) {
  if (!c->pstate) c->pstate = calloc(1, sizeof(ws_state_t));
  return c->pstate;
}

/* one masked text frame (the mask is fixed per process: the server unmasks any) */
static void ws_text(bench_conn_t *c, const char *s, size_t n) {
  uint8_t h[14];
  size_t hl = 0;
  static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
  h[hl++] = 0x81;
  if (n < 126)
    h[hl++] = (uint8_t)(0x80 | n);
  else if (n < 65536) {
    h[hl++] = 0x80 | 126;
    h[hl++] = (uint8_t)(n >> 8);
    h[hl++] = (uint8_t)n;
  } else {
    h[hl++] = 0x80 | 127;
    for (int i = 7; i >= 0; i--)
      h[hl++] = (uint8_t)((uint64_t)n >> (8 * i));
  }
  memcpy(h + hl, mask, 4);
  hl += 4;
  uint8_t buf[8192];
  if (n > sizeof buf) return;
  for (size_t i = 0; i < n; i++)
    buf[i] = (uint8_t)s[i] ^ mask[i & 3];
  bench_write(c, h, hl);
  bench_write(c, buf, n);
}

static void hd_hello(bench_conn_t *c) {
  char req[512];
  int n = snprintf(req, sizeof req,
                   "GET /rtm HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                   g_port);
  bench_write(c, req, (size_t)n);
  st_of(c);
}

static void send_login(bench_conn_t *c) {
  hd_token_claims_t cl;
  memset(&cl, 0, sizeof cl);
  snprintf(cl.key, sizeof cl.key, "%s", BENCH_KEY);
  snprintf(cl.identity, sizeof cl.identity, "u%d", c->idx);
  cl.rtm = 1;
  cl.exp = (int64_t)time(NULL) + 3600;
  char tok[1024], msg[1200];
  if (hd_token_mint(&cl, BENCH_SECRET, tok, sizeof tok) < 0) {
    bench_fail(c, "token mint failed");
    return;
  }
  int n = snprintf(msg, sizeof msg, "{\"type\":\"login\",\"token\":\"%s\"}", tok);
  ws_text(c, msg, (size_t)n);
}

static void hd_subscribe(bench_conn_t *c, int ch, int fanout) {
  char msg[160];
  int n = snprintf(msg, sizeof msg, "{\"type\":\"sub\",\"id\":\"s%u\",\"ch\":\"f%d.c%d\"}", st_of(c)->req++,
                   fanout, ch);
  ws_text(c, msg, (size_t)n);
}

static void hd_publish(bench_conn_t *c, int ch, int fanout, const char *payload, size_t len) {
  char msg[4300];
  int n = snprintf(msg, sizeof msg, "{\"type\":\"pub\",\"id\":\"p%u\",\"ch\":\"f%d.c%d\",\"data\":\"%.*s\"}",
                   st_of(c)->req++, fanout, ch, (int)len, payload);
  ws_text(c, msg, (size_t)n);
}

/* minimal field scan of the node's compact JSON: value after "key": */
static const char *field(const char *s, size_t n, const char *key) {
  size_t kl = strlen(key);
  for (size_t i = 0; i + kl + 3 <= n; i++)
    if (s[i] == '"' && !memcmp(s + i + 1, key, kl) && s[i + 1 + kl] == '"' && s[i + 2 + kl] == ':')
      return s + i + 3 + kl;
  return NULL;
}

static void on_text(bench_conn_t *c, const char *s, size_t n) {
  ws_state_t *st = st_of(c);
  const char *t = field(s, n, "type");
  if (!t) return;
  const char *sv = field(s, n, "s"); /* per-session delivery sequence */
  if (sv) {
    unsigned long long v = strtoull(sv, NULL, 10);
    if (v > st->last_s) st->last_s = v;
    if (g_ack_ms && !st->unacked_since) {
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      st->unacked_since = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
      if (!st->queued) q_push(c, st);
    }
  }
  if (!strncmp(t, "\"msg\"", 5)) {
    const char *p = field(s, n, "data");
    if (p && *p == '"')
      bench_on_message(c, (const uint8_t *)p + 1, (size_t)(s + n - (p + 1)));
    else
      bench_fail(c, "message without payload");
  } else if (!strncmp(t, "\"welcome\"", 9)) {
    bench_on_ready(c);
  } else if (!strncmp(t, "\"ok\"", 4)) {
    const char *id = field(s, n, "id");
    if (id && id[1] == 's')
      bench_on_subscribed(c);
    else if (id && id[1] == 'p')
      bench_on_puback(c);
  } else if (!strncmp(t, "\"error\"", 7)) {
    bench_fail(c, "error from the node: %.*s", (int)(n < 300 ? n : 300), s);
  }
}

static int hd_parse(bench_conn_t *c, size_t *used) {
  ws_state_t *st = st_of(c);
  size_t off = 0;
  if (!st->upgraded) {
    char *e = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
    if (!e) {
      *used = 0;
      return 0;
    }
    if (c->rlen < 12 || memcmp(c->rbuf + 9, "101", 3)) {
      bench_fail(c, "upgrade refused: %.*s", (int)(c->rlen < 80 ? c->rlen : 80), c->rbuf);
      return -1;
    }
    st->upgraded = 1;
    off = (size_t)(e + 4 - (char *)c->rbuf);
    send_login(c);
  }
  for (;;) {
    const uint8_t *p = c->rbuf + off;
    size_t avail = c->rlen - off;
    if (avail < 2) break;
    size_t len = p[1] & 0x7f, hl = 2;
    if (len == 126) {
      if (avail < 4) break;
      len = ((size_t)p[2] << 8) | p[3];
      hl = 4;
    } else if (len == 127) {
      if (avail < 10) break;
      len = 0;
      for (int i = 0; i < 8; i++)
        len = (len << 8) | p[2 + i];
      hl = 10;
    }
    if (avail < hl + len) break;
    int op = p[0] & 0x0f;
    if (op == 1)
      on_text(c, (const char *)p + hl, len);
    else if (op == 8) {
      bench_fail(c, "node closed the WebSocket (%d)", len >= 2 ? (p[hl] << 8 | p[hl + 1]) : 0);
      return -1;
    } else if (op == 9) { /* ping -> pong (§5.5.2) */
      uint8_t h[6] = {0x8a, (uint8_t)(0x80 | len), 0, 0, 0, 0};
      if (len < 126) {
        bench_write(c, h, 6);
        bench_write(c, p + hl, len);
      }
    }
    off += hl + len;
  }
  *used = off;
  return 0;
}

static void send_ack(bench_conn_t *c, ws_state_t *st) {
  if (st->last_s > st->acked_s) {
    char msg[64];
    int n = snprintf(msg, sizeof msg, "{\"type\":\"ack\",\"s\":%llu}", st->last_s);
    ws_text(c, msg, (size_t)n);
    st->acked_s = st->last_s;
  }
  st->unacked_since = 0;
}

/* after a read burst: one cumulative ack (docs/rtm.md: acks are cumulative)
 * now, or once 32 are unacked; else hd_poll sends it when its delay is over */
static void hd_after_read(bench_conn_t *c) {
  ws_state_t *st = st_of(c);
  if (!g_ack_ms || st->last_s - st->acked_s >= (unsigned long long)g_ack_every) send_ack(c, st);
}

static void hd_poll(int64_t now) {
  int64_t delay = (int64_t)g_ack_ms * 1000000;
  while (g_q_n) {
    bench_conn_t *c = g_q[g_q_head];
    ws_state_t *st = c->pstate; /* NULL: closed since */
    if (st && st->unacked_since == st->qtime && st->unacked_since && now - st->unacked_since < delay)
      break; /* the rest are later */
    g_q_head = (g_q_head + 1) % g_q_cap;
    g_q_n--;
    if (!st) continue;
    st->queued = 0;
    if (st->unacked_since && now - st->unacked_since < delay) { /* acked at 32 since, then more came */
      q_push(c, st);
      continue;
    }
    if (st->unacked_since && c->fd >= 0) {
      send_ack(c, st);
      bench_flush(c);
    }
  }
}

const bench_proto_t bench_proto_hudong = {
    .name = "hudong",
    .hello = hd_hello,
    .parse = hd_parse,
    .after_read = hd_after_read,
    .poll = hd_poll,
    .subscribe = hd_subscribe,
    .publish = hd_publish,
};

/* The same client against two nodes of a cluster (rtm_bench --only hudong-2n). */
const bench_proto_t bench_proto_hudong_2n = {
    .name = "hudong-2n",
    .hello = hd_hello,
    .parse = hd_parse,
    .after_read = hd_after_read,
    .poll = hd_poll,
    .subscribe = hd_subscribe,
    .publish = hd_publish,
};

/* The same client against a second hudong binary (rtm_bench --base PATH):
 * a build before a change, alternating with the new one step by step. */
const bench_proto_t bench_proto_hudong_base = {
    .name = "hudong-base",
    .hello = hd_hello,
    .parse = hd_parse,
    .after_read = hd_after_read,
    .poll = hd_poll,
    .subscribe = hd_subscribe,
    .publish = hd_publish,
};
