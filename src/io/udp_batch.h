/* One sendmmsg(2) worth of the node's tx queue (sfu/txq.h), optionally with
 * UDP GSO (UDP_SEGMENT, Linux >= 4.18): datagrams of the flush that go to the
 * same destination with the same length are sent as one message the kernel
 * cuts into datagrams, which costs one trip through the UDP/IP stack instead
 * of one per datagram (docs/performance.md "UDP GSO"). Pure planning, no I/O:
 * io/rtc_udp.c sends what this lays out.
 *
 * Rules of a GSO message: one destination; every segment but the last of the
 * segment size, the last one no longer; at most HD_UDP_GSO_MAX_SEGS segments
 * and HD_UDP_GSO_MAX_BYTES bytes. Datagrams of one destination keep their
 * order (a datagram only joins the latest message to its destination, and
 * none joins after one to its destination was left for the next plan);
 * datagrams of different destinations may be reordered within the flush.
 * When the messages are all taken, the plan still looks further into the
 * queue for datagrams that join them: a fan-out wider than a batch (100
 * viewers) still gets each viewer's datagrams of several input packets into
 * one message. */
#ifndef HD_IO_UDP_BATCH_H
#define HD_IO_UDP_BATCH_H
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "sfu/txq.h"

#define HD_UDP_BATCH_MSGS 64     /* messages per sendmmsg */
#define HD_UDP_BATCH_DGRAMS 512  /* datagrams per sendmmsg (iovecs) */
#define HD_UDP_BATCH_WINDOW 1024 /* queue entries one plan looks at */
#define HD_UDP_GSO_MAX_SEGS 64   /* UDP_MAX_SEGMENTS of Linux 4.18 (128 later) */
#define HD_UDP_GSO_MAX_BYTES 60000

typedef struct {
  struct mmsghdr msgs[HD_UDP_BATCH_MSGS];
  struct iovec iov[HD_UDP_BATCH_DGRAMS];
  union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } cmsg[HD_UDP_BATCH_MSGS];
  unsigned n_msgs;
  /* per message: its datagrams as queue offsets (from the queue head), in order */
  uint16_t first[HD_UDP_BATCH_MSGS], last[HD_UDP_BATCH_MSGS], segs[HD_UDP_BATCH_MSGS];
  uint16_t seg_size[HD_UDP_BATCH_MSGS];
  uint32_t bytes[HD_UDP_BATCH_MSGS];
  uint8_t closed[HD_UDP_BATCH_MSGS];  /* a shorter last segment was added */
  uint8_t blocked[HD_UDP_BATCH_MSGS]; /* a datagram to its destination was left for the next plan */
  uint64_t key[HD_UDP_BATCH_MSGS];    /* destination hash (confirmed by memcmp) */
  uint16_t next[HD_UDP_BATCH_WINDOW]; /* queue offset -> next datagram of its message */
} hd_udp_batch_t;

/* Lays out the next sendmmsg from queue q: datagrams in queue order from the
 * head (at most HD_UDP_BATCH_WINDOW entries), skipping sent ones (len 0),
 * until the batch is full. gso=0: one datagram per message, in queue order. Returns the number of messages (0
 * if q holds nothing to send). */
unsigned hd_udp_batch_plan(hd_udp_batch_t *b, hd_txq_t *q, int gso);

/* Datagrams (segments) of message i. */
static inline unsigned hd_udp_batch_segs(const hd_udp_batch_t *b, unsigned i) { return b->segs[i]; }

/* Marks message i's datagrams sent (len 0) and returns their byte count. */
size_t hd_udp_batch_mark_sent(hd_udp_batch_t *b, hd_txq_t *q, unsigned i);

/* Pops sent datagrams off the queue head. */
void hd_udp_batch_pop_sent(hd_txq_t *q);

#endif
