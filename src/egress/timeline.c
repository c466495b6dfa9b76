/* Recording timeline: RTP + RTCP SR -> one clock (see timeline.h). */
#include "egress/timeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

#define NTP_UNIX_OFFSET 2208988800LL /* seconds from 1900 to 1970 (RFC 868) */

int64_t hd_eg_ntp_to_unix_us(uint64_t ntp) {
  int64_t sec = (int64_t)(ntp >> 32) - NTP_UNIX_OFFSET;
  int64_t frac = (int64_t)((((ntp & 0xffffffffu) * 1000000u) + (1u << 31)) >> 32); /* rounded */
  return sec * 1000000 + frac;
}

void hd_eg_tl_init(hd_eg_timeline_t *tl, int64_t start_us, int64_t hold_us) {
  memset(tl, 0, sizeof *tl);
  tl->start_us = start_us;
  tl->hold_us = hold_us;
}

static void drop_held(hd_eg_tl_track_t *t) {
  for (size_t i = 0; i < t->q_n; i++)
    free(t->q[(t->q_head + i) % HD_EG_TL_MAX_FRAMES].data);
  t->q_n = 0;
  t->q_bytes = 0;
}

void hd_eg_tl_free(hd_eg_timeline_t *tl) {
  for (int i = 0; i < tl->n_tr; i++) {
    drop_held(&tl->tr[i]);
    free(tl->tr[i].q);
  }
  free(tl->lent);
  memset(tl, 0, sizeof *tl);
}

int hd_eg_tl_add_track(hd_eg_timeline_t *tl, const char *participant, int clock) {
  if (!participant || clock <= 0) return HD_EINVAL;
  if (tl->n_tr == HD_EG_TL_MAX_TRACKS) return HD_ENOSPC;
  hd_eg_tl_track_t *t = &tl->tr[tl->n_tr];
  memset(t, 0, sizeof *t);
  t->q = calloc(HD_EG_TL_MAX_FRAMES, sizeof *t->q);
  if (!t->q) return HD_ENOMEM;
  snprintf(t->participant, sizeof t->participant, "%s", participant);
  t->clock = clock;
  return tl->n_tr++;
}

static hd_eg_tl_part_t *part_of(hd_eg_timeline_t *tl, const char *participant) {
  for (int i = 0; i < tl->n_parts; i++)
    if (!strcmp(tl->parts[i].participant, participant)) return &tl->parts[i];
  return NULL;
}

static int64_t capture_us(const hd_eg_tl_track_t *t, int64_t ext) {
  return t->base_us + (ext - t->base_ext) * 1000000 / t->clock;
}

/* The first frame of the track to be mapped sets the participant's offset
 * (if the participant has none yet). */
static void set_offset(hd_eg_timeline_t *tl, hd_eg_tl_track_t *t, int64_t ext, int64_t arrival_us) {
  if (part_of(tl, t->participant) || tl->n_parts == HD_EG_TL_MAX_TRACKS) return;
  hd_eg_tl_part_t *p = &tl->parts[tl->n_parts++];
  snprintf(p->participant, sizeof p->participant, "%s", t->participant);
  p->offset_us = t->mode == 2 ? 0 : arrival_us - capture_us(t, ext);
}

/* No SR in time: capture = arrival of the first held frame + RTP time since. */
static void fall_back(hd_eg_timeline_t *tl, hd_eg_tl_track_t *t) {
  if (!t->q_n) return;
  const hd_eg_tl_held_t *h = &t->q[t->q_head];
  t->mode = 2;
  t->no_sr = 1;
  t->base_ext = h->ext;
  t->base_us = h->arrival_us;
  /* this participant's other tracks may have an SR offset already: those
   * captures are on the sender's clock, these on ours -- kept apart */
  if (!part_of(tl, t->participant)) set_offset(tl, t, h->ext, h->arrival_us);
}

int hd_eg_tl_push(hd_eg_timeline_t *tl, int track, const uint8_t *data, size_t len, int keyframe,
                  uint32_t rtp_ts, int have_sr, uint64_t sr_ntp, uint32_t sr_rtp, int64_t arrival_us) {
  if (track < 0 || track >= tl->n_tr || !data || !len) return HD_EINVAL;
  hd_eg_tl_track_t *t = &tl->tr[track];
  int64_t ext = t->have_ts ? t->last_ext + (int32_t)(rtp_ts - t->last_ts) : 0;
  t->have_ts = 1;
  t->last_ts = rtp_ts;
  t->last_ext = ext;
  if (t->mode == 0 && have_sr) {
    t->mode = 1;
    t->base_ext = ext + (int32_t)(sr_rtp - rtp_ts);
    t->base_us = hd_eg_ntp_to_unix_us(sr_ntp);
    set_offset(tl, t, ext, arrival_us);
  }
  if (t->q_n == HD_EG_TL_MAX_FRAMES || t->q_bytes + len > HD_EG_TL_MAX_BYTES) {
    if (t->mode == 0) fall_back(tl, t);
    return HD_ENOSPC; /* the caller polls first; a full queue here means it does not */
  }
  uint8_t *copy = malloc(len);
  if (!copy) return HD_ENOMEM;
  memcpy(copy, data, len);
  hd_eg_tl_held_t *h = &t->q[(t->q_head + t->q_n) % HD_EG_TL_MAX_FRAMES];
  *h =
      (hd_eg_tl_held_t){.data = copy, .len = len, .keyframe = keyframe, .ext = ext, .arrival_us = arrival_us};
  t->q_n++;
  t->q_bytes += len;
  return 0;
}

int hd_eg_tl_poll(hd_eg_timeline_t *tl, int64_t now_us, hd_eg_tl_frame_t *out) {
  free(tl->lent);
  tl->lent = NULL;
  for (int i = 0; i < tl->n_tr; i++) {
    hd_eg_tl_track_t *t = &tl->tr[i];
    if (!t->q_n) continue;
    if (t->mode == 0) {
      if (now_us - t->q[t->q_head].arrival_us < tl->hold_us) continue;
      fall_back(tl, t);
    }
    hd_eg_tl_held_t h = t->q[t->q_head];
    t->q_head = (t->q_head + 1) % HD_EG_TL_MAX_FRAMES;
    t->q_n--;
    t->q_bytes -= h.len;
    const hd_eg_tl_part_t *p = part_of(tl, t->participant);
    int64_t off = t->mode == 1 && p ? p->offset_us : 0;
    int64_t ts = capture_us(t, h.ext) + off - tl->start_us;
    tl->lent = h.data;
    *out = (hd_eg_tl_frame_t){
        .track = i, .data = h.data, .len = h.len, .keyframe = h.keyframe, .t_us = ts < 0 ? 0 : ts};
    return 1;
  }
  return 0;
}

void hd_eg_tl_flush(hd_eg_timeline_t *tl) {
  for (int i = 0; i < tl->n_tr; i++)
    if (tl->tr[i].mode == 0) fall_back(tl, &tl->tr[i]);
}
