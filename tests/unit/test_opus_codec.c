/* Opus wrapper: a tone survives encode/decode, PLC and FEC produce a frame of
 * audio, DTX shrinks silence, runtime controls and error paths. */
#include "hd_test.h"

#include <math.h>

#include "base/err.h"
#include "media/opus_codec.h"
#include "media/test_signal.h"

#define N HD_OPUS_FRAME_SAMPLES

static void encode_tone(hd_opus_enc_t *e, hd_tone_t *t, int frames, uint8_t pkts[][HD_OPUS_MAX_PACKET],
                        int *lens) {
  int16_t pcm[N * 2];
  for (int i = 0; i < frames; i++) {
    hd_tone_fill(t, pcm, N);
    lens[i] = hd_opus_encode(e, pcm, pkts[i], HD_OPUS_MAX_PACKET);
    assert_true(lens[i] > HD_OPUS_DTX_MAX_BYTES);
  }
}

static void test_tone_roundtrip(void **state) {
  for (int ch = 1; ch <= 2; ch++) {
    hd_opus_enc_config_t c;
    hd_opus_enc_config_default(&c);
    c.channels = ch;
    c.bitrate = 48000;
    hd_opus_enc_t e;
    hd_opus_dec_t d;
    assert_int_equal(hd_opus_enc_init(&e, &c), 0);
    assert_int_equal(hd_opus_dec_init(&d, ch), 0);
    hd_tone_t t;
    assert_int_equal(hd_tone_init(&t, 440.0, 10000, HD_OPUS_RATE, ch), 0);
    static uint8_t pkts[50][HD_OPUS_MAX_PACKET];
    int lens[50];
    encode_tone(&e, &t, 50, pkts, lens);
    static int16_t out[50 * N * 2];
    size_t total = 0;
    for (int i = 0; i < 50; i++) {
      int n = hd_opus_decode(&d, pkts[i], (size_t)lens[i], out + total * (size_t)ch, N);
      assert_int_equal(n, N);
      total += (size_t)n;
    }
    /* Skip the first 200 ms (codec warm-up and look-ahead delay). */
    size_t skip = 10 * N;
    double f = hd_tone_estimate_freq(out + skip * (size_t)ch, total - skip, ch, HD_OPUS_RATE);
    assert_true(fabs(f - 440.0) < 2.0);
    double amp = hd_goertzel_amplitude(out + skip * (size_t)ch, total - skip, ch, HD_OPUS_RATE, 440.0);
    assert_true(amp > 7000 && amp < 13000);
    /* a far-away frequency is absent */
    assert_true(hd_goertzel_amplitude(out + skip * (size_t)ch, total - skip, ch, HD_OPUS_RATE, 3000.0) < 500);
    hd_opus_enc_free(&e);
    hd_opus_dec_free(&d);
    hd_opus_enc_free(&e); /* idempotent */
  }
}

