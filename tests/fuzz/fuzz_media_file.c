/* Fuzz target for the WAV, Y4M and IVF readers (src/media/media_file): any
 * input parses or is rejected without reading outside it, and what parses
 * points inside the input. */
#include <stdint.h>
#include <stdlib.h>

#include "base/err.h"
#include "media/media_file.h"

static void inside(const uint8_t *p, size_t n, const uint8_t *base, size_t len) {
  if (p < base || n > len || (size_t)(p - base) > len - n) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hd_wav_info_t w;
  if (hd_wav_parse(data, size, &w) == 0) {
    inside(data + w.data_off, w.data_len, data, size);
    if (w.data_len % ((size_t)w.channels * 2) != 0) abort();
  }
  hd_y4m_info_t y;
  if (hd_y4m_parse_header(data, size, &y) == 0) {
    if (y.header_len > size || y.frame_size != hd_i420_size(y.width, y.height)) abort();
    size_t off = y.header_len;
    for (int i = 0; i < 4 && off < size; i++) {
      hd_i420_t f;
      int n = hd_y4m_parse_frame(data + off, size - off, &y, &f);
      if (n < 0) break;
      inside(f.plane[0], y.frame_size, data, size);
      /* touch the last chroma byte: ASan checks it lies inside the input */
      volatile uint8_t last = f.plane[2][(size_t)f.stride[2] * (size_t)(hd_i420_chroma(y.height) - 1) +
                                         (size_t)hd_i420_chroma(y.width) - 1];
      (void)last;
      off += (size_t)n;
    }
  }
  hd_ivf_info_t v;
  if (hd_ivf_parse_header(data, size, &v) == 0) {
    size_t off = v.header_len;
    for (int i = 0; i < 8 && off < size; i++) {
      const uint8_t *p;
      size_t n;
      uint64_t pts;
      int r = hd_ivf_parse_frame(data + off, size - off, &p, &n, &pts);
      if (r < 0) break;
      inside(p, n, data, size);
      off += (size_t)r;
    }
  }
  return 0;
}
