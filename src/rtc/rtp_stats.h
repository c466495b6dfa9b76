/* Per-SSRC RTP statistics. Receiver side: RFC 3550 Appendix A.1 sequence
 * validation (probation, wrap cycles, restart after a large jump), A.3 loss
 * (cumulative and fraction per report interval) and A.8 interarrival jitter,
 * producing RR report blocks with LSR/DLSR (§6.4.1). Sender side: packet and
 * octet counts and the RTP timestamp <-> time mapping needed to fill an SR
 * (§6.4.1). */
#ifndef HD_RTC_RTP_STATS_H
#define HD_RTC_RTP_STATS_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"
#include "proto/rtcp.h"

#define HD_RTP_STATS_MIN_SEQUENTIAL 2 /* A.1 probation default */
#define HD_RTP_STATS_MAX_DROPOUT 3000
#define HD_RTP_STATS_MAX_MISORDER 100

typedef struct {
  uint32_t ssrc;
  /* A.1 */
  uint16_t max_seq; /* highest seq seen */
  uint32_t cycles;  /* shifted count of seq wraps (multiple of 65536) */
  uint32_t base_seq;
  uint32_t bad_seq;        /* last 'bad' seq + 1 */
  uint32_t probation;      /* sequential packets still needed */
  uint32_t min_sequential; /* probation length for a new/restarted source */
  uint32_t received;       /* packets counted */
  uint32_t expected_prior; /* at last report */
  uint32_t received_prior;
  uint64_t bytes; /* payload+header bytes counted, informational */
  /* A.8 */
  int64_t transit;    /* last relative transit, RTP units */
  uint32_t jitter_q4; /* jitter * 16 */
  int have_transit;
  /* LSR / DLSR */
  uint32_t last_sr_mid32;
  hd_time_t last_sr_recv; /* HD_TIME_NEVER until an SR arrives */
  int started;
} hd_rtp_recv_stats_t;

/* Starts stats for ssrc with the A.1 default probation (2 packets). */
void hd_rtp_recv_stats_init(hd_rtp_recv_stats_t *s, uint32_t ssrc);
/* Sets the probation length (0 or 1 = count the very first packet). */
void hd_rtp_recv_stats_set_probation(hd_rtp_recv_stats_t *s, uint32_t min_sequential);
/* Accounts one received packet. arrival is the receive time (µs), clock_rate the
 * RTP clock of its payload type (Hz, > 0). Returns 1 if the packet was counted
 * (valid per A.1), 0 if it was not (probation, duplicate-free restart pending,
 * too far out of order), HD_EINVAL for clock_rate 0. Jitter is updated for counted
 * packets that advance the highest seq (retransmissions and reordered packets
 * would otherwise inflate it). */
int hd_rtp_recv_stats_update(hd_rtp_recv_stats_t *s, uint16_t seq, uint32_t rtp_ts, hd_time_t arrival,
                             uint32_t clock_rate);
/* Records an SR from this source received at `now` (for LSR/DLSR). */
void hd_rtp_recv_stats_on_sr(hd_rtp_recv_stats_t *s, uint64_t sr_ntp, hd_time_t now);
/* Fills a report block for the interval since the previous call (A.3) and
 * starts a new interval. HD_ESTATE if no valid packet has been counted yet. */
int hd_rtp_recv_stats_report(hd_rtp_recv_stats_t *s, hd_time_t now, hd_rtcp_rb_t *rb);
/* Extended highest seq (cycles + max_seq). */
uint32_t hd_rtp_recv_stats_ext_max(const hd_rtp_recv_stats_t *s);
/* Cumulative packets lost (expected - received; may be negative with duplicates). */
int64_t hd_rtp_recv_stats_lost(const hd_rtp_recv_stats_t *s);
/* Current jitter in RTP units. */
static inline uint32_t hd_rtp_recv_stats_jitter(const hd_rtp_recv_stats_t *s) { return s->jitter_q4 >> 4; }

typedef struct {
  uint32_t ssrc;
  uint32_t clock_rate;
  uint32_t packets;
  uint32_t octets;         /* payload octets (RFC 3550 §6.4.1 sender's octet count) */
  uint32_t last_rtp_ts;    /* timestamp of the newest packet */
  hd_time_t last_rtp_time; /* capture/send time of that packet */
  int have_ts;
} hd_rtp_send_stats_t;

void hd_rtp_send_stats_init(hd_rtp_send_stats_t *s, uint32_t ssrc, uint32_t clock_rate);
/* Accounts one sent packet with its RTP timestamp and payload length at `now`.
 * The ts <-> time mapping follows the newest timestamp (retransmissions of older
 * timestamps do not move it back). */
void hd_rtp_send_stats_update(hd_rtp_send_stats_t *s, uint32_t rtp_ts, size_t payload_len, hd_time_t now);
/* Fills an SR (no report blocks) for `now`: NTP from now + wall_offset_us, RTP
 * timestamp extrapolated from the last mapping by the clock rate. HD_ESTATE
 * before the first packet. */
int hd_rtp_send_stats_sr(const hd_rtp_send_stats_t *s, hd_time_t now, hd_time_t wall_offset_us,
                         hd_rtcp_sr_t *sr);

#endif
