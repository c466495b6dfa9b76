/* TWCC feedback on the receiving side (see twcc_recv.h). */
#include "rtc/twcc_recv.h"

#include <string.h>

#include "base/err.h"

void hd_twcc_recv_init(hd_twcc_recv_t *r) {
  memset(r, 0, sizeof *r);
  r->last_ext = -1;
  hd_seq_unwrapper_init(&r->unwrap);
}

/* Extended seq of pending entry i (entries are ascending, the last is last_ext). */
static int64_t ext_of(const hd_twcc_recv_t *r, size_t i) {
  return r->last_ext - (int64_t)(uint16_t)(r->pkts[r->n - 1].seq - r->pkts[i].seq);
}

void hd_twcc_recv_add(hd_twcc_recv_t *r, uint16_t seq, hd_time_t arrival) {
  int64_t ext = hd_seq_unwrap(&r->unwrap, seq);
  if (r->last_ext >= 0 && ext <= r->last_ext) {
    /* reordered: insert in order if it is still inside the pending window.
     * With nothing pending it came after the feedback that covered its
     * place (or is a duplicate of a reported one): dropped. Appended, it
     * took last_ext back and the next feedback reported every packet after
     * it again, as not received. */
    if (!r->n || ext < ext_of(r, 0) || r->n >= HD_TWCC_RECV_MAX) {
      r->dropped++;
      return;
    }
    size_t i = r->n;
    while (i > 0) {
      int64_t e = ext_of(r, i - 1);
      if (e == ext) return; /* duplicate */
      if (e < ext) break;
      i--;
    }
    memmove(&r->pkts[i + 1], &r->pkts[i], (r->n - i) * sizeof r->pkts[0]);
    r->pkts[i].seq = seq;
    r->pkts[i].arrival = arrival;
    r->n++;
    return;
  }
  if (r->n >= HD_TWCC_RECV_MAX) {
    /* feedback is overdue; drop the oldest half rather than grow */
    memmove(r->pkts, r->pkts + HD_TWCC_RECV_MAX / 2, (HD_TWCC_RECV_MAX / 2) * sizeof r->pkts[0]);
    r->n -= HD_TWCC_RECV_MAX / 2;
    r->dropped += HD_TWCC_RECV_MAX / 2;
  }
  r->pkts[r->n].seq = seq;
  r->pkts[r->n].arrival = arrival;
  r->n++;
  r->last_ext = ext;
}

int hd_twcc_recv_build(hd_twcc_recv_t *r, uint32_t sender_ssrc, uint32_t media_ssrc, uint8_t *out,
                       size_t cap) {
  if (!r->n) return 0;
  size_t used = 0;
  int len = hd_rtcp_build_twcc(sender_ssrc, media_ssrc, r->fb_count, r->pkts, r->n, &used, out, cap);
  if (len < 0) return len;
  if (used == 0) return HD_ENOSPC;
  r->fb_count++;
  /* the last_ext anchor stays valid: the newest entry, if any remains, is unchanged */
  memmove(r->pkts, r->pkts + used, (r->n - used) * sizeof r->pkts[0]);
  r->n -= used;
  return len;
}
