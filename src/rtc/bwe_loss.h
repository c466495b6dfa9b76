/* Loss-based rate control of a send-side bandwidth estimator
 * (draft-ietf-rmcat-gcc-02 §6), applied to the loss in excess of the path's
 * random loss. Per evaluation interval, with p = lost / reported:
 *   excess = p - base - 2 sigma, where base is the loss the path shows
 *            while the delay-based detector sees no over-use (an exponential
 *            average, gain HD_BWE_LOSS_BASE_GAIN per interval, at most
 *            HD_BWE_LOSS_BASE_MAX): random loss on a radio link or a lossy
 *            hop is not a signal to slow down, queue overflow is; and sigma
 *            = sqrt(base (1 - base) / n) is the spread of the loss of an
 *            interval of n packets around that base by chance alone (at 20%
 *            random loss an interval of 20 packets reads anything from 5% to
 *            40%: without the margin, every unlucky interval cut the
 *            estimate by 5-15% and a viewer at 20% random loss, all of it
 *            repaired, was cut down to a pause in 10 s: e2e/simulcast);
 *   excess > 10%:  A = A * (1 - 0.5 * excess)  (at most once per rtt + 300 ms)
 *   excess <  2%:  the loss-based cap steps aside: it follows the
 *                  delay-based estimate up (the draft's A = 1.05 A can never
 *                  exceed it either, as the target is the minimum of both)
 *   otherwise:     A is held.
 * With no random loss (base 0, sigma 0) this is exactly the draft's 2%/10% rule. The
 * cost: behind a policer (loss without queueing delay) the estimator settles
 * at up to base max + 10% loss instead of 10%.
 * A loss interval closes once it holds at least HD_BWE_LOSS_MIN_PKTS
 * packets and HD_BWE_LOSS_MIN_INTERVAL of time, so that a single lost packet
 * out of three does not read as 33% loss. Sans-IO, no allocation. */
#ifndef HD_RTC_BWE_LOSS_H
#define HD_RTC_BWE_LOSS_H
#include <stdint.h>

#include "base/time.h"

#define HD_BWE_LOSS_MIN_PKTS 20
#define HD_BWE_LOSS_MIN_INTERVAL HD_MS(100)
#define HD_BWE_LOSS_STALE HD_SEC(2) /* an open interval older than this is dropped (the sender stopped) */
#define HD_BWE_LOSS_LOW 0.02
#define HD_BWE_LOSS_HIGH 0.10
#define HD_BWE_LOSS_BASE_GAIN 0.1
#define HD_BWE_LOSS_BASE_MAX 0.25

typedef struct {
  double rate_bps;      /* loss-based cap */
  uint32_t lost, total; /* in the open interval */
  hd_time_t interval_start, last_decrease;
  double last_loss;   /* loss fraction of the last closed interval */
  double base;        /* random-loss baseline */
  double last_excess; /* last_loss - base, >= 0 */
  int congested;      /* the open interval saw over-use */
  uint64_t decreases;
} hd_bwe_loss_t;

void hd_bwe_loss_init(hd_bwe_loss_t *l, double start_bps);
/* Accounts feedback: `received` packets reported received, `lost` reported
 * lost; `congested` when the delay-based detector saw over-use with it (the
 * interval then does not teach the random-loss baseline). */
void hd_bwe_loss_on_feedback(hd_bwe_loss_t *l, uint32_t received, uint32_t lost, int congested,
                             hd_time_t now);
/* Closes the interval if it is complete and applies §6. `current_bps` is the
 * estimate in force (min of delay- and loss-based). Returns the loss-based
 * cap in bit/s. */
double hd_bwe_loss_update(hd_bwe_loss_t *l, double delay_bps, double current_bps, hd_time_t rtt,
                          hd_time_t now);

#endif
