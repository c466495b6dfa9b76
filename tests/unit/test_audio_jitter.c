/* Audio jitter buffer in virtual time: a clean link conceals nothing; 5 %
 * random loss with Opus FEC is mostly recovered (and the tone survives);
 * +-30 ms jitter grows the target and, once converged, nothing is late; DTX
 * pauses are not losses; duplicates, overflow, stream resets, bad config. */
#include "hd_test.h"

#include <math.h>

#include "base/err.h"
#include "media/audio_jitter.h"
#include "media/opus_codec.h"
#include "media/test_signal.h"

#define FS HD_OPUS_FRAME_SAMPLES

static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Packet i is sent at i*20 ms; arrival = send + delay[i]. The schedule is
 * replayed in arrival order against pulls every 20 ms (phase 7 ms). */
typedef struct {
  hd_time_t at;
  int i;
} arrival_t;

static int cmp_arr(const void *a, const void *b) {
  const arrival_t *x = a, *y = b;
  if (x->at != y->at) return x->at < y->at ? -1 : 1;
  return x->i - y->i;
}

typedef struct {
  int kinds[6];
  int late_after; /* late packets after `converge` */
} run_result_t;

static void run(hd_audio_jitter_t *j, int n, const hd_time_t *delay, const uint8_t *lost, hd_time_t converge,
                uint8_t pkts[][HD_OPUS_MAX_PACKET], const int *lens, hd_opus_dec_t *dec, int16_t *pcm_out,
                run_result_t *res) {
  static arrival_t arr[4000];
  int na = 0;
  for (int i = 0; i < n; i++)
    if (!lost[i]) arr[na++] = (arrival_t){HD_MS(20) * i + delay[i], i};
  qsort(arr, (size_t)na, sizeof(arr[0]), cmp_arr);
  memset(res, 0, sizeof(*res));
  int ai = 0, pulls = 0;
  uint8_t dummy[3] = {0x78, 0x01, 0x02};
  /* pull until every packet went in and the buffer ran dry (trailing pulls
   * would only conceal the end of the stream) */
  for (hd_time_t t = HD_MS(7); ai < na || j->n > 0; t += HD_MS(20)) {
    while (ai < na && arr[ai].at <= t) {
      int i = arr[ai].i;
      uint64_t late0 = j->stats.late;
      const uint8_t *p = pkts ? pkts[i] : dummy;
      size_t len = pkts ? (size_t)lens[i] : sizeof(dummy);
      int r = hd_audio_jitter_push(j, (uint16_t)(60000 + i), (uint32_t)(4294000000u + (uint32_t)i * FS), p,
                                   len, arr[ai].at);
      assert_true(r == 0 || r == 1);
      if (j->stats.late > late0 && arr[ai].at >= converge) res->late_after++;
      ai++;
    }
    int kind;
    if (dec) {
      int16_t *o = pcm_out ? pcm_out + (size_t)pulls * FS : NULL;
      int16_t tmp[FS];
      assert_int_equal(hd_audio_jitter_pull_pcm(j, t, dec, o ? o : tmp, FS, &kind), FS);
    } else {
      hd_audio_jitter_out_t out;
      kind = hd_audio_jitter_pull(j, t, &out);
      if (kind == HD_AUDIO_JITTER_PLAY) assert_true(out.data != NULL && out.len > 0);
    }
    assert_true(kind >= 0 && kind <= 4);
    res->kinds[kind]++;
    pulls++;
  }
}

static void test_clean_link(void **state) {
  hd_audio_jitter_t j;
  assert_int_equal(hd_audio_jitter_init(&j, NULL), 0);
  static hd_time_t delay[1000];
  static uint8_t lost[1000];
  for (int i = 0; i < 1000; i++)
    delay[i] = HD_MS(35);
  run_result_t r;
  run(&j, 1000, delay, lost, 0, NULL, NULL, NULL, NULL, &r);
  assert_int_equal(r.kinds[HD_AUDIO_JITTER_PLAY], 1000);
  assert_int_equal(j.stats.concealed_ms, 0);
  assert_int_equal(j.stats.late, 0);
  assert_true(hd_audio_jitter_stall_rate(&j) == 0.0);
  assert_int_equal(hd_audio_jitter_target(&j), HD_MS(20));
  assert_true(j.stats.delay >= HD_MS(20) && j.stats.delay < HD_MS(40));
  hd_audio_jitter_free(&j);
}

