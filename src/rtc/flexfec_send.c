/* FlexFEC send side: see flexfec_send.h. */
#include "rtc/flexfec_send.h"

#include <string.h>

#include "base/err.h"

void hd_flexfec_send_init(hd_flexfec_send_t *s, uint16_t first_seq) {
  s->n = 0;
  s->group = 0;
  s->loss = -1; /* no report yet */
  s->seq = first_seq;
  s->sent = 0;
}

void hd_flexfec_send_on_report(hd_flexfec_send_t *s, double loss) {
  if (!(loss >= 0)) return;
  if (loss > 1) loss = 1;
  /* from 0: the first report covers a few packets and may read anything */
  if (s->loss < 0) s->loss = 0;
  s->loss += HD_FLEXFEC_SEND_LOSS_GAIN * (loss - s->loss);
}

int hd_flexfec_send_group(const hd_flexfec_send_t *s, hd_time_t rtt, int nack) {
  if (s->loss < 0) return 0;
  /* without NACK from the peer FEC is the only repair: no RTT exemption */
  if (!nack) return hd_flexfec_plan(s->loss, 0);
  /* with NACK, FEC waits for a measured round trip (the first reports came
   * before one and turned FEC on at 5% loss for a moment: a receiver that
   * saw repair packets once waits for them before every NACK) */
  if (rtt <= 0) return 0;
  return hd_flexfec_plan(s->loss, rtt);
}

static uint16_t seq_of(const uint8_t *p) { return (uint16_t)(p[2] << 8 | p[3]); }

/* Inserts a one-byte-header extension block (RFC 8285 §4.2) holding a zero
 * transport-wide seq after the repair packet's CSRC (it has no extension). */
static int add_twcc(uint8_t *out, size_t len, size_t cap, uint8_t id) {
  if (id < 1 || id > 14 || len < HD_FLEXFEC_RTP_HDR || (out[0] & 0x10)) return (int)len;
  if (len + 8 > cap) return HD_ENOSPC;
  memmove(out + HD_FLEXFEC_RTP_HDR + 8, out + HD_FLEXFEC_RTP_HDR, len - HD_FLEXFEC_RTP_HDR);
  uint8_t *x = out + HD_FLEXFEC_RTP_HDR;
  x[0] = 0xBE;
  x[1] = 0xDE;
  x[2] = 0;
  x[3] = 1;                      /* one 32-bit word */
  x[4] = (uint8_t)(id << 4 | 1); /* id, len - 1 = 1 */
  x[5] = x[6] = 0;               /* the seq, stamped as it leaves */
  x[7] = 0;                      /* padding */
  out[0] |= 0x10;                /* X */
  return (int)len + 8;
}

int hd_flexfec_send_add(hd_flexfec_send_t *s, int group, const uint8_t *pkt, size_t len, int marker,
                        uint8_t twcc_id, uint8_t pt, uint32_t ssrc, uint8_t *out, size_t cap) {
  if (group <= 0) {
    s->n = 0; /* FEC off: an open group is dropped */
    s->group = 0;
    return 0;
  }
  if (!pkt || !out || len < 12 || len > HD_FLEXFEC_PKT_MAX || (pkt[0] >> 6) != 2) return HD_EINVAL;
  if (group > HD_FLEXFEC_MAX_GROUP) group = HD_FLEXFEC_MAX_GROUP;
  s->group = group;
  /* RTP padding (a padding-only placeholder): not protected, the group goes
   * on. Its RTX copy drops the padding (RFC 4588 §4 carries the payload,
   * proto/rtp.h hd_rtp_rtx_build), so the receiver's unwrapped copy would not
   * be the bytes the repair packet covered. */
  if (pkt[0] & 0x20) return 0;
  if (s->n > 0) { /* the seqs of one group ascend from its first, within the mask */
    uint16_t first = seq_of(s->pkts[0]), last = seq_of(s->pkts[s->n - 1]), q = seq_of(pkt);
    int same = memcmp(pkt + 8, s->pkts[0] + 8, 4) == 0;
    /* a late packet (at most a mask behind the last): not protected, the
     * group goes on. Further behind is a seq far ahead (packets this encoder
     * did not see, e.g. while an answer declined FEC): a new group. */
    if (same && (uint16_t)(last - q) < HD_FLEXFEC_MAX_MASK) return 0;
    if (!same || (uint16_t)(q - first) >= HD_FLEXFEC_MAX_MASK) s->n = 0;
  }
  memcpy(s->pkts[s->n], pkt, len);
  hd_flexfec_zero_ext(s->pkts[s->n], len, twcc_id);
  s->lens[s->n] = len;
  s->n++;
  if (s->n < group && !(marker && s->n >= 2 && 2 * s->n >= group)) return 0;
  const uint8_t *p[HD_FLEXFEC_MAX_GROUP];
  for (int i = 0; i < s->n; i++)
    p[i] = s->pkts[i];
  /* the repair packet's timestamp: the last protected packet's (RFC 8627 §4.1) */
  uint32_t ts = (uint32_t)pkt[4] << 24 | (uint32_t)pkt[5] << 16 | (uint32_t)pkt[6] << 8 | pkt[7];
  int n = hd_flexfec_encode(p, s->lens, (size_t)s->n, pt, s->seq, ts, ssrc, out, cap);
  s->n = 0;
  if (n > 0) n = add_twcc(out, (size_t)n, cap, twcc_id);
  if (n > 0) {
    s->seq++;
    s->sent++;
  }
  return n;
}
