/* Fuzz target for proto/srtp on the native AES-GCM engine (proto/srtp_gcm):
 * arbitrary bytes to unprotect / unprotect_rtcp, and the same bytes as a plain
 * packet through protect on one end and unprotect on the other, which must give
 * them back (or be a replay: a repeated index, or one far behind). Sessions live
 * across inputs. Two pairs: one where the input's SSRC is folded onto 16 values,
 * one with SSRCs as given, whose tables fill up, replace and retire streams (and
 * whose sender finally refuses new SSRCs). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "proto/srtp.h"

static hd_srtp_t *g_tx[2], *g_rx[2];
static uint8_t g_buf[4096], g_orig[4096];

static void setup(void) {
  uint8_t k1[28], k2[28];
  for (int i = 0; i < 28; i++) {
    k1[i] = (uint8_t)(i * 7 + 1);
    k2[i] = (uint8_t)(0xa5 ^ i);
  }
  for (int i = 0; i < 2; i++) {
    if (hd_srtp_new(&g_tx[i], HD_SRTP_AEAD_AES_128_GCM, k1, k2, 28) < 0) abort();
    if (hd_srtp_new(&g_rx[i], HD_SRTP_AEAD_AES_128_GCM, k2, k1, 28) < 0) abort();
    if (strcmp(hd_srtp_engine(g_rx[i]), "native") != 0) abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!g_tx[0]) setup();
  if (size < 1 || size > sizeof g_buf - HD_SRTP_MAX_TRAILER) return 0;
  int rtcp = data[0] & 1, strict = (data[0] >> 1) & 1;
  hd_srtp_t *tx = g_tx[strict], *rx = g_rx[strict];
  const uint8_t *p = data + 1;
  size_t n = size - 1;
  /* As received from the network. */
  memcpy(g_buf, p, n);
  int r = rtcp ? hd_srtp_unprotect_rtcp(rx, g_buf, n) : hd_srtp_unprotect(rx, g_buf, n);
  if (r >= 0 && (size_t)r > n) abort();
  /* As a plain packet: protect, then unprotect on the other end. */
  memcpy(g_buf, p, n);
  size_t at = rtcp ? 4 : 8; /* SSRC offset */
  if (strict && n >= at + 4) g_buf[at] = g_buf[at + 1] = g_buf[at + 2] = 0, g_buf[at + 3] &= 0x0f;
  memcpy(g_orig, g_buf, n);
  int m =
      rtcp ? hd_srtp_protect_rtcp(tx, g_buf, n, sizeof g_buf) : hd_srtp_protect(tx, g_buf, n, sizeof g_buf);
  if (m < 0) return 0;
  if ((size_t)m != n + (rtcp ? 20 : 16)) abort();
  r = rtcp ? hd_srtp_unprotect_rtcp(rx, g_buf, (size_t)m) : hd_srtp_unprotect(rx, g_buf, (size_t)m);
  if (r == HD_EREPLAY) return 0;
  if (r != (int)n || memcmp(g_buf, g_orig, n) != 0) abort();
  return 0;
}
