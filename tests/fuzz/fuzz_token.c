/* Fuzz target for hd_token_verify (JWT compact form, base64url, JSON claims)
 * and hd_token_from_bearer, with one fixed tenant. Any input must yield 0 or a
 * negative HD_E* code, never a crash, leak or out-of-bounds access. A random
 * payload never carries a valid MAC, so each input is also re-signed with the
 * fixed tenant secret and verified again: that drives the header/claim parsers
 * behind the signature check without any fuzz-only bypass in the library. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base/base64.h"
#include "base/err.h"
#include "proto/token.h"

static const char *lookup(void *ud, const char *key) {
  (void)ud;
  return strcmp(key, "APIfuzz") == 0 ? "fuzz-secret" : NULL;
}

static void check(const char *jwt, size_t size) {
  hd_token_claims_t c;
  char why[96];
  int r = hd_token_verify(jwt, size, lookup, NULL, 1700000000, 10, &c, why, sizeof why);
  if (r > 0 || r <= HD_E_LAST) abort();
  if (r == 0) {
    /* Verified claims are NUL-terminated and usable by the authorizer. */
    if (!memchr(c.key, 0, sizeof c.key) || !memchr(c.room, 0, sizeof c.room) ||
        !memchr(c.metadata, 0, sizeof c.metadata))
      abort();
    (void)hd_token_authorize(&c, "lobby", HD_GRANT_JOIN | HD_GRANT_PUBLISH, why, sizeof why);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  check((const char *)data, size);

  /* Re-sign: keep everything up to the last '.', append a valid HS256 MAC. */
  const uint8_t *dot = NULL;
  for (size_t i = size; i > 0; i--)
    if (data[i - 1] == '.') {
      dot = data + i - 1;
      break;
    }
  if (dot && size < 2 * HD_TOKEN_MAX) {
    size_t n = (size_t)(dot - data);
    char *t = malloc(n + 1 + 44);
    uint8_t md[32];
    unsigned int mdlen = 0;
    if (!t) return 0;
    memcpy(t, data, n + 1);
    if (HMAC(EVP_sha256(), "fuzz-secret", 11, data, n, md, &mdlen) &&
        hd_base64_encode(md, mdlen, t + n + 1, 44, 1) == 43)
      check(t, n + 1 + 43);
    free(t);
  }
  /* Same bytes as an Authorization header value. */
  if (size < 8192) {
    char *hdr = malloc(size + 1);
    if (!hdr) return 0;
    memcpy(hdr, data, size);
    hdr[size] = 0;
    const char *tok;
    size_t len;
    if (hd_token_from_bearer(hdr, &tok, &len) == 0 && (tok < hdr || tok + len > hdr + size)) abort();
    free(hdr);
  }
  return 0;
}
