/* Hex encode/decode. */
#include "base/hex.h"

#include "base/err.h"

size_t hd_hex_encode(const uint8_t *in, size_t n, char sep, char *out) {
  static const char digits[] = "0123456789ABCDEF";
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (sep && i) out[o++] = sep;
    out[o++] = digits[in[i] >> 4];
    out[o++] = digits[in[i] & 15];
  }
  out[o] = 0;
  return o;
}

static int nib(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int hd_hex_decode(const char *in, size_t n, uint8_t *out, size_t cap) {
  size_t o = 0, i = 0;
  while (i < n) {
    if (in[i] == ':') {
      i++;
      continue;
    }
    if (i + 1 >= n) return HD_EPROTO;
    int hi = nib(in[i]), lo = nib(in[i + 1]);
    if (hi < 0 || lo < 0) return HD_EPROTO;
    if (o >= cap) return HD_ENOSPC;
    out[o++] = (uint8_t)(hi << 4 | lo);
    i += 2;
  }
  return (int)o;
}
