/* Reorder window in front of the H.264 depacketiser (see h264_reorder.h). */
#include "media/h264_reorder.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"

#define MASK (HD_H264_REORDER_SLOTS - 1)
/* a packet this far behind the window is not a late repair but a sequence
 * jump (a sender restart): the window follows it */
#define FAR_BEHIND (2 * HD_H264_REORDER_SLOTS)

int hd_h264_reorder_init(hd_h264_reorder_t *r, hd_time_t wait, size_t max_au) {
  if (!r) return HD_EINVAL;
  memset(r, 0, sizeof *r);
  int rc = hd_h264_depay_init(&r->depay, max_au);
  if (rc < 0) return rc;
  r->wait = wait ? wait : HD_H264_REORDER_WAIT_DEFAULT;
  r->pay = malloc((size_t)(HD_H264_REORDER_SLOTS + 1) * HD_H264_REORDER_MAX_PAYLOAD);
  if (!r->pay) {
    hd_h264_depay_free(&r->depay);
    return HD_ENOMEM;
  }
  r->pend_pay = r->pay + (size_t)HD_H264_REORDER_SLOTS * HD_H264_REORDER_MAX_PAYLOAD;
  return 0;
}

void hd_h264_reorder_free(hd_h264_reorder_t *r) {
  if (!r) return;
  hd_h264_depay_free(&r->depay);
  free(r->pay);
  r->pay = r->pend_pay = NULL;
}

static void store(hd_h264_reorder_t *r, uint16_t seq, uint32_t ts, int marker, const uint8_t *p, size_t len,
                  hd_time_t at) {
  unsigned i = seq & MASK;
  if (r->used[i]) {
    r->stats.duplicate++;
    return;
  }
  if (len) memcpy(r->pay + (size_t)i * HD_H264_REORDER_MAX_PAYLOAD, p, len);
  r->len[i] = (uint16_t)len;
  r->ts[i] = ts;
  r->seq[i] = seq;
  r->arrived[i] = at;
  r->used[i] = (uint8_t)(1 | (marker ? 2 : 0));
  r->count++;
}

int hd_h264_reorder_push(hd_h264_reorder_t *r, uint16_t seq, uint32_t ts, int marker, const uint8_t *payload,
                         size_t len, hd_time_t now) {
  if (!r || !r->pay || (!payload && len)) return HD_EINVAL;
  if (len > HD_H264_REORDER_MAX_PAYLOAD) {
    r->stats.too_big++;
    return HD_ENOSPC;
  }
  if (!r->have_next) {
    r->have_next = 1;
    r->next = seq;
  }
  int d = (int16_t)(uint16_t)(seq - r->next);
  if (d >= 0 && d < HD_H264_REORDER_SLOTS) {
    store(r, seq, ts, marker, payload, len, now);
    return 0;
  }
  if (d < 0 && d > -FAR_BEHIND) {
    r->stats.late++; /* its place went out already: a repair past the window, or a duplicate */
    return 0;
  }
  if (r->pend) {
    r->stats.too_big++;
    return HD_ENOSPC;
  }
  r->pend = 1;
  r->pend_seq = seq;
  r->pend_ts = ts;
  r->pend_marker = marker;
  r->pend_len = (uint16_t)len;
  r->pend_at = now;
  if (len) memcpy(r->pend_pay, payload, len);
  return 0;
}

/* the earliest arrival among held packets: since then the gap at `next` is known */
static hd_time_t blocked_since(const hd_h264_reorder_t *r) {
  hd_time_t t = HD_TIME_NEVER;
  unsigned seen = 0;
  for (unsigned k = 1; k < HD_H264_REORDER_SLOTS && seen < r->count; k++) {
    unsigned i = (uint16_t)(r->next + k) & MASK;
    if (!(r->used[i] & 1)) continue;
    seen++;
    if (r->arrived[i] < t) t = r->arrived[i];
  }
  return t;
}

/* skips the gap at `next` up to the next held packet */
static void skip_gap(hd_h264_reorder_t *r) {
  r->stats.skipped++;
  r->gap_seen = 0;
  for (unsigned k = 1; k < HD_H264_REORDER_SLOTS; k++) {
    uint16_t s = (uint16_t)(r->next + k);
    if (r->used[s & MASK] & 1) {
      r->next = s;
      return;
    }
  }
}

int hd_h264_reorder_poll(hd_h264_reorder_t *r, hd_time_t now, hd_h264_au_t *au) {
  if (!r || !r->pay || !au) return HD_EINVAL;
  for (;;) {
    int force = 0;
    if (r->pend) {
      int d = (int16_t)(uint16_t)(r->pend_seq - r->next);
      if (!r->count && (d < 0 || d >= HD_H264_REORDER_SLOTS)) {
        r->stats.skipped++; /* nothing older left: the window moves to it */
        r->next = r->pend_seq;
        r->gap_seen = 0;
        /* the depacketiser sees the jump as a gap (drop to the next IDR),
         * also a jump back, which it would otherwise take for late packets */
        if (r->depay.have_seq) r->depay.next_seq = (uint16_t)(r->pend_seq - 1);
        d = 0;
      }
      if (d >= 0 && d < HD_H264_REORDER_SLOTS) {
        r->pend = 0;
        store(r, r->pend_seq, r->pend_ts, r->pend_marker, r->pend_pay, r->pend_len, r->pend_at);
      } else {
        force = 1; /* make room: every gap before it is given up now */
      }
    }
    if (!r->count) return 0;
    unsigned i = r->next & MASK;
    if (r->used[i] & 1) {
      if (r->gap_seen) {
        r->stats.repaired++;
        r->gap_seen = 0;
      }
      int marker = (r->used[i] & 2) != 0;
      r->used[i] = 0;
      r->count--;
      r->next++;
      int rc = hd_h264_depay_push(&r->depay, r->seq[i], r->ts[i], marker,
                                  r->pay + (size_t)i * HD_H264_REORDER_MAX_PAYLOAD, r->len[i], au);
      if (rc == 1) return 1;
      continue;
    }
    /* a gap at `next` with packets held behind it */
    if (!r->gap_seen) {
      r->gap_seen = 1;
      r->stats.gaps++;
    }
    if (!force && r->wait >= 0 && now - blocked_since(r) < r->wait) return 0;
    skip_gap(r);
  }
}

hd_time_t hd_h264_reorder_next_timeout(const hd_h264_reorder_t *r) {
  if (!r || !r->count || (r->used[r->next & MASK] & 1)) return HD_TIME_NEVER;
  if (r->wait < 0) return 0;
  return blocked_since(r) + r->wait;
}

int hd_h264_reorder_take_key_request(hd_h264_reorder_t *r) {
  return r ? hd_h264_depay_take_key_request(&r->depay) : 0;
}
