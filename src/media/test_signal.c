/* Test signals for content checks (see test_signal.h). */
#include "media/test_signal.h"

#include <math.h>
#include <string.h>

#include "base/err.h"

#define BLACK 16
#define WHITE 235

/* Cell side in luma pixels; the band is two cells tall so a cell's centre sits
 * well away from both the picture's edge and the moving content below. */
static int cell_side(int w) {
  int c = w / HD_TEST_PATTERN_CELLS;
  return c < 4 ? 4 : c;
}

static int pattern_fits(const hd_i420_t *f) {
  return f && f->plane[0] && f->width >= HD_TEST_PATTERN_MIN_WIDTH && f->width <= HD_I420_MAX_DIM &&
         f->height >= 2 * cell_side(f->width) + 2 && f->height <= HD_I420_MAX_DIM;
}

int hd_test_pattern_draw(hd_i420_t *f, uint32_t counter) {
  if (!pattern_fits(f)) return HD_EINVAL;
  int w = f->width, h = f->height, cell = cell_side(w), band = 2 * cell;
  uint16_t v = (uint16_t)counter;
  /* Background: a sliding sawtooth plus a moving bright square, so successive
   * frames differ as camera video would and the encoder spends bits on motion. */
  int sq = h / 5 < 16 ? 16 : h / 5;
  int sqx = (int)((counter * 7u) % (unsigned)(w - sq > 0 ? w - sq : 1));
  int sqy = band + (int)((counter * 3u) % (unsigned)(h - band - sq > 0 ? h - band - sq : 1));
  for (int y = 0; y < h; y++) {
    uint8_t *row = f->plane[0] + (size_t)y * (size_t)f->stride[0];
    for (int x = 0; x < w; x++) {
      int val;
      if (y < band) {
        int c = x / cell;
        if (c < HD_TEST_PATTERN_CELLS) {
          int bit = c < 16 ? (v >> (15 - c)) & 1 : !((v >> (31 - c)) & 1);
          val = bit ? WHITE : BLACK;
        } else {
          val = 128;
        }
      } else if (x >= sqx && x < sqx + sq && y >= sqy && y < sqy + sq) {
        val = 220;
      } else {
        val = 48 + ((x + y + 3 * (int)(counter & 0xffff)) & 127);
      }
      row[x] = (uint8_t)val;
    }
  }
  int cw = hd_i420_chroma(w), ch = hd_i420_chroma(h), cband = (band + 1) / 2;
  for (int y = 0; y < ch; y++) {
    uint8_t *u = f->plane[1] + (size_t)y * (size_t)f->stride[1];
    uint8_t *vv = f->plane[2] + (size_t)y * (size_t)f->stride[2];
    for (int x = 0; x < cw; x++) {
      if (y < cband) {
        u[x] = vv[x] = 128; /* grey band: the counter lives in luma only */
      } else {
        u[x] = (uint8_t)(112 + ((x + (int)(counter & 0xffff)) & 31));
        vv[x] = (uint8_t)(144 - ((y + (int)(counter & 0xffff)) & 31));
      }
    }
  }
  return 0;
}

int hd_test_pattern_read(const hd_i420_t *f) {
  if (!pattern_fits(f)) return HD_EINVAL;
  int cell = cell_side(f->width), band = 2 * cell;
  int bits[HD_TEST_PATTERN_CELLS];
  /* Average the middle half of each cell: block edges are where compression
   * ringing lives. */
  int x0 = cell / 4, x1 = cell - cell / 4, y0 = band / 4, y1 = band - band / 4;
  for (int c = 0; c < HD_TEST_PATTERN_CELLS; c++) {
    long sum = 0, n = 0;
    for (int y = y0; y < y1; y++) {
      const uint8_t *row = f->plane[0] + (size_t)y * (size_t)f->stride[0];
      for (int x = c * cell + x0; x < c * cell + x1; x++) {
        sum += row[x];
        n++;
      }
    }
    bits[c] = sum > n * ((BLACK + WHITE) / 2);
  }
  int v = 0;
  for (int i = 0; i < 16; i++) {
    if (bits[i] == bits[16 + i]) return HD_EPROTO; /* the complement must differ */
    v = (v << 1) | bits[i];
  }
  return v;
}

int hd_tone_init(hd_tone_t *t, double freq, double amplitude, int rate, int channels) {
  if (!t || rate <= 0 || channels < 1 || channels > 8 || !(freq > 0) || !(freq < rate / 2.0) ||
      !(amplitude >= 0) || amplitude > 32767)
    return HD_EINVAL;
  t->freq = freq;
  t->amplitude = amplitude;
  t->rate = rate;
  t->channels = channels;
  t->phase = 0;
  return 0;
}

void hd_tone_fill(hd_tone_t *t, int16_t *pcm, size_t samples) {
  double step = 2.0 * M_PI * t->freq / t->rate;
  for (size_t i = 0; i < samples; i++) {
    int16_t s = (int16_t)lrint(t->amplitude * sin(t->phase));
    for (int c = 0; c < t->channels; c++)
      pcm[i * (size_t)t->channels + (size_t)c] = s;
    t->phase += step;
    if (t->phase >= 2.0 * M_PI) t->phase -= 2.0 * M_PI; /* keep precision over long runs */
  }
}

double hd_pcm_rms(const int16_t *pcm, size_t samples, int channels) {
  if (!pcm || samples == 0 || channels < 1) return 0.0;
  double acc = 0;
  for (size_t i = 0; i < samples; i++) {
    double s = pcm[i * (size_t)channels];
    acc += s * s;
  }
  return sqrt(acc / (double)samples);
}

double hd_tone_estimate_freq(const int16_t *pcm, size_t samples, int channels, int rate) {
  if (!pcm || samples < 3 || channels < 1 || rate <= 0) return 0.0;
  /* Hysteresis (re-arm only after going clearly negative) so codec noise
   * around zero does not count as extra crossings. */
  double hyst = hd_pcm_rms(pcm, samples, channels) * 0.1;
  if (hyst < 1.0) return 0.0;
  int armed = 0;
  long count = 0;
  double first = 0, last = 0;
  for (size_t i = 1; i < samples; i++) {
    double a = pcm[(i - 1) * (size_t)channels], b = pcm[i * (size_t)channels];
    if (a < -hyst) armed = 1;
    if (armed && a < 0 && b >= 0) {
      double t = (double)(i - 1) + (-a) / (b - a); /* linear interpolation of the crossing */
      if (count == 0) first = t;
      last = t;
      count++;
      armed = 0;
    }
  }
  if (count < 2 || last <= first) return 0.0;
  return (double)(count - 1) * rate / (last - first);
}

double hd_goertzel_amplitude(const int16_t *pcm, size_t samples, int channels, int rate, double freq) {
  if (!pcm || samples == 0 || channels < 1 || rate <= 0) return 0.0;
  double w = 2.0 * M_PI * freq / rate;
  double coeff = 2.0 * cos(w), s1 = 0, s2 = 0;
  for (size_t i = 0; i < samples; i++) {
    double s = pcm[i * (size_t)channels] + coeff * s1 - s2;
    s2 = s1;
    s1 = s;
  }
  double power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  if (power < 0) power = 0;
  return 2.0 * sqrt(power) / (double)samples;
}
