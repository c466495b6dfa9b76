/* Per-subscriber send pacer: spreads what a forwarding node sends one
 * subscriber over time at a rate a little above that subscriber's downlink
 * estimate, instead of putting a whole keyframe (tens of packets) on the wire
 * at once, where it fills the bottleneck queue of a narrow link, raises the
 * delay the estimator sees and, past the queue, is lost.
 *
 * The model (after the design of libwebrtc's pacer, written anew here):
 *  - a pacing rate = factor x estimate. Before the first estimate nothing is
 *    paced by default (there is no rate to be "a little above": guessing one
 *    only adds delay, measured in docs/performance.md); with a start rate
 *    configured, factor x max(start rate, the rate packets are fed in), so a
 *    subscriber without feedback is never throttled below what it gets;
 *  - a debt in bytes that drains at the pacing rate; a packet may go while the
 *    debt is below one burst window (rate x interval, 5 ms by default), so a
 *    pacer woken every interval sends one window's worth, and the first
 *    packets after a quiet spell leave at once;
 *  - classes in priority order: audio (never waits: it goes at once, but its
 *    bytes count), retransmissions, video, padding/probe. While a probe
 *    cluster runs (rtc/bwe.h) the rate is at least the cluster's: media
 *    waiting then leaves at the probe rate and counts toward the probe, and
 *    the cluster's padding fills in behind it, as libwebrtc's pacer does;
 *  - caps in packets and bytes: on overflow the oldest padding, then the
 *    oldest video packet is dropped (counted), the receiver's NACK or
 *    keyframe request recovers;
 *  - a queue-delay bound: when the oldest packet would otherwise wait longer
 *    than max_delay, the rate rises to what empties the queue by then, and
 *    past it everything due goes at once (holding media longer only makes it
 *    useless).
 *
 * Sans-IO, virtual time: hd_pacer_enqueue says whether a packet may go now
 * (the caller sends it itself, nothing is copied) or keeps a copy; the caller
 * drains due packets with hd_pacer_peek / hd_pacer_sent and wakes at
 * hd_pacer_next_timeout. */
#ifndef HD_RTC_PACER_H
#define HD_RTC_PACER_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"

enum { HD_PACE_AUDIO = 0, HD_PACE_RTX = 1, HD_PACE_VIDEO = 2, HD_PACE_PADDING = 3, HD_PACE_CLASSES = 4 };

#define HD_PACER_PKT_MAX 1500                   /* largest packet kept (a datagram) */
#define HD_PACER_DEFAULT_FACTOR_PCT 150         /* pacing rate = 1.5 x the estimate */
#define HD_PACER_DEFAULT_INTERVAL HD_MS(5)      /* burst window */
#define HD_PACER_DEFAULT_MAX_PACKETS 256        /* queue cap in packets */
#define HD_PACER_DEFAULT_MAX_BYTES (256 * 1024) /* queue cap in bytes */
#define HD_PACER_DEFAULT_MAX_DELAY HD_MS(250)   /* queue-delay bound */
#define HD_PACER_FEED_WINDOW HD_MS(500)         /* the fed rate is measured over this */

typedef struct {
  unsigned factor_pct; /* pacing rate in percent of the estimate, >= 100 */
  hd_time_t interval;  /* burst window (> 0) */
  size_t max_packets, max_bytes;
  hd_time_t max_delay; /* > 0 */
  uint64_t start_bps;  /* assumed estimate before the first one; 0 (default) = not paced until then */
} hd_pacer_cfg_t;

/* A queued packet, lent to the caller by hd_pacer_peek until the next call. */
typedef struct {
  size_t len;
  int cls;
  uint32_t tag; /* the caller's (e.g. which track), returned as given */
  hd_time_t enqueued;
  int next; /* slot index of the next packet of its class, -1 = none */
  uint8_t data[HD_PACER_PKT_MAX];
} hd_pacer_pkt_t;

