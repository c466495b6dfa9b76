/* One recorded track (issue 18 item 1): encoded frames written as they arrive,
 * without transcoding, into a container FFmpeg's libavformat writes --
 * Opus into Ogg (RFC 7845) or WebM, VP8 into WebM, H.264 into fragmented MP4
 * (ISO/IEC 14496-12 movie fragments).
 *
 * Crash safety: a file must stay playable if the process is killed (kill -9)
 * at any moment. WebM: a cluster is closed at every video keyframe and at
 * least every second (cluster_time_limit), and the I/O buffer is flushed after
 * each packet, so what is lost is at most the open cluster; the Duration and
 * Cues are written only by a clean close (players then seek by scanning).
 * Ogg: pages are flushed at least every second. An interrupted file lacks
 * nothing a decoder needs. Fragmented MP4 (movflags
 * frag_keyframe+empty_moov+default_base_moof, frag_duration 1 s): the moov
 * (with the avcC from the first keyframe) is written first and holds no
 * samples; each fragment (moof + mdat) is written whole at every keyframe and
 * at least every second, so a kill -9 loses at most the open fragment.
 * H.264 frames are AVCC access units with SPS and PPS in every keyframe
 * (media/h264_depay.h); no B-frames (pts = dts: WebRTC senders use none).
 *
 * Timestamps are given in microseconds on the caller's timeline; the file
 * starts at pts 0 at its first frame (the offset of that frame on the shared
 * timeline is what the caller records, hd_track_file_stats_t.start_us). A
 * video file starts at a keyframe: earlier frames are dropped (counted). A
 * frame whose time does not advance (in microseconds, or in the stream's
 * ticks: 1/90000 for H.264) is moved just after the previous one (counted as
 * adjusted), since a muxer rejects non-increasing timestamps.
 * Opus gaps (DTX sends a packet every 400 ms in silence; a muted or lost
 * stretch sends none) are filled with 20 ms silence frames: Ogg and WebM
 * readers play audio packets back to back, so without them the audio
 * would run ahead of the video after every pause.
 * Not thread-safe: one thread owns a file. */
#ifndef HD_EGRESS_TRACK_FILE_H
#define HD_EGRESS_TRACK_FILE_H
#include <stddef.h>
#include <stdint.h>

typedef enum { HD_TRACK_CODEC_OPUS = 1, HD_TRACK_CODEC_VP8 = 2, HD_TRACK_CODEC_H264 = 3 } hd_track_codec_t;
typedef enum {
  HD_TRACK_CONTAINER_WEBM = 1,
  HD_TRACK_CONTAINER_OGG = 2,
  HD_TRACK_CONTAINER_MP4 = 3 /* fragmented: H.264 only */
} hd_track_container_t;

typedef struct {
  int64_t start_us;    /* timeline time of the first frame written (-1 before it) */
  int64_t duration_us; /* last frame's end - first frame's start */
  uint64_t bytes;      /* bytes written so far (the file size once closed) */
  uint64_t frames;     /* frames written */
  uint64_t dropped;    /* frames dropped (video before the first keyframe, muxer errors) */
  uint64_t adjusted;   /* frames whose timestamp was moved forward to keep order */
  uint64_t silence;    /* Opus: silence frames written into gaps (DTX, a muted or lost stretch) */
  int width, height;   /* video: from the first keyframe */
} hd_track_file_stats_t;

typedef struct hd_track_file hd_track_file_t;

/* Creates the file at path (overwritten). HD_EINVAL (Ogg holds only Opus,
 * MP4 only H.264 and H.264 only MP4, bad codec), HD_EIO (cannot create the file; errno-style reason in the
 * log), HD_ENOMEM. The container is opened at the first usable frame. */
int hd_track_file_open(hd_track_file_t **out, const char *path, hd_track_codec_t codec,
                       hd_track_container_t container);
/* Writes one encoded frame (a whole VP8 frame, an H.264 AVCC access unit, or one Opus packet) at
 * timeline time t_us. Returns 1 written, 0 dropped (waiting for a keyframe),
 * HD_EIO when the muxer fails (the frame is counted as dropped). */
int hd_track_file_write(hd_track_file_t *f, const uint8_t *data, size_t len, int keyframe, int64_t t_us);
void hd_track_file_stats(const hd_track_file_t *f, hd_track_file_stats_t *out);
/* Finishes the container (trailer: duration, cues) and closes the file; out
 * (may be NULL) gets the final stats. Returns 0 or HD_EIO. NULL is a no-op. */
int hd_track_file_close(hd_track_file_t *f, hd_track_file_stats_t *out);

#endif
