/* Fuzz target for relaying (src/overlay/relay): a RELAY body either parses
 * into a header that writes back to the same bytes, or is refused; a
 * HOP_NACK likewise; a relay's worker is in range and a rescue's header
 * writes and avoids the dead link; the per-hop receiving side and the de-duplication
 * window, fed sequence numbers from the input, keep their caps (holes,
 * NACKs per poll) and never deliver one sequence number twice within the
 * window. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "overlay/relay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hd_relay_hdr_t h;
  if (hd_relay_parse(data, size, &h) == 0) {
    uint8_t out[HD_RELAY_HDR_MAX];
    int l = hd_relay_hdr_write(&h, out, sizeof out);
    if (l < 0 || (size_t)l + h.inner_len != size || memcmp(out, data, (size_t)l) || h.inner != data + l)
      abort();
    /* a relay's worker is one of its workers; a rescue gives a header that writes */
    for (int nw = 0; nw <= HD_HOP_LANES; nw++) {
      int w = hd_relay_worker(&h, nw);
      if (w < 0 || (nw > 0 && w >= nw)) abort();
    }
    hd_relay_path_t own = {.n = 1, .hop = {h.hops[h.n_hops - 1]}},
                    alt = {.n = 2, .hop = {7, h.hops[h.n_hops - 1]}};
    hd_relay_hdr_t d;
    uint64_t self = h.hop ? h.hops[h.hop - 1] : h.origin;
    if (hd_relay_rescue(&h, self, h.hops[h.hop], &own, &alt, &d) == 0 &&
        (hd_relay_hdr_write(&d, out, sizeof out) < 0 || d.hops[d.hop] == h.hops[h.hop]))
      abort();
  }
  uint16_t stream;
  uint32_t seqs[HD_HOP_NACK_MAX];
  int k = hd_hop_nack_parse(data, size, &stream, seqs, HD_HOP_NACK_MAX);
  if (k != HD_EPROTO && (k < 1 || k > HD_HOP_NACK_MAX)) abort();

  /* the input as (sequence number step, time step) pairs */
  static uint8_t got[1 << 20];
  memset(got, 0, sizeof got);
  hd_hop_rx_t rx;
  hd_hop_rx_init(&rx);
  hd_dedup_t dd = {0};
  hd_time_t now = HD_SEC(1);
  uint32_t seq = 1 << 19;
  for (size_t i = 0; i + 2 <= size; i += 2) {
    seq += (uint32_t)(int8_t)data[i];
    now += HD_MS(data[i + 1] & 31);
    int fresh = hd_hop_rx_feed(&rx, seq, now);
    if (rx.n_miss > HD_HOP_MAX_MISSING) abort();
    uint32_t out[8];
    int n = hd_hop_rx_poll(&rx, now, out, 8);
    if (n < 0 || n > 8) abort();
    /* seen before and still inside the window: a duplicate, never new */
    if (seq < sizeof got) {
      if (fresh && got[seq] && rx.max - seq < HD_HOP_WIN) abort();
      if (fresh) got[seq] = 1;
    }
    int d = hd_dedup_check(&dd, 7, (uint16_t)seq);
    if (d != 0 && d != 1) abort();
  }
  return 0;
}
