/* Fuzz target for the Mahimahi packet-delivery trace parser of the netem link
 * model (src/netem/link) and the trace-driven bottleneck behind it. Input:
 * trace text. On a successful parse, packets of varied sizes (taken from the
 * input bytes) are pushed through and the invariants checked: FIFO order,
 * deliveries only at millisecond opportunities, never before the offer,
 * counters that add up. Any crash, sanitizer report or broken invariant is a
 * bug. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "netem/link.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hd_netem_params_t p;
  hd_netem_params_init(&p);
  p.queue_time = HD_MS(50);
  p.max_packets = 64;
  hd_netem_link_t *l = NULL;
  if (hd_netem_link_new(&l, &p, 1, 0)) abort();
  char err[64];
  int rc = hd_netem_link_set_trace(l, (const char *)data, size, err, sizeof err);
  if (rc != 0 && rc != HD_EPROTO && rc != HD_ENOMEM) abort();
  if (rc == HD_EPROTO && (err[0] == 0 || memchr(err, 0, sizeof err) == NULL)) abort();
  if (rc == 0) {
    if (hd_netem_link_rate(l, 0) == 0) abort();
    static uint8_t pkt[HD_NETEM_MAX_PKT];
    hd_time_t now = 0, last_at = 0;
    uint32_t next_seq = 0, sent = 0;
    const uint8_t *o;
    for (size_t i = 0; i < size && i < 200; i++) {
      size_t len = 4 + (size_t)data[i] * 8; /* 4 .. 2044 bytes: room for the seq */
      now += (hd_time_t)(data[i] & 0x0f) * 700;
      memcpy(pkt, &sent, sizeof sent);
      int s = hd_netem_link_send(l, pkt, len, now);
      if (s < 0) abort();
      sent += s == 1;
      hd_time_t nt = hd_netem_link_next_timeout(l);
      if (nt != HD_TIME_NEVER && nt % 1000) abort(); /* only at ms opportunities */
      if ((data[i] & 0x30) == 0 && nt != HD_TIME_NEVER) {
        if (nt < last_at) abort();
        int n;
        while ((n = hd_netem_link_poll(l, nt, &o)) > 0) {
          uint32_t seq;
          memcpy(&seq, o, sizeof seq);
          if (seq != next_seq++) abort(); /* FIFO: no jitter, no reorder */
        }
        if (n < 0) abort();
        last_at = nt;
        if (now < nt) now = nt;
      }
    }
    hd_netem_stats_t st;
    hd_netem_link_stats(l, &st);
    if (st.pkts_in != st.pkts_out + st.drop_queue + st.drop_cap + hd_netem_link_held(l)) abort();
    if (st.qdelay_p50 > st.qdelay_p95 || st.qdelay_p95 > st.qdelay_p99 || st.qdelay_p99 > st.qdelay_max)
      abort();
  }
  hd_netem_link_free(l);
  return 0;
}
