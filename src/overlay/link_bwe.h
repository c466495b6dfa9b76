/* Available bandwidth of a node-to-node link (issue 16 item 1;
 * docs/overlay.md "Bandwidth per link"), sans-IO: what was sent in, arrival
 * feedback in and out, an estimate out.
 *
 * No new sequence number: every link datagram already carries one, the
 * sender's 64-bit link sequence number (link.h: top byte = the sealing
 * worker's lane, +1 per datagram that worker seals to any peer). It is
 * authenticated, unique per lane and increasing in send order, which is all
 * transport-wide feedback needs (draft-holmer-rmcat-transport-wide-cc-
 * extensions-01 §3: a per-packet number and its arrival time). The sender
 * remembers, per flow, which of its sequence numbers went to that flow;
 * gaps in the numbers between them (datagrams to other peers) are not
 * losses: only a number the sender recorded for the flow and the receiver
 * skipped over is.
 *
 * A flow is (this worker -> one worker of the peer): the receiving workers of
 * a node each see their own subset, so each reports its own arrivals
 * (arrival times of two workers could not be merged in send order), and the
 * sender keeps one estimator per receiving worker. The estimator is the
 * node's downlink estimator, rtc/bwe.h (GCC, delay- and loss-based), fed with
 * the per-flow feedback converted to its transport-wide form: nothing is
 * estimated twice. It does not probe here (no padding is sent on the link)
 * and starts at its floor. The figure is max(its target, what arrived over
 * the last 300 ms): the link's sender does not obey the estimate (media goes
 * at the publishers' rates), so on a full link GCC's loss-based part keeps
 * cutting its target under the persistent loss while what arrives is what
 * the link carries. It reads "the link carries at least this": what it
 * carries when not full (up to bwe.h's app-limited 1.5x once the target has
 * climbed), what gets through when full; `congested` says which (the
 * delay-based detector sees the queue grow, or more than HD_BWE_OVERSEND x
 * the figure leaves). docs/overlay.md "Bandwidth per link".
 *
 * Receiver: every datagram of the peer except METER and BWE_FB (so that two
 * idle nodes do not report their reports to each other forever) is noted
 * with its arrival time per sending lane; at most HD_LINK_BWE_FB_INTERVAL
 * after the first note, or at once when HD_LINK_BWE_FB_MAX are noted, the
 * notes go back as one BWE_FB message (link type 12) to the address the
 * lane's datagrams came from.
 *
 * Wire format of BWE_FB (big-endian, inside the authenticated link):
 *   u8 lane (the sending lane reported: the receiver of this message is that worker)
 *   u8 rx_worker (the reporting worker's index at its node: which flow)
 *   u16 n (1..HD_LINK_BWE_FB_MAX)
 *   u64 ref_us (the reporting node's clock, any origin: arrival = ref + offset)
 *   u64 base (link sequence number of entry 0, lane byte included)
 *   n x { u16 seq_delta (entry 0: 0; then > 0: the number minus the previous
 *         entry's), u32 offset_us (arrival - ref) }
 * Entries are in ascending sequence order; a receiver that has more notes
 * than fit (a delta past 16 bits, an offset past 32) sends them in the next
 * message. */
#ifndef HD_OVERLAY_LINK_BWE_H
#define HD_OVERLAY_LINK_BWE_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"
#include "proto/rtcp.h"
#include "rtc/bwe.h"

#define HD_LINK_BWE_FB_MAX 128            /* arrivals in one BWE_FB message */
#define HD_LINK_BWE_FB_HDR 20             /* its fixed part */
#define HD_LINK_BWE_FB_ENTRY 6            /* bytes per arrival */
#define HD_LINK_BWE_FB_INTERVAL HD_MS(50) /* the longest a note waits to be reported */
#define HD_LINK_BWE_FLOWS 16              /* receiving workers of one peer (HD_CLUSTER_MAX_MEDIA) */
#define HD_LINK_BWE_RX_LANES                                                                                 \
  16 /* sending workers of one peer reported at once (= relay lanes, CL_HOP_STREAMS) */
#define HD_LINK_BWE_RX_IDLE HD_SEC(5)      /* a lane silent this long gives its slot to another */
#define HD_LINK_BWE_STALE HD_SEC(5)        /* a flow without feedback this long: not in the estimate */
#define HD_LINK_BWE_RET_MAX 28             /* bytes of a return address kept (sockaddr_in6) */
#define HD_LINK_BWE_START_BPS 30000        /* the estimator's start = its floor (link_bwe.h) */
#define HD_LINK_BWE_MAX_BPS 10000000000ull /* its ceiling, 10 Gbit/s */
#define HD_LINK_BWE_CHUNK 512              /* reports passed to the estimator per call */

typedef struct {
  uint8_t lane, rx_worker;
  uint16_t n;
  uint64_t ref_us;
  struct {
    uint64_t seq;
    int64_t arrival_us;
  } e[HD_LINK_BWE_FB_MAX];
} hd_link_bwe_fb_t;

/* Writes f (n entries ascending in seq, arrivals >= ref_us) and returns its
 * length; HD_EINVAL for n outside 1..HD_LINK_BWE_FB_MAX, entries not
 * ascending, a delta or offset that does not fit, a seq of another lane or
 * a lane past HD_LINK_LANES;
 * HD_ENOSPC for a short buffer. */
