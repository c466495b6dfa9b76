/* Tests for the composite layout (egress/layout.h): grid and speaker cells,
 * custom regions with names, z-order and the next-unplaced rule, parse
 * errors with reasons, aspect-fit drawing on the background, and the
 * limiter (no clipping, recovery). */
#include "hd_test.h"

#include <string.h>

#include "base/err.h"
#include "egress/layout.h"

static void test_grid(void **state) {
  hd_layout_t l;
  assert_int_equal(hd_layout_parse(&l, "grid", NULL, 0), 0);
  const char *ids[5] = {"a", "b", "c", "d", "e"};
  hd_layout_cell_t c[16];
  assert_int_equal(hd_layout_place(&l, 1280, 720, ids, NULL, 1, c, 16), 1);
  assert_int_equal(c[0].w, 1280);
  assert_int_equal(c[0].h, 720);
  assert_int_equal(hd_layout_place(&l, 1280, 720, ids, NULL, 2, c, 16), 2);
  assert_int_equal(c[1].x, 640);
  assert_int_equal(c[1].w, 640);
  assert_int_equal(c[1].h, 720);
  /* 5 -> 3 columns x 2 rows */
  assert_int_equal(hd_layout_place(&l, 1280, 720, ids, NULL, 5, c, 16), 5);
  assert_int_equal(c[3].x, 0);
  assert_int_equal(c[3].y, 360);
  assert_int_equal(c[4].who, 4);
  assert_int_equal(c[4].x & 1, 0);
  assert_int_equal(hd_layout_place(&l, 1280, 720, ids, NULL, 0, c, 16), 0);
}

static void test_speaker(void **state) {
  hd_layout_t l;
  assert_int_equal(hd_layout_parse(&l, "speaker", NULL, 0), 0);
  const char *ids[3] = {"a", "b", "c"};
  double loud[3] = {10, 500, 20};
  hd_layout_cell_t c[16];
  assert_int_equal(hd_layout_place(&l, 1280, 720, ids, loud, 3, c, 16), 3);
  assert_int_equal(c[0].who, 1); /* the loudest takes the focus */
  assert_int_equal(c[0].w, 960);
  assert_int_equal(c[1].x, 960);
  assert_int_equal(c[1].h, 360);
  char why[200];
  assert_int_equal(hd_layout_parse(&l, "{\"mode\":\"speaker\",\"pinned\":\"c\"}", why, sizeof why), 0);
  assert_int_equal(hd_layout_place(&l, 1280, 720, ids, loud, 3, c, 16), 3);
  assert_int_equal(c[0].who, 2); /* pinned beats loud */
}

static void test_custom(void **state) {
  hd_layout_t l;
  char why[200];
  const char *spec = "{\"background\":\"#ff0000\",\"regions\":["
                     "{\"x\":0,\"y\":0,\"w\":1,\"h\":1,\"z\":0},"
                     "{\"x\":0.75,\"y\":0.75,\"w\":0.25,\"h\":0.25,\"z\":5,\"identity\":\"teacher\"}]}";
  assert_int_equal(hd_layout_parse(&l, spec, why, sizeof why), 0);
  assert_int_equal(l.mode, HD_LAYOUT_CUSTOM);
  assert_true(l.bg_v > 200 && l.bg_u < 128); /* red in YUV */
  const char *ids[3] = {"student", "teacher", "late"};
  hd_layout_cell_t c[16];
  /* the named region gets teacher; the unnamed one the first other (student);
   * "late" has no region; sorted by z: the full-screen one first */
  assert_int_equal(hd_layout_place(&l, 640, 360, ids, NULL, 3, c, 16), 2);
  assert_int_equal(c[0].who, 0);
  assert_int_equal(c[0].w, 640);
  assert_int_equal(c[1].who, 1);
  assert_int_equal(c[1].x, 480);
  assert_int_equal(c[1].z, 5);
  /* errors say what is wrong */
  assert_int_equal(hd_layout_parse(&l, "mosaic", why, sizeof why), HD_EINVAL);
  assert_non_null(strstr(why, "grid"));
  assert_int_equal(
      hd_layout_parse(&l, "{\"regions\":[{\"x\":0.5,\"y\":0,\"w\":0.6,\"h\":1}]}", why, sizeof why),
      HD_EINVAL);
  assert_non_null(strstr(why, "inside the canvas"));
  assert_int_equal(hd_layout_parse(&l, "{\"background\":\"red\"}", why, sizeof why), HD_EINVAL);
  assert_non_null(strstr(why, "#rrggbb"));
  assert_int_equal(hd_layout_parse(&l, "{\"regions\":[]}", why, sizeof why), HD_EINVAL);
  assert_int_equal(hd_layout_parse(&l, "{\"zoom\":1}", why, sizeof why), HD_EINVAL);
  assert_non_null(strstr(why, "unknown"));
}

