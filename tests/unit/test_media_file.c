/* File formats: WAV/Y4M/IVF round trips (a tone, test-pattern pictures, real
 * VP8 frames), header variants real tools write, and malformed input. */
#include "hd_test.h"

#include <math.h>

#include "base/err.h"
#include "media/media_file.h"
#include "media/test_signal.h"
#include "media/vp8_codec.h"

static void test_wav_roundtrip(void **state) {
  enum { N = 4800 };
  static uint8_t file[HD_WAV_HEADER_LEN + N * 4];
  assert_int_equal(hd_wav_header_write(file, sizeof(file), 48000, 2, N * 4), 44);
  hd_tone_t t;
  hd_tone_init(&t, 1000.0, 9000, 48000, 2);
  static int16_t pcm[N * 2];
  hd_tone_fill(&t, pcm, N);
  for (int i = 0; i < N * 2; i++) {
    file[44 + 2 * i] = (uint8_t)pcm[i];
    file[44 + 2 * i + 1] = (uint8_t)((uint16_t)pcm[i] >> 8);
  }
  hd_wav_info_t w;
  assert_int_equal(hd_wav_parse(file, sizeof(file), &w), 0);
  assert_int_equal(w.rate, 48000);
  assert_int_equal(w.channels, 2);
  assert_int_equal(w.data_off, 44);
  assert_int_equal(w.data_len, N * 4);
  static int16_t back[N * 2];
  for (int i = 0; i < N * 2; i++)
    back[i] = (int16_t)(file[w.data_off + 2 * i] | (file[w.data_off + 2 * i + 1] << 8));
  assert_memory_equal(back, pcm, sizeof(pcm));
  assert_true(fabs(hd_tone_estimate_freq(back, N, 2, 48000) - 1000.0) < 0.1);
  /* a file still being written: the declared size is clipped to what is there,
   * to whole sample frames */
  assert_int_equal(hd_wav_parse(file, 44 + 103, &w), 0);
  assert_int_equal(w.data_len, 100);
  assert_int_equal(w.data_declared, N * 4);
  /* the header alone is fine, shorter is not */
  assert_int_equal(hd_wav_parse(file, 44, &w), 0);
  assert_int_equal(w.data_len, 0);
  assert_int_equal(hd_wav_parse(file, 40, &w), HD_ETRUNC); /* data chunk header cut */
  assert_int_equal(hd_wav_parse(file, 30, &w), HD_ETRUNC);
  assert_int_equal(hd_wav_parse(file, 8, &w), HD_ETRUNC);
  assert_int_equal(hd_wav_header_write(file, 43, 48000, 1, 0), HD_ENOSPC);
  assert_int_equal(hd_wav_header_write(file, 44, 0, 1, 0), HD_EINVAL);
  assert_int_equal(hd_wav_header_write(file, 44, 48000, 9, 0), HD_EINVAL);
}

static void test_wav_variants(void **state) {
  /* RIFF, WAVE, a LIST chunk of odd length (padded), WAVE_FORMAT_EXTENSIBLE
   * fmt with the PCM subformat, mono 16 kHz, data with 0xFFFFFFFF size. */
  uint8_t f[200];
  size_t o = 0;
#define B(s, n) (memcpy(f + o, s, n), o += n)
  B("RIFF\x00\x00\x00\x00WAVE", 12);
  B("LIST\x03\x00\x00\x00"
    "abc\x00",
    12);
  B("fmt \x28\x00\x00\x00", 8);
  B("\xfe\xff\x01\x00\x80\x3e\x00\x00\x00\x7d\x00\x00\x02\x00\x10\x00", 16);
  B("\x16\x00\x10\x00\x04\x00\x00\x00\x01\x00\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71", 24);
  B("data\xff\xff\xff\xff", 8);
  B("\x01\x00\x02\x00\x03", 5);
#undef B
  hd_wav_info_t w;
  assert_int_equal(hd_wav_parse(f, o, &w), 0);
  assert_int_equal(w.rate, 16000);
  assert_int_equal(w.channels, 1);
  assert_int_equal(w.data_len, 4);
  assert_int_equal(w.data_off, o - 5);
  /* 8-bit PCM and float are not ours */
  uint8_t g[44];
  hd_wav_header_write(g, sizeof(g), 8000, 1, 0);
  g[34] = 8;
  assert_int_equal(hd_wav_parse(g, sizeof(g), &w), HD_EUNSUPPORTED);
  hd_wav_header_write(g, sizeof(g), 8000, 1, 0);
  g[20] = 3;
  assert_int_equal(hd_wav_parse(g, sizeof(g), &w), HD_EUNSUPPORTED);
  hd_wav_header_write(g, sizeof(g), 8000, 1, 0);
  g[32] = 4; /* block align disagrees with channels */
  assert_int_equal(hd_wav_parse(g, sizeof(g), &w), HD_EPROTO);
  hd_wav_header_write(g, sizeof(g), 8000, 1, 0);
  memcpy(g + 8, "AVI ", 4);
  assert_int_equal(hd_wav_parse(g, sizeof(g), &w), HD_EPROTO);
  /* data before fmt */
  uint8_t h[] = "RIFF\0\0\0\0WAVEdata\0\0\0\0";
  assert_int_equal(hd_wav_parse(h, sizeof(h) - 1, &w), HD_EPROTO);
  /* a chunk claiming more than the file holds */
  hd_wav_header_write(g, sizeof(g), 8000, 1, 0);
  g[16] = 0xf0;
  assert_int_equal(hd_wav_parse(g, sizeof(g), &w), HD_ETRUNC);
}

