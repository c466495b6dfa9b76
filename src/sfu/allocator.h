/* The stream allocator (issue 11 item 3): for one subscriber, which layer of
 * each video track fits its downlink estimate. Pure and sans-IO: tracks in,
 * chosen layers out, with hysteresis state kept in the tracks.
 *
 * Order: audio is not here (the caller takes its bitrate off the budget first:
 * it is never dropped); then every visible video track gets its lowest live
 * layer, highest priority first, and a track whose lowest layer no longer fits
 * is paused; what is left upgrades tracks, again by priority. Downward moves
 * apply at once when the current layers overshoot the budget by more than
 * HD_ALLOC_DOWN_SLACK (a real drop in capacity), otherwise once the budget
 * has stayed short for HD_ALLOC_DOWN_HOLD: the keyframe that every switch up
 * brings fills the bottleneck queue for a moment, the delay-based estimate
 * dips by ~15% and comes back within a second or two, and going down at once
 * on that dip flapped layers (up, keyframe, down, keyframe, up 4 s later:
 * bench/downlink). A pause likewise waits HD_ALLOC_DOWN_HOLD (at the lowest
 * layer) however short the budget falls: resuming costs a probe and a
 * keyframe; and a lowest layer that fits the budget with HD_ALLOC_DOWN_SLACK
 * is never paused (a one-stream publisher fills a path as wide as the
 * viewer's: pausing it there froze SDK viewers behind 300 kbit/s). A new track (or one whose publisher sent
 * nothing until now) that misses its lowest layer by less than HD_ALLOC_DOWN_SLACK gets that layer at once
 * under the same hold; further short, it starts paused. Upward moves only when the upgrade also fits the
 * budget less HD_ALLOC_UP_MARGIN and has kept fitting for HD_ALLOC_UP_HOLD, so a noisy estimate does not flap
 * layers. */
#ifndef HD_SFU_ALLOCATOR_H
#define HD_SFU_ALLOCATOR_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"

/* layers of one track in ascending bitrate: up to 3 spatial (simulcast),
 * the lowest split by VP8 temporal layer (TID, sfu/temporal.h) */
#define HD_ALLOC_MAX_LAYERS 9
#define HD_ALLOC_UP_MARGIN 0.85 /* an upgrade must fit 85% of the budget */
#define HD_ALLOC_UP_HOLD HD_MS(1500)
/* a budget short of the current layers by at most this factor is waited out
 * for HD_ALLOC_DOWN_HOLD before going down (the layers fit 1.25 x the budget) */
#define HD_ALLOC_DOWN_SLACK 1.25
#define HD_ALLOC_DOWN_HOLD HD_MS(1500)

typedef struct {
  /* in: layers in ascending bitrate order; bps 0 = not live (skipped) */
  int n_layers;
  uint32_t bps[HD_ALLOC_MAX_LAYERS];
  int priority;  /* higher first (pinned, active speaker, screen share...) */
  int visible;   /* 0: the subscriber shows it nowhere: paused, costs nothing */
  int max_layer; /* highest layer worth sending (tile size); n_layers - 1 when unknown */
  /* in/out: the layer sent now, -1 = paused (or nothing yet) */
  int cur;
  /* state */
  int up_target;      /* the upgrade being held, -1 none */
  hd_time_t up_since; /* since when it has fitted */
  int down_held;      /* 1: the budget is (slightly) short since down_since */
  hd_time_t down_since;
  /* 1: paused since none of its layers was live (not bound to media yet,
   * or the publisher stopped): when media comes, the next choice is a
   * first choice, not an upgrade held HD_ALLOC_UP_HOLD */
  int idle;
  uint64_t switches, pauses; /* pauses: for lack of bandwidth */
} hd_alloc_track_t;

void hd_alloc_track_init(hd_alloc_track_t *t);
/* Chooses t[i].cur for every track for a video budget of budget_bps (the
 * estimate less audio and headroom) at `now`. Returns the number of tracks
 * whose layer changed. */
int hd_alloc_run(hd_alloc_track_t *t, size_t n, uint64_t budget_bps, hd_time_t now);
/* The layer a tile of tile_w x tile_h device pixels needs: the smallest of n
 * layers (ascending size, w/h 0 = not known yet) that covers the tile in both
 * dimensions, give or take HD_ALLOC_TILE_SLACK. A size not known yet is
 * inferred from a known layer (browsers scale simulcast layers by 2 per
 * step). Tile 0 x 0, or no size known: n - 1. */
#define HD_ALLOC_TILE_SLACK 0.8
int hd_alloc_tile_layer(const int *w, const int *h, int n, int tile_w, int tile_h);
/* Bits per second the chosen layers add up to. */
uint64_t hd_alloc_used(const hd_alloc_track_t *t, size_t n);

#endif
