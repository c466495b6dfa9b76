/* Client quality reports (issue 14 item 1, docs/quality.md "Client reports"):
 * the compact getStats summary a browser or SDK sends over its /rtc WebSocket
 * ("quality_report") and its join attempts ("quality_join"), parsed and
 * checked, and the cumulative counters turned into per-interval deltas.
 *
 * Definitions (DESIGN §6): a video freeze is counted by the receiver with the
 * W3C rule (inter-frame gap >= max(3 x average frame interval, average +
 * 150 ms): freezeCount / totalFreezesDuration); the stall rate is frozen time
 * over watched time (time since the track's first decoded frame while
 * subscribed). Audio stall is concealed samples over samples received.
 * hd_qfreeze_* is the same freeze rule over a recorded timeline of frame
 * times, for clients that have no freezeCount (and for the tests that check
 * the definition). Sans-IO. */
#ifndef HD_QUALITY_REPORT_H
#define HD_QUALITY_REPORT_H
#include <stddef.h>
#include <stdint.h>

#define HD_QREPORT_MAX_TRACKS 16   /* tracks in one report */
#define HD_QREPORT_MAX_ATTEMPTS 20 /* join attempts in one quality_join */

/* Cumulative counters of one received track, as the client reports them. */
typedef struct {
  char sid[24];
  int video;
  uint64_t bytes, packets, lost, freezes, freeze_ms, watched_ms, frames_decoded, frames_dropped;
  uint64_t concealed, samples, jb_emitted;
  double jb_delay_s; /* cumulative jitterBufferDelay (seconds) */
} hd_qtrack_counters_t;

typedef struct {
  char candidate[16]; /* "host", "srflx", "prflx", "relay", "" */
  double rtt_ms;      /* current round trip of the selected candidate pair, -1 unknown */
  int n_tracks;
  hd_qtrack_counters_t tracks[HD_QREPORT_MAX_TRACKS];
} hd_qreport_t;

typedef struct {
  char id[40], room[128], outcome[12], reason[128];
  int64_t started_at;              /* unix ms */
  int64_t join_ms, first_media_ms; /* -1 = not reached */
} hd_qattempt_t;

typedef struct {
  int n;
  hd_qattempt_t a[HD_QREPORT_MAX_ATTEMPTS];
} hd_qjoins_t;

/* Parses the JSON object of a quality_report. HD_EPROTO with a reason in err
 * (which field, what is allowed) for anything malformed. */
int hd_qreport_parse(const void *json_obj, hd_qreport_t *out, char *err, size_t errcap);
/* The same for quality_join. */
int hd_qjoins_parse(const void *json_obj, hd_qjoins_t *out, char *err, size_t errcap);

/* The change of one track's counters since prev (NULL = first report of the
 * track: everything counted from zero). A counter that went down (the receiver
 * was replaced) counts from zero again. */
typedef struct {
  uint64_t bytes, packets, lost, freezes, freeze_ms, watched_ms, frames_decoded, frames_dropped, concealed,
      samples;
  double jb_delay_ms; /* mean jitter-buffer delay over the interval, -1 if no sample was emitted */
} hd_qdelta_t;
void hd_qtrack_delta(const hd_qtrack_counters_t *prev, const hd_qtrack_counters_t *cur, hd_qdelta_t *d);

/* The W3C freeze rule over frame render times (microseconds, increasing). */
typedef struct {
  int64_t last_at; /* 0 = no frame yet */
  double avg_us;   /* running mean of the last ~30 intervals */
  uint64_t intervals, freezes;
  int64_t freeze_us, watched_us;
} hd_qfreeze_t;
#define HD_QFREEZE_MIN_INTERVALS 5 /* intervals averaged before a gap can count as a freeze */
/* Records a frame at t; returns 1 if the gap before it was a freeze. */
int hd_qfreeze_frame(hd_qfreeze_t *f, int64_t t);

#endif
