/* Unit tests for VP8 PictureID / TL0PICIDX continuity across a source switch
 * (sfu/vp8_rewriter.h, RFC 7741 §4.2). */
#include "hd_test.h"

#include "sfu/vp8_rewriter.h"

/* A descriptor with X, I (15-bit PictureID) and L (TL0PICIDX), then one data byte. */
static void desc(uint8_t *p, uint16_t pid, uint8_t tl0) {
  p[0] = 0x90;
  p[1] = 0xC0;
  p[2] = (uint8_t)(0x80 | (pid >> 8));
  p[3] = (uint8_t)pid;
  p[4] = tl0;
  p[5] = 0x9d;
}

static uint16_t pid_of(const uint8_t *p) { return (uint16_t)((p[2] & 0x7f) << 8 | p[3]); }

static void test_switch_continues(void **st) {
  (void)st;
  hd_vp8_rewriter_t r;
  hd_vp8_rewriter_init(&r);
  uint8_t p[6];
  /* source A: ids pass unchanged */
  for (uint16_t i = 0; i < 3; i++) {
    desc(p, (uint16_t)(100 + i), (uint8_t)(7 + i));
    assert_int_equal(hd_vp8_rewrite(&r, 0xA, p, sizeof p, 1), 0);
    assert_int_equal(pid_of(p), 100 + i);
    assert_int_equal(p[4], 7 + i);
  }
  /* switch to source B at PictureID 32767 (wraps), TL0 250: continues at 103 / 10 */
  desc(p, 32767, 250);
  assert_int_equal(hd_vp8_rewrite(&r, 0xB, p, sizeof p, 1), 0);
  assert_int_equal(pid_of(p), 103);
  assert_int_equal(p[4], 10);
  desc(p, 0, 251); /* B's next frame, past the 15-bit wrap */
  hd_vp8_rewrite(&r, 0xB, p, sizeof p, 1);
  assert_int_equal(pid_of(p), 104);
  assert_int_equal(p[4], 11);
  assert_int_equal(p[5], 0x9d); /* data untouched */
  /* a retransmission of an older B packet maps the same way, without moving the state */
  desc(p, 32767, 250);
  hd_vp8_rewrite(&r, 0xB, p, sizeof p, 0);
  assert_int_equal(pid_of(p), 103);
  /* a retransmission of a packet of A (before the switch) is left alone */
  desc(p, 101, 8);
  hd_vp8_rewrite(&r, 0xA, p, sizeof p, 0);
  assert_int_equal(pid_of(p), 101);
  /* not VP8 descriptor-shaped: refused, unchanged */
  uint8_t bad[1] = {0x8f};
  assert_true(hd_vp8_rewrite(&r, 0xB, bad, sizeof bad, 1) < 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_switch_continues),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
