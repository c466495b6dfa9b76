/* The media port: one UDP socket on the libuv loop feeding every datagram to
 * the node's sans-IO core, draining its tx queue back to the socket, and
 * arming one timer at the node's next deadline. */
#ifndef HD_IO_RTC_UDP_H
#define HD_IO_RTC_UDP_H
#include <uv.h>

#include "io/udp_batch.h"
#include "sfu/node.h"

typedef struct hd_rtc_udp hd_rtc_udp_t;

/* Largest GSO hold (env HUDONG_GSO_HOLD_US, default 0 = off): how long the send
 * after a receive batch may wait for more batches so that a viewer's packets
 * leave as one GSO message (docs/operations.md "UDP GSO"). */
#define HD_RTC_GSO_HOLD_MAX_US 2000

/* Binds host:port (port 0 = ephemeral) and starts receiving. */
int hd_rtc_udp_start(hd_rtc_udp_t **out, uv_loop_t *loop, hd_node_t *node, const char *host, int port);
/* Bound port. */
/* sendmmsg(2) calls made so far (packets_out / this = datagrams per call). */
uint64_t hd_rtc_udp_send_calls(const hd_rtc_udp_t *u);
int hd_rtc_udp_port(const hd_rtc_udp_t *u);
/* Call after changing node state from outside a UDP event (e.g. an HTTP request)
 * so queued datagrams go out and the timer is re-armed. */
void hd_rtc_udp_kick(hd_rtc_udp_t *u);
void hd_rtc_udp_stop(hd_rtc_udp_t *u);
/* Datagrams for peers reached over ICE-TCP (io/ice_tcp.h): before each send,
 * take() is offered every queued datagram while *n_conns is non-zero, and
 * returns 1 when it took it (framed on a connection), -1 when the datagram is
 * for a connection but was dropped (its buffer is full: counted as send_error),
 * or 0 to leave it for UDP; flush() then writes what was taken. hooks NULL = none. */
typedef struct {
  int (*take)(void *ud, const hd_datagram_t *d);
  void (*flush)(void *ud);
  void *ud;
  const size_t *n_conns;
} hd_rtc_udp_tcp_t;
void hd_rtc_udp_set_tcp(hd_rtc_udp_t *u, const hd_rtc_udp_tcp_t *hooks);
/* The socket's descriptor (for io/worker_shards.c, which sends on it from
 * other threads: sendmmsg on one UDP socket from two threads is safe), and
 * whether UDP GSO was usable on it at start. */
int hd_rtc_udp_fd(const hd_rtc_udp_t *u);
int hd_rtc_udp_gso(const hd_rtc_udp_t *u);
/* fn(ud) runs after every send of the tx queue (end of a receive batch, a
 * timer, a kick), on the loop's thread. */
void hd_rtc_udp_set_on_flush(hd_rtc_udp_t *u, void (*fn)(void *ud), void *ud);
/* Sends every datagram of q on fd with sendmmsg(2) (GSO where *gso, turned
 * off after repeated refusals as described in rtc_udp.c), counting into st
 * (packets_out, bytes_out, drop_send_error, udp_gso_*) and *send_calls. */
void hd_udp_send_queue(int fd, hd_txq_t *q, hd_udp_batch_t *b, int *gso, int *gso_fails, uint64_t *send_calls,
                       hd_node_stats_t *st);
/* Monotonic time in µs as the cores expect it. */
hd_time_t hd_io_now(uv_loop_t *loop);

#endif
