/* The stream allocator (see allocator.h). */
#include "sfu/allocator.h"

#include <string.h>

#define MAX_TRACKS 64 /* >= HD_SESSION_MAX_OUT; more are left as they are */

void hd_alloc_track_init(hd_alloc_track_t *t) {
  memset(t, 0, sizeof *t);
  t->cur = -1;
  t->up_target = -1;
  t->visible = 1;
  t->max_layer = HD_ALLOC_MAX_LAYERS - 1;
}

static int live(const hd_alloc_track_t *t, int l) { return l >= 0 && l < t->n_layers && t->bps[l] > 0; }

static int top_layer(const hd_alloc_track_t *t) {
  int top = t->n_layers - 1;
  if (t->max_layer >= 0 && t->max_layer < top) top = t->max_layer;
  return top;
}

/* One allocation of `budget` without history: out[i] = layer or -1. */
static void plan(const hd_alloc_track_t *t, size_t n, uint64_t budget, int *out) {
  size_t ord[MAX_TRACKS];
  for (size_t i = 0; i < n; i++) { /* stable sort by priority, highest first */
    size_t j = i;
    while (j > 0 && t[ord[j - 1]].priority < t[i].priority) {
      ord[j] = ord[j - 1];
      j--;
    }
    ord[j] = i;
  }
  uint64_t left = budget;
  for (size_t k = 0; k < n; k++) { /* everyone visible gets its lowest live layer, if it fits */
    size_t i = ord[k];
    out[i] = -1;
    if (!t[i].visible) continue;
    for (int l = 0; l < t[i].n_layers; l++) {
      if (!live(&t[i], l)) continue;
      if (t[i].bps[l] <= left) {
        out[i] = l;
        left -= t[i].bps[l];
      }
      break;
    }
  }
  for (size_t k = 0; k < n; k++) { /* then upgrades, by priority */
    size_t i = ord[k];
    if (out[i] < 0) continue;
    for (int l = top_layer(&t[i]); l > out[i]; l--) {
      if (!live(&t[i], l)) continue;
      uint64_t extra = t[i].bps[l] - t[i].bps[out[i]];
      if (t[i].bps[l] > t[i].bps[out[i]] && extra > left) continue;
      left -= t[i].bps[l] > t[i].bps[out[i]] ? extra : 0;
      out[i] = l;
      break;
    }
  }
}

