/* rtm_bench driver: core NATS (the text protocol of nats-server: INFO,
 * CONNECT, PING/PONG, SUB, PUB, MSG), over TCP or over its WebSocket
 * listener (RFC 6455 client frames written here, the server's binary frames
 * unwrapped into one byte stream), so that NATS runs on the same transport as
 * Hudong's /rtm. Core NATS is at-most-once: no acks, no redelivery, no
 * sequence numbers (JetStream would add them); the table says so next to its
 * figures. Ready = the PONG after CONNECT; subscribed = the PONG after SUB. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtm_bench_proto.h"

typedef struct {
  int upgraded, connected;
  int pending_sub; /* PONGs that confirm a SUB */
  uint8_t *s;      /* the NATS byte stream (WebSocket payloads joined) */
  size_t sl, sc;
  unsigned sid;
} nats_state_t;

static int g_ws_port;
void bench_nats_set_ws_port(int port) { g_ws_port = port; }

static nats_state_t *st_of(bench_conn_t *c) {
  if (!c->pstate) c->pstate = calloc(1, sizeof(nats_state_t));
  return c->pstate;
}

static int is_ws(const bench_conn_t *c);

/* one masked binary frame (a fixed mask: the server unmasks any) */
static void ws_frame(bench_conn_t *c, const char *s, size_t n) {
  uint8_t h[14];
  size_t hl = 0;
  static const uint8_t mask[4] = {0x5c, 0x13, 0xa7, 0x42};
  h[hl++] = 0x82;
  if (n < 126)
    h[hl++] = (uint8_t)(0x80 | n);
  else if (n < 65536) {
    h[hl++] = 0x80 | 126;
    h[hl++] = (uint8_t)(n >> 8);
    h[hl++] = (uint8_t)n;
  } else {
    return;
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

static void out(bench_conn_t *c, const char *s, size_t n) {
  if (is_ws(c))
    ws_frame(c, s, n);
  else
    bench_write(c, s, n);
}

static void hello_tcp(bench_conn_t *c) { st_of(c); /* the server speaks first (INFO) */ }

static void hello_ws(bench_conn_t *c) {
  char req[400];
  int n = snprintf(req, sizeof req,
                   "GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                   g_ws_port);
  bench_write(c, req, (size_t)n);
  st_of(c);
}

static void subscribe(bench_conn_t *c, int ch, int fanout) {
  nats_state_t *st = st_of(c);
  char msg[128];
  int n =
      snprintf(msg, sizeof msg, "SUB %c.f%d.c%d %u\r\nPING\r\n", is_ws(c) ? 'w' : 't', fanout, ch, ++st->sid);
  st->pending_sub++;
  out(c, msg, (size_t)n);
}

static void publish(bench_conn_t *c, int ch, int fanout, const char *payload, size_t len) {
  char msg[4300];
  /* subjects per transport: both targets share one nats-server */
  int n = snprintf(msg, sizeof msg, "PUB %c.f%d.c%d %zu\r\n%.*s\r\n", is_ws(c) ? 'w' : 't', fanout, ch, len,
                   (int)len, payload);
  out(c, msg, (size_t)n);
}

/* Parses NATS protocol lines from the byte stream; returns bytes consumed. */
static size_t nats_parse(bench_conn_t *c, const uint8_t *p, size_t n) {
  nats_state_t *st = st_of(c);
  size_t off = 0;
  for (;;) {
    const uint8_t *e = memmem(p + off, n - off, "\r\n", 2);
    if (!e) break;
    size_t ll = (size_t)(e - (p + off));
    const char *l = (const char *)p + off;
    if (ll >= 4 && !memcmp(l, "MSG ", 4)) {
      /* MSG <subject> <sid> [reply] <#bytes> */
      size_t k = ll;
      while (k > 4 && l[k - 1] != ' ')
        k--;
      size_t len = strtoul(l + k, NULL, 10);
      if (n - off < ll + 2 + len + 2) break; /* the payload is not all here yet */
      bench_on_message(c, p + off + ll + 2, len);
      off += ll + 2 + len + 2;
      continue;
    }
    if (ll >= 4 && !memcmp(l, "INFO", 4)) {
      if (!st->connected) {
        static const char co[] = "CONNECT {\"verbose\":false,\"pedantic\":false,\"echo\":false}\r\nPING\r\n";
        out(c, co, sizeof co - 1);
      }
    } else if (ll >= 4 && !memcmp(l, "PING", 4)) {
      out(c, "PONG\r\n", 6);
    } else if (ll >= 4 && !memcmp(l, "PONG", 4)) {
      if (!st->connected) {
        st->connected = 1;
        bench_on_ready(c);
      } else if (st->pending_sub > 0) {
        st->pending_sub--;
        bench_on_subscribed(c);
      }
    } else if (ll >= 4 && !memcmp(l, "-ERR", 4)) {
      bench_fail(c, "nats: %.*s", (int)(ll < 200 ? ll : 200), l);
    }
    off += ll + 2;
  }
  return off;
}

static int parse_tcp(bench_conn_t *c, size_t *used) {
  *used = nats_parse(c, c->rbuf, c->rlen);
  return 0;
}

/* WebSocket: unwrap data frames into st->s, then parse the stream. */
static int parse_ws(bench_conn_t *c, size_t *used) {
  nats_state_t *st = st_of(c);
  size_t off = 0;
  if (!st->upgraded) {
    char *e = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
    if (!e) {
      *used = 0;
      return 0;
    }
    if (c->rlen < 12 || memcmp(c->rbuf + 9, "101", 3)) {
      bench_fail(c, "nats websocket upgrade refused: %.*s", (int)(c->rlen < 80 ? c->rlen : 80), c->rbuf);
      return -1;
    }
    st->upgraded = 1;
    off = (size_t)(e + 4 - (char *)c->rbuf);
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
    if (op == 0 || op == 1 || op == 2) {
      if (st->sl + len > st->sc) {
        size_t cap = st->sc ? st->sc : 65536;
        while (cap < st->sl + len)
          cap *= 2;
        uint8_t *nb = realloc(st->s, cap);
        if (!nb) return -1;
        st->s = nb;
        st->sc = cap;
      }
      memcpy(st->s + st->sl, p + hl, len);
      st->sl += len;
    } else if (op == 8) {
      bench_fail(c, "nats closed the WebSocket");
      return -1;
    } else if (op == 9) {
      uint8_t h[6] = {0x8a, (uint8_t)(0x80 | len), 0, 0, 0, 0};
      if (len < 126) {
        bench_write(c, h, 6);
        bench_write(c, p + hl, len);
      }
    }
    off += hl + len;
  }
  *used = off;
  size_t u = nats_parse(c, st->s, st->sl);
  memmove(st->s, st->s + u, st->sl - u);
  st->sl -= u;
  return 0;
}

const bench_proto_t bench_proto_nats = {
    .name = "nats-tcp",
    .hello = hello_tcp,
    .parse = parse_tcp,
    .subscribe = subscribe,
    .publish = publish,
};

const bench_proto_t bench_proto_nats_ws = {
    .name = "nats-ws",
    .hello = hello_ws,
    .parse = parse_ws,
    .subscribe = subscribe,
    .publish = publish,
};

static int is_ws(const bench_conn_t *c) { return c->proto == &bench_proto_nats_ws; }
