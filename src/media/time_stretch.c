/* WSOLA-style accelerate / expand by one pitch period; see time_stretch.h. */
#include "media/time_stretch.h"

#include <math.h>
#include <string.h>

#include "base/err.h"

/* Best lag on channel 0: the largest normalised correlation between x[0..L)
 * and x[L..2L) with 2L <= n. Ties go to the shorter lag (a smaller step). */
int hd_tstretch_best_lag(const int16_t *in, int n, int ch, double *corr) {
  int maxl = n / 2 < HD_TSTRETCH_MAX_LAG ? n / 2 : HD_TSTRETCH_MAX_LAG;
  double e = 0;
  for (int i = 0; i < n; i++)
    e += (double)in[(size_t)i * (size_t)ch] * in[(size_t)i * (size_t)ch];
  *corr = 0;
  if (maxl < HD_TSTRETCH_MIN_LAG) return 0;
  if (sqrt(e / n) < HD_TSTRETCH_SILENCE_RMS) {
    *corr = 1.0;
    return maxl; /* near silence: the longest step is inaudible */
  }
  int best = 0;
  double bc = -2;
  for (int l = HD_TSTRETCH_MIN_LAG; l <= maxl; l++) {
    double xy = 0, xx = 0, yy = 0;
    for (int i = 0; i < l; i++) {
      double a = in[(size_t)i * (size_t)ch], b = in[(size_t)(i + l) * (size_t)ch];
      xy += a * b;
      xx += a * a;
      yy += b * b;
    }
    double c = xx > 0 && yy > 0 ? xy / sqrt(xx * yy) : 0;
    if (c > bc + 1e-9) {
      bc = c;
      best = l;
    }
  }
  *corr = bc;
  return best;
}

static int16_t clip(double v) { return (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : lrint(v)); }

/* out[0..l) = fade from a (weight 1 -> 0) into b (0 -> 1), raised-cosine. */
static void xfade(const int16_t *a, const int16_t *b, int l, int ch, int16_t *out) {
  for (int i = 0; i < l; i++) {
    double w = 0.5 + 0.5 * cos(M_PI * (i + 0.5) / l); /* 1 -> 0 */
    for (int c = 0; c < ch; c++) {
      size_t k = (size_t)i * (size_t)ch + (size_t)c;
      out[k] = clip(w * a[k] + (1 - w) * b[k]);
    }
  }
}

static int args_ok(const int16_t *in, int n, int ch, const int16_t *out) {
  return in && out && ch >= 1 && ch <= 8 && n >= 2 * HD_TSTRETCH_MIN_LAG && n <= 1 << 16;
}

int hd_tstretch_accelerate(const int16_t *in, int n, int ch, int16_t *out) {
  if (!args_ok(in, n, ch, out)) return HD_EINVAL;
  double corr;
  int l = hd_tstretch_best_lag(in, n, ch, &corr);
  size_t c = (size_t)ch;
  if (!l || corr < HD_TSTRETCH_MIN_CORR) {
    memcpy(out, in, (size_t)n * c * sizeof *in);
    return n;
  }
  xfade(in, in + (size_t)l * c, l, ch, out);
  memcpy(out + (size_t)l * c, in + (size_t)(2 * l) * c, (size_t)(n - 2 * l) * c * sizeof *in);
  return n - l;
}

int hd_tstretch_expand(const int16_t *in, int n, int ch, int16_t *out) {
  if (!args_ok(in, n, ch, out)) return HD_EINVAL;
  double corr;
  int l = hd_tstretch_best_lag(in, n, ch, &corr);
  size_t c = (size_t)ch;
  if (!l || corr < HD_TSTRETCH_MIN_CORR) {
    memcpy(out, in, (size_t)n * c * sizeof *in);
    return n;
  }
  memcpy(out, in, (size_t)l * c * sizeof *in);
  xfade(in + (size_t)l * c, in, l, ch, out + (size_t)l * c);
  memcpy(out + (size_t)(2 * l) * c, in + (size_t)l * c, (size_t)(n - l) * c * sizeof *in);
  return n + l;
}