typedef struct {
  hd_pacer_cfg_t cfg;
  uint64_t estimate_bps; /* 0 = none yet */
  uint64_t probe_bps;    /* a probe cluster's rate while one runs, else 0 */
  double debt;           /* bytes sent beyond what the rate has drained */
  hd_time_t last;        /* when debt was last drained */
  double rate;           /* the release rate computed at rate_at (a cache, see pacer.c) */
  hd_time_t rate_at;
  /* slots: grown on demand up to cfg.max_packets; free list and per-class FIFOs by index */
  hd_pacer_pkt_t *slots;
  size_t n_slots;
  int free_head;
  int head[HD_PACE_CLASSES], tail[HD_PACE_CLASSES];
  size_t count[HD_PACE_CLASSES];
  size_t queued_packets, queued_bytes;
  /* the rate packets are fed in (any class), for the no-estimate case */
  uint64_t feed_bytes, feed_bps;
  hd_time_t feed_start;
  /* counters */
  uint64_t sent_now;        /* packets that went at once (not queued) */
  uint64_t queued;          /* packets that waited */
  uint64_t released;        /* queued packets released */
  uint64_t dropped;         /* video packets dropped to the caps */
  uint64_t dropped_bytes;   /* their bytes */
  uint64_t padding_refused; /* probe/padding packets dropped to the caps */
  uint64_t delay_drains;    /* releases sped up by the queue-delay bound */
  hd_time_t max_wait;       /* longest time a released packet waited */
} hd_pacer_t;

/* Defaults (HD_PACER_DEFAULT_*) into cfg. */
void hd_pacer_cfg_default(hd_pacer_cfg_t *cfg);
/* cfg NULL = defaults. HD_EINVAL for a factor below 100, a zero interval /
 * delay / cap, or a packet cap above 65536. Nothing is allocated until a
 * packet has to wait. */
int hd_pacer_init(hd_pacer_t *p, const hd_pacer_cfg_t *cfg, hd_time_t now);
void hd_pacer_free(hd_pacer_t *p);
/* The subscriber's downlink estimate (0 = none: the start rate / fed rate rule). */
void hd_pacer_set_estimate(hd_pacer_t *p, uint64_t bps);
/* A probe cluster's rate while it runs (0 when it ends): the pacing rate is
 * at least that. */
void hd_pacer_set_probe_rate(hd_pacer_t *p, uint64_t bps);
/* The rate packets are released at now (bits/s), before the queue-delay
 * bound; 0 = not paced (no estimate and no start rate). */
uint64_t hd_pacer_rate(const hd_pacer_t *p, hd_time_t now);
/* Offers a packet of class cls. Returns 1: send it now (its bytes are
 * counted; nothing is copied); 0: a copy is queued (released later through
 * hd_pacer_peek); HD_ENOSPC when the caps leave no room even
 * after dropping older video (the packet is dropped and counted); HD_EINVAL for a bad class or a packet
 * larger than HD_PACER_PKT_MAX. */
int hd_pacer_enqueue(hd_pacer_t *p, int cls, const uint8_t *pkt, size_t len, uint32_t tag, hd_time_t now);
/* The queued packet that may go at `now`, or NULL (lent until the next call).
 * Call hd_pacer_sent after sending it; if it cannot be sent now (the caller's
 * own queue is full), leave it: it stays first. */
const hd_pacer_pkt_t *hd_pacer_peek(hd_pacer_t *p, hd_time_t now);
/* The packet hd_pacer_peek returned has been sent: removes and counts it. */
void hd_pacer_sent(hd_pacer_t *p, hd_time_t now);
/* When the next queued packet may go; HD_TIME_NEVER when nothing waits. */
hd_time_t hd_pacer_next_timeout(const hd_pacer_t *p);
/* Packets / bytes waiting, and the age of the oldest at `now` (0 when empty). */
size_t hd_pacer_queued_packets(const hd_pacer_t *p);
size_t hd_pacer_queued_bytes(const hd_pacer_t *p);
hd_time_t hd_pacer_oldest_age(const hd_pacer_t *p, hd_time_t now);
/* Drops everything waiting (the subscriber is going away, or its stream restarts). */
void hd_pacer_clear(hd_pacer_t *p);

#endif
