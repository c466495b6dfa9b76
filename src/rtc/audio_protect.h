/* How much to protect a published Opus stream, from the receiver's reports
 * (sans-IO policy; the SDK applies it to its encoder and RED packetizer).
 *
 * The report (RTCP RR fraction lost, RFC 3550 §6.4.1) covers the publisher's
 * leg to the node only; the viewer's leg loses as well, so the plan is for the
 * two legs together, pe = 1 - (1 - p)^2:
 * - Opus in-band FEC's expected loss (OPUS_SET_PACKET_LOSS_PERC) = pe in
 *   percent, clamped to 2..50 (LBRR stays on: it is cheap and covers the first
 *   loss);
 * - RED depth (redundant frames per packet, RFC 2198): the smallest d with
 *   pe^(d+1) < 1 %, at least 2 once any loss (> 0.5 %) is reported, at most
 *   HD_AUDIO_PROTECT_MAX_DEPTH;
 * - from depth 3 the Opus bitrate is lowered so that all copies stay within
 *   4x the configured bitrate (at least HD_AUDIO_PROTECT_MIN_BPS): on a path
 *   that loses most packets, continuous audio at a lower fidelity beats gaps.
 * Loss is followed up at once and down slowly (0.8 / 0.2 average per report). */
#ifndef HD_RTC_AUDIO_PROTECT_H
#define HD_RTC_AUDIO_PROTECT_H
#include <stdint.h>

#define HD_AUDIO_PROTECT_MAX_DEPTH 9 /* + the primary = 10 RED blocks (<= HD_RED_MAX_BLOCKS) */
#define HD_AUDIO_PROTECT_MIN_BPS 12000
#define HD_AUDIO_PROTECT_START_DEPTH 4 /* before the first report (~1-2 s): as for ~30 % loss */
#define HD_AUDIO_PROTECT_START_LOSS_PCT 10

typedef struct {
  double loss;      /* smoothed fraction lost */
  int red_depth;    /* redundant frames per packet */
  int fec_loss_pct; /* expected loss for the encoder */
  uint64_t bps;     /* Opus bitrate */
} hd_audio_protect_t;

/* Starting plan for a stream configured at base_bps. */
void hd_audio_protect_init(hd_audio_protect_t *p, uint64_t base_bps);

/* One receiver report's fraction lost (0..1; < 0 = no report: nothing
 * changes). Returns 1 if the plan changed, 0 if not. */
int hd_audio_protect_report(hd_audio_protect_t *p, double fraction_lost, uint64_t base_bps);

#endif
