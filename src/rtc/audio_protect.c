/* Audio protection plan from receiver reports; see audio_protect.h. */
#include "rtc/audio_protect.h"

#include <string.h>

/* From depth 3, all copies together within 4x the configured bitrate. */
static uint64_t opus_bps(int depth, uint64_t base_bps) {
  uint64_t bps = depth >= 3 ? base_bps * 4 / (uint64_t)(depth + 1) : base_bps;
  if (bps > base_bps) bps = base_bps;
  if (bps < HD_AUDIO_PROTECT_MIN_BPS) bps = HD_AUDIO_PROTECT_MIN_BPS;
  return bps;
}

void hd_audio_protect_init(hd_audio_protect_t *p, uint64_t base_bps) {
  memset(p, 0, sizeof *p);
  p->red_depth = HD_AUDIO_PROTECT_START_DEPTH;
  p->fec_loss_pct = HD_AUDIO_PROTECT_START_LOSS_PCT;
  p->bps = opus_bps(p->red_depth, base_bps);
}

int hd_audio_protect_report(hd_audio_protect_t *p, double fraction_lost, uint64_t base_bps) {
  if (!p || !(fraction_lost >= 0)) return 0;
  if (fraction_lost > 1) fraction_lost = 1;
  hd_audio_protect_t old = *p;
  p->loss = fraction_lost > p->loss ? fraction_lost : 0.8 * p->loss + 0.2 * fraction_lost;
  double pe = 1 - (1 - p->loss) * (1 - p->loss), all = pe * pe;
  int d = 1;
  while (d < HD_AUDIO_PROTECT_MAX_DEPTH && all >= 0.01) {
    d++;
    all *= pe;
  }
  if (p->loss > 0.005 && d < 2) d = 2;
  p->red_depth = d;
  int pct = (int)(pe * 100 + 0.5);
  p->fec_loss_pct = pct < 2 ? 2 : pct > 50 ? 50 : pct;
  p->bps = opus_bps(d, base_bps);
  return p->red_depth != old.red_depth || p->fec_loss_pct != old.fec_loss_pct || p->bps != old.bps;
}
