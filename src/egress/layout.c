/* Composite layout, canvas drawing and the audio limiter (see layout.h). */
#include "egress/layout.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

static int fail(char *why, size_t cap, const char *msg) {
  if (why && cap) snprintf(why, cap, "%s", msg);
  return HD_EINVAL;
}

/* #rrggbb -> BT.601 limited-range YUV */
static int parse_colour(const char *s, uint8_t *y, uint8_t *u, uint8_t *v) {
  unsigned r, g, b;
  if (!s || strlen(s) != 7 || s[0] != '#' || sscanf(s + 1, "%02x%02x%02x", &r, &g, &b) != 3) return -1;
  double Y = 16 + 0.257 * r + 0.504 * g + 0.098 * b;
  double U = 128 - 0.148 * r - 0.291 * g + 0.439 * b;
  double V = 128 + 0.439 * r - 0.368 * g - 0.071 * b;
  *y = (uint8_t)lrint(Y);
  *u = (uint8_t)lrint(U);
  *v = (uint8_t)lrint(V);
  return 0;
}

int hd_layout_parse(hd_layout_t *l, const char *spec, char *why, size_t whycap) {
  memset(l, 0, sizeof *l);
  l->names = 1;
  parse_colour("#202020", &l->bg_y, &l->bg_u, &l->bg_v);
  if (!spec || !strcmp(spec, "grid")) {
    l->mode = HD_LAYOUT_GRID;
    return 0;
  }
  if (!strcmp(spec, "speaker")) {
    l->mode = HD_LAYOUT_SPEAKER;
    return 0;
  }
  if (strlen(spec) > HD_LAYOUT_JSON_MAX) return fail(why, whycap, "layout JSON longer than 8192 bytes");
  json_t *o = json_loads(spec, 0, NULL);
  int rc = HD_EINVAL;
  if (!json_is_object(o)) {
    rc = fail(why, whycap, "layout must be \"grid\", \"speaker\" or a JSON object {\"regions\": [...]}");
    goto out;
  }
  const char *k;
  json_t *v;
  json_object_foreach(o, k, v) {
    if (strcmp(k, "background") && strcmp(k, "regions") && strcmp(k, "mode") && strcmp(k, "pinned") &&
        strcmp(k, "names")) {
      rc = fail(why, whycap, "unknown layout member (allowed: mode, background, regions, pinned, names)");
      goto out;
    }
  }
  const char *mode = json_string_value(json_object_get(o, "mode"));
  json_t *regions = json_object_get(o, "regions");
  if (mode && strcmp(mode, "grid") && strcmp(mode, "speaker") && strcmp(mode, "custom")) {
    rc = fail(why, whycap, "layout mode must be grid, speaker or custom");
    goto out;
  }
  l->mode = mode && !strcmp(mode, "speaker")                         ? HD_LAYOUT_SPEAKER
            : (mode && !strcmp(mode, "grid")) || (!mode && !regions) ? HD_LAYOUT_GRID
                                                                     : HD_LAYOUT_CUSTOM;
  json_t *bg = json_object_get(o, "background");
  if (bg && parse_colour(json_string_value(bg), &l->bg_y, &l->bg_u, &l->bg_v) < 0) {
    rc = fail(why, whycap, "layout background must be a colour \"#rrggbb\"");
    goto out;
  }
  json_t *nm = json_object_get(o, "names");
  if (nm && !json_is_boolean(nm)) {
    rc = fail(why, whycap, "layout names must be true or false");
    goto out;
  }
  if (nm) l->names = json_is_true(nm);
  json_t *pin = json_object_get(o, "pinned");
  if (pin) {
    if (!json_is_string(pin) || json_string_length(pin) >= HD_LAYOUT_ID_MAX) {
      rc = fail(why, whycap, "layout pinned must be an identity");
      goto out;
    }
    snprintf(l->pinned, sizeof l->pinned, "%s", json_string_value(pin));
  }
  if (l->mode == HD_LAYOUT_CUSTOM) {
    if (!json_is_array(regions) || json_array_size(regions) == 0 ||
        json_array_size(regions) > HD_LAYOUT_MAX_REGIONS) {
      rc = fail(why, whycap, "layout regions must be an array of 1..16 {x, y, w, h, z?, identity?}");
      goto out;
    }
    size_t i;
    json_t *r;
    json_array_foreach(regions, i, r) {
      hd_layout_region_t *g = &l->regions[l->n_regions];
      json_t *x = json_object_get(r, "x"), *y = json_object_get(r, "y"), *w = json_object_get(r, "w"),
             *h = json_object_get(r, "h"), *z = json_object_get(r, "z"), *id = json_object_get(r, "identity");
      if (!json_is_number(x) || !json_is_number(y) || !json_is_number(w) || !json_is_number(h) ||
          (z && !json_is_integer(z)) ||
          (id && (!json_is_string(id) || json_string_length(id) >= HD_LAYOUT_ID_MAX))) {
        rc = fail(why, whycap,
                  "a layout region needs numbers x, y, w, h (fractions), optional integer z and "
                  "string identity");
        goto out;
      }
      g->x = json_number_value(x);
      g->y = json_number_value(y);
      g->w = json_number_value(w);
      g->h = json_number_value(h);
      if (g->x < 0 || g->y < 0 || g->w <= 0 || g->h <= 0 || g->x + g->w > 1.0001 || g->y + g->h > 1.0001) {
        rc = fail(why, whycap,
                  "a layout region must lie inside the canvas (x, y >= 0, w, h > 0, x + w <= 1, "
                  "y + h <= 1)");
        goto out;
      }
      g->z = z ? (int)json_integer_value(z) : 0;
      if (id) snprintf(g->identity, sizeof g->identity, "%s", json_string_value(id));
      l->n_regions++;
    }
  }
  rc = 0;
out:
  json_decref(o);
  return rc;
}

