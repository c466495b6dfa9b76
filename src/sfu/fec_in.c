/* FlexFEC on a publisher's leg: see fec_in.h. */
#include "sfu/fec_in.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"

hd_fec_in_t *hd_fec_in_new(uint32_t ssrc, uint8_t twcc_id) {
  hd_fec_in_t *f = malloc(sizeof *f);
  if (!f) return NULL;
  memset(f, 0, sizeof *f);
  hd_flexfec_dec_init(&f->dec, ssrc);
  f->twcc_id = twcc_id;
  return f;
}

void hd_fec_in_free(hd_fec_in_t *f) { free(f); }

static void queue(void *ud, const uint8_t *pkt, size_t len) {
  hd_fec_in_t *f = ud;
  if (len > HD_FLEXFEC_PKT_MAX) return;
  if (f->qn == HD_FEC_IN_QUEUE) { /* the oldest goes: NACK still covers it */
    f->qhead = (f->qhead + 1) % HD_FEC_IN_QUEUE;
    f->qn--;
    f->dropped++;
  }
  int slot = (f->qhead + f->qn) % HD_FEC_IN_QUEUE;
  memcpy(f->q[slot], pkt, len);
  f->qlen[slot] = (uint16_t)len;
  f->qn++;
  f->recovered++;
}

int hd_fec_in_media(hd_fec_in_t *f, const uint8_t *pkt, size_t len) {
  if (!f || !pkt) return HD_EINVAL;
  if (len > HD_FLEXFEC_PKT_MAX) return HD_EINVAL;
  uint8_t copy[HD_FLEXFEC_PKT_MAX];
  memcpy(copy, pkt, len);
  hd_flexfec_zero_ext(copy, len, f->twcc_id);
  return hd_flexfec_dec_media(&f->dec, copy, len, queue, f);
}

int hd_fec_in_repair(hd_fec_in_t *f, const uint8_t *pkt, size_t len) {
  if (!f || !pkt) return HD_EINVAL;
  f->received++;
  return hd_flexfec_dec_fec(&f->dec, pkt, len, queue, f);
}

int hd_fec_in_pop(hd_fec_in_t *f, uint8_t *out, size_t cap) {
  if (!f || !f->qn) return 0;
  int slot = f->qhead;
  size_t len = f->qlen[slot];
  f->qhead = (f->qhead + 1) % HD_FEC_IN_QUEUE;
  f->qn--;
  if (len > cap) return HD_ENOSPC;
  memcpy(out, f->q[slot], len);
  return (int)len;
}
