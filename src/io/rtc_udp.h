/* The media port: one UDP socket on the libuv loop feeding every datagram to
 * the node's sans-IO core, draining its tx queue back to the socket, and
 * arming one timer at the node's next deadline. */
#ifndef HD_IO_RTC_UDP_H
#define HD_IO_RTC_UDP_H
#include <uv.h>

#include "sfu/node.h"

typedef struct hd_rtc_udp hd_rtc_udp_t;

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
/* Monotonic time in µs as the cores expect it. */
hd_time_t hd_io_now(uv_loop_t *loop);

#endif