static int even(double v) { return ((int)lrint(v)) & ~1; }

static int cell(hd_layout_cell_t *c, int W, int H, double x, double y, double w, double h, int z, int who) {
  c->x = even(x * W);
  c->y = even(y * H);
  c->w = even(w * W);
  c->h = even(h * H);
  if (c->x + c->w > W) c->w = (W - c->x) & ~1;
  if (c->y + c->h > H) c->h = (H - c->y) & ~1;
  c->z = z;
  c->who = who;
  return c->w >= 2 && c->h >= 2;
}

int hd_layout_place(const hd_layout_t *l, int W, int H, const char *const *ids, const double *loudness, int n,
                    hd_layout_cell_t *cells, int max_cells) {
  int k = 0;
  if (n <= 0 || max_cells <= 0) return 0;
  if (l->mode == HD_LAYOUT_CUSTOM) {
    int placed[64] = {0};
    /* named regions first, then the others in join order */
    for (int pass = 0; pass < 2; pass++)
      for (int r = 0; r < l->n_regions && k < max_cells; r++) {
        const hd_layout_region_t *g = &l->regions[r];
        if ((pass == 0) != (g->identity[0] != 0)) continue;
        int who = -1;
        for (int i = 0; i < n && i < 64 && who < 0; i++)
          if (!placed[i] && (g->identity[0] ? !strcmp(ids[i], g->identity) : 1)) who = i;
        if (who < 0) continue;
        placed[who] = 1;
        k += cell(&cells[k], W, H, g->x, g->y, g->w, g->h, g->z, who);
      }
  } else if (l->mode == HD_LAYOUT_SPEAKER && n > 1) {
    int focus = 0;
    double best = -1;
    for (int i = 0; i < n; i++) {
      if (l->pinned[0] && !strcmp(ids[i], l->pinned)) {
        focus = i;
        best = 1e30;
      } else if (loudness && loudness[i] > best) {
        focus = i;
        best = loudness[i];
      }
    }
    k += cell(&cells[k], W, H, 0, 0, 0.75, 1, 0, focus);
    int others = n - 1, j = 0;
    for (int i = 0; i < n && k < max_cells; i++) {
      if (i == focus) continue;
      double h = 1.0 / others;
      k += cell(&cells[k], W, H, 0.75, j * h, 0.25, h, 0, i);
      j++;
    }
  } else {
    int cols = (int)ceil(sqrt((double)n)), rows = (n + cols - 1) / cols;
    for (int i = 0; i < n && k < max_cells; i++)
      k += cell(&cells[k], W, H, (double)(i % cols) / cols, (double)(i / cols) / rows, 1.0 / cols, 1.0 / rows,
                0, i);
  }
  /* lowest z first: drawn first, covered by higher ones */
  for (int i = 1; i < k; i++)
    for (int j = i; j > 0 && cells[j - 1].z > cells[j].z; j--) {
      hd_layout_cell_t t = cells[j];
      cells[j] = cells[j - 1];
      cells[j - 1] = t;
    }
  return k;
}

