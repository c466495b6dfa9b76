/* rtm_bench: the client side of one messaging protocol (MQTT 3.1.1 for
 * mosquitto, Hudong RTM over WebSocket, core NATS over TCP or WebSocket), driven by rtm_bench.c's epoll loop.
 * A driver writes requests with bench_write() and reports what it parsed with
 * the bench_on_*() callbacks. */
#ifndef HD_BENCH_RTM_PROTO_H
#define HD_BENCH_RTM_PROTO_H
#include <stddef.h>
#include <stdint.h>

struct bench_proto;

typedef struct {
  const struct bench_proto *proto; /* the target's driver */
  int idx, fd;
  int connecting, ready, want_out;
  uint8_t *rbuf;
  size_t rlen;
  uint8_t *wbuf;
  size_t wlen, wcap;
  void *pstate; /* the driver's per-connection state (freed with free()) */
} bench_conn_t;

typedef struct bench_proto {
  const char *name;
  /* TCP connected: send the protocol's opening (WebSocket upgrade, CONNECT) */
  void (*hello)(bench_conn_t *c);
  /* parse c->rbuf[0..rlen); set *used to the bytes consumed; -1 = fatal */
  int (*parse)(bench_conn_t *c, size_t *used);
  /* optional: after a read burst (e.g. send one cumulative ack) */
  void (*after_read)(bench_conn_t *c);
  /* optional: called every turn of the event loop (at least every 1 ms) with
   * the monotonic time in ns (e.g. send the acks whose delay is over) */
  void (*poll)(int64_t now_ns);
  /* subscribe to channel ch of the fan-out run `fanout` */
  void (*subscribe)(bench_conn_t *c, int ch, int fanout);
  /* publish payload (printable ASCII) to channel ch */
  void (*publish)(bench_conn_t *c, int ch, int fanout, const char *payload, size_t n);
} bench_proto_t;

extern const bench_proto_t bench_proto_mqtt, bench_proto_hudong, bench_proto_hudong_2n,
    bench_proto_hudong_base, bench_proto_nats, bench_proto_nats_ws;

/* the server's port (the WebSocket Host header wants it) */
void bench_proto_set_port(int port);
/* nats-server's WebSocket port (the Host header) */
void bench_nats_set_ws_port(int port);
/* Hudong's ack policy: a cumulative ack once `every` messages are unacked or
 * delay_ms after the first unacked one, as the shipped clients do (web/rtm.js,
 * src/rtm/client.h: 32 and 100 ms); delay_ms 0 = one ack per read burst. */
void bench_hudong_set_ack(int every, int delay_ms);
/* writes a `hudong serve` config for the benchmark; 0 or -1 */
int bench_hudong_write_config(const char *path, const char *listen);

/* provided by rtm_bench.c */
int bench_write(bench_conn_t *c, const void *p, size_t n);
/* sends what bench_write queued (as far as the socket takes it) */
void bench_flush(bench_conn_t *c);
void bench_fail(bench_conn_t *c, const char *fmt, ...);
void bench_on_ready(bench_conn_t *c);
void bench_on_subscribed(bench_conn_t *c);
void bench_on_puback(bench_conn_t *c);
void bench_on_message(bench_conn_t *c, const uint8_t *payload, size_t n);

#endif
