/* RTP sender/receiver statistics: RFC 3550 Appendix A.1 (sequence validation),
 * A.3 (loss), A.8 (jitter), §6.4.1 (SR/RR fields). See rtp_stats.h. */
#include "rtc/rtp_stats.h"

#include <string.h>

#include "base/err.h"
#include "proto/rtp.h"

#define SEQ_MOD 65536u

/* A.1 init_seq: (re)start counting at seq. */
static void init_seq(hd_rtp_recv_stats_t *s, uint16_t seq) {
  s->base_seq = seq;
  s->max_seq = seq;
  s->bad_seq = SEQ_MOD + 1; /* so seq == bad_seq is false */
  s->cycles = 0;
  s->received = 0;
  s->received_prior = 0;
  s->expected_prior = 0;
  s->have_transit = 0; /* a restarted source may use a new timestamp base */
}

void hd_rtp_recv_stats_init(hd_rtp_recv_stats_t *s, uint32_t ssrc) {
  memset(s, 0, sizeof *s);
  s->ssrc = ssrc;
  s->min_sequential = HD_RTP_STATS_MIN_SEQUENTIAL;
  s->last_sr_recv = HD_TIME_NEVER;
}

void hd_rtp_recv_stats_set_probation(hd_rtp_recv_stats_t *s, uint32_t min_sequential) {
  s->min_sequential = min_sequential;
}

/* A.1 update_seq. Returns 1 if counted; *advanced set when seq moved max_seq forward. */
static int update_seq(hd_rtp_recv_stats_t *s, uint16_t seq, int *advanced) {
  uint16_t udelta = (uint16_t)(seq - s->max_seq);
  *advanced = 0;
  if (s->probation) {
    /* Source is not valid until min_sequential packets in a row arrived. */
    if (seq == (uint16_t)(s->max_seq + 1)) {
      s->probation--;
      s->max_seq = seq;
      if (s->probation == 0) {
        init_seq(s, seq);
        s->received++;
        *advanced = 1;
        return 1;
      }
    } else {
      s->probation = s->min_sequential - 1;
      s->max_seq = seq;
    }
    return 0;
  } else if (udelta < HD_RTP_STATS_MAX_DROPOUT) {
    /* In order, with permissible gap. */
    if (seq < s->max_seq) s->cycles += SEQ_MOD; /* wrapped */
    if (udelta) *advanced = 1;
    s->max_seq = seq;
  } else if (udelta <= SEQ_MOD - HD_RTP_STATS_MAX_MISORDER) {
    /* The sequence number made a very large jump. Two sequential packets after
     * the jump mean the other side restarted without telling us. */
    if (seq == s->bad_seq) {
      init_seq(s, seq);
      *advanced = 1;
    } else {
      s->bad_seq = (uint32_t)(seq + 1) & (SEQ_MOD - 1);
      return 0;
    }
  } else {
    /* Duplicate or reordered packet: counted, does not move max_seq. */
  }
  s->received++;
  return 1;
}

/* t (µs) in RTP clock units, without overflowing for large t. */
static int64_t us_to_rtp(hd_time_t t, uint32_t rate) {
  int64_t sec = t / 1000000, rem = t % 1000000;
  return sec * (int64_t)rate + rem * (int64_t)rate / 1000000;
}

int hd_rtp_recv_stats_update(hd_rtp_recv_stats_t *s, uint16_t seq, uint32_t rtp_ts, hd_time_t arrival,
                             uint32_t clock_rate) {
  if (!s || clock_rate == 0) return HD_EINVAL;
  if (!s->started) {
    s->started = 1;
    init_seq(s, seq);
    if (s->min_sequential <= 1) {
      s->probation = 0;
      s->received = 1;
      s->have_transit = 0;
      goto counted_first;
    }
    s->max_seq = (uint16_t)(seq - 1);
    s->probation = s->min_sequential;
  }
  int advanced;
  if (!update_seq(s, seq, &advanced)) return 0;
  if (!advanced) return 1;
counted_first:;
  /* A.8: D(i-1,i) = (Rj - Ri) - (Sj - Si); J += (|D| - J) / 16, kept as J*16. The
   * transit is taken modulo 2^32 so RTP timestamp wrap is harmless. */
  uint32_t transit = (uint32_t)us_to_rtp(arrival, clock_rate) - rtp_ts;
  if (s->have_transit) {
    int32_t d = (int32_t)(transit - (uint32_t)s->transit);
    uint32_t ad = d < 0 ? (uint32_t)(-(int64_t)d) : (uint32_t)d;
    if (ad > 0x0fffffff) ad = 0x0fffffff; /* keeps J*16 within 32 bits */
    s->jitter_q4 += ad - ((s->jitter_q4 + 8) >> 4);
  }
  s->transit = transit;
  s->have_transit = 1;
  return 1;
}

