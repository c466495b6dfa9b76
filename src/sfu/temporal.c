/* VP8 temporal layer selection (see temporal.h). */
#include "sfu/temporal.h"

#include <string.h>

#include "base/err.h"
#include "media/rtp_payload.h"
#include "proto/rtp.h"

enum { S_EMPTY = 0, S_FWD = 1, S_DROP = 2, S_RESERVED = 3, S_PAD = 4 };

#define MASK (HD_TL_HIST - 1)

static void restart(hd_tl_filter_t *f, uint32_t ssrc) {
  int target = f->target;
  uint64_t d = f->dropped, p = f->padded, u = f->up_switches, w = f->down_switches;
  memset(f, 0, sizeof *f);
  for (int i = 0; i < HD_TL_PICS; i++)
    f->pic_pid[i] = -1;
  f->target = target;
  f->cur = target; /* a new source starts at a keyframe: any layer may follow */
  f->started = 1;
  f->src_ssrc = ssrc;
  f->dropped = d;
  f->padded = p;
  f->up_switches = u;
  f->down_switches = w;
}

void hd_tl_filter_init(hd_tl_filter_t *f) {
  memset(f, 0, sizeof *f);
  for (int i = 0; i < HD_TL_PICS; i++)
    f->pic_pid[i] = -1;
  f->target = f->cur = HD_TL_ALL;
}

void hd_tl_filter_set_target(hd_tl_filter_t *f, int max_tid) {
  if (max_tid < 0) max_tid = 0;
  if (max_tid > HD_TL_ALL) max_tid = HD_TL_ALL;
  f->target = max_tid;
}

static int pic_find(const hd_tl_filter_t *f, int pid) {
  if (pid < 0) return -1;
  for (int i = 0; i < HD_TL_PICS; i++)
    if (f->pic_pid[i] == pid) return i;
  return -1;
}

/* The layer switch a frame start allows (temporal.h), then whether a packet
 * of layer p->tid passes. A late packet (its seq was reserved while newer
 * pictures went on) neither switches layers (frames after it were judged
 * already) nor counts as a dropped PictureID (later pictures are numbered:
 * the viewer sees a gap in PictureIDs instead of a PictureID twice). */
static int decide(hd_tl_filter_t *f, const hd_tl_pkt_t *p, int late) {
  if (p->tid < 0) return 1;
  int k = pic_find(f, p->picture_id);
  if (k >= 0) return !f->pic_drop[k];
  if (p->frame_start && !late) {
    if (p->keyframe) {
      if (f->cur != f->target) (f->target > f->cur ? f->up_switches++ : f->down_switches++);
      f->cur = f->target;
    } else if (f->target < f->cur) {
      f->cur = f->target; /* lower layers never reference higher ones */
      f->down_switches++;
    } else if (f->target > f->cur && p->layer_sync && p->tid > f->cur && p->tid <= f->target) {
      f->cur = p->tid; /* depends on the base layer only: decodable from here */
      f->up_switches++;
    }
  }
  int pass = p->tid <= f->cur;
  if (p->picture_id >= 0) { /* every packet of this picture gets the same verdict */
    int i = f->pic_next;
    f->pic_next = (f->pic_next + 1) % HD_TL_PICS;
    f->pic_pid[i] = p->picture_id;
    f->pic_drop[i] = (uint8_t)!pass;
    f->pic_out[i] = (uint16_t)(p->picture_id - f->pid_drops);
    if (!pass && !late) f->pid_drops++;
  }
  return pass;
}

static void record(hd_tl_filter_t *f, int64_t ext, uint8_t state, uint16_t out) {
  hd_tl_slot_t *s = &f->by_src[ext & MASK];
  s->src = (uint16_t)ext;
  s->out = out;
  s->state = state;
  if (state != S_DROP) {
    hd_tl_slot_t *o = &f->by_out[out & MASK];
    o->src = (uint16_t)ext;
    o->out = out;
    o->state = state;
  }
}

