/* `hudong netem --tcp` on libuv: a TCP relay that holds every chunk it reads
 * for a fixed one-way delay per direction before writing it on (order kept,
 * nothing lost), so HTTP(S) and WebSocket paths get an RTT too (issue 15
 * item 7: /api/route's client RTT probes are GET /api/ping over TCP; the UDP
 * relay in netem_relay.h cannot delay them). Loss, jitter and rate do not
 * apply to a TCP byte stream here (TCP would repair loss anyway). Each
 * accepted connection gets its own upstream connection; bytes queued per
 * direction are capped (reading pauses above the cap). */
#ifndef HD_IO_NETEM_TCP_H
#define HD_IO_NETEM_TCP_H
#include <stddef.h>
#include <uv.h>

#include "base/time.h"

#define HD_NETEM_TCP_QUEUE_MAX (4u << 20) /* bytes held per direction before reading pauses */

typedef struct hd_netem_tcp hd_netem_tcp_t;

typedef struct {
  const char *listen_host; /* IP literal */
  int listen_port;         /* 0 = ephemeral */
  const char *to_host;     /* IP literal */
  int to_port;
  hd_time_t delay[2]; /* one-way delay, µs: [0] client->target, [1] target->client */
  size_t max_conns;   /* 0 = 256; more are closed at once */
} hd_netem_tcp_config_t;

/* Binds and listens. HD_EINVAL for bad addresses, HD_EIO if it cannot listen. */
int hd_netem_tcp_start(hd_netem_tcp_t **out, uv_loop_t *loop, const hd_netem_tcp_config_t *cfg);
int hd_netem_tcp_port(const hd_netem_tcp_t *r);
/* Connections accepted so far and bytes relayed per direction. */
void hd_netem_tcp_stats(const hd_netem_tcp_t *r, size_t *conns, uint64_t bytes[2]);
/* Closes the listener and every connection; memory goes as the loop runs the closes. */
void hd_netem_tcp_stop(hd_netem_tcp_t *r);

#endif
