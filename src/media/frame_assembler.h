/* Video frame assembler (receiver side, VP8 over RTP per RFC 7741): turns RTP
 * packets that arrive in any order, with loss and duplicates, into complete
 * encoded frames in decode order.
 *
 * A frame is the run of packets from one with S=1/PartID=0 (RFC 7741 §4.1) up
 * to the marker packet (or up to the packet before the next frame's start),
 * all sequence numbers present, one RTP timestamp. A complete frame is emitted
 * when it continues the reference chain (its first seq follows the last emitted
 * frame's last seq) or when it is a keyframe (then everything older is dropped).
 * While a gap blocks the chain the assembler waits `nack_wait` for a
 * retransmission; after that (or when a buffer cap is hit) the chain is broken:
 * it emits a KEYFRAME_NEEDED event (the caller sends PLI, RFC 4585 §6.3.1),
 * drops delta frames until a complete keyframe arrives, and repeats the request
 * every `keyframe_interval` while waiting -- but not while a keyframe whose
 * first packet is here still misses one for less than `nack_wait` (its repair
 * is on the way; the complete deltas after it are kept for it). The stream
 * must also start at a keyframe.
 *
 * VP8 temporal layers (RFC 7741 §4.2 TID / Y / TL0PICIDX): when the gap has
 * blocked for `tl_wait` and the first complete frame after it can be decoded
 * without the missing ones -- a TL0 frame whose TL0PICIDX follows the last
 * decoded TL0 frame's, or a layer-sync (Y) frame of the same TL0 group --
 * the assembler skips to it instead of breaking the chain; until a Y frame
 * repairs them, frames of the damaged layers (TID >= the lowest one that may
 * have lost a frame) are dropped; if none has come after `tl_key_wait`, a
 * keyframe is requested (the TL0 frames keep decoding meanwhile). A stream without TID never skips.
 * Sans-IO: packets and time in, frames/events and a deadline out. The
 * waits are live-tunable (hd_frame_asm_set_waits): the video jitter buffer
 * (media/video_jitter.h) sets them from the measured RTT and frame rate. */
#ifndef HD_MEDIA_FRAME_ASSEMBLER_H
#define HD_MEDIA_FRAME_ASSEMBLER_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"

#define HD_FRAME_ASM_MAX_PAYLOAD 2048 /* largest RTP payload accepted */
#define HD_FRAME_ASM_SLOTS 2048       /* packet window (power of 2), hard cap on max_packets */

typedef struct {
  size_t max_packets;          /* packets buffered, <= HD_FRAME_ASM_SLOTS (default 1024) */
  size_t max_bytes;            /* payload bytes buffered (default 4 MiB) */
  size_t max_frame_bytes;      /* largest assembled frame (default 2 MiB) */
  hd_time_t nack_wait;         /* how long a gap may block before the chain is broken (150 ms) */
  hd_time_t keyframe_interval; /* min time between KEYFRAME_NEEDED events (500 ms) */
  hd_time_t tl_wait;           /* how long a gap blocks before a temporal-layer skip (50 ms) */
  hd_time_t tl_key_wait;       /* layers still damaged (no Y frame) after this: ask for a keyframe (1 s) */
} hd_frame_asm_config_t;

/* One received RTP packet (header fields already parsed by hd_rtp_parse). */
typedef struct {
  uint16_t seq;
  uint32_t ts;
  int marker;
  const uint8_t *payload; /* the RTP payload: VP8 descriptor + data */
  size_t len;
} hd_frame_asm_pkt_t;

enum {
  HD_FRAME_ASM_FRAME = 1,          /* ev.frame holds a complete frame */
  HD_FRAME_ASM_KEYFRAME_NEEDED = 2 /* send PLI/FIR to the sender */
};

typedef struct {
  const uint8_t *data; /* VP8 bitstream (descriptors stripped), lent until the next push/poll */
  size_t len;
  uint32_t ts;
  int keyframe;
  int width, height; /* from a keyframe header, else 0 */
  int picture_id;    /* from the first packet, -1 if absent */
  uint16_t first_seq, last_seq;
  int after_gap; /* 1 if frames were skipped before this one (a jump to a keyframe or a TL skip) */
  int tid;       /* temporal layer id, -1 when the stream does not signal it */
  int tl0picidx; /* -1 when absent */
  int layer_sync;
  hd_time_t first_arrival; /* arrival of the frame's earliest packet */
} hd_frame_asm_frame_t;

