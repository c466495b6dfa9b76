/* One direction of an emulated network link, sans-IO and deterministic for a
 * given seed (the instrument behind `hudong netem` and the virtual-time tests
 * of the transport, SFU and overlay).
 *
 * A packet offered at time t goes through, in order:
 *   blackout (link down → dropped), random loss (Bernoulli) or bursty loss
 *   (Gilbert-Elliott, 4 parameters), duplication, the bottleneck (capacity in
 *   bit/s from a constant, a piecewise schedule — e.g. RFC 8867 §5.1 — or a
 *   Mahimahi packet-delivery trace, behind a drop-tail queue sized in bytes or
 *   ms), then propagation delay + jitter (uniform, normal or Pareto; optionally
 *   order-preserving) and reordering.
 * The owner polls packets out when they are due and asks for the next deadline.
 * Packets are copied in (bounded by a queue cap) and lent out on poll. */
#ifndef HD_NETEM_LINK_H
#define HD_NETEM_LINK_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"

#define HD_NETEM_MAX_PKT 2048    /* largest datagram carried */
#define HD_NETEM_MAX_SCHEDULE 64 /* capacity schedule steps */
#define HD_NETEM_MAX_BLACKOUTS 16
#define HD_NETEM_DEFAULT_QUEUE_PKTS 10000 /* hard cap on packets inside one link */

enum { HD_JITTER_NONE = 0, HD_JITTER_UNIFORM = 1, HD_JITTER_NORMAL = 2, HD_JITTER_PARETO = 3 };

typedef struct {
  hd_time_t at;      /* offset from the link's start time */
  uint64_t rate_bps; /* capacity from `at` on; 0 = unlimited */
} hd_netem_step_t;

typedef struct {
  hd_time_t start, duration; /* offsets from the link's start time */
} hd_netem_blackout_t;

/* Gilbert-Elliott (4 parameters): p = P(good→bad), r = P(bad→good) per packet,
 * k = P(deliver | good) (1 - loss in good), h = P(deliver | bad). Mean burst
 * length in the bad state is 1/r packets. */
typedef struct {
  int enabled;
  double p, r, k, h;
} hd_netem_ge_t;

typedef struct {
  hd_time_t delay;      /* one-way propagation delay */
  hd_time_t jitter;     /* spread: uniform ±jitter, normal σ, Pareto scale */
  int jitter_dist;      /* HD_JITTER_* */
  int keep_order;       /* jittered packets never overtake earlier ones */
  double loss;          /* Bernoulli loss probability, 0..1 */
  hd_netem_ge_t ge;     /* bursty loss (used instead of `loss` when enabled) */
  double duplicate;     /* probability a packet is delivered twice */
  double reorder;       /* probability a packet skips ahead (delivered with no extra delay) */
  uint64_t rate_bps;    /* constant capacity; 0 = unlimited (ignored with schedule/trace) */
  size_t queue_bytes;   /* drop-tail queue limit in bytes; 0 = from queue_time or unlimited */
  hd_time_t queue_time; /* queue limit as time at the current rate (e.g. 100 ms) */
  hd_netem_step_t schedule[HD_NETEM_MAX_SCHEDULE];
  size_t n_schedule;
  hd_netem_blackout_t blackouts[HD_NETEM_MAX_BLACKOUTS];
  size_t n_blackouts;
  size_t max_packets; /* cap on packets held; 0 = HD_NETEM_DEFAULT_QUEUE_PKTS */
} hd_netem_params_t;

/* Per-direction counters. Delay percentiles are over queueing delay at the
 * bottleneck (excluding propagation delay and jitter). */
typedef struct {
  uint64_t pkts_in, bytes_in, pkts_out, bytes_out;
  uint64_t drop_loss, drop_queue, drop_blackout, drop_cap, duplicated, reordered;
  hd_time_t qdelay_p50, qdelay_p95, qdelay_p99, qdelay_max;
} hd_netem_stats_t;

typedef struct hd_netem_link hd_netem_link_t;

/* Sets every field to "no impairment". */
void hd_netem_params_init(hd_netem_params_t *p);
int hd_netem_link_new(hd_netem_link_t **out, const hd_netem_params_t *p, uint64_t seed, hd_time_t start);
/* Replaces the impairments from `now` on (packets already inside keep their
 * schedule). Schedule and blackout offsets stay relative to the link's start. */
int hd_netem_link_set(hd_netem_link_t *l, const hd_netem_params_t *p, hd_time_t now);
/* Loads a Mahimahi trace (one line per delivery opportunity: a millisecond
 * timestamp; each allows one 1500-byte packet; the trace repeats). Replaces
 * rate/schedule. Returns 0 or HD_EPROTO with a reason ("line 7: ..."). */
int hd_netem_link_set_trace(hd_netem_link_t *l, const char *text, size_t len, char *err, size_t errcap);
/* Offers a packet at `now`. Returns 1 if accepted (it will come out later), 0
 * if dropped by an impairment (counted), negative on error (too big). */
int hd_netem_link_send(hd_netem_link_t *l, const uint8_t *pkt, size_t len, hd_time_t now);
/* Takes the next packet due at or before `now`: returns its length and lends
 * its bytes via *pkt (valid until the next call on the link), 0 when none. */
int hd_netem_link_poll(hd_netem_link_t *l, hd_time_t now, const uint8_t **pkt);
/* Time of the next packet delivery or internal event; HD_TIME_NEVER when idle. */
hd_time_t hd_netem_link_next_timeout(const hd_netem_link_t *l);
/* Current counters (percentiles computed on the call). */
void hd_netem_link_stats(hd_netem_link_t *l, hd_netem_stats_t *out);
/* Capacity in effect at `now` (bit/s; 0 = unlimited). */
uint64_t hd_netem_link_rate(const hd_netem_link_t *l, hd_time_t now);
void hd_netem_link_free(hd_netem_link_t *l);

#endif
