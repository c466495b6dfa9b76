/* Loss-based control (draft-ietf-rmcat-gcc-02 §6) on the loss in excess of
 * the path's random loss. See bwe_loss.h. */
#include "rtc/bwe_loss.h"

#include <math.h>
#include <string.h>

void hd_bwe_loss_init(hd_bwe_loss_t *l, double start_bps) {
  memset(l, 0, sizeof *l);
  l->rate_bps = start_bps;
  l->interval_start = -1;
  l->last_decrease = -HD_SEC(1000);
}

void hd_bwe_loss_on_feedback(hd_bwe_loss_t *l, uint32_t received, uint32_t lost, int congested,
                             hd_time_t now) {
  if (l->interval_start < 0) l->interval_start = now;
  if (now - l->interval_start > HD_BWE_LOSS_STALE) {
    /* an interval this old never filled up: the sender all but stopped (a
     * paused subscriber). Its losses, and the verdict of the last interval,
     * describe the path as it was, not as it is: start afresh, or they cut
     * the estimate again when the first probes complete the interval */
    l->lost = l->total = 0;
    l->congested = 0;
    l->last_excess = 0;
    l->interval_start = now;
  }
  if (congested) l->congested = 1;
  l->lost += lost;
  l->total += received + lost;
}

double hd_bwe_loss_update(hd_bwe_loss_t *l, double delay_bps, double current_bps, hd_time_t rtt,
                          hd_time_t now) {
  if (l->interval_start < 0 || l->total < HD_BWE_LOSS_MIN_PKTS ||
      now - l->interval_start < HD_BWE_LOSS_MIN_INTERVAL) {
    if (l->last_excess < HD_BWE_LOSS_LOW && l->rate_bps < delay_bps) l->rate_bps = delay_bps;
    return l->rate_bps;
  }
  double p = (double)l->lost / (double)l->total;
  if (!l->congested) {
    l->base += HD_BWE_LOSS_BASE_GAIN * (p - l->base);
    if (l->base > HD_BWE_LOSS_BASE_MAX) l->base = HD_BWE_LOSS_BASE_MAX;
  }
  l->last_loss = p;
  /* what the base loss alone gives an interval of this size by chance
   * (binomial, two standard deviations) is not excess either */
  p -= l->base + 2 * sqrt(l->base * (1 - l->base) / (double)l->total);
  if (p < 0) p = 0;
  l->last_excess = p;
  l->lost = l->total = 0;
  l->congested = 0;
  l->interval_start = now;
  if (p > HD_BWE_LOSS_HIGH) {
    /* §6: decrease, but not again before the previous one could take effect */
    if (now - l->last_decrease >= rtt + HD_MS(300)) {
      l->rate_bps = current_bps * (1 - 0.5 * p);
      l->last_decrease = now;
      l->decreases++;
    }
  } else if (p < HD_BWE_LOSS_LOW) {
    /* §6 increase: with losses gone the cap never holds back the
     * delay-based estimate (which does the probing for capacity) */
    if (l->rate_bps < delay_bps) l->rate_bps = delay_bps;
  }
  return l->rate_bps;
}