static void test_plc_and_fec(void **state) {
  hd_opus_enc_config_t c;
  hd_opus_enc_config_default(&c);
  c.expected_loss = 20;
  c.bitrate = 32000;
  hd_opus_enc_t e;
  hd_opus_dec_t d;
  assert_int_equal(hd_opus_enc_init(&e, &c), 0);
  assert_int_equal(hd_opus_dec_init(&d, 1), 0);
  hd_tone_t t;
  hd_tone_init(&t, 300.0, 8000, HD_OPUS_RATE, 1);
  static uint8_t pkts[40][HD_OPUS_MAX_PACKET];
  int lens[40];
  encode_tone(&e, &t, 40, pkts, lens);
  int16_t pcm[N];
  for (int i = 0; i < 20; i++)
    assert_int_equal(hd_opus_decode(&d, pkts[i], (size_t)lens[i], pcm, N), N);
  /* packet 20 lost: PLC gives exactly one frame, and it is not silence */
  assert_int_equal(hd_opus_decode_plc(&d, pcm, N), N);
  assert_true(hd_pcm_rms(pcm, N, 1) > 100);
  assert_int_equal(hd_opus_decode(&d, pkts[21], (size_t)lens[21], pcm, N), N);
  /* packet 25 lost: recover it from 26's FEC, the tone continues */
  for (int i = 22; i < 25; i++)
    assert_int_equal(hd_opus_decode(&d, pkts[i], (size_t)lens[i], pcm, N), N);
  assert_int_equal(hd_opus_decode_fec(&d, pkts[26], (size_t)lens[26], pcm, N), N);
  double f = hd_tone_estimate_freq(pcm, N, 1, HD_OPUS_RATE);
  assert_true(fabs(f - 300.0) < 10.0);
  assert_true(hd_pcm_rms(pcm, N, 1) > 2000);
  assert_int_equal(hd_opus_decode(&d, pkts[26], (size_t)lens[26], pcm, N), N);
  /* FEC really carries the lost frame: against a decoder that got packet 25,
   * the FEC reconstruction is closer than PLC's guess. Tone changes at frame
   * 25 so PLC (which extrapolates) cannot just continue it. */
  {
    hd_opus_enc_t e2;
    assert_int_equal(hd_opus_enc_init(&e2, &c), 0);
    hd_tone_t t2;
    hd_tone_init(&t2, 300.0, 8000, HD_OPUS_RATE, 1);
    static uint8_t p2[30][HD_OPUS_MAX_PACKET];
    int l2[30];
    int16_t in[N];
    for (int i = 0; i < 30; i++) {
      if (i == 25) hd_tone_init(&t2, 700.0, 8000, HD_OPUS_RATE, 1);
      hd_tone_fill(&t2, in, N);
      l2[i] = hd_opus_encode(&e2, in, p2[i], HD_OPUS_MAX_PACKET);
      assert_true(l2[i] > 2);
    }
    hd_opus_dec_t dr, df, dp;
    hd_opus_dec_init(&dr, 1);
    hd_opus_dec_init(&df, 1);
    hd_opus_dec_init(&dp, 1);
    int16_t ref[N], fec[N], plc[N];
    for (int i = 0; i < 25; i++) {
      hd_opus_decode(&dr, p2[i], (size_t)l2[i], ref, N);
      hd_opus_decode(&df, p2[i], (size_t)l2[i], fec, N);
      hd_opus_decode(&dp, p2[i], (size_t)l2[i], plc, N);
    }
    assert_int_equal(hd_opus_decode(&dr, p2[25], (size_t)l2[25], ref, N), N);
    assert_int_equal(hd_opus_decode_fec(&df, p2[26], (size_t)l2[26], fec, N), N);
    assert_int_equal(hd_opus_decode_plc(&dp, plc, N), N);
    double se_fec = 0, se_plc = 0;
    for (int k = 0; k < N; k++) {
      se_fec += (double)(fec[k] - ref[k]) * (fec[k] - ref[k]);
      se_plc += (double)(plc[k] - ref[k]) * (plc[k] - ref[k]);
    }
    assert_true(se_fec < se_plc / 2);
    hd_opus_dec_free(&dr);
    hd_opus_dec_free(&df);
    hd_opus_dec_free(&dp);
    hd_opus_enc_free(&e2);
  }
  /* bad lengths */
  assert_int_equal(hd_opus_decode_plc(&d, pcm, 100), HD_EINVAL);
  assert_int_equal(hd_opus_decode_plc(&d, pcm, 0), HD_EINVAL);
  assert_int_equal(hd_opus_decode(&d, pkts[27], (size_t)lens[27], pcm, N / 2), HD_ENOSPC);
  hd_opus_enc_free(&e);
  hd_opus_dec_free(&d);
}

