/* TURN REST API style credentials (see turn_cred.h). */
#include "proto/turn_cred.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "base/base64.h"
#include "base/err.h"

int hd_turn_cred_mint(const char *secret, const char *identity, int64_t expiry, char *user, size_t user_cap,
                      char cred[HD_TURN_CRED_LEN]) {
  if (!secret || !secret[0] || !identity || expiry < 0 || !user || !cred) return HD_EINVAL;
  int n = snprintf(user, user_cap, "%lld:%s", (long long)expiry, identity);
  if (n < 0 || (size_t)n >= user_cap) return HD_ENOSPC;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mlen = 0;
  if (!HMAC(EVP_sha1(), secret, (int)strlen(secret), (const unsigned char *)user, (size_t)n, mac, &mlen) ||
      mlen != 20)
    return HD_ECRYPTO;
  return hd_base64_encode(mac, mlen, cred, HD_TURN_CRED_LEN, 0) == HD_TURN_CRED_LEN - 1 ? 0 : HD_ECRYPTO;
}
