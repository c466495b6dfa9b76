/* Base64 (RFC 4648 §4) and base64url without padding (§5), for JWT and SDP. */
#ifndef HD_BASE_BASE64_H
#define HD_BASE_BASE64_H
#include <stddef.h>
#include <stdint.h>

/* Encoded length for n input bytes (without NUL). */
size_t hd_base64_encoded_len(size_t n, int url);
/* Encodes into out (cap includes room for the NUL); returns length or HD_ENOSPC.
 * url=1 selects the URL alphabet and drops padding. */
int hd_base64_encode(const void *in, size_t n, char *out, size_t cap, int url);
/* Decodes either alphabet, padding optional; returns length or HD_EPROTO/HD_ENOSPC. */
int hd_base64_decode(const char *in, size_t n, uint8_t *out, size_t cap);

#endif
