/* Room composite layout and drawing (issue 18 item 2): where each
 * participant's video goes on the output canvas, and the audio mix.
 *
 * Layouts:
 * - "grid": the participants with video, in join order, in the smallest
 *   cols x rows grid that holds them (cols = ceil(sqrt(n))), equal cells;
 * - "speaker": the focus participant (pinned, else the loudest audio of the
 *   last second, else the first) takes the left 3/4, the others a column of
 *   equal cells on the right;
 * - custom: a JSON object {"background": "#rrggbb", "regions": [{"x", "y",
 *   "w", "h" (fractions 0..1 of the canvas), "z" (higher on top),
 *   "identity" (whose video; omitted = the next participant not placed by
 *   name)}]}.
 * A picture is scaled to fit its cell keeping its aspect ratio (letterboxed
 * on the background colour); the participant's identity is drawn at the
 * bottom left of the cell unless "names": false. Sans-IO: lists in,
 * rectangles out.
 *
 * Audio: every participant's decoded 48 kHz PCM is summed, then a limiter
 * (instant attack, ~0.5 s release) keeps the sum under full scale without
 * clipping. */
#ifndef HD_EGRESS_LAYOUT_H
#define HD_EGRESS_LAYOUT_H
#include <stddef.h>
#include <stdint.h>

#include "media/i420.h"

#define HD_LAYOUT_MAX_REGIONS 16
#define HD_LAYOUT_ID_MAX 128
#define HD_LAYOUT_JSON_MAX 8192

typedef enum { HD_LAYOUT_GRID = 1, HD_LAYOUT_SPEAKER = 2, HD_LAYOUT_CUSTOM = 3 } hd_layout_mode_t;

typedef struct {
  double x, y, w, h; /* fractions of the canvas */
  int z;
  char identity[HD_LAYOUT_ID_MAX]; /* "" = next unplaced participant */
} hd_layout_region_t;

typedef struct {
  hd_layout_mode_t mode;
  uint8_t bg_y, bg_u, bg_v; /* background colour */
  char pinned[HD_LAYOUT_ID_MAX];
  int names; /* 1 (default): each participant's identity drawn in its cell */
  hd_layout_region_t regions[HD_LAYOUT_MAX_REGIONS]; /* custom */
  int n_regions;
} hd_layout_t;

/* A cell: which participant goes where on the canvas (pixels, even). */
typedef struct {
  int x, y, w, h, z;
  int who; /* index into the participants given to hd_layout_place */
} hd_layout_cell_t;

/* "grid" / "speaker" / a custom JSON object (text). HD_EINVAL with a reason
 * in why (unknown name, bad JSON, a region outside the canvas, > 16
 * regions, a bad colour). */
int hd_layout_parse(hd_layout_t *l, const char *spec, char *why, size_t whycap);

/* Places n participants (identities in join order; loudness: the focus
 * candidate in speaker mode is the max, -1 = none) on a W x H canvas.
 * Returns the number of cells (sorted by z, lowest first). */
int hd_layout_place(const hd_layout_t *l, int W, int H, const char *const *ids, const double *loudness, int n,
                    hd_layout_cell_t *cells, int max_cells);

/* Fills the canvas with the background colour. */
void hd_canvas_fill(hd_i420_t *c, uint8_t y, uint8_t u, uint8_t v);
/* Scales pic into the cell (x, y, w, h) keeping its aspect ratio, centred
 * (nearest neighbour: cheap, and a composite is re-encoded anyway). */
void hd_canvas_blit(hd_i420_t *c, const hd_i420_t *pic, int x, int y, int w, int h);

/* Draws s (ASCII; upper case) at (x, y) in a 3x5 pixel font scaled by
 * `scale`, white on a dark box (name labels). */
void hd_canvas_text(hd_i420_t *c, int x, int y, int scale, const char *s);

/* Audio limiter state over a mixed signal. */
typedef struct {
  float gain; /* current gain, 1 = none */
} hd_limiter_t;

void hd_limiter_init(hd_limiter_t *l);
/* Converts a mixed (summed, possibly beyond int16) block to int16 under the
 * limiter: the gain drops at once to keep the peak under 0.95 of full scale
 * and recovers by ~ 6 dB/s. */
void hd_limiter_run(hd_limiter_t *l, const int32_t *mix, int16_t *out, size_t n);

#endif