int hd_alloc_run(hd_alloc_track_t *t, size_t n, uint64_t budget_bps, hd_time_t now) {
  if (n > MAX_TRACKS) n = MAX_TRACKS;
  int full[MAX_TRACKS], cons[MAX_TRACKS], slack[MAX_TRACKS];
  plan(t, n, budget_bps, full);
  plan(t, n, (uint64_t)((double)budget_bps * HD_ALLOC_UP_MARGIN), cons);
  plan(t, n, (uint64_t)((double)budget_bps * HD_ALLOC_DOWN_SLACK), slack);
  int changed = 0;
  for (size_t i = 0; i < n; i++) {
    hd_alloc_track_t *a = &t[i];
    int next = a->cur;
    int any = 0;
    for (int l = 0; l < a->n_layers && !any; l++)
      any = live(a, l);
    if (!any) a->idle = 1; /* nothing to send: no layer choice this says anything about */
    /* first choice (or the first since its publisher sent nothing, e.g. a
     * track newly bound before its first packet came over a node link):
     * no reason to wait, nothing flapped */
    int fresh = (a->switches == 0 || a->idle) && a->cur < 0;
    if (full[i] >= a->cur) a->down_held = 0;
    if (!any && a->cur >= 0) { /* its publisher went quiet: nothing flows, no bandwidth pause */
      next = -1;
      a->up_target = -1;
      a->down_held = 0;
    } else if (fresh || (a->cur >= 0 && !live(a, a->cur)) || slack[i] < a->cur) {
      next = full[i]; /* down (or pause) at once: the budget really fell */
      a->up_target = -1;
      if (fresh && next < 0 && slack[i] >= 0 && a->visible) {
        /* a new track only slightly short of its lowest layer: the estimate
         * is often application-limited (bwe.c: at most 2x what is sent), and
         * after a failover the dead publisher's track no longer counts there
         * (issue 15 item 6). Its lowest layer at once, as a flowing track
         * keeps it: paused only if the budget stays short for
         * HD_ALLOC_DOWN_HOLD; what it sends and the probe lift the estimate */
        for (int l = 0; next < 0 && l < a->n_layers; l++)
          if (live(a, l)) next = l;
        a->down_held = 1;
        a->down_since = now;
      } else if (next >= 0 || fresh || !live(a, a->cur) || !a->visible) { /* hidden: paused at once */
        a->down_held = 0;
      } else {
        /* ... but not into a pause: its way back needs a probe and a
         * keyframe (4-5 s in bench/downlink, a freeze all along), and an
         * estimate that fell below the lowest layer on a delay spike is
         * often back within a second. The lowest layer at once, the pause
         * only when the budget stays short of it for HD_ALLOC_DOWN_HOLD. */
        int low = slack[i];
        for (int l = 0; low < 0 && l <= a->cur; l++)
          if (live(a, l)) low = l;
        if (low < a->cur || !a->down_held) { /* step down now, the pause later */
          next = low;
          a->down_held = 1;
          a->down_since = now;
        } else if (now - a->down_since < HD_ALLOC_DOWN_HOLD) {
          next = a->cur;
        } else {
          a->down_held = 0; /* short for long enough: pause */
        }
      }
    } else if (full[i] < a->cur) {
      /* slightly short: maybe the dip a keyframe leaves; down if it lasts --
       * but never into a pause: a lowest layer that fits the budget with
       * HD_ALLOC_DOWN_SLACK keeps flowing. The budget is 90% of an estimate
       * that GCC holds at ~85-95% of the path, less audio: a one-stream
       * publisher whose encoder fills its own uplink (the SDK's: 90% of its
       * estimate) never fits a viewer leg as wide as that uplink, and
       * pausing it there froze SDK viewers behind 300 kbit/s for good (an
       * application-limited estimate never climbs back to resume it;
       * test_client_downlink). Sending at most 25% past the budget is
       * within what the path carries; if it is not, over-use cuts the
       * estimate below the slack and the track pauses then. */
      int low = -1;
      for (int l = 0; low < 0 && l < a->n_layers; l++)
        if (live(a, l)) low = l;
      int target = full[i] >= 0 ? full[i] : low;
      if (target >= a->cur) {
        a->down_held = 0;
      } else {
        if (!a->down_held) {
          a->down_held = 1;
          a->down_since = now;
        }
        if (now - a->down_since >= HD_ALLOC_DOWN_HOLD) {
          next = target;
          a->down_held = 0;
        }
      }
      a->up_target = -1;
    } else if (cons[i] > a->cur) {
      if (a->up_target != cons[i]) {
        a->up_target = cons[i];
        a->up_since = now;
      }
      if (now - a->up_since >= HD_ALLOC_UP_HOLD) {
        next = cons[i];
        a->up_target = -1;
      }
    } else {
      a->up_target = -1;
    }
    if (any && next >= 0) a->idle = 0;
    if (next != a->cur) {
      if (next < 0 && any) a->pauses++;
      a->switches++;
      a->cur = next;
      changed++;
    }
  }
  return changed;
}

uint64_t hd_alloc_used(const hd_alloc_track_t *t, size_t n) {
  uint64_t sum = 0;
  for (size_t i = 0; i < n; i++)
    if (live(&t[i], t[i].cur)) sum += t[i].bps[t[i].cur];
  return sum;
}

int hd_alloc_tile_layer(const int *w, const int *h, int n, int tile_w, int tile_h) {
  if (n <= 0) return -1;
  if (tile_w <= 0 && tile_h <= 0) return n - 1;
  int known = -1;
  for (int l = n - 1; l >= 0 && known < 0; l--)
    if (w[l] > 0 && h[l] > 0) known = l;
  if (known < 0) return n - 1;
  for (int l = 0; l < n; l++) {
    double lw = w[l], lh = h[l];
    if (lw <= 0 || lh <= 0) { /* inferred: a factor of 2 per layer from the known one */
      double f = l < known ? 1.0 / (double)(1 << (known - l)) : (double)(1 << (l - known));
      lw = w[known] * f;
      lh = h[known] * f;
    }
    if (lw >= tile_w * HD_ALLOC_TILE_SLACK && lh >= tile_h * HD_ALLOC_TILE_SLACK) return l;
  }
  return n - 1;
}
