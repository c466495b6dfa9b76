/* Loss-based rate control of a send-side bandwidth estimator
 * (draft-ietf-rmcat-gcc-02 §6): the fraction of packets the receiver
 * reported lost over the last evaluation interval decides
 *   loss > 10%:  A = A * (1 - 0.5 * loss)   (at most once per rtt + 300 ms)
 *   loss <  2%:  the loss-based cap steps aside: it follows the
 *                delay-based estimate up (the draft's A = 1.05 A can never
 *                exceed it either, as the target is the minimum of both)
 *   otherwise:   A is held.
 * A loss interval closes once it holds at least HD_BWE_LOSS_MIN_PKTS
 * packets and HD_BWE_LOSS_MIN_INTERVAL of time, so that a single lost packet
 * out of three does not read as 33% loss. Sans-IO, no allocation. */
#ifndef HD_RTC_BWE_LOSS_H
#define HD_RTC_BWE_LOSS_H
#include <stdint.h>

#include "base/time.h"

#define HD_BWE_LOSS_MIN_PKTS 20
#define HD_BWE_LOSS_MIN_INTERVAL HD_MS(100)
#define HD_BWE_LOSS_LOW 0.02
#define HD_BWE_LOSS_HIGH 0.10

typedef struct {
  double rate_bps;      /* loss-based cap */
  uint32_t lost, total; /* in the open interval */
  hd_time_t interval_start, last_decrease;
  double last_loss; /* loss fraction of the last closed interval */
  uint64_t decreases;
} hd_bwe_loss_t;

void hd_bwe_loss_init(hd_bwe_loss_t *l, double start_bps);
/* Accounts feedback: `received` packets reported received, `lost` reported
 * lost. */
void hd_bwe_loss_on_feedback(hd_bwe_loss_t *l, uint32_t received, uint32_t lost, hd_time_t now);
/* Closes the interval if it is complete and applies §6. `current_bps` is the
 * estimate in force (min of delay- and loss-based). Returns the loss-based
 * cap in bit/s. */
double hd_bwe_loss_update(hd_bwe_loss_t *l, double delay_bps, double current_bps, hd_time_t rtt,
                          hd_time_t now);

#endif