int hd_link_bwe_fb_write(const hd_link_bwe_fb_t *f, uint8_t *out, size_t cap);
/* HD_EPROTO for a malformed body (wrong length, n outside 1..max, a zero
 * delta after the first entry, a base of another lane). */
int hd_link_bwe_fb_parse(const uint8_t *pl, size_t len, hd_link_bwe_fb_t *f);

/* One flow's sending side: the estimator and which link seq each of its
 * transport-wide seqs was. */
typedef struct {
  hd_bwe_t bwe;
  uint64_t lseq[HD_BWE_HISTORY];
  /* datagrams sent (the transport-wide seq is its low 16 bits) and the oldest
   * not reported yet, counted in 64 bits: a peer silent for 65536 datagrams
   * does not wrap them */
  uint64_t next_tseq, cursor;
  uint8_t fb_count;
  hd_time_t last_fb; /* 0: none yet */
  uint64_t late;     /* reports of datagrams already counted lost (reordered) or forgotten */
  hd_rtcp_twcc_pkt_t pkts[HD_LINK_BWE_CHUNK]; /* one call of the estimator */
} hd_link_bwe_flow_t;

typedef struct {
  int used;
  uint8_t lane;
  uint16_t n;
  hd_time_t due, last_rx;
  uint8_t ret[HD_LINK_BWE_RET_MAX];
  size_t ret_len;
  struct {
    uint64_t seq;
    int64_t arrival_us;
  } e[HD_LINK_BWE_FB_MAX];
} hd_link_bwe_rx_t;

typedef struct {
  uint64_t estimate_bps;         /* sum over live flows of max(the estimator's target, acked); 0: none */
  uint64_t target_bps;           /* the estimator's own target, summed (without the floor) */
  uint64_t acked_bps;            /* what arrived at the peer over the last 300 ms (its clock) */
  uint64_t sent_bps;             /* what left for it over the last 300 ms */
  int flows;                     /* flows with feedback within HD_LINK_BWE_STALE */
  int congested;                 /* a flow's queue grows, or more than 1.2x its estimate leaves for it */
  double loss;                   /* worst flow's loss fraction of the last loss interval */
  uint64_t feedbacks;            /* BWE_FB messages taken (sending side) */
  uint64_t lost, late;           /* datagrams reported missing; reports after they were counted missing */
  uint64_t fb_sent;              /* BWE_FB messages made (receiving side) */
  uint64_t rx_noted, rx_unnoted; /* arrivals noted; not (no lane slot free, or a repeated sequence number) */
  uint64_t bad;                  /* BWE_FB refused: malformed or about another lane */
} hd_link_bwe_stats_t;

/* Both sides of one peer, as seen by one worker of this node. Flows are
 * allocated at their first datagram (~60 kB each), the rest (~8.5 kB) is fixed. */
typedef struct {
  int lane; /* this worker's lane (= its index): the rx_worker it reports as */
  hd_link_bwe_flow_t *flow[HD_LINK_BWE_FLOWS];
  hd_link_bwe_rx_t rx[HD_LINK_BWE_RX_LANES];
  hd_time_t rx_next; /* earliest due report; HD_TIME_NEVER none */
  uint64_t feedbacks, fb_sent, rx_noted, rx_unnoted, bad, alloc_fail;
} hd_link_bwe_t;

/* lane: this worker's index, 0..HD_LINK_LANES-1. */
void hd_link_bwe_init(hd_link_bwe_t *b, int lane);
void hd_link_bwe_free(hd_link_bwe_t *b);

/* Sending side: a datagram of `size` bytes sealed with link seq `lseq` left
 * for the peer's worker `dst` (its media address index) at `now`. A dst out
 * of range is ignored; HD_ENOMEM when its flow could not be allocated. */
int hd_link_bwe_on_sent(hd_link_bwe_t *b, int dst, uint64_t lseq, size_t size, hd_time_t now);
/* A BWE_FB body from the peer. Returns the entries that matched a datagram
 * of the flow, HD_EPROTO (malformed, or about another lane: counted in bad). */
int hd_link_bwe_on_feedback(hd_link_bwe_t *b, const uint8_t *pl, size_t len, hd_time_t now);

/* Receiving side: a datagram of the peer with link seq `lseq` arrived at now
 * (ret: where its sender can be reached, kept for the report). 1 when a
 * report is due at once (a lane's notes are full: call poll), else 0. */
int hd_link_bwe_on_received(hd_link_bwe_t *b, uint64_t lseq, hd_time_t now, const void *ret, size_t ret_len);
/* A due report: writes a BWE_FB body to out (cap >= HD_LINK_BWE_FB_HDR +
 * HD_LINK_BWE_FB_MAX x HD_LINK_BWE_FB_ENTRY suffices) and lends where to send
 * it; returns its length, 0 when none is due (call until 0), HD_ENOSPC. */
int hd_link_bwe_poll(hd_link_bwe_t *b, hd_time_t now, uint8_t *out, size_t cap, const void **ret,
                     size_t *ret_len);
/* When poll has something to do; HD_TIME_NEVER when nothing is noted. */
hd_time_t hd_link_bwe_next_timeout(const hd_link_bwe_t *b);

/* The link's estimate and counters as of now (flows summed). */
void hd_link_bwe_stats(const hd_link_bwe_t *b, hd_time_t now, hd_link_bwe_stats_t *out);

#endif
