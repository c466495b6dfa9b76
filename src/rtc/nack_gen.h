/* Receiver-side NACK generation (RFC 4585 §6.2.1 generic NACK) for one RTP
 * stream: remembers the sequence numbers missing below the highest one seen
 * and says which to request now. A seq is asked for again every
 * max(rtt + margin, min_interval) until it arrives (original or RTX), it falls
 * more than max_age behind, or it was asked for max_tries times. Bounded: at
 * most HD_NACK_MAX_MISSING outstanding; a larger gap (e.g. a source restart)
 * resets instead of requesting thousands of packets. Sans-IO, virtual time.
 *
 * With learn_rtt set the generator measures the round trip itself: the time
 * from a seq's first request to its repair is a sample of "NACK out, RTX back"
 * (only seqs asked once count, so a repair is never matched to the wrong
 * request), smoothed like RFC 6298 §2 SRTT (1/8 gain). A forwarding node that
 * only receives from a sender has no other RTT source on that leg.
 *
 * FlexFEC hold (hd_nack_gen_fec_seen / hd_nack_gen_fec_covered): while the
 * sender's repair packets keep coming, a new hole waits `fec_wait` (instead
 * of reorder_wait) for the repair packet of its group; the hold ends
 * HD_NACK_FEC_HOLD after the last repair packet (a sender that stopped FEC
 * costs nothing from then on), and a hole that a repair packet has already
 * covered without rebuilding it (two of its group lost) is asked for at
 * once: FEC can no longer repair it. */
#ifndef HD_RTC_NACK_GEN_H
#define HD_RTC_NACK_GEN_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"

#define HD_NACK_MAX_MISSING 256
#define HD_NACK_FEC_HOLD HD_SEC(1) /* FEC hold ends this long after the last repair packet */

typedef struct {
  int64_t ext_seq;    /* extended sequence number */
  hd_time_t first;    /* when the gap was noticed */
  hd_time_t next_ask; /* when to (re)request */
  hd_time_t asked;    /* when first requested (tries > 0) */
  uint8_t tries;
} hd_nack_entry_t;

typedef struct {
  int started;
  int64_t max_ext; /* highest extended seq seen */
  hd_nack_entry_t missing[HD_NACK_MAX_MISSING];
  size_t n_missing;
  hd_time_t rtt;          /* current round-trip estimate (default 100 ms) */
  hd_time_t min_interval; /* floor between two requests of one seq (default 20 ms) */
  hd_time_t max_age;      /* give up on a seq noticed this long ago (default 1 s) */
  uint8_t max_tries;      /* default 10 */
  hd_time_t reorder_wait; /* first request waits this long, for plain reordering (default 5 ms) */
  int learn_rtt;          /* measure rtt from request -> repair (see above); default off */
  hd_time_t fec_wait;     /* first request waits this long while FEC comes (0: no hold) */
  hd_time_t fec_until;    /* ... until then (hd_nack_gen_fec_seen) */
  uint64_t rtt_samples;
  uint64_t requested, recovered, gave_up, resets;
  uint64_t noticed; /* seqs found missing (loss before repair, reordering included) */
} hd_nack_gen_t;

void hd_nack_gen_init(hd_nack_gen_t *g);
/* Forgets everything (new SSRC). */
void hd_nack_gen_reset(hd_nack_gen_t *g);
void hd_nack_gen_set_rtt(hd_nack_gen_t *g, hd_time_t rtt);
/* Accounts a received packet (media or the original seq of an RTX packet).
 * Returns 1 when it filled a hole that had been requested (a repair), else 0. */
int hd_nack_gen_on_packet(hd_nack_gen_t *g, uint16_t seq, hd_time_t now);
/* 1 if seq is currently missing (noticed and neither received nor given up). */
int hd_nack_gen_is_missing(const hd_nack_gen_t *g, uint16_t seq);
/* A FlexFEC repair packet of this stream arrived at `now`: for the next
 * HD_NACK_FEC_HOLD a new hole's first request waits `wait` (never less than
 * reorder_wait) for its group's repair packet. */
void hd_nack_gen_fec_seen(hd_nack_gen_t *g, hd_time_t wait, hd_time_t now);
/* The wait a hole noticed at `now` gets before its first request. */
hd_time_t hd_nack_gen_first_wait(const hd_nack_gen_t *g, hd_time_t now);
/* A repair packet protecting seqs first_seq..last_seq (its SN base and last
 * mask bit) was used (what it could rebuild has been fed back through
 * hd_nack_gen_on_packet): the holes in that range not yet requested are now
 * due. Returns how many were advanced. */
size_t hd_nack_gen_fec_covered(hd_nack_gen_t *g, uint16_t first_seq, uint16_t last_seq, hd_time_t now);
/* Writes up to cap seqs due for a request at `now` (ascending RTP order) and
 * marks them asked. Returns the count. */
size_t hd_nack_gen_poll(hd_nack_gen_t *g, hd_time_t now, uint16_t *seqs, size_t cap);
/* Next time hd_nack_gen_poll has something to say; HD_TIME_NEVER when nothing is missing. */
hd_time_t hd_nack_gen_next_timeout(const hd_nack_gen_t *g);

#endif
