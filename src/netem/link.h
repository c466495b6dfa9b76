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
 * Packets are copied in (bounded by a queue cap) and lent out on poll.
 *
 * Semantics worth knowing (see link.c for the why):
 * - Randomness comes from a private xoshiro256** per purpose (loss,
 *   duplication, jitter, reorder), all derived from `seed`: changing the jitter
 *   does not change which packets are lost.
 * - The bottleneck computes each packet's departure when it is offered
 *   (FIFO, serialisation len*8/rate integrated across schedule steps; ns
 *   internally). Queueing delay = departure - offer time (includes the
 *   packet's own serialisation). A packet always enters an empty queue, even
 *   if it is bigger than the limit, so a tiny queue never kills the link.
 * - Trace mode follows Mahimahi's link queue: each opportunity carries 1500
 *   bytes that packets use byte by byte (three 500-byte packets share one
 *   opportunity, a 2000-byte one spans two); bytes of an opportunity left
 *   unused while the queue is empty are lost. A packet offered exactly at an
 *   opportunity's time may use it.
 * - Blackouts drop packets offered during [start, start+duration); packets
 *   already queued or in flight are still delivered.
 * - Jitter: uniform in [-jitter, +jitter]; normal with sigma = jitter; Pareto
 *   = one-sided heavy tail jitter*((1-u)^(-1/3) - 1) (Lomax, shape 3: median
 *   0.26*jitter, mean 0.5*jitter, P(> 9*jitter) = 1/1000). The total added
 *   delay never goes below 0 and one sample is capped at 1000*jitter.
 * - Reorder (netem style): a chosen packet leaves the bottleneck straight to
 *   the receiver, with no propagation delay and no jitter, so it overtakes
 *   what is in flight; keep_order does not hold it back.
 * - Counters: pkts_in + duplicated = pkts_out + drop_loss + drop_queue +
 *   drop_blackout + drop_cap + hd_netem_link_held(). */
#ifndef HD_NETEM_LINK_H
#define HD_NETEM_LINK_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"

#define HD_NETEM_MAX_PKT 2048    /* largest datagram carried */
#define HD_NETEM_MAX_SCHEDULE 64 /* capacity schedule steps */
#define HD_NETEM_MAX_BLACKOUTS 16
#define HD_NETEM_DEFAULT_QUEUE_PKTS 10000  /* hard cap on packets inside one link */
#define HD_NETEM_MAX_QUEUE_PKTS (1u << 20) /* largest max_packets accepted */
#define HD_NETEM_MAX_TRACE (1u << 22)      /* delivery opportunities in one trace period */
#define HD_NETEM_TRACE_MTU 1500            /* bytes per Mahimahi delivery opportunity */
#define HD_NETEM_MAX_RATE 1000000000000ull /* 1 Tbit/s: largest rate accepted */
#define HD_NETEM_MAX_DELAY HD_SEC(3600)    /* largest delay / jitter accepted */

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
  double reorder;       /* probability a packet skips ahead: no propagation delay, no jitter (netem) */
  uint64_t rate_bps;    /* constant capacity; 0 = unlimited. With a schedule: the
                           capacity before its first step. Ignored with a trace. */
  size_t queue_bytes;   /* drop-tail queue limit in bytes; 0 = from queue_time or unlimited */
  hd_time_t queue_time; /* queue limit as time at the current rate (e.g. 100 ms) */
  hd_netem_step_t schedule[HD_NETEM_MAX_SCHEDULE]; /* `at` strictly ascending, >= 0 */
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
/* Checks a parameter set: 0 or HD_EINVAL (probability outside 0..1, negative
 * or huge delay, unsorted schedule, too many steps, rate above the max...). */
int hd_netem_params_check(const hd_netem_params_t *p);
/* Creates a link whose schedule, blackouts and trace are relative to `start`.
 * Returns 0, HD_EINVAL (bad params) or HD_ENOMEM. */
int hd_netem_link_new(hd_netem_link_t **out, const hd_netem_params_t *p, uint64_t seed, hd_time_t start);
/* Replaces the impairments from `now` on (packets already inside keep their
 * schedule). Schedule and blackout offsets stay relative to the link's start.
 * A loaded trace stays in effect (see hd_netem_link_clear_trace). The loss
 * model state and the random streams carry on. 0, HD_EINVAL or HD_ENOMEM. */
int hd_netem_link_set(hd_netem_link_t *l, const hd_netem_params_t *p, hd_time_t now);
/* Loads a Mahimahi trace (one line per delivery opportunity: a millisecond
 * timestamp; each allows 1500 bytes; the trace repeats with period = the
 * last timestamp, which must be > 0). Timestamps must not decrease; blank
 * lines, surrounding spaces, CR and '#' comment lines are tolerated. Replaces
 * rate/schedule until cleared. Returns 0, HD_ENOMEM, or HD_EPROTO with a
 * reason in err ("line 7: ..."; err may be NULL). On error the previous
 * capacity stays in effect. */
int hd_netem_link_set_trace(hd_netem_link_t *l, const char *text, size_t len, char *err, size_t errcap);
/* Drops the trace: rate/schedule from the params apply again. */
void hd_netem_link_clear_trace(hd_netem_link_t *l);
/* Offers a packet at `now` (1..HD_NETEM_MAX_PKT bytes). Returns 1 if accepted
 * (it will come out later; a duplicate's fate does not change this), 0 if
 * dropped by an impairment (counted), HD_EINVAL for an empty or too big
 * packet (not counted). Releases the buffer lent by the last poll. */
int hd_netem_link_send(hd_netem_link_t *l, const uint8_t *pkt, size_t len, hd_time_t now);
/* Takes the next packet due at or before `now`: returns its length and lends
 * its bytes via *pkt (valid until the next call on the link), 0 when none. */
int hd_netem_link_poll(hd_netem_link_t *l, hd_time_t now, const uint8_t **pkt);
/* Time of the next packet delivery or internal event; HD_TIME_NEVER when idle. */
hd_time_t hd_netem_link_next_timeout(const hd_netem_link_t *l);
/* Packets inside the link not yet polled (queued or in flight); they count
 * against max_packets. */
size_t hd_netem_link_held(const hd_netem_link_t *l);
/* Current counters (percentiles computed on the call, from a log-linear
 * histogram: exact below 128 us, within 1/64 above; max is exact). */
void hd_netem_link_stats(hd_netem_link_t *l, hd_netem_stats_t *out);
/* Capacity in effect at `now` (bit/s; 0 = unlimited). With a trace: its
 * average rate (opportunities * 1500 * 8 / period). */
uint64_t hd_netem_link_rate(const hd_netem_link_t *l, hd_time_t now);
/* Frees the link and every packet in it; NULL is fine. */
void hd_netem_link_free(hd_netem_link_t *l);

#endif
