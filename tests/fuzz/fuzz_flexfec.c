/* Fuzz target for the FlexFEC repair-packet parser and receiver
 * (src/rtc/flexfec, RFC 8627): any input must be parsed or rejected without
 * reading outside it; a parsed header's payload lies inside the input; fed to
 * a receiver that holds a few media packets (as a repair packet and as a media
 * packet), whatever it rebuilds is RTP of the protected stream within the
 * size cap, and the receiver's caps hold. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rtc/flexfec.h"

static hd_flexfec_dec_t g_dec;

static void on_rec(void *ud, const uint8_t *pkt, size_t len) {
  (void)ud;
  if (len < 12 || len > HD_FLEXFEC_PKT_MAX || (pkt[0] >> 6) != 2) abort();
  if (pkt[8] != 0x11 || pkt[9] != 0x22 || pkt[10] != 0x33 || pkt[11] != 0x44) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hd_flexfec_hdr_t h;
  if (hd_flexfec_parse(data, size, &h) == 0) {
    if (h.payload < data || h.payload + h.payload_len > data + size) abort();
    if (h.mask_bits != 15 && h.mask_bits != 46 && h.mask_bits != 109) abort();
  }
  hd_flexfec_dec_init(&g_dec, 0x11223344u);
  /* media packets around the input's SN base (if it has one), every other seq */
  uint16_t base = size >= 26 ? (uint16_t)(data[24] << 8 | data[25]) : 0;
  for (int i = 0; i < 40; i += 2) {
    uint8_t p[64] = {0x80, 96, 0, 0, 0, 0, 0, 1, 0x11, 0x22, 0x33, 0x44};
    uint16_t q = (uint16_t)(base + i);
    p[2] = (uint8_t)(q >> 8);
    p[3] = (uint8_t)q;
    for (int k = 12; k < 12 + 8 + i; k++)
      p[k] = (uint8_t)(k * 31 + i);
    hd_flexfec_dec_media(&g_dec, p, (size_t)(20 + i), on_rec, NULL);
  }
  hd_flexfec_dec_fec(&g_dec, data, size, on_rec, NULL);
  hd_flexfec_dec_media(&g_dec, data, size, on_rec, NULL);
  hd_flexfec_dec_fec(&g_dec, data, size, on_rec, NULL);
  for (size_t i = 0; i < HD_FLEXFEC_DEC_FEC; i++)
    if (g_dec.fec[i].len > HD_FLEXFEC_PKT_MAX) abort();
  return 0;
}
