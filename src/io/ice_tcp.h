/* ICE-TCP passive candidates (RFC 6544) on a media worker: a TCP listener on
 * the worker's media port number, for clients whose networks drop UDP.
 *
 * Each accepted connection carries RFC 4571 frames (proto/rfc4571.h); every
 * packet is fed to the worker's node exactly like a UDP datagram from the
 * connection's peer address (STUN USERNAME routing, then 5-tuple: sfu/node.h),
 * and the node's outgoing datagrams to that address are taken off the tx queue
 * by the UDP drain (io/rtc_udp.h hd_rtc_udp_set_tcp) and written back framed on
 * the connection. The node does not know which transport a peer uses: this
 * shell maps the destination address to its connection.
 *
 * Caps, each closing the one connection concerned (never the listener):
 *  - at most max_conns connections per worker (a new one beyond is closed at
 *    once and counted);
 *  - a connection must send a valid ICE connectivity check (one the node
 *    accepts) within check_timeout, and only STUN until then;
 *  - a frame longer than HD_ICE_TCP_MAX_FRAME or of length 0 is bad framing;
 *  - no bytes for idle_timeout closes a connection in use (ICE consent checks,
 *    RFC 7675, come every few seconds while the session lives);
 *  - outgoing bytes queued on a connection that does not read are capped at
 *    max_out_bytes: beyond, datagrams are dropped and counted, as a full UDP
 *    socket buffer drops them. */
#ifndef HD_IO_ICE_TCP_H
#define HD_IO_ICE_TCP_H
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/time.h"
#include "io/rtc_udp.h"
#include "sfu/node.h"

/* Longest packet a frame may carry: the node's datagram size. */
#define HD_ICE_TCP_MAX_FRAME 1500

typedef struct {
  size_t max_conns;        /* per worker; 0 = 1024 */
  hd_time_t check_timeout; /* µs to the first valid ICE check; 0 = 10 s */
  hd_time_t idle_timeout;  /* µs without a byte received, once in use; 0 = 30 s */
  size_t max_out_bytes;    /* queued outgoing bytes per connection; 0 = 1 MiB */
} hd_ice_tcp_config_t;

typedef struct {
  uint64_t accepted, refused_cap, closed_bad_frame, closed_not_stun, closed_check_timeout, closed_idle,
      closed_peer, out_dropped;
  size_t conns;
} hd_ice_tcp_stats_t;

typedef struct hd_ice_tcp hd_ice_tcp_t;

/* Listens on host:port (TCP) on loop, feeding node and sending through udp's
 * drain (it registers itself with hd_rtc_udp_set_tcp). HD_EIO when the port
 * cannot be bound, HD_EINVAL for a bad host, HD_ENOMEM. */
int hd_ice_tcp_start(hd_ice_tcp_t **out, uv_loop_t *loop, hd_node_t *node, hd_rtc_udp_t *udp,
                     const char *host, int port, const hd_ice_tcp_config_t *cfg);
int hd_ice_tcp_port(const hd_ice_tcp_t *t);
void hd_ice_tcp_stats(const hd_ice_tcp_t *t, hd_ice_tcp_stats_t *st);
/* 1 if a connection of t comes from addr (datagrams to it go over TCP). NULL t: 0. */
int hd_ice_tcp_has_peer(hd_ice_tcp_t *t, const struct sockaddr *addr);
/* Closes the listener and every connection; frees itself once libuv has closed
 * them (run the loop). Unregisters from the UDP drain at once. NULL ok. */
void hd_ice_tcp_stop(hd_ice_tcp_t *t);

#endif
