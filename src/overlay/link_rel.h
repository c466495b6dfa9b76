/* Reliable, ordered messages over the node link (issue 15: reliable data
 * messages across nodes; docs/overlay.md "Reliable data over the link").
 * Sans-IO: the owner passes message bodies in and gets link bodies (DATA and
 * DATA_ACK, link.h) out, with a deadline for retransmissions.
 *
 * One stream per direction of (room, node pair): the sender cuts each message
 * into segments of at most HD_LINK_REL_SEG bytes, numbers them (32-bit, from
 * 1) and keeps each until it is acknowledged. The receiver acknowledges every
 * DATA at once with its cumulative point (the next segment it needs) and a
 * 32-bit map of what it holds beyond it (as SACK, RFC 2018, does for TCP), and
 * hands complete messages over in order. The sender retransmits a segment
 * whose acknowledgement has not come within the retransmission timeout (from
 * the measured round trip as RFC 6298 §2, Karn's rule: only segments sent
 * once are timed; doubled on each retry), or at once when the receiver's map
 * shows three later segments arrived (a fast retransmit, as RFC 5681 §3.2).
 *
 * Caps: HD_LINK_REL_WINDOW segments unacknowledged per stream (beyond:
 * hd_link_rel_send refuses with HD_ENOSPC: the message is dropped and
 * counted); HD_LINK_REL_MAX_TRIES transmissions per segment. A segment that
 * is still unacknowledged after that (the peer is gone or the link down for
 * seconds) ends the stream: the sender drops what is queued (counted) and
 * starts a new stream (a new 32-bit stream id), which the receiver takes as a
 * fresh start, so later messages are not held back forever by a lost one.
 *
 * Stream ids: the high 24 bits are the sending end's instance tag (a hash of
 * its init's id, which should be random: a restarted end then never looks
 * like an older one, whatever the wall clock did), the low 8 bits count the streams of that
 * instance (1..255, serial order as RFC 1982). A receiver takes a stream of a
 * new tag as a fresh start and remembers the last HD_LINK_REL_OLD_TAGS tags it
 * left, so a late segment of a replaced instance is ignored; within one tag
 * the last HD_LINK_REL_OLD_TAGS streams it left are old (their late segments
 * ignored) and any other count is a newer stream: counts wrap after 255
 * resets, so "lower" cannot mean older (a receiver cut off through 128 resets
 * would otherwise refuse every later stream).
 *
 * A message longer than HD_LINK_REL_MSG_MAX is refused by the sender
 * (HD_EINVAL); one that arrives anyway (a buggy peer) is dropped whole, never
 * delivered cut (hd_link_rel_on_data says HD_EPROTO, rx_too_long counts it).
 *
 * A receiver that lost its state (its end was set up again: the room emptied
 * there and filled again) says so: every ack names the receiver's instance
 * (its init's id). A sender that sees the instance change numbers what is
 * still unacknowledged again from 1 under a new stream id and sends it again,
 * so the new receiver is not left waiting for segments it never saw. A
 * message whose first segments the old receiver acknowledged cannot be
 * completed there: its remaining segments are dropped (counted in
 * dropped_reset), so the new receiver never gets a tail without its head. */
#ifndef HD_OVERLAY_LINK_REL_H
#define HD_OVERLAY_LINK_REL_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"

#define HD_LINK_REL_SEG 1152     /* segment payload bytes: a DATA body fits one datagram */
#define HD_LINK_REL_WINDOW 64    /* unacknowledged segments per stream (and held out of order) */
#define HD_LINK_REL_MAX_TRIES 10 /* transmissions of one segment before the stream is reset */
#define HD_LINK_REL_RTO_MIN HD_MS(40)
#define HD_LINK_REL_RTO_MAX HD_SEC(1)
#define HD_LINK_REL_RTO_INIT HD_MS(200)
#define HD_LINK_REL_MSG_MAX (HD_LINK_REL_SEG * HD_LINK_REL_WINDOW) /* largest message */
#define HD_LINK_REL_DATA_HDR 17                                    /* room 8, stream 4, seq 4, flags 1 */
#define HD_LINK_REL_ACK_LEN 24 /* room 8, stream 4, cumulative 4, map 4, receiver instance 4 */
#define HD_LINK_REL_OLD_TAGS 4 /* replaced sender instances whose late segments are ignored */

enum { HD_LINK_REL_MORE = 1 }; /* DATA flags: the message goes on in the next segment */

