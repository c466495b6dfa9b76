/* Test support (not shipped): an in-process network model for virtual-time
 * tests (DESIGN §3 rule 2). A hd_link_t is one direction of a path: fixed
 * delay, Bernoulli loss from a seeded PRNG (so a run is reproducible), and an
 * optional list of datagram indices to drop. A hd_wire_t holds the datagrams
 * in flight, ordered by delivery time (ties keep send order). */
#ifndef HD_TEST_LINK_H
#define HD_TEST_LINK_H
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/time.h"

typedef struct {
  hd_time_t delay;      /* one-way delay */
  double loss;          /* drop probability 0..1 */
  const uint64_t *drop; /* ascending 0-based indices of datagrams to drop, or NULL */
  size_t n_drop;
} hd_link_params_t;

typedef struct {
  hd_link_params_t p;
  uint64_t rng;
  uint64_t sent, dropped;
  size_t drop_pos;
} hd_link_t;

void hd_link_init(hd_link_t *l, const hd_link_params_t *p, uint64_t seed);
/* Changes delay / loss / drop list; keeps the PRNG and the counters. */
void hd_link_set(hd_link_t *l, const hd_link_params_t *p);
/* Decides the next datagram's fate: 1 = deliver at *at, 0 = lost. */
int hd_link_send(hd_link_t *l, hd_time_t now, hd_time_t *at);
/* Next value of the link's PRNG (splitmix64). */
uint64_t hd_link_rand(hd_link_t *l);

#define HD_WIRE_MTU 1500

typedef struct {
  hd_time_t at;
  uint64_t order;
  int dst; /* caller's endpoint id */
  struct sockaddr_storage from;
  socklen_t fromlen;
  size_t len;
  uint8_t data[HD_WIRE_MTU];
} hd_wire_pkt_t;

typedef struct {
  hd_wire_pkt_t **heap;
  size_t n, cap;
  uint64_t order;
  uint64_t overflow; /* datagrams refused because the wire was full */
} hd_wire_t;

int hd_wire_init(hd_wire_t *w, size_t cap);
void hd_wire_free(hd_wire_t *w);
/* Puts a datagram in flight. HD_ENOSPC when full, HD_EINVAL when too big. */
int hd_wire_push(hd_wire_t *w, hd_time_t at, int dst, const struct sockaddr *from, socklen_t fromlen,
                 const uint8_t *data, size_t len);
/* Delivery time of the earliest datagram, HD_TIME_NEVER if none. */
hd_time_t hd_wire_next(const hd_wire_t *w);
/* Takes the earliest datagram due at `now` into *out: 1, or 0 if none is due. */
int hd_wire_pop(hd_wire_t *w, hd_time_t now, hd_wire_pkt_t *out);

#endif