static void test_y4m_roundtrip(void **state) {
  enum { W = 176, H = 144 };
  static uint8_t file[HD_Y4M_HEADER_MAX + 3 * (6 + W * H * 3 / 2)];
  int n = hd_y4m_header_write((char *)file, sizeof(file), W, H, 30000, 1001);
  assert_true(n > 0);
  assert_int_equal(memcmp(file, "YUV4MPEG2 W176 H144 F30000:1001", 31), 0);
  size_t len = (size_t)n;
  hd_i420_t pic;
  assert_int_equal(hd_i420_alloc(&pic, W, H), 0);
  for (int i = 0; i < 3; i++) {
    hd_test_pattern_draw(&pic, (uint32_t)(100 + i));
    int m = hd_y4m_frame_write(&pic, file + len, sizeof(file) - len);
    assert_int_equal(m, 6 + W * H * 3 / 2);
    len += (size_t)m;
  }
  hd_y4m_info_t y;
  assert_int_equal(hd_y4m_parse_header(file, len, &y), 0);
  assert_int_equal(y.width, W);
  assert_int_equal(y.height, H);
  assert_int_equal(y.fps_num, 30000);
  assert_int_equal(y.fps_den, 1001);
  assert_int_equal(y.header_len, (size_t)n);
  size_t off = y.header_len;
  for (int i = 0; i < 3; i++) {
    hd_i420_t f;
    int m = hd_y4m_parse_frame(file + off, len - off, &y, &f);
    assert_int_equal(m, 6 + W * H * 3 / 2);
    assert_int_equal(hd_test_pattern_read(&f), 100 + i);
    off += (size_t)m;
  }
  assert_int_equal(off, len);
  hd_i420_t f;
  assert_int_equal(hd_y4m_parse_frame(file + off, 0, &y, &f), HD_ETRUNC);
  assert_int_equal(hd_y4m_parse_frame(file + y.header_len, 100, &y, &f), HD_ETRUNC);
  assert_int_equal(hd_y4m_parse_frame(file + y.header_len + 1, 100, &y, &f), HD_EPROTO);
  assert_int_equal(hd_y4m_frame_write(&pic, file, 100), HD_ENOSPC);
  assert_int_equal(hd_y4m_header_write((char *)file, 10, W, H, 30, 1), HD_ENOSPC);
  hd_i420_free(&pic);
}

static void test_y4m_headers(void **state) {
  hd_y4m_info_t y;
  const char *ok[] = {"YUV4MPEG2 W2 H2\n", "YUV4MPEG2 W640 H360 F25:1 It A0:0 C420mpeg2 XYSCSS=420MPEG2\n",
                      "YUV4MPEG2  H3 W5 C420paldv\n"};
  for (int i = 0; i < 3; i++)
    assert_int_equal(hd_y4m_parse_header((const uint8_t *)ok[i], strlen(ok[i]), &y), 0);
  assert_int_equal(y.width, 5);
  assert_int_equal(y.frame_size, 15 + 2 * 3 * 2);
  assert_int_equal(y.fps_num, 30);
  const char *unsup[] = {"YUV4MPEG2 W2 H2 C444\n", "YUV4MPEG2 W2 H2 Im\n", "YUV4MPEG2 W2 H2 Cmono\n"};
  for (int i = 0; i < 3; i++)
    assert_int_equal(hd_y4m_parse_header((const uint8_t *)unsup[i], strlen(unsup[i]), &y), HD_EUNSUPPORTED);
  const char *bad[] = {"YUV4MPEG W2 H2\n",      "YUV4MPEG2 H2\n",         "YUV4MPEG2 W0 H2\n",
                       "YUV4MPEG2 W2 H2 F30\n", "YUV4MPEG2 W2 H2 F0:1\n", "YUV4MPEG2 W99999 H2\n",
                       "YUV4MPEG2 W-2 H2\n",    "YUV4MPEG2W2 H2\n"};
  for (int i = 0; i < 8; i++)
    assert_int_equal(hd_y4m_parse_header((const uint8_t *)bad[i], strlen(bad[i]), &y), HD_EPROTO);
  assert_int_equal(hd_y4m_parse_header((const uint8_t *)"YUV4MPEG2 W2", 12, &y), HD_ETRUNC);
  static uint8_t longline[HD_Y4M_HEADER_MAX + 10];
  memset(longline, ' ', sizeof(longline));
  memcpy(longline, "YUV4MPEG2", 9);
  assert_int_equal(hd_y4m_parse_header(longline, sizeof(longline), &y), HD_EPROTO);
}

