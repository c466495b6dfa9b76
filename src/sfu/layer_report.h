/* A simulcast layer as the LAYERS link message reports it to the room's
 * other nodes (docs/overlay.md "The link protocol", type 11): what the
 * publisher's node measures of it (rate, size and, from link version 3, the
 * share of each VP8 temporal layer, RFC 7741 TID), and how a receiving node
 * keeps a layer whose media does not cross the link live with it, so its
 * allocator can choose that layer and budget a temporally capped viewer
 * (track_settings max_temporal_layer) at the rate of the TIDs it gets. */
#ifndef HD_SFU_LAYER_REPORT_H
#define HD_SFU_LAYER_REPORT_H
#include "overlay/link.h"
#include "sfu/session.h"

/* Fills l's rate, size and TID shares from the publisher's layer t (pub
 * and in_idx are the caller's). */
void hd_layer_report_of(const hd_in_track_t *t, hd_link_layer_t *l);
/* t (the stand-in's layer) is live at `now` with l's rate and size; with TID
 * shares, its per-TID rates are l's rate split by them. In a report of link
 * version 3 (ver: the message's form, hd_link_layers_t ver) without shares
 * the layer has no temporal layers now: t has none either. From an older
 * node they stay as they were (the allocator then borrows another layer's:
 * session.c tid_rates_of). */
void hd_layer_report_apply(hd_in_track_t *t, const hd_link_layer_t *l, int ver, hd_time_t now);

#endif
