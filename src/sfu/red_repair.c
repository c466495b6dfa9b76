/* RED gap repair at the node: see red_repair.h. */
#include "sfu/red_repair.h"

#include <string.h>

#include "media/rtp_payload.h"

#define PKT_MAX 1500

void hd_red_repair_init(hd_red_repair_t *r) { memset(r, 0, sizeof *r); }

/* The uniform timestamp step per packet across a gap of n seqs, 0 if none. */
static uint32_t step_of(uint32_t dts, uint16_t n) {
  if (!n || dts % n) return 0;
  uint32_t s = dts / n;
  return s == 480 || s == 960 || s == 1920 || s == 2880 ? s : 0; /* 10/20/40/60 ms at 48 kHz */
}

int hd_red_repair_feed(hd_red_repair_t *r, const hd_rtp_hdr_t *h, hd_red_repair_fn fn, void *ud) {
  if (!r->have) {
    r->have = 1;
    r->seq = h->seq;
    r->ts = h->ts;
    return 0;
  }
  int16_t d = (int16_t)(h->seq - r->seq);
  if (d <= 0) return 0; /* late, reordered or repeated: passes through */
  uint32_t prev_ts = r->ts;
  r->seq = h->seq;
  r->ts = h->ts;
  if (d == 1) return 0;
  uint16_t missing = (uint16_t)(d - 1);
  uint32_t step = step_of(h->ts - prev_ts, (uint16_t)d);
  hd_red_block_t b[HD_RED_MAX_BLOCKS];
  int nb = step && missing <= HD_RED_REPAIR_MAX_GAP ? hd_red_parse(h->payload, h->payload_len, b) : -1;
  if (nb < 2) {
    r->unrepaired += missing;
    return 0;
  }
  int made = 0;
  for (uint16_t k = missing; k >= 1; k--) { /* oldest first: seq h->seq - k */
    uint32_t off = k * step;
    int at = -1;
    for (int i = 0; i < nb - 1; i++)
      if (b[i].ts_offset == off) at = i;
    if (at < 0 || b[at].len == 0) {
      r->unrepaired++;
      continue;
    }
    /* the lost frame as primary, with the blocks older than it still as redundancy */
    hd_red_block_t o[HD_RED_MAX_BLOCKS];
    int no = 0;
    for (int i = 0; i < at; i++)
      if (b[i].ts_offset > off) {
        o[no] = b[i];
        o[no].ts_offset = (uint16_t)(b[i].ts_offset - off);
        no++;
      }
    o[no++] = b[at];
    uint8_t payload[PKT_MAX];
    int pl = hd_red_build(o, no, payload, sizeof payload);
    if (pl < 0) {
      r->unrepaired++;
      continue;
    }
    hd_rtp_build_t bd = {.pt = h->pt, .seq = (uint16_t)(h->seq - k), .ts = h->ts - off, .ssrc = h->ssrc};
    uint8_t pkt[PKT_MAX];
    int n = hd_rtp_build(&bd, payload, (size_t)pl, pkt, sizeof pkt);
    if (n < 0) {
      r->unrepaired++;
      continue;
    }
    r->repaired++;
    made++;
    if (fn) fn(ud, pkt, (size_t)n);
  }
  return made;
}
