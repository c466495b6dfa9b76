/* Video frame assembler for VP8 over RTP (RFC 7741 §4); see frame_assembler.h.
 *
 * Packets live in a window of HD_FRAME_ASM_SLOTS slots indexed by extended
 * sequence number; `base` is the lowest sequence number still wanted, so every
 * stored packet maps to a distinct slot. Frames are not kept as objects: they
 * are found by walking from a frame-start packet to its end, which keeps the
 * loss/reorder/duplicate cases in one place (frame_at). */
#include "media/frame_assembler.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "media/rtp_payload.h"
#include "proto/rtp.h"

#define MASK (HD_FRAME_ASM_SLOTS - 1)

struct hd_frame_asm_slot {
  int used;
  int64_t ext;
  uint32_t ts;
  uint8_t marker, frame_start, keyframe, layer_sync;
  int width, height, picture_id, tid, tl0picidx;
  hd_time_t arrival;
  size_t len;
  uint8_t *data; /* VP8 bitstream bytes (descriptor stripped) */
};

void hd_frame_asm_config_default(hd_frame_asm_config_t *c) {
  memset(c, 0, sizeof(*c));
  c->max_packets = 1024;
  c->max_bytes = 4u << 20;
  c->max_frame_bytes = 2u << 20;
  c->nack_wait = HD_MS(150);
  c->keyframe_interval = HD_MS(500);
  c->tl_wait = HD_MS(50);
  c->tl_key_wait = HD_SEC(1);
}

int hd_frame_asm_init(hd_frame_asm_t *fa, const hd_frame_asm_config_t *c) {
  if (!fa) return HD_EINVAL;
  memset(fa, 0, sizeof(*fa));
  if (c)
    fa->cfg = *c;
  else
    hd_frame_asm_config_default(&fa->cfg);
  const hd_frame_asm_config_t *k = &fa->cfg;
  if (k->max_packets < 1 || k->max_packets > HD_FRAME_ASM_SLOTS || k->max_bytes < HD_FRAME_ASM_MAX_PAYLOAD ||
      k->max_frame_bytes < HD_FRAME_ASM_MAX_PAYLOAD || k->nack_wait < 0 || k->keyframe_interval < 0 ||
      k->tl_wait < 0 || k->tl_key_wait < 0)
    return HD_EINVAL;
  fa->slots = calloc(HD_FRAME_ASM_SLOTS, sizeof(*fa->slots));
  fa->out = malloc(k->max_frame_bytes);
  if (!fa->slots || !fa->out) {
    free(fa->slots);
    free(fa->out);
    fa->slots = NULL;
    fa->out = NULL;
    return HD_ENOMEM;
  }
  fa->need_key = 1; /* a decoder can only start at a keyframe */
  fa->gap_since = HD_TIME_NEVER;
  fa->last_key_req = HD_TIME_NEVER;
  fa->last_tl0 = -1;
  fa->tl_tried = -1;
  return 0;
}

static void slot_free(hd_frame_asm_t *fa, hd_frame_asm_slot_t *s) {
  if (!s->used) return;
  free(s->data);
  fa->n_packets--;
  fa->n_bytes -= s->len;
  memset(s, 0, sizeof(*s));
}

void hd_frame_asm_free(hd_frame_asm_t *fa) {
  if (!fa || !fa->slots) return;
  for (size_t i = 0; i < HD_FRAME_ASM_SLOTS; i++)
    slot_free(fa, &fa->slots[i]);
  free(fa->slots);
  free(fa->out);
  fa->slots = NULL;
  fa->out = NULL;
}

static hd_frame_asm_slot_t *slot_at(hd_frame_asm_t *fa, int64_t ext) {
  hd_frame_asm_slot_t *s = &fa->slots[(uint64_t)ext & MASK];
  return s->used && s->ext == ext ? s : NULL;
}

