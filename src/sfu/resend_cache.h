/* What a node sent a viewer on one media SSRC, byte for byte, so that a
 * retransmission on that SSRC (no RTX: Opus, or video to a viewer that did
 * not negotiate RTX) is exactly the first send.
 *
 * Why: a resend on the media SSRC carries the same sequence number, so SRTP
 * seals it under the same packet index (RFC 3711 §3.3.1: SSRC + ROC + seq),
 * i.e. the same AES-GCM IV (RFC 7714 §8.1). Two different plaintexts under
 * one IV give the GHASH key away and let anyone on the path forge packets
 * (RFC 7714 §8.3, RFC 3711 §9.1). The node rebuilds each viewer's header
 * (transport-wide seq, abs-send-time stamped when the packet leaves), so a
 * rebuilt resend would differ: the resend is this cache's copy, or nothing.
 * SRTP is deterministic, so the same plaintext gives the same protected bytes
 * (sealed here or by a shard worker, io/worker_shards.h).
 *
 * A ring of slots keyed by seq (slot = seq & (slots - 1)) over a byte arena
 * used as a ring: a packet's bytes stay until the arena has wrapped over them
 * or it is older than HD_RESEND_CACHE_MAX_AGE. Both are hard caps; nothing
 * is allocated after init. The slot also remembers that a seq went out after
 * its bytes are gone, so a second, different first send of it is refused. */
#ifndef HD_SFU_RESEND_CACHE_H
#define HD_SFU_RESEND_CACHE_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"

/* Audio (Opus, RED): 128 packets / 16 KiB, >= 1 s of 20 ms frames up to 320
 * bytes each, longer than any repair that can still be played. */
#define HD_RESEND_AUDIO_SLOTS 128
#define HD_RESEND_AUDIO_BYTES (16 * 1024)
/* Video to a viewer without RTX: 512 packets / 256 KiB, ~2 s at 1 Mbit/s. */
#define HD_RESEND_VIDEO_SLOTS 512
#define HD_RESEND_VIDEO_BYTES (256 * 1024)
/* A packet older than this is not resent (as the publisher's cache, rtc/rtp_cache.h). */
#define HD_RESEND_CACHE_MAX_AGE HD_SEC(1)

typedef struct {
  uint64_t pos; /* arena write position of the first byte (monotonic) */
  hd_time_t at; /* when it was sent, 0 = empty slot */
  uint16_t seq; /* out seq */
  uint16_t len; /* bytes */
} hd_resend_slot_t;

typedef struct {
  size_t n_slots; /* power of two */
  hd_resend_slot_t *slots;
  uint8_t *arena;
  size_t arena_cap;
  uint64_t wpos; /* total bytes written (the ring position is wpos % arena_cap) */
  uint64_t stored, hits, misses;
  /* optional (hd_resend_cache_keep_seqs): one bit per 16-bit seq, set when
   * it is put, cleared for the seqs a put skips over (last_put: the newest) */
  uint8_t *went;
  uint16_t last_put;
  int any_put;
} hd_resend_cache_t;

/* Allocates n_slots (power of two, 1..65536) slots and arena_bytes of arena
 * (>= HD_DATAGRAM_MAX). Returns 0, HD_EINVAL or HD_ENOMEM. */
int hd_resend_cache_init(hd_resend_cache_t *c, size_t n_slots, size_t arena_bytes);
void hd_resend_cache_free(hd_resend_cache_t *c);
/* Bytes allocated by init (slots + arena): the memory cost per track. */
size_t hd_resend_cache_footprint(const hd_resend_cache_t *c);
/* Records the len-byte RTP packet pkt, just sent as out seq `seq` (the bytes
 * as they were handed to SRTP). Returns 0, HD_EINVAL (len 0 or above the
 * arena / 65535). */
int hd_resend_cache_put(hd_resend_cache_t *c, uint16_t seq, const uint8_t *pkt, size_t len, hd_time_t now);
/* The bytes sent as seq, lent until the next put. Returns 0, or HD_ENOTFOUND
 * (never sent, overwritten, or older than HD_RESEND_CACHE_MAX_AGE). */
int hd_resend_cache_get(hd_resend_cache_t *c, uint16_t seq, hd_time_t now, const uint8_t **pkt, size_t *len);
/* 1 if seq went out within HD_RESEND_CACHE_MAX_AGE (even if its bytes are gone), else 0. */
int hd_resend_cache_sent(const hd_resend_cache_t *c, uint16_t seq, hd_time_t now);
/* Also remembers which of the last 32768 seqs went out at all (8 KiB, once):
 * hd_resend_cache_went_out then tells a seq whose bytes are gone from one
 * that was skipped (never put). Returns 0 or HD_ENOMEM. */
int hd_resend_cache_keep_seqs(hd_resend_cache_t *c);
/* 1 if seq was put since the newest put was 32768 seqs or less ahead of it
 * (its bytes may be gone), 0 if it was skipped, or keep_seqs is off. */
int hd_resend_cache_went_out(const hd_resend_cache_t *c, uint16_t seq);
/* Forgets everything (keeps the allocation). */
void hd_resend_cache_clear(hd_resend_cache_t *c);

#endif