void hd_rtp_recv_stats_on_sr(hd_rtp_recv_stats_t *s, uint64_t sr_ntp, hd_time_t now) {
  s->last_sr_mid32 = hd_rtcp_ntp_mid32(sr_ntp);
  s->last_sr_recv = now;
}

uint32_t hd_rtp_recv_stats_ext_max(const hd_rtp_recv_stats_t *s) { return s->cycles + s->max_seq; }

int64_t hd_rtp_recv_stats_lost(const hd_rtp_recv_stats_t *s) {
  int64_t expected = (int64_t)hd_rtp_recv_stats_ext_max(s) - (int64_t)s->base_seq + 1;
  return expected - (int64_t)s->received;
}

int hd_rtp_recv_stats_report(hd_rtp_recv_stats_t *s, hd_time_t now, hd_rtcp_rb_t *rb) {
  if (!s || !rb) return HD_EINVAL;
  if (!s->started || s->probation) return HD_ESTATE;
  /* A.3 */
  uint32_t ext_max = hd_rtp_recv_stats_ext_max(s);
  uint32_t expected = ext_max - s->base_seq + 1;
  int64_t lost = hd_rtp_recv_stats_lost(s);
  if (lost > 0x7fffff) lost = 0x7fffff;
  if (lost < -0x800000) lost = -0x800000;
  uint32_t expected_interval = expected - s->expected_prior;
  uint32_t received_interval = s->received - s->received_prior;
  int64_t lost_interval = (int64_t)expected_interval - (int64_t)received_interval;
  s->expected_prior = expected;
  s->received_prior = s->received;
  uint8_t fraction = 0;
  if (expected_interval != 0 && lost_interval > 0)
    fraction = (uint8_t)(((uint64_t)lost_interval << 8) / expected_interval);

  rb->ssrc = s->ssrc;
  rb->fraction_lost = fraction;
  rb->cumulative_lost = (int32_t)lost;
  rb->ext_highest_seq = ext_max;
  rb->jitter = s->jitter_q4 >> 4;
  if (s->last_sr_recv != HD_TIME_NEVER) {
    rb->lsr = s->last_sr_mid32;
    rb->dlsr = hd_rtcp_us_to_q16(now - s->last_sr_recv);
  } else {
    rb->lsr = 0;
    rb->dlsr = 0;
  }
  return 0;
}

void hd_rtp_send_stats_init(hd_rtp_send_stats_t *s, uint32_t ssrc, uint32_t clock_rate) {
  memset(s, 0, sizeof *s);
  s->ssrc = ssrc;
  s->clock_rate = clock_rate;
}

void hd_rtp_send_stats_update(hd_rtp_send_stats_t *s, uint32_t rtp_ts, size_t payload_len, hd_time_t now) {
  s->packets++;
  s->octets += (uint32_t)payload_len; /* wraps mod 2^32 like the SR field */
  /* Several packets of one frame share a timestamp: the first one's time is the
   * closest to capture, so only a newer timestamp moves the mapping. */
  if (!s->have_ts || hd_ts_newer(rtp_ts, s->last_rtp_ts)) {
    s->last_rtp_ts = rtp_ts;
    s->last_rtp_time = now;
    s->have_ts = 1;
  }
}

int hd_rtp_send_stats_sr(const hd_rtp_send_stats_t *s, hd_time_t now, hd_time_t wall_offset_us,
                         hd_rtcp_sr_t *sr) {
  if (!s || !sr) return HD_EINVAL;
  if (!s->have_ts) return HD_ESTATE;
  hd_time_t dt = now - s->last_rtp_time;
  int64_t drtp = dt >= 0 ? us_to_rtp(dt, s->clock_rate) : -us_to_rtp(-dt, s->clock_rate);
  sr->ssrc = s->ssrc;
  sr->ntp = hd_rtcp_ntp_from_time(now, wall_offset_us);
  sr->rtp_ts = s->last_rtp_ts + (uint32_t)drtp;
  sr->packet_count = s->packets;
  sr->octet_count = s->octets;
  sr->rb_count = 0;
  return 0;
}