/* Drops every stored packet below `nb` and moves the window up to it. */
static void advance_base(hd_frame_asm_t *fa, int64_t nb) {
  if (nb <= fa->base) return;
  if (nb - fa->base >= HD_FRAME_ASM_SLOTS) {
    for (size_t i = 0; i < HD_FRAME_ASM_SLOTS; i++) {
      hd_frame_asm_slot_t *s = &fa->slots[i];
      if (s->used && s->ext < nb) {
        fa->stats.dropped++;
        slot_free(fa, s);
      }
    }
  } else {
    for (int64_t e = fa->base; e < nb; e++) {
      hd_frame_asm_slot_t *s = slot_at(fa, e);
      if (s) {
        fa->stats.dropped++;
        slot_free(fa, s);
      }
    }
  }
  fa->base = nb;
}

static void break_chain(hd_frame_asm_t *fa) {
  if (!fa->need_key) fa->stats.chain_breaks++;
  fa->need_key = 1;
  fa->gap_since = HD_TIME_NEVER;
}

/* The frame starting at ext s: returns 1 and its last packet in *end when all
 * its packets are here, 0 otherwise. A frame ends at its marker packet, or at
 * the packet before one with another timestamp (a sender that forgot the
 * marker, or a lost marker packet whose slot a retransmission refilled). */
static int frame_at(hd_frame_asm_t *fa, int64_t s, int64_t *end) {
  hd_frame_asm_slot_t *first = slot_at(fa, s);
  if (!first || !first->frame_start) return 0;
  for (int64_t e = s; e <= fa->highest && e - s < HD_VP8_RTP_MAX_PACKETS; e++) {
    hd_frame_asm_slot_t *p = slot_at(fa, e);
    if (!p) return 0;
    if (p->ts != first->ts) {
      if (e == s) return 0;
      *end = e - 1;
      return 1;
    }
    if (e > s && p->frame_start) return 0; /* two starts in one timestamp: malformed, let it time out */
    if (p->marker) {
      *end = e;
      return 1;
    }
  }
  return 0;
}

/* Copies frame [s..e] out, releases its packets and records it as emitted. */
static int emit(hd_frame_asm_t *fa, int64_t s, int64_t e, hd_frame_asm_event_t *ev) {
  hd_frame_asm_slot_t *first = slot_at(fa, s);
  size_t len = 0;
  int fits = 1;
  for (int64_t i = s; i <= e; i++) {
    hd_frame_asm_slot_t *p = slot_at(fa, i);
    if (len + p->len > fa->cfg.max_frame_bytes) {
      fits = 0;
      break;
    }
    memcpy(fa->out + len, p->data, p->len);
    len += p->len;
  }
  memset(ev, 0, sizeof(*ev));
  ev->type = HD_FRAME_ASM_FRAME;
  hd_frame_asm_frame_t *f = &ev->frame;
  f->data = fa->out;
  f->len = len;
  f->ts = first->ts;
  f->keyframe = first->keyframe;
  f->width = first->width;
  f->height = first->height;
  f->picture_id = first->picture_id;
  f->first_seq = (uint16_t)s;
  f->last_seq = (uint16_t)e;
  f->after_gap = fa->skipped;
  f->tid = first->tid;
  f->tl0picidx = first->tl0picidx;
  f->layer_sync = first->layer_sync;
  f->first_arrival = first->arrival;
  for (int64_t i = s + 1; i <= e; i++)
    if (slot_at(fa, i)->arrival < f->first_arrival) f->first_arrival = slot_at(fa, i)->arrival;
  advance_base(fa, s); /* nothing below s is emitted any more */
  for (int64_t i = s; i <= e; i++)
    slot_free(fa, slot_at(fa, i));
  fa->base = e + 1;
  fa->last_emitted = e;
  fa->have_emitted = 1;
  fa->gap_since = HD_TIME_NEVER;
  if (!fits) {
    /* Larger than the cap: the frame is gone, and with it the chain. */
    fa->stats.cap_overflows++;
    fa->skipped = 1;
    break_chain(fa);
    return 0;
  }
  fa->skipped = 0;
  fa->need_key = 0;
  /* temporal-layer state (RFC 7741 §4.2): a keyframe or a TL0 frame sets the
   * TL0 chain; a Y frame of the lowest damaged layer repairs that layer */
  if (f->keyframe) fa->broken_tid = 0;
  if (f->tid == 0 && f->tl0picidx >= 0) fa->last_tl0 = f->tl0picidx;
  if (f->keyframe && f->tid < 0) fa->last_tl0 = -1;
  if (fa->broken_tid && f->layer_sync && f->tid == fa->broken_tid)
    fa->broken_tid = fa->broken_tid >= fa->max_tid ? 0 : fa->broken_tid + 1;
  fa->stats.frames++;
  if (f->keyframe) fa->stats.keyframes++;
  return 1;
}

