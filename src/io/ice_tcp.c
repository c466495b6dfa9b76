/* ICE-TCP passive listener of a media worker (see ice_tcp.h): RFC 6544 §5
 * (passive candidates accept the connections that active ones open), framing
 * per RFC 4571 §2 (proto/rfc4571.h). */
#include "io/ice_tcp.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "base/sockaddr_key.h"
#include "base/err.h"
#include "base/log.h"
#include "base/map.h"
#include "proto/rfc4571.h"
#include "proto/stun.h"

#define SWEEP_MS 500
/* Each packet is handed to the node from a buffer as large as a UDP receive
 * slot (io/rtc_udp.c), as the node may transform a packet in place: what it
 * does stays off the connection's next frames. */
#define SCRATCH (64 * 1024)

typedef struct conn {
  uv_tcp_t tcp;
  struct hd_ice_tcp *t;
  struct conn *prev, *next; /* all connections */
  struct conn *dirty_next;  /* connections with bytes to write */
  int dirty, writing, closing, verified, in_map;
  struct sockaddr_storage peer;
  uint8_t key[20];
  size_t klen;
  hd_time_t accepted, last_rx;
  uv_write_t wr;
  uint8_t *pend, *flight; /* bytes queued / being written */
  size_t pend_len, pend_cap, flight_len, flight_cap;
  size_t rx_len;
  uint8_t rx[HD_RFC4571_HDR + HD_ICE_TCP_MAX_FRAME]; /* one frame at most is ever kept */
} conn_t;

struct hd_ice_tcp {
  uv_loop_t *loop;
  uv_tcp_t listener;
  uv_timer_t sweep;
  hd_node_t *node;
  hd_rtc_udp_t *udp;
  hd_ice_tcp_config_t cfg;
  int port, stopping, handles; /* handles still open (listener, timer, connections) */
  conn_t *conns, *dirty;
  hd_map_t by_addr; /* peer address key -> conn */
  hd_ice_tcp_stats_t st;
  uint64_t refused_logged;
  uint8_t *scratch; /* SCRATCH bytes */
};

/* Peer address as a map key: family, port, address (like the node's 5-tuple
 * keys; the local side is the one listener). */
static size_t addr_key(const struct sockaddr *sa, uint8_t key[20]) { return hd_sockaddr_key(sa, key); }

static void handle_closed(hd_ice_tcp_t *t) {
  if (--t->handles == 0 && t->stopping) {
    hd_map_free(&t->by_addr);
    free(t->scratch);
    free(t);
  }
}

static void on_conn_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  hd_ice_tcp_t *t = c->t;
  free(c->pend);
  free(c->flight);
  free(c);
  handle_closed(t);
}

