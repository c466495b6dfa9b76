/* Per-stream retransmission cache for answering NACKs (RFC 4585 §6.2.1 with RTX,
 * RFC 4588). A ring of the last N sent packets keyed by sequence number; the bytes
 * are copied into one slab allocated at init, so steady state never allocates.
 * Entries older than max_age are treated as gone (a retransmission that late is
 * useless to the receiver's jitter buffer), and the same seq is not resent more
 * often than min_resend_interval (several receivers, or repeated NACKs for one
 * loss, must not multiply traffic). */
#ifndef HD_RTC_RTP_CACHE_H
#define HD_RTC_RTP_CACHE_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"

#define HD_RTP_CACHE_MAX 1024     /* max slots */
#define HD_RTP_CACHE_PKT_MAX 1500 /* max bytes per packet */
#define HD_RTP_CACHE_DEFAULT_MAX_AGE HD_SEC(1)
#define HD_RTP_CACHE_DEFAULT_RESEND HD_MS(10)

typedef struct {
  hd_time_t stored;    /* time put */
  hd_time_t last_sent; /* last time handed out by hd_rtp_cache_get, or HD_TIME_NEVER */
  uint16_t seq;
  uint16_t len; /* 0 = empty slot */
} hd_rtp_cache_slot_t;

typedef struct {
  size_t n; /* slots, power of two */
  hd_rtp_cache_slot_t *slots;
  uint8_t *slab; /* n * HD_RTP_CACHE_PKT_MAX */
  hd_time_t max_age;
  hd_time_t min_resend_interval;
} hd_rtp_cache_t;

/* Allocates n slots (power of two, 1..HD_RTP_CACHE_MAX) with the default limits.
 * Returns 0, HD_EINVAL or HD_ENOMEM. */
int hd_rtp_cache_init(hd_rtp_cache_t *c, size_t n);
/* Sets the age limit and the per-seq resend interval (0 disables rate limiting). */
void hd_rtp_cache_set_limits(hd_rtp_cache_t *c, hd_time_t max_age, hd_time_t min_resend_interval);
/* Copies an RTP packet (seq read from its header) into its slot, evicting the
 * packet N seqs older. A packet older than the one already in its slot is not
 * stored. Returns 0, HD_EINVAL (len > HD_RTP_CACHE_PKT_MAX) or HD_EPROTO (not RTP). */
int hd_rtp_cache_put(hd_rtp_cache_t *c, const uint8_t *pkt, size_t len, hd_time_t now);
/* Looks up seq for retransmission. On success the packet is lent (valid until the
 * next put) and the seq is marked as resent at `now`. Returns 0; HD_ENOTFOUND when
 * never stored, evicted or older than max_age; HD_EAGAIN when the same seq was
 * handed out less than min_resend_interval ago. */
int hd_rtp_cache_get(hd_rtp_cache_t *c, uint16_t seq, hd_time_t now, const uint8_t **pkt, size_t *len);
/* Like hd_rtp_cache_get but without the rate limit and without marking. */
int hd_rtp_cache_peek(const hd_rtp_cache_t *c, uint16_t seq, hd_time_t now, const uint8_t **pkt, size_t *len);
/* Forgets every packet (e.g. on SSRC change); keeps the allocation. */
void hd_rtp_cache_clear(hd_rtp_cache_t *c);
void hd_rtp_cache_free(hd_rtp_cache_t *c);

#endif