/* One decision step: emit the next decodable frame if there is one. */
static int try_emit(hd_frame_asm_t *fa, hd_frame_asm_event_t *ev) {
  int64_t end;
  while (fa->n_packets > 0) {
    if (!fa->need_key && fa->have_emitted) {
      int64_t next = fa->last_emitted + 1;
      if (frame_at(fa, next, &end)) {
        hd_frame_asm_slot_t *f = slot_at(fa, next);
        if (fa->broken_tid && f->tid >= fa->broken_tid && !f->layer_sync && !f->keyframe) {
          /* references a frame of a damaged layer: undecodable, pass over it */
          for (int64_t i = next; i <= end; i++)
            slot_free(fa, slot_at(fa, i));
          fa->base = end + 1;
          fa->last_emitted = end;
          fa->stats.frames_dropped++;
          fa->skipped = 1;
          continue;
        }
        if (emit(fa, next, end, ev)) return 1;
        continue;
      }
    }
    /* The oldest complete keyframe decodes on its own: jump to it. While
     * waiting for one, complete delta frames can never be decoded: drop them
     * (only their own packets; a keyframe missing a retransmission may be
     * older and still complete). */
    int key_pending = 0;
    for (int64_t e = fa->base; e <= fa->highest; e++) {
      hd_frame_asm_slot_t *p = slot_at(fa, e);
      if (!p || !p->frame_start) continue;
      if (!frame_at(fa, e, &end)) {
        /* a keyframe still missing a packet (its repair may be on the way):
         * the deltas after it will decode once it is complete, keep them */
        if (p->keyframe) key_pending = 1;
        continue;
      }
      if (p->keyframe) {
        if (fa->have_emitted && e != fa->last_emitted + 1) fa->skipped = 1;
        if (emit(fa, e, end, ev)) return 1;
        goto again;
      }
      if (fa->need_key && !key_pending) {
        for (int64_t i = e; i <= end; i++)
          slot_free(fa, slot_at(fa, i));
        fa->stats.frames_dropped++;
        fa->skipped = 1;
      }
      e = end;
    }
    return 0;
  again:;
  }
  return 0;
}

int hd_frame_asm_push(hd_frame_asm_t *fa, const hd_frame_asm_pkt_t *pkt, hd_time_t now) {
  if (!fa || !fa->slots || !pkt || !pkt->payload || pkt->len == 0 || pkt->len > HD_FRAME_ASM_MAX_PAYLOAD)
    return HD_EINVAL;
  hd_vp8_desc_t d;
  int rc = hd_vp8_depay_parse(pkt->payload, pkt->len, &d);
  if (rc < 0) {
    fa->stats.malformed++;
    return rc;
  }
  if (!fa->started) {
    fa->started = 1;
    fa->start_time = now;
    fa->highest = 0x10000 + pkt->seq;                /* keep extended numbers positive */
    fa->base = fa->highest - HD_FRAME_ASM_SLOTS / 4; /* room for early reordering */
  }
  int64_t ext = hd_seq_extend(fa->highest, pkt->seq);
  if (ext < fa->base) {
    fa->stats.late++;
    return 1;
  }
  if (ext >= fa->base + HD_FRAME_ASM_SLOTS) {
    /* Far ahead of everything we hold (a long outage or a sender restart):
     * nothing buffered can connect to it any more. */
    fa->stats.cap_overflows++;
    advance_base(fa, ext - HD_FRAME_ASM_SLOTS / 4);
    break_chain(fa);
  }
  hd_frame_asm_slot_t *s = &fa->slots[(uint64_t)ext & MASK];
  if (s->used) {
    fa->stats.duplicates++;
    return 1;
  }
  if (fa->n_packets + 1 > fa->cfg.max_packets || fa->n_bytes + d.data_len > fa->cfg.max_bytes) {
    fa->stats.cap_overflows++;
    advance_base(fa, ext); /* everything older goes; this packet may start a keyframe */
    break_chain(fa);
  }
  uint8_t *copy = malloc(d.data_len);
  if (!copy) return HD_ENOMEM;
  memcpy(copy, d.data, d.data_len);
  s->used = 1;
  s->ext = ext;
  s->ts = pkt->ts;
  s->marker = pkt->marker ? 1 : 0;
  s->frame_start = d.frame_start;
  s->keyframe = d.keyframe;
  s->width = d.width;
  s->height = d.height;
  s->picture_id = d.picture_id;
  s->tid = d.tid;
  if (d.tid > fa->max_tid) fa->max_tid = d.tid;
  s->tl0picidx = d.tl0picidx;
  s->layer_sync = d.layer_sync;
  s->arrival = now;
  s->len = d.data_len;
  s->data = copy;
  fa->n_packets++;
  fa->n_bytes += d.data_len;
  if (ext > fa->highest) fa->highest = ext;
  fa->stats.packets++;
  return 0;
}

