/* Fuzz target for RFC 4571 deframing (src/proto/rfc4571): arbitrary bytes are
 * split into frames as the ICE-TCP reader does; every frame found must lie
 * inside the input, re-framing it must give back the same bytes, and a stream
 * must either be consumed, end in a partial frame, or be refused. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "proto/rfc4571.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* the first byte picks the cap, as callers use different ones */
  size_t max = size ? 1 + (size_t)data[0] * 8 : 1500;
  size_t off = size ? 1 : 0;
  static uint8_t again[HD_RFC4571_MAX + HD_RFC4571_HDR];
  for (;;) {
    const uint8_t *p = NULL;
    size_t n = 0;
    int rc = hd_rfc4571_next(data + off, size - off, max, &p, &n);
    if (rc == HD_EPROTO) break;
    if (rc < 0) abort();
    if (rc == 0) {
      /* incomplete: either under a header, or under the length it announces */
      if (size - off >= HD_RFC4571_HDR &&
          size - off >= HD_RFC4571_HDR + ((size_t)data[off] << 8 | data[off + 1]))
        abort();
      break;
    }
    if (n == 0 || n > max || p != data + off + HD_RFC4571_HDR || (size_t)rc != n + HD_RFC4571_HDR ||
        off + (size_t)rc > size)
      abort();
    if (hd_rfc4571_frame(p, n, again, sizeof again) != rc || memcmp(again, data + off, (size_t)rc) != 0)
      abort();
    off += (size_t)rc;
  }
  return 0;
}