static void conn_close(conn_t *c, uint64_t *counter, const char *why) {
  if (c->closing) return;
  hd_ice_tcp_t *t = c->t;
  c->closing = 1;
  if (counter) (*counter)++;
  if (why) HD_LOGD("ice-tcp", "connection closed: %s", why);
  if (c->in_map) hd_map_del(&t->by_addr, c->key, c->klen);
  c->in_map = 0;
  if (c->prev)
    c->prev->next = c->next;
  else
    t->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  if (c->dirty) { /* unlink from the dirty list */
    for (conn_t **pp = &t->dirty; *pp; pp = &(*pp)->dirty_next)
      if (*pp == c) {
        *pp = c->dirty_next;
        break;
      }
    c->dirty = 0;
  }
  t->st.conns--;
  uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

/* ---- sending (called from the UDP drain) ---- */

static void write_next(conn_t *c);

static void on_write(uv_write_t *w, int status) {
  conn_t *c = w->data;
  c->writing = 0;
  c->flight_len = 0;
  if (c->closing) return;
  if (status < 0) {
    conn_close(c, &c->t->st.closed_peer, uv_strerror(status));
    return;
  }
  if (c->pend_len) write_next(c);
}

/* Swaps the queued bytes into flight and writes them. */
static void write_next(conn_t *c) {
  /* the two buffers trade places, each with its capacity */
  uint8_t *b = c->flight;
  size_t bcap = c->flight_cap;
  c->flight = c->pend;
  c->flight_cap = c->pend_cap;
  c->flight_len = c->pend_len;
  c->pend = b;
  c->pend_cap = bcap;
  c->pend_len = 0;
  uv_buf_t buf = uv_buf_init((char *)c->flight, (unsigned)c->flight_len);
  c->wr.data = c;
  c->writing = 1;
  int rc = uv_write(&c->wr, (uv_stream_t *)&c->tcp, &buf, 1, on_write);
  if (rc < 0) {
    c->writing = 0;
    conn_close(c, &c->t->st.closed_peer, uv_strerror(rc));
  }
}

int hd_ice_tcp_has_peer(hd_ice_tcp_t *t, const struct sockaddr *addr) {
  uint8_t key[20];
  size_t kl = t && addr ? addr_key(addr, key) : 0;
  return kl && hd_map_get(&t->by_addr, key, kl) != NULL;
}

static int tcp_take(void *ud, const hd_datagram_t *d) {
  hd_ice_tcp_t *t = ud;
  uint8_t key[20];
  size_t kl = addr_key((const struct sockaddr *)&d->to, key);
  conn_t *c = kl ? hd_map_get(&t->by_addr, key, kl) : NULL;
  if (!c) return 0;
  size_t need = d->len + HD_RFC4571_HDR;
  /* the cap counts what is queued and what is being written */
  if (c->closing || c->pend_len + c->flight_len + need > t->cfg.max_out_bytes) {
    t->st.out_dropped++;
    return -1; /* a TCP peer's datagram never goes out over UDP */
  }
  if (c->pend_len + need > c->pend_cap) {
    size_t cap = c->pend_cap ? c->pend_cap : 4096;
    while (cap < c->pend_len + need)
      cap *= 2;
    uint8_t *p = realloc(c->pend, cap);
    if (!p) {
      t->st.out_dropped++;
      return -1;
    }
    c->pend = p;
    c->pend_cap = cap;
  }
  int n = hd_rfc4571_frame(d->data, d->len, c->pend + c->pend_len, c->pend_cap - c->pend_len);
  if (n < 0) {
    t->st.out_dropped++;
    return -1;
  }
  c->pend_len += (size_t)n;
  if (!c->dirty) {
    c->dirty = 1;
    c->dirty_next = t->dirty;
    t->dirty = c;
  }
  return 1;
}

static void tcp_flush(void *ud) {
  hd_ice_tcp_t *t = ud;
  conn_t *c = t->dirty;
  t->dirty = NULL;
  while (c) {
    conn_t *next = c->dirty_next;
    c->dirty = 0;
    c->dirty_next = NULL;
    if (!c->writing && c->pend_len) write_next(c);
    c = next;
  }
}

/* ---- receiving ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  conn_t *c = h->data;
  buf->base = (char *)c->rx + c->rx_len;
  buf->len = sizeof c->rx - c->rx_len;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  conn_t *c = s->data;
  hd_ice_tcp_t *t = c->t;
  if (c->closing) return;
  if (nread < 0) {
    conn_close(c, &t->st.closed_peer, nread == UV_EOF ? "peer closed" : uv_strerror((int)nread));
    return;
  }
  if (nread == 0) return;
  hd_time_t now = hd_io_now(t->loop);
  c->last_rx = now;
  c->rx_len += (size_t)nread;
  size_t off = 0;
  int fed = 0;
  for (;;) {
    const uint8_t *pkt;
    size_t len;
    int rc = hd_rfc4571_next(c->rx + off, c->rx_len - off, HD_ICE_TCP_MAX_FRAME, &pkt, &len);
    if (rc == 0) break;
    if (rc < 0) {
      conn_close(c, &t->st.closed_bad_frame, "bad RFC 4571 framing");
      break;
    }
    off += (size_t)rc;
    /* until a check succeeds, the only thing a peer may send is STUN (RFC
     * 6544 §7.1: connectivity checks come first on a new connection) */
    if (!c->verified && !hd_stun_is_stun(pkt, len)) {
      conn_close(c, &t->st.closed_not_stun, "data before a valid ICE check");
      break;
    }
    memcpy(t->scratch, pkt, len);
    hd_node_feed(t->node, t->scratch, len, (const struct sockaddr *)&c->peer,
                 c->peer.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in),
                 now);
    fed = 1;
    if (!c->verified && hd_node_addr_known(t->node, (const struct sockaddr *)&c->peer)) c->verified = 1;
  }
  if (!c->closing) {
    memmove(c->rx, c->rx + off, c->rx_len - off);
    c->rx_len -= off;
  }
  /* replies go out now, and the node's timer follows its new deadlines */
  if (fed) hd_rtc_udp_kick(t->udp);
}

/* ---- accepting and deadlines ---- */