typedef struct {
  uint32_t seq;
  uint16_t len;
  uint8_t flags, tries;
  uint8_t head;                 /* the first segment of its message */
  hd_time_t sent_at, due;       /* last transmission; when to retransmit */
  int used, acked, sacked_past; /* sacked_past: later segments the receiver reported holding */
  uint8_t data[HD_LINK_REL_SEG];
} hd_link_rel_seg_t;

typedef struct {
  uint64_t room;
  /* sending */
  uint32_t tx_stream;
  uint32_t next_seq;      /* next new segment's number */
  uint32_t peer_instance; /* the receiver's instance its acks name (0 = none heard yet) */
  uint32_t una;           /* oldest unacknowledged */
  hd_link_rel_seg_t *tx;  /* HD_LINK_REL_WINDOW slots (seq % window), allocated on first send */
  hd_time_t srtt, rttvar, rto;
  /* receiving */
  uint32_t instance;  /* this end's id, in its acks */
  uint32_t rx_stream; /* 0: none yet */
  uint32_t rx_next;   /* next segment to hand over */
  hd_link_rel_seg_t *rx;
  uint8_t *msg; /* the message being put together (HD_LINK_REL_MSG_MAX) */
  size_t msg_len;
  int msg_skip;                               /* the message in progress is too long: its rest is dropped */
  uint32_t old_tags[HD_LINK_REL_OLD_TAGS];    /* sender instance tags replaced, newest first */
  uint32_t old_streams[HD_LINK_REL_OLD_TAGS]; /* streams of the current tag left, newest first */
  int ack_due;                                /* a DATA came: acknowledge it */
  /* counters */
  uint64_t msgs_sent, msgs_delivered, segs_sent, retransmits, fast_retransmits, dropped_full, resets,
      dropped_reset, rx_dup, rx_out_of_window, peer_restarts, rx_too_long;
} hd_link_rel_t;

/* instance: this end's id, different at each init between the same two ends
 * (a random number: hd_random_u32(); 0 = draw one here). A 24-bit hash of it
 * tags this end's streams (a tag of 0 becomes 1), the whole value names this
 * end in its acks. Nothing is ordered by it: a wall clock stepping back cannot
 * make a restarted end look old. */
void hd_link_rel_init(hd_link_rel_t *r, uint64_t room, uint32_t instance);
void hd_link_rel_free(hd_link_rel_t *r);
/* Queues a message. HD_ENOSPC: the window cannot take it (dropped, counted),
 * HD_EINVAL: empty or over HD_LINK_REL_MSG_MAX, HD_ENOMEM. */
int hd_link_rel_send(hd_link_rel_t *r, const uint8_t *msg, size_t len);
/* The next link body to send now: an ACK (*is_ack = 1) or a DATA segment,
 * new or retransmitted. Returns its length, 0 when nothing is due, HD_ENOSPC
 * if cap < HD_LINK_REL_DATA_HDR + HD_LINK_REL_SEG. A stream reset after
 * HD_LINK_REL_MAX_TRIES takes the next count of this end's tag. */
int hd_link_rel_poll(hd_link_rel_t *r, hd_time_t now, uint8_t *out, size_t cap, int *is_ack);
/* When hd_link_rel_poll has something to send next (HD_TIME_NEVER: nothing). */
hd_time_t hd_link_rel_next_timeout(const hd_link_rel_t *r);

/* A DATA body from the peer. deliver(ud, msg, len) runs for each message it
 * completes, in order (msg lent for the call). 0, or HD_EPROTO (malformed, or
 * a message in order was longer than HD_LINK_REL_MSG_MAX: it is dropped whole
 * and counted in rx_too_long; the messages before it were delivered and the
 * stream goes on), HD_ENOMEM. */
typedef void (*hd_link_rel_deliver_fn)(void *ud, const uint8_t *msg, size_t len);
int hd_link_rel_on_data(hd_link_rel_t *r, const uint8_t *pl, size_t len, hd_link_rel_deliver_fn deliver,
                        void *ud);
/* A DATA_ACK body from the peer. 0 or HD_EPROTO. */
int hd_link_rel_on_ack(hd_link_rel_t *r, const uint8_t *pl, size_t len, hd_time_t now);
/* The room hash a DATA or DATA_ACK body is about (to find its stream). */
int hd_link_rel_room(const uint8_t *pl, size_t len, uint64_t *room);

#endif