static void test_ivf_roundtrip(void **state) {
  hd_vp8_enc_config_t c;
  hd_vp8_enc_config_default(&c);
  c.width = 160 * 2;
  c.height = 90 * 2;
  hd_vp8_enc_t e;
  assert_int_equal(hd_vp8_enc_init(&e, &c), 0);
  hd_i420_t pic;
  assert_int_equal(hd_i420_alloc(&pic, c.width, c.height), 0);
  static uint8_t file[512 * 1024];
  assert_int_equal(hd_ivf_header_write(file, sizeof(file), c.width, c.height, 30, 1, 5), 32);
  size_t len = 32;
  for (int i = 0; i < 5; i++) {
    hd_test_pattern_draw(&pic, (uint32_t)(7 * i));
    int key;
    int n = hd_vp8_encode(&e, &pic, i, file + len + 12, sizeof(file) - len - 12, &key);
    assert_true(n > 0);
    assert_int_equal(
        hd_ivf_frame_header_write(file + len, 12, (uint32_t)n, (uint64_t)i * 3000 + (1ull << 33)), 12);
    len += 12 + (size_t)n;
  }
  hd_ivf_info_t v;
  assert_int_equal(hd_ivf_parse_header(file, len, &v), 0);
  assert_string_equal(v.fourcc, "VP80");
  assert_int_equal(v.width, 320);
  assert_int_equal(v.height, 180);
  assert_int_equal(v.rate, 30);
  assert_int_equal(v.scale, 1);
  assert_int_equal(v.frames, 5);
  assert_int_equal(v.header_len, 32);
  hd_vp8_dec_t d;
  assert_int_equal(hd_vp8_dec_init(&d), 0);
  size_t off = v.header_len;
  for (int i = 0; i < 5; i++) {
    const uint8_t *data;
    size_t size;
    uint64_t pts;
    int m = hd_ivf_parse_frame(file + off, len - off, &data, &size, &pts);
    assert_true(m > 12);
    assert_int_equal(pts, (uint64_t)i * 3000 + (1ull << 33));
    hd_i420_t out;
    assert_int_equal(hd_vp8_decode(&d, data, size, &out), 1);
    assert_int_equal(hd_test_pattern_read(&out), 7 * i);
    off += (size_t)m;
  }
  assert_int_equal(off, len);
  const uint8_t *data;
  size_t size;
  uint64_t pts;
  assert_int_equal(hd_ivf_parse_frame(file + 32, 11, &data, &size, &pts), HD_ETRUNC);
  assert_int_equal(hd_ivf_parse_frame(file + 32, 20, &data, &size, &pts), HD_ETRUNC);
  uint8_t huge[12] = {0, 0, 0, 0x7f};
  assert_int_equal(hd_ivf_parse_frame(huge, sizeof(huge), &data, &size, &pts), HD_EPROTO);
  file[0] = 'X';
  assert_int_equal(hd_ivf_parse_header(file, len, &v), HD_EPROTO);
  assert_int_equal(hd_ivf_parse_header(file, 31, &v), HD_ETRUNC);
  assert_int_equal(hd_ivf_header_write(file, 31, 2, 2, 30, 1, 0), HD_ENOSPC);
  assert_int_equal(hd_ivf_header_write(file, 32, 0, 2, 30, 1, 0), HD_EINVAL);
  assert_int_equal(hd_ivf_frame_header_write(file, 12, HD_IVF_MAX_FRAME + 1, 0), HD_EINVAL);
  hd_vp8_dec_free(&d);
  hd_vp8_enc_free(&e);
  hd_i420_free(&pic);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_wav_roundtrip), cmocka_unit_test(test_wav_variants),
      cmocka_unit_test(test_y4m_roundtrip), cmocka_unit_test(test_y4m_headers),
      cmocka_unit_test(test_ivf_roundtrip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