static void test_dtx(void **state) {
  hd_opus_enc_config_t c;
  hd_opus_enc_config_default(&c);
  c.dtx = 1;
  hd_opus_enc_t e;
  assert_int_equal(hd_opus_enc_init(&e, &c), 0);
  int16_t pcm[N] = {0};
  uint8_t pkt[HD_OPUS_MAX_PACKET];
  int small = 0, total = 0;
  for (int i = 0; i < 50; i++) {
    int n = hd_opus_encode(&e, pcm, pkt, sizeof(pkt));
    assert_true(n > 0);
    if (n <= HD_OPUS_DTX_MAX_BYTES) small++;
    total += n;
  }
  assert_true(small > 30); /* after a short hangover, silence is DTX */
  assert_true(total < 50 * 20);
  /* DTX off: silence still produces a (small but) real packet every frame */
  assert_int_equal(hd_opus_enc_set_dtx(&e, 0), 0);
  int n = 0;
  for (int i = 0; i < 5; i++)
    n = hd_opus_encode(&e, pcm, pkt, sizeof(pkt));
  assert_true(n > HD_OPUS_DTX_MAX_BYTES);
  hd_opus_enc_free(&e);
}

static void test_bitrate_and_errors(void **state) {
  hd_opus_enc_config_t c;
  hd_opus_enc_config_default(&c);
  hd_opus_enc_t e;
  c.channels = 3;
  assert_int_equal(hd_opus_enc_init(&e, &c), HD_EINVAL);
  c.channels = 1;
  c.bitrate = 100;
  assert_int_equal(hd_opus_enc_init(&e, &c), HD_EINVAL);
  c.bitrate = 16000;
  assert_int_equal(hd_opus_enc_init(&e, &c), 0);
  assert_int_equal(hd_opus_enc_get_bitrate(&e), 16000);
  hd_tone_t t;
  hd_tone_init(&t, 1000.0, 12000, HD_OPUS_RATE, 1);
  int16_t pcm[N];
  uint8_t pkt[HD_OPUS_MAX_PACKET];
  int lo = 0, hi = 0;
  for (int i = 0; i < 25; i++) {
    hd_tone_fill(&t, pcm, N);
    lo += hd_opus_encode(&e, pcm, pkt, sizeof(pkt));
  }
  assert_int_equal(hd_opus_enc_set_bitrate(&e, 96000), 0);
  assert_int_equal(hd_opus_enc_get_bitrate(&e), 96000);
  for (int i = 0; i < 25; i++) {
    hd_tone_fill(&t, pcm, N);
    hi += hd_opus_encode(&e, pcm, pkt, sizeof(pkt));
  }
  assert_true(hi > 3 * lo); /* the new bitrate took effect */
  assert_int_equal(hd_opus_enc_set_bitrate(&e, 5), HD_EINVAL);
  assert_int_equal(hd_opus_enc_set_fec(&e, 1, 101), HD_EINVAL);
  assert_int_equal(hd_opus_enc_set_fec(&e, 1, 30), 0);
  assert_int_equal(hd_opus_encode(&e, pcm, pkt, 0), HD_EINVAL);
  hd_opus_enc_free(&e);
  assert_int_equal(hd_opus_enc_set_bitrate(&e, 32000), HD_EINVAL);

  hd_opus_dec_t d;
  assert_int_equal(hd_opus_dec_init(&d, 0), HD_EINVAL);
  assert_int_equal(hd_opus_dec_init(&d, 1), 0);
  /* TOC code 3 with a frame count of 0 is invalid (RFC 6716 §3.2.5) */
  uint8_t bad[] = {0x03, 0x00};
  assert_int_equal(hd_opus_decode(&d, bad, sizeof(bad), pcm, N), HD_EPROTO);
  assert_int_equal(hd_opus_packet_samples(bad, 0), HD_ETRUNC);
  uint8_t toc20[] = {0x78 | 0x00, 0x01}; /* config 15: hybrid FB 20 ms, code 0 */
  assert_int_equal(hd_opus_packet_samples(toc20, sizeof(toc20)), 960);
  hd_opus_dec_free(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tone_roundtrip),
      cmocka_unit_test(test_plc_and_fec),
      cmocka_unit_test(test_dtx),
      cmocka_unit_test(test_bitrate_and_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
