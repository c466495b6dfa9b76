/* WSOLA accelerate / expand (media/time_stretch): on a voiced-like signal the
 * step is a whole pitch period, the output joins its neighbours without a
 * jump and keeps its pitch; a frame with no period is left alone; silence
 * takes the longest step. */
#include "hd_test.h"

#include <math.h>

#include "base/err.h"
#include "media/test_signal.h"
#include "media/time_stretch.h"

#define N 960

/* 200 Hz fundamental + 2 harmonics (a voice-like period of 240 samples). */
static void voice(int16_t *x, int n, double phase) {
  for (int i = 0; i < n; i++) {
    double t = (i + phase) / 48000.0;
    x[i] = (int16_t)(6000 * sin(2 * M_PI * 200 * t) + 3000 * sin(2 * M_PI * 400 * t + 0.3) +
                     1500 * sin(2 * M_PI * 600 * t + 1.1));
  }
}

static int max_step(const int16_t *x, int n) {
  int m = 0;
  for (int i = 1; i < n; i++) {
    int d = abs(x[i] - x[i - 1]);
    if (d > m) m = d;
  }
  return m;
}

static void test_accelerate_expand_voice(void **state) {
  (void)state;
  int16_t prev[N], in[N], next[N], out[N + HD_TSTRETCH_MAX_LAG];
  voice(prev, N, 0);
  voice(in, N, N);
  voice(next, N, 2 * N);
  int ref_step = max_step(in, N);
  double c;
  int l = hd_tstretch_best_lag(in, N, 1, &c);
  assert_true(l == 240 || l == 480);
  assert_true(c > 0.99);
  for (int dir = 0; dir < 2; dir++) {
    int m = dir ? hd_tstretch_expand(in, N, 1, out) : hd_tstretch_accelerate(in, N, 1, out);
    assert_int_equal(m, dir ? N + l : N - l);
    /* prev | out | next is continuous: no step larger than the signal's own */
    static int16_t cat[3 * N + HD_TSTRETCH_MAX_LAG];
    memcpy(cat, prev, sizeof prev);
    memcpy(cat + N, out, (size_t)m * sizeof(int16_t));
    memcpy(cat + N + m, next, sizeof next);
    int s = max_step(cat, 2 * N + m);
    printf("%s: lag %d, corr %.4f, max step %d (signal %d)\n", dir ? "expand" : "accelerate", l, c, s,
           ref_step);
    assert_true(s <= ref_step + ref_step / 10);
    /* the pitch survives */
    double f = hd_tone_estimate_freq(cat, (size_t)(2 * N + m), 1, 48000);
    assert_true(fabs(f - 200) < 2);
  }
}

static void test_no_period_and_silence(void **state) {
  (void)state;
  int16_t in[N], out[N + HD_TSTRETCH_MAX_LAG];
  uint64_t r = 12345;
  for (int i = 0; i < N; i++) { /* white noise: nothing repeats */
    r = r * 6364136223846793005ull + 1442695040888963407ull;
    in[i] = (int16_t)((int)(r >> 48) - 32768) / 2;
  }
  assert_int_equal(hd_tstretch_accelerate(in, N, 1, out), N);
  assert_memory_equal(in, out, sizeof in);
  assert_int_equal(hd_tstretch_expand(in, N, 1, out), N);
  memset(in, 0, sizeof in);
  assert_int_equal(hd_tstretch_accelerate(in, N, 1, out), N - HD_TSTRETCH_MAX_LAG);
  assert_int_equal(hd_tstretch_expand(in, N, 1, out), N + HD_TSTRETCH_MAX_LAG);
  /* stereo: one lag for both channels */
  int16_t st[2 * N], so[2 * (N + HD_TSTRETCH_MAX_LAG)], mono[N];
  voice(mono, N, 0);
  for (int i = 0; i < N; i++)
    st[2 * i] = st[2 * i + 1] = mono[i];
  int m = hd_tstretch_accelerate(st, N, 2, so);
  assert_true(m < N);
  for (int i = 0; i < m; i++)
    assert_int_equal(so[2 * i], so[2 * i + 1]);
  assert_int_equal(hd_tstretch_accelerate(in, 100, 1, out), HD_EINVAL);
  assert_int_equal(hd_tstretch_expand(NULL, N, 1, out), HD_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_accelerate_expand_voice),
      cmocka_unit_test(test_no_period_and_silence),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
