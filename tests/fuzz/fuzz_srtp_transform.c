/* Fuzz target for the SRTP/SRTCP transform (src/proto/srtp), both profiles
 * (AES-CM on libsrtp2, AES-GCM on the native engine; fuzz_srtp drives the
 * native engine's stream tables harder): what the node
 * feeds it is whatever arrives on the media port. The first input byte picks
 * the profile (bit 0: AEAD_AES_128_GCM or AES_CM_128_HMAC_SHA1_80); the rest
 * is a list of datagrams, each a 2-byte big-endian length, a flag byte (bit 0:
 * RTCP) and its bytes. Each datagram is
 *   - unprotected as received (forged or garbage): must fail with a documented
 *     code, or succeed with a length no larger than the input;
 *   - protected by a sender whose key the receiver holds, then unprotected: a
 *     packet protect accepts must come back byte for byte (replays aside),
 *     and one flipped bit must be refused (RFC 3711 §3.4 authentication).
 * Any crash, sanitizer report or broken invariant is a bug. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "proto/srtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXPKT 1600

static int unprotect(hd_srtp_t *s, int rtcp, uint8_t *p, size_t len) {
  return rtcp ? hd_srtp_unprotect_rtcp(s, p, len) : hd_srtp_unprotect(s, p, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  int profile = data[0] & 1 ? HD_SRTP_AEAD_AES_128_GCM : HD_SRTP_AES128_CM_SHA1_80;
  int kl = hd_srtp_key_len(profile);
  if (kl <= 0 || kl > 32) abort();
  uint8_t k1[32], k2[32];
  for (int i = 0; i < 32; i++) {
    k1[i] = (uint8_t)(0x11 * i + 1);
    k2[i] = (uint8_t)(0x5a ^ i);
  }
  hd_srtp_t *tx = NULL, *rx = NULL;
  if (hd_srtp_new(&tx, profile, k1, k2, (size_t)kl) || hd_srtp_new(&rx, profile, k2, k1, (size_t)kl)) abort();
  size_t pos = 1;
  while (pos + 3 <= size) {
    size_t len = (size_t)data[pos] << 8 | data[pos + 1];
    int rtcp = data[pos + 2] & 1;
    pos += 3;
    if (len > size - pos) len = size - pos;
    if (len > MAXPKT - HD_SRTP_MAX_TRAILER) len = MAXPKT - HD_SRTP_MAX_TRAILER;
    const uint8_t *in = data + pos;
    pos += len;

    /* 1. as received */
    uint8_t buf[MAXPKT];
    memcpy(buf, in, len);
    int rc = unprotect(rx, rtcp, buf, len);
    if (rc >= 0 && (size_t)rc > len) abort();
    if (rc < 0 && rc != HD_EAUTH && rc != HD_EREPLAY && rc != HD_EPROTO && rc != HD_ECRYPTO) abort();

    /* 2. protect, then unprotect on the other side */
    uint8_t p[MAXPKT];
    memcpy(p, in, len);
    int n = rtcp ? hd_srtp_protect_rtcp(tx, p, len, sizeof p) : hd_srtp_protect(tx, p, len, sizeof p);
    if (n < 0) {
      if (n != HD_EPROTO && n != HD_ENOSPC && n != HD_ECRYPTO && n != HD_EREPLAY) abort();
      continue;
    }
    if ((size_t)n < len || (size_t)n > len + HD_SRTP_MAX_TRAILER) abort();
    uint8_t flipped[MAXPKT];
    memcpy(flipped, p, (size_t)n);
    flipped[n - 1] ^= 0x01; /* the tag: never valid */
    rc = unprotect(rx, rtcp, flipped, (size_t)n);
    if (rc >= 0) abort();
    rc = unprotect(rx, rtcp, p, (size_t)n);
    if (rc == HD_EREPLAY) continue; /* the same sequence number / index twice in one input */
    if (rc != (int)len || memcmp(p, in, len)) abort();
  }
  hd_srtp_free(tx);
  hd_srtp_free(rx);
  return 0;
}
