/* Fuzz target for the node's FlexFEC receiver on a publisher's leg
 * (src/sfu/fec_in.h over rtc/flexfec.h, RFC 8627). The input is a script of
 * events on one protected stream: media packets arriving (any seq order,
 * with a transport-wide seq extension the receiver zeroes), repair packets
 * the fuzzer builds over any subset of the stream (hd_flexfec_encode, then
 * maybe one byte flipped), raw bytes fed as a repair or a media packet, and
 * pops of the rebuilt queue. Any script must be handled without reading
 * outside a buffer or the receiver's caps; every packet popped is RTP of the
 * stream the receiver protects (SSRC, or the one it learnt from the first
 * repair packet) within HD_FLEXFEC_PKT_MAX; and while nothing corrupted or
 * raw has been fed, every rebuilt packet is exactly the stream's packet of
 * that seq (with its transport-wide seq zeroed, as the receiver XORs it). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "sfu/fec_in.h"

#define SSRC 0x11223344u
#define TWCC_ID 3

/* The stream's packet of seq: a pure function of (seq, salt), so the oracle
 * can rebuild it. tw = the transport-wide seq written into the extension. */
static size_t make_pkt(uint16_t seq, uint8_t salt, uint16_t tw, uint8_t *p) {
  size_t plen = 1 + (size_t)((seq * 37u + salt * 11u) % 300u);
  if ((seq ^ salt) % 17 == 0) plen = 1100 + (size_t)(seq % 64); /* some big ones */
  p[0] = 0x90;                                                  /* V=2, X=1 */
  p[1] = (uint8_t)(96 | ((seq % 5 == 0) ? 0x80 : 0));
  p[2] = (uint8_t)(seq >> 8);
  p[3] = (uint8_t)seq;
  uint32_t ts = (uint32_t)(seq / 3) * 3000u + salt;
  p[4] = (uint8_t)(ts >> 24);
  p[5] = (uint8_t)(ts >> 16);
  p[6] = (uint8_t)(ts >> 8);
  p[7] = (uint8_t)ts;
  p[8] = 0x11, p[9] = 0x22, p[10] = 0x33, p[11] = 0x44;
  /* RFC 8285 one-byte extension block: transport-wide seq (2 bytes) */
  p[12] = 0xBE, p[13] = 0xDE, p[14] = 0, p[15] = 1;
  p[16] = (uint8_t)(TWCC_ID << 4 | 1);
  p[17] = (uint8_t)(tw >> 8);
  p[18] = (uint8_t)tw;
  p[19] = 0;
  for (size_t i = 0; i < plen; i++)
    p[20 + i] = (uint8_t)(seq * 13u + i * 7u + salt);
  return 20 + plen;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3) return 0;
  hd_fec_in_t *f = hd_fec_in_new((data[0] & 1) ? SSRC : 0, TWCC_ID);
  if (!f) return 0;
  uint8_t salt = data[1];
  uint16_t base = (uint16_t)(data[2] << 8 | data[0]);
  uint16_t tw = 0;
  int clean = 1; /* nothing corrupted or raw fed: rebuilt packets must be exact */
  static uint8_t pkt[HD_FLEXFEC_PKT_MAX], want[HD_FLEXFEC_PKT_MAX], out[HD_FLEXFEC_PKT_MAX];
  static uint8_t grp[24][HD_FLEXFEC_PKT_MAX], rep[HD_FLEXFEC_PKT_MAX + 64];
  size_t i = 3;
  while (i + 3 <= size) {
    uint8_t op = data[i], a = data[i + 1], b = data[i + 2];
    i += 3;
    switch (op % 6) {
    case 0: { /* a media packet arrives: seq near base */
      uint16_t seq = (uint16_t)(base + (int8_t)a);
      size_t n = make_pkt(seq, salt, tw++, pkt);
      /* refused only by a receiver that learnt another SSRC (raw or corrupted repair) */
      if (hd_fec_in_media(f, pkt, n) < 0 && (clean || f->dec.ssrc == SSRC)) abort();
      if (b & 1) base = (uint16_t)(base + (b >> 1)); /* the stream moves on */
      break;
    }
    case 1:
    case 2: { /* a repair packet over up to 24 packets from seq base + a (mask b...) */
      const uint8_t *pk[24];
      size_t ln[24], n = 0;
      uint16_t first = (uint16_t)(base + (int8_t)a);
      uint32_t mask =
          (uint32_t)b | (i + 2 <= size ? (uint32_t)data[i] << 8 | (uint32_t)data[i + 1] << 16 : 0);
      if (i + 2 <= size) i += 2;
      int step = op % 6 == 2 ? 4 : 1; /* sparse sets reach the longer masks */
      for (int k = 0; k < 24; k++)
        if (mask >> k & 1) {
          ln[n] = make_pkt((uint16_t)(first + k * step), salt, 0, grp[n]);
          pk[n] = grp[n];
          n++;
        }
      if (n == 0) break;
      int r = hd_flexfec_encode(pk, ln, n, 100, (uint16_t)(tw + 7), 0, 0x55667788u, rep, sizeof rep);
      if (r < 0) abort(); /* the inputs are valid: it must encode */
      if (op & 0x80) {    /* one byte flipped */
        rep[(size_t)(op ^ a) % (size_t)r] ^= (uint8_t)(b | 1);
        clean = 0;
      }
      hd_fec_in_repair(f, rep, (size_t)r);
      break;
    }
    case 3:
    case 4: { /* raw bytes from the input, as a repair or a media packet */
      size_t n = (size_t)a << 2 | (b & 3);
      if (n > size - i) n = size - i;
      if (op % 6 == 3)
        hd_fec_in_repair(f, data + i, n);
      else
        hd_fec_in_media(f, data + i, n);
      i += n;
      clean = 0;
      break;
    }
    default: { /* pop what was rebuilt (into a buffer of a given size) */
      size_t cap = (a & 0x80) ? (size_t)a * 4 : sizeof out;
      int n = hd_fec_in_pop(f, out, cap);
      if (n == HD_ENOSPC) break;
      if (n < 0 || (size_t)n > cap) abort();
      if (n == 0) break;
      if (n < 12 || (out[0] >> 6) != 2) abort();
      /* of the stream the receiver protects (SSRC, or what it learnt from a repair packet) */
      uint32_t ssrc = (uint32_t)out[8] << 24 | (uint32_t)out[9] << 16 | (uint32_t)out[10] << 8 | out[11];
      if (ssrc != f->dec.ssrc || (clean && ssrc != SSRC)) abort();
      if (clean) {
        uint16_t seq = (uint16_t)(out[2] << 8 | out[3]);
        size_t w = make_pkt(seq, salt, 0, want);
        if ((size_t)n != w || memcmp(out, want, w) != 0) abort();
      }
      break;
    }
    }
  }
  if (f->qn > HD_FEC_IN_QUEUE || f->qn < 0) abort();
  for (size_t k = 0; k < HD_FLEXFEC_DEC_FEC; k++)
    if (f->dec.fec[k].len > HD_FLEXFEC_PKT_MAX) abort();
  hd_fec_in_free(f);
  return 0;
}
