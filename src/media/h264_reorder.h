/* Reorder window in front of the H.264 depacketiser (media/h264_depay.h),
 * for the recorder's subscriber (cfg.accept_h264).
 *
 * The depacketiser needs packets in sequence order: a gap damages the access
 * unit it falls in and everything after it until the next IDR. A packet the
 * sender lost on its leg reaches the node late, as a NACK repair (RFC 4585
 * §6.2.1, RTX RFC 4588), and the node forwards it out of order, after the
 * packets that overtook it; fed straight in, that repair counts as "late",
 * the picture freezes until the next IDR and a PLI (§6.3.1) is sent.
 *
 * This window holds packets by sequence number (a ring of
 * HD_H264_REORDER_SLOTS) and hands them to the depacketiser in order. A gap
 * blocks the output for at most `wait` (counted from the moment the first
 * packet after the gap arrived): a repair within that time is put in its
 * place and nothing is lost; after it the gap is skipped and the
 * depacketiser handles it as a loss (drop to the next IDR + PLI). It also
 * gives up on a gap at once when a packet arrives HD_H264_REORDER_SLOTS or
 * more ahead (the ring is full). The VP8 jitter buffer (media/video_jitter)
 * does this by frames with VP8 picture knowledge; H.264 has no payload
 * descriptor, so the window works on bare sequence numbers.
 *
 * The recorder does not play in real time (frames carry their RTP
 * timestamps into the file), so holding for the node's repair deadline costs
 * only memory: at most HD_H264_REORDER_SLOTS x HD_H264_REORDER_MAX_PAYLOAD.
 * Sans-IO: packets and time in, access units and a deadline out. Not
 * thread-safe. */
#ifndef HD_MEDIA_H264_REORDER_H
#define HD_MEDIA_H264_REORDER_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"
#include "media/h264_depay.h"

#define HD_H264_REORDER_SLOTS 512               /* packets held (power of 2) */
#define HD_H264_REORDER_MAX_PAYLOAD 1500        /* largest RTP payload held; larger ones count as malformed */
#define HD_H264_REORDER_WAIT_DEFAULT HD_MS(500) /* the node's own repair deadline */

typedef struct {
  uint64_t gaps;      /* gaps that blocked the output (a packet missing with later ones here) */
  uint64_t repaired;  /* gaps filled inside the window (a late repair put in place) */
  uint64_t skipped;   /* gaps given up (the wait ran out, or the ring was full) */
  uint64_t late;      /* packets after their place was passed (too-late repairs, duplicates) */
  uint64_t duplicate; /* same sequence number twice inside the window */
  uint64_t too_big;   /* payloads over HD_H264_REORDER_MAX_PAYLOAD */
} hd_h264_reorder_stats_t;

typedef struct {
  hd_h264_depay_t depay;
  hd_time_t wait;
  uint8_t *pay; /* SLOTS x MAX_PAYLOAD */
  uint16_t len[HD_H264_REORDER_SLOTS];
  uint32_t ts[HD_H264_REORDER_SLOTS];
  uint16_t seq[HD_H264_REORDER_SLOTS];
  hd_time_t arrived[HD_H264_REORDER_SLOTS];
  uint8_t used[HD_H264_REORDER_SLOTS]; /* bit 0: held; bit 1: marker */
  /* one packet that does not fit the ring (HD_H264_REORDER_SLOTS or more
   * ahead, or far behind: a sequence jump); poll makes room for it */
  int pend;
  uint16_t pend_seq, pend_len;
  uint32_t pend_ts;
  int pend_marker;
  hd_time_t pend_at;
  uint8_t *pend_pay;
  int have_next;
  uint16_t next; /* the sequence number that goes out next */
  unsigned count;
  int gap_seen; /* a gap blocked the output since the last packet went out */
  hd_h264_reorder_stats_t stats;
} hd_h264_reorder_t;

/* wait 0 = HD_H264_REORDER_WAIT_DEFAULT, negative = no window (in-order use,
 * gaps skipped at once); max_au as hd_h264_depay_init. HD_EINVAL, HD_ENOMEM. */
int hd_h264_reorder_init(hd_h264_reorder_t *r, hd_time_t wait, size_t max_au);
void hd_h264_reorder_free(hd_h264_reorder_t *r);

/* Takes one RTP packet (copied). 0, HD_EINVAL (bad arguments), HD_ENOSPC
 * (payload over HD_H264_REORDER_MAX_PAYLOAD, or a second sequence jump
 * before poll made room for the first: dropped, counted; it shows up as a
 * gap). Call poll until it returns 0 after each push. */
int hd_h264_reorder_push(hd_h264_reorder_t *r, uint16_t seq, uint32_t ts, int marker, const uint8_t *payload,
                         size_t len, hd_time_t now);

/* Hands held packets to the depacketiser in order while they are ready:
 * 1 with *au (lent until the next poll or push), 0 when none is due now. */
int hd_h264_reorder_poll(hd_h264_reorder_t *r, hd_time_t now, hd_h264_au_t *au);

/* When a blocked gap will be given up (HD_TIME_NEVER when nothing waits). */
hd_time_t hd_h264_reorder_next_timeout(const hd_h264_reorder_t *r);

/* As hd_h264_depay_take_key_request: 1 once when the stream broke. */
int hd_h264_reorder_take_key_request(hd_h264_reorder_t *r);

#endif
