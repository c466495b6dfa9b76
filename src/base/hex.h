/* Hex helpers, e.g. "AB:CD:..." certificate fingerprints (RFC 8122 §5). */
#ifndef HD_BASE_HEX_H
#define HD_BASE_HEX_H
#include <stddef.h>
#include <stdint.h>

/* Writes n bytes as upper-case hex, separated by `sep` if nonzero; out must hold
 * 3*n bytes. Returns the string length. */
size_t hd_hex_encode(const uint8_t *in, size_t n, char sep, char *out);
/* Parses hex with optional ':' separators, case-insensitive; returns bytes or HD_EPROTO/HD_ENOSPC. */
int hd_hex_decode(const char *in, size_t n, uint8_t *out, size_t cap);

#endif
