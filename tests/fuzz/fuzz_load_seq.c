/* Fuzz target for the count-only accounting of src/client/load: the clear RTP
 * header peek, and a stream of 16-bit seqs (input bytes in pairs) through
 * hd_load_seq_t with the window marked at a third and two thirds. Whatever the
 * order, a packet is never counted twice: in_window <= expected. */
#include <stdint.h>
#include <stdlib.h>

#include "client/load.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint32_t ssrc;
  uint16_t seq;
  int pt;
  if (hd_load_rtp_peek(data, size, &ssrc, &seq, &pt) == 1 && (pt < 0 || pt > 127 || (pt >= 64 && pt <= 95)))
    abort();
  static hd_load_seq_t s;
  hd_load_seq_init(&s, 1, 96);
  size_t n = size / 2;
  uint64_t fed = 0;
  for (size_t i = 0; i < n; i++) {
    if (i == n / 3) hd_load_seq_window_start(&s);
    if (i == 2 * n / 3) hd_load_seq_window_end(&s);
    fed += (uint64_t)hd_load_seq_feed(&s, (uint16_t)(data[2 * i] << 8 | data[2 * i + 1]));
  }
  if (!s.started) hd_load_seq_window_start(&s);
  if (!s.ended) hd_load_seq_window_end(&s);
  if (s.received != fed || s.in_window > hd_load_seq_expected(&s) || s.arrived > s.received) abort();
  return 0;
}