static void test_loss_with_fec(void **state) {
  enum { N = 1500 };
  hd_opus_enc_config_t c;
  hd_opus_enc_config_default(&c);
  c.expected_loss = 10;
  hd_opus_enc_t enc;
  hd_opus_dec_t dec;
  assert_int_equal(hd_opus_enc_init(&enc, &c), 0);
  assert_int_equal(hd_opus_dec_init(&dec, 1), 0);
  static uint8_t pkts[N][HD_OPUS_MAX_PACKET];
  static int lens[N];
  hd_tone_t tone;
  hd_tone_init(&tone, 440.0, 8000, HD_OPUS_RATE, 1);
  int16_t pcm[FS];
  for (int i = 0; i < N; i++) {
    hd_tone_fill(&tone, pcm, FS);
    lens[i] = hd_opus_encode(&enc, pcm, pkts[i], HD_OPUS_MAX_PACKET);
    assert_true(lens[i] > 2);
  }
  static hd_time_t delay[N];
  static uint8_t lost[N];
  uint64_t rng = 7;
  int nlost = 0;
  for (int i = 0; i < N; i++) {
    delay[i] = HD_MS(40);
    lost[i] = i > 5 && rng_next(&rng) % 100 < 5;
    nlost += lost[i];
  }
  hd_audio_jitter_t j;
  assert_int_equal(hd_audio_jitter_init(&j, NULL), 0);
  static int16_t out[(N + 40) * FS];
  run_result_t r;
  run(&j, N, delay, lost, 0, pkts, lens, &dec, out, &r);
  printf("fec: lost %d, fec %d, plc %d, concealed %llu ms of %llu, stall %.4f\n", nlost,
         r.kinds[HD_AUDIO_JITTER_FEC], r.kinds[HD_AUDIO_JITTER_PLC], (unsigned long long)j.stats.concealed_ms,
         (unsigned long long)j.stats.played_ms, hd_audio_jitter_stall_rate(&j));
  assert_true(nlost > 50);
  /* an isolated loss is recovered from the next packet's FEC; only runs of
   * losses need PLC */
  assert_true(r.kinds[HD_AUDIO_JITTER_FEC] > nlost * 8 / 10);
  assert_true(r.kinds[HD_AUDIO_JITTER_FEC] + r.kinds[HD_AUDIO_JITTER_PLC] == nlost);
  assert_true(hd_audio_jitter_stall_rate(&j) < 0.01);
  assert_true(j.stats.fec_ms == (uint64_t)r.kinds[HD_AUDIO_JITTER_FEC] * 20);
  /* and the tone came through */
  size_t first = (size_t)(r.kinds[HD_AUDIO_JITTER_EMPTY] + 10) * FS;
  double f = hd_tone_estimate_freq(out + first, (size_t)(N - 20) * FS, 1, HD_OPUS_RATE);
  double amp = hd_goertzel_amplitude(out + first, (size_t)(N - 20) * FS, 1, HD_OPUS_RATE, 440.0);
  printf("tone after loss: %.3f Hz, amplitude %.0f\n", f, amp);
  /* concealed and FEC frames are not phase-exact, so a few crossings go astray */
  assert_true(fabs(f - 440.0) < 6.0);
  assert_true(amp > 6000);
  hd_audio_jitter_free(&j);
  hd_opus_enc_free(&enc);
  hd_opus_dec_free(&dec);
}

static void test_jitter_converges(void **state) {
  enum { N = 3000 }; /* 60 s */
  static hd_time_t delay[N];
  static uint8_t lost[N];
  uint64_t rng = 99;
  for (int i = 0; i < N; i++)
    delay[i] = HD_MS(50) + (hd_time_t)(rng_next(&rng) % 60001) - HD_MS(30);
  hd_audio_jitter_t j;
  assert_int_equal(hd_audio_jitter_init(&j, NULL), 0);
  run_result_t r;
  run(&j, N, delay, lost, HD_SEC(10), NULL, NULL, NULL, NULL, &r);
  printf("jitter: target %lld ms, delay %lld ms, late %llu (after convergence %d), expands %llu, accel %llu, "
         "stall %.4f\n",
         (long long)(j.stats.target_delay / 1000), (long long)(j.stats.delay / 1000),
         (unsigned long long)j.stats.late, r.late_after, (unsigned long long)j.stats.expands,
         (unsigned long long)j.stats.accelerates, hd_audio_jitter_stall_rate(&j));
  assert_int_equal(r.late_after, 0); /* after convergence nothing is late */
  assert_true(j.stats.target_delay >= HD_MS(60) && j.stats.target_delay <= HD_MS(100));
  assert_true(hd_audio_jitter_stall_rate(&j) < 0.02);
  hd_audio_jitter_free(&j);
}

