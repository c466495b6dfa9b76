/* Fuzz target for the composite layout (src/egress/layout): the layout
 * spec an admin sends (POST/PATCH /admin/egress "layout") and the names
 * drawn from identities. First byte: participant count (0..15) for the
 * placement; the rest is the spec text. Invariants: a refusal carries a
 * reason; an accepted layout places every cell inside the canvas with even
 * coordinates and a valid participant index; drawing text anywhere (also
 * off the canvas) stays in bounds (ASan). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "egress/layout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > HD_LAYOUT_JSON_MAX + 1) return 0;
  int n = data[0] & 15;
  char *spec = malloc(size);
  if (!spec) return 0;
  memcpy(spec, data + 1, size - 1);
  spec[size - 1] = 0;
  hd_layout_t l;
  char why[256] = "";
  int rc = hd_layout_parse(&l, spec, why, sizeof why);
  if (rc < 0 && (rc != HD_EINVAL || !why[0])) abort();
  if (rc == 0) {
    const char *ids[16] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p"};
    double loud[16] = {0};
    loud[n ? n - 1 : 0] = 100;
    hd_layout_cell_t cells[HD_LAYOUT_MAX_REGIONS];
    int k = hd_layout_place(&l, 640, 360, ids, loud, n, cells, HD_LAYOUT_MAX_REGIONS);
    if (k < 0 || k > HD_LAYOUT_MAX_REGIONS || k > (n > 0 ? 16 : 0)) abort();
    for (int i = 0; i < k; i++) {
      const hd_layout_cell_t *c = &cells[i];
      if (c->x < 0 || c->y < 0 || c->w < 2 || c->h < 2 || c->x + c->w > 640 || c->y + c->h > 360 ||
          (c->x & 1) || (c->y & 1) || c->who < 0 || c->who >= n)
        abort();
    }
  }
  hd_i420_t canvas;
  if (hd_i420_alloc(&canvas, 64, 32) == 0) {
    int x = (int)(size % 90) - 20, y = (int)(size % 50) - 10;
    hd_canvas_text(&canvas, x, y, 1 + (int)(size % 3), spec);
    hd_i420_free(&canvas);
  }
  free(spec);
  return 0;
}
