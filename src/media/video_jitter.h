/* Video jitter buffer (receiver side): the frame assembler
 * (media/frame_assembler.h) plus timing -- how long to wait for a
 * retransmission, when to give up and ask for a keyframe, and when to hand
 * each frame to the decoder and the renderer.
 *
 * - Hold for repair: a gap that blocks decoding is waited for
 *   hold = clamp(max(8 x rtt + 3 x frame interval, delay + rtt), min_hold,
 *   max_hold): six NACK rounds (the NACK generator retries every
 *   1.25 x rtt, rtc/nack_gen.h) plus a few frames of slack, and never less
 *   than the render delay already paid plus one round trip. Only then is a
 *   keyframe requested (RFC 4585 §6.3.1 PLI), at most every
 *   max(min_key_interval, 3 x rtt). Temporal-layer gaps are skipped after
 *   one frame interval (frame_assembler.h).
 * - Render schedule (frame pacing): a frame of RTP timestamp ts is due at
 *   base + ts/90 kHz + delay, base being the smallest (completion - ts)
 *   seen over the last ~10 s (the "on time" frame), delay the `percentile`
 *   of the recent frames' lateness (completion - base - ts) -- so a delay
 *   that covers a retransmission when repairs are frequent, and ~0 on a
 *   clean path. The delay grows at once and shrinks by at most
 *   `shrink_per_frame` per frame, so a frame is never rendered before one
 *   that preceded it and playback does not speed up visibly. Frames due
 *   together (after a hold) go to the decoder in order, but only the last is
 *   rendered: the others are counted as dropped (W3C framesDropped), not
 *   shown in a burst.
 * Sans-IO, virtual time; every queue capped. */
#ifndef HD_MEDIA_VIDEO_JITTER_H
#define HD_MEDIA_VIDEO_JITTER_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"
#include "media/frame_assembler.h"

#define HD_VIDEO_JB_LATENESS_WINDOW 128 /* frames whose lateness sets the delay */

typedef struct {
  hd_frame_asm_config_t asm_cfg; /* packet caps (the waits are set from rtt) */
  hd_time_t min_delay;           /* render delay floor (0) */
  hd_time_t max_delay;           /* render delay ceiling (500 ms) */
  double percentile;             /* lateness percentile the delay covers (0.99) */
  hd_time_t shrink_per_frame;    /* how fast the delay comes down (2 ms per frame) */
  hd_time_t min_hold, max_hold;  /* bounds of the repair wait (150 ms, 1 s) */
  hd_time_t min_key_interval;    /* floor between keyframe requests (300 ms) */
  size_t max_frames;             /* decodable frames queued for their render time (64) */
  size_t max_bytes;              /* their bytes (8 MiB) */
} hd_video_jb_config_t;

enum {
  HD_VIDEO_JB_FRAME = 1,          /* decode ev.frame; render it if ev.render */
  HD_VIDEO_JB_KEYFRAME_NEEDED = 2 /* send PLI to the sender */
};

typedef struct {
  int type;
  int render;                 /* 0: decode only (a later frame is due at the same time) */
  hd_frame_asm_frame_t frame; /* data lent until the next poll */
  hd_time_t jb_delay;         /* first packet arrival -> leaving the buffer */
} hd_video_jb_event_t;

typedef struct {
  uint64_t frames_out, frames_rendered, frames_render_dropped, frames_overflow;
  uint64_t keyframe_requests;
  double jitter_buffer_delay_s;  /* W3C jitterBufferDelay: sum over frames out */
  double jitter_buffer_target_s; /* W3C jitterBufferTargetDelay: sum of the delay at each frame out */
  uint64_t jitter_buffer_emitted;
} hd_video_jb_stats_t;

typedef struct {
  uint8_t *data;
  hd_frame_asm_frame_t f;
  hd_time_t due;
} hd_video_jb_slot_t;

typedef struct {
  hd_video_jb_config_t cfg;
  hd_frame_asm_t fa;
  hd_video_jb_slot_t *q; /* ring of max_frames */
  size_t q_head, q_n, q_bytes;
  uint8_t *lent; /* data of the last frame handed out */
  int key_pending;
  hd_time_t rtt;            /* default 100 ms until measured */
  double frame_interval_us; /* smoothed from timestamps (33 ms at first) */
  int have_ts;
  int64_t ts_ext; /* unwrapped timestamp of the last frame out of the assembler */
  uint32_t last_ts;
  /* base: min(completion - ts) over two alternating 5 s windows */
  int64_t base_cur, base_prev;
  hd_time_t base_window_start;
  hd_time_t late[HD_VIDEO_JB_LATENESS_WINDOW];
  size_t n_late, late_pos;
  hd_time_t delay;      /* current render delay */
  hd_time_t sync_extra; /* added to the delay target for lip sync */
  hd_video_jb_stats_t st;
} hd_video_jb_t;

void hd_video_jb_config_default(hd_video_jb_config_t *c);
/* c may be NULL for defaults. HD_EINVAL on a bad config, HD_ENOMEM. */
int hd_video_jb_init(hd_video_jb_t *jb, const hd_video_jb_config_t *c);
void hd_video_jb_free(hd_video_jb_t *jb);
/* The measured round-trip time to the sender (e.g. the NACK generator's
 * request -> repair time); values <= 0 are ignored. */
void hd_video_jb_set_rtt(hd_video_jb_t *jb, hd_time_t rtt);
/* Feeds one packet (see hd_frame_asm_push for the return values). */
int hd_video_jb_push(hd_video_jb_t *jb, const hd_frame_asm_pkt_t *pkt, hd_time_t now);
/* The next output at `now`: 1 with *ev set, 0 when nothing is due. Call until
 * 0 after each push and whenever hd_video_jb_next_timeout passes. */
int hd_video_jb_poll(hd_video_jb_t *jb, hd_time_t now, hd_video_jb_event_t *ev);
hd_time_t hd_video_jb_next_timeout(const hd_video_jb_t *jb);
/* The decoder failed: wait for a keyframe (rate-limited request). */
void hd_video_jb_request_keyframe(hd_video_jb_t *jb, hd_time_t now);
/* The render delay now (W3C jitterBufferTargetDelay). */
hd_time_t hd_video_jb_delay(const hd_video_jb_t *jb);
/* Extra render delay added to the target (within max_delay) so that video
 * waits for the same sender's audio (media/av_sync.h). 0 = none. */
void hd_video_jb_set_sync_delay(hd_video_jb_t *jb, hd_time_t extra);

#endif