static void on_connection(uv_stream_t *server, int status) {
  hd_ice_tcp_t *t = server->data;
  if (status < 0 || t->stopping) return;
  conn_t *c = calloc(1, sizeof *c);
  if (!c) return;
  c->t = t;
  uv_tcp_init(t->loop, &c->tcp);
  c->tcp.data = c;
  t->handles++;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    return;
  }
  int plen = sizeof c->peer;
  if (t->st.conns >= t->cfg.max_conns ||
      uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->peer, &plen) != 0 ||
      !(c->klen = addr_key((const struct sockaddr *)&c->peer, c->key)) ||
      hd_map_put(&t->by_addr, c->key, c->klen, c) < 0) {
    t->st.refused_cap++;
    if (t->st.refused_cap >= t->refused_logged * 2 + 1) { /* 1, 3, 7, ...: a flood does not flood the log */
      HD_LOGW("ice-tcp",
              "port %d: ICE-TCP connection refused: %zu connections open (ice_tcp.max_connections); "
              "%llu refused so far",
              t->port, t->st.conns, (unsigned long long)t->st.refused_cap);
      t->refused_logged = t->st.refused_cap;
    }
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    return;
  }
  c->in_map = 1;
  c->next = t->conns;
  if (t->conns) t->conns->prev = c;
  t->conns = c;
  t->st.conns++;
  t->st.accepted++;
  c->accepted = c->last_rx = hd_io_now(t->loop);
  uv_tcp_nodelay(&c->tcp, 1); /* media: no Nagle delay on small packets */
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
    conn_close(c, &t->st.closed_peer, "read start failed");
}

static void on_sweep(uv_timer_t *tm) {
  hd_ice_tcp_t *t = tm->data;
  hd_time_t now = hd_io_now(t->loop);
  for (conn_t *c = t->conns, *next; c; c = next) {
    next = c->next;
    if (!c->verified && now - c->accepted >= t->cfg.check_timeout)
      conn_close(c, &t->st.closed_check_timeout, "no valid ICE check in time");
    else if (c->verified && now - c->last_rx >= t->cfg.idle_timeout)
      conn_close(c, &t->st.closed_idle, "idle");
  }
}

static void on_handle_closed(uv_handle_t *h) { handle_closed(h->data); }

int hd_ice_tcp_start(hd_ice_tcp_t **out, uv_loop_t *loop, hd_node_t *node, hd_rtc_udp_t *udp,
                     const char *host, int port, const hd_ice_tcp_config_t *cfg) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
    return HD_EINVAL;
  hd_ice_tcp_t *t = calloc(1, sizeof *t);
  if (!t) return HD_ENOMEM;
  t->loop = loop;
  t->node = node;
  t->udp = udp;
  if (cfg) t->cfg = *cfg;
  if (!t->cfg.max_conns) t->cfg.max_conns = 1024;
  if (!t->cfg.check_timeout) t->cfg.check_timeout = HD_SEC(10);
  if (!t->cfg.idle_timeout) t->cfg.idle_timeout = HD_SEC(30);
  if (!t->cfg.max_out_bytes) t->cfg.max_out_bytes = 1u << 20;
  t->scratch = malloc(SCRATCH);
  if (!t->scratch || hd_map_init(&t->by_addr, t->cfg.max_conns) < 0) {
    free(t->scratch);
    free(t);
    return HD_ENOMEM;
  }
  uv_tcp_init(loop, &t->listener);
  t->listener.data = t;
  uv_timer_init(loop, &t->sweep);
  t->sweep.data = t;
  t->handles = 2;
  int rc = uv_tcp_bind(&t->listener, (const struct sockaddr *)&ss, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&t->listener, 128, on_connection);
  if (rc != 0) {
    HD_LOGE("ice-tcp", "cannot listen on TCP %s:%d: %s", host, port, uv_strerror(rc));
    t->stopping = 1;
    uv_close((uv_handle_t *)&t->listener, on_handle_closed);
    uv_close((uv_handle_t *)&t->sweep, on_handle_closed);
    return HD_EIO;
  }
  struct sockaddr_storage bound;
  int blen = sizeof bound;
  uv_tcp_getsockname(&t->listener, (struct sockaddr *)&bound, &blen);
  t->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                              : ((struct sockaddr_in *)&bound)->sin_port);
  uv_timer_start(&t->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
  uv_unref((uv_handle_t *)&t->sweep); /* the sweep alone never keeps a loop alive */
  hd_rtc_udp_tcp_t hooks = {.take = tcp_take, .flush = tcp_flush, .ud = t, .n_conns = &t->st.conns};
  hd_rtc_udp_set_tcp(udp, &hooks);
  *out = t;
  return 0;
}

int hd_ice_tcp_port(const hd_ice_tcp_t *t) { return t->port; }

void hd_ice_tcp_stats(const hd_ice_tcp_t *t, hd_ice_tcp_stats_t *st) {
  if (t)
    *st = t->st;
  else
    memset(st, 0, sizeof *st);
}

void hd_ice_tcp_stop(hd_ice_tcp_t *t) {
  if (!t) return;
  hd_rtc_udp_set_tcp(t->udp, NULL);
  t->stopping = 1;
  while (t->conns)
    conn_close(t->conns, NULL, NULL);
  uv_close((uv_handle_t *)&t->listener, on_handle_closed);
  uv_close((uv_handle_t *)&t->sweep, on_handle_closed);
}
