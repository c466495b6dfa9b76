/* FlexFEC for the client PeerConnection: see pc_fec.h. */
#include "client/pc_fec.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"

static pc_fec_t *fec_of(pc_trx_t *t) {
  if (!t->fec && (t->fec = calloc(1, sizeof *t->fec)) != NULL)
    hd_flexfec_send_init(&t->fec->send, t->fec_seq);
  return t->fec;
}

void pc_fec_on_report(pc_trx_t *t, double loss) {
  /* also while an answer has declined FlexFEC (t->fec kept, fec_pt 0): the
   * answer that takes it again starts from the loss as it is then */
  if (!t->fec_pt && !t->fec) return;
  pc_fec_t *f = fec_of(t);
  if (f) hd_flexfec_send_on_report(&f->send, loss);
}

void pc_fec_off(pc_trx_t *t) {
  if (t->fec) hd_flexfec_send_add(&t->fec->send, 0, NULL, 0, 0, 0, 0, 0, NULL, 0); /* plan 0 */
}

int pc_fec_group(const hd_pc_t *pc, const pc_trx_t *t) {
  if (!t->fec_pt || !t->fec) return 0;
  hd_time_t rtt = t->st.rtt > 0 ? t->st.rtt : pc->rtt;
  return hd_flexfec_send_group(&t->fec->send, rtt, t->nack);
}

int pc_fec_sent(const hd_pc_t *pc, pc_trx_t *t, const uint8_t *pkt, size_t len, int marker, uint8_t *out,
                size_t cap) {
  int group = pc_fec_group(pc, t);
  if (!group && !t->fec) return 0;
  pc_fec_t *f = fec_of(t);
  if (!f) return HD_ENOMEM;
  return hd_flexfec_send_add(&f->send, group, pkt, len, marker, t->ext_twcc, t->fec_pt, t->fec_ssrc, out,
                             cap);
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
