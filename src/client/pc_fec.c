/* FlexFEC for the client PeerConnection: see pc_fec.h. */
#include "client/pc_fec.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"

static pc_fec_t *fec_of(pc_trx_t *t) {
  if (!t->fec && (t->fec = calloc(1, sizeof *t->fec)) != NULL) t->fec->loss = -1; /* no report yet */
  return t->fec;
}

void pc_fec_on_report(pc_trx_t *t, double loss) {
  if (!t->fec_pt) return;
  pc_fec_t *f = fec_of(t);
  if (!f) return;
  /* from 0: the first report covers a few packets and may read anything */
  if (f->loss < 0) f->loss = 0;
  f->loss += PC_FEC_LOSS_GAIN * (loss - f->loss);
}

int pc_fec_group(const hd_pc_t *pc, const pc_trx_t *t) {
  if (!t->fec_pt || !t->fec || t->fec->loss < 0) return 0;
  /* without NACK from the peer FEC is the only repair: no RTT exemption */
  hd_time_t rtt = !t->nack ? 0 : t->st.rtt > 0 ? t->st.rtt : pc->rtt;
  /* with NACK, FEC waits for a measured round trip (the first reports came
   * before one and turned FEC on at 5% loss for a moment: a node that saw
   * repair packets once waits for them before every NACK) */
  if (t->nack && rtt <= 0) return 0;
  return hd_flexfec_plan(t->fec->loss, rtt);
}

int pc_fec_sent(const hd_pc_t *pc, pc_trx_t *t, const uint8_t *pkt, size_t len, int marker, uint8_t *out,
                size_t cap) {
  int group = pc_fec_group(pc, t);
  if (!group) {
    if (t->fec) t->fec->n = 0; /* FEC off: an open group is dropped */
    return 0;
  }
  if (len > HD_FLEXFEC_PKT_MAX) return HD_EINVAL;
  pc_fec_t *f = fec_of(t);
  if (!f) return HD_ENOMEM;
  f->group = group;
  memcpy(f->pkts[f->n], pkt, len);
  hd_flexfec_zero_ext(f->pkts[f->n], len, t->ext_twcc);
  f->lens[f->n] = len;
  f->n++;
  /* a frame end closes a group at least half full (its repair is not held
   * for the next frame), a smaller one carries over */
  if (f->n < group && !(marker && f->n >= 2 && 2 * f->n >= group)) return 0;
  const uint8_t *p[PC_FEC_GROUP_MAX];
  for (int i = 0; i < f->n; i++)
    p[i] = f->pkts[i];
  /* the repair packet's timestamp: the last protected packet's (RFC 8627 §4.1) */
  uint32_t ts = (uint32_t)pkt[4] << 24 | (uint32_t)pkt[5] << 16 | (uint32_t)pkt[6] << 8 | pkt[7];
  int n = hd_flexfec_encode(p, f->lens, (size_t)f->n, t->fec_pt, t->fec_seq, ts, t->fec_ssrc, out, cap);
  f->n = 0;
  if (n > 0) t->fec_seq++;
  return n;
}

int pc_fec_media(pc_trx_t *t, const uint8_t *pkt, size_t len, hd_flexfec_recovered_fn fn, void *ud) {
  if (!t->fec || !t->fec->dec || len > HD_FLEXFEC_PKT_MAX) return 0; /* nothing to recover with yet */
  uint8_t copy[HD_FLEXFEC_PKT_MAX];
  memcpy(copy, pkt, len);
  hd_flexfec_zero_ext(copy, len, t->ext_twcc);
  return hd_flexfec_dec_media(t->fec->dec, copy, len, fn, ud);
}

int pc_fec_repair(pc_trx_t *t, const uint8_t *pkt, size_t len, hd_flexfec_recovered_fn fn, void *ud) {
  pc_fec_t *f = fec_of(t);
  if (!f) return HD_ENOMEM;
  if (!f->dec) {
    f->dec = malloc(sizeof *f->dec);
    if (!f->dec) return HD_ENOMEM;
    hd_flexfec_dec_init(f->dec, t->r_ssrc);
  }
  return hd_flexfec_dec_fec(f->dec, pkt, len, fn, ud);
}

void pc_fec_free(pc_trx_t *t) {
  if (!t->fec) return;
  free(t->fec->dec);
  free(t->fec);
  t->fec = NULL;
}
