/* Freeze detection (W3C freezeCount rule, DESIGN §6) and reconnect backoff
 * (docs/protocol.md "Reconnection") for the SDK client; see client_quality.h. */
#include "client/client_quality.h"

int hd_freeze_frame(hd_freeze_t *f, hd_time_t now) {
  int frozen = 0;
  if (f->last_at) {
    double iv = (double)(now - f->last_at);
    if (iv < 0) iv = 0;
    if (f->intervals >= HD_FREEZE_MIN_INTERVALS) {
      double a = f->avg_us, thr = 3 * a > a + HD_FREEZE_EXTRA_US ? 3 * a : a + HD_FREEZE_EXTRA_US;
      if (iv >= thr) {
        f->freezes++;
        f->freeze_us += iv;
        frozen = 1;
      }
    }
    f->avg_us = f->intervals ? f->avg_us + (iv - f->avg_us) / 30.0 : iv;
    f->intervals++;
  }
  f->last_at = now;
  return frozen;
}

hd_time_t hd_client_backoff(int attempt, uint32_t r) {
  hd_time_t d = HD_BACKOFF_BASE_US;
  for (int i = 1; i < attempt && d < HD_BACKOFF_CAP_US; i++)
    d *= 2;
  if (d > HD_BACKOFF_CAP_US) d = HD_BACKOFF_CAP_US;
  return d / 2 + (hd_time_t)(r % (uint32_t)(d / 2 + 1));
}