typedef struct {
  int type; /* HD_FRAME_ASM_FRAME or HD_FRAME_ASM_KEYFRAME_NEEDED */
  hd_frame_asm_frame_t frame;
} hd_frame_asm_event_t;

typedef struct {
  uint64_t packets, duplicates, late, malformed, dropped; /* dropped: discarded unused */
  uint64_t frames, keyframes, frames_dropped;             /* frames_dropped: complete deltas dropped */
  uint64_t keyframe_requests, chain_breaks, cap_overflows;
  uint64_t tl_skips; /* gaps passed over by a temporal-layer skip instead of a keyframe */
} hd_frame_asm_stats_t;

typedef struct hd_frame_asm_slot hd_frame_asm_slot_t;

typedef struct {
  hd_frame_asm_config_t cfg;
  hd_frame_asm_slot_t *slots; /* HD_FRAME_ASM_SLOTS entries, indexed by ext seq */
  size_t n_packets, n_bytes;
  int started;          /* any packet seen */
  int64_t base;         /* lowest ext seq still acceptable */
  int64_t highest;      /* highest ext seq stored so far */
  int64_t last_emitted; /* ext seq of the last emitted frame's last packet */
  int have_emitted;
  int need_key;           /* chain broken (or not started): wait for a keyframe */
  int key_pending;        /* a KEYFRAME_NEEDED event is due */
  int skipped;            /* frames were skipped since the last emitted frame */
  hd_time_t gap_since;    /* when the current blocking gap was noticed, or NEVER */
  hd_time_t last_key_req; /* when the last KEYFRAME_NEEDED went out, or NEVER */
  hd_time_t start_time;   /* arrival of the first packet */
  int last_tl0;           /* TL0PICIDX of the last emitted TID 0 frame, -1 unknown */
  int broken_tid;         /* layers >= this are undecodable until a Y frame / keyframe; 0 = none */
  hd_time_t broken_since; /* when broken_tid was set */
  hd_time_t tl_now;       /* time of the current poll */
  int max_tid;            /* highest TID seen in the stream */
  int64_t tl_tried;       /* `highest` when a TL skip was last tried (no retry without news) */
  uint8_t *out;           /* assembled frame buffer (max_frame_bytes) */
  hd_frame_asm_stats_t stats;
} hd_frame_asm_t;

/* Defaults as listed in hd_frame_asm_config_t. */
void hd_frame_asm_config_default(hd_frame_asm_config_t *c);

/* c may be NULL for defaults. HD_EINVAL on a bad config, HD_ENOMEM. */
int hd_frame_asm_init(hd_frame_asm_t *fa, const hd_frame_asm_config_t *c);
void hd_frame_asm_free(hd_frame_asm_t *fa);

/* Feeds one packet received at `now`. Returns 0 (stored), 1 (ignored: a
 * duplicate, or older than what was already emitted), HD_EPROTO/HD_ETRUNC on a
 * malformed VP8 descriptor (counted, dropped), HD_EINVAL when len is 0 or >
 * HD_FRAME_ASM_MAX_PAYLOAD, HD_ENOMEM. A packet that does not fit the caps makes room by
 * dropping the buffer and breaking the chain (then it is stored). */
int hd_frame_asm_push(hd_frame_asm_t *fa, const hd_frame_asm_pkt_t *pkt, hd_time_t now);

/* Takes the next output: returns 1 with *ev set (a frame in decode order, or a
 * keyframe request), 0 when nothing is ready at `now`. Call until 0 after every
 * push and when hd_frame_asm_next_timeout passes. */
int hd_frame_asm_poll(hd_frame_asm_t *fa, hd_time_t now, hd_frame_asm_event_t *ev);

/* The next time poll must be called even without new packets (gap wait
 * expiring, keyframe request repeat), or HD_TIME_NEVER. */
hd_time_t hd_frame_asm_next_timeout(const hd_frame_asm_t *fa);

/* Changes the gap wait, the keyframe request interval and the
 * temporal-layer wait (values < 0 are left as they are). */
void hd_frame_asm_set_waits(hd_frame_asm_t *fa, hd_time_t nack_wait, hd_time_t keyframe_interval,
                            hd_time_t tl_wait);

/* Asks for a keyframe now (e.g. the decoder failed): breaks the chain exactly
 * as a lost packet would. The KEYFRAME_NEEDED event is still rate-limited. */
void hd_frame_asm_request_keyframe(hd_frame_asm_t *fa, hd_time_t now);

#endif