/* The first complete frame after the blocking gap that decodes without what
 * is missing (see the header): 1 with it emitted, else 0. */
static int tl_skip(hd_frame_asm_t *fa, hd_frame_asm_event_t *ev) {
  if (fa->last_tl0 < 0 || fa->need_key) return 0;
  fa->tl_tried = fa->highest;
  int64_t end;
  for (int64_t e = fa->last_emitted + 1; e <= fa->highest; e++) {
    hd_frame_asm_slot_t *p = slot_at(fa, e);
    if (!p || !p->frame_start || !frame_at(fa, e, &end)) continue;
    if (p->tid < 0 || p->tl0picidx < 0) return 0;
    int next_tl0 = p->tid == 0 && p->tl0picidx == ((fa->last_tl0 + 1) & 0xff);
    int sync = p->tid > 0 && p->layer_sync && p->tl0picidx == fa->last_tl0;
    if (next_tl0 || sync) {
      advance_base(fa, e);
      fa->skipped = 1;
      fa->stats.tl_skips++;
      /* the lost frames were all of TID >= 1 (the TL0 chain is whole); which
       * of those layers lost one is unknown, so all of them are suspect */
      if (!fa->broken_tid) fa->broken_since = fa->tl_now;
      fa->broken_tid = 1;
      if (emit(fa, e, end, ev)) return 1;
      return 0;
    }
    e = end;
  }
  return 0;
}

/* Arrival of the oldest keyframe start packet whose frame is not complete
 * yet, or HD_TIME_NEVER. */
static hd_time_t pending_key_arrival(hd_frame_asm_t *fa) {
  int64_t end;
  for (int64_t e = fa->base; e <= fa->highest; e++) {
    hd_frame_asm_slot_t *p = slot_at(fa, e);
    if (p && p->frame_start && p->keyframe && !frame_at(fa, e, &end)) return p->arrival;
  }
  return HD_TIME_NEVER;
}

/* 1 when a hole (a missing sequence number) lies between the next expected
 * packet and the highest one received: the chain is blocked on a loss. */
static int has_hole(const hd_frame_asm_t *fa) {
  if (!fa->have_emitted || fa->n_packets == 0) return 0;
  int64_t span = fa->highest - fa->last_emitted;
  return span > 0 && (int64_t)fa->n_packets < span;
}

