/* Composite encoder and outputs (issue 18 item 2): H.264 (libx264 through
 * libavcodec) + AAC, written to any number of outputs at once -- an MP4 file
 * (fragmented: a crash leaves a playable file), HLS (segments + playlist), or
 * an RTMP/RTMPS URL (FLV) -- each output on its own thread with its own
 * bounded packet queue, so a slow or unreachable RTMP server never holds up
 * the encoder or the other outputs.
 *
 * A network output that cannot connect, or whose connection breaks, is
 * retried with exponential backoff (1 s doubling to 30 s); while it is down
 * its packets are not queued, and after a (re)connect it starts at the next
 * video keyframe. A file output that fails is failed (no retry). Each
 * output's state, attempts and last error are reported (hd_av_out_status).
 * Threads: the caller's (encode) + one per output. */
#ifndef HD_EGRESS_AV_OUT_H
#define HD_EGRESS_AV_OUT_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "media/i420.h"

#define HD_AV_OUT_MAX_URLS 4
#define HD_AV_OUT_QUEUE 512               /* packets queued per output */
#define HD_AV_OUT_QUEUE_BYTES (32u << 20) /* and their bytes */
#define HD_AV_OUT_BACKOFF_MAX_MS 30000

typedef struct {
  int video; /* 0: audio only */
  int width, height, fps;
  int video_kbps, audio_kbps;
  const char *urls[HD_AV_OUT_MAX_URLS]; /* path.mp4, path.m3u8, path.flv, rtmp://..., rtmps://... */
  int n_urls;
  int backoff_first_ms; /* first retry delay (default 1000) */
} hd_av_out_config_t;

typedef struct hd_av_out hd_av_out_t;

/* Opens the encoders and starts the output threads (the outputs connect in
 * the background). HD_EINVAL with why (a URL of an unknown kind, bad size),
 * HD_EUNSUPPORTED (no libx264 / AAC encoder), HD_ENOMEM. */
int hd_av_out_open(hd_av_out_t **out, const hd_av_out_config_t *cfg, char *why, size_t whycap);
/* Encodes picture number `index` (pts = index / fps). */
int hd_av_out_video(hd_av_out_t *o, const hd_i420_t *pic, int64_t index);
/* Appends mono 48 kHz PCM (any count; encoded in AAC frames as they fill). */
int hd_av_out_audio(hd_av_out_t *o, const int16_t *pcm, size_t n);
/* Appends one JSON object per output to arr: url, state
 * ("connecting"|"active"|"retrying"|"failed"|"finished"), attempts, bytes,
 * packets, dropped_packets, error. */
void hd_av_out_status(hd_av_out_t *o, json_t *arr);
/* Flushes the encoders, finishes every output (trailers), joins the
 * threads, appends the outputs' final status to final_status (may be NULL)
 * and frees. Returns 0, or HD_EIO if an output failed. NULL is a no-op. */
int hd_av_out_close(hd_av_out_t *o, json_t *final_status);

#endif
