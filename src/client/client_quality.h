/* Small sans-IO pieces of the SDK client, kept apart so unit tests can drive
 * them on a fake clock:
 * - the video freeze detector of DESIGN §6 / W3C webrtc-stats freezeCount: a
 *   freeze is an inter-frame gap >= max(3 x average interval, average +
 *   150 ms); the average is a running mean over roughly the last 30 frames
 *   and is only trusted after a few intervals;
 * - the reconnect backoff of docs/protocol.md "Reconnection": attempt n waits a
 *   delay drawn uniformly from [d/2, d], d = min(8 s, 0.5 s x 2^(n-1)). */
#ifndef HD_CLIENT_CLIENT_QUALITY_H
#define HD_CLIENT_CLIENT_QUALITY_H
#include <stdint.h>

#include "base/time.h"

#define HD_FREEZE_MIN_INTERVALS 5 /* intervals averaged before a gap can count as a freeze */
#define HD_FREEZE_EXTRA_US 150000

typedef struct {
  hd_time_t last_at; /* 0 = no frame yet */
  double avg_us;
  uint64_t intervals, freezes;
  double freeze_us; /* total frozen time */
} hd_freeze_t;

/* Records a frame rendered (decoded) at `now`. Returns 1 if the gap before it
 * was a freeze, else 0. */
int hd_freeze_frame(hd_freeze_t *f, hd_time_t now);

#define HD_BACKOFF_BASE_US 500000
#define HD_BACKOFF_CAP_US 8000000

/* Delay before reconnect attempt `attempt` (1, 2, ...); `r` is a random 32-bit
 * value (the caller's RNG). */
hd_time_t hd_client_backoff(int attempt, uint32_t r);

#endif