int hd_frame_asm_poll(hd_frame_asm_t *fa, hd_time_t now, hd_frame_asm_event_t *ev) {
  if (!fa || !fa->slots || !ev) return HD_EINVAL;
  fa->tl_now = now;
  if (try_emit(fa, ev)) return 1;
  if (fa->broken_tid && !fa->need_key && now - fa->broken_since >= fa->cfg.tl_key_wait &&
      (fa->last_key_req == HD_TIME_NEVER || now - fa->last_key_req >= fa->cfg.keyframe_interval)) {
    /* no layer-sync frame came to repair the upper layers: a keyframe will */
    fa->last_key_req = now;
    fa->stats.keyframe_requests++;
    memset(ev, 0, sizeof(*ev));
    ev->type = HD_FRAME_ASM_KEYFRAME_NEEDED;
    return 1;
  }
  if (!fa->need_key) {
    if (!has_hole(fa)) {
      fa->gap_since = HD_TIME_NEVER;
    } else if (fa->gap_since == HD_TIME_NEVER) {
      fa->gap_since = now;
    }
    if (fa->gap_since != HD_TIME_NEVER && now - fa->gap_since >= fa->cfg.tl_wait &&
        fa->tl_tried != fa->highest && tl_skip(fa, ev))
      return 1;
    if (fa->gap_since != HD_TIME_NEVER && now - fa->gap_since >= fa->cfg.nack_wait) {
      /* Retransmission did not fill the hole in time: the chain is broken. */
      break_chain(fa);
      if (try_emit(fa, ev)) return 1;
    }
  }
  if (fa->need_key && fa->started) {
    /* At start-up give an in-flight keyframe nack_wait to complete, unless a
     * complete delta frame shows we joined mid-stream. A keyframe whose first
     * packet is here but which misses another gets nack_wait from its
     * arrival for the repair, at start-up or after a request: asking again
     * would only bring a second keyframe behind the first. */
    int startup_wait = !fa->have_emitted && fa->last_key_req == HD_TIME_NEVER &&
                       fa->stats.frames_dropped == 0 && now - fa->start_time < fa->cfg.nack_wait;
    hd_time_t kp = pending_key_arrival(fa);
    if (kp != HD_TIME_NEVER && now - kp < fa->cfg.nack_wait) startup_wait = 1;
    if (!startup_wait &&
        (fa->last_key_req == HD_TIME_NEVER || now - fa->last_key_req >= fa->cfg.keyframe_interval)) {
      fa->last_key_req = now;
      fa->stats.keyframe_requests++;
      memset(ev, 0, sizeof(*ev));
      ev->type = HD_FRAME_ASM_KEYFRAME_NEEDED;
      return 1;
    }
  }
  return 0;
}

hd_time_t hd_frame_asm_next_timeout(const hd_frame_asm_t *fa) {
  if (!fa || !fa->started) return HD_TIME_NEVER;
  if (fa->need_key) {
    if (fa->last_key_req != HD_TIME_NEVER) return fa->last_key_req + fa->cfg.keyframe_interval;
    if (!fa->have_emitted && fa->stats.frames_dropped == 0) return fa->start_time + fa->cfg.nack_wait;
    return fa->start_time; /* due now */
  }
  hd_time_t t = HD_TIME_NEVER;
  if (fa->gap_since != HD_TIME_NEVER) {
    t = fa->gap_since + fa->cfg.nack_wait;
    if (fa->last_tl0 >= 0 && fa->tl_tried != fa->highest && fa->gap_since + fa->cfg.tl_wait < t)
      t = fa->gap_since + fa->cfg.tl_wait;
  }
  if (fa->broken_tid) {
    hd_time_t k = fa->broken_since + fa->cfg.tl_key_wait;
    if (fa->last_key_req != HD_TIME_NEVER && fa->last_key_req + fa->cfg.keyframe_interval > k)
      k = fa->last_key_req + fa->cfg.keyframe_interval;
    if (k < t) t = k;
  }
  return t;
}

void hd_frame_asm_set_waits(hd_frame_asm_t *fa, hd_time_t nack_wait, hd_time_t keyframe_interval,
                            hd_time_t tl_wait) {
  if (!fa) return;
  if (nack_wait >= 0) fa->cfg.nack_wait = nack_wait;
  if (keyframe_interval >= 0) fa->cfg.keyframe_interval = keyframe_interval;
  if (tl_wait >= 0) fa->cfg.tl_wait = tl_wait;
}

void hd_frame_asm_request_keyframe(hd_frame_asm_t *fa, hd_time_t now) {
  if (!fa || !fa->slots) return;
  if (!fa->started) {
    fa->started = 1;
    fa->start_time = now - fa->cfg.nack_wait; /* asked explicitly: no start-up grace */
  }
  if (fa->have_emitted) fa->skipped = 1;
  break_chain(fa);
}
