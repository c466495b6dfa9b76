/* A simulcast layer as the LAYERS link message reports it (layer_report.h). */
#include "sfu/layer_report.h"

#include <string.h>

#include "sfu/temporal.h"

_Static_assert(HD_TL_ALL + 1 == HD_LINK_TIDS, "one TID share per VP8 TID");

void hd_layer_report_of(const hd_in_track_t *t, hd_link_layer_t *l) {
  l->bps = t->bps ? t->bps : 1;
  l->width = (uint16_t)(t->width > 0 && t->width < 65536 ? t->width : 0);
  l->height = (uint16_t)(t->height > 0 && t->height < 65536 ? t->height : 0);
  l->n_tids = 0;
  memset(l->tid_cum, 255, sizeof l->tid_cum);
  if (t->max_tid < 1 || t->max_tid > HD_TL_ALL) return; /* no temporal layers (yet) */
  uint64_t all = 0, cum = 0;
  for (int k = 0; k <= t->max_tid; k++)
    all += t->tid_bps[k];
  if (!all) return;
  l->n_tids = (uint8_t)(t->max_tid + 1);
  for (int k = 0; k < t->max_tid; k++) {
    cum += t->tid_bps[k];
    l->tid_cum[k] = (uint8_t)((cum * 255 + all / 2) / all);
  }
}

void hd_layer_report_apply(hd_in_track_t *t, const hd_link_layer_t *l, int ver, hd_time_t now) {
  t->last_packet_at = now;
  t->bps = l->bps;
  t->rate_start = now;
  t->rate_bytes = 0;
  if (l->width && l->height) {
    t->width = l->width;
    t->height = l->height;
  }
  if (ver >= 3 && l->n_tids < 2) {
    /* no temporal layers (now): what earlier reports said of them goes, or
     * a capped viewer stays budgeted at a share the layer no longer has */
    t->max_tid = -1;
    memset(t->tid_bps, 0, sizeof t->tid_bps);
    memset(t->tid_bytes, 0, sizeof t->tid_bytes);
    return;
  }
  if (l->n_tids < 2 || l->n_tids > HD_LINK_TIDS) return; /* no shares: as before version 3 */
  t->max_tid = l->n_tids - 1;
  unsigned prev = 0;
  for (int k = 0; k <= HD_TL_ALL; k++) {
    unsigned c = k < t->max_tid ? l->tid_cum[k] : 255;
    if (c < prev) c = prev; /* the parser refuses decreasing shares */
    t->tid_bps[k] = k <= t->max_tid ? (uint32_t)((uint64_t)l->bps * (c - prev) / 255) : 0;
    t->tid_bytes[k] = 0;
    prev = c;
  }
}
