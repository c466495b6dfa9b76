/* Test signals whose content survives a lossy codec, for end-to-end checks that
 * what was received is what was sent (and which frame it was).
 *
 * Video: hd_test_pattern_draw fills an I420 picture with moving content (so the
 * encoder works as on real video) and burns a 16-bit frame counter into a band
 * at the top: 32 cells, left to right, the 16 counter bits (MSB first) then
 * their complement, each cell a flat block of black (Y=16) or white (Y=235)
 * whose side is width/32 pixels (>= 4). Blocks that big survive VP8 at low
 * bitrates; the complement half lets the reader tell a damaged band from a
 * wrong number. Needs width >= 128 and height >= 2 * width / 32.
 *
 * Audio: a sine generator with continuous phase across calls, a frequency
 * estimator (rising zero crossings with linear interpolation), Goertzel power
 * at one frequency and RMS level. */
#ifndef HD_MEDIA_TEST_SIGNAL_H
#define HD_MEDIA_TEST_SIGNAL_H
#include <stddef.h>
#include <stdint.h>

#include "media/i420.h"

#define HD_TEST_PATTERN_CELLS 32
#define HD_TEST_PATTERN_MIN_WIDTH 128

/* Draws frame number `counter` (its low 16 bits are burnt in) into f.
 * HD_EINVAL when f is too small. */
int hd_test_pattern_draw(hd_i420_t *f, uint32_t counter);

/* Reads the 16-bit counter back from a (decoded) picture. Returns the counter
 * (0..65535), HD_EPROTO when the band does not decode (complement mismatch),
 * HD_EINVAL when f is too small. */
int hd_test_pattern_read(const hd_i420_t *f);

typedef struct {
  double freq;      /* Hz */
  double amplitude; /* peak, 0..32767 */
  int rate;         /* samples/s */
  int channels;     /* every channel gets the same sample */
  double phase;     /* radians, continues across calls */
} hd_tone_t;

/* HD_EINVAL on rate <= 0, channels not 1..8, freq outside (0, rate/2). */
int hd_tone_init(hd_tone_t *t, double freq, double amplitude, int rate, int channels);
/* Writes `samples` frames (samples * channels interleaved int16). */
void hd_tone_fill(hd_tone_t *t, int16_t *pcm, size_t samples);

/* Estimated frequency in Hz of the first channel of interleaved pcm
 * (`samples` frames). Returns 0.0 when there are fewer than 2 rising zero
 * crossings (silence, DC, or too short). */
double hd_tone_estimate_freq(const int16_t *pcm, size_t samples, int channels, int rate);

/* Goertzel: estimated peak amplitude (sample units) of the `freq` component in
 * channel 0, i.e. 2|X(freq)|/N. A sine of amplitude A at exactly freq gives
 * about A; other frequencies give little (leakage shrinks with N). */
double hd_goertzel_amplitude(const int16_t *pcm, size_t samples, int channels, int rate, double freq);

/* Root mean square of channel 0, in sample units (0..32768). */
double hd_pcm_rms(const int16_t *pcm, size_t samples, int channels);

#endif
