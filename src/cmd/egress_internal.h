/* Shared between the two modes of `hudong egress` (egress_cmd.c: track
 * recording; egress_composite.c: the room composite). */
#ifndef HD_CMD_EGRESS_INTERNAL_H
#define HD_CMD_EGRESS_INTERNAL_H
#include <jansson.h>

#define HD_EGRESS_MAX_OUTPUTS 4

typedef struct {
  const char *url, *token, *out;
  /* composite */
  const char *layout; /* "grid", "speaker" or a JSON object */
  int width, height, fps, video_kbps;
  const char *outputs[HD_EGRESS_MAX_OUTPUTS];
  int n_outputs;
  int backoff_ms;    /* first RTMP retry delay */
  int stdin_control; /* read {"layout": ...} lines on stdin */
  /* ingest */
  const char *ingest;     /* rtmp:// URL to play and publish into the room */
  int ingest_transcode;   /* 1: always re-encode video to VP8 (no H.264 passthrough) */
  long ingest_max_key_ms; /* passthrough only while IDRs come at least this often (ms); 0 = no limit */
} hd_egress_args_t;

/* 1 once SIGTERM/SIGINT arrived: finish the outputs and exit. */
int hd_egress_stopping(void);
/* Prints one status line {"type": "status"|"ended", "composite": st} (st
 * consumed; NULL = an empty object). */
void hd_egress_emit_composite(json_t *st, int final, int failed);
int hd_egress_composite(const hd_egress_args_t *a);
/* Prints {"type": type, "ingest": {"video_frames", "audio_ms", "video_codec"?,
 * "passthrough"?, "video_mode"?}, "reason"?}; video_codec NULL = no video. */
void hd_egress_emit_ingest(const char *type, const char *reason, unsigned long long vframes,
                           unsigned long long audio_ms, int failed);
void hd_egress_ingest_video_mode(const char *codec, int passthrough, const char *why);
int hd_egress_ingest(const hd_egress_args_t *a);

#endif