int hd_tl_filter_feed(hd_tl_filter_t *f, uint32_t src_ssrc, uint16_t src_seq, const hd_tl_pkt_t *p,
                      uint16_t *out_seq) {
  if (!f->started || src_ssrc != f->src_ssrc) {
    restart(f, src_ssrc);
    f->max_ext = 0x10000 + (int64_t)src_seq - 1;
  }
  int64_t ext = hd_seq_extend(f->max_ext, src_seq);
  if (!f->engaged) {
    /* identity until a layer is to be dropped: nothing to remember */
    int needed = p && p->tid >= 0 && (f->target < f->cur || p->tid > f->cur);
    if (!needed) {
      if (ext > f->max_ext) f->max_ext = ext;
      if (p && p->tid >= 0) decide(f, p, 0); /* keeps the picture verdicts for what follows */
      *out_seq = src_seq;
      return HD_TL_FORWARD;
    }
    f->engaged = 1;
    f->engage_ext = ext > f->max_ext ? f->max_ext + 1 : ext;
  }
  if (ext > f->max_ext) {
    /* missing seqs in between: their out seqs are kept for them */
    int64_t from = f->max_ext + 1;
    if (ext - from > HD_TL_HIST) from = ext - HD_TL_HIST;
    for (int64_t e = from; e < ext; e++)
      record(f, e, S_RESERVED, (uint16_t)(e - f->drops));
    f->max_ext = ext;
    if (!decide(f, p, 0)) {
      record(f, ext, S_DROP, 0);
      f->drops++;
      f->dropped++;
      return HD_TL_DROP;
    }
    *out_seq = (uint16_t)(ext - f->drops);
    record(f, ext, S_FWD, *out_seq);
    return HD_TL_FORWARD;
  }
  /* late, or again (a retransmission of the publisher) */
  if (ext < f->engage_ext) { /* before any drop: identity */
    *out_seq = src_seq;
    return HD_TL_FORWARD;
  }
  hd_tl_slot_t *s = &f->by_src[ext & MASK];
  if (f->max_ext - ext >= HD_TL_HIST || s->src != (uint16_t)ext || s->state == S_EMPTY) return HD_TL_DROP;
  switch (s->state) {
  case S_FWD: *out_seq = s->out; return HD_TL_FORWARD;
  case S_RESERVED:
    *out_seq = s->out;
    if (decide(f, p, 1)) {
      record(f, ext, S_FWD, s->out);
      return HD_TL_FORWARD;
    }
    record(f, ext, S_PAD, s->out);
    f->padded++;
    return HD_TL_PAD;
  default: /* dropped, or already padded */ return HD_TL_DROP;
  }
}

int hd_tl_filter_unmap(const hd_tl_filter_t *f, uint16_t out_seq, uint16_t *src_seq) {
  if (!f->engaged) {
    *src_seq = out_seq;
    return HD_TL_FORWARD;
  }
  const hd_tl_slot_t *o = &f->by_out[out_seq & MASK];
  if (o->state != S_EMPTY && o->out == out_seq) {
    const hd_tl_slot_t *s = &f->by_src[o->src & MASK];
    if (s->src == o->src && s->state == S_PAD) return HD_TL_PAD;
    if (s->src == o->src && (s->state == S_FWD || s->state == S_RESERVED)) {
      *src_seq = o->src;
      return HD_TL_FORWARD;
    }
    return HD_ENOTFOUND;
  }
  /* before the first drop the numbering was the source's */
  int64_t ext = hd_seq_extend(f->max_ext, out_seq);
  if (ext < f->engage_ext && f->engage_ext - ext < 0x8000) {
    *src_seq = out_seq;
    return HD_TL_FORWARD;
  }
  return HD_ENOTFOUND;
}

int hd_tl_filter_map(const hd_tl_filter_t *f, uint16_t src_seq, uint16_t *out_seq) {
  if (!f->engaged) {
    *out_seq = src_seq;
    return 0;
  }
  int64_t ext = hd_seq_extend(f->max_ext, src_seq);
  if (ext < f->engage_ext) {
    *out_seq = src_seq;
    return 0;
  }
  const hd_tl_slot_t *s = &f->by_src[ext & MASK];
  if (f->max_ext - ext >= HD_TL_HIST || s->src != src_seq || s->state != S_FWD) return HD_ENOTFOUND;
  *out_seq = s->out;
  return 0;
}

int hd_tl_pkt_from_vp8(const uint8_t *payload, size_t len, hd_tl_pkt_t *p) {
  hd_vp8_desc_t d;
  int rc = hd_vp8_depay_parse(payload, len, &d);
  if (rc < 0) return rc;
  p->tid = d.tid;
  p->layer_sync = d.layer_sync;
  p->picture_id = d.picture_id;
  p->frame_start = d.frame_start;
  p->keyframe = d.keyframe;
  return 0;
}

int hd_tl_filter_rewrite_pid(const hd_tl_filter_t *f, uint8_t *payload, size_t len) {
  if (!f->pid_drops && !f->engaged) return 0;
  hd_vp8_desc_t d;
  int rc = hd_vp8_depay_parse(payload, len, &d);
  if (rc < 0) return rc;
  if (d.picture_id < 0) return 0;
  int k = pic_find(f, d.picture_id);
  uint16_t out = k >= 0 ? f->pic_out[k] : (uint16_t)(d.picture_id - f->pid_drops);
  /* RFC 7741 §4.2: byte 0, the X byte, then the PictureID (M bit: 15 bits) */
  if (d.picture_id_bits == 15) {
    out &= 0x7fff;
    payload[2] = (uint8_t)(0x80 | (out >> 8));
    payload[3] = (uint8_t)out;
  } else {
    payload[2] = (uint8_t)(out & 0x7f);
  }
  return 0;
}
