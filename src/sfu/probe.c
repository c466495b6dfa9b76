/* Bandwidth probing for one subscriber (see probe.h). */
#include "sfu/probe.h"

#include <string.h>

void hd_probe_init(hd_probe_t *p) {
  memset(p, 0, sizeof *p);
  p->backoff = HD_PROBE_BACKOFF_MIN;
}

static void finish(hd_probe_t *p, int ok, hd_time_t now) {
  p->active = 0;
  p->credit = 0;
  if (ok) {
    p->succeeded++;
    p->backoff = HD_PROBE_BACKOFF_MIN;
    p->backoff_until = now + HD_PROBE_BACKOFF_MIN / 2;
  } else {
    p->failed++;
    p->backoff_until = now + p->backoff;
    p->backoff = p->backoff * 2 > HD_PROBE_BACKOFF_MAX ? HD_PROBE_BACKOFF_MAX : p->backoff * 2;
  }
}

int hd_probe_want(hd_probe_t *p, uint64_t estimate_bps, uint64_t sending_bps, uint64_t goal_bps,
                  hd_time_t now) {
  if (p->active) {
    if (now >= p->end) finish(p, 0, now); /* the estimate never got there */
    return 0;
  }
  if (now < p->backoff_until || goal_bps <= estimate_bps || estimate_bps == 0) return 0;
  uint64_t cap = estimate_bps * HD_PROBE_MAX_FACTOR;
  uint64_t target = goal_bps + goal_bps / 10; /* a little past the goal: the estimate lags the rate */
  if (target > cap) target = cap;
  if (target <= sending_bps) return 0;
  p->active = 1;
  p->rate_bps = target - sending_bps;
  p->goal_bps = goal_bps;
  p->start_estimate = estimate_bps;
  p->end = now + HD_PROBE_DURATION;
  p->next_tick = now;
  p->credit = 0;
  p->started++;
  return 1;
}

void hd_probe_on_estimate(hd_probe_t *p, uint64_t estimate_bps, hd_time_t now) {
  if (!p->active) return;
  if (estimate_bps >= p->goal_bps)
    finish(p, 1, now);
  else if (estimate_bps * 10 < p->start_estimate * 9)
    finish(p, 0, now);
}

uint64_t hd_probe_due(hd_probe_t *p, hd_time_t now) {
  if (!p->active) return 0;
  if (now >= p->end) {
    finish(p, 0, now);
    return 0;
  }
  if (now < p->next_tick) return 0;
  hd_time_t el = now - p->next_tick + HD_PROBE_TICK;
  if (el > 4 * HD_PROBE_TICK) el = 4 * HD_PROBE_TICK; /* a late timer does not burst */
  p->credit += (double)p->rate_bps * (double)el / 8e6;
  p->next_tick = now + HD_PROBE_TICK;
  uint64_t due = (uint64_t)p->credit;
  p->credit -= (double)due;
  return due;
}

hd_time_t hd_probe_next_timeout(const hd_probe_t *p) {
  if (!p->active) return HD_TIME_NEVER;
  return p->next_tick < p->end ? p->next_tick : p->end;
}
