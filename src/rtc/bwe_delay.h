/* Delay-based congestion detection for a send-side bandwidth estimator
 * (draft-ietf-rmcat-gcc-02 §5), fed with per-packet send and arrival times
 * from transport-wide feedback:
 *  - packets are grouped (§5.2): a group spans at most HD_BWE_BURST_US of
 *    send time; a packet that arrives less than HD_BWE_BURST_US after the
 *    previous one while its inter-group delay variation is negative joins the
 *    current group too (a burst released by a queue upstream);
 *  - the delay variation between consecutive groups, d = (arrival delta) -
 *    (send delta), is accumulated, smoothed and its slope over the last
 *    HD_BWE_TREND_WINDOW groups estimated by least squares (a trendline in
 *    place of §5.3's Kalman filter: the same signal, the queue's growth rate);
 *  - the over-use detector (§5.4) compares the scaled slope with an adaptive
 *    threshold gamma that follows |m| (slowly up, faster down) so that a
 *    competing loss-based flow does not starve this one (§5.4, eq. for
 *    gamma(i)), and signals over-use only when it lasts > 10 ms and grows.
 * Only send/arrival deltas are used, so the two clocks need no common origin.
 * Sans-IO, fixed size, no allocation. */
#ifndef HD_RTC_BWE_DELAY_H
#define HD_RTC_BWE_DELAY_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"

#define HD_BWE_BURST_US 5000   /* packet group span (§5.2 burst_time) */
#define HD_BWE_TREND_WINDOW 20 /* groups in the slope estimate */
#define HD_BWE_START_GROUPS 64 /* groups in the start-up fit (hd_bwe_delay_start_fit) */

typedef enum { HD_BWE_NORMAL = 0, HD_BWE_UNDERUSE = 1, HD_BWE_OVERUSE = 2 } hd_bwe_usage_t;

typedef struct {
  /* group being built and the last complete one */
  int have_cur, have_prev;
  hd_time_t cur_first_send, cur_last_send, cur_first_arr, cur_last_arr;
  hd_time_t prev_last_send, prev_last_arr;
  /* trendline */
  hd_time_t first_arr;
  double acc_ms, smoothed_ms;
  uint32_t n_deltas;
  double xs[HD_BWE_TREND_WINDOW], ys[HD_BWE_TREND_WINDOW];
  size_t n_pts, head;
  double trend, prev_trend;
  /* detector */
  double threshold;   /* gamma, in units of the modified trend */
  hd_time_t thr_last; /* last threshold update (arrival clock); -1 = none */
  double over_ms;     /* time spent above gamma; < 0 = not over */
  int over_count;
  hd_bwe_usage_t usage;
  uint64_t groups; /* complete groups seen */
  /* least-squares sums of the accumulated delay (ms) over arrival time (ms
   * from the first group) of the first HD_BWE_START_GROUPS groups */
  uint32_t st_n;
  double st_sx, st_sy, st_sxx, st_sxy, st_syy, st_last_x;
  double st_max; /* the highest of those groups' accumulated delays (ms) */
} hd_bwe_delay_t;

void hd_bwe_delay_init(hd_bwe_delay_t *d);
/* One packet reported received, in transport-wide sequence (= send) order:
 * its local send time and its arrival on the receiver's clock (µs). Returns
 * the current hypothesis. Packets sent before the current group (reordered
 * reports) are ignored; an arrival gap > 3 s or going backwards resets. */
hd_bwe_usage_t hd_bwe_delay_on_packet(hd_bwe_delay_t *d, hd_time_t send, hd_time_t arrival);
/* The start of the path's delay, for the start-up probe's decision
 * (rtc/bwe.c): a least-squares line through the accumulated delay of the
 * first groups (up to HD_BWE_START_GROUPS, each relative to the very first
 * group); *level = the line at the latest of them (ms), *noise = the
 * standard deviation of the groups around the line (ms: the jitter seen in
 * that same stretch). Returns how many groups the line is over (0-2: no
 * level, no noise). */
uint32_t hd_bwe_delay_start_fit(const hd_bwe_delay_t *d, double *level, double *noise);
/* Current hypothesis, modified trend and threshold (for stats/tests). */
static inline hd_bwe_usage_t hd_bwe_delay_usage(const hd_bwe_delay_t *d) { return d->usage; }

#endif