void hd_canvas_fill(hd_i420_t *c, uint8_t y, uint8_t u, uint8_t v) {
  uint8_t val[3] = {y, u, v};
  for (int p = 0; p < 3; p++) {
    int w = p ? hd_i420_chroma(c->width) : c->width, h = p ? hd_i420_chroma(c->height) : c->height;
    for (int r = 0; r < h; r++)
      memset(c->plane[p] + (size_t)r * (size_t)c->stride[p], val[p], (size_t)w);
  }
}

void hd_canvas_blit(hd_i420_t *c, const hd_i420_t *pic, int x, int y, int w, int h) {
  if (pic->width < 2 || pic->height < 2 || w < 2 || h < 2) return;
  /* fit, keeping the aspect ratio */
  int dw = w, dh = (int)((int64_t)w * pic->height / pic->width);
  if (dh > h) {
    dh = h;
    dw = (int)((int64_t)h * pic->width / pic->height);
  }
  dw &= ~1;
  dh &= ~1;
  if (dw < 2 || dh < 2) return;
  int ox = (x + (w - dw) / 2) & ~1, oy = (y + (h - dh) / 2) & ~1;
  for (int p = 0; p < 3; p++) {
    int sw = p ? hd_i420_chroma(pic->width) : pic->width, sh = p ? hd_i420_chroma(pic->height) : pic->height;
    int tw = p ? dw / 2 : dw, th = p ? dh / 2 : dh, tx = p ? ox / 2 : ox, ty = p ? oy / 2 : oy;
    int cw = p ? hd_i420_chroma(c->width) : c->width, ch = p ? hd_i420_chroma(c->height) : c->height;
    for (int r = 0; r < th && ty + r < ch; r++) {
      const uint8_t *src = pic->plane[p] + (size_t)((int64_t)r * sh / th) * (size_t)pic->stride[p];
      uint8_t *dst = c->plane[p] + (size_t)(ty + r) * (size_t)c->stride[p] + tx;
      for (int q = 0; q < tw && tx + q < cw; q++)
        dst[q] = src[(int64_t)q * sw / tw];
    }
  }
}

/* A 3x5 pixel font for names (ASCII 32..126; lower case drawn as upper case,
 * anything else as '?'): five rows of three bits, the top row in the high bits. */