static void test_dtx_and_edges(void **state) {
  hd_audio_jitter_t j;
  assert_int_equal(hd_audio_jitter_init(&j, NULL), 0);
  uint8_t p[3] = {0x78, 1, 2};
  hd_audio_jitter_out_t o;
  assert_int_equal(hd_audio_jitter_pull(&j, 0, &o), HD_AUDIO_JITTER_EMPTY);
  /* seq 10..14 at ts 0..4 frames, then a DTX pause: seq 15 at ts 20 frames */
  for (int i = 0; i < 5; i++)
    assert_int_equal(hd_audio_jitter_push(&j, (uint16_t)(10 + i), (uint32_t)(i * FS), p, 3, HD_MS(20 * i)),
                     0);
  assert_int_equal(hd_audio_jitter_push(&j, 12, 2 * FS, p, 3, HD_MS(50)), 1); /* duplicate */
  assert_int_equal(j.stats.duplicates, 1);
  hd_time_t t = HD_MS(20);
  int kinds[5] = {0};
  for (int k = 0; k < 21; k++, t += HD_MS(20)) {
    if (k == 18) assert_int_equal(hd_audio_jitter_push(&j, 15, 20 * FS, p, 3, HD_MS(400)), 0);
    kinds[hd_audio_jitter_pull(&j, t, &o)]++;
  }
  assert_int_equal(kinds[HD_AUDIO_JITTER_PLAY], 6);
  assert_int_equal(j.stats.concealed_ms, 0); /* the pause was DTX, not loss */
  assert_true(j.stats.cng_ms >= 14 * 20);
  /* a jump of the timestamp far ahead is a new stream */
  assert_int_equal(hd_audio_jitter_push(&j, 16, 20 * FS + 48000 * 30, p, 3, t), 0);
  assert_int_equal(j.stats.resets, 1);
  assert_int_equal(j.started, 0);
  hd_audio_jitter_free(&j);

  /* overflow: the oldest goes */
  hd_audio_jitter_config_t c;
  hd_audio_jitter_config_default(&c);
  c.max_packets = 4;
  assert_int_equal(hd_audio_jitter_init(&j, &c), 0);
  for (int i = 0; i < 6; i++)
    hd_audio_jitter_push(&j, (uint16_t)i, (uint32_t)(i * FS), p, 3, 0);
  assert_int_equal(j.stats.overflow, 2);
  assert_int_equal(j.n, 4);
  assert_int_equal(hd_audio_jitter_push(&j, 0, 0, p, 3, 0), 1); /* older than all: refused */
  assert_int_equal(hd_audio_jitter_push(&j, 9, 9 * FS, p, 0, 0), HD_EINVAL);
  static uint8_t big[HD_AUDIO_JITTER_MAX_PAYLOAD + 1];
  assert_int_equal(hd_audio_jitter_push(&j, 9, 9 * FS, big, sizeof(big), 0), HD_EINVAL);
  hd_audio_jitter_free(&j);
  hd_audio_jitter_free(&j);
  c.max_packets = 1;
  assert_int_equal(hd_audio_jitter_init(&j, &c), HD_EINVAL);
  hd_audio_jitter_config_default(&c);
  c.quantile = 0.2;
  assert_int_equal(hd_audio_jitter_init(&j, &c), HD_EINVAL);
  hd_audio_jitter_config_default(&c);
  c.max_delay = HD_MS(10);
  assert_int_equal(hd_audio_jitter_init(&j, &c), HD_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_clean_link),
      cmocka_unit_test(test_loss_with_fec),
      cmocka_unit_test(test_jitter_converges),
      cmocka_unit_test(test_dtx_and_edges),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
