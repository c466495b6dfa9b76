/* Time stretching of decoded PCM by whole pitch periods (WSOLA-style, as
 * NetEQ's accelerate and preemptive expand do): the audio jitter buffer uses
 * it to shrink or grow its playout delay by a few milliseconds at a time
 * without dropping or inventing a frame.
 *
 * Both functions look for the lag L (HD_TSTRETCH_MIN_LAG..HD_TSTRETCH_MAX_LAG
 * samples, 2-10 ms at 48 kHz, i.e. a voice's pitch period or a multiple of it)
 * at which the first 2L samples of the frame are most alike, x[i] ~ x[i+L]
 * (normalised cross-correlation). Where the match is good (>=
 * HD_TSTRETCH_MIN_CORR) or the frame is near silence, they
 *   accelerate: cross-fade x[0..L) into x[L..2L) and drop one period
 *               (n - L samples out);
 *   expand:     play x[0..L), cross-fade x[L..2L) into x[0..L) and go on from
 *               x[L] (n + L samples out: one period repeated).
 * Either way the output starts with x[0] and ends with x[n-1], so it joins the
 * audio before and after it without a step; the cross-fade hides the seam.
 * Interleaved int16, any channel count (one lag for all channels, found on
 * channel 0). Pure functions: no state, no allocation. */
#ifndef HD_MEDIA_TIME_STRETCH_H
#define HD_MEDIA_TIME_STRETCH_H
#include <stddef.h>
#include <stdint.h>

#define HD_TSTRETCH_MIN_LAG 96  /* 2 ms at 48 kHz (500 Hz pitch) */
#define HD_TSTRETCH_MAX_LAG 480 /* 10 ms (100 Hz pitch) */
#define HD_TSTRETCH_MIN_CORR 0.8
#define HD_TSTRETCH_SILENCE_RMS 64.0 /* below this (-54 dBFS) any lag will do */

/* in: n samples per channel (n >= 2 * HD_TSTRETCH_MIN_LAG); out: room for
 * n + HD_TSTRETCH_MAX_LAG samples per channel. Returns the samples per channel
 * written to out (n when the frame has no good period: copied unchanged),
 * HD_EINVAL on bad arguments. */
int hd_tstretch_accelerate(const int16_t *in, int n, int channels, int16_t *out);
int hd_tstretch_expand(const int16_t *in, int n, int channels, int16_t *out);

/* The lag chosen for in (0 if none fits) and its correlation; for tests. */
int hd_tstretch_best_lag(const int16_t *in, int n, int channels, double *corr);

#endif