static const uint16_t font3x5[95] = {
    0x0000, 0x7282, 0x7282, 0x7282, 0x7282, 0x7282, 0x7282, 0x7282, 0x7282, 0x7282, 0x7282, 0x7282,
    0x7282, 0x01c0, 0x0002, 0x7282, 0x7b6f, 0x2c97, 0x73e7, 0x73cf, 0x5bc9, 0x79cf, 0x79ef, 0x7249,
    0x7bef, 0x7bcf, 0x7282, 0x7282, 0x7282, 0x7282, 0x7282, 0x7282, 0x7282, 0x2bed, 0x6bae, 0x3923,
    0x6b6e, 0x79a7, 0x79a4, 0x396b, 0x5bed, 0x7497, 0x126a, 0x5bad, 0x4927, 0x5fed, 0x6b6d, 0x2b6a,
    0x6ba4, 0x2b73, 0x6bad, 0x388e, 0x7492, 0x5b6f, 0x5b6a, 0x5bfd, 0x5aad, 0x5a92, 0x72a7, 0x7282,
    0x7282, 0x7282, 0x7282, 0x0007, 0x7282, 0x2bed, 0x6bae, 0x3923, 0x6b6e, 0x79a7, 0x79a4, 0x396b,
    0x5bed, 0x7497, 0x126a, 0x5bad, 0x4927, 0x5fed, 0x6b6d, 0x2b6a, 0x6ba4, 0x2b73, 0x6bad, 0x388e,
    0x7492, 0x5b6f, 0x5b6a, 0x5bfd, 0x5aad, 0x5a92, 0x72a7, 0x7282, 0x7282, 0x7282, 0x7282};

void hd_canvas_text(hd_i420_t *c, int x, int y, int scale, const char *s) {
  if (scale < 1) scale = 1;
  int n = 0;
  for (const char *p = s; *p && n < 64; p++)
    n++;
  /* a dark box behind the text, one glyph-pixel of margin */
  int bw = (n * 4 + 1) * scale, bh = 7 * scale;
  for (int r = y; r < y + bh && r < c->height; r++)
    for (int q = x; q < x + bw && q < c->width; q++)
      if (r >= 0 && q >= 0) c->plane[0][(size_t)r * (size_t)c->stride[0] + q] = 16;
  for (int r = y / 2; r < (y + bh) / 2 && r < hd_i420_chroma(c->height); r++)
    for (int q = x / 2; q < (x + bw) / 2 && q < hd_i420_chroma(c->width); q++)
      if (r >= 0 && q >= 0) {
        c->plane[1][(size_t)r * (size_t)c->stride[1] + q] = 128;
        c->plane[2][(size_t)r * (size_t)c->stride[2] + q] = 128;
      }
  for (int i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    uint16_t g = ch >= 32 && ch < 127 ? font3x5[ch - 32] : font3x5['?' - 32];
    for (int row = 0; row < 5; row++)
      for (int col = 0; col < 3; col++) {
        if (!(g >> ((4 - row) * 3 + (2 - col)) & 1)) continue;
        for (int dy = 0; dy < scale; dy++)
          for (int dx = 0; dx < scale; dx++) {
            int px = x + (1 + i * 4 + col) * scale + dx, py = y + (1 + row) * scale + dy;
            if (px >= 0 && py >= 0 && px < c->width && py < c->height)
              c->plane[0][(size_t)py * (size_t)c->stride[0] + px] = 235;
          }
      }
  }
}

void hd_limiter_init(hd_limiter_t *l) { l->gain = 1.0f; }

void hd_limiter_run(hd_limiter_t *l, const int32_t *mix, int16_t *out, size_t n) {
  const float ceiling = 0.95f * 32767.0f;
  const float release = 1.0f + 0.7f / 48000.0f; /* about 6 dB per second back up */
  for (size_t i = 0; i < n; i++) {
    float s = (float)mix[i];
    float a = fabsf(s) * l->gain;
    if (a > ceiling) l->gain = ceiling / fabsf(s); /* instant attack */
    float o = s * l->gain;
    if (o > 32767.0f) o = 32767.0f;
    if (o < -32768.0f) o = -32768.0f;
    out[i] = (int16_t)lrintf(o);
    l->gain *= release;
    if (l->gain > 1.0f) l->gain = 1.0f;
  }
}
