/* RFC 4648 base64 and base64url. */
#include "base/base64.h"

#include "base/err.h"

static const char std_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t hd_base64_encoded_len(size_t n, int url) {
  if (!url) return (n + 2) / 3 * 4;
  return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

int hd_base64_encode(const void *in, size_t n, char *out, size_t cap, int url) {
  const uint8_t *p = in;
  const char *a = url ? url_alpha : std_alpha;
  size_t need = hd_base64_encoded_len(n, url);
  if (cap < need + 1) return HD_ENOSPC;
  size_t o = 0, i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8) | p[i + 2];
    out[o++] = a[v >> 18];
    out[o++] = a[(v >> 12) & 63];
    out[o++] = a[(v >> 6) & 63];
    out[o++] = a[v & 63];
  }
  if (n - i == 1) {
    uint32_t v = (uint32_t)p[i] << 16;
    out[o++] = a[v >> 18];
    out[o++] = a[(v >> 12) & 63];
    if (!url) {
      out[o++] = '=';
      out[o++] = '=';
    }
  } else if (n - i == 2) {
    uint32_t v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8);
    out[o++] = a[v >> 18];
    out[o++] = a[(v >> 12) & 63];
    out[o++] = a[(v >> 6) & 63];
    if (!url) out[o++] = '=';
  }
  out[o] = 0;
  return (int)o;
}

static int dec(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

int hd_base64_decode(const char *in, size_t n, uint8_t *out, size_t cap) {
  while (n > 0 && in[n - 1] == '=')
    n--;
  if (n % 4 == 1) return HD_EPROTO;
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    int d = dec(in[i]);
    if (d < 0) return HD_EPROTO;
    acc = (acc << 6) | (uint32_t)d;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (o >= cap) return HD_ENOSPC;
      out[o++] = (uint8_t)(acc >> bits);
    }
  }
  return (int)o;
}
