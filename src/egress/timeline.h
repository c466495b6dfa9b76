/* Recording timeline (issue 18 item 1): puts the encoded frames of every
 * recorded track on one clock so that a participant's audio and video files
 * stay in sync.
 *
 * A frame's capture time comes from its RTP timestamp and the track's RTCP
 * sender report (RFC 3550 §6.4.1: the SR pairs the sender's wall clock, NTP,
 * with an RTP time): capture = sr_ntp + (rtp - sr_rtp) / clock rate. The
 * sender stamps all its tracks from one wall clock, so captures of one
 * participant's tracks are comparable; the sender's clock is then put on the
 * recorder's by one offset per participant (arrival - capture of the first
 * frame mapped), the same for all its tracks. Timeline time = capture +
 * offset - start, in microseconds since the recording started.
 *
 * A track's first sender report may come a second or more after its first
 * frames: frames are held until it arrives, at most `hold` (then the track
 * falls back to arrival time + RTP clock: sync with the participant's other
 * tracks is then only as good as their arrival, counted in no_sr). The
 * mapping of the first SR is kept for the whole track (timestamps stay
 * monotonic; drift between the RTP and NTP clocks of a sender is ppm).
 * Sans-IO: frames and times in, frames with timeline times out; every queue
 * is capped (a full queue forces the fallback). One thread. */
#ifndef HD_EGRESS_TIMELINE_H
#define HD_EGRESS_TIMELINE_H
#include <stddef.h>
#include <stdint.h>

#define HD_EG_TL_MAX_TRACKS 64
#define HD_EG_TL_MAX_FRAMES 512       /* frames held per track */
#define HD_EG_TL_MAX_BYTES (8u << 20) /* bytes held per track */
#define HD_EG_TL_ID_MAX 128

typedef struct {
  int track; /* index from hd_eg_tl_add_track */
  const uint8_t *data;
  size_t len;
  int keyframe;
  int64_t t_us; /* timeline time, >= 0 */
} hd_eg_tl_frame_t;

typedef struct {
  uint8_t *data;
  size_t len;
  int keyframe;
  int64_t ext; /* unwrapped RTP timestamp */
  int64_t arrival_us;
} hd_eg_tl_held_t;

typedef struct {
  char participant[HD_EG_TL_ID_MAX];
  int clock;
  int mode; /* 0 waiting for an SR, 1 SR mapping, 2 arrival fallback */
  int have_ts;
  uint32_t last_ts;
  int64_t last_ext;
  int64_t base_ext, base_us; /* capture(ext) = base_us + (ext - base_ext) * 1e6 / clock */
  hd_eg_tl_held_t *q;
  size_t q_head, q_n, q_bytes;
  uint64_t no_sr; /* 1 if the track fell back to arrival times */
} hd_eg_tl_track_t;

typedef struct {
  char participant[HD_EG_TL_ID_MAX];
  int64_t offset_us; /* recorder clock - sender clock */
} hd_eg_tl_part_t;

typedef struct {
  int64_t start_us, hold_us;
  hd_eg_tl_track_t tr[HD_EG_TL_MAX_TRACKS];
  int n_tr;
  hd_eg_tl_part_t parts[HD_EG_TL_MAX_TRACKS];
  int n_parts;
  uint8_t *lent;
} hd_eg_timeline_t;

/* start_us: the recorder's clock when the recording started (unix µs);
 * hold_us: longest wait for a track's first SR (e.g. 3 s). */
void hd_eg_tl_init(hd_eg_timeline_t *tl, int64_t start_us, int64_t hold_us);
void hd_eg_tl_free(hd_eg_timeline_t *tl);
/* A new track of participant (identity) at clock rate (48000 audio, 90000
 * video). Returns its index, HD_ENOSPC, HD_EINVAL, HD_ENOMEM. */
int hd_eg_tl_add_track(hd_eg_timeline_t *tl, const char *participant, int clock);
/* One frame of track in decode order, received at arrival_us (recorder
 * clock), with the track's latest SR if any. Copied. 0, HD_EINVAL, HD_ENOMEM. */
int hd_eg_tl_push(hd_eg_timeline_t *tl, int track, const uint8_t *data, size_t len, int keyframe,
                  uint32_t rtp_ts, int have_sr, uint64_t sr_ntp, uint32_t sr_rtp, int64_t arrival_us);
/* The next frame whose timeline time is known at now_us: 1 with *out set
 * (data lent until the next poll), 0 when none. */
int hd_eg_tl_poll(hd_eg_timeline_t *tl, int64_t now_us, hd_eg_tl_frame_t *out);
/* Releases every held frame now (end of recording): tracks still without an
 * SR fall back to arrival time. Then poll until 0. */
void hd_eg_tl_flush(hd_eg_timeline_t *tl);

/* NTP 32.32 -> unix microseconds. */
int64_t hd_eg_ntp_to_unix_us(uint64_t ntp);

#endif