static void test_blit_keeps_aspect(void **state) {
  hd_i420_t canvas, pic;
  assert_int_equal(hd_i420_alloc(&canvas, 64, 32), 0);
  assert_int_equal(hd_i420_alloc(&pic, 16, 16), 0);
  hd_canvas_fill(&canvas, 16, 128, 128);
  hd_canvas_fill(&pic, 200, 90, 160);
  hd_canvas_blit(&canvas, &pic, 0, 0, 64, 32); /* a square in a 2:1 cell: 32x32 centred */
  assert_int_equal(canvas.plane[0][0], 16);    /* left band: background */
  assert_int_equal(canvas.plane[0][15], 16);
  assert_int_equal(canvas.plane[0][16], 200); /* picture from x = 16 */
  assert_int_equal(canvas.plane[0][47], 200);
  assert_int_equal(canvas.plane[0][48], 16); /* right band */
  assert_int_equal(canvas.plane[1][10 * canvas.stride[1] + 8], 90);
  assert_int_equal(canvas.plane[2][3], 128);
  hd_i420_free(&canvas);
  hd_i420_free(&pic);
}

/* names: "A1" in the 3x5 font at scale 1 on a dark box; "names": false parses */
static void test_text(void **state) {
  hd_i420_t c;
  assert_int_equal(hd_i420_alloc(&c, 32, 16), 0);
  hd_canvas_fill(&c, 100, 128, 128);
  hd_canvas_text(&c, 0, 0, 1, "a1");
  const uint8_t *y = c.plane[0];
  int s = c.stride[0];
  /* box: 2 glyphs -> 9 x 7 pixels of 16 around white strokes */
  assert_int_equal(y[0], 16);
  assert_int_equal(y[8], 16);
  assert_int_equal(y[9], 100); /* right of the box: untouched */
  assert_int_equal(y[7 * s], 100);
  /* 'A' row 0 = 010 at x 1..3, y 1 */
  assert_int_equal(y[1 * s + 1], 16);
  assert_int_equal(y[1 * s + 2], 235);
  assert_int_equal(y[1 * s + 3], 16);
  /* 'A' row 2 = 111 */
  assert_int_equal(y[3 * s + 1], 235);
  assert_int_equal(y[3 * s + 3], 235);
  /* '1' row 4 = 111 at x 5..7, y 5 */
  assert_int_equal(y[5 * s + 5], 235);
  assert_int_equal(y[5 * s + 7], 235);
  hd_canvas_text(&c, 28, 14, 2, "clipped"); /* off the edge: no crash */
  hd_i420_free(&c);
  hd_layout_t l;
  char why[200];
  assert_int_equal(hd_layout_parse(&l, "grid", why, sizeof why), 0);
  assert_int_equal(l.names, 1);
  assert_int_equal(hd_layout_parse(&l, "{\"mode\":\"grid\",\"names\":false}", why, sizeof why), 0);
  assert_int_equal(l.names, 0);
  assert_int_equal(hd_layout_parse(&l, "{\"names\":1}", why, sizeof why), HD_EINVAL);
}

static void test_limiter(void **state) {
  hd_limiter_t l;
  hd_limiter_init(&l);
  int32_t mix[4800];
  int16_t out[4800];
  for (int i = 0; i < 4800; i++)
    mix[i] = (i % 2 ? 1 : -1) * 60000; /* two loud talkers summed: twice full scale */
  hd_limiter_run(&l, mix, out, 4800);
  for (int i = 0; i < 4800; i++)
    assert_true(out[i] <= 31130 && out[i] >= -31130); /* under 0.95 of full scale, never clipped */
  assert_true(out[4799] > 30000);                     /* but still loud */
  /* quiet input afterwards: the gain comes back towards 1 */
  for (int i = 0; i < 4800; i++)
    mix[i] = 1000;
  float g0 = l.gain;
  for (int k = 0; k < 20; k++)
    hd_limiter_run(&l, mix, out, 4800);
  assert_true(l.gain > g0 * 1.5f);
  assert_true(l.gain <= 1.0f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_grid),    cmocka_unit_test(test_speaker),
      cmocka_unit_test(test_custom),  cmocka_unit_test(test_blit_keeps_aspect),
      cmocka_unit_test(test_limiter), cmocka_unit_test(test_text),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
