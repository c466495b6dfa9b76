/* Bandwidth probing for one subscriber (issue 11 item 2, the probing part):
 * an estimate from a receiver that is application-limited never grows much
 * past what it receives (a REMB or a send-side estimate alike caps itself near
 * 1.5x the incoming rate), so the node could never learn that a higher layer
 * fits. When the allocator is held back by the estimate, the node sends extra
 * bytes (RTX copies of recent packets) for a short while so that media plus
 * probe reach the rate the next layer needs; if the estimate follows, the
 * upgrade happens, if it falls the probe stops at once and the next one waits
 * longer (exponential backoff). Sans-IO: the caller asks how many bytes are
 * due and sends them. */
#ifndef HD_SFU_PROBE_H
#define HD_SFU_PROBE_H
#include <stdint.h>

#include "base/time.h"

#define HD_PROBE_DURATION HD_SEC(3)    /* a probe lasts at most this long */
#define HD_PROBE_TICK HD_MS(10)        /* bytes are released every tick */
#define HD_PROBE_BACKOFF_MIN HD_SEC(2) /* wait after a failed probe, doubled each time */
#define HD_PROBE_BACKOFF_MAX HD_SEC(30)
#define HD_PROBE_MAX_FACTOR 2 /* a probe never asks for more than this times the estimate */

typedef struct {
  int active;
  hd_time_t end, next_tick, backoff, backoff_until;
  uint64_t rate_bps;       /* probe bytes' rate (on top of the media) */
  uint64_t goal_bps;       /* the estimate that would let the upgrade happen */
  uint64_t start_estimate; /* the estimate when the probe started */
  double credit;           /* bytes owed (fractions carry over) */
  uint64_t started, succeeded, failed, bytes_sent;
} hd_probe_t;

void hd_probe_init(hd_probe_t *p);
/* The allocator would like `goal_bps` to be the estimate (media `sending_bps`
 * flows now). Starts a probe unless one runs or the backoff holds. Returns 1
 * when a probe started. */
int hd_probe_want(hd_probe_t *p, uint64_t estimate_bps, uint64_t sending_bps, uint64_t goal_bps,
                  hd_time_t now);
/* A new estimate: reaching the goal ends the probe as a success; falling below
 * 90% of where it started ends it as a failure (congestion). */
void hd_probe_on_estimate(hd_probe_t *p, uint64_t estimate_bps, hd_time_t now);
/* Bytes to send now (0 when none); the caller sends about that many. */
uint64_t hd_probe_due(hd_probe_t *p, hd_time_t now);
hd_time_t hd_probe_next_timeout(const hd_probe_t *p);

#endif
